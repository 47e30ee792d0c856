//! The AWS Health policy: one state per (eventArn, affected account), one ticket per owning team.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, Duration, Utc};
use contracts::{
    DesiredTicket, DueDate, DueDateSource, GroupKey, Lane, PayloadKind, Progress, RawEvent, Source,
    TicketBody, TicketItem, TicketState, UpstreamLink,
};
use serde::{Deserialize, Serialize};
use triage_policy::{Policy, PolicyError};

use crate::dates::When;
use crate::event::{Category, Entity, HealthEvent};
use crate::settings::HealthSettings;
use crate::text::deadline_from_text;

/// The AWS Health triage policy.
pub struct HealthPolicy {
    catalog: Arc<Catalog>,
    settings: HealthSettings,
}

/// What the policy remembers about one event in one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthState {
    pub event_arn: String,
    pub account: String,
    /// The event-level facts of the newest version seen.
    #[serde(default)]
    pub facts: Option<EventFacts>,
    /// Every entity ever listed (pages merged), by entity value.
    #[serde(default)]
    pub entities: BTreeMap<String, EntityRecord>,
    /// Every team that ever had a resource in the event: each keeps its ticket.
    #[serde(default)]
    pub teams: BTreeSet<String>,
    /// The due date the newest version implies (`None`: no date found).
    #[serde(default)]
    pub due: Option<Due>,
    /// Earlier due dates, oldest first, for the ticket's "rescheduled" note.
    #[serde(default)]
    pub previous_dues: Vec<Due>,
    /// Messages (version and page) of the newest version already applied.
    #[serde(default)]
    pub applied_pages: BTreeSet<String>,
    /// Entities moved out of [`HealthState::entities`] to keep the state storable (see
    /// [`MAX_ENTITY_BYTES`]): by a digest of the entity value, its team and whether it is
    /// resolved, so they still count, resolve and are recognised when listed again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pruned: BTreeMap<String, PrunedEntity>,
    /// Entities seen once [`MAX_PRUNED_ENTITIES`] were pruned too, counted per team (not told
    /// apart any more: a count of at least this many, each taken as not resolved).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uncounted: BTreeMap<String, u32>,
}

/// An entity kept only as a count: its team and whether AWS says it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedEntity {
    pub team: String,
    pub resolved: bool,
}

/// The most bytes the full entity records of one state may take. The state is stored as one
/// `triage_groups` value next to the tickets not yet published, and NATS refuses a message
/// over its max payload (1 MiB by default): one event with 2,500 instances once made every
/// page of it a dead letter and no ticket. Past this, resolved entities are pruned first, then
/// the rest, to [`PrunedEntity`] (about 60 bytes each).
pub const MAX_ENTITY_BYTES: usize = 256 * 1024;
/// The most pruned entities one state keeps (about 480 KB at most); more are only counted.
pub const MAX_PRUNED_ENTITIES: usize = 8_000;
/// The most resources a ticket lists (unresolved first); the rest are summed up in one note
/// ("and N more"), the progress still counting all of them.
pub const MAX_TICKET_ITEMS: usize = 100;

/// Event-level facts of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFacts {
    pub version: Option<DateTime<Utc>>,
    pub service: String,
    pub event_type_code: String,
    pub category: Category,
    pub status: String,
    pub region: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub description: String,
    pub total_pages: u32,
}

/// One affected resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    pub value: String,
    pub arn: Option<String>,
    pub url: Option<String>,
    pub status: Option<String>,
    pub team: String,
    /// (event version, entity lastUpdatedTime) of the status: a status is replaced only by a
    /// newer one.
    pub event_version: Option<DateTime<Utc>>,
    pub last_updated: Option<DateTime<Utc>>,
}

/// A due date before it is a calendar day in a team's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub when: When,
    pub from: DueFrom,
    /// The text names only the month: `when` is its first day.
    #[serde(default)]
    pub approximate: bool,
    /// The version (`lastUpdatedTime`) of the message that set this date.
    #[serde(default)]
    pub set_by: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DueFrom {
    /// The start of the scheduled window.
    Window,
    /// A sentence of the notice, and the rule that chose its date.
    Text {
        sentence: String,
        #[serde(default)]
        rule: String,
    },
}

