//! Lemmy, through one instance's v3 API (Lemmy 0.19.x): posts and comments matching a query, newest first.
//!
//! Each poll asks `search` (`sort=New`) from page 1 on, and goes on to the next page only while a page is full and
//! all of it is newer than the cursor (at most `max_pages`). The cursor is the newest `published` time seen; a poll
//! keeps items newer than the cursor less a minute (federation and indexing lag; the store drops repeats). Post and
//! comment ids are the instance's own, so a mention's key and URL are its `ap_id` (the ActivityPub id, the same on
//! every instance) while its thread keeps the local ids that `find_reply` asks this instance about.
//!
//! A complaint's thread is its post (and comment): the brand's reply is a comment by one of its accounts in that
//! post, and for a comment complaint, one whose `path` (`0.<ancestors>.<own id>`) passes through the complaint.
//!
//! Language ids are the instance's own: they are mapped to codes with the instance's `/api/v3/site` list, fetched
//! once; without it, mentions carry no language and the classifier detects one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError, parse_time};
use crate::config::KindCtx;
use crate::http::{FetchError, RateLimit};
use crate::mention::Mention;

/// Lemmy's default search limit per IP: 60 requests in 10 minutes (`local_site_rate_limit.search`). General reads
/// allow 180 a minute, but one budget covers every call to the host, so the tighter one is the default.
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(60, Duration::from_secs(600));

/// Items per page: the most Lemmy returns.
const PAGE_SIZE: usize = 50;

/// Overlap with the previous poll, for items that arrive late by federation.
const OVERLAP_SECS: i64 = 60;

const AUTH_HINT: &str = "check the source's base_url and community (public Lemmy search needs no credentials: the \
                         instance refuses anonymous API calls or this address)";

/// The instance's language ids and codes: `None` until asked; empty when the instance gave none.
type Languages = Arc<Mutex<Option<Arc<HashMap<i64, String>>>>>;

/// A `lemmy` source's settings.
#[derive(Debug, Clone)]
pub struct LemmySource {
    base: url::Url,
    query: String,
    /// `All`, `Posts` or `Comments`, as Lemmy spells them.
    search_type: &'static str,
    community: Option<String>,
    max_pages: u32,
    /// Fetched on first need, kept for the life of the source.
    languages: Languages,
}

/// `[[source]]` keys of kind `lemmy`.
#[derive(Deserialize)]
struct Options {
    /// The Lemmy instance whose search API is asked, e.g. `"https://lemmy.world"` (required).
    base_url: Option<String>,
    /// Words to search for, e.g. `"Northwind"` (required).
    query: Option<String>,
    /// What to search: `"All"` (default: posts and comments), `"Posts"` or `"Comments"`.
    #[serde(rename = "type")]
    search_type: Option<String>,
    /// Only this community, e.g. `"travel"` or `"travel@lemmy.example"`; default: every community the instance
    /// knows.
    community: Option<String>,
    /// Most result pages (50 posts and 50 comments each) per poll; default 3.
    max_pages: Option<u32>,
}

