//! Word and phrase patterns matched on whole tokens: one aho-corasick automaton over the normalised text, then
//! a check that each match starts and ends on token boundaries. Works the same in every script, and costs one
//! pass however many patterns there are (a `\b…\b` regex set would fall back to a slow engine on non-ASCII text).

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::text::{Normalized, normalize};

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct PhraseSet {
    ac: Option<AhoCorasick>,
    /// Per pattern: how many tokens it has.
    tokens: Vec<usize>,
}

/// A pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PhraseError {
    /// Nothing to match once normalised.
    #[error("{0:?} has no word or symbol in it")]
    Empty(String),
    /// The automaton could not be built (far beyond any real rule set).
    #[error("cannot compile the patterns: {0}")]
    Build(String),
}

/// One match: which pattern, over which tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseMatch {
    /// Index of the pattern, in the order given.
    pub pattern: usize,
    /// Token indices it covers.
    pub tokens: Range<usize>,
}

impl PhraseSet {
    /// Compiles patterns; a trailing `*` makes the last token match as a prefix (`refund*` matches `refunded`).
    pub fn new<I: AsRef<str>>(
        patterns: impl IntoIterator<Item = I>,
    ) -> Result<PhraseSet, PhraseError> {
        let (mut texts, mut tokens) = (Vec::new(), Vec::new());
        for p in patterns {
            let raw = p.as_ref().trim();
            let (body, is_prefix) = match raw.strip_suffix('*') {
                Some(b) => (b, true),
                None => (raw, false),
            };
            let n = normalize(body);
            if n.tokens.is_empty() {
                return Err(PhraseError::Empty(raw.to_string()));
            }
            tokens.push(n.tokens.len());
            // " word " can only match whole tokens of the normalised text; " word" is a prefix of the last one.
            let mut text = n.text;
            if is_prefix {
                text.pop();
            }
            texts.push(text);
        }
        let ac = if texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&texts)
                    .map_err(|e| PhraseError::Build(e.to_string()))?,
            )
        };
        Ok(PhraseSet { ac, tokens })
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Non-overlapping whole-token matches; where matches overlap, the one with more tokens wins, then the
    /// leftmost. Sorted by position.
    pub fn find_all(&self, text: &Normalized) -> Vec<PhraseMatch> {
        let mut all = self.matches(text);
        all.sort_by_key(|m| (std::cmp::Reverse(m.tokens.len()), m.tokens.start, m.pattern));
        let mut taken = vec![false; text.tokens.len()];
        let mut chosen: Vec<PhraseMatch> = Vec::new();
        for m in all {
            if m.tokens.clone().all(|t| !taken[t]) {
                m.tokens.clone().for_each(|t| taken[t] = true);
                chosen.push(m);
            }
        }
        chosen.sort_by_key(|m| m.tokens.start);
        chosen
    }

    /// Every whole-token match, overlapping ones included, in no particular order.
    pub fn matches(&self, text: &Normalized) -> Vec<PhraseMatch> {
        let mut all = Vec::new();
        self.for_each_match(text, |m| all.push(m));
        all
    }

    /// Calls `f` with every whole-token match, overlapping ones included, in no particular order.
    pub fn for_each_match(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch)) {
        self.candidates(text, |m| {
            f(m);
            false
        });
    }

    /// True if any pattern matches.
    pub fn is_match(&self, text: &Normalized) -> bool {
        let mut found = false;
        self.candidates(text, |_| {
            found = true;
            true
        });
        found
    }

    /// Calls `f` with every whole-token match until it returns true. Patterns carry their surrounding spaces,
    /// so every match found starts at a token and ends at one (or, for a prefix, inside its last token).
    fn candidates(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch) -> bool) {
        let Some(ac) = &self.ac else { return };
        let toks = &text.tokens;
        for m in ac.find_overlapping_iter(&text.text) {
            let p = m.pattern().as_usize();
            let Ok(first) = toks.binary_search_by_key(&(m.start() + 1), |t| t.span.start) else {
                continue;
            };
            if f(PhraseMatch {
                pattern: p,
                tokens: first..first + self.tokens[p],
            }) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(patterns: &[&str], text: &str) -> Vec<(usize, Range<usize>)> {
        PhraseSet::new(patterns)
            .unwrap()
            .find_all(&normalize(text))
            .into_iter()
            .map(|m| (m.pattern, m.tokens))
            .collect()
    }

    #[test]
    fn whole_tokens_only_in_any_case_and_script() {
        assert_eq!(found(&["Northwind"], "NORTHWIND lost it"), [(0, 0..1)]);
        assert!(found(&["northwind"], "the northwinds blow").is_empty());
        assert!(found(&["wind"], "northwind").is_empty());
        assert_eq!(
            found(&["نارتھ ونڈ"], "میں نے نارتھ ونڈ سے بات کی"),
            [(0, 2..4)]
        );
        assert_eq!(
            found(&["@NorthwindHelp"], "hi @northwindhelp!"),
            [(0, 1..2)]
        );
    }

    #[test]
    fn hashtags_match_by_their_parts_not_their_prefix() {
        assert_eq!(found(&["Northwind"], "#NorthwindSucks"), [(0, 1..2)]);
        assert!(found(&["#Northwind"], "#NorthwindSucks").is_empty());
        assert_eq!(found(&["#Northwind"], "love #northwind"), [(0, 1..2)]);
    }

    #[test]
    fn prefixes_and_longest_wins() {
        assert_eq!(found(&["refund*"], "still not refunded"), [(0, 2..3)]);
        assert_eq!(
            found(&["waiting", "still waiting"], "I am still waiting"),
            [(1, 2..4)]
        );
        assert_eq!(
            found(
                &["not", "not working", "working"],
                "app not working, not good"
            ),
            [(1, 1..3), (0, 4..5)]
        );
        assert_eq!(found(&["😡", ":("], "late 😡 :("), [(0, 1..2), (1, 2..3)]);
    }

    #[test]
    fn empty_patterns_are_errors_and_empty_sets_match_nothing() {
        assert!(PhraseSet::new(["  !? "]).is_ok());
        assert!(matches!(
            PhraseSet::new(["   "]),
            Err(PhraseError::Empty(_))
        ));
        let none = PhraseSet::new(Vec::<String>::new()).unwrap();
        assert!(none.is_empty() && !none.is_match(&normalize("anything")));
    }
}