impl HealthPolicy {
    pub fn new(catalog: Arc<Catalog>, settings: HealthSettings) -> Self {
        HealthPolicy { catalog, settings }
    }

    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    /// Reads the event and refuses those that are not ticketed.
    fn ticketable(&self, raw: &RawEvent) -> Result<HealthEvent, PolicyError> {
        if raw.kind != PayloadKind::AwsHealthEvent {
            return Err(PolicyError::malformed(
                "AWS Health event",
                format!("payload kind {} is not aws_health_event", raw.kind.as_str()),
            ));
        }
        let event = HealthEvent::from_payload(&raw.payload)?;
        if let Some(reason) = self.settings.exclusion(&event) {
            return Err(PolicyError::Ignored(format!("{}: {reason}", event.event_arn)));
        }
        Ok(event)
    }

    /// The owner of a resource: the catalog's resource patterns, then the entity's own team
    /// tag, then the account's team, then the catalog's default team.
    fn owner_of(&self, entity: &Entity, account: &str) -> String {
        let by_pattern = std::iter::once(entity.value.as_str())
            .chain(entity.arn.as_deref())
            .find_map(|reference| self.catalog.owner_of_aws_resource(reference));
        by_pattern
            .map(str::to_owned)
            .or_else(|| entity.tags.get(&self.catalog.aws_team_tag).filter(|t| !t.trim().is_empty()).cloned())
            .unwrap_or_else(|| self.owner_of_account(account))
    }

    fn owner_of_account(&self, account: &str) -> String {
        self.catalog.owner_of_account(account).unwrap_or(&self.catalog.default_team).to_owned()
    }
}

/// The due date an event version implies: the window start for scheduled changes, retirements
/// and planned lifecycle events; otherwise the deadline in its text.
pub fn due_of(event: &HealthEvent) -> Option<Due> {
    let code = event.event_type_code.as_str();
    let windowed = event.category == Category::ScheduledChange
        || ["MAINTENANCE_SCHEDULED", "RETIREMENT", "PLANNED_LIFECYCLE"].iter().any(|w| code.contains(w));
    let set_by = event.version();
    if windowed && let Some(start) = event.start {
        return Some(Due { when: When::Instant(start), from: DueFrom::Window, approximate: false, set_by });
    }
    // Dates before the notice was written are history it recounts, unless their clause names a
    // deadline; years-less dates are read on or after it. One day of slack for zones.
    let written = event.version().or(event.start).map(|t| (t - Duration::days(1)).date_naive());
    deadline_from_text(&event.description, written).map(|found| Due {
        when: found.when,
        from: DueFrom::Text { sentence: found.sentence, rule: found.rule.to_owned() },
        approximate: found.approximate,
        set_by,
    })
}

/// Whether a newer message's due date replaces the one the ticket has. A later message never
/// moves the date later or removes it (a reminder, an update after the deadline, resources
/// resolved), unless AWS moved the window or the text names a new date for the same action
/// (the same sentence with another date). An earlier date is taken: it is the safe side.
fn replaces(current: &Due, candidate: Option<&Due>, window_moved: bool) -> bool {
    let Some(candidate) = candidate else { return false };
    if candidate.when == current.when {
        return false;
    }
    if window_moved || candidate.when.sort_key() < current.when.sort_key() {
        return true;
    }
    match (&current.from, &candidate.from) {
        (DueFrom::Text { sentence: old, .. }, DueFrom::Text { sentence: new, .. }) => {
            without_dates(old) == without_dates(new)
        }
        _ => false,
    }
}

/// A sentence with its dates blanked: two sentences that differ only in their dates are the
/// same action rescheduled.
fn without_dates(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut at = 0;
    for date in crate::dates::find_dates(sentence) {
        out.push_str(&sentence[at..date.start]);
        out.push_str("<date>");
        at = date.end;
    }
    out.push_str(&sentence[at..]);
    out.to_lowercase()
}

impl Policy for HealthPolicy {
    type State = HealthState;

