//! Config builders and small helpers shared by the black-box tests (the servers live in `support`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::support::feeds::Item;

/// The brand every test watches.
pub const BRAND: &str = r##"
[[brand]]
name = "Northwind"
terms = ["Northwind", "@NorthwindHelp", "#Northwind"]
exclude = ["northwind trader"]
accounts = ["NorthwindHelp"]
"##;

/// Fast retries, so outage tests take seconds.
pub const FAST_DELIVERY: &str =
    "\n[delivery]\nretry_initial = \"200ms\"\nretry_max = \"1s\"\ntimeout = \"5s\"\n";

/// Writes `earshot.toml` into `dir` (state in `dir/state`) and returns its path as a string.
pub fn write_config(dir: &Path, body: &str) -> String {
    write_config_with(dir, "", body)
}

/// Like [`write_config`], with extra `[daemon]` keys.
pub fn write_config_with(dir: &Path, daemon: &str, body: &str) -> String {
    let text = format!(
        "[daemon]\nstate_dir = \"state\"\nper_host_interval = \"10ms\"\n{daemon}\n{BRAND}\n{body}"
    );
    let path = dir.join("earshot.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A feed source block.
pub fn feed_source(name: &str, url: &str, every: &str) -> String {
    format!(
        "\n[[source]]\nname = \"{name}\"\nkind = \"feed\"\nurl = \"{url}\"\nevery = \"{every}\"\ntimeout = \"3s\"\n"
    )
}

/// An SLA block with `(after, notifiers)` tiers.
pub fn sla(reply_within: &str, tiers: &[(&str, &[&str])]) -> String {
    let mut s = format!("\n[sla]\nreply_within = \"{reply_within}\"\n");
    for (after, who) in tiers {
        let names: Vec<String> = who.iter().map(|n| format!("\"{n}\"")).collect();
        s.push_str(&format!(
            "[[sla.tier]]\nafter = \"{after}\"\nnotify = [{}]\n",
            names.join(", ")
        ));
    }
    s
}

/// An email notifier to an SMTP server on loopback.
pub fn email_notifier(name: &str, port: u16) -> String {
    format!(
        "\n[[notify]]\nname = \"{name}\"\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:{port}\"\nfrom = \"earshot@example.com\"\nto = [\"support@example.com\"]\n"
    )
}

/// A webhook notifier; signed with the secret in `EARSHOT_TEST_WEBHOOK_SECRET` when `signed`.
pub fn webhook_notifier(name: &str, url: &str, signed: bool) -> String {
    let secret = if signed {
        "secret_env = \"EARSHOT_TEST_WEBHOOK_SECRET\"\n"
    } else {
        ""
    };
    format!("\n[[notify]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n{secret}")
}

/// A file notifier writing `dir/<file>`.
pub fn file_notifier(name: &str, file: &str) -> String {
    format!("\n[[notify]]\nname = \"{name}\"\nkind = \"file\"\npath = \"{file}\"\n")
}

/// A complaint nobody could read as anything else.
pub fn complaint(guid: &str, published: Option<DateTime<Utc>>) -> Item {
    Item {
        guid: guid.into(),
        title: "@NorthwindHelp where is my refund?".into(),
        body: "Cancelled flight, asked for a refund three weeks ago, still waiting and no reply. Worst service ever!".into(),
        author: Some("maya_k".into()),
        link: Some(format!("https://reviews.example/{guid}")),
        published,
    }
}

/// A happy mention of the brand.
pub fn praise(guid: &str) -> Item {
    Item {
        guid: guid.into(),
        title: "Thank you Northwind".into(),
        body: "Lovely crew and a smooth flight, thanks!".into(),
        author: Some("joao".into()),
        link: None,
        published: Some(Utc::now()),
    }
}

/// Now, truncated to whole seconds (RSS dates have no fractions).
pub fn now_s() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every JSON line of a file (none if it does not exist).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The cases of the store in `dir`, via `earshot cases --json`.
pub fn cases(dir: &Path, config: &str) -> Vec<serde_json::Value> {
    let (code, out, err) =
        crate::support::daemon::earshot(dir, &["cases", "--json", "--config", config], &[], None);
    assert_eq!(code, 0, "cases failed: {err}");
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}

/// Seconds between two instants, for messages.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The state directory of a test dir.
pub fn state(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// A plain HTTP/1.1 GET; returns the whole response, status line first.
pub fn http_get(addr: &str, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// A plain HTTP/1.1 POST with a JSON body (none when empty).
pub fn http_post(addr: &str, path: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".into()
    };
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The one `[[source]]` of a config made of [`BRAND`] and `source_block`, parsed and validated as the daemon would.
pub fn source_spec(dir: &Path, source_block: &str) -> earshot::config::SourceSpec {
    let path = write_config(dir, source_block);
    let config = earshot::config::parse(Path::new(&path), &std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("config refused: {e}"));
    config.sources.into_iter().next().expect("one source")
}

/// The config error for a config made of [`BRAND`] and `source_block`, as text.
pub fn source_config_error(dir: &Path, source_block: &str) -> String {
    let path = write_config(dir, source_block);
    match earshot::config::parse(Path::new(&path), &std::fs::read_to_string(&path).unwrap()) {
        Ok(_) => panic!("config accepted:\n{source_block}"),
        Err(e) => e.to_string(),
    }
}

/// A polite client as the daemon makes one (tiny per-host spacing, so tests are quick).
pub fn client() -> earshot::http::HttpClient {
    earshot::http::HttpClient::new("earshot-test/1", Duration::from_millis(1)).unwrap()
}

/// Polls `spec` once from `cursor`.
pub async fn poll_once(
    spec: &earshot::config::SourceSpec,
    http: &earshot::http::HttpClient,
    cursor: &earshot::source::Cursor,
) -> Result<earshot::source::Polled, earshot::source::SourceError> {
    spec.kind.poll(&poll_ctx(spec, http, cursor)).await
}

/// The context the poller gives a source.
pub fn poll_ctx<'a>(
    spec: &'a earshot::config::SourceSpec,
    http: &'a earshot::http::HttpClient,
    cursor: &'a earshot::source::Cursor,
) -> earshot::source::PollCtx<'a> {
    earshot::source::PollCtx {
        name: &spec.name,
        http,
        timeout: spec.timeout,
        max_body: spec.max_body,
        cursor,
        now: Utc::now(),
        limit: spec.limit,
    }
}

/// Asks `spec` whether the brand (accounts as in [`BRAND`]) answered the complaint `key` (thread `thread`),
/// posted at `posted_at`.
pub async fn find_reply(
    spec: &earshot::config::SourceSpec,
    http: &earshot::http::HttpClient,
    key: &str,
    thread: &str,
    posted_at: DateTime<Utc>,
) -> Result<Option<earshot::source::FoundReply>, earshot::source::SourceError> {
    let cursor = earshot::source::Cursor::default();
    let check = earshot::source::ReplyCheck {
        case_id: 1,
        key: key.into(),
        thread: thread.into(),
        posted_at,
        accounts: vec!["NorthwindHelp".into()],
    };
    spec.kind
        .find_reply(&poll_ctx(spec, http, &cursor), &check)
        .await
}

/// What the black-box reply test expects of a platform.
pub struct ReplyExpectation<'a> {
    /// The complaint's platform id.
    pub key: &'a str,
    /// The brand account that answers.
    pub replied_by: &'a str,
    /// Seconds from the complaint to the answer.
    pub seconds_to_reply: i64,
    /// Whether the answer came after the deadline.
    pub late: bool,
    /// The complaint's thread endpoint, whose checks must stop once the case is closed.
    pub thread: ThreadEndpoint<'a>,
}

/// Where a source looks for replies to one complaint: a path, and a query pair when the path serves every thread.
pub struct ThreadEndpoint<'a> {
    pub server: &'a crate::support::api::ApiServer,
    pub path: &'a str,
    pub param: Option<(&'a str, &'a str)>,
}

