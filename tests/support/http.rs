//! A feed server: serves recorded or built payloads, answers conditional GETs, misbehaves on request, and records
//! every request it gets.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::wire::{self, Request, Running};

/// What a path answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with body; with validators it answers 304 to a matching conditional request.
    Feed {
        body: Vec<u8>,
        content_type: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// Any status.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers, then one byte every `every`, never finishing.
    Drip { every: Duration },
    /// 200 with `len` bytes of XML-looking text, gzip-compressed on the wire when `gzip`.
    Huge { len: usize, gzip: bool },
}

impl Reply {
    /// An RSS body with no validators.
    pub fn feed_xml(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Feed {
            body: body.into(),
            content_type: "application/rss+xml".into(),
            etag: None,
            last_modified: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    seen: HashMap<String, Vec<Recorded>>,
}

/// The server.
pub struct FeedServer {
    port: u16,
    state: Arc<Mutex<State>>,
    _running: Running,
}

impl FeedServer {
    pub fn start() -> FeedServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let running = wire::serve(listener, move |req, stream| {
            let state = shared.clone();
            async move { answer(state, req, stream).await }
        });
        FeedServer {
            port,
            state,
            _running: running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .seen
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

async fn answer(state: Arc<Mutex<State>>, req: Request, mut stream: tokio::net::TcpStream) {
    let path = req.path.split('?').next().unwrap_or("").to_string();
    let reply = {
        let mut s = state.lock().unwrap();
        s.seen.entry(path.clone()).or_default().push(Recorded {
            method: req.method.clone(),
            headers: req.headers.clone(),
            at: Instant::now(),
        });
        s.routes.get(&path).cloned()
    };
    match reply {
        None => wire::respond(&mut stream, 404, &[], b"no such fixture").await,
        Some(Reply::Feed {
            body,
            content_type,
            etag,
            last_modified,
        }) => {
            let fresh = etag
                .as_deref()
                .is_some_and(|e| req.header("if-none-match") == Some(e))
                || last_modified
                    .as_deref()
                    .is_some_and(|l| req.header("if-modified-since") == Some(l));
            let mut headers = vec![("Content-Type".to_string(), content_type)];
            headers.extend(etag.map(|e| ("ETag".to_string(), e)));
            headers.extend(last_modified.map(|l| ("Last-Modified".to_string(), l)));
            if fresh {
                wire::respond(&mut stream, 304, &headers, b"").await;
            } else {
                wire::respond(&mut stream, 200, &headers, &body).await;
            }
        }
        Some(Reply::Status {
            code,
            headers,
            body,
        }) => wire::respond(&mut stream, code, &headers, &body).await,
        Some(Reply::Drip { every }) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n<";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
        Some(Reply::Huge { len, gzip }) => {
            let body = huge(len);
            if gzip {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&body).unwrap();
                let packed = enc.finish().unwrap();
                let headers = [
                    (
                        "Content-Type".to_string(),
                        "application/rss+xml".to_string(),
                    ),
                    ("Content-Encoding".to_string(), "gzip".to_string()),
                ];
                wire::respond(&mut stream, 200, &headers, &packed).await;
            } else {
                wire::respond(
                    &mut stream,
                    200,
                    &[("Content-Type".into(), "application/rss+xml".into())],
                    &body,
                )
                .await;
            }
        }
    }
}

fn huge(len: usize) -> Vec<u8> {
    let mut body =
        b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>big</title>".to_vec();
    let item = b"<item><title>Northwind filler</title><description>padding padding padding</description></item>";
    while body.len() < len {
        body.extend_from_slice(item);
    }
    body
}

/// A recorded payload from `tests/fixtures/feeds/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
