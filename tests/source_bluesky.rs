//! The `bluesky` source against a real HTTP server on loopback serving payloads in the AT Protocol's shapes
//! (`createSession`, `refreshSession`, `searchPosts`, `getPostThread`; texts, handles and DIDs our own): one login
//! for many polls, the refresh of an expired token, the search cursor and paging, a 429 with `ratelimit-reset`, a
//! refused login named once, and the brand's reply in the thread closing the case.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, payload};

const SEARCH: &str = "/xrpc/app.bsky.feed.searchPosts";
const THREAD: &str = "/xrpc/app.bsky.feed.getPostThread";
const LOGIN: &str = "/xrpc/com.atproto.server.createSession";
const REFRESH: &str = "/xrpc/com.atproto.server.refreshSession";

const PASSWORD: &str = "abcd-efgh-ijkl-mnop";
const COMPLAINT: &str = "at://did:plc:k3str3lxq7v2a5b6c7d8e9f0/app.bsky.feed.post/3lbq2xk7nwc2s";

/// A source block reading the app password from a file in `dir`.
fn source(server: &ApiServer, dir: &Path) -> String {
    let file = dir.join("bsky-app-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    format!(
        "\n[[source]]\nname = \"bsky\"\nkind = \"bluesky\"\nquery = \"Northwind\"\nhandle = \"northwind-monitor.bsky.social\"\n\
         app_password_file = \"{}\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"3s\"\n",
        file.display(),
        server.base()
    )
}

fn fixture(name: &str, now: DateTime<Utc>) -> String {
    payload("bluesky", name, now)
}

/// A field of a fixture, e.g. the `accessJwt` of `create_session.json`.
fn field(name: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&fixture(name, Utc::now())).unwrap();
    v[key].as_str().unwrap().to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A server that logs in with `create_session.json` and refreshes with `refresh_session.json`.
fn server_with_session(now: DateTime<Utc>) -> ApiServer {
    let server = ApiServer::start();
    server.route(
        "POST",
        LOGIN,
        &[],
        vec![Answer::json(fixture("create_session.json", now))],
    );
    server.route(
        "POST",
        REFRESH,
        &[],
        vec![Answer::json(fixture("refresh_session.json", now))],
    );
    server
}

fn authorizations(server: &ApiServer, path: &str) -> Vec<String> {
    server
        .requests(path)
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn first_poll_logs_in_pages_through_results_and_maps_posts() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![Answer::json(fixture("search_page0.json", now))],
    );
    server.route(
        "GET",
        SEARCH,
        &[("cursor", "100")],
        vec![Answer::json(fixture("search_page1.json", now))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();

    let login = server.requests(LOGIN);
    assert_eq!(login.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&login[0].body_text()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"identifier": "northwind-monitor.bsky.social", "password": PASSWORD})
    );
    assert_eq!(login[0].header("content-type"), Some("application/json"));

    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2, "two pages: the second answer has no cursor");
    let access = field("create_session.json", "accessJwt");
    for r in &asked {
        assert_eq!(r.header("authorization"), Some(bearer(&access).as_str()));
        assert_eq!(r.param("q"), Some("Northwind"));
        assert_eq!(r.param("sort"), Some("latest"));
        assert_eq!(r.param("limit"), Some("100"));
        assert_eq!(r.param("since"), None, "no cursor yet");
        assert_eq!(r.param("lang"), None);
    }
    assert_eq!(asked[0].param("cursor"), None);
    assert_eq!(asked[1].param("cursor"), Some("100"));

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "at://did:plc:h4ndl31nv4l1dabcdefghij3/app.bsky.feed.post/3lbq33mfyis2k",
            "at://did:plc:j0anar1b31r0pqrstuvwxyz2/app.bsky.feed.post/3lbq2z4c6pk2d",
            COMPLAINT,
            "at://did:plc:m4y4k0s7s8t9u0v1w2x3y4z5/app.bsky.feed.post/3lbq2t7vhgs2y",
        ],
        "both pages, in order"
    );

    let complaint = &polled.mentions[2];
    assert_eq!(complaint.source, "bsky");
    assert_eq!(
        complaint.text,
        "Northwind lost my bag on a direct flight & support hasn't answered in three days. Worst airline I've dealt \
         with <_< #Northwind",
        "record.text is plain text: kept as written, nothing taken for markup"
    );
    assert_eq!(complaint.author.as_deref(), Some("kestrel.bsky.social"));
    assert_eq!(
        complaint.url.as_deref(),
        Some("https://bsky.app/profile/kestrel.bsky.social/post/3lbq2xk7nwc2s")
    );
    assert_eq!(
        complaint.published_at.map(iso),
        Some(iso(now - chrono::Duration::seconds(120))),
        "record.createdAt"
    );
    assert_eq!(complaint.lang.as_deref(), Some("en"));
    assert_eq!(complaint.thread.as_deref(), Some(COMPLAINT));
    assert!(complaint.fetched_at >= now);

    let praise = &polled.mentions[1];
    assert_eq!(praise.lang.as_deref(), Some("pt"), "first of record.langs");
    assert_eq!(praise.author.as_deref(), Some("joana.ribeiro.example"));

    let unresolved = &polled.mentions[0];
    assert_eq!(
        unresolved.url.as_deref(),
        Some("https://bsky.app/profile/did:plc:h4ndl31nv4l1dabcdefghij3/post/3lbq33mfyis2k"),
        "a handle that does not resolve is linked by DID"
    );
    let bag = &polled.mentions[3];
    assert_eq!(bag.text, "@NorthwindHelp where is my bag? day 3 now");

    assert_eq!(
        polled.cursor.position,
        Some(iso(now - chrono::Duration::seconds(90))),
        "the cursor is the newest post's time"
    );
}

