//! The reconcile of one desired ticket state with JIRA, and the duplicate sweep.
//!
//! ```text
//! ledger record?
//!  ├─ issue known ──▶ stale or same content? ─ yes ─▶ nothing (0 JIRA calls)
//!  │                   └─ no ─▶ one PUT of what the source changed (+ comment when the due date moved),
//!  │                            a transition when it resolved / came back, remote links by globalId
//!  ├─ claim, no issue ─▶ search the label ─ found ─▶ adopt the oldest
//!  │                                      └─ none ─▶ claim younger than the consistency window? wait (NAK)
//!  │                                                 else take the claim over and create
//!  └─ nothing ─▶ claim (CAS) ─▶ create (label + property): a fresh claim proves nobody else is
//!               creating it, so no search; then the ledger records the issue, then remote links
//!               and the Created change (2 JIRA calls per created ticket with one upstream link)
//! after each JIRA write: publish the TicketChange, then write the ledger (CAS)
//! ```
//!
//! Status changes follow the project's workflow ([`crate::workflow`]): the writer walks to a named
//! status one transition at a time, never leaves a status that is a person's decision (it
//! comments instead), and dead-letters a target it cannot reach with what JIRA offered.

mod linked;
mod recovery;

pub use linked::{LinkEvent, LinkOutcome, parse_webhook};
pub use recovery::{LEDGER_MARKER_KEY, LedgerMarker, RecoveryReport, recovered_entries};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use bus::{
    BusError, CasError, Classify, Delivery, ErrorClass, Handler, JsonKv, Outgoing, Publisher, Versioned,
};
use catalog::Catalog;
use chrono::{DateTime, Utc};
use contracts::{ChangeKind, DesiredTicket, TicketChange, TicketState};
use serde_json::Value;
use service_kit::Clock;

use crate::client::{Issue, JiraClient, JiraError, SearchRequest, TicketSystem};
use crate::config::Hooks;
use crate::ledger::{Claim, IssueRef, LedgerEntry, PendingCreate};
use crate::mapping::{self, FieldValues, Mapped, MappingSettings, PROPERTY_KEY};
use crate::workflow::{self, Step, Workflows};

/// Why a desired state was not (yet) applied.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("unreadable desired ticket: {0}")]
    Malformed(#[from] contracts::ContractError),
    #[error(transparent)]
    Jira(#[from] JiraError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("another writer changed the ledger record of {key} meanwhile; trying again")]
    Busy { key: String },
    #[error(
        "the create of {key} claimed by {owner} {age_secs}s ago is not visible to search yet; waiting out the \
         {window_secs}s consistency window instead of creating a second issue"
    )]
    ClaimPending { key: String, owner: String, age_secs: i64, window_secs: u64, after: Duration },
    #[error("invalid setting: {0}")]
    Config(String),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("cannot serve the health endpoints: {0}")]
    Http(std::io::Error),
    #[cfg(feature = "test-util")]
    #[error("simulated crash between the JIRA create and the ledger write (test hook)")]
    Crashed,
    /// A 403 while the credentials work (`GET /myself` succeeds): this project or operation is
    /// not permitted to the bot. Permanent for this message only.
    #[error(
        "JIRA denied {operation} in project {project}: {message} (the bot's account lacks this permission there; \
         other projects go on)"
    )]
    Forbidden { project: String, operation: String, message: String },
    /// The ledger lost its completeness marker (the bucket was deleted or recreated empty): no
    /// create may go ahead until it is rebuilt from JIRA, or it could file a second ticket.
    #[error("the ledger is being rebuilt from JIRA (its bucket was lost); creates wait for it")]
    LedgerIncomplete,
    /// The workflow offers no way from the issue's status to the target.
    #[error("cannot move {key} from {from} to {target}: JIRA offered {}", offered_text(.offered))]
    Unreachable { key: String, target: String, from: String, offered: Vec<String> },
}

fn offered_text(offered: &[String]) -> String {
    if offered.is_empty() { "no transition".to_owned() } else { offered.join(", ") }
}

impl From<CasError> for WriterError {
    fn from(error: CasError) -> Self {
        match error {
            CasError::Conflict => WriterError::Busy { key: String::new() },
            CasError::Bus(e) => WriterError::Bus(e),
        }
    }
}

impl Classify for WriterError {
    fn class(&self) -> ErrorClass {
        match self {
            WriterError::Jira(e) => e.class(),
            WriterError::Bus(e) => e.class(),
            WriterError::Busy { .. } => ErrorClass::Retry { after: Some(Duration::from_millis(100)) },
            WriterError::ClaimPending { after, .. } => ErrorClass::Retry { after: Some(*after) },
            WriterError::LedgerIncomplete => ErrorClass::Pause { after: Duration::from_millis(500) },
            WriterError::Malformed(_)
            | WriterError::Config(_)
            | WriterError::Catalog(_)
            | WriterError::Http(_)
            | WriterError::Forbidden { .. }
            | WriterError::Unreachable { .. } => ErrorClass::DeadLetter,
            #[cfg(feature = "test-util")]
            WriterError::Crashed => ErrorClass::DeadLetter,
        }
    }
}

/// Settings of the reconcile.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub mapping: MappingSettings,
    pub instance: String,
    /// Per-project workflow statuses.
    pub workflows: Workflows,
    /// The team field's type on the site (read at start).
    pub team_field_kind: mapping::TeamFieldKind,
    /// Reopen a ticket a person closed while its source still reports open work (on its next
    /// source change).
    pub reopen_closed_with_open_work: bool,
    /// Link types (name or phrase) whose new links move a ticket to its linked status.
    pub link_types: Vec<String>,
    /// The linked status of workflows that name none.
    pub linked_status: String,
    pub consistency_window: Duration,
    pub claim_recheck: Option<Duration>,
    pub reopen_window: Duration,
    pub sweep_lookback: Duration,
    pub dry_run: bool,
}

/// An issue id this process created, and when.
type RecentCreate = (i64, DateTime<Utc>);

/// What the sweep found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    pub scanned: usize,
    /// `(kept, closed duplicate)` issue keys.
    pub closed: Vec<(String, String)>,
}

/// The jira-writer: reconciles desired states and sweeps duplicates, in the ticket system `S`
/// ([`TicketSystem`]; Jira Cloud's [`JiraClient`] unless said otherwise).
pub struct Writer<S = JiraClient> {
    client: S,
    ledger: JsonKv<LedgerEntry>,
    publisher: Publisher,
    catalog: Catalog,
    settings: WriterSettings,
    clock: Clock,
    /// Read only by the `test-util` fault injection.
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    hooks: Hooks,
    /// Issue ids this process created recently, per key: read after write via `reconcileIssues`.
    recent: Mutex<HashMap<String, Vec<RecentCreate>>>,
    /// Duplicates already closed and linked by this process.
    swept: Mutex<HashSet<String>>,
}

