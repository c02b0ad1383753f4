//! Word and phrase patterns matched on whole tokens: every pattern is a path of folded tokens in one trie, and a
//! text is matched by walking it from each of its tokens, one hash lookup per step. The cost depends on the
//! text's length, not on how many patterns there are, and works the same in every script. (An aho-corasick
//! automaton over the characters was the first design; with the ~8,000 patterns of the built-in packs its DFA
//! outgrew the cache and cost several times more per text.)

use std::collections::HashMap;
use std::ops::Range;

use foldhash::fast::RandomState;

use crate::text::{Normalized, Token, head_and_key, normalize};

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct PhraseSet {
    /// Every folded token some pattern uses, numbered. Token `id`'s node below the root is `id + 1`, so the
    /// first step of a walk is the vocabulary lookup itself.
    vocab: Vocab,
    /// Trie edges below the first token: (node, token id) → node.
    below: Edges,
    /// The first-level trie edges as [`Edges::key`]s (first token's node, second token's id), about 16 bits each:
    /// the walk passes over a phrase's first word when the pair with the word after it begins no phrase.
    pairs: KeyBits,
    /// Per node, what the walk needs in one place: its patterns (a range of `end_list`), whether it has
    /// children and whether a prefix pattern continues from it.
    nodes: Vec<Node>,
    /// The patterns ending at each node, node after node.
    end_list: Vec<u32>,
    /// Prefix patterns of one token (`refund*`): every token of every text is checked against these.
    root_prefixes: RootPrefixes,
    /// Prefix patterns with tokens before the prefix (`wait chestunna*`), by (node before it, its first
    /// character).
    prefixes: HashMap<(u32, char), Vec<Prefix>, RandomState>,
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

/// A pattern while compiling: the ids of the tokens its trie path follows, its last token when that is a
/// prefix, and how many tokens it has.
type Parsed = (Vec<u32>, Option<Box<str>>, usize);

impl PhraseSet {
    /// Compiles patterns; a trailing `*` makes the last token match as a prefix (`refund*` matches `refunded`).
    pub fn new<I: AsRef<str>>(
        patterns: impl IntoIterator<Item = I>,
    ) -> Result<PhraseSet, PhraseError> {
        // The whole vocabulary first: the nodes below the root are numbered after it (token id + 1), the deeper
        // ones after those.
        let mut vocab = Vocab::default();
        let mut parsed: Vec<Parsed> = Vec::new();
        for p in patterns {
            let raw = p.as_ref().trim();
            let (body, is_prefix) = match raw.strip_suffix('*') {
                Some(b) => (b, true),
                None => (raw, false),
            };
            let n = normalize(body);
            let Some((last, init)) = n.tokens.split_last() else {
                return Err(PhraseError::Empty(raw.to_string()));
            };
            let word = |t: &Token| &n.text[t.span.clone()];
            let path = if is_prefix { init } else { &n.tokens[..] };
            let ids = path.iter().map(|t| vocab.insert(word(t))).collect();
            let prefix = is_prefix.then(|| Box::from(word(last)));
            parsed.push((ids, prefix, n.tokens.len()));
        }
        let first_deep = vocab.len() + 1;
        let mut ends: Vec<Vec<u32>> = vec![Vec::new(); first_deep];
        let mut has_prefix = vec![false; first_deep];
        let mut edges: HashMap<(u32, u32), u32, RandomState> = HashMap::default();
        let mut prefixes: HashMap<(u32, char), Vec<Prefix>, RandomState> = HashMap::default();
        let mut root_prefixes = Vec::new();
        let mut tokens = Vec::with_capacity(parsed.len());
        for (index, (ids, prefix, count)) in parsed.into_iter().enumerate() {
            let index = u32::try_from(index).expect("fewer than 4 billion patterns");
            tokens.push(count);
            let mut node = 0;
            for id in ids {
                node = if node == 0 {
                    id + 1
                } else {
                    *edges.entry((node, id)).or_insert_with(|| {
                        ends.push(Vec::new());
                        has_prefix.push(false);
                        u32::try_from(ends.len() - 1).expect("fewer than 4 billion nodes")
                    })
                };
            }
            match prefix {
                Some(last) if node == 0 => root_prefixes.push((last, index)),
                Some(last) => {
                    has_prefix[node as usize] = true;
                    let first = last.chars().next().expect("tokens are not empty");
                    prefixes
                        .entry((node, first))
                        .or_default()
                        .push((last, index));
                }
                None => ends[node as usize].push(index),
            }
        }
        // The walk's layout: flat arrays and tables without a general hasher, as every token of every text goes
        // through them.
        let mut children = vec![false; ends.len()];
        for &(node, _) in edges.keys() {
            children[node as usize] = true;
        }
        let mut nodes = Vec::with_capacity(ends.len());
        let mut end_list = Vec::new();
        for (node, list) in ends.iter().enumerate() {
            let start = end_list.len() as u32;
            end_list.extend(list);
            nodes.push(Node {
                ends: start..end_list.len() as u32,
                children: children[node],
                prefix: has_prefix[node],
            });
        }
        vocab.seal(|id| {
            let n = &nodes[id as usize + 1];
            match (!n.ends.is_empty(), n.children, n.prefix) {
                (false, false, false) => DEAD,
                (false, true, false) => HEAD,
                _ => 0,
            }
        });
        let first_level = vocab.len() as u32;
        Ok(PhraseSet {
            vocab,
            pairs: {
                let first = edges.keys().filter(|&&(node, _)| node <= first_level);
                let mut pairs = KeyBits::new(first.clone().count(), 16);
                first.for_each(|&(node, id)| pairs.put(Edges::key(node, id)));
                pairs
            },
            below: Edges::new(&edges),
            nodes,
            end_list,
            root_prefixes: RootPrefixes::new(root_prefixes),
            prefixes,
            tokens,
        })
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
        self.walk(text, |m| {
            f(m);
            false
        });
    }

    /// True if any pattern matches.
    pub fn is_match(&self, text: &Normalized) -> bool {
        let mut found = false;
        self.walk(text, |_| {
            found = true;
            true
        });
        found
    }

    /// Calls `f` with every whole-token match until it returns true: a walk down the trie from each token.
    ///
    /// Tokens go in blocks of 64. Each token of a block is looked up first, without branching on what is found,
    /// and a bit set for the ones a pattern may start at; the walks then go from those alone. (Whether a pattern
    /// starts at a token is as good as random, about one token in three: a branch on it per token was
    /// mispredicted every few tokens, while the loop over the set bits is mispredicted about once a block.)
    fn walk(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch) -> bool) {
        let toks = &text.tokens;
        let bytes = text.text.as_bytes();
        let mut emit = |pattern: u32, tokens: Range<usize>| {
            f(PhraseMatch {
                pattern: pattern as usize,
                tokens,
            })
        };
        let mut ids = [NONE; BLOCK];
        for base in (0..toks.len()).step_by(BLOCK) {
            let block = &toks[base..toks.len().min(base + BLOCK)];
            // Per token of the block: it starts a path of the trie, it may start a prefix pattern.
            let mut starts = 0_u64;
            let mut prefixed = 0_u64;
            // Tokens that only start phrases, and (bit k) whether the pair of tokens k - 1 and k may begin one.
            let mut heads = 0_u64;
            let mut pairs = 0_u64;
            let mut before = NONE;
            for (k, t) in block.iter().enumerate() {
                let id = self.vocab.id_of(t, bytes);
                ids[k] = id;
                let maybe = self.root_prefixes.maybe(t.head);
                starts |= u64::from((id & DEAD == 0) | maybe) << k;
                prefixed |= u64::from(maybe) << k;
                heads |= u64::from(id & MARKS == HEAD) << k;
                let pair = Edges::key((before & !MARKS).wrapping_add(1), id & !MARKS);
                pairs |= u64::from(self.pairs.maybe(pair)) << k;
                before = id;
            }
            let end = base + block.len();
            // A phrase's first word where the next word cannot continue a phrase starts nothing: the walk from it
            // would stop after one step, often after a mispredicted branch or two and a table lookup. The last
            // token of a block pairs with the next block's first, not looked up yet.
            let next_pairs = pairs >> 1 | u64::from(end < toks.len()) << (block.len() - 1);
            starts &= !(heads & !next_pairs & !prefixed);
            while starts != 0 {
                let k = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                let i = base + k;
                if prefixed >> k & 1 != 0 {
                    let word = &bytes[toks[i].span.clone()];
                    for (prefix, p) in self.root_prefixes.get(toks[i].head) {
                        if starts_with(word, prefix.as_bytes()) && emit(*p, i..i + 1) {
                            return;
                        }
                    }
                }
                if ids[k] & DEAD != 0 {
                    continue;
                }
                let mut node = (ids[k] & !MARKS) + 1;
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
                            if starts_with(word.as_bytes(), prefix.as_bytes()) && emit(*p, i..j + 1)
                            {
                                return;
                            }
                        }
                    }
                    if !info.children {
                        break;
                    }
                    // The block's tokens were looked up already.
                    let id = if j < end {
                        ids[j - base]
                    } else {
                        self.vocab.id_at(&toks[j], bytes)
                    };
                    if id == NONE {
                        break;
                    }
                    node = self.below.get(node, id & !MARKS);
                    if node == NONE {
                        break;
                    }
                }
            }
        }
    }
}

