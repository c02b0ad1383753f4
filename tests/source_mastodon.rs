//! The `mastodon` source against a real HTTP server on loopback serving payloads in the shapes a Mastodon
//! instance sends (Status/Account entities, `/api/v2/search` and `/api/v1/statuses/:id/context` wrappers; texts,
//! names and ids our own): the first poll's field mapping, the per-tag `min_id` cursor, bounded pagination, the
//! bearer token and the search it unlocks, a 429 with Mastodon's ISO reset header, a refusal naming the token keys,
//! and the brand's reply in the status context closing the case.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, payload};

const TAG: &str = "/api/v1/timelines/tag/Northwind";
const SEARCH: &str = "/api/v2/search";
const COMPLAINT_URI: &str = "https://social.example/users/kestrel/statuses/113399998877665544";
const COMPLAINT_ID: &str = "113400000000000105";
const TOKEN: &str = "tok-9f8e7d6c5b4a-never-shown";

fn source(server: &ApiServer, extra: &str) -> String {
    format!(
        "\n[[source]]\nname = \"masto\"\nkind = \"mastodon\"\nbase_url = \"{}\"\ntags = [\"Northwind\"]\nevery = \"1s\"\ntimeout = \"3s\"\n{extra}",
        server.base()
    )
}

/// A `token_file` key pointing to a file holding [`TOKEN`] in `dir`.
fn token_file(dir: &Path) -> String {
    let path = dir.join("mastodon.token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    format!("token_file = {:?}\n", path.to_string_lossy())
}

fn cursor(json: &str) -> Cursor {
    Cursor {
        position: Some(json.to_string()),
        ..Cursor::default()
    }
}

fn position(c: &Cursor) -> serde_json::Value {
    serde_json::from_str(c.position.as_deref().expect("a cursor")).unwrap()
}

#[tokio::test]
async fn first_poll_maps_statuses_and_keeps_the_newest_id() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        TAG,
        Answer::json(payload("mastodon", "tag_northwind_first.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();

    let asked = server.requests(TAG);
    assert_eq!(asked.len(), 1, "one page without a cursor");
    assert_eq!(asked[0].param("limit"), Some("40"));
    assert_eq!(asked[0].param("min_id"), None, "no cursor yet");
    assert_eq!(
        asked[0].header("authorization"),
        None,
        "no token configured"
    );

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            COMPLAINT_URI,
            "https://mastodon.example/users/maya/statuses/113400000000000101",
            "https://fedi.example/users/lucia/statuses/113399990000001234",
        ],
        "keys are the global uris, not this instance's ids"
    );
    let complaint = &polled.mentions[0];
    assert_eq!(complaint.source, "masto");
    assert_eq!(
        complaint.text,
        "airline rant\n@NorthwindHelp you lost my bag on a direct flight and support hasn't answered in three days. \
         Worst airline I've dealt with & I'm still waiting for a refund.\nAnyone know a human contact there? #Northwind",
        "content warning first, HTML stripped, entities decoded"
    );
    assert_eq!(complaint.author.as_deref(), Some("kestrel@social.example"));
    assert_eq!(
        complaint.url.as_deref(),
        Some("https://social.example/@kestrel/113399998877665544")
    );
    assert_eq!(
        complaint.published_at.unwrap().timestamp(),
        now.timestamp() - 120
    );
    assert_eq!(complaint.lang.as_deref(), Some("en"));
    let thread: serde_json::Value =
        serde_json::from_str(complaint.thread.as_deref().unwrap()).unwrap();
    assert_eq!(
        thread["id"], COMPLAINT_ID,
        "the local id, for the context call"
    );
    assert_eq!(thread["uri"], COMPLAINT_URI);

    let local = &polled.mentions[1];
    assert_eq!(
        local.author.as_deref(),
        Some("maya@127.0.0.1"),
        "a local acct gets the instance's host"
    );
    assert_eq!(
        local.text,
        "@NorthwindHelp where is my bag? day 3 now #Northwind"
    );
    let praise = &polled.mentions[2];
    assert_eq!(praise.lang.as_deref(), Some("pt"));
    assert_eq!(
        praise.text,
        "Obrigada #Northwind, voo tranquilo e tripulação simpática! <3"
    );

    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"tag:northwind": COMPLAINT_ID}),
        "the cursor is the newest id per tag"
    );
}

