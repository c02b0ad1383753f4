use super::*;

/// One built-in classifier for every test here: compiling the packs takes a while in a debug build.
fn builtin() -> &'static Classifier {
    static C: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    C.get_or_init(Classifier::builtin)
}

#[test]
fn labelled_english_mentions() {
    // Realistic brand mentions written for earshot; `earshot eval` scores the same file (and the other languages').
    let set = crate::eval::read_tsv(include_str!("../../tests/fixtures/lang/en.tsv")).unwrap();
    let c = builtin();
    let wrong: Vec<String> = set
        .iter()
        .filter(|e| c.classify(&e.text).complaint != e.complaint)
        .map(|e| {
            let v = c.classify(&e.text);
            format!(
                "{:?}: want complaint={}, got score {} rules {:?}",
                e.text, e.complaint, v.score, v.rules
            )
        })
        .collect();
    assert!(set.len() >= 60);
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        set.len(),
        wrong.join("\n")
    );
    assert!(!c.classify("").complaint && !c.classify("😀").complaint);
}

#[test]
fn sentiment_follows_the_score() {
    let c = builtin();
    assert_eq!(
        c.classify("awful awful awful").sentiment,
        Sentiment::Negative
    );
    assert_eq!(
        c.classify("lovely crew, great flight").sentiment,
        Sentiment::Positive
    );
    assert_eq!(
        c.classify("flight NW12 leaves at 9").sentiment,
        Sentiment::Neutral
    );
    assert_eq!(c.classify("12:30").lang, None);
    assert_eq!(c.classify("awful").lang.as_deref(), Some("en"));
    assert_eq!(
        c.classify_in("awful", Some("en-GB")).lang.as_deref(),
        Some("en")
    );
}

#[test]
fn negation_intensifiers_caps_contrast_and_exclamations_move_the_score() {
    let c = builtin();
    let s = |t: &str| c.classify(t).score;
    assert!(s("not bad") > 0.0, "negated negative turns mildly positive");
    assert!(s("not happy") < 0.0, "negated positive turns negative");
    assert!(s("very bad") < s("bad"), "intensifier");
    assert!(s("slightly bad") > s("bad"), "dampener");
    assert!(s("BAD service") < s("bad service"), "caps");
    assert!(s("bad service!!!") < s("bad service"), "exclamations");
    assert!(
        s("great food but rude staff") < s("rude staff but great food"),
        "the clause after `but` counts more"
    );
    assert!(
        s("where is my refund??") < s("where is my refund"),
        "repeated question marks"
    );
}

#[test]
fn verdicts_explain_themselves() {
    let v = builtin().classify("Still waiting for my refund from @NorthwindHelp 😡");
    assert_eq!(strs(&v.rules), ["en.refund_request", "en.emoji_negative"]);
    assert_eq!(v.hits[0].text, "waiting for my refund");
    assert_eq!(v.hits[1].text, "😡");
    assert_eq!(strs(&v.tags), ["billing"]);
    assert!(v.complaint);
    let hashtag = builtin().classify("#NorthwindSucks");
    assert_eq!(hashtag.hits[0].text, "Sucks");
}

#[test]
fn config_rules_add_and_replace() {
    let extra = [
        RuleConfig {
            name: "northwind.lounge".into(),
            words: vec![],
            phrases: vec!["lounge was closed".into()],
            regex: None,
            weight: -3.0,
            tags: vec!["lounge".into()],
        },
        RuleConfig {
            name: "en.very_negative".into(),
            words: vec!["dreadful".into()],
            phrases: vec![],
            regex: None,
            weight: -1.0,
            tags: vec![],
        },
    ];
    let c = Classifier::new(&extra, DEFAULT_COMPLAINT_AT).unwrap();
    let v = c.classify("the lounge was closed");
    assert_eq!(
        (strs(&v.rules), strs(&v.tags), v.complaint),
        (vec!["northwind.lounge"], vec!["lounge"], true)
    );
    // The replaced built-in no longer knows "terrible" (only the lexicon does), and "dreadful" weighs what the
    // config says.
    assert_eq!(strs(&c.classify("terrible").rules), ["en.lexicon"]);
    assert_eq!(c.classify("dreadful").hits[0].weight, -1.0);
}

