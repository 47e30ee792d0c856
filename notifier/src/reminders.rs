//! The reminder scan: asks JIRA for our open tickets with a due date (so a due date a person
//! changed in JIRA is the one that counts), decides which reminder each is due today, and sends
//! each once per issue, kind and due date.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::Readiness;
use catalog::Catalog;
use chrono::{NaiveDate, NaiveDateTime};
use futures_util::StreamExt;
use jira::JiraClient;
use jira::PROPERTY_KEY;
use jira::{Issue, SearchRequest};
use serde_json::json;
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use crate::destinations::Destinations;
use crate::error::NotifyError;
use crate::index::{IssueIndex, LastReminders};
use crate::markers::{digest_key, reminder_key};
use crate::message::{LinkPolicy, ListItem, Notice, NoticeKind, SlackMessage, render, render_list};
use crate::schedule::{ReminderKind, WorkingHours, may_be_due, reminder_due};
use crate::sender::{SendOutcome, Sender};
use crate::slack::SlackError;
use crate::waiting::ChannelWaits;

/// The readiness component of the scan.
pub const HEALTH_COMPONENT: &str = "reminder scan";

/// How the scan runs.
#[derive(Debug, Clone)]
pub struct ReminderSettings {
    pub scan_interval: Duration,
    pub overdue: bool,
    /// Add `notified-14d` / `notified-5d` to the issue after sending.
    pub add_labels: bool,
    /// The label every ticket of ours carries.
    pub label: String,
    /// Issues per search page.
    pub page_size: u32,
    /// Channels served at once.
    pub concurrency: usize,
    /// When reminders go out, in each team's zone; teams not listed get `default_hours`.
    pub default_hours: WorkingHours,
    pub team_hours: BTreeMap<String, WorkingHours>,
    /// Teams that get one daily digest of the tickets due within 14 days instead of single
    /// reminders.
    pub digest_teams: std::collections::BTreeSet<String>,
}

