//! Discourse forums (self-hosted or hosted), through the forum's own JSON API: the latest posts across topics
//! (`/posts.json`) and/or a search (`/search.json?q=<query> order:latest`), with an optional API key.
//!
//! Post ids are one increasing sequence per forum, so the cursor is the highest post id seen (both modes share
//! it). `posts.json` is paged backwards with `before=<lowest id of the page>` until the cursor is reached, at most
//! `max_pages` pages; the first poll (no cursor) reads one page, as the backlog before the daemon started is not
//! news. Search results are newest first and paged with `page=N` in the same way.
//!
//! A complaint's thread is its topic id and post number. The brand's reply is a later regular post in the topic
//! (`/t/{id}.json`, `post_stream.posts`, plus at most two bounded `/t/{id}/posts.json?post_ids[]=…` fetches for
//! posts past the first chunk) by one of the brand's accounts (or, with `staff_replies`, by any staff member) made
//! at or after the complaint, that answers it: when the complaint opened the topic (post number 1) any such post
//! answers it, as the topic is the complaint's own; otherwise the post must reply to it (`reply_to_post_number`
//! equal to the complaint's post number) or quote it (a quote block with the complaint's `data-post` and
//! `data-topic`). Whispers, moderator actions and small actions (`post_type` other than 1) never count: the
//! customer does not see them as an answer.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError};
use crate::config::{KindCtx, Secret};
use crate::http::RateLimit;
use crate::mention::Mention;

/// Discourse's default per-IP limit: 200 requests a minute (`DISCOURSE_MAX_REQS_PER_IP_PER_MINUTE`; there is also
/// a 50-per-10-seconds burst limit, which one poll plus its reply checks stays under).
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(200, std::time::Duration::from_secs(60));

/// Discourse's default limit for admin API keys: 60 requests a minute, shared by every key of the forum
/// (`max_admin_api_reqs_per_minute`). The default when an API key is configured.
pub const API_KEY_LIMIT: RateLimit = RateLimit::new(60, std::time::Duration::from_secs(60));

/// Post ids per `/t/{id}/posts.json` request, and how many such requests one reply check may make.
const IDS_PER_FETCH: usize = 20;
const MAX_EXTRA_FETCHES: usize = 2;

/// Discourse's `post_type` of an ordinary post (2 moderator action, 3 small action, 4 whisper).
const REGULAR_POST: u8 = 1;

const HINT_ANONYMOUS: &str = "the forum refused anonymous access: set `api_key_env` (or `api_key_file`) and \
     `api_username` for an account that can read it, or check `base_url`";
const HINT_KEY: &str = "check the API key named by `api_key_env` / `api_key_file` (revoked, or scoped without read \
     access?) and that `api_username` is the user it was made for, and check `base_url`";

/// A `discourse` source's settings.
#[derive(Debug, Clone)]
pub struct DiscourseSource {
    base: url::Url,
    query: Option<String>,
    latest: bool,
    auth: Option<(Secret, String)>,
    staff_replies: bool,
    max_pages: u32,
}

/// `[[source]]` keys of kind `discourse`.
#[derive(Deserialize)]
struct Options {
    /// The forum's root, e.g. `https://community.northwind.example` (a forum under a path keeps it). Required.
    base_url: Option<String>,
    /// Discourse search words (search syntax, e.g. `Northwind #support`); `order:latest` is added.
    query: Option<String>,
    /// Watch the latest posts of the whole forum (`/posts.json`); default true when no `query` is given.
    latest: Option<bool>,
    /// Environment variable holding an API key (sent as `Api-Key`; needs `api_username`).
    api_key_env: Option<String>,
    /// File holding an API key (instead of `api_key_env`).
    api_key_file: Option<String>,
    /// The user the API key acts as (sent as `Api-Username`).
    api_username: Option<String>,
    /// A reply by any staff member (staff, admin or moderator) also counts as the brand's; default false.
    staff_replies: Option<bool>,
    /// Most pages (about 50 posts each) per poll when catching up; default 3.
    max_pages: Option<u32>,
    /// Never valid: keys are read only from `api_key_env` / `api_key_file`.
    api_key: Option<toml::Value>,
}

