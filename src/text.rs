//! Text normalisation for matching: the input split into tokens (words, #hashtags, @handles, symbols such as
//! emoji, runs of punctuation), each token folded (Unicode NFKC, lowercase, Arabic-script variants unified) and
//! joined by single spaces. Brand terms and keyword rules are normalised the same way, so matching whole tokens
//! works the same in every script.
//!
//! - Word boundaries are Unicode `\w` boundaries: Telugu vowel signs and Urdu letters stay inside their word.
//! - Zero-width joiners/non-joiners, soft hyphens and emoji variation selectors vanish (`بد‌ترین` → `بدترین`).
//! - Arabic script: `ي`/`ى` → `ی`, `ك` → `ک`, `ه`/`ە` → `ہ`, tatweel and harakat removed, Arabic-Indic digits → ASCII.
//! - Hashtags are kept whole and also split into their words: at case changes (`#NorthwindSucks` → `#northwindsucks
//!   northwind sucks`), or, for an all-lowercase tag, into known words when a vocabulary is given.
//! - Stretched words (`soooo`, `terribleeee`) are shrunk to a known word when a vocabulary is given (else runs of
//!   three or more become two) and flagged, as shouting is.
//!
//! Linear in the input; never panics.

use std::ops::{BitAnd, BitOr, BitXor, Not, Range, Shl, Shr};

use unicode_normalization::UnicodeNormalization;

/// Text normalised for matching: folded tokens, each followed by one ASCII space, after a leading space
/// (`" where is my bag ? "`), so a pattern written as `" my bag "` can only match on token boundaries.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// The tokens, folded, each preceded and followed by a single space.
    pub text: String,
    /// Each token's place in `text` and in the input.
    pub tokens: Vec<Token>,
    /// How many `!` the punctuation tokens hold (folded), counted here so the classifier need not look again.
    pub exclamations: usize,
    /// How many `?` the punctuation tokens hold (folded).
    pub questions: usize,
    /// How many tokens are [`TokenKind::Word`]s.
    pub words: usize,
    /// How many [`TokenKind::Word`]s are in caps.
    pub caps_words: usize,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Byte range in [`Normalized::text`].
    pub span: Range<usize>,
    /// Byte range in the input.
    pub original: Range<usize>,
    /// The first 8 bytes of the folded token (little-endian, zero past its end), as [`head_and_key`] gives them:
    /// prefix patterns are looked up by them.
    pub head: u64,
    /// The folded token's lookup key, as [`head_and_key`] gives it. Both are worked out while tokenising, where
    /// the fast paths hold the folded bytes in a register already, so that looking a token up reads no text.
    pub key: u64,
    /// What kind of token.
    pub kind: TokenKind,
    /// The original had at least two letters, all uppercase (shouting).
    pub caps: bool,
    /// The original stretched a letter (`sooo`, three or more in a row).
    pub stretched: bool,
}

/// Kinds of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Letters, marks and digits, with inner apostrophes.
    Word,
    /// `#` and word characters, kept whole.
    Hashtag,
    /// `@` and word characters.
    Handle,
    /// One emoji or other symbol.
    Symbol,
    /// A run of punctuation (`!!!`, `:(`).
    Punct,
}

impl Normalized {
    /// The tokens joined by single spaces, without the outer spaces.
    pub fn joined(&self) -> &str {
        self.text.trim_matches(' ')
    }
}

/// Normalises `input` with no vocabulary.
pub fn normalize(input: &str) -> Normalized {
    normalize_with(input, &|_| false)
}

/// Normalises `input`; `known` tells whether a folded word is in the vocabulary, which decides how a stretched
/// word is shrunk and how an all-lowercase hashtag is split.
pub fn normalize_with(input: &str, known: &dyn Fn(&str) -> bool) -> Normalized {
    let mut out = Normalized::default();
    normalize_into(input, known, &mut out);
    out
}

thread_local! {
    /// The input's visible characters; reused between calls, as normalising is on every mention's hot path.
    static CHARS: std::cell::RefCell<Vec<(usize, char)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// As [`normalize_with`], into `out` (its buffers are reused).
pub fn normalize_into(input: &str, known: &dyn Fn(&str) -> bool, out: &mut Normalized) {
    out.text.clear();
    out.tokens.clear();
    out.exclamations = 0;
    out.questions = 0;
    out.words = 0;
    out.caps_words = 0;
    out.text.reserve(input.len() + 8);
    out.tokens.reserve(input.len() / 3 + 4);
    out.text.push(' ');
    if all_ascii(input.as_bytes()) {
        tokenize_ascii(input, known, out);
    } else {
        tokenize_chars(input, known, out);
    }
}

/// `b.is_ascii()`, sixteen bytes at a time with no branch but the loop's: the standard one checks an unaligned
/// head and tail a byte at a time, and in a post of a few dozen bytes those are most of its work. The last
/// sixteen bytes are checked as one piece, overlapping the ones before when the length is not a multiple.
fn all_ascii(b: &[u8]) -> bool {
    let lanes = |c: &[u8]| u128::from_le_bytes(c.try_into().expect("16 bytes"));
    let Some(last) = b.last_chunk::<16>() else {
        return b.is_ascii();
    };
    let chunks = b.chunks_exact(16);
    let any = chunks.fold(u128::from_le_bytes(*last), |a, c| a | lanes(c));
    any & u128::splat(0x80) == 0
}

/// Tokenises any input on its visible characters.
fn tokenize_chars(input: &str, known: &dyn Fn(&str) -> bool, out: &mut Normalized) {
    CHARS.with(|cell| {
        let mut chars = cell.borrow_mut();
        chars.clear();
        chars.reserve(input.len());
        chars.extend(input.char_indices().filter(|(_, c)| !invisible(*c)));
        tokenize(input, &chars, known, out);
        if chars.capacity() > 1 << 16 {
            *chars = Vec::new();
        }
    });
}

fn tokenize(
    input: &str,
    chars: &[(usize, char)],
    known: &dyn Fn(&str) -> bool,
    out: &mut Normalized,
) {
    let end_of = |i: usize| chars.get(i).map_or(input.len(), |(b, _)| *b);
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if (c == '#' || c == '@') && chars.get(i + 1).is_some_and(|(_, n)| is_word(*n)) {
            let j = word_end(chars, i + 1);
            let kind = if c == '#' {
                TokenKind::Hashtag
            } else {
                TokenKind::Handle
            };
            push(out, input, start..end_of(j), kind, known);
            if kind == TokenKind::Hashtag {
                let body = end_of(i + 1)..end_of(j);
                let mut parts = hashtag_parts(input, body.clone());
                if parts.is_empty() {
                    parts = known_words(input, body, known);
                }
                for part in parts {
                    push(out, input, part, TokenKind::Word, known);
                }
            }
            i = j;
        } else if is_word(c) {
            let j = word_end(chars, i);
            push(out, input, start..end_of(j), TokenKind::Word, known);
            i = j;
        } else if is_symbol(c) {
            push(out, input, start..end_of(i + 1), TokenKind::Symbol, known);
            i += 1;
        } else {
            let mut j = i + 1;
            while j < chars.len() && is_punct(chars[j].1) && !starts_tag(chars, j) {
                j += 1;
            }
            push(out, input, start..end_of(j), TokenKind::Punct, known);
            i = j;
        }
    }
}

