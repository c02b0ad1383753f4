//! Alert delivery: one worker per notifier drains its outbox rows, retrying transient failures with capped,
//! jittered backoff until they are delivered. Workers are independent, so a dead SMTP server never delays a
//! webhook.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Delivery;
use crate::notify::{NotifierKind, Outcome};
use crate::store::{OutboxRow, Store};

/// Longest idle sleep: rows queued by another process (`earshot ack`) are picked up within this.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One notifier's delivery loop.
pub struct Worker {
    /// The notifier's name.
    pub name: String,
    /// How it delivers.
    pub kind: Arc<NotifierKind>,
    /// Where rows come from.
    pub store: Store,
    /// Time for retry scheduling.
    pub clock: Arc<dyn Clock>,
    /// Retry policy.
    pub policy: Delivery,
}

impl Worker {
    /// Runs until `stop`; `queued` wakes it when new rows are written in this process.
    pub async fn run(self, mut queued: watch::Receiver<u64>, stop: CancellationToken) {
        loop {
            let (name, now) = (self.name.clone(), self.clock.now());
            let rows = match self.store.call(move |s| s.due_outbox(&name, now, 20)).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(notifier = %self.name, error = %e, "cannot read the outbox; retrying");
                    vec![]
                }
            };
            let busy = !rows.is_empty();
            for row in rows {
                if stop.is_cancelled() {
                    return;
                }
                self.attempt(row).await;
            }
            if busy {
                continue;
            }
            let name = self.name.clone();
            let next = self
                .store
                .call(move |s| s.next_outbox_due(&name))
                .await
                .ok()
                .flatten();
            let sleep = next.map_or(IDLE_POLL, |t| {
                (t - self.clock.now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_POLL)
            });
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = queued.changed() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn attempt(&self, row: OutboxRow) {
        let outcome = match tokio::time::timeout(self.policy.timeout, self.kind.deliver(&row)).await
        {
            Ok(o) => o,
            Err(_) => Outcome::Retry {
                reason: format!("no answer within {:?}", self.policy.timeout),
                after: None,
            },
        };
        let (id, now) = (row.id, self.clock.now());
        let n = &self.name;
        let result = match outcome {
            Outcome::Delivered => {
                // Logged once recorded: a crash between sending and recording re-sends the alert with the same
                // `id` after restart (at-least-once), and the log must not claim more than the store knows.
                let recorded = self.store.call(move |s| s.mark_delivered(id, now)).await;
                if recorded.is_ok() {
                    tracing::info!(notifier = %n, event = %row.event, case_id = row.case_id, id = %row.event_id,
                        attempts = row.attempts + 1, "alert delivered");
                }
                recorded
            }
            Outcome::Retry { reason, after } => {
                let wait = crate::backoff::delay(
                    row.attempts,
                    self.policy.retry_initial,
                    self.policy.retry_max,
                )
                .max(after.unwrap_or_default());
                // Say it loudly the first time and every tenth, quietly in between: an outage is one story.
                if row.attempts.is_multiple_of(10) {
                    tracing::warn!(notifier = %n, event = %row.event, case_id = row.case_id, attempts = row.attempts + 1,
                        retry_in = %humantime::format_duration(round(wait)), error = %reason, "alert delivery failed; will retry");
                } else {
                    tracing::debug!(notifier = %n, case_id = row.case_id, error = %reason, "alert delivery failed again");
                }
                let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                self.store
                    .call(move |s| s.mark_retry(id, &reason, next))
                    .await
            }
            Outcome::Failed { reason } => {
                tracing::error!(notifier = %n, event = %row.event, case_id = row.case_id, error = %reason,
                    "alert refused for good; it stays in the outbox as failed");
                self.store.call(move |s| s.mark_failed(id, &reason)).await
            }
        };
        if let Err(e) = result {
            tracing::error!(notifier = %n, error = %e, "cannot record a delivery attempt");
        }
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}
