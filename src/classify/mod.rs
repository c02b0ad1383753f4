//! Keyword classification: readable, editable rules turned into a verdict that says *why*.
//!
//! Built-in packs (`packs/*.toml`) and the config's `[[classify.rule]]` entries are compiled once into one
//! [`PhraseSet`] (words and phrases, whole tokens) and one `RegexSet`. Each hit's weight is then adjusted by what
//! stands around it: a negator shortly before flips and dampens it ("not bad"), an intensifier strengthens it,
//! ALL CAPS adds weight, a contrast word ("but") makes what follows count more than what precedes it. Exclamation
//! marks amplify the total. The sum becomes a compound score in [-1, 1].
//!
//! A mention is a **complaint** when its score is at or below `complaint_at`, or when a complaint cue (a rule with
//! tags, such as "still waiting" or "where is my") fired with a weight of -2 or less and the text is not clearly
//! positive (score below 0.5): most real complaints are polite and carry no angry word.

mod pack;

use std::collections::HashMap;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::phrase::{PhraseMatch, PhraseSet};
use crate::text::{Normalized, TokenKind, normalize};

/// Default complaint threshold: a single cue such as "where is my" (-1.5) reaches it; a bare "refund" does not.
pub const DEFAULT_COMPLAINT_AT: f64 = -0.3;

/// How far back (in tokens) a negator reaches.
const NEGATION_SCOPE: usize = 3;
/// VADER's empirically found factor for negated words.
const NEGATION_FACTOR: f64 = -0.74;
const CAPS_BOOST: f64 = 0.733;
const EXCLAMATION_BOOST: f64 = 0.292;
const QUESTION_BOOST: f64 = 0.18;
/// Normalisation constant of the compound score (as in VADER).
const ALPHA: f64 = 15.0;
/// A cue this strong makes a complaint on its own.
const STRONG_CUE: f64 = -2.0;

/// One keyword rule, as written in a pack or in the config's `[[classify.rule]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct RuleConfig {
    /// Unique name, shown in verdicts; a config rule with a built-in's name replaces it.
    pub name: String,
    /// Single words (a trailing `*` matches any word starting so).
    #[serde(default)]
    pub words: Vec<String>,
    /// Multi-word phrases (a trailing `*` as for words).
    #[serde(default)]
    pub phrases: Vec<String>,
    /// A regular expression over the normalised (lowercased, space-separated) text.
    #[serde(default)]
    pub regex: Option<String>,
    /// Valence: negative = unhappy, roughly -4 to +4.
    pub weight: f64,
    /// Tags such as billing, delay, legal; a rule with tags is a complaint cue.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A rule that cannot be used, by index in the config's rule list.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleProblem {
    /// Index into the rules given to [`Classifier::new`].
    pub index: usize,
    /// The key at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// negative, neutral or positive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    /// Score at or below -0.05.
    Negative,
    /// In between.
    Neutral,
    /// Score at or above 0.05.
    Positive,
}

/// One rule firing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hit {
    /// The rule's name.
    pub rule: String,
    /// The matched words as written in the text.
    pub text: String,
    /// Its contribution after negation, intensifiers, caps and contrast.
    pub weight: f64,
}

/// The classifier's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// From the score.
    pub sentiment: Sentiment,
    /// Compound score in [-1, 1].
    pub score: f64,
    /// Would open a case.
    pub complaint: bool,
    /// Language of the pack whose rules fired most, when any did.
    pub lang: Option<String>,
    /// Sorted tags of the rules that fired.
    pub tags: Vec<String>,
    /// Names of the rules that fired, in order of first hit.
    pub rules: Vec<String>,
    /// Every hit, in text order.
    pub hits: Vec<Hit>,
}

struct Rule {
    name: String,
    weight: f64,
    tags: Vec<String>,
    lang: Option<String>,
}

/// Compiled rules; build once, classify many.
pub struct Classifier {
    rules: Vec<Rule>,
    phrases: PhraseSet,
    phrase_rule: Vec<usize>,
    regexes: RegexSet,
    regex_list: Vec<(usize, Regex)>,
    negators: PhraseSet,
    intensifiers: PhraseSet,
    intensity: Vec<f64>,
    contrast: PhraseSet,
    complaint_at: f64,
}

