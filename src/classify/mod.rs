//! Keyword classification: readable, editable rules turned into a verdict that says *why*.
//!
//! The selected packs (`packs/*.toml`, plus any `[classify] pack_files`) and the config's `[[classify.rule]]`
//! entries are compiled once into one [`PhraseSet`]: every word and phrase of every rule and lexicon, and the
//! negators, intensifiers and contrast words, in a single token trie walked once per text. A regex rule runs only
//! on texts that hold a word its matches can start with (found in the same walk). A word only matches text in its
//! own script, so every pack that fits a text's scripts applies to it:
//! Taglish, Manglish or Roman Urdu mixed with English hear both languages' rules.
//!
//! Each hit's weight is then adjusted by what stands around it: a negator shortly before ("not bad", "tidak
//! bagus") or, in Urdu and Telugu, just after ("اچھا نہیں", "బాగా లేదు") flips and dampens it; an intensifier
//! strengthens it; ALL CAPS (in a text that is not all caps) and stretched letters add weight; a contrast word
//! ("but", "tapi", "pero", "لیکن", "కానీ") makes what follows count more than what precedes it. Exclamation marks
//! amplify the total. The sum becomes a compound score in [-1, 1].
//!
//! A mention is a **complaint** when its score is at or below `complaint_at`, or when a complaint cue (a rule with
//! tags, such as "still waiting" or "where is my") fired with a weight of -2 or less and the text is not clearly
//! positive (score below 0.5): most real complaints are polite and carry no angry word.

pub mod pack;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};
use serde::{Deserialize, Serialize};

pub use pack::Pack;

use crate::phrase::PhraseSet;
use crate::text::{Normalized, TokenKind, normalize_into};

/// Default complaint threshold: a single cue such as "where is my" (-1.5) reaches it; a bare "refund" does not.
pub const DEFAULT_COMPLAINT_AT: f64 = -0.3;

/// How far back (in tokens) a negator reaches.
const NEGATION_SCOPE: usize = 3;
/// How far forward (in tokens) a negator that follows its word (Urdu, Telugu) reaches.
const NEGATION_AFTER_SCOPE: usize = 2;
/// VADER's empirically found factor for negated words.
const NEGATION_FACTOR: f64 = -0.74;
const CAPS_BOOST: f64 = 0.733;
const STRETCH_BOOST: f64 = 0.3;
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

impl Sentiment {
    /// The sentiment of a score.
    fn of(score: f64) -> Sentiment {
        if score >= 0.05 {
            Sentiment::Positive
        } else if score <= -0.05 {
            Sentiment::Negative
        } else {
            Sentiment::Neutral
        }
    }
}

/// A rule, tag or language name in a verdict. The classifier's own names are interned (see [`intern`]) and
/// borrowed, so a verdict copies pointers instead of counting references; a verdict read back from the store owns
/// its names.
pub type Name = Cow<'static, str>;

/// One rule firing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hit {
    /// The rule's name.
    pub rule: Name,
    /// The matched words as written in the text (inline when short: most are).
    pub text: smol_str::SmolStr,
    /// Byte offset of the match in the text.
    pub start: usize,
    /// Byte offset just past the match.
    pub end: usize,
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
    /// Language: the platform's when it gave one, else detected (whatlang, among the selected packs' languages),
    /// else the language of the pack whose rules fired most; none for a text with no words.
    pub lang: Option<Name>,
    /// Sorted tags of the rules that fired.
    pub tags: Vec<Name>,
    /// Names of the rules that fired, in order of first hit.
    pub rules: Vec<Name>,
    /// Every hit, in text order.
    pub hits: Vec<Hit>,
}

/// A compiled rule; names and tags are interned, and every verdict borrows them.
struct Rule {
    name: &'static str,
    weight: f64,
    tags: Vec<&'static str>,
    /// Its pack's language, by index in [`Classifier::langs`]; none for a config rule.
    lang: Option<usize>,
}

