//! Bluesky, through the AT Protocol: posts matching a search query, newest first, read as a logged-in account.
//!
//! Search needs a session in practice, so the source logs in once with the account's app password
//! (`com.atproto.server.createSession`, limited to 30 a 5 minutes and 300 a day per account) and keeps the
//! session in memory: the access token is renewed with `com.atproto.server.refreshSession` shortly before it
//! expires (its JWT `exp`) or when the PDS turns it away, and the source logs in again only when the refresh is
//! refused. Tokens are never stored or shown.
//!
//! Each poll asks `app.bsky.feed.searchPosts` (`sort=latest`) for posts since the newest one seen (less a
//! minute, for indexing lag; the store drops repeats), paging with the response's `cursor` up to [`MAX_PAGES`].
//! A complaint's thread is its post's AT-URI: the brand's reply is a post by one of its accounts in the reply
//! subtree that `app.bsky.feed.getPostThread` returns.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError, parse_time};
use crate::config::{KindCtx, Secret};
use crate::http::{FetchError, RateLimit};
use crate::mention::Mention;

/// The PDS's documented limit: 3,000 requests per 5 minutes per IP.
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(3_000, std::time::Duration::from_secs(300));

/// Most result pages (100 posts each) per poll.
pub const MAX_PAGES: u32 = 3;

/// Overlap with the previous poll, for posts indexed late.
const OVERLAP_SECS: i64 = 60;

/// How deep below the complaint `getPostThread` looks for replies.
const THREAD_DEPTH: &str = "10";

/// An access token this close to its `exp` is renewed before use.
const RENEW_BEFORE_SECS: i64 = 120;

/// A token younger than this that is turned away is not expired: renewing it would not help.
const FRESH_SECS: i64 = 120;

const AUTH_HINT: &str = "check the source's `handle` and its app password (`app_password_env` / \
                         `app_password_file`), and that `base_url` is the account's PDS";

/// A `bluesky` source's settings, and its session (shared by the clones of the source, never persisted).
#[derive(Debug, Clone)]
pub struct BlueskySource {
    base: url::Url,
    query: String,
    handle: String,
    password: Secret,
    lang: Option<String>,
    session: Arc<tokio::sync::Mutex<Option<Session>>>,
}

/// `[[source]]` keys of kind `bluesky`.
#[derive(Deserialize)]
struct Options {
    /// Words to search for (Bluesky search syntax), e.g. `"Northwind"`.
    query: Option<String>,
    /// The account that logs in (its handle, e.g. `northwind-monitor.bsky.social`, or its DID).
    handle: Option<String>,
    /// Environment variable holding the account's app password.
    app_password_env: Option<String>,
    /// File holding the account's app password.
    app_password_file: Option<String>,
    /// The account's PDS, which serves the logged-in calls; default `https://bsky.social`.
    base_url: Option<String>,
    /// Only posts in this language (e.g. `en`), as the search's `lang` filter.
    lang: Option<String>,
}

/// A logged-in session.
#[derive(Debug)]
struct Session {
    access: Secret,
    refresh: Secret,
    /// The access token's expiry, from its JWT claims, when readable.
    expires: Option<DateTime<Utc>>,
    /// When we got the access token (the poll's clock).
    minted: DateTime<Utc>,
}

