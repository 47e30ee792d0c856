//! Full syncs of an org and refreshes of one project: REST pages in, one raw event per project
//! snapshot out, only when the snapshot changed.
//!
//! Each project seen is remembered in the `intake_state` bucket under
//! `snyk.project.<org>.<project>`: the hash of the snapshot last published, the project as last
//! listed (so a project that disappears can still be named to triage) and the base image a
//! webhook reported. A snapshot whose hash is the one remembered is not published again, so a
//! sync of an unchanged org publishes nothing, however long after the last one.

use std::collections::{BTreeMap, BTreeSet};

use bus::{BusError, Classify, ErrorClass, JsonKv, Outgoing, Publisher};
use chrono::{DateTime, Utc};
use contracts::RawEvent;
use serde::{Deserialize, Serialize};
use service_kit::Clock;
use snyk_policy::rest::{Issue, Project, RejectedResource};
use snyk_policy::snapshot::rest_origin;
use snyk_policy::{BaseImage, ProjectSnapshot};
use tokio::sync::Mutex;

use crate::client::{ApiError, Listing, SnykClient};

/// Issues of an org's projects as compact JSON, by project id (a parsed issue costs several
/// times its text).
type IssuesByProject = BTreeMap<String, Vec<Box<str>>>;

/// Projects whose issues are fetched at once when an org is walked project by project: enough
/// to hide the latency of one call, few enough that their issues stay small.
const PER_PROJECT_CONCURRENCY: usize = 8;

/// The issue budget unless configured otherwise: the default severity (critical) of a large
/// org fits (12,500 critical issues of 5,000 projects take about 16 MiB as JSON), every
/// severity of it does not.
pub const DEFAULT_ISSUE_BUDGET_BYTES: u64 = 24 * 1024 * 1024;

/// One org and where its API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub base_url: String,
}

/// What the intake remembers of one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenProject {
    pub hash: String,
    pub project: Project,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<BaseImage>,
    /// The ids of the issues in the snapshot last published: an update of one of them matters
    /// even when it left the fetched severities (a downgrade).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_ids: Vec<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub org: String,
    pub projects: usize,
    pub issues: usize,
    /// Snapshots published because they changed (new projects included).
    pub published: usize,
    /// Projects gone from the API, published as disappeared.
    pub disappeared: usize,
    /// Resources that could not be read, each dead-lettered alone (once per content).
    pub rejected: usize,
    /// Projects left as last published because one of their issues could not be read (so a
    /// bad record never makes a finding look fixed).
    pub held: usize,
    /// Values this version does not know (a new severity, status…), tolerated and counted.
    pub unknown_values: usize,
    /// The org's issues exceeded the issue budget, so they were listed project by project.
    pub per_project: bool,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Classify for SyncError {
    fn class(&self) -> ErrorClass {
        match self {
            SyncError::Api(error) => error.class(),
            SyncError::Bus(error) => error.class(),
        }
    }
}

/// Makes any text a KV key token.
fn key_token(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn key_prefix(org: &str) -> String {
    format!("snyk.project.{}.", key_token(org))
}

fn cursor_key(org: &str) -> String {
    format!("snyk.cursor.{}", key_token(org))
}

fn walked_key(org: &str) -> String {
    format!("snyk.walked.{}", key_token(org))
}

/// An org whose last full sync was walked project by project: enough to tell whether the next
/// one would fit the issue budget, so that it does not list the whole org only to drop it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Walked {
    /// Bytes per issue (as held: compact JSON) when the org-wide listing exceeded the budget.
    pub bytes_per_issue: u64,
    /// Issues the walk listed.
    pub issues: u64,
}

/// The org-wide issue listing: held per project, or over the budget.
enum OrgIssues {
    Held { issues_of: IssuesByProject, held: BTreeSet<String> },
    OverBudget { bytes_per_issue: u64 },
}

/// Where the next incremental pull of an org starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub pulled_from: DateTime<Utc>,
}

fn project_key(org: &str, project: &str) -> String {
    format!("{}{}", key_prefix(org), key_token(project))
}

fn rejected_key(org: &str, resource: &RejectedResource) -> String {
    let name = match &resource.id {
        Some(id) => key_token(id),
        None => content_hash(&resource.resource),
    };
    format!("snyk.rejected.{}.{name}", key_token(org))
}

fn content_hash(value: &serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(value.to_string().as_bytes())[..16])
}

