//! A mention: one post from any platform, normalised so later stages need not know where it came from.

use chrono::{DateTime, Utc};

/// The normalised post.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    /// The source's configured name.
    pub source: String,
    /// The platform's id of the post (or our stable hash of it): the dedup key within the source.
    pub key: String,
    /// Canonical link to the post.
    pub url: Option<String>,
    /// Author handle or display name.
    pub author: Option<String>,
    /// Plain text (HTML stripped, entities decoded), title and body together.
    pub text: String,
    /// The post's own time, by the author's clock, when the platform gives one.
    pub published_at: Option<DateTime<Utc>>,
    /// When we fetched it.
    pub fetched_at: DateTime<Utc>,
    /// Language, when the platform says.
    pub lang: Option<String>,
    /// Where in its thread the post sits, in the source's own terms (opaque to every other stage): what the
    /// source needs to look for the brand's reply later. `None` when the platform shows no replies.
    pub thread: Option<String>,
}

impl Mention {
    /// The time the SLA counts from: the post's own time, or the fetch time when it has none or claims to be from
    /// the future (a wrong clock must not push a deadline out).
    pub fn posted_at(&self) -> DateTime<Utc> {
        match self.published_at {
            Some(t) if t <= self.fetched_at => t,
            _ => self.fetched_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn mention(published: Option<DateTime<Utc>>) -> Mention {
        Mention {
            source: "s".into(),
            key: "k".into(),
            url: None,
            author: None,
            text: "t".into(),
            published_at: published,
            fetched_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            lang: None,
            thread: None,
        }
    }

    #[test]
    fn posted_at_prefers_the_posts_own_time_but_not_a_future_one() {
        let earlier = Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap();
        assert_eq!(mention(Some(earlier)).posted_at(), earlier);
        let later = Utc.with_ymd_and_hms(2026, 1, 1, 13, 0, 0).unwrap();
        assert_eq!(mention(Some(later)).posted_at(), mention(None).fetched_at);
        assert_eq!(mention(None).posted_at(), mention(None).fetched_at);
    }
}
