//! Cases: firing due escalation tiers, listing, and closing (acknowledgement), each change with its outbox rows.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Ctx, Store, StoreError, from_ms, ms, write_tx};
use crate::alert::{Alert, AlertMention, AlertVerdict, Closure, Event};
use crate::classify::Verdict;

/// A case as the CLI and API show it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    /// Case id (what `earshot ack` takes).
    pub id: i64,
    /// Brand.
    pub brand: String,
    /// Source name.
    pub source: String,
    /// Author of the post.
    pub author: Option<String>,
    /// Link to the post.
    pub url: Option<String>,
    /// The post's text.
    pub text: String,
    /// The post's time.
    pub posted_at: DateTime<Utc>,
    /// Reply deadline.
    pub deadline: DateTime<Utc>,
    /// `open` or `closed`.
    pub state: String,
    /// When it closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// `ack` or `reply`.
    pub close_reason: Option<String>,
    /// Note given when closing.
    pub close_note: Option<String>,
    /// The brand account whose reply closed the case.
    pub replied_by: Option<String>,
    /// When that reply was posted.
    pub replied_at: Option<DateTime<Utc>>,
    /// The next tier still to fire, if any.
    pub next_event: Option<String>,
    /// When that tier fires.
    pub next_event_at: Option<DateTime<Utc>>,
    /// Classifier score.
    pub score: f64,
    /// Rules that fired.
    pub rules: Vec<String>,
}

/// A case's state, closed time and reason, post time and deadline, as `close_case` reads them.
type CaseState = (String, Option<i64>, Option<String>, i64, i64);

/// How a case ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Closing<'a> {
    /// A person acknowledged it (CLI or API), with an optional note.
    Ack {
        /// The note.
        note: Option<&'a str>,
    },
    /// The brand answered in the thread.
    Reply(&'a crate::source::FoundReply),
}

/// An open case with a thread to search for the brand's reply.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenThread {
    /// The case.
    pub case_id: i64,
    /// Its brand (whose accounts may answer).
    pub brand: String,
    /// The complaint's platform id.
    pub key: String,
    /// The complaint's thread reference, as its source wrote it.
    pub thread: String,
    /// The complaint's own time.
    pub posted_at: DateTime<Utc>,
}

/// The result of closing a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The case.
    pub case_id: i64,
    /// Notifiers that will receive `case.closed`.
    pub notified: Vec<String>,
    /// Tiers that will now never fire.
    pub cancelled: usize,
}