    fn state_key(&self, raw: &RawEvent) -> Result<String, PolicyError> {
        let event = self.ticketable(raw)?;
        Ok(triage_policy::state_key("health", &[&event.event_arn, &event.affected_account]))
    }

    fn apply(&self, state: &mut HealthState, raw: &RawEvent, _now: DateTime<Utc>) -> Result<(), PolicyError> {
        let event = self.ticketable(raw)?;
        if state.event_arn.is_empty() {
            state.event_arn = event.event_arn.clone();
            state.account = event.affected_account.clone();
        }
        let version = event.version();
        let message = format!("{}:{}", version.map_or(0, |v| v.timestamp()), event.page);
        if event.backup && state.applied_pages.contains(&message) {
            return Ok(());
        }
        let known = state.facts.as_ref().and_then(|f| f.version);
        let stale = matches!((version, known), (Some(v), Some(k)) if v < k);
        if !stale {
            if matches!((version, known), (Some(v), Some(k)) if v > k) {
                state.applied_pages.clear();
            }
            state.applied_pages.insert(message);
            let window_moved =
                state.facts.as_ref().is_some_and(|f| (f.start, f.end) != (event.start, event.end));
            let candidate = due_of(&event);
            let take = match &state.due {
                None => candidate.is_some(),
                Some(current) => replaces(current, candidate.as_ref(), window_moved),
            };
            if take {
                if let Some(previous) = state.due.take() {
                    state.previous_dues.push(previous);
                }
                state.due = candidate;
            }
            state.facts = Some(EventFacts {
                version,
                service: event.service.clone(),
                event_type_code: event.event_type_code.clone(),
                category: event.category,
                status: event.status.clone(),
                region: event.region.clone(),
                start: event.start,
                end: event.end,
                description: event.description.clone(),
                total_pages: event.total_pages,
            });
        }
        for entity in event.entities_or_resources() {
            let digest = entity_digest(&entity.value);
            if let Some(pruned) = state.pruned.get_mut(&digest) {
                if !stale {
                    pruned.resolved = entity.status.as_deref() == Some("RESOLVED");
                }
                continue;
            }
            let incoming = (version, entity.last_updated);
            let replace = match state.entities.get(&entity.value) {
                None => true,
                Some(existing) => !stale && incoming >= (existing.event_version, existing.last_updated),
            };
            if replace {
                let record = EntityRecord {
                    team: self.owner_of(&entity, &state.account),
                    value: entity.value.clone(),
                    arn: entity.arn.clone(),
                    url: entity.url.clone(),
                    status: entity.status.clone(),
                    event_version: version,
                    last_updated: entity.last_updated,
                };
                state.entities.insert(entity.value.clone(), record);
            }
        }
        if state.entities.is_empty() && state.pruned.is_empty() && state.uncounted.is_empty() {
            state.teams.insert(self.owner_of_account(&state.account));
        }
        state.teams.extend(state.entities.values().map(|e| e.team.clone()));
        prune(state);
        Ok(())
    }

    fn desired(&self, state: &HealthState, _now: DateTime<Utc>) -> Vec<DesiredTicket> {
        let Some(facts) = &state.facts else { return Vec::new() };
        state.teams.iter().map(|team| self.ticket(state, facts, team)).collect()
    }
}

