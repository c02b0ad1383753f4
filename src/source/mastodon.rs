//! Mastodon (one instance): hashtag timelines and, with a token, full-text status search.
//!
//! Each poll asks every configured hashtag's timeline (`/api/v1/timelines/tag/:tag`) for statuses newer than the
//! newest one seen for that tag (`min_id`), following up to `max_pages` pages of 40 (each page's newest id is the
//! next page's `min_id`). With a token and a `query`, it also asks `/api/v2/search` (type `statuses`) the same way,
//! paging by `offset` under a fixed `min_id` (search results are not ordered by id). The cursor is the newest
//! status id per tag and for the search, as a JSON object in [`Cursor::position`]; Mastodon ids are strings
//! compared numerically. A tag without a cursor yet gets one page of its newest statuses.
//!
//! A mention's key is the status's global ActivityPub `uri` (its `id` differs on every instance); its thread is
//! the local `id` and the `uri`. The brand's reply is a descendant in `/api/v1/statuses/:id/context` by one of the
//! brand's accounts whose `in_reply_to_id` chain (through the descendants) reaches the complaint.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError, parse_time};
use crate::config::KindCtx;
use crate::config::Secret;
use crate::http::RateLimit;
use crate::mention::Mention;

/// Mastodon's documented limit: 300 requests per 5 minutes per account and per IP.
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(300, std::time::Duration::from_secs(300));

/// The most statuses a timeline or search page returns.
const PAGE: usize = 40;
const PAGE_TEXT: &str = "40";

/// How far up a reply chain we follow before giving up (the context endpoint's depth is 20 without a token).
const MAX_CHAIN: usize = 64;

/// The cursor key of the search.
const SEARCH_KEY: &str = "search";

const AUTH_HINT: &str = "check the source's token_env / token_file (an access token of this instance with the \
read:statuses and read:search scopes) and base_url; an instance that disabled public previews of hashtag \
timelines answers `tags` only with a token";

/// A `mastodon` source's settings.
#[derive(Debug, Clone)]
pub struct MastodonSource {
    base: url::Url,
    /// The instance's host, appended to local accounts' `acct`.
    host: String,
    tags: Vec<String>,
    query: Option<String>,
    token: Option<Secret>,
    max_pages: u32,
}

/// `[[source]]` keys of kind `mastodon`.
#[derive(Deserialize)]
struct Options {
    /// The instance to watch, e.g. `"https://mastodon.social"` (required).
    base_url: Option<String>,
    /// Hashtags to follow, without `#`, e.g. `["Northwind", "NorthwindAir"]`.
    tags: Option<Vec<String>>,
    /// Full-text status search (needs a token: the instance does not search for anonymous callers).
    query: Option<String>,
    /// Environment variable holding an access token (sent as `Authorization: Bearer …`).
    token_env: Option<String>,
    /// File holding an access token.
    token_file: Option<String>,
    /// Most pages (40 statuses each) per tag and per search on one poll; default 3.
    max_pages: Option<u32>,
}

