//! The product's promise, end to end: a complaint in a watched feed opens a case, warns and breaches on time by
//! email and signed webhook; an acknowledgement stops the clock.

mod common;
mod support;

use std::time::{Duration, Instant};

use base64::Engine;

use common::*;
use support::daemon::{Daemon, earshot};
use support::feeds::rss;
use support::http::{FeedServer, Reply};
use support::smtp::SmtpSink;
use support::webhook::{TEST_WEBHOOK_SECRET, WebhookReceiver, verify};

const ENV: &[(&str, &str)] = &[("EARSHOT_TEST_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET)];

/// Seconds from the post's time to an arrival.
fn offset(at: Instant, posted_instant: Instant) -> f64 {
    at.saturating_duration_since(posted_instant).as_secs_f64()
}

#[test]
fn complaint_is_opened_warned_and_breached_on_time_by_email_and_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    let smtp = SmtpSink::start();
    let hook = WebhookReceiver::start(Some(TEST_WEBHOOK_SECRET));
    let posted = now_s();
    // The post's time as an Instant: deadlines count from it, not from when we fetched it.
    let posted_instant = Instant::now() - (chrono::Utc::now() - posted).to_std().unwrap();
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(posted)), praise("p1")])),
    );
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla(
                "4s",
                &[
                    ("0s", &["support"]),
                    ("2s", &["support", "lead"]),
                    ("4s", &["lead"]),
                ],
            ),
            email_notifier("support", smtp.port()),
            webhook_notifier("lead", &hook.url(), true),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let _d = Daemon::spawn(dir.path(), &["run", "--config", &config], ENV);

    let mails = smtp.wait_for(2, Duration::from_secs(10));
    let hooks = hook.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2, "support gets opened + warning");
    assert_eq!(hooks.len(), 2, "lead gets warning + breach");

    // Email: subject names brand, event and source; a text and an HTML part carrying the facts.
    assert!(
        mails[0].subject().contains("Northwind") && mails[0].subject().contains("new complaint"),
        "{}",
        mails[0].subject()
    );
    assert!(
        mails[0].subject().contains("press"),
        "{}",
        mails[0].subject()
    );
    assert!(
        mails[1].subject().contains("deadline approaching"),
        "{}",
        mails[1].subject()
    );
    assert!(mails[0].has_html_part());
    let text = mails[0].text_body();
    assert!(
        text.contains("where is my refund") && text.contains("maya_k"),
        "{text}"
    );

    // Webhook: signed per Standard Webhooks, the documented JSON, a stable id.
    let events: Vec<&str> = hooks
        .iter()
        .map(|d| d.body["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["sla.warning", "sla.breached"]);
    for d in &hooks {
        assert_eq!(d.signature_ok, Some(true), "bad signature: {:?}", d.headers);
        let b = &d.body;
        let id = d
            .headers
            .iter()
            .find(|(k, _)| k == "webhook-id")
            .map(|(_, v)| v.clone());
        assert_eq!(b["id"].as_str(), id.as_deref());
        assert_eq!(b["brand"], "Northwind");
        assert_eq!(b["source"], "press");
        assert_eq!(b["mention"]["id"], "c1");
        assert_eq!(b["mention"]["author"], "maya_k");
        assert_eq!(b["mention"]["url"], "https://reviews.example/c1");
        assert_eq!(
            b["mention"]["published_at"],
            posted.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        );
        assert_eq!(b["verdict"]["complaint"], true);
        assert_eq!(b["verdict"]["sentiment"], "negative");
        assert!(b["verdict"]["score"].as_f64().unwrap() < 0.0);
        assert!(!b["verdict"]["rules"].as_array().unwrap().is_empty());
        let deadline =
            chrono::DateTime::parse_from_rfc3339(b["deadline"].as_str().unwrap()).unwrap();
        assert_eq!(deadline, posted + chrono::Duration::seconds(4));
        assert!(b["case_id"].as_i64().unwrap() >= 1);
    }

    // Timeline, counted from the post's own time: warning at +2s, breach at +4s (±1.5s for a busy CI).
    let warn_at = offset(hooks[0].at, posted_instant);
    let breach_at = offset(hooks[1].at, posted_instant);
    assert!(
        (2.0..3.5).contains(&warn_at),
        "warning arrived at +{warn_at:.2}s"
    );
    assert!(
        (4.0..5.5).contains(&breach_at),
        "breach arrived at +{breach_at:.2}s"
    );

    // The praise opened nothing, and nothing arrives twice.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(hook.deliveries().len(), 2);
    assert_eq!(cases(dir.path(), &config).len(), 1);
}

#[test]
fn ack_from_the_cli_closes_the_case_and_cancels_pending_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = FeedServer::start();
    let hook = WebhookReceiver::start(None);
    feeds.set(
        "/feed.xml",
        Reply::feed_xml(rss(&[complaint("c1", Some(now_s()))])),
    );
    let config = write_config(
        dir.path(),
        &[
            feed_source("press", &feeds.url("/feed.xml"), "1s"),
            sla(
                "8s",
                &[
                    ("0s", &["support"]),
                    ("4s", &["support", "lead"]),
                    ("8s", &["lead"]),
                ],
            ),
            webhook_notifier("support", &format!("{}?team=support", hook.url()), false),
            file_notifier("lead", "lead.jsonl"),
            FAST_DELIVERY.to_string(),
        ]
        .concat(),
    );
    let _d = Daemon::spawn(dir.path(), &["run", "--config", &config], &[]);
    let opened = hook.wait_for(1, Duration::from_secs(10));
    assert_eq!(opened[0].body["event"], "complaint.opened");
    let case_id = opened[0].body["case_id"].as_i64().unwrap().to_string();

    let listed = cases(dir.path(), &config);
    assert_eq!(listed[0]["state"], "open");
    assert_eq!(listed[0]["next_event"], "sla.warning");

    let (code, out, err) = earshot(
        dir.path(),
        &[
            "ack",
            &case_id,
            "--note",
            "called her back",
            "--config",
            &config,
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("closed") && out.contains("support"), "{out}");

    let closed = hook.wait_for(2, Duration::from_secs(5));
    assert_eq!(closed[1].body["event"], "case.closed");
    assert_eq!(closed[1].body["closure"]["reason"], "ack");
    assert_eq!(closed[1].body["closure"]["note"], "called her back");

    // Past the warning and the breach: nothing more, to anyone; the lead never heard of the case at all.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(hook.deliveries().len(), 2);
    assert!(read_jsonl(&dir.path().join("lead.jsonl")).is_empty());
    assert_eq!(cases(dir.path(), &config)[0]["state"], "closed");
    let (code, _, err) = earshot(
        dir.path(),
        &["ack", &case_id, "--config", &config],
        &[],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("already closed"), "{err}");
}

/// The receiver's own check, against the spec's published vector, so its verdicts above can be trusted.
#[test]
fn the_receiver_verifies_the_standard_webhooks_test_vector() {
    let key = base64::engine::general_purpose::STANDARD
        .decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .unwrap();
    let headers = |sig: &str| {
        vec![
            (
                "webhook-id".to_string(),
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".to_string(),
            ),
            ("webhook-timestamp".to_string(), "1649367553".to_string()),
            ("webhook-signature".to_string(), sig.to_string()),
        ]
    };
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    assert!(verify(
        &key,
        &headers("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
        body
    ));
    assert!(!verify(
        &key,
        &headers("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkx="),
        body
    ));
    assert!(!verify(
        &key,
        &headers("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
        b"{}"
    ));
}
