//! The `reddit` source against a real HTTP server on loopback serving payloads in Reddit's own shapes (OAuth token
//! answers, `Listing`s of `t3` posts and `t1` comments, `/comments/{article}` trees with nested `replies`; texts,
//! names and ids our own): the password grant and its cached token, first and incremental polls with `before`
//! cursors, paging, search, Reddit's rate-limit headers, refusals named once, and the brand's reply closing a case.

mod common;
mod support;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use common::*;
use earshot::source::{Cursor, SourceError};
use support::api::{Answer, ApiServer, payload};

const TOKEN: &str = "/api/v1/access_token";
const NEW: &str = "/r/northwind/new";
const COMMENTS: &str = "/r/northwind/comments";
const SEARCH: &str = "/search";

const SECRET: &str = "s3cr3t-Northwind-app";
const PASSWORD: &str = "hunter2-Northwind!";
const TOKEN_1: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IlNIQTI1NjpzS3dsMnlsV0VtMjVmcXhwTU40cWY4MXE2OWFFdWFyMnpLMUdhVGxjdWNZIiwidHlwIjoiSldUIn0.fake-northwind-token-1";
const TOKEN_2: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IlNIQTI1NjpzS3dsMnlsV0VtMjVmcXhwTU40cWY4MXE2OWFFdWFyMnpLMUdhVGxjdWNZIiwidHlwIjoiSldUIn0.fake-northwind-token-2";