/// A resource that was dead-lettered: the hash of its content, so the same bad record is not
/// dead-lettered again at every sync, while a changed one is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRecord {
    pub hash: String,
}

/// Syncs orgs and refreshes projects; one at a time, so two never publish the same project.
pub struct Syncer {
    client: SnykClient,
    /// Clients of the other tokens, by the REST base URL they serve (a token per Region).
    regional: BTreeMap<String, SnykClient>,
    publisher: Publisher,
    seen: JsonKv<SeenProject>,
    cursors: JsonKv<Cursor>,
    walked: JsonKv<Walked>,
    rejected: JsonKv<RejectedRecord>,
    clock: Clock,
    severities: String,
    issue_budget_bytes: u64,
    exclusive: Mutex<()>,
}

impl Syncer {
    /// `intake_state`: the intake's key-value store (projects seen, pull cursors).
    pub fn new(
        client: SnykClient,
        publisher: Publisher,
        intake_state: async_nats::jetstream::kv::Store,
        clock: Clock,
        severities: String,
    ) -> Self {
        let bucket = bus::topology::INTAKE_STATE;
        Syncer {
            client,
            regional: BTreeMap::new(),
            publisher,
            seen: JsonKv::new(intake_state.clone(), bucket),
            cursors: JsonKv::new(intake_state.clone(), bucket),
            walked: JsonKv::new(intake_state.clone(), bucket),
            rejected: JsonKv::new(intake_state, bucket),
            clock,
            severities,
            issue_budget_bytes: DEFAULT_ISSUE_BUDGET_BYTES,
            exclusive: Mutex::new(()),
        }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn client(&self) -> &SnykClient {
        &self.client
    }

    /// Holds at most `bytes` of an org's issues (as JSON) before walking it project by project.
    pub fn with_issue_budget(mut self, bytes: u64) -> Self {
        self.issue_budget_bytes = bytes;
        self
    }

    /// Uses `client` (its own token and rate limit) for the orgs at `base_url`.
    pub fn with_client_for(mut self, base_url: &str, client: SnykClient) -> Self {
        self.regional.insert(base_url.trim_end_matches('/').to_owned(), client);
        self
    }

    /// The client whose token serves an org's Region.
    fn client_for(&self, org: &Org) -> &SnykClient {
        self.client_for_url(&org.base_url)
    }

    /// The client whose token serves the API at `base_url`.
    pub fn client_for_url(&self, base_url: &str) -> &SnykClient {
        self.regional.get(base_url.trim_end_matches('/')).unwrap_or(&self.client)
    }

    /// Lists every project and its issues and publishes what changed, and what disappeared.
    /// A resource that cannot be read is dead-lettered alone; the rest of the org goes on.
    ///
    /// Memory stays bounded: Snyk's issue listing is not ordered by project, so joining it to
    /// the projects means holding it. The org's issues are listed first and kept per project as
    /// compact JSON while they fit in the issue budget (`--snyk-sync-issue-budget`), which costs
    /// the fewest calls (one per 100 issues). An org whose issues do not fit is walked project
    /// by project instead: the org-wide listing is dropped and each project's issues are
    /// fetched with it (`scan_item.id`, one call per project), a few projects at a time, so
    /// what is held is a few projects' issues, however large the org. Either way the projects
    /// are walked one page at a time, each page's snapshots published before the next page is
    /// fetched.
    pub async fn sync_org(&self, org: &Org) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport { org: org.id.clone(), ..Default::default() };
        // Issues are the part that moves: the snapshot is as of when their listing started.
        let fetched_at = self.clock.now();
        // Walked last time and not shrunk enough to fit since: walked again, without first
        // listing the org's issues up to the budget.
        let last_walk = self.walked.get(&walked_key(&org.id)).await?.map(|v| v.value);
        let still_over = last_walk
            .as_ref()
            .is_some_and(|w| w.issues.saturating_mul(w.bytes_per_issue) > self.issue_budget_bytes);
        let listed = match &last_walk {
            Some(walk) if still_over => OrgIssues::OverBudget { bytes_per_issue: walk.bytes_per_issue },
            _ => self.list_org_issues(org, &mut report).await?,
        };
        let (mut issues_of, held, bytes_per_issue) = match listed {
            OrgIssues::Held { issues_of, held } => (issues_of, held, None),
            OrgIssues::OverBudget { bytes_per_issue } => {
                (IssuesByProject::new(), BTreeSet::new(), Some(bytes_per_issue))
            }
        };
        report.per_project = bytes_per_issue.is_some();
        let _exclusive = self.exclusive.lock().await;
        let prefix = key_prefix(&org.id);
        let mut remembered: BTreeSet<String> =
            self.seen.keys().await?.into_iter().filter(|key| key.starts_with(&prefix)).collect();
        let mut project_pages = self.client_for(org).project_pages(&org.base_url, &org.id);
        while let Some(page) = project_pages.next_page(self.client_for(org)).await? {
            report.projects += page.data.len();
            report.unknown_values +=
                count_unknown_values(org, page.data.iter().flat_map(Project::unknown_values));
            // A listed project that cannot be read is not gone.
            for id in page.rejected.iter().filter_map(|r| r.project_id.as_deref()) {
                remembered.remove(&project_key(&org.id, id));
            }
            report.rejected += self.dead_letter_rejected(org, page.rejected.iter()).await?;
            if report.per_project {
                let mut projects = page.data.into_iter().peekable();
                while projects.peek().is_some() {
                    let chunk: Vec<Project> = projects.by_ref().take(PER_PROJECT_CONCURRENCY).collect();
                    let ids = chunk.iter().map(|p| p.id.clone()).collect();
                    let fetched_at = self.clock.now();
                    let mut listings = self.issues_per_project(org, ids).await?;
                    for project in chunk {
                        let key = project_key(&org.id, &project.id);
                        remembered.remove(&key);
                        let issues = listings
                            .remove(&project.id)
                            .unwrap_or_else(|| Listing { items: Vec::new(), rejected: Vec::new() });
                        report.issues += issues.items.len();
                        report.unknown_values +=
                            count_unknown_values(org, issues.items.iter().flat_map(Issue::unknown_values));
                        report.rejected += self.dead_letter_rejected(org, issues.rejected.iter()).await?;
                        // One of its issues cannot be read: it keeps its last snapshot, so a bad
                        // record never makes a finding look fixed.
                        if !issues.rejected.is_empty() {
                            report.held += 1;
                            continue;
                        }
                        if self.publish_listed(org, &key, project, issues.items, None, fetched_at).await? {
                            report.published += 1;
                        }
                    }
                }
                continue;
            }
            for project in page.data {
                let key = project_key(&org.id, &project.id);
                remembered.remove(&key);
                // One of its issues cannot be read: it keeps its last snapshot, so a bad record
                // never makes a finding look fixed.
                if held.contains(&project.id) {
                    report.held += 1;
                    continue;
                }
                let project_issues = issues_of
                    .remove(&project.id)
                    .unwrap_or_default()
                    .iter()
                    .map(|json| serde_json::from_str(json).expect("an issue read back as written"))
                    .collect();
                if self.publish_listed(org, &key, project, project_issues, None, fetched_at).await? {
                    report.published += 1;
                }
            }
        }
        for key in remembered {
            if self.publish_disappeared(org, &key, fetched_at).await? {
                report.disappeared += 1;
            }
        }
        if let Some(bytes_per_issue) = bytes_per_issue {
            let walked = Walked { bytes_per_issue, issues: report.issues as u64 };
            self.walked.put(&walked_key(&org.id), &walked).await?;
        }
        metrics::counter!("itk_snyk_snapshots_published_total", "trigger" => "sync")
            .increment(report.published as u64);
        tracing::info!(
            org = %org.id,
            projects = report.projects,
            issues = report.issues,
            per_project = report.per_project,
            published = report.published,
            disappeared = report.disappeared,
            rejected = report.rejected,
            held = report.held,
            unknown_values = report.unknown_values,
            "Snyk org synced."
        );
        Ok(report)
    }

