//! RSS 2.0, Atom and JSON Feed sources, over HTTP(S) or from a local file (`file://`).
//!
//! Real feeds are messy, so before parsing: non-UTF-8 bodies without an XML encoding declaration are transcoded
//! (feed-rs would report "no root" for them), HTML pages are recognised and reported as such, and a feed that
//! fails only because of bare `&` is repaired once. Items with no id get a stable hash of their content, never a
//! random one, so nothing alerts twice.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Cursor, PollCtx, Polled, SourceError};
use crate::config::KindCtx;
use crate::http::{FetchError, Fetched, Get};
use crate::mention::Mention;

/// Most text kept per item; longer posts are cut (keyword rules need the start, not a whole article).
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A feed source's settings.
#[derive(Debug, Clone)]
pub struct FeedSource {
    target: Target,
    /// The URL came from `url_env` / `url_file`: it is a credential, so only its host is ever shown.
    private: bool,
}

#[derive(Debug, Clone)]
enum Target {
    Http(url::Url),
    File(PathBuf),
}

/// `[[source]]` keys of kind `feed`.
#[derive(Deserialize)]
struct Options {
    /// `http(s)://…` or `file://path` (a relative path is relative to the config file).
    url: Option<String>,
    /// Environment variable holding the URL, for private feeds whose URL carries a token (Reddit, Google Alerts).
    url_env: Option<String>,
    /// File holding such a URL.
    url_file: Option<String>,
}

impl FeedSource {
    /// Validates the `feed` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<FeedSource> {
        let o: Options = ctx.read("feed", options)?;
        let private = ctx.secret("url", o.url_env.as_deref(), o.url_file.as_deref());
        let (url, private) = match (o.url, private) {
            (Some(_), Some(_)) => {
                ctx.problem(
                    "url",
                    "give `url`, or `url_env` / `url_file` for a private feed, not both",
                );
                return None;
            }
            (Some(url), None) => (url, false),
            (None, Some(secret)) => (secret.expose().trim().to_string(), true),
            (None, None) => {
                if o.url_env.is_none() && o.url_file.is_none() {
                    ctx.problem(
                        "url",
                        "missing `url` (http://, https:// or file://; `url_env` / `url_file` for a private feed)",
                    );
                }
                return None;
            }
        };
        if let Some(path) = url.strip_prefix("file://") {
            return Some(FeedSource {
                target: Target::File(crate::config::values::resolve(ctx.base_dir, path)),
                private,
            });
        }
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Some(FeedSource {
                    target: Target::Http(u),
                    private,
                })
            }
            Ok(u) => {
                ctx.problem(
                    "url",
                    format!(
                        "unsupported scheme {:?} (use http, https or file)",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) if private => {
                // Never echo a private URL: it is a credential.
                ctx.problem("url", format!("the private feed URL is not a URL: {e}"));
                None
            }
            Err(e) => {
                ctx.problem("url", format!("{url:?} is not a URL: {e}"));
                None
            }
        }
    }

    /// The URL without its query string (private feeds put tokens there); only the host of a private feed.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Http(u) if self.private => {
                format!(
                    "private feed at {}://{}/…",
                    u.scheme(),
                    u.host_str().unwrap_or_default()
                )
            }
            Target::Http(u) => {
                let mut shown = u.clone();
                if shown.query().is_some() {
                    shown.set_query(Some("…"));
                }
                shown.to_string()
            }
            Target::File(p) => format!("file://{}", p.display()),
        }
    }

    /// Fetches and parses the feed.
    pub async fn poll(&self, ctx: &PollCtx<'_>) -> Result<Polled, SourceError> {
        let (bytes, content_type, validators) = match &self.target {
            Target::Http(url) => {
                let get = Get {
                    url,
                    validators: &ctx.cursor.validators,
                    timeout: ctx.timeout,
                    max_body: ctx.max_body,
                };
                match ctx.http.get(get).await? {
                    Fetched::NotModified => {
                        return Ok(Polled {
                            mentions: vec![],
                            cursor: ctx.cursor.clone(),
                            not_modified: true,
                        });
                    }
                    Fetched::Body(b) => (b.bytes, b.content_type, b.validators),
                }
            }
            Target::File(path) => (
                read_file(path, ctx.max_body).await?,
                None,
                Default::default(),
            ),
        };
        let feed = parse(&bytes, content_type.as_deref())?;
        let mentions = feed
            .entries
            .iter()
            .map(|e| to_mention(e, &feed, ctx))
            .collect();
        Ok(Polled {
            mentions,
            cursor: Cursor {
                validators,
                position: None,
            },
            not_modified: false,
        })
    }
}

async fn read_file(path: &std::path::Path, cap: u64) -> Result<Vec<u8>, FetchError> {
    let err = |reason: String| FetchError::File {
        path: path.display().to_string(),
        reason,
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| err(e.to_string()))?;
    if meta.len() > cap {
        return Err(FetchError::TooLarge { limit: cap });
    }
    tokio::fs::read(path).await.map_err(|e| err(e.to_string()))
}

