//! Reddit, through the OAuth JSON API as a "script" app (the "password" grant): the newest posts and comments of
//! the given subreddits, and/or a search for the brand's words.
//!
//! Every call carries `Authorization: bearer <token>`; the token comes from `{auth_url}/api/v1/access_token`
//! (HTTP Basic `client_id:client_secret`, form `grant_type=password`) and lives only in memory, renewed a minute
//! before it expires or once after a 401. Every call also asks for `raw_json=1`, so texts arrive unescaped.
//!
//! Cursor (one per listing, kept together as JSON in [`Cursor::position`]): the newest fullname seen. A subreddit's
//! `new` and `comments` listings are read incrementally with `before=<fullname>` (the items just newer than it,
//! paging on towards the newest); because a deleted or removed anchor makes Reddit answer an empty listing
//! forever, an empty answer is checked once against the newest page. The first poll reads the newest page and
//! pages back with `after`. Search results are indexed late and out of order, so a search is never anchored:
//! each poll reads the newest results and pages back with `after` until it reaches the cursor (the store drops
//! repeats). Paging is bounded by `max_pages`.
//!
//! A complaint's thread is its fullname and its post (`link_id`). The brand's reply is a comment by one of its
//! accounts in `/comments/{post}` (focused on the complaint with `comment=<id>` when the complaint is a comment)
//! whose parent chain reaches the complaint: any comment of the tree for a post, the complaint's descendants for a
//! comment. "Load more" stubs (`kind: "more"`) are not expanded.

mod wire;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError};
use crate::config::{KindCtx, Secret};
use crate::http::RateLimit;
use wire::{Listing, ListingData, Thing, Thread, TokenAnswer};

/// Reddit's documented free-tier limit: 100 requests a minute per OAuth client id.
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(100, Duration::from_secs(60));

const AUTH_HINT: &str = "check the source's client_id, client_secret_env/client_secret_file, username and \
     password_env/password_file (a Reddit \"script\" app whose developer is that user; since late 2025 new OAuth apps \
     need Reddit's approval before their tokens work)";

/// A token is renewed this long before Reddit says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// Items per listing page (Reddit's maximum).
const PAGE: &str = "100";

/// How deep and how many comments a reply check asks for.
const REPLY_DEPTH: &str = "10";
const REPLY_LIMIT: &str = "500";

/// Where Reddit's links point.
const WEB: &str = "https://www.reddit.com";

/// A `reddit` source's settings.
#[derive(Debug, Clone)]
pub struct RedditSource {
    base: url::Url,
    auth: url::Url,
    subreddits: Vec<String>,
    query: Option<String>,
    client_id: String,
    client_secret: Secret,
    username: String,
    password: Secret,
    max_pages: u32,
    /// The access token, in memory only (shared by the clones of this source).
    token: Arc<tokio::sync::Mutex<Option<Token>>>,
}

/// An access token and when to renew it.
#[derive(Debug)]
struct Token {
    bearer: Secret,
    renew_at: Instant,
}

/// `[[source]]` keys of kind `reddit`.
#[derive(Deserialize)]
struct Options {
    /// Subreddits whose new posts and comments are read, e.g. `["northwind", "flying"]` (`r/` optional).
    subreddits: Option<Vec<String>>,
    /// Words to search for (Reddit search syntax), site-wide or, with `subreddits`, in those subreddits.
    query: Option<String>,
    /// The OAuth app's client id (not a secret).
    client_id: Option<String>,
    /// Environment variable holding the app's client secret.
    client_secret_env: Option<String>,
    /// File holding the app's client secret.
    client_secret_file: Option<String>,
    /// The Reddit account the script app belongs to.
    username: Option<String>,
    /// Environment variable holding that account's password.
    password_env: Option<String>,
    /// File holding that account's password.
    password_file: Option<String>,
    /// API root; default `https://oauth.reddit.com`.
    base_url: Option<String>,
    /// Token endpoint root (`/api/v1/access_token` below it); default `https://www.reddit.com`.
    auth_url: Option<String>,
    /// Most pages (100 items each) per listing per poll; default 3.
    max_pages: Option<u32>,
}

