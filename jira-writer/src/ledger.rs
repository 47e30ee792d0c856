//! The ledger: one record per group key in the `jira_ledger` bucket (key: `group_key.token()`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use contracts::{GroupKey, TicketState};
use serde::{Deserialize, Serialize};

use crate::mapping::FieldValues;

/// A JIRA issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRef {
    pub id: String,
    pub key: String,
}

/// A writer's intent to create the issue of a key, taken by compare-and-set before the create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub owner: String,
    pub at: DateTime<Utc>,
}

/// A created issue not yet announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCreate {
    /// The upstream version created from: the Created change carries it, so whoever finishes
    /// the create publishes the same message id (stored once).
    pub upstream_version: u64,
    /// The key of the ticket this one replaces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relates_to: Option<String>,
}

/// What the writer knows about one group key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub group_key: GroupKey,
    /// Set while a create is in progress or unfinished (a crash after it).
    #[serde(default)]
    pub claim: Option<Claim>,
    /// The issue, once created (or adopted after a search).
    #[serde(default)]
    pub issue: Option<IssueRef>,
    /// The team the ticket was last written for.
    #[serde(default)]
    pub team: String,
    /// The source's state last applied.
    #[serde(default = "open")]
    pub source_state: TicketState,
    /// `upstream_version` and content hash of the desired state last applied.
    #[serde(default)]
    pub applied_version: u64,
    #[serde(default)]
    pub content_hash: String,
    /// The field values last written (what "a person changed it" is measured against).
    #[serde(default)]
    pub written: Option<FieldValues>,
    /// Upstream links written: global id → `title\nurl`.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Earlier tickets of this key that a person closed and a new ticket replaced.
    #[serde(default)]
    pub superseded: Vec<IssueRef>,
    /// Set from the create until its remote links and Created change are out. A crash in
    /// between (or another replica's message for the key) finishes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unannounced: Option<PendingCreate>,
    /// Ids of the issue links whose status sync is done: a link is acted on once, so a
    /// redelivered webhook or the next search does nothing, and a person moving the ticket back
    /// afterwards is not overruled.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub synced_links: BTreeSet<String>,
    /// Duplicates of this key's ticket that were closed and announced (duplicate issue id → the
    /// key kept): a later sweep, or a replica that never saw the close, does it once only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub duplicates_closed: BTreeMap<String, String>,
    pub updated_at: DateTime<Utc>,
}

fn open() -> TicketState {
    TicketState::Open
}

impl LedgerEntry {
    /// A record holding only a claim.
    pub fn claimed(group_key: GroupKey, owner: &str, at: DateTime<Utc>) -> Self {
        LedgerEntry {
            group_key,
            claim: Some(Claim { owner: owner.to_owned(), at }),
            issue: None,
            team: String::new(),
            source_state: TicketState::Open,
            applied_version: 0,
            content_hash: String::new(),
            written: None,
            links: BTreeMap::new(),
            superseded: Vec::new(),
            created_unannounced: None,
            synced_links: BTreeSet::new(),
            duplicates_closed: BTreeMap::new(),
            updated_at: at,
        }
    }
}