impl DiscourseSource {
    /// Validates the `discourse` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<DiscourseSource> {
        let o: Options = ctx.read("discourse", options)?;
        let base = match o.base_url.as_deref() {
            Some(b) => api::base_url(Some(b), "", ctx),
            None => {
                ctx.problem(
                    "base_url",
                    "missing `base_url`: the forum's address, e.g. \"https://community.example\"",
                );
                None
            }
        };
        let query = o.query.filter(|q| !q.trim().is_empty());
        let latest = o.latest.unwrap_or(query.is_none());
        if query.is_none() && !latest {
            ctx.problem(
                "latest",
                "nothing to watch: `latest = false` and no `query` (set one of them)",
            );
        }
        if o.api_key.is_some() {
            ctx.problem(
                "api_key",
                "secrets never go in the file: use `api_key_env` or `api_key_file`",
            );
        }
        let key = ctx.secret(
            "api_key",
            o.api_key_env.as_deref(),
            o.api_key_file.as_deref(),
        );
        let key_given = o.api_key_env.is_some() || o.api_key_file.is_some();
        let username = o.api_username.filter(|u| !u.trim().is_empty());
        if key_given && username.is_none() {
            ctx.problem(
                "api_username",
                "an API key is given but no `api_username` (the user the key acts as)",
            );
        }
        if !key_given && username.is_some() {
            ctx.problem(
                "api_key_env",
                "`api_username` is given but no API key: set `api_key_env` or `api_key_file`",
            );
        }
        if o.max_pages == Some(0) {
            ctx.problem("max_pages", "must be at least 1");
        }
        let auth = match (key, username) {
            (Some(k), Some(u)) => Some((k, u.trim().to_string())),
            (None, None) if !key_given => None,
            // A problem is recorded: half a credential, or a key that cannot be read.
            _ => return None,
        };
        if query.is_none() && !latest {
            return None;
        }
        Some(DiscourseSource {
            base: base?,
            query,
            latest,
            auth,
            staff_replies: o.staff_replies.unwrap_or(false),
            max_pages: o.max_pages.unwrap_or(3).max(1),
        })
    }

    /// What is watched, and as whom (never the key).
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.latest {
            what.push("latest posts".to_string());
        }
        if let Some(q) = &self.query {
            what.push(format!("search {q:?}"));
        }
        let who = match &self.auth {
            Some((_, user)) => format!(" (API key as {user})"),
            None => String::new(),
        };
        format!("Discourse {} at {}{who}", what.join(" and "), self.base)
    }

    /// The forum's default budget: the admin API's when a key is configured, the per-IP one otherwise.
    pub fn default_limit(&self) -> RateLimit {
        if self.auth.is_some() {
            API_KEY_LIMIT
        } else {
            DEFAULT_LIMIT
        }
    }

    fn headers(&self) -> Headers {
        match &self.auth {
            Some((key, user)) => vec![
                ("Api-Key", key.expose().to_string()),
                ("Api-Username", user.clone()),
            ],
            None => Headers::new(),
        }
    }

    fn hint(&self) -> &'static str {
        if self.auth.is_some() {
            HINT_KEY
        } else {
            HINT_ANONYMOUS
        }
    }

    /// Fetches posts newer than the cursor.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let since: Option<u64> = ctx.cursor.position.as_deref().and_then(|p| p.parse().ok());
        let mut found = Found {
            since,
            newest: since,
            seen: HashSet::new(),
            mentions: Vec::new(),
        };
        if self.latest {
            self.poll_latest(ctx, &mut found).await?;
        }
        if let Some(query) = &self.query {
            self.poll_search(ctx, query, &mut found).await?;
        }
        Ok(Polled::fresh(
            found.mentions,
            found.newest.map(|n| n.to_string()),
        ))
    }

    /// `/posts.json`, newest first, paged backwards with `before=` until the cursor.
    async fn poll_latest(&self, ctx: &PollCtx<'_>, found: &mut Found) -> Result<(), SourceError> {
        let headers = self.headers();
        let mut before: Option<u64> = None;
        for page in 0..self.max_pages {
            let before_text = before.map(|b| b.to_string());
            let query: Vec<(&str, &str)> = before_text
                .as_deref()
                .map(|b| vec![("before", b)])
                .unwrap_or_default();
            let url = api::endpoint(&self.base, "posts.json", &query);
            let got: LatestPosts = api::get_json(ctx, &url, &headers, self.hint()).await?;
            let Some(lowest) = got.latest_posts.iter().map(|p| p.id).min() else {
                return Ok(());
            };
            for post in &got.latest_posts {
                if post.post_type.unwrap_or(REGULAR_POST) == REGULAR_POST {
                    found.offer(post.id, || post.to_mention(&self.base, ctx));
                } else {
                    found.note(post.id);
                }
            }
            // `before` may or may not include the post it names: a page that goes no lower ends the walk.
            let reached = match found.since {
                None => true,
                Some(s) => lowest <= s.saturating_add(1),
            };
            if reached || before.is_some_and(|b| lowest >= b) {
                return Ok(());
            }
            before = Some(lowest);
            if page + 1 == self.max_pages {
                tracing::warn!(
                    source = ctx.name,
                    pages = self.max_pages,
                    "posts.json: more new posts than max_pages holds; the oldest of them are skipped (raise \
                     max_pages or poll more often)"
                );
            }
        }
        Ok(())
    }

    /// `/search.json?q=<query> order:latest`, newest first, paged with `page=` until the cursor.
    ///
    /// Search results carry only a `blurb` (a truncated excerpt) of each post, not its full text; the topic's title
    /// comes from `topics[]`. We use the blurb rather than fetch every post (`/posts/{id}.json`), which would cost
    /// one request per result: the blurb is the part around the matched words, which is what the rules need.
    async fn poll_search(
        &self,
        ctx: &PollCtx<'_>,
        query: &str,
        found: &mut Found,
    ) -> Result<(), SourceError> {
        let headers = self.headers();
        let q = format!("{} order:latest", query.trim());
        for page in 1..=self.max_pages {
            let page_text = page.to_string();
            let mut pairs = vec![("q", q.as_str())];
            if page > 1 {
                pairs.push(("page", page_text.as_str()));
            }
            let url = api::endpoint(&self.base, "search.json", &pairs);
            let got: SearchResult = api::get_json(ctx, &url, &headers, self.hint()).await?;
            let Some(lowest) = got.posts.iter().map(|p| p.id).min() else {
                return Ok(());
            };
            for post in &got.posts {
                let topic = got.topics.iter().find(|t| t.id == post.topic_id);
                found.offer(post.id, || post.to_mention(topic, &self.base, ctx));
            }
            let reached = match found.since {
                None => true,
                Some(s) => lowest <= s,
            };
            let more = got
                .grouped_search_result
                .as_ref()
                .and_then(|g| g.more_full_page_results)
                .unwrap_or(false);
            if reached || !more {
                return Ok(());
            }
            if page == self.max_pages {
                tracing::warn!(
                    source = ctx.name,
                    pages = self.max_pages,
                    "search.json: more new results than max_pages holds; the oldest of them are skipped"
                );
            }
        }
        Ok(())
    }

    /// Looks in the complaint's topic for a later post by the brand that answers it.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let thread: Thread = check.thread_ref()?;
        let complaint_id: Option<u64> = check.key.parse().ok();
        let headers = self.headers();
        let url = api::endpoint(&self.base, &format!("t/{}.json", thread.topic_id), &[]);
        let topic: Topic = api::get_json(ctx, &url, &headers, self.hint()).await?;
        let slug = topic.slug.clone();
        if let Some(r) = self.earliest_reply(&topic.post_stream.posts, &thread, check, &slug) {
            return Ok(Some(r));
        }
        // Posts past the first chunk: the stream lists every id in topic order; fetch the ones after the complaint.
        let loaded: HashSet<u64> = topic.post_stream.posts.iter().map(|p| p.id).collect();
        let stream = &topic.post_stream.stream;
        let start = complaint_id
            .and_then(|c| stream.iter().position(|&id| id == c))
            .map_or(0, |i| i + 1);
        let missing: Vec<u64> = stream[start.min(stream.len())..]
            .iter()
            .copied()
            .filter(|id| !loaded.contains(id) && complaint_id.is_none_or(|c| *id > c))
            .collect();
        for chunk in missing.chunks(IDS_PER_FETCH).take(MAX_EXTRA_FETCHES) {
            let ids: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
            let pairs: Vec<(&str, &str)> =
                ids.iter().map(|id| ("post_ids[]", id.as_str())).collect();
            let url = api::endpoint(
                &self.base,
                &format!("t/{}/posts.json", thread.topic_id),
                &pairs,
            );
            let more: TopicPosts = api::get_json(ctx, &url, &headers, self.hint()).await?;
            if let Some(r) = self.earliest_reply(&more.post_stream.posts, &thread, check, &slug) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The earliest post of `posts` that is the brand's answer to the complaint.
    fn earliest_reply(
        &self,
        posts: &[Post],
        thread: &Thread,
        check: &ReplyCheck,
        slug: &Option<String>,
    ) -> Option<FoundReply> {
        posts
            .iter()
            .filter(|p| p.post_number > thread.post_number)
            .filter(|p| p.post_type.unwrap_or(REGULAR_POST) == REGULAR_POST)
            .filter(|p| self.is_brand(p, &check.accounts))
            .filter(|p| thread.post_number == 1 || p.answers(thread))
            .filter_map(|p| Some((p, p.time()?)))
            .filter(|(_, at)| *at >= check.posted_at)
            .min_by_key(|(p, at)| (*at, p.post_number))
            .map(|(p, at)| FoundReply {
                author: p.username.clone().unwrap_or_default(),
                at,
                url: Some(post_url(
                    &self.base,
                    p.topic_slug.as_deref().or(slug.as_deref()),
                    thread.topic_id,
                    p.post_number,
                )),
            })
    }

    fn is_brand(&self, post: &Post, accounts: &[String]) -> bool {
        let by_account = post
            .username
            .as_deref()
            .is_some_and(|u| super::is_account(u, accounts));
        let by_staff =
            self.staff_replies && [post.staff, post.admin, post.moderator].contains(&Some(true));
        by_account || by_staff
    }
}

