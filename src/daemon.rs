//! The daemon: opens the store, starts the engine (pollers, pipeline, SLA timer, delivery workers), serves the
//! API, and handles stop and reload requests.
//!
//! Reload replaces the whole engine with one built from the new config once the new config has validated; an
//! invalid config is logged and the running engine keeps going. Nothing stored is lost either way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::brand::BrandMatcher;
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::delivery::Worker;
use crate::http::HttpClient;
use crate::pipeline::Pipeline;
use crate::poller::Poller;
use crate::store::{Store, StoreError};

/// How long shutdown waits for in-flight work before exiting anyway.
const GRACE: Duration = Duration::from_secs(5);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The engine could not start.
    #[error("cannot start: {0}")]
    Start(String),
    /// Another daemon already uses this state directory.
    #[error(
        "another earshot is already running with the state directory {0} (two would alert twice)"
    )]
    AlreadyRunning(std::path::PathBuf),
}

/// What asks the daemon to stop or reload; the binary wires these to signals, tests to anything.
pub struct Control {
    /// Cancelled to stop.
    pub stop: CancellationToken,
    /// One message per reload request.
    pub reload: mpsc::Receiver<()>,
}

/// Runs until `control.stop` is cancelled.
pub async fn run(
    mut config: Config,
    clock: Arc<dyn Clock>,
    mut control: Control,
) -> Result<(), DaemonError> {
    let store = Store::open(&config.daemon.state_dir)?;
    let _lock = lock_state_dir(&config.daemon.state_dir)?;
    tracing::info!(store = %store.path().display(), sources = config.sources.len(), "earshot starting");
    let background = CancellationToken::new();
    if let Some(addr) = config.daemon.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| DaemonError::Listen { addr, source })?;
        tracing::info!(addr = %bound, "HTTP API listening on http://{bound}");
        let app = crate::api::router(store.clone(), clock.clone());
        let stop = background.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP API stopped");
            }
        });
    }
    tokio::spawn(crate::systemd::watchdog(store.clone(), background.clone()));
    let mut engine = Engine::start(&config, store.clone(), clock.clone())?;
    crate::systemd::ready();
    loop {
        tokio::select! {
            _ = control.stop.cancelled() => break,
            Some(()) = control.reload.recv() => {
                crate::systemd::reloading();
                match config::load(&config.file) {
                    Ok(new) => {
                        if new.daemon.state_dir != config.daemon.state_dir || new.daemon.listen != config.daemon.listen {
                            tracing::warn!("daemon.state_dir and daemon.listen change only on restart; keeping the current ones");
                        }
                        // Stop first: two engines at once would run two delivery workers per notifier.
                        engine.stop().await;
                        engine = match Engine::start(&new, store.clone(), clock.clone()) {
                            Ok(next) => {
                                config = new;
                                tracing::info!(sources = config.sources.len(), "config reloaded");
                                next
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "new config rejected; restarting the previous one");
                                Engine::start(&config, store.clone(), clock.clone())?
                            }
                        };
                    }
                    Err(e) => tracing::error!("new config rejected; the running one stays:\n{e}"),
                }
                crate::systemd::ready();
            }
        }
    }
    crate::systemd::stopping();
    tracing::info!("stopping: finishing writes in flight");
    engine.stop().await;
    background.cancel();
    tracing::info!("stopped");
    Ok(())
}

/// Holds an exclusive lock on `state_dir/earshot.lock` for as long as the returned file lives; the CLI's `cases`
/// and `ack` do not take it, they share the store safely through SQLite.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    let path = dir.join("earshot.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DaemonError::Start(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(DaemonError::AlreadyRunning(dir.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(DaemonError::Start(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Everything that runs from one config.
struct Engine {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Engine {
    fn start(config: &Config, store: Store, clock: Arc<dyn Clock>) -> Result<Engine, DaemonError> {
        let http = HttpClient::new(&config.daemon.user_agent, config.daemon.per_host_interval)
            .map_err(|e| DaemonError::Start(format!("HTTP client: {e}")))?;
        let http = Arc::new(http);
        let brands = BrandMatcher::new(&config.brands)
            .map_err(|e| DaemonError::Start(format!("brand terms: {e}")))?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let case_opened = Arc::new(Notify::new());
        let (queued, queued_rx) = watch::channel(0u64);
        let (tx, rx) = mpsc::channel(64);
        let accounts: Arc<std::collections::HashMap<String, Vec<String>>> = Arc::new(
            config
                .brands
                .iter()
                .map(|b| (b.name.clone(), b.accounts.clone()))
                .collect(),
        );
        let pipeline = Pipeline {
            store: store.clone(),
            brands,
            classifier: config.classify.classifier(),
            sla: config.sla.clone(),
            clock: clock.clone(),
            case_opened: case_opened.clone(),
        };
        tasks.spawn(pipeline.run(rx));
        for spec in &config.sources {
            tracing::info!(source = %spec.name, kind = spec.kind.name(), target = %spec.kind.describe(),
                every = %humantime::format_duration(spec.every), "watching");
            let poller = Poller {
                spec: spec.clone(),
                http: http.clone(),
                store: store.clone(),
                clock: clock.clone(),
                tx: tx.clone(),
                accounts: accounts.clone(),
            };
            tasks.spawn(poller.run(stop.clone()));
        }
        drop(tx);
        tasks.spawn(crate::sla::run(
            store.clone(),
            clock.clone(),
            case_opened,
            queued,
            stop.clone(),
        ));
        for n in &config.notifiers {
            let worker = Worker {
                name: n.name.clone(),
                kind: Arc::new(n.kind.clone()),
                store: store.clone(),
                clock: clock.clone(),
                policy: config.delivery,
            };
            tasks.spawn(worker.run(queued_rx.clone(), stop.clone()));
        }
        let tidy = http.clone();
        let tidy_stop = stop.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tidy_stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(600)) => tidy.forget_idle_hosts(),
                }
            }
        });
        tasks.close();
        Ok(Engine { stop, tasks })
    }

    /// Stops polling, lets the pipeline store what is in flight, and waits (bounded) for every task.
    async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "some work did not finish within {GRACE:?}; it will be retried after restart"
            );
        }
    }
}