/// Parses a feed body, repairing what can be repaired safely.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<feed_rs::model::Feed, SourceError> {
    let body = to_utf8(bytes, content_type);
    if looks_like_html(&body) {
        return Err(SourceError::NotAFeed(
            "the server sent an HTML page (a login wall, a bot check or the wrong URL?)".into(),
        ));
    }
    match parser().parse(&body[..]) {
        Ok(feed) => Ok(feed),
        Err(first) => {
            let repaired = escape_bare_ampersands(&body);
            if repaired.len() != body.len()
                && let Ok(feed) = parser().parse(&repaired[..])
            {
                tracing::debug!("feed parsed after escaping bare ampersands");
                return Ok(feed);
            }
            Err(match first {
                feed_rs::parser::ParseFeedError::ParseError(
                    feed_rs::parser::ParseErrorKind::NoFeedRoot,
                ) => SourceError::NotAFeed("no RSS, Atom or JSON Feed root element".into()),
                other => SourceError::Parse(other.to_string()),
            })
        }
    }
}

fn parser() -> feed_rs::parser::Parser {
    // An empty id means "none given"; `stable_key` then hashes the content instead of feed-rs's random UUID.
    feed_rs::parser::Builder::new()
        .id_generator(|links, _title, _uri| {
            links.first().map(|l| l.href.clone()).unwrap_or_default()
        })
        .build()
}

/// UTF-8 bodies pass through; others are transcoded unless an XML declaration names their encoding (the XML
/// parser honours it). Fallback charset: the `Content-Type` one, else windows-1252 (what mislabelled Latin-1 feeds
/// almost always are).
fn to_utf8(bytes: &[u8], content_type: Option<&str>) -> Vec<u8> {
    if std::str::from_utf8(bytes).is_ok()
        || declares_encoding(bytes)
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
    {
        return bytes.to_vec();
    }
    let label = content_type
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("charset="))
        })
        .map(|c| c.trim_matches('"'));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::WINDOWS_1252);
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned().into_bytes()
}

fn declares_encoding(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(200)];
    let head = String::from_utf8_lossy(head);
    head.trim_start().starts_with("<?xml")
        && head
            .split("?>")
            .next()
            .is_some_and(|decl| decl.contains("encoding="))
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// Escapes `&` that does not start a character or entity reference.
fn escape_bare_ampersands(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    for (i, &b) in body.iter().enumerate() {
        if b == b'&' && !starts_reference(&body[i + 1..]) {
            out.extend_from_slice(b"&amp;");
        } else {
            out.push(b);
        }
    }
    out
}

fn starts_reference(rest: &[u8]) -> bool {
    let end = rest.iter().take(12).position(|&b| b == b';');
    let Some(end) = end else { return false };
    let name = &rest[..end];
    match name.first() {
        Some(b'#') => {
            name.len() > 1
                && name[1..]
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || *b == b'x')
        }
        Some(c) if c.is_ascii_alphabetic() => name.iter().all(|b| b.is_ascii_alphanumeric()),
        _ => false,
    }
}

fn to_mention(
    e: &feed_rs::model::Entry,
    feed: &feed_rs::model::Feed,
    ctx: &PollCtx<'_>,
) -> Mention {
    let title = e
        .title
        .as_ref()
        .map(|t| crate::html::to_text(&t.content))
        .unwrap_or_default();
    let body = e
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .or(e.summary.as_ref().map(|s| s.content.as_str()))
        .map(crate::html::to_text)
        .unwrap_or_default();
    let mut text = if body.is_empty() || body == title {
        title
    } else if title.is_empty() || body.starts_with(&title) {
        body
    } else {
        format!("{title}\n{body}")
    };
    truncate(&mut text, MAX_TEXT_BYTES);
    let key = if e.id.is_empty() {
        stable_key(&text)
    } else {
        e.id.clone()
    };
    Mention {
        source: ctx.name.to_string(),
        key,
        url: e.links.first().map(|l| l.href.clone()),
        author: e.authors.first().and_then(author_name),
        text,
        published_at: e.published.or(e.updated),
        fetched_at: ctx.now,
        lang: e.language.clone().or_else(|| feed.language.clone()),
        thread: None,
    }
}

/// RSS authors are often `mail@example.com (Name)`: keep the name (feed-rs may leave it in parentheses).
fn author_name(p: &feed_rs::model::Person) -> Option<String> {
    let name = p.name.as_deref().map(str::trim).filter(|n| !n.is_empty())?;
    let name = match (name.find('('), name.rfind(')')) {
        (Some(a), Some(b)) if a < b && (a == 0 || name.contains('@')) => &name[a + 1..b],
        _ => name,
    };
    Some(name.trim().to_string())
}

fn stable_key(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests;