impl MastodonSource {
    /// Validates the `mastodon` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<MastodonSource> {
        let o: Options = ctx.read("mastodon", options)?;
        let base = match o.base_url.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(b) => api::base_url(Some(b), b, ctx),
            None => {
                ctx.problem(
                    "base_url",
                    "missing `base_url`: the instance to watch, e.g. \"https://mastodon.social\"",
                );
                None
            }
        };
        let mut tags = Vec::new();
        for raw in o.tags.unwrap_or_default() {
            let tag = raw.trim().trim_start_matches('#');
            if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
                ctx.problem(
                    "tags",
                    format!("{raw:?} is not a hashtag (letters, digits and `_`, without spaces)"),
                );
            } else if !tags.iter().any(|t: &String| t.eq_ignore_ascii_case(tag)) {
                tags.push(tag.to_string());
            }
        }
        let query = o
            .query
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        let token = ctx.secret("token", o.token_env.as_deref(), o.token_file.as_deref());
        let token_given = o.token_env.is_some() || o.token_file.is_some();
        if tags.is_empty() && query.is_none() {
            ctx.problem(
                "tags",
                "give `tags` (hashtags to follow) or `query` (full-text search, with a token), or both",
            );
        }
        if query.is_some() && !token_given {
            ctx.problem(
                "query",
                "full-text search needs a token (Mastodon does not search statuses for anonymous callers): \
                 set `token_env` or `token_file`, or follow `tags` instead",
            );
        }
        if o.max_pages == Some(0) {
            ctx.problem("max_pages", "must be at least 1");
        }
        let base = base?;
        if (tags.is_empty() && query.is_none()) || (query.is_some() && token.is_none()) {
            return None;
        }
        Some(MastodonSource {
            host: base.host_str().unwrap_or_default().to_ascii_lowercase(),
            base,
            tags,
            query,
            token,
            max_pages: o.max_pages.unwrap_or(3).max(1),
        })
    }

    /// The instance, the tags and the search; never the token.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|t| format!("#{t}")).collect();
            what.push(format!("tags {}", tags.join(" ")));
        }
        if let Some(q) = &self.query {
            what.push(format!("search {q:?}"));
        }
        format!("Mastodon {} at {}", what.join(" and "), self.base)
    }

    fn headers(&self) -> Headers {
        match &self.token {
            Some(t) => vec![("Authorization", format!("Bearer {}", t.expose()))],
            None => Headers::new(),
        }
    }

    /// Fetches statuses newer than the cursor, per tag and for the search.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let before: BTreeMap<String, String> = ctx
            .cursor
            .position
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let mut after = before.clone();
        let mut mentions: Vec<Mention> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let headers = self.headers();
        for tag in &self.tags {
            let key = format!("tag:{}", tag.to_lowercase());
            let mut min_id = before.get(&key).cloned();
            let path = format!("api/v1/timelines/tag/{tag}");
            for _ in 0..self.max_pages {
                let mut query = vec![("limit", PAGE_TEXT)];
                if let Some(m) = &min_id {
                    query.push(("min_id", m.as_str()));
                }
                let url = api::endpoint(&self.base, &path, &query);
                let page: Vec<Status> = api::get_json(ctx, &url, &headers, AUTH_HINT).await?;
                let newest = newest_id(&page);
                self.take(ctx, &page, &mut mentions, &mut seen);
                if let Some(n) = &newest {
                    advance(&mut after, &key, n);
                }
                // Without a cursor, one page of the newest is where we start; a short page is the end.
                if min_id.is_none() || page.len() < PAGE {
                    break;
                }
                match newest {
                    Some(n) if min_id.as_deref().is_none_or(|m| cmp_ids(&n, m).is_gt()) => {
                        min_id = Some(n)
                    }
                    _ => break,
                }
            }
        }
        if let Some(q) = &self.query {
            let min_id = before.get(SEARCH_KEY).cloned();
            for page_no in 0..self.max_pages as usize {
                let offset = (page_no * PAGE).to_string();
                let mut query = vec![
                    ("q", q.as_str()),
                    ("type", "statuses"),
                    ("resolve", "false"),
                    ("limit", PAGE_TEXT),
                ];
                if let Some(m) = &min_id {
                    query.push(("min_id", m.as_str()));
                }
                if page_no > 0 {
                    query.push(("offset", offset.as_str()));
                }
                let url = api::endpoint(&self.base, "api/v2/search", &query);
                let found: Search = api::get_json(ctx, &url, &headers, AUTH_HINT).await?;
                if let Some(n) = newest_id(&found.statuses) {
                    advance(&mut after, SEARCH_KEY, &n);
                }
                self.take(ctx, &found.statuses, &mut mentions, &mut seen);
                if min_id.is_none() || found.statuses.len() < PAGE {
                    break;
                }
            }
        }
        Ok(Polled::fresh(
            mentions,
            if after.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&after).expect("a map of strings serialises"))
            },
        ))
    }

    /// Adds a page's statuses (reblogs as the status they share), each once.
    fn take(
        &self,
        ctx: &PollCtx<'_>,
        page: &[Status],
        mentions: &mut Vec<Mention>,
        seen: &mut std::collections::HashSet<String>,
    ) {
        for s in page {
            let s = s.reblog.as_deref().unwrap_or(s);
            if seen.insert(s.uri.clone()) {
                mentions.push(self.to_mention(ctx, s));
            }
        }
    }

    fn to_mention(&self, ctx: &PollCtx<'_>, s: &Status) -> Mention {
        let spoiler = crate::html::to_text(&s.spoiler_text);
        let body = crate::html::to_text(&s.content);
        let text = match (spoiler.is_empty(), body.is_empty()) {
            (false, false) => format!("{spoiler}\n{body}"),
            (false, true) => spoiler,
            _ => body,
        };
        let thread = Thread {
            id: s.id.clone(),
            uri: s.uri.clone(),
        };
        Mention {
            source: ctx.name.to_string(),
            key: s.uri.clone(),
            url: s.url.clone().or_else(|| Some(s.uri.clone())),
            author: Some(self.full_acct(&s.account.acct)),
            text,
            published_at: parse_time(&s.created_at),
            fetched_at: ctx.now,
            lang: s.language.clone().filter(|l| !l.is_empty()),
            thread: Some(serde_json::to_string(&thread).expect("a thread serialises")),
        }
    }

    /// `user@domain`: a local account's `acct` has no domain, so this instance's is added.
    fn full_acct(&self, acct: &str) -> String {
        let acct = acct.trim_start_matches('@');
        if acct.contains('@') {
            acct.to_string()
        } else {
            format!("{acct}@{}", self.host)
        }
    }

    /// Whether `acct` (as this instance shows it; a local account has no domain) is one of `accounts`.
    fn is_brand(&self, acct: &str, accounts: &[String]) -> bool {
        let acct = acct.trim_start_matches('@');
        super::is_federated_account(acct, &self.full_acct(acct), !acct.contains('@'), accounts)
    }

    /// Looks for the brand's reply among the complaint's descendants.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let thread: Thread = check.thread_ref()?;
        if thread.id.is_empty() || !thread.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SourceError::Parse(format!(
                "case {}: bad status id {:?}",
                check.case_id, thread.id
            )));
        }
        let url = api::endpoint(
            &self.base,
            &format!("api/v1/statuses/{}/context", thread.id),
            &[],
        );
        let context: Context = api::get_json(ctx, &url, &self.headers(), AUTH_HINT).await?;
        let by_id: HashMap<&str, &Status> = context
            .descendants
            .iter()
            .map(|s| (s.id.as_str(), s))
            .collect();
        let reaches_complaint = |s: &Status| {
            let mut parent = s.in_reply_to_id.as_deref();
            for _ in 0..MAX_CHAIN {
                let Some(p) = parent else { return false };
                if p == thread.id {
                    return true;
                }
                match by_id.get(p) {
                    // The complaint as a descendant of itself (seen through another id) counts as reached.
                    Some(up) if up.uri == thread.uri => return true,
                    Some(up) => parent = up.in_reply_to_id.as_deref(),
                    None => return false,
                }
            }
            false
        };
        let mut found: Option<FoundReply> = None;
        for s in &context.descendants {
            let Some(at) = parse_time(&s.created_at) else {
                continue;
            };
            if s.uri != thread.uri
                && at >= check.posted_at
                && self.is_brand(&s.account.acct, &check.accounts)
                && reaches_complaint(s)
                && found.as_ref().is_none_or(|f| at < f.at)
            {
                found = Some(FoundReply {
                    author: self.full_acct(&s.account.acct),
                    at,
                    url: s.url.clone().or_else(|| Some(s.uri.clone())),
                });
            }
        }
        Ok(found)
    }
}