/// Mentions gathered in one poll, without repeats, and the highest post id seen.
struct Found {
    since: Option<u64>,
    newest: Option<u64>,
    seen: HashSet<u64>,
    mentions: Vec<Mention>,
}

impl Found {
    /// Takes post `id` if it is new (past the cursor and not yet taken in this poll).
    fn offer(&mut self, id: u64, mention: impl FnOnce() -> Mention) {
        self.note(id);
        if self.since.is_none_or(|s| id > s) && self.seen.insert(id) {
            self.mentions.push(mention());
        }
    }

    /// Moves the cursor past `id` without taking it.
    fn note(&mut self, id: u64) {
        self.newest = self.newest.max(Some(id));
    }
}

/// `{base}/t/{slug}/{topic_id}/{post_number}` (Discourse redirects a wrong or missing slug).
fn post_url(base: &url::Url, slug: Option<&str>, topic_id: u64, post_number: u64) -> String {
    let root = base.as_str().trim_end_matches('/');
    let slug = slug.filter(|s| !s.is_empty()).unwrap_or("-");
    format!("{root}/t/{slug}/{topic_id}/{post_number}")
}

fn parse_time(t: Option<&str>) -> Option<DateTime<Utc>> {
    super::parse_time(t?)
}

/// Where a complaint stands: what `find_reply` needs ([`Mention::thread`], as JSON).
#[derive(Serialize, Deserialize)]
struct Thread {
    topic_id: u64,
    post_number: u64,
}

