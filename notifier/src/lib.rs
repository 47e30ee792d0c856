//! Tells teams in Slack about new and moved tickets, and reminds them 14 and 5 days before the due date.
//!
//! ```text
//!  TICKET_CHANGES ──(durable consumer `notifier`)──▶ ChangeHandler ──┐
//!                                                                     ├─▶ Sender ──▶ Slack (chat.postMessage / webhook)
//!  every --reminder-scan-interval ──▶ ReminderScanner (JQL in JIRA) ──┘      │
//!                                                                            └── markers in KV `notifier_markers`
//! ```
//!
//! * [`schedule`]: which reminder a ticket is due today — a pure function of (due, today).
//! * [`message`]: Block Kit blocks and fallback text within Slack's limits.
//! * [`markers`]: one marker per message, claimed before sending and completed after, so every
//!   message is sent exactly once; a claim left by a crash is resolved from the channel history.
//! * [`changes`]: created, team changed (to the new team, naming the old one), reopened and,
//!   optionally, resolved tickets.
//! * [`reminders`]: the scan over JIRA, so due dates people changed in JIRA count.
//! * [`slack`]: the Slack client, paced at one message per second per channel, honouring
//!   `Retry-After`; `invalid_auth` and the like pause; an answer that leaves the outcome
//!   unknown (`internal_error`, `fatal_error`, 5xx, timeout) is settled from the history.
//! * [`sources`]: silence is an alert: the SRE channel hears when an intake's source has been
//!   failing, out of touch or quiet too long, and when it works again.
//! * [`waiting`]: one channel's problem (`not_in_channel`, `is_archived`…) stays in that
//!   channel: its messages wait, with the reason in readiness and metrics.

pub mod changes;
mod config;
pub mod destinations;
mod error;
pub mod index;
pub mod markers;
pub mod message;
pub mod reminders;
pub mod schedule;
pub mod sender;
pub mod slack;
pub mod sources;
pub mod waiting;

use std::net::SocketAddr;
use std::sync::Arc;

use bus::topology::{self, NOTIFIER, NOTIFIER_MARKERS, SOURCE_CONTACT};
use bus::{ConsumerOptions, JsonKv, Publisher, Readiness};
use catalog::Catalog;
use jira::{JiraClient, JiraClientConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use destinations::Environment;
pub use error::{NotifyError, StartError};
pub use sender::{Faults, WebhookRecovery};

use crate::changes::{ChangeHandler, ChangeSettings};
use crate::destinations::Destinations;
use crate::index::{IssueIndex, LastReminders};
use crate::message::LinkPolicy;
use crate::reminders::{ReminderScanner, ReminderSettings, ScanLog};
use crate::sender::{Sender, SenderSettings};
use crate::slack::{Destination, SlackClient, SlackSettings};
use crate::sources::{SourceWatch, Thresholds};
use crate::waiting::ChannelWaits;

/// The bot token scopes the notifier cannot work without (deploy/slack/manifest.yaml lists
/// them): `chat:write` to post, `channels:history` to read a public channel's history when
/// Slack's answer left unknown whether a message was posted
/// (https://docs.slack.dev/reference/methods/conversations.history).
pub const REQUIRED_SCOPES: [&str; 2] = ["chat:write", "channels:history"];
/// The same history check in a private channel needs this scope too. Without it the notifier
/// still starts (a workspace may use public channels only); a private channel whose send needs
/// settling then waits with `missing_scope`, and the start says so.
pub const PRIVATE_CHANNEL_SCOPE: &str = "groups:history";

/// A running notifier.
pub struct Notifier {
    /// Where `/healthz` and `/readyz` are served.
    pub address: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_address: SocketAddr,
    pub health: Readiness,
    /// What the reminder scans did (empty when reminders are off).
    pub scans: Arc<ScanLog>,
    consumer: JoinHandle<Result<(), bus::BusError>>,
    scanner: Option<JoinHandle<()>>,
    waiting: JoinHandle<()>,
    sources: Option<JoinHandle<()>>,
    http: JoinHandle<std::io::Result<()>>,
}

impl Notifier {
    /// Waits until shutdown has stopped every part.
    pub async fn wait(self) -> Result<(), StartError> {
        let consumed = self.consumer.await;
        if let Some(scanner) = self.scanner {
            let _ = scanner.await;
        }
        let _ = self.waiting.await;
        if let Some(sources) = self.sources {
            let _ = sources.await;
        }
        let _ = self.http.await;
        match consumed {
            Ok(result) => result.map_err(StartError::from),
            Err(join) => Err(StartError::Config(format!("the consumer task failed: {join}"))),
        }
    }

    /// Stops every part at once, mid-work, as if the process were killed (tests).
    pub fn kill(self) {
        self.consumer.abort();
        if let Some(scanner) = &self.scanner {
            scanner.abort();
        }
        self.waiting.abort();
        if let Some(sources) = &self.sources {
            sources.abort();
        }
        self.http.abort();
    }
}

/// Runs the notifier until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.wait().await
}

