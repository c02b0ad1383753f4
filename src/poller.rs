//! The scheduler's unit: one task per source, polling on its interval, backing off on failure, and handing
//! every successful poll to the pipeline. A failing source only ever delays itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::SourceSpec;
use crate::http::HttpClient;
use crate::pipeline::Batch;
use crate::source::PollCtx;
use crate::store::Store;

/// Longest wait between polls of a failing source.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// One source's polling loop.
pub struct Poller {
    /// The source.
    pub spec: SourceSpec,
    /// The shared polite client.
    pub http: Arc<HttpClient>,
    /// Read side of the store (cursor, failure count).
    pub store: Store,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The pipeline.
    pub tx: mpsc::Sender<Batch>,
}

impl Poller {
    /// Polls until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let name = self.spec.name.clone();
        let state = match self.store.call(move |s| s.source_state(&name)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(source = %self.spec.name, error = %e, "cannot read the source's state; starting fresh");
                Default::default()
            }
        };
        let mut cursor = state.cursor;
        let mut failures = state.failures;
        let mut last_error: Option<String> = None;
        // A restart keeps the schedule (no stampede), but never waits longer than one interval.
        let mut wait = state
            .next_poll_at
            .and_then(|t| (t - self.clock.now()).to_std().ok())
            .unwrap_or_default()
            .min(self.spec.every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let now = self.clock.now();
            let ctx = PollCtx {
                name: &self.spec.name,
                http: &self.http,
                timeout: self.spec.timeout,
                max_body: self.spec.max_body,
                cursor: &cursor,
                now,
            };
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.spec.kind.poll(&ctx) => r,
            };
            wait = match result {
                Ok(polled) => {
                    let every = crate::backoff::jitter(self.spec.every, 0.1);
                    let next_cursor = polled.cursor.clone();
                    if self.store_poll(polled, now, every).await {
                        if failures > 0 {
                            tracing::info!(source = %self.spec.name, after_failures = failures, "source recovered");
                        }
                        failures = 0;
                        last_error = None;
                        cursor = next_cursor;
                    }
                    every
                }
                Err(e) => {
                    failures += 1;
                    let message = e.to_string();
                    let backoff = crate::backoff::delay(
                        failures - 1,
                        self.spec.every,
                        MAX_BACKOFF.max(self.spec.every),
                    );
                    let wait = backoff.max(e.retry_after().unwrap_or_default());
                    if last_error.as_deref() != Some(&message) {
                        tracing::warn!(source = %self.spec.name, kind = self.spec.kind.name(), failures,
                            retry_in = %humantime::format_duration(Duration::from_secs(wait.as_secs().max(1))),
                            error = %message, "poll failed; backing off");
                    } else {
                        tracing::debug!(source = %self.spec.name, failures, error = %message, "poll failed again");
                    }
                    self.record_failure(&message, now, wait).await;
                    last_error = Some(message);
                    wait
                }
            };
        }
    }

    /// Hands a poll to the pipeline and waits until it is stored; false if it was not.
    async fn store_poll(
        &self,
        polled: crate::source::Polled,
        now: chrono::DateTime<chrono::Utc>,
        every: Duration,
    ) -> bool {
        let (done, stored) = oneshot::channel();
        let next_poll_at = now + chrono::Duration::from_std(every).unwrap_or_default();
        let batch = Batch {
            source: self.spec.name.clone(),
            polled,
            now,
            next_poll_at,
            done,
        };
        if self.tx.send(batch).await.is_err() {
            return false;
        }
        match stored.await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::error!(source = %self.spec.name, error = %e, "cannot store the poll; it will be fetched again");
                false
            }
            Err(_) => false,
        }
    }

    async fn record_failure(
        &self,
        message: &str,
        now: chrono::DateTime<chrono::Utc>,
        wait: Duration,
    ) {
        let (name, message) = (self.spec.name.clone(), message.to_string());
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        if let Err(e) = self
            .store
            .call(move |s| s.record_failure(&name, &message, next))
            .await
        {
            tracing::error!(source = %self.spec.name, error = %e, "cannot record the failed poll");
        }
    }
}