/// A `reddit` source reading `what` (e.g. `subreddits = ["northwind"]`), with its secrets in files in `dir`.
fn source(server: &ApiServer, dir: &Path, what: &str) -> String {
    std::fs::write(dir.join("reddit_client_secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.join("reddit_password"), format!("{PASSWORD}\n")).unwrap();
    format!(
        "\n[[source]]\nname = \"reddit\"\nkind = \"reddit\"\n{what}\nclient_id = \"nw-script-9f3K\"\n\
         client_secret_file = \"reddit_client_secret\"\nusername = \"NorthwindBot\"\npassword_file = \"reddit_password\"\n\
         base_url = \"{base}\"\nauth_url = \"{base}\"\nevery = \"1s\"\ntimeout = \"3s\"\n",
        base = server.base()
    )
}

fn token_route(server: &ApiServer, now: chrono::DateTime<Utc>) {
    server.route(
        "POST",
        TOKEN,
        &[],
        vec![Answer::json(payload("reddit", "token.json", now))],
    );
}

/// The subreddit's listings as a first poll reads them (two pages of posts, one of comments and its empty tail).
fn subreddit_routes(server: &ApiServer, now: chrono::DateTime<Utc>) {
    server.get(NEW, Answer::json(payload("reddit", "new_page0.json", now)));
    server.route(
        "GET",
        NEW,
        &[("after", "t3_1g7jzpa")],
        vec![Answer::json(payload("reddit", "new_page1.json", now))],
    );
    server.get(
        COMMENTS,
        Answer::json(payload("reddit", "comments_page0.json", now)),
    );
    server.route(
        "GET",
        COMMENTS,
        &[("after", "t1_lr5sx9e")],
        vec![Answer::json(payload("reddit", "empty_listing.json", now))],
    );
}

fn cursor(position: &str) -> Cursor {
    Cursor {
        position: Some(position.to_string()),
        ..Cursor::default()
    }
}

#[tokio::test]
async fn first_poll_maps_posts_and_comments_and_pages_back() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    subreddit_routes(&server, now);
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"r/northwind\"]"),
    );
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "t3_1g7k3xq",
            "t3_1g7jzpa",
            "t3_1g7hq0c",
            "t1_lr5t2ab",
            "t1_lr5sx9e"
        ],
        "both pages of posts, then the comments"
    );
    let new = server.requests(NEW);
    assert_eq!(new.len(), 2, "the second page via `after`, then the end");
    assert_eq!(new[0].param("limit"), Some("100"));
    assert_eq!(new[0].param("raw_json"), Some("1"));
    assert_eq!(new[0].param("before"), None, "no cursor yet");
    assert_eq!(new[0].param("after"), None);
    assert_eq!(new[1].param("after"), Some("t3_1g7jzpa"));
    assert_eq!(server.hits(COMMENTS), 2, "an empty page ends the paging");

    let post = &polled.mentions[0];
    assert_eq!(
        post.text,
        "Northwind lost my checked bag on NW212 & nobody answers\n\
         Filed a report at the LIS desk three days ago and support still hasn't replied.\n\
         Bag tag NW 00482 if anyone from Northwind reads this. > 72 hours now.\n\
         Edit: the tracker says \"located\" but no delivery date.",
        "title and selftext; entities decoded, the editor's zero-width spaces and blank lines gone"
    );
    assert_eq!(post.author.as_deref(), Some("kestrel_dev"));
    assert_eq!(
        post.url.as_deref(),
        Some(
            "https://www.reddit.com/r/northwind/comments/1g7k3xq/northwind_lost_my_checked_bag_on_nw212_nobody/"
        )
    );
    assert_eq!(
        post.published_at.unwrap().timestamp(),
        now.timestamp() - 120
    );
    assert_eq!(post.lang, None, "Reddit gives no language");
    assert_eq!(
        post.thread.as_deref(),
        Some(r#"{"name":"t3_1g7k3xq","link_id":"t3_1g7k3xq"}"#)
    );
    let link_post = &polled.mentions[1];
    assert_eq!(
        link_post.text, "Northwind's new lounge at Porto is lovely",
        "a link post is its title"
    );

    let comment = &polled.mentions[3];
    assert_eq!(
        comment.text, "@NorthwindHelp where is my bag? day 3 now",
        "a comment is its body alone, not its post's title"
    );
    assert_eq!(comment.author.as_deref(), Some("maya_k"));
    assert_eq!(
        comment.url.as_deref(),
        Some(
            "https://www.reddit.com/r/northwind/comments/1g7a001/lost_baggage_megathread_october/lr5t2ab/"
        )
    );
    assert_eq!(
        comment.published_at.unwrap().timestamp(),
        now.timestamp() - 300
    );
    assert_eq!(
        comment.thread.as_deref(),
        Some(r#"{"name":"t1_lr5t2ab","link_id":"t3_1g7a001"}"#)
    );
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some(r#"{"r/northwind/comments":"t1_lr5t2ab","r/northwind/new":"t3_1g7k3xq"}"#),
        "each listing's newest fullname"
    );
}

#[tokio::test]
async fn an_incremental_poll_asks_only_for_items_newer_than_the_cursor() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    server.route(
        "GET",
        NEW,
        &[("before", "t3_1g7k3xq")],
        vec![Answer::json(payload("reddit", "new_incremental.json", now))],
    );
    server.route(
        "GET",
        COMMENTS,
        &[("before", "t1_lr5t2ab")],
        vec![Answer::json(payload(
            "reddit",
            "comments_incremental.json",
            now,
        ))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let from = cursor(r#"{"r/northwind/comments":"t1_lr5t2ab","r/northwind/new":"t3_1g7k3xq"}"#);
    let polled = poll_once(&spec, &client(), &from).await.unwrap();

    let new = server.requests(NEW);
    assert_eq!(new.len(), 1, "`before` is null: nothing newer to page to");
    assert_eq!(new[0].param("before"), Some("t3_1g7k3xq"));
    assert_eq!(new[0].param("after"), None);
    assert_eq!(new[0].param("limit"), Some("100"));
    let comments = server.requests(COMMENTS);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].param("before"), Some("t1_lr5t2ab"));

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["t3_1g7k5dd", "t1_lr5u0fk"]);
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some(r#"{"r/northwind/comments":"t1_lr5u0fk","r/northwind/new":"t3_1g7k5dd"}"#)
    );
}