#[tokio::test]
async fn an_incremental_poll_sends_min_id_and_moves_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        TAG,
        Answer::json(payload("mastodon", "tag_northwind_incremental.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(
        &spec,
        &client(),
        &cursor(r#"{"tag:northwind":"113400000000000105"}"#),
    )
    .await
    .unwrap();
    let asked = server.requests(TAG);
    assert_eq!(asked.len(), 1, "a short page is the last");
    assert_eq!(asked[0].param("min_id"), Some(COMPLAINT_ID));
    assert_eq!(asked[0].param("limit"), Some("40"));
    let authors: Vec<&str> = polled
        .mentions
        .iter()
        .map(|m| m.author.as_deref().unwrap())
        .collect();
    assert_eq!(authors, ["oskar@toot.example", "devi@127.0.0.1"]);
    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"tag:northwind": "113400000000000112"})
    );

    // Nothing new: the cursor stays where it was (never forgotten, never moved back).
    server.get(TAG, Answer::json("[]"));
    let quiet = poll_once(
        &spec,
        &client(),
        &cursor(r#"{"tag:northwind":"113400000000000112"}"#),
    )
    .await
    .unwrap();
    assert!(quiet.mentions.is_empty());
    assert_eq!(
        position(&quiet.cursor),
        serde_json::json!({"tag:northwind": "113400000000000112"})
    );
}

#[tokio::test]
async fn a_full_page_is_followed_by_the_next_within_the_page_bound() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.route(
        "GET",
        TAG,
        &[("min_id", COMPLAINT_ID)],
        vec![Answer::json(payload(
            "mastodon",
            "tag_northwind_page_full.json",
            now,
        ))],
    );
    server.route(
        "GET",
        TAG,
        &[("min_id", "113400000000000145")],
        vec![Answer::json(payload(
            "mastodon",
            "tag_northwind_page_tail.json",
            now,
        ))],
    );
    let dir = tempfile::tempdir().unwrap();
    let from = cursor(r#"{"tag:northwind":"113400000000000105"}"#);
    let spec = source_spec(dir.path(), &source(&server, ""));
    let polled = poll_once(&spec, &client(), &from).await.unwrap();
    let asked = server.requests(TAG);
    assert_eq!(asked.len(), 2, "the full page, then the short tail");
    assert_eq!(
        asked[1].param("min_id"),
        Some("113400000000000145"),
        "the next page starts after the full page's newest id"
    );
    assert_eq!(polled.mentions.len(), 42);
    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"tag:northwind": "113400000000000147"})
    );

    // Bounded: with max_pages = 1 the poll stops after the full page, and the next poll goes on from there.
    let bounded = ApiServer::start();
    bounded.route(
        "GET",
        TAG,
        &[("min_id", COMPLAINT_ID)],
        vec![Answer::json(payload(
            "mastodon",
            "tag_northwind_page_full.json",
            now,
        ))],
    );
    let spec = source_spec(dir.path(), &source(&bounded, "max_pages = 1\n"));
    let polled = poll_once(&spec, &client(), &from).await.unwrap();
    assert_eq!(bounded.hits(TAG), 1, "one page at most");
    assert_eq!(polled.mentions.len(), 40);
    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"tag:northwind": "113400000000000145"})
    );
}

