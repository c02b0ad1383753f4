//! Built-in rule packs: one TOML data file per language, compiled into the binary. Adding a language is one file
//! in `packs/` and one line in [`PACKS`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::RuleConfig;

/// The packs: (language, file contents).
const PACKS: &[(&str, &str)] = &[("en", include_str!("packs/en.toml"))];

/// One language's words.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// ISO 639-1 code.
    pub lang: String,
    /// Words that flip the sentiment of the next few words ("not bad").
    #[serde(default)]
    pub negators: Vec<String>,
    /// Words that strengthen (positive value) or soften (negative value) the next word.
    #[serde(default)]
    pub intensifiers: BTreeMap<String, f64>,
    /// Words after which the clause counts more ("but").
    #[serde(default)]
    pub contrast: Vec<String>,
    /// The keyword rules.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

/// Every built-in pack, parsed once. A pack that does not parse is a bug in this repository: a unit test loads
/// them all.
pub fn builtin() -> &'static [Pack] {
    static PARSED: OnceLock<Vec<Pack>> = OnceLock::new();
    PARSED.get_or_init(|| {
        PACKS
            .iter()
            .map(|(lang, text)| {
                toml::from_str(text)
                    .unwrap_or_else(|e| panic!("built-in rule pack {lang} is broken: {e}"))
            })
            .collect()
    })
}
