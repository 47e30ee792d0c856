//! The notifier's settings: one typed struct, each setting a flag and an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use service_kit::args::parse_duration;
use service_kit::{Clock, HttpArgs, NatsArgs, Secret, TelemetryArgs, TopologyArgs};

use crate::destinations::Environment;
use crate::schedule::WorkingHours;
use crate::sender::{Faults, WebhookRecovery};

/// `team=09:00-17:00`.
fn parse_team_hours(text: &str) -> Result<(String, WorkingHours), String> {
    let (team, hours) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not team=HH:MM-HH:MM, e.g. payments=08:00-16:30"))?;
    let team = team.trim();
    if team.is_empty() {
        return Err(format!("{text:?} names no team"));
    }
    Ok((team.to_owned(), hours.parse()?))
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "notifier",
    version,
    about = "Tells teams in Slack about new and moved tickets, and reminds them 14 and 5 days before the due date."
)]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// The ownership catalog (TOML): each team's Slack channel or webhook variable, time zone.
    #[arg(long = "catalog", env = "ITK_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Owner of last resort when no catalog is given.
    #[arg(long = "default-team", env = "ITK_DEFAULT_TEAM", default_value = "platform")]
    pub default_team: String,

    /// Slack Web API base URL.
    #[arg(long = "slack-api-url", env = "SLACK_API_URL", default_value = "https://slack.com/api")]
    pub slack_api_url: String,
    /// Bot token (`xoxb-…`) with `chat:write`, and `channels:history` + `groups:history` to
    /// settle unknown outcomes from public and private channels' history; checked at start.
    #[arg(long = "slack-bot-token", env = "SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<Secret>,
    /// Timeout of one Slack request.
    #[arg(long = "slack-timeout", env = "ITK_SLACK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub slack_timeout: Duration,
    /// At most one message per channel per this interval (Slack allows about one per second).
    #[arg(long = "channel-interval", env = "ITK_SLACK_CHANNEL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub channel_interval: Duration,
    /// A 429 `Retry-After` up to this is waited out in place; longer ones retry the message later.
    #[arg(long = "max-wait-in-place", env = "ITK_SLACK_MAX_WAIT", default_value = "60s", value_parser = parse_duration)]
    pub max_wait_in_place: Duration,
    /// How long invalid Slack credentials pause the consumer before it tries again.
    #[arg(long = "auth-pause", env = "ITK_SLACK_AUTH_PAUSE", default_value = "60s", value_parser = parse_duration)]
    pub auth_pause: Duration,
    /// How often the messages of a channel that could not take them (`not_in_channel`,
    /// `is_archived`…) are tried again.
    #[arg(long = "channel-retry", env = "ITK_SLACK_CHANNEL_RETRY", default_value = "1m", value_parser = parse_duration)]
    pub channel_retry: Duration,
    /// How long a claimed message is honoured before it counts as left by a crash; must exceed
    /// --slack-timeout.
    #[arg(long = "claim-lease", env = "ITK_CLAIM_LEASE", default_value = "2m", value_parser = parse_duration)]
    pub claim_lease: Duration,
    /// How far the channel history is searched before the claim time, for clock skew.
    #[arg(long = "history-skew", env = "ITK_HISTORY_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub history_skew: Duration,
    /// A webhook send interrupted by a crash cannot be checked: send it again or not.
    #[arg(long = "webhook-recovery", env = "ITK_WEBHOOK_RECOVERY", value_enum, default_value_t = WebhookRecovery::AtMostOnce)]
    pub webhook_recovery: WebhookRecovery,
    /// Also announce resolved tickets.
    #[arg(long = "notify-resolved", env = "ITK_NOTIFY_RESOLVED", action = ArgAction::Set, default_value_t = false)]
    pub notify_resolved: bool,
    /// On a team change, also tell the team that had the ticket.
    #[arg(long = "notify-previous-team", env = "ITK_NOTIFY_PREVIOUS_TEAM", action = ArgAction::Set, default_value_t = false)]
    pub notify_previous_team: bool,
    /// Ticket changes handled at once.
    #[arg(long = "concurrency", env = "ITK_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Run the reminder scan (needs the JIRA settings).
    #[arg(long = "reminders", env = "ITK_REMINDERS", action = ArgAction::Set, default_value_t = true)]
    pub reminders: bool,
    /// How often the reminder scan runs.
    #[arg(long = "reminder-scan-interval", env = "ITK_REMINDER_SCAN_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub reminder_scan_interval: Duration,
    /// Send one message when a ticket is overdue.
    #[arg(long = "overdue-reminder", env = "ITK_OVERDUE_REMINDER", action = ArgAction::Set, default_value_t = true)]
    pub overdue_reminder: bool,
    /// Add the labels notified-14d / notified-5d to the issue after the reminder.
    #[arg(long = "reminder-labels", env = "ITK_REMINDER_LABELS", action = ArgAction::Set, default_value_t = false)]
    pub reminder_labels: bool,
    /// The label all our tickets carry (the scan's JQL handle).
    #[arg(long = "ticket-label", env = "ITK_TICKET_LABEL", default_value = "infra-tickets")]
    pub ticket_label: String,
    /// When reminders go out, in each team's time zone, Monday to Friday (a reminder due on a
    /// weekend goes out on the Friday before).
    #[arg(long = "working-hours", env = "ITK_WORKING_HOURS", default_value = "09:00-18:00")]
    pub working_hours: WorkingHours,
    /// A team's own window, as `team=08:00-16:30`; repeatable or comma-separated.
    #[arg(long = "team-working-hours", env = "ITK_TEAM_WORKING_HOURS", value_delimiter = ',', value_parser = parse_team_hours)]
    pub team_working_hours: Vec<(String, WorkingHours)>,
    /// Teams that get one daily digest (the tickets due within 14 days) instead of single
    /// reminders; comma-separated.
    #[arg(long = "digest-teams", env = "ITK_DIGEST_TEAMS", value_delimiter = ',')]
    pub digest_teams: Vec<String>,
    /// Issues per search page (JIRA allows up to 100 with fields).
    #[arg(long = "reminder-page-size", env = "ITK_REMINDER_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub reminder_page_size: u32,

    /// JIRA Cloud site, `https://<site>.atlassian.net`: the reminder scan asks it, and it is the
    /// only site messages link to.
    #[arg(long = "jira-url", env = "JIRA_URL")]
    pub jira_url: Option<String>,
    /// Atlassian account e-mail of the API token.
    #[arg(long = "jira-email", env = "JIRA_EMAIL")]
    pub jira_email: Option<String>,
    #[arg(long = "jira-api-token", env = "JIRA_API_TOKEN", hide_env_values = true)]
    pub jira_api_token: Option<Secret>,
    /// At most this many JIRA requests per second.
    #[arg(long = "jira-requests-per-second", env = "ITK_JIRA_RPS", default_value_t = 10.0)]
    pub jira_requests_per_second: f64,

    /// The SRE channel (a channel id, with the bot token) told when a source has been failing,
    /// out of touch or quiet too long, and when it works again. Without it (or
    /// --sre-slack-webhook-env) the check is off; the alert rules still fire.
    #[arg(long = "sre-slack-channel", env = "ITK_SRE_SLACK_CHANNEL")]
    pub sre_slack_channel: Option<String>,
    /// Instead of a channel: the environment variable holding the SRE channel's incoming webhook URL.
    #[arg(
        long = "sre-slack-webhook-env",
        env = "ITK_SRE_SLACK_WEBHOOK_ENV",
        conflicts_with = "sre_slack_channel"
    )]
    pub sre_slack_webhook_env: Option<String>,
    /// How often every source's last contact is checked.
    #[arg(long = "source-check-interval", env = "ITK_SOURCE_CHECK_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub source_check_interval: Duration,
    /// A polled source (Snyk's API, the Health API, an SQS queue) with no successful call for
    /// this long is failing; an intake that has not reported for this long is out of touch.
    #[arg(long = "source-failing-after", env = "ITK_SOURCE_FAILING_AFTER", default_value = "2h", value_parser = parse_duration)]
    pub source_failing_after: Duration,
    /// An EventBridge feed (SQS queue, API destination) with no AWS Health event for this long is quiet.
    #[arg(long = "source-quiet-after", env = "ITK_SOURCE_QUIET_AFTER", default_value = "7d", value_parser = parse_duration)]
    pub source_quiet_after: Duration,

    /// Time, injected so tests move the clock instead of waiting.
    #[arg(skip)]
    pub clock: Clock,
    /// Where webhook variables are read from (the process environment).
    #[arg(skip)]
    pub environment: Environment,
    /// Fault injection for tests; holds nothing without the `test-util` feature.
    #[arg(skip)]
    pub faults: Faults,
}
