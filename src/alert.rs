//! The alert: what every notifier delivers, one JSON object per event.
//!
//! The payload is rendered once, when the outbox row is written, so every retry sends the same bytes and the `id`
//! stays the receiver's idempotency key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A complaint opened a case (a tier at offset 0).
    #[serde(rename = "complaint.opened")]
    Opened,
    /// The deadline is near (a tier before `reply_within`).
    #[serde(rename = "sla.warning")]
    Warning,
    /// The deadline passed without a reply (a tier at or after `reply_within`).
    #[serde(rename = "sla.breached")]
    Breached,
    /// The case was closed (acknowledged or answered).
    #[serde(rename = "case.closed")]
    Closed,
}

impl Event {
    /// The event a tier at offset `after` sends, given the reply deadline.
    pub fn for_offset(after: Duration, reply_within: Duration) -> Event {
        if after.is_zero() {
            Event::Opened
        } else if after < reply_within {
            Event::Warning
        } else {
            Event::Breached
        }
    }

    /// The wire name, e.g. `sla.warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "complaint.opened",
            Event::Warning => "sla.warning",
            Event::Breached => "sla.breached",
            Event::Closed => "case.closed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Event> {
        [
            Event::Opened,
            Event::Warning,
            Event::Breached,
            Event::Closed,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// A phrase for people (email subjects).
    pub fn describe(self) -> &'static str {
        match self {
            Event::Opened => "new complaint",
            Event::Warning => "reply deadline approaching",
            Event::Breached => "reply deadline missed",
            Event::Closed => "case closed",
        }
    }
}

/// The mention, as alerts carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMention {
    /// The platform's id of the post.
    pub id: String,
    /// Link to the post, if it has one.
    pub url: Option<String>,
    /// Author handle or name.
    pub author: Option<String>,
    /// The post's text.
    pub text: String,
    /// The post's own time (fetch time when it had none).
    pub published_at: DateTime<Utc>,
}

/// The verdict, as alerts carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertVerdict {
    /// negative, neutral or positive.
    pub sentiment: crate::classify::Sentiment,
    /// Compound score in [-1, 1].
    pub score: f64,
    /// Whether it opened a case.
    pub complaint: bool,
    /// Names of the rules that fired.
    pub rules: Vec<String>,
    /// Tags of those rules.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Language, when known.
    #[serde(default)]
    pub lang: Option<String>,
    /// Each rule hit with the matched words and their byte span in `mention.text`: why this is a complaint.
    #[serde(default)]
    pub hits: Vec<crate::classify::Hit>,
}

/// How a case was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closure {
    /// `ack` (a person, through the CLI or API) or `reply` (the brand answered).
    pub reason: String,
    /// The note given with the acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it closed.
    pub closed_at: DateTime<Utc>,
    /// Seconds from the post to the close.
    pub seconds_open: i64,
    /// On `reply`: the brand's account that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_by: Option<String>,
    /// On `reply`: when the answer was posted (the platform's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<DateTime<Utc>>,
    /// On `reply`: link to the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_url: Option<String>,
    /// On `reply`: seconds from the complaint to the answer, the time to reply the SLA measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_reply: Option<i64>,
    /// On `reply`: whether the answer came after the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<bool>,
}

/// One alert, exactly as a webhook body or a `file` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The event.
    pub event: Event,
    /// Stable across retries: the receiver's idempotency key.
    pub id: String,
    /// The case.
    pub case_id: i64,
    /// The brand the mention is about.
    pub brand: String,
    /// The source's name.
    pub source: String,
    /// The post.
    pub mention: AlertMention,
    /// Why it is a complaint.
    pub verdict: AlertVerdict,
    /// The reply deadline.
    pub deadline: DateTime<Utc>,
    /// When the event happened (the tier's due time, or the close time).
    pub occurred_at: DateTime<Utc>,
    /// Set on `case.closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closure: Option<Closure>,
}

impl Alert {
    /// A one-line subject naming brand, event and source.
    pub fn subject(&self) -> String {
        format!(
            "[earshot] {}: {} (case {}, source {})",
            self.brand,
            self.event.describe(),
            self.case_id,
            self.source
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_offsets_map_to_events() {
        let h = Duration::from_secs(3600);
        assert_eq!(Event::for_offset(Duration::ZERO, h), Event::Opened);
        assert_eq!(
            Event::for_offset(Duration::from_secs(45 * 60), h),
            Event::Warning
        );
        assert_eq!(Event::for_offset(h, h), Event::Breached);
        assert_eq!(Event::for_offset(2 * h, h), Event::Breached);
    }

    #[test]
    fn event_names_round_trip() {
        for e in [
            Event::Opened,
            Event::Warning,
            Event::Breached,
            Event::Closed,
        ] {
            assert_eq!(Event::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::json!(e.as_str())
            );
        }
    }
}
