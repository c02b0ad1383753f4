//! Sources: one module per platform. Each turns a platform's response into [`Mention`]s and a cursor for the next
//! poll, and, where the platform shows threads, looks for the brand's reply to a complaint. Sources never
//! classify, store or notify; they fetch and normalise.
//!
//! Every kind has the same small shape: a settings struct with `from_config` (validation), `describe`, `poll`
//! and, for kinds with threads, `find_reply`. Platform calls go through [`api`], which uses the shared polite
//! client under the platform's documented request budget.
//!
//! Adding a platform: a new file here, a variant of [`SourceKind`], its name in [`KINDS`] and one arm in each
//! `match` below.

pub mod api;
pub mod bluesky;
pub mod discourse;
pub mod feed;
pub mod hackernews;
pub mod lemmy;
pub mod mastodon;
pub mod reddit;

use chrono::{DateTime, Utc};
use std::time::Duration;

use crate::config::KindCtx;
use crate::http::{FetchError, HttpClient, RateLimit, Validators};
use crate::mention::Mention;

/// The platform of a source and its settings.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// RSS 2.0 / Atom / JSON Feed.
    Feed(feed::FeedSource),
    /// Hacker News stories and comments (Algolia search).
    HackerNews(hackernews::HackerNewsSource),
    /// Mastodon hashtag timelines and status search on one instance.
    Mastodon(mastodon::MastodonSource),
    /// Lemmy posts and comments (one instance's search API).
    Lemmy(lemmy::LemmySource),
    /// Reddit posts and comments (OAuth API): subreddits' newest items and/or a search.
    Reddit(reddit::RedditSource),
    /// Discourse forums: latest posts and/or search.
    Discourse(discourse::DiscourseSource),
    /// Bluesky posts (AT Protocol search, logged in with an app password).
    Bluesky(bluesky::BlueskySource),
}

/// The known kinds, for messages.
pub const KINDS: &[&str] = &[
    "feed",
    "hackernews",
    "mastodon",
    "bluesky",
    "discourse",
    "reddit",
    "lemmy",
];

/// What a source remembers between polls (kept in the store, so a restart neither re-reads nor skips).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Conditional-GET validators.
    pub validators: Validators,
    /// A platform cursor (e.g. a "since" id), when the platform has one.
    pub position: Option<String>,
}

/// What one poll (or reply check) needs.
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
    /// The platform's request budget for its host (`rate_limit`, or the kind's documented default).
    pub limit: Option<RateLimit>,
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

impl Polled {
    /// A poll that fetched something new: its mentions and the platform cursor to store with them.
    pub fn fresh(mentions: Vec<Mention>, position: Option<String>) -> Polled {
        Polled {
            mentions,
            cursor: Cursor {
                validators: Validators::default(),
                position,
            },
            not_modified: false,
        }
    }
}

/// An open case whose thread is to be searched for the brand's reply.
#[derive(Debug, Clone)]
pub struct ReplyCheck {
    /// The case.
    pub case_id: i64,
    /// The complaint's platform id ([`Mention::key`]).
    pub key: String,
    /// The complaint's [`Mention::thread`].
    pub thread: String,
    /// The complaint's own time: only a later post can answer it.
    pub posted_at: DateTime<Utc>,
    /// The brand's own accounts, as configured.
    pub accounts: Vec<String>,
}

impl ReplyCheck {
    /// The complaint's thread reference, as the source wrote it (JSON).
    pub fn thread_ref<T: serde::de::DeserializeOwned>(&self) -> Result<T, SourceError> {
        serde_json::from_str(&self.thread).map_err(|e| {
            SourceError::Parse(format!(
                "case {}: unreadable thread reference {:?}: {e}",
                self.case_id, self.thread
            ))
        })
    }
}

