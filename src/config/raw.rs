//! The config file's syntax: what serde reads before any meaning is checked.
//!
//! These structs mirror the TOML one to one. Kind-specific keys of sources and notifiers stay in a table that the
//! kind's own module reads, so adding a platform touches no struct here.

use serde::Deserialize;

use crate::classify::RuleConfig;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// `[daemon]`: process-wide settings.
    #[serde(default)]
    pub daemon: RawDaemon,
    /// `[[brand]]`: what to listen for.
    #[serde(default)]
    pub brand: Vec<RawBrand>,
    /// `[[source]]`: where to listen.
    #[serde(default)]
    pub source: Vec<RawSource>,
    /// `[sla]`: reply deadline and escalation tiers.
    #[serde(default)]
    pub sla: RawSla,
    /// `[[notify]]`: where alerts go.
    #[serde(default)]
    pub notify: Vec<RawNotify>,
    /// `[classify]`: keyword rules on top of the built-in packs.
    #[serde(default)]
    pub classify: RawClassify,
    /// `[delivery]`: how alerts are retried.
    #[serde(default)]
    pub delivery: RawDelivery,
}

/// `[daemon]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawDaemon {
    /// Directory of the SQLite store; relative to the config file. Default `state`.
    pub state_dir: Option<String>,
    /// Address of the HTTP API (`/healthz`, `/readyz`, `/api/cases`); absent = no HTTP server.
    pub listen: Option<String>,
    /// User-Agent sent with every request; default names earshot and its version.
    pub user_agent: Option<String>,
    /// Least time between two requests to the same host, across all sources. Default `1s`.
    pub per_host_interval: Option<String>,
    /// Largest response body accepted, after decompression. Default `10 MiB`.
    pub max_body: Option<String>,
}

/// `[[brand]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawBrand {
    /// The brand's name, as shown in alerts.
    pub name: Option<String>,
    /// Words, phrases, @handles and #hashtags that mean the brand (case-insensitive, whole words).
    #[serde(default)]
    pub terms: Vec<String>,
    /// Phrases that mean a mention is about something else (`northwind trader`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The brand's own accounts: their posts are never complaints.
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// `[[source]]`: common keys, the rest belongs to the kind.
#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    /// Unique name; every log line about the source names it.
    pub name: Option<String>,
    /// Platform kind, e.g. `feed`.
    pub kind: Option<String>,
    /// Poll interval. Default `5m`.
    pub every: Option<String>,
    /// Total deadline for one request, body included. Default `30s`.
    pub timeout: Option<String>,
    /// Largest body accepted for this source; default from `[daemon]`.
    pub max_body: Option<String>,
    /// Request budget for the platform's host, like `300/5m`; default: the platform's documented limit.
    pub rate_limit: Option<String>,
    /// Kind-specific keys (`url` for feeds, ...).
    #[serde(flatten)]
    pub options: toml::Table,
}

/// `[sla]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSla {
    /// Reply deadline, counted from the post's own time. Default `60m`.
    pub reply_within: Option<String>,
    /// Mentions published longer ago than this when first seen are recorded but open no case. Default `24h`.
    pub max_age: Option<String>,
    /// Escalation tiers.
    #[serde(default)]
    pub tier: Vec<RawTier>,
}

/// `[[sla.tier]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawTier {
    /// Offset from the post's time at which this tier fires.
    pub after: Option<String>,
    /// Names of `[[notify]]` entries to alert.
    #[serde(default)]
    pub notify: Vec<String>,
}

/// `[[notify]]`: common keys, the rest belongs to the kind.
#[derive(Debug, Default, Deserialize)]
pub struct RawNotify {
    /// Unique name, used by `[[sla.tier]] notify`.
    pub name: Option<String>,
    /// `email`, `webhook` or `file`.
    pub kind: Option<String>,
    /// Kind-specific keys.
    #[serde(flatten)]
    pub options: toml::Table,
}

/// `[classify]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawClassify {
    /// Score at or below which a mention is a complaint (opens a case); -1.0 ..= 0.0.
    pub complaint_at: Option<f64>,
    /// Built-in packs to use (`en`, `ms`, `tl`, `ur`, `te`); all of them when absent.
    pub languages: Option<Vec<String>>,
    /// Extra rule packs (TOML files in the built-in packs' format), relative to the config file.
    #[serde(default)]
    pub pack_files: Vec<String>,
    /// Extra or replacement keyword rules.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

/// `[delivery]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawDelivery {
    /// First retry delay. Default `2s`.
    pub retry_initial: Option<String>,
    /// Longest delay between retries. Default `60s`.
    pub retry_max: Option<String>,
    /// Deadline for one delivery attempt. Default `30s`.
    pub timeout: Option<String>,
}