impl Classifier {
    /// Built-in packs plus `rules`; every problem in `rules` is reported.
    pub fn new(rules: &[RuleConfig], complaint_at: f64) -> Result<Classifier, Vec<RuleProblem>> {
        let problems: Vec<RuleProblem> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| check_rule(i, r))
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let packs = pack::builtin();
        let mut merged: Vec<(RuleConfig, Option<String>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (rule, lang) in packs
            .iter()
            .flat_map(|p| p.rule.iter().map(move |r| (r, Some(p.lang.clone()))))
            .chain(rules.iter().map(|r| (r, None)))
        {
            match index.get(&rule.name) {
                Some(&i) => merged[i] = (rule.clone(), None),
                None => {
                    index.insert(rule.name.clone(), merged.len());
                    merged.push((rule.clone(), lang));
                }
            }
        }
        Ok(Self::compile(merged, packs, complaint_at))
    }

    /// The built-in rules only, default threshold.
    pub fn builtin() -> Classifier {
        Classifier::new(&[], DEFAULT_COMPLAINT_AT).expect("built-in rules compile")
    }

    fn compile(
        merged: Vec<(RuleConfig, Option<String>)>,
        packs: &[pack::Pack],
        complaint_at: f64,
    ) -> Classifier {
        let mut patterns = Vec::new();
        let mut phrase_rule = Vec::new();
        let mut regex_list = Vec::new();
        let mut rules = Vec::new();
        for (i, (r, lang)) in merged.into_iter().enumerate() {
            for p in r.words.iter().chain(&r.phrases) {
                patterns.push(p.clone());
                phrase_rule.push(i);
            }
            if let Some(re) = &r.regex {
                regex_list.push((i, Regex::new(re).expect("regex checked")));
            }
            rules.push(Rule {
                name: r.name,
                weight: r.weight,
                tags: r.tags,
                lang,
            });
        }
        let list = |f: fn(&pack::Pack) -> Vec<String>| {
            PhraseSet::new(packs.iter().flat_map(f)).expect("pack words compile")
        };
        let intensity_pairs: Vec<(String, f64)> =
            packs.iter().flat_map(|p| p.intensifiers.clone()).collect();
        Classifier {
            rules,
            phrases: PhraseSet::new(&patterns).expect("patterns checked"),
            phrase_rule,
            regexes: RegexSet::new(regex_list.iter().map(|(_, r)| r.as_str()))
                .expect("regexes checked"),
            regex_list,
            negators: list(|p| p.negators.clone()),
            intensifiers: PhraseSet::new(intensity_pairs.iter().map(|(w, _)| w))
                .expect("pack words compile"),
            intensity: intensity_pairs.iter().map(|(_, v)| *v).collect(),
            contrast: list(|p| p.contrast.clone()),
            complaint_at,
        }
    }

    /// Classifies one text.
    pub fn classify(&self, text: &str) -> Verdict {
        let n = normalize(text);
        let mut found: Vec<(usize, std::ops::Range<usize>)> = self
            .phrases
            .find_all(&n)
            .into_iter()
            .map(|m| (self.phrase_rule[m.pattern], m.tokens))
            .collect();
        found.extend(self.regex_hits(&n));
        found.sort_by_key(|(_, t)| t.start);
        let ctx = Context::new(self, &n, &found);
        let mut hits = Vec::new();
        let mut sum = 0.0;
        let mut strongest_cue: f64 = 0.0;
        for (rule_idx, toks) in &found {
            let rule = &self.rules[*rule_idx];
            let w = ctx.adjust(rule.weight, toks, &n);
            sum += w;
            if !rule.tags.is_empty() {
                strongest_cue = strongest_cue.min(w);
            }
            let original = n.tokens[toks.start].original.start..n.tokens[toks.end - 1].original.end;
            hits.push(Hit {
                rule: rule.name.clone(),
                text: text[original].to_string(),
                weight: round(w),
            });
        }
        sum = ctx.punctuate(sum);
        let score = round((sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0));
        let complaint = score <= self.complaint_at || (strongest_cue <= STRONG_CUE && score < 0.5);
        self.verdict(score, complaint, &found, hits)
    }

    fn regex_hits(&self, n: &Normalized) -> Vec<(usize, std::ops::Range<usize>)> {
        if self.regex_list.is_empty() {
            return vec![];
        }
        self.regexes
            .matches(&n.text)
            .into_iter()
            .filter_map(|i| {
                let (rule, re) = &self.regex_list[i];
                let m = re.find(&n.text)?;
                let first = n.tokens.partition_point(|t| t.span.end <= m.start());
                let last = n.tokens.partition_point(|t| t.span.start < m.end());
                (first < last).then_some((*rule, first..last))
            })
            .collect()
    }