/// What a pattern of the automaton is.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// A word or phrase of this rule; the weight overrides the rule's (lexicon entries).
    Rule(usize, f64),
    Negator,
    NegatorAfter,
    Intensifier(f64),
    Contrast,
    /// A word that every match of this regex (by index in `regexes`) starts with, or, with a number before it,
    /// starts one token after (the second field: how many tokens before the word the match starts).
    RegexGate(usize, usize),
}

/// Compiled rules; build once, classify many.
pub struct Classifier {
    rules: Vec<Rule>,
    matcher: PhraseSet,
    roles: Vec<Role>,
    /// Regex rules: (rule, regex).
    regexes: Vec<(usize, Regex)>,
    /// Regexes with no gate words, tried on every text.
    ungated: Vec<usize>,
    /// Per regex, when it has gate words and looks at nothing before its match: itself anchored at the start
    /// (`^(?:…)`), to tell cheaply whether any match starts at a gate word before searching the whole text.
    anchored: Vec<Option<Regex>>,
    /// Single words the packs know: how stretched words are shrunk and lowercase hashtags split.
    vocab: HashSet<Box<str>, foldhash::fast::RandomState>,
    detector: crate::lang::Detector,
    /// The packs' languages, sorted: [`Classifier::pack_vote`] counts votes by index.
    langs: Vec<&'static str>,
    complaint_at: f64,
}

impl Classifier {
    /// Every built-in pack plus `rules`; every problem in `rules` is reported.
    pub fn new(rules: &[RuleConfig], complaint_at: f64) -> Result<Classifier, Vec<RuleProblem>> {
        let packs: Vec<&Pack> = pack::builtin().iter().collect();
        Classifier::with_packs(&packs, rules, complaint_at)
    }

