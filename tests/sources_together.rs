//! Several platform kinds in one daemon: a platform that refuses us, throttles us, hangs or breaks never delays
//! the others, and each failure is reported by name (a refusal once, at ERROR).

mod common;
mod support;

use std::time::Duration;

use chrono::Utc;

use common::*;
use support::api::{Answer, ApiServer, payload};
use support::daemon::Daemon;
use support::feeds::wait_until;

fn hn(name: &str, server: &ApiServer) -> String {
    format!(
        "\n[[source]]\nname = \"{name}\"\nkind = \"hackernews\"\nquery = \"Northwind\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"20s\"\n",
        server.base()
    )
}

#[test]
fn a_failing_platform_does_not_delay_the_others() {
    let now = Utc::now();
    let good = ApiServer::start();
    good.get(
        "/api/v1/search_by_date",
        Answer::json(payload("hackernews", "search_incremental.json", now)),
    );
    good.get(
        "/api/v1/items/41000123",
        Answer::json(payload("hackernews", "item_41000123_unanswered.json", now)),
    );
    good.get(
        "/api/v1/items/41000200",
        Answer::json(r#"{"id":41000200,"children":[]}"#),
    );
    let refused = ApiServer::start();
    refused.get(
        "/api/v1/search_by_date",
        Answer::status(401, r#"{"message":"Invalid credentials","status":401}"#),
    );
    let throttled = ApiServer::start();
    throttled.get(
        "/api/v1/search_by_date",
        Answer::status(429, r#"{"message":"Too many requests"}"#)
            .header("X-RateLimit-Reset", "600"),
    );
    let hanging = ApiServer::start();
    hanging.get(
        "/api/v1/search_by_date",
        Answer::json(payload("hackernews", "search_incremental.json", now))
            .delayed(Duration::from_secs(30)),
    );
    let broken = ApiServer::start();
    broken.get(
        "/api/v1/search_by_date",
        Answer::json("{\"hits\": [ {\"objectID\": "),
    );

    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}{}{}{}{}{}",
        hn("hn-refused", &refused),
        hn("hn-throttled", &throttled),
        hn("hn-hanging", &hanging),
        hn("hn-broken", &broken),
        hn("hn-good", &good),
        sla("1h", &[("0s", &["log"])]),
        file_notifier("log", "alerts.jsonl"),
    );
    let config = write_config(dir.path(), &body);
    let daemon = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let alerts = dir.path().join("alerts.jsonl");
    let heard = wait_until(Duration::from_secs(15), || {
        read_jsonl(&alerts)
            .iter()
            .any(|a| a["event"] == "complaint.opened" && a["source"] == "hn-good")
    });
    assert!(
        heard,
        "the good source was not heard; log:\n{}",
        daemon.log()
    );
    assert_eq!(
        hanging.hits("/api/v1/search_by_date"),
        1,
        "the hanging source is still waiting for its first answer while the good one alerted"
    );
    // Give the failing sources a few more poll intervals to show how they back off.
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hn-refused") && l.contains("ERROR"))
        .collect();
    assert_eq!(
        refusals.len(),
        1,
        "a refusal is reported once, not once a poll:\n{log}"
    );
    assert!(refusals[0].contains("HTTP 401"), "{}", refusals[0]);
    assert_eq!(
        refused.hits("/api/v1/search_by_date"),
        1,
        "refused credentials are not retried every second"
    );
    assert_eq!(
        throttled.hits("/api/v1/search_by_date"),
        1,
        "the host's reset time is honoured"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("hn-broken") && l.contains("cannot parse the response")),
        "{log}"
    );
    assert!(
        broken.hits("/api/v1/search_by_date") <= 3,
        "a broken source backs off: {} requests",
        broken.hits("/api/v1/search_by_date")
    );
    assert!(
        good.hits("/api/v1/search_by_date") >= 3,
        "the good source kept its schedule"
    );
}
