//! Rule packs: one TOML data file per language. The built-in ones are compiled into the binary; a config can add
//! its own (`[classify] pack_files`). Adding a built-in language is one file in `packs/` and one line in [`PACKS`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use super::RuleConfig;
use crate::phrase::PhraseSet;

/// The built-in packs: (language, file contents).
const PACKS: &[(&str, &str)] = &[
    ("en", include_str!("packs/en.toml")),
    ("en", include_str!("packs/en-lexicon.toml")),
    ("ms", include_str!("packs/ms.toml")),
    ("te", include_str!("packs/te.toml")),
    ("tl", include_str!("packs/tl.toml")),
    ("ur", include_str!("packs/ur.toml")),
];

/// One language's words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// ISO 639-1 code.
    pub lang: String,
    /// Words that flip the sentiment of the next few words ("not bad", "tidak bagus").
    #[serde(default)]
    pub negators: Vec<String>,
    /// Words that flip the one or two words before them (Urdu "اچھا نہیں", Telugu "బాగా లేదు").
    #[serde(default)]
    pub negators_after: Vec<String>,
    /// Words that strengthen (positive value) or soften (negative value) the next word.
    #[serde(default)]
    pub intensifiers: BTreeMap<String, f64>,
    /// Words after which the clause counts more ("but").
    #[serde(default)]
    pub contrast: Vec<String>,
    /// Single words with their own weight, reported as the rule `<lang>.lexicon`. A word that a `[[rule]]` also
    /// lists takes the rule's weight.
    #[serde(default)]
    pub lexicon: BTreeMap<String, f64>,
    /// The keyword rules.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

impl Pack {
    /// Parses a pack from TOML text and checks every word and rule in it; all problems are reported at once.
    pub fn parse(text: &str) -> Result<Pack, String> {
        let pack: Pack = toml::from_str(text).map_err(|e| e.to_string())?;
        let problems = pack.problems();
        if problems.is_empty() {
            Ok(pack)
        } else {
            Err(problems.join("; "))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.lang.trim().is_empty() {
            out.push("`lang` must name the pack's language".to_string());
        }
        let lists = [
            ("negators", &self.negators),
            ("negators_after", &self.negators_after),
            ("contrast", &self.contrast),
        ];
        for (key, list) in lists {
            if let Err(e) = PhraseSet::new(list) {
                out.push(format!("{key}: {e}"));
            }
        }
        for (key, table) in [
            ("intensifiers", &self.intensifiers),
            ("lexicon", &self.lexicon),
        ] {
            for (word, weight) in table {
                if let Err(e) = PhraseSet::new([word]) {
                    out.push(format!("{key}: {e}"));
                }
                if !weight.is_finite() {
                    out.push(format!("{key}.{word:?}: must be a number"));
                }
            }
        }
        for (i, r) in self.rule.iter().enumerate() {
            for p in super::check_rule(i, r) {
                out.push(format!(
                    "rule[{i}] {:?}: {}: {}",
                    r.name, p.field, p.message
                ));
            }
        }
        out
    }

    /// Reads a pack file.
    pub fn load(path: &Path) -> Result<Pack, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Pack::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Codes of the built-in packs, in order.
pub fn builtin_languages() -> Vec<&'static str> {
    let mut langs: Vec<&str> = PACKS.iter().map(|(lang, _)| *lang).collect();
    langs.dedup();
    langs
}

/// Every built-in pack, parsed once. A pack that does not parse is a bug in this repository: a unit test loads
/// them all.
pub fn builtin() -> &'static [Pack] {
    static PARSED: OnceLock<Vec<Pack>> = OnceLock::new();
    PARSED.get_or_init(|| {
        PACKS
            .iter()
            .map(|(lang, text)| {
                Pack::parse(text)
                    .unwrap_or_else(|e| panic!("built-in rule pack {lang} is broken: {e}"))
            })
            .collect()
    })
}