#[tokio::test]
async fn a_token_is_sent_as_bearer_and_unlocks_search() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        TAG,
        Answer::json(payload("mastodon", "tag_northwind_incremental.json", now)),
    );
    server.get(
        SEARCH,
        Answer::json(payload("mastodon", "search_northwind.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("query = \"Northwind\"\n{}", token_file(dir.path()));
    let spec = source_spec(dir.path(), &source(&server, &extra));
    assert!(
        !spec.kind.describe().contains(TOKEN),
        "{}",
        spec.kind.describe()
    );
    let polled = poll_once(
        &spec,
        &client(),
        &cursor(r#"{"tag:northwind":"113400000000000105","search":"113400000000000100"}"#),
    )
    .await
    .unwrap();

    let want = format!("Bearer {TOKEN}");
    let tag = &server.requests(TAG)[0];
    assert_eq!(tag.header("authorization"), Some(want.as_str()));
    let search = server.requests(SEARCH);
    assert_eq!(search.len(), 1, "a short page is the last");
    let s = &search[0];
    assert_eq!(s.header("authorization"), Some(want.as_str()));
    assert_eq!(s.param("q"), Some("Northwind"));
    assert_eq!(s.param("type"), Some("statuses"));
    assert_eq!(s.param("resolve"), Some("false"));
    assert_eq!(s.param("min_id"), Some("113400000000000100"));
    assert_eq!(s.param("offset"), None);
    assert!(
        !s.query.iter().any(|(_, v)| v.contains(TOKEN)),
        "the token never goes in a URL"
    );

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "https://toot.example/users/oskar/statuses/113400000500000001",
            "https://mastodon.example/users/devi/statuses/113400000000000108",
            "https://social.example/users/rui/statuses/113400010000000042",
        ],
        "a status found by both the tag and the search is one mention"
    );
    assert_eq!(
        polled.mentions[2].author.as_deref(),
        Some("rui@social.example")
    );
    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"tag:northwind": "113400000000000112", "search": "113400000000000120"})
    );
}