/// What `find_reply` needs: the status's id on this instance, and its global id.
#[derive(Serialize, Deserialize)]
struct Thread {
    id: String,
    uri: String,
}

/// Compares two Mastodon ids (decimal strings of any length) numerically.
fn cmp_ids(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn newest_id(page: &[Status]) -> Option<String> {
    page.iter()
        .map(|s| s.id.as_str())
        .max_by(|a, b| cmp_ids(a, b))
        .map(str::to_string)
}

/// Moves `key`'s cursor forward to `id` (never back).
fn advance(cursor: &mut BTreeMap<String, String>, key: &str, id: &str) {
    if cursor.get(key).is_none_or(|old| cmp_ids(id, old).is_gt()) {
        cursor.insert(key.to_string(), id.to_string());
    }
}

/// A status, as the REST API shows it.
#[derive(Deserialize)]
struct Status {
    id: String,
    uri: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    created_at: String,
    account: Account,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    reblog: Option<Box<Status>>,
}

#[derive(Deserialize)]
struct Account {
    acct: String,
}

/// `/api/v2/search` (only statuses are asked for).
#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    statuses: Vec<Status>,
}

/// `/api/v1/statuses/:id/context`.
#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    descendants: Vec<Status>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_numbers() {
        assert_eq!(cmp_ids("109", "11"), Ordering::Greater);
        assert_eq!(
            cmp_ids("113000000000000002", "113000000000000010"),
            Ordering::Less
        );
        assert_eq!(cmp_ids("42", "42"), Ordering::Equal);
        let mut c = BTreeMap::new();
        advance(&mut c, "tag:x", "99");
        advance(&mut c, "tag:x", "100");
        advance(&mut c, "tag:x", "98");
        assert_eq!(c["tag:x"], "100");
    }

    fn source() -> MastodonSource {
        MastodonSource {
            base: url::Url::parse("https://mastodon.example").unwrap(),
            host: "mastodon.example".into(),
            tags: vec!["Northwind".into()],
            query: None,
            token: None,
            max_pages: 3,
        }
    }

    #[test]
    fn brand_accounts_match_local_bare_and_remote_full_handles() {
        let s = source();
        let bare = vec!["NorthwindHelp".to_string()];
        let full = vec!["NorthwindHelp@social.example".to_string()];
        let here = vec!["@northwindhelp@mastodon.example".to_string()];
        assert!(s.is_brand("NorthwindHelp", &bare), "local, bare");
        assert!(
            !s.is_brand("NorthwindHelp@evil.example", &bare),
            "a bare name is this instance's account only"
        );
        assert!(s.is_brand("northwindhelp@social.example", &full));
        assert!(
            !s.is_brand("NorthwindHelp", &full),
            "local is not social.example"
        );
        assert!(s.is_brand("NorthwindHelp", &here), "local, written in full");
        assert_eq!(s.full_acct("maya"), "maya@mastodon.example");
        assert_eq!(s.full_acct("maya@other.example"), "maya@other.example");
    }

    #[test]
    fn a_reblog_is_the_status_it_shares() {
        let page: Vec<Status> = serde_json::from_str(
            r#"[{"id":"200","uri":"https://mastodon.example/users/jonas/statuses/200/activity",
                 "url":null,"created_at":"2024-10-02T10:00:00.000Z","content":"","spoiler_text":"",
                 "language":null,"account":{"acct":"jonas"},
                 "reblog":{"id":"150","uri":"https://fedi.example/users/lucia/statuses/9",
                           "url":"https://fedi.example/@lucia/9","created_at":"2024-10-02T09:00:00.000Z",
                           "content":"<p>Thanks #Northwind!</p>","spoiler_text":"","language":"en",
                           "account":{"acct":"lucia@fedi.example"},"reblog":null}}]"#,
        )
        .unwrap();
        let http = crate::http::HttpClient::new("t", std::time::Duration::from_millis(1)).unwrap();
        let cursor = crate::source::Cursor::default();
        let ctx = PollCtx {
            name: "m",
            http: &http,
            timeout: std::time::Duration::from_secs(1),
            max_body: 1 << 20,
            cursor: &cursor,
            now: chrono::Utc::now(),
            limit: None,
        };
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        source().take(&ctx, &page, &mut out, &mut seen);
        source().take(&ctx, &page, &mut out, &mut seen);
        assert_eq!(out.len(), 1, "once");
        assert_eq!(out[0].key, "https://fedi.example/users/lucia/statuses/9");
        assert_eq!(out[0].author.as_deref(), Some("lucia@fedi.example"));
        assert_eq!(out[0].text, "Thanks #Northwind!");
        assert!(out[0].thread.as_deref().unwrap().contains(r#""id":"150""#));
        assert_eq!(
            newest_id(&page).as_deref(),
            Some("200"),
            "the timeline's own id"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let s = MastodonSource {
            token: Some(Secret::new("tok-very-secret")),
            ..source()
        };
        assert!(!format!("{s:?}").contains("tok-very-secret"));
        assert!(!s.describe().contains("tok-very-secret"));
    }
}