/// Byte flags of the ASCII tokeniser; a byte with none of `SPACE`, `WORD` and `TAG` is punctuation.
/// Whitespace as `char::is_whitespace` (with vertical tab).
const SPACE: u8 = 1;
/// A word character, as `\w`.
const WORD: u8 = 2;
/// `#` and `@`: a tag when a word character follows, else punctuation.
const TAG: u8 = 4;
/// A lowercase letter.
const LOWER: u8 = 8;
/// An uppercase letter. The bit is ASCII's case bit, so `c | (flags & UPPER)` lowercases any byte.
const UPPER: u8 = 0x20;

/// Flags of each byte (all 256, so a `u8` indexes without a bounds check; non-ASCII bytes never occur here).
const FLAGS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_whitespace() || b == 0x0B {
            SPACE
        } else if b.is_ascii_lowercase() {
            WORD | LOWER
        } else if b.is_ascii_uppercase() {
            WORD | UPPER
        } else if b.is_ascii_digit() || b == b'_' {
            WORD
        } else if b == b'#' || b == b'@' {
            TAG
        } else {
            0
        };
        c += 1;
    }
    t
};

#[inline(always)]
fn flags(c: u8) -> u8 {
    FLAGS[usize::from(c)]
}

/// [`tokenize`] for ASCII input (most posts), on bytes: the same tokens, without the char table, NFKC or
/// Unicode lookups. Most words, hashtags and handles are found, measured (caps, stretched letters) and folded
/// with a few operations on eight or sixteen bytes at once ([`push_short`]); the rest in one pass over their
/// bytes ([`push_ascii`]). A unit test holds the two to the same output.
fn tokenize_ascii(input: &str, known: &dyn Fn(&str) -> bool, out: &mut Normalized) {
    let b = input.as_bytes();
    let word_at = |j: usize| b.get(j).is_some_and(|&n| flags(n) & WORD != 0);
    // Folded text is built as bytes (no UTF-8 checks per push) and handed back as a String at the end.
    let mut text = std::mem::take(&mut out.text).into_bytes();
    let mut i = 0;
    while i < b.len() {
        let f = flags(b[i]);
        if f & SPACE != 0 {
            i += 1;
        } else if f & WORD != 0 {
            let j = push_short::<u64>(out, &mut text, b, i, TokenKind::Word)
                .or_else(|| push_short::<u128>(out, &mut text, b, i, TokenKind::Word))
                .unwrap_or_else(|| {
                    push_ascii::<true>(out, &mut text, b, i, i, b.len(), TokenKind::Word, known)
                });
            // Most words are followed by one space: skipping it here saves a turn of the loop.
            i = j + usize::from(b.get(j) == Some(&b' '));
        } else if f & TAG != 0 && word_at(i + 1) {
            let kind = if b[i] == b'#' {
                TokenKind::Hashtag
            } else {
                TokenKind::Handle
            };
            let j = push_short::<u64>(out, &mut text, b, i, kind)
                .or_else(|| push_short::<u128>(out, &mut text, b, i, kind))
                .unwrap_or_else(|| {
                    push_ascii::<true>(out, &mut text, b, i, i + 1, b.len(), kind, known)
                });
            if kind == TokenKind::Hashtag {
                hashtag_words_ascii(out, &mut text, input, i + 1..j, known);
            }
            i = j;
        } else {
            let mut j = i + 1;
            while j < b.len() && {
                let f = flags(b[j]);
                f & (SPACE | WORD) == 0 && (f & TAG == 0 || !word_at(j + 1))
            } {
                j += 1;
            }
            // Punctuation folds to itself and has no letters: neither caps nor stretched.
            for &c in &b[i..j] {
                out.exclamations += usize::from(c == b'!');
                out.questions += usize::from(c == b'?');
            }
            let start = text.len();
            copy_token(&mut text, b, i..j);
            let (head, key) = head_and_key(&b[i..j]);
            text.push(b' ');
            out.tokens.push(Token {
                span: start..start + (j - i),
                original: i..j,
                head,
                key,
                kind: TokenKind::Punct,
                caps: false,
                stretched: false,
            });
            i = j;
        }
    }
    // `from_utf8` checks sixteen bytes at a time, then what is left one byte at a time with a branch each, which
    // mispredicts at the end. Spaces up to a multiple of sixteen bytes, cut off again after, leave nothing to it.
    let len = text.len();
    text.extend_from_slice(&[b' '; 16]);
    text.truncate(len.next_multiple_of(16));
    out.text = String::from_utf8(text).expect("ASCII folds to ASCII");
    out.text.truncate(len);
}

