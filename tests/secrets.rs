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

/// Platform credentials (a Mastodon token, a Bluesky app password and its session tokens, Reddit's app secret,
/// password and bearer token, a Discourse API key) are sent where they belong and shown nowhere else.
#[test]
fn platform_credentials_reach_the_platform_and_nothing_else() {
    use support::api::{Answer, ApiServer, payload};
    const MASTODON_TOKEN: &str = "masto-tok-4Kd9xQ";
    const BSKY_PASSWORD: &str = "bsky-pw-7Hq2-Lm3z";
    const REDDIT_SECRET: &str = "reddit-sec-Zp5Wc";
    const REDDIT_PASSWORD: &str = "reddit-pw-Yt6Ub";
    const DISCOURSE_KEY: &str = "disc-key-Vb8Rn1";
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir().unwrap();

    let mastodon = ApiServer::start();
    mastodon.get("/api/v1/timelines/tag/Northwind", Answer::json("[]"));
    mastodon.get(
        "/api/v2/search",
        Answer::json(payload("mastodon", "search_northwind.json", now)),
    );
    mastodon.get(
        "/api/v1/statuses/113400000000000120/context",
        Answer::status(401, r#"{"error":"The access token is invalid"}"#),
    );
    let bluesky = ApiServer::start();
    bluesky.route(
        "POST",
        "/xrpc/com.atproto.server.createSession",
        &[],
        vec![Answer::json(payload("bluesky", "create_session.json", now))],
    );
    bluesky.get(
        "/xrpc/app.bsky.feed.searchPosts",
        Answer::json(payload("bluesky", "search_page1.json", now)),
    );
    let session: serde_json::Value =
        serde_json::from_str(&payload("bluesky", "create_session.json", now)).unwrap();
    let bsky_access = session["accessJwt"].as_str().unwrap().to_string();
    let reddit = ApiServer::start();
    reddit.route(
        "POST",
        "/api/v1/access_token",
        &[],
        vec![Answer::json(payload("reddit", "token.json", now))],
    );
    reddit.get(
        "/r/northwind/new",
        Answer::json(payload("reddit", "new_page1.json", now)),
    );
    reddit.get(
        "/r/northwind/comments",
        Answer::json(payload("reddit", "comments_page0.json", now)),
    );
    let token: serde_json::Value =
        serde_json::from_str(&payload("reddit", "token.json", now)).unwrap();
    let reddit_access = token["access_token"].as_str().unwrap().to_string();
    let discourse = ApiServer::start();
    discourse.get(
        "/posts.json",
        Answer::json(payload("discourse", "latest_first.json", now)),
    );

    let source = |name: &str, kind: &str, server: &ApiServer, keys: &str| {
        format!(
            "\n[[source]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"3s\"\n{keys}\n",
            server.base()
        )
    };
    let config = write_config_with(
        dir.path(),
        "listen = \"127.0.0.1:0\"",
        &[
            source("masto", "mastodon", &mastodon, "query = \"Northwind\"\ntoken_env = \"T_MASTO\""),
            source(
                "bsky",
                "bluesky",
                &bluesky,
                "query = \"Northwind\"\nhandle = \"monitor.bsky.social\"\napp_password_env = \"T_BSKY\"",
            ),
            source(
                "reddit",
                "reddit",
                &reddit,
                &format!(
                    "subreddits = [\"northwind\"]\nclient_id = \"nw-app\"\nclient_secret_env = \"T_RSEC\"\nusername = \"NorthwindBot\"\n\
                     password_env = \"T_RPW\"\nauth_url = \"{}\"",
                    reddit.base()
                ),
            ),
            source("forum", "discourse", &discourse, "api_key_env = \"T_DISC\"\napi_username = \"earshot-bot\""),
            sla("1h", &[("0s", &["log"])]),
            file_notifier("log", "alerts.jsonl"),
        ]
        .concat(),
    );
    let env = [
        ("T_MASTO", MASTODON_TOKEN),
        ("T_BSKY", BSKY_PASSWORD),
        ("T_RSEC", REDDIT_SECRET),
        ("T_RPW", REDDIT_PASSWORD),
        ("T_DISC", DISCOURSE_KEY),
    ];
    let (code, checked, err) = earshot(
        dir.path(),
        &["check-config", "--config", &config],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let d = Daemon::spawn(dir.path(), &["run", "--config", &config], &env);
    let used = wait_until(Duration::from_secs(15), || {
        mastodon.hits("/api/v1/statuses/113400000000000120/context") > 0
            && bluesky.hits("/xrpc/app.bsky.feed.searchPosts") > 0
            && reddit.hits("/r/northwind/comments") > 0
            && discourse.hits("/posts.json") > 0
    });
    assert!(used, "every platform was called; log:\n{}", d.log());
    // Each credential went where it belongs.
    let header = |s: &ApiServer, path: &str, name: &str| {
        s.requests(path)[0]
            .header(name)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        header(&mastodon, "/api/v2/search", "authorization"),
        format!("Bearer {MASTODON_TOKEN}")
    );
    assert!(
        bluesky.requests("/xrpc/com.atproto.server.createSession")[0]
            .body_text()
            .contains(BSKY_PASSWORD)
    );
    assert_eq!(
        header(&bluesky, "/xrpc/app.bsky.feed.searchPosts", "authorization"),
        format!("Bearer {bsky_access}")
    );
    let login = reddit.requests("/api/v1/access_token")[0].clone();
    assert!(login.body_text().contains(REDDIT_PASSWORD));
    assert!(
        login
            .header("authorization")
            .unwrap_or_default()
            .starts_with("Basic ")
    );
    assert_eq!(
        header(&reddit, "/r/northwind/new", "authorization").to_lowercase(),
        format!("bearer {reddit_access}").to_lowercase()
    );
    assert_eq!(header(&discourse, "/posts.json", "api-key"), DISCOURSE_KEY);
    // And nowhere else: not in check-config, the (debug-level) log, the API, `earshot cases` or the store.
    let log = d.log();
    assert!(
        log.contains("source=masto") && log.contains("HTTP 401"),
        "the refused reply check is logged:\n{log}"
    );
    let addr = log
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split(['"', ' ', '\n']).next())
        .unwrap()
        .to_string();
    let api = http_get(&addr, "/api/cases");
    let (_, cases_out, _) = earshot(
        dir.path(),
        &["cases", "--json", "--config", &config],
        &[],
        None,
    );
    // The WAL holds what is not yet checkpointed into the main file.
    let stored: String = ["earshot.db", "earshot.db-wal"]
        .iter()
        .map(|f| {
            String::from_utf8_lossy(&std::fs::read(state(dir.path()).join(f)).unwrap_or_default())
                .into_owned()
        })
        .collect();
    let alerts = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap_or_default();
    for (what, text) in [
        ("check-config", &checked),
        ("log", &log),
        ("api", &api),
        ("cases", &cases_out),
        ("store", &stored),
        ("alerts", &alerts),
    ] {
        for secret in [
            MASTODON_TOKEN,
            BSKY_PASSWORD,
            bsky_access.as_str(),
            REDDIT_SECRET,
            REDDIT_PASSWORD,
            reddit_access.as_str(),
            DISCOURSE_KEY,
        ] {
            assert!(
                !text.contains(secret),
                "{what} shows a secret ({secret}):\n{text}"
            );
        }
    }
}

/// A private feed's URL (Reddit's and Google Alerts' carry a token) comes from a file or the environment and is
/// shown by its host alone.
#[test]
fn a_private_feed_url_is_a_secret_too() {
    const TOKEN: &str = "feedtok-8Jx2Qw";
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/private.rss",
        Reply::feed_xml(rss(&[complaint("p1", Some(now_s()))])),
    );
    let url = format!(
        "{}?feed={TOKEN}&user=NorthwindBot",
        feeds.url("/private.rss")
    );
    std::fs::write(dir.path().join("feed-url"), format!("{url}\n")).unwrap();
    let config = write_config(
        dir.path(),
        &[
            "\n[[source]]\nname = \"reddit-private\"\nkind = \"feed\"\nurl_file = \"feed-url\"\nevery = \"1s\"\n",
            &sla("1h", &[("0s", &["log"])]),
            &file_notifier("log", "alerts.jsonl"),
        ]
        .concat(),
    );
    let (code, out, err) = earshot(
        dir.path(),
        &["check-config", "--config", &config],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("private feed at http://127.0.0.1/…"), "{out}");
    let d = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let alerts = dir.path().join("alerts.jsonl");
    assert!(
        wait_until(Duration::from_secs(10), || !read_jsonl(&alerts).is_empty()),
        "the private feed was read; log:\n{}",
        d.log()
    );
    assert!(
        !d.log().contains(TOKEN) && !out.contains(TOKEN),
        "{}",
        d.log()
    );

    // Both a URL and a private one is a config error that shows neither.
    let both = write_config(
        dir.path(),
        &format!(
            "\n[[source]]\nname = \"x\"\nkind = \"feed\"\nurl = \"{}\"\nurl_file = \"feed-url\"\n",
            feeds.url("/a.rss")
        ),
    );
    let (code, _, err) = earshot(dir.path(), &["check-config", "--config", &both], &[], None);
    assert_eq!(code, 78);
    assert!(
        err.contains("source[0].url: give `url`, or `url_env`") && !err.contains(TOKEN),
        "{err}"
    );
}
