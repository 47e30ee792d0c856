//! The end-to-end benchmark of the whole pipeline (see docs/benchmarks.md, "Whole pipeline").
//!
//! 1. **Large sync**: NATS, the four simulators with a generated org (Snyk projects and
//!    findings, AWS Health events; JIRA answering after a set latency) and the five services as
//!    their own processes. Measures the latency from each group's first raw event to its JIRA
//!    ticket and Slack message, the API calls per ticket and each service's peak memory.
//! 2. **New events one at a time** into the settled pipeline: the steady-state latency.
//! 3. **No-change resync**: ingest-snyk and ingest-health restarted (a full Snyk sync): calls
//!    made, events and tickets changed.
//! 4. **Triage capacity**: the triage service alone draining snapshots with every finding.
//! 5. **Replay** of many raw events through `triage::Triage` with a new durable consumer.
//!
//! `--snyk-memory` instead measures ingest-snyk alone on a full sync ([`snyk_memory`]).

pub mod capacity;
pub mod dispatch;
pub mod measure;
pub mod pipeline;
pub mod report;
pub mod services;
pub mod snyk_memory;
pub mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use report::Report;

/// Why the benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{step}: {source}")]
    Step {
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("timed out waiting for {what}")]
    Timeout { what: String },
    #[error("{0}")]
    Check(String),
}

/// Names the step an error comes from.
pub trait StepExt<T> {
    fn step(self, step: &'static str) -> Result<T, BenchError>;
}

impl<T, E: Into<Box<dyn std::error::Error + Send + Sync>>> StepExt<T> for Result<T, E> {
    fn step(self, step: &'static str) -> Result<T, BenchError> {
        self.map_err(|e| BenchError::Step { step, source: e.into() })
    }
}

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Scale {
    pub projects: usize,
    pub findings: usize,
    pub health_events: usize,
    /// New tickets' worth of events sent one at a time into the settled pipeline.
    pub trickle: usize,
    pub trickle_every: Duration,
    pub replay_events: usize,
    pub jira_latency: Duration,
    /// notifier's `--channel-interval`.
    pub slack_channel_interval: String,
    /// Longest wait for any one phase.
    pub timeout: Duration,
}

impl Scale {
    /// The scale: 5,000 projects, 250,000 findings, 2,000 Health events, 1,000,000 raw
    /// events replayed, JIRA answering in 50 ms.
    pub fn full() -> Self {
        Scale {
            projects: 5_000,
            findings: 250_000,
            health_events: 2_000,
            trickle: 200,
            trickle_every: Duration::from_millis(200),
            replay_events: 1_000_000,
            jira_latency: Duration::from_millis(50),
            slack_channel_interval: "10ms".into(),
            timeout: Duration::from_secs(900),
        }
    }

    /// A smoke run for CI (about half a minute in a debug build).
    pub fn short() -> Self {
        Scale {
            projects: 200,
            findings: 4_000,
            health_events: 40,
            trickle: 10,
            trickle_every: Duration::from_millis(100),
            replay_events: 10_000,
            jira_latency: Duration::from_millis(50),
            slack_channel_interval: "10ms".into(),
            timeout: Duration::from_secs(180),
        }
    }
}

/// Connects to NATS and makes sure the topology exists.
pub async fn connect(url: &str) -> Result<async_nats::jetstream::Context, BenchError> {
    let client = bus::connect(&bus::NatsConnection::unauthenticated(url, "pipeline-bench"))
        .await
        .step("connecting to NATS")?;
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &bus::topology::TopologyConfig::default())
        .await
        .step("creating the topology")?;
    Ok(js)
}