/// Why a case could not be closed.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// No such case.
    #[error("there is no case {0} (see `earshot cases`)")]
    NoSuchCase(i64),
    /// Closed before.
    #[error("case {id} is already closed ({reason}, at {at})")]
    AlreadyClosed {
        /// The case.
        id: i64,
        /// How it was closed.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// When the earliest pending tier of an open case is due.
    pub fn next_tier_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT MIN(t.due_at) FROM case_tiers t JOIN cases c ON c.id = t.case_id
             WHERE t.state = 'pending' AND c.state = 'open'",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .ctx("finding the next due tier")
        .map(|v| v.map(from_ms))
    }

    /// Fires every tier due by `now` (at most `limit`), each in one transaction with its outbox rows. Returns what
    /// fired. A tier fires once: its state changes in the same transaction that queues its alerts.
    pub fn fire_due_tiers(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        let due: Vec<(i64, i64, String, i64, String)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT t.case_id, t.tier, t.event, t.due_at, t.notify FROM case_tiers t JOIN cases c ON c.id = t.case_id
                     WHERE t.state = 'pending' AND c.state = 'open' AND t.due_at <= ?1 ORDER BY t.due_at, t.case_id, t.tier LIMIT ?2",
                )
                .ctx("preparing due tiers")?;
            stmt.query_map(params![ms(now), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .ctx("reading due tiers")?
            .collect::<Result<_, _>>()
            .ctx("reading due tiers")?
        };
        let mut fired = Vec::new();
        for (case_id, tier, event, due_at, notify) in due {
            let event = Event::parse(&event).unwrap_or(Event::Breached);
            let names: Vec<String> = serde_json::from_str(&notify).unwrap_or_default();
            let event_id = format!("evt_{}_{}_t{}", self.instance, case_id, tier);
            let alert = build_alert(&tx, case_id, event, &event_id, from_ms(due_at), None)?;
            enqueue(&tx, &alert, &names, now)?;
            tx.execute(
                "UPDATE case_tiers SET state = 'fired', fired_at = ?3 WHERE case_id = ?1 AND tier = ?2",
                params![case_id, tier, ms(now)],
            )
            .ctx("marking a tier fired")?;
            fired.push((case_id, event));
        }
        tx.commit().ctx("committing fired tiers")?;
        Ok(fired)
    }

    /// Closes an open case: cancels its pending tiers and queues `case.closed` for every notifier already alerted
    /// about it (people who heard of the case hear that it ended; nobody else is bothered).
    pub fn close_case(
        &self,
        case_id: i64,
        how: Closing<'_>,
        now: DateTime<Utc>,
    ) -> Result<Closed, AckError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        let row: Option<CaseState> = tx
            .query_row(
                "SELECT state, closed_at, close_reason, posted_at, deadline FROM cases WHERE id = ?1",
                [case_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .ctx("reading the case")?;
        let Some((state, closed_at, close_reason, posted_at, deadline)) = row else {
            return Err(AckError::NoSuchCase(case_id));
        };
        if state == "closed" {
            return Err(AckError::AlreadyClosed {
                id: case_id,
                reason: close_reason.unwrap_or_default(),
                at: from_ms(closed_at.unwrap_or_default()),
            });
        }
        let mut closure = Closure {
            reason: "ack".into(),
            note: None,
            closed_at: now,
            seconds_open: (ms(now) - posted_at) / 1000,
            replied_by: None,
            replied_at: None,
            reply_url: None,
            seconds_to_reply: None,
            late: None,
        };
        match how {
            Closing::Ack { note } => closure.note = note.map(str::to_string),
            Closing::Reply(reply) => {
                closure.reason = "reply".into();
                closure.replied_by = Some(reply.author.clone());
                closure.replied_at = Some(reply.at);
                closure.reply_url = reply.url.clone();
                closure.seconds_to_reply = Some(((ms(reply.at) - posted_at) / 1000).max(0));
                closure.late = Some(ms(reply.at) > deadline);
            }
        }
        tx.execute(
            "UPDATE cases SET state = 'closed', closed_at = ?2, close_reason = ?3, close_note = ?4, replied_by = ?5,
                 replied_at = ?6 WHERE id = ?1",
            params![
                case_id,
                ms(now),
                closure.reason,
                closure.note,
                closure.replied_by,
                closure.replied_at.map(ms)
            ],
        )
        .ctx("closing the case")?;
        let cancelled = tx
            .execute("UPDATE case_tiers SET state = 'cancelled' WHERE case_id = ?1 AND state = 'pending'", [case_id])
            .ctx("cancelling tiers")?;
        let notified = alerted_notifiers(&tx, case_id)?;
        let event_id = format!("evt_{}_{}_closed", self.instance, case_id);
        let alert = build_alert(&tx, case_id, Event::Closed, &event_id, now, Some(closure))?;
        enqueue(&tx, &alert, &notified, now)?;
        tx.commit().ctx("committing the close")?;
        Ok(Closed {
            case_id,
            notified,
            cancelled,
        })
    }

    /// Open cases of `source` whose complaint has a thread to search for the brand's reply, oldest first.
    pub fn open_threads(&self, source: &str) -> Result<Vec<OpenThread>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.id, c.brand, m.item_key, m.thread, c.posted_at FROM cases c JOIN mentions m ON m.id = c.mention_id
                 WHERE c.state = 'open' AND m.source = ?1 AND m.thread IS NOT NULL ORDER BY c.id",
            )
            .ctx("preparing open threads")?;
        let rows = stmt
            .query_map([source], |r| {
                Ok(OpenThread {
                    case_id: r.get(0)?,
                    brand: r.get(1)?,
                    key: r.get(2)?,
                    thread: r.get(3)?,
                    posted_at: from_ms(r.get(4)?),
                })
            })
            .ctx("listing open threads")?;
        rows.collect::<Result<_, _>>().ctx("listing open threads")
    }

    /// Cases, newest first; only open ones when `open_only`.
    pub fn cases(&self, open_only: bool) -> Result<Vec<CaseRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.id, c.brand, m.source, m.author, m.url, m.text, c.posted_at, c.deadline, c.state, c.closed_at,
                        c.close_reason, c.close_note, m.verdict, c.replied_by, c.replied_at,
                        (SELECT event FROM case_tiers t WHERE t.case_id = c.id AND t.state = 'pending' ORDER BY due_at LIMIT 1),
                        (SELECT MIN(due_at) FROM case_tiers t WHERE t.case_id = c.id AND t.state = 'pending')
                 FROM cases c JOIN mentions m ON m.id = c.mention_id
                 WHERE (?1 = 0 OR c.state = 'open') ORDER BY c.id DESC",
            )
            .ctx("preparing case list")?;
        let rows = stmt
            .query_map([open_only as i64], |r| {
                let verdict: Option<Verdict> = serde_json::from_str(&r.get::<_, String>(12)?).ok();
                Ok(CaseRow {
                    id: r.get(0)?,
                    brand: r.get(1)?,
                    source: r.get(2)?,
                    author: r.get(3)?,
                    url: r.get(4)?,
                    text: r.get(5)?,
                    posted_at: from_ms(r.get(6)?),
                    deadline: from_ms(r.get(7)?),
                    state: r.get(8)?,
                    closed_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
                    close_reason: r.get(10)?,
                    close_note: r.get(11)?,
                    replied_by: r.get(13)?,
                    replied_at: r.get::<_, Option<i64>>(14)?.map(from_ms),
                    next_event: r.get(15)?,
                    next_event_at: r.get::<_, Option<i64>>(16)?.map(from_ms),
                    score: verdict.as_ref().map_or(0.0, |v| v.score),
                    rules: verdict.map_or_else(Vec::new, |v| names(&v.rules)),
                })
            })
            .ctx("listing cases")?;
        rows.collect::<Result<_, _>>().ctx("listing cases")
    }
}