impl RedditSource {
    /// Validates the `reddit` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<RedditSource> {
        let o: Options = ctx.read("reddit", options)?;
        let mut subreddits = Vec::new();
        for raw in o.subreddits.iter().flatten() {
            let name = raw.trim().trim_start_matches('/');
            let name = name
                .strip_prefix("r/")
                .unwrap_or(name)
                .trim_end_matches('/');
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                ctx.problem(
                    "subreddits",
                    format!("{raw:?} is not a subreddit name (letters, digits and _)"),
                );
            } else {
                subreddits.push(name.to_string());
            }
        }
        let query = o.query.filter(|q| !q.trim().is_empty());
        if query.is_none() && o.subreddits.as_ref().is_none_or(|s| s.is_empty()) {
            ctx.problem(
                "subreddits",
                "give `subreddits` (whose new posts and comments to read), `query` (what to search for) or both",
            );
        }
        let client_id = o.client_id.filter(|c| !c.trim().is_empty());
        if client_id.is_none() {
            ctx.problem(
                "client_id",
                "missing `client_id`: the id of the Reddit app (under its name at reddit.com/prefs/apps)",
            );
        }
        let client_secret = ctx.required_secret(
            "client_secret",
            o.client_secret_env.as_deref(),
            o.client_secret_file.as_deref(),
            "the Reddit app's secret",
        );
        let username = o.username.filter(|u| !u.trim().is_empty());
        if username.is_none() {
            ctx.problem(
                "username",
                "missing `username`: the Reddit account the script app belongs to",
            );
        }
        let password = ctx.required_secret(
            "password",
            o.password_env.as_deref(),
            o.password_file.as_deref(),
            "that account's password",
        );
        let base = api::base_url(o.base_url.as_deref(), "https://oauth.reddit.com", ctx);
        let auth = api::http_url("auth_url", o.auth_url.as_deref(), WEB, ctx);
        if o.max_pages == Some(0) {
            ctx.problem("max_pages", "must be at least 1");
        }
        Some(RedditSource {
            base: base?,
            auth: auth?,
            subreddits,
            query,
            client_id: client_id?.trim().to_string(),
            client_secret: client_secret?,
            username: username?.trim().trim_start_matches("u/").to_string(),
            password: password?,
            max_pages: o.max_pages.unwrap_or(3).max(1),
            token: Arc::default(),
        })
    }

    /// What is read, as whom, and the API root; never the secrets.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.subreddits.is_empty() {
            let subs: Vec<String> = self.subreddits.iter().map(|s| format!("r/{s}")).collect();
            parts.push(format!("new posts and comments in {}", subs.join(", ")));
        }
        if let Some(q) = &self.query {
            let scope = if self.subreddits.is_empty() {
                "site-wide".to_string()
            } else {
                "in those subreddits".to_string()
            };
            parts.push(format!("search {q:?} {scope}"));
        }
        format!(
            "Reddit {} at {} as u/{}",
            parts.join("; "),
            self.base,
            self.username
        )
    }

    /// Fetches what is new in every listing since the last poll.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let old: BTreeMap<String, String> = ctx
            .cursor
            .position
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let mut next = BTreeMap::new();
        let mut mentions = Vec::new();
        let mut seen = HashSet::new();
        for listing in self.listings() {
            let since = old.get(&listing.key).map(String::as_str);
            let things = if listing.anchored {
                self.read_anchored(ctx, &listing, since).await?
            } else {
                self.read_search(ctx, &listing, since).await?
            };
            let newest = things
                .iter()
                .filter_map(|t| t.data.name.as_deref())
                .chain(since)
                .max_by_key(|n| id_value(n));
            if let Some(n) = newest {
                next.insert(listing.key.clone(), n.to_string());
            }
            for t in &things {
                if let Some(m) = t.to_mention(ctx)
                    && seen.insert(m.key.clone())
                {
                    mentions.push(m);
                }
            }
        }
        Ok(Polled::fresh(
            mentions,
            (!next.is_empty())
                .then(|| serde_json::to_string(&next).expect("a map of strings serialises")),
        ))
    }

    /// Looks for the brand's comment below the complaint.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let thread: Thread = check.thread_ref()?;
        let Some(article) = thread.link_id.strip_prefix("t3_") else {
            return Err(SourceError::Parse(format!(
                "reddit thread reference: {:?} is not a post",
                thread.link_id
            )));
        };
        let comment = thread.name.strip_prefix("t1_");
        let mut query = vec![
            ("sort", "new"),
            ("depth", REPLY_DEPTH),
            ("limit", REPLY_LIMIT),
        ];
        if let Some(c) = comment {
            query.push(("comment", c));
        }
        let answer: Vec<Listing> = self
            .get(ctx, &format!("comments/{article}"), &query)
            .await?;
        let Some(comments) = answer.get(1) else {
            return Ok(None);
        };
        // The complaint's descendants: below the complaint comment, or the whole tree under a post.
        let roots: &[Thing] = match comment {
            Some(_) => match find(&comments.data.children, &thread.name) {
                Some(c) => c.data.replies.children(),
                None => return Ok(None),
            },
            None => &comments.data.children,
        };
        let mut found: Option<FoundReply> = None;
        let mut stack: Vec<&Thing> = roots.iter().collect();
        while let Some(t) = stack.pop() {
            stack.extend(t.data.replies.children());
            if t.kind != "t1" {
                continue;
            }
            let (Some(author), Some(at)) = (t.data.author.as_deref(), t.data.time()) else {
                continue;
            };
            if at >= check.posted_at
                && super::is_account(author, &check.accounts)
                && found.as_ref().is_none_or(|f| at < f.at)
            {
                found = Some(FoundReply {
                    author: author.to_string(),
                    at,
                    url: t.data.url(),
                });
            }
        }
        Ok(found)
    }

    /// The listings one poll reads.
    fn listings(&self) -> Vec<ListingSpec> {
        let mut out = Vec::new();
        for sub in &self.subreddits {
            for which in ["new", "comments"] {
                out.push(ListingSpec {
                    key: format!("r/{sub}/{which}"),
                    path: format!("r/{sub}/{which}"),
                    query: Vec::new(),
                    anchored: true,
                });
            }
        }
        if let Some(q) = &self.query {
            let mut query = vec![("q", q.clone()), ("sort", "new".to_string())];
            let path = if self.subreddits.is_empty() {
                "search".to_string()
            } else {
                query.push(("restrict_sr", "1".to_string()));
                format!("r/{}/search", self.subreddits.join("+"))
            };
            out.push(ListingSpec {
                key: "search".into(),
                path,
                query,
                anchored: false,
            });
        }
        out
    }

    /// A chronological listing: the newest page and older ones on the first poll, else what came after `since`.
    async fn read_anchored(
        &self,
        ctx: &PollCtx<'_>,
        listing: &ListingSpec,
        since: Option<&str>,
    ) -> Result<Vec<Thing>, SourceError> {
        let mut out = Vec::new();
        let Some(since) = since else {
            let mut after: Option<String> = None;
            for _ in 0..self.max_pages {
                let page = self.page(ctx, listing, "after", after.as_deref()).await?;
                let empty = page.children.is_empty();
                out.extend(page.children);
                match page.after {
                    Some(a) if !empty => after = Some(a),
                    _ => break,
                }
            }
            return Ok(out);
        };
        let mut anchor = since.to_string();
        for round in 0..self.max_pages {
            let page = self.page(ctx, listing, "before", Some(&anchor)).await?;
            if page.children.is_empty() {
                if round == 0 {
                    // Nothing newer, or the anchor was deleted or removed (then Reddit answers empty forever): the
                    // newest page tells which.
                    let newest = self.page(ctx, listing, "after", None).await?;
                    let floor = id_value(since);
                    out.extend(
                        newest
                            .children
                            .into_iter()
                            .filter(|t| t.data.name.as_deref().map(id_value) > Some(floor)),
                    );
                }
                break;
            }
            let more = page.before.is_some();
            if let Some(n) = page
                .children
                .iter()
                .filter_map(|t| t.data.name.as_deref())
                .max_by_key(|n| id_value(n))
            {
                anchor = n.to_string();
            }
            out.extend(page.children);
            if !more {
                break;
            }
        }
        Ok(out)
    }

    /// Search results, newest first, back to the last poll's newest (never anchored: search indexes late).
    async fn read_search(
        &self,
        ctx: &PollCtx<'_>,
        listing: &ListingSpec,
        since: Option<&str>,
    ) -> Result<Vec<Thing>, SourceError> {
        let floor = since.map(id_value);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..self.max_pages {
            let page = self.page(ctx, listing, "after", after.as_deref()).await?;
            let reached = floor.is_some_and(|f| {
                page.children
                    .iter()
                    .any(|t| t.data.name.as_deref().is_some_and(|n| id_value(n) <= f))
            });
            let empty = page.children.is_empty();
            out.extend(page.children);
            match page.after {
                Some(a) if !empty && !reached => after = Some(a),
                _ => break,
            }
        }
        Ok(out)
    }

    /// One page of a listing, optionally anchored (`after` or `before` a fullname).
    async fn page(
        &self,
        ctx: &PollCtx<'_>,
        listing: &ListingSpec,
        direction: &'static str,
        anchor: Option<&str>,
    ) -> Result<ListingData, SourceError> {
        let mut query: Vec<(&str, &str)> = listing
            .query
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        query.push(("limit", PAGE));
        if let Some(a) = anchor {
            query.push((direction, a));
        }
        let listing: Listing = self.get(ctx, &listing.path, &query).await?;
        Ok(listing.data)
    }

    /// GETs an API path with the bearer token and `raw_json=1`; a 401 renews the token and tries once more.
    async fn get<T: DeserializeOwned>(
        &self,
        ctx: &PollCtx<'_>,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, SourceError> {
        let mut query = query.to_vec();
        query.push(("raw_json", "1"));
        let url = api::endpoint(&self.base, path, &query);
        let mut renewed = false;
        loop {
            let bearer = self.bearer(ctx).await?;
            let headers: Headers = vec![("Authorization", format!("bearer {}", bearer.expose()))];
            match api::get_json(ctx, &url, &headers, AUTH_HINT).await {
                Err(SourceError::Auth { status: 401, .. }) if !renewed => {
                    renewed = true;
                    let mut slot = self.token.lock().await;
                    if slot.as_ref().is_some_and(|t| t.bearer == bearer) {
                        *slot = None;
                    }
                }
                other => return other,
            }
        }
    }

    /// The cached access token, or a new one when there is none or it is about to expire.
    async fn bearer(&self, ctx: &PollCtx<'_>) -> Result<Secret, SourceError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.bearer.clone());
        }
        *slot = None;
        let token = self.new_token(ctx).await?;
        let bearer = token.bearer.clone();
        *slot = Some(token);
        Ok(bearer)
    }

    /// Asks the token endpoint for an access token (the "password" grant of a script app).
    async fn new_token(&self, ctx: &PollCtx<'_>) -> Result<Token, SourceError> {
        let url = api::endpoint(&self.auth, "api/v1/access_token", &[]);
        let basic = STANDARD.encode(format!(
            "{}:{}",
            self.client_id,
            self.client_secret.expose()
        ));
        let headers: Headers = vec![("Authorization", format!("Basic {basic}"))];
        let form = [
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose()),
        ];
        let answer: TokenAnswer = api::post_form(ctx, &url, &form, &headers, AUTH_HINT).await?;
        if let Some(error) = answer.error {
            // A wrong password is a 200 with {"error": "invalid_grant"}.
            let what = match error {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            return Err(SourceError::Auth {
                status: 401,
                hint: format!("the token endpoint answered {what:?}; {AUTH_HINT}"),
            });
        }
        let Some(access) = answer.access_token.filter(|t| !t.is_empty()) else {
            return Err(SourceError::Parse(
                "/api/v1/access_token: no access_token in the answer".into(),
            ));
        };
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600.0).max(0.0) as u64);
        Ok(Token {
            bearer: Secret::new(access),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
        })
    }
}