    fn verdict(
        &self,
        score: f64,
        complaint: bool,
        found: &[(usize, std::ops::Range<usize>)],
        hits: Vec<Hit>,
    ) -> Verdict {
        let mut rules: Vec<String> = Vec::new();
        let mut tags: Vec<String> = Vec::new();
        let mut langs: HashMap<&str, usize> = HashMap::new();
        for (i, _) in found {
            let r = &self.rules[*i];
            if !rules.contains(&r.name) {
                rules.push(r.name.clone());
            }
            tags.extend(r.tags.iter().cloned());
            if let Some(l) = &r.lang {
                *langs.entry(l.as_str()).or_default() += 1;
            }
        }
        tags.sort();
        tags.dedup();
        let lang = langs
            .into_iter()
            .max_by_key(|(l, c)| (*c, std::cmp::Reverse(*l)))
            .map(|(l, _)| l.to_string());
        let sentiment = if score >= 0.05 {
            Sentiment::Positive
        } else if score <= -0.05 {
            Sentiment::Negative
        } else {
            Sentiment::Neutral
        };
        Verdict {
            sentiment,
            score,
            complaint,
            lang,
            tags,
            rules,
            hits,
        }
    }
}

/// What stands around the hits of one text: negators, intensifiers, contrast, punctuation.
struct Context {
    negator_ends: Vec<usize>,
    intensifier_at: HashMap<usize, f64>,
    contrast_at: Option<usize>,
    exclamations: usize,
    questions: usize,
}

impl Context {
    fn new(c: &Classifier, n: &Normalized, hits: &[(usize, std::ops::Range<usize>)]) -> Context {
        // A negator that is part of a hit ("never arrived") belongs to that hit and negates nothing else.
        let in_hit = |t: usize| hits.iter().any(|(_, r)| r.contains(&t));
        let ends = |ms: Vec<PhraseMatch>| {
            ms.into_iter()
                .map(|m| m.tokens.end - 1)
                .filter(|&e| !in_hit(e))
                .collect::<Vec<_>>()
        };
        let intensifier_at = c
            .intensifiers
            .find_all(n)
            .into_iter()
            .map(|m| (m.tokens.end - 1, c.intensity[m.pattern]))
            .collect();
        let count = |ch: char| {
            n.tokens
                .iter()
                .filter(|t| t.kind == TokenKind::Punct)
                .map(|t| n.text[t.span.clone()].matches(ch).count())
                .sum()
        };
        Context {
            negator_ends: ends(c.negators.find_all(n)),
            intensifier_at,
            contrast_at: c.contrast.find_all(n).first().map(|m| m.tokens.start),
            exclamations: count('!'),
            questions: count('?'),
        }
    }

    /// A hit's weight after the words around it.
    fn adjust(&self, weight: f64, toks: &std::ops::Range<usize>, n: &Normalized) -> f64 {
        let sign = weight.signum();
        let mut w = weight;
        for back in 1..=2 {
            if let Some(v) = toks
                .start
                .checked_sub(back)
                .and_then(|i| self.intensifier_at.get(&i))
            {
                w += sign * v;
                break;
            }
        }
        if n.tokens[toks.clone()].iter().any(|t| t.caps) {
            w += sign * CAPS_BOOST;
        }
        let negated = self
            .negator_ends
            .iter()
            .any(|&e| e < toks.start && toks.start - e <= NEGATION_SCOPE);
        if negated {
            w *= NEGATION_FACTOR;
        }
        match self.contrast_at {
            Some(c) if toks.start < c => w * 0.5,
            Some(c) if toks.start > c => w * 1.5,
            _ => w,
        }
    }

    /// Exclamation marks amplify the total; repeated question marks add to a negative one.
    fn punctuate(&self, sum: f64) -> f64 {
        if sum == 0.0 {
            return sum;
        }
        let mut s = sum + sum.signum() * EXCLAMATION_BOOST * self.exclamations.min(4) as f64;
        if s < 0.0 && self.questions > 1 {
            s -= QUESTION_BOOST * self.questions.min(3) as f64;
        }
        s
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn check_rule(i: usize, r: &RuleConfig) -> Vec<RuleProblem> {
    let mut out = Vec::new();
    let mut p = |field, message: String| {
        out.push(RuleProblem {
            index: i,
            field,
            message,
        })
    };
    if r.name.trim().is_empty() {
        p("name", "a rule needs a `name`".into());
    }
    if r.words.is_empty() && r.phrases.is_empty() && r.regex.is_none() {
        p(
            "words",
            "a rule needs `words`, `phrases` or a `regex`".into(),
        );
    }
    if !r.weight.is_finite() {
        p("weight", "must be a number".into());
    }
    for (field, list) in [("words", &r.words), ("phrases", &r.phrases)] {
        if let Err(e) = PhraseSet::new(list) {
            p(field, e.to_string());
        }
    }
    if let Some(re) = &r.regex
        && let Err(e) = Regex::new(re)
    {
        p("regex", format!("invalid regex: {e}"));
    }
    out
}

#[cfg(test)]
mod tests;
