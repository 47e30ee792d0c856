//! The last contact of each intake with its upstream, per source and scope (a Snyk org, an
//! SQS queue's Region, the Health API's Region, a webhook endpoint).
//!
//! Intakes write one record per scope in the `source_contact` bucket under
//! [`SourceContact::key`]; the notifier reads them all and tells the SRE channel when a source
//! has been failing, out of touch or quiet for too long, and again when it recovers. A source
//! that goes silent (an expired token, a deleted EventBridge rule, an intake that stopped) is
//! then noticed by someone even though nothing errors anywhere else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Source;

/// How a scope hears from its upstream, which decides what silence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMode {
    /// We call the upstream on a schedule (Snyk's REST API, the Health API, SQS receives): no
    /// successful call for long is a problem, whatever the events.
    Polled,
    /// The upstream calls us (a webhook, an API destination): only the events say it works.
    Pushed,
}

/// The last failure of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactFailure {
    pub at: DateTime<Utc>,
    /// Why, as the intake logged it (outside text: escaped wherever it is shown).
    pub reason: String,
}

/// One scope's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceContact {
    pub schema: u16,
    pub source: Source,
    /// The scope as people read it: `org 4a18…`, `sqs eu-west-1`, `health-api us-east-1`.
    pub scope: String,
    pub mode: ContactMode,
    /// Whether a long time without any event means something is broken (EventBridge feeds in
    /// an organisation) rather than a quiet upstream (Snyk publishes only changes).
    pub events_expected: bool,
    /// When this scope was first recorded: silence is counted from here until the first
    /// success or event.
    pub first_seen_at: DateTime<Utc>,
    /// When the intake last wrote this record: an intake that stopped stops writing it.
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<ContactFailure>,
}

impl SourceContact {
    /// A record of a scope seen for the first time now.
    pub fn new(
        source: Source,
        scope: &str,
        mode: ContactMode,
        events_expected: bool,
        now: DateTime<Utc>,
    ) -> Self {
        SourceContact {
            schema: crate::SCHEMA_VERSION,
            source,
            scope: scope.to_owned(),
            mode,
            events_expected,
            first_seen_at: now,
            updated_at: now,
            last_success_at: None,
            last_event_at: None,
            last_failure: None,
        }
    }

    /// The record's key: `<source>.<scope token>`. The scope is outside text (an org id from
    /// configuration, a Region from a URL), so it is bounded and encoded as one token; the
    /// source is its own token so that NATS permissions can give each intake its own keys.
    pub fn key(source: Source, scope: &str) -> String {
        format!("{}.{}", source.as_str(), crate::subjects::token(scope))
    }

    /// Whether the last thing that happened to this scope is a failure.
    pub fn failing(&self) -> bool {
        match (&self.last_failure, self.last_success_at) {
            (Some(failure), Some(success)) => failure.at > success,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_latest_of_success_and_failure_decides() {
        let mut record =
            SourceContact::new(Source::Snyk, "org 1", ContactMode::Polled, false, at("2026-12-01T00:00:00Z"));
        assert!(!record.failing());
        record.last_failure = Some(ContactFailure { at: at("2026-12-01T01:00:00Z"), reason: "401".into() });
        assert!(record.failing());
        record.last_success_at = Some(at("2026-12-01T02:00:00Z"));
        assert!(!record.failing());
    }

    #[test]
    fn records_round_trip_and_keep_their_source_and_mode_readable() {
        let record = SourceContact::new(
            Source::AwsHealth,
            "sqs eu-west-1",
            ContactMode::Pushed,
            true,
            at("2026-12-01T00:00:00Z"),
        );
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""source":"aws-health""#) && json.contains(r#""mode":"pushed""#), "{json}");
        assert_eq!(serde_json::from_str::<SourceContact>(&json).unwrap(), record);
    }

    proptest! {
        /// Whatever the scope, the key is two tokens: the source's, then one NATS KV accepts.
        #[test]
        fn keys_are_the_source_then_one_bounded_token(scope in ".*") {
            let key = SourceContact::key(Source::Snyk, &scope);
            let (source, rest) = key.split_once('.').unwrap();
            prop_assert_eq!(source, "snyk");
            prop_assert!(!rest.is_empty() && rest.len() <= 64, "{}", rest);
            prop_assert!(rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{}", rest);
        }
    }
}
