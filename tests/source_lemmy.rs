//! The `lemmy` source against a real HTTP server on loopback serving Lemmy 0.19 (API v3) payloads (shapes as
//! `search`, `comment/list` and `site` send them; texts, names and ids our own): the first poll's mapping, the
//! incremental poll that stops at the cursor, pagination within bounds, a 429 with `Retry-After`, refusals and
//! Lemmy's `{"error": ...}` answers, and the brand's reply under the complaint closing the case.

mod common;
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, fill_times, payload};

const SEARCH: &str = "/api/v3/search";
const COMMENTS: &str = "/api/v3/comment/list";
const SITE: &str = "/api/v3/site";

const BAG_POST: &str = "https://lemmy.example/post/5501";
const SOLVER_POST: &str = "https://sh.itjust.example/post/77123";
const ANGRY_COMMENT: &str = "https://lemmy.example/comment/9001";
const HAPPY_COMMENT: &str = "https://feddit.example/comment/44120";

fn source(server: &ApiServer, extra: &str) -> String {
    format!(
        "\n[[source]]\nname = \"lemmy\"\nkind = \"lemmy\"\nbase_url = \"{}\"\nquery = \"Northwind\"\nevery = \"1s\"\ntimeout = \"3s\"\n{extra}",
        server.base()
    )
}

/// The RFC 3339 time `offset` seconds from `now`, as the fixtures' placeholders write it.
fn at(now: DateTime<Utc>, offset: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&fill_times(&format!("{{{{iso:{offset}}}}}"), now))
        .unwrap()
        .with_timezone(&Utc)
}

fn cursor_at(t: DateTime<Utc>) -> Cursor {
    Cursor {
        position: Some(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        ..Cursor::default()
    }
}

/// `file`'s search answer with its posts padded to a full page (50) by copies of its first post, published
/// `offset` seconds from `now` (each its own id and `ap_id`).
fn full_page(file: &str, now: DateTime<Utc>, offset: i64) -> String {
    let mut page: serde_json::Value = serde_json::from_str(&payload("lemmy", file, now)).unwrap();
    let posts = page["posts"].as_array_mut().unwrap();
    let template = posts[0].clone();
    let published = at(now, offset).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for i in 0..(50 - posts.len()) as i64 {
        let mut p = template.clone();
        let id = 7000 + i;
        p["post"]["id"] = id.into();
        p["post"]["ap_id"] = format!("https://lemmy.example/post/{id}").into();
        p["post"]["name"] = format!("Northwind route map update #{id}").into();
        p["post"]["body"] = serde_json::Value::Null;
        p["post"]["published"] = published.clone().into();
        posts.push(p);
    }
    page.to_string()
}

#[tokio::test]
async fn first_poll_maps_posts_and_comments() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        SEARCH,
        Answer::json(payload("lemmy", "search_page1.json", now)),
    );
    server.get(SITE, Answer::json(payload("lemmy", "site.json", now)));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let http = client();
    let polled = poll_once(&spec, &http, &Cursor::default()).await.unwrap();

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [BAG_POST, SOLVER_POST, ANGRY_COMMENT, HAPPY_COMMENT],
        "posts, then comments; keyed by ap_id"
    );
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 1, "a page that is not full is the last");
    for (k, v) in [
        ("q", "Northwind"),
        ("type_", "All"),
        ("sort", "New"),
        ("listing_type", "All"),
        ("limit", "50"),
        ("page", "1"),
    ] {
        assert_eq!(asked[0].param(k), Some(v), "{k}");
    }
    assert_eq!(asked[0].param("community_name"), None);

    let bag = &polled.mentions[0];
    assert_eq!(
        bag.text,
        "@NorthwindHelp where is my bag? day 3 now\nFlight NW 208 from Oslo, tag **NW 44 9120**.\nThe tracker says \
         \"delivered\" but nothing arrived & the desk is closed.",
        "title and body; HTML stripped, entities decoded, markdown as written"
    );
    assert_eq!(bag.url.as_deref(), Some(BAG_POST));
    assert_eq!(bag.author.as_deref(), Some("maya_k@lemmy.example"));
    assert_eq!(bag.published_at, Some(at(now, -300)));
    assert_eq!(
        bag.lang.as_deref(),
        Some("en"),
        "language 37 is English on this instance"
    );
    assert_eq!(bag.thread.as_deref(), Some(r#"{"post_id":5501}"#));

    let solver = &polled.mentions[1];
    assert_eq!(solver.author.as_deref(), Some("pdx_ops@sh.itjust.example"));
    assert_eq!(
        solver.published_at.unwrap().to_rfc3339(),
        "2024-01-10T12:00:00.123456+00:00",
        "a time without a zone is UTC"
    );
    assert_eq!(solver.lang, None, "language 0 is undetermined");
    assert!(
        solver.text.ends_with("constraint solvers <3"),
        "a `<` that opens no tag is text: {}",
        solver.text
    );

    let angry = &polled.mentions[2];
    assert!(
        angry
            .text
            .starts_with("Northwind cancelled my flight and support hasn't answered"),
        "{}",
        angry.text
    );
    assert!(
        angry
            .text
            .contains("dealt with & I'm still waiting.\nAnyone"),
        "{}",
        angry.text
    );
    assert_eq!(angry.author.as_deref(), Some("kestrel@lemmy.example"));
    assert_eq!(angry.url.as_deref(), Some(ANGRY_COMMENT));
    assert_eq!(angry.published_at, Some(at(now, -120)));
    assert_eq!(angry.lang.as_deref(), Some("en"));
    assert_eq!(
        angry.thread.as_deref(),
        Some(r#"{"post_id":5480,"comment_id":9001,"path":"0.9001"}"#)
    );
    let happy = &polled.mentions[3];
    assert_eq!(happy.author.as_deref(), Some("lina@feddit.example"));
    assert_eq!(
        happy.published_at.unwrap().to_rfc3339(),
        "2024-01-10T12:30:00.500+00:00",
        "an offset is honoured"
    );

    let position = polled.cursor.position.as_deref().unwrap();
    assert_eq!(
        DateTime::parse_from_rfc3339(position).unwrap(),
        at(now, -120),
        "the cursor is the newest item's time"
    );

    // The language list is asked once per source.
    poll_once(&spec, &http, &polled.cursor).await.unwrap();
    assert_eq!(server.hits(SITE), 1);
}

#[tokio::test]
async fn an_incremental_poll_keeps_only_items_since_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        SEARCH,
        Answer::json(payload("lemmy", "search_incremental.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(
            &server,
            "type = \"All\"\ncommunity = \"travel@lemmy.example\"\n",
        ),
    );
    let polled = poll_once(&spec, &client(), &cursor_at(at(now, -120)))
        .await
        .unwrap();
    let asked = &server.requests(SEARCH)[0];
    assert_eq!(asked.param("page"), Some("1"), "newest first, from page 1");
    assert_eq!(asked.param("sort"), Some("New"));
    assert_eq!(asked.param("community_name"), Some("travel@lemmy.example"));
    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "https://lemmy.example/post/5510",
            "https://lemmy.example/comment/9050",
            ANGRY_COMMENT,
        ],
        "new items and the one inside the minute of overlap; the post from -300 s is dropped"
    );
    assert_eq!(
        polled.mentions[0].lang, None,
        "no language list (the instance has no /site route here): no language"
    );
    let position = polled.cursor.position.as_deref().unwrap();
    assert_eq!(
        DateTime::parse_from_rfc3339(position).unwrap(),
        at(now, -10)
    );
    assert_eq!(server.hits(SEARCH), 1);
}

