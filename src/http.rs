//! The polite HTTP client every source uses: per-host spacing (governor), conditional GET, `Retry-After` held per
//! host, one total deadline per request (body included), a body cap counted after decompression, and a
//! descriptive User-Agent.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
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
    #[error("HTTP {status}{}{}", retry_after.map(|d| format!(" (retry after {})", humantime::format_duration(d))).unwrap_or_default(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, capped.
        retry_after: Option<Duration>,
        /// What an API said went wrong (its JSON `error` or `message`), short; never the raw body.
        detail: Option<String>,
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

type Budget = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// The shared client. Cheap to share by reference; one per daemon.
pub struct HttpClient {
    inner: reqwest::Client,
    spacing: HostLimiter,
    holds: Mutex<HashMap<String, Instant>>,
    /// Per-host request budgets (a platform's documented limit), made on first use.
    budgets: Mutex<HashMap<String, (RateLimit, Arc<Budget>)>>,
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

/// One API call: a GET or a POST with headers, under the platform's request budget.
pub struct Call<'a> {
    /// What to call.
    pub url: &'a url::Url,
    /// POST this body (content type, bytes); GET when `None`.
    pub body: Option<(&'static str, Vec<u8>)>,
    /// Extra headers; values are marked sensitive so they never show in debug output.
    pub headers: &'a [(&'static str, String)],
    /// Total deadline.
    pub timeout: Duration,
    /// Body cap after decompression.
    pub max_body: u64,
    /// The platform's documented request budget for this host, if it has one.
    pub limit: Option<RateLimit>,
}

/// A request budget: at most `requests` per `per`, shared by every source that calls the same host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> RateLimit {
        RateLimit { requests, per }
    }

    /// Parses `300/5m` (requests per duration).
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = || {
            format!("invalid rate limit {text:?}: write it like \"300/5m\" (requests per duration)")
        };
        let (n, per) = text.split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| bad())?;
        if requests == 0 || per.is_zero() {
            return Err(bad());
        }
        Ok(RateLimit { requests, per })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.requests,
            humantime::format_duration(self.per)
        )
    }
}

/// An API response: status 200–299 with its body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The bytes, decompressed, at most the cap.
    pub bytes: Vec<u8>,
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
            budgets: Mutex::new(HashMap::new()),
        })
    }

    /// Fetches a URL politely. Never waits longer than `timeout` in total, spacing included.
    pub async fn get(&self, req: Get<'_>) -> Result<Fetched, FetchError> {
        let host = host_key(req.url);
        self.check_hold(&host)?;
        let deadline = tokio::time::Instant::now() + req.timeout;
        let work = async {
            self.wait_turn(&host, None).await;
            self.send(&req).await
        };
        let result = match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(req.timeout)),
        };
        self.hold_if_asked(&host, &result);
        result
    }

    /// Calls a platform API politely: the host's spacing, its request budget, and any wait it asked for. A 429 or
    /// 503 holds the whole host for as long as its `Retry-After` or rate-limit reset header says; so does a
    /// success that reports no requests remaining.
    pub async fn call(&self, req: Call<'_>) -> Result<Answer, FetchError> {
        let host = host_key(req.url);
        self.check_hold(&host)?;
        let deadline = tokio::time::Instant::now() + req.timeout;
        let work = async {
            self.wait_turn(&host, req.limit).await;
            self.send_call(&req, &host).await
        };
        let result = match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(req.timeout)),
        };
        self.hold_if_asked(&host, &result);
        result
    }

    fn hold_if_asked<T>(&self, host: &str, result: &Result<T, FetchError>) {
        if let Err(FetchError::Status {
            status: 429 | 503,
            retry_after: Some(wait),
            ..
        }) = result
        {
            self.hold(host, *wait);
        }
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

    async fn wait_turn(&self, host: &str, limit: Option<RateLimit>) {
        if let Some(budget) = limit.map(|l| self.budget(host, l)) {
            while let Err(not_until) = budget.check() {
                tokio::time::sleep(not_until.wait_time_from(DefaultClock::default().now())).await;
            }
        }
        let key = host.to_string();
        while let Err(not_until) = self.spacing.check_key(&key) {
            tokio::time::sleep(not_until.wait_time_from(DefaultClock::default().now())).await;
        }
    }

    /// The host's budget; the first limit asked for a host is the one kept (sources on one host share it).
    fn budget(&self, host: &str, limit: RateLimit) -> Arc<Budget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let (_, budget) = budgets.entry(host.to_string()).or_insert_with(|| {
            let period = (limit.per / limit.requests).max(Duration::from_nanos(1));
            let quota = Quota::with_period(period)
                .expect("period is non-zero")
                .allow_burst(NonZeroU32::new(limit.requests).unwrap_or(NonZeroU32::MIN));
            (limit, Arc::new(RateLimiter::direct(quota)))
        });
        budget.clone()
    }

    async fn send_call(&self, req: &Call<'_>, host: &str) -> Result<Answer, FetchError> {
        let mut builder = match &req.body {
            Some((content_type, bytes)) => self
                .inner
                .post(req.url.clone())
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(bytes.clone()),
            None => self.inner.get(req.url.clone()),
        };
        builder = builder.header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in req.headers {
            let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                FetchError::Network(format!("header {name} has a character HTTP cannot carry"))
            })?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        let mut resp = builder.send().await.map_err(network)?;
        let status = resp.status().as_u16();
        let wait = rate_limit_wait(resp.headers(), chrono::Utc::now());
        if !(200..300).contains(&status) {
            return Err(FetchError::Status {
                status,
                retry_after: wait,
                detail: error_detail(&mut resp).await,
            });
        }
        if let Some(wait) = wait.filter(|_| exhausted(resp.headers())) {
            tracing::debug!(host, wait = ?wait, "the host says no requests remain; holding it until its reset");
            self.hold(host, wait);
        }
        let bytes = read_capped(&mut resp, req.max_body).await?;
        Ok(Answer { status, bytes })
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
            let retry_after = rate_limit_wait(resp.headers(), chrono::Utc::now());
            return Err(FetchError::Status {
                status,
                retry_after,
                detail: None,
            });
        }
        let validators = Validators {
            etag: header(&resp, "etag"),
            last_modified: header(&resp, "last-modified"),
        };
        let content_type = header(&resp, "content-type");
        let bytes = read_capped(&mut resp, req.max_body).await?;
        Ok(Fetched::Body(Body {
            bytes,
            content_type,
            validators,
        }))
    }
}