/// The brand's reply, found in a complaint's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundReply {
    /// The replying account, as the platform names it.
    pub author: String,
    /// When the reply was posted (the platform's time).
    pub at: DateTime<Utc>,
    /// Link to the reply, if the platform has one.
    pub url: Option<String>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The platform refused our credentials (401) or our access (403): an operator must act.
    #[error("HTTP {status}: the platform refused {}; {hint}", if *.status == 401 { "our credentials" } else { "access" })]
    Auth {
        /// 401 or 403.
        status: u16,
        /// What to check, naming the config keys.
        hint: String,
    },
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

    /// Whether an operator must act (credentials or access refused) rather than wait.
    pub fn needs_operator(&self) -> bool {
        matches!(self, SourceError::Auth { .. })
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
            "hackernews" => {
                hackernews::HackerNewsSource::from_config(options, ctx).map(SourceKind::HackerNews)
            }
            "mastodon" => {
                mastodon::MastodonSource::from_config(options, ctx).map(SourceKind::Mastodon)
            }
            "lemmy" => lemmy::LemmySource::from_config(options, ctx).map(SourceKind::Lemmy),
            "reddit" => reddit::RedditSource::from_config(options, ctx).map(SourceKind::Reddit),
            "discourse" => {
                discourse::DiscourseSource::from_config(options, ctx).map(SourceKind::Discourse)
            }
            "bluesky" => bluesky::BlueskySource::from_config(options, ctx).map(SourceKind::Bluesky),
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
            SourceKind::HackerNews(_) => "hackernews",
            SourceKind::Mastodon(_) => "mastodon",
            SourceKind::Lemmy(_) => "lemmy",
            SourceKind::Reddit(_) => "reddit",
            SourceKind::Discourse(_) => "discourse",
            SourceKind::Bluesky(_) => "bluesky",
        }
    }

    /// What is watched, for `check-config` and logs; never shows secrets.
    pub fn describe(&self) -> String {
        match self {
            SourceKind::Feed(f) => f.describe(),
            SourceKind::HackerNews(s) => s.describe(),
            SourceKind::Mastodon(s) => s.describe(),
            SourceKind::Lemmy(s) => s.describe(),
            SourceKind::Reddit(s) => s.describe(),
            SourceKind::Discourse(s) => s.describe(),
            SourceKind::Bluesky(s) => s.describe(),
        }
    }

    /// The platform's documented request budget, used when the source sets no `rate_limit`.
    pub fn default_limit(&self) -> Option<RateLimit> {
        match self {
            SourceKind::Feed(_) => None,
            SourceKind::HackerNews(_) => Some(hackernews::DEFAULT_LIMIT),
            SourceKind::Mastodon(_) => Some(mastodon::DEFAULT_LIMIT),
            SourceKind::Lemmy(_) => Some(lemmy::DEFAULT_LIMIT),
            SourceKind::Reddit(_) => Some(reddit::DEFAULT_LIMIT),
            SourceKind::Discourse(s) => Some(s.default_limit()),
            SourceKind::Bluesky(_) => Some(bluesky::DEFAULT_LIMIT),
        }
    }

    /// Whether this kind can see the brand's replies (so open cases get reply checks).
    pub fn detects_replies(&self) -> bool {
        match self {
            SourceKind::Feed(_) => false,
            SourceKind::HackerNews(_) => true,
            SourceKind::Mastodon(_) => true,
            SourceKind::Lemmy(_) => true,
            SourceKind::Reddit(_) => true,
            SourceKind::Discourse(_) => true,
            SourceKind::Bluesky(_) => true,
        }
    }

    /// Fetches and normalises once.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        match self {
            SourceKind::Feed(f) => f.poll(ctx).await,
            SourceKind::HackerNews(s) => s.poll(ctx).await,
            SourceKind::Mastodon(s) => s.poll(ctx).await,
            SourceKind::Lemmy(s) => s.poll(ctx).await,
            SourceKind::Reddit(s) => s.poll(ctx).await,
            SourceKind::Discourse(s) => s.poll(ctx).await,
            SourceKind::Bluesky(s) => s.poll(ctx).await,
        }
    }

    /// Looks in a complaint's thread for a post by one of the brand's accounts, made after the complaint.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        match self {
            SourceKind::Feed(_) => Ok(None),
            SourceKind::HackerNews(s) => s.find_reply(ctx, check).await,
            SourceKind::Mastodon(s) => s.find_reply(ctx, check).await,
            SourceKind::Lemmy(s) => s.find_reply(ctx, check).await,
            SourceKind::Reddit(s) => s.find_reply(ctx, check).await,
            SourceKind::Discourse(s) => s.find_reply(ctx, check).await,
            SourceKind::Bluesky(s) => s.find_reply(ctx, check).await,
        }
    }
}

/// A platform's post time: RFC 3339 with `Z` or an offset, or without a zone (older Lemmy), which is UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Whether `handle` is one of `accounts`: case-insensitive, a leading `@` ignored on either side.
pub fn is_account(handle: &str, accounts: &[String]) -> bool {
    let handle = handle.trim().trim_start_matches('@');
    !handle.is_empty()
        && accounts.iter().any(|a| {
            a.trim()
                .trim_start_matches('@')
                .eq_ignore_ascii_case(handle)
        })
}

/// Whether a fediverse account (Mastodon, Lemmy) is one of `accounts`: a configured `user@instance` matches the
/// full handle from anywhere; a configured bare `user` matches only the account of that name on the instance we ask
/// (`local`), so a namesake elsewhere cannot close a case.
pub fn is_federated_account(
    user: &str,
    full_handle: &str,
    local: bool,
    accounts: &[String],
) -> bool {
    is_account(full_handle, accounts) || (local && is_account(user, accounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_match_without_case_or_at_sign() {
        let accounts = vec![
            "NorthwindHelp".to_string(),
            "@northwind.bsky.social".to_string(),
        ];
        assert!(is_account("northwindhelp", &accounts));
        assert!(is_account("@NorthwindHelp", &accounts));
        assert!(is_account("Northwind.Bsky.Social", &accounts));
        assert!(!is_account("NorthwindHelpFan", &accounts));
        assert!(!is_account("", &accounts));
    }
}
