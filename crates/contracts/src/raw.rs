//! The raw event envelope: what an intake received, as received.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ContractError, SchemaVersioned, default_schema};

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    AwsHealth,
    Snyk,
}

impl Source {
    /// The token used in subjects, labels and group keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AwsHealth => "aws-health",
            Source::Snyk => "snyk",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the payload of a [`RawEvent`] is, so triage knows how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// One Snyk project as the REST API shows it now: the project (its target under
    /// `project.relationships.target`, its attributes) and its current issues, or a project that
    /// became inactive or disappeared. The shape is `snyk_policy::snapshot::ProjectSnapshot`.
    SnykProjectSnapshot,
    /// One AWS Health event in the EventBridge shape (`source: aws.health`, `detail-type`,
    /// `detail` with `eventArn`, `affectedEntities`, …), whichever intake received it. The
    /// Health API reconcile converts its responses to this shape.
    AwsHealthEvent,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::SnykProjectSnapshot => "snyk_project_snapshot",
            PayloadKind::AwsHealthEvent => "aws_health_event",
        }
    }
}

/// The years a `received_at` may fall in.
pub const RECEIVED_YEARS: std::ops::RangeInclusive<i32> = 2000..=9999;

/// An event as an intake received it.
///
/// `dedup_id` is derived from the event's identity and version upstream (never from the time it
/// was received), so the same notice arriving twice, or by two intakes, is stored once: it is
/// sent as `Nats-Msg-Id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    #[serde(default = "default_schema")]
    pub schema: u16,
    pub source: Source,
    pub kind: PayloadKind,
    pub received_at: DateTime<Utc>,
    /// The intake and its endpoint, e.g. `sqs:https://…/health-events`, `webhook`,
    /// `health-api:us-east-1`, `snyk-rest:<org id>`.
    pub received_from: String,
    pub dedup_id: String,
    /// The payload as received (JSON).
    pub payload: serde_json::Value,
}

impl SchemaVersioned for RawEvent {
    fn schema(&self) -> u16 {
        self.schema
    }
}

impl RawEvent {
    pub fn new(
        source: Source,
        kind: PayloadKind,
        received_from: impl Into<String>,
        dedup_id: impl Into<String>,
        payload: serde_json::Value,
        received_at: DateTime<Utc>,
    ) -> Self {
        RawEvent {
            schema: crate::SCHEMA_VERSION,
            source,
            kind,
            received_at,
            received_from: received_from.into(),
            dedup_id: dedup_id.into(),
            payload,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RawEvent always serialises")
    }

    /// Reads a raw event, refusing one received at a time no intake could have stamped (policies
    /// compute calendar days from it, which chrono cannot do at the ends of its range).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        let event: RawEvent = crate::decode("raw event", bytes)?;
        let year = chrono::Datelike::year(&event.received_at);
        if !(RECEIVED_YEARS).contains(&year) {
            return Err(ContractError::Invalid {
                document: "raw event",
                reason: format!("received_at {} is outside the years {RECEIVED_YEARS:?}", event.received_at),
            });
        }
        Ok(event)
    }

    /// The subject this event is published on: `events.<source>.<kind>.<partition>`.
    /// `partition` is any upstream identifier (org, account, region); it is made subject-safe.
    pub fn subject(&self, partition: &str) -> String {
        crate::subjects::raw_event(self.source, self.kind, partition)
    }
}