/// Runs every phase, starting each service process with `services`.
pub async fn run(scale: Scale, services: services::ServiceCommand) -> Result<Report, BenchError> {
    let mut pipeline = pipeline::Pipeline::start(&scale, &services).await?;
    tracing::info!(logs = %pipeline.logs().display(), "Services log here.");

    // 1. The large sync.
    let started = Instant::now();
    let since = chrono::Utc::now();
    pipeline.start_services()?;
    let deadline = started + scale.timeout;
    let min_raw = (scale.projects + scale.health_events) as u64;
    let large = pipeline.settle_complete(min_raw, 1, since, deadline).await?;
    let large_seconds = report::settled_seconds(&pipeline.sims, since);
    let large_peaks = pipeline.peaks();
    let large_jira_calls = report::jira_calls_by_kind(&pipeline.sims.jira, 0);
    let large_snyk_calls = report::snyk_calls_by_kind(&pipeline.sims.snyk, 0);
    tracing::info!(seconds = large_seconds, "Large sync settled.");

    // 2. New events one at a time; waits (up to a minute after the last) for every ticket they make.
    let trickle_started = pipeline.trickle(scale.trickle, scale.trickle_every).await?;
    let before_trickle = large.counters;
    let wait_until = Instant::now() + Duration::from_secs(60);
    let trickle = loop {
        let outcome = pipeline
            .settle_complete(large.counters.raw + 1, 1, trickle_started, Instant::now() + scale.timeout)
            .await?;
        if outcome.latencies.to_jira_ms.len() >= scale.trickle || Instant::now() > wait_until {
            break outcome;
        }
    };
    let mut trickle_sources = BTreeMap::new();
    for (group, _) in trickle.evidence.by_group.iter().filter(|(_, first)| **first >= trickle_started) {
        *trickle_sources.entry(group.split('/').next().unwrap_or("").to_owned()).or_insert(0) += 1;
    }
    tracing::info!(?trickle_sources, "New events settled.");

    // 3. A no-change resync: the intakes restart (a full Snyk sync and a Health reconcile).
    let before_resync = trickle.counters;
    pipeline.restart_service(services::INGEST_SNYK).await?;
    pipeline.restart_service(services::INGEST_HEALTH).await?;
    // A full sync lists every project and every open critical finding, 100 a page.
    let full_sync_pages = scale.projects.div_ceil(100) + pipeline.sims.open_critical_findings().div_ceil(100);
    let min_snyk_calls = before_resync.snyk_calls + full_sync_pages;
    let after_resync = pipeline
        .settle(before_resync.raw, min_snyk_calls, Duration::from_secs(3), Instant::now() + scale.timeout)
        .await?;
    let resync = after_resync.minus(&before_resync);
    let jira_calls_by_kind = report::jira_calls_by_kind(&pipeline.sims.jira, before_resync.jira_calls);
    let resync_snyk_calls = report::snyk_calls_by_kind(&pipeline.sims.snyk, before_resync.snyk_calls);
    let final_peaks = pipeline.peaks();
    let dead_letters = bus::dead_letter::list(&pipeline.js).await.step("listing dead letters")?.len();
    let health_raw: Vec<measure::StoredRaw> = large
        .raw
        .into_iter()
        .filter(|r| r.event.as_ref().is_some_and(|e| e.kind == contracts::PayloadKind::AwsHealthEvent))
        .collect();
    let templates = measure::raw_events(&pipeline.js).await?;
    pipeline.stop().await?;
    tracing::info!("Resync measured; the triage capacity next.");

    // 4. Triage on its own, every finding.
    let capacity = capacity::triage_capacity(&scale, &services, &health_raw).await?;
    tracing::info!(seconds = capacity.seconds, "Triage capacity measured; the replay next.");

    // 5. The replay.
    let replay = capacity::replay(&scale, &templates).await?;

    Ok(Report {
        trickle_expected: scale.trickle,
        scale,
        large_seconds,
        large_counters: large.counters,
        large_evidence: large.evidence,
        large_latencies: large.latencies,
        large_tickets: large.tickets,
        large_peaks,
        large_jira_calls,
        large_snyk_calls,
        trickle_sources,
        trickle_counters: trickle.counters.minus(&before_trickle),
        trickle_latencies: trickle.latencies,
        resync,
        resync_jira_calls: jira_calls_by_kind,
        resync_snyk_calls,
        final_peaks,
        dead_letters,
        capacity,
        replay,
    })
}
