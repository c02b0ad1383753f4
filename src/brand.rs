//! Brand matching: which brands a mention is about. Terms, @handles and #hashtags match whole tokens,
//! case-insensitively, in any script; an exclusion phrase vetoes the brand. Built once, so a mention about no
//! brand is dropped cheaply.

use crate::config::BrandSpec;
use crate::phrase::{PhraseError, PhraseSet};
use crate::text::normalize;

/// All brands' terms, compiled.
pub struct BrandMatcher {
    brands: Vec<Compiled>,
}

struct Compiled {
    name: String,
    terms: PhraseSet,
    exclude: Option<PhraseSet>,
    accounts: Vec<String>,
}

/// A brand a mention is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandHit {
    /// The brand's name.
    pub brand: String,
    /// True when the author is one of the brand's own accounts (never a complaint).
    pub own_account: bool,
}

impl BrandMatcher {
    /// Compiles the brands' terms.
    pub fn new(brands: &[BrandSpec]) -> Result<BrandMatcher, PhraseError> {
        let brands = brands
            .iter()
            .map(|b| {
                Ok(Compiled {
                    name: b.name.clone(),
                    terms: PhraseSet::new(&b.terms)?,
                    exclude: if b.exclude.is_empty() {
                        None
                    } else {
                        Some(PhraseSet::new(&b.exclude)?)
                    },
                    accounts: b.accounts.clone(),
                })
            })
            .collect::<Result<_, PhraseError>>()?;
        Ok(BrandMatcher { brands })
    }

    /// The brands `text` is about; `author` is compared with each brand's accounts.
    pub fn find(&self, text: &str, author: Option<&str>) -> Vec<BrandHit> {
        if self.brands.is_empty() {
            return vec![];
        }
        let normalized = normalize(text);
        let author = author.map(|a| a.trim().trim_start_matches('@').to_lowercase());
        self.brands
            .iter()
            .filter(|b| b.terms.is_match(&normalized))
            .filter(|b| !b.exclude.as_ref().is_some_and(|x| x.is_match(&normalized)))
            .map(|b| BrandHit {
                brand: b.name.clone(),
                own_account: author.as_ref().is_some_and(|a| is_own(a, &b.accounts)),
            })
            .collect()
    }
}

/// Whether `author` (lowercase, no leading `@`) is one of the brand's `accounts`: the same handle; or, where
/// platforms write handles as `user@instance` (Mastodon, Lemmy), a bare account naming that user; or a bare
/// account's Bluesky handle (`user.bsky.social`). Being lenient here only keeps a post from opening a case; reply
/// detection, which closes cases, is strict per platform.
fn is_own(author: &str, accounts: &[String]) -> bool {
    accounts.iter().any(|acc| {
        let bare = !acc.contains('@') && !acc.contains('.');
        acc == author
            || (bare
                && (author.split_once('@').is_some_and(|(user, _)| user == acc)
                    || author.strip_suffix(".bsky.social") == Some(acc.as_str())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> BrandMatcher {
        BrandMatcher::new(&[
            BrandSpec {
                name: "Northwind".into(),
                terms: vec![
                    "Northwind".into(),
                    "@NorthwindHelp".into(),
                    "#Northwind".into(),
                    "نارتھ ونڈ".into(),
                ],
                exclude: vec!["northwind trader".into()],
                accounts: vec!["northwindhelp".into()],
            },
            BrandSpec {
                name: "Contoso".into(),
                terms: vec!["Contoso Air".into()],
                exclude: vec![],
                accounts: vec![],
            },
        ])
        .unwrap()
    }

    fn brands(text: &str) -> Vec<String> {
        matcher()
            .find(text, None)
            .into_iter()
            .map(|h| h.brand)
            .collect()
    }

    #[test]
    fn matches_whole_words_in_any_case_and_script() {
        assert_eq!(brands("NORTHWIND lost my bag"), ["Northwind"]);
        assert_eq!(brands("@NorthwindHelp where is my refund?"), ["Northwind"]);
        assert_eq!(brands("#NorthwindSucks honestly"), ["Northwind"]);
        assert_eq!(brands("نارتھ ونڈ کی سروس بہت خراب ہے"), ["Northwind"]);
        assert_eq!(
            brands("flew contoso air and northwind"),
            ["Northwind", "Contoso"]
        );
        assert!(brands("the northwinds of the valley").is_empty());
        assert!(brands("contoso is fine").is_empty());
    }

    #[test]
    fn federated_handles_of_the_brand_are_its_own() {
        let accounts = vec![
            "northwindhelp".to_string(),
            "care@support.example".to_string(),
        ];
        assert!(is_own("northwindhelp", &accounts));
        assert!(is_own("northwindhelp@mastodon.social", &accounts));
        assert!(is_own("care@support.example", &accounts));
        assert!(
            !is_own("care@elsewhere.example", &accounts),
            "a full account is strict"
        );
        assert!(!is_own("northwindhelpdesk@mastodon.social", &accounts));
        assert!(is_own("northwindhelp.bsky.social", &accounts));
        assert!(!is_own("northwindhelp.evil.example", &accounts));
        let own = matcher().find(
            "Northwind here: sorry for the delay",
            Some("NorthwindHelp@social.example"),
        );
        assert!(own[0].own_account);
    }

    #[test]
    fn exclusions_veto_and_own_accounts_are_flagged() {
        assert!(brands("Northwind Trader app update").is_empty());
        let hits = matcher().find(
            "We're sorry, Northwind will fix this",
            Some("@NorthwindHelp"),
        );
        assert_eq!(
            hits,
            vec![BrandHit {
                brand: "Northwind".into(),
                own_account: true
            }]
        );
    }
}
