//! Hacker News, through the Algolia HN Search API: stories and comments matching a query, newest first.
//!
//! Each poll asks `search_by_date` for items created since the newest one seen (less a minute, for indexing lag;
//! the store drops repeats), paging up to `max_pages`. A complaint's thread is its item id: the brand's reply is
//! a comment by one of its accounts among the item's descendants (`items/{id}` returns the whole subtree), so its
//! parent chain reaches the complaint by construction.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::{self, Headers};
use super::{FoundReply, PollCtx, Polled, ReplyCheck, SourceError};
use crate::config::KindCtx;
use crate::http::RateLimit;
use crate::mention::Mention;

/// Algolia's documented limit for the HN API: 10,000 requests an hour per IP.
pub const DEFAULT_LIMIT: RateLimit = RateLimit::new(10_000, std::time::Duration::from_secs(3600));

/// Overlap with the previous poll, for items indexed late.
const OVERLAP_SECS: i64 = 60;

const AUTH_HINT: &str = "check the source's base_url (the public HN API needs no credentials)";

/// A `hackernews` source's settings.
#[derive(Debug, Clone)]
pub struct HackerNewsSource {
    base: url::Url,
    query: String,
    tags: String,
    max_pages: u32,
}

/// `[[source]]` keys of kind `hackernews`.
#[derive(Deserialize)]
struct Options {
    /// Words to search for (Algolia query syntax), e.g. `"Northwind"`.
    query: Option<String>,
    /// API root; default `https://hn.algolia.com`.
    base_url: Option<String>,
    /// Algolia tag filter; default `(story,comment)`.
    tags: Option<String>,
    /// Most result pages (100 items each) per poll; default 3.
    max_pages: Option<u32>,
}

impl HackerNewsSource {
    /// Validates the `hackernews` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<HackerNewsSource> {
        let o: Options = ctx.read("hackernews", options)?;
        let query = o.query.filter(|q| !q.trim().is_empty());
        if query.is_none() {
            ctx.problem(
                "query",
                "missing `query`: the words to search Hacker News for",
            );
        }
        let base = api::base_url(o.base_url.as_deref(), "https://hn.algolia.com", ctx);
        if o.max_pages == Some(0) {
            ctx.problem("max_pages", "must be at least 1");
        }
        Some(HackerNewsSource {
            base: base?,
            query: query?,
            tags: o.tags.unwrap_or_else(|| "(story,comment)".into()),
            max_pages: o.max_pages.unwrap_or(3).max(1),
        })
    }

    /// The query and the API root.
    pub fn describe(&self) -> String {
        format!("Hacker News search {:?} at {}", self.query, self.base)
    }

    /// Fetches items created since the last poll.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let since: Option<i64> = ctx.cursor.position.as_deref().and_then(|p| p.parse().ok());
        let filter = since.map(|s| format!("created_at_i>{}", s - OVERLAP_SECS));
        let mut mentions = Vec::new();
        let mut newest = since;
        let mut page = 0u32;
        loop {
            let page_text = page.to_string();
            let mut query = vec![
                ("query", self.query.as_str()),
                ("tags", self.tags.as_str()),
                ("hitsPerPage", "100"),
                ("page", page_text.as_str()),
            ];
            if let Some(f) = &filter {
                query.push(("numericFilters", f));
            }
            let url = api::endpoint(&self.base, "api/v1/search_by_date", &query);
            let found: SearchPage = api::get_json(ctx, &url, &Headers::new(), AUTH_HINT).await?;
            for hit in &found.hits {
                newest = newest.max(Some(hit.created_at_i));
                mentions.push(hit.to_mention(ctx));
            }
            page += 1;
            if page >= found.nb_pages || page >= self.max_pages || found.hits.is_empty() {
                break;
            }
        }
        Ok(Polled::fresh(mentions, newest.map(|n| n.to_string())))
    }

    /// Looks for the brand's comment among the complaint's descendants.
    pub async fn find_reply(
        &self,
        ctx: &PollCtx<'_>,
        check: &ReplyCheck,
    ) -> Result<Option<FoundReply>, SourceError> {
        let url = api::endpoint(&self.base, &format!("api/v1/items/{}", check.thread), &[]);
        let item: Item = api::get_json(ctx, &url, &Headers::new(), AUTH_HINT).await?;
        let mut found: Option<FoundReply> = None;
        let mut stack: Vec<&Item> = item.children.iter().collect();
        while let Some(c) = stack.pop() {
            stack.extend(c.children.iter());
            let (Some(author), Some(at)) = (c.author.as_deref(), c.time()) else {
                continue;
            };
            if at >= check.posted_at
                && super::is_account(author, &check.accounts)
                && found.as_ref().is_none_or(|f| at < f.at)
            {
                found = Some(FoundReply {
                    author: author.to_string(),
                    at,
                    url: Some(item_url(&c.id.to_string())),
                });
            }
        }
        Ok(found)
    }
}

fn item_url(id: &str) -> String {
    format!("https://news.ycombinator.com/item?id={id}")
}

/// One page of `search_by_date`.
#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    hits: Vec<Hit>,
    #[serde(rename = "nbPages", default)]
    nb_pages: u32,
}

/// A story or comment in search results.
#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "objectID")]
    object_id: String,
    author: Option<String>,
    created_at_i: i64,
    title: Option<String>,
    story_text: Option<String>,
    comment_text: Option<String>,
}

impl Hit {
    fn to_mention(&self, ctx: &PollCtx<'_>) -> Mention {
        let body = self
            .comment_text
            .as_deref()
            .or(self.story_text.as_deref())
            .map(crate::html::to_text)
            .unwrap_or_default();
        // A comment is its own words: the story's title is someone else's, and could name the brand for it.
        let title = self.title.as_deref().unwrap_or_default();
        let text = match (title.is_empty(), body.is_empty()) {
            (false, false) => format!("{title}\n{body}"),
            (false, true) => title.to_string(),
            _ => body,
        };
        Mention {
            source: ctx.name.to_string(),
            key: self.object_id.clone(),
            url: Some(item_url(&self.object_id)),
            author: self.author.clone(),
            text,
            published_at: DateTime::from_timestamp(self.created_at_i, 0),
            fetched_at: ctx.now,
            lang: None,
            thread: Some(self.object_id.clone()),
        }
    }
}

/// An item with its subtree, from `items/{id}`.
#[derive(Deserialize)]
struct Item {
    id: i64,
    author: Option<String>,
    created_at: Option<String>,
    created_at_i: Option<i64>,
    #[serde(default)]
    children: Vec<Item>,
}

impl Item {
    fn time(&self) -> Option<DateTime<Utc>> {
        self.created_at_i
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .or_else(|| super::parse_time(self.created_at.as_deref()?))
    }
}
