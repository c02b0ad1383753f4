//! Nothing lost, nothing twice: restarts (kill -9 included), receivers that are down, tiers that fall due while
//! the daemon is down, permanent refusals, clean stops, reloads and the systemd notify protocol.

mod common;
mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;
use support::daemon::Daemon;
use support::feeds::{rss, wait_until};
use support::http::{FeedServer, Reply};
use support::smtp::SmtpSink;
use support::webhook::WebhookReceiver;

fn run(dir: &std::path::Path, config: &str) -> Daemon {
    Daemon::spawn(dir, &["run", "--config", config], &[])
}

#[test]
fn kill_9_between_fetch_and_delivery_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s())), praise("p1")])),
    );
    let hook = WebhookReceiver::start(None);
    hook.respond_with(503);
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla("1h", &[("0s", &["lead"])]),
            webhook_notifier("lead", &hook.url(), false),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let mut d = run(dir.path(), &config);
    assert!(
        wait_until(Duration::from_secs(10), || hook.deliveries().len() >= 2),
        "no retries:\n{}",
        d.log()
    );
    d.kill9();
    hook.respond_with(200);
    let before = hook.deliveries().len();

    let d2 = run(dir.path(), &config);
    let ok = hook.wait_for(1, Duration::from_secs(10));
    assert_eq!(ok.len(), 1, "not delivered after restart:\n{}", d2.log());
    std::thread::sleep(Duration::from_secs(3));
    let all = hook.deliveries();
    let id = |d: &support::webhook::Delivery| {
        d.headers
            .iter()
            .find(|(k, _)| k == "webhook-id")
            .map(|(_, v)| v.clone())
    };
    assert!(
        all.iter().all(|d| id(d) == id(&all[0])),
        "every attempt carries the same idempotency key"
    );
    assert_eq!(
        hook.wait_for(1, Duration::ZERO).len(),
        1,
        "delivered exactly once"
    );
    assert_eq!(all.len(), before + 1, "no attempt after the successful one");
    assert_eq!(
        cases(dir.path(), &config).len(),
        1,
        "the re-polled complaint opened no second case"
    );
}

#[test]
fn tiers_that_fall_due_while_down_fire_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    // Undated, so the timeline counts from the first fetch: a slow start on a busy machine cannot let the
    // warning fall due before the opening alert is delivered.
    feeds.set("/feed.xml", Reply::feed_xml(rss(&[complaint("c1", None)])));
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla(
                "4s",
                &[
                    ("0s", &["journal"]),
                    ("2s", &["journal"]),
                    ("4s", &["journal"]),
                ],
            ),
            file_notifier("journal", "alerts.jsonl"),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let alerts = dir.path().join("alerts.jsonl");
    let mut d = run(dir.path(), &config);
    // Killed once the opening alert is delivered *and recorded* (a kill between the two re-sends it, by design).
    assert!(
        d.wait_log("alert delivered", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    assert_eq!(read_jsonl(&alerts).len(), 1);
    d.kill9();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(read_jsonl(&alerts).len(), 1, "nothing fires while down");

    let d2 = run(dir.path(), &config);
    assert!(
        wait_until(Duration::from_secs(5), || read_jsonl(&alerts).len() >= 3),
        "{}",
        d2.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let events: Vec<String> = read_jsonl(&alerts)
        .iter()
        .map(|a| a["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["complaint.opened", "sla.warning", "sla.breached"]);
}

#[test]
fn smtp_down_then_up_everything_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[
            complaint("c1", Some(now_s())),
            complaint("c2", Some(now_s())),
        ])),
    );
    let port = free_port();
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla("1h", &[("0s", &["support"])]),
            email_notifier("support", port),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let d = run(dir.path(), &config);
    assert!(
        d.wait_log("alert delivery failed; will retry", Duration::from_secs(10)),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let smtp = SmtpSink::start_on(port);
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2, "{}", d.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 2, "no duplicates");
}

