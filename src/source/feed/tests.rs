use super::*;

fn rss(items: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title><language>en-gb</language>{items}</channel></rss>"#
    )
}

fn keys(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.id.clone()).collect()
}

#[test]
fn rss_atom_and_json_feed_parse() {
    let f = parse(rss("<item><guid>g1</guid><title>Hello</title><pubDate>Tue, 10 Jun 2025 04:00:00 GMT</pubDate></item>").as_bytes(), None).unwrap();
    assert_eq!(keys(&f), ["g1"]);
    let atom = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title><id>urn:f</id><updated>2025-06-10T04:00:00Z</updated><entry><id>urn:a:1</id><title>x</title><updated>2025-06-10T04:00:00Z</updated></entry></feed>"#;
    assert_eq!(keys(&parse(atom.as_bytes(), None).unwrap()), ["urn:a:1"]);
    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"j","items":[{"id":"j1","content_text":"hi"}]}"#;
    assert_eq!(keys(&parse(json.as_bytes(), None).unwrap()), ["j1"]);
}

#[test]
fn html_pages_and_garbage_are_named_as_such() {
    let html = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>checking your browser</body></html>";
    let err = parse(html.as_bytes(), Some("text/html")).unwrap_err();
    assert!(
        matches!(&err, SourceError::NotAFeed(m) if m.contains("HTML page")),
        "{err}"
    );
    let err = parse(b"\x00\x01binary", None).unwrap_err();
    assert!(matches!(err, SourceError::NotAFeed(_)), "{err}");
    let truncated = rss("<item><guid>g1</guid><title>Hel");
    let err = parse(&truncated.as_bytes()[..truncated.len() - 30], None).unwrap_err();
    assert!(matches!(err, SourceError::Parse(_)), "{err}");
}

#[test]
fn bare_ampersands_are_repaired() {
    let f = parse(
        rss("<item><guid>g1</guid><title>Fees & charges &amp; more</title></item>").as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(
        f.entries[0].title.as_ref().unwrap().content,
        "Fees & charges & more"
    );
}

#[test]
fn undeclared_latin1_is_transcoded() {
    let mut body = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><item><guid>g</guid><title>tr".to_vec();
    body.extend_from_slice(&[0xE8, b's', b' ', b'd', 0xE9, b'\xe7', b'u']);
    body.extend_from_slice(b"</title></item></channel></rss>");
    let f = parse(&body, Some("application/rss+xml")).unwrap();
    assert_eq!(f.entries[0].title.as_ref().unwrap().content, "très déçu");
}

#[test]
fn items_without_ids_get_stable_content_keys() {
    let body =
        rss("<item><title>Where is my refund</title><description>day 3</description></item>");
    let ctx_http = crate::http::HttpClient::new("t", std::time::Duration::from_millis(1)).unwrap();
    let cursor = Cursor::default();
    let ctx = PollCtx {
        name: "s",
        http: &ctx_http,
        timeout: std::time::Duration::from_secs(1),
        max_body: 1000,
        cursor: &cursor,
        now: chrono::Utc::now(),
        limit: None,
    };
    let key = |b: &str| {
        let f = parse(b.as_bytes(), None).unwrap();
        to_mention(&f.entries[0], &f, &ctx).key
    };
    assert_eq!(
        key(&body),
        key(&body),
        "the same item keeps its key across polls"
    );
    assert!(key(&body).starts_with("sha256:"));
    let linked = rss("<item><title>x</title><link>https://e.com/p/1</link></item>");
    assert_eq!(key(&linked), "https://e.com/p/1");
}

#[test]
fn mentions_carry_text_author_time_and_language() {
    let body = rss(
        "<item><guid>g</guid><title>Lost bag</title><description>&lt;p&gt;Day 3 &amp;amp; &lt;b&gt;no&lt;/b&gt; reply&lt;/p&gt;</description>\
         <author>maya@example.com (Maya K)</author><pubDate>Tue, 10 Jun 2025 04:00:00 GMT</pubDate></item>",
    );
    let f = parse(body.as_bytes(), None).unwrap();
    let http = crate::http::HttpClient::new("t", std::time::Duration::from_millis(1)).unwrap();
    let cursor = Cursor::default();
    let ctx = PollCtx {
        name: "press",
        http: &http,
        timeout: std::time::Duration::from_secs(1),
        max_body: 1000,
        cursor: &cursor,
        now: chrono::Utc::now(),
        limit: None,
    };
    let m = to_mention(&f.entries[0], &f, &ctx);
    assert_eq!(m.text, "Lost bag\nDay 3 & no reply");
    assert_eq!(m.author.as_deref(), Some("Maya K"));
    assert_eq!(
        m.published_at.unwrap().to_rfc3339(),
        "2025-06-10T04:00:00+00:00"
    );
    assert_eq!(m.lang.as_deref(), Some("en-gb"));
    assert_eq!(m.source, "press");
}
