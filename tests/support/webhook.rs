//! A webhook receiver that checks Standard Webhooks signatures on its own (HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}` with the base64 key after `whsec_`, constant-time compare).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::wire::{self, Running};

/// The secret the tests sign with (the spec's own test secret).
pub const TEST_WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One request received.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
    /// None when the receiver has no secret.
    pub signature_ok: Option<bool>,
    pub at: Instant,
    /// The status this receiver answered.
    pub status: u16,
}

struct Shared {
    status: Mutex<u16>,
    got: Mutex<Vec<Delivery>>,
    key: Option<Vec<u8>>,
}

/// The receiver.
pub struct WebhookReceiver {
    port: u16,
    shared: Arc<Shared>,
    _running: Running,
}

impl WebhookReceiver {
    pub fn start(secret: Option<&str>) -> WebhookReceiver {
        Self::start_on(0, secret)
    }

    pub fn start_on(port: u16, secret: Option<&str>) -> WebhookReceiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = secret.map(|s| {
            STANDARD
                .decode(s.trim_start_matches("whsec_"))
                .expect("whsec_ secret")
        });
        let shared = Arc::new(Shared {
            status: Mutex::new(200),
            got: Mutex::new(Vec::new()),
            key,
        });
        let s = shared.clone();
        let running = wire::serve(listener, move |req, mut stream| {
            let s = s.clone();
            async move {
                let status = *s.status.lock().unwrap();
                let signature_ok = s.key.as_ref().map(|k| verify(k, &req.headers, &req.body));
                let body = serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
                s.got.lock().unwrap().push(Delivery {
                    headers: req.headers,
                    body,
                    raw: req.body,
                    signature_ok,
                    at: Instant::now(),
                    status,
                });
                wire::respond(&mut stream, status, &[], b"").await;
            }
        });
        WebhookReceiver {
            port,
            shared,
            _running: running,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The status to answer from now on.
    pub fn respond_with(&self, status: u16) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// Every request, whatever was answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits for `n` successful (2xx-answered) deliveries; returns those that arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let end = Instant::now() + timeout;
        loop {
            let ok: Vec<Delivery> = self
                .deliveries()
                .into_iter()
                .filter(|d| (200..300).contains(&d.status))
                .collect();
            if ok.len() >= n || Instant::now() >= end {
                return ok;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Verifies a `webhook-signature` header against the id, timestamp and body.
pub fn verify(key: &[u8], headers: &[(String, String)], body: &[u8]) -> bool {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    sigs.split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|b64| {
            STANDARD
                .decode(b64)
                .is_ok_and(|mac| ring::hmac::verify(&key, &signed, &mac).is_ok())
        })
}
