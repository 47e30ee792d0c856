//! Reconciles desired ticket states with JIRA Cloud: exactly one ticket per group key.
//!
//! * [`client`]: the JIRA Cloud REST v3 client (also used by the notifier's reminder scan).
//! * [`mapping`]: pure mapping of a desired ticket to JIRA fields, ADF and edits.
//! * [`ledger`]: the `jira_ledger` record per group key.
//! * [`workflow`]: per-project workflows: the statuses to reach and how, people's decisions.
//! * [`writer`]: the reconcile (claim, search, create or adopt, edit, transition) and the
//!   duplicate sweep.
//!
//! [`run`] consumes `DESIRED_TICKETS` with the durable consumer `jira-writer`, publishes a
//! [`contracts::TicketChange`] after every JIRA write, serves `/healthz`, `/readyz` (unready
//! while paused on 401/403) and `/metrics`, and sweeps duplicates periodically: a duplicate is
//! closed, linked ("duplicates" the kept one) and announced once with a `duplicate_closed`
//! change naming the ticket that survives (the ledger records it, so no later sweep repeats it).
//! At start it reads the team field's type and looks up, once, the ids of the teams (JIRA's Team
//! field) or people (user picker) the catalog gives by name.

/// The JIRA client lives in `crates/jira` (the notifier uses it too).
pub use jira as client;
pub mod config;
pub mod ledger;
pub mod mapping;
pub mod webhook;
pub mod workflow;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use bus::topology::{self, JIRA_LEDGER, JIRA_WRITER};
use bus::{ConsumerOptions, JsonKv, Publisher, Readiness};
use catalog::Catalog;
use tokio_util::sync::CancellationToken;

pub use client::{JiraClient, JiraClientConfig, JiraError};
pub use config::{Config, Hooks};
pub use writer::{SweepReport, Writer, WriterError, WriterSettings};

/// The JIRA client the config describes.
pub fn client_from(config: &Config) -> Result<JiraClient, JiraError> {
    let mut client =
        JiraClientConfig::new(&config.jira_url, &config.jira_email, config.jira_api_token.clone());
    client.requests_per_second = config.jira_requests_per_second;
    client.timeout = config.jira_timeout;
    client.max_attempts = config.jira_max_attempts;
    client.backoff_base = config.jira_backoff;
    client.auth_pause = config.jira_auth_pause;
    client.outage_pause = config.jira_outage_pause;
    JiraClient::new(client)
}

fn settings_from(config: &Config) -> Result<WriterSettings, WriterError> {
    if config.jira_project.trim().is_empty() {
        return Err(WriterError::Config("--jira-project (ITK_JIRA_PROJECT) is empty".into()));
    }
    if config.jira_labels.iter().all(|l| l.trim().is_empty()) {
        return Err(WriterError::Config("--jira-labels (ITK_JIRA_LABELS) names no label".into()));
    }
    if let Some(field) = &config.jira_team_field
        && !field.starts_with("customfield_")
    {
        return Err(WriterError::Config(format!(
            "--jira-team-field (ITK_JIRA_TEAM_FIELD) {field:?} is not a custom field id like customfield_10050"
        )));
    }
    if config.jira_linked_status.trim().is_empty() {
        return Err(WriterError::Config("--jira-linked-status (ITK_JIRA_LINKED_STATUS) is empty".into()));
    }
    let workflows = workflow::Workflows::from_specs(&config.jira_workflows)
        .map_err(|e| WriterError::Config(format!("--jira-workflow (ITK_JIRA_WORKFLOWS): {e}")))?;
    let instance = config
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("jira-writer-{}-{}", std::process::id(), rand::random::<u32>()));
    Ok(WriterSettings {
        mapping: mapping::MappingSettings {
            default_project: config.jira_project.clone(),
            issue_type: config.jira_issue_type.clone(),
            lane_priorities: config.jira_lane_priorities.clone(),
            labels: config
                .jira_labels
                .iter()
                .map(|l| mapping::clean_label(l))
                .filter(|l| !l.is_empty())
                .collect(),
            team_field: config.jira_team_field.clone(),
        },
        instance,
        workflows,
        team_field_kind: mapping::TeamFieldKind::default(),
        reopen_closed_with_open_work: config.reopen_closed_with_open_work,
        link_types: config
            .jira_link_types
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        linked_status: config.jira_linked_status.trim().to_owned(),
        consistency_window: config.consistency_window,
        claim_recheck: config.claim_recheck,
        reopen_window: config.reopen_window,
        // Duplicates come from creates inside the window; look back past it and one sweep.
        sweep_lookback: config.consistency_window * 2 + config.sweep_every + Duration::from_secs(60),
        dry_run: config.dry_run,
    })
}