#[test]
fn every_rule_problem_is_reported() {
    let bad = [
        RuleConfig {
            name: " ".into(),
            words: vec![],
            phrases: vec![],
            regex: None,
            weight: f64::NAN,
            tags: vec![],
        },
        RuleConfig {
            name: "r".into(),
            words: vec!["  ".into()],
            phrases: vec![],
            regex: Some("(unclosed".into()),
            weight: 1.0,
            tags: vec![],
        },
    ];
    let problems = Classifier::new(&bad, DEFAULT_COMPLAINT_AT).err().unwrap();
    let got: Vec<(usize, &str)> = problems.iter().map(|p| (p.index, p.field)).collect();
    assert_eq!(
        got,
        [
            (0, "name"),
            (0, "words"),
            (0, "weight"),
            (1, "words"),
            (1, "regex")
        ]
    );
    assert!(problems[4].message.contains("invalid regex"));
}

#[test]
fn the_built_in_packs_load_and_compile() {
    let packs = pack::builtin();
    assert!(packs.iter().any(|p| p.lang == "en" && p.rule.len() > 10));
    let names: Vec<&str> = packs
        .iter()
        .flat_map(|p| p.rule.iter().map(|r| r.name.as_str()))
        .collect();
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(names.len(), dedup.len(), "rule names are unique");
    builtin();
}

#[test]
fn odd_input_never_panics() {
    let c = builtin();
    for t in [
        "",
        "   ",
        "😡😡😡",
        "!!!???",
        "\u{200B}",
        &"where is my refund ".repeat(50_000),
        &"x".repeat(1 << 20),
    ] {
        let v = c.classify(t);
        assert!((-1.0..=1.0).contains(&v.score));
    }
    assert!(c.classify("😡😡😡").complaint);
}

#[test]
fn hits_point_at_their_words_in_the_original_text() {
    let text = "Ｔｈｅ flight was TERRIBLE, still waiting for my refund";
    let v = builtin().classify(text);
    assert!(!v.hits.is_empty());
    for h in &v.hits {
        assert_eq!(&text[h.start..h.end], h.text);
    }
    assert!(
        v.hits.iter().any(|h| h.text == "waiting for my refund"),
        "the longer phrase wins"
    );
    assert!(v.hits.iter().any(|h| h.text == "TERRIBLE"));
}

#[test]
fn stretched_words_and_lowercase_hashtags_are_heard() {
    let c = builtin();
    let stretched = c.classify("sooooo baaaaad");
    assert!(stretched.hits.iter().any(|h| h.text == "baaaaad"));
    assert!(
        stretched.score < c.classify("so bad").score,
        "stretching adds weight"
    );
    let tag = c.classify("#neverflyingagain");
    assert!(tag.complaint, "{tag:?}");
}

#[test]
fn pack_files_add_languages_with_negation_after_the_word() {
    let pack = Pack::parse(
        r#"
        lang = "xx"
        negators_after = ["نہیں"]
        contrast = ["لیکن"]
        [[rule]]
        name = "xx.good"
        weight = 2.0
        words = ["اچھا"]
        [[rule]]
        name = "xx.not_received"
        weight = -2.5
        tags = ["delivery"]
        phrases = ["نہیں ملا"]
        "#,
    )
    .unwrap();
    let en = &pack::builtin()[0];
    let c = Classifier::with_packs(&[en, &pack], &[], DEFAULT_COMPLAINT_AT).unwrap();
    assert!(c.classify("کھانا اچھا ہے").score > 0.0);
    assert!(
        c.classify("کھانا اچھا نہیں ہے").score < 0.0,
        "نہیں after the word flips it"
    );
    let v = c.classify("آرڈر ابھی تک نہیں ملا");
    assert!(v.complaint && strs(&v.tags) == ["delivery"], "{v:?}");
    // Mixed with English in one post: both packs apply.
    let mixed = c.classify("delivery was late لیکن کھانا اچھا تھا");
    assert_eq!(mixed.rules.len(), 2, "{mixed:?}");
    assert!(
        Pack::parse("lang = \"xx\"\nnegators = [\" \"]")
            .unwrap_err()
            .contains("negators")
    );
    assert!(
        Pack::parse("lang = \"xx\"\n[[rule]]\nname = \"r\"\nweight = 1.0")
            .unwrap_err()
            .contains("rule[0]")
    );
}

