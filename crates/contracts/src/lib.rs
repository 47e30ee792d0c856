//! The contracts between the infra-tickets services.
//!
//! Three documents flow through NATS JetStream, each versioned by
//! [`SCHEMA_VERSION`] and serialised as JSON:
//!
//! ```text
//! ingest-health ┐                      ┌──────────┐                        ┌─────────────┐                       ┌──────────┐
//! ingest-snyk   ┴─ RawEvent ─(events.>)─▶  triage  ├─ DesiredTicket ─(desired.>)─▶ jira-writer ├─ TicketChange ─(tickets.>)─▶ notifier │
//!                                      └──────────┘                        └─────────────┘                       └──────────┘
//! ```
//!
//! * [`RawEvent`]: what an intake received, kept as received so any policy can be replayed.
//! * [`DesiredTicket`]: the whole state one JIRA ticket should have. Published by triage only,
//!   and only when its content changed; the stream keeps the latest per group key.
//! * [`TicketChange`]: what jira-writer did in JIRA, after the write succeeded.
//!
//! Dead letters keep the original message untouched and add [`dead_letter`] headers.

pub mod contact;
pub mod dead_letter;
pub mod desired;
pub mod raw;
pub mod subjects;
pub mod ticket_change;

pub use contact::{ContactFailure, ContactMode, SourceContact};
pub use desired::{
    DesiredTicket, DueDate, DueDateSource, GroupKey, Lane, Progress, TicketBody, TicketItem, TicketState,
    UpstreamLink,
};
pub use raw::{PayloadKind, RawEvent, Source};
pub use ticket_change::{
    ChangeKind, DuplicateClosed, IssueName, TICKET_CHANGE_SCHEMA, TicketChange, schema_for,
};

/// Version of every document in this crate (ticket changes have moved on to
/// [`TICKET_CHANGE_SCHEMA`] for one kind). A consumer refuses (dead-letters) a document whose
/// version is newer than the one it was built with, rather than misreading it.
pub const SCHEMA_VERSION: u16 = 1;

/// The error for a document that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("malformed {document}: {source}")]
    Malformed {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{document} is invalid: {reason}")]
    Invalid { document: &'static str, reason: String },
    #[error("{document} has schema version {found}, this build reads up to {supported}")]
    UnsupportedVersion { document: &'static str, found: u16, supported: u16 },
}

/// Decodes a versioned document, refusing versions newer than this build.
pub(crate) fn decode<T: serde::de::DeserializeOwned + SchemaVersioned>(
    document: &'static str,
    bytes: &[u8],
) -> Result<T, ContractError> {
    decode_up_to(document, bytes, SCHEMA_VERSION)
}

/// Decodes a versioned document whose own schema has moved on to `supported`.
pub(crate) fn decode_up_to<T: serde::de::DeserializeOwned + SchemaVersioned>(
    document: &'static str,
    bytes: &[u8],
    supported: u16,
) -> Result<T, ContractError> {
    let value: T =
        serde_json::from_slice(bytes).map_err(|source| ContractError::Malformed { document, source })?;
    if value.schema() > supported {
        return Err(ContractError::UnsupportedVersion { document, found: value.schema(), supported });
    }
    Ok(value)
}

/// A contract that carries its schema version (`bus::kv::Versioned` is a KV value with its revision:
/// a different thing, hence the different name).
pub(crate) trait SchemaVersioned {
    fn schema(&self) -> u16;
}

pub(crate) fn default_schema() -> u16 {
    SCHEMA_VERSION
}