/// Checks the settings, connects, and starts the consumer, the reminder scan and the HTTP
/// endpoints in the background.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Notifier, StartError> {
    if config.claim_lease <= config.slack_timeout {
        return Err(StartError::Config(format!(
            "--claim-lease ({:?}) must be longer than --slack-timeout ({:?}), or a slow send would be taken for a crash",
            config.claim_lease, config.slack_timeout
        )));
    }
    let catalog = match &config.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default_only(&config.default_team),
    };
    if let Some((team, _)) =
        config.team_working_hours.iter().find(|(team, _)| !catalog.teams.contains_key(team))
    {
        return Err(StartError::Config(format!(
            "--team-working-hours names team {team:?}, which the catalog does not describe"
        )));
    }
    let destinations =
        Destinations::from_catalog(&catalog, &config.environment, config.slack_bot_token.is_some())?;
    if destinations.is_empty() {
        tracing::warn!(
            "No team in the catalog has a Slack channel or webhook; every message will dead-letter."
        );
    }
    let sre_destination = sre_destination(&config)?;
    let jira = if config.reminders { Some(jira_client(&config)?) } else { None };
    let links = LinkPolicy::new(config.jira_url.as_deref()).map_err(StartError::Config)?;
    if config.jira_url.is_none() {
        tracing::warn!("No --jira-url: messages name their tickets without links.");
    }

    let client = bus::connect(&config.nats.settings("notifier")).await?;
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &config.topology.config()).await?;
    let markers = JsonKv::open(&js, NOTIFIER_MARKERS).await?;
    let index = IssueIndex::new(JsonKv::new(markers.store().clone(), NOTIFIER_MARKERS));
    let last_reminders = LastReminders::new(JsonKv::new(markers.store().clone(), NOTIFIER_MARKERS));
    let parked = JsonKv::new(markers.store().clone(), NOTIFIER_MARKERS);
    let source_states = JsonKv::new(markers.store().clone(), NOTIFIER_MARKERS);

    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_url: config.slack_api_url.clone(),
        bot_token: config.slack_bot_token.clone(),
        timeout: config.slack_timeout,
        channel_interval: config.channel_interval,
        auth_pause: config.auth_pause,
        channel_retry: config.channel_retry,
    })?);
    if destinations.any(|d| matches!(d, Destination::Channel(_)))
        || matches!(sre_destination, Some(Destination::Channel(_)))
    {
        check_scopes(&slack).await?;
    }
    let instance = format!("notifier-{}-{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let sender = Arc::new(Sender::new(
        markers,
        slack,
        SenderSettings {
            instance,
            claim_lease: config.claim_lease,
            clock_skew: config.history_skew,
            max_wait_in_place: config.max_wait_in_place,
            webhook_recovery: config.webhook_recovery,
        },
        config.faults.clone(),
    ));
    let destinations = Arc::new(destinations);
    let health = Readiness::new();
    let catalog = Arc::new(catalog);
    let waits = Arc::new(ChannelWaits::new(
        parked,
        health.clone(),
        catalog.clone(),
        config.clock.clone(),
        links.clone(),
    ));

    let handler = Arc::new(ChangeHandler {
        index: index.clone(),
        sender: sender.clone(),
        destinations: destinations.clone(),
        waits: waits.clone(),
        catalog: catalog.clone(),
        clock: config.clock.clone(),
        links: links.clone(),
        settings: ChangeSettings {
            notify_resolved: config.notify_resolved,
            notify_previous_team: config.notify_previous_team,
        },
    });
    let consumer = topology::pull_consumer(&js, NOTIFIER).await?;
    let options =
        ConsumerOptions { concurrency: usize::from(config.concurrency), ..ConsumerOptions::new(NOTIFIER) };
    let consumer = tokio::spawn(bus::consumer::run(
        consumer,
        handler,
        Publisher::new(js.clone()),
        options,
        health.clone(),
        shutdown.clone(),
    ));

    let waiting = tokio::spawn(waits.clone().run(
        sender.clone(),
        destinations.clone(),
        config.channel_retry,
        shutdown.clone(),
    ));
    let sources = match sre_destination {
        Some(destination) => {
            let watch = SourceWatch {
                contacts: JsonKv::open(&js, SOURCE_CONTACT).await?,
                states: source_states,
                sender: sender.clone(),
                destination,
                clock: config.clock.clone(),
                thresholds: Thresholds {
                    failing_after: config.source_failing_after,
                    quiet_after: config.source_quiet_after,
                },
                interval: config.source_check_interval,
            };
            Some(tokio::spawn(watch.run(shutdown.clone())))
        }
        None => {
            tracing::info!("No --sre-slack-channel: silent sources are reported by the alert rules only.");
            None
        }
    };
    let scans = Arc::new(ScanLog::default());
    let scanner = jira.map(|jira| {
        let scanner = ReminderScanner {
            jira,
            index,
            last_reminders,
            sender,
            destinations,
            waits,
            catalog,
            clock: config.clock.clone(),
            links,
            settings: ReminderSettings {
                scan_interval: config.reminder_scan_interval,
                overdue: config.overdue_reminder,
                add_labels: config.reminder_labels,
                label: config.ticket_label.clone(),
                page_size: config.reminder_page_size,
                concurrency: usize::from(config.concurrency),
                default_hours: config.working_hours,
                team_hours: config.team_working_hours.iter().cloned().collect(),
                digest_teams: config.digest_teams.iter().cloned().collect(),
            },
        };
        tokio::spawn(scanner.run(health.clone(), scans.clone(), shutdown.clone()))
    });

    let server = service_kit::http::serve_with_metrics(
        &config.http,
        service_kit::http::health_router(health.clone()),
        shutdown,
    )
    .await?;
    tracing::info!(address = %server.address, reminders = config.reminders, "Notifier started.");
    Ok(Notifier {
        address: server.address,
        metrics_address: server.metrics_address,
        health,
        scans,
        consumer,
        scanner,
        waiting,
        sources,
        http: server.task,
    })
}