/// How many tokens [`PhraseSet::walk`] looks up at once: a bit each in a `u64`.
const BLOCK: usize = 64;

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

/// The prefix patterns of one token, by their first bytes. Nearly every token is ruled out without reading a
/// pattern: the patterns starting with a given byte all have at least `n` bytes (the shortest one's length, at
/// most 8), and a bitset over a hash of a token's first `n` bytes, `n` chosen by its first byte, says whether some
/// pattern starts so. (By the first byte alone, about 40% of English tokens would scan a list; with one `n` for
/// all, the digits of the regex gates, `0*` to `9*`, would make that 1.)
#[derive(Debug, Clone)]
struct RootPrefixes {
    /// By a token's first byte: keeps the first `n` bytes of its first 8 ([`Token::head`]). All 8 for a byte
    /// no pattern starts with, so that such tokens pass the bitset only by chance, not all of them at once.
    masks: Box<[u64; 256]>,
    /// Those bytes of every pattern: about 64 bits each, so that a token passes by chance about once in 64.
    bits: KeyBits,
    /// The patterns, by their first `n` bytes, in the order given.
    lists: HashMap<u64, Vec<Prefix>, RandomState>,
}

impl RootPrefixes {
    fn new(patterns: Vec<Prefix>) -> RootPrefixes {
        let mut shortest = [8; 256];
        for (word, _) in &patterns {
            let first = usize::from(word.as_bytes()[0]);
            shortest[first] = shortest[first].min(word.len());
        }
        let mut set = RootPrefixes {
            masks: Box::new(shortest.map(low_bytes)),
            bits: KeyBits::new(patterns.len(), 64),
            lists: HashMap::default(),
        };
        for (word, p) in patterns {
            let key = set.key(head_and_key(word.as_bytes()).0);
            set.bits.put(key);
            set.lists.entry(key).or_default().push((word, p));
        }
        set
    }

