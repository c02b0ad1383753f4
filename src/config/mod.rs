//! The config: read from TOML in two stages, syntax (serde) then meaning (this module), and turned into typed
//! values that cannot hold a wrong state. Every problem is collected and reported at once, located in the file.

mod check;
mod problems;
mod raw;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use problems::{ConfigError, Located, Problem};
pub use values::Secret;

use crate::alert::Event;
use crate::classify::{Classifier, Pack, RuleConfig};
use crate::notify::NotifierKind;
use crate::source::SourceKind;
use raw::RawConfig;

/// A loaded, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages).
    pub file: PathBuf,
    /// Process-wide settings.
    pub daemon: Daemon,
    /// What to listen for.
    pub brands: Vec<BrandSpec>,
    /// Where to listen.
    pub sources: Vec<SourceSpec>,
    /// Reply deadline and escalation.
    pub sla: Sla,
    /// Where alerts go.
    pub notifiers: Vec<NotifierSpec>,
    /// Classifier settings: threshold and the config's own rules.
    pub classify: ClassifySettings,
    /// How alert delivery is retried.
    pub delivery: Delivery,
    /// Things that are allowed but probably not meant; `check-config` prints them.
    pub warnings: Vec<Located>,
}

/// `[daemon]`, with defaults applied.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Directory of the SQLite store.
    pub state_dir: PathBuf,
    /// HTTP API address, if any.
    pub listen: Option<SocketAddr>,
    /// User-Agent for every outgoing request.
    pub user_agent: String,
    /// Least time between two requests to one host.
    pub per_host_interval: Duration,
    /// Default body cap, after decompression.
    pub max_body: u64,
}

/// A brand and the words that mean it.
#[derive(Debug, Clone)]
pub struct BrandSpec {
    /// Display name.
    pub name: String,
    /// Terms that mean the brand.
    pub terms: Vec<String>,
    /// Phrases that mean something else.
    pub exclude: Vec<String>,
    /// The brand's own accounts (handles without `@`, compared case-insensitively).
    pub accounts: Vec<String>,
}

/// A watched source.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Unique name.
    pub name: String,
    /// Poll interval.
    pub every: Duration,
    /// Total deadline of one request.
    pub timeout: Duration,
    /// Body cap after decompression.
    pub max_body: u64,
    /// Request budget for the platform's host: `rate_limit`, else the kind's documented default.
    pub limit: Option<crate::http::RateLimit>,
    /// The platform and its settings.
    pub kind: SourceKind,
}

/// Reply deadline and tiers.
#[derive(Debug, Clone)]
pub struct Sla {
    /// Deadline, from the post's own time.
    pub reply_within: Duration,
    /// Older mentions open no case when first seen.
    pub max_age: Duration,
    /// Tiers, ordered by `after`.
    pub tiers: Vec<Tier>,
}

/// One escalation tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// Offset from the post's time.
    pub after: Duration,
    /// The event this tier sends, derived from `after` against `reply_within`.
    pub event: Event,
    /// Notifier names.
    pub notify: Vec<String>,
}

/// A notifier.
#[derive(Debug, Clone)]
pub struct NotifierSpec {
    /// Unique name.
    pub name: String,
    /// Its kind and settings.
    pub kind: NotifierKind,
}

/// `[classify]` with defaults applied.
#[derive(Debug, Clone)]
pub struct ClassifySettings {
    /// Complaint threshold on the compound score.
    pub complaint_at: f64,
    /// Rules added to (or replacing) the packs' rules.
    pub rules: Vec<RuleConfig>,
    /// The selected built-in packs' languages.
    pub languages: Vec<String>,
    /// Packs read from `pack_files`.
    pub extra_packs: Vec<Pack>,
}

impl ClassifySettings {
    /// The selected built-in packs, then the extra ones.
    pub fn packs(&self) -> Vec<&Pack> {
        crate::classify::pack::builtin()
            .iter()
            .filter(|p| self.languages.contains(&p.lang))
            .chain(&self.extra_packs)
            .collect()
    }

    /// Builds the classifier; packs and rules were validated when the config loaded.
    pub fn classifier(&self) -> Classifier {
        Classifier::with_packs(&self.packs(), &self.rules, self.complaint_at)
            .unwrap_or_else(|_| Classifier::builtin())
    }
}

/// `[delivery]` with defaults applied.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// First retry delay.
    pub retry_initial: Duration,
    /// Cap on the retry delay.
    pub retry_max: Duration,
    /// Deadline of one attempt.
    pub timeout: Duration,
}

/// Where a kind module reads its keys from, and where it reports problems.
pub struct KindCtx<'a> {
    /// Key path of the entry, e.g. `source[2]`.
    pub path: String,
    /// The config file's directory, for relative paths.
    pub base_dir: &'a Path,
    /// Problems found so far.
    pub problems: &'a mut Vec<Problem>,
}

