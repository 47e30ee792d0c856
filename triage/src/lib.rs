//! triage: turns raw events into desired ticket states.
//!
//! It consumes `RAW_EVENTS` with the durable consumer `triage`, hands each event to the policy of
//! its source ([`snyk_policy::SnykPolicy`], [`health_policy::HealthPolicy`]), keeps each group's
//! state in the `triage_groups` bucket and publishes a [`contracts::DesiredTicket`] on
//! `desired.<token>` only when its content changed. Malformed events are dead-lettered with the
//! reason; events a policy does not ticket are acknowledged and dropped.

pub mod engine;
pub mod feeds;

use std::path::PathBuf;
use std::sync::Arc;

use bus::consumer::{self, ConsumerOptions, Delivery, ErrorClass, Handler};
use bus::topology::{self, TRIAGE_GROUPS};
use bus::{Classify, JsonKv, Publisher, Readiness};
use catalog::Catalog;
use contracts::{PayloadKind, RawEvent};
use health_policy::{HealthPolicy, HealthSettings};
use service_kit::{Clock, HttpArgs, NatsArgs, TelemetryArgs, TopologyArgs};
use snyk_policy::{SnykPolicy, SnykSettings};
use tokio_util::sync::CancellationToken;
use triage_policy::PolicyError;

pub use engine::Engine;

/// triage's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "triage", version, about = "Turns raw events into desired ticket states.")]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Ownership catalog (TOML). Without it, everything goes to the default team.
    #[arg(long = "catalog", env = "ITK_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Owner of last resort when no catalog is given.
    #[arg(long = "default-team", env = "ITK_DEFAULT_TEAM", default_value = "platform")]
    pub default_team: String,
    /// Raw events handled at once by this process.
    #[arg(long = "concurrency", env = "TRIAGE_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    #[command(flatten)]
    pub snyk: SnykSettings,
    #[command(flatten)]
    pub feeds: feeds::FeedArgs,
    #[command(flatten)]
    pub health: HealthSettings,
    #[arg(skip)]
    pub clock: Clock,
}

/// Why triage could not process an event.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error(transparent)]
    Contract(#[from] contracts::ContractError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
}

impl Classify for TriageError {
    fn class(&self) -> ErrorClass {
        match self {
            TriageError::Contract(_) => ErrorClass::DeadLetter,
            TriageError::Policy(PolicyError::Malformed { .. }) => ErrorClass::DeadLetter,
            TriageError::Policy(PolicyError::Ignored(_)) => ErrorClass::Ack,
            TriageError::Bus(error) => error.class(),
        }
    }
}

/// Why triage could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Feeds(#[from] feeds::FeedLoadError),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error("cannot serve HTTP on {address}: {source}")]
    Http { address: std::net::SocketAddr, source: std::io::Error },
}

/// Loads the catalog named in the config, or sends everything to the default team.
pub fn load_catalog(
    path: Option<&std::path::Path>,
    default_team: &str,
) -> Result<Catalog, catalog::CatalogError> {
    match path {
        Some(path) => Catalog::load(path),
        None => Ok(Catalog::default_only(default_team)),
    }
}

/// Dispatches raw events to the policy of their source.
pub struct Triage {
    snyk: Engine<SnykPolicy>,
    health: Engine<HealthPolicy>,
    clock: Clock,
}

impl Triage {
    pub async fn new(
        js: &async_nats::jetstream::Context,
        publisher: Publisher,
        catalog: Arc<Catalog>,
        snyk: SnykSettings,
        health: HealthSettings,
        clock: Clock,
    ) -> Result<Self, bus::BusError> {
        let policy = SnykPolicy::new(catalog.clone(), snyk);
        Self::with_snyk_policy(js, publisher, catalog, policy, health, clock).await
    }

    /// As [`Triage::new`], with a Snyk policy already given its profile and feeds.
    pub async fn with_snyk_policy(
        js: &async_nats::jetstream::Context,
        publisher: Publisher,
        catalog: Arc<Catalog>,
        policy: SnykPolicy,
        health: HealthSettings,
        clock: Clock,
    ) -> Result<Self, bus::BusError> {
        Ok(Triage {
            snyk: Engine::new(policy, JsonKv::open(js, TRIAGE_GROUPS).await?, publisher.clone()),
            health: Engine::new(
                HealthPolicy::new(catalog, health),
                JsonKv::open(js, TRIAGE_GROUPS).await?,
                publisher,
            ),
            clock,
        })
    }

