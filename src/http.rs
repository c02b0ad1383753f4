//! The polite HTTP client every source uses: per-host spacing (governor), conditional GET, `Retry-After` held per
//! host, one total deadline per request (body included), a body cap counted after decompression, and a
//! descriptive User-Agent.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter, clock::Clock as _, clock::DefaultClock};

/// Longest `Retry-After` we obey; longer hints are capped so a hostile or broken server cannot park a source forever.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// What the last successful response said about its version, for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// `ETag`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified`, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// A successful response.
#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators.
    NotModified,
    /// 200 with its body.
    Body(Body),
}

/// A response body and what came with it.
#[derive(Debug)]
pub struct Body {
    /// The bytes, decompressed, at most the cap.
    pub bytes: Vec<u8>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// Validators for the next request.
    pub validators: Validators,
}

/// Why a fetch failed. `is_transient` drives retries.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The whole request, body included, took too long.
    #[error("no complete response within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// DNS, connect, TLS or a dropped connection.
    #[error("network error: {0}")]
    Network(String),
    /// A status other than 200/304.
    #[error("HTTP {status}{}", retry_after.map(|d| format!(" (retry after {})", humantime::format_duration(d))).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, capped.
        retry_after: Option<Duration>,
    },
    /// The body exceeded the cap.
    #[error("response body is larger than the {limit}-byte cap")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The host asked us to wait (an earlier 429/503) and the time is not up.
    #[error("host {host} asked us to wait; not before {} more", humantime::format_duration(*wait))]
    Held {
        /// The host.
        host: String,
        /// Time left.
        wait: Duration,
    },
    /// A `file://` source could not be read.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl FetchError {
    /// Whether trying again later may succeed (timeouts, network, 5xx, 429, holds).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout(_) | FetchError::Network(_) | FetchError::Held { .. } => true,
            FetchError::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            FetchError::TooLarge { .. } | FetchError::File { .. } => false,
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            FetchError::Held { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

type HostLimiter =
    RateLimiter<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock>;

/// The shared client. Cheap to share by reference; one per daemon.
pub struct HttpClient {
    inner: reqwest::Client,
    spacing: HostLimiter,
    holds: Mutex<HashMap<String, Instant>>,
}

/// One GET.
pub struct Get<'a> {
    /// What to fetch.
    pub url: &'a url::Url,
    /// Validators from the last successful fetch.
    pub validators: &'a Validators,
    /// Total deadline.
    pub timeout: Duration,
    /// Body cap after decompression.
    pub max_body: u64,
}

impl HttpClient {
    /// Builds the client; `per_host` is the least time between two requests to one host.
    pub fn new(user_agent: &str, per_host: Duration) -> Result<HttpClient, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let inner = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        let quota = Quota::with_period(per_host.max(Duration::from_millis(1)))
            .expect("period is non-zero")
            .allow_burst(NonZeroU32::MIN);
        Ok(HttpClient {
            inner,
            spacing: RateLimiter::keyed(quota),
            holds: Mutex::new(HashMap::new()),
        })
    }

    /// Fetches a URL politely. Never waits longer than `timeout` in total, spacing included.
    pub async fn get(&self, req: Get<'_>) -> Result<Fetched, FetchError> {
        // host:port: two services on one machine are two hosts to be polite to.
        let host = match req.url.port_or_known_default() {
            Some(port) => format!("{}:{port}", req.url.host_str().unwrap_or_default()),
            None => req.url.host_str().unwrap_or_default().to_string(),
        };
        self.check_hold(&host)?;
        let deadline = tokio::time::Instant::now() + req.timeout;
        let work = async {
            self.wait_turn(&host).await;
            self.send(&req).await
        };
        let result = match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(req.timeout)),
        };
        if let Err(FetchError::Status {
            status: 429 | 503,
            retry_after: Some(wait),
        }) = &result
        {
            self.hold(&host, *wait);
        }
        result
    }

    /// Drops per-host state that has not been used for a while, so the maps do not grow forever.
    pub fn forget_idle_hosts(&self) {
        self.spacing.retain_recent();
        self.spacing.shrink_to_fit();
        let now = Instant::now();
        self.holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }

    fn check_hold(&self, host: &str) -> Result<(), FetchError> {
        let holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        match holds.get(host) {
            Some(until) if *until > Instant::now() => Err(FetchError::Held {
                host: host.to_string(),
                wait: *until - Instant::now(),
            }),
            _ => Ok(()),
        }
    }

    fn hold(&self, host: &str, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_RETRY_AFTER);
        self.holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), until);
    }

    async fn wait_turn(&self, host: &str) {
        let key = host.to_string();
        while let Err(not_until) = self.spacing.check_key(&key) {
            tokio::time::sleep(not_until.wait_time_from(DefaultClock::default().now())).await;
        }
    }

    async fn send(&self, req: &Get<'_>) -> Result<Fetched, FetchError> {
        let mut builder = self.inner.get(req.url.clone());
        if let Some(etag) = &req.validators.etag {
            builder = builder.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &req.validators.last_modified {
            builder = builder.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        let mut resp = builder.send().await.map_err(network)?;
        let status = resp.status().as_u16();
        if status == 304 {
            return Ok(Fetched::NotModified);
        }
        if status != 200 {
            let retry_after = header(&resp, "retry-after")
                .and_then(|v| parse_retry_after(&v, chrono::Utc::now()));
            return Err(FetchError::Status {
                status,
                retry_after,
            });
        }
        if resp.content_length().is_some_and(|n| n > req.max_body)
            && header(&resp, "content-encoding").is_none()
        {
            return Err(FetchError::TooLarge {
                limit: req.max_body,
            });
        }
        let validators = Validators {
            etag: header(&resp, "etag"),
            last_modified: header(&resp, "last-modified"),
        };
        let content_type = header(&resp, "content-type");
        let mut bytes = Vec::new();
        // Chunks arrive decompressed, so the cap holds against compression bombs too.
        while let Some(chunk) = resp.chunk().await.map_err(network)? {
            if bytes.len() as u64 + chunk.len() as u64 > req.max_body {
                return Err(FetchError::TooLarge {
                    limit: req.max_body,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(Body {
            bytes,
            content_type,
            validators,
        }))
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The error and its causes on one line; reqwest's own message alone hides the reason.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn network(e: reqwest::Error) -> FetchError {
    // Strip the URL: it may carry a private feed token.
    FetchError::Network(error_chain(&e.without_url()))
}

/// Parses `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:05:00 GMT", now),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn which_failures_are_transient() {
        let st = |status| FetchError::Status {
            status,
            retry_after: None,
        };
        assert!(st(500).is_transient());
        assert!(st(503).is_transient());
        assert!(st(429).is_transient());
        assert!(!st(404).is_transient());
        assert!(!st(401).is_transient());
        assert!(FetchError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(!FetchError::TooLarge { limit: 1 }.is_transient());
    }
}
