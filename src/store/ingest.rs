//! Storing a poll: the seen-set, the source's cursor, new mentions and the cases they open, in one transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ctx, Store, StoreError, ms, write_tx};
use crate::classify::Verdict;
use crate::mention::Mention;
use crate::sla::CasePlan;
use crate::source::Cursor;

/// One successful poll, ready to store.
pub struct Ingest {
    /// The source's name.
    pub source: String,
    /// When it was fetched.
    pub now: DateTime<Utc>,
    /// Where it left off.
    pub cursor: Cursor,
    /// When the next poll is due.
    pub next_poll_at: DateTime<Utc>,
    /// Every item the source offered, new or not (304 → none).
    pub items: Vec<Item>,
    /// Seen entries not offered since this time are forgotten; `None` on a 304, which proves nothing.
    pub forget_before: Option<DateTime<Utc>>,
}

/// An item and, when it is new, what the pipeline made of it.
pub struct Item {
    /// The post.
    pub mention: Mention,
    /// Brands it is about, with the verdict and the case plan when it opens a case.
    pub matched: Vec<Matched>,
}

/// A mention matched to one brand.
pub struct Matched {
    /// The brand.
    pub brand: String,
    /// The classifier's verdict.
    pub verdict: Verdict,
    /// The case to open, when it is a complaint.
    pub case: Option<CasePlan>,
}

/// What a stored poll changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Items not seen before.
    pub new: usize,
    /// Mentions stored (matched a brand).
    pub mentions: usize,
    /// Ids of cases opened.
    pub cases: Vec<i64>,
}

impl Store {
    /// The keys among `keys` that this source has never offered before.
    pub fn unseen(&self, source: &str, keys: &[&str]) -> Result<HashSet<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM seen WHERE source = ?1 AND item_key = ?2")
            .ctx("preparing seen")?;
        let mut out = HashSet::new();
        for k in keys {
            if stmt
                .query_row(params![source, k], |_| Ok(()))
                .optional()
                .ctx("reading seen")?
                .is_none()
            {
                out.insert((*k).to_string());
            }
        }
        Ok(out)
    }

    /// Stores a poll. Items already seen only refresh their last-seen time; new ones are stored with their cases.
    pub fn ingest(&self, batch: Ingest) -> Result<IngestReport, StoreError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        let now = ms(batch.now);
        let mut report = IngestReport::default();
        // A feed may list one item twice; it is new once.
        let mut handled = HashSet::new();
        for item in &batch.items {
            tx.prepare_cached(
                "INSERT INTO seen (source, item_key, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT(source, item_key) DO UPDATE SET last_seen = ?3",
            )
            .ctx("preparing seen insert")?
            .execute(params![batch.source, item.mention.key, now])
            .ctx("recording seen item")?;
            let is_new = first_seen_now(&tx, &batch.source, &item.mention.key, now)?;
            if !is_new || !handled.insert(item.mention.key.as_str()) {
                continue;
            }
            report.new += 1;
            for m in &item.matched {
                let mention_id = insert_mention(&tx, &item.mention, m)?;
                report.mentions += 1;
                if let Some(plan) = &m.case {
                    report
                        .cases
                        .push(open_case(&tx, mention_id, &m.brand, now, plan)?);
                }
            }
        }
        if let Some(before) = batch.forget_before {
            tx.execute(
                "DELETE FROM seen WHERE source = ?1 AND last_seen < ?2",
                params![batch.source, ms(before)],
            )
            .ctx("pruning seen items")?;
        }
        tx.execute(
            "INSERT INTO source_state (name, etag, last_modified, position, failures, last_error, last_ok_at, next_poll_at)
             VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET etag = ?2, last_modified = ?3, position = ?4, failures = 0,
                 last_error = NULL, last_ok_at = ?5, next_poll_at = ?6",
            params![
                batch.source,
                batch.cursor.validators.etag,
                batch.cursor.validators.last_modified,
                batch.cursor.position,
                now,
                ms(batch.next_poll_at)
            ],
        )
        .ctx("saving the source cursor")?;
        tx.commit().ctx("committing ingest")?;
        Ok(report)
    }
}

/// The upsert reports one change either way; the item is new when its first sighting is this poll.
fn first_seen_now(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    tx.query_row(
        "SELECT first_seen = ?3 FROM seen WHERE source = ?1 AND item_key = ?2",
        params![source, key, now],
        |r| r.get(0),
    )
    .ctx("reading seen item")
}

fn insert_mention(
    tx: &rusqlite::Transaction<'_>,
    m: &Mention,
    matched: &Matched,
) -> Result<i64, StoreError> {
    let verdict = serde_json::to_string(&matched.verdict).expect("verdict serialises");
    tx.query_row(
        "INSERT INTO mentions (source, item_key, url, author, text, published_at, fetched_at, lang, brand, verdict, thread)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        params![
            m.source,
            m.key,
            m.url,
            m.author,
            m.text,
            ms(m.posted_at()),
            ms(m.fetched_at),
            matched.verdict.lang.as_deref().or(m.lang.as_deref()),
            matched.brand,
            verdict,
            m.thread
        ],
        |r| r.get(0),
    )
    .ctx("storing a mention")
}

fn open_case(
    tx: &rusqlite::Transaction<'_>,
    mention_id: i64,
    brand: &str,
    now: i64,
    plan: &CasePlan,
) -> Result<i64, StoreError> {
    let case_id: i64 = tx
        .query_row(
            "INSERT INTO cases (mention_id, brand, opened_at, posted_at, deadline, state) VALUES (?1, ?2, ?3, ?4, ?5, 'open')
             RETURNING id",
            params![mention_id, brand, now, ms(plan.posted_at), ms(plan.deadline)],
            |r| r.get(0),
        )
        .ctx("opening a case")?;
    for t in &plan.tiers {
        tx.execute(
            "INSERT INTO case_tiers (case_id, tier, event, due_at, notify, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![case_id, t.tier as i64, t.event.as_str(), ms(t.due_at), serde_json::to_string(&t.notify).expect("names")],
        )
        .ctx("planning a tier")?;
    }
    Ok(case_id)
}
