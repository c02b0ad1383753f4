//! A platform API server: answers JSON (or anything) by method, path and query, from recorded payloads, with
//! scripted sequences (first poll, second poll, …), rate-limit and auth failures, and records every request
//! with its query, headers and body so tests can check cursors and credentials.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::wire::{self, Request, Running};

/// One scripted response.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
}

impl Answer {
    /// 200 with a JSON body.
    pub fn json(body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            delay: None,
        }
    }

    /// Any status with a JSON body.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            ..Answer::json(body)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers only after `d`.
    pub fn delayed(mut self, d: Duration) -> Answer {
        self.delay = Some(d);
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Seen {
    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header's value (name in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Route {
    method: String,
    path: String,
    /// Query pairs that must be present with these values.
    when: Vec<(String, String)>,
    /// Answers in order; the last one repeats.
    answers: VecDeque<Answer>,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    seen: Vec<Seen>,
}

/// The server.
pub struct ApiServer {
    port: u16,
    state: Arc<Mutex<State>>,
    _running: Running,
}

impl ApiServer {
    pub fn start() -> ApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let running = wire::serve(listener, move |req, stream| {
            let state = shared.clone();
            async move { answer(state, req, stream).await }
        });
        ApiServer {
            port,
            state,
            _running: running,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers `method path` (with every `when` query pair present) with `answers` in turn, the last one
    /// repeating. Replaces an earlier route with the same method, path and `when`. The route with the most
    /// `when` pairs that match wins.
    pub fn route(&self, method: &str, path: &str, when: &[(&str, &str)], answers: Vec<Answer>) {
        assert!(!answers.is_empty(), "a route needs an answer");
        let when: Vec<(String, String)> = when
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut s = self.state.lock().unwrap();
        s.routes
            .retain(|r| !(r.method == method && r.path == path && r.when == when));
        s.routes.push(Route {
            method: method.into(),
            path: path.into(),
            when,
            answers: answers.into(),
        });
    }

    /// Shorthand: `GET path` always answers `answer`.
    pub fn get(&self, path: &str, answer: Answer) {
        self.route("GET", path, &[], vec![answer]);
    }

    /// Every request to `path`, in order.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    /// Every request, in order.
    pub fn all_requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn answer(state: Arc<Mutex<State>>, req: Request, mut stream: tokio::net::TcpStream) {
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.path.clone(), String::new()),
    };
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let chosen = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: req.method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            at: Instant::now(),
        });
        let best = s
            .routes
            .iter_mut()
            .filter(|r| r.method == req.method && r.path == path)
            .filter(|r| r.when.iter().all(|w| query.contains(w)))
            .max_by_key(|r| r.when.len());
        best.map(|r| {
            if r.answers.len() > 1 {
                r.answers.pop_front().unwrap()
            } else {
                r.answers[0].clone()
            }
        })
    };
    let Some(a) = chosen else {
        wire::respond(&mut stream, 404, &[], b"{\"error\":\"no such fixture\"}").await;
        return;
    };
    if let Some(d) = a.delay {
        tokio::time::sleep(d).await;
    }
    wire::respond(&mut stream, a.status, &a.headers, &a.body).await;
}

/// A recorded payload from `tests/fixtures/<kind>/<name>`, with its time placeholders filled in relative to
/// `now`: `{{iso:-90}}` becomes the RFC 3339 time 90 s before `now` (milliseconds, `Z`), `{{unix:-90}}` the Unix
/// seconds. Payloads keep the platforms' real shapes; only the times move, so SLA timelines are real.
pub fn payload(kind: &str, name: &str, now: DateTime<Utc>) -> String {
    let path = format!(
        "{}/tests/fixtures/{kind}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    fill_times(&text, now)
}

/// Replaces `{{iso:±N}}` and `{{unix:±N}}` placeholders (seconds from `now`).
pub fn fill_times(text: &str, now: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (form, offset) = inner
            .split_once(':')
            .unwrap_or_else(|| panic!("bad placeholder {{{{{inner}}}}}"));
        let offset: i64 = offset
            .trim_start_matches('+')
            .parse()
            .unwrap_or_else(|_| panic!("bad offset in {{{{{inner}}}}}"));
        let t = now + chrono::Duration::seconds(offset);
        match form {
            "iso" => out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "unix" => out.push_str(&t.timestamp().to_string()),
            other => panic!("unknown placeholder form {other:?}"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}