#[test]
fn a_permanent_refusal_is_recorded_and_not_retried_and_the_api_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s()))])),
    );
    let hook = WebhookReceiver::start(None);
    hook.respond_with(400);
    let config = write_config_with(
        dir.path(),
        "listen = \"127.0.0.1:0\"",
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla("1h", &[("0s", &["lead"])]),
            webhook_notifier("lead", &hook.url(), false),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let d = run(dir.path(), &config);
    assert!(
        d.wait_log("alert refused for good", Duration::from_secs(10)),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.deliveries().len(), 1, "a 400 must not be retried");

    let log = d.log();
    let addr = log
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("API address logged");
    let get = |path: &str| http_get(addr, path);
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let ready = get("/readyz");
    assert!(ready.contains("\"failed\":1"), "{ready}");
    let listed = get("/api/cases?open=true");
    assert!(
        listed.contains("\"brand\":\"Northwind\"") && listed.contains("\"state\":\"open\""),
        "{listed}"
    );
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &file_notifier("journal", "a.jsonl"));
    let first = run(dir.path(), &config);
    assert!(
        first.wait_log("earshot starting", Duration::from_secs(5)),
        "{}",
        first.log()
    );
    let (code, _, err) =
        support::daemon::earshot(dir.path(), &["run", "--config", &config], &[], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another earshot is already running"), "{err}");
}

#[test]
fn sigterm_stops_cleanly_within_seconds_even_with_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/slow",
        Reply::Drip {
            every: Duration::from_millis(300),
        },
    );
    let config = write_config(
        dir.path(),
        &[
            feed_source("slow", &feeds.url("/slow"), "1s"),
            file_notifier("journal", "a.jsonl"),
        ]
        .concat(),
    );
    let mut d = run(dir.path(), &config);
    assert!(wait_until(Duration::from_secs(5), || feeds.hits("/slow") >= 1));
    d.sigterm();
    let status = d
        .wait_exit(Duration::from_secs(5))
        .expect("did not exit within 5s");
    assert!(status.success(), "exit status {status:?}\n{}", d.log());
    assert!(d.log().contains("stopped"), "{}", d.log());
}

#[test]
fn systemd_notify_ready_reload_and_stop_and_a_bad_reload_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let feeds = FeedServer::start();
    feeds.set("/a.xml", Reply::feed_xml(rss(&[praise("p1")])));
    feeds.set(
        "/b.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s()))])),
    );
    let base = [
        sla("1h", &[("0s", &["journal"])]),
        file_notifier("journal", "alerts.jsonl"),
    ]
    .concat();
    let config = write_config(
        dir.path(),
        &[feed_source("a", &feeds.url("/a.xml"), "1s"), base.clone()].concat(),
    );
    let mut d = Daemon::spawn(
        dir.path(),
        &["run", "--config", &config],
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "300000"),
        ],
    );
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("no notify message");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut first = recv();
    while first.starts_with("WATCHDOG") {
        first = recv();
    }
    assert!(first.contains("READY=1"), "{first}");
    let mut saw_watchdog = false;
    for _ in 0..5 {
        saw_watchdog |= recv().contains("WATCHDOG=1");
    }
    assert!(saw_watchdog);

    // A broken config on reload is rejected and the running one stays.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + "\nbogus = 1\n",
    )
    .unwrap();
    d.sighup();
    assert!(
        d.wait_log("new config rejected", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    // A good one adds a source that starts polling.
    let config2 = write_config(
        dir.path(),
        &[
            feed_source("a", &feeds.url("/a.xml"), "1s"),
            feed_source("b", &feeds.url("/b.xml"), "1s"),
            base,
        ]
        .concat(),
    );
    assert_eq!(config, config2);
    d.sighup();
    assert!(
        d.wait_log("config reloaded", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    let alerts = dir.path().join("alerts.jsonl");
    assert!(
        wait_until(Duration::from_secs(5), || read_jsonl(&alerts).len() == 1),
        "{}",
        d.log()
    );
    let mut msgs = Vec::new();
    while !msgs.iter().any(|m: &String| m.contains("RELOADING=1")) {
        msgs.push(recv());
    }
    d.sigterm();
    let mut stopping = false;
    for _ in 0..20 {
        if recv().contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping);
    assert!(d.wait_exit(Duration::from_secs(5)).expect("exit").success());
}