#[tokio::test]
async fn a_deleted_anchor_does_not_stall_the_listing() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    subreddit_routes(&server, now);
    // Reddit answers an empty listing for `before=<a removed comment>`, however much is newer.
    server.route(
        "GET",
        COMMENTS,
        &[("before", "t1_lr5sx9e")],
        vec![Answer::json(payload("reddit", "empty_listing.json", now))],
    );
    server.route(
        "GET",
        NEW,
        &[("before", "t3_1g7k3xq")],
        vec![Answer::json(payload("reddit", "empty_listing.json", now))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let from = cursor(r#"{"r/northwind/comments":"t1_lr5sx9e","r/northwind/new":"t3_1g7k3xq"}"#);
    let polled = poll_once(&spec, &client(), &from).await.unwrap();

    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["t1_lr5t2ab"],
        "only what is newer than the cursor, from the newest page"
    );
    let comments = server.requests(COMMENTS);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1].param("before"), None, "the check reads the top");
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some(r#"{"r/northwind/comments":"t1_lr5t2ab","r/northwind/new":"t3_1g7k3xq"}"#)
    );
}

#[tokio::test]
async fn search_pages_back_to_the_cursor_within_its_bound() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    // A listing that never ends: only `max_pages` stops it.
    server.get(
        SEARCH,
        Answer::json(payload("reddit", "search_page0.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\"\nmax_pages = 2"),
    );
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2, "bounded by max_pages");
    assert_eq!(asked[0].param("q"), Some("Northwind"));
    assert_eq!(asked[0].param("sort"), Some("new"));
    assert_eq!(asked[0].param("restrict_sr"), None, "site-wide");
    assert_eq!(asked[1].param("after"), Some("t3_1g7ju11"));
    assert_eq!(
        polled.mentions.len(),
        3,
        "repeats within a poll are dropped"
    );
    assert_eq!(
        polled.mentions[0].text,
        "Northwind vs. Contoso Air for Lisbon → Boston?\nFlying in March. Northwind is cheaper but I read mixed things about their support."
    );
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some(r#"{"search":"t3_1g7k4rr"}"#)
    );

    // Next time the first page already reaches the cursor: no second page, and no `before` (search lags).
    let again = poll_once(&spec, &client(), &cursor(r#"{"search":"t3_1g7k0aa"}"#))
        .await
        .unwrap();
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 3, "one page");
    assert_eq!(asked[2].param("before"), None);
    assert_eq!(again.mentions.len(), 3, "the store drops what it has seen");
}

#[tokio::test]
async fn a_search_with_subreddits_stays_in_them() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    let path = "/r/northwind+flying/search";
    server.get(
        path,
        Answer::json(payload("reddit", "empty_listing.json", now)),
    );
    for sub in ["northwind", "flying"] {
        for which in ["new", "comments"] {
            server.get(
                &format!("/r/{sub}/{which}"),
                Answer::json(payload("reddit", "empty_listing.json", now)),
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(
            &server,
            dir.path(),
            "subreddits = [\"northwind\", \"flying\"]\nquery = \"Northwind refund\"",
        ),
    );
    let polled = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    assert!(polled.mentions.is_empty());
    assert_eq!(polled.cursor.position, None, "nothing seen, nothing kept");
    let asked = server.requests(path);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].param("restrict_sr"), Some("1"));
    assert_eq!(asked[0].param("q"), Some("Northwind refund"));
    assert_eq!(server.hits("/r/flying/comments"), 1);
    assert_eq!(server.hits(SEARCH), 0, "not site-wide");
}