    /// The org's open issues at the fetched severities, as compact JSON per project, and the
    /// projects one of whose issues cannot be read; `None` once they exceed the issue budget
    /// (the sync then goes project by project). Counts go into `report` only when the listing
    /// is kept, so a dropped listing counts nothing twice.
    async fn list_org_issues(&self, org: &Org, report: &mut SyncReport) -> Result<OrgIssues, SyncError> {
        let mut issues_of = IssuesByProject::new();
        let mut held: BTreeSet<String> = BTreeSet::new();
        let mut unknown: Vec<&'static str> = Vec::new();
        let (mut issues, mut attached_rejected, mut bytes) = (0, 0, 0u64);
        let mut issue_pages = self.client_for(org).issue_pages(&org.base_url, &org.id, &self.severities);
        while let Some(page) = issue_pages.next_page(self.client_for(org)).await? {
            issues += page.data.len();
            unknown.extend(page.data.iter().flat_map(Issue::unknown_values));
            held.extend(page.rejected.iter().filter_map(|r| r.project_id.clone()));
            // Dead-lettered once per content, so the per-project walk does not repeat it.
            let unattached = page.rejected.iter().filter(|r| r.project_id.is_none()).count();
            let set_aside = self.dead_letter_rejected(org, page.rejected.iter()).await?;
            // Those of no project are not listed again by the per-project walk.
            report.rejected += unattached;
            attached_rejected += set_aside - unattached;
            for issue in page.data {
                let Some(project) = issue.project_id().map(str::to_owned) else { continue };
                let json = serde_json::to_string(&issue).expect("an issue always serialises");
                bytes += (json.len() + project.len()) as u64;
                issues_of.entry(project).or_default().push(json.into_boxed_str());
            }
            if bytes > self.issue_budget_bytes {
                tracing::info!(org = %org.id, issues, budget_bytes = self.issue_budget_bytes,
                    "The org's issues exceed the sync's issue budget; listing them project by project.");
                metrics::counter!("itk_snyk_per_project_syncs_total").increment(1);
                return Ok(OrgIssues::OverBudget { bytes_per_issue: bytes.div_ceil(issues.max(1) as u64) });
            }
        }
        report.issues += issues;
        report.rejected += attached_rejected;
        report.unknown_values += count_unknown_values(org, unknown.into_iter());
        Ok(OrgIssues::Held { issues_of, held })
    }

