//! Bad input gets a clear error and loses nothing: broken, hostile and slow sources are logged by name and backed
//! off while every other source keeps running; polling is polite.

mod common;
mod support;

use std::time::{Duration, Instant};

use common::*;
use support::daemon::Daemon;
use support::feeds::{rss, wait_until};
use support::http::{FeedServer, Reply, fixture};

#[test]
fn broken_sources_are_named_backed_off_and_do_not_delay_the_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    feeds.set(
        "/good.xml",
        Reply::Feed {
            body: rss(&[complaint("good-1", Some(now_s()))]).into_bytes(),
            content_type: "application/rss+xml".into(),
            etag: Some("\"v1\"".into()),
            last_modified: Some("Sun, 22 Nov 2026 09:00:00 GMT".into()),
        },
    );
    feeds.set("/truncated.xml", Reply::feed_xml(fixture("truncated.xml")));
    feeds.set(
        "/html",
        Reply::Feed {
            body: fixture("html_page.html"),
            content_type: "text/html".into(),
            etag: None,
            last_modified: None,
        },
    );
    feeds.set(
        "/500",
        Reply::Status {
            code: 500,
            headers: vec![],
            body: b"oops".to_vec(),
        },
    );
    // Retry-After holds a whole host, so the rate-limited one lives on a server of its own.
    let limiter = FeedServer::start();
    limiter.set(
        "/429",
        Reply::Status {
            code: 429,
            headers: vec![("Retry-After".into(), "120".into())],
            body: vec![],
        },
    );
    feeds.set(
        "/slow",
        Reply::Drip {
            every: Duration::from_millis(200),
        },
    );
    feeds.set(
        "/huge",
        Reply::Huge {
            len: 3 << 20,
            gzip: true,
        },
    );
    let sources: String = [
        ("good", "/good.xml"),
        ("truncated", "/truncated.xml"),
        ("htmlpage", "/html"),
        ("error500", "/500"),
        ("limited", "/429"),
        ("slowloris", "/slow"),
        ("bomb", "/huge"),
    ]
    .iter()
    .map(|(n, p)| {
        feed_source(
            n,
            &if *n == "limited" {
                limiter.url(p)
            } else {
                feeds.url(p)
            },
            "1s",
        )
    })
    .collect();
    // The bomb's cap: 1 MiB after decompression (3 MiB unpacked, far less on the wire).
    let config = write_config(
        dir.path(),
        &[
            sources,
            sla("1h", &[("0s", &["journal"])]),
            file_notifier("journal", "alerts.jsonl"),
            FAST_DELIVERY.to_string(),
        ]
        .concat()
        .replace(
            "name = \"bomb\"\nkind = \"feed\"",
            "name = \"bomb\"\nmax_body = \"1 MiB\"\nkind = \"feed\"",
        ),
    );
    let start = Instant::now();
    let d = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let alerts = dir.path().join("alerts.jsonl");
    assert!(
        wait_until(Duration::from_secs(5), || !read_jsonl(&alerts).is_empty()),
        "good source's complaint not alerted:\n{}",
        d.log()
    );
    // The slow source's 3 s deadline must not hold the good one up.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "good source delayed by {:?}",
        start.elapsed()
    );

    // Every broken source is logged by name with what is wrong.
    let expect = [
        ("truncated", "cannot parse"),
        ("htmlpage", "HTML page"),
        ("error500", "HTTP 500"),
        ("limited", "HTTP 429"),
        ("slowloris", "no complete response within 3s"),
        ("bomb", "larger than the 1048576-byte cap"),
    ];
    for (name, what) in expect {
        let found = wait_until(Duration::from_secs(8), || {
            d.log().lines().any(|l| {
                l.contains("poll failed")
                    && l.contains(&format!("source={name}"))
                    && l.contains(what)
            })
        });
        assert!(
            found,
            "no log line naming {name} with {what:?}:\n{}",
            d.log()
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let log = d.log();

    // Backoff: the 500 source is polled less and less often; the 429 source waits for its Retry-After.
    let elapsed = start.elapsed().as_secs_f64();
    assert!(
        feeds.hits("/500") <= 5,
        "500 polled {} times in {elapsed:.1}s",
        feeds.hits("/500")
    );
    assert_eq!(limiter.hits("/429"), 1, "Retry-After: 120 not honoured");
    // The good source kept polling every second, conditionally: 304s after the first 200.
    let good = feeds.requests("/good.xml");
    assert!(
        good.len() >= 4,
        "good source polled only {} times",
        good.len()
    );
    let conditional = good[1]
        .headers
        .iter()
        .any(|(k, v)| k == "if-none-match" && v == "\"v1\"");
    assert!(
        conditional,
        "second request was not conditional: {:?}",
        good[1].headers
    );
    let ua = good[0]
        .headers
        .iter()
        .find(|(k, _)| k == "user-agent")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(ua.starts_with("earshot/"), "user agent {ua:?}");

    // One alert, once; a failing source never logs a secret or panics.
    assert_eq!(read_jsonl(&alerts).len(), 1);
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn odd_but_valid_feeds_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    for f in [
        "rss2.xml",
        "atom.xml",
        "feed.json",
        "bare_ampersand.xml",
        "latin1_undeclared.xml",
        "no_dates.xml",
    ] {
        feeds.set(
            &format!("/{f}"),
            Reply::Feed {
                body: fixture(f),
                content_type: "application/xml".into(),
                etag: None,
                last_modified: None,
            },
        );
    }
    let sources: String = [
        "rss2.xml",
        "atom.xml",
        "feed.json",
        "bare_ampersand.xml",
        "latin1_undeclared.xml",
        "no_dates.xml",
    ]
    .iter()
    .map(|f| feed_source(&f.replace('.', "_"), &feeds.url(&format!("/{f}")), "1s"))
    .collect();
    let config = write_config(
        dir.path(),
        &[
            sources,
            sla("1h", &[("0s", &["journal"])]),
            file_notifier("journal", "alerts.jsonl"),
            FAST_DELIVERY.to_string(),
        ]
        .concat()
        .replace("[sla]", "[sla]\nmax_age = \"100000d\""),
    );
    let d = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let names = [
        "rss2_xml",
        "atom_xml",
        "feed_json",
        "bare_ampersand_xml",
        "latin1_undeclared_xml",
        "no_dates_xml",
    ];
    let all_stored = wait_until(Duration::from_secs(10), || {
        let log = d.log();
        names.iter().all(|n| {
            log.lines()
                .any(|l| l.contains("stored new items") && l.contains(&format!("source={n}")))
        })
    });
    assert!(all_stored, "not every fixture was read:\n{}", d.log());
    assert!(!d.log().contains("poll failed"), "{}", d.log());
    let listed = cases(dir.path(), &config);
    let by_source = |s: &str| listed.iter().filter(|c| c["source"] == s).count();
    assert!(by_source("rss2_xml") >= 2, "rss2 complaints: {listed:#?}");
    assert!(
        by_source("atom_xml") >= 1 && by_source("feed_json") >= 1,
        "{listed:#?}"
    );
    let latin = listed
        .iter()
        .find(|c| c["source"] == "latin1_undeclared_xml")
        .expect("the Latin-1 complaint opened a case");
    assert!(
        latin["text"].as_str().unwrap().contains("très déçu"),
        "not transcoded: {latin}"
    );
    let amp = listed
        .iter()
        .find(|c| c["source"] == "bare_ampersand_xml")
        .expect("the repaired feed's complaint opened a case");
    assert!(
        amp["text"].as_str().unwrap().contains("fees & charges"),
        "{amp}"
    );
    assert_eq!(by_source("no_dates_xml"), 1, "{listed:#?}");
}