/// Appends the bytes `b[range]` (not empty) to `text`. A copy of a constant 16 bytes (near the input's end, as
/// [`Lanes::load`] reads them) is two moves, then cut to size; `memcpy` of a few bytes branches on the size, and
/// token sizes vary too much for those branches to be predicted.
#[inline(always)]
fn copy_token(text: &mut Vec<u8>, b: &[u8], range: Range<usize>) {
    if range.len() <= 16 {
        let start = text.len();
        <u128 as Lanes>::load(b, range.start).store(text);
        text.truncate(start + range.len());
    } else {
        text.extend_from_slice(&b[range]);
    }
}

/// A machine word used as a vector of bytes ("SWAR"): 8 ASCII bytes in a `u64`, 16 in a `u128`. A test of all
/// the bytes at once sets the top bit of each byte that passes.
trait Lanes:
    Copy
    + PartialEq
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Not<Output = Self>
    + Shl<u32, Output = Self>
    + Shr<u32, Output = Self>
{
    /// How many bytes.
    const BYTES: usize;
    /// No bit set.
    const ZERO: Self;
    /// `c` in the lowest byte.
    fn byte(c: u8) -> Self;
    /// `c` in every byte.
    fn splat(c: u8) -> Self;
    /// The `BYTES` bytes of `b` from `from` (before its end) on, spaces past its end.
    fn load(b: &[u8], from: usize) -> Self;
    /// Appends the bytes to `out`.
    fn store(self, out: &mut Vec<u8>);
    fn wrapping_add(self, other: Self) -> Self;
    fn wrapping_sub(self, other: Self) -> Self;
    fn trailing_zeros(self) -> u32;
    /// The first 8 bytes.
    fn low64(self) -> u64;
    /// The last 8 of the first `len` bytes (the first 8 when `len` is 8 or less).
    fn tail64(self, len: usize) -> u64;

    /// The top bit of each byte (all ASCII, below 0x80) that is in `lo..=hi` (`hi` below 0x7F). Adding
    /// `0x80 - c` to a byte sets its top bit exactly when it is at least `c`, and carries into no other byte.
    #[inline(always)]
    fn bytes_in(self, lo: u8, hi: u8) -> Self {
        let at_least = |c: u8| self.wrapping_add(Self::splat(0x80 - c)) & Self::splat(0x80);
        at_least(lo) & !at_least(hi + 1)
    }

    /// The top bit of each zero byte (any bytes).
    #[inline(always)]
    fn zero_bytes(self) -> Self {
        let low7 = Self::splat(0x7F);
        !(((self & low7).wrapping_add(low7)) | self) & Self::splat(0x80)
    }
}

macro_rules! lanes {
    ($t:ty) => {
        impl Lanes for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            const ZERO: $t = 0;
            #[inline(always)]
            fn byte(c: u8) -> $t {
                <$t>::from(c)
            }
            #[inline(always)]
            fn splat(c: u8) -> $t {
                <$t>::MAX / 255 * <$t>::from(c)
            }
            #[inline(always)]
            fn load(b: &[u8], from: usize) -> $t {
                let rest = &b[from..];
                if let Some(bytes) = rest.first_chunk() {
                    return <$t>::from_le_bytes(*bytes);
                }
                // Near the end (the last word or two of every text): the last `BYTES` bytes of the input,
                // shifted down to start at `from`, then spaces; copying the few bytes left would be a call to
                // `memcpy`, whose branches on the length are mispredicted.
                match b.last_chunk() {
                    Some(last) => {
                        let gone = 8 * (Self::BYTES - rest.len()) as u32;
                        <$t>::from_le_bytes(*last) >> gone
                            | Self::splat(b' ') << (<$t>::BITS - gone)
                    }
                    None => {
                        let mut bytes = [b' '; Self::BYTES];
                        bytes[..rest.len()].copy_from_slice(rest);
                        <$t>::from_le_bytes(bytes)
                    }
                }
            }
            #[inline(always)]
            fn store(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline(always)]
            fn wrapping_add(self, other: $t) -> $t {
                <$t>::wrapping_add(self, other)
            }
            #[inline(always)]
            fn wrapping_sub(self, other: $t) -> $t {
                <$t>::wrapping_sub(self, other)
            }
            #[inline(always)]
            fn trailing_zeros(self) -> u32 {
                <$t>::trailing_zeros(self)
            }
            #[inline(always)]
            fn low64(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn tail64(self, len: usize) -> u64 {
                (self >> (8 * len.saturating_sub(8) as u32)) as u64
            }
        }
    };
}
lanes!(u64);
lanes!(u128);