/// Fails the start when the bot token lacks a scope the notifier uses, naming it. A token Slack
/// refuses, or Slack out of reach, does not stop the start: the consumer pauses and says so.
async fn check_scopes(slack: &SlackClient) -> Result<(), StartError> {
    match slack.granted_scopes().await {
        Ok(None) => {
            tracing::warn!(
                "Slack's auth.test answer does not list the token's scopes (no x-oauth-scopes header): they cannot be checked at start."
            );
            Ok(())
        }
        Ok(Some(granted)) => {
            let has = |scope: &str| granted.iter().any(|g| g == scope);
            let missing: Vec<&str> = REQUIRED_SCOPES.iter().copied().filter(|s| !has(s)).collect();
            if missing.is_empty() {
                if !has(PRIVATE_CHANNEL_SCOPE) {
                    tracing::warn!(
                        scope = PRIVATE_CHANNEL_SCOPE,
                        "The Slack bot token lacks groups:history: a send to a private channel whose outcome Slack leaves unknown cannot be settled, and that channel's messages will wait with missing_scope. Add the scope (deploy/slack/manifest.yaml) if any team uses a private channel."
                    );
                }
                return Ok(());
            }
            Err(StartError::Config(format!(
                "the Slack bot token lacks the scope(s) {}: add them to the app (deploy/slack/manifest.yaml) and reinstall it; it has: {}",
                missing.join(", "),
                if granted.is_empty() { "none listed".to_owned() } else { granted.join(", ") }
            )))
        }
        Err(error) => {
            tracing::error!(%error, "Could not check the Slack bot token's scopes at start.");
            Ok(())
        }
    }
}