impl HealthPolicy {
    fn ticket(&self, state: &HealthState, facts: &EventFacts, team: &str) -> DesiredTicket {
        let zone = self.catalog.team(team).time_zone;
        let mut resources: Vec<&EntityRecord> = state.entities.values().filter(|e| e.team == team).collect();
        if resources.len() > MAX_TICKET_ITEMS {
            // Unresolved first, so the list a ticket has room for shows what is left to do.
            resources.sort_by_key(|e| e.status.as_deref() == Some("RESOLVED"));
        }
        let pruned: Vec<&PrunedEntity> = state.pruned.values().filter(|p| p.team == team).collect();
        let uncounted = state.uncounted.get(team).copied().unwrap_or(0) as usize;
        let total = resources.len() + pruned.len() + uncounted;
        let unresolved = resources.iter().filter(|e| e.status.as_deref() != Some("RESOLVED")).count()
            + pruned.iter().filter(|p| !p.resolved).count()
            + uncounted;
        let account_level = state.entities.is_empty()
            && state.pruned.is_empty()
            && state.uncounted.is_empty()
            && team == self.owner_of_account(&state.account);
        let resolution = if facts.status == "closed" {
            Some("Resolved: AWS closed the event.".to_owned())
        } else if total == 0 && !account_level {
            Some("Resolved: none of the event's resources belong to this team any more.".to_owned())
        } else if total > 0 && unresolved == 0 {
            Some("Resolved: every resource of this team in the event is RESOLVED.".to_owned())
        } else {
            None
        };

        let mut notes = Vec::new();
        let due = state.due.as_ref().map(|due| {
            let date = due.when.day_in(zone);
            let (source, note) = match &due.from {
                DueFrom::Window => (
                    DueDateSource::EventWindow,
                    format!(
                        "Due {date} ({zone}): the start of the scheduled window, {}.",
                        window_text(facts)
                    ),
                ),
                DueFrom::Text { sentence, .. } => (
                    DueDateSource::EventText { sentence: sentence.clone() },
                    format!("Due {date} ({zone}), from the notice: \u{201c}{sentence}\u{201d}"),
                ),
            };
            notes.push(note);
            if due.approximate {
                notes.push(format!(
                    "Approximate: the notice names only the month, so the due date is its first day ({date}). \
                     Check the exact day with AWS."
                ));
            }
            DueDate { date, source }
        });
        if due.is_none() {
            notes.push(
                "No due date: the notice gives no date and the event has no window. Check the event and set \
                 one by hand."
                    .to_owned(),
            );
        }
        if let Some(note) = reschedule_note(state, zone) {
            notes.push(note);
        }
        let progress = (total > 0).then(|| Progress {
            remaining: u32::try_from(unresolved).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
            unit: "resources".to_owned(),
        });
        if let Some(progress) = &progress {
            notes.push(format!("Progress: {}.", progress.describe()));
        }
        notes.push(format!(
            "AWS status: {}. Event type {} ({}), region {}, affected account {}.",
            facts.status,
            facts.event_type_code,
            facts.category.as_str(),
            if facts.region.is_empty() { "unknown" } else { &facts.region },
            state.account
        ));
        if let Some(resolution) = &resolution {
            notes.push(resolution.clone());
        }

        let listed = resources.len().min(MAX_TICKET_ITEMS);
        if total > listed {
            let more = total - listed;
            let listed_unresolved =
                resources[..listed].iter().filter(|e| e.status.as_deref() != Some("RESOLVED")).count();
            notes.push(format!(
                "And {more} more resources, {} of them not resolved: too many to list here; the AWS Health \
                 event lists them all.",
                unresolved - listed_unresolved
            ));
        }
        let items = resources[..listed]
            .iter()
            .map(|entity| TicketItem {
                reference: entity.arn.clone().unwrap_or_else(|| entity.value.clone()),
                title: entity.value.clone(),
                link: entity.url.clone(),
                status: entity.status.clone().or_else(|| Some("UNKNOWN".into())),
                facts: Vec::new(),
            })
            .collect();
        let resources = &resources[..listed];
        let headline = if facts.description.trim().is_empty() {
            format!("AWS Health event {} affects account {}.", facts.event_type_code, state.account)
        } else {
            truncate(facts.description.trim(), 4_000)
        };
        DesiredTicket {
            schema: contracts::SCHEMA_VERSION,
            group_key: GroupKey::new(Source::AwsHealth, [&state.event_arn, &state.account, team]),
            source: Source::AwsHealth,
            team: team.to_owned(),
            lane: Lane::Maintenance,
            // The one resource is named only when it is the only one.
            summary: crate::summary::summary(
                facts,
                &state.event_arn,
                &state.account,
                if total == resources.len() { resources } else { &[] },
            ),
            body: TicketBody { headline, notes, items, progress },
            due,
            state: if resolution.is_some() { TicketState::Resolved } else { TicketState::Open },
            labels: vec!["aws-health".into(), format!("aws-health-{}", label_token(&facts.service))],
            links: vec![UpstreamLink {
                global_id: format!("aws-health:{}:{}", state.event_arn, state.account),
                title: format!("AWS Health event {}", facts.event_type_code),
                url: format!(
                    "https://health.aws.amazon.com/health/home#/account/event-log?eventID={}&eventTab=details",
                    state.event_arn
                ),
            }],
            content_hash: String::new(),
            upstream_version: 0,
        }
        .seal()
    }
}