/// [`push_ascii`] for most words, hashtags and handles: those that end within the `T::BYTES` bytes at `from`
/// and are not stretched. The token's end, caps, stretch and folded form are found with a few operations on
/// all the bytes at once, with no branch per byte: a branch per byte mispredicts at each token's end. Returns
/// where the token ends, or `None`, having pushed nothing, when the token is not such.
#[inline(always)]
fn push_short<T: Lanes>(
    out: &mut Normalized,
    text: &mut Vec<u8>,
    b: &[u8],
    from: usize,
    kind: TokenKind,
) -> Option<usize> {
    let x = T::load(b, from);
    // Letters are the bytes in `a..=z` once their case bit (0x20) is set; that bit, moved to the top, is set
    // in lowercase ones.
    let letters = (x | T::splat(0x20)).bytes_in(b'a', b'z');
    let lower = letters & (x << 2);
    let upper = letters ^ lower;
    let word = letters | x.bytes_in(b'0', b'9') | x.bytes_in(b'_', b'_');
    // An apostrophe between word characters is inside the word (`don't`), as is a tag's `#` or `@`.
    let apostrophes = x.bytes_in(b'\'', b'\'');
    let tag = T::byte(if kind == TokenKind::Word { 0 } else { 0x80 });
    let inside = word | (apostrophes & (word << 8) & (word >> 8)) | tag;
    let len = (!inside & T::splat(0x80)).trailing_zeros() as usize / 8;
    // The token must end within the bytes, and not at an apostrophe in the last one: that one is inside when
    // the next byte is a word character.
    let last = (T::BYTES - 1) as u32 * 8;
    if len >= T::BYTES || len == T::BYTES - 1 && apostrophes >> last != T::ZERO {
        return None;
    }
    let token = (T::byte(1) << (8 * len as u32)).wrapping_sub(T::byte(1));
    let (upper, lower) = (upper & token, lower & token);
    // Caps: two uppercase letters or more (clearing the lowest bit leaves one), and no lowercase letter.
    let caps = upper & upper.wrapping_sub(T::byte(1)) != T::ZERO && lower == T::ZERO;
    // Lowercase: the case bit is the top bit moved down two.
    let folded = x | (upper >> 2);
    // A letter equal to the next two (`ooo`): stretched, for `push_ascii` to shrink.
    let pairs = (folded ^ (folded >> 8)).zero_bytes();
    if pairs & (pairs >> 8) & (upper | lower) & (token >> 16) != T::ZERO {
        return None;
    }
    // The folded token and a space, copied as `T::BYTES` bytes then cut to size (see `push_ascii`).
    let start = text.len();
    let folded = folded & token;
    (folded | T::byte(b' ') << (8 * len as u32)).store(text);
    text.truncate(start + len + 1);
    let head = folded.low64();
    let marked = (folded | T::byte(0xFF) << (8 * len as u32)).low64();
    let key = token_key(marked, folded.tail64(len), len);
    let word = kind == TokenKind::Word;
    out.words += usize::from(word);
    out.caps_words += usize::from(word && caps);
    out.tokens.push(Token {
        span: start..start + len,
        original: from..from + len,
        head,
        key,
        kind,
        caps,
        stretched: false,
    });
    Some(from + len)
}

/// Folds one ASCII token into `text` and records it; returns where it ends. The token starts at `from`; its
/// word part at `body` (after a `#` or `@`). With `SCAN`, the word runs to the first byte that cannot be in a
/// word (an apostrophe stays between word characters); without, it is exactly `body..end`. Folding, the caps
/// test and the stretch test share the one pass over the bytes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn push_ascii<const SCAN: bool>(
    out: &mut Normalized,
    text: &mut Vec<u8>,
    b: &[u8],
    from: usize,
    body: usize,
    end: usize,
    kind: TokenKind,
    known: &dyn Fn(&str) -> bool,
) -> usize {
    // First find the token's end and the union of its bytes' flags, then copy it and fold only what needs it:
    // most tokens have no uppercase letter and no doubled one.
    let mut j = body;
    let mut seen = 0u8;
    if SCAN {
        loop {
            while let Some(&c) = b.get(j) {
                let f = flags(c);
                if f & WORD == 0 {
                    break;
                }
                seen |= f;
                j += 1;
            }
            // An apostrophe between word characters stays inside the word (`don't`).
            if b.get(j) == Some(&b'\'') && b.get(j + 1).is_some_and(|&n| flags(n) & WORD != 0) {
                j += 1;
            } else {
                break;
            }
        }
    } else {
        j = end;
        seen = b[body..end].iter().fold(0, |s, &c| s | flags(c));
    }
    let start = text.len();
    copy_token(text, b, from..j);
    let mut caps = false;
    if seen & UPPER != 0 {
        let mut upper = 0u32;
        for c in &mut text[start..] {
            let u = flags(*c) & UPPER;
            upper += u32::from(u != 0);
            *c |= u;
        }
        caps = upper >= 2 && seen & LOWER == 0;
    }
    // Stretched: some letter three times in a row.
    let stretched = seen & (UPPER | LOWER) != 0
        && text[start..]
            .windows(3)
            .any(|w| w[0] == w[1] && w[1] == w[2] && w[0].is_ascii_lowercase());
    if stretched {
        let folded = std::str::from_utf8(&text[start..]).expect("ASCII");
        let shrunk = shrink(folded, known);
        text.truncate(start);
        text.extend_from_slice(shrunk.as_bytes());
    }
    let span = start..text.len();
    // From the final folded bytes: a stretched token was shrunk.
    let (head, key) = head_and_key(&text[span.clone()]);
    text.push(b' ');
    let word = kind == TokenKind::Word;
    out.words += usize::from(word);
    out.caps_words += usize::from(word && caps);
    out.tokens.push(Token {
        span,
        original: from..j,
        head,
        key,
        kind,
        caps,
        stretched,
    });
    j
}

/// The word tokens a hashtag's body (`input[body]`, ASCII) adds after the hashtag: its parts at case changes,
/// else its known words, as [`hashtag_parts`] and [`known_words`] find them, without their allocations.
fn hashtag_words_ascii(
    out: &mut Normalized,
    text: &mut Vec<u8>,
    input: &str,
    body: Range<usize>,
    known: &dyn Fn(&str) -> bool,
) {
    let b = input.as_bytes();
    let word = |out: &mut Normalized, text: &mut Vec<u8>, p: Range<usize>| {
        push_ascii::<false>(
            out,
            text,
            b,
            p.start,
            p.start,
            p.end,
            TokenKind::Word,
            known,
        );
    };
    let split = hashtag_parts_ascii(b, body.clone(), |p| word(out, text, p));
    if split == 0 {
        let mut parts: [Range<usize>; 6] = Default::default();
        let count = known_words_ascii(b, body, known, &mut parts);
        for p in &parts[..count] {
            word(out, text, p.clone());
        }
    }
}