impl KindCtx<'_> {
    /// Records a problem at `key` under this entry.
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems
            .push(Problem::new(format!("{}.{key}", self.path), message));
    }

    /// Reads the secret named by `{key}_env` or `{key}_file` (a relative file is relative to the config); `None`
    /// when neither is given or it cannot be read (then a problem is recorded).
    pub fn secret(&mut self, key: &str, env: Option<&str>, file: Option<&str>) -> Option<Secret> {
        let file = file.map(|f| values::resolve(self.base_dir, f));
        match values::secret(env, file.as_deref(), key, &self.path) {
            Ok(s) => s,
            Err((path, message)) => {
                self.problems.push(Problem::new(path, message));
                None
            }
        }
    }

    /// Like [`KindCtx::secret`] for a secret the kind cannot work without: when neither `{key}_env` nor
    /// `{key}_file` is given, a problem at `{key}_env` says what the secret is (`what`).
    pub fn required_secret(
        &mut self,
        key: &str,
        env: Option<&str>,
        file: Option<&str>,
        what: &str,
    ) -> Option<Secret> {
        if env.is_none() && file.is_none() {
            self.problem(
                &format!("{key}_env"),
                format!("missing `{key}_env` or `{key}_file`: {what} (never written in the config itself)"),
            );
            return None;
        }
        self.secret(key, env, file)
    }

    /// Reads kind-specific keys into `T`, reporting unknown keys and type errors.
    pub fn read<T: DeserializeOwned>(&mut self, kind: &str, options: &toml::Table) -> Option<T> {
        let mut unknown = Vec::new();
        let value = toml::Value::Table(options.clone());
        let result: Result<T, _> =
            serde_ignored::deserialize(value, |p| unknown.push(p.to_string()));
        for key in unknown {
            let hint = if ["password", "secret", "token"]
                .iter()
                .any(|w| key.contains(w))
            {
                format!(" (secrets never go in the file: use `{key}_env` or `{key}_file`)")
            } else {
                String::new()
            };
            self.problem(
                &key,
                format!("unknown key `{key}` for kind \"{kind}\"{hint}"),
            );
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(Problem::new(
                    self.path.clone(),
                    format!("{kind}: {}", e.message()),
                ));
                None
            }
        }
    }
}

/// Default User-Agent: names the program and version so a site's operator can tell what polls them.
pub fn default_user_agent() -> String {
    format!(
        "earshot/{} (brand-mention monitor; polite polling, conditional GET)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Reads and validates a config file.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    parse(file, &read_text(file)?)
}

/// Validates config text; `file` names it in messages and anchors relative paths.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut unknown = Vec::new();
    let raw = read_raw(file, text, |p| unknown.push(p))?;
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|k| Problem::new(k.clone(), format!("unknown key `{}`", last_key(&k))))
        .collect();
    let mut warnings = Vec::new();
    let config = check::check(file, &base_dir(file), raw, &mut problems, &mut warnings);
    if !problems.is_empty() {
        return Err(located(file, text, problems));
    }
    let locator = problems::Locator::new(text);
    Ok(Config {
        warnings: warnings.into_iter().map(|w| locator.locate(w)).collect(),
        ..config
    })
}

/// Reads only `daemon.state_dir` of a config: `earshot cases` and `ack` need the store, not the secrets, so they
/// work from a shell where the daemon's environment is not set.
pub fn load_state_dir(file: &Path) -> Result<PathBuf, ConfigError> {
    let raw = read_raw(file, &read_text(file)?, |_| {})?;
    Ok(values::resolve(
        &base_dir(file),
        raw.daemon.state_dir.as_deref().unwrap_or("state"),
    ))
}

/// Reads only `[classify]` of a config (for `earshot classify`, which must work while, say, a secret is unset).
pub fn load_classify(file: &Path) -> Result<ClassifySettings, ConfigError> {
    let text = read_text(file)?;
    let raw = read_raw(file, &text, |_| {})?;
    let mut problems = Vec::new();
    let settings = check::check_classify(&base_dir(file), &raw, &mut problems);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(located(file, &text, problems))
    }
}

fn read_text(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file)
        .map_err(|e| ConfigError::whole_file(file, 0, 0, format!("cannot read the config: {e}")))
}

/// The syntax stage: TOML into [`RawConfig`]; `unknown` hears every key no struct has.
fn read_raw(
    file: &Path,
    text: &str,
    mut unknown: impl FnMut(String),
) -> Result<RawConfig, ConfigError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| syntax_error(file, text, &e))?;
    serde_ignored::deserialize(de, |p| unknown(p.to_string()))
        .map_err(|e| syntax_error(file, text, &e))
}

/// Places every problem in the file, in file order.
fn located(file: &Path, text: &str, problems: Vec<Problem>) -> ConfigError {
    let locator = problems::Locator::new(text);
    let mut located: Vec<Located> = problems.into_iter().map(|p| locator.locate(p)).collect();
    located.sort_by_key(|l| (l.line == 0, l.line, l.column));
    ConfigError {
        file: file.to_path_buf(),
        problems: located,
    }
}

fn base_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn last_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        return ConfigError::whole_file(file, 0, 0, message);
    };
    let (line, column) = problems::line_col(text, span.start);
    // Type errors come without a key: name the one whose value is at fault.
    let message = match problems::Locator::new(text)
        .path_at(span.start)
        .filter(|p| !p.is_empty())
    {
        Some(path) => format!("{path}: {message}"),
        None => message.to_string(),
    };
    ConfigError::whole_file(file, line, column, message)
}

#[cfg(test)]
mod tests;