    /// The Snyk policy (to swap in refreshed feeds).
    pub fn snyk_policy(&self) -> &SnykPolicy {
        self.snyk.policy()
    }

    /// Processes one raw event; returns how many desired tickets it published.
    pub async fn process(&self, event: &RawEvent) -> Result<usize, TriageError> {
        let now = self.clock.now();
        match event.kind {
            PayloadKind::SnykProjectSnapshot => self.snyk.process(event, now).await,
            PayloadKind::AwsHealthEvent => self.health.process(event, now).await,
        }
    }
}

impl Handler for Triage {
    type Error = TriageError;

    async fn handle(&self, delivery: &Delivery) -> Result<(), TriageError> {
        let event = RawEvent::from_json(delivery.payload())?;
        metrics::counter!("itk_triage_events_total", "source" => event.source.as_str()).increment(1);
        let published = self.process(&event).await?;
        tracing::debug!(dedup_id = %event.dedup_id, published, "Raw event triaged.");
        Ok(())
    }
}

/// A started triage.
pub struct Running {
    /// Where `/healthz` and `/readyz` listen.
    pub http_address: std::net::SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_address: std::net::SocketAddr,
    pub health: Readiness,
    task: tokio::task::JoinHandle<Result<(), StartError>>,
}

impl Running {
    /// Waits until the consumer drained and the HTTP servers stopped (after shutdown).
    pub async fn wait(self) -> Result<(), StartError> {
        match self.task.await {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(%error, "The triage task failed.");
                Ok(())
            }
        }
    }
}

/// Runs triage until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    start(config, shutdown).await?.wait().await
}

/// Starts triage; returns once its endpoints listen and its consumer is bound.
///
/// Ready (`/readyz` 200) exactly while it can triage: connected to NATS and its consumer
/// fetching. Until then, and while NATS is away or the consumer is paused, 503 with the reason.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let catalog = Arc::new(load_catalog(config.catalog.as_deref(), &config.default_team)?);
    let profile = feeds::load_profile(&config.feeds, &config.snyk)?;
    let health = Readiness::new();
    // Registered before anything runs, so that the service is not reported ready in between
    // NATS connecting and the consumer loop starting.
    health.register(&consumer::health_component(CONSUMER_STAGE));
    let http = service_kit::http::serve_with_metrics(
        &config.http,
        service_kit::http::health_router(health.clone()),
        shutdown.clone(),
    )
    .await
    .map_err(|source| StartError::Http { address: config.http.listen, source })?;

    let client = bus::connect(&config.nats.settings("triage")).await?;
    service_kit::readiness::watch_nats(client.clone(), health.clone(), shutdown.clone());
    let js = bus::jetstream(client.clone());
    bus::ensure_topology(&js, &config.topology.config()).await?;
    let copies = feeds::FeedCopies::for_feeds(&config.feeds, &js).await?;
    let loaded = feeds::load_feeds(&config.feeds, &copies).await?;
    let publisher = Publisher::new(js.clone());
    let policy = SnykPolicy::new(catalog.clone(), config.snyk).with_profile(profile).with_feeds(loaded);
    let triage = Arc::new(
        Triage::with_snyk_policy(&js, publisher.clone(), catalog, policy, config.health, config.clock)
            .await?,
    );
    if config.feeds.any_url() {
        let (refreshing, args, stop) = (triage.clone(), config.feeds.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(args.refresh) => {}
                }
                let next = feeds::refreshed(&args, &refreshing.snyk_policy().feeds(), &copies).await;
                refreshing.snyk_policy().set_feeds(next);
            }
        });
    }
    let consumer = topology::pull_consumer(&js, topology::TRIAGE).await?;
    let options = ConsumerOptions {
        concurrency: usize::from(config.concurrency),
        ..ConsumerOptions::new(CONSUMER_STAGE)
    };
    tracing::info!(address = %http.address, metrics = %http.metrics_address, "Triage running.");
    let (http_address, metrics_address) = (http.address, http.metrics_address);
    let loop_health = health.clone();
    let task = tokio::spawn(async move {
        consumer::run(consumer, triage, publisher, options, loop_health, shutdown).await?;
        let _ = client.drain().await;
        let _ = http.task.await;
        Ok(())
    });
    Ok(Running { http_address, metrics_address, health, task })
}

/// The stage name of triage's consumer (metrics, dead letters, readiness).
pub const CONSUMER_STAGE: &str = "triage";