/// Runs the jira-writer until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), WriterError> {
    let (writer, js, publisher) = start_writer(&config, &shutdown).await?;
    let writer = Arc::new(writer);
    let health = Readiness::new();
    // Everything below stops on shutdown, or at once on a (test) crash.
    let stop = shutdown.child_token();
    let mut router = service_kit::http::health_router(health.clone());
    let syncing_links = !writer.settings().link_types.is_empty();
    if let (true, Some(secret)) = (syncing_links, &config.jira_webhook_secret) {
        router = router.merge(webhook::router(writer.clone(), secret.clone()));
    }
    let server = service_kit::http::serve_with_metrics(&config.http, router, stop.clone())
        .await
        .map_err(WriterError::Http)?;
    let _ = config.hooks.listening.set(server.address);
    let link_scanner = (syncing_links && config.jira_webhook_secret.is_none())
        .then(|| tokio::spawn(link_scan_loop(writer.clone(), config.jira_link_scan_every, stop.clone())));
    tracing::info!(
        instance = %writer.settings().instance,
        dry_run = writer.settings().dry_run,
        window_secs = writer.settings().consistency_window.as_secs(),
        link_sync = if !syncing_links { "off" } else if link_scanner.is_some() { "search" } else { "webhook" },
        "jira-writer starting."
    );
    // A lost ledger is rebuilt from JIRA before any message could file a second ticket.
    health.register("ledger");
    writer.recover_lost_ledger(&stop).await?;
    health.set_ready("ledger");
    let ledger_watch = tokio::spawn(ledger_watch_loop(
        writer.clone(),
        js.clone(),
        config.topology.config(),
        health.clone(),
        stop.clone(),
    ));
    let sweeper = tokio::spawn(sweep_loop(writer.clone(), config.sweep_every, stop.clone()));
    let consumer = topology::pull_consumer(&js, JIRA_WRITER).await?;
    let mut options = ConsumerOptions::new(JIRA_WRITER);
    options.concurrency = usize::from(config.concurrency);
    let consuming = bus::consumer::run(consumer, writer, publisher, options, health, stop.clone());
    let result = tokio::select! {
        result = consuming => result.map_err(WriterError::from),
        crashed = config::simulated_crash(&config.hooks) => Err(crashed),
    };
    stop.cancel();
    sweeper.abort();
    ledger_watch.abort();
    if let Some(scanner) = link_scanner {
        scanner.abort();
    }
    let _ = server.task.await;
    result
}