    /// The first `n` bytes of `head`, `n` by its first byte.
    #[inline]
    fn key(&self, head: u64) -> u64 {
        head & self.masks[usize::from(head as u8)]
    }

    /// Whether a token whose first 8 bytes are `head` (zero past its end) may start with some pattern: false
    /// for nearly every token, without a branch. A token shorter than `n` bytes is not ruled out by its length: a
    /// test of the length would be mispredicted often, while such a token's zero bytes rarely hash like a
    /// pattern's first bytes (and [`starts_with`] rules it out then).
    #[inline(always)]
    fn maybe(&self, head: u64) -> bool {
        self.bits.maybe(self.key(head))
    }

    /// The patterns a token whose first 8 bytes are `head` may start with, once [`RootPrefixes::maybe`] said it
    /// may.
    fn get(&self, head: u64) -> &[Prefix] {
        self.lists.get(&self.key(head)).map_or(&[], Vec::as_slice)
    }
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

/// A set of 64-bit keys kept as one bit per hash: [`KeyBits::maybe`] is true for every key put in, and for others
/// about once in as many bits as were given per key, with no branch; small enough to stay in the processor's first
/// cache, unlike the tables it summarises.
#[derive(Debug, Clone)]
struct KeyBits {
    bits: Vec<u64>,
    /// 64 minus the number of hash bits.
    shift: u32,
}

impl KeyBits {
    /// Room for `keys` keys, about `per_key` bits each.
    fn new(keys: usize, per_key: usize) -> KeyBits {
        let size = (keys * per_key).next_power_of_two().max(64);
        KeyBits {
            bits: vec![0; size / 64],
            shift: 64 - size.trailing_zeros(),
        }
    }

