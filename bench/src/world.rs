//! The generated world: the ownership catalog, the Snyk org, the AWS Health events, and the
//! simulators serving them.

use std::collections::BTreeMap;

use aws_health_sim::{AwsHealthSim, SimEntity, SimEvent};
use chrono::{DateTime, Duration, Utc};
use jira_sim::{JiraSim, SimConfig};
use slack_sim::SlackSim;
use snyk_sim::{SimOrg, SnykSim};

use crate::{BenchError, Scale, StepExt};

/// The Snyk organisation the benchmark generates.
pub const ORG_ID: &str = "5e1f0c2a-9b7d-4e3c-8a6f-1d2c3b4a5e6f";
pub const SNYK_TOKEN: &str = "bench-snyk-token";
pub const SLACK_TOKEN: &str = "xoxb-bench-bot-token";
pub const PLATFORM_ACCOUNT: &str = "111111111111";
pub const DATA_ACCOUNT: &str = "222222222222";
/// An account the catalog does not name: its tickets go to the default team.
pub const UNKNOWN_ACCOUNT: &str = "333333333333";

/// Three teams with their boards (the JIRA simulator's default projects) and channels; the
/// synthetic Snyk org tags its projects `team:payments` or `team:platform`.
pub const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
jira_project = "PLAT"
jira_team_field = "Platform"
slack_channel = "C0PLATFORM"
aws_accounts = ["111111111111"]

[teams.payments]
jira_project = "PAY"
jira_team_field = "Payments"
slack_channel = "C0PAYMENTS"
time_zone = "Europe/Berlin"

[teams.data]
jira_project = "DATA"
jira_team_field = "Data"
slack_channel = "C0DATA"
aws_accounts = ["222222222222"]

[[owners]]
team = "payments"
aws_resources = ["i-0pay*"]
"#;

const CHANNELS: [(&str, &str); 3] =
    [("C0PLATFORM", "platform"), ("C0PAYMENTS", "payments"), ("C0DATA", "data")];

/// The kinds of AWS Health notice the generator cycles through (all ticketed, Maintenance lane).
const NOTICES: [(&str, &str, &str); 5] = [
    ("EC2", "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", "is scheduled for a reboot for maintenance."),
    ("EC2", "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED", "is scheduled for retirement."),
    ("EC2", "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED", "is scheduled for network maintenance."),
    ("RDS", "AWS_RDS_MAINTENANCE_SCHEDULED", "needs a required operating system update."),
    ("ELASTICACHE", "AWS_ELASTICACHE_MAINTENANCE_SCHEDULED", "needs a required service update."),
];

/// The ownership catalog, parsed.
pub fn catalog() -> std::sync::Arc<catalog::Catalog> {
    std::sync::Arc::new(catalog::Catalog::from_toml(CATALOG).expect("the benchmark catalog is valid"))
}

/// One generated AWS Health event: `n` picks its kind, account, owner and window. `updated` is
/// its last update (the generator dates the initial ones two hours back, past the Health
/// intake's overlap, so that later polls re-read only new events).
pub fn health_event(label: &str, n: usize, now: DateTime<Utc>, updated: DateTime<Utc>) -> SimEvent {
    let (service, code, what) = NOTICES[n % NOTICES.len()];
    let account = [PLATFORM_ACCOUNT, DATA_ACCOUNT, UNKNOWN_ACCOUNT][n % 3];
    let resource = match service {
        "EC2" if n.is_multiple_of(2) => format!("i-0pay{n:012x}"),
        "EC2" => format!("i-0web{n:012x}"),
        "RDS" => format!("db-{label}-{n}"),
        _ => format!("cache-{label}-{n}"),
    };
    let start = now + Duration::days(7 + (n % 60) as i64);
    SimEvent::new(
        &format!("arn:aws:health:eu-west-1::event/{service}/{code}/{code}_{label}{n:06}"),
        service,
        code,
        "scheduledChange",
        "eu-west-1",
        updated,
        "upcoming",
        &format!(
            "One of your {service} resources in eu-west-1 {what} It happens during the scheduled window."
        ),
    )
    .with_window(start, Some(start + Duration::hours(2)))
    .with_entities(vec![SimEntity::new(account, &resource, "PENDING", updated)])
}

/// The generated AWS Health events.
pub fn health_events(count: usize, now: DateTime<Utc>) -> Vec<SimEvent> {
    (0..count).map(|n| health_event("bench", n, now, now - Duration::hours(2))).collect()
}

/// `SimOrg::synthetic` dates issue n at n hours after 2026-06-01, so most of a large org's
/// findings are "updated" in the future and every incremental pull (`updated_after`) would list
/// them again. Real findings are updated in the past: they are dated a month back here.
pub fn past_dated(mut org: SimOrg, now: DateTime<Utc>) -> SimOrg {
    for issue in &mut org.issues {
        issue.created_at = issue.created_at.min(now - Duration::days(31));
        issue.updated_at = issue.updated_at.min(now - Duration::days(30));
    }
    org
}

/// The four simulators with the generated org and events; JIRA answers after `jira_latency`.
pub struct Simulators {
    pub jira: JiraSim,
    pub slack: SlackSim,
    pub snyk: SnykSim,
    pub health: AwsHealthSim,
}

impl Simulators {
    pub async fn start(scale: &Scale) -> Result<Simulators, BenchError> {
        let now = Utc::now();
        let config = SimConfig { latency: scale.jira_latency, ..SimConfig::default() };
        let jira = JiraSim::start(config).await.step("starting the JIRA simulator")?;
        let slack = SlackSim::start().await.step("starting the Slack simulator")?;
        slack.add_bot_token(SLACK_TOKEN, &["chat:write", "channels:history"]);
        for (id, name) in CHANNELS {
            slack.add_channel(id, name, true);
        }
        let org = past_dated(SimOrg::synthetic(ORG_ID, scale.projects, scale.findings), now);
        let snyk = SnykSim::start_with(SNYK_TOKEN, vec![org]).await.step("starting the Snyk simulator")?;
        // Kept response bodies would hold every page served: gigabytes for a large org.
        snyk.record_responses(false);
        let health = AwsHealthSim::start_with(health_events(scale.health_events, now))
            .await
            .step("starting the AWS Health simulator")?;
        Ok(Simulators { jira, slack, snyk, health })
    }

    /// Open critical findings: a full sync lists them in pages of 100.
    pub fn open_critical_findings(&self) -> usize {
        let org = self.snyk.org(ORG_ID).expect("the generated org");
        org.issues
            .iter()
            .filter(|i| i.severity == "critical" && i.status == snyk_sim::IssueStatus::Open)
            .count()
    }

    /// GitHub projects, one per repository, whose repository has no critical finding yet: a
    /// critical finding added to one of them makes a new ticket.
    pub fn untouched_github_projects(&self) -> Vec<String> {
        let org = self.snyk.org(ORG_ID).expect("the generated org");
        let critical: std::collections::BTreeSet<&str> =
            org.issues.iter().filter(|i| i.severity == "critical").map(|i| i.project_id.as_str()).collect();
        let mut by_target: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for project in &org.projects {
            if project.origin != "github" {
                continue;
            }
            let entry = by_target.entry(project.target_name.clone()).or_insert((project.id.clone(), false));
            entry.1 |= critical.contains(project.id.as_str());
        }
        by_target.into_values().filter(|(_, touched)| !touched).map(|(id, _)| id).collect()
    }
}