/// Reads the team field's type from `GET /rest/api/3/field`; a field that does not fit fails the
/// start with a clear message. While JIRA cannot be reached, keeps trying (until shutdown).
async fn team_field_kind(
    client: &JiraClient,
    field: &str,
    shutdown: &CancellationToken,
) -> Result<mapping::TeamFieldKind, WriterError> {
    loop {
        match client.fields().await {
            Ok(fields) => {
                return mapping::team_field_kind(&fields, field).map_err(|e| {
                    WriterError::Config(format!("--jira-team-field (ITK_JIRA_TEAM_FIELD): {e}"))
                });
            }
            Err(error) if matches!(error, JiraError::Unavailable { .. } | JiraError::RateLimited { .. }) => {
                tracing::warn!(%error, "Cannot read the site's fields yet; trying again.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.cancelled() => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Replaces the catalog's team field values that name a team (JIRA's Team field) or a person
/// (user picker) with the id JIRA takes, looked up once here: the teams of the organisation in one
/// listing, each person once. A name JIRA does not know fails the start, naming the catalog team.
async fn resolve_team_values(
    client: &JiraClient,
    catalog: &mut Catalog,
    kind: mapping::TeamFieldKind,
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<(), WriterError> {
    use mapping::TeamFieldKind;
    let to_resolve: Vec<(String, String)> = catalog
        .teams
        .iter()
        .filter_map(|(team, entry)| entry.jira_team_field.clone().map(|value| (team.clone(), value)))
        .filter(|(_, value)| match kind {
            TeamFieldKind::Team => !mapping::is_team_id(value),
            TeamFieldKind::UserPicker => !mapping::is_account_id(value),
            TeamFieldKind::SingleSelect | TeamFieldKind::MultiSelect => false,
        })
        .collect();
    if to_resolve.is_empty() {
        return Ok(());
    }
    let fail = |team: &str, value: &str, why: String| {
        WriterError::Config(format!("catalog team {team}: jira_team_field {value:?}: {why}"))
    };
    let mut resolved: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut teams: Option<Vec<(String, String, String)>> = None;
    for (team, value) in &to_resolve {
        if resolved.contains_key(value) {
            continue;
        }
        let id = match kind {
            TeamFieldKind::Team => {
                let Some(org) = config.jira_org_id.as_deref().filter(|o| !o.trim().is_empty()) else {
                    return Err(fail(
                        team,
                        value,
                        "a team's name, not its id: give --jira-org-id (ITK_JIRA_ORG_ID) so the name can be \
                         looked up, or put the team's id in the catalog"
                            .into(),
                    ));
                };
                if teams.is_none() {
                    let site = config.jira_site_id.as_deref();
                    teams =
                        Some(patiently(shutdown, "list teams", || client.org_teams(org.trim(), site)).await?);
                }
                mapping::pick_team(teams.as_deref().unwrap_or_default(), value)
                    .map_err(|why| fail(team, value, format!("{why} in organisation {org}")))?
            }
            _ => {
                let users = patiently(shutdown, "find users", || client.find_users(value)).await?;
                mapping::pick_user(&users, value).map_err(|why| fail(team, value, why))?
            }
        };
        tracing::info!(team = %team, value = %value, id = %id, "Team field value looked up in JIRA.");
        resolved.insert(value.clone(), id);
    }
    for entry in catalog.teams.values_mut() {
        if let Some(id) = entry.jira_team_field.as_ref().and_then(|v| resolved.get(v)) {
            entry.jira_team_field = Some(id.clone());
        }
    }
    Ok(())
}

/// Calls JIRA until it answers, while it is unavailable or slowing us down (until shutdown).
async fn patiently<T, F, Fut>(shutdown: &CancellationToken, what: &str, mut call: F) -> Result<T, WriterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, JiraError>>,
{
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if matches!(error, JiraError::Unavailable { .. } | JiraError::RateLimited { .. }) => {
                tracing::warn!(%error, what, "JIRA cannot answer yet; trying again.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.cancelled() => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The writer as configured: the team field's type and the catalog's team values read from
/// JIRA, NATS connected, the topology made or checked.
async fn start_writer(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<(Writer, async_nats::jetstream::Context, Publisher), WriterError> {
    let mut settings = settings_from(config)?;
    let mut catalog = match &config.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default_only("unowned"),
    };
    let client = client_from(config)?;
    if let Some(field) = &settings.mapping.team_field {
        settings.team_field_kind = team_field_kind(&client, field, shutdown).await?;
        tracing::info!(field = %field, kind = ?settings.team_field_kind, "Team field type read from JIRA.");
        resolve_team_values(&client, &mut catalog, settings.team_field_kind, config, shutdown).await?;
    }
    let nats = bus::connect(&config.nats.settings("jira-writer")).await?;
    let js = bus::jetstream(nats);
    bus::ensure_topology(&js, &config.topology.config()).await?;
    let ledger = JsonKv::open(&js, JIRA_LEDGER).await?;
    let publisher = Publisher::new(js.clone());
    let writer = Writer::new(
        client,
        ledger,
        publisher.clone(),
        catalog,
        settings,
        config.clock.clone(),
        config.hooks.clone(),
    );
    Ok((writer, js, publisher))
}

/// `infra-tickets ledger rebuild`: records, for every ticket with the base label whose group
/// key has no ledger record, its issue from JIRA, then marks the ledger complete. Records that
/// exist are left as they are, so it is safe to run at any time, beside running writers.
pub async fn rebuild_ledger(config: Config) -> Result<writer::RecoveryReport, WriterError> {
    let shutdown = CancellationToken::new();
    let (writer, _, _) = start_writer(&config, &shutdown).await?;
    writer.rebuild_and_mark_complete().await
}

/// How often the running writer checks that its ledger is still whole.
const LEDGER_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Notices a ledger lost while running (its bucket deleted, or recreated empty when the NATS
/// store was lost): makes the bucket again where the topology mode allows it, then rebuilds the
/// records from JIRA. Meanwhile creates pause ([`WriterError::LedgerIncomplete`]), so none files
/// a second ticket, and `/readyz` says why.
async fn ledger_watch_loop(
    writer: Arc<Writer>,
    js: async_nats::jetstream::Context,
    topology: bus::topology::TopologyConfig,
    health: Readiness,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LEDGER_CHECK_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        match writer.ledger_is_complete().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, "The ledger bucket cannot be read; making the topology again.");
                health.set_unready("ledger", "the ledger bucket cannot be read");
                if let Err(error) = bus::ensure_topology(&js, &topology).await {
                    tracing::error!(%error, "The ledger bucket could not be made again (run the topology job).");
                }
                continue;
            }
        }
        tracing::error!("The ledger lost its completeness marker while running; rebuilding it from JIRA.");
        health.set_unready("ledger", "rebuilding the lost ledger from JIRA");
        match writer.recover_lost_ledger(&stop).await {
            Ok(_) => health.set_ready("ledger"),
            Err(error) => {
                tracing::error!(%error, "The ledger cannot be rebuilt from JIRA; creates stay paused.");
            }
        }
    }
}

async fn sweep_loop(writer: Arc<Writer>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match writer.sweep_once().await {
            Ok(report) if !report.closed.is_empty() => {
                tracing::warn!(
                    closed = report.closed.len(),
                    scanned = report.scanned,
                    "Sweep closed duplicates."
                );
            }
            Ok(report) => tracing::debug!(scanned = report.scanned, "Sweep found no duplicates."),
            Err(error) => tracing::warn!(%error, "Sweep failed; will try again."),
        }
    }
}

async fn link_scan_loop(writer: Arc<Writer>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match writer.scan_links().await {
            Ok(outcomes) => {
                let moved =
                    outcomes.iter().filter(|o| matches!(o, writer::LinkOutcome::Moved { .. })).count();
                tracing::debug!(links = outcomes.len(), moved, "Link scan done.");
            }
            Err(error) => {
                tracing::warn!(error = %bus::safe::header_value(&error.to_string()), "Link scan failed; will try again.");
            }
        }
    }
}
