//! The `webhook` notifier: the alert JSON POSTed as is, signed per the Standard Webhooks spec (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
//! Redirects are not followed (a moved endpoint is a config error, not something to chase).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::Outcome;
use crate::config::KindCtx;
use crate::http::{error_chain, parse_retry_after};
use crate::store::OutboxRow;

/// Posts alerts to a URL.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: url::Url,
    key: Option<SigningKey>,
    client: reqwest::Client,
}

/// The decoded signing secret.
#[derive(Clone)]
struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

#[derive(Deserialize)]
struct Options {
    /// Where to POST.
    url: Option<String>,
    /// Environment variable holding the `whsec_…` signing secret.
    secret_env: Option<String>,
    /// File holding the signing secret.
    secret_file: Option<String>,
}

impl Webhook {
    /// Validates the `webhook` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<Webhook> {
        let o: Options = ctx.read("webhook", options)?;
        let secret = ctx.secret("secret", o.secret_env.as_deref(), o.secret_file.as_deref());
        let key = match secret.map(|s| decode_secret(s.expose()).map(SigningKey)) {
            Some(Err(msg)) => {
                ctx.problem(
                    if o.secret_env.is_some() {
                        "secret_env"
                    } else {
                        "secret_file"
                    },
                    msg,
                );
                None
            }
            Some(Ok(k)) => Some(k),
            None => None,
        };
        let Some(url) = o.url else {
            ctx.problem("url", "missing `url`");
            return None;
        };
        let url = match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                ctx.problem("url", format!("{url:?} is not an http(s) URL"));
                return None;
            }
        };
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(crate::config::default_user_agent())
            .build()
            .ok()?;
        Some(Webhook { url, key, client })
    }

    /// The URL, without query (it may hold a token).
    pub fn describe(&self) -> String {
        let mut u = self.url.clone();
        if u.query().is_some() {
            u.set_query(Some("…"));
        }
        format!(
            "POST {u}{}",
            if self.key.is_some() { " (signed)" } else { "" }
        )
    }

    /// POSTs the alert once.
    pub async fn deliver(&self, row: &OutboxRow) -> Outcome {
        let timestamp = chrono::Utc::now().timestamp();
        let mut req = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &row.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("idempotency-key", &row.event_id)
            .body(row.payload.clone());
        if let Some(SigningKey(key)) = &self.key {
            req = req.header(
                "webhook-signature",
                sign(key, &row.event_id, timestamp, row.payload.as_bytes()),
            );
        }
        match req.send().await {
            Ok(resp) => classify_status(
                resp.status().as_u16(),
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(e) => Outcome::Retry {
                reason: error_chain(&e.without_url()),
                after: None,
            },
        }
    }
}

/// Maps a response status to an outcome: 2xx delivered; 429 and 5xx retried (honouring `Retry-After`);
/// redirects and other 4xx refused for good.
pub fn classify_status(status: u16, retry_after: Option<&str>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}"),
            after: retry_after.and_then(|v| parse_retry_after(v, chrono::Utc::now())),
        },
        300..=399 => Outcome::Failed {
            reason: format!("HTTP {status}: redirects are not followed; configure the final URL"),
        },
        _ => Outcome::Failed {
            reason: format!("HTTP {status}: the receiver refused the alert"),
        },
    }
}

/// Decodes a `whsec_<base64>` secret; any other string is used as raw bytes.
fn decode_secret(s: &str) -> Result<Vec<u8>, String> {
    match s.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .map_err(|_| "the secret starts with whsec_ but the rest is not base64".to_string()),
        None => Ok(s.as_bytes().to_vec()),
    }
}

/// The `webhook-signature` header value.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let key = decode_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let sig = sign(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(204, None), Outcome::Delivered);
        assert!(matches!(classify_status(503, None), Outcome::Retry { .. }));
        assert!(
            matches!(classify_status(429, Some("7")), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7))
        );
        assert!(matches!(classify_status(400, None), Outcome::Failed { .. }));
        assert!(matches!(classify_status(404, None), Outcome::Failed { .. }));
        assert!(matches!(classify_status(301, None), Outcome::Failed { .. }));
    }

    #[test]
    fn bad_whsec_secret_is_an_error() {
        assert!(decode_secret("whsec_!!!").is_err());
        assert_eq!(decode_secret("plain").unwrap(), b"plain");
    }
}