#[tokio::test]
async fn search_pages_by_offset_under_a_fixed_min_id() {
    let server = ApiServer::start();
    let now = Utc::now();
    let wrap = |file: &str| {
        format!(
            r#"{{"accounts":[],"statuses":{},"hashtags":[]}}"#,
            payload("mastodon", file, now)
        )
    };
    server.get(SEARCH, Answer::json(wrap("tag_northwind_page_full.json")));
    server.route(
        "GET",
        SEARCH,
        &[("offset", "40")],
        vec![Answer::json(wrap("tag_northwind_page_tail.json"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let block = format!(
        "\n[[source]]\nname = \"masto\"\nkind = \"mastodon\"\nbase_url = \"{}\"\nquery = \"Northwind\"\ntimeout = \"3s\"\n{}",
        server.base(),
        token_file(dir.path())
    );
    let spec = source_spec(dir.path(), &block);
    let polled = poll_once(
        &spec,
        &client(),
        &cursor(r#"{"search":"113400000000000100"}"#),
    )
    .await
    .unwrap();
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2, "a full page, then the short tail");
    assert_eq!(asked[0].param("offset"), None);
    assert_eq!(asked[1].param("offset"), Some("40"));
    assert_eq!(asked[1].param("min_id"), Some("113400000000000100"));
    assert_eq!(server.hits(TAG), 0, "no tags configured");
    assert_eq!(polled.mentions.len(), 42);
    assert_eq!(
        position(&polled.cursor),
        serde_json::json!({"search": "113400000000000147"})
    );
}

#[tokio::test]
async fn a_429_holds_the_host_until_its_iso_reset() {
    let server = ApiServer::start();
    let reset = (Utc::now() + chrono::Duration::seconds(120))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    server.get(
        TAG,
        Answer::status(429, r#"{"error":"Too many requests"}"#)
            .header("X-RateLimit-Limit", "300")
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", &reset),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    let wait = err.retry_after().expect("a wait");
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?} from reset {reset}"
    );
    assert_host_held(&spec, &http, &server, TAG).await;
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_naming_the_token_keys() {
    let server = ApiServer::start();
    server.get(
        TAG,
        Answer::status(401, r#"{"error":"The access token is invalid"}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, &token_file(dir.path())));
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.needs_operator());
    let text = err.to_string();
    for want in ["token_env", "token_file", "public previews"] {
        assert!(text.contains(want), "{want:?} missing in {text}");
    }
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!format!("{err:?}").contains(TOKEN));
    assert_eq!(
        server.requests(TAG)[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn the_brands_reply_is_found_in_the_status_context() {
    let server = ApiServer::start();
    let now = Utc::now();
    let context = "/api/v1/statuses/113400000000000105/context";
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, ""));
    let posted = now - chrono::Duration::seconds(120);
    let thread = format!(r#"{{"id":"{COMPLAINT_ID}","uri":"{COMPLAINT_URI}"}}"#);

    server.get(
        context,
        Answer::json(payload("mastodon", "context_unanswered.json", now)),
    );
    let none = find_reply(&spec, &client(), COMPLAINT_URI, &thread, posted)
        .await
        .unwrap();
    assert_eq!(
        none, None,
        "a fan's reply is not the brand's, nor is NorthwindHelp@evil.example a local NorthwindHelp"
    );

    server.get(
        context,
        Answer::json(payload("mastodon", "context_replied.json", now)),
    );
    let reply = find_reply(&spec, &client(), COMPLAINT_URI, &thread, posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "NorthwindHelp@127.0.0.1");
    assert_eq!(
        reply.at.timestamp(),
        now.timestamp() - 45,
        "the earliest of the brand's replies"
    );
    assert_eq!(
        reply.url.as_deref(),
        Some("https://mastodon.example/@NorthwindHelp/113400000000000133")
    );

    // A reply from before the complaint's time does not answer it.
    let later = now - chrono::Duration::seconds(30);
    let only_late = find_reply(&spec, &client(), COMPLAINT_URI, &thread, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(only_late.at.timestamp(), now.timestamp() - 20);
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"m\"\nkind = \"mastodon\"\nrate_limit = \"lots\"\nmax_pages = 0\n",
        &[
            "source[0].base_url: missing `base_url`",
            "source[0].tags: give `tags`",
            "source[0].rate_limit: invalid rate limit \"lots\"",
            "source[0].max_pages: must be at least 1",
        ],
    );
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"m\"\nkind = \"mastodon\"\nbase_url = \"ftp://x\"\ntags = [\"north wind\"]\nquery = \"Northwind\"\n",
        &[
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].tags: \"north wind\" is not a hashtag",
            "source[0].query: full-text search needs a token",
        ],
    );
    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"m\"\nkind = \"mastodon\"\nbase_url = \"https://mastodon.example\"\nquery = \"Northwind\"\ntoken_env = \"EARSHOT_TEST_MASTODON_TOKEN_UNSET\"\n",
    );
    assert!(
        err.contains(
            "source[0].token_env: environment variable EARSHOT_TEST_MASTODON_TOKEN_UNSET is not set"
        ),
        "{err}"
    );
    assert!(
        !err.contains("source[0].query"),
        "a token is configured: {err}"
    );
    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"m\"\nkind = \"mastodon\"\nbase_url = \"https://mastodon.example\"\ntags = [\"Northwind\"]\ntoken = \"inline\"\n",
    );
    assert!(err.contains("source[0].token: unknown key"), "{err}");
    assert!(err.contains("token_env"), "{err}");

    let spec = source_spec(
        dir.path(),
        "\n[[source]]\nname = \"m\"\nkind = \"mastodon\"\nbase_url = \"https://mastodon.example\"\ntags = [\"#Northwind\"]\n",
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "300/5m",
        "Mastodon's documented limit is the default"
    );
    assert!(spec.kind.describe().contains("#Northwind"));
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.get(
        TAG,
        Answer::json(payload("mastodon", "tag_northwind_first.json", now)),
    );
    server.route(
        "GET",
        TAG,
        &[("min_id", COMPLAINT_ID)],
        vec![Answer::json("[]")],
    );
    server.get(
        "/api/v1/statuses/113400000000000105/context",
        Answer::json(payload("mastodon", "context_replied.json", now)),
    );
    for other in ["113400000000000101", "113400000000000097"] {
        server.get(
            &format!("/api/v1/statuses/{other}/context"),
            Answer::json(payload("mastodon", "context_empty.json", now)),
        );
    }
    // Posted at -120 s, answered at -45 s: 75 seconds to reply, inside the hour.
    assert_reply_closes_case(
        &source(&server, ""),
        "1h",
        &[],
        &ReplyExpectation {
            key: COMPLAINT_URI,
            replied_by: "NorthwindHelp@127.0.0.1",
            seconds_to_reply: 75,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: "/api/v1/statuses/113400000000000105/context",
                param: None,
            },
        },
    );
    assert!(
        server.hits("/api/v1/statuses/113400000000000105/context") >= 1,
        "the reply was found through the context endpoint"
    );
}