impl LemmySource {
    /// Validates the `lemmy` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<LemmySource> {
        let o: Options = ctx.read("lemmy", options)?;
        let query = o.query.filter(|q| !q.trim().is_empty());
        if query.is_none() {
            ctx.problem("query", "missing `query`: the words to search Lemmy for");
        }
        let base = match o.base_url.as_deref() {
            Some(b) => api::base_url(Some(b), "", ctx),
            None => {
                ctx.problem(
                    "base_url",
                    "missing `base_url`: the Lemmy instance to search, e.g. \"https://lemmy.world\"",
                );
                None
            }
        };
        let search_type = match o.search_type.as_deref().map(str::to_ascii_lowercase) {
            None => Some("All"),
            Some(t) if t == "all" => Some("All"),
            Some(t) if t == "posts" => Some("Posts"),
            Some(t) if t == "comments" => Some("Comments"),
            Some(_) => {
                ctx.problem(
                    "type",
                    format!(
                        "unknown type {:?} (use \"All\", \"Posts\" or \"Comments\")",
                        o.search_type.unwrap_or_default()
                    ),
                );
                None
            }
        };
        let community = o.community.filter(|c| !c.trim().is_empty());
        if o.max_pages == Some(0) {
            ctx.problem("max_pages", "must be at least 1");
        }
        Some(LemmySource {
            base: base?,
            query: query?,
            search_type: search_type?,
            community: community.map(|c| c.trim().trim_start_matches('!').to_string()),
            max_pages: o.max_pages.unwrap_or(3).max(1),
            languages: Languages::default(),
        })
    }

    /// The query, what is searched, and the instance.
    pub fn describe(&self) -> String {
        let within = self
            .community
            .as_deref()
            .map(|c| format!(" in !{c}"))
            .unwrap_or_default();
        format!(
            "Lemmy search {:?} ({}){within} at {}",
            self.query, self.search_type, self.base
        )
    }

    /// Fetches posts and comments published since the last poll.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let since = ctx.cursor.position.as_deref().and_then(parse_time);
        let cutoff = since.map(|s| s - chrono::Duration::seconds(OVERLAP_SECS));
        let mut entries: Vec<Entry> = Vec::new();
        let mut keys = HashSet::new();
        let mut newest = since;
        for page in 1..=self.max_pages {
            let found: SearchResponse = self.search(ctx, page).await?;
            let more = goes_on(found.posts.iter().map(|p| &p.post.published), since)
                || goes_on(found.comments.iter().map(|c| &c.comment.published), since);
            let page_entries = found
                .posts
                .iter()
                .filter_map(PostView::entry)
                .chain(found.comments.iter().filter_map(CommentView::entry));
            for e in page_entries {
                if let Some(p) = e.published {
                    newest = newest.max(Some(p.min(ctx.now)));
                }
                let fresh = match (cutoff, e.published) {
                    (Some(c), Some(p)) => p > c,
                    _ => true,
                };
                if fresh && keys.insert(e.key.clone()) {
                    entries.push(e);
                }
            }
            if !more {
                break;
            }
        }
        let languages = if entries.iter().any(|e| e.language_id > 0) {
            self.languages(ctx).await
        } else {
            Arc::default()
        };
        let mentions = entries
            .into_iter()
            .map(|e| e.into_mention(ctx, &languages))
            .collect();
        Ok(Polled::fresh(
            mentions,
            newest.map(|n| n.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        ))
    }

    async fn search(&self, ctx: &PollCtx<'_>, page: u32) -> Result<SearchResponse, SourceError> {
        let page = page.to_string();
        let limit = PAGE_SIZE.to_string();
        let mut query = vec![
            ("q", self.query.as_str()),
            ("type_", self.search_type),
            ("sort", "New"),
            ("listing_type", "All"),
            ("limit", limit.as_str()),
            ("page", page.as_str()),
        ];
        if let Some(c) = &self.community {
            query.push(("community_name", c));
        }
        let url = api::endpoint(&self.base, "api/v3/search", &query);
        get(ctx, &url, "check the source's query, type and community").await
    }

    /// The instance's language list, asked once; an instance that will not tell leaves mentions untagged.
    async fn languages(&self, ctx: &PollCtx<'_>) -> Arc<HashMap<i64, String>> {
        if let Some(known) = self.lock_languages().clone() {
            return known;
        }
        let url = api::endpoint(&self.base, "api/v3/site", &[]);
        let found = match get::<SiteResponse>(ctx, &url, "is base_url a Lemmy instance?").await {
            Ok(site) => site
                .all_languages
                .into_iter()
                .filter(|l| l.id > 0 && l.code != "und")
                .map(|l| (l.id, l.code))
                .collect(),
            Err(SourceError::Fetch(e)) if e.is_transient() => {
                tracing::debug!(source = ctx.name, error = %e, "the instance's language list is not available now; asking again next poll");
                return Arc::default();
            }
            Err(e) => {
                tracing::info!(source = ctx.name, error = %e, "the instance gives no language list; its mentions carry no language");
                HashMap::new()
            }
        };
        let found = Arc::new(found);
        *self.lock_languages() = Some(found.clone());
        found
    }

    fn lock_languages(&self) -> std::sync::MutexGuard<'_, Option<Arc<HashMap<i64, String>>>> {
        self.languages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks for the brand's comment in the complaint's post, below the complaint when it is a comment.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let thread: Thread = check.thread_ref()?;
        let post_id = thread.post_id.to_string();
        let parent_id = thread.comment_id.map(|c| c.to_string());
        let mut query = vec![
            ("post_id", post_id.as_str()),
            ("sort", "New"),
            ("max_depth", "8"),
            ("limit", "50"),
            ("type_", "All"),
        ];
        if let Some(p) = &parent_id {
            // The complaint's subtree, so a busy post cannot push the reply out of the answer.
            query.push(("parent_id", p));
        }
        let url = api::endpoint(&self.base, "api/v3/comment/list", &query);
        let list: CommentList = get(ctx, &url, "the complaint's post may be gone").await?;
        let mut found: Option<FoundReply> = None;
        for c in &list.comments {
            let Some(at) = parse_time(&c.comment.published) else {
                continue;
            };
            let answers = match thread.comment_id {
                Some(complaint) => c.comment.id != complaint && c.comment.below(complaint),
                None => c.comment.post_id == thread.post_id,
            };
            let handle = c.creator.handle();
            if answers
                && !c.comment.deleted
                && !c.comment.removed
                && at >= check.posted_at
                && c.creator.is_one_of(&check.accounts)
                && found.as_ref().is_none_or(|f| at < f.at)
            {
                found = Some(FoundReply {
                    author: handle,
                    at,
                    url: Some(c.comment.ap_id.clone()),
                });
            }
        }
        Ok(found)
    }
}