impl BlueskySource {
    /// Validates the `bluesky` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<BlueskySource> {
        let o: Options = ctx.read("bluesky", options)?;
        let query = o.query.filter(|q| !q.trim().is_empty());
        if query.is_none() {
            ctx.problem("query", "missing `query`: the words to search Bluesky for");
        }
        let handle = o
            .handle
            .map(|h| h.trim().trim_start_matches('@').to_string())
            .filter(|h| !h.is_empty());
        if handle.is_none() {
            ctx.problem(
                "handle",
                "missing `handle`: the Bluesky account that logs in (search needs a session)",
            );
        }
        let password = ctx.required_secret(
            "app_password",
            o.app_password_env.as_deref(),
            o.app_password_file.as_deref(),
            "the account's app password",
        );
        let lang = o.lang.map(|l| l.trim().to_string());
        if lang.as_deref() == Some("") {
            ctx.problem(
                "lang",
                "must not be empty (leave it out for every language)",
            );
        }
        let base = api::base_url(o.base_url.as_deref(), "https://bsky.social", ctx);
        Some(BlueskySource {
            base: base?,
            query: query?,
            handle: handle?,
            password: password?,
            lang: lang.filter(|l| !l.is_empty()),
            session: Arc::default(),
        })
    }

    /// The query, the account and the PDS; never the password.
    pub fn describe(&self) -> String {
        format!(
            "Bluesky search {:?} as {} at {}",
            self.query, self.handle, self.base
        )
    }

    /// Fetches posts since the last poll.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let since = ctx.cursor.position.as_deref().and_then(parse_time);
        let since_param = since.map(|s| {
            (s - chrono::Duration::seconds(OVERLAP_SECS))
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        });
        let mut mentions = Vec::new();
        let mut newest = since;
        let mut page_cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("q", self.query.as_str()),
                ("sort", "latest"),
                ("limit", "100"),
            ];
            if let Some(s) = &since_param {
                query.push(("since", s));
            }
            if let Some(l) = &self.lang {
                query.push(("lang", l));
            }
            if let Some(c) = &page_cursor {
                query.push(("cursor", c));
            }
            let url = api::endpoint(&self.base, "xrpc/app.bsky.feed.searchPosts", &query);
            let page: SearchPage = self.get(ctx, &url).await?;
            for post in &page.posts {
                // The search's own order time, never past now: a wrong client clock must not park the cursor.
                if let Some(t) = post.sort_at().map(|t| t.min(ctx.now)) {
                    newest = newest.max(Some(t));
                }
                mentions.push(post.to_mention(ctx));
            }
            match page.cursor {
                Some(c) if !c.is_empty() && !page.posts.is_empty() => page_cursor = Some(c),
                _ => break,
            }
        }
        Ok(Polled::fresh(
            mentions,
            newest.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ))
    }

    /// Looks for the brand's post in the complaint's reply subtree.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let url = api::endpoint(
            &self.base,
            "xrpc/app.bsky.feed.getPostThread",
            &[
                ("uri", check.thread.as_str()),
                ("depth", THREAD_DEPTH),
                ("parentHeight", "0"),
            ],
        );
        let answer: ThreadAnswer = self.get(ctx, &url).await?;
        let mut found: Option<FoundReply> = None;
        let mut stack: Vec<&ThreadNode> = answer.thread.replies.iter().collect();
        while let Some(node) = stack.pop() {
            stack.extend(node.replies.iter());
            let Some(post) = &node.post else { continue };
            let Some(at) = post.sort_at() else { continue };
            if at >= check.posted_at
                && is_brand(&post.author, &check.accounts)
                && found.as_ref().is_none_or(|f| at < f.at)
            {
                found = Some(FoundReply {
                    author: post.author.handle.clone(),
                    at,
                    url: post.url(),
                });
            }
        }
        Ok(found)
    }

    /// GETs `url` as the logged-in account; an access token the PDS turns away is renewed once and the call
    /// made again.
    async fn get<T: DeserializeOwned>(
        &self,
        ctx: &PollCtx<'_>,
        url: &url::Url,
    ) -> Result<T, SourceError> {
        let token = self.access_token(ctx).await?;
        match api::get_json(ctx, url, &bearer(&token), AUTH_HINT).await {
            Err(e) if token_refused(&e) => match self.renew_refused(ctx, &token).await? {
                Some(renewed) => api::get_json(ctx, url, &bearer(&renewed), AUTH_HINT).await,
                None => Err(e),
            },
            answer => answer,
        }
    }

    /// The current access token: logs in when there is no session, renews one about to expire.
    async fn access_token(&self, ctx: &PollCtx<'_>) -> Result<Secret, SourceError> {
        let mut session = self.session.lock().await;
        let renew = match session.as_ref() {
            None => true,
            Some(s) => s
                .expires
                .is_some_and(|exp| exp - chrono::Duration::seconds(RENEW_BEFORE_SECS) <= ctx.now),
        };
        if renew {
            self.renew(ctx, &mut session).await?;
        }
        Ok(session
            .as_ref()
            .expect("a session after renewing")
            .access
            .clone())
    }

    /// After `used` was turned away (400 `ExpiredToken`, 401): the token to try again with, or `None` when
    /// renewing cannot help (the token is brand new, so the refusal is about something else).
    async fn renew_refused(
        &self,
        ctx: &PollCtx<'_>,
        used: &Secret,
    ) -> Result<Option<Secret>, SourceError> {
        let mut session = self.session.lock().await;
        match session.as_ref() {
            // Someone renewed it meanwhile.
            Some(s) if s.access != *used => return Ok(Some(s.access.clone())),
            Some(s) if ctx.now - s.minted < chrono::Duration::seconds(FRESH_SECS) => {
                return Ok(None);
            }
            _ => {}
        }
        self.renew(ctx, &mut session).await?;
        Ok(session.as_ref().map(|s| s.access.clone()))
    }

    /// Refreshes the session, or logs in when there is none or the refresh is refused.
    async fn renew(
        &self,
        ctx: &PollCtx<'_>,
        session: &mut Option<Session>,
    ) -> Result<(), SourceError> {
        if let Some(old) = session.take() {
            let url = api::endpoint(&self.base, "xrpc/com.atproto.server.refreshSession", &[]);
            // A procedure without input: no body at all (the PDS refuses one).
            match api::post_form::<SessionAnswer>(ctx, &url, &[], &bearer(&old.refresh), AUTH_HINT)
                .await
            {
                Ok(a) => {
                    *session = Some(a.into_session(ctx.now));
                    return Ok(());
                }
                Err(e) if token_refused(&e) => {
                    tracing::info!(
                        source = ctx.name,
                        "Bluesky session refresh refused; logging in again"
                    );
                }
                Err(e) => {
                    // Keep the session: the refresh token may still be good once the PDS answers again.
                    *session = Some(old);
                    return Err(e);
                }
            }
        }
        let url = api::endpoint(&self.base, "xrpc/com.atproto.server.createSession", &[]);
        let body = serde_json::json!({
            "identifier": self.handle,
            "password": self.password.expose(),
        });
        let answer: SessionAnswer =
            api::post_json(ctx, &url, &body, &Headers::new(), AUTH_HINT).await?;
        tracing::debug!(source = ctx.name, handle = %self.handle, "logged in to Bluesky");
        *session = Some(answer.into_session(ctx.now));
        Ok(())
    }
}

