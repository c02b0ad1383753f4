//! The scheduler's unit: one task per source, polling on its interval, backing off on failure, and handing
//! every successful poll to the pipeline. A failing source only ever delays itself.
//!
//! After each stored poll, a source whose platform shows threads looks for the brand's reply to its open cases
//! (a few per poll, the longest-unchecked first, through the same polite client), and a reply closes its case.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::SourceSpec;
use crate::http::HttpClient;
use crate::pipeline::Batch;
use crate::source::{PollCtx, ReplyCheck};
use crate::store::{AckError, Closing, Store};

/// Longest wait between polls of a failing source.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Least wait after the platform refused our credentials: retrying sooner cannot help, and a new config (SIGHUP)
/// starts the source afresh anyway.
const AUTH_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Most reply checks after one poll, so many open cases never flood a platform; the rest wait for the next poll.
const REPLY_CHECKS_PER_POLL: usize = 20;

/// When an open case's thread was last searched, and how that search failed, if it did.
struct Checked {
    at: Instant,
    error: Option<String>,
}

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
    /// Each brand's own accounts, whose answers close its cases.
    pub accounts: Arc<HashMap<String, Vec<String>>>,
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
        // When each open case's thread was last searched (in memory: a restart searches them all again).
        let mut checked: HashMap<i64, Checked> = HashMap::new();
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
            let ctx = self.ctx(&cursor, now);
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
                        if self.spec.kind.detects_replies() {
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = self.check_replies(&cursor, &mut checked) => {}
                            }
                        }
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
                    let mut wait = backoff.max(e.retry_after().unwrap_or_default());
                    if e.needs_operator() {
                        wait = wait.max(AUTH_BACKOFF);
                    }
                    let retry_in =
                        humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)));
                    if last_error.as_deref() == Some(&message) {
                        tracing::debug!(source = %self.spec.name, failures, error = %message, "poll failed again");
                    } else if e.needs_operator() {
                        // Once, not once a poll: the same refusal again is only a debug line.
                        tracing::error!(source = %self.spec.name, kind = self.spec.kind.name(), failures,
                            retry_in = %retry_in, error = %message, "the platform refused the source's credentials; fix them and reload");
                    } else {
                        tracing::warn!(source = %self.spec.name, kind = self.spec.kind.name(), failures,
                            retry_in = %retry_in, error = %message, "poll failed; backing off");
                    }
                    self.record_failure(&message, now, wait).await;
                    last_error = Some(message);
                    wait
                }
            };
        }
    }

    fn ctx<'a>(
        &'a self,
        cursor: &'a crate::source::Cursor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> PollCtx<'a> {
        PollCtx {
            name: &self.spec.name,
            http: &self.http,
            timeout: self.spec.timeout,
            max_body: self.spec.max_body,
            cursor,
            now,
            limit: self.spec.limit,
        }
    }

    /// Searches the threads of this source's open cases for the brand's reply, the longest-unchecked first, and
    /// closes each case that has one. A failed check is logged and tried again after the next poll.
    async fn check_replies(
        &self,
        cursor: &crate::source::Cursor,
        checked: &mut HashMap<i64, Checked>,
    ) {
        let name = self.spec.name.clone();
        let open = match self.store.call(move |s| s.open_threads(&name)).await {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(source = %self.spec.name, error = %e, "cannot list open cases for reply checks");
                return;
            }
        };
        checked.retain(|id, _| open.iter().any(|o| o.case_id == *id));
        let mut due: Vec<_> = open
            .into_iter()
            .filter(|o| self.accounts.get(&o.brand).is_some_and(|a| !a.is_empty()))
            .collect();
        due.sort_by_key(|o| checked.get(&o.case_id).map(|c| c.at));
        for open in due.into_iter().take(REPLY_CHECKS_PER_POLL) {
            let last_error = checked.remove(&open.case_id).and_then(|c| c.error);
            let mark = checked.entry(open.case_id).or_insert(Checked {
                at: Instant::now(),
                error: None,
            });
            let check = ReplyCheck {
                case_id: open.case_id,
                key: open.key,
                thread: open.thread,
                posted_at: open.posted_at,
                accounts: self.accounts.get(&open.brand).cloned().unwrap_or_default(),
            };
            let now = self.clock.now();
            let reply = match self
                .spec
                .kind
                .find_reply(&self.ctx(cursor, now), &check)
                .await
            {
                Ok(Some(reply)) => reply,
                Ok(None) => continue,
                Err(e) => {
                    let message = e.to_string();
                    // Once per case and error, not once a poll: a deleted complaint fails the same way for ever.
                    if last_error.as_deref() == Some(&message) {
                        tracing::debug!(source = %self.spec.name, case = check.case_id, error = %message,
                            "reply check failed again");
                    } else {
                        tracing::warn!(source = %self.spec.name, case = check.case_id, error = %message,
                            "reply check failed; trying again after the next poll");
                    }
                    mark.error = Some(message);
                    if e.retry_after().is_some() || e.needs_operator() {
                        return;
                    }
                    continue;
                }
            };
            let case_id = check.case_id;
            let found = reply.clone();
            let closed = self
                .store
                .call(move |s| s.close_case(case_id, Closing::Reply(&found), now))
                .await;
            match closed {
                Ok(c) => {
                    let minutes = (reply.at - check.posted_at).num_seconds() as f64 / 60.0;
                    tracing::info!(source = %self.spec.name, case = case_id, replied_by = %reply.author,
                        minutes_to_reply = format!("{minutes:.1}"), notified = c.notified.len(),
                        "the brand replied; case closed");
                }
                Err(AckError::AlreadyClosed { .. }) => {}
                Err(e) => {
                    tracing::error!(source = %self.spec.name, case = case_id, error = %e, "cannot close the answered case")
                }
            }
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