/// GETs a Lemmy endpoint. Lemmy says what went wrong only as `{"error": "..."}`: in a 200 body that is named here;
/// a 400 or 404 is named with Lemmy's error code when it sent one, and `what` to check.
async fn get<T: DeserializeOwned>(
    ctx: &PollCtx<'_>,
    url: &url::Url,
    what: &str,
) -> Result<T, SourceError> {
    let endpoint = url.path();
    let value: serde_json::Value = api::get_json(ctx, url, &Headers::new(), AUTH_HINT)
        .await
        .map_err(|e| match e {
            SourceError::Fetch(FetchError::Status {
                status: 400,
                detail,
                ..
            }) => SourceError::Parse(format!(
                "{endpoint}: the instance refused the request (HTTP 400{}); {what}",
                detail.map(|d| format!(", Lemmy error {d:?}")).unwrap_or_default()
            )),
            SourceError::Fetch(FetchError::Status { status: 404, .. }) => SourceError::Parse(format!(
                "{endpoint}: not found (HTTP 404); is base_url a Lemmy instance with API v3 (Lemmy 0.19)?"
            )),
            other => other,
        })?;
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        return Err(SourceError::Parse(format!(
            "{endpoint}: Lemmy answered error {error:?}; {what}"
        )));
    }
    serde_json::from_value(value).map_err(|e| SourceError::Parse(format!("{endpoint}: {e}")))
}

/// Whether the next page may hold more: this one is full and all of it is newer than the cursor.
fn goes_on<'a>(
    published: impl ExactSizeIterator<Item = &'a String>,
    since: Option<DateTime<Utc>>,
) -> bool {
    if published.len() < PAGE_SIZE {
        return false;
    }
    let oldest = published.filter_map(|p| parse_time(p)).min();
    match (since, oldest) {
        (Some(s), Some(o)) => o > s,
        _ => true,
    }
}

/// Markdown as written, with any HTML in it stripped and entities decoded. A `<` that opens no tag (`<3`, `a < b`)
/// is text.
fn plain(text: &str) -> String {
    let has_tag = text
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'));
    if has_tag {
        crate::html::to_text(text)
    } else {
        crate::html::to_text(&text.replace('<', "&lt;"))
    }
}

/// Where a mention sits, for `find_reply`: the instance's own ids.
#[derive(Serialize, Deserialize)]
struct Thread {
    post_id: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    comment_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    path: Option<String>,
}

/// A post or comment, before it becomes a mention.
struct Entry {
    key: String,
    author: String,
    text: String,
    published: Option<DateTime<Utc>>,
    language_id: i64,
    thread: Thread,
}

impl Entry {
    fn into_mention(self, ctx: &PollCtx<'_>, languages: &HashMap<i64, String>) -> Mention {
        Mention {
            source: ctx.name.to_string(),
            url: Some(self.key.clone()),
            key: self.key,
            author: Some(self.author),
            text: self.text,
            published_at: self.published,
            fetched_at: ctx.now,
            lang: languages.get(&self.language_id).cloned(),
            thread: Some(serde_json::to_string(&self.thread).expect("a thread serialises")),
        }
    }
}

/// `search` answers (`SearchResponse`); communities and users are not mentions.
#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    posts: Vec<PostView>,
    #[serde(default)]
    comments: Vec<CommentView>,
}

/// `PostView`: the post with its creator (community and counts unused).
#[derive(Deserialize)]
struct PostView {
    post: Post,
    creator: Person,
}

#[derive(Deserialize)]
struct Post {
    id: i64,
    name: String,
    body: Option<String>,
    ap_id: String,
    published: String,
    #[serde(default)]
    language_id: i64,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    removed: bool,
}

impl PostView {
    fn entry(&self) -> Option<Entry> {
        let p = &self.post;
        if p.deleted || p.removed {
            return None;
        }
        let title = plain(&p.name);
        let body = p.body.as_deref().map(plain).unwrap_or_default();
        let text = match (title.is_empty(), body.is_empty()) {
            (false, false) => format!("{title}\n{body}"),
            (false, true) => title,
            _ => body,
        };
        Some(Entry {
            key: p.ap_id.clone(),
            author: self.creator.handle(),
            text,
            published: parse_time(&p.published),
            language_id: p.language_id,
            thread: Thread {
                post_id: p.id,
                comment_id: None,
                path: None,
            },
        })
    }
}

/// `CommentView`: the comment with its creator (post, community and counts unused).
#[derive(Deserialize)]
struct CommentView {
    comment: Comment,
    creator: Person,
}