    /// The given packs plus `rules` (a rule named like a pack's rule replaces it); every problem in `rules` is
    /// reported.
    pub fn with_packs(
        packs: &[&Pack],
        rules: &[RuleConfig],
        complaint_at: f64,
    ) -> Result<Classifier, Vec<RuleProblem>> {
        let problems: Vec<RuleProblem> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| check_rule(i, r))
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
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
        packs: &[&Pack],
        complaint_at: f64,
    ) -> Classifier {
        let mut patterns: Vec<String> = Vec::new();
        let mut roles = Vec::new();
        let mut regex_list = Vec::new();
        let mut rules = Vec::new();
        let mut langs: Vec<&'static str> = packs.iter().map(|p| intern(&p.lang)).collect();
        langs.sort();
        langs.dedup();
        let lang_index = |lang: &str| langs.iter().position(|l| *l == lang);
        for (i, (r, lang)) in merged.into_iter().enumerate() {
            for p in r.words.iter().chain(&r.phrases) {
                patterns.push(p.clone());
                roles.push(Role::Rule(i, r.weight));
            }
            if let Some(re) = &r.regex {
                regex_list.push((i, Regex::new(re).expect("regex checked")));
            }
            rules.push(Rule {
                name: intern(&r.name),
                weight: r.weight,
                tags: r.tags.iter().map(|t| intern(t)).collect(),
                lang: lang.as_deref().and_then(lang_index),
            });
        }
        // A regex runs only on texts holding a word its matches can start with; the trie finds those words in the
        // same walk as everything else, so texts without them cost nothing.
        let mut ungated = Vec::new();
        for (k, (_, re)) in regex_list.iter().enumerate() {
            match regex_gate(re.as_str()) {
                Some(gates) => {
                    for (word, back) in gates {
                        patterns.push(word);
                        roles.push(Role::RegexGate(k, back));
                    }
                }
                None => ungated.push(k),
            }
        }
        let anchored = regex_list
            .iter()
            .map(|(_, re)| anchored_form(re.as_str()))
            .collect();
        // Lexicon words a rule already lists keep the rule's weight.
        let listed: HashSet<String> = patterns
            .iter()
            .map(|p| crate::text::normalize(p).joined().to_string())
            .collect();
        for p in packs {
            if p.lexicon.is_empty() {
                continue;
            }
            let rule = rules.len();
            rules.push(Rule {
                name: intern(&format!("{}.lexicon", p.lang)),
                weight: 0.0,
                tags: vec![],
                lang: lang_index(&p.lang),
            });
            for (word, weight) in &p.lexicon {
                if !listed.contains(crate::text::normalize(word).joined()) {
                    patterns.push(word.clone());
                    roles.push(Role::Rule(rule, *weight));
                }
            }
        }
        for p in packs {
            let words =
                |list: &[String], role: Role, patterns: &mut Vec<String>, roles: &mut Vec<Role>| {
                    for w in list {
                        patterns.push(w.clone());
                        roles.push(role);
                    }
                };
            words(&p.negators, Role::Negator, &mut patterns, &mut roles);
            words(
                &p.negators_after,
                Role::NegatorAfter,
                &mut patterns,
                &mut roles,
            );
            words(&p.contrast, Role::Contrast, &mut patterns, &mut roles);
            for (w, v) in &p.intensifiers {
                patterns.push(w.clone());
                roles.push(Role::Intensifier(*v));
            }
        }
        // Every word of every pattern, so `#neverflyingagain` splits into the words of "never flying".
        let vocab = patterns
            .iter()
            .flat_map(|p| {
                let n = crate::text::normalize(p.trim_end_matches('*'));
                n.tokens
                    .iter()
                    .filter(|t| t.kind == TokenKind::Word)
                    .map(|t| Box::from(&n.text[t.span.clone()]))
                    .collect::<Vec<_>>()
            })
            .collect();
        let codes: Vec<&str> = packs.iter().map(|p| p.lang.as_str()).collect();
        Classifier {
            rules,
            matcher: PhraseSet::new(&patterns).expect("pack and config patterns are checked"),
            roles,
            regexes: regex_list,
            ungated,
            anchored,
            vocab,
            detector: crate::lang::Detector::new(&codes),
            langs,
            complaint_at,
        }
    }

    /// Detects the text's language, then classifies it: what `earshot classify` and `earshot eval` do.
    pub fn classify(&self, text: &str) -> Verdict {
        let lang = self.detector.detect(text);
        self.classify_in(text, lang.as_deref())
    }

    /// The text's language, detected among the selected packs' languages, when it can be told.
    pub fn detect_language(&self, text: &str) -> Option<String> {
        self.detector.detect(text)
    }

    /// Classifies one text in a known language (the platform's tag, or [`Classifier::detect_language`]'s); with
    /// none, the verdict names the language of the pack whose rules fired most.
    pub fn classify_in(&self, text: &str, lang: Option<&str>) -> Verdict {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let verdict = self.classify_with(text, lang, &mut scratch);
            if scratch.norm.text.capacity() > 1 << 16 {
                *scratch = Scratch::default();
            }
            verdict
        })
    }

    fn classify_with(&self, text: &str, lang: Option<&str>, scratch: &mut Scratch) -> Verdict {
        let Scratch {
            norm: n,
            found,
            others,
            taken,
            gates,
            votes,
            ctx,
        } = scratch;
        normalize_into(text, &|w| self.vocab.contains(w), n);
        found.clear();
        others.clear();
        gates.clear();
        gates.extend(self.ungated.iter().map(|&k| (k, ANYWHERE)));
        // The walk gives hits in the order of their first token. When each starts at or after the end of all
        // before it (most texts), none overlap and all are kept: told here without a branch, rather than by
        // a loop over the hits afterwards, whose exit is mispredicted.
        let mut overlap = false;
        let mut reach = 0;
        self.matcher
            .for_each_match(n, |m| match self.roles[m.pattern] {
                Role::Rule(rule, weight) => {
                    overlap |= m.tokens.start < reach;
                    reach = reach.max(m.tokens.end);
                    found.push(Found {
                        rule,
                        weight,
                        tokens: m.tokens,
                    })
                }
                Role::RegexGate(k, back) => {
                    if let Some(t) = m.tokens.start.checked_sub(back) {
                        gates.push((k, t));
                    }
                }
                role => others.push((role, m.tokens)),
            });
        if overlap {
            longest_first(found, taken, n.tokens.len());
        }
        gates.sort_unstable();
        gates.dedup();
        let from_walk = found.len();
        self.regex_hits(n, gates, found);
        // Hits from the walk that do not overlap are in text order already; a sort call costs more than the few
        // hits it would sort.
        if overlap || found.len() > from_walk {
            found.sort_unstable_by_key(|f| (f.tokens.start, f.rule));
        }
        ctx.fill(n, found, others);
        // One pass over the hits gathers all the verdict lists (hits, rules, tags, votes): the number of hits varies
        // from text to text, and the end of every loop over them is a mispredicted branch.
        let mut hits = Vec::with_capacity(found.len());
        let mut rules: Vec<Name> = Vec::with_capacity(found.len());
        let mut tags: Vec<Name> = Vec::new();
        votes.clear();
        votes.resize(self.langs.len(), 0);
        // A bit per rule index modulo 64: a rule whose bit is clear has not been listed yet (nearly always).
        let mut listed = 0_u64;
        let mut sum = 0.0;
        let mut strongest_cue: f64 = 0.0;
        for (i, f) in found.iter().enumerate() {
            let rule = &self.rules[f.rule];
            let w = ctx.adjust(f.weight, &f.tokens, n);
            sum += w;
            if !rule.tags.is_empty() {
                strongest_cue = strongest_cue.min(w);
                tags.extend(rule.tags.iter().map(|&t| Cow::Borrowed(t)));
            }
            let bit = 1 << (f.rule % 64);
            if listed & bit == 0 || !found[..i].iter().any(|e| e.rule == f.rule) {
                rules.push(Cow::Borrowed(rule.name));
            }
            listed |= bit;
            if let Some(l) = rule.lang {
                votes[l] += 1;
            }
            let original =
                n.tokens[f.tokens.start].original.start..n.tokens[f.tokens.end - 1].original.end;
            hits.push(Hit {
                rule: Cow::Borrowed(rule.name),
                text: hit_text(&text[original.clone()]),
                start: original.start,
                end: original.end,
                weight: round(w),
            });
        }
        sum = ctx.punctuate(sum);
        let score = round((sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0));
        let complaint = score <= self.complaint_at || (strongest_cue <= STRONG_CUE && score < 0.5);
        let lang = match lang {
            Some(l) if !l.trim().is_empty() => Some(crate::lang::primary(l).into()),
            _ => self.pack_vote(votes),
        };
        // Most texts have no tagged hit, and the calls would be made for nothing.
        if tags.len() > 1 {
            tags.sort();
            tags.dedup();
        }
        Verdict {
            sentiment: Sentiment::of(score),
            score,
            complaint,
            lang,
            tags,
            rules,
            hits,
        }
    }

    /// Adds the first whole-word match of each regex in `which` (regex, gate word's token; sorted) to `found`.
    fn regex_hits(&self, n: &Normalized, which: &[(usize, usize)], found: &mut Vec<Found>) {
        let bytes = n.text.as_bytes();
        for group in which.chunk_by(|a, b| a.0 == b.0) {
            let k = group[0].0;
            // A whole-word match starts at one of its gate words: when the regex matches at none of them, the
            // search over the whole text (most of a regex's cost) cannot find one. Each anchored try may read to
            // the end of the text, so only a few are made: many gate words in a long post would make it quadratic.
            if let Some(anchored) = &self.anchored[k]
                && group.len() <= MAX_ANCHORED_TRIES
                && group.iter().all(|&(_, t)| {
                    t != ANYWHERE && !anchored.is_match(&n.text[n.tokens[t].span.start..])
                })
            {
                continue;
            }
            let (rule, re) = &self.regexes[k];
            let whole_words = |m: &regex::Match| {
                m.start() > 0
                    && bytes[m.start() - 1] == b' '
                    && (bytes[m.end() - 1] == b' ' || bytes.get(m.end()) == Some(&b' '))
            };
            let Some(m) = re.find_iter(&n.text).find(whole_words) else {
                continue;
            };
            let first = n.tokens.partition_point(|t| t.span.end <= m.start());
            let last = n.tokens.partition_point(|t| t.span.start < m.end());
            if first < last {
                found.push(Found {
                    rule: *rule,
                    weight: self.rules[*rule].weight,
                    tokens: first..last,
                });
            }
        }
    }

    /// The language of the pack whose rules fired most (`votes`: hits per pack language); of two as many, the
    /// first by name.
    fn pack_vote(&self, votes: &[u32]) -> Option<Name> {
        // `langs` is sorted, so the first of the most voted is the first by name.
        let mut best = None;
        let mut top = 0;
        for (l, &count) in votes.iter().enumerate() {
            if count > top {
                (best, top) = (Some(l), count);
            }
        }
        best.map(|l| Cow::Borrowed(self.langs[l]))
    }
}

