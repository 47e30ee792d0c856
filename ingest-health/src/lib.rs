//! ingest-health: receives AWS Health events and publishes them as raw events.
//!
//! Three intakes feed one raw stream (`events.aws-health.aws_health_event.<account>_<region>`):
//!
//! * [`sqs`]: EventBridge → SQS, long-polled with the AWS SDK (standard credential chain); each
//!   message is published durably, then deleted; one that cannot be published stays queued,
//!   one that is not an AWS Health event is dead-lettered with the reason, then deleted.
//! * [`webhook`]: an EventBridge API destination posts to `POST /events/aws-health` with a
//!   shared secret header; a wrong secret gets 401, an oversized body 413, and nothing is
//!   published in either case.
//! * [`reconcile`]: the Health API (`aws-sdk-health`, any endpoint), on a schedule, by
//!   `lastUpdatedTime`, following every `nextToken`; backfills up to 90 days.
//!
//! All three produce the same [`contracts::RawEvent`] with a deduplication id made of the
//! event's identity and version ([`health_policy::dedup_id`]), so the same notice arriving by
//! two intakes is stored once.

mod config;
pub mod intake;
pub mod reconcile;
pub mod sqs;
pub mod webhook;

use std::net::SocketAddr;

use bus::topology::INTAKE_STATE;
use bus::{BusError, JsonKv, Publisher, Readiness};
use contracts::ContactMode;
use service_kit::ContactLog;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use aws_config::SdkConfig;
pub use config::{Config, ConfigError, MAX_BACKFILL, region_of_queue_url, static_sdk_config};
pub use intake::{Intake, Published};
pub use reconcile::{Reconciler, Report};
pub use sqs::SqsIntake;

/// Why ingest-health could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no intake configured: set --health-sqs-queue-url, --health-webhook-secret or --health-api-interval"
    )]
    NoIntake,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

/// A started ingest-health.
pub struct Running {
    /// Where `/healthz`, `/readyz` and the webhook listen.
    pub http_address: SocketAddr,
    /// Where `/metrics` listens.
    pub metrics_address: SocketAddr,
    pub health: Readiness,
    tasks: JoinSet<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until every intake and the HTTP server stopped (after shutdown).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
        match self.server.await {
            Ok(Err(error)) => tracing::warn!(%error, "The HTTP server stopped with an error."),
            Err(error) => tracing::warn!(%error, "The HTTP server task failed."),
            Ok(Ok(())) => {}
        }
    }
}

/// Runs ingest-health until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = start(config, shutdown).await?;
    running.wait().await;
    Ok(())
}

/// The readiness component of the API destination endpoint.
pub const WEBHOOK_COMPONENT: &str = "webhook intake";

/// Starts every configured intake and the HTTP endpoints; returns once they run.
///
/// Ready (`/readyz` 200) exactly while every configured intake can take events: NATS
/// connected, the webhook listening (when a secret is set), the SQS queue answering (when a
/// queue is set), the last Health API reconcile succeeded (when it is on). Each one that
/// cannot is named in the 503 with its reason.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, StartError> {
    let reconcile_enabled = !config.api_interval.is_zero();
    if config.sqs_queue_url.is_none() && config.webhook_secret.is_none() && !reconcile_enabled {
        return Err(StartError::NoIntake);
    }
    config.validate()?;
    let health = Readiness::new();
    // Every configured intake is registered before any runs, so that the service is not
    // reported ready while one of them has not started yet.
    if config.webhook_secret.is_some() {
        health.register(WEBHOOK_COMPONENT);
    }
    if config.sqs_queue_url.is_some() {
        health.register(sqs::COMPONENT);
    }
    if reconcile_enabled {
        health.register(reconcile::COMPONENT);
    }
    let client = bus::connect(&config.nats.settings("ingest-health")).await?;
    service_kit::readiness::watch_nats(client.clone(), health.clone(), shutdown.clone());
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &config.topology.config()).await?;
    let intake = Intake::new(Publisher::new(js.clone()), config.clock.clone());
    // Each intake records its contact per scope: SQS and the API destination are EventBridge
    // feeds (a week without any event means the rule or its forwarding is gone); the Health API
    // reconcile is polled and may be quiet in a small estate.
    let contacts = ContactLog::open(&js, contracts::Source::AwsHealth, config.clock.clone()).await?;

    let mut router = service_kit::http::health_router(health.clone());
    if let Some(secret) = &config.webhook_secret {
        router = router.merge(webhook::router(
            intake.reporting_to(contacts.scope("webhook", ContactMode::Pushed, true)),
            secret.clone(),
            config.webhook_header.clone(),
            config.webhook_max_bytes,
        ));
    }
    let server = service_kit::http::serve_with_metrics(&config.http, router, shutdown.clone())
        .await
        .map_err(|source| StartError::Listen { address: config.http.listen, source })?;
    if config.webhook_secret.is_some() {
        service_kit::readiness::intake_listening(&health, WEBHOOK_COMPONENT, shutdown.clone());
    }

    let mut tasks = JoinSet::new();
    if let Some(queue_url) = config.sqs_queue_url.clone() {
        let scope = contacts.scope(&format!("sqs {}", config.sqs_region()), ContactMode::Polled, true);
        let sqs = SqsIntake::connect(&config, queue_url, intake.reporting_to(scope)).await;
        tasks.spawn(sqs.run(health.clone(), shutdown.clone()));
    }
    if reconcile_enabled {
        let reconciler = Reconciler {
            client: Reconciler::client(&config).await,
            organization: config.api_organization,
            page_size: config.api_page_size,
            backfill: config.api_backfill,
            overlap: config.api_overlap,
            account_id: config.api_account_id.clone(),
            origin: format!("health-api:{}", config.api_region),
            intake: intake.reporting_to(contacts.scope(
                &format!("health-api {}", config.api_region),
                ContactMode::Polled,
                false,
            )),
            cursors: Some(JsonKv::open(&js, INTAKE_STATE).await?),
        };
        tasks.spawn(reconciler.run(config.api_interval, health.clone(), shutdown.clone()));
    }
    tracing::info!(
        sqs = config.sqs_queue_url.is_some(),
        webhook = config.webhook_secret.is_some(),
        reconcile = reconcile_enabled,
        sqs_region = %config.sqs_region(),
        api_region = %config.api_region,
        metrics = %server.metrics_address,
        "ingest-health started."
    );
    Ok(Running {
        http_address: server.address,
        metrics_address: server.metrics_address,
        health,
        tasks,
        server: server.task,
    })
}