#[tokio::test]
async fn a_full_page_older_than_the_cursor_is_the_last() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        SEARCH,
        Answer::json(full_page("search_incremental.json", now, -5000)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &cursor_at(at(now, -120)))
        .await
        .unwrap();
    assert_eq!(server.hits(SEARCH), 1, "page 1 already reaches the cursor");
    assert_eq!(polled.mentions.len(), 3, "old items are not offered again");
}

#[tokio::test]
async fn full_pages_newer_than_the_cursor_are_followed() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.route(
        "GET",
        SEARCH,
        &[("page", "1")],
        vec![Answer::json(full_page("search_page1.json", now, -400))],
    );
    server.route(
        "GET",
        SEARCH,
        &[("page", "2")],
        vec![Answer::json(payload("lemmy", "search_page2.json", now))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    let pages: Vec<String> = server
        .requests(SEARCH)
        .iter()
        .map(|r| r.param("page").unwrap().to_string())
        .collect();
    assert_eq!(pages, ["1", "2"], "page 2 is not full: no page 3");
    assert_eq!(polled.mentions.len(), 50 + 2 + 2);
    let last: Vec<&str> = polled.mentions[52..]
        .iter()
        .map(|m| m.key.as_str())
        .collect();
    assert_eq!(
        last,
        [
            "https://sh.itjust.example/post/76990",
            "https://feddit.example/comment/43980"
        ]
    );
}

#[tokio::test]
async fn paging_stops_at_max_pages_and_repeats_are_dropped() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        SEARCH,
        Answer::json(full_page("search_page1.json", now, -400)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, "max_pages = 2\n"));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    assert_eq!(server.hits(SEARCH), 2, "bounded by max_pages");
    assert_eq!(
        polled.mentions.len(),
        52,
        "the same items on page 2 are not offered twice"
    );
}

