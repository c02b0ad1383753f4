//! The `discourse` source against a real HTTP server on loopback serving payloads in the shapes Discourse sends
//! (`/posts.json` `latest_posts[]`, `/search.json` `posts[]` + `topics[]` + `grouped_search_result`, `/t/{id}.json`
//! `post_stream`, `/t/{id}/posts.json`; texts, names and ids our own): field mapping, the post-id cursor, paging
//! backwards with `before=`, search paging, the API key headers, a 429 with `Retry-After`, refusals named once,
//! and the brand's reply found by the rule of the kind, closing the case end to end.

mod common;
mod support;

use std::time::Duration;

use chrono::Utc;

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, payload};

const LATEST: &str = "/posts.json";
const SEARCH: &str = "/search.json";

fn source(server: &ApiServer, extra: &str) -> String {
    format!(
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"3s\"\n{extra}",
        server.base()
    )
}

fn fixture(name: &str, now: chrono::DateTime<Utc>) -> Answer {
    Answer::json(payload("discourse", name, now))
}

fn at(position: &str) -> Cursor {
    Cursor {
        position: Some(position.into()),
        ..Cursor::default()
    }
}

#[tokio::test]
async fn first_poll_maps_posts_and_keeps_the_highest_id() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(LATEST, fixture("latest_first.json", now));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["1208", "1207", "1206", "1204"],
        "newest first; the small action (post_type 3) is not a mention"
    );
    let asked = server.requests(LATEST);
    assert_eq!(asked.len(), 1, "no cursor yet: one page, no backlog walk");
    assert_eq!(asked[0].param("before"), None);
    assert_eq!(asked[0].header("api-key"), None, "no key configured");

    let base = server.base();
    let opener = &polled.mentions[0];
    assert_eq!(
        opener.text,
        "Where is my bag?\n@NorthwindHelp where is my bag? day 3 now\nFlight NW 204 from Lisbon, tag ending 4471 – \
         the tracker still says \"located\".",
        "a topic's first post starts with the topic title; HTML stripped, entities decoded"
    );
    assert_eq!(opener.author.as_deref(), Some("marguerite_t"));
    assert_eq!(
        opener.url.as_deref(),
        Some(format!("{base}/t/where-is-my-bag/415/1").as_str())
    );
    assert_eq!(
        opener.published_at.unwrap().timestamp(),
        now.timestamp() - 600
    );
    assert_eq!(opener.lang, None, "Discourse gives no language");
    let thread: serde_json::Value =
        serde_json::from_str(opener.thread.as_deref().unwrap()).unwrap();
    assert_eq!(
        thread,
        serde_json::json!({"topic_id": 415, "post_number": 1})
    );

    let angry = &polled.mentions[2];
    assert_eq!(
        angry.text,
        "Northwind charged my card twice for seat selection and the app now says the booking doesn't exist. This is \
         ridiculous – three calls & nobody can fix it.",
        "a reply has no title, and the post it quotes is not its author's words"
    );
    assert_eq!(
        angry.url.as_deref(),
        Some(format!("{base}/t/seat-selection-fee-charged-twice/398/4").as_str())
    );
    assert_eq!(
        polled.mentions[1].text,
        "Thanks Northwind crew on NW 112, the upgrade to the window seat made my day!"
    );
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some("1208"),
        "the cursor is the highest post id"
    );
}

#[tokio::test]
async fn an_incremental_poll_returns_only_posts_past_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(LATEST, fixture("latest_incremental.json", now));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &at("1208")).await.unwrap();
    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["1211", "1210", "1209"],
        "1208 and 1207 were seen last time"
    );
    let asked = server.requests(LATEST);
    assert_eq!(
        asked.len(),
        1,
        "the page reached the cursor: no second page"
    );
    assert_eq!(asked[0].param("before"), None, "the newest page first");
    assert_eq!(polled.cursor.position.as_deref(), Some("1211"));

    // Nothing new: the cursor stays where it was.
    let again = poll_once(&spec, &client(), &at("1211")).await.unwrap();
    assert!(again.mentions.is_empty(), "{:?}", again.mentions);
    assert_eq!(again.cursor.position.as_deref(), Some("1211"));
}

