//! What jira-writer did in JIRA, published after the write succeeded.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{ContractError, GroupKey, Lane, SchemaVersioned, Source, default_schema};

/// The kind of change made to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    TeamChanged,
    Resolved,
    Reopened,
    /// The duplicate sweep closed this issue as a duplicate of another (schema 2: the document
    /// is a [`DuplicateClosed`], naming the ticket that survives).
    DuplicateClosed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::TeamChanged => "team_changed",
            ChangeKind::Resolved => "resolved",
            ChangeKind::Reopened => "reopened",
            ChangeKind::DuplicateClosed => "duplicate_closed",
        }
    }
}

/// The newest ticket-change schema this build reads and writes.
///
/// * 1: every kind but `duplicate_closed`.
/// * 2: adds the kind `duplicate_closed`, whose document is a [`DuplicateClosed`] (a change of
///   the closed issue plus `survivor`). Writers stamp 2 on those documents only, so a reader
///   built for schema 1 reads every other change as before and refuses (dead-letters, with the
///   version in the reason) only the ones it could not understand.
pub const TICKET_CHANGE_SCHEMA: u16 = 2;

/// The schema a change of `kind` needs.
pub fn schema_for(kind: ChangeKind) -> u16 {
    match kind {
        ChangeKind::DuplicateClosed => 2,
        _ => crate::SCHEMA_VERSION,
    }
}

/// One change to one JIRA issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketChange {
    #[serde(default = "default_schema")]
    pub schema: u16,
    pub kind: ChangeKind,
    pub group_key: GroupKey,
    pub source: Source,
    pub issue_id: String,
    pub issue_key: String,
    /// Browse URL of the issue.
    pub issue_url: String,
    pub team: String,
    /// For `team_changed`: the team that had it before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_team: Option<String>,
    pub lane: Lane,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    pub summary: String,
    /// How much of the work remains, copied from the desired ticket's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::Progress>,
    /// Why the ticket was filed, in one sentence, for the message.
    #[serde(default)]
    pub reason: String,
    /// The desired state's content hash this change applied.
    pub content_hash: String,
    /// The desired state's `upstream_version` this change applied; with `kind` and `issue_id`
    /// it makes the change's message id, so a retried publish is stored once while the same
    /// kind of change at a later version is not mistaken for it.
    pub upstream_version: u64,
    pub at: DateTime<Utc>,
}

impl SchemaVersioned for TicketChange {
    fn schema(&self) -> u16 {
        self.schema
    }
}

impl TicketChange {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TicketChange always serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        crate::decode_up_to("ticket change", bytes, TICKET_CHANGE_SCHEMA)
    }

    /// `tickets.<kind>.<token>`.
    pub fn subject(&self) -> String {
        crate::subjects::ticket_change(self.kind, &self.group_key)
    }

    /// `Nats-Msg-Id`: one change of one issue for one desired version is stored once.
    /// A duplicate is closed once, whatever version its key is at: its id leaves the version out.
    pub fn message_id(&self) -> String {
        match self.kind {
            ChangeKind::DuplicateClosed => format!("change:{}:{}", self.issue_id, self.kind.as_str()),
            _ => format!("change:{}:{}:{}", self.issue_id, self.kind.as_str(), self.upstream_version),
        }
    }
}

/// A JIRA issue named in a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueName {
    pub issue_id: String,
    pub issue_key: String,
    /// Browse URL of the issue.
    pub issue_url: String,
}

/// `duplicate_closed` (schema 2): the change of the issue the sweep closed (`change.issue_*`),
/// and the ticket that survives it. Its JSON is a [`TicketChange`] with one more field,
/// `survivor`, so a reader of [`TicketChange`] reads its common part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicateClosed {
    #[serde(flatten)]
    pub change: TicketChange,
    /// The ticket kept: the one people should follow.
    pub survivor: IssueName,
}

impl DuplicateClosed {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a DuplicateClosed always serialises")
    }

    /// Reads the document of a `duplicate_closed` change.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        let value: DuplicateClosed = serde_json::from_slice(bytes)
            .map_err(|source| ContractError::Malformed { document: "duplicate closed change", source })?;
        if value.change.schema > TICKET_CHANGE_SCHEMA {
            return Err(ContractError::UnsupportedVersion {
                document: "duplicate closed change",
                found: value.change.schema,
                supported: TICKET_CHANGE_SCHEMA,
            });
        }
        if value.change.kind != ChangeKind::DuplicateClosed {
            return Err(ContractError::Invalid {
                document: "duplicate closed change",
                reason: format!("its kind is {}", value.change.kind.as_str()),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupKey, Lane, Source};

    fn change(kind: ChangeKind) -> TicketChange {
        TicketChange {
            schema: schema_for(kind),
            kind,
            group_key: GroupKey::new(Source::Snyk, ["github", "acme/checkout"]),
            source: Source::Snyk,
            issue_id: "10002".into(),
            issue_key: "PAY-2".into(),
            issue_url: "https://x/browse/PAY-2".into(),
            team: "payments".into(),
            previous_team: None,
            lane: Lane::P1,
            due_date: None,
            summary: "s".into(),
            progress: None,
            reason: "r".into(),
            content_hash: "h".into(),
            upstream_version: 1,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_duplicate_closed_change_reads_as_a_ticket_change_and_names_its_survivor() {
        let closed = DuplicateClosed {
            change: change(ChangeKind::DuplicateClosed),
            survivor: IssueName {
                issue_id: "10001".into(),
                issue_key: "PAY-1".into(),
                issue_url: "https://x/browse/PAY-1".into(),
            },
        };
        let bytes = closed.to_json();
        let common = TicketChange::from_json(&bytes).unwrap();
        assert_eq!(common, closed.change);
        assert_eq!(common.schema, 2);
        assert_eq!(common.subject(), format!("tickets.duplicate_closed.{}", common.group_key.token()));
        assert_eq!(DuplicateClosed::from_json(&bytes).unwrap(), closed);
        assert!(DuplicateClosed::from_json(&change(ChangeKind::Created).to_json()).is_err());
    }

    #[test]
    fn other_kinds_stay_schema_1_so_older_readers_read_them() {
        for kind in [ChangeKind::Created, ChangeKind::Updated, ChangeKind::Resolved] {
            assert_eq!(schema_for(kind), crate::SCHEMA_VERSION);
        }
        let mut newer = serde_json::to_value(change(ChangeKind::Created)).unwrap();
        newer["schema"] = serde_json::json!(3);
        let error = TicketChange::from_json(&serde_json::to_vec(&newer).unwrap()).unwrap_err();
        assert!(error.to_string().contains("schema version 3, this build reads up to 2"), "{error}");
    }
}
