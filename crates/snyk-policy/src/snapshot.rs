//! The payload of a `PayloadKind::SnykProjectSnapshot` raw event: one Snyk project as the
//! REST API shows it now.
//!
//! ```json
//! {
//!   "org_id": "0e8a…",
//!   "status": "active",                      // "active" | "inactive" | "disappeared"
//!   "project": { …REST project resource with relationships.target expanded… },
//!   "issues": [ …REST issue resources whose scan_item is this project… ],
//!   "webhook_issues": [ …v1 webhook issues, only when built from a webhook body (explain)… ],
//!   "base_image": {"image": "debian:12.6-slim", "recommendations": ["…"]}   // when Snyk reported one
//! }
//! ```
//!
//! * `active`: the project is monitored; `issues` are its current issues (ingest asks the API
//!   for open issues at or above its configured severities).
//! * `inactive`: Snyk deactivated the project; its issues do not count.
//! * `disappeared`: the project is gone from the API; `project` is the last one seen, so triage
//!   knows which group to drop it from.
//!
//! The resources are kept as received (fields triage does not read included), so any later
//! policy can be replayed over them. The dedup id is derived from a hash of the content, so an
//! unchanged project gives the same id every time.

use chrono::{DateTime, Utc};
use contracts::{PayloadKind, RawEvent, Source};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use triage_policy::PolicyError;

use crate::rest::{Issue, Project};
use crate::webhook::WebhookIssue;

/// What became of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStatus {
    Active,
    Inactive,
    Disappeared,
}

/// The base image Snyk reported for a container project (v1 `imageBaseImage`, and its base
/// image remediation advice when given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaseImage {
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<String>,
}

/// One project snapshot. See the module documentation for the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSnapshot {
    pub org_id: String,
    pub status: SnapshotStatus,
    pub project: Project,
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_issues: Vec<WebhookIssue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<BaseImage>,
}

/// `received_from` of snapshots read from the REST API of an org.
pub fn rest_origin(org_id: &str) -> String {
    format!("snyk-rest:{org_id}")
}

impl ProjectSnapshot {
    /// The snapshot of a project the REST API listed, with its issues.
    pub fn listed(org_id: &str, project: Project, issues: Vec<Issue>, base_image: Option<BaseImage>) -> Self {
        let status = if project.is_active() { SnapshotStatus::Active } else { SnapshotStatus::Inactive };
        ProjectSnapshot {
            org_id: org_id.to_owned(),
            status,
            project,
            issues,
            webhook_issues: Vec::new(),
            base_image,
        }
    }

    /// The snapshot of a project the API no longer lists, from the last one seen.
    pub fn disappeared(org_id: &str, last_seen: Project) -> Self {
        ProjectSnapshot {
            org_id: org_id.to_owned(),
            status: SnapshotStatus::Disappeared,
            project: last_seen,
            issues: Vec::new(),
            webhook_issues: Vec::new(),
            base_image: None,
        }
    }

    /// SHA-256 (hex) over the content, in canonical form (object keys sorted), leaving out the
    /// project's `meta` (issue counts and monitoring times that move without a change).
    pub fn content_hash(&self) -> String {
        hash_of_payload(&serde_json::to_value(self).expect("a snapshot always serialises"))
    }

    /// The dedup id: the same for the same content after the same previous content, so a
    /// re-send is stored once while content that goes A → B → A is not mistaken for a repeat.
    pub fn dedup_id(&self, content_hash: &str, previous_hash: Option<&str>) -> String {
        let previous = previous_hash.map(|h| &h[..h.len().min(16)]).unwrap_or("none");
        format!(
            "snyk:{}:{}:{}:{}",
            self.org_id,
            self.project.id,
            &content_hash[..content_hash.len().min(32)],
            previous
        )
    }

    /// The raw event carrying this snapshot.
    pub fn to_raw_event(
        &self,
        received_from: &str,
        received_at: DateTime<Utc>,
        previous_hash: Option<&str>,
    ) -> RawEvent {
        self.to_raw_event_and_hash(received_from, received_at, previous_hash).0
    }

    /// The raw event carrying this snapshot, and the snapshot's [content hash](Self::content_hash)
    /// (serialised once for both).
    pub fn to_raw_event_and_hash(
        &self,
        received_from: &str,
        received_at: DateTime<Utc>,
        previous_hash: Option<&str>,
    ) -> (RawEvent, String) {
        let payload = serde_json::to_value(self).expect("a snapshot always serialises");
        let hash = hash_of_payload(&payload);
        let event = RawEvent::new(
            Source::Snyk,
            PayloadKind::SnykProjectSnapshot,
            received_from,
            self.dedup_id(&hash, previous_hash),
            payload,
            received_at,
        );
        (event, hash)
    }

    /// Reads the snapshot a raw event carries.
    pub fn from_event(event: &RawEvent) -> Result<Self, PolicyError> {
        if event.kind != PayloadKind::SnykProjectSnapshot {
            return Err(PolicyError::malformed(
                "snyk project snapshot",
                format!("the event is a {}, not a snyk_project_snapshot", event.kind.as_str()),
            ));
        }
        ProjectSnapshot::deserialize(&event.payload)
            .map_err(|e| PolicyError::malformed("snyk project snapshot", e.to_string()))
    }
}

/// The content hash of a serialised snapshot: canonical JSON without `project.meta`.
fn hash_of_payload(payload: &Value) -> String {
    let mut canonical = String::new();
    match payload {
        Value::Object(top) => {
            let mut keys: Vec<&String> = top.keys().collect();
            keys.sort();
            canonical.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    canonical.push(',');
                }
                canonical.push_str(&Value::String(key.clone()).to_string());
                canonical.push(':');
                match (key.as_str(), &top[key]) {
                    ("project", Value::Object(project)) if project.contains_key("meta") => {
                        let mut without_meta = project.clone();
                        without_meta.remove("meta");
                        write_canonical(&Value::Object(without_meta), &mut canonical);
                    }
                    (_, value) => write_canonical(value, &mut canonical),
                }
            }
            canonical.push('}');
        }
        other => write_canonical(other, &mut canonical),
    }
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// JSON with object keys sorted at every level, whatever map order serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