/// Buffers reused from one classification to the next on a thread.
#[derive(Default)]
struct Scratch {
    norm: Normalized,
    found: Vec<Found>,
    others: Vec<(Role, Range<usize>)>,
    taken: Vec<bool>,
    /// Regexes to try: (regex, token of a gate word, or [`ANYWHERE`] for an ungated regex).
    gates: Vec<(usize, usize)>,
    /// Hits per pack language, for [`Classifier::pack_vote`].
    votes: Vec<u32>,
    /// What stands around the hits; refilled for each text.
    ctx: Context,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One rule hit before adjustment.
struct Found {
    rule: usize,
    weight: f64,
    tokens: Range<usize>,
}

/// A hit's words as a [`smol_str::SmolStr`]: `SmolStr::new` copies a short string with a call to `memcpy`, which
/// branches on the length; `new_inline` copies it in a loop.
fn hit_text(words: &str) -> smol_str::SmolStr {
    if words.len() <= smol_str::SmolStr::INLINE_CAP {
        smol_str::SmolStr::new_inline(words)
    } else {
        smol_str::SmolStr::new(words)
    }
}

/// Keeps non-overlapping hits: where hits overlap, the one with more tokens wins, then the leftmost, then the
/// earlier rule (pack rules before config rules before lexicon words).
fn longest_first(found: &mut Vec<Found>, taken: &mut Vec<bool>, tokens: usize) {
    found.sort_unstable_by_key(|f| (std::cmp::Reverse(f.tokens.len()), f.tokens.start, f.rule));
    taken.clear();
    taken.resize(tokens, false);
    found.retain(|f| {
        let free = f.tokens.clone().all(|t| !taken[t]);
        if free {
            f.tokens.clone().for_each(|t| taken[t] = true);
        }
        free
    });
}

/// What stands around the hits of one text: negators, intensifiers, contrast, punctuation.
#[derive(Default)]
struct Context {
    /// Last token of each negator that precedes its word.
    negator_ends: Vec<usize>,
    /// First token of each negator that follows its word.
    negator_after_starts: Vec<usize>,
    /// (last token, boost) of each intensifier.
    intensifier_at: Vec<(usize, f64)>,
    contrast_at: Option<usize>,
    /// Some words are in caps and some are not: caps then mean shouting.
    caps_differ: bool,
    exclamations: usize,
    questions: usize,
}

impl Context {
    /// Refills the context for text `n` (its lists keep their buffers from the text before).
    fn fill(&mut self, n: &Normalized, hits: &[Found], others: &[(Role, Range<usize>)]) {
        // A negator or intensifier that is part of a hit ("never arrived") belongs to that hit.
        let in_hit = |t: usize| hits.iter().any(|f| f.tokens.contains(&t));
        let ctx = self;
        ctx.negator_ends.clear();
        ctx.negator_after_starts.clear();
        ctx.intensifier_at.clear();
        ctx.contrast_at = None;
        for (role, toks) in others {
            if toks.clone().any(in_hit) {
                continue;
            }
            match role {
                Role::Negator => ctx.negator_ends.push(toks.end - 1),
                Role::NegatorAfter => ctx.negator_after_starts.push(toks.start),
                Role::Intensifier(v) => ctx.intensifier_at.push((toks.end - 1, *v)),
                Role::Contrast => {
                    ctx.contrast_at =
                        Some(ctx.contrast_at.map_or(toks.start, |c| c.min(toks.start)))
                }
                Role::Rule(..) | Role::RegexGate(..) => {}
            }
        }
        // Counted while tokenising: no pass over the tokens here.
        ctx.exclamations = n.exclamations;
        ctx.questions = n.questions;
        ctx.caps_differ = n.caps_words > 0 && n.caps_words < n.words;
    }