#[tokio::test]
async fn the_token_is_asked_for_once_and_sent_as_bearer() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    subreddit_routes(&server, now);
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let http = client();
    poll_once(&spec, &http, &Cursor::default()).await.unwrap();
    poll_once(&spec, &http, &Cursor::default()).await.unwrap();

    let token = server.requests(TOKEN);
    assert_eq!(token.len(), 1, "two polls, one token: it lives for a day");
    assert_eq!(token[0].method, "POST");
    assert_eq!(
        token[0].header("authorization"),
        Some("Basic bnctc2NyaXB0LTlmM0s6czNjcjN0LU5vcnRod2luZC1hcHA="),
        "HTTP Basic client_id:client_secret"
    );
    assert_eq!(
        token[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        token[0].body_text(),
        "grant_type=password&username=NorthwindBot&password=hunter2-Northwind%21"
    );
    let calls: Vec<_> = server
        .all_requests()
        .into_iter()
        .filter(|r| r.path != TOKEN)
        .collect();
    assert_eq!(calls.len(), 8);
    for call in &calls {
        assert_eq!(
            call.header("authorization"),
            Some(format!("bearer {TOKEN_1}").as_str()),
            "{}",
            call.path
        );
        assert_eq!(call.param("raw_json"), Some("1"), "{}", call.path);
    }
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let server = ApiServer::start();
    let now = Utc::now();
    server.route(
        "POST",
        TOKEN,
        &[],
        vec![
            Answer::json(payload("reddit", "token.json", now)),
            Answer::json(payload("reddit", "token_renewed.json", now)),
        ],
    );
    server.route(
        "GET",
        SEARCH,
        &[],
        vec![
            Answer::status(401, payload("reddit", "unauthorized.json", now)),
            Answer::json(payload("reddit", "empty_listing.json", now)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\""),
    );
    poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap();
    assert_eq!(server.hits(TOKEN), 2, "a revoked token is replaced");
    let asked = server.requests(SEARCH);
    assert_eq!(asked.len(), 2);
    assert_eq!(
        asked[0].header("authorization"),
        Some(format!("bearer {TOKEN_1}").as_str())
    );
    assert_eq!(
        asked[1].header("authorization"),
        Some(format!("bearer {TOKEN_2}").as_str())
    );
}

#[tokio::test]
async fn a_refusal_is_an_auth_error_that_names_the_keys_and_no_secret() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    server.get(
        SEARCH,
        Answer::status(401, payload("reddit", "unauthorized.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\""),
    );
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.needs_operator());
    assert_eq!(
        server.hits(TOKEN),
        2,
        "one renewal, then the refusal stands"
    );
    assert_eq!(server.hits(SEARCH), 2, "tried once more, not in a loop");
    let text = format!("{err} {err:?}");
    for key in [
        "client_id",
        "client_secret_env",
        "client_secret_file",
        "username",
        "password_env",
        "password_file",
        "approval",
    ] {
        assert!(text.contains(key), "{key} not named in {text}");
    }
    for secret in [SECRET, PASSWORD, TOKEN_1, "fake-northwind-token"] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }

    // A wrong password is a 200 from the token endpoint with an error in it.
    let server = ApiServer::start();
    server.route(
        "POST",
        TOKEN,
        &[],
        vec![Answer::json(payload(
            "reddit",
            "token_invalid_grant.json",
            now,
        ))],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\""),
    );
    let err = poll_once(&spec, &client(), &Cursor::default())
        .await
        .unwrap_err();
    assert!(err.needs_operator(), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("invalid_grant") && text.contains("password_env"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD) && !text.contains(SECRET), "{text}");
    assert_eq!(server.hits(SEARCH), 0, "no call without a token");
}

#[tokio::test]
async fn a_429_holds_the_host_until_its_reset() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    server.get(
        SEARCH,
        Answer::status(429, payload("reddit", "too_many_requests.json", now))
            .header("x-ratelimit-used", "100")
            .header("x-ratelimit-remaining", "0.0")
            .header("x-ratelimit-reset", "42"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\""),
    );
    let http = client();
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(42)), "{err}");
    assert_host_held(&spec, &http, &server, SEARCH).await;
}

#[tokio::test]
async fn no_requests_remaining_holds_the_host_after_a_success() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    server.get(
        SEARCH,
        Answer::json(payload("reddit", "search_page0.json", now))
            .header("x-ratelimit-used", "600")
            .header("x-ratelimit-remaining", "0.0")
            .header("x-ratelimit-reset", "300"),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\"\nmax_pages = 1"),
    );
    let http = client();
    let polled = poll_once(&spec, &http, &Cursor::default()).await.unwrap();
    assert_eq!(polled.mentions.len(), 3, "the answer itself is used");
    let err = poll_once(&spec, &http, &Cursor::default())
        .await
        .unwrap_err();
    let wait = err.retry_after().expect("a hold has a wait");
    assert!(
        wait > Duration::from_secs(250) && wait <= Duration::from_secs(300),
        "{wait:?}"
    );
    assert_eq!(server.hits(SEARCH), 1, "the held host is not asked again");
}