fn alerted_notifiers(tx: &Transaction<'_>, case_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT notify FROM case_tiers WHERE case_id = ?1 AND state = 'fired' ORDER BY tier",
        )
        .ctx("preparing fired tiers")?;
    let lists: Vec<String> = stmt
        .query_map([case_id], |r| r.get(0))
        .ctx("reading fired tiers")?
        .collect::<Result<_, _>>()
        .ctx("reading fired tiers")?;
    let mut names: Vec<String> = Vec::new();
    for list in lists {
        for n in serde_json::from_str::<Vec<String>>(&list).unwrap_or_default() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    Ok(names)
}

fn build_alert(
    tx: &Transaction<'_>,
    case_id: i64,
    event: Event,
    event_id: &str,
    occurred_at: DateTime<Utc>,
    closure: Option<Closure>,
) -> Result<Alert, StoreError> {
    tx.query_row(
        "SELECT c.brand, m.source, m.item_key, m.url, m.author, m.text, m.published_at, m.verdict, c.deadline
         FROM cases c JOIN mentions m ON m.id = c.mention_id WHERE c.id = ?1",
        [case_id],
        |r| {
            let verdict: Option<Verdict> = serde_json::from_str(&r.get::<_, String>(7)?).ok();
            let verdict = verdict.map_or(
                AlertVerdict {
                    sentiment: crate::classify::Sentiment::Neutral,
                    score: 0.0,
                    complaint: true,
                    rules: vec![],
                    tags: vec![],
                    lang: None,
                    hits: vec![],
                },
                |v| AlertVerdict {
                    sentiment: v.sentiment,
                    score: v.score,
                    complaint: v.complaint,
                    rules: names(&v.rules),
                    tags: names(&v.tags),
                    lang: v.lang.as_deref().map(str::to_string),
                    hits: v.hits,
                },
            );
            Ok(Alert {
                event,
                id: event_id.to_string(),
                case_id,
                brand: r.get(0)?,
                source: r.get(1)?,
                mention: AlertMention {
                    id: r.get(2)?,
                    url: r.get(3)?,
                    author: r.get(4)?,
                    text: r.get(5)?,
                    published_at: from_ms(r.get(6)?),
                },
                verdict,
                deadline: from_ms(r.get(8)?),
                occurred_at,
                closure: closure.clone(),
            })
        },
    )
    .ctx("reading the case for its alert")
}

/// Queues one outbox row per notifier; a row that exists already (same event, same notifier) is left alone.
fn enqueue(
    tx: &Transaction<'_>,
    alert: &Alert,
    notifiers: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(alert).expect("alert serialises");
    for n in notifiers {
        tx.execute(
            "INSERT OR IGNORE INTO outbox (event_id, notifier, case_id, event, payload, state, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
            params![alert.id, n, alert.case_id, alert.event.as_str(), payload, ms(now)],
        )
        .ctx("queueing an alert")?;
    }
    Ok(())
}

/// A verdict's shared names, as the owned strings of the API and alert types.
fn names(list: &[crate::classify::Name]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}
