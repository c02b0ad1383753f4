//! Word and phrase patterns matched on whole tokens: every pattern is a path of folded tokens in one trie, and a
//! text is matched by walking it from each of its tokens, one hash lookup per step. The cost depends on the
//! text's length, not on how many patterns there are, and works the same in every script. (An aho-corasick
//! automaton over the characters was the first design; with the ~8,000 patterns of the built-in packs its DFA
//! outgrew the cache and cost several times more per text.)

use std::collections::HashMap;
use std::ops::Range;

use foldhash::fast::RandomState;

use crate::text::{Normalized, normalize};

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct PhraseSet {
    /// Every folded token some pattern uses, numbered.
    vocab: Vocab,
    /// The root's child for each token, or [`NONE`]: the first step of every walk, without a hash lookup.
    root_child: Vec<u32>,
    /// Trie edges below the root: (node, token) → node. Only while compiling; then [`PhraseSet::below`].
    edges: HashMap<(u32, u32), u32, RandomState>,
    /// The same edges, in a table made for the walk.
    below: Edges,
    /// Per node: the patterns that end there. Only while compiling; then [`PhraseSet::nodes`] and
    /// [`PhraseSet::end_list`].
    ends: Vec<Vec<u32>>,
    /// Per node, what the walk needs in one place: its patterns (a range of `end_list`), whether it has
    /// children and whether a prefix pattern continues from it.
    nodes: Vec<Node>,
    /// The patterns ending at each node, node after node.
    end_list: Vec<u32>,
    /// Patterns whose last token is a prefix (`refund*`), by (node before it, its first character); those that
    /// continue from the root with an ASCII first character are in `root_prefixes` instead.
    prefixes: HashMap<(u32, char), Vec<Prefix>, RandomState>,
    /// Prefix patterns of one token starting with an ASCII character, by that character: every token of every
    /// text is checked against these, so the check is an array index rather than a hash lookup.
    root_prefixes: Vec<Vec<Prefix>>,
    /// Per node: some prefix pattern continues from it.
    has_prefix: Vec<bool>,
    /// Per pattern: how many tokens it has.
    tokens: Vec<usize>,
}

const NONE: u32 = u32::MAX;

/// A prefix pattern's last token and the pattern's index.
type Prefix = (Box<str>, u32);

