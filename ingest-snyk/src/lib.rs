//! Polls the Snyk REST API and receives Snyk webhooks; publishes one raw event per project
//! snapshot.
//!
//! * A full sync per org on start and every `--snyk-reconcile-interval`: projects
//!   (`expand=target`) and open issues at the configured severities, joined per project; one
//!   [`snyk_policy::ProjectSnapshot`] raw event per project whose snapshot changed, and one per
//!   project that disappeared ([`sync`]).
//! * Every `--snyk-poll-interval` in between, an incremental pull: issues updated since the
//!   last pull (`updated_after`, open or resolved), and a refresh of their projects.
//! * `POST /webhooks/snyk`: signed v1 webhooks trigger a refresh of their project ([`webhook`]).
//! * Pages or bodies that cannot be read go to `dlq.ingest-snyk` with the reason; the service
//!   keeps running and tries again at the next sync.
//! * `/healthz`, `/readyz` (NATS, and the last sync's access to Snyk), `/metrics`.

pub mod client;
mod config;
pub mod sync;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus::topology::{INTAKE_STATE, WEBHOOK_DELIVERIES};
use bus::{BusError, JsonKv, Publisher, Readiness};
use contracts::ContactMode;
use service_kit::ContactLog;
use service_kit::Secret;
use snyk_policy::rest::OrgResource;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{BoundAddress, Config, OrgTarget, REGIONS, RegionToken};
pub use sync::{Org, SyncError, SyncReport, Syncer};

use crate::client::{ApiError, RetryPolicy, SnykClient};

/// The stage name in dead letters and the NATS connection name.
pub const STAGE: &str = "ingest-snyk";
const SNYK_COMPONENT: &str = "snyk api";

/// Why ingest-snyk could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("cannot discover the token's Snyk orgs: {0}")]
    Discovery(#[source] ApiError),
    #[error("cannot list the orgs of Snyk group {group}: {source}")]
    GroupDiscovery { group: String, source: ApiError },
}

/// A started ingest-snyk.
pub struct Running {
    /// Where `/healthz`, `/readyz`, `/metrics` and `POST /webhooks/snyk` listen.
    pub http_address: SocketAddr,
    /// Where `/metrics` listens (`--metrics-listen`).
    pub metrics_address: SocketAddr,
    pub health: Readiness,
    syncs: Arc<Syncs>,
    poller: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Runs a full sync of every org now (tests, operators), as the schedule would.
    pub async fn sync_now(&self) -> Vec<Result<SyncReport, SyncError>> {
        self.syncs.sync_all().await
    }

    /// Runs an incremental pull of every org now, as the schedule would.
    pub async fn pull_now(&self) -> Vec<Result<SyncReport, SyncError>> {
        self.syncs.pull_all().await
    }

    /// Waits until the poller and the HTTP server stopped (after shutdown).
    pub async fn wait(self) {
        let _ = self.poller.await;
        match self.server.await {
            Ok(Err(error)) => tracing::warn!(%error, "The HTTP server stopped with an error."),
            Err(error) => tracing::warn!(%error, "The HTTP server task failed."),
            Ok(Ok(())) => {}
        }
    }
}

/// Every org's sync, with what it means for readiness and dead letters.
struct Syncs {
    syncer: Arc<Syncer>,
    orgs: Vec<Org>,
    health: Readiness,
    /// Orgs whose last sync Snyk refused (401/403), with why: one org's refusal is that org's
    /// problem; the service is unready only when Snyk refuses every org.
    refused: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// Each org's last contact with Snyk, for the silence check (Snyk publishes only changes,
    /// so an org may have no event for months: only failed or absent syncs count).
    contacts: ContactLog,
}

/// How far back an incremental pull re-reads, for clock skew between us and Snyk.
const PULL_OVERLAP: chrono::Duration = chrono::Duration::seconds(60);

impl Syncs {
    /// A full sync of every org.
    async fn sync_all(&self) -> Vec<Result<SyncReport, SyncError>> {
        let mut results = Vec::with_capacity(self.orgs.len());
        for org in &self.orgs {
            results.push(self.full(org).await);
        }
        results
    }

    /// An incremental pull of every org (a full sync of an org never synced).
    async fn pull_all(&self) -> Vec<Result<SyncReport, SyncError>> {
        let mut results = Vec::with_capacity(self.orgs.len());
        for org in &self.orgs {
            let result = match self.syncer.cursor(org).await {
                Ok(None) => self.full(org).await,
                Ok(Some(since)) => {
                    let started = self.syncer.now();
                    let result = self.syncer.pull_changes(org, since - PULL_OVERLAP).await;
                    let result = match result {
                        Ok(report) => self.syncer.set_cursor(org, started).await.map(|()| report),
                        Err(error) => Err(error),
                    };
                    self.record(org, result).await
                }
                Err(error) => self.record(org, Err(error)).await,
            };
            results.push(result);
        }
        results
    }