impl Thread {
    fn json(topic_id: u64, post_number: u64) -> String {
        serde_json::to_string(&Thread {
            topic_id,
            post_number,
        })
        .expect("two numbers serialise")
    }
}

/// `/posts.json`.
#[derive(Deserialize)]
struct LatestPosts {
    #[serde(default)]
    latest_posts: Vec<Post>,
}

/// A post as `/posts.json`, `/t/{id}.json` and `/t/{id}/posts.json` give it.
#[derive(Deserialize)]
struct Post {
    id: u64,
    username: Option<String>,
    created_at: Option<String>,
    cooked: Option<String>,
    post_number: u64,
    post_type: Option<u8>,
    reply_to_post_number: Option<u64>,
    topic_id: Option<u64>,
    topic_slug: Option<String>,
    topic_title: Option<String>,
    staff: Option<bool>,
    admin: Option<bool>,
    moderator: Option<bool>,
}

impl Post {
    fn time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.created_at.as_deref())
    }

    /// Whether this post replies to, or quotes, the complaint.
    fn answers(&self, complaint: &Thread) -> bool {
        if self.reply_to_post_number == Some(complaint.post_number) {
            return true;
        }
        let cooked = self.cooked.as_deref().unwrap_or_default();
        let post = format!("data-post=\"{}\"", complaint.post_number);
        let topic = format!("data-topic=\"{}\"", complaint.topic_id);
        cooked.split("<aside").skip(1).any(|aside| {
            let head = &aside[..aside.find('>').unwrap_or(aside.len())];
            head.contains("quote") && head.contains(&post) && head.contains(&topic)
        })
    }

    fn to_mention(&self, base: &url::Url, ctx: &PollCtx<'_>) -> Mention {
        let topic_id = self.topic_id.unwrap_or_default();
        let body = own_words(self.cooked.as_deref().unwrap_or_default());
        let title = if self.post_number == 1 {
            self.topic_title.as_deref()
        } else {
            None
        };
        Mention {
            source: ctx.name.to_string(),
            key: self.id.to_string(),
            url: Some(post_url(
                base,
                self.topic_slug.as_deref(),
                topic_id,
                self.post_number,
            )),
            author: self.username.clone(),
            text: with_title(title, body),
            published_at: self.time(),
            fetched_at: ctx.now,
            lang: None,
            thread: Some(Thread::json(topic_id, self.post_number)),
        }
    }
}

