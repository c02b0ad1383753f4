use super::*;
use std::path::Path;

/// The public contract from the issue, verbatim in its keys.
const CONTRACT: &str = r##"
[daemon]
state_dir = "state"
listen = "127.0.0.1:8787"

[[brand]]
name = "Northwind"
terms = ["Northwind", "@NorthwindHelp", "#Northwind", "نارتھ ونڈ"]
exclude = ["northwind trader"]
accounts = ["NorthwindHelp"]

[[source]]
name = "press"
kind = "feed"
url = "http://127.0.0.1:9000/feed.xml"
every = "30s"

[sla]
reply_within = "60m"

[[sla.tier]]
after = "0s"
notify = ["support"]
[[sla.tier]]
after = "45m"
notify = ["support", "lead"]
[[sla.tier]]
after = "60m"
notify = ["lead"]

[[notify]]
name = "support"
kind = "email"
smtp = "smtp://127.0.0.1:2525"
from = "earshot@example.com"
to = ["support@example.com"]
username = "earshot"
password_env = "EARSHOT_TEST_CFG_SMTP_PASSWORD"

[[notify]]
name = "lead"
kind = "webhook"
url = "http://127.0.0.1:9001/hook"
secret_env = "EARSHOT_TEST_CFG_WEBHOOK_SECRET"

[[notify]]
name = "journal"
kind = "file"
path = "state/alerts.jsonl"
"##;

fn set_secrets() {
    // SAFETY: these variables are only read by tests in this module, which all set the same values.
    unsafe {
        std::env::set_var("EARSHOT_TEST_CFG_SMTP_PASSWORD", "pw");
        std::env::set_var(
            "EARSHOT_TEST_CFG_WEBHOOK_SECRET",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        );
    }
}

#[test]
fn the_public_contract_parses_into_typed_values() {
    set_secrets();
    let c = parse(Path::new("/etc/earshot/earshot.toml"), CONTRACT).expect("valid");
    assert_eq!(c.daemon.state_dir, Path::new("/etc/earshot/state"));
    assert_eq!(c.daemon.listen, Some("127.0.0.1:8787".parse().unwrap()));
    assert_eq!(c.brands[0].accounts, ["northwindhelp"]);
    assert_eq!(c.sources[0].every, Duration::from_secs(30));
    assert_eq!(
        c.sources[0].kind.describe(),
        "http://127.0.0.1:9000/feed.xml"
    );
    let events: Vec<_> = c.sla.tiers.iter().map(|t| t.event).collect();
    assert_eq!(events, [Event::Opened, Event::Warning, Event::Breached]);
    let kinds: Vec<_> = c.notifiers.iter().map(|n| n.kind.describe()).collect();
    assert!(
        kinds[0].starts_with("email via 127.0.0.1:2525"),
        "{kinds:?}"
    );
    assert!(kinds[1].ends_with("(signed)"), "{kinds:?}");
    assert!(
        kinds[2].ends_with("/etc/earshot/state/alerts.jsonl"),
        "{kinds:?}"
    );
    // The secret is nowhere in the debug form of the whole config.
    assert!(!format!("{c:?}").contains("C2FVsBQ"));
}