#[tokio::test]
async fn a_poll_pages_backwards_until_the_cursor_and_no_further_than_max_pages() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.route("GET", LATEST, &[], vec![fixture("latest_recent.json", now)]);
    server.route(
        "GET",
        LATEST,
        &[("before", "1261")],
        vec![fixture("latest_before_1261.json", now)],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &at("1258")).await.unwrap();
    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["1263", "1262", "1261", "1260", "1259"]);
    let asked = server.requests(LATEST);
    let befores: Vec<Option<&str>> = asked.iter().map(|r| r.param("before")).collect();
    assert_eq!(
        befores,
        [None, Some("1261")],
        "the second page starts below the first"
    );
    assert_eq!(polled.cursor.position.as_deref(), Some("1263"));

    // Far behind: two pages at most, then the poll stops (the route for a third page would answer 404).
    let server = ApiServer::start();
    server.get(LATEST, fixture("latest_recent.json", now));
    server.route(
        "GET",
        LATEST,
        &[("before", "1261")],
        vec![fixture("latest_before_1261.json", now)],
    );
    let spec = source_spec(dir.path(), &source(&server, "max_pages = 2\n"));
    let polled = poll_once(&spec, &client(), &at("1100")).await.unwrap();
    assert_eq!(server.hits(LATEST), 2, "bounded by max_pages");
    assert_eq!(polled.mentions.len(), 7);
    assert_eq!(polled.cursor.position.as_deref(), Some("1263"));
}

#[tokio::test]
async fn search_uses_blurbs_and_topic_titles_and_pages_until_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(SEARCH, fixture("search_page1.json", now));
    server.route(
        "GET",
        SEARCH,
        &[("page", "2")],
        vec![fixture("search_page2.json", now)],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, "query = \"Northwind\"\n"));
    let polled = poll_once(&spec, &client(), &at("1200")).await.unwrap();
    assert_eq!(
        server.hits(LATEST),
        0,
        "with a query, latest is off by default"
    );
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2, "more_full_page_results, then the cursor");
    assert_eq!(asked[0].param("q"), Some("Northwind order:latest"));
    assert_eq!(asked[0].param("page"), None);
    assert_eq!(asked[1].param("page"), Some("2"));

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["1263", "1250", "1230"], "1190 is behind the cursor");
    let first = &polled.mentions[0];
    assert_eq!(
        first.text,
        "Northwind app logs me out at the gate\nThe Northwind app logs me out every time I open the boarding pass at \
         the gate. Still broken after the 7.2 update & support just says reinstall…"
    );
    assert_eq!(
        first.url.as_deref(),
        Some(
            format!(
                "{}/t/northwind-app-logs-me-out-at-the-gate/431/1",
                server.base()
            )
            .as_str()
        )
    );
    assert_eq!(first.author.as_deref(), Some("h.lindqvist"));
    assert_eq!(
        first.published_at.unwrap().timestamp(),
        now.timestamp() - 60
    );
    let reply = &polled.mentions[2];
    assert!(
        reply
            .text
            .starts_with("App crashes on the boarding pass screen"),
        "no title on a reply: {}",
        reply.text
    );
    assert_eq!(
        reply.thread.as_deref(),
        Some(r#"{"topic_id":420,"post_number":2}"#)
    );
    assert_eq!(polled.cursor.position.as_deref(), Some("1263"));
}

#[tokio::test]
async fn the_api_key_is_sent_in_discourses_headers() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(LATEST, fixture("latest_first.json", now));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("discourse.key");
    std::fs::write(&key_file, "d1sc0urse-test-key-5f3a\n").unwrap();
    let spec = source_spec(
        dir.path(),
        &source(
            &server,
            &format!(
                "api_key_file = \"{}\"\napi_username = \"earshot-bot\"\n",
                key_file.display()
            ),
        ),
    );
    assert!(
        !spec.kind.describe().contains("5f3a"),
        "{}",
        spec.kind.describe()
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "60/1m",
        "with a key, the admin API's budget is the default"
    );
    poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    let asked = &server.requests(LATEST)[0];
    assert_eq!(asked.header("api-key"), Some("d1sc0urse-test-key-5f3a"));
    assert_eq!(asked.header("api-username"), Some("earshot-bot"));
    assert_eq!(
        asked.query,
        Vec::<(String, String)>::new(),
        "no key in the URL"
    );
}

