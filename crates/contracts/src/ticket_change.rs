//! What jira-writer did in JIRA, published after the write succeeded.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{ContractError, GroupKey, Lane, Source, Versioned, default_schema};

/// The kind of change made to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    TeamChanged,
    Resolved,
    Reopened,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::TeamChanged => "team_changed",
            ChangeKind::Resolved => "resolved",
            ChangeKind::Reopened => "reopened",
        }
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

impl Versioned for TicketChange {
    fn schema(&self) -> u16 {
        self.schema
    }
}

impl TicketChange {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TicketChange always serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        crate::decode("ticket change", bytes)
    }

    /// `tickets.<kind>.<token>`.
    pub fn subject(&self) -> String {
        crate::subjects::ticket_change(self.kind, &self.group_key)
    }

    /// `Nats-Msg-Id`: one change of one issue for one desired version is stored once.
    pub fn message_id(&self) -> String {
        format!("change:{}:{}:{}", self.issue_id, self.kind.as_str(), self.upstream_version)
    }
}