#[tokio::test]
async fn the_brands_reply_is_found_below_a_comment_complaint() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    let thread_path = "/comments/1g7a001";
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let thread = r#"{"name":"t1_lr5t2ab","link_id":"t3_1g7a001"}"#;
    let posted = now - chrono::Duration::seconds(300);

    server.get(
        thread_path,
        Answer::json(payload("reddit", "thread_lr5t2ab_unanswered.json", now)),
    );
    let none = find_reply(&spec, &client(), "t1_lr5t2ab", thread, posted)
        .await
        .unwrap();
    assert_eq!(none, None, "only other users answered");
    let asked = &server.requests(thread_path)[0];
    assert_eq!(
        asked.param("comment"),
        Some("lr5t2ab"),
        "focused on the complaint"
    );
    assert_eq!(asked.param("sort"), Some("new"));
    assert_eq!(asked.param("raw_json"), Some("1"));
    assert_eq!(
        asked.header("authorization"),
        Some(format!("bearer {TOKEN_1}").as_str())
    );

    server.get(
        thread_path,
        Answer::json(payload("reddit", "thread_lr5t2ab_replied.json", now)),
    );
    let reply = find_reply(&spec, &client(), "t1_lr5t2ab", thread, posted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, "NorthwindHelp");
    assert_eq!(
        reply.at.timestamp(),
        now.timestamp() - 45,
        "the earliest of the brand's two replies"
    );
    assert_eq!(
        reply.url.as_deref(),
        Some(
            "https://www.reddit.com/r/northwind/comments/1g7a001/lost_baggage_megathread_october/lr5t9zz/"
        )
    );
}

#[tokio::test]
async fn the_brands_reply_anywhere_under_a_post_complaint_counts() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    let thread_path = "/comments/1g7k3xq";
    server.get(
        thread_path,
        Answer::json(payload("reddit", "thread_1g7k3xq_replied.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let thread = r#"{"name":"t3_1g7k3xq","link_id":"t3_1g7k3xq"}"#;
    let reply = find_reply(
        &spec,
        &client(),
        "t3_1g7k3xq",
        thread,
        now - chrono::Duration::seconds(120),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        reply.author, "NorthwindHelp",
        "not the look-alike NorthwindHelpFan"
    );
    assert_eq!(reply.at.timestamp(), now.timestamp() - 60);
    assert_eq!(
        reply.url.as_deref(),
        Some(
            "https://www.reddit.com/r/northwind/comments/1g7k3xq/northwind_lost_my_checked_bag_on_nw212_nobody/lr5ua10/"
        )
    );
    assert_eq!(
        server.requests(thread_path)[0].param("comment"),
        None,
        "the whole tree of a post"
    );

    // A brand comment older than the complaint cannot answer it.
    let none = find_reply(
        &spec,
        &client(),
        "t3_1g7k3xq",
        thread,
        now - chrono::Duration::seconds(30),
    )
    .await
    .unwrap();
    assert_eq!(none, None);
}

#[test]
fn config_names_missing_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"reddit\"\nkind = \"reddit\"\nsubreddits = [\"north wind\"]\n\
         client_secret_env = \"EARSHOT_TEST_REDDIT_NOT_SET_7Q\"\nbase_url = \"ftp://x\"\nauth_url = \"nowhere\"\n\
         rate_limit = \"lots\"\nmax_pages = 0\n",
        &[
            "source[0].subreddits: \"north wind\" is not a subreddit name",
            "source[0].client_id: missing `client_id`",
            "source[0].client_secret_env: environment variable EARSHOT_TEST_REDDIT_NOT_SET_7Q is not set",
            "source[0].username: missing `username`",
            "source[0].password_env: missing `password_env` or `password_file`",
            "source[0].base_url: unsupported scheme \"ftp\"",
            "source[0].auth_url: \"nowhere\" is not a URL",
            "source[0].rate_limit: invalid rate limit \"lots\"",
            "source[0].max_pages: must be at least 1",
        ],
    );

    let err = assert_config_problems(
        dir.path(),
        "\n[[source]]\nname = \"reddit\"\nkind = \"reddit\"\nclient_id = \"abc\"\nusername = \"NorthwindBot\"\n\
         password = \"hunter2\"\npassword_file = \"no_such_file\"\n",
        &[
            "source[0].subreddits: give `subreddits`",
            "source[0].client_secret_env: missing `client_secret_env` or `client_secret_file`",
            "source[0].password: unknown key `password` for kind \"reddit\" (secrets never go in the file",
            "source[0].password_file: cannot read",
        ],
    );
    assert!(!err.contains("hunter2"), "{err}");

    let server = ApiServer::start();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "query = \"Northwind\""),
    );
    assert_eq!(
        spec.limit.unwrap().to_string(),
        "100/1m",
        "Reddit's documented 100 requests a minute per OAuth client is the default"
    );
    let described = spec.kind.describe();
    assert!(
        described.contains("search \"Northwind\" site-wide"),
        "{described}"
    );
    assert!(
        !described.contains(SECRET) && !described.contains(PASSWORD),
        "{described}"
    );
}

