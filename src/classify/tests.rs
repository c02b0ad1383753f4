use super::*;

/// (text, complaint?) — realistic brand mentions, written for these tests.
const LABELLED: &[(&str, bool)] = &[
    // Complaints with angry words.
    ("WORST airline ever, never again 😡", true),
    (
        "Northwind lost my luggage and the desk staff were rude",
        true,
    ),
    (
        "@NorthwindHelp this is a joke. Third cancelled flight this month",
        true,
    ),
    ("Absolutely disgusting service from Northwind today", true),
    ("#NorthwindSucks #NeverAgain", true),
    ("I HATE this app, it crashes every time I open it", true),
    ("Northwind delayed my flight 5 hours. Unacceptable.", true),
    ("so frustrated with @NorthwindHelp right now!!!", true),
    ("the seats were fine but the staff were rude", true),
    ("Terrible. Just terrible. 👎", true),
    ("I will be contacting my lawyer about this", true),
    ("fed up with Northwind's hidden fees", true),
    // Complaints with no angry word.
    ("@NorthwindHelp where is my refund? been 2 weeks", true),
    ("@airline where is my bag? day 3 now", true),
    ("still waiting for my refund", true),
    ("my order never arrived and nobody answers the phone", true),
    ("charged twice for one ticket, want my money back", true),
    ("the app is not working again", true),
    ("Northwind lost my bag, please help. Thank you", true),
    (
        "Hi @NorthwindHelp, I haven't received my boarding pass email",
        true,
    ),
    ("been on hold for 2 hours with Northwind support", true),
    (
        "cancelled my flight without telling me, what's going on?",
        true,
    ),
    ("no reply to my three emails about order 4411", true),
    ("I can't log in to my Northwind account since Monday", true),
    ("switching to another airline after this", true),
    ("Thanks for nothing @NorthwindHelp", true),
    // Not complaints: thanks, praise, questions, news, negated negatives.
    ("Thanks @NorthwindHelp for the quick refund!", false),
    ("got my refund today, great service", false),
    ("what time does the Northwind store open on sunday?", false),
    ("Northwind announces new routes to Lisbon", false),
    ("Flight was on time and the crew were lovely 😊", false),
    ("not bad at all, Northwind", false),
    ("Is the Northwind lounge in T2 open on Sundays?", false),
    ("Northwind's quarterly results beat expectations", false),
    (
        "Big thanks to the Northwind crew for finding my bag!",
        false,
    ),
    ("no problems at all with my booking, smooth as ever", false),
    ("Does Northwind fly to Porto in winter?", false),
    ("Loved the new menu on my Northwind flight ❤️", false),
    (
        "Northwind support sorted my issue in ten minutes, impressed",
        false,
    ),
    ("Booked my holiday with Northwind today 🎉", false),
    ("", false),
    ("😀", false),
];

#[test]
fn labelled_english_mentions() {
    let c = Classifier::builtin();
    let wrong: Vec<String> = LABELLED
        .iter()
        .filter(|(t, want)| c.classify(t).complaint != *want)
        .map(|(t, want)| {
            let v = c.classify(t);
            format!(
                "{t:?}: want complaint={want}, got score {} rules {:?}",
                v.score, v.rules
            )
        })
        .collect();
    assert!(LABELLED.len() >= 40);
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        LABELLED.len(),
        wrong.join("\n")
    );
}

#[test]
fn sentiment_follows_the_score() {
    let c = Classifier::builtin();
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
    assert_eq!(c.classify("flight NW12 leaves at 9").lang, None);
    assert_eq!(c.classify("awful").lang.as_deref(), Some("en"));
}

#[test]
fn negation_intensifiers_caps_contrast_and_exclamations_move_the_score() {
    let c = Classifier::builtin();
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
    let v = Classifier::builtin().classify("Still waiting for my refund from @NorthwindHelp 😡");
    assert_eq!(v.rules, ["en.refund_request", "en.emoji_negative"]);
    assert_eq!(v.hits[0].text, "waiting for my refund");
    assert_eq!(v.hits[1].text, "😡");
    assert_eq!(v.tags, ["billing"]);
    assert!(v.complaint);
    let hashtag = Classifier::builtin().classify("#NorthwindSucks");
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
        (v.rules.as_slice(), v.tags.as_slice(), v.complaint),
        (
            &["northwind.lounge".to_string()][..],
            &["lounge".to_string()][..],
            true
        )
    );
    // The replaced built-in no longer knows "terrible", and "dreadful" weighs what the config says.
    assert!(c.classify("terrible").rules.is_empty());
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
    Classifier::builtin();
}

#[test]
fn odd_input_never_panics() {
    let c = Classifier::builtin();
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
