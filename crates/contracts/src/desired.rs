//! The desired ticket state: everything one JIRA ticket should say, published by triage.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ContractError, SchemaVersioned, Source, default_schema};

/// What makes two inputs the same ticket, in words a person can read:
/// `snyk/ecr/123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-api`,
/// `snyk/github/acme/checkout`, `aws-health/<eventArn>/<account>/<team>`.
///
/// It is never used as a subject, key or label directly: [`GroupKey::token`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupKey(String);

impl GroupKey {
    /// Builds a key from its parts, joined by `/`.
    pub fn new<I, S>(source: Source, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut key = source.as_str().to_owned();
        for part in parts {
            key.push('/');
            key.push_str(part.as_ref());
        }
        GroupKey(key)
    }

    /// Wraps an existing key as read back from a document or a ledger.
    pub fn from_raw(key: impl Into<String>) -> Self {
        GroupKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, stable, lower-case token for the key: `itk-` and 16 base32 characters of its
    /// SHA-256. Safe as a NATS subject token, a KV key and a JIRA label (no spaces).
    pub fn token(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("itk-{}", base32_lower(&digest[..10]))
    }
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 4648 base32 alphabet, lower-cased, without padding.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The swimlane a ticket belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lane {
    /// Critical, mature exploit, Internet-facing: next sprint.
    P1,
    /// Critical, mature exploit, internal: within a month.
    P2,
    /// Critical, Internet-facing: within a quarter.
    P3,
    /// Critical, internal: any time.
    P4,
    /// AWS Health: planned work with a date set by AWS.
    Maintenance,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::P1 => "P1",
            Lane::P2 => "P2",
            Lane::P3 => "P3",
            Lane::P4 => "P4",
            Lane::Maintenance => "Maintenance",
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lane {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "P1" | "p1" => Ok(Lane::P1),
            "P2" | "p2" => Ok(Lane::P2),
            "P3" | "p3" => Ok(Lane::P3),
            "P4" | "p4" => Ok(Lane::P4),
            "Maintenance" | "maintenance" => Ok(Lane::Maintenance),
            other => Err(format!("unknown lane {other:?} (expected P1, P2, P3, P4 or Maintenance)")),
        }
    }
}

/// Open or resolved, as the source sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    Resolved,
}

/// Where a due date came from, so the ticket can say why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DueDateSource {
    /// The lane's service level, counted from when the group first qualified.
    LaneSla { lane: Lane, since: NaiveDate },
    /// The start of the event's scheduled window.
    EventWindow,
    /// A sentence of the event's text.
    EventText { sentence: String },
}

/// A due date with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DueDate {
    pub date: NaiveDate,
    pub source: DueDateSource,
}

/// One item behind a ticket: a vulnerability, an affected resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketItem {
    /// The upstream reference: a Snyk issue key, a resource ARN or id.
    pub reference: String,
    pub title: String,
    /// Link to the item upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Status upstream (`open`, `RESOLVED`, `PENDING`…), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Further facts as label/value pairs, in display order (package, CVE, maturity…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<(String, String)>,
}

/// The structured body of a ticket; jira-writer renders it to Atlassian Document Format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TicketBody {
    /// Opening paragraph: what happened and what to do.
    pub headline: String,
    /// Why infra-tickets filed it (policy, exposure, whether exposure was assumed…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default)]
    pub items: Vec<TicketItem>,
    /// How much of the work is left, when the source can count it ("3 of 5 resources still
    /// pending", "2 critical findings left"); shown in the ticket and in the Slack reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// How much of a ticket's work remains: `remaining` of `total` `unit`s still `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Progress {
    pub remaining: u32,
    pub total: u32,
    /// What is counted, plural (`resources`, `critical findings`).
    pub unit: String,
}

impl Progress {
    /// "3 of 5 resources still pending", or "2 critical findings left" when nothing is resolved
    /// yet (the total says nothing new then).
    pub fn describe(&self) -> String {
        if self.remaining == self.total {
            format!("{} {} left", self.remaining, self.unit)
        } else {
            format!("{} of {} {} still pending", self.remaining, self.total, self.unit)
        }
    }
}

/// A link to the source upstream, filed in JIRA as a remote link with `global_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UpstreamLink {
    /// Stable id so the same link is never added twice.
    pub global_id: String,
    pub title: String,
    pub url: String,
}