    async fn full(&self, org: &Org) -> Result<SyncReport, SyncError> {
        let started = self.syncer.now();
        let result = match self.syncer.sync_org(org).await {
            Ok(report) => self.syncer.set_cursor(org, started).await.map(|()| report),
            Err(error) => Err(error),
        };
        self.record(org, result).await
    }

    /// Readiness, logs and dead letters for the outcome of a sync or pull.
    async fn record(
        &self,
        org: &Org,
        result: Result<SyncReport, SyncError>,
    ) -> Result<SyncReport, SyncError> {
        let contact = self.contacts.scope(&format!("org {}", org.id), ContactMode::Polled, false);
        match &result {
            Ok(report) => {
                contact.succeeded().await;
                contact.received(report.published + report.disappeared).await;
            }
            Err(error) => contact.failed(&error.to_string()).await,
        }
        let refused = {
            let mut refused = self.refused.lock().expect("refused lock");
            match &result {
                Err(error @ SyncError::Api(ApiError::Unauthorized { .. })) => {
                    refused.insert(org.id.clone(), error.to_string());
                }
                _ => {
                    refused.remove(&org.id);
                }
            }
            metrics::gauge!("itk_snyk_org_refused", "org" => org.id.clone())
                .set(if refused.contains_key(&org.id) { 1.0 } else { 0.0 });
            refused.clone()
        };
        let named =
            || refused.iter().map(|(org, why)| format!("org {org}: {why}")).collect::<Vec<_>>().join("; ");
        if refused.len() == self.orgs.len() && !refused.is_empty() {
            self.health.set_unready(SNYK_COMPONENT, named());
        } else if !refused.is_empty() {
            // The other orgs sync: the service stays ready, and says which org is refused.
            self.health.set_degraded(
                SNYK_COMPONENT,
                format!("{} of {} orgs refused: {}", refused.len(), self.orgs.len(), named()),
            );
        } else if result.is_ok() {
            self.health.set_ready(SNYK_COMPONENT);
        }
        match &result {
            Ok(_) => {}
            Err(SyncError::Api(ApiError::Malformed { url, reason, body })) => {
                tracing::error!(org = %org.id, %url, %reason, "A Snyk page is malformed; dead-lettered, sync skipped.");
                let reason = format!("malformed Snyk page from {url}: {reason}");
                if let Err(error) = sync::dead_letter(self.syncer.publisher(), body, &reason, url).await {
                    tracing::error!(%error, "Could not store a dead letter.");
                }
            }
            Err(error @ SyncError::Api(ApiError::Unauthorized { .. })) => {
                tracing::error!(org = %org.id, %error, refused_orgs = refused.len(), orgs = self.orgs.len(),
                    "Snyk refused the token for this org; the other orgs go on.");
            }
            Err(error) => {
                tracing::error!(org = %org.id, %error, "Snyk sync failed; next attempt at the next interval.")
            }
        }
        result
    }
}

/// Runs ingest-snyk until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.wait().await;
    Ok(())
}

