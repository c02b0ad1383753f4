use super::*;
use crate::alert::{Alert, Event};
use crate::classify::{Sentiment, Verdict};
use crate::mention::Mention;
use crate::sla::{CasePlan, PlannedTier};
use chrono::TimeZone;

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap() + chrono::Duration::minutes(min)
}

fn verdict() -> Verdict {
    Verdict {
        sentiment: Sentiment::Negative,
        score: -0.8,
        complaint: true,
        lang: Some("en".into()),
        tags: vec!["delay".into()],
        rules: vec!["en.waiting".into()],
        hits: vec![],
    }
}

fn mention(key: &str) -> Mention {
    Mention {
        source: "press".into(),
        key: key.into(),
        url: Some(format!("https://example.com/{key}")),
        author: Some("maya".into()),
        text: "where is my refund".into(),
        published_at: Some(t(0)),
        fetched_at: t(1),
        lang: None,
        thread: Some(format!("thread-{key}")),
    }
}

fn plan() -> CasePlan {
    let tier = |i, event, min, who: &[&str]| PlannedTier {
        tier: i,
        event,
        due_at: t(min),
        notify: who.iter().map(|s| s.to_string()).collect(),
    };
    CasePlan {
        posted_at: t(0),
        deadline: t(60),
        tiers: vec![
            tier(0, Event::Opened, 0, &["support"]),
            tier(1, Event::Warning, 45, &["support", "lead"]),
            tier(2, Event::Breached, 60, &["lead"]),
        ],
    }
}