/// Everything one JIRA ticket should be. Published by triage on `desired.<token>`, only when its
/// content changed; the stream keeps the latest per group key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredTicket {
    #[serde(default = "default_schema")]
    pub schema: u16,
    pub group_key: GroupKey,
    pub source: Source,
    pub team: String,
    pub lane: Lane,
    pub summary: String,
    pub body: TicketBody,
    #[serde(default)]
    pub due: Option<DueDate>,
    pub state: TicketState,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub links: Vec<UpstreamLink>,
    /// SHA-256 over the content (every field but this one and `upstream_version`); equal hashes
    /// mean nothing to write.
    pub content_hash: String,
    /// Orders states of one group key: a state whose version is lower than one already applied
    /// is stale and ignored.
    pub upstream_version: u64,
}

impl SchemaVersioned for DesiredTicket {
    fn schema(&self) -> u16 {
        self.schema
    }
}

/// The parts of a [`DesiredTicket`] that make up its content hash.
#[derive(Serialize)]
struct HashedContent<'a> {
    group_key: &'a GroupKey,
    source: Source,
    team: &'a str,
    lane: Lane,
    summary: &'a str,
    body: &'a TicketBody,
    due: &'a Option<DueDate>,
    state: TicketState,
    labels: &'a [String],
    links: &'a [UpstreamLink],
}

impl DesiredTicket {
    /// Computes the content hash of the current fields.
    pub fn compute_content_hash(&self) -> String {
        let content = HashedContent {
            group_key: &self.group_key,
            source: self.source,
            team: &self.team,
            lane: self.lane,
            summary: &self.summary,
            body: &self.body,
            due: &self.due,
            state: self.state,
            labels: &self.labels,
            links: &self.links,
        };
        let bytes = serde_json::to_vec(&content).expect("ticket content always serialises");
        hex::encode(Sha256::digest(bytes))
    }

    /// Sets `content_hash` from the current fields; call after the last change.
    pub fn seal(mut self) -> Self {
        self.content_hash = self.compute_content_hash();
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a DesiredTicket always serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        crate::decode("desired ticket", bytes)
    }

    /// `desired.<token>`: one subject per group key, so the stream can keep only the latest.
    pub fn subject(&self) -> String {
        crate::subjects::desired(&self.group_key)
    }

    /// `Nats-Msg-Id`: a retried publish of the same version is stored once. The version, not the
    /// content hash, so content that changes A → B → A inside the duplicate window is not lost.
    pub fn message_id(&self) -> String {
        format!("desired:{}:{}", self.group_key.token(), self.upstream_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DesiredTicket {
        DesiredTicket {
            schema: crate::SCHEMA_VERSION,
            group_key: GroupKey::new(Source::Snyk, ["github", "acme/checkout"]),
            source: Source::Snyk,
            team: "payments".into(),
            lane: Lane::P2,
            summary: "Critical vulnerabilities in acme/checkout".into(),
            body: TicketBody::default(),
            due: Some(DueDate {
                date: NaiveDate::from_ymd_opt(2026, 12, 27).unwrap(),
                source: DueDateSource::LaneSla {
                    lane: Lane::P2,
                    since: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
                },
            }),
            state: TicketState::Open,
            labels: vec!["infra-tickets".into()],
            links: vec![],
            content_hash: String::new(),
            upstream_version: 1,
        }
        .seal()
    }

    #[test]
    fn token_is_short_stable_and_label_safe() {
        let key = GroupKey::new(Source::Snyk, ["ecr", "1234.dkr.ecr.eu-west-1.amazonaws.com/app:1.2"]);
        let token = key.token();
        assert_eq!(token, key.clone().token());
        assert_eq!(token.len(), 20);
        assert!(token.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn hash_ignores_version_but_sees_content() {
        let a = sample();
        let mut b = a.clone();
        b.upstream_version = 99;
        assert_eq!(a.compute_content_hash(), b.compute_content_hash());
        b.lane = Lane::P1;
        assert_ne!(a.compute_content_hash(), b.compute_content_hash());
    }

    #[test]
    fn round_trips_and_refuses_newer_schema() {
        let a = sample();
        assert_eq!(DesiredTicket::from_json(&a.to_json()).unwrap(), a);
        let mut newer = serde_json::to_value(&a).unwrap();
        newer["schema"] = 2.into();
        let err = DesiredTicket::from_json(newer.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ContractError::UnsupportedVersion { found: 2, .. }));
    }
}
