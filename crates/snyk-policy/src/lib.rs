//! Snyk triage policy: grouping by target, qualifying findings, exposure, exploit maturity, lane
//! and due date. Pure, no I/O.
//!
//! One ticket per container image repository or per GitHub repository ([`grouping`]), never per
//! vulnerability. Only qualifying findings count: vulnerabilities (open source, container, Snyk
//! Code; not licence or configuration issues) of effective severity at or above the floor
//! (critical by default), open, not ignored, on an active project ([`state`]). The lane comes from
//! the group's exposure ([`exposure`]) and whether any finding has a mature exploit
//! ([`maturity`]) by the matrix in [`matrix`]; the due date from the lane's service level
//! ([`due`]). The owner is the team a Snyk project tag names, else the catalog's rule for the
//! target, else the default team.
//!
//! Input: raw events of kind `snyk_project_snapshot` whose payload is a [`ProjectSnapshot`],
//! produced by ingest-snyk, or by [`raw_events_from_documents`] from files for `explain`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use contracts::{DesiredTicket, Lane, RawEvent};
use triage_policy::{Policy, PolicyError};

pub mod due;
pub mod explain;
pub mod exposure;
pub mod feeds;
pub mod grouping;
pub mod matrix;
pub mod maturity;
pub mod rest;
mod settings;
pub mod severity;
pub mod snapshot;
pub mod state;
mod ticket;
pub mod webhook;

pub use explain::{DocumentKind, classify, raw_events_from_documents, recognise};
pub use settings::SnykSettings;
pub use snapshot::{BaseImage, ProjectSnapshot, SnapshotStatus};
pub use state::GroupState;

use crate::exposure::{GroupExposure, group_exposure};
use crate::grouping::group_of;
use crate::state::{Finding, LastTicket, ProjectRecord};

/// The Snyk policy, as triage runs it.
pub struct SnykPolicy {
    catalog: Arc<catalog::Catalog>,
    settings: SnykSettings,
}

/// Who owns a group and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerBasis {
    /// A Snyk project tag `<key>=<team>` on these projects.
    Tag { key: String, projects: Vec<String>, others: Vec<String> },
    /// The catalog's owner rule for the target.
    Catalog,
    /// Nothing matched.
    Default,
}

/// What a group's qualifying findings add up to now.
#[derive(Debug, Clone)]
pub(crate) struct Evaluation<'a> {
    pub lane: Lane,
    pub exposure: GroupExposure,
    /// The key of a mature finding, when there is one.
    pub mature_key: Option<&'a str>,
    pub team: String,
    pub owner: OwnerBasis,
    /// Qualifying findings of active projects, with their project id and project.
    pub findings: Vec<(&'a str, &'a ProjectRecord, &'a Finding)>,
    pub active: Vec<(&'a str, &'a ProjectRecord)>,
}

impl SnykPolicy {
    pub fn new(catalog: Arc<catalog::Catalog>, settings: SnykSettings) -> Self {
        SnykPolicy { catalog, settings }
    }

    pub fn settings(&self) -> &SnykSettings {
        &self.settings
    }

    pub fn catalog(&self) -> &catalog::Catalog {
        &self.catalog
    }

    /// The group of a snapshot's project, when its origin is ticketed.
    fn ticketed_group(&self, snapshot: &ProjectSnapshot) -> Result<grouping::GroupIdentity, PolicyError> {
        let group = group_of(&snapshot.project, &snapshot.org_id)?;
        if !self.settings.ticketed_origins.contains(&group.kind.origin_class()) {
            return Err(PolicyError::Ignored(format!(
                "project {:?} is a {:?}, and --snyk-ticketed-origins leaves {:?} out",
                snapshot.project.id,
                group.describe(),
                group.kind.origin_class()
            )));
        }
        Ok(group)
    }

