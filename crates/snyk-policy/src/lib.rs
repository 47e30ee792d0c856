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
pub mod profile;
pub mod rest;
mod settings;
pub mod severity;
pub mod snapshot;
pub mod state;
mod ticket;
pub mod webhook;

pub use explain::{DocumentKind, classify, raw_events_from_documents, recognise};
pub use profile::{Profile, ProfileError};
pub use settings::{Probability, SnykSettings};
pub use snapshot::{BaseImage, ProjectSnapshot, SnapshotStatus};
pub use state::GroupState;

use crate::exposure::{GroupExposure, group_exposure};
use crate::feeds::{Feeds, KevEntry};
use crate::grouping::group_of;
use crate::state::{Finding, LastTicket, ProjectRecord};

/// The Snyk policy, as triage runs it.
pub struct SnykPolicy {
    catalog: Arc<catalog::Catalog>,
    settings: SnykSettings,
    profile: Profile,
    /// The exploitation feeds as loaded now; triage swaps in a refreshed copy while running
    /// (a lock held only to clone the `Arc`).
    feeds: std::sync::RwLock<Arc<Feeds>>,
}

/// Why a finding counts as a mature exploit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MatureBy {
    /// Snyk's exploit maturity.
    Snyk,
    /// CISA KEV lists this CVE.
    Kev(String),
    /// This CVE's EPSS score is at or above the threshold.
    Epss(String, f32),
}

/// The due date a ticket carries and the rule that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDecision {
    pub date: chrono::NaiveDate,
    /// In words: the profile and lane rule, or the KEV entry (`explain --why`).
    pub rule: String,
    /// The KEV entry whose `dueDate` it is, when that is earlier than the lane's date.
    pub kev: Option<KevEntry>,
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
    /// The key of a mature finding, when there is one, and why it is mature.
    pub mature_key: Option<&'a str>,
    pub mature_by: Option<MatureBy>,
    /// The listed CVE of a qualifying finding with the earliest KEV `dueDate`.
    pub kev_due: Option<KevEntry>,
    pub feeds: Arc<Feeds>,
    pub team: String,
    pub owner: OwnerBasis,
    /// Qualifying findings of active projects, with their project id and project.
    pub findings: Vec<(&'a str, &'a ProjectRecord, &'a Finding)>,
    pub active: Vec<(&'a str, &'a ProjectRecord)>,
}

impl SnykPolicy {
    pub fn new(catalog: Arc<catalog::Catalog>, settings: SnykSettings) -> Self {
        let profile = Profile::seed(&settings);
        SnykPolicy { catalog, settings, profile, feeds: Default::default() }
    }

    /// The policy under a profile (the lanes, due rules, KEV and EPSS switches).
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    pub fn with_feeds(self, feeds: Feeds) -> Self {
        self.set_feeds(feeds);
        self
    }

    /// Uses these feeds from the next event on (a refresh).
    pub fn set_feeds(&self, feeds: Feeds) {
        *self.feeds.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(feeds);
    }

    pub fn feeds(&self) -> Arc<Feeds> {
        self.feeds.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The calendar of the profile's due rules.
    pub fn calendar(&self) -> due::SlaCalendar {
        due::SlaCalendar {
            sprint_anchor: self.settings.sprint_anchor,
            sprint_days: self.settings.sprint_days,
            rules: self.profile.due,
        }
    }

    /// Why a finding's exploit counts as mature, if it does: Snyk's maturity first, then KEV,
    /// then EPSS, each a hash lookup per CVE.
    pub(crate) fn mature_by(&self, feeds: &Feeds, finding: &Finding) -> Option<MatureBy> {
        if finding.maturity.is_mature() {
            return Some(MatureBy::Snyk);
        }
        if self.profile.kev_enabled
            && let Some(cve) = finding.cves.iter().find(|c| feeds.kev(c).is_some())
        {
            return Some(MatureBy::Kev(cve.clone()));
        }
        if self.profile.epss_enabled {
            for cve in &finding.cves {
                if let Some(score) = feeds.epss(cve).filter(|s| s.epss >= self.profile.epss_threshold) {
                    return Some(MatureBy::Epss(cve.clone(), score.epss));
                }
            }
        }
        None
    }

    /// The due date of a group's open ticket and the rule that set it: the earlier of the
    /// lane's date and, with KEV on, the KEV `dueDate` of a qualifying finding's CVE.
    pub fn due_decision(&self, state: &GroupState) -> Option<DueDecision> {
        let evaluation = self.evaluate(state)?;
        self.decide_due(state, &evaluation)
    }

    pub(crate) fn decide_due(&self, state: &GroupState, evaluation: &Evaluation<'_>) -> Option<DueDecision> {
        let record = state.due.as_ref();
        let lane_date = record.and_then(|r| r.date);
        let kev = evaluation.kev_due.as_ref().and_then(|e| e.due_date.map(|d| (d, e)));
        match (lane_date, kev) {
            (_, Some((kev_date, entry))) if lane_date.is_none_or(|lane| kev_date < lane) => {
                Some(DueDecision {
                    date: kev_date,
                    rule: format!(
                        "CISA KEV dueDate of {} ({})",
                        entry.cve,
                        entry.sentence().trim_end_matches('.')
                    ),
                    kev: Some(entry.clone()),
                })
            }
            (Some(date), _) => {
                let record = record.expect("a lane date has its record");
                let rule = self.calendar().rules.of(record.due_lane).describe(self.settings.sprint_days);
                Some(DueDecision {
                    date,
                    rule: format!(
                        "profile {}, lane {}: {rule} from {}",
                        self.profile.name, record.due_lane, record.since
                    ),
                    kev: None,
                })
            }
            (None, _) => None,
        }
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
        let feeds = self.feeds();
        let mut mature: Option<(&str, MatureBy)> = None;
        let mut kev_due: Option<&KevEntry> = None;
        for (_, _, finding) in &findings {
            if mature.as_ref().is_none_or(|(key, _)| finding.key.as_str() < *key)
                && let Some(by) = self.mature_by(&feeds, finding)
            {
                mature = Some((finding.key.as_str(), by));
            }
            if self.profile.kev_enabled && !feeds.kev.as_ref().is_none_or(|k| k.is_empty()) {
                fn rank(e: &KevEntry) -> (bool, Option<chrono::NaiveDate>, &str) {
                    (e.due_date.is_none(), e.due_date, e.cve.as_str())
                }
                for entry in finding.cves.iter().filter_map(|c| feeds.kev(c)) {
                    if kev_due.is_none_or(|best| rank(entry) < rank(best)) {
                        kev_due = Some(entry);
                    }
                }
            }
        }
        let kev_due = kev_due.cloned();
        let (mature_key, mature_by) = match mature {
            Some((key, by)) => (Some(key), Some(by)),
            None => (None, None),
        };
        let lane = self.profile.matrix.lane(exposure.exposure, mature_key.is_some());
        let (team, owner) = self.owner(&group.target, &active);
        Some(Evaluation {
            lane,
            exposure,
            mature_key,
            mature_by,
            kev_due,
            feeds,
            team,
            owner,
            findings,
            active,
        })
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
                let calendar = self.calendar();
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
        let feeds = self.feeds();
        let exempt = if self.profile.kev_enabled && self.profile.kev_below_floor {
            feeds.kev.as_deref()
        } else {
            None
        };
        let record = ProjectRecord::from_snapshot(&snapshot, &self.settings, exempt, event.received_at);
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