const SEARCH_FIELDS: [&str; 10] = [
    "summary",
    "status",
    "created",
    "duedate",
    "labels",
    "priority",
    "components",
    "project",
    "issuetype",
    "resolutiondate",
];

impl<S: TicketSystem> Writer<S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: S,
        ledger: JsonKv<LedgerEntry>,
        publisher: Publisher,
        catalog: Catalog,
        settings: WriterSettings,
        clock: Clock,
        hooks: Hooks,
    ) -> Self {
        Writer {
            client,
            ledger,
            publisher,
            catalog,
            settings,
            clock,
            hooks,
            recent: Mutex::new(HashMap::new()),
            swept: Mutex::new(HashSet::new()),
        }
    }

    pub fn settings(&self) -> &WriterSettings {
        &self.settings
    }

    pub fn client(&self) -> &S {
        &self.client
    }

    /// Brings JIRA in line with one desired state.
    pub async fn reconcile(&self, desired: &DesiredTicket) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let record = self.ledger.get(&key).await?;
        match record {
            Some(record) if record.value.issue.is_some() => self.reconcile_existing(desired, record).await,
            Some(record) if record.value.claim.is_some() => self.resolve_claim(desired, record).await,
            Some(record) => {
                let previous = record.value.clone();
                self.claim_and_create(desired, Some(record.revision), Some(previous)).await
            }
            None => self.claim_and_create(desired, None, None).await,
        }
    }

    // ----- create -----

    async fn claim_and_create(
        &self,
        desired: &DesiredTicket,
        revision: Option<u64>,
        previous: Option<LedgerEntry>,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        if desired.state == TicketState::Resolved {
            tracing::info!(group_key = %desired.group_key, "Resolved before a ticket was filed; nothing to do.");
            return Ok(());
        }
        if self.settings.dry_run {
            let found = self.find_by_label(desired, &[]).await?;
            return self.plan_create(desired, found.first());
        }
        // No record: a new key, or a lost ledger (then JIRA may hold its ticket already).
        if !self.ledger_is_complete().await? {
            return Err(WriterError::LedgerIncomplete);
        }
        let mut entry =
            LedgerEntry::claimed(desired.group_key.clone(), &self.settings.instance, self.clock.now());
        if let Some(previous) = previous {
            entry.superseded = previous.superseded;
        }
        let revision = self.ledger.write(&key, &entry, revision).await.map_err(busy_or_bus(&key))?;
        // The claim is ours and fresh: nobody else is creating this key, and a create of ours that
        // lost its answer left a claim (searched for in `resolve_claim`), so no search here.
        self.create(desired, entry, revision, None).await
    }

    async fn resolve_claim(
        &self,
        desired: &DesiredTicket,
        record: Versioned<LedgerEntry>,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let mut entry = record.value;
        let found = self.find_by_label(desired, &entry.superseded).await?;
        if !found.is_empty() {
            if self.settings.dry_run {
                return self.plan_create(desired, found.first());
            }
            return self.adopt(desired, entry, record.revision, found).await;
        }
        let claim = entry.claim.clone().expect("a claim");
        let age = self.clock.now() - claim.at;
        let window =
            chrono::Duration::from_std(self.settings.consistency_window).unwrap_or(chrono::Duration::MAX);
        if age < window {
            let remaining = (window - age).to_std().unwrap_or(Duration::ZERO);
            // The handler shortens this to a recheck that backs off with each delivery.
            let after = remaining.max(Duration::from_millis(50));
            metrics::counter!("itk_jira_claim_waits_total").increment(1);
            return Err(WriterError::ClaimPending {
                key,
                owner: claim.owner,
                age_secs: age.num_seconds(),
                window_secs: self.settings.consistency_window.as_secs(),
                after,
            });
        }
        if desired.state == TicketState::Resolved {
            entry.claim = None;
            self.write_ledger(&key, &entry, record.revision).await?;
            return Ok(());
        }
        if self.settings.dry_run {
            return self.plan_create(desired, None);
        }
        tracing::warn!(group_key = %desired.group_key, owner = %claim.owner, age_secs = age.num_seconds(), "An unfinished claim outlived the consistency window with nothing found; taking it over.");
        entry.claim = Some(Claim { owner: self.settings.instance.clone(), at: self.clock.now() });
        let revision = self.write_ledger(&key, &entry, record.revision).await?;
        self.create(desired, entry, revision, None).await
    }

    fn plan_create(&self, desired: &DesiredTicket, found: Option<&Issue>) -> Result<(), WriterError> {
        if let Some(issue) = found {
            tracing::info!(group_key = %desired.group_key, issue_key = %issue.key, "Dry run: would adopt the issue found by label.");
            return Ok(());
        }
        let mapped = self.mapped(desired);
        let body = self.create_body(desired, &mapped);
        tracing::info!(group_key = %desired.group_key, method = "POST", path = "/rest/api/3/issue", body = %body, "Dry run: planned request.");
        for link in &desired.links {
            tracing::info!(group_key = %desired.group_key, method = "POST", path = "/rest/api/3/issue/{new}/remotelink", global_id = %link.global_id, "Dry run: planned request.");
        }
        Ok(())
    }

    /// Creates the issue under a claim we hold, then publishes and records it.
    async fn create(
        &self,
        desired: &DesiredTicket,
        mut entry: LedgerEntry,
        revision: u64,
        relates_to: Option<IssueRef>,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let mapped = self.mapped(desired);
        let body = self.create_body(desired, &mapped);
        let created = match self.client.create_issue(&body).await {
            Ok(created) => created,
            Err(error) => {
                if definitely_not_created(&error) {
                    // Nothing exists in JIRA: release the claim so a retry need not wait.
                    entry.claim = None;
                    if let Err(release) = self.ledger.update(&key, &entry, revision).await {
                        tracing::warn!(group_key = %desired.group_key, error = %release, "Claim not released.");
                    }
                }
                return Err(error.into());
            }
        };
        self.remember_created(&key, &created.id);
        tracing::info!(group_key = %desired.group_key, issue_key = %created.key, project = %mapped.values.project, "Created issue.");
        metrics::counter!("itk_jira_issues_created_total").increment(1);
        #[cfg(feature = "test-util")]
        if self.hooks.crash_if_armed() {
            tracing::error!(issue_key = %created.key, "Test hook: crashing between the create and the ledger write.");
            std::future::pending::<()>().await;
        }
        let issue = IssueRef { id: created.id.clone(), key: created.key.clone() };
        // The ledger has the issue before anything else is written: a crash from here on is
        // finished by the existing-issue path (links, then the Created change), never re-created.
        entry.claim = None;
        entry.issue = Some(issue.clone());
        entry.team = desired.team.clone();
        entry.written = Some(mapped.values.clone());
        entry.content_hash = String::new();
        entry.applied_version = 0;
        entry.created_unannounced = Some(PendingCreate {
            upstream_version: desired.upstream_version,
            relates_to: relates_to.as_ref().map(|old| old.key.clone()),
        });
        entry.updated_at = self.clock.now();
        let revision = match self.ledger.update(&key, &entry, revision).await {
            Ok(revision) => revision,
            Err(CasError::Conflict) => {
                tracing::warn!(group_key = %desired.group_key, "The claim was taken over while creating; the sweep will close any duplicate.");
                return Ok(());
            }
            Err(CasError::Bus(e)) => return Err(e.into()),
        };
        self.announce_created(desired, &mut entry).await?;
        self.record_applied(&mut entry, desired, issue, mapped.values);
        self.write_ledger(&key, &entry, revision).await.map(|_| ())
    }

    /// The rest of a create once the ledger has the issue: remote links, the link to the ticket
    /// it replaces, the Created change. Updates `entry` (not the ledger).
    async fn announce_created(
        &self,
        desired: &DesiredTicket,
        entry: &mut LedgerEntry,
    ) -> Result<(), WriterError> {
        let issue = entry.issue.clone().expect("an issue");
        let Some(pending) = entry.created_unannounced.clone() else { return Ok(()) };
        let relates_to = pending.relates_to;
        // The project's filed status, when it is not where JIRA starts a ticket: walked to before
        // anything announces the ticket. Status-based, so a crash-finished create walks no further.
        let project = entry
            .written
            .as_ref()
            .map(|w| w.project.clone())
            .unwrap_or_else(|| self.mapped(desired).values.project);
        if let Some(filed) = self.settings.workflows.of(&project).filed.clone() {
            let comment = format!("infra-tickets filed this ticket in {filed}.");
            self.reach(&issue.key, &project, &filed, &comment).await?;
        }
        let links = self.write_links(&issue.key, desired, &entry.links).await?;
        if let Some(old) = &relates_to {
            self.client.link_issues("Relates", old, &issue.key).await?;
        }
        let reason = match &relates_to {
            Some(old) => {
                format!("{} (it came back after {old} was closed)", first_sentence(&desired.body.headline))
            }
            None => first_sentence(&desired.body.headline),
        };
        self.publish(self.change(
            ChangeKind::Created,
            desired,
            &issue,
            None,
            reason,
            pending.upstream_version,
        ))
        .await?;
        entry.links = links;
        entry.created_unannounced = None;
        Ok(())
    }

    /// Records an issue found by label (a create whose ledger write was lost, or another
    /// writer's), closing any extra ones, then applies the desired state to it.
    async fn adopt(
        &self,
        desired: &DesiredTicket,
        mut entry: LedgerEntry,
        revision: u64,
        found: Vec<Issue>,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let keep = found[0].clone();
        if found.len() > 1 {
            let basis = self.change(
                ChangeKind::DuplicateClosed,
                desired,
                &IssueRef { id: keep.id.clone(), key: keep.key.clone() },
                None,
                String::new(),
                desired.upstream_version,
            );
            let closed =
                self.close_duplicates(&keep, &found[1..], Some(&basis), &entry.duplicates_closed).await?;
            for (kept, duplicate_id) in closed {
                entry.duplicates_closed.insert(duplicate_id, kept);
            }
        }
        let property = keep.property(PROPERTY_KEY).cloned().unwrap_or(Value::Null);
        let created_hash = property.get("contentHash").and_then(Value::as_str).unwrap_or_default().to_owned();
        let created_version =
            property.get("upstreamVersion").and_then(Value::as_u64).unwrap_or(desired.upstream_version);
        let mapped = self.mapped(desired);
        let written = if created_hash == desired.content_hash {
            mapped.values.clone()
        } else {
            values_in_jira(&keep, &mapped.values, self.settings.mapping.team_field.as_deref())
        };
        let issue = IssueRef { id: keep.id.clone(), key: keep.key.clone() };
        tracing::info!(group_key = %desired.group_key, issue_key = %issue.key, "Adopted the issue found by label.");
        metrics::counter!("itk_jira_issues_adopted_total").increment(1);
        let reason = first_sentence(&desired.body.headline);
        self.publish(self.change(ChangeKind::Created, desired, &issue, None, reason, created_version))
            .await?;
        entry.claim = None;
        entry.issue = Some(issue);
        entry.team = desired.team.clone();
        entry.source_state = TicketState::Open;
        entry.applied_version = created_version.min(desired.upstream_version);
        // Not the desired hash: the existing-issue path below then checks fields and links.
        entry.content_hash = String::new();
        entry.written = Some(written);
        entry.links = BTreeMap::new();
        entry.updated_at = self.clock.now();
        let revision = self.write_ledger(&key, &entry, revision).await?;
        self.reconcile_existing(desired, Versioned { value: entry, revision }).await
    }

    // ----- update -----

    async fn reconcile_existing(
        &self,
        desired: &DesiredTicket,
        record: Versioned<LedgerEntry>,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let mut entry = record.value;
        let mut revision = record.revision;
        if entry.created_unannounced.is_some() {
            // A create whose links or change a crash cut short: finish it, then apply `desired`
            // over the fields as created.
            self.announce_created(desired, &mut entry).await?;
            revision = self.write_ledger(&key, &entry, revision).await?;
        }
        if desired.upstream_version < entry.applied_version {
            tracing::debug!(group_key = %desired.group_key, version = desired.upstream_version, applied = entry.applied_version, "Stale desired state; ignored.");
            return Ok(());
        }
        if desired.content_hash == entry.content_hash {
            tracing::debug!(group_key = %desired.group_key, "Unchanged; nothing to write.");
            return Ok(());
        }
        let mut issue = entry.issue.clone().expect("an issue");
        let came_back = desired.state == TicketState::Open && entry.source_state == TicketState::Resolved;
        if came_back {
            let current = self.client.get_issue(&issue.key, &["status", "resolutiondate"], &[]).await?;
            if current.is_done() {
                let closed_at = current.resolution_date().unwrap_or_else(|| self.clock.now());
                let within = (self.clock.now() - closed_at).to_std().unwrap_or(Duration::ZERO)
                    <= self.settings.reopen_window;
                if !within {
                    return self.supersede(desired, entry, revision).await;
                }
            }
        }
        let mapped = self.mapped(desired);
        let written = entry.written.clone().unwrap_or_else(|| FieldValues {
            project: mapped.values.project.clone(),
            ..FieldValues::default()
        });
        let edit = mapping::diff(&written, &mapped, &self.settings.mapping);
        let previous_team =
            (!entry.team.is_empty() && entry.team != desired.team).then(|| entry.team.clone());
        if self.settings.dry_run {
            if !edit.is_empty() {
                let comment =
                    edit.due_date_moved.map(|(from, to)| mapping::due_date_comment(desired, from, to));
                tracing::info!(issue_key = %issue.key, method = "PUT", path = %format!("/rest/api/3/issue/{}", issue.key), body = %self.edit_body(&edit, comment.as_ref(), desired), "Dry run: planned request.");
            }
            if desired.state != entry.source_state {
                tracing::info!(issue_key = %issue.key, method = "POST", path = %format!("/rest/api/3/issue/{}/transitions", issue.key), to = ?desired.state, "Dry run: planned request.");
            }
            return Ok(());
        }
        let mut changes = Vec::new();
        // The status the edit's answer shows (`returnIssue`): what a person made of the ticket.
        let mut status_now: Option<String> = None;
        if !edit.is_empty() {
            let comment =
                match edit.due_date_moved.map(|(from, to)| mapping::due_date_comment(desired, from, to)) {
                    Some(doc) if self.already_commented(&issue.key, &doc).await? => None,
                    other => other,
                };
            if let Some(project) = &edit.moves_to_project {
                issue.key = self.move_issue(&issue.key, project).await?;
            }
            if !edit.fields.is_empty() || !edit.labels_add.is_empty() || !edit.labels_remove.is_empty() {
                // The property goes with the edit (no extra call): the reminders read its progress.
                let body = self.edit_body(&edit, comment.as_ref(), desired);
                let edited = self.client.edit_issue(&issue.key, &body, true).await?;
                status_now = edited.and_then(|i| i.status_name().map(str::to_owned));
            }
            tracing::info!(issue_key = %issue.key, fields = ?edit.fields.keys().collect::<Vec<_>>(), labels_added = ?edit.labels_add, "Updated issue.");
            let (kind, reason) = match &previous_team {
                Some(before) => {
                    (ChangeKind::TeamChanged, format!("The owner changed from {before} to {}.", desired.team))
                }
                None => (
                    ChangeKind::Updated,
                    format!(
                        "The source changed {}.",
                        edit.fields.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
            };
            changes.push(self.change(
                kind,
                desired,
                &issue,
                previous_team.clone(),
                reason,
                desired.upstream_version,
            ));
        }
        let still_open = desired.state == TicketState::Open && entry.source_state == TicketState::Open;
        if let (Some(status), true) = (&status_now, still_open) {
            let workflow = self.settings.workflows.of(&mapped.values.project);
            let what = edit.fields.keys().cloned().collect::<Vec<_>>().join(", ");
            if workflow.is_decision(status) {
                // One comment per source change; the person's status stands.
                let text = format!(
                    "infra-tickets: the source changed {what}. The ticket stays in {status}, as a person decided."
                );
                self.comment_once(&issue.key, &mapping::paragraph_doc(&text)).await?;
            } else if self.settings.reopen_closed_with_open_work
                && workflow::same_status(status, &workflow.resolve)
            {
                let comment = format!(
                    "infra-tickets reopened this ticket: it was closed while its source still reports open work \
                     ({}), and the source changed {what}.",
                    remaining_work(desired)
                );
                if self.reach(&issue.key, &mapped.values.project, &workflow.reopen, &comment).await?
                    == Reached::Moved
                {
                    tracing::info!(issue_key = %issue.key, "Reopened a ticket closed while its source is open.");
                    let reason =
                        format!("It was closed while the source still reports {}.", remaining_work(desired));
                    changes.push(self.change(
                        ChangeKind::Reopened,
                        desired,
                        &issue,
                        None,
                        reason,
                        desired.upstream_version,
                    ));
                }
            }
        }
        if desired.state == TicketState::Resolved && entry.source_state == TicketState::Open {
            let resolve = SourceMove::RESOLVE;
            changes.extend(self.follow_source(&issue, desired, &mapped.values.project, &resolve).await?);
        }
        if came_back {
            let reopen = SourceMove::REOPEN;
            changes.extend(self.follow_source(&issue, desired, &mapped.values.project, &reopen).await?);
        }
        entry.links = self.write_links(&issue.key, desired, &entry.links).await?;
        for change in changes {
            self.publish(change).await?;
        }
        self.record_applied(&mut entry, desired, issue, mapped.values);
        self.write_ledger(&key, &entry, revision).await.map(|_| ())
    }

    /// The source came back after a person closed its ticket longer ago than the reopen
    /// window: a new ticket, linked to the old one.
    async fn supersede(
        &self,
        desired: &DesiredTicket,
        mut entry: LedgerEntry,
        revision: u64,
    ) -> Result<(), WriterError> {
        let key = desired.group_key.token();
        let old = entry.issue.take().expect("an issue");
        if self.settings.dry_run {
            tracing::info!(issue_key = %old.key, "Dry run: would file a new ticket linked to the closed one.");
            return self.plan_create(desired, None);
        }
        tracing::info!(group_key = %desired.group_key, old_issue = %old.key, "The source came back after the reopen window; filing a new ticket.");
        entry.superseded.push(old.clone());
        entry.claim = Some(Claim { owner: self.settings.instance.clone(), at: self.clock.now() });
        entry.written = None;
        entry.links = BTreeMap::new();
        entry.content_hash = String::new();
        let revision = self.write_ledger(&key, &entry, revision).await?;
        self.create(desired, entry, revision, Some(old)).await
    }

    // ----- helpers -----

    /// Walks `issue_key` to the status `target` of `project`'s workflow, one transition at a time,
    /// reading the transitions JIRA offers at each step; `comment` goes with the last one. A
    /// person's decision status is left alone; a dead end is [`WriterError::Unreachable`].
    /// Moves the ticket where its source went (resolved, or back again) unless a person holds it
    /// in a decision status: then it only says so in a comment. The change to announce, if it moved.
    async fn follow_source(
        &self,
        issue: &IssueRef,
        desired: &DesiredTicket,
        project: &str,
        source_move: &SourceMove,
    ) -> Result<Option<TicketChange>, WriterError> {
        let workflow = self.settings.workflows.of(project);
        let target = (source_move.target)(workflow);
        match self.reach(&issue.key, project, target, source_move.transition_comment).await? {
            Reached::Moved => {
                tracing::info!(issue_key = %issue.key, status = %target, kind = source_move.kind.as_str(), "Moved with its source.");
                Ok(Some(self.change(
                    source_move.kind,
                    desired,
                    issue,
                    None,
                    source_move.reason.to_owned(),
                    desired.upstream_version,
                )))
            }
            Reached::Already => {
                tracing::info!(issue_key = %issue.key, status = %target, "Already where its source went; not transitioned.");
                Ok(None)
            }
            Reached::Held(status) => {
                let text = format!(
                    "infra-tickets: {} The ticket stays in {status}, {}",
                    source_move.held_news, source_move.held_advice
                );
                self.comment_once(&issue.key, &mapping::paragraph_doc(&text)).await?;
                tracing::info!(issue_key = %issue.key, %status, kind = source_move.kind.as_str(), "The source moved while a person holds the ticket; commented.");
                Ok(None)
            }
        }
    }

    /// Whether the issue's latest comments already say what `doc` says: JIRA added it and then
    /// answered an error (or the writer died before recording the change), so this message is
    /// being handled again and must not say it twice. One read per comment; comments are rare.
    async fn already_commented(&self, issue_key: &str, doc: &Value) -> Result<bool, WriterError> {
        let text = crate::client::adf_text(doc);
        Ok(self.client.recent_comment_texts(issue_key).await?.contains(&text))
    }

    /// Adds a comment unless the issue already carries it (see [`Self::already_commented`]).
    async fn comment_once(&self, issue_key: &str, doc: &Value) -> Result<(), WriterError> {
        if !self.already_commented(issue_key, doc).await? {
            self.client.add_comment(issue_key, doc).await?;
        }
        Ok(())
    }

    async fn reach(
        &self,
        issue_key: &str,
        project: &str,
        target: &str,
        comment: &str,
    ) -> Result<Reached, WriterError> {
        let settings = self.settings.workflows.of(project);
        let comment = mapping::paragraph_doc(comment);
        let mut walk = workflow::Walk::new(settings, target);
        let mut moved = false;
        loop {
            let (current, offered) = self.client.status_and_transitions(issue_key).await?;
            match walk.step(&current, &offered) {
                Step::Arrived => return Ok(if moved { Reached::Moved } else { Reached::Already }),
                Step::Held { status } => return Ok(Reached::Held(status)),
                Step::Take { transition_id, to, last } => {
                    self.client.do_transition(issue_key, &transition_id, last.then_some(&comment)).await?;
                    metrics::counter!("itk_jira_transitions_total").increment(1);
                    tracing::debug!(issue_key, from = %current, %to, "Transitioned.");
                    if last {
                        return Ok(Reached::Moved);
                    }
                    moved = true;
                }
                Step::Stuck { from, offered } => {
                    return Err(self.unreachable(issue_key, target, from, offered));
                }
            }
        }
    }

    fn unreachable(&self, key: &str, target: &str, from: String, offered: Vec<String>) -> WriterError {
        metrics::counter!("itk_jira_unreachable_status_total").increment(1);
        let error =
            WriterError::Unreachable { key: key.to_owned(), target: target.to_owned(), from, offered };
        tracing::error!(error = %bus::safe::header_value(&error.to_string()), "Target status unreachable.");
        error
    }

    /// Records in the ledger entry that `issue` now carries the desired state, written as `values`.
    fn record_applied(
        &self,
        entry: &mut LedgerEntry,
        desired: &DesiredTicket,
        issue: IssueRef,
        values: FieldValues,
    ) {
        entry.issue = Some(issue);
        entry.team = desired.team.clone();
        entry.source_state = desired.state;
        entry.applied_version = desired.upstream_version;
        entry.content_hash = desired.content_hash.clone();
        entry.written = Some(values);
        entry.updated_at = self.clock.now();
    }

    /// The create body, with the team field in the shape the site defines.
    fn create_body(&self, desired: &DesiredTicket, mapped: &Mapped) -> Value {
        let mut body = mapping::create_body(desired, mapped, &self.settings.mapping);
        if let (Some(field), Some(fields)) =
            (&self.settings.mapping.team_field, body["fields"].as_object_mut())
        {
            mapping::shape_team_field(fields, field, self.settings.team_field_kind);
        }
        body
    }

    /// The edit body: the team field in the site's shape, and the property (no extra call: the
    /// reminders read its progress).
    fn edit_body(&self, edit: &mapping::Edit, comment: Option<&Value>, desired: &DesiredTicket) -> Value {
        let mut body = edit.body(comment);
        if let (Some(field), Some(fields)) =
            (&self.settings.mapping.team_field, body["fields"].as_object_mut())
        {
            mapping::shape_team_field(fields, field, self.settings.team_field_kind);
        }
        body["properties"] = mapping::properties(desired);
        body
    }

    /// The JIRA fields of a desired state, for its team.
    fn mapped(&self, desired: &DesiredTicket) -> Mapped {
        let team = self.catalog.team(&desired.team);
        mapping::map(desired, &team, &self.settings.mapping)
    }

    async fn write_ledger(&self, key: &str, entry: &LedgerEntry, revision: u64) -> Result<u64, WriterError> {
        self.ledger.update(key, entry, revision).await.map_err(busy_or_bus(key))
    }

    /// Upserts the remote links whose title or URL changed; returns what is written now.
    async fn write_links(
        &self,
        issue_key: &str,
        desired: &DesiredTicket,
        written: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, WriterError> {
        let mut now = written.clone();
        for link in &desired.links {
            let value = format!("{}\n{}", link.title, link.url);
            if written.get(&link.global_id) == Some(&value) {
                continue;
            }
            let title = mapping::truncate_chars(&link.title, 255);
            self.client
                .upsert_remote_link(
                    issue_key,
                    &mapping::truncate_chars(&link.global_id, 255),
                    &title,
                    &link.url,
                )
                .await?;
            now.insert(link.global_id.clone(), value);
        }
        Ok(now)
    }

    /// Issues carrying the key's label, oldest first (superseded ones left out).
    async fn find_by_label(
        &self,
        desired: &DesiredTicket,
        superseded: &[IssueRef],
    ) -> Result<Vec<Issue>, WriterError> {
        let token = desired.group_key.token();
        let mut fields: Vec<String> = SEARCH_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        if let Some(team_field) = &self.settings.mapping.team_field {
            fields.push(team_field.clone());
        }
        let request = SearchRequest {
            jql: format!("labels = \"{token}\" ORDER BY created ASC"),
            max_results: Some(20),
            fields,
            properties: vec![PROPERTY_KEY.to_owned()],
            reconcile_issues: self.recent_ids(&token),
            ..SearchRequest::default()
        };
        let mut issues = self.client.search(&request).await?.issues;
        issues.retain(|i| !superseded.iter().any(|s| s.id == i.id));
        oldest_first(&mut issues);
        Ok(issues)
    }

    fn remember_created(&self, token: &str, id: &str) {
        let Ok(id) = id.parse::<i64>() else { return };
        let now = self.clock.now();
        let keep =
            chrono::Duration::from_std(self.settings.consistency_window * 2).unwrap_or(chrono::Duration::MAX);
        let mut recent = self.recent.lock().expect("recent lock");
        recent.retain(|_, ids| {
            ids.retain(|(_, at)| now - *at < keep);
            !ids.is_empty()
        });
        recent.entry(token.to_owned()).or_default().push((id, now));
    }

    fn recent_ids(&self, token: &str) -> Vec<i64> {
        let recent = self.recent.lock().expect("recent lock");
        recent.get(token).map(|ids| ids.iter().map(|(id, _)| *id).take(50).collect()).unwrap_or_default()
    }

    fn change(
        &self,
        kind: ChangeKind,
        desired: &DesiredTicket,
        issue: &IssueRef,
        previous_team: Option<String>,
        reason: String,
        upstream_version: u64,
    ) -> TicketChange {
        TicketChange {
            schema: contracts::SCHEMA_VERSION,
            kind,
            group_key: desired.group_key.clone(),
            source: desired.source,
            issue_id: issue.id.clone(),
            issue_key: issue.key.clone(),
            issue_url: self.client.browse_url(&issue.key),
            team: desired.team.clone(),
            previous_team,
            lane: desired.lane,
            due_date: desired.due.as_ref().map(|d| d.date),
            summary: mapping::truncate_chars(&desired.summary, mapping::MAX_SUMMARY),
            progress: desired.body.progress.clone(),
            reason,
            content_hash: desired.content_hash.clone(),
            upstream_version,
            at: self.clock.now(),
        }
    }

    async fn publish(&self, change: TicketChange) -> Result<(), WriterError> {
        let message = Outgoing::new(change.subject(), change.to_json()).with_id(change.message_id());
        self.publisher.publish_with_retry(message, 3).await?;
        metrics::counter!("itk_ticket_changes_total", "kind" => change.kind.as_str()).increment(1);
        Ok(())
    }

    // ----- duplicates -----

    /// Closes `duplicates` as duplicates of `keep`, links them ("Duplicate": the closed one reads
    /// "duplicates" the kept one) and announces each with a `duplicate_closed` change naming the
    /// survivor, built on `basis` (what the ledger or the desired state says of the key; `None`:
    /// the key has no ledger record, and nothing is announced). Skips the ones in `done` (closed
    /// and announced before, by any replica). Returns `(kept key, closed issue id)` per duplicate
    /// closed now, for the caller to record in the ledger.
    async fn close_duplicates(
        &self,
        keep: &Issue,
        duplicates: &[Issue],
        basis: Option<&TicketChange>,
        done: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, WriterError> {
        let mut closed = Vec::new();
        for duplicate in duplicates {
            if done.contains_key(&duplicate.id)
                || self.swept.lock().expect("swept lock").contains(&duplicate.id)
            {
                continue;
            }
            if self.settings.dry_run {
                tracing::warn!(kept = %keep.key, duplicate = %duplicate.key, "Dry run: would close the duplicate and link it.");
                continue;
            }
            if !duplicate.is_done() {
                let comment = format!("infra-tickets closed this ticket as a duplicate of {}.", keep.key);
                let project = duplicate.project_key().unwrap_or(&self.settings.mapping.default_project);
                let target = &self.settings.workflows.of(project).resolve;
                self.reach(&duplicate.key, project, target, &comment).await?;
            }
            // The closed one reads "duplicates" the kept one.
            self.client.link_issues("Duplicate", &duplicate.key, &keep.key).await?;
            match basis {
                Some(basis) => self.publish_duplicate_closed(basis, keep, duplicate).await?,
                None => {
                    tracing::warn!(kept = %keep.key, duplicate = %duplicate.key, "No ledger record for the key: the closed duplicate is not announced.");
                }
            }
            self.swept.lock().expect("swept lock").insert(duplicate.id.clone());
            metrics::counter!("itk_jira_duplicates_closed_total").increment(1);
            tracing::warn!(kept = %keep.key, duplicate = %duplicate.key, "Closed a duplicate issue and linked it to the one kept.");
            closed.push((keep.key.clone(), duplicate.id.clone()));
        }
        Ok(closed)
    }

    /// Publishes that `duplicate` was closed and `keep` survives, so the team hears which ticket to
    /// follow. Its message id is the closed issue's (stored once however often it is retried).
    async fn publish_duplicate_closed(
        &self,
        basis: &TicketChange,
        keep: &Issue,
        duplicate: &Issue,
    ) -> Result<(), WriterError> {
        let mut change = basis.clone();
        change.schema = contracts::schema_for(ChangeKind::DuplicateClosed);
        change.kind = ChangeKind::DuplicateClosed;
        change.issue_id = duplicate.id.clone();
        change.issue_key = duplicate.key.clone();
        change.issue_url = self.client.browse_url(&duplicate.key);
        change.previous_team = None;
        if let Some(summary) = duplicate.summary().filter(|s| !s.trim().is_empty()) {
            change.summary = mapping::truncate_chars(summary, mapping::MAX_SUMMARY);
        }
        change.reason =
            format!("{} was a duplicate and is closed; {} is the ticket to follow.", duplicate.key, keep.key);
        change.at = self.clock.now();
        let document = contracts::DuplicateClosed {
            survivor: contracts::IssueName {
                issue_id: keep.id.clone(),
                issue_key: keep.key.clone(),
                issue_url: self.client.browse_url(&keep.key),
            },
            change,
        };
        let message = Outgoing::new(document.change.subject(), document.to_json())
            .with_id(document.change.message_id());
        self.publisher.publish_with_retry(message, 3).await?;
        metrics::counter!("itk_ticket_changes_total", "kind" => ChangeKind::DuplicateClosed.as_str())
            .increment(1);
        Ok(())
    }

    /// A change about the key of `entry` as the ledger knows it (the sweep has no desired state):
    /// `None` when the ledger does not know enough (no issue written yet).
    fn change_from_ledger(&self, entry: &LedgerEntry) -> Option<TicketChange> {
        let issue = entry.issue.as_ref()?;
        let written = entry.written.as_ref()?;
        let source = match entry.group_key.as_str().split('/').next()? {
            s if s == contracts::Source::Snyk.as_str() => contracts::Source::Snyk,
            s if s == contracts::Source::AwsHealth.as_str() => contracts::Source::AwsHealth,
            _ => return None,
        };
        let lane = written
            .labels
            .iter()
            .find_map(|l| l.strip_prefix("lane-").and_then(|lane| lane.parse::<contracts::Lane>().ok()))
            .unwrap_or(contracts::Lane::P4);
        Some(TicketChange {
            schema: contracts::SCHEMA_VERSION,
            kind: ChangeKind::Updated,
            group_key: entry.group_key.clone(),
            source,
            issue_id: issue.id.clone(),
            issue_key: issue.key.clone(),
            issue_url: self.client.browse_url(&issue.key),
            team: entry.team.clone(),
            previous_team: None,
            lane,
            due_date: written.due_date,
            summary: written.summary.clone(),
            progress: None,
            reason: String::new(),
            content_hash: entry.content_hash.clone(),
            upstream_version: entry.applied_version,
            at: self.clock.now(),
        })
    }

    /// One pass of the duplicate sweep: recently created issues with the base label, grouped by
    /// their key label; in each group with more than one, the oldest is kept (and recorded in
    /// the ledger) and the rest are closed and linked.
    pub async fn sweep_once(&self) -> Result<SweepReport, WriterError> {
        let Some(base) = self.settings.mapping.labels.first() else { return Ok(SweepReport::default()) };
        let minutes = (self.settings.sweep_lookback.as_secs() / 60).max(1);
        let request = SearchRequest {
            jql: format!(
                "labels = \"{}\" AND created >= \"-{minutes}m\" ORDER BY created ASC",
                mapping::clean_label(base)
            ),
            max_results: Some(100),
            fields: vec![
                "labels".into(),
                "created".into(),
                "status".into(),
                "summary".into(),
                "project".into(),
            ],
            ..SearchRequest::default()
        };
        let issues = self.client.search_all(&request, 50).await?;
        let mut report = SweepReport { scanned: issues.len(), closed: Vec::new() };
        let mut groups: BTreeMap<String, Vec<Issue>> = BTreeMap::new();
        for issue in issues {
            if let Some(token) = issue.labels().into_iter().find(|l| is_key_label(l)) {
                groups.entry(token).or_default().push(issue);
            }
        }
        for (token, mut group) in groups {
            let record = self.ledger.get(&token).await?;
            if let Some(record) = &record {
                group.retain(|i| !record.value.superseded.iter().any(|s| s.id == i.id));
            }
            if group.len() < 2 {
                continue;
            }
            oldest_first(&mut group);
            let keep = group[0].clone();
            let basis = record.as_ref().and_then(|r| self.change_from_ledger(&r.value));
            let done = record.as_ref().map(|r| r.value.duplicates_closed.clone()).unwrap_or_default();
            let closed = self.close_duplicates(&keep, &group[1..], basis.as_ref(), &done).await?;
            let kept_elsewhere =
                record.as_ref().is_some_and(|r| r.value.issue.as_ref().is_some_and(|i| i.id != keep.id));
            if record.is_some() && (!closed.is_empty() || kept_elsewhere) && !self.settings.dry_run {
                self.record_sweep(&token, &keep, &closed).await?;
            }
            report.closed.extend(closed.into_iter().map(|(kept, id)| {
                let key = group.iter().find(|i| i.id == id).map(|i| i.key.clone()).unwrap_or(id);
                (kept, key)
            }));
        }
        Ok(report)
    }

    /// Records in the ledger what a sweep did to a key: the duplicates closed (so no sweep closes
    /// or announces them again) and the issue kept. Tried again when a message for the key wrote
    /// the record meanwhile.
    async fn record_sweep(
        &self,
        token: &str,
        keep: &Issue,
        closed: &[(String, String)],
    ) -> Result<(), WriterError> {
        for _ in 0..10 {
            let Some(mut record) = self.ledger.get(token).await? else { return Ok(()) };
            for (kept, duplicate_id) in closed {
                record.value.duplicates_closed.insert(duplicate_id.clone(), kept.clone());
            }
            if record.value.issue.as_ref().is_some_and(|i| i.id != keep.id) {
                record.value.issue = Some(IssueRef { id: keep.id.clone(), key: keep.key.clone() });
                record.value.content_hash = String::new();
            }
            match self.ledger.update(token, &record.value, record.revision).await {
                Ok(_) => return Ok(()),
                Err(CasError::Conflict) => continue,
                Err(CasError::Bus(e)) => return Err(e.into()),
            }
        }
        Err(WriterError::Busy { key: token.to_owned() })
    }
}

impl<S: TicketSystem> Handler for Writer<S> {
    type Error = WriterError;

    async fn handle(&self, delivery: &Delivery) -> Result<(), WriterError> {
        let desired = DesiredTicket::from_json(delivery.payload())?;
        match self.reconcile(&desired).await {
            Err(WriterError::Jira(error @ JiraError::Unauthorized { status: 403, .. })) => {
                Err(self.diagnose_forbidden(&desired, error).await)
            }
            Err(WriterError::ClaimPending { key, owner, age_secs, window_secs, after }) => {
                Err(WriterError::ClaimPending {
                    key,
                    owner,
                    age_secs,
                    window_secs,
                    after: self.claim_recheck_delay(delivery.delivered(), after),
                })
            }
            other => other,
        }
    }
}

impl<S: TicketSystem> Writer<S> {
    /// A 403 is either this project's (or operation's) permission, permanent for this message
    /// only, or credentials that stopped working, which pause everything: `GET /myself` tells.
    async fn diagnose_forbidden(&self, desired: &DesiredTicket, error: JiraError) -> WriterError {
        let JiraError::Unauthorized { operation, message, .. } = &error else { return error.into() };
        match self.client.myself().await {
            Ok(_) => {
                let project = self.mapped(desired).values.project;
                metrics::counter!("itk_jira_forbidden_total", "project" => project.clone()).increment(1);
                WriterError::Forbidden { project, operation: operation.clone(), message: message.clone() }
            }
            Err(JiraError::Unauthorized { .. }) => error.into(),
            Err(other) => other.into(),
        }
    }

    /// How long a message waits before looking at a young claim again: the claim is most likely
    /// a create in progress that finishes in moments, so look again soon, then back off by
    /// doubling with each delivery so that a claim left by a crash is still waited out within the
    /// consumer's deliveries. Never past the end of the consistency window.
    fn claim_recheck_delay(&self, delivered: u64, until_window_ends: Duration) -> Duration {
        let base = self.settings.claim_recheck.unwrap_or(DEFAULT_CLAIM_RECHECK);
        let exponent = delivered.saturating_sub(1).min(16) as u32;
        base.saturating_mul(2u32.saturating_pow(exponent))
            .min(until_window_ends)
            .max(Duration::from_millis(50))
    }
}

/// A lost compare-and-set on the ledger record of `key` is [`WriterError::Busy`] (tried again).
fn busy_or_bus(key: &str) -> impl FnOnce(CasError) -> WriterError + '_ {
    move |error| match error {
        CasError::Conflict => WriterError::Busy { key: key.to_owned() },
        CasError::Bus(e) => e.into(),
    }
}

impl<S: TicketSystem> Writer<S> {
    /// Moves an issue to another team's project, keeping its issue type; returns its new key.
    async fn move_issue(&self, key: &str, project: &str) -> Result<String, WriterError> {
        let current = self.client.get_issue(key, &["issuetype", "project"], &[]).await?;
        let issue_type_id = current
            .field("issuetype")
            .and_then(|t| t.get("id"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                WriterError::Jira(JiraError::Decode {
                    operation: "get issue".into(),
                    message: format!("issue {key} has no issue type id"),
                })
            })?
            .to_owned();
        let moved = self.client.move_issue(key, project, &issue_type_id).await?;
        tracing::info!(from = %key, to = %moved.key, project = %project, "Moved issue to the new team's project.");
        Ok(moved.key)
    }
}

/// Where the source's own moves take a ticket, and what the ticket says about each.
struct SourceMove {
    target: fn(&workflow::WorkflowSettings) -> &str,
    transition_comment: &'static str,
    kind: ChangeKind,
    reason: &'static str,
    /// Commented, with the status, when a person holds the ticket in a decision status.
    held_news: &'static str,
    held_advice: &'static str,
}

impl SourceMove {
    const RESOLVE: SourceMove = SourceMove {
        target: |workflow| &workflow.resolve,
        transition_comment: "infra-tickets resolved this ticket: the source reports it fixed or closed.",
        kind: ChangeKind::Resolved,
        reason: "The source reports it resolved.",
        held_news: "the source reports this fixed or closed.",
        held_advice: "as a person set it; move it on when you agree.",
    };
    const REOPEN: SourceMove = SourceMove {
        target: |workflow| &workflow.reopen,
        transition_comment: "infra-tickets reopened this ticket: the source reports the problem again.",
        kind: ChangeKind::Reopened,
        reason: "The source reports it again.",
        held_news: "the source reports the problem again.",
        held_advice: "as a person decided.",
    };
}

/// How a walk to a status ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reached {
    Moved,
    Already,
    /// Left in this status: a person's decision.
    Held(String),
}

/// First recheck of a young claim when `--claim-recheck` is not set.
const DEFAULT_CLAIM_RECHECK: Duration = Duration::from_secs(2);

/// Whether JIRA certainly did not store a create that failed like this.
fn definitely_not_created(error: &JiraError) -> bool {
    matches!(
        error,
        JiraError::Rejected { .. }
            | JiraError::Unauthorized { .. }
            | JiraError::RateLimited { .. }
            | JiraError::NotFound { .. }
    ) || matches!(error, JiraError::Unavailable { status: Some(503), .. })
}

/// `itk-` and 16 base32 characters: a group key's label.
fn is_key_label(label: &str) -> bool {
    label.len() == 20
        && label.starts_with("itk-")
        && label[4..].chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
}

/// Sorts issues oldest first (by id when created at the same time): the first one is kept.
fn oldest_first(issues: &mut [Issue]) {
    issues.sort_by_key(|i| (i.created(), i.id.parse::<u64>().unwrap_or(u64::MAX)));
}

/// The field values an adopted issue has in JIRA, as the baseline of "last written".
fn values_in_jira(issue: &Issue, wanted: &FieldValues, team_field: Option<&str>) -> FieldValues {
    let labels = issue.labels();
    FieldValues {
        project: issue.project_key().unwrap_or(&wanted.project).to_owned(),
        issue_type: wanted.issue_type.clone(),
        summary: issue.summary().unwrap_or_default().to_owned(),
        description_hash: String::new(),
        due_date: issue.due_date(),
        priority: issue.priority_name().map(str::to_owned),
        labels: wanted.labels.iter().filter(|l| labels.contains(l)).cloned().collect(),
        components: issue.component_names(),
        team_value: team_field.and_then(|f| issue.option_value(f)),
    }
}

/// What of a ticket's work is still open, in words.
fn remaining_work(desired: &DesiredTicket) -> String {
    match (&desired.body.progress, desired.body.items.len()) {
        (Some(progress), _) => progress.describe(),
        (None, 0) => first_sentence(&desired.body.headline),
        (None, 1) => "1 open item".to_owned(),
        (None, n) => format!("{n} open items"),
    }
}

fn first_sentence(text: &str) -> String {
    let sentence = text.split_inclusive(". ").next().unwrap_or(text).trim();
    mapping::truncate_chars(sentence, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_labels_are_recognised() {
        let token = contracts::GroupKey::from_raw("snyk/github/acme/x").token();
        assert!(is_key_label(&token));
        assert!(!is_key_label("infra-tickets"));
        assert!(!is_key_label("itk-lane-p1"));
    }

    #[test]
    fn only_unambiguous_failures_release_a_claim() {
        assert!(definitely_not_created(&JiraError::Rejected {
            operation: "c".into(),
            status: 400,
            message: "m".into()
        }));
        let unavailable = |status: Option<u16>| JiraError::Unavailable {
            operation: "c".into(),
            status,
            message: "m".into(),
            retry_after: None,
            pause: Duration::from_secs(1),
        };
        assert!(!definitely_not_created(&unavailable(Some(500))));
        assert!(!definitely_not_created(&unavailable(None)), "a timeout may have created it");
        assert!(definitely_not_created(&unavailable(Some(503))));
    }
}
