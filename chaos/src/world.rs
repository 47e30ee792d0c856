//! The world the services run against: the ownership catalog, the simulators (JIRA, Slack behind
//! a faulty proxy, Snyk with a generated org, AWS Health with generated events) and the load
//! waves added while processes are being killed.

use std::time::Duration;

use aws_health_sim::{AwsHealthSim, SimEntity, SimEvent};
use chrono::{DateTime, DurationRound, Utc};
use jira_sim::{JiraSim, ProjectConfig, SimConfig};
use rand::Rng;
use rand::rngs::StdRng;
use slack_sim::SlackSim;
use snyk_sim::{NewIssue, SimOrg, SnykSim};

use crate::slack_proxy::{FaultyProxy, ProxyPlan};

/// Like the demo's catalog: four teams with boards and channels; AWS accounts 111… (platform)
/// and 222… (data); payments owns `i-0pay*` instances; 333… is unknown (default team).
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

[teams.media]
jira_project = "MEDIA"
jira_team_field = "Media"
slack_channel = "C0MEDIA"

[[owners]]
team = "payments"
aws_resources = ["i-0pay*"]

[[owners]]
team = "media"
snyk_targets = ["*.dkr.ecr.*.amazonaws.com/service-1*"]
"#;

/// The generated Snyk org.
pub const ORG_ID: &str = "c4a05000-0000-4000-8000-00000000c4a0";
pub const SNYK_TOKEN: &str = "chaos-snyk-token";
pub const SLACK_TOKEN: &str = "xoxb-chaos-bot-token";
pub const AWS_ACCESS_KEY_ID: &str = "chaos";
pub const AWS_SECRET_ACCESS_KEY: &str = "chaos-secret";
pub const CHANNELS: [(&str, &str); 4] =
    [("C0PLATFORM", "platform"), ("C0PAYMENTS", "payments"), ("C0DATA", "data"), ("C0MEDIA", "media")];

/// How much work there is.
#[derive(Debug, Clone)]
pub struct Load {
    /// Snyk projects and issues of the generated org (about one issue in twenty is critical).
    pub snyk_projects: usize,
    pub snyk_issues: usize,
    /// AWS Health events at the start.
    pub health_events: usize,
    /// Added at each fault round: new AWS Health events and new critical Snyk findings.
    pub wave_health_events: usize,
    pub wave_snyk_findings: usize,
}

/// The faults JIRA and Slack inject while the processes are killed.
#[derive(Debug, Clone)]
pub struct ApiFaults {
    /// Every n-th JIRA call is answered with 429, 500, 502 or 503 in turn (nothing changed).
    pub jira_storm_every: u64,
    /// Added to every JIRA answer.
    pub jira_latency: Duration,
    /// How long a create stays invisible to JIRA search.
    pub jira_search_lag: Duration,
    pub slack: ProxyPlan,
    /// Every fault round, the next few Slack requests are answered with 429.
    pub slack_rate_limited_per_round: u32,
}

/// The four simulators, and the faulty proxy the notifier reaches Slack through.
pub struct Simulators {
    pub jira: JiraSim,
    pub slack: SlackSim,
    pub slack_proxy: FaultyProxy,
    pub snyk: SnykSim,
    pub health: AwsHealthSim,
}

impl Simulators {
    pub async fn start(load: &Load, faults: &ApiFaults) -> anyhow::Result<Simulators> {
        let mut jira_config = SimConfig::default();
        jira_config.projects.push(ProjectConfig::new("MEDIA", "10004", &["media"]));
        jira_config.team_field.options.push("Media".into());
        let jira = JiraSim::start(jira_config).await?;
        let slack = SlackSim::start().await?;
        slack.add_bot_token(SLACK_TOKEN, &["chat:write", "channels:history"]);
        for (id, name) in CHANNELS {
            slack.add_channel(id, name, true);
        }
        let slack_proxy = FaultyProxy::start(slack.base_url(), faults.slack.clone()).await?;
        let org = SimOrg::synthetic(ORG_ID, load.snyk_projects, load.snyk_issues);
        let snyk = SnykSim::start_with(SNYK_TOKEN, vec![org]).await?;
        let health = AwsHealthSim::start_with(health_events(0, load.health_events, Utc::now())).await?;
        Ok(Simulators { jira, slack, slack_proxy, snyk, health })
    }

