//! Folds raw events into group states kept in a key-value bucket and publishes the desired
//! tickets whose content changed.
//!
//! For one event:
//!
//! 1. read the group's stored state; if an earlier run stored tickets as pending (it crashed
//!    after writing the state but before or while publishing), publish them again: their message
//!    ids make the stream store them once;
//! 2. fold the event in and derive the desired tickets;
//! 3. nothing changed: no write, no publish (a resync of an unchanged source costs nothing);
//! 4. otherwise write the new state with the changed tickets as pending, by compare-and-set
//!    (a conflict means another worker moved the group: start again from 1);
//! 5. publish them with `upstream_version` = the revision just written, then clear pending.

use chrono::{DateTime, Utc};
use contracts::{DesiredTicket, RawEvent};
use serde::Serialize;
pub use triage_policy::GroupRecord;
use triage_policy::Policy;

use bus::{CasError, JsonKv, Outgoing, Publisher};

use crate::TriageError;

/// One source policy with its state bucket.
pub struct Engine<P: Policy> {
    policy: P,
    groups: JsonKv<GroupRecord<P::State>>,
    publisher: Publisher,
}

impl<P: Policy> Engine<P> {
    pub fn new(policy: P, groups: JsonKv<GroupRecord<P::State>>, publisher: Publisher) -> Self {
        Engine { policy, groups, publisher }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Processes one event; returns how many desired tickets it published.
    pub async fn process(&self, event: &RawEvent, now: DateTime<Utc>) -> Result<usize, TriageError> {
        let key = self.policy.state_key(event)?;
        loop {
            let current = self.groups.get(&key).await?;
            let (mut record, revision) = match current {
                Some(found) => (found.value, Some(found.revision)),
                None => (GroupRecord::default(), None),
            };
            let revision = match self.flush_pending(&key, &mut record, revision).await {
                Ok(revision) => revision,
                Err(CasError::Conflict) => continue,
                Err(CasError::Bus(error)) => return Err(error.into()),
            };

            let mut next = record.clone();
            let changed = triage_policy::fold(&self.policy, &mut next.stored, event, now)?;
            if changed.is_empty() {
                if same_json(&next.stored.state, &record.stored.state) {
                    return Ok(0);
                }
                match self.groups.write(&key, &next, revision).await {
                    Ok(_) => return Ok(0),
                    Err(CasError::Conflict) => continue,
                    Err(CasError::Bus(error)) => return Err(error.into()),
                }
            }
            next.pending = changed;
            let written = match self.groups.write(&key, &next, revision).await {
                Ok(written) => written,
                Err(CasError::Conflict) => continue,
                Err(CasError::Bus(error)) => return Err(error.into()),
            };
            let published = next.pending.len();
            publish_desired(&self.publisher, &next.pending, written).await?;
            next.pending.clear();
            // Best effort: if another worker wrote meanwhile it has published these already.
            if let Err(CasError::Bus(error)) = self.groups.update(&key, &next, written).await {
                tracing::debug!(%error, key = %key, "Pending tickets not cleared; the next event will.");
            }
            return Ok(published);
        }
    }

    /// Publishes tickets left pending by an interrupted run and clears them.
    async fn flush_pending(
        &self,
        key: &str,
        record: &mut GroupRecord<P::State>,
        revision: Option<u64>,
    ) -> Result<Option<u64>, CasError> {
        let Some(pending_revision) = revision.filter(|_| !record.pending.is_empty()) else {
            return Ok(revision);
        };
        tracing::info!(key = %key, tickets = record.pending.len(), "Publishing tickets an interrupted run left pending.");
        publish_desired(&self.publisher, &record.pending, pending_revision).await?;
        record.pending.clear();
        let cleared = self.groups.update(key, record, pending_revision).await?;
        Ok(Some(cleared))
    }
}

/// Publishes desired tickets as of the group state written at revision `version` (their
/// `upstream_version`, and with the group token their message id): triage's way, which
/// `infra-tickets replay --rebuild` uses too.
pub async fn publish_desired(
    publisher: &Publisher,
    tickets: &[DesiredTicket],
    version: u64,
) -> Result<(), bus::BusError> {
    let mut messages = Vec::with_capacity(tickets.len());
    for ticket in tickets {
        let mut ticket = ticket.clone();
        ticket.upstream_version = version;
        tracing::info!(
            group_key = %ticket.group_key,
            team = %ticket.team,
            lane = %ticket.lane,
            state = ?ticket.state,
            due = ?ticket.due.as_ref().map(|d| d.date),
            version,
            "Desired ticket changed."
        );
        messages.push(Outgoing::new(ticket.subject(), ticket.to_json()).with_id(ticket.message_id()));
    }
    publisher.publish_all(messages).await?;
    metrics::counter!("itk_desired_published_total").increment(tickets.len() as u64);
    Ok(())
}

fn same_json<T: Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}
