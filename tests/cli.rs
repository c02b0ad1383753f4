//! The commands a support team and a sysadmin type: check-config, classify, and exit codes.

mod common;
mod support;

use common::*;
use support::daemon::earshot;

fn manifest(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    for c in [
        "config/earshot.toml",
        "config/demo.toml",
        "config/earshot.systemd.toml",
    ] {
        let (code, out, err) = earshot(
            dir.path(),
            &["check-config", "--config", &manifest(c)],
            &[],
            None,
        );
        assert_eq!(code, 0, "{c}: {err}");
        assert!(
            out.contains("is valid") && out.contains("sources:") && out.contains("Northwind"),
            "{c}: {out}"
        );
    }
}

#[test]
fn a_bad_config_lists_every_problem_with_file_line_and_key_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", "http://127.0.0.1:1/feed.xml", "30s")
                .replace("every", "intervall"),
            feed_source("press", "http://127.0.0.1:1/other.xml", "soon"),
            sla("60m", &[("0s", &["support"]), ("45m", &["pager"])]),
            email_notifier("support", 2525)
                + "username = \"u\"\npassword_env = \"EARSHOT_TEST_NOT_SET\"\n",
        ]
        .concat(),
    );
    for cmd in ["check-config", "run"] {
        let (code, _out, err) = earshot(dir.path(), &[cmd, "--config", &config], &[], None);
        assert_eq!(code, 78, "{cmd}: {err}");
        for want in [
            "source[0].intervall: unknown key `intervall`",
            "source[1].every: invalid duration \"soon\"",
            "source[1].name: duplicate source name \"press\"",
            "sla.tier[1].notify[0]: unknown notifier \"pager\"",
            "notify[0].password_env: environment variable EARSHOT_TEST_NOT_SET is not set",
        ] {
            let line = err
                .lines()
                .find(|l| l.contains(want))
                .unwrap_or_else(|| panic!("{cmd}: no {want:?} in\n{err}"));
            assert!(
                line.starts_with(&format!("{config}:")),
                "no file:line in {line:?}"
            );
            let lineno: usize = line[config.len() + 1..]
                .split(':')
                .next()
                .unwrap()
                .parse()
                .expect("line number");
            assert!(lineno > 1);
        }
    }
    // With the secret set, only the other four remain.
    let (code, _, err) = earshot(
        dir.path(),
        &["check-config", "--config", &config],
        &[("EARSHOT_TEST_NOT_SET", "pw")],
        None,
    );
    assert_eq!(code, 78);
    assert!(err.contains("4 problems"), "{err}");
    assert!(!err.contains("pw\n"));
}

#[test]
fn classify_explains_itself_in_text_and_json_and_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = earshot(
        dir.path(),
        &[
            "classify",
            "--json",
            "@NorthwindHelp where is my bag? day 3 now",
        ],
        &[],
        None,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["complaint"], true, "{v}");
    for key in ["sentiment", "score", "complaint", "lang", "tags", "rules"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert!(!v["rules"].as_array().unwrap().is_empty());

    let input = "Thanks @NorthwindHelp for the quick refund!\nWORST airline ever, never again 😡\n\nwhat time does the store open?\n";
    let (code, out, _) = earshot(dir.path(), &["classify", "--json", "-"], &[], Some(input));
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "one object per input line: {out}");
    let complaints: Vec<bool> = lines
        .iter()
        .map(|l| l["complaint"].as_bool().unwrap())
        .collect();
    assert_eq!(complaints, [false, true, false, false]);
    assert_eq!(lines[1]["sentiment"], "negative");

    let (code, out, _) = earshot(
        dir.path(),
        &["classify", "still waiting for my refund"],
        &[],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("COMPLAINT"), "{out}");
}

#[test]
fn config_rules_add_to_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "\n[[classify.rule]]\nname = \"northwind.lounge\"\nphrases = [\"lounge was closed\"]\nweight = -3.0\ntags = [\"lounge\"]\n",
    );
    let (code, out, err) = earshot(
        dir.path(),
        &[
            "classify",
            "--json",
            "--config",
            &config,
            "the lounge was closed again",
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "northwind.lounge"),
        "{v}"
    );
    assert!(
        v["tags"].as_array().unwrap().iter().any(|t| t == "lounge"),
        "{v}"
    );
    assert_eq!(v["complaint"], true);

    let bad = write_config(
        dir.path(),
        "\n[[classify.rule]]\nname = \"x\"\nregex = \"(unclosed\"\nweight = -1.0\n",
    );
    let (code, _, err) = earshot(
        dir.path(),
        &["classify", "--config", &bad, "text"],
        &[],
        None,
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("classify.rule[0].regex"), "{err}");
}

#[test]
fn usage_errors_exit_2_and_ack_of_a_missing_case_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, _) = earshot(dir.path(), &["frobnicate"], &[], None);
    assert_eq!(code, 2);
    let config = write_config(dir.path(), "");
    let (code, _, err) = earshot(dir.path(), &["ack", "42", "--config", &config], &[], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("no store at") && err.contains("earshot run"),
        "{err}"
    );
    let mut d = support::daemon::Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    assert!(d.wait_log("earshot starting", std::time::Duration::from_secs(5)));
    d.sigterm();
    assert!(
        d.wait_exit(std::time::Duration::from_secs(5))
            .is_some_and(|s| s.success())
    );
    let (code, _, err) = earshot(dir.path(), &["ack", "42", "--config", &config], &[], None);
    assert_eq!(code, 1);
    assert!(err.contains("no case 42"), "{err}");
}