    /// The open issues at the fetched severities of each of `projects`, fetched together (each
    /// listing under the token's rate limit).
    async fn issues_per_project(
        &self,
        org: &Org,
        projects: Vec<String>,
    ) -> Result<BTreeMap<String, Listing<Issue>>, SyncError> {
        let mut tasks = tokio::task::JoinSet::new();
        for project in projects {
            let client = self.client_for(org).clone();
            let (base_url, org_id, severities) =
                (org.base_url.clone(), org.id.clone(), self.severities.clone());
            tasks.spawn(async move {
                let listing = client.issues(&base_url, &org_id, &severities, Some(&project)).await;
                (project, listing)
            });
        }
        let mut listings = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (project, listing) = joined.expect("a per-project issue listing never panics");
            listings.insert(project, listing?);
        }
        Ok(listings)
    }

    /// Dead-letters each resource that could not be read, alone, with its id and reason;
    /// the same content is dead-lettered once, not at every sync. Returns how many were set
    /// aside.
    async fn dead_letter_rejected<'a>(
        &self,
        org: &Org,
        rejected: impl Iterator<Item = &'a RejectedResource>,
    ) -> Result<usize, SyncError> {
        let mut count = 0;
        for resource in rejected {
            count += 1;
            let key = rejected_key(&org.id, resource);
            let hash = content_hash(&resource.resource);
            if self.rejected.get(&key).await?.is_some_and(|r| r.value.hash == hash) {
                continue;
            }
            let reason = format!("Snyk org {}: {}", org.id, resource.reason);
            tracing::warn!(org = %org.id, reason = %reason.escape_debug(), "A Snyk resource cannot be read; dead-lettered, the rest goes on.");
            let body = serde_json::to_vec(&resource.resource).unwrap_or_default();
            dead_letter(&self.publisher, &body, &reason, &format!("org {}", org.id)).await?;
            self.rejected.put(&key, &RejectedRecord { hash }).await?;
        }
        Ok(count)
    }

    /// Refreshes the projects whose issues changed since `since` (an incremental pull); the
    /// report counts the issues updated and the snapshots published.
    pub async fn pull_changes(&self, org: &Org, since: DateTime<Utc>) -> Result<SyncReport, SyncError> {
        let fetched: BTreeSet<&str> = self.severities.split(',').collect();
        // Page by page, keeping only the projects that changed: after a rescan of a large org,
        // most of its issues may have been updated since the last pull.
        let mut projects: BTreeSet<String> = BTreeSet::new();
        let (mut issues, mut unattached_rejected) = (0, 0);
        let mut pages = self.client_for(org).issue_update_pages(&org.base_url, &org.id, since);
        while let Some(page) = pages.next_page(self.client_for(org)).await? {
            issues += page.data.len();
            for issue in &page.data {
                let Some(project) = issue.project_id() else { continue };
                if projects.contains(project) {
                    continue;
                }
                let at_fetched_severity = issue
                    .attributes
                    .effective_severity_level
                    .known()
                    .is_some_and(|s| fetched.contains(s.as_str()));
                // Below the fetched severities, only an issue the last snapshot held matters:
                // it was downgraded out of it.
                let was_published = || async {
                    let seen = self.seen.get(&project_key(&org.id, project)).await?;
                    Ok::<bool, SyncError>(seen.is_some_and(|s| s.value.issue_ids.contains(&issue.id)))
                };
                if at_fetched_severity || was_published().await? {
                    projects.insert(project.to_owned());
                }
            }
            // An issue that cannot be read still says which project changed.
            projects.extend(page.rejected.iter().filter_map(|r| r.project_id.clone()));
            let unattached = page.rejected.iter().filter(|r| r.project_id.is_none());
            unattached_rejected += self.dead_letter_rejected(org, unattached).await?;
        }
        let mut report = SyncReport {
            org: org.id.clone(),
            projects: projects.len(),
            issues,
            rejected: unattached_rejected,
            ..Default::default()
        };
        for project in &projects {
            let refreshed = self.refresh(org, project, None).await?;
            report.published += usize::from(refreshed.published);
            report.held += usize::from(refreshed.held);
            report.rejected += refreshed.rejected;
            report.unknown_values += refreshed.unknown_values;
        }
        metrics::counter!("itk_snyk_snapshots_published_total", "trigger" => "poll")
            .increment(report.published as u64);
        tracing::info!(org = %org.id, %since, issues = report.issues, projects = report.projects, published = report.published,
            rejected = report.rejected, held = report.held, "Snyk changes pulled.");
        Ok(report)
    }

    /// When the last full sync or pull of an org started, if any.
    pub async fn cursor(&self, org: &Org) -> Result<Option<DateTime<Utc>>, SyncError> {
        let value = self.cursors.get(&cursor_key(&org.id)).await?;
        Ok(value.map(|v| v.value.pulled_from))
    }

    /// Remembers when the last successful full sync or pull of an org started.
    pub async fn set_cursor(&self, org: &Org, started: DateTime<Utc>) -> Result<(), SyncError> {
        self.cursors.put(&cursor_key(&org.id), &Cursor { pulled_from: started }).await?;
        Ok(())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Refreshes one project from the API (after a webhook); returns whether it published.
    pub async fn refresh_project(
        &self,
        org: &Org,
        project_id: &str,
        base_image: Option<BaseImage>,
    ) -> Result<bool, SyncError> {
        Ok(self.refresh(org, project_id, base_image).await?.published)
    }

    async fn refresh(
        &self,
        org: &Org,
        project_id: &str,
        base_image: Option<BaseImage>,
    ) -> Result<Refreshed, SyncError> {
        let mut projects = self.client_for(org).projects(&org.base_url, &org.id, Some(project_id)).await?;
        let fetched_at = self.clock.now();
        let key = project_key(&org.id, project_id);
        let mut refreshed = Refreshed::default();
        let unreadable = projects.rejected.iter().any(|r| r.project_id.as_deref() == Some(project_id));
        refreshed.rejected = self.dead_letter_rejected(org, projects.rejected.iter()).await?;
        let _exclusive;
        match projects.items.iter().position(|p| p.id == project_id) {
            Some(index) => {
                let project = projects.items.swap_remove(index);
                let issues = self
                    .client_for(org)
                    .issues(&org.base_url, &org.id, &self.severities, Some(project_id))
                    .await?;
                refreshed.unknown_values = count_unknown_values(
                    org,
                    project
                        .unknown_values()
                        .into_iter()
                        .chain(issues.items.iter().flat_map(Issue::unknown_values)),
                );
                refreshed.rejected += self.dead_letter_rejected(org, issues.rejected.iter()).await?;
                if issues.rejected.is_empty() {
                    _exclusive = self.exclusive.lock().await;
                    refreshed.published =
                        self.publish_listed(org, &key, project, issues.items, base_image, fetched_at).await?;
                } else {
                    refreshed.held = true;
                }
            }
            // Listed but unreadable: not gone.
            None if unreadable => {}
            None => {
                _exclusive = self.exclusive.lock().await;
                refreshed.published = self.publish_disappeared(org, &key, fetched_at).await?;
            }
        }
        tracing::info!(org = %org.id, project = project_id, published = refreshed.published, held = refreshed.held,
            "Snyk project refreshed.");
        Ok(refreshed)
    }

    /// Publishes a listed project's snapshot if it differs from the one remembered.
    async fn publish_listed(
        &self,
        org: &Org,
        key: &str,
        project: Project,
        issues: Vec<Issue>,
        reported_base_image: Option<BaseImage>,
        fetched_at: DateTime<Utc>,
    ) -> Result<bool, SyncError> {
        let previous = self.seen.get(key).await?.map(|v| v.value);
        let base_image = reported_base_image.or_else(|| previous.as_ref().and_then(|p| p.base_image.clone()));
        let snapshot = ProjectSnapshot::listed(&org.id, project, issues, base_image.clone());
        let (event, hash) = snapshot.to_raw_event_and_hash(
            &rest_origin(&org.id),
            fetched_at,
            previous.as_ref().map(|p| p.hash.as_str()),
        );
        if previous.as_ref().is_some_and(|p| p.hash == hash) {
            return Ok(false);
        }
        self.publish(org, event).await?;
        let issue_ids = snapshot.issues.iter().map(|i| i.id.clone()).collect();
        let record = SeenProject { hash, project: snapshot.project, base_image, issue_ids };
        self.seen.put(key, &record).await?;
        Ok(true)
    }

    /// Publishes a remembered project as disappeared and forgets it.
    async fn publish_disappeared(
        &self,
        org: &Org,
        key: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<bool, SyncError> {
        let Some(previous) = self.seen.get(key).await?.map(|v| v.value) else { return Ok(false) };
        let snapshot = ProjectSnapshot::disappeared(&org.id, previous.project);
        self.publish(org, snapshot.to_raw_event(&rest_origin(&org.id), fetched_at, Some(&previous.hash)))
            .await?;
        self.seen.store().delete(key).await.map_err(|source| BusError::Kv {
            bucket: bus::topology::INTAKE_STATE.into(),
            key: key.to_owned(),
            source: Box::new(source),
        })?;
        tracing::info!(org = %org.id, project = %snapshot.project.id, "Snyk project disappeared.");
        Ok(true)
    }

    async fn publish(&self, org: &Org, event: RawEvent) -> Result<(), SyncError> {
        let message = Outgoing::new(event.subject(&org.id), event.to_json()).with_id(event.dedup_id.clone());
        self.publisher.publish_with_retry(message, 3).await?;
        tracing::debug!(org = %org.id, dedup_id = %event.dedup_id, "Snapshot published.");
        Ok(())
    }
}

/// What a refresh of one project did.
#[derive(Debug, Default)]
struct Refreshed {
    published: bool,
    held: bool,
    rejected: usize,
    unknown_values: usize,
}

/// Counts (metric by field) the values this version does not know; returns how many.
fn count_unknown_values(org: &Org, fields: impl Iterator<Item = &'static str>) -> usize {
    let mut count = 0;
    for field in fields {
        metrics::counter!("itk_snyk_unknown_values_total", "field" => field).increment(1);
        count += 1;
    }
    if count > 0 {
        tracing::info!(org = %org.id, count, "Snyk sent values this version does not know; tolerated.");
    }
    count
}

/// Where the dead-lettered document came from (a URL, or `webhook`).
pub const SOURCE_HEADER: &str = "Itk-Snyk-Source";

/// Keeps a page or body Snyk sent that cannot be read, with the reason, in the dead-letter
/// stream (`dlq.ingest-snyk`).
pub async fn dead_letter(
    publisher: &Publisher,
    body: &[u8],
    reason: &str,
    from: &str,
) -> Result<(), BusError> {
    use sha2::Digest;
    let id = hex::encode(&sha2::Sha256::digest([body, reason.as_bytes()].concat())[..16]);
    // Header values are one line.
    let reason: String = reason.chars().take(2_000).map(|c| if c.is_control() { ' ' } else { c }).collect();
    let from: String = from.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let message =
        Outgoing::new(contracts::subjects::dead_letter(crate::STAGE), bytes::Bytes::copy_from_slice(body))
            .with_id(format!("dlq:{}:{id}", crate::STAGE))
            .with_header(contracts::dead_letter::REASON, &reason)
            .with_header(contracts::dead_letter::STAGE, crate::STAGE)
            .with_header(contracts::dead_letter::ERROR_CLASS, "permanent")
            .with_header(SOURCE_HEADER, &from)
            .with_header(contracts::dead_letter::DEAD_AT, &Utc::now().to_rfc3339());
    metrics::counter!("itk_snyk_dead_letters_total").increment(1);
    publisher.publish_with_retry(message, 3).await.map(|_| ())
}