/// `Authorization: Bearer …`.
fn bearer(token: &Secret) -> Headers {
    vec![("Authorization", format!("Bearer {}", token.expose()))]
}

/// Whether an answer may mean the token was turned away: 401, or a 400 whose XRPC error names the token
/// (`ExpiredToken`, `InvalidToken`) or says nothing.
fn token_refused(e: &SourceError) -> bool {
    match e {
        SourceError::Auth { status: 401, .. } => true,
        SourceError::Fetch(FetchError::Status {
            status: 400,
            detail,
            ..
        }) => detail.as_deref().is_none_or(|d| d.contains("Token")),
        _ => false,
    }
}

/// A JWT's `exp` claim, read without verifying anything (the PDS verifies; we only plan the renewal).
fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Claims {
        exp: i64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.exp, 0)
}

/// Whether `author` is one of `accounts`: by handle or DID; an account written without a dot (not a Bluesky
/// handle) stands for its handle on bsky.social (`NorthwindHelp` → `northwindhelp.bsky.social`).
fn is_brand(author: &Author, accounts: &[String]) -> bool {
    if super::is_account(&author.handle, accounts)
        || author
            .did
            .as_deref()
            .is_some_and(|d| super::is_account(d, accounts))
    {
        return true;
    }
    let handle = author.handle.trim().to_ascii_lowercase();
    let Some(name) = handle.strip_suffix(".bsky.social") else {
        return false;
    };
    let bare: Vec<String> = accounts
        .iter()
        .filter(|a| !a.contains(['.', ':']))
        .cloned()
        .collect();
    !name.contains('.') && super::is_account(name, &bare)
}

/// `createSession` / `refreshSession` output (only what we use).
#[derive(Deserialize)]
struct SessionAnswer {
    #[serde(rename = "accessJwt")]
    access_jwt: String,
    #[serde(rename = "refreshJwt")]
    refresh_jwt: String,
}

impl SessionAnswer {
    fn into_session(self, now: DateTime<Utc>) -> Session {
        Session {
            expires: jwt_expiry(&self.access_jwt),
            access: Secret::new(self.access_jwt),
            refresh: Secret::new(self.refresh_jwt),
            minted: now,
        }
    }
}

/// `app.bsky.feed.searchPosts` output.
#[derive(Deserialize)]
struct SearchPage {
    cursor: Option<String>,
    #[serde(default)]
    posts: Vec<PostView>,
}

/// `app.bsky.feed.defs#postView` (the fields we use).
#[derive(Deserialize)]
struct PostView {
    uri: String,
    author: Author,
    record: PostRecord,
    #[serde(rename = "indexedAt")]
    indexed_at: Option<String>,
}

