//! The `email` notifier: lettre over SMTP (`smtp://` plain, `smtp://…?tls=required` for STARTTLS, `smtps://` for
//! implicit TLS), with optional login; the password only from the environment or a file.
//!
//! lettre's own timeout covers connecting only (lettre#1027), so every send is wrapped in a total deadline.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::Outcome;
use crate::alert::Alert;
use crate::config::KindCtx;
use crate::http::error_chain;
use crate::store::OutboxRow;

/// Total deadline of one SMTP conversation.
const SEND_DEADLINE: Duration = Duration::from_secs(60);

/// Sends alerts by email.
#[derive(Clone)]
pub struct Email {
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("server", &self.server)
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Options {
    /// `smtp://host:port`, `smtp://host:port?tls=required` or `smtps://host:port`.
    smtp: Option<String>,
    /// Sender address.
    from: Option<String>,
    /// Recipients.
    #[serde(default)]
    to: Vec<String>,
    /// SMTP login name.
    username: Option<String>,
    /// Environment variable holding the SMTP password.
    password_env: Option<String>,
    /// File holding the SMTP password.
    password_file: Option<String>,
}

impl Email {
    /// Validates the `email` keys and builds the transport.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<Email> {
        let o: Options = ctx.read("email", options)?;
        let password = ctx.secret(
            "password",
            o.password_env.as_deref(),
            o.password_file.as_deref(),
        );
        if password.is_some() && o.username.is_none() {
            ctx.problem("username", "a password is given but no `username`");
        }
        let from = parse_mailbox(ctx, "from", o.from.as_deref());
        if o.to.is_empty() {
            ctx.problem("to", "missing `to` (a list of recipient addresses)");
        }
        let to: Vec<Mailbox> =
            o.to.iter()
                .enumerate()
                .filter_map(|(i, a)| parse_mailbox(ctx, &format!("to[{i}]"), Some(a)))
                .collect();
        let Some(smtp) = o.smtp else {
            ctx.problem(
                "smtp",
                "missing `smtp` (e.g. \"smtp://127.0.0.1:25\" or \"smtps://mail.example.com\")",
            );
            return None;
        };
        let parsed = url::Url::parse(&smtp)
            .ok()
            .filter(|u| matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some());
        let Some(parsed) = parsed else {
            ctx.problem(
                "smtp",
                format!("{smtp:?} is not an smtp:// or smtps:// URL"),
            );
            return None;
        };
        if parsed.password().is_some() || !parsed.username().is_empty() {
            ctx.problem(
                "smtp",
                "put no credentials in the URL: use `username` and `password_env`",
            );
            return None;
        }
        crate::tls::install_crypto_provider();
        let builder = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp) {
            Ok(b) => b,
            Err(e) => {
                ctx.problem("smtp", format!("cannot use {smtp:?}: {}", error_chain(&e)));
                return None;
            }
        };
        let mut builder = builder.timeout(Some(Duration::from_secs(20)));
        if let (Some(user), Some(pw)) = (o.username, password) {
            builder = builder.credentials(Credentials::new(user, pw.expose().to_string()));
        }
        let server = format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port().unwrap_or(0)
        );
        Some(Email {
            server,
            from: from?,
            to,
            transport: builder.build(),
        })
    }

    /// Server and recipients.
    pub fn describe(&self) -> String {
        let to: Vec<String> = self.to.iter().map(|m| m.email.to_string()).collect();
        format!("email via {} to {}", self.server, to.join(", "))
    }

    /// Sends the alert once.
    pub async fn deliver(&self, row: &OutboxRow) -> Outcome {
        let alert: Alert = match serde_json::from_str(&row.payload) {
            Ok(a) => a,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("stored alert is not readable: {e}"),
                };
            }
        };
        let message = match self.message(&alert) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("cannot build the message: {e}"),
                };
            }
        };
        match tokio::time::timeout(SEND_DEADLINE, self.transport.send(message)).await {
            Err(_) => Outcome::Retry {
                reason: format!("SMTP server did not finish within {SEND_DEADLINE:?}"),
                after: None,
            },
            Ok(Ok(_)) => Outcome::Delivered,
            Ok(Err(e)) if e.is_permanent() => Outcome::Failed {
                reason: format!("SMTP refused: {}", error_chain(&e)),
            },
            Ok(Err(e)) => Outcome::Retry {
                reason: format!("SMTP: {}", error_chain(&e)),
                after: None,
            },
        }
    }

    fn message(&self, alert: &Alert) -> Result<Message, lettre::error::Error> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject())
            .message_id(Some(format!("<{}@earshot>", alert.id)));
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(
            text_body(alert),
            html_body(alert),
        ))
    }
}

fn parse_mailbox(ctx: &mut KindCtx<'_>, key: &str, value: Option<&str>) -> Option<Mailbox> {
    let Some(v) = value else {
        ctx.problem(key, format!("missing `{key}`"));
        return None;
    };
    match v.parse() {
        Ok(m) => Some(m),
        Err(e) => {
            ctx.problem(key, format!("{v:?} is not an email address: {e}"));
            None
        }
    }
}

/// The facts of an alert as label/value pairs, shared by the text and HTML parts.
fn facts(a: &Alert) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Event", a.event.as_str().to_string()),
        ("Case", a.case_id.to_string()),
        ("Brand", a.brand.clone()),
        ("Source", a.source.clone()),
        (
            "Author",
            a.mention
                .author
                .clone()
                .unwrap_or_else(|| "(unknown)".into()),
        ),
        ("Posted", a.mention.published_at.to_rfc3339()),
        ("Deadline", a.deadline.to_rfc3339()),
        (
            "Link",
            a.mention.url.clone().unwrap_or_else(|| "(none)".into()),
        ),
        (
            "Sentiment",
            format!("{:?} ({:.2})", a.verdict.sentiment, a.verdict.score).to_lowercase(),
        ),
        ("Rules", a.verdict.rules.join(", ")),
        (
            "Why",
            a.verdict
                .hits
                .iter()
                .map(|h| format!("\"{}\" ({}, {:+.1})", h.text, h.rule, h.weight))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    ];
    if let Some(c) = &a.closure {
        f.push((
            "Closed",
            format!("{} at {}", c.reason, c.closed_at.to_rfc3339()),
        ));
        if let Some(n) = &c.note {
            f.push(("Note", n.clone()));
        }
    }
    f
}

fn text_body(a: &Alert) -> String {
    let mut s = format!("{}\n\n", a.subject());
    for (k, v) in facts(a) {
        s.push_str(&format!("{k:<10} {v}\n"));
    }
    s.push_str(&format!(
        "\n> {}\n\nAcknowledge with: earshot ack {}\n",
        a.mention.text.replace('\n', "\n> "),
        a.case_id
    ));
    s
}

fn html_body(a: &Alert) -> String {
    let rows: String = facts(a)
        .into_iter()
        .map(|(k, v)| format!("<tr><th align=\"left\">{k}</th><td>{}</td></tr>", esc(&v)))
        .collect();
    format!(
        "<html><body><h2>{}</h2><blockquote>{}</blockquote><table>{rows}</table><p>Acknowledge with: <code>earshot ack {}</code></p></body></html>",
        esc(&a.subject()),
        esc(&a.mention.text).replace('\n', "<br>"),
        a.case_id
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