#[derive(Deserialize)]
struct Comment {
    id: i64,
    post_id: i64,
    content: String,
    /// `0.<ancestor ids>.<own id>`.
    path: String,
    ap_id: String,
    published: String,
    #[serde(default)]
    language_id: i64,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    removed: bool,
}

impl Comment {
    /// Whether `ancestor` is on this comment's path.
    fn below(&self, ancestor: i64) -> bool {
        self.path
            .split('.')
            .any(|id| id.parse::<i64>() == Ok(ancestor))
    }
}

impl CommentView {
    fn entry(&self) -> Option<Entry> {
        let c = &self.comment;
        if c.deleted || c.removed {
            return None;
        }
        Some(Entry {
            key: c.ap_id.clone(),
            author: self.creator.handle(),
            text: plain(&c.content),
            published: parse_time(&c.published),
            language_id: c.language_id,
            thread: Thread {
                post_id: c.post_id,
                comment_id: Some(c.id),
                path: Some(c.path.clone()),
            },
        })
    }
}

/// A `Person` (creator).
#[derive(Deserialize)]
struct Person {
    name: String,
    /// The account's ActivityPub id, e.g. `https://lemmy.example/u/NorthwindHelp`: its host is the home instance.
    actor_id: Option<String>,
    /// Whether the account lives on the instance we ask.
    #[serde(default)]
    local: bool,
}

impl Person {
    /// Whether this is one of the brand's `accounts`.
    fn is_one_of(&self, accounts: &[String]) -> bool {
        super::is_federated_account(&self.name, &self.handle(), self.local, accounts)
    }

    /// `name@home-instance`, as Lemmy users write it; the bare name when the home is unknown.
    fn handle(&self) -> String {
        let host = self
            .actor_id
            .as_deref()
            .and_then(|a| url::Url::parse(a).ok())
            .and_then(|u| u.host_str().map(str::to_string));
        match host {
            Some(h) => format!("{}@{h}", self.name),
            None => self.name.clone(),
        }
    }
}

/// `comment/list` answers (`GetCommentsResponse`).
#[derive(Deserialize)]
struct CommentList {
    #[serde(default)]
    comments: Vec<CommentView>,
}

/// `site` answers (`GetSiteResponse`): only the language list.
#[derive(Deserialize)]
struct SiteResponse {
    #[serde(default)]
    all_languages: Vec<Language>,
}

#[derive(Deserialize)]
struct Language {
    id: i64,
    code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_and_without_a_zone() {
        let utc = parse_time("2024-01-10T12:00:00.123456Z").unwrap();
        assert_eq!(utc.to_rfc3339(), "2024-01-10T12:00:00.123456+00:00");
        assert_eq!(parse_time("2024-01-10T12:00:00.123456"), Some(utc));
        assert_eq!(
            parse_time("2024-01-10T14:00:00.123456+02:00"),
            Some(utc),
            "an offset is honoured"
        );
        assert_eq!(
            parse_time("2024-01-10T12:00:00").unwrap().timestamp(),
            utc.timestamp()
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn markdown_keeps_its_text_and_loses_html() {
        assert_eq!(
            plain("I <3 Northwind\n\n> quoted reply"),
            "I <3 Northwind\n> quoted reply"
        );
        assert_eq!(
            plain("Bag lost &amp; no answer <b>at all</b>"),
            "Bag lost & no answer at all"
        );
    }

    #[test]
    fn handles_name_the_home_instance() {
        let p = Person {
            name: "NorthwindHelp".into(),
            actor_id: Some("https://lemmy.example/u/NorthwindHelp".into()),
            local: true,
        };
        assert_eq!(p.handle(), "NorthwindHelp@lemmy.example");
        let bare = Person {
            name: "x".into(),
            actor_id: None,
            local: false,
        };
        assert_eq!(bare.handle(), "x");
    }

    #[test]
    fn a_path_passes_through_its_ancestors_only() {
        let c = Comment {
            id: 912,
            post_id: 1,
            content: String::new(),
            path: "0.9001.912".into(),
            ap_id: String::new(),
            published: String::new(),
            language_id: 0,
            deleted: false,
            removed: false,
        };
        assert!(c.below(9001));
        assert!(!c.below(900));
        assert!(!c.below(91));
    }

    #[test]
    fn a_bare_account_is_only_the_local_namesake() {
        let person = |local| Person {
            name: "NorthwindHelp".into(),
            actor_id: Some("https://elsewhere.example/u/NorthwindHelp".into()),
            local,
        };
        let bare = vec!["NorthwindHelp".to_string()];
        assert!(person(true).is_one_of(&bare));
        assert!(
            !person(false).is_one_of(&bare),
            "a namesake on another instance is not the brand"
        );
        let full = vec!["NorthwindHelp@elsewhere.example".to_string()];
        assert!(person(false).is_one_of(&full));
    }
}