    /// A hit's weight after the words around it.
    fn adjust(&self, weight: f64, toks: &Range<usize>, n: &Normalized) -> f64 {
        let sign = weight.signum();
        let mut w = weight;
        for back in 1..=2 {
            if let Some((_, v)) = toks
                .start
                .checked_sub(back)
                .and_then(|i| self.intensifier_at.iter().rev().find(|(at, _)| *at == i))
            {
                w += sign * v;
                break;
            }
        }
        let words = &n.tokens[toks.clone()];
        if self.caps_differ && words.iter().any(|t| t.caps) {
            w += sign * CAPS_BOOST;
        }
        if words.iter().any(|t| t.stretched) {
            w += sign * STRETCH_BOOST;
        }
        let before = self
            .negator_ends
            .iter()
            .any(|&e| e < toks.start && toks.start - e <= NEGATION_SCOPE);
        let after = self
            .negator_after_starts
            .iter()
            .any(|&s| s >= toks.end && s - toks.end < NEGATION_AFTER_SCOPE);
        if before || after {
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

/// The words that every match of regex `re` starts at, as patterns (`day`, or `wee*` for a partial word), each
/// with how many tokens before it the match starts (see [`number_branch_gates`]); none when that cannot be told,
/// and the regex then runs on every text. Every regex hit starts a word, so a text without one of these words
/// cannot match.
fn regex_gate(re: &str) -> Option<Vec<(String, usize)>> {
    let hir = regex_syntax::parse(re).ok()?;
    if let Some(gates) = number_branch_gates(&hir) {
        return Some(gates);
    }
    Some(first_words(&hir)?.into_iter().map(|w| (w, 0)).collect())
}

/// The gates of a regex that starts with a choice of a number or words, then a space (`(?:[0-9]+|two|three)
/// (?:days|weeks) `): the words of its word branches, and for its number branch the words that can follow the
/// number, one token after where the match starts. Numbers are common in posts and the words after them in such
/// rules are rare, so the regex is tried at far fewer places than behind every number.
fn number_branch_gates(hir: &Hir) -> Option<Vec<(String, usize)>> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    let branches: Vec<&Hir> = match first.kind() {
        HirKind::Alternation(branches) => branches.iter().collect(),
        _ => vec![first],
    };
    let (numbers, words): (Vec<&Hir>, Vec<&Hir>) = branches.into_iter().partition(|b| is_number(b));
    if numbers.is_empty() {
        return None;
    }
    // What follows the number: the rest of the regex after its leading space.
    let (head, tail) = rest.split_first()?;
    let HirKind::Literal(literal) = head.kind() else {
        return None;
    };
    let after_space = literal.0.strip_prefix(b" ")?;
    let after: Vec<Hir> = std::iter::once(Hir::literal(after_space))
        .chain(tail.iter().cloned())
        .collect();
    let mut gates: Vec<(String, usize)> = first_words(&Hir::concat(after))?
        .into_iter()
        .map(|w| (w, 1))
        .collect();
    if !words.is_empty() {
        let branch = Hir::alternation(words.into_iter().cloned().collect());
        let whole = std::iter::once(branch)
            .chain(rest.iter().cloned())
            .collect();
        gates.extend(
            first_words(&Hir::concat(whole))?
                .into_iter()
                .map(|w| (w, 0)),
        );
    }
    gates.sort();
    gates.dedup();
    Some(gates)
}

/// `h` is a run of one or more digits (`[0-9]+`, `[0-9۰-۹]+`).
fn is_number(h: &Hir) -> bool {
    let HirKind::Repetition(r) = h.kind() else {
        return false;
    };
    match r.sub.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            r.min >= 1
                && class
                    .ranges()
                    .iter()
                    .all(|range| (range.start()..=range.end()).all(char::is_numeric))
        }
        _ => false,
    }
}

/// The words one of which every match of `hir` starts with, as patterns (`day`, or `wee*` for a partial word);
/// none when that cannot be told.
fn first_words(hir: &Hir) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    // Classes of up to 64 characters (the default is 10) become literals, so a regex that starts with a number
    // in a way [`number_branch_gates`] does not take (`[0-9۰-۹]+ din|kal`) is gated by the digits rather than run
    // on every text.
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_class(64)
        .extract(hir);
    let literals = seq.literals().filter(|l| !l.is_empty())?;
    let mut words = Vec::new();
    for literal in literals {
        let s = std::str::from_utf8(literal.as_bytes()).ok()?;
        let (head, whole) = match s.split_once(' ') {
            Some((head, _)) => (head, true),
            None => (s, false),
        };
        if head.is_empty() || !head.chars().all(char::is_alphanumeric) {
            return None;
        }
        words.push(if whole {
            head.to_string()
        } else {
            format!("{head}*")
        });
    }
    words.sort();
    words.dedup();
    Some(words)
}