    /// The owning team of a group's active projects.
    pub(crate) fn owner(&self, target: &str, active: &[(&str, &ProjectRecord)]) -> (String, OwnerBasis) {
        let key = &self.catalog.snyk_team_tag;
        let mut named: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (_, project) in active {
            for tag in project.tags.iter().filter(|t| &t.key == key && !t.value.trim().is_empty()) {
                named.entry(tag.value.trim()).or_default().push(project.name.clone());
            }
        }
        // A tag naming a team the catalog does not describe would file tickets nowhere; and
        // without a catalog (no teams at all) everything goes to the default team.
        let known = |team: &str| self.catalog.teams.contains_key(team);
        let chosen = named
            .iter()
            .filter(|(team, _)| known(team))
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))
            .map(|(team, projects)| (team.to_string(), projects.clone()));
        if let Some((team, mut projects)) = chosen {
            projects.sort();
            projects.dedup();
            let others = named.keys().filter(|t| **t != team).map(|t| t.to_string()).collect();
            return (team, OwnerBasis::Tag { key: key.clone(), projects, others });
        }
        if let Some(team) = self.catalog.owner_of_snyk_target(target) {
            return (team.to_owned(), OwnerBasis::Catalog);
        }
        (self.catalog.default_team.clone(), OwnerBasis::Default)
    }

    /// The group's lane, exposure and owner from its qualifying findings; `None` when nothing
    /// qualifies.
    pub(crate) fn evaluate<'a>(&self, state: &'a GroupState) -> Option<Evaluation<'a>> {
        let group = state.group.as_ref()?;
        let active: Vec<(&str, &ProjectRecord)> =
            state.projects.iter().filter(|(_, p)| p.is_active()).map(|(id, p)| (id.as_str(), p)).collect();
        let findings: Vec<(&str, &ProjectRecord, &Finding)> =
            active.iter().flat_map(|(id, p)| p.findings.iter().map(move |f| (*id, *p, f))).collect();
        if findings.is_empty() {
            return None;
        }
        let exposure = group_exposure(
            self.catalog.exposure_of_snyk_target(&group.target),
            active.iter().map(|(_, p)| (p.name.as_str(), p.exposure)),
            self.settings.unknown_exposure,
        );
        let mature_key =
            findings.iter().filter(|(_, _, f)| f.maturity.is_mature()).map(|(_, _, f)| f.key.as_str()).min();
        let lane = matrix::lane(exposure.exposure, mature_key.is_some());
        let (team, owner) = self.owner(&group.target, &active);
        Some(Evaluation { lane, exposure, mature_key, team, owner, findings, active })
    }

    /// After a project changed: fix, tighten or keep the due date, and remember the ticket.
    fn update_due(&self, state: &mut GroupState, at: DateTime<Utc>) {
        let evaluated = self.evaluate(state).map(|e| {
            let keys: Vec<String> = e.findings.iter().map(|(_, _, f)| f.key.clone()).collect();
            (e.lane, e.team, keys)
        });
        match evaluated {
            None => state.due = None,
            Some((lane, team, keys)) => {
                if state.due.is_none() {
                    // The group begins to qualify (again): its progress counts from here.
                    state.qualified_keys.clear();
                }
                state.qualified_keys.extend(keys);
                let zone = self.catalog.team(&team).time_zone;
                let today = local_day(at, zone);
                let calendar = self.settings.calendar();
                state.due = Some(match &state.due {
                    None => due::DueRecord::first(&calendar, lane, today),
                    Some(record) => record.next(&calendar, lane, today),
                });
                state.last_ticket = Some(LastTicket { lane, team });
            }
        }
    }
}

/// The calendar day of `at` in `zone`. Checked: at the ends of chrono's range a zone's offset
/// can push the local time out of it; the UTC day is the answer there.
fn local_day(at: DateTime<Utc>, zone: chrono_tz::Tz) -> chrono::NaiveDate {
    use chrono::{Offset, TimeZone};
    let offset = zone.offset_from_utc_datetime(&at.naive_utc()).fix();
    at.naive_utc().checked_add_offset(offset).map_or_else(|| at.date_naive(), |local| local.date())
}

impl Policy for SnykPolicy {
    type State = GroupState;

    fn state_key(&self, event: &RawEvent) -> Result<String, PolicyError> {
        let snapshot = ProjectSnapshot::from_event(event)?;
        Ok(self.ticketed_group(&snapshot)?.state_key())
    }

    fn apply(
        &self,
        state: &mut GroupState,
        event: &RawEvent,
        _now: DateTime<Utc>,
    ) -> Result<(), PolicyError> {
        let snapshot = ProjectSnapshot::from_event(event)?;
        let group = self.ticketed_group(&snapshot)?;
        if let Some(previous) = state.projects.get(&snapshot.project.id)
            && event.received_at < previous.observed_at
        {
            return Ok(());
        }
        // Every project of a group gives the same identity (a normalised name), so taking the
        // latest one is no choice by arrival order; it also renews states written before the
        // name was normalised.
        state.group = Some(group);
        let record = ProjectRecord::from_snapshot(&snapshot, &self.settings, event.received_at);
        state.projects.insert(snapshot.project.id.clone(), record);
        self.update_due(state, event.received_at);
        Ok(())
    }

    fn desired(&self, state: &GroupState, _now: DateTime<Utc>) -> Vec<DesiredTicket> {
        let Some(group) = &state.group else { return Vec::new() };
        match self.evaluate(state) {
            Some(evaluation) => vec![ticket::open(self, group, state, &evaluation)],
            None => match &state.last_ticket {
                Some(last) => vec![ticket::resolved(self, group, state, last)],
                None => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