#[tokio::test]
async fn a_429_holds_the_host_for_its_retry_after() {
    let server = ApiServer::start();
    server.get(
        LATEST,
        Answer::status(
            429,
            r#"{"errors":["You’ve performed this action too many times. Please wait 37 seconds before trying again."],"error_type":"rate_limit","extras":{"wait_seconds":37,"time_left":"37 seconds"}}"#,
        )
        .header("Retry-After", "37"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(37)), "{err}");
    assert_host_held(&spec, &http, &server, LATEST).await;
}

#[tokio::test]
async fn a_refusal_is_an_auth_error_that_names_the_keys_and_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("discourse.key");
    std::fs::write(&key_file, "revoked-key-9c1e77").unwrap();
    for status in [401u16, 403] {
        let server = ApiServer::start();
        server.get(
            LATEST,
            Answer::status(
                status,
                r#"{"errors":["You are not permitted to view the requested resource. The API username or key is invalid."],"error_type":"invalid_access"}"#,
            ),
        );
        let spec = source_spec(
            dir.path(),
            &source(
                &server,
                &format!(
                    "api_key_file = \"{}\"\napi_username = \"earshot-bot\"\n",
                    key_file.display()
                ),
            ),
        );
        let err = poll_once(&spec, &client(), &Cursor::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SourceError::Auth { status: s, .. } if s == status),
            "{err:?}"
        );
        assert!(err.needs_operator());
        let text = err.to_string();
        assert!(text.contains("api_key_env"), "{text}");
        assert!(text.contains("api_username"), "{text}");
        assert!(!text.contains("9c1e77"), "the key leaked: {text}");
        assert!(!format!("{err:?}").contains("9c1e77"));
    }

    // Without a key, a forum that wants a login says so and names the keys to set.
    let server = ApiServer::start();
    server.get(
        LATEST,
        Answer::status(
            403,
            r#"{"errors":["You are not permitted to view the requested resource."],"error_type":"invalid_access"}"#,
        ),
    );
    let spec = source_spec(dir.path(), &source(&server, ""));
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(err.needs_operator());
    assert!(err.to_string().contains("set `api_key_env`"), "{err}");
}

#[tokio::test]
async fn a_topic_openers_complaint_is_answered_by_any_later_brand_post() {
    let server = ApiServer::start();
    let now = Utc::now();
    let topic = "/t/415.json";
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let posted = now - chrono::Duration::seconds(600);
    let thread = r#"{"topic_id":415,"post_number":1}"#;

    server.get(topic, fixture("topic_415_unanswered.json", now));
    let none = find_reply(&spec, &client(), "1208", thread, posted)
        .await
        .unwrap();
    assert_eq!(
        none, None,
        "a customer's answer, the brand's whisper and a moderator (without staff_replies) are not the brand's reply"
    );

    server.get(topic, fixture("topic_415_replied.json", now));
    let reply = find_reply(&spec, &client(), "1208", thread, posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "NorthwindHelp");
    assert_eq!(reply.at.timestamp(), now.timestamp() - 180);
    assert_eq!(
        reply.url.as_deref(),
        Some(format!("{}/t/where-is-my-bag/415/5", server.base()).as_str())
    );

    // With staff_replies, the moderator's earlier answer counts.
    server.get(topic, fixture("topic_415_unanswered.json", now));
    let spec = source_spec(dir.path(), &source(&server, "staff_replies = true\n"));
    let reply = find_reply(&spec, &client(), "1208", thread, posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "ops_moderator");
    assert_eq!(reply.at.timestamp(), now.timestamp() - 240);
    assert_eq!(
        reply.url.as_deref(),
        Some(format!("{}/t/where-is-my-bag/415/4", server.base()).as_str())
    );
}