    /// Turns JIRA's and Slack's faults on (or off, to let the pipeline converge at the end).
    pub fn inject_faults(&self, faults: &ApiFaults, on: bool) {
        if on {
            use jira_sim::Fault;
            let storm = vec![
                Fault::RateLimited { retry_after_secs: 1 },
                Fault::ServerError,
                Fault::BadGateway,
                Fault::Unavailable { retry_after_secs: 1 },
                // The work done, then a 500: a create, edit, transition, comment or link the
                // writer cannot tell happened, and must not do twice.
                Fault::ServerErrorAfterWork,
            ];
            self.jira.set_storm(Some((faults.jira_storm_every, storm)));
            self.jira.set_latency(faults.jira_latency);
            self.jira.set_search_lag(faults.jira_search_lag);
        } else {
            self.jira.set_storm(None);
            self.jira.set_latency(Duration::ZERO);
        }
        self.slack_proxy.set_enabled(on);
    }

    /// One load wave: new AWS Health events and new critical findings on random projects.
    pub fn add_wave(&self, wave: usize, load: &Load, rng: &mut StdRng) -> WaveSize {
        let first = load.health_events + (wave - 1) * load.wave_health_events;
        for event in health_events(first, load.wave_health_events, Utc::now()) {
            self.health.put_event(event);
        }
        let projects: Vec<String> = self
            .snyk
            .org(ORG_ID)
            .map(|org| org.projects.iter().map(|p| p.id.clone()).collect())
            .unwrap_or_default();
        let mut findings = 0;
        for n in 0..load.wave_snyk_findings {
            if projects.is_empty() {
                break;
            }
            let project = &projects[rng.random_range(0..projects.len())];
            let key = format!("SNYK-CHAOS-W{wave}-{n}");
            let issue = NewIssue::critical_mature(&key, &format!("chaospkg{n}"), "1.0.0");
            if self.snyk.add_issue(ORG_ID, project, issue).is_some() {
                findings += 1;
            }
        }
        WaveSize { health_events: load.wave_health_events, snyk_findings: findings }
    }
}

/// What one wave added.
#[derive(Debug, Clone, Copy)]
pub struct WaveSize {
    pub health_events: usize,
    pub snyk_findings: usize,
}

const EVENT_TYPES: [&str; 3] = [
    "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
    "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
    "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED",
];
const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];

/// `count` scheduled EC2 events numbered from `first`: windows 3 to 52 days ahead; instances of
/// payments (`i-0pay…`) and of the account's team; one event in five affects both, so it files
/// two tickets.
pub fn health_events(first: usize, count: usize, now: DateTime<Utc>) -> Vec<SimEvent> {
    let hour = now.duration_trunc(chrono::Duration::hours(1)).unwrap_or(now);
    (first..first + count)
        .map(|n| {
            let code = EVENT_TYPES[n % EVENT_TYPES.len()];
            let account = ACCOUNTS[(n / 3) % ACCOUNTS.len()];
            let arn = format!("arn:aws:health:eu-west-1::event/EC2/{code}/{code}_chaos{n:06}");
            let start = hour + chrono::Duration::days(3 + (n % 50) as i64);
            let entity = |value: String| SimEntity::new(account, &value, "PENDING", now);
            let entities = match n % 5 {
                0 => vec![entity(format!("i-0pay{n:012x}a")), entity(format!("i-0web{n:012x}b"))],
                1 | 3 => vec![entity(format!("i-0pay{n:012x}c"))],
                _ => vec![entity(format!("i-0web{n:012x}d"))],
            };
            SimEvent::new(
                &arn,
                "EC2",
                code,
                "scheduledChange",
                "eu-west-1",
                now,
                "upcoming",
                "One or more of your Amazon EC2 instances is scheduled for maintenance during the \
                 scheduled window.",
            )
            .with_window(start, Some(start + chrono::Duration::hours(2)))
            .with_entities(entities)
        })
        .collect()
}