/// A pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PhraseError {
    /// Nothing to match once normalised.
    #[error("{0:?} has no word or symbol in it")]
    Empty(String),
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
        let mut set = PhraseSet {
            vocab: Vocab::default(),
            root_child: Vec::new(),
            edges: HashMap::default(),
            below: Edges::default(),
            ends: vec![Vec::new()],
            nodes: Vec::new(),
            end_list: Vec::new(),
            prefixes: HashMap::default(),
            root_prefixes: vec![Vec::new(); 128],
            has_prefix: vec![false],
            tokens: Vec::new(),
        };
        for (index, p) in patterns.into_iter().enumerate() {
            let raw = p.as_ref().trim();
            let (body, is_prefix) = match raw.strip_suffix('*') {
                Some(b) => (b, true),
                None => (raw, false),
            };
            let n = normalize(body);
            let Some((last, init)) = n.tokens.split_last() else {
                return Err(PhraseError::Empty(raw.to_string()));
            };
            let index = u32::try_from(index).expect("fewer than 4 billion patterns");
            set.tokens.push(n.tokens.len());
            let word = |t: &crate::text::Token| &n.text[t.span.clone()];
            let path = if is_prefix { init } else { &n.tokens[..] };
            let mut node = 0;
            for t in path {
                node = set.child(node, word(t));
            }
            if is_prefix {
                let first = word(last).chars().next().expect("tokens are not empty");
                set.has_prefix[node as usize] = true;
                let list = if node == 0 && first.is_ascii() {
                    &mut set.root_prefixes[first as usize]
                } else {
                    set.prefixes.entry((node, first)).or_default()
                };
                list.push((word(last).into(), index));
            } else {
                set.ends[node as usize].push(index);
            }
        }
        set.seal();
        Ok(set)
    }

    /// Moves the compiled trie into the walk's layout: flat arrays and an edge table without a general
    /// hasher, as every token of every text goes through them.
    fn seal(&mut self) {
        let ends = std::mem::take(&mut self.ends);
        let mut children = vec![false; ends.len()];
        children[0] = true;
        for &(node, _) in self.edges.keys() {
            children[node as usize] = true;
        }
        for (node, list) in ends.iter().enumerate() {
            let start = self.end_list.len() as u32;
            self.end_list.extend(list);
            self.nodes.push(Node {
                ends: start..self.end_list.len() as u32,
                children: children[node],
                prefix: self.has_prefix[node],
            });
        }
        self.below = Edges::new(&std::mem::take(&mut self.edges));
    }

    /// The child of `node` by `word`, created if new.
    fn child(&mut self, node: u32, word: &str) -> u32 {
        let id = self.vocab.insert(word);
        if id as usize == self.root_child.len() {
            self.root_child.push(NONE);
        }
        let existing = if node == 0 {
            self.root_child[id as usize]
        } else {
            self.edges.get(&(node, id)).copied().unwrap_or(NONE)
        };
        if existing != NONE {
            return existing;
        }
        let fresh = self.ends.len() as u32;
        self.ends.push(Vec::new());
        self.has_prefix.push(false);
        if node == 0 {
            self.root_child[id as usize] = fresh;
        } else {
            self.edges.insert((node, id), fresh);
        }
        fresh
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

    /// Calls `f` with every whole-token match until it returns true: a walk down the trie from each token.
    fn candidates(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch) -> bool) {
        // Each token's vocabulary id, looked up once: walks from earlier tokens pass over it again.
        IDS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut ids) => {
                self.walk(text, &mut ids, &mut f);
                if ids.capacity() > 1 << 16 {
                    *ids = Vec::new();
                }
            }
            // Only if `f` itself matches text (never in this crate): a buffer of its own.
            Err(_) => self.walk(text, &mut Vec::new(), &mut f),
        });
    }

    /// [`PhraseSet::candidates`] with a buffer for the token ids.
    fn walk(&self, text: &Normalized, ids: &mut Vec<u32>, f: &mut impl FnMut(PhraseMatch) -> bool) {
        let toks = &text.tokens;
        let bytes = text.text.as_bytes();
        ids.clear();
        ids.extend(toks.iter().map(|t| self.vocab.id(&bytes[t.span.clone()])));
        let mut emit = |pattern: u32, tokens: Range<usize>| {
            f(PhraseMatch {
                pattern: pattern as usize,
                tokens,
            })
        };
        let ids = &ids[..toks.len()];
        let root_prefix = self.nodes[0].prefix;
        for (i, &id) in ids.iter().enumerate() {
            // The root's prefix patterns (one token, `refund*`): by the token's first byte when it is ASCII.
            if root_prefix {
                let word = &bytes[toks[i].span.clone()];
                let list = match word.first() {
                    Some(&b) if b.is_ascii() => Some(&self.root_prefixes[usize::from(b)]),
                    Some(_) => text.text[toks[i].span.clone()]
                        .chars()
                        .next()
                        .and_then(|first| self.prefixes.get(&(0, first))),
                    None => None,
                };
                if let Some(list) = list {
                    for (prefix, p) in list {
                        if starts_with(word, prefix.as_bytes()) && emit(*p, i..i + 1) {
                            return;
                        }
                    }
                }
            }
            // The first step is an array index; most tokens stop here.
            if id == NONE {
                continue;
            }
            let mut node = self.root_child[id as usize];
            if node == NONE {
                continue;
            }
            let mut j = i;
            loop {
                let info = &self.nodes[node as usize];
                for &p in &self.end_list[info.ends.start as usize..info.ends.end as usize] {
                    if emit(p, i..j + 1) {
                        return;
                    }
                }
                j += 1;
                if j == toks.len() || !(info.children || info.prefix) {
                    break;
                }
                if info.prefix {
                    let word = &text.text[toks[j].span.clone()];
                    let list = word
                        .chars()
                        .next()
                        .and_then(|first| self.prefixes.get(&(node, first)));
                    for (prefix, p) in list.into_iter().flatten() {
                        if starts_with(word.as_bytes(), prefix.as_bytes()) && emit(*p, i..j + 1) {
                            return;
                        }
                    }
                }
                let id = ids[j];
                if !info.children || id == NONE {
                    break;
                }
                node = self.below.get(node, id);
                if node == NONE {
                    break;
                }
            }
        }
    }
}

/// A trie node as the walk sees it.
#[derive(Debug, Clone)]
struct Node {
    /// Its patterns, in [`PhraseSet::end_list`].
    ends: Range<u32>,
    /// Some edge leaves it.
    children: bool,
    /// Some prefix pattern continues from it.
    prefix: bool,
}

/// Trie edges below the root, (node, token id) → node: an open-addressed table (linear probing, at most half
/// full) keyed by both ids in one `u64`, hashed by one multiplication.
#[derive(Debug, Clone)]
struct Edges {
    /// Per slot: (key, node), key [`EMPTY`] when free.
    slots: Vec<(u64, u32)>,
    /// 64 minus the number of index bits.
    shift: u32,
}

const EMPTY: u64 = u64::MAX;

impl Default for Edges {
    fn default() -> Edges {
        Edges {
            slots: vec![(EMPTY, NONE); 2],
            shift: 63,
        }
    }
}

impl Edges {
    fn new(edges: &HashMap<(u32, u32), u32, RandomState>) -> Edges {
        let size = (edges.len() * 2).next_power_of_two().max(2);
        let mut table = Edges {
            slots: vec![(EMPTY, NONE); size],
            shift: 64 - size.trailing_zeros(),
        };
        for (&(node, id), &child) in edges {
            let key = Self::key(node, id);
            let mut i = table.slot(key);
            while table.slots[i].0 != EMPTY {
                i = (i + 1) & (size - 1);
            }
            table.slots[i] = (key, child);
        }
        table
    }

