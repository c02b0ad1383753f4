//! The `hackernews` source against a real HTTP server on loopback serving recorded Algolia payloads (shapes as
//! the HN Search API sends them; texts and ids our own): first poll with pagination, the incremental cursor, a
//! 429 with a reset header, a refusal named once, and the brand's reply deep in the thread closing the case.

mod common;
mod support;

use std::time::Duration;

use chrono::Utc;

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, payload};

const SEARCH: &str = "/api/v1/search_by_date";

/// Algolia's answer to a poll since the cursor: two comments, timed from `now`.
fn serve_incremental_search(server: &ApiServer, now: chrono::DateTime<Utc>) {
    server.get(
        SEARCH,
        Answer::json(payload("hackernews", "search_incremental.json", now)),
    );
}

fn source(server: &ApiServer) -> String {
    format!(
        "\n[[source]]\nname = \"hn\"\nkind = \"hackernews\"\nquery = \"Northwind\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"3s\"\n",
        server.base()
    )
}

#[tokio::test]
async fn first_poll_pages_through_results_and_keeps_the_newest_time() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.route(
        "GET",
        SEARCH,
        &[("page", "0")],
        vec![Answer::json(payload(
            "hackernews",
            "search_page0.json",
            now,
        ))],
    );
    server.route(
        "GET",
        SEARCH,
        &[("page", "1")],
        vec![Answer::json(payload(
            "hackernews",
            "search_page1.json",
            now,
        ))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["41000123", "41000050", "40999077"],
        "both pages, in order"
    );
    let first = server.requests(SEARCH);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].param("query"), Some("Northwind"));
    assert_eq!(first[0].param("tags"), Some("(story,comment)"));
    assert_eq!(first[0].param("numericFilters"), None, "no cursor yet");

    let complaint = &polled.mentions[0];
    assert_eq!(
        complaint.text,
        "Northwind lost my bag on a direct flight and support hasn't answered in three days. Worst airline I've dealt \
         with & I'm still waiting for a refund.\nAnyone know a human contact there?",
        "HTML stripped, entities decoded"
    );
    assert_eq!(complaint.author.as_deref(), Some("kestrel_dev"));
    assert_eq!(
        complaint.url.as_deref(),
        Some("https://news.ycombinator.com/item?id=41000123")
    );
    assert_eq!(
        complaint.published_at.unwrap().timestamp(),
        now.timestamp() - 120
    );
    assert_eq!(complaint.thread.as_deref(), Some("41000123"));
    let story = &polled.mentions[1];
    assert!(
        story.text.starts_with("Northwind Air open-sources"),
        "{}",
        story.text
    );
    assert_eq!(
        polled.cursor.position,
        Some((now.timestamp() - 120).to_string()),
        "the cursor is the newest item's time"
    );
}

#[tokio::test]
async fn an_incremental_poll_asks_only_for_items_since_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    serve_incremental_search(&server, now);
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server));
    let since = now.timestamp() - 120;
    let cursor = Cursor {
        position: Some(since.to_string()),
        ..Cursor::default()
    };
    let polled = poll_once(&spec, &client(), &cursor).await.unwrap();
    let asked = &server.requests(SEARCH)[0];
    assert_eq!(
        asked.param("numericFilters"),
        Some(format!("created_at_i>{}", since - 60).as_str()),
        "a minute of overlap for late indexing; the store drops repeats"
    );
    assert_eq!(polled.mentions.len(), 2);
    assert_eq!(
        polled.cursor.position,
        Some((now.timestamp() - 30).to_string())
    );
    assert_eq!(server.hits(SEARCH), 1, "one page: nbPages is 1");
}

#[tokio::test]
async fn a_429_holds_the_host_until_its_reset() {
    let server = ApiServer::start();
    server.get(
        SEARCH,
        Answer::status(429, r#"{"message":"Too many requests","status":429}"#)
            .header("X-RateLimit-Limit", "10000")
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", "120"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server));
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)), "{err}");
    assert_host_held(&spec, &http, &server, SEARCH).await;
}

#[tokio::test]
async fn a_refusal_is_an_auth_error_that_names_what_to_check() {
    let server = ApiServer::start();
    server.get(
        SEARCH,
        Answer::status(
            403,
            r#"{"message":"Invalid Application-ID or API key","status":403}"#,
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server));
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Auth { status: 403, .. }),
        "{err:?}"
    );
    assert!(err.needs_operator());
    assert!(err.to_string().contains("base_url"), "{err}");
}