/// Connects, serves HTTP and starts the poller; returns once they run.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    config
        .http
        .check_route_body_limit("--snyk-webhook-max-bytes (SNYK_WEBHOOK_MAX_BYTES)", config.webhook_max_bytes)
        .map_err(StartError::Config)?;
    let health = Readiness::new();
    health.register("nats");
    health.register(SNYK_COMPONENT);
    let client = bus::connect(&config.nats.settings(STAGE)).await?;
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &config.topology.config()).await?;
    health.set_ready("nats");
    let publisher = Publisher::new(js.clone());
    let intake_state = JsonKv::<serde_json::Value>::open(&js, INTAKE_STATE).await?.store().clone();
    let client_with = |token: Secret| {
        SnykClient::new(
            token,
            &config.api_version,
            config.page_limit,
            config.rate_limit,
            RetryPolicy { max_attempts: config.max_attempts, backoff: config.backoff },
        )
        .with_max_response_bytes(config.max_response_bytes)
    };
    // One client, with its own rate limit, per token.
    let mut syncer = Syncer::new(
        client_with(config.token.clone()),
        publisher,
        intake_state,
        config.clock.clone(),
        config.issue_severities.clone(),
    )
    .with_issue_budget(config.issue_budget_bytes);
    for region in config.region_tokens().map_err(StartError::Config)? {
        syncer = syncer.with_client_for(&region.base_url, client_with(region.token.clone()));
    }
    let syncer = Arc::new(syncer);
    let mut orgs: Vec<Org> =
        config.orgs.iter().map(|o| Org { id: o.id.clone(), base_url: config.base_url(o) }).collect();
    if config.discover_orgs {
        let base_url = config.api_url.trim_end_matches('/').to_owned();
        let discovered = syncer.client().orgs(&base_url).await.map_err(StartError::Discovery)?;
        add_discovered(&mut orgs, discovered.items, &base_url, &config, "the token");
        tracing::info!(orgs = orgs.len(), "Snyk orgs discovered from the token.");
    }
    for group in &config.groups {
        let base_url = config.base_url(group);
        let discovered = syncer
            .client_for_url(&base_url)
            .group_orgs(&base_url, &group.id)
            .await
            .map_err(|error| StartError::GroupDiscovery { group: group.id.clone(), source: error })?;
        let before = orgs.len();
        add_discovered(&mut orgs, discovered.items, &base_url, &config, &format!("group {}", group.id));
        tracing::info!(group = %group.id, orgs = orgs.len() - before, "Snyk orgs discovered from the group.");
    }

    let mut router = service_kit::http::health_router(health.clone());
    if let Some(secret) = &config.webhook_secret {
        let state = webhook::WebhookState {
            secret: secret.clone(),
            syncer: syncer.clone(),
            orgs: orgs.clone(),
            deliveries: JsonKv::open(&js, WEBHOOK_DELIVERIES).await?,
            coalescer: webhook::Coalescer::new(config.webhook_coalesce),
        };
        let max_bytes = usize::try_from(config.webhook_max_bytes).unwrap_or(usize::MAX);
        router = router.merge(webhook::router(Arc::new(state), max_bytes));
    }
    let server = service_kit::http::serve_with_metrics(&config.http, router, shutdown.clone())
        .await
        .map_err(|source| StartError::Listen { address: config.http.listen, source })?;
    config.bound.set(server.address);

    let contacts = ContactLog::open(&js, contracts::Source::Snyk, config.clock.clone()).await?;
    let syncs =
        Arc::new(Syncs { syncer, orgs, health: health.clone(), refused: Default::default(), contacts });
    let poller =
        tokio::spawn(schedule(syncs.clone(), config.reconcile_interval, config.poll_interval, shutdown));
    tracing::info!(
        address = %server.address,
        orgs = syncs.orgs.len(),
        version = %config.api_version,
        webhook = config.webhook_secret.is_some(),
        "ingest-snyk started."
    );
    Ok(Running {
        http_address: server.address,
        metrics_address: server.metrics_address,
        health,
        syncs,
        poller,
        server: server.task,
    })
}

/// A full sync at start and every `reconcile`, and incremental pulls every `poll` in between;
/// a zero interval turns either off.
async fn schedule(syncs: Arc<Syncs>, reconcile: Duration, poll: Duration, shutdown: CancellationToken) {
    if reconcile.is_zero() && poll.is_zero() {
        shutdown.cancelled().await;
        return;
    }
    let mut next_full = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        let full_due = !reconcile.is_zero() && now >= next_full;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                if full_due {
                    syncs.sync_all().await;
                } else {
                    syncs.pull_all().await;
                }
            } => {}
        }
        if full_due {
            next_full = tokio::time::Instant::now() + reconcile;
        }
        let after_poll = tokio::time::Instant::now() + poll;
        let wake = match (reconcile.is_zero(), poll.is_zero()) {
            (false, false) => next_full.min(after_poll),
            (false, true) => next_full,
            (true, _) => after_poll,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Adds the discovered orgs that are UUIDs and pass the include/exclude lists, once each;
/// `from` says where they were found (the token, or which group) in the log.
fn add_discovered(
    orgs: &mut Vec<Org>,
    discovered: Vec<OrgResource>,
    base_url: &str,
    config: &Config,
    from: &str,
) {
    for org in discovered {
        let id = org.id.to_ascii_lowercase();
        // The id goes into request paths and logs: only an org id is one.
        if !config::is_uuid(&id) {
            tracing::warn!(org = %id.escape_debug(), from, "A discovered Snyk org id is not a UUID; left out.");
            continue;
        }
        if !config.keeps_discovered(&id, &org.attributes.slug) {
            tracing::info!(org = %id, from, slug = %org.attributes.slug.escape_debug(), "Discovered Snyk org left out by the include/exclude lists.");
            continue;
        }
        if !orgs.iter().any(|o| o.id == id) {
            orgs.push(Org { id, base_url: base_url.to_owned() });
        }
    }
}
