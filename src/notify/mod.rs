//! Notifiers: one module per kind, each turning an outbox row into a delivery and saying whether a failure is
//! worth retrying. Retry policy lives in [`crate::delivery`], once for all kinds.

pub mod email;
pub mod file;
pub mod webhook;

use std::time::Duration;

use crate::config::KindCtx;
use crate::store::OutboxRow;

/// A notifier's kind and settings.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    /// Email over SMTP.
    Email(email::Email),
    /// Signed HTTP POST.
    Webhook(webhook::Webhook),
    /// JSON lines appended to a file.
    File(file::FileSink),
}

/// The known kinds, for messages.
pub const KINDS: &[&str] = &["email", "webhook", "file"];

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the receiver.
    Delivered,
    /// Failed for now (network, 5xx, 429, SMTP 4xx); try again.
    Retry {
        /// Why, for the log and the outbox row.
        reason: String,
        /// The receiver's own `Retry-After`, if any.
        after: Option<Duration>,
    },
    /// Refused for good (4xx other than 429, SMTP 5xx); recorded, not retried.
    Failed {
        /// Why.
        reason: String,
    },
}

impl NotifierKind {
    /// Reads the kind-specific keys of a `[[notify]]`.
    pub fn from_config(
        kind: &str,
        options: &toml::Table,
        ctx: &mut KindCtx<'_>,
    ) -> Option<NotifierKind> {
        match kind {
            "email" => email::Email::from_config(options, ctx).map(NotifierKind::Email),
            "webhook" => webhook::Webhook::from_config(options, ctx).map(NotifierKind::Webhook),
            "file" => file::FileSink::from_config(options, ctx).map(NotifierKind::File),
            other => {
                ctx.problem(
                    "kind",
                    format!(
                        "unknown notifier kind {other:?} (known: {})",
                        KINDS.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// What it delivers to, for `check-config`; never shows secrets.
    pub fn describe(&self) -> String {
        match self {
            NotifierKind::Email(e) => e.describe(),
            NotifierKind::Webhook(w) => w.describe(),
            NotifierKind::File(f) => f.describe(),
        }
    }

    /// Delivers one alert once.
    pub async fn deliver(&self, row: &OutboxRow) -> Outcome {
        match self {
            NotifierKind::Email(e) => e.deliver(row).await,
            NotifierKind::Webhook(w) => w.deliver(row).await,
            NotifierKind::File(f) => f.deliver(row).await,
        }
    }
}