    #[inline]
    fn key(node: u32, id: u32) -> u64 {
        u64::from(node) << 32 | u64::from(id)
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The child of `node` by token `id`, or [`NONE`].
    #[inline]
    fn get(&self, node: u32, id: u32) -> u32 {
        let key = Self::key(node, id);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            let (k, child) = self.slots[i];
            if k == key {
                return child;
            }
            if k == EMPTY {
                return NONE;
            }
            i = (i + 1) & mask;
        }
    }
}

/// `word` starts with `prefix`; a loop rather than `memcmp`, as most candidates differ in their first bytes
/// and the call would cost more than the comparison.
#[inline]
fn starts_with(word: &[u8], prefix: &[u8]) -> bool {
    word.len() >= prefix.len() && word.iter().zip(prefix).all(|(a, b)| a == b)
}

/// Equal byte strings; a loop rather than `memcmp`, as tokens are short.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The folded tokens patterns use, numbered: an open-addressed table (linear probing, at most half full) from a
/// token's bytes to its id. Every token of every text is looked up here once, most of them in vain, so a lookup
/// is cheap: a token of up to 8 bytes (most of them) is packed into a `u64` key, hashed with one multiplication
/// and compared in the slot itself, without reading the stored word; longer ones are hashed over 8-byte chunks.
#[derive(Debug, Clone)]
struct Vocab {
    slots: Vec<Slot>,
    /// The tokens, by id.
    words: Vec<Box<[u8]>>,
}

/// One slot of [`Vocab`]: the token's length and key (see [`Vocab::key`]), and its id ([`NONE`] when empty).
#[derive(Debug, Clone, Copy)]
struct Slot {
    len: u32,
    id: u32,
    key: u64,
}

const FREE: Slot = Slot {
    len: 0,
    id: NONE,
    key: 0,
};

impl Default for Vocab {
    fn default() -> Vocab {
        Vocab {
            slots: vec![FREE; 16],
            words: Vec::new(),
        }
    }
}

impl Vocab {
    /// The token's hash and key. Up to 8 bytes, the key holds every byte (read as two overlapping halves, or the
    /// first, middle and last of a shorter token, as wyhash does): with the length it is the token itself. Longer
    /// tokens' key is their hash, and a match is confirmed on the stored bytes.
    #[inline]
    fn key(word: &[u8]) -> (u64, u64) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let n = word.len();
        if n <= 8 {
            let key = if n >= 4 {
                let lo = u32::from_le_bytes(word[..4].try_into().expect("four bytes"));
                let hi = u32::from_le_bytes(word[n - 4..].try_into().expect("four bytes"));
                u64::from(lo) | u64::from(hi) << 32
            } else if n > 0 {
                u64::from(word[0]) | u64::from(word[n / 2]) << 8 | u64::from(word[n - 1]) << 16
            } else {
                0
            };
            return ((key ^ (n as u64) << 59).wrapping_mul(K), key);
        }
        let mix = |h: u64, v: u64| (h.rotate_left(5) ^ v).wrapping_mul(K);
        let mut h = (n as u64).wrapping_mul(K);
        let mut chunks = word.chunks_exact(8);
        for c in &mut chunks {
            h = mix(h, u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // At least 8 bytes precede the remainder: the last 8 bytes of the word cover it.
            h = mix(
                h,
                u64::from_le_bytes(word[n - 8..].try_into().expect("eight bytes")),
            );
        }
        (h, h)
    }

    /// The first slot to probe: the high bits of a multiplicative hash are the well-mixed ones.
    #[inline]
    fn place(&self, hash: u64) -> usize {
        (hash >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The token's id, or [`NONE`].
    #[inline]
    fn id(&self, word: &[u8]) -> u32 {
        let mask = self.slots.len() - 1;
        let (hash, key) = Self::key(word);
        let mut i = self.place(hash);
        loop {
            let s = self.slots[i];
            if s.id == NONE {
                return NONE;
            }
            if s.key == key
                && s.len as usize == word.len()
                && (word.len() <= 8 || same(&self.words[s.id as usize], word))
            {
                return s.id;
            }
            i = (i + 1) & mask;
        }
    }

    /// The token's id, numbered next if new.
    fn insert(&mut self, word: &str) -> u32 {
        let found = self.id(word.as_bytes());
        if found != NONE {
            return found;
        }
        let id = u32::try_from(self.words.len()).expect("fewer than 4 billion tokens");
        self.words.push(word.as_bytes().into());
        if self.words.len() * 2 > self.slots.len() {
            self.slots = vec![FREE; self.slots.len() * 2];
            for k in 0..self.words.len() {
                self.put(k as u32);
            }
        } else {
            self.put(id);
        }
        id
    }

    fn put(&mut self, id: u32) {
        let mask = self.slots.len() - 1;
        let word = &self.words[id as usize];
        let (hash, key) = Self::key(word);
        let mut i = self.place(hash);
        while self.slots[i].id != NONE {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            len: u32::try_from(word.len()).expect("tokens under 4 GB"),
            id,
            key,
        };
    }
}

thread_local! {
    /// Token ids of the text being matched; reused, as matching is on every mention's hot path.
    static IDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
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