/// At most this many anchored tries of a regex, one per gate word, before searching the whole text instead.
const MAX_ANCHORED_TRIES: usize = 8;

/// An ungated regex's place in [`Scratch::gates`]: it runs on every text.
const ANYWHERE: usize = usize::MAX;

/// `re` anchored at the start of the text, for [`Classifier::regex_hits`] to run from a gate word's first byte
/// on the text from there on. Only when `re` asserts nothing but the end of the text (`$`): anything that looks
/// back (`^`, `\b`) would see a different text before the cut.
fn anchored_form(re: &str) -> Option<Regex> {
    use regex_syntax::hir::Look;
    let hir = regex_syntax::parse(re).ok()?;
    let looks = hir.properties().look_set();
    if !looks.remove(Look::End).is_empty() {
        return None;
    }
    Regex::new(&format!("^(?:{re})")).ok()
}

/// The one copy of `name` for the life of the process: rule, tag and language names are borrowed by every verdict.
/// A reload that brings back the same names adds nothing; only names never seen before are kept (a few bytes each).
fn intern(name: &str) -> &'static str {
    static NAMES: LazyLock<Mutex<std::collections::HashSet<&'static str>>> =
        LazyLock::new(Default::default);
    let mut names = NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match names.get(name) {
        Some(&known) => known,
        None => {
            let kept: &'static str = Box::leak(name.into());
            names.insert(kept);
            kept
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Every problem of one rule (`i` is its index, for the report).
pub fn check_rule(i: usize, r: &RuleConfig) -> Vec<RuleProblem> {
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