#[test]
fn the_brands_reply_closes_the_case_end_to_end() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    subreddit_routes(&server, now);
    server.get(
        "/comments/1g7a001",
        Answer::json(payload("reddit", "thread_lr5t2ab_replied.json", now)),
    );
    server.get(
        "/comments/1g7k3xq",
        Answer::json(payload("reddit", "thread_1g7k3xq_replied.json", now)),
    );
    let block = format!(
        "\n[[source]]\nname = \"reddit\"\nkind = \"reddit\"\nsubreddits = [\"northwind\"]\nclient_id = \"nw-script-9f3K\"\n\
         client_secret_env = \"EARSHOT_TEST_REDDIT_E2E_SECRET\"\nusername = \"NorthwindBot\"\n\
         password_env = \"EARSHOT_TEST_REDDIT_E2E_PASSWORD\"\nbase_url = \"{base}\"\nauth_url = \"{base}\"\n\
         every = \"1s\"\ntimeout = \"3s\"\n",
        base = server.base()
    );
    // Posted at -300 s, answered at -45 s: 255 seconds to reply, inside the hour.
    let log = assert_reply_closes_case(
        &block,
        "1h",
        &[
            ("EARSHOT_TEST_REDDIT_E2E_SECRET", SECRET),
            ("EARSHOT_TEST_REDDIT_E2E_PASSWORD", PASSWORD),
        ],
        &ReplyExpectation {
            key: "t1_lr5t2ab",
            replied_by: "NorthwindHelp",
            seconds_to_reply: 255,
            late: false,
            thread: ThreadEndpoint {
                server: &server,
                path: "/comments/1g7a001",
                param: Some(("comment", "lr5t2ab")),
            },
        },
    );
    for secret in [SECRET, PASSWORD, TOKEN_1] {
        assert!(!log.contains(secret), "secret in the log:\n{log}");
    }
}

#[tokio::test]
async fn an_incremental_poll_pages_on_towards_the_newest() {
    let server = ApiServer::start();
    let now = Utc::now();
    token_route(&server, now);
    // More is newer than this page: Reddit names the page's newest item in `before`.
    let page = payload("reddit", "new_incremental.json", now)
        .replace("\"before\": null", "\"before\": \"t3_1g7k5dd\"");
    assert!(page.contains("\"before\": \"t3_1g7k5dd\""));
    server.route(
        "GET",
        NEW,
        &[("before", "t3_1g7k3xq")],
        vec![Answer::json(page)],
    );
    server.route(
        "GET",
        NEW,
        &[("before", "t3_1g7k5dd")],
        vec![Answer::json(payload("reddit", "empty_listing.json", now))],
    );
    server.get(
        COMMENTS,
        Answer::json(payload("reddit", "empty_listing.json", now)),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = source_spec(
        dir.path(),
        &source(&server, dir.path(), "subreddits = [\"northwind\"]"),
    );
    let polled = poll_once(
        &spec,
        &client(),
        &cursor(r#"{"r/northwind/new":"t3_1g7k3xq"}"#),
    )
    .await
    .unwrap();
    let new = server.requests(NEW);
    assert_eq!(new.len(), 2);
    assert_eq!(new[1].param("before"), Some("t3_1g7k5dd"));
    let keys: Vec<&str> = polled.mentions.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["t3_1g7k5dd"]);
    assert_eq!(
        polled.cursor.position.as_deref(),
        Some(r#"{"r/northwind/new":"t3_1g7k5dd"}"#),
        "a listing that has never shown anything keeps no cursor"
    );
}