/// [`hashtag_parts`] for an ASCII body: calls `f` with each part when there are two or more, and returns how
/// many (0 when fewer than two).
fn hashtag_parts_ascii(b: &[u8], body: Range<usize>, mut f: impl FnMut(Range<usize>)) -> usize {
    let s = &b[body.clone()];
    let lower = |c: u8| c.is_ascii_lowercase();
    let upper = |c: u8| c.is_ascii_uppercase();
    let alpha = |c: u8| c.is_ascii_alphabetic();
    let digit = |c: u8| c.is_ascii_digit();
    // Each raw part, trimmed of underscores, when not empty.
    let mut emit = |r: Range<usize>, count: &mut usize, call: bool| {
        let (mut a, mut z) = (r.start, r.end);
        while a < z && s[a] == b'_' {
            a += 1;
        }
        while z > a && s[z - 1] == b'_' {
            z -= 1;
        }
        if a < z {
            *count += 1;
            if call {
                f(body.start + a..body.start + z);
            }
        }
    };
    // Two passes: the parts are only words of their own when there are at least two.
    let mut total = 0;
    for call in [false, true] {
        if call && total < 2 {
            break;
        }
        let mut count = 0;
        let mut start = 0;
        for k in 1..s.len() {
            let (prev, cur) = (s[k - 1], s[k]);
            let next = s.get(k + 1).copied();
            let boundary = (lower(prev) && upper(cur))
                || (alpha(prev) != alpha(cur) && (digit(prev) || digit(cur)))
                || (upper(prev) && upper(cur) && next.is_some_and(lower))
                || prev == b'_';
            if boundary {
                emit(start..k, &mut count, call);
                start = k;
            }
        }
        emit(start..s.len(), &mut count, call);
        total = count;
    }
    if total >= 2 { total } else { 0 }
}

/// [`known_words`] for an ASCII body: the cuts go into `parts` (at most six), and their number is returned (0
/// when the body cannot be covered by two or more known words).
fn known_words_ascii(
    b: &[u8],
    body: Range<usize>,
    known: &dyn Fn(&str) -> bool,
    parts: &mut [Range<usize>; 6],
) -> usize {
    let s = &b[body.clone()];
    if s.len() > 60 || !s.iter().all(u8::is_ascii_alphabetic) {
        return 0;
    }
    // Folded once: every candidate is a slice of it.
    let mut folded = [0u8; 60];
    for (f, c) in folded.iter_mut().zip(s) {
        *f = c.to_ascii_lowercase();
    }
    let folded = std::str::from_utf8(&folded[..s.len()]).expect("ASCII");
    // best[k] = (parts, previous cut) for the prefix of k bytes.
    let mut best: [Option<(usize, usize)>; 61] = [None; 61];
    best[0] = Some((0, 0));
    for end in 1..=s.len() {
        for start in 0..end.saturating_sub(1) {
            let Some((n, _)) = best[start] else {
                continue;
            };
            // The vocabulary last: a piece that cannot improve on the cut found already needs no lookup.
            if n < 6 && best[end].is_none_or(|(p, _)| n + 1 < p) && known(&folded[start..end]) {
                best[end] = Some((n + 1, start));
            }
        }
    }
    let mut k = s.len();
    let count = match best[k] {
        Some((n, _)) if n >= 2 => n,
        _ => return 0,
    };
    for slot in (0..count).rev() {
        let (_, prev) = best[k].expect("on the best path");
        parts[slot] = body.start + prev..body.start + k;
        k = prev;
    }
    count
}

/// Ends the token whose folded form starts at `start` in `out.text`: shrinks it if stretched, adds the space and
/// the [`Token`].
fn finish(
    out: &mut Normalized,
    start: usize,
    original: Range<usize>,
    kind: TokenKind,
    caps: bool,
    stretched: bool,
    known: &dyn Fn(&str) -> bool,
) {
    if stretched {
        let folded = out.text[start..].to_string();
        out.text.truncate(start);
        out.text.push_str(&shrink(&folded, known));
    }
    let end = out.text.len();
    let (head, key) = head_and_key(&out.text.as_bytes()[start..end]);
    out.text.push(' ');
    if kind == TokenKind::Word {
        out.words += 1;
        out.caps_words += usize::from(caps);
    }
    out.tokens.push(Token {
        span: start..end,
        original,
        head,
        key,
        kind,
        caps,
        stretched,
    });
}

/// A folded token's first 8 bytes (little-endian, zero past its end) and its lookup key ([`token_key`]), from
/// its bytes: for the paths that do not hold them in a register already, and for patterns' tokens.
pub fn head_and_key(word: &[u8]) -> (u64, u64) {
    let n = word.len();
    // Two loads that overlap when the token is shorter than twice their size, rather than a copy of `n` bytes,
    // which is a call to `memcpy`.
    let (head, tail) = match (word.first_chunk::<8>(), word.last_chunk::<8>()) {
        (Some(&first), Some(&last)) => (u64::from_le_bytes(first), u64::from_le_bytes(last)),
        _ if n >= 4 => {
            let at =
                |k: usize| u64::from(u32::from_le_bytes(word[k..k + 4].try_into().expect("4")));
            let head = at(0) | at(n - 4) << (8 * (n - 4));
            (head, head)
        }
        _ if n >= 2 => {
            let at = |k: usize| u64::from(u16::from_le_bytes([word[k], word[k + 1]]));
            let head = at(0) | at(n - 2) << (8 * (n - 2));
            (head, head)
        }
        _ => {
            let head = word.first().map_or(0, |&c| u64::from(c));
            (head, head)
        }
    };
    // Two shifts by half: no byte past 8 bytes, without a branch.
    let half = 4 * n.min(8) as u32;
    (head, token_key(head | 0xFF << half << half, tail, n))
}

/// The lookup key of a folded token of `len` bytes whose first 8 bytes, followed by a byte 0xFF (then zeros),
/// are `marked`, and whose last 8 are `tail` (read only when longer than 8): how the tokens of patterns are found
/// (`phrase::Vocab`). A token of up to 8 bytes (most of them) is its own key, its length marked by a byte 0xFF
/// just past its end when shorter than 8: as 0xFF is never part of UTF-8, no two such tokens share a key. A
/// longer one's key is a hash of its first and last 8 bytes and length, with 0xFF as its first and last byte,
/// which no short token's key has (one 0xFF at most, nothing after it); different long tokens may share a key,
/// so a long token found by it must be confirmed on its bytes. No branch on the length, which varies from token
/// to token and would be mispredicted: both keys are worked out and one kept.
#[inline(always)]
pub fn token_key(marked: u64, tail: u64, len: usize) -> u64 {
    // The multiplier from FxHash: odd, with well-spread bits. A long token's marker is past its first 8 bytes:
    // `marked` is those bytes then.
    let long = (marked ^ tail.rotate_left(23) ^ (len as u64) << 40)
        .wrapping_mul(0x517c_c1b7_2722_0a95)
        | 0xFF00_0000_0000_00FF;
    std::hint::select_unpredictable(len > 8, long, marked)
}

