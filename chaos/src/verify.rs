//! The end-of-run checks, as users would make them: the JIRA board, the Slack channels, the dead
//! letters and the consumers' lag.

use std::collections::{BTreeMap, BTreeSet};

use contracts::{DesiredTicket, DueDateSource};
use jira_sim::SimIssue;
use jira_writer::mapping::{self, MappingSettings, PROPERTY_KEY};
use slack_sim::PostedMessage;

use crate::cluster::Lag;
use crate::expected::Expected;

/// The jira-writer settings the harness starts the writers with (their defaults, plus the team
/// field), to compute the fields every ticket must have.
pub fn mapping_settings() -> MappingSettings {
    MappingSettings {
        default_project: "PLAT".into(),
        issue_type: "Task".into(),
        lane_priorities: mapping::parse_lane_priorities(
            "P1=Highest,P2=High,P3=Medium,P4=Low,Maintenance=High",
        )
        .expect("the default lane priorities parse"),
        labels: vec!["infra-tickets".into()],
        team_field: Some(jira_sim::TEAM_FIELD.into()),
    }
}

/// The group key an issue carries in its `infra-tickets` property.
pub fn issue_token(issue: &SimIssue) -> Option<String> {
    issue.properties.get(PROPERTY_KEY)?.get("idempotencyKey")?.as_str().map(str::to_owned)
}

