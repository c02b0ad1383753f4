//! Feeds built in code (for timeline tests, whose items must be dated "now"), and polling helpers.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// One RSS item.
pub struct Item {
    pub guid: String,
    pub title: String,
    pub body: String,
    pub author: Option<String>,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
}

/// An RSS 2.0 document with the items, properly escaped.
pub fn rss(items: &[Item]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>test feed</title><link>https://example.com/</link><description>built by the tests</description>\n",
    );
    for i in items {
        s.push_str(&format!(
            "<item><guid>{}</guid><title>{}</title><description>{}</description>",
            esc(&i.guid),
            esc(&i.title),
            esc(&i.body)
        ));
        if let Some(a) = &i.author {
            s.push_str(&format!("<dc:creator>{}</dc:creator>", esc(a)));
        }
        if let Some(l) = &i.link {
            s.push_str(&format!("<link>{}</link>", esc(l)));
        }
        if let Some(p) = i.published {
            s.push_str(&format!("<pubDate>{}</pubDate>", p.to_rfc2822()));
        }
        s.push_str("</item>\n");
    }
    s.push_str("</channel></rss>\n");
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Polls `f` every 25 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