#[tokio::test]
async fn the_brands_reply_is_found_anywhere_below_the_complaint() {
    let server = ApiServer::start();
    let now = Utc::now();
    let item = "/api/v1/items/41000123";
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server));
    let posted = now - chrono::Duration::seconds(120);

    server.get(
        item,
        Answer::json(payload("hackernews", "item_41000123_unanswered.json", now)),
    );
    let none = find_reply(&spec, &client(), "41000123", "41000123", posted)
        .await
        .unwrap();
    assert_eq!(none, None, "a fan's comment is not the brand's");

    server.get(
        item,
        Answer::json(payload("hackernews", "item_41000123_replied.json", now)),
    );
    let reply = find_reply(&spec, &client(), "41000123", "41000123", posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "NorthwindHelp");
    assert_eq!(reply.at.timestamp(), now.timestamp() - 45);
    assert_eq!(
        reply.url.as_deref(),
        Some("https://news.ycombinator.com/item?id=41000171")
    );
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"hn\"\nkind = \"hackernews\"\nbase_url = \"ftp://x\"\nrate_limit = \"lots\"\nmax_pages = 0\n",
        &[
            "source[0].query: missing `query`",
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].rate_limit: invalid rate limit \"lots\"",
            "source[0].max_pages: must be at least 1",
        ],
    );
    let spec = source_spec(
        dir.path(),
        "\n[[source]]\nname = \"hn\"\nkind = \"hackernews\"\nquery = \"Northwind\"\n",
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "10000/1h",
        "Algolia's documented limit is the default"
    );
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let server = ApiServer::start();
    let now = Utc::now();
    serve_incremental_search(&server, now);
    server.get(
        "/api/v1/items/41000200",
        Answer::json(r#"{"id":41000200,"created_at_i":0,"author":"quietcoder","children":[]}"#),
    );
    server.get(
        "/api/v1/items/41000123",
        Answer::json(payload("hackernews", "item_41000123_replied.json", now)),
    );
    // Posted at -120 s, answered at -45 s: 75 seconds to reply, inside the hour.
    assert_reply_closes_case(
        &source(&server),
        "1h",
        &[],
        &ReplyExpectation {
            key: "41000123",
            replied_by: "NorthwindHelp",
            seconds_to_reply: 75,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: "/api/v1/items/41000123",
                param: None,
            },
        },
    );
}

#[test]
fn a_reply_after_the_deadline_still_closes_the_case_and_is_marked_late() {
    let server = ApiServer::start();
    let now = Utc::now();
    serve_incremental_search(&server, now);
    server.get(
        "/api/v1/items/41000200",
        Answer::json(r#"{"id":41000200,"children":[]}"#),
    );
    server.get(
        "/api/v1/items/41000123",
        Answer::json(payload("hackernews", "item_41000123_replied.json", now)),
    );
    // A one-minute deadline: the answer 75 seconds after the complaint came too late, and still stops the clock.
    assert_reply_closes_case(
        &source(&server),
        "1m",
        &[],
        &ReplyExpectation {
            key: "41000123",
            replied_by: "NorthwindHelp",
            seconds_to_reply: 75,
            late: true,
            thread: ThreadEndpoint {
                server: &server,
                path: "/api/v1/items/41000123",
                param: None,
            },
        },
    );
}

#[test]
fn a_reply_check_that_keeps_failing_is_reported_once_and_retried_each_poll() {
    let server = ApiServer::start();
    let now = Utc::now();
    serve_incremental_search(&server, now);
    // The complaint was deleted: its thread answers 404 for ever (the other complaint's thread is fine).
    server.get(
        "/api/v1/items/41000123",
        Answer::status(404, r#"{"status":404,"error":"Not Found"}"#),
    );
    server.get(
        "/api/v1/items/41000200",
        Answer::json(r#"{"id":41000200,"children":[]}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}{}",
        source(&server),
        sla("1h", &[("0s", &["log"])]),
        file_notifier("log", "alerts.jsonl")
    );
    let config = write_config(dir.path(), &body);
    let daemon = support::daemon::Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let retried = support::feeds::wait_until(Duration::from_secs(15), || {
        server.hits("/api/v1/items/41000123") >= 3
    });
    let log = daemon.log();
    assert!(
        retried,
        "the failing check is tried again after each poll:\n{log}"
    );
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("reply check failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "reported once, not once a poll:\n{log}");
    assert!(warnings[0].contains("HTTP 404"), "{}", warnings[0]);
}

#[tokio::test]
async fn the_hosts_request_budget_holds_back_a_request_past_it() {
    let server = ApiServer::start();
    let now = Utc::now();
    // Three pages on offer, but a budget of two requests an hour for the host.
    let page =
        payload("hackernews", "search_page0.json", now).replace("\"nbPages\": 2", "\"nbPages\": 3");
    server.get(SEARCH, Answer::json(page));
    let dir = tempfile::tempdir().unwrap();
    let block =
        source(&server).replace("timeout = \"3s\"", "timeout = \"1s\"") + "rate_limit = \"2/1h\"\n";
    let spec = source_spec(dir.path(), &block);
    assert_eq!(spec.limit.unwrap().to_string(), "2/1h");
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no complete response within"),
        "{err}"
    );
    assert_eq!(
        server.hits(SEARCH),
        2,
        "the third request waits for the budget, past the deadline"
    );
}