fn batch(keys: &[&str], complaint: bool, now: DateTime<Utc>) -> Ingest {
    Ingest {
        source: "press".into(),
        now,
        cursor: Cursor {
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            position: None,
        },
        next_poll_at: now + chrono::Duration::minutes(1),
        items: keys
            .iter()
            .map(|k| Item {
                mention: mention(k),
                matched: vec![Matched {
                    brand: "Northwind".into(),
                    verdict: verdict(),
                    case: complaint.then(plan),
                }],
            })
            .collect(),
        forget_before: Some(now - chrono::Duration::days(30)),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn a_mention_is_new_once_even_across_reopen() {
    let (dir, s) = store();
    let r = s.ingest(batch(&["a", "b", "a"], true, t(1))).unwrap();
    assert_eq!((r.new, r.cases.len()), (2, 2));
    let r = s.ingest(batch(&["a", "b", "c"], true, t(2))).unwrap();
    assert_eq!((r.new, r.cases.len()), (1, 1));
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert!(s.unseen("press", &["a", "b", "c"]).unwrap().is_empty());
    assert_eq!(s.unseen("press", &["d"]).unwrap().len(), 1);
    let st = s.source_state("press").unwrap();
    assert_eq!(st.cursor.validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(st.failures, 0);
}

#[test]
fn seen_items_are_forgotten_only_by_a_successful_poll_long_after() {
    let (_dir, s) = store();
    s.ingest(batch(&["old"], false, t(0))).unwrap();
    // A failure changes nothing in the seen-set.
    assert_eq!(s.record_failure("press", "HTTP 500", t(5)).unwrap(), 1);
    assert!(s.unseen("press", &["old"]).unwrap().is_empty());
    // A successful poll 31 days later that no longer lists it forgets it.
    let later = t(0) + chrono::Duration::days(31);
    s.ingest(batch(&["new"], false, later)).unwrap();
    assert_eq!(s.unseen("press", &["old"]).unwrap().len(), 1);
    assert_eq!(s.source_state("press").unwrap().failures, 0);
}

#[test]
fn tiers_fire_once_each_with_one_outbox_row_per_notifier() {
    let (_dir, s) = store();
    let case = s.ingest(batch(&["a"], true, t(1))).unwrap().cases[0];
    assert_eq!(s.next_tier_due().unwrap(), Some(t(0)));
    assert_eq!(
        s.fire_due_tiers(t(1), 100).unwrap(),
        vec![(case, Event::Opened)]
    );
    assert!(
        s.fire_due_tiers(t(1), 100).unwrap().is_empty(),
        "fires once"
    );
    assert_eq!(s.next_tier_due().unwrap(), Some(t(45)));
    // Down from +1m to +70m: both later tiers fire at start, once each, in order.
    assert_eq!(
        s.fire_due_tiers(t(70), 100).unwrap(),
        vec![(case, Event::Warning), (case, Event::Breached)]
    );
    assert!(s.fire_due_tiers(t(200), 100).unwrap().is_empty());
    let support = s.due_outbox("support", t(70), 10).unwrap();
    let lead = s.due_outbox("lead", t(70), 10).unwrap();
    assert_eq!(
        support.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["complaint.opened", "sla.warning"]
    );
    assert_eq!(
        lead.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
        ["sla.warning", "sla.breached"]
    );
    let alert: Alert = serde_json::from_str(&lead[1].payload).unwrap();
    assert_eq!(alert.case_id, case);
    assert_eq!(alert.deadline, t(60));
    assert_eq!(alert.mention.published_at, t(0));
    assert_eq!(alert.verdict.rules, ["en.waiting"]);
    // The warning to support and to lead share one event id: the idempotency key is per event.
    assert_eq!(support[1].event_id, lead[0].event_id);
}

#[test]
fn closing_cancels_pending_tiers_and_tells_those_alerted() {
    let (_dir, s) = store();
    let case = s.ingest(batch(&["a"], true, t(1))).unwrap().cases[0];
    s.fire_due_tiers(t(1), 100).unwrap();
    let closed = s
        .close_case(
            case,
            Closing::Ack {
                note: Some("called her back"),
            },
            t(10),
        )
        .unwrap();
    assert_eq!(closed.notified, ["support"]);
    assert_eq!(closed.cancelled, 2);
    assert!(
        s.fire_due_tiers(t(100), 100).unwrap().is_empty(),
        "no tier fires after close"
    );
    let rows = s.due_outbox("support", t(10), 10).unwrap();
    let alert: Alert = serde_json::from_str(&rows[1].payload).unwrap();
    assert_eq!(alert.event, Event::Closed);
    let closure = alert.closure.unwrap();
    assert_eq!(
        (
            closure.reason.as_str(),
            closure.note.as_deref(),
            closure.seconds_open
        ),
        ("ack", Some("called her back"), 600)
    );
    assert!(matches!(
        s.close_case(case, Closing::Ack { note: None }, t(11)),
        Err(AckError::AlreadyClosed { .. })
    ));
    assert!(matches!(
        s.close_case(999, Closing::Ack { note: None }, t(11)),
        Err(AckError::NoSuchCase(999))
    ));
    let rows = s.cases(false).unwrap();
    assert_eq!(rows[0].state, "closed");
    assert!(s.cases(true).unwrap().is_empty());
}

#[test]
fn outbox_rows_retry_then_deliver_or_fail() {
    let (_dir, s) = store();
    s.ingest(batch(&["a"], true, t(1))).unwrap();
    s.fire_due_tiers(t(1), 100).unwrap();
    let row = s.due_outbox("support", t(1), 10).unwrap().remove(0);
    s.mark_retry(row.id, "connection refused", t(3)).unwrap();
    assert!(
        s.due_outbox("support", t(2), 10).unwrap().is_empty(),
        "not before its retry time"
    );
    assert_eq!(s.next_outbox_due("support").unwrap(), Some(t(3)));
    let again = s.due_outbox("support", t(3), 10).unwrap().remove(0);
    assert_eq!(again.attempts, 1);
    s.mark_delivered(again.id, t(3)).unwrap();
    assert!(s.due_outbox("support", t(100), 10).unwrap().is_empty());
    assert_eq!(s.outbox_counts().unwrap(), (0, 1, 0));
}

#[test]
fn a_second_connection_sees_and_changes_the_same_state() {
    // What `earshot ack` does while the daemon runs: a second process, same file.
    let (dir, s) = store();
    let case = s.ingest(batch(&["a"], true, t(1))).unwrap().cases[0];
    let other = Store::open(dir.path()).unwrap();
    other
        .close_case(case, Closing::Ack { note: None }, t(2))
        .unwrap();
    assert!(s.fire_due_tiers(t(100), 100).unwrap().is_empty());
    assert_eq!(s.cases(false).unwrap()[0].state, "closed");
}

#[test]
fn a_brand_reply_closes_the_case_with_who_and_how_long() {
    let (_dir, s) = store();
    let ids = s.ingest(batch(&["a", "b"], true, t(1))).unwrap().cases;
    s.fire_due_tiers(t(1), 100).unwrap();
    let open = s.open_threads("press").unwrap();
    assert_eq!(
        open.iter().map(|o| o.thread.as_str()).collect::<Vec<_>>(),
        ["thread-a", "thread-b"]
    );
    assert_eq!(
        (open[0].brand.as_str(), open[0].posted_at),
        ("Northwind", t(0))
    );
    assert!(s.open_threads("other").unwrap().is_empty());
    // Answered at +75 min, after the 60-minute deadline; noticed at +80.
    let reply = crate::source::FoundReply {
        author: "NorthwindHelp".into(),
        at: t(75),
        url: Some("https://forum.example/p/9".into()),
    };
    let closed = s.close_case(ids[0], Closing::Reply(&reply), t(80)).unwrap();
    assert_eq!(closed.notified, ["support"]);
    let rows = s.due_outbox("support", t(80), 10).unwrap();
    let alert: Alert = serde_json::from_str(&rows.last().unwrap().payload).unwrap();
    assert_eq!((alert.event, alert.case_id), (Event::Closed, ids[0]));
    let c = alert.closure.unwrap();
    assert_eq!(c.reason, "reply");
    assert_eq!(c.replied_by.as_deref(), Some("NorthwindHelp"));
    assert_eq!(c.replied_at, Some(t(75)));
    assert_eq!(c.seconds_to_reply, Some(75 * 60));
    assert_eq!(c.late, Some(true));
    assert_eq!(c.seconds_open, 80 * 60);
    assert_eq!(
        s.open_threads("press")
            .unwrap()
            .iter()
            .map(|o| o.case_id)
            .collect::<Vec<_>>(),
        [ids[1]],
        "a closed case gets no more reply checks"
    );
    let row = s
        .cases(false)
        .unwrap()
        .into_iter()
        .find(|r| r.id == ids[0])
        .unwrap();
    assert_eq!(
        (
            row.close_reason.as_deref(),
            row.replied_by.as_deref(),
            row.replied_at
        ),
        (Some("reply"), Some("NorthwindHelp"), Some(t(75)))
    );
    // An early reply is not late.
    let early = crate::source::FoundReply { at: t(20), ..reply };
    s.close_case(ids[1], Closing::Reply(&early), t(21)).unwrap();
    let closed_b = s
        .due_outbox("support", t(80), 10)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str::<Alert>(&r.payload).unwrap())
        .find(|a| a.case_id == ids[1] && a.event == Event::Closed)
        .unwrap();
    assert_eq!(closed_b.closure.unwrap().late, Some(false));
}

#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let (dir, s) = store();
    s.ingest(batch(&["a"], true, t(1))).unwrap();
    drop(s);
    {
        // Make it look like a store written by the previous release.
        let conn = Connection::open(dir.path().join("earshot.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE mentions DROP COLUMN thread; ALTER TABLE cases DROP COLUMN replied_by;
             ALTER TABLE cases DROP COLUMN replied_at; PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.cases(true).unwrap().len(), 1, "nothing stored is lost");
    assert!(
        s.open_threads("press").unwrap().is_empty(),
        "old mentions have no thread"
    );
    s.ingest(batch(&["b"], true, t(2))).unwrap();
    assert_eq!(s.open_threads("press").unwrap().len(), 1);
}
