//! The pipeline: the one task that stores polls. For each poll it drops items already seen, matches brands,
//! classifies, plans cases, and stores everything with the source's cursor in one transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::brand::BrandMatcher;
use crate::classify::Classifier;
use crate::clock::Clock;
use crate::config::Sla;
use crate::mention::Mention;
use crate::store::{Ingest, IngestReport, Item, Matched, Store, StoreError};

/// How long seen items stay remembered after they were last offered.
const FORGET_AFTER: chrono::Duration = chrono::Duration::days(30);

/// A poll handed to the pipeline, with a channel for the result.
pub struct Batch {
    /// The source.
    pub source: String,
    /// The poll's result, ready to store (items not yet matched).
    pub polled: crate::source::Polled,
    /// When the poll happened.
    pub now: DateTime<Utc>,
    /// When the source polls next.
    pub next_poll_at: DateTime<Utc>,
    /// Where to send the outcome.
    pub done: oneshot::Sender<Result<IngestReport, StoreError>>,
}

/// What the pipeline needs, built from the config.
pub struct Pipeline {
    /// The store (write side).
    pub store: Store,
    /// Brands.
    pub brands: BrandMatcher,
    /// Keyword rules.
    pub classifier: Classifier,
    /// SLA policy.
    pub sla: Sla,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Woken when a case opens (the SLA timer).
    pub case_opened: Arc<Notify>,
}

impl Pipeline {
    /// Stores batches until every sender is gone: shutdown drains what is in flight.
    pub async fn run(self, mut rx: mpsc::Receiver<Batch>) {
        let this = Arc::new(self);
        while let Some(batch) = rx.recv().await {
            let me = this.clone();
            let source = batch.source.clone();
            let result = tokio::task::spawn_blocking(move || {
                me.store_batch(batch.source, batch.polled, batch.now, batch.next_poll_at)
            })
            .await
            .expect("pipeline task panicked");
            if let Ok(report) = &result {
                if !report.cases.is_empty() {
                    this.case_opened.notify_one();
                }
                if report.new > 0 {
                    tracing::info!(source = %source, new = report.new, mentions = report.mentions,
                        cases = report.cases.len(), "stored new items");
                }
            }
            let _ = batch.done.send(result);
        }
    }

    /// Matches and classifies the new items of a poll, then stores it.
    pub fn store_batch(
        &self,
        source: String,
        polled: crate::source::Polled,
        now: DateTime<Utc>,
        next_poll_at: DateTime<Utc>,
    ) -> Result<IngestReport, StoreError> {
        let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
        let unseen = self.store.unseen(&source, &keys)?;
        let items = polled
            .mentions
            .into_iter()
            .map(|m| {
                let matched = if unseen.contains(&m.key) {
                    self.assess(&m, now)
                } else {
                    vec![]
                };
                Item {
                    mention: m,
                    matched,
                }
            })
            .collect();
        let forget_before = (!polled.not_modified).then(|| now - FORGET_AFTER);
        self.store.ingest(Ingest {
            source,
            now,
            cursor: polled.cursor,
            next_poll_at,
            items,
            forget_before,
        })
    }

    /// Brand match, classification and case plan of one new mention.
    fn assess(&self, m: &Mention, now: DateTime<Utc>) -> Vec<Matched> {
        let hits = self.brands.find(&m.text, m.author.as_deref());
        if hits.is_empty() {
            return vec![];
        }
        // The platform's language tag when it gave one, else detected from the text.
        let lang = m
            .lang
            .clone()
            .or_else(|| self.classifier.detect_language(&m.text));
        let verdict = self.classifier.classify_in(&m.text, lang.as_deref());
        hits.into_iter()
            .map(|h| {
                let opens = verdict.complaint && !h.own_account && crate::sla::is_fresh(&self.sla, m.posted_at(), now);
                if verdict.complaint && !opens && !h.own_account {
                    tracing::info!(source = %m.source, brand = %h.brand, "complaint is older than sla.max_age; recorded without a case");
                }
                Matched {
                    brand: h.brand,
                    verdict: verdict.clone(),
                    case: opens.then(|| crate::sla::plan(&self.sla, m.posted_at())),
                }
            })
            .collect()
    }
}
