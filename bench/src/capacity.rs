//! Triage on its own: the triage service draining a backlog of every finding of the org, and a
//! replay of many raw events through `triage::Triage` with a new durable consumer (what
//! `infra-tickets replay` does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer;
use bus::topology::{self, TRIAGE_GROUPS};
use bus::{Outgoing, Publisher, Readiness};
use chrono::Utc;
use contracts::RawEvent;
use local_nats::NatsServer;
use service_kit::Clock;
use snyk_policy::ProjectSnapshot;
use snyk_policy::rest::{Issue, Project};
use snyk_sim::{IssueStatus, SimOrg};
use tokio_util::sync::CancellationToken;

use crate::measure::{self, StoredRaw};
use crate::services::{self, ServiceCommand, ServiceProcess};
use crate::{BenchError, Scale, StepExt, world};

/// The triage service draining a backlog.
#[derive(Debug, Clone)]
pub struct TriageCapacity {
    pub snapshots: usize,
    pub findings: usize,
    pub health_events: usize,
    pub seconds: f64,
    pub desired_published: u64,
    pub peak_mib: f64,
}

/// Snapshots of every project with every open finding (what ingest-snyk publishes with
/// `--snyk-issue-severities info,low,medium,high,critical`), built from the simulator's own
/// REST rendering of the generated org.
pub fn all_severity_snapshots(scale: &Scale) -> Result<Vec<RawEvent>, BenchError> {
    snapshots(scale, |_| true)
}

/// Snapshots of every project with its open findings of the severities `wanted` keeps.
pub fn snapshots(scale: &Scale, wanted: impl Fn(&str) -> bool) -> Result<Vec<RawEvent>, BenchError> {
    let org = world::past_dated(SimOrg::synthetic(world::ORG_ID, scale.projects, scale.findings), Utc::now());
    let mut issues: std::collections::HashMap<&str, Vec<Issue>> = std::collections::HashMap::new();
    for issue in org.issues.iter().filter(|i| i.status == IssueStatus::Open && wanted(&i.severity)) {
        let rendered = snyk_sim::render::issue(&org, issue);
        let parsed: Issue = serde_json::from_value(rendered).step("reading a rendered Snyk issue")?;
        issues.entry(issue.project_id.as_str()).or_default().push(parsed);
    }
    let received_at = Utc::now();
    org.projects
        .iter()
        .map(|project| {
            let rendered = snyk_sim::render::project(&org, project, true, false);
            let parsed: Project = serde_json::from_value(rendered).step("reading a rendered Snyk project")?;
            let findings = issues.remove(project.id.as_str()).unwrap_or_default();
            Ok(ProjectSnapshot::listed(world::ORG_ID, parsed, findings, None).to_raw_event(
                "bench",
                received_at,
                None,
            ))
        })
        .collect()
}

async fn publish_events(
    publisher: &Publisher,
    events: &[(String, Vec<u8>, String)],
) -> Result<(), BenchError> {
    for chunk in events.chunks(500) {
        let messages = chunk.iter().map(|(subject, payload, id)| {
            Outgoing::new(subject.clone(), payload.clone()).with_id(id.clone())
        });
        publisher.publish_all(messages).await.step("publishing raw events")?;
    }
    Ok(())
}