#[tokio::test]
async fn a_429_holds_the_host_until_retry_after() {
    let server = ApiServer::start();
    server.get(
        SEARCH,
        Answer::status(429, r#"{"error":"rate_limit_error"}"#).header("Retry-After", "120"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
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
    server.get(SEARCH, Answer::status(401, r#"{"error":"not_logged_in"}"#));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.needs_operator());
    let text = err.to_string();
    assert!(text.contains("base_url"), "{text}");
    assert!(
        !text.contains("Northwind"),
        "no query in the message: {text}"
    );
}

#[tokio::test]
async fn lemmy_errors_fail_the_poll_with_a_clear_message() {
    let server = ApiServer::start();
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![
            Answer::status(400, r#"{"error":"couldnt_find_community"}"#),
            Answer::json(r#"{"error":"couldnt_find_object"}"#),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, "community = \"nowhere\"\n"));
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("community"),
        "{text}"
    );
    assert!(
        text.contains("couldnt_find_community"),
        "Lemmy's own error code is named: {text}"
    );
    assert!(!err.needs_operator());
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"couldnt_find_object\""),
        "the error Lemmy named: {err}"
    );
}

#[tokio::test]
async fn the_brands_reply_below_a_comment_complaint_is_found() {
    let server = ApiServer::start();
    let now = Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let thread = r#"{"post_id":5480,"comment_id":9001,"path":"0.9001"}"#;

    server.get(
        COMMENTS,
        Answer::json(payload("lemmy", "comments_5480_unanswered.json", now)),
    );
    let none = find_reply(&spec, &client(), ANGRY_COMMENT, thread, at(now, -120))
        .await
        .unwrap();
    assert_eq!(
        none, None,
        "a fan's reply, the brand in another branch and the brand before the complaint do not count"
    );
    let asked = &server.requests(COMMENTS)[0];
    for (k, v) in [
        ("post_id", "5480"),
        ("parent_id", "9001"),
        ("sort", "New"),
        ("max_depth", "8"),
        ("type_", "All"),
    ] {
        assert_eq!(asked.param(k), Some(v), "{k}");
    }

    server.get(
        COMMENTS,
        Answer::json(payload("lemmy", "comments_5480_replied.json", now)),
    );
    let reply = find_reply(&spec, &client(), ANGRY_COMMENT, thread, at(now, -120))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "NorthwindHelp@lemmy.example");
    assert_eq!(
        reply.at,
        at(now, -45),
        "the earliest of the brand's replies"
    );
    assert_eq!(
        reply.url.as_deref(),
        Some("https://lemmy.example/comment/9020")
    );
}

#[tokio::test]
async fn the_brands_comment_on_a_post_complaint_is_found() {
    let server = ApiServer::start();
    let now = Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    server.get(
        COMMENTS,
        Answer::json(payload("lemmy", "comments_5501_replied.json", now)),
    );
    let reply = find_reply(
        &spec,
        &client(),
        BAG_POST,
        r#"{"post_id":5501}"#,
        at(now, -300),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reply.author, "NorthwindHelp@lemmy.example");
    assert_eq!(reply.at, at(now, -200));
    assert_eq!(
        reply.url.as_deref(),
        Some("https://lemmy.example/comment/9110")
    );
    let asked = &server.requests(COMMENTS)[0];
    assert_eq!(asked.param("post_id"), Some("5501"));
    assert_eq!(asked.param("parent_id"), None, "the whole post");

    let later = find_reply(
        &spec,
        &client(),
        BAG_POST,
        r#"{"post_id":5501}"#,
        at(now, -150),
    )
    .await
    .unwrap();
    assert_eq!(
        later, None,
        "a comment before the complaint answers nothing"
    );
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"lemmy\"\nkind = \"lemmy\"\ntype = \"Threads\"\nmax_pages = 0\npassword = \"x\"\n",
        &[
            "source[0].query: missing `query`",
            "source[0].base_url: missing `base_url`",
            "source[0].type: unknown type \"Threads\"",
            "source[0].max_pages: must be at least 1",
            "source[0].password: unknown key `password`",
        ],
    );
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"lemmy\"\nkind = \"lemmy\"\nquery = \"Northwind\"\nbase_url = \"ftp://lemmy.example\"\nrate_limit = \"lots\"\n",
        &[
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].rate_limit: invalid rate limit \"lots\"",
        ],
    );
    let spec = source_spec(
        dir.path(),
        "\n[[source]]\nname = \"lemmy\"\nkind = \"lemmy\"\nquery = \"Northwind\"\nbase_url = \"https://lemmy.example\"\ncommunity = \"!travel\"\ntype = \"comments\"\n",
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "60/10m",
        "Lemmy's default search limit is the default"
    );
    assert_eq!(
        spec.kind.describe(),
        "Lemmy search \"Northwind\" (Comments) in !travel at https://lemmy.example/"
    );
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        SEARCH,
        Answer::json(payload("lemmy", "search_page1.json", now)),
    );
    server.get(SITE, Answer::json(payload("lemmy", "site.json", now)));
    server.route(
        "GET",
        COMMENTS,
        &[("post_id", "5480")],
        vec![Answer::json(payload(
            "lemmy",
            "comments_5480_replied.json",
            now,
        ))],
    );
    server.route(
        "GET",
        COMMENTS,
        &[("post_id", "5501")],
        vec![Answer::json(payload(
            "lemmy",
            "comments_5501_replied.json",
            now,
        ))],
    );
    // Posted at -120 s, answered at -45 s: 75 seconds to reply, inside the hour.
    assert_reply_closes_case(
        &source(&server, ""),
        "1h",
        &[],
        &ReplyExpectation {
            key: ANGRY_COMMENT,
            replied_by: "NorthwindHelp@lemmy.example",
            seconds_to_reply: 75,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: COMMENTS,
                param: Some(("parent_id", "9001")),
            },
        },
    );
}
