//! Secrets stay secret: passwords and signing keys come from the environment, and never appear in output, logs,
//! errors or the API. Logs can be JSON, one object per line, naming the source.

mod common;
mod support;

use std::time::Duration;

use common::*;
use support::daemon::{Daemon, earshot};
use support::feeds::{rss, wait_until};
use support::http::{FeedServer, Reply};

const PASSWORD: &str = "pw-Zq8xK2mN";
const KEY: &str = "whsec_QmFzZTY0IGlzIG5vdCBlbmNyeXB0aW9uIQ==";

#[test]
fn secrets_never_show_in_output_logs_errors_or_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s()))])),
    );
    let dead_smtp = free_port();
    let config = write_config_with(
        dir.path(),
        "listen = \"127.0.0.1:0\"",
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla("1h", &[("0s", &["support", "lead"])]),
            email_notifier("support", dead_smtp)
                + "username = \"earshot\"\npassword_env = \"TEST_SMTP_PW\"\n",
            webhook_notifier("lead", "http://127.0.0.1:1/hook", false)
                + "secret_env = \"TEST_HOOK_KEY\"\n",
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let env = [("TEST_SMTP_PW", PASSWORD), ("TEST_HOOK_KEY", KEY)];
    let (code, out, err) = earshot(
        dir.path(),
        &["check-config", "--config", &config],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(signed)"));

    let d = Daemon::spawn(
        dir.path(),
        &["run", "--config", &config, "--log-format", "json"],
        &env,
    );
    assert!(
        d.wait_log("alert delivery failed", Duration::from_secs(10)),
        "{}",
        d.log()
    );
    let log = d.log();
    let addr = log
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split(['"', ' ']).next())
        .unwrap()
        .to_string();
    let api = http_get(&addr, "/api/cases");
    let (_, cases_out, _) = earshot(
        dir.path(),
        &["cases", "--json", "--config", &config],
        &[],
        None,
    );
    for (what, text) in [
        ("check-config", &out),
        ("log", &log),
        ("api", &api),
        ("cases", &cases_out),
    ] {
        assert!(
            !text.contains(PASSWORD) && !text.contains(&KEY[6..]),
            "{what} shows a secret:\n{text}"
        );
    }
    let stored = std::fs::read(state(dir.path()).join("earshot.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(PASSWORD),
        "the store holds a secret"
    );

    // JSON logs: one object per line; lines about a source name it.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["source"] == "press" && l["message"] == "stored new items"),
        "{log}"
    );

    // A wrong secret is a config error that names the key, not the value.
    let (code, _, err) = earshot(
        dir.path(),
        &["check-config", "--config", &config],
        &[
            ("TEST_SMTP_PW", PASSWORD),
            ("TEST_HOOK_KEY", "whsec_!!notbase64!!"),
        ],
        None,
    );
    assert_eq!(code, 78);
    assert!(
        err.contains("notify[1].secret_env") && !err.contains("notbase64"),
        "{err}"
    );
}

#[test]
fn cases_can_be_acknowledged_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s()))])),
    );
    let config = write_config_with(
        dir.path(),
        "listen = \"127.0.0.1:0\"",
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla("1h", &[("0s", &["journal"]), ("30m", &["journal"])]),
            file_notifier("journal", "alerts.jsonl"),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let d = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let alerts = dir.path().join("alerts.jsonl");
    assert!(
        wait_until(Duration::from_secs(10), || read_jsonl(&alerts).len() == 1),
        "{}",
        d.log()
    );
    let case_id = read_jsonl(&alerts)[0]["case_id"].as_i64().unwrap();
    let log = d.log();
    let addr = log
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();

    let reply = http_post(
        &addr,
        &format!("/api/cases/{case_id}/ack"),
        r#"{"note":"replied on the forum"}"#,
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("\"cancelled_tiers\":1") && reply.contains("journal"),
        "{reply}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || read_jsonl(&alerts).len() == 2),
        "{}",
        d.log()
    );
    let closed = &read_jsonl(&alerts)[1];
    assert_eq!(closed["event"], "case.closed");
    assert_eq!(closed["closure"]["note"], "replied on the forum");
    assert!(http_post(&addr, &format!("/api/cases/{case_id}/ack"), "").starts_with("HTTP/1.1 409"));
    assert!(http_post(&addr, "/api/cases/999/ack", "").starts_with("HTTP/1.1 404"));
}
