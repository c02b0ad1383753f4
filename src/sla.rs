//! The SLA engine: plans a case's tiers when it opens, and fires them when due.
//!
//! The timer keeps only the nearest due time: it sleeps until then or until woken because a new case was
//! opened, and fires everything due in the store (so tiers whose time passed while the daemon was down fire once,
//! at start). It also wakes at least every [`RECHECK`], because another process may change cases.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::alert::Event;
use crate::clock::Clock;
use crate::config::Sla;
use crate::store::Store;

/// Longest sleep of the timer, so changes made by other processes are noticed.
const RECHECK: Duration = Duration::from_secs(30);

/// The escalation plan of a new case.
#[derive(Debug, Clone, PartialEq)]
pub struct CasePlan {
    /// The time the SLA counts from.
    pub posted_at: DateTime<Utc>,
    /// Reply deadline.
    pub deadline: DateTime<Utc>,
    /// Tiers with absolute due times.
    pub tiers: Vec<PlannedTier>,
}

/// One tier of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTier {
    /// Index in the config's tier list.
    pub tier: usize,
    /// The event it sends.
    pub event: Event,
    /// When it fires.
    pub due_at: DateTime<Utc>,
    /// Who it alerts.
    pub notify: Vec<String>,
}

/// Plans a case for a post made at `posted_at`.
pub fn plan(sla: &Sla, posted_at: DateTime<Utc>) -> CasePlan {
    let at =
        |d: Duration| posted_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    CasePlan {
        posted_at,
        deadline: at(sla.reply_within),
        tiers: sla
            .tiers
            .iter()
            .enumerate()
            .map(|(i, t)| PlannedTier {
                tier: i,
                event: t.event,
                due_at: at(t.after),
                notify: t.notify.clone(),
            })
            .collect(),
    }
}

/// Whether a post is recent enough to open a case when first seen (old backlog pages nobody).
pub fn is_fresh(sla: &Sla, posted_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - posted_at)
        .to_std()
        .map_or(true, |age| age <= sla.max_age)
}

/// Runs the timer until `stop`. `wake` is notified when a case opens; `queued` is bumped when alerts are queued.
pub async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    queued: watch::Sender<u64>,
    stop: CancellationToken,
) {
    loop {
        let now = clock.now();
        match store.call(move |s| s.fire_due_tiers(now, 500)).await {
            Ok(list) if !list.is_empty() => {
                for (case_id, event) in &list {
                    tracing::info!(case_id, event = event.as_str(), "escalation tier fired");
                }
                queued.send_modify(|n| *n = n.wrapping_add(1));
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot fire due tiers; retrying"),
        }
        let next = store.call(|s| s.next_tier_due()).await.ok().flatten();
        let sleep = next.map_or(RECHECK, |t| {
            (t - clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(RECHECK)
        });
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tier;
    use chrono::TimeZone;

    fn sla() -> Sla {
        let m = |n: u64| Duration::from_secs(n * 60);
        let tier = |after, notify: &[&str]| Tier {
            after,
            event: Event::for_offset(after, m(60)),
            notify: notify.iter().map(|s| s.to_string()).collect(),
        };
        Sla {
            reply_within: m(60),
            max_age: m(24 * 60),
            tiers: vec![
                tier(m(0), &["support"]),
                tier(m(45), &["support", "lead"]),
                tier(m(60), &["lead"]),
            ],
        }
    }

    #[test]
    fn plan_counts_from_the_posts_time() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        let p = plan(&sla(), t0);
        assert_eq!(
            p.deadline,
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
        );
        let got: Vec<_> = p
            .tiers
            .iter()
            .map(|t| (t.event, t.due_at.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Event::Opened, "09:00".into()),
                (Event::Warning, "09:45".into()),
                (Event::Breached, "10:00".into())
            ]
        );
    }

    #[test]
    fn old_posts_are_not_fresh() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        assert!(is_fresh(&sla(), now - chrono::Duration::hours(23), now));
        assert!(!is_fresh(&sla(), now - chrono::Duration::hours(25), now));
        assert!(is_fresh(&sla(), now + chrono::Duration::hours(1), now));
    }
}