    fn put(&mut self, key: u64) {
        let bit = self.bit(key);
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    #[inline(always)]
    fn bit(&self, key: u64) -> usize {
        (key.wrapping_mul(K) >> self.shift) as usize
    }

    /// Whether `key` may have been put in: never false for one that was.
    #[inline(always)]
    fn maybe(&self, key: u64) -> bool {
        let bit = self.bit(key);
        self.bits[bit / 64] >> (bit % 64) & 1 != 0
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

/// The multiplier of the hashes here (from FxHash): odd, with well-spread bits.
const K: u64 = 0x517c_c1b7_2722_0a95;

/// A mask keeping the first `n` bytes of a little-endian `u64` (all of them from 8 on). Without a branch on
/// `n`, which varies from token to token and would be mispredicted: two shifts by half, so that 8 bytes shift
/// all bits out rather than overflow.
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    let half = 4 * n.min(8) as u32;
    !(u64::MAX << half << half)
}

/// The folded tokens patterns use, numbered: a hash table from a token's bytes to its id. Every token of every
/// text is looked up here once, about half of them in vain, so a lookup is cheap and branches on nothing it
/// cannot predict: a token's key ([`Token::key`], worked out by the tokeniser) is hashed with one multiplication;
/// its bucket (one cache line) is read and its four slots compared at once, without reading the stored words. A
/// token longer than 8 bytes is keyed by a hash, so one found is confirmed on the stored word.
#[derive(Debug, Clone)]
struct Vocab {
    /// At most half of the slots used, so that a bucket rarely fills.
    buckets: Vec<Bucket>,
    /// The tokens, by id.
    words: Vec<Box<[u8]>>,
}

/// Four slots of [`Vocab`] in one cache line. A token is in the bucket of its hash, or, when that one was full, in
/// one of the next ones (linear probing by bucket).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Per slot: the token's key ([`Token::key`]).
    keys: [u64; 4],
    /// Per slot: the token's id, [`NONE`] when free; [`DEAD`] set when no pattern starts with the token, [`HEAD`]
    /// when it only starts phrases, [`LONG`] when it is longer than 8 bytes.
    ids: [u32; 4],
    /// A token of this bucket went to a later one, as this one was full: a lookup goes on.
    full: bool,
}

/// Set in a looked-up id when no pattern starts with the token (it is only a later token of phrases), and in
/// [`NONE`]: one test tells the walk that nothing starts at a token.
const DEAD: u32 = 1 << 31;

/// Set in a looked-up id when the token only starts phrases (no pattern is that token alone, none is a prefix
/// pattern after it): the walk starts from it only when the next token may continue one ([`PhraseSet::pairs`]).
const HEAD: u32 = 1 << 29;

/// The marks of a looked-up id: without them, it is the token's number.
const MARKS: u32 = DEAD | HEAD;

/// Set in the stored id of a token longer than 8 bytes, whose key is a hash that other tokens may share: one found
/// is confirmed on its bytes ([`Vocab::confirm`]), which clears the bit.
const LONG: u32 = 1 << 30;

/// Never set in a token's id (there are fewer), set in [`NONE`]: `id & (LONG | UNUSED) == LONG` tells a long token
/// found with one test. (With two, `id != NONE` and whether the key is a long token's, the compiler branched on
/// each, and the one on the key was mispredicted at most long tokens.)
const UNUSED: u32 = 1 << 28;

const FREE: Bucket = Bucket {
    keys: [0; 4],
    ids: [NONE; 4],
    full: false,
};

impl Bucket {
    /// The id in the slot holding `key`, or [`NONE`] (free slots hold [`NONE`] whatever their key). Whether a
    /// token is found is as good as random, so this does not branch: at most one slot holds a short token's key,
    /// and a conditional move per slot keeps its id.
    #[inline(always)]
    fn get(&self, key: u64) -> u32 {
        let mut id = NONE;
        for k in 0..4 {
            id = std::hint::select_unpredictable(self.keys[k] == key, self.ids[k], id);
        }
        id
    }
}

impl Default for Vocab {
    fn default() -> Vocab {
        Vocab {
            buckets: vec![FREE; 4],
            words: Vec::new(),
        }
    }
}

impl Vocab {
    /// How many tokens.
    fn len(&self) -> usize {
        self.words.len()
    }