/// A post's text without the posts it quotes (their words are someone else's, and could name the brand for it).
fn own_words(cooked: &str) -> String {
    let mut out = String::with_capacity(cooked.len());
    let mut rest = cooked;
    while let Some(start) = rest.find("<aside") {
        let head_end = rest[start..].find('>').map_or(rest.len(), |i| start + i);
        if !rest[start..head_end].contains("quote") {
            out.push_str(&rest[..head_end]);
            rest = &rest[head_end..];
            continue;
        }
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("</aside>")
            .map_or("", |i| &rest[start + i + "</aside>".len()..]);
    }
    out.push_str(rest);
    crate::html::to_text(&out)
}

fn with_title(title: Option<&str>, body: String) -> String {
    let title = title.map(crate::html::to_text).unwrap_or_default();
    match (title.is_empty(), body.is_empty()) {
        (false, false) => format!("{title}\n{body}"),
        (false, true) => title,
        _ => body,
    }
}

/// `/search.json`.
#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    posts: Vec<SearchPost>,
    #[serde(default)]
    topics: Vec<SearchTopic>,
    grouped_search_result: Option<Grouped>,
}

#[derive(Deserialize)]
struct Grouped {
    more_full_page_results: Option<bool>,
}

/// A post in search results: an excerpt (`blurb`), no full text.
#[derive(Deserialize)]
struct SearchPost {
    id: u64,
    username: Option<String>,
    created_at: Option<String>,
    blurb: Option<String>,
    post_number: u64,
    topic_id: u64,
}