/// `app.bsky.actor.defs#profileViewBasic`.
#[derive(Deserialize)]
struct Author {
    did: Option<String>,
    handle: String,
}

/// `app.bsky.feed.post` record.
#[derive(Deserialize)]
struct PostRecord {
    #[serde(default)]
    text: String,
    #[serde(rename = "createdAt")]
    created_at: Option<String>,
    #[serde(default)]
    langs: Vec<String>,
}

impl PostView {
    fn created(&self) -> Option<DateTime<Utc>> {
        self.record.created_at.as_deref().and_then(parse_time)
    }

    fn indexed(&self) -> Option<DateTime<Utc>> {
        self.indexed_at.as_deref().and_then(parse_time)
    }

    /// The earlier of the author's and the AppView's time (what search orders and filters by): a client clock
    /// that runs ahead cannot make a post look later than it reached the network.
    fn sort_at(&self) -> Option<DateTime<Utc>> {
        match (self.created(), self.indexed()) {
            (Some(c), Some(i)) => Some(c.min(i)),
            (c, i) => c.or(i),
        }
    }

    /// `https://bsky.app/profile/{handle}/post/{rkey}` (the DID when the handle does not resolve).
    fn url(&self) -> Option<String> {
        let rest = self.uri.strip_prefix("at://")?;
        let (repo, path) = rest.split_once('/')?;
        let rkey = path.strip_prefix("app.bsky.feed.post/")?;
        let who = match self.author.handle.as_str() {
            "" | "handle.invalid" => self.author.did.as_deref().unwrap_or(repo),
            h => h,
        };
        Some(format!("https://bsky.app/profile/{who}/post/{rkey}"))
    }

    fn to_mention(&self, ctx: &PollCtx<'_>) -> Mention {
        Mention {
            source: ctx.name.to_string(),
            key: self.uri.clone(),
            url: self.url(),
            author: Some(self.author.handle.clone()),
            // Plain text already (links and mentions sit in `facets`): nothing to strip or decode.
            text: self.record.text.trim().to_string(),
            published_at: self.created().or_else(|| self.indexed()),
            fetched_at: ctx.now,
            lang: self.record.langs.first().cloned(),
            thread: Some(self.uri.clone()),
        }
    }
}

/// `app.bsky.feed.getPostThread` output.
#[derive(Deserialize)]
struct ThreadAnswer {
    thread: ThreadNode,
}

/// `#threadViewPost` (with `post` and `replies`), or `#notFoundPost` / `#blockedPost` (neither).
#[derive(Deserialize)]
struct ThreadNode {
    post: Option<PostView>,
    #[serde(default)]
    replies: Vec<ThreadNode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(handle: &str, did: &str) -> Author {
        Author {
            did: Some(did.into()),
            handle: handle.into(),
        }
    }

    #[test]
    fn brand_accounts_match_by_handle_did_or_bare_name_on_bsky_social() {
        let accounts = vec![
            "northwindhelp".to_string(),
            "support.northwind.example".to_string(),
            "did:plc:brandbrandbrandbrand".to_string(),
        ];
        assert!(is_brand(
            &author("NorthwindHelp.bsky.social", "did:plc:x"),
            &accounts
        ));
        assert!(is_brand(
            &author("support.northwind.example", "did:plc:x"),
            &accounts
        ));
        assert!(is_brand(
            &author("renamed.example", "did:plc:brandbrandbrandbrand"),
            &accounts
        ));
        assert!(!is_brand(
            &author("northwindhelp.other.example", "did:plc:x"),
            &accounts
        ));
        assert!(!is_brand(
            &author("fan.northwindhelp.bsky.social", "did:plc:x"),
            &accounts
        ));
        let full_only = vec!["support.northwind.example".to_string()];
        assert!(!is_brand(
            &author("support.bsky.social", "did:plc:x"),
            &full_only
        ));
    }

    #[test]
    fn jwt_expiry_is_read_from_the_claims() {
        // {"alg":"ES256K"} . {"scope":"com.atproto.appPass","exp":1700000000} . signature
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"scope":"com.atproto.appPass","exp":1700000000}"#);
        let token = format!("eyJhbGciOiJFUzI1NksifQ.{payload}.c2ln");
        assert_eq!(jwt_expiry(&token).unwrap().timestamp(), 1_700_000_000);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.!!!.b"), None);
    }
}