fn strs(names: &[Name]) -> Vec<&str> {
    names.iter().map(|n| &**n).collect()
}

#[test]
fn regex_rules_run_behind_their_first_words_and_still_fire() {
    // Gate words with how many tokens before each one the match starts.
    let gates = |v: &[(&str, usize)]| {
        Some(
            v.iter()
                .map(|&(w, back)| (w.to_string(), back))
                .collect::<Vec<_>>(),
        )
    };
    let words = |v: &[&str]| gates(&v.iter().map(|&w| (w, 0)).collect::<Vec<_>>());
    assert_eq!(
        regex_gate("(?:day|week) [0-9]+ |been (?:two|3) days"),
        words(&["been", "day", "week"])
    );
    assert_eq!(
        regex_gate("refund(?:ed)? late"),
        words(&["refund", "refunded"])
    );
    assert_eq!(regex_gate("wait"), words(&["wait*"]));
    // A branch that starts with a number is gated by the words after the number, a token before the match.
    assert_eq!(
        regex_gate("(?:[0-9۰-۹]+|isang|apat na) (?:araw|lingg?o) na "),
        gates(&[
            ("apat", 0),
            ("araw", 1),
            ("isang", 0),
            ("linggo", 1),
            ("lingo", 1)
        ])
    );
    assert_eq!(
        regex_gate("[0-9]+ (?:day|week)s? "),
        gates(&[("day", 1), ("days", 1), ("week", 1), ("weeks", 1)])
    );
    // No word every match starts with: the regex runs on every text.
    assert_eq!(regex_gate(".*late"), None);
    assert_eq!(regex_gate("(?:[^ ]+ )?so slow "), None);

    let rule = |name: &str, regex: &str| RuleConfig {
        name: name.into(),
        words: vec![],
        phrases: vec![],
        regex: Some(regex.into()),
        weight: -2.0,
        tags: vec!["delay".into()],
    };
    let c = Classifier::new(
        &[
            rule("gated", "gate (?:[0-9]+) closed "),
            rule("open", "(?:[^ ]+ )?so slow "),
            rule("counted", "(?:[0-9]+|two) days late "),
        ],
        DEFAULT_COMPLAINT_AT,
    )
    .unwrap();
    let v = c.classify_in("Northwind gate 12 closed again, queue so slow", Some("en"));
    assert_eq!(strs(&v.rules)[..2], ["gated", "open"], "{v:?}");
    // The gate word alone is not a match.
    let v = c.classify_in("gate 12 opens at noon", Some("en"));
    assert!(!strs(&v.rules).contains(&"gated"), "{v:?}");
    // A number branch fires where the number is, found by the word after it; the word branch as before.
    for (text, hit) in [
        ("parcel came 12 days late again", Some("12 days late")),
        ("Parcel came two days late!", Some("two days late")),
        ("7 days late, 3 days early", Some("7 days late")),
        ("12 parcels, days late", None),
        ("days late 3", None),
    ] {
        let v = c.classify_in(text, Some("en"));
        let found = v.hits.iter().find(|h| h.rule == "counted");
        assert_eq!(found.map(|h| h.text.as_str()), hit, "{text}: {v:?}");
    }
    // The built-in English regex still hears "day 3 now".
    let v = builtin().classify("@SafarAir where is my bag? day 3 now");
    assert!(
        v.complaint && strs(&v.rules).contains(&"en.waited_time"),
        "{v:?}"
    );
}

#[test]
fn names_are_interned_once_and_verdicts_borrow_them() {
    let a = intern("en.waiting");
    let b = intern(&String::from("en.waiting"));
    assert!(
        std::ptr::eq(a, b),
        "one copy per name, however often a config is reloaded"
    );
    let v = builtin().classify_in("still waiting for my refund", Some("en"));
    assert!(v.rules.iter().all(|r| matches!(r, Cow::Borrowed(_))));
    assert!(v.hits.iter().all(|h| matches!(h.rule, Cow::Borrowed(_))));
    // Read back from JSON (the store), a verdict owns its names and compares equal.
    let back: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(back, v);
}