#[tokio::test]
async fn a_complaint_inside_a_topic_is_answered_only_by_a_reply_to_it() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get("/t/398.json", fixture("topic_398.json", now));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let posted = now - chrono::Duration::seconds(900);
    let reply = find_reply(
        &spec,
        &client(),
        "1206",
        r#"{"topic_id":398,"post_number":4}"#,
        posted,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        reply.at.timestamp(),
        now.timestamp() - 300,
        "the brand's earlier post answered someone else (reply_to_post_number 2)"
    );
    assert_eq!(reply.author, "NorthwindHelp");
    assert_eq!(
        reply.url.as_deref(),
        Some(format!("{}/t/seat-selection-fee-charged-twice/398/6", server.base()).as_str())
    );
}

#[tokio::test]
async fn posts_past_the_first_chunk_are_fetched_by_id() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get("/t/420.json", fixture("topic_420.json", now));
    server.get("/t/420/posts.json", fixture("topic_420_posts.json", now));
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let posted = now - chrono::Duration::seconds(7200);
    let reply = find_reply(
        &spec,
        &client(),
        "1230",
        r#"{"topic_id":420,"post_number":2}"#,
        posted,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reply.at.timestamp(), now.timestamp() - 5400, "the earliest");
    assert!(
        reply
            .url
            .as_deref()
            .unwrap()
            .ends_with("/t/app-crashes-on-boarding-pass/420/5"),
        "{:?}",
        reply.url
    );
    let asked = server.requests("/t/420/posts.json");
    assert_eq!(asked.len(), 1);
    let ids: Vec<&str> = asked[0]
        .query
        .iter()
        .filter(|(k, _)| k == "post_ids[]")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        ids,
        ["1240", "1241", "1244"],
        "only the posts not yet loaded"
    );
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let err = assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nrate_limit = \"lots\"\nmax_pages = 0\n\
         api_key = \"inline-secret\"\n",
        &[
            "source[0].base_url: missing `base_url`",
            "source[0].rate_limit: invalid rate limit \"lots\"",
            "source[0].max_pages: must be at least 1",
            "source[0].api_key: secrets never go in the file",
        ],
    );
    assert!(!err.contains("inline-secret"), "{err}");

    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"ftp://forum.example\"\n\
         api_key_env = \"EARSHOT_TEST_DISCOURSE_KEY_UNSET_7Q\"\napi_username = \"earshot-bot\"\n",
        &[
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].api_key_env: environment variable EARSHOT_TEST_DISCOURSE_KEY_UNSET_7Q is not set",
        ],
    );

    let key_file = dir.path().join("k");
    std::fs::write(&key_file, "abc123").unwrap();
    let err = source_config_error(
        dir.path(),
        &format!(
            "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"https://forum.example\"\n\
             api_key_file = \"{}\"\n",
            key_file.display()
        ),
    );
    assert!(
        err.contains("source[0].api_username: an API key is given but no `api_username`"),
        "{err}"
    );
    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"https://forum.example\"\n\
         api_username = \"earshot-bot\"\n",
    );
    assert!(
        err.contains("source[0].api_key_env: `api_username` is given but no API key"),
        "{err}"
    );
    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"https://forum.example\"\nlatest = false\n",
    );
    assert!(err.contains("source[0].latest: nothing to watch"), "{err}");

    let spec = source_spec(
        dir.path(),
        "\n[[source]]\nname = \"forum\"\nkind = \"discourse\"\nbase_url = \"https://forum.example\"\n",
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "200/1m",
        "Discourse's default per-IP limit is the default"
    );
    assert_eq!(
        spec.kind.describe(),
        "Discourse latest posts at https://forum.example/"
    );
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(LATEST, fixture("latest_first.json", now));
    server.get("/t/415.json", fixture("topic_415_replied.json", now));
    server.get("/t/398.json", fixture("topic_398.json", now));
    // Posted at -600 s ("where is my bag? day 3 now": no angry word), answered at -180 s: 420 seconds.
    assert_reply_closes_case(
        &source(&server, ""),
        "1h",
        &[],
        &ReplyExpectation {
            key: "1208",
            replied_by: "NorthwindHelp",
            seconds_to_reply: 420,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: "/t/415.json",
                param: None,
            },
        },
    );
    let topic_checks = server.hits("/t/415.json");
    assert!(topic_checks >= 1, "the complaint's topic was searched");
}