/// A short, stable name for an entity value (which may be any length).
fn entity_digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(value.as_bytes())[..8])
}

/// About the bytes an entity record takes in the stored JSON.
fn record_bytes(record: &EntityRecord) -> usize {
    // Field names, quotes and two timestamps.
    const FIXED: usize = 160;
    let optional = |text: &Option<String>| text.as_deref().map_or(0, str::len);
    FIXED
        + 2 * record.value.len()
        + optional(&record.arn)
        + optional(&record.url)
        + optional(&record.status)
        + record.team.len()
}

/// Keeps the full entity records within [`MAX_ENTITY_BYTES`]: resolved ones are pruned to a
/// [`PrunedEntity`] first, then unresolved ones from the end of the order; past
/// [`MAX_PRUNED_ENTITIES`] only a count per team is left.
fn prune(state: &mut HealthState) {
    let mut bytes: usize = state.entities.values().map(record_bytes).sum();
    if bytes <= MAX_ENTITY_BYTES {
        return;
    }
    let resolved: Vec<String> = state
        .entities
        .iter()
        .filter(|(_, e)| e.status.as_deref() == Some("RESOLVED"))
        .map(|(key, _)| key.clone())
        .collect();
    let rest: Vec<String> = state
        .entities
        .iter()
        .rev()
        .filter(|(_, e)| e.status.as_deref() != Some("RESOLVED"))
        .map(|(key, _)| key.clone())
        .collect();
    for key in resolved.into_iter().chain(rest) {
        if bytes <= MAX_ENTITY_BYTES {
            break;
        }
        let Some(record) = state.entities.remove(&key) else { continue };
        bytes -= record_bytes(&record);
        let is_resolved = record.status.as_deref() == Some("RESOLVED");
        if state.pruned.len() < MAX_PRUNED_ENTITIES {
            state
                .pruned
                .insert(entity_digest(&key), PrunedEntity { team: record.team, resolved: is_resolved });
        } else {
            *state.uncounted.entry(record.team).or_default() += 1;
        }
    }
}

fn window_text(facts: &EventFacts) -> String {
    match (facts.start, facts.end) {
        (Some(start), Some(end)) if end != start => {
            format!("{} to {} UTC", start.format("%Y-%m-%d %H:%M"), end.format("%Y-%m-%d %H:%M"))
        }
        (Some(start), _) => format!("{} UTC", start.format("%Y-%m-%d %H:%M")),
        _ => "time unknown".to_owned(),
    }
}

/// "Rescheduled" when the newest due date differs from the one before it: the old and the new
/// date and the message that moved it.
fn reschedule_note(state: &HealthState, zone: chrono_tz::Tz) -> Option<String> {
    let current = state.due.as_ref()?;
    let previous = state.previous_dues.iter().rev().find(|p| p.when != current.when)?;
    let (old_day, new_day) = (previous.when.day_in(zone), current.when.day_in(zone));
    let moved = if old_day != new_day {
        format!("Rescheduled: AWS moved the date from {old_day} to {new_day}")
    } else {
        format!(
            "Rescheduled: AWS moved the time from {} to {} (same day)",
            previous.when.describe(),
            current.when.describe()
        )
    };
    let message = current.set_by.map_or_else(
        || "a later message".to_owned(),
        |v| format!("the message of {}", v.format("%Y-%m-%d %H:%M UTC")),
    );
    let how = match &current.from {
        DueFrom::Window => "moved the scheduled window".to_owned(),
        DueFrom::Text { sentence, .. } => format!("says \u{201c}{sentence}\u{201d}"),
    };
    Some(format!("{moved}: {message} {how}."))
}

fn label_token(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