/// The SRE channel of the source check, if one is configured (--sre-slack-channel, or the
/// webhook in --sre-slack-webhook-env), resolved as a team's destination is.
fn sre_destination(config: &Config) -> Result<Option<Destination>, StartError> {
    destinations::resolve(
        "the SRE channel (--sre-slack-channel / --sre-slack-webhook-env)",
        "sre",
        config.sre_slack_channel.as_deref(),
        config.sre_slack_webhook_env.as_deref(),
        &config.environment,
        config.slack_bot_token.is_some(),
    )
}

fn jira_client(config: &Config) -> Result<JiraClient, StartError> {
    let missing = |what: &str| {
        StartError::Config(format!(
            "the reminder scan needs {what}; set it, or turn reminders off with --reminders false"
        ))
    };
    let url = config.jira_url.clone().ok_or_else(|| missing("--jira-url (JIRA_URL)"))?;
    let email = config.jira_email.clone().ok_or_else(|| missing("--jira-email (JIRA_EMAIL)"))?;
    let token = config.jira_api_token.clone().ok_or_else(|| missing("--jira-api-token (JIRA_API_TOKEN)"))?;
    let mut settings = JiraClientConfig::new(url, email, token);
    settings.requests_per_second = config.jira_requests_per_second;
    Ok(JiraClient::new(settings)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[&str]) -> Config {
        let mut args =
            vec!["notifier", "--nats-url", "nats://127.0.0.1:1", "--slack-bot-token", "xoxb-secret-value"];
        args.extend_from_slice(extra);
        service_kit::config::try_parse_from(args.into_iter().map(Into::into), |_| None).unwrap()
    }

    #[tokio::test]
    async fn bad_settings_fail_fast_with_a_clear_message() {
        let error = start(config(&[]), CancellationToken::new()).await.err().unwrap();
        assert!(error.to_string().contains("--jira-url"), "{error}");
        let error =
            start(config(&["--claim-lease", "5s", "--slack-timeout", "10s"]), CancellationToken::new())
                .await
                .err()
                .unwrap();
        assert!(error.to_string().contains("--claim-lease"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let config = config(&["--jira-api-token", "jira-secret-value"]);
        let debug = format!("{config:?}");
        assert!(!debug.contains("xoxb-secret-value") && !debug.contains("jira-secret-value"), "{debug}");
    }
}

#[cfg(test)]
mod manifest_tests {
    /// The app manifest operators install grants exactly the scopes the notifier checks for.
    #[test]
    fn the_slack_app_manifest_lists_exactly_the_required_scopes() {
        let manifest = include_str!("../../deploy/slack/manifest.yaml");
        let settings: Vec<&str> = manifest.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        let mut in_bot = false;
        let mut scopes = Vec::new();
        for line in &settings {
            let trimmed = line.trim();
            if trimmed == "bot:" {
                in_bot = true;
            } else if in_bot && let Some(scope) = trimmed.strip_prefix("- ") {
                scopes.push(scope.to_owned());
            } else if in_bot && !trimmed.is_empty() {
                in_bot = false;
            }
        }
        let mut used = super::REQUIRED_SCOPES.to_vec();
        used.push(super::PRIVATE_CHANNEL_SCOPE);
        assert_eq!(scopes, used);
        let settings = settings.join("\n");
        assert!(
            !settings.contains("event_subscriptions") && !settings.contains("interactivity"),
            "{settings}"
        );
    }
}
