//! Calling platform APIs: JSON over the shared polite client, under the source's request budget. One place turns
//! HTTP failures into [`SourceError`]s (401/403 become [`SourceError::Auth`] with a hint naming the config keys),
//! and one place builds endpoint URLs under a configured `base_url` (so self-hosted instances under a path work).

use serde::de::DeserializeOwned;

use super::{PollCtx, SourceError};
use crate::http::{Call, FetchError};

/// A request's extra headers (values are sent marked sensitive).
pub type Headers = Vec<(&'static str, String)>;

/// GETs `url` and parses the JSON answer; `auth_hint` says what to check when the platform refuses us.
pub async fn get_json<T: DeserializeOwned>(
    ctx: &PollCtx<'_>,
    url: &url::Url,
    headers: &Headers,
    auth_hint: &str,
) -> Result<T, SourceError> {
    send(ctx, url, None, headers, auth_hint).await
}

/// POSTs a JSON body to `url` and parses the JSON answer.
pub async fn post_json<T: DeserializeOwned>(
    ctx: &PollCtx<'_>,
    url: &url::Url,
    body: &serde_json::Value,
    headers: &Headers,
    auth_hint: &str,
) -> Result<T, SourceError> {
    let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
    send(
        ctx,
        url,
        Some(("application/json", bytes)),
        headers,
        auth_hint,
    )
    .await
}

/// POSTs a form (`application/x-www-form-urlencoded`) to `url` and parses the JSON answer.
pub async fn post_form<T: DeserializeOwned>(
    ctx: &PollCtx<'_>,
    url: &url::Url,
    form: &[(&str, &str)],
    headers: &Headers,
    auth_hint: &str,
) -> Result<T, SourceError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
        .into_bytes();
    send(
        ctx,
        url,
        Some(("application/x-www-form-urlencoded", body)),
        headers,
        auth_hint,
    )
    .await
}

async fn send<T: DeserializeOwned>(
    ctx: &PollCtx<'_>,
    url: &url::Url,
    body: Option<(&'static str, Vec<u8>)>,
    headers: &Headers,
    auth_hint: &str,
) -> Result<T, SourceError> {
    let call = Call {
        url,
        body,
        headers,
        timeout: ctx.timeout,
        max_body: ctx.max_body,
        limit: ctx.limit,
    };
    let answer = match ctx.http.call(call).await {
        Ok(a) => a,
        Err(FetchError::Status {
            status: status @ (401 | 403),
            ..
        }) => {
            return Err(SourceError::Auth {
                status,
                hint: auth_hint.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    parse(&answer.bytes, url.path())
}

/// Parses a JSON answer; the error names the endpoint (never the query, which may carry a token) and the place.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], endpoint: &str) -> Result<T, SourceError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
        if head.trim_start().starts_with('<') {
            SourceError::Parse(format!(
                "{endpoint} answered with HTML, not JSON (a login wall, a bot check or the wrong base_url?)"
            ))
        } else {
            SourceError::Parse(format!("{endpoint}: {e}"))
        }
    })
}

/// `base` with `path` appended to its own path (`https://forum.example/community` + `posts.json` →
/// `https://forum.example/community/posts.json`) and the query pairs set.
pub fn endpoint(base: &url::Url, path: &str, query: &[(&str, &str)]) -> url::Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// Reads a `base_url` key: an http(s) URL, default `default`; a problem is recorded at `base_url` otherwise.
pub fn base_url(
    value: Option<&str>,
    default: &str,
    ctx: &mut crate::config::KindCtx<'_>,
) -> Option<url::Url> {
    http_url("base_url", value, default, ctx)
}

/// Reads an http(s) URL key (`base_url`, `auth_url`, …), default `default`; a problem is recorded at `key`
/// otherwise.
pub fn http_url(
    key: &str,
    value: Option<&str>,
    default: &str,
    ctx: &mut crate::config::KindCtx<'_>,
) -> Option<url::Url> {
    let text = value.unwrap_or(default);
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        Ok(u) => {
            ctx.problem(
                key,
                format!("unsupported scheme {:?} (use http or https)", u.scheme()),
            );
            None
        }
        Err(e) => {
            ctx.problem(key, format!("{text:?} is not a URL: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path_and_encode_the_query() {
        let base = url::Url::parse("https://forum.example/community/").unwrap();
        let u = endpoint(&base, "/search.json", &[("q", "northwind order:latest")]);
        assert_eq!(
            u.as_str(),
            "https://forum.example/community/search.json?q=northwind+order%3Alatest"
        );
        let bare = url::Url::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            endpoint(&bare, "api/v1/search_by_date", &[]).as_str(),
            "http://127.0.0.1:9000/api/v1/search_by_date"
        );
    }

    #[test]
    fn html_where_json_was_expected_is_named() {
        let e = parse::<serde_json::Value>(b"<!DOCTYPE html><html>", "/api/v1/search").unwrap_err();
        assert!(e.to_string().contains("HTML, not JSON"), "{e}");
        let e = parse::<Vec<u8>>(b"{\"a\":1}", "/x").unwrap_err();
        assert!(
            e.to_string().starts_with("cannot parse the response: /x:"),
            "{e}"
        );
    }
}