/// Publishes the all-severity snapshots and the Health raw events of the pipeline run to a
/// fresh server, then starts the triage service and times it until its consumer is drained.
pub async fn triage_capacity(
    scale: &Scale,
    command: &ServiceCommand,
    health_raw: &[StoredRaw],
) -> Result<TriageCapacity, BenchError> {
    let nats = NatsServer::start().step("starting nats-server")?;
    let js = crate::connect(nats.url()).await?;
    let publisher = Publisher::new(js.clone());
    let workdir = tempfile::tempdir().step("creating the work directory")?;
    let catalog = workdir.path().join("catalog.toml");
    std::fs::write(&catalog, world::CATALOG).step("writing the catalog")?;

    let snapshots = all_severity_snapshots(scale)?;
    let findings = snapshots.iter().map(measure::findings_in).sum();
    let mut events: Vec<(String, Vec<u8>, String)> =
        snapshots.iter().map(|e| (e.subject(world::ORG_ID), e.to_json(), e.dedup_id.clone())).collect();
    for stored in health_raw {
        let id = stored.event.as_ref().map_or_else(|| stored.subject.clone(), |e| e.dedup_id.clone());
        events.push((stored.subject.clone(), stored.payload.to_vec(), id));
    }
    drop(snapshots);
    publish_events(&publisher, &events).await?;
    let total = events.len() as u64;
    drop(events);

    let flags = [
        services::TRIAGE,
        "--nats-url",
        nats.url(),
        "--listen",
        "127.0.0.1:0",
        "--catalog",
        &catalog.to_string_lossy(),
    ]
    .map(str::to_owned);
    let mut process = ServiceProcess::spawn(command, services::TRIAGE, &flags, workdir.path())?;
    let deadline = Instant::now() + scale.timeout;
    let mut started: Option<Instant> = None;
    let finished = loop {
        process.check_running()?;
        if Instant::now() > deadline {
            return Err(BenchError::Timeout { what: "triage draining the backlog".into() });
        }
        if let Ok(progress) = measure::progress(&js, topology::RAW_EVENTS, topology::TRIAGE).await {
            if progress.delivered > 0 && started.is_none() {
                started = Some(Instant::now());
            }
            if progress.delivered >= total && progress.drained() {
                break Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = finished.duration_since(started.unwrap_or(finished)).as_secs_f64();
    let peak_mib = process.peak_resident_mib().unwrap_or(0.0);
    process.stop().await?;
    Ok(TriageCapacity {
        snapshots: scale.projects,
        findings,
        health_events: health_raw.len(),
        seconds,
        desired_published: measure::last_sequence(&js, topology::DESIRED_TICKETS).await?,
        peak_mib,
    })
}

/// A replay of many raw events.
#[derive(Debug, Clone)]
pub struct Replay {
    pub events: u64,
    pub stored_bytes: u64,
    pub publish_seconds: f64,
    pub replay_seconds: f64,
    pub desired_published: u64,
    pub group_writes: u64,
}

/// Publishes `scale.replay_events` raw events (copies of the pipeline's raw events, each with
/// its own dedup id) to a fresh server, then replays them through `triage::Triage` with a new
/// durable consumer, 64 at once, as `infra-tickets replay` does.
pub async fn replay(scale: &Scale, templates: &[StoredRaw]) -> Result<Replay, BenchError> {
    let templates: Vec<(&str, &RawEvent)> =
        templates.iter().filter_map(|s| Some((s.subject.as_str(), s.event.as_ref()?))).collect();
    if templates.is_empty() {
        return Err(BenchError::Check("no raw events to replay".into()));
    }
    let nats = NatsServer::start().step("starting nats-server")?;
    let js = crate::connect(nats.url()).await?;
    let publisher = Publisher::new(js.clone());

    let started = Instant::now();
    let mut batch = Vec::with_capacity(5_000);
    for n in 0..scale.replay_events {
        let (subject, template) = templates[n % templates.len()];
        let mut event = template.clone();
        event.dedup_id = format!("{}~copy{}", template.dedup_id, n / templates.len());
        batch.push(Outgoing::new(subject.to_owned(), event.to_json()).with_id(event.dedup_id));
        if batch.len() == 5_000 {
            publisher.publish_all(std::mem::take(&mut batch)).await.step("publishing raw events")?;
        }
    }
    publisher.publish_all(batch).await.step("publishing raw events")?;
    let publish_seconds = started.elapsed().as_secs_f64();
    let mut raw = js.get_stream(topology::RAW_EVENTS).await.step("opening RAW_EVENTS")?;
    let stored_bytes = raw.info().await.step("reading RAW_EVENTS")?.state.bytes;

    let groups_stream = format!("KV_{TRIAGE_GROUPS}");
    let writes_before = measure::last_sequence(&js, &groups_stream).await?;
    let pull = raw
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench-replay".into()),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: 10,
            ..Default::default()
        })
        .await
        .step("creating the replay consumer")?;
    let total = pull.cached_info().num_pending;
    let triage = triage::Triage::new(
        &js,
        publisher.clone(),
        world::catalog(),
        snyk_policy::SnykSettings::default(),
        health_policy::HealthSettings::default(),
        Clock::system(),
    )
    .await
    .step("starting triage")?;
    let shutdown = CancellationToken::new();
    let options = bus::ConsumerOptions { concurrency: 64, ..bus::ConsumerOptions::new("replay") };
    let started = Instant::now();
    let run = tokio::spawn(bus::consumer::run(
        pull,
        Arc::new(triage),
        publisher,
        options,
        Readiness::new(),
        shutdown.clone(),
    ));
    let deadline = started + scale.timeout;
    loop {
        let progress = measure::progress(&js, topology::RAW_EVENTS, "bench-replay").await?;
        if progress.delivered >= total && progress.drained() {
            break;
        }
        if Instant::now() > deadline {
            shutdown.cancel();
            return Err(BenchError::Timeout { what: format!("the replay (at {progress:?})") });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replay_seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    run.await.step("joining the replay")?.step("running the replay")?;
    Ok(Replay {
        events: total,
        stored_bytes,
        publish_seconds,
        replay_seconds,
        desired_published: measure::last_sequence(&js, topology::DESIRED_TICKETS).await?,
        group_writes: measure::last_sequence(&js, &groups_stream).await? - writes_before,
    })
}