/// Zero-width characters and variation selectors: dropped before tokenising.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{FE0E}'
            | '\u{FE0F}'
            | '\u{00AD}'
    )
}

/// Unicode `\w`: letters, combining marks, digits, connector punctuation.
fn is_word(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        regex_syntax::is_word_character(c)
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ')
}

/// End of a word starting at `i`; an apostrophe between word characters stays inside (`don't`).
fn word_end(chars: &[(usize, char)], mut i: usize) -> usize {
    while i < chars.len() {
        let c = chars[i].1;
        if is_word(c)
            || (is_apostrophe(c)
                && i > 0
                && is_word(chars[i - 1].1)
                && chars.get(i + 1).is_some_and(|(_, n)| is_word(*n)))
        {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Emoji and other pictographic symbols (not punctuation).
fn is_symbol(c: char) -> bool {
    let u = c as u32;
    matches!(u, 0x2100..=0x214F | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x24FF | 0x25A0..=0x27BF | 0x2900..=0x297F
        | 0x2B00..=0x2BFF | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x1F000..=0x1FAFF | 0x00A9 | 0x00AE)
}

fn is_punct(c: char) -> bool {
    !c.is_whitespace() && !is_word(c) && !is_symbol(c) && !invisible(c)
}

fn starts_tag(chars: &[(usize, char)], j: usize) -> bool {
    matches!(chars[j].1, '#' | '@') && chars.get(j + 1).is_some_and(|(_, n)| is_word(*n))
}

fn push(
    out: &mut Normalized,
    input: &str,
    original: Range<usize>,
    kind: TokenKind,
    known: &dyn Fn(&str) -> bool,
) {
    let piece = &input[original.clone()];
    let start = out.text.len();
    fold_into(piece, &mut out.text);
    let stretched = kind != TokenKind::Punct && has_run(&out.text[start..], 3);
    let (mut letters, mut lower, mut upper) = (0, false, false);
    for c in piece.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        lower |= c.is_lowercase();
        upper |= c.is_uppercase();
    }
    let caps = kind != TokenKind::Punct && letters >= 2 && upper && !lower;
    if kind == TokenKind::Punct {
        for c in out.text[start..].chars() {
            out.exclamations += usize::from(c == '!');
            out.questions += usize::from(c == '?');
        }
    }
    finish(out, start, original, kind, caps, stretched, known);
}

/// One token's folded form: NFKC, lowercase (with `ß` → `ss`, final sigma → sigma), typographic apostrophes
/// made ASCII, Arabic-script variants unified, invisible characters and spaces dropped.
pub fn fold(piece: &str) -> String {
    let mut out = String::with_capacity(piece.len());
    fold_into(piece, &mut out);
    out
}

/// [`fold`], appended to `out`.
fn fold_into(piece: &str, out: &mut String) {
    if piece.is_ascii() {
        out.extend(piece.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        return;
    }
    for c in piece.nfkc().flat_map(char::to_lowercase) {
        match c {
            c if invisible(c) || c.is_whitespace() => {}
            '’' | 'ʼ' => out.push('\''),
            'ß' => out.push_str("ss"),
            'ς' => out.push('σ'),
            // Arabic yeh and alef maksura → Farsi/Urdu yeh; kaf → keheh; heh and ae → heh goal.
            '\u{064A}' | '\u{0649}' => out.push('\u{06CC}'),
            '\u{0643}' => out.push('\u{06A9}'),
            '\u{0647}' | '\u{06D5}' => out.push('\u{06C1}'),
            // Tatweel, harakat and the superscript alef: decoration, not spelling.
            '\u{0640}' | '\u{064B}'..='\u{065F}' | '\u{0670}' => {}
            '\u{0660}'..='\u{0669}' => out.push(char::from(b'0' + (c as u32 - 0x0660) as u8)),
            '\u{06F0}'..='\u{06F9}' => out.push(char::from(b'0' + (c as u32 - 0x06F0) as u8)),
            c => out.push(c),
        }
    }
}

/// True when some letter repeats `n` or more times in a row.
fn has_run(word: &str, n: usize) -> bool {
    let mut prev = None;
    let mut run = 0;
    for c in word.chars() {
        if Some(c) == prev && c.is_alphabetic() {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 1;
        }
        prev = Some(c);
    }
    false
}

/// `word` with every run of three or more equal letters cut to `keep`.
fn squeeze(word: &str, keep: usize) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let mut j = i + 1;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let len = j - i;
        let n = if len >= 3 && chars[i].is_alphabetic() {
            keep
        } else {
            len
        };
        out.extend(std::iter::repeat_n(chars[i], n));
        i = j;
    }
    out
}

/// A stretched word shrunk to a known form: runs cut to two (`goood` → `good`), else to one (`sooo` → `so`),
/// else to two.
fn shrink(word: &str, known: &dyn Fn(&str) -> bool) -> String {
    let two = squeeze(word, 2);
    if known(&two) {
        return two;
    }
    let one = squeeze(word, 1);
    if known(&one) { one } else { two }
}

/// Splits an all-lowercase hashtag body into known words (two to six of them, each two letters or more),
/// preferring the fewest; empty when it cannot be covered. Bodies longer than 60 bytes are left alone.
fn known_words(input: &str, body: Range<usize>, known: &dyn Fn(&str) -> bool) -> Vec<Range<usize>> {
    let s = &input[body.clone()];
    if s.len() > 60 || !s.chars().all(char::is_alphabetic) {
        return Vec::new();
    }
    let bounds: Vec<usize> = s.char_indices().map(|(b, _)| b).chain([s.len()]).collect();
    // best[k] = (parts, previous cut) for the prefix ending at bounds[k].
    let mut best: Vec<Option<(usize, usize)>> = vec![None; bounds.len()];
    best[0] = Some((0, 0));
    // One buffer for every candidate's folded form: up to ~1,800 candidates per tag, none allocating.
    let mut folded = String::with_capacity(s.len() * 2);
    for end in 1..bounds.len() {
        for start in 0..end.saturating_sub(1) {
            let Some((parts, _)) = best[start] else {
                continue;
            };
            if parts < 6 && best[end].is_none_or(|(p, _)| parts + 1 < p) && {
                folded.clear();
                fold_into(&s[bounds[start]..bounds[end]], &mut folded);
                known(&folded)
            } {
                best[end] = Some((parts + 1, start));
            }
        }
    }
    let mut cuts = Vec::new();
    let mut k = bounds.len() - 1;
    match best[k] {
        Some((parts, _)) if parts >= 2 => {}
        _ => return Vec::new(),
    }
    while k > 0 {
        let (_, prev) = best[k].expect("on the best path");
        cuts.push(body.start + bounds[prev]..body.start + bounds[k]);
        k = prev;
    }
    cuts.reverse();
    cuts
}

/// Splits a hashtag body at case changes, letter/digit changes and underscores; empty unless 2+ parts.
fn hashtag_parts(input: &str, body: Range<usize>) -> Vec<Range<usize>> {
    let s = &input[body.clone()];
    let cs: Vec<(usize, char)> = s.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for k in 1..cs.len() {
        let (prev, cur) = (cs[k - 1].1, cs[k].1);
        let next = cs.get(k + 1).map(|(_, c)| *c);
        let boundary = (prev.is_lowercase() && cur.is_uppercase())
            || (prev.is_alphabetic() != cur.is_alphabetic()
                && (prev.is_numeric() || cur.is_numeric()))
            || (prev.is_uppercase()
                && cur.is_uppercase()
                && next.is_some_and(|n| n.is_lowercase()))
            || prev == '_';
        if boundary {
            parts.push(start..cs[k].0);
            start = cs[k].0;
        }
    }
    parts.push(start..s.len());
    let parts: Vec<Range<usize>> = parts
        .into_iter()
        .map(|r| {
            let t = &s[r.clone()];
            let trimmed = t.trim_matches('_');
            let off = t.find(trimmed).unwrap_or(0);
            body.start + r.start + off..body.start + r.start + off + trimmed.len()
        })
        .filter(|r| !r.is_empty())
        .collect();
    if parts.len() >= 2 { parts } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        let n = normalize(s);
        n.tokens
            .iter()
            .map(|t| n.text[t.span.clone()].to_string())
            .collect()
    }

    #[test]
    fn the_ascii_path_tokenises_as_the_general_one() {
        let known = |w: &str| ["so", "good", "never", "again", "flying"].contains(&w);
        let samples = [
            "I don't LIKE it!!! @NorthwindHelp :( #NeverFlyingAgain #neverflyingagain #A_b2C",
            "soooo goooood... ok?! a#b @ # @@x 'quoted' don't' 'tis _under_ x\x0by\x0cz\r\n\tq",
            "WHERE IS MY BAG??? day 3 now :-) <3 #100days #ABCdef #lol_ @x#y",
            "",
            "   ",
            "!!!",
            // Around the eight- and sixteen-byte words of the fast path: lengths 7 to 17, an apostrophe as the
            // 8th or 16th byte, caps, stretched letters near the edges, tokens at the very end.
            "abcdefg abcdefgh abcdefghi ABCDEFGHIJKLMNOP abcdefghijklmnopq abcdefg'h abcdefghijklmno'p x'",
            "ABCDEFG'S HELLOOO aaaBbbbCcc #ABCDEFGhij @Abcdefghijklmnop #aaa_bbb'ccc I'M OK A1 Ab AB'c",
            "heLLo waaaaaaaaaaaaaaaay #x @y a",
            "end'",
            "#tag",
            "LOUD",
            // Words of 7 to 15 bytes last in a text of 16 bytes or more: loaded from the input's last bytes.
            "the last word is abcdefghijk",
            "and the LAST one: ABCDEFGH",
            "also ends in a long word Abcdefg",
        ];
        let mut random = String::new();
        let mut x: u32 = 7;
        for _ in 0..4000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let alphabet = b" aAbBoO'#@_!?.:-19\t\x0b";
            random.push(char::from(alphabet[(x >> 16) as usize % alphabet.len()]));
        }
        for s in samples.iter().copied().chain([random.as_str()]) {
            let mut general = Normalized::default();
            general.text.push(' ');
            tokenize_chars(s, &known, &mut general);
            let fast = normalize_with(s, &known);
            assert_eq!(fast.text, general.text, "{s:?}");
            assert_eq!(fast.tokens, general.tokens, "{s:?}");
            let facts = |n: &Normalized| (n.exclamations, n.questions, n.words, n.caps_words);
            assert_eq!(facts(&fast), facts(&general), "{s:?}");
        }
    }

    #[test]
    fn heads_and_keys_at_every_length() {
        let all = "abcdefghijklmnopqrstu";
        let mut keys = std::collections::HashSet::new();
        for n in 1..=all.len() {
            let word = &all[..n];
            let mut head = [0; 8];
            head[..n.min(8)].copy_from_slice(&word.as_bytes()[..n.min(8)]);
            let (h, key) = head_and_key(word.as_bytes());
            assert_eq!(h, u64::from_le_bytes(head), "{word}");
            if n < 8 {
                head[n] = 0xFF;
            }
            if n <= 8 {
                assert_eq!(key, u64::from_le_bytes(head), "{word}");
            } else {
                assert_eq!(key & 0xFF00_0000_0000_00FF, 0xFF00_0000_0000_00FF, "{word}");
            }
            assert!(keys.insert(key), "{word}");
            // The fast paths (eight and sixteen bytes at once, then byte by byte) work them out the same.
            let t = &normalize(&word.to_uppercase()).tokens[0];
            assert_eq!((t.head, t.key), (h, key), "{word}");
        }
    }

    #[test]
    fn the_ascii_check_sees_a_non_ascii_byte_anywhere() {
        for len in 0..50 {
            let ascii = "a".repeat(len);
            assert!(all_ascii(ascii.as_bytes()), "{len}");
            for at in 0..len {
                let mut bytes = ascii.clone().into_bytes();
                bytes[at] = 0xC3;
                assert!(!all_ascii(&bytes), "{len} bytes, 0xC3 at {at}");
            }
        }
    }

    #[test]
    fn words_apostrophes_handles_and_punctuation() {
        assert_eq!(
            texts("I don’t LIKE it!!! @NorthwindHelp :("),
            ["i", "don't", "like", "it", "!!!", "@northwindhelp", ":("]
        );
        assert_eq!(
            texts("'quoted' rock'n'roll"),
            ["'", "quoted", "'", "rock'n'roll"]
        );
        assert_eq!(normalize("Where is my bag?").text, " where is my bag ? ");
        assert_eq!(normalize("Where is my bag?").joined(), "where is my bag ?");
        assert_eq!(normalize("").text, " ");
    }

    #[test]
    fn hashtags_are_kept_and_split() {
        assert_eq!(
            texts("#NeverFlyingNorthwindAgain"),
            [
                "#neverflyingnorthwindagain",
                "never",
                "flying",
                "northwind",
                "again"
            ]
        );
        assert_eq!(
            texts("#NorthwindSucks"),
            ["#northwindsucks", "northwind", "sucks"]
        );
        assert_eq!(
            texts("#fail #day3 #never_again"),
            [
                "#fail",
                "#day3",
                "day",
                "3",
                "#never_again",
                "never",
                "again"
            ]
        );
        assert_eq!(texts("#ABCAirlines"), ["#abcairlines", "abc", "airlines"]);
    }

    #[test]
    fn emoji_and_invisible_characters() {
        assert_eq!(texts("bad😡😡 ❤️"), ["bad", "😡", "😡", "❤"]);
        assert_eq!(texts("بد\u{200C}ترین"), ["بدترین"]);
        assert!(normalize("").tokens.is_empty());
        assert!(normalize("\u{200B}\u{FEFF}").tokens.is_empty());
    }

    #[test]
    fn scripts_keep_their_marks_inside_words() {
        assert_eq!(texts("ఈ సేవ చెత్తగా ఉంది"), ["ఈ", "సేవ", "చెత్తగా", "ఉంది"]);
        assert_eq!(
            texts("یہ سروس بدترین ہے، بہت خراب"),
            ["یہ", "سروس", "بدترین", "ہے", "،", "بہت", "خراب"]
        );
    }

    #[test]
    fn caps_and_original_ranges() {
        let input = "the WORST Airline, OK?";
        let n = normalize(input);
        let caps: Vec<bool> = n.tokens.iter().map(|t| t.caps).collect();
        assert_eq!(caps, [false, true, false, false, true, false]);
        for t in &n.tokens {
            assert_eq!(
                input[t.original.clone()].to_lowercase(),
                n.text[t.span.clone()]
            );
        }
    }

    #[test]
    fn nfkc_case_and_arabic_variants_fold() {
        assert_eq!(texts("ＷＯＲＳＴ Straße"), ["worst", "strasse"]);
        // Arabic yeh/kaf/heh typed for the Urdu letters, tatweel and a zabar: all the same word after folding.
        assert_eq!(fold("خراب سروس ہے"), fold("خراب سروس هے"));
        assert_eq!(fold("بكواس"), "بکواس");
        assert_eq!(fold("كيا"), "کیا");
        assert_eq!(fold("بـــہت"), "بہت");
        assert_eq!(fold("بَہت"), "بہت");
        assert_eq!(texts("دن ۳"), ["دن", "3"]);
        // Telugu vowel signs and virama survive NFKC inside the word.
        assert_eq!(texts("రాలేదు!"), ["రాలేదు", "!"]);
    }

    #[test]
    fn stretched_words_shrink_to_known_words() {
        let vocab = |w: &str| matches!(w, "so" | "good" | "bad" | "teruk");
        let n = normalize_with("sooooo goooood baaaad teruuuuk hmmmm", &vocab);
        assert_eq!(n.joined(), "so good bad teruk hmm");
        assert!(n.tokens.iter().all(|t| t.stretched));
        assert!(!normalize("good").tokens[0].stretched);
        assert_eq!(normalize("sooo").joined(), "soo");
    }

    #[test]
    fn lowercase_hashtags_split_into_known_words() {
        let vocab = |w: &str| matches!(w, "never" | "flying" | "again" | "fly" | "in" | "gagain");
        let n = normalize_with("#neverflyingagain", &vocab);
        assert_eq!(n.joined(), "#neverflyingagain never flying again");
        assert_eq!(normalize_with("#northwind", &vocab).joined(), "#northwind");
        assert_eq!(normalize("#neverflyingagain").joined(), "#neverflyingagain");
    }

    #[test]
    fn huge_and_odd_input_is_fine() {
        let big = "Northwind lost my bag 😡!!! ".repeat(40_000);
        assert_eq!(normalize(&big).tokens.len(), 40_000 * 6);
        let odd = String::from_utf8_lossy(&[0xff, 0xfe, b'a', 0xc3]).into_owned();
        assert!(!normalize(&odd).tokens.is_empty());
        let stretched = format!("#{} {}", "a".repeat(500_000), "o".repeat(500_000));
        let vocab = |w: &str| w == "a";
        assert_eq!(normalize_with(&stretched, &vocab).tokens.len(), 2);
    }
}