#[test]
fn every_problem_is_reported_at_once_with_line_and_key() {
    set_secrets();
    let text = CONTRACT
        .replace(
            "every = \"30s\"",
            "intervall = \"30s\"\nevery = \"half a minute\"",
        )
        .replace("notify = [\"lead\"]", "notify = [\"lead\", \"pager\"]")
        .replace(
            "password_env = \"EARSHOT_TEST_CFG_SMTP_PASSWORD\"",
            "password_env = \"EARSHOT_TEST_UNSET_VAR\"",
        )
        + "\n[[source]]\nname = \"press\"\nkind = \"feed\"\nurl = \"ftp://x\"\n";
    let err = parse(Path::new("bad.toml"), &text).unwrap_err();
    let shown = err.to_string();
    let expect = [
        ("source[0].intervall", "unknown key `intervall`"),
        ("source[0].every", "invalid duration \"half a minute\""),
        ("sla.tier[2].notify[1]", "unknown notifier \"pager\""),
        (
            "notify[0].password_env",
            "EARSHOT_TEST_UNSET_VAR is not set",
        ),
        ("source[1].name", "duplicate source name \"press\""),
        ("source[1].url", "unsupported scheme \"ftp\""),
    ];
    for (path, msg) in expect {
        let p = err
            .problems
            .iter()
            .find(|p| p.problem.path == path)
            .unwrap_or_else(|| panic!("no {path} in:\n{shown}"));
        assert!(
            p.problem.message.contains(msg),
            "{path}: {}",
            p.problem.message
        );
        assert!(p.line > 0, "{path} has no line:\n{shown}");
        let line_text = text.lines().nth(p.line - 1).unwrap();
        let key = path.rsplit('.').next().unwrap().split('[').next().unwrap();
        assert!(
            line_text.contains(key) || path.ends_with(']'),
            "{path} points at line {}: {line_text}",
            p.line
        );
    }
    assert_eq!(err.problems.len(), expect.len(), "{shown}");
    // Someone who writes a secret inline is told where secrets go.
    let inline = CONTRACT.replace(
        "password_env = \"EARSHOT_TEST_CFG_SMTP_PASSWORD\"",
        "password = \"hunter2\"",
    );
    let err = parse(Path::new("c.toml"), &inline).unwrap_err().to_string();
    assert!(
        err.contains("notify[0].password: unknown key") && err.contains("`password_env`"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(shown.contains("bad.toml:"), "{shown}");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = parse(
        Path::new("c.toml"),
        "[daemon]\nstate_dir = \"x\nlisten = 3\n",
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].line, 2, "{err}");
    let err = parse(
        Path::new("c.toml"),
        "[[source]]\nname = \"a\"\nevery = 30\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("c.toml:3:9: source[0].every: invalid type"),
        "{err}"
    );
}

#[test]
fn missing_pieces_are_named() {
    let err = parse(
        Path::new("c.toml"),
        "[[brand]]\nterms=[]\n[[source]]\nkind=\"gopher\"\n[[notify]]\nname=\"x\"\nkind=\"email\"\n[[sla.tier]]\nnotify=[\"x\"]\n",
    )
    .unwrap_err();
    let paths: Vec<&str> = err
        .problems
        .iter()
        .map(|p| p.problem.path.as_str())
        .collect();
    for want in [
        "brand[0].name",
        "brand[0].terms",
        "source[0].name",
        "source[0].kind",
        "notify[0].smtp",
        "notify[0].from",
        "notify[0].to",
        "sla.tier[0]",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}\n{err}");
    }
}

#[test]
fn defaults_and_warnings() {
    let c = parse(Path::new("/x/c.toml"), "[[brand]]\nname=\"B\"\nterms=[\"b\"]\n[[source]]\nname=\"s\"\nkind=\"feed\"\nurl=\"file://f.xml\"\nevery=\"2h\"\n").unwrap();
    assert_eq!(c.daemon.state_dir, Path::new("/x/state"));
    assert_eq!(c.sources[0].timeout, Duration::from_secs(30));
    assert_eq!(c.sources[0].max_body, 10 << 20);
    assert_eq!(c.sla.reply_within, Duration::from_secs(3600));
    assert_eq!(c.delivery.retry_max, Duration::from_secs(60));
    assert_eq!(c.sources[0].kind.describe(), "file:///x/f.xml");
    let warned: Vec<&str> = c.warnings.iter().map(|w| w.problem.path.as_str()).collect();
    assert!(
        warned.contains(&"sla.tier") && warned.contains(&"source[0].every"),
        "{warned:?}"
    );
}

#[test]
fn a_brand_without_accounts_is_warned_about_when_replies_could_close_cases() {
    let base = "[[brand]]\nname=\"B\"\nterms=[\"b\"]\n[[source]]\nname=\"s\"\nkind=\"KIND\"\n";
    let feed = parse(
        Path::new("/x/c.toml"),
        &base
            .replace("KIND", "feed")
            .replace("[[source]]", "[[source]]\nurl=\"file://f.xml\""),
    )
    .unwrap();
    let paths =
        |c: &Config| -> Vec<String> { c.warnings.iter().map(|w| w.problem.path.clone()).collect() };
    assert!(
        !paths(&feed).contains(&"brand[0].accounts".to_string()),
        "feeds show no replies"
    );
    let hn = parse(
        Path::new("/x/c.toml"),
        &format!("{}query=\"b\"\n", base.replace("KIND", "hackernews")),
    )
    .unwrap();
    assert!(
        paths(&hn).contains(&"brand[0].accounts".to_string()),
        "{:?}",
        paths(&hn)
    );
}
