//! Language of a mention: detected with whatlang among the languages whose packs are selected.
//!
//! whatlang has no Malay model; its Indonesian model, the nearest written standard, stands in for `ms`. Short
//! Latin-script posts are often too short to tell English, Malay and Tagalog apart: the detector then says
//! nothing and the classifier falls back to the language of the rules that fired.

use whatlang::Lang;

/// Our codes (ISO 639-1) and whatlang's languages.
const LANGS: &[(&str, Lang)] = &[
    ("en", Lang::Eng),
    ("ms", Lang::Ind),
    ("tl", Lang::Tgl),
    ("ur", Lang::Urd),
    ("te", Lang::Tel),
];

/// A detector restricted to some languages.
#[derive(Clone)]
pub struct Detector {
    inner: Option<whatlang::Detector>,
}

impl Detector {
    /// A detector for those of `codes` whatlang knows; with none of them it detects nothing.
    pub fn new(codes: &[&str]) -> Detector {
        let allow: Vec<Lang> = LANGS
            .iter()
            .filter(|(code, _)| codes.contains(code))
            .map(|(_, l)| *l)
            .collect();
        let inner = match allow.len() {
            0 => None,
            _ => Some(whatlang::Detector::with_allowlist(allow)),
        };
        Detector { inner }
    }

    /// The text's language when whatlang is confident of it, or when the script alone decides it.
    pub fn detect(&self, text: &str) -> Option<String> {
        let info = self.inner.as_ref()?.detect(text)?;
        let by_script = !matches!(info.script(), whatlang::Script::Latin);
        if !(info.is_reliable() || by_script || info.confidence() >= 0.5) {
            return None;
        }
        LANGS
            .iter()
            .find(|(_, l)| *l == info.lang())
            .map(|(code, _)| code.to_string())
    }
}

/// The primary subtag of a language tag, lowercased: `en-GB` → `en`, `ms_MY` → `ms`.
pub fn primary(tag: &str) -> String {
    tag.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_long_enough_texts_are_detected() {
        let d = Detector::new(&["en", "ms", "tl", "ur", "te"]);
        assert_eq!(
            d.detect("یہ سروس بہت خراب ہے، میرا آرڈر ابھی تک نہیں ملا")
                .as_deref(),
            Some("ur")
        );
        assert_eq!(
            d.detect("నా ఆర్డర్ ఇంకా రాలేదు, సేవ చాలా చెత్తగా ఉంది").as_deref(),
            Some("te")
        );
        assert_eq!(
            d.detect(
                "The delivery was late again and nobody from customer service answered my emails"
            )
            .as_deref(),
            Some("en")
        );
        assert_eq!(
            d.detect("Saya sudah menunggu dua minggu tetapi bayaran balik masih belum diterima")
                .as_deref(),
            Some("ms")
        );
        assert_eq!(
            d.detect(
                "Hanggang ngayon wala pa rin ang refund ko at walang sumasagot sa customer service"
            )
            .as_deref(),
            Some("tl")
        );
        assert_eq!(d.detect(""), None);
        assert_eq!(d.detect("😡😡"), None);
    }

    #[test]
    fn only_selected_languages_are_answered() {
        let d = Detector::new(&["en"]);
        assert_eq!(d.detect("یہ سروس بہت خراب ہے"), None);
        assert_eq!(Detector::new(&[]).detect("hello there my friend"), None);
        assert_eq!(primary("en-GB"), "en");
        assert_eq!(primary("ms_MY"), "ms");
    }
}
