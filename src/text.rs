//! Text normalisation for matching: the input split into tokens (words, #hashtags, @handles, symbols such as
//! emoji, runs of punctuation), lowercased and joined by single spaces. Brand terms and keyword rules are
//! normalised the same way, so matching whole tokens works the same in every script.
//!
//! Hashtags are kept whole and also split into their words (`#NorthwindSucks` → `#northwindsucks northwind
//! sucks`), so a rule for `sucks` or a brand term `Northwind` hears them. Zero-width characters and emoji
//! variation selectors vanish. Linear in the input; never panics.

use std::ops::Range;

/// Text normalised for matching: lowercase tokens joined by single ASCII spaces.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// The tokens, lowercased, joined by single spaces.
    pub text: String,
    /// Each token's place in `text` and in the input.
    pub tokens: Vec<Token>,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Byte range in [`Normalized::text`].
    pub span: Range<usize>,
    /// Byte range in the input.
    pub original: Range<usize>,
    /// What kind of token.
    pub kind: TokenKind,
    /// The original had at least two letters, all uppercase (shouting).
    pub caps: bool,
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

/// Normalises `input`.
pub fn normalize(input: &str) -> Normalized {
    let mut out = Normalized {
        text: String::with_capacity(input.len() + 8),
        tokens: Vec::new(),
    };
    let chars: Vec<(usize, char)> = input
        .char_indices()
        .filter(|(_, c)| !invisible(*c))
        .collect();
    let end_of = |i: usize| chars.get(i).map_or(input.len(), |(b, _)| *b);
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if (c == '#' || c == '@') && chars.get(i + 1).is_some_and(|(_, n)| is_word(*n)) {
            let j = word_end(&chars, i + 1);
            let kind = if c == '#' {
                TokenKind::Hashtag
            } else {
                TokenKind::Handle
            };
            push(&mut out, input, start..end_of(j), kind);
            if kind == TokenKind::Hashtag {
                for part in hashtag_parts(input, end_of(i + 1)..end_of(j)) {
                    push(&mut out, input, part, TokenKind::Word);
                }
            }
            i = j;
        } else if is_word(c) {
            let j = word_end(&chars, i);
            push(&mut out, input, start..end_of(j), TokenKind::Word);
            i = j;
        } else if is_symbol(c) {
            push(&mut out, input, start..end_of(i + 1), TokenKind::Symbol);
            i += 1;
        } else {
            let mut j = i + 1;
            while j < chars.len() && is_punct(chars[j].1) && !starts_tag(&chars, j) {
                j += 1;
            }
            push(&mut out, input, start..end_of(j), TokenKind::Punct);
            i = j;
        }
    }
    out
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
    regex_syntax::is_word_character(c)
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

fn push(out: &mut Normalized, input: &str, original: Range<usize>, kind: TokenKind) {
    let piece = &input[original.clone()];
    let visible: String = piece.chars().filter(|c| !invisible(*c)).collect();
    let lower = visible.to_lowercase().replace(['’', 'ʼ'], "'");
    if !out.text.is_empty() {
        out.text.push(' ');
    }
    let start = out.text.len();
    out.text.push_str(&lower);
    let letters = piece.chars().filter(|c| c.is_alphabetic());
    let caps = kind != TokenKind::Punct
        && letters.clone().count() >= 2
        && letters.clone().all(|c| !c.is_lowercase())
        && letters.clone().any(|c| c.is_uppercase());
    out.tokens.push(Token {
        span: start..out.text.len(),
        original,
        kind,
        caps,
    });
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
    fn words_apostrophes_handles_and_punctuation() {
        assert_eq!(
            texts("I don’t LIKE it!!! @NorthwindHelp :("),
            ["i", "don't", "like", "it", "!!!", "@northwindhelp", ":("]
        );
        assert_eq!(
            texts("'quoted' rock'n'roll"),
            ["'", "quoted", "'", "rock'n'roll"]
        );
        assert_eq!(normalize("Where is my bag?").text, "where is my bag ?");
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
    fn huge_and_odd_input_is_fine() {
        let big = "Northwind lost my bag 😡!!! ".repeat(40_000);
        assert_eq!(normalize(&big).tokens.len(), 40_000 * 6);
        let odd = String::from_utf8_lossy(&[0xff, 0xfe, b'a', 0xc3]).into_owned();
        assert!(!normalize(&odd).tokens.is_empty());
    }
}
