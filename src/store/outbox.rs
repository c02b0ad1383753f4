//! The outbox: alerts waiting for delivery, with their attempts and the reason of the last failure.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Ctx, Store, StoreError, from_ms, ms};

/// One alert for one notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// The alert's id (idempotency key).
    pub event_id: String,
    /// The event name.
    pub event: String,
    /// The case.
    pub case_id: i64,
    /// The alert JSON, sent as is.
    pub payload: String,
    /// Attempts so far.
    pub attempts: u32,
}

impl Store {
    /// Pending rows for a notifier whose next attempt is due, oldest first.
    pub fn due_outbox(
        &self,
        notifier: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, event_id, event, case_id, payload, attempts FROM outbox
                 WHERE state = 'pending' AND notifier = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3",
            )
            .ctx("preparing due outbox")?;
        let rows = stmt
            .query_map(params![notifier, ms(now), limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    event: r.get(2)?,
                    case_id: r.get(3)?,
                    payload: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })
            .ctx("reading due outbox")?;
        rows.collect::<Result<_, _>>().ctx("reading due outbox")
    }

    /// When the next pending row of a notifier is due.
    pub fn next_outbox_due(&self, notifier: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.lock()
            .query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND notifier = ?1",
                [notifier],
                |r| r.get::<_, Option<i64>>(0),
            )
            .ctx("finding the next due alert")
            .map(|v| v.map(from_ms))
    }

    /// Records a successful delivery.
    pub fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL WHERE id = ?1",
                params![id, ms(now)],
            )
            .ctx("marking an alert delivered")
            .map(drop)
    }

    /// Records a failed attempt that will be retried at `next_at`.
    pub fn mark_retry(
        &self,
        id: i64,
        error: &str,
        next_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, ms(next_at)],
            )
            .ctx("scheduling an alert retry")
            .map(drop)
    }

    /// Records a permanent failure (the receiver refused it for good); the row stays for inspection.
    pub fn mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .ctx("marking an alert failed")
            .map(drop)
    }

    /// Counts of outbox rows by state, for `/readyz` and `cases`.
    pub fn outbox_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.lock()
            .query_row(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'delivered'), 0), COALESCE(SUM(state = 'failed'), 0) FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ctx("counting alerts")
    }
}
