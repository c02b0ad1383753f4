//! Several platform kinds in one daemon: a platform that refuses us, throttles us, hangs or breaks never delays
//! the others, and each failure is reported by name (a refusal once, at ERROR). The good sources are Hacker News,
//! Mastodon and Lemmy; the failing ones are Bluesky (login refused), Reddit (token endpoint hangs), Discourse (500),
//! and Hacker News refused, throttled, hanging and broken.

mod common;
mod support;

use std::time::Duration;

use chrono::Utc;

use common::*;
use support::api::{Answer, ApiServer, payload};
use support::daemon::Daemon;
use support::feeds::wait_until;

const HN_SEARCH: &str = "/api/v1/search_by_date";

fn block(name: &str, kind: &str, server: &ApiServer, keys: &str) -> String {
    format!(
        "\n[[source]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"20s\"\n{keys}\n",
        server.base()
    )
}

fn hn(name: &str, server: &ApiServer) -> String {
    block(name, "hackernews", server, "query = \"Northwind\"")
}

#[test]
fn a_failing_platform_does_not_delay_the_others() {
    let now = Utc::now();
    let dir = tempfile::tempdir().unwrap();

    let good = ApiServer::start();
    good.get(
        HN_SEARCH,
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
    let mastodon = ApiServer::start();
    mastodon.get(
        "/api/v1/timelines/tag/Northwind",
        Answer::json(payload("mastodon", "tag_northwind_first.json", now)),
    );
    let lemmy = ApiServer::start();
    lemmy.get(
        "/api/v3/search",
        Answer::json(payload("lemmy", "search_page1.json", now)),
    );
    lemmy.get(
        "/api/v3/site",
        Answer::json(payload("lemmy", "site.json", now)),
    );

    let refused = ApiServer::start();
    refused.get(
        HN_SEARCH,
        Answer::status(401, r#"{"message":"Invalid credentials","status":401}"#),
    );
    let throttled = ApiServer::start();
    throttled.get(
        HN_SEARCH,
        Answer::status(429, r#"{"message":"Too many requests"}"#)
            .header("X-RateLimit-Reset", "600"),
    );
    let hanging = ApiServer::start();
    hanging.get(
        HN_SEARCH,
        Answer::json(payload("hackernews", "search_incremental.json", now))
            .delayed(Duration::from_secs(30)),
    );
    let broken = ApiServer::start();
    broken.get(HN_SEARCH, Answer::json("{\"hits\": [ {\"objectID\": "));
    let bluesky = ApiServer::start();
    bluesky.route(
        "POST",
        "/xrpc/com.atproto.server.createSession",
        &[],
        vec![Answer::status(
            401,
            payload("bluesky", "error_authentication_required.json", now),
        )],
    );
    std::fs::write(dir.path().join("bsky-password"), "wrong-app-password\n").unwrap();
    let reddit = ApiServer::start();
    reddit.route(
        "POST",
        "/api/v1/access_token",
        &[],
        vec![Answer::json(payload("reddit", "token.json", now)).delayed(Duration::from_secs(30))],
    );
    std::fs::write(dir.path().join("reddit-secret"), "s3cret\n").unwrap();
    std::fs::write(dir.path().join("reddit-password"), "hunter2\n").unwrap();
    let discourse = ApiServer::start();
    discourse.get(
        "/posts.json",
        Answer::status(500, "<h1>Internal Server Error</h1>"),
    );

    let body = [
        hn("hn-refused", &refused),
        hn("hn-throttled", &throttled),
        hn("hn-hanging", &hanging),
        hn("hn-broken", &broken),
        block(
            "bsky-refused",
            "bluesky",
            &bluesky,
            "query = \"Northwind\"\nhandle = \"monitor.bsky.social\"\napp_password_file = \"bsky-password\"",
        ),
        block(
            "reddit-hanging",
            "reddit",
            &reddit,
            &format!(
                "subreddits = [\"northwind\"]\nclient_id = \"nw\"\nclient_secret_file = \"reddit-secret\"\n\
                 username = \"NorthwindBot\"\npassword_file = \"reddit-password\"\nauth_url = \"{}\"",
                reddit.base()
            ),
        ),
        block("forum-down", "discourse", &discourse, ""),
        hn("hn-good", &good),
        block("masto-good", "mastodon", &mastodon, "tags = [\"Northwind\"]"),
        block("lemmy-good", "lemmy", &lemmy, "query = \"Northwind\""),
        sla("1h", &[("0s", &["log"])]),
        file_notifier("log", "alerts.jsonl"),
    ]
    .concat();
    let config = write_config(dir.path(), &body);
    let daemon = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let alerts = dir.path().join("alerts.jsonl");
    let heard = |source: &str| {
        read_jsonl(&alerts)
            .iter()
            .any(|a| a["event"] == "complaint.opened" && a["source"] == source)
    };
    let all_heard = wait_until(Duration::from_secs(15), || {
        ["hn-good", "masto-good", "lemmy-good"]
            .iter()
            .all(|s| heard(s))
    });
    assert!(
        all_heard,
        "every good source is heard; alerts: {:?}\nlog:\n{}",
        read_jsonl(&alerts),
        daemon.log()
    );
    assert_eq!(
        hanging.hits(HN_SEARCH),
        1,
        "the hanging source is still waiting for its first answer while the good ones alerted"
    );
    assert_eq!(
        reddit.hits("/api/v1/access_token"),
        1,
        "and so is the hanging token endpoint"
    );
    // Give the failing sources a few more poll intervals to show how they back off.
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log();
    for (source, status) in [("hn-refused", "HTTP 401"), ("bsky-refused", "HTTP 401")] {
        let refusals: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("source={source}")) && l.contains("ERROR"))
            .collect();
        assert_eq!(
            refusals.len(),
            1,
            "a refusal is reported once, not once a poll:\n{log}"
        );
        assert!(refusals[0].contains(status), "{}", refusals[0]);
    }
    assert!(
        !log.contains("wrong-app-password") && !log.contains("hunter2"),
        "no secret is logged"
    );
    assert_eq!(
        refused.hits(HN_SEARCH),
        1,
        "refused credentials are not retried every second"
    );
    assert_eq!(
        bluesky.hits("/xrpc/com.atproto.server.createSession"),
        1,
        "a refused login is not retried every second (logins are limited per account)"
    );
    assert_eq!(
        throttled.hits(HN_SEARCH),
        1,
        "the host's reset time is honoured"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("source=hn-broken") && l.contains("cannot parse the response")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("source=forum-down") && l.contains("HTTP 500")),
        "{log}"
    );
    for (server, path) in [(&broken, HN_SEARCH), (&discourse, "/posts.json")] {
        let n = server.hits(path);
        assert!(n <= 3, "a failing source backs off: {n} requests to {path}");
    }
    assert!(
        good.hits(HN_SEARCH) >= 3,
        "the good source kept its schedule"
    );
}