    /// The id of token `t` of a text whose folded form is `text`, as [`Vocab::find`] gives it.
    #[inline(always)]
    fn id_of(&self, t: &Token, text: &[u8]) -> u32 {
        self.find(t.key, || &text[t.span.clone()])
    }

    /// [`Vocab::id_of`] for the walk's rarer steps, not inlined.
    #[inline(never)]
    fn id_at(&self, t: &Token, text: &[u8]) -> u32 {
        self.id_of(t, text)
    }

    /// The id of the token with `key`, or [`NONE`]; once sealed, with [`DEAD`] set when no pattern starts with
    /// it. `word` gives its bytes, read only to confirm a long token found (see [`crate::text::token_key`]).
    #[inline(always)]
    fn find<'a>(&self, key: u64, word: impl FnOnce() -> &'a [u8]) -> u32 {
        let b = self.place(key);
        let bucket = &self.buckets[b];
        let mut id = bucket.get(key);
        // Branching on whether the bucket was full, which is rare, rather than on whether the token was found.
        if bucket.full {
            id = self.find_on(key, id, b);
        }
        // One branch, on a long token found, which is rare.
        if id & (LONG | UNUSED) == LONG {
            return self.confirm(key, id & !LONG, word());
        }
        id
    }

    /// [`Vocab::find`] past a full bucket `b` where `id` was found. Out of line, so that the compiler does not
    /// test `id` (as good as random) before whether the bucket was full.
    #[inline(never)]
    fn find_on(&self, key: u64, mut id: u32, mut b: usize) -> u32 {
        let mask = self.buckets.len() - 1;
        while id == NONE && self.buckets[b].full {
            b = (b + 1) & mask;
            id = self.buckets[b].get(key);
        }
        id
    }

    /// [`Vocab::find`] for a long token `word` found as `id` (without [`LONG`]) by its `key`: `id` if it is that
    /// token, else another token with the key.
    #[inline(never)]
    fn confirm(&self, key: u64, id: u32, word: &[u8]) -> u32 {
        // Different long tokens may share a key (rarely: a miss nearly never reads a stored word).
        if same(&self.words[(id & !MARKS) as usize], word) {
            return id;
        }
        self.find_long_slowly(key, word)
    }

    /// [`Vocab::confirm`] when another token has the key: every slot with the key is checked.
    #[cold]
    fn find_long_slowly(&self, key: u64, word: &[u8]) -> u32 {
        let mask = self.buckets.len() - 1;
        let mut b = self.place(key);
        loop {
            let bucket = &self.buckets[b];
            for k in 0..4 {
                let id = bucket.ids[k] & !LONG;
                if bucket.keys[k] == key
                    && id != NONE & !LONG
                    && same(&self.words[(id & !MARKS) as usize], word)
                {
                    return id;
                }
            }
            if !bucket.full {
                return NONE;
            }
            b = (b + 1) & mask;
        }
    }

    /// The first bucket to look in for `key`: the high bits of a multiplicative hash are the well-mixed ones.
    #[inline(always)]
    fn place(&self, key: u64) -> usize {
        (key.wrapping_mul(K) >> (64 - self.buckets.len().trailing_zeros())) as usize
    }

    /// The token's id, numbered next if new.
    fn insert(&mut self, word: &str) -> u32 {
        let word = word.as_bytes();
        let found = self.find(head_and_key(word).1, || word);
        if found != NONE {
            return found;
        }
        let id = u32::try_from(self.words.len())
            .ok()
            .filter(|&id| id < UNUSED)
            .expect("fewer than 250 million tokens");
        self.words.push(word.into());
        if self.words.len() * 2 > self.buckets.len() * 4 {
            self.buckets = vec![FREE; self.buckets.len() * 2];
            for k in 0..self.words.len() {
                self.put(k as u32);
            }
        } else {
            self.put(id);
        }
        id
    }

    /// Puts token `id` in the first free slot from its bucket on.
    fn put(&mut self, id: u32) {
        let mask = self.buckets.len() - 1;
        let word = &self.words[id as usize];
        let (key, long) = (head_and_key(word).1, if word.len() > 8 { LONG } else { 0 });
        let mut b = self.place(key);
        loop {
            let bucket = &mut self.buckets[b];
            if let Some(k) = bucket.ids.iter().position(|&i| i == NONE) {
                bucket.keys[k] = key;
                bucket.ids[k] = id | long;
                return;
            }
            bucket.full = true;
            b = (b + 1) & mask;
        }
    }