/// Every ticket exists exactly once, with the fields its desired state maps to; no ticket exists
/// that should not.
pub fn check_board(expected: &Expected, issues: &[SimIssue], catalog: &catalog::Catalog) -> Vec<String> {
    let settings = mapping_settings();
    let mut problems = Vec::new();
    let mut by_token: BTreeMap<String, Vec<&SimIssue>> = BTreeMap::new();
    for issue in issues {
        match issue_token(issue) {
            Some(token) => by_token.entry(token).or_default().push(issue),
            None => problems.push(format!("JIRA issue {} has no infra-tickets property", issue.key)),
        }
        problems.extend(repeated_writes(issue));
    }
    for desired in &expected.open {
        let token = desired.group_key.token();
        match by_token.get(&token).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!(
                "missing ticket: {} ({}, team {}, lane {})",
                desired.group_key, desired.summary, desired.team, desired.lane
            )),
            Some([issue]) => problems.extend(check_fields(desired, issue, catalog, &settings)),
            Some(several) => problems.push(format!(
                "duplicate tickets for {}: {}",
                desired.group_key,
                several.iter().map(|i| i.key.as_str()).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    let known: BTreeSet<String> =
        expected.open.iter().chain(&expected.resolved).map(|d| d.group_key.token()).collect();
    for (token, found) in &by_token {
        if !known.contains(token) {
            let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
            problems.push(format!("unexpected ticket(s) {} for group {token}", keys.join(", ")));
        }
    }
    for desired in &expected.resolved {
        for issue in by_token.get(&desired.group_key.token()).into_iter().flatten() {
            if issue.resolved.is_none() {
                problems.push(format!("{} should be resolved ({})", issue.key, desired.group_key));
            }
        }
    }
    problems
}

fn check_fields(
    desired: &DesiredTicket,
    issue: &SimIssue,
    catalog: &catalog::Catalog,
    settings: &MappingSettings,
) -> Vec<String> {
    let team = catalog.team(&desired.team);
    let wanted = mapping::map(desired, &team, settings).values;
    let mut problems = Vec::new();
    let mut differs = |field: &str, want: String, got: String| {
        if want != got {
            problems.push(format!(
                "{} ({}): {field} is {got:?}, expected {want:?}",
                issue.key, desired.group_key
            ));
        }
    };
    differs("project", wanted.project.clone(), issue.project.clone());
    differs("summary", wanted.summary.clone(), issue.summary.clone());
    differs("priority", format!("{:?}", wanted.priority), format!("{:?}", issue.priority));
    differs("team", format!("{:?}", wanted.team_value), format!("{:?}", issue.team));
    differs("resolution", "None".into(), format!("{:?}", issue.resolved));
    let missing: Vec<&String> = wanted.labels.iter().filter(|l| !issue.labels.contains(l)).collect();
    if !missing.is_empty() {
        problems.push(format!("{} ({}): labels {missing:?} missing", issue.key, desired.group_key));
    }
    let got_due = issue.due_date.as_deref().and_then(|d| d.parse::<chrono::NaiveDate>().ok());
    let due_ok = match (wanted.due_date, got_due, desired.due.as_ref().map(|d| &d.source)) {
        // A service-level due date counts from the day triage saw the group: the harness may
        // compute it on the next day when the run crosses midnight.
        (Some(want), Some(got), Some(DueDateSource::LaneSla { .. })) => (want - got).num_days().abs() <= 1,
        (want, got, _) => want == got,
    };
    if !due_ok {
        problems.push(format!(
            "{} ({}): due date is {:?}, expected {:?}",
            issue.key, desired.group_key, issue.due_date, wanted.due_date
        ));
    }
    problems
}

/// Every message was posted at most once, and every ticket got exactly one "created" notice in
/// its team's channel.
/// A comment or remote link written twice on one issue: what a write retried after JIRA did it
/// and answered an error would leave (the chaos storm has such faults).
fn repeated_writes(issue: &SimIssue) -> Vec<String> {
    let mut problems = Vec::new();
    let mut comments: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for comment in &issue.comments {
        *comments.entry(comment).or_default() += 1;
    }
    for ((_, body), count) in comments.into_iter().filter(|(_, count)| *count > 1) {
        problems.push(format!("{}: comment written {count} times: {body:?}", issue.key));
    }
    let mut links: BTreeMap<&str, usize> = BTreeMap::new();
    for (global_id, _, _) in &issue.remote_links {
        if let Some(global_id) = global_id {
            *links.entry(global_id.as_str()).or_default() += 1;
        }
    }
    for (global_id, count) in links.into_iter().filter(|(_, count)| *count > 1) {
        problems.push(format!("{}: remote link {global_id} written {count} times", issue.key));
    }
    problems
}

pub fn check_slack(
    expected: &Expected,
    issues: &[SimIssue],
    messages: &[PostedMessage],
    catalog: &catalog::Catalog,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<&str, Vec<&PostedMessage>> = BTreeMap::new();
    for message in messages {
        match message.metadata_field("idempotency_key") {
            Some(key) => by_key.entry(key).or_default().push(message),
            None => {
                problems.push(format!("a Slack message without idempotency metadata: {:?}", message.text))
            }
        }
    }
    for (key, posted) in &by_key {
        if posted.len() > 1 {
            problems.push(format!("Slack message {key} posted {} times", posted.len()));
        }
    }
    let teams: BTreeMap<String, &str> =
        expected.open.iter().map(|d| (d.group_key.token(), d.team.as_str())).collect();
    for issue in issues {
        let Some(team) = issue_token(issue).and_then(|token| teams.get(&token).copied()) else { continue };
        let created: Vec<&PostedMessage> = messages
            .iter()
            .filter(|m| m.metadata_field("issue_key") == Some(issue.key.as_str()))
            .filter(|m| {
                // `notice/<issue id>/created`: the notifier's marker of an issue's one "new ticket" message.
                m.metadata_field("idempotency_key").is_some_and(|k| {
                    let mut parts = k.split('/');
                    parts.next() == Some("notice") && parts.nth(1) == Some("created")
                })
            })
            .collect();
        match created.as_slice() {
            [] => problems.push(format!("no \"created\" notice for {} (team {team})", issue.key)),
            [one] => {
                let channel = catalog.team(team).slack_channel.clone();
                if channel.as_deref() != Some(one.channel.as_str()) {
                    problems.push(format!(
                        "the notice for {} went to {}, not {:?}",
                        issue.key, one.channel, channel
                    ));
                }
            }
            several => problems.push(format!("{} \"created\" notices for {}", several.len(), issue.key)),
        }
    }
    problems
}

/// Only the injected poison is dead-lettered, each exactly once.
pub fn check_dead_letters(
    letters: &[bus::dead_letter::DeadLetter],
    poison_subjects: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    for letter in letters {
        if !poison_subjects.contains(&letter.original_subject) {
            problems.push(format!(
                "unexpected dead letter from {} at stage {} after {} deliveries: {}",
                letter.original_subject, letter.stage, letter.deliveries, letter.reason
            ));
        }
    }
    for subject in poison_subjects {
        let count = letters.iter().filter(|l| &l.original_subject == subject).count();
        if count != 1 {
            problems.push(format!("poison message {subject} dead-lettered {count} times, expected once"));
        }
    }
    problems
}

pub fn check_lag(lags: &[Lag]) -> Vec<String> {
    lags.iter()
        .filter(|lag| lag.pending > 0 || lag.ack_pending > 0)
        .map(|lag| {
            format!(
                "consumer {} did not drain: {} pending, {} unacked",
                lag.consumer, lag.pending, lag.ack_pending
            )
        })
        .collect()
}

/// Every reminder that is due now was sent, once (duplicates are [`check_slack`]'s): for each
/// expected ticket on the board, the reminder the notifier's own schedule gives for its due date
/// and its team's local date (`notifier::schedule::reminder_due`), when the team's local time is
/// within the run's working hours ([`crate::REMINDER_HOURS`]), must be in Slack under its marker
/// key.
pub fn check_reminders(
    expected: &Expected,
    issues: &[SimIssue],
    messages: &[PostedMessage],
    catalog: &catalog::Catalog,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let hours: notifier::schedule::WorkingHours = crate::REMINDER_HOURS.parse().expect("valid hours");
    let sent: BTreeSet<&str> = messages.iter().filter_map(|m| m.metadata_field("idempotency_key")).collect();
    let teams: BTreeMap<String, &str> =
        expected.open.iter().map(|d| (d.group_key.token(), d.team.as_str())).collect();
    let mut problems = Vec::new();
    for issue in issues {
        let Some(team) = issue_token(issue).and_then(|token| teams.get(&token).copied()) else { continue };
        let Some(due) = issue.due_date.as_deref().and_then(|d| d.parse::<chrono::NaiveDate>().ok()) else {
            continue;
        };
        let local = now.with_timezone(&catalog.team(team).time_zone).naive_local();
        if !hours.contains(local) {
            continue;
        }
        let Some(kind) = notifier::schedule::reminder_due(due, local.date(), true) else { continue };
        let key = notifier::markers::reminder_key(&issue.key, kind, due);
        if !sent.contains(key.as_str()) {
            problems.push(format!("reminder {key} (team {team}) is due and was not sent"));
        }
    }
    problems
}