#[derive(Deserialize)]
struct SearchTopic {
    id: u64,
    title: Option<String>,
    slug: Option<String>,
}

impl SearchPost {
    fn to_mention(
        &self,
        topic: Option<&SearchTopic>,
        base: &url::Url,
        ctx: &PollCtx<'_>,
    ) -> Mention {
        let body = crate::html::to_text(self.blurb.as_deref().unwrap_or_default());
        let title = topic
            .filter(|_| self.post_number == 1)
            .and_then(|t| t.title.as_deref());
        Mention {
            source: ctx.name.to_string(),
            key: self.id.to_string(),
            url: Some(post_url(
                base,
                topic.and_then(|t| t.slug.as_deref()),
                self.topic_id,
                self.post_number,
            )),
            author: self.username.clone(),
            text: with_title(title, body),
            published_at: parse_time(self.created_at.as_deref()),
            fetched_at: ctx.now,
            lang: None,
            thread: Some(Thread::json(self.topic_id, self.post_number)),
        }
    }
}

/// `/t/{id}.json`: the topic with the first chunk of its posts and the ids of all of them.
#[derive(Deserialize)]
struct Topic {
    slug: Option<String>,
    post_stream: PostStream,
}

#[derive(Deserialize)]
struct PostStream {
    #[serde(default)]
    posts: Vec<Post>,
    #[serde(default)]
    stream: Vec<u64>,
}

/// `/t/{id}/posts.json?post_ids[]=…`.
#[derive(Deserialize)]
struct TopicPosts {
    post_stream: PostStream,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_posts_are_not_the_authors_words() {
        let cooked = "<aside class=\"quote no-group\" data-username=\"kim\" data-post=\"1\" data-topic=\"7\">\n\
            <div class=\"title\">kim:</div><blockquote><p>Northwind lost my bag</p></blockquote></aside>\n\
            <p>Same &amp; worse.</p><aside class=\"onebox\"><p>link preview</p></aside>";
        assert_eq!(own_words(cooked), "Same & worse.\nlink preview");
    }

    #[test]
    fn a_reply_or_a_quote_answers_a_post() {
        let post = |reply_to: Option<u64>, cooked: &str| Post {
            id: 9,
            username: Some("NorthwindHelp".into()),
            created_at: None,
            cooked: Some(cooked.into()),
            post_number: 5,
            post_type: Some(1),
            reply_to_post_number: reply_to,
            topic_id: Some(7),
            topic_slug: None,
            topic_title: None,
            staff: None,
            admin: None,
            moderator: None,
        };
        let complaint = Thread {
            topic_id: 7,
            post_number: 3,
        };
        assert!(post(Some(3), "").answers(&complaint));
        assert!(!post(Some(2), "").answers(&complaint));
        assert!(!post(None, "<p>Hi</p>").answers(&complaint));
        let quote = "<aside class=\"quote\" data-username=\"kim\" data-post=\"3\" data-topic=\"7\"><blockquote>x</blockquote></aside><p>Sorry!</p>";
        assert!(post(None, quote).answers(&complaint));
        let other_topic = quote.replace("data-topic=\"7\"", "data-topic=\"8\"");
        assert!(!post(None, &other_topic).answers(&complaint));
    }

    #[test]
    fn links_keep_the_forum_path() {
        let base = url::Url::parse("https://forum.example/community/").unwrap();
        assert_eq!(
            post_url(&base, Some("lost-bag"), 7, 3),
            "https://forum.example/community/t/lost-bag/7/3"
        );
        let bare = url::Url::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(post_url(&bare, None, 7, 1), "http://127.0.0.1:9000/t/-/7/1");
    }
}
