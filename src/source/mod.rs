//! Sources: one module per platform. Each turns a platform's response into [`Mention`]s and a cursor for the next
//! poll. Sources never classify, store or notify; they fetch and normalise.
//!
//! Adding a platform: a new file here, a variant of [`SourceKind`] and one arm in each `match` below.

pub mod feed;

use chrono::{DateTime, Utc};
use std::time::Duration;

use crate::config::KindCtx;
use crate::http::{FetchError, HttpClient, Validators};
use crate::mention::Mention;

/// The platform of a source and its settings.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// RSS 2.0 / Atom / JSON Feed.
    Feed(feed::FeedSource),
}

/// The known kinds, for messages.
pub const KINDS: &[&str] = &["feed"];

/// What a source remembers between polls (kept in the store, so a restart neither re-reads nor skips).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Conditional-GET validators.
    pub validators: Validators,
    /// A platform cursor (e.g. a "since" id), when the platform has one.
    pub position: Option<String>,
}

/// What one poll needs.
pub struct PollCtx<'a> {
    /// The source's name, for messages.
    pub name: &'a str,
    /// The shared polite client.
    pub http: &'a HttpClient,
    /// Total deadline per request.
    pub timeout: Duration,
    /// Body cap per response.
    pub max_body: u64,
    /// Where the last successful poll left off.
    pub cursor: &'a Cursor,
    /// Fetch time stamped on every mention.
    pub now: DateTime<Utc>,
}

/// The result of a successful poll.
#[derive(Debug)]
pub struct Polled {
    /// Every item currently offered (dedup happens later, in the store).
    pub mentions: Vec<Mention>,
    /// The cursor to store with them.
    pub cursor: Cursor,
    /// True when the server said nothing changed (304): the seen-set must not be pruned on this poll's account.
    pub not_modified: bool,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The response is not what the platform should send (HTML instead of a feed, say).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The response could not be parsed.
    #[error("cannot parse the response: {0}")]
    Parse(String),
}

impl SourceError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SourceError::Fetch(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl SourceKind {
    /// Reads the kind-specific keys of a `[[source]]`.
    pub fn from_config(
        kind: &str,
        options: &toml::Table,
        ctx: &mut KindCtx<'_>,
    ) -> Option<SourceKind> {
        match kind {
            "feed" => feed::FeedSource::from_config(options, ctx).map(SourceKind::Feed),
            other => {
                ctx.problem(
                    "kind",
                    format!(
                        "unknown source kind {other:?} (known: {})",
                        KINDS.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// The kind's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Feed(_) => "feed",
        }
    }

    /// What is watched, for `check-config` and logs; never shows secrets.
    pub fn describe(&self) -> String {
        match self {
            SourceKind::Feed(f) => f.describe(),
        }
    }

    /// Fetches and normalises once.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        match self {
            SourceKind::Feed(f) => f.poll(ctx).await,
        }
    }
}