/// The JQL of the scan: our open tickets with a due date that can be due a reminder around
/// `today` (a day of margin each side for time zones). Due dates far ahead are never fetched;
/// overdue tickets only when overdue messages are on.
pub fn scan_jql(label: &str, today_utc: NaiveDate, overdue: bool) -> String {
    // 14 days, a weekend moved to the Friday before, a day for time zones, a day of margin.
    let last = today_utc + chrono::Days::new(18);
    let mut jql = format!(
        r#"labels = "{label}" AND statusCategory != Done AND duedate is not EMPTY AND duedate <= "{last}""#
    );
    if !overdue {
        let first = today_utc - chrono::Days::new(1);
        jql.push_str(&format!(r#" AND duedate >= "{first}""#));
    }
    jql.push_str(" ORDER BY duedate ASC, key ASC");
    jql
}

/// What one scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub jira_calls: u64,
    /// Time spent waiting for JIRA's search.
    pub jira_time: Duration,
    pub issues: u64,
    pub index_lookups: u64,
    pub due: u64,
    pub sent: u64,
    pub already_sent: u64,
    pub recovered: u64,
    pub claimed_elsewhere: u64,
    pub abandoned: u64,
    pub failed: u64,
    /// Due, but outside the team's working hours now: a later scan sends them.
    pub outside_hours: u64,
    /// Not sent because their channel cannot take messages now; the next scan tries again.
    pub waiting: u64,
    pub labels_added: u64,
}

impl ScanReport {
    fn add(&mut self, other: &ScanReport) {
        self.sent += other.sent;
        self.already_sent += other.already_sent;
        self.recovered += other.recovered;
        self.claimed_elsewhere += other.claimed_elsewhere;
        self.abandoned += other.abandoned;
        self.failed += other.failed;
        self.waiting += other.waiting;
        self.labels_added += other.labels_added;
    }
}

/// What the scans did so far: shared with tests and the demo, which wait for a scan that
/// started after they moved the clock.
#[derive(Debug, Default)]
pub struct ScanLog {
    completed: std::sync::atomic::AtomicU64,
    last: std::sync::Mutex<Option<(ScanReport, Duration)>>,
}

impl ScanLog {
    /// Scans finished (successfully or not).
    pub fn completed(&self) -> u64 {
        self.completed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The last successful scan's report and how long it took.
    pub fn last(&self) -> Option<(ScanReport, Duration)> {
        self.last.lock().expect("scan log lock").clone()
    }

    fn record(&self, outcome: Option<(ScanReport, Duration)>) {
        if let Some(outcome) = outcome {
            *self.last.lock().expect("scan log lock") = Some(outcome);
        }
        self.completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One reminder to send: about one ticket, or a team's daily digest.
#[derive(Debug, Clone)]
struct DueReminder {
    key: String,
    team: String,
    /// `None` for a digest.
    ticket: Option<(ReminderKind, Notice)>,
    message: SlackMessage,
    /// The issue key in the message metadata and logs (`digest` for a digest).
    issue_key: String,
}

/// What a due ticket needs now.
enum Due {
    Send(Box<DueReminder>),
    /// Due, but it is outside the team's working hours.
    OutsideHours,
    /// A line of its team's daily digest.
    DigestLine {
        team: String,
        local: NaiveDateTime,
        item: ListItem,
    },
}

/// How many days ahead a digest lists.
pub const DIGEST_DAYS: i64 = 14;

pub struct ReminderScanner {
    pub jira: JiraClient,
    pub index: IssueIndex,
    pub last_reminders: LastReminders,
    pub sender: Arc<Sender>,
    pub destinations: Arc<Destinations>,
    pub waits: Arc<ChannelWaits>,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub links: LinkPolicy,
    pub settings: ReminderSettings,
}

impl ReminderScanner {
    /// Scans every `scan_interval` (and once at start) until `shutdown`.
    pub async fn run(self, health: Readiness, log: Arc<ScanLog>, shutdown: CancellationToken) {
        health.register(HEALTH_COMPONENT);
        let mut ticker = tokio::time::interval(self.settings.scan_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            let started = Instant::now();
            let result = self.scan_once(&shutdown).await;
            let elapsed = started.elapsed();
            log.record(result.as_ref().ok().map(|report| (report.clone(), elapsed)));
            match result {
                Ok(report) => {
                    health.set_ready(HEALTH_COMPONENT);
                    metrics::histogram!("itk_reminder_scan_seconds").record(started.elapsed().as_secs_f64());
                    if report.due > 0 || report.failed > 0 {
                        tracing::info!(
                            issues = report.issues,
                            due = report.due,
                            sent = report.sent,
                            already_sent = report.already_sent,
                            recovered = report.recovered,
                            claimed_elsewhere = report.claimed_elsewhere,
                            failed = report.failed,
                            jira_calls = report.jira_calls,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "Reminder scan done."
                        );
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "Reminder scan failed.");
                    health.set_unready(HEALTH_COMPONENT, format!("last scan failed: {error}"));
                }
            }
        }
    }

    /// One scan over every open ticket with a due date.
    pub async fn scan_once(&self, shutdown: &CancellationToken) -> Result<ScanReport, NotifyError> {
        let mut report = ScanReport::default();
        let due = self.find_due(&mut report).await?;
        report.due = due.len() as u64;
        // Messages to one channel go one after the other (Slack's one per second per channel);
        // channels are served in parallel.
        let mut by_destination: BTreeMap<String, Vec<DueReminder>> = BTreeMap::new();
        for reminder in due {
            let label = self.destinations.for_team(&reminder.team).map(|d| d.label()).unwrap_or_default();
            by_destination.entry(label).or_default().push(reminder);
        }
        let mut groups = futures_util::stream::iter(by_destination.into_values())
            .map(|group| self.send_group(group, shutdown))
            .buffer_unordered(self.settings.concurrency.max(1));
        while let Some(result) = groups.next().await {
            report.add(&result?);
        }
        Ok(report)
    }

    /// Pages through the search and keeps the tickets due a reminder today.
    async fn find_due(&self, report: &mut ScanReport) -> Result<Vec<DueReminder>, NotifyError> {
        let now = self.clock.now();
        let today_utc = now.date_naive();
        let mut request = SearchRequest {
            jql: scan_jql(&self.settings.label, today_utc, self.settings.overdue),
            max_results: Some(self.settings.page_size),
            fields: ["summary", "duedate", "status", "project"].map(str::to_owned).to_vec(),
            // jira-writer keeps the ticket's progress in its issue property.
            properties: vec![PROPERTY_KEY.to_owned()],
            ..SearchRequest::default()
        };
        let mut due = Vec::new();
        let mut digests: BTreeMap<String, (NaiveDateTime, Vec<ListItem>)> = BTreeMap::new();
        loop {
            let asked = Instant::now();
            let page = self.jira.search(&request).await?;
            report.jira_calls += 1;
            report.jira_time += asked.elapsed();
            for issue in &page.issues {
                report.issues += 1;
                let Some(due_date) = issue.due_date() else { continue };
                if issue.is_done() || !may_be_due(due_date, today_utc, self.settings.overdue) {
                    continue;
                }
                report.index_lookups += 1;
                match self.due_reminder(issue, due_date, now).await? {
                    Some(Due::Send(reminder)) => due.push(*reminder),
                    Some(Due::OutsideHours) => report.outside_hours += 1,
                    Some(Due::DigestLine { team, local, item }) => {
                        digests.entry(team).or_insert_with(|| (local, Vec::new())).1.push(item)
                    }
                    None => {}
                }
            }
            match page.next_page_token() {
                Some(token) => request.next_page_token = Some(token.to_owned()),
                None => break,
            }
        }
        for (team, (local, items)) in digests {
            if !self.hours_of(&team).contains(local) {
                report.outside_hours += 1;
                continue;
            }
            due.push(self.digest(&team, local.date(), &items));
        }
        Ok(due)
    }

    fn hours_of(&self, team: &str) -> &WorkingHours {
        self.settings.team_hours.get(team).unwrap_or(&self.settings.default_hours)
    }

    /// A team's daily digest: one message per local day (the marker key holds the date).
    fn digest(&self, team: &str, today: NaiveDate, items: &[ListItem]) -> DueReminder {
        let title = format!("{team}: {} due within {DIGEST_DAYS} days", plural_tickets(items.len()));
        let jql = format!(
            r#"labels = "{}" AND statusCategory != Done AND duedate <= "{}" ORDER BY duedate ASC"#,
            self.settings.label,
            today + chrono::Days::new(DIGEST_DAYS as u64)
        );
        let more = self.links.search_url(&jql);
        DueReminder {
            key: digest_key(team, today),
            team: team.to_owned(),
            ticket: None,
            message: render_list(&title, items, today, more.as_deref(), &self.links),
            issue_key: "digest".to_owned(),
        }
    }

    /// The reminder one issue is due today in its team's time zone, if any.
    async fn due_reminder(
        &self,
        issue: &Issue,
        due: NaiveDate,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Due>, NotifyError> {
        let record = self.index.get(&issue.key).await?;
        let team = match &record {
            Some(record) => record.team.clone(),
            None => self.team_of_project(issue),
        };
        let local = now.with_timezone(&self.catalog.team(&team).time_zone).naive_local();
        let today = local.date();
        if self.settings.digest_teams.contains(&team) {
            let days = (due - today).num_days();
            if days > DIGEST_DAYS || (days < 0 && !self.settings.overdue) {
                return Ok(None);
            }
            let item = ListItem {
                issue_key: issue.key.clone(),
                issue_url: record.as_ref().map(|r| r.issue_url.clone()).unwrap_or_else(|| browse_url(issue)),
                summary: issue
                    .summary()
                    .map(str::to_owned)
                    .or_else(|| record.as_ref().map(|r| r.summary.clone()))
                    .unwrap_or_default(),
                due,
                progress: progress_of(issue)
                    .or_else(|| record.as_ref().and_then(|r| r.progress.clone()))
                    .as_ref()
                    .map(contracts::Progress::describe),
            };
            return Ok(Some(Due::DigestLine { team, local, item }));
        }
        let Some(kind) = reminder_due(due, today, self.settings.overdue) else { return Ok(None) };
        if !self.hours_of(&team).contains(local) {
            return Ok(Some(Due::OutsideHours));
        }
        let summary = issue
            .summary()
            .map(str::to_owned)
            .or_else(|| record.as_ref().map(|r| r.summary.clone()))
            .unwrap_or_default();
        let issue_url = record.as_ref().map(|r| r.issue_url.clone()).unwrap_or_else(|| browse_url(issue));
        let progress = progress_of(issue).or_else(|| record.as_ref().and_then(|r| r.progress.clone()));
        let due_moved_from =
            self.last_reminders.get(&issue.key).await?.map(|last| last.due).filter(|last| *last != due);
        let notice = Notice {
            kind: NoticeKind::Reminder { kind },
            issue_key: issue.key.clone(),
            issue_url,
            summary,
            team: team.clone(),
            lane: record.as_ref().map(|r| r.lane.clone()),
            due: Some(due),
            today,
            reason: record.map(|r| r.reason).unwrap_or_default(),
            progress: progress.as_ref().map(contracts::Progress::describe),
            due_moved_from,
        };
        Ok(Some(Due::Send(Box::new(DueReminder {
            key: reminder_key(&issue.key, kind, due),
            team,
            message: render(&notice, &self.links),
            issue_key: issue.key.clone(),
            ticket: Some((kind, notice)),
        }))))
    }

    /// For an issue the index does not know (filed before this notifier ran): the team whose
    /// JIRA project it is in, else the default team.
    fn team_of_project(&self, issue: &Issue) -> String {
        let project = issue
            .project_key()
            .map(str::to_owned)
            .or_else(|| issue.key.rsplit_once('-').map(|(project, _)| project.to_owned()));
        let mut owners = self
            .catalog
            .teams
            .iter()
            .filter(|(_, team)| team.jira_project.is_some() && team.jira_project == project)
            .map(|(name, _)| name.clone());
        match (owners.next(), owners.next()) {
            (Some(only), None) => only,
            _ => self.catalog.default_team.clone(),
        }
    }

    async fn send_group(
        &self,
        group: Vec<DueReminder>,
        shutdown: &CancellationToken,
    ) -> Result<ScanReport, NotifyError> {
        let mut report = ScanReport::default();
        let total = group.len() as u64;
        for (n, reminder) in group.into_iter().enumerate() {
            if shutdown.is_cancelled() {
                break;
            }
            match self.send(&reminder).await {
                Ok(SendOutcome::Sent { .. }) => {
                    report.sent += 1;
                    self.delivered(&reminder).await;
                    report.labels_added += u64::from(self.mirror_label(&reminder).await);
                }
                Ok(SendOutcome::Recovered { .. }) => {
                    report.recovered += 1;
                    self.delivered(&reminder).await;
                    report.labels_added += u64::from(self.mirror_label(&reminder).await);
                }
                // This channel cannot take messages: its other reminders wait too (the next
                // scan tries again); other channels go on.
                Err(NotifyError::Slack(error @ SlackError::ChannelUnavailable { .. })) => {
                    let label =
                        self.destinations.for_team(&reminder.team).map(|d| d.label()).unwrap_or_default();
                    self.waits.record(&label, &error);
                    report.waiting += total - n as u64;
                    metrics::counter!("itk_reminders_waiting_total").increment(total - n as u64);
                    break;
                }
                Ok(SendOutcome::AlreadySent) => report.already_sent += 1,
                Ok(SendOutcome::ClaimedElsewhere { .. }) => report.claimed_elsewhere += 1,
                Ok(SendOutcome::Abandoned) => report.abandoned += 1,
                // Nothing will work until the credentials are fixed or Slack is back: stop and say so.
                Err(error) if error.stops_all_sending() => return Err(error),
                Err(error) => {
                    report.failed += 1;
                    metrics::counter!("itk_reminders_failed_total").increment(1);
                    tracing::error!(marker = %reminder.key, issue_key = %reminder.issue_key, team = %reminder.team,
                        %error, "Reminder not sent; the next scan tries again.");
                }
            }
        }
        Ok(report)
    }

    /// After a reminder went out: its channel works, and the due date it announced is the one a
    /// later reminder compares with.
    async fn delivered(&self, reminder: &DueReminder) {
        if let Ok(destination) = self.destinations.for_team(&reminder.team) {
            self.waits.record_delivered(&destination.label());
        }
        if let Some((kind, notice)) = &reminder.ticket
            && let Some(due) = notice.due
            && let Err(error) = self.last_reminders.record(&notice.issue_key, due, *kind).await
        {
            tracing::warn!(issue_key = %notice.issue_key, %error, "Could not remember the reminded due date.");
        }
    }

    async fn send(&self, reminder: &DueReminder) -> Result<SendOutcome, NotifyError> {
        if self.sender.is_done(&reminder.key).await? {
            return Ok(SendOutcome::AlreadySent);
        }
        let destination = self.destinations.for_team(&reminder.team)?;
        let outcome = self
            .sender
            .send_once(&reminder.key, &destination, &reminder.message, &reminder.issue_key)
            .await?;
        if matches!(outcome, SendOutcome::Sent { .. } | SendOutcome::Recovered { .. }) {
            tracing::info!(marker = %reminder.key, issue_key = %reminder.issue_key, destination = %destination.label(), "Reminder sent.");
        }
        Ok(outcome)
    }

    /// Mirrors the reminder as a JIRA label for board visibility; the marker stays the record.
    async fn mirror_label(&self, reminder: &DueReminder) -> bool {
        let Some((kind, _)) = &reminder.ticket else { return false };
        let Some(label) = kind.label().filter(|_| self.settings.add_labels) else { return false };
        let body = json!({"update": {"labels": [{"add": label}]}});
        match self.jira.edit_issue(&reminder.issue_key, &body, false).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(issue_key = %reminder.issue_key, label, %error, "Could not add the reminder label.");
                false
            }
        }
    }
}

fn plural_tickets(n: usize) -> String {
    if n == 1 { "1 ticket".into() } else { format!("{n} tickets") }
}

/// The ticket's progress from the issue property jira-writer sets; absent or malformed means
/// no progress line (the property is written by another service and may be older).
fn progress_of(issue: &Issue) -> Option<contracts::Progress> {
    let value = issue.property(PROPERTY_KEY)?.get("progress")?;
    let progress: contracts::Progress = serde_json::from_value(value.clone()).ok()?;
    (progress.total > 0 && progress.remaining <= progress.total).then_some(progress)
}

/// `https://site/browse/KEY` from the issue's `self` URL.
fn browse_url(issue: &Issue) -> String {
    match issue.self_url.split_once("/rest/api/") {
        Some((base, _)) => format!("{base}/browse/{}", issue.key),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_asks_only_for_tickets_inside_the_reminder_windows() {
        let today = "2026-12-01".parse().unwrap();
        assert_eq!(
            scan_jql("infra-tickets", today, true),
            r#"labels = "infra-tickets" AND statusCategory != Done AND duedate is not EMPTY AND duedate <= "2026-12-19" ORDER BY duedate ASC, key ASC"#
        );
        assert!(scan_jql("infra-tickets", today, false).contains(r#"AND duedate >= "2026-11-30""#));
        // The window covers the 14-day reminder in every time zone, moved before a weekend:
        // due Monday 21 Dec, due − 14 is Monday 7 Dec; due Sunday 20 Dec opens Friday 4 Dec.
        let tomorrow = today + chrono::Days::new(1);
        assert_eq!(reminder_due("2026-12-16".parse().unwrap(), tomorrow, false), Some(ReminderKind::Due14d));
        let friday = "2026-12-04".parse().unwrap();
        assert_eq!(reminder_due("2026-12-20".parse().unwrap(), friday, false), Some(ReminderKind::Due14d));
        assert!(
            scan_jql("infra-tickets", "2026-12-03".parse().unwrap(), true)
                .contains(r#"duedate <= "2026-12-21""#)
        );
    }
}
