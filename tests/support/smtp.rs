//! A real SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) that
//! keeps what it receives, and can refuse on request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::wire::{self, Running};

/// A message as received.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message, headers included.
    pub data: String,
}

/// How the server answers MAIL FROM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SmtpMode {
    Accept,
    /// 451: try again later.
    TempFail,
    /// 550: refused for good.
    PermFail,
}

struct Shared {
    mode: Mutex<SmtpMode>,
    mail: Mutex<Vec<ReceivedMail>>,
}

/// The server.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    _running: Running,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> SmtpSink {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(SmtpMode::Accept),
            mail: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let running = wire::accept(listener, move |stream| session(stream, s.clone()));
        SmtpSink {
            port,
            shared,
            _running: running,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mail.lock().unwrap().clone()
    }

    /// Waits until `n` messages arrived or `timeout` passed; returns what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let end = Instant::now() + timeout;
        while self.messages().len() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(25));
        }
        self.messages()
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let send = async |w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str| {
        w.write_all(format!("{s}\r\n").as_bytes()).await.is_ok()
    };
    if !send(&mut write, "220 earshot-test-smtp ready").await {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-earshot-test-smtp\r\n250 8BITMIME".to_string()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK".into()
        } else if upper.starts_with("MAIL FROM:") {
            match *shared.mode.lock().unwrap() {
                SmtpMode::Accept => {
                    from = addr(&line[10..]);
                    to.clear();
                    "250 OK".into()
                }
                SmtpMode::TempFail => "451 4.3.0 try again later".into(),
                SmtpMode::PermFail => "550 5.7.1 refused".into(),
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(addr(&line[8..]));
            "250 OK".into()
        } else if upper.starts_with("RSET") {
            to.clear();
            "250 OK".into()
        } else if upper.starts_with("DATA") {
            if !send(&mut write, "354 end with <CRLF>.<CRLF>").await {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            shared.mail.lock().unwrap().push(ReceivedMail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            "250 OK queued".into()
        } else if upper.starts_with("QUIT") {
            let _ = send(&mut write, "221 bye").await;
            return;
        } else {
            "502 command not implemented".into()
        };
        if !send(&mut write, &reply).await {
            return;
        }
    }
}

fn addr(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_string()
}

impl ReceivedMail {
    /// The Subject header, RFC 2047 words decoded.
    pub fn subject(&self) -> String {
        let (head, _) = self.data.split_once("\r\n\r\n").unwrap_or((&self.data, ""));
        let mut subject = String::new();
        let mut in_subject = false;
        for line in head.split("\r\n") {
            if let Some(v) = line.strip_prefix("Subject:") {
                subject.push_str(v.trim());
                in_subject = true;
            } else if in_subject && line.starts_with([' ', '\t']) {
                subject.push(' ');
                subject.push_str(line.trim());
            } else {
                in_subject = false;
            }
        }
        decode_words(&subject)
    }

    /// The decoded text/plain part.
    pub fn text_body(&self) -> String {
        self.part("text/plain")
    }

    pub fn has_html_part(&self) -> bool {
        self.data
            .to_ascii_lowercase()
            .contains("content-type: text/html")
    }

    fn part(&self, content_type: &str) -> String {
        let lower = self.data.to_ascii_lowercase();
        let Some(at) = lower.find(&format!("content-type: {content_type}")) else {
            return String::new();
        };
        let rest = &self.data[at..];
        let Some((headers, body)) = rest.split_once("\r\n\r\n") else {
            return String::new();
        };
        let body = body.split("\r\n--").next().unwrap_or("");
        let enc = headers.to_ascii_lowercase();
        if enc.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap_or_default(),
            )
            .into_owned()
        } else if enc.contains("content-transfer-encoding: quoted-printable") {
            quoted_printable(body)
        } else {
            body.to_string()
        }
    }
}

fn decode_words(s: &str) -> String {
    let mut out = String::new();
    for word in s.split_whitespace() {
        if let Some(inner) = word.strip_prefix("=?").and_then(|w| w.strip_suffix("?=")) {
            let mut parts = inner.splitn(3, '?');
            let (_charset, enc, text) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let decoded = if enc.eq_ignore_ascii_case("b") {
                String::from_utf8_lossy(
                    &base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .unwrap_or_default(),
                )
                .into_owned()
            } else {
                quoted_printable(&text.replace('_', " "))
            };
            out.push_str(&decoded);
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
