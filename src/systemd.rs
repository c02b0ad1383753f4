//! The systemd notification protocol (`Type=notify`): READY, RELOADING, STOPPING and the watchdog. Every call is a
//! no-op when the daemon is not run by systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Startup is complete.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("watching")]);
}

/// A config reload begins (systemd ≥ 253 wants the monotonic time with it; older ones ignore it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the watchdog at a third of its interval, but only while the store answers: a wedged database then means
/// systemd restarts us.
pub async fn watchdog(store: Store, stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 3).max(Duration::from_millis(50));
    loop {
        if store.call(|s| s.ping()).await.is_ok() {
            send(&[NotifyState::Watchdog]);
        } else {
            tracing::error!("store does not answer; not pinging the systemd watchdog");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
