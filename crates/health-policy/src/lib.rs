//! AWS Health triage: which ticket an AWS Health event belongs to, and what it should say.
//!
//! * Identity is (`eventArn`, affected account): one [`HealthState`] each. Pages of one event
//!   (`page`/`totalPages`) are merged, `backupEvent` copies of a message already applied add
//!   nothing, and a newer `lastUpdatedTime` updates the state; `statusCode` and titles never
//!   decide novelty.
//! * Each affected entity goes to its owning team (catalog resource patterns, then the entity's
//!   team tag, then the account's team, then the default team): one ticket per team, in the
//!   Maintenance lane, listing that team's resources and their status.
//! * The due date is the window start for scheduled changes, retirements and planned lifecycle
//!   events, and the deadline found in the text otherwise ([`text`]), as a calendar day in the
//!   team's time zone; the ticket quotes the sentence it came from.
//! * Pure: no I/O. ingest-health and `explain` share [`raw_event`] and
//!   [`raw_events_from_documents`], so every intake yields the same raw events.

pub mod api;
pub mod dates;
pub mod event;
mod policy;
pub mod samples;
mod settings;
mod summary;
pub mod text;

pub use api::{
    ReadDocuments, dedup_id, eventbridge_from_api, partition, raw_event, raw_events_from_documents,
    read_documents, recognise,
};
pub use event::{Category, Entity, HealthEvent};
pub use policy::{
    Due, DueFrom, EntityRecord, EventFacts, HealthPolicy, HealthState, MAX_ENTITY_BYTES, MAX_PRUNED_ENTITIES,
    MAX_TICKET_ITEMS, PrunedEntity, due_of,
};
pub use settings::HealthSettings;

#[cfg(test)]
mod tests;
