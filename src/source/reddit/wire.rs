//! The shapes Reddit answers in: listings of posts (`t3`) and comments (`t1`) with their nested `replies`, the
//! token answer, and what a complaint's thread reference holds; and how a post or comment becomes a mention.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{WEB, plain};
use crate::mention::Mention;
use crate::source::PollCtx;

/// What a complaint's [`Mention::thread`] holds.
#[derive(Serialize, Deserialize)]
pub(super) struct Thread {
    /// The complaint's fullname (`t3_…` post or `t1_…` comment).
    pub(super) name: String,
    /// Its post's fullname (`t3_…`; the post itself for a post).
    pub(super) link_id: String,
}

/// `POST /api/v1/access_token`.
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub(super) access_token: Option<String>,
    pub(super) expires_in: Option<f64>,
    pub(super) error: Option<serde_json::Value>,
}

/// `{kind: "Listing", data: {...}}`.
#[derive(Deserialize)]
pub(super) struct Listing {
    pub(super) data: ListingData,
}

#[derive(Deserialize)]
pub(super) struct ListingData {
    pub(super) after: Option<String>,
    pub(super) before: Option<String>,
    #[serde(default)]
    pub(super) children: Vec<Thing>,
}

/// A post (`t3`), comment (`t1`) or "load more" stub (`more`).
#[derive(Deserialize)]
pub(super) struct Thing {
    pub(super) kind: String,
    pub(super) data: ThingData,
}

#[derive(Deserialize)]
pub(super) struct ThingData {
    pub(super) name: Option<String>,
    pub(super) author: Option<String>,
    pub(super) title: Option<String>,
    pub(super) selftext: Option<String>,
    pub(super) body: Option<String>,
    pub(super) created_utc: Option<f64>,
    pub(super) permalink: Option<String>,
    pub(super) link_id: Option<String>,
    #[serde(default)]
    pub(super) replies: Replies,
}

/// A comment's `replies`: a Listing, or `""` when there are none.
#[derive(Deserialize, Default)]
#[serde(untagged)]
pub(super) enum Replies {
    Listing(Box<Listing>),
    #[default]
    None,
    Other(serde::de::IgnoredAny),
}

impl Replies {
    pub(super) fn children(&self) -> &[Thing] {
        match self {
            Replies::Listing(l) => &l.data.children,
            _ => &[],
        }
    }
}

impl ThingData {
    pub(super) fn time(&self) -> Option<DateTime<Utc>> {
        let t = self.created_utc.filter(|t| t.is_finite())?;
        DateTime::from_timestamp_millis((t * 1000.0).round() as i64)
    }

    pub(super) fn url(&self) -> Option<String> {
        let p = self.permalink.as_deref()?;
        Some(if p.starts_with("http") {
            p.to_string()
        } else {
            format!("{WEB}{p}")
        })
    }
}

impl Thing {
    pub(super) fn to_mention(&self, ctx: &PollCtx<'_>) -> Option<Mention> {
        let d = &self.data;
        let name = d.name.clone()?;
        let (text, link_id) = match self.kind.as_str() {
            "t3" => {
                let title = plain(d.title.as_deref().unwrap_or_default());
                let body = plain(d.selftext.as_deref().unwrap_or_default());
                let text = match (title.is_empty(), body.is_empty()) {
                    (false, false) => format!("{title}\n{body}"),
                    (false, true) => title,
                    _ => body,
                };
                (text, name.clone())
            }
            // A comment is its own words: the post's title is someone else's.
            "t1" => (
                plain(d.body.as_deref().unwrap_or_default()),
                d.link_id.clone()?,
            ),
            _ => return None,
        };
        let thread = serde_json::to_string(&Thread {
            name: name.clone(),
            link_id,
        })
        .expect("strings serialise");
        Some(Mention {
            source: ctx.name.to_string(),
            key: name,
            url: d.url(),
            author: d.author.clone().filter(|a| a != "[deleted]"),
            text,
            published_at: d.time(),
            fetched_at: ctx.now,
            lang: None,
            thread: Some(thread),
        })
    }
}