/// The body, refused as soon as it passes `cap`. Chunks arrive decompressed, so the cap holds against compression
/// bombs too.
async fn read_capped(resp: &mut reqwest::Response, cap: u64) -> Result<Vec<u8>, FetchError> {
    if resp.content_length().is_some_and(|n| n > cap) && header(resp, "content-encoding").is_none()
    {
        return Err(FetchError::TooLarge { limit: cap });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        if bytes.len() as u64 + chunk.len() as u64 > cap {
            return Err(FetchError::TooLarge { limit: cap });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The reason an API gives with a refusal: the `error` (XRPC, Lemmy, OAuth), `error_description` or `message` string
/// of a small JSON body, cut to 120 characters. Anything else (HTML pages, echoed requests) is never shown.
async fn error_detail(resp: &mut reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 4096 {
            return None;
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let text = ["error", "error_description", "message"]
        .iter()
        .find_map(|k| value.get(*k).and_then(|v| v.as_str()))?;
    let mut text: String = text.chars().filter(|c| !c.is_control()).take(120).collect();
    if text.trim().is_empty() {
        return None;
    }
    text.truncate(text.trim_end().len());
    Some(text)
}

/// host:port: two services on one machine are two hosts to be polite to.
fn host_key(url: &url::Url) -> String {
    match url.port_or_known_default() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

/// How long a response asks us to wait: `Retry-After`, else a rate-limit reset header in any of the forms
/// platforms use (`X-RateLimit-Reset` as an ISO time on Mastodon or seconds-to-go on Reddit, `ratelimit-reset` /
/// `x-rate-limit-reset` as Unix seconds elsewhere).
pub fn rate_limit_wait(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = get("retry-after").and_then(|v| parse_retry_after(v, now)) {
        return Some(wait);
    }
    ["x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"]
        .iter()
        .find_map(|h| get(h))
        .and_then(|v| parse_reset(v, now))
}

/// Whether a rate-limit header says no requests remain in this window.
fn exhausted(headers: &reqwest::header::HeaderMap) -> bool {
    [
        "x-ratelimit-remaining",
        "ratelimit-remaining",
        "x-rate-limit-remaining",
    ]
    .iter()
    .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
    .filter_map(|v| v.trim().parse::<f64>().ok())
    .any(|left| left < 1.0)
}

/// A reset header's value: an ISO 8601 time, Unix seconds (large numbers), or seconds to go (small ones).
pub fn parse_reset(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    let wait = if let Ok(at) = chrono::DateTime::parse_from_rfc3339(v) {
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    } else {
        let n: f64 = v
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
        // Anything past 2001 as Unix seconds is a moment, not a wait.
        if n > 1.0e9 {
            let at = chrono::DateTime::from_timestamp(n as i64, 0)?;
            (at - now).to_std().unwrap_or(Duration::ZERO)
        } else {
            Duration::from_secs_f64(n.ceil())
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
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
    fn reset_headers_in_every_platform_form() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap();
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        // Mastodon: an ISO time.
        let mastodon = headers(&[("x-ratelimit-reset", "2026-11-22T10:05:00.000Z")]);
        assert_eq!(
            rate_limit_wait(&mastodon, now),
            Some(Duration::from_secs(300))
        );
        // Reddit: seconds to go, as a float.
        let reddit = headers(&[
            ("x-ratelimit-reset", "42.0"),
            ("x-ratelimit-remaining", "0.0"),
        ]);
        assert_eq!(rate_limit_wait(&reddit, now), Some(Duration::from_secs(42)));
        assert!(exhausted(&reddit));
        // Bluesky: Unix seconds.
        let at = now.timestamp() + 90;
        let bluesky = headers(&[
            ("ratelimit-reset", &at.to_string()),
            ("ratelimit-remaining", "12"),
        ]);
        assert_eq!(
            rate_limit_wait(&bluesky, now),
            Some(Duration::from_secs(90))
        );
        assert!(!exhausted(&bluesky));
        // Retry-After wins over a reset header.
        let both = headers(&[("retry-after", "7"), ("x-ratelimit-reset", "42")]);
        assert_eq!(rate_limit_wait(&both, now), Some(Duration::from_secs(7)));
        assert_eq!(rate_limit_wait(&headers(&[]), now), None);
    }

    #[test]
    fn rate_limits_parse_and_refuse_nonsense() {
        assert_eq!(
            RateLimit::parse("300/5m"),
            Ok(RateLimit::new(300, Duration::from_secs(300)))
        );
        assert_eq!(RateLimit::parse(" 10000 / 1h ").unwrap().requests, 10000);
        for bad in ["300", "0/5m", "x/5m", "10/0s", "10/soon"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn which_failures_are_transient() {
        let st = |status| FetchError::Status {
            status,
            retry_after: None,
            detail: None,
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