/// A fullname's (`t3_abc`) id as a number: ids grow with time, so the larger is the newer.
fn id_value(fullname: &str) -> u64 {
    let id = fullname.split_once('_').map_or(fullname, |(_, id)| id);
    u64::from_str_radix(id, 36).unwrap_or(0)
}

/// Markdown text as Reddit sends it: entities decoded (`raw_json=1` should leave none, but the editor's
/// `&#x200B;` and older clients' escapes do), zero-width spaces and blank lines dropped. Reddit renders no HTML
/// from markdown, so a `<` is the author's own character and stays.
fn plain(markdown: &str) -> String {
    let decoded = crate::html::decode_entities(markdown).replace('\u{200B}', "");
    decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first thing named `name` anywhere in a comment tree.
fn find<'a>(things: &'a [Thing], name: &str) -> Option<&'a Thing> {
    let mut stack: Vec<&Thing> = things.iter().collect();
    while let Some(t) = stack.pop() {
        if t.data.name.as_deref() == Some(name) {
            return Some(t);
        }
        stack.extend(t.data.replies.children());
    }
    None
}

/// One listing a poll reads.
struct ListingSpec {
    /// Its name in the cursor.
    key: String,
    path: String,
    query: Vec<(&'static str, String)>,
    /// Read with `before=<newest seen>` (chronological listings), or from the top each time (search).
    anchored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_base36_value() {
        assert!(id_value("t3_1a2b3c") > id_value("t3_zzzz"));
        assert_eq!(id_value("t1_10"), 36);
        assert_eq!(id_value("nonsense!"), 0);
    }

    #[test]
    fn markdown_keeps_its_characters_and_drops_editor_noise() {
        assert_eq!(
            plain("I <3 Northwind &amp; > their crew\n\n&#x200B;\n\n  bye  "),
            "I <3 Northwind & > their crew\nbye"
        );
    }

    #[test]
    fn empty_replies_are_an_empty_string() {
        let t: Thing =
            serde_json::from_str(r#"{"kind":"t1","data":{"name":"t1_a","replies":""}}"#).unwrap();
        assert!(t.data.replies.children().is_empty());
        let t: Thing = serde_json::from_str(
            r#"{"kind":"t1","data":{"name":"t1_a","replies":{"kind":"Listing","data":{"after":null,"before":null,"children":[{"kind":"t1","data":{"name":"t1_b","replies":""}}]}}}}"#,
        )
        .unwrap();
        assert_eq!(t.data.replies.children().len(), 1);
    }
}