#[tokio::test]
async fn the_next_poll_reuses_the_session_and_asks_only_since_the_cursor() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.get(
        SEARCH,
        Answer::json(fixture("search_incremental.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    let since = now - chrono::Duration::seconds(90);
    let cursor = Cursor {
        position: Some(iso(since)),
        ..Cursor::default()
    };
    let first = poll_once(&spec, &http, &cursor).await.unwrap();
    let second = poll_once(&spec, &http, &first.cursor).await.unwrap();

    assert_eq!(server.hits(LOGIN), 1, "one login for both polls");
    assert_eq!(server.hits(REFRESH), 0);
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2, "one page each: no cursor in the answer");
    assert_eq!(
        asked[0].param("since"),
        Some(iso(since - chrono::Duration::seconds(60)).as_str()),
        "a minute of overlap for late indexing; the store drops repeats"
    );
    assert_eq!(
        asked[1].param("since"),
        Some(iso(now - chrono::Duration::seconds(80)).as_str()),
        "the second poll starts where the first left off"
    );
    let access = field("create_session.json", "accessJwt");
    assert_eq!(
        authorizations(&server, SEARCH),
        [bearer(&access), bearer(&access)]
    );

    assert_eq!(first.mentions.len(), 2);
    let skewed = &first.mentions[0];
    assert_eq!(
        skewed.published_at.map(iso),
        Some(iso(now + chrono::Duration::seconds(600))),
        "the author's clock, as given (the SLA refuses future times)"
    );
    assert_eq!(skewed.posted_at(), skewed.fetched_at);
    assert_eq!(
        first.cursor.position,
        Some(iso(now - chrono::Duration::seconds(20))),
        "a client clock ahead does not move the cursor into the future: the indexing time bounds it"
    );
    assert_eq!(second.cursor.position, first.cursor.position);
}

#[tokio::test]
async fn paging_stops_after_three_pages() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.get(SEARCH, Answer::json(fixture("search_endless.json", now)));
    let dir = tempfile::tempdir().unwrap();
    let block = format!("{}lang = \"en\"\n", source(&server, dir.path()));
    let spec = source_spec(dir.path(), &block);
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    let asked = server.requests(SEARCH);
    assert!(
        asked.iter().all(|r| r.param("lang") == Some("en")),
        "the `lang` filter goes with every page"
    );
    assert_eq!(
        server.hits(SEARCH),
        3,
        "bounded, although every page offers a next one"
    );
    assert_eq!(polled.mentions.len(), 3);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_made_again() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.get(
        SEARCH,
        Answer::json(fixture("search_incremental.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    poll_once(&spec, &http, &Cursor::default()).await.unwrap();

    // Later, the PDS says the access token has expired (its claims said otherwise: a clock apart).
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![
            Answer::status(400, fixture("error_expired_token.json", now)),
            Answer::json(fixture("search_incremental.json", now)),
        ],
    );
    let cursor = Cursor::default();
    let mut ctx = poll_ctx(&spec, &http, &cursor);
    ctx.now = Utc::now() + chrono::Duration::minutes(30);
    let polled = spec.kind.poll(&ctx).await.unwrap();
    assert_eq!(polled.mentions.len(), 2, "the call made again succeeded");

    let refresh = server.requests(REFRESH);
    assert_eq!(refresh.len(), 1, "one refresh");
    assert_eq!(
        refresh[0].header("authorization"),
        Some(bearer(&field("create_session.json", "refreshJwt")).as_str()),
        "refreshSession takes the refresh token"
    );
    assert_eq!(refresh[0].body_text(), "", "refreshSession has no input");
    assert_eq!(server.hits(LOGIN), 1, "no new login");
    let old = bearer(&field("create_session.json", "accessJwt"));
    let new = bearer(&field("refresh_session.json", "accessJwt"));
    assert_eq!(
        authorizations(&server, SEARCH),
        [old.clone(), old.clone(), new.clone()]
    );

    // The renewed session is kept.
    spec.kind.poll(&ctx).await.unwrap();
    assert_eq!(server.hits(REFRESH), 1);
    assert_eq!(authorizations(&server, SEARCH)[3], new);
}

#[tokio::test]
async fn a_brand_new_token_turned_away_is_not_refreshed() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.get(
        SEARCH,
        Answer::status(400, fixture("error_invalid_request.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    for _ in 0..2 {
        let err = poll_once(&spec, &http, &Cursor::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("HTTP 400"), "{err}");
        assert!(
            err.to_string().contains("InvalidRequest"),
            "the XRPC error is named: {err}"
        );
    }
    assert_eq!(
        server.hits(SEARCH),
        2,
        "no second try: renewing cannot help"
    );
    assert_eq!(server.hits(REFRESH), 0);
    assert_eq!(server.hits(LOGIN), 1);
}

/// An access token as the PDS makes one (ES256K JWT; the signature is not checked by the client), expiring at `exp`.
fn access_jwt(exp: DateTime<Utc>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(r#"{"typ":"at+jwt","alg":"ES256K"}"#),
        b64(&format!(
            r#"{{"scope":"com.atproto.appPass","sub":"did:plc:m0n1t0rn0rthw1nd0000000a","iat":{},"exp":{},"aud":"did:web:bsky.social"}}"#,
            (exp - chrono::Duration::hours(2)).timestamp(),
            exp.timestamp()
        )),
        b64("not-a-real-signature")
    )
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_use() {
    let now = Utc::now();
    let server = server_with_session(now);
    let short = access_jwt(now + chrono::Duration::hours(2));
    let mut session: serde_json::Value =
        serde_json::from_str(&fixture("create_session.json", now)).unwrap();
    session["accessJwt"] = short.clone().into();
    server.route("POST", LOGIN, &[], vec![Answer::json(session.to_string())]);
    server.get(
        SEARCH,
        Answer::json(fixture("search_incremental.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    let cursor = Cursor::default();
    let mut ctx = poll_ctx(&spec, &http, &cursor);

    spec.kind.poll(&ctx).await.unwrap();
    ctx.now = now + chrono::Duration::minutes(100);
    spec.kind.poll(&ctx).await.unwrap();
    assert_eq!(server.hits(REFRESH), 0, "still valid for 20 minutes");
    ctx.now = now + chrono::Duration::minutes(119);
    spec.kind.poll(&ctx).await.unwrap();

    assert_eq!(server.hits(REFRESH), 1);
    assert_eq!(server.hits(LOGIN), 1);
    let renewed = bearer(&field("refresh_session.json", "accessJwt"));
    assert_eq!(
        authorizations(&server, SEARCH),
        [bearer(&short), bearer(&short), renewed],
        "the expiring token is not sent once renewal is due"
    );
}

#[tokio::test]
async fn a_refused_refresh_logs_in_again() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.route(
        "POST",
        REFRESH,
        &[],
        vec![Answer::status(
            400,
            fixture("error_expired_token.json", now),
        )],
    );
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![
            Answer::json(fixture("search_incremental.json", now)),
            Answer::status(401, fixture("error_expired_token.json", now)),
            Answer::json(fixture("search_incremental.json", now)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    let cursor = Cursor::default();
    let mut ctx = poll_ctx(&spec, &http, &cursor);
    spec.kind.poll(&ctx).await.unwrap();
    ctx.now = now + chrono::Duration::hours(1);
    spec.kind.poll(&ctx).await.unwrap();
    assert_eq!(server.hits(REFRESH), 1);
    assert_eq!(
        server.hits(LOGIN),
        2,
        "logged in again only after the refresh was refused"
    );
    assert_eq!(server.hits(SEARCH), 3);
}

#[tokio::test]
async fn a_429_holds_the_host_until_its_reset() {
    let now = Utc::now();
    let server = server_with_session(now);
    let reset = Utc::now().timestamp() + 120;
    server.get(
        SEARCH,
        Answer::status(429, fixture("error_rate_limit.json", now))
            .header("ratelimit-limit", "3000")
            .header("ratelimit-remaining", "0")
            .header("ratelimit-reset", &reset.to_string())
            .header("ratelimit-policy", "3000;w=300"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    let wait = err
        .retry_after()
        .unwrap_or_else(|| panic!("no wait in {err}"));
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "ratelimit-reset is Unix seconds: {wait:?}"
    );
    assert_host_held(&spec, &http, &server, SEARCH).await;
    assert_eq!(server.hits(LOGIN), 1);
    assert_eq!(server.hits(REFRESH), 0, "a 429 is not a token problem");
}

#[tokio::test]
async fn a_refused_login_is_an_auth_error_that_names_what_to_check() {
    let now = Utc::now();
    let server = ApiServer::start();
    server.route(
        "POST",
        LOGIN,
        &[],
        vec![Answer::status(
            401,
            fixture("error_authentication_required.json", now),
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.needs_operator());
    let message = err.to_string();
    for key in ["handle", "app_password_env", "app_password_file"] {
        assert!(message.contains(key), "{key} not named in {message}");
    }
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(!format!("{err:?}").contains(PASSWORD));
    assert!(!format!("{:?}", spec.kind).contains(PASSWORD));
    assert!(!spec.kind.describe().contains(PASSWORD));
    assert_eq!(server.hits(SEARCH), 0, "no search without a session");
}

#[tokio::test]
async fn the_brands_reply_is_found_anywhere_below_the_complaint() {
    let now = Utc::now();
    let server = server_with_session(now);
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    let http = client();
    let posted = now - chrono::Duration::seconds(120);

    server.get(THREAD, Answer::json(fixture("thread_unanswered.json", now)));
    let none = find_reply(&spec, &http, COMPLAINT, COMPLAINT, posted)
        .await
        .unwrap();
    assert_eq!(
        none, None,
        "a fan's reply, a look-alike account, a deleted and a blocked reply are not the brand's"
    );
    let asked = &server.requests(THREAD)[0];
    assert_eq!(asked.param("uri"), Some(COMPLAINT));
    assert_eq!(asked.param("depth"), Some("10"));
    assert_eq!(
        asked.header("authorization"),
        Some(bearer(&field("create_session.json", "accessJwt")).as_str())
    );

    server.get(THREAD, Answer::json(fixture("thread_replied.json", now)));
    let reply = find_reply(&spec, &http, COMPLAINT, COMPLAINT, posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "northwindhelp.bsky.social");
    assert_eq!(
        iso(reply.at),
        iso(now - chrono::Duration::seconds(45)),
        "the earliest of the brand's two replies, nested under a fan's"
    );
    assert_eq!(
        reply.url.as_deref(),
        Some("https://bsky.app/profile/northwindhelp.bsky.social/post/3lbq32nwhlp2a")
    );

    // Only a post made at or after the complaint answers it.
    let later = now - chrono::Duration::seconds(30);
    let after = find_reply(&spec, &http, COMPLAINT, COMPLAINT, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(iso(after.at), iso(now - chrono::Duration::seconds(10)));
    assert_eq!(
        server.hits(LOGIN),
        1,
        "reply checks share the poll's session"
    );
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"bsky\"\nkind = \"bluesky\"\nbase_url = \"ftp://x\"\nrate_limit = \"lots\"\n",
        &[
            "source[0].query: missing `query`",
            "source[0].handle: missing `handle`",
            "source[0].app_password_env: missing `app_password_env` or `app_password_file`",
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].rate_limit: invalid rate limit \"lots\"",
        ],
    );

    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"bsky\"\nkind = \"bluesky\"\nquery = \"Northwind\"\nhandle = \"nw.bsky.social\"\n\
         app_password_env = \"EARSHOT_TEST_BSKY_UNSET_PASSWORD\"\n",
    );
    assert!(
        err.contains("source[0].app_password_env: environment variable EARSHOT_TEST_BSKY_UNSET_PASSWORD is not set"),
        "{err}"
    );

    let err = source_config_error(
        dir.path(),
        "\n[[source]]\nname = \"bsky\"\nkind = \"bluesky\"\nquery = \"Northwind\"\nhandle = \"nw.bsky.social\"\n\
         app_password = \"abcd-efgh-ijkl-mnop\"\n",
    );
    assert!(
        err.contains("source[0].app_password: unknown key `app_password`")
            && err.contains("use `app_password_env` or `app_password_file`"),
        "an inline password is refused: {err}"
    );
    assert!(!err.contains("abcd-efgh-ijkl-mnop"), "{err}");

    let server = ApiServer::start();
    let spec = source_spec(dir.path(), &source(&server, dir.path()));
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "3000/5m",
        "the PDS's documented limit is the default"
    );
    assert_eq!(spec.kind.name(), "bluesky");
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let now = Utc::now();
    let server = server_with_session(now);
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![Answer::json(fixture("search_page0.json", now))],
    );
    server.route(
        "GET",
        SEARCH,
        &[("cursor", "100")],
        vec![Answer::json(fixture("search_page1.json", now))],
    );
    server.route(
        "GET",
        THREAD,
        &[("uri", COMPLAINT)],
        vec![Answer::json(fixture("thread_replied.json", now))],
    );
    let block = format!(
        "\n[[source]]\nname = \"bsky\"\nkind = \"bluesky\"\nquery = \"Northwind\"\nhandle = \"northwind-monitor.bsky.social\"\n\
         app_password_env = \"EARSHOT_TEST_BSKY_E2E_PASSWORD\"\nbase_url = \"{}\"\nevery = \"1s\"\ntimeout = \"3s\"\n",
        server.base()
    );
    // Posted at -120 s, answered at -45 s: 75 seconds to reply, inside the hour.
    let log = assert_reply_closes_case(
        &block,
        "1h",
        &[("EARSHOT_TEST_BSKY_E2E_PASSWORD", PASSWORD)],
        &ReplyExpectation {
            key: COMPLAINT,
            replied_by: "northwindhelp.bsky.social",
            seconds_to_reply: 75,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: THREAD,
                param: Some(("uri", COMPLAINT)),
            },
        },
    );
    assert!(
        !log.contains(PASSWORD),
        "the password never reaches the log"
    );
    let access = field("create_session.json", "accessJwt");
    assert!(!log.contains(&access), "nor the token");
    assert_eq!(
        server.hits(LOGIN),
        1,
        "one login for every poll and reply check"
    );
}