    /// Marks the tokens no pattern starts with ([`DEAD`]) and those that only start phrases ([`HEAD`]): `marks`
    /// tells which by id.
    fn seal(&mut self, marks: impl Fn(u32) -> u32) {
        for id in self.buckets.iter_mut().flat_map(|b| &mut b.ids) {
            if *id != NONE {
                *id |= marks(*id & !LONG);
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

    /// Every match by brute force: each pattern's tokens compared at each position.
    fn reference(patterns: &[&str], text: &Normalized) -> Vec<(usize, Range<usize>)> {
        let words: Vec<&str> = text
            .tokens
            .iter()
            .map(|t| &text.text[t.span.clone()])
            .collect();
        let mut all = Vec::new();
        for (p, raw) in patterns.iter().enumerate() {
            let (body, is_prefix) = match raw.trim().strip_suffix('*') {
                Some(b) => (b, true),
                None => (raw.trim(), false),
            };
            let n = normalize(body);
            let want: Vec<&str> = n.tokens.iter().map(|t| &n.text[t.span.clone()]).collect();
            for i in 0..words.len() {
                let Some(got) = words.get(i..i + want.len()) else {
                    continue;
                };
                let last = want.len() - 1;
                let same_init = got[..last] == want[..last];
                let last_ok = if is_prefix {
                    got[last].starts_with(want[last])
                } else {
                    got[last] == want[last]
                };
                if same_init && last_ok {
                    all.push((p, i..i + want.len()));
                }
            }
        }
        all.sort_by_key(|(p, r)| (r.start, r.end, *p));
        all
    }

    #[test]
    fn every_match_is_found_as_by_brute_force() {
        let patterns = [
            "1*",
            "۱*",
            "d",
            "disappoint*",
            "dis*",
            "d*",
            "refund*",
            "not working",
            "not",
            "working",
            "still not refunded",
            "wait chestunna*",
            "wait",
            "చెత్త*",
            "ఆలస్యం",
            "నారతఁ ఆలస్య*",
            "extraordinarily",
            "extraordinarily bad",
            "abcdefgh",
            "abcdefg",
            "abcdefghi",
            "😡",
            "a",
            "ab c",
            "a b c d",
            "counterproductive*",
            "abcdefgh12ijklmnop",
            "abcdefgh21ijklmnop x",
        ];
        let set = PhraseSet::new(patterns).unwrap();
        let texts = [
            "",
            "d",
            "1",
            "12 days, 1x ۱۲ ۳",
            "disappointed, dis, disa and d. refunded refund refun",
            "still not refunded and not working not",
            "wait chestunnam wait chestunna wait",
            "చెత్తగా ఆలస్యం నారతఁ ఆలస్యంగా చెత్త",
            "extraordinarily bad extraordinarily extraordinarilybad counterproductivity",
            "abcdefgh abcdefg abcdefghi abcdefghij abcdef a ab c a b c d 😡😡 😡",
            "A B C D ab c ab",
            "wait",
            "not",
            // Same first and last 8 bytes and length, so the same key.
            "abcdefgh21ijklmnop abcdefgh12ijklmnop abcdefgh21ijklmnop x abcdefgh33ijklmnop",
        ];
        // Past a block of 64 tokens, with phrases across its end.
        let long = "still not refunded and not working wait chestunnam 1x ".repeat(12);
        // A phrase's first word (`ab`, `still`: no pattern alone) at each place around a block's end and last in
        // the text, the phrase going on or not.
        let around: Vec<String> = (60..68)
            .flat_map(|k| {
                let filler = "x ".repeat(k);
                [
                    format!("{filler}ab c still not refunded"),
                    format!("{filler}ab x still"),
                    format!("{filler}still not ab"),
                ]
            })
            .collect();
        let generated: Vec<String> = [long].into_iter().chain(around).collect();
        for t in texts
            .into_iter()
            .chain(generated.iter().map(String::as_str))
        {
            let n = normalize(t);
            let mut got: Vec<_> = set
                .matches(&n)
                .into_iter()
                .map(|m| (m.pattern, m.tokens))
                .collect();
            got.sort_by_key(|(p, r)| (r.start, r.end, *p));
            assert_eq!(got, reference(&patterns, &n), "{t:?}");
            assert_eq!(set.is_match(&n), !got.is_empty(), "{t:?}");
        }
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