impl ThreadEndpoint<'_> {
    /// Requests for this complaint's thread so far.
    pub fn checks(&self) -> usize {
        self.server
            .requests(self.path)
            .iter()
            .filter(|r| self.param.is_none_or(|(k, v)| r.param(k) == Some(v)))
            .count()
    }
}

/// Runs the daemon on `source_block` (a [[source]] polling every second) with a one-hour SLA (or `reply_within`)
/// and a `file` notifier, and asserts the promise of reply detection: the complaint opens a case, the brand's
/// reply in its thread closes it with `case.closed` (reason `reply`, who, time to reply), and `earshot cases`
/// shows it closed by that reply. Returns the daemon's log.
pub fn assert_reply_closes_case(
    source_block: &str,
    reply_within: &str,
    env: &[(&str, &str)],
    want: &ReplyExpectation<'_>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{source_block}{}{}",
        sla(reply_within, &[("0s", &["log"])]),
        file_notifier("log", "alerts.jsonl")
    );
    let config = write_config(dir.path(), &body);
    let daemon =
        crate::support::daemon::Daemon::spawn(dir.path(), &["run", "--config", &config], env);
    let alerts = dir.path().join("alerts.jsonl");
    let closed = crate::support::feeds::wait_until(Duration::from_secs(20), || {
        let events = read_jsonl(&alerts);
        events.iter().any(|a| {
            a["event"] == "case.closed"
                && events.iter().any(|o| {
                    o["event"] == "complaint.opened"
                        && o["mention"]["id"] == want.key
                        && o["case_id"] == a["case_id"]
                })
        })
    });
    let log = daemon.log();
    assert!(
        closed,
        "no case.closed alert; alerts: {:?}\nlog:\n{log}",
        read_jsonl(&alerts)
    );
    let events = read_jsonl(&alerts);
    let opened = events
        .iter()
        .find(|a| a["event"] == "complaint.opened" && a["mention"]["id"] == want.key)
        .unwrap_or_else(|| panic!("no complaint.opened for {}: {events:?}", want.key));
    let close = events
        .iter()
        .find(|a| a["event"] == "case.closed" && a["case_id"] == opened["case_id"])
        .unwrap_or_else(|| panic!("the complaint's case did not close: {events:?}"));
    let c = &close["closure"];
    assert_eq!(c["reason"], "reply", "{close}");
    assert_eq!(c["replied_by"], want.replied_by, "{close}");
    assert_eq!(c["seconds_to_reply"], want.seconds_to_reply, "{close}");
    assert_eq!(c["late"], want.late, "{close}");
    let rows = cases(dir.path(), &config);
    let row = rows
        .iter()
        .find(|r| r["id"] == opened["case_id"])
        .unwrap_or_else(|| panic!("case not listed: {rows:?}"));
    assert_eq!(row["state"], "closed");
    assert_eq!(row["close_reason"], "reply");
    assert_eq!(row["replied_by"], want.replied_by);
    // A closed case gets no more reply checks: give the poller three more rounds.
    let checks = want.thread.checks();
    assert!(checks >= 1, "the thread was never checked");
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        want.thread.checks(),
        checks,
        "reply checks go on after the case closed"
    );
    drop(daemon);
    log
}

/// Asserts that a config made of [`BRAND`] and `source_block` is refused with every one of `wants` among its
/// problems (each written as `key.path: reason`); returns the whole error text.
pub fn assert_config_problems(dir: &Path, source_block: &str, wants: &[&str]) -> String {
    let err = source_config_error(dir, source_block);
    for want in wants {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    err
}

/// After a poll of `spec` failed with a 429 (or 503) naming a wait, asserts that the next poll is refused by the
/// client itself ("asked us to wait") and that `path` on `server` was not asked again.
pub async fn assert_host_held(
    spec: &earshot::config::SourceSpec,
    http: &earshot::http::HttpClient,
    server: &crate::support::api::ApiServer,
    path: &str,
) {
    let hits = server.hits(path);
    let again = poll_once(spec, http, &earshot::source::Cursor::default())
        .await
        .unwrap_err();
    assert!(again.to_string().contains("asked us to wait"), "{again}");
    assert_eq!(server.hits(path), hits, "the held host is not asked again");
}
