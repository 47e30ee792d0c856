//! ingest-snyk's own peak memory on a full sync (issue 15, point 9): NATS, the Snyk simulator
//! with the generated org, and ingest-snyk alone as its own process, so that its `VmHWM` is its
//! own (the simulator, which holds the whole org, is this process, not that one).
//!
//! `pipeline-bench --snyk-memory [--snyk-severities info,low,medium,high,critical]`: a first
//! full sync into an empty intake state, then a restart of the process (its start is a full
//! sync of the unchanged org, which publishes nothing). Each process's peak is read from
//! `/proc/<pid>/status` just before it is stopped.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bus::topology;
use chrono::Utc;
use local_nats::NatsServer;
use snyk_sim::{SimOrg, SnykSim};

use crate::services::{INGEST_SNYK, ServiceCommand, ServiceProcess};
use crate::{BenchError, StepExt, world};

/// What one measured sync did.
#[derive(Debug, Clone)]
pub struct SyncMeasure {
    /// ingest-snyk's peak resident memory (`VmHWM`), in MiB.
    pub peak_mib: f64,
    pub seconds: f64,
    pub snyk_calls: usize,
    pub published: u64,
}

/// Both syncs of the run.
#[derive(Debug, Clone)]
pub struct SnykMemoryReport {
    pub projects: usize,
    pub findings: usize,
    pub severities: String,
    /// Open findings at the fetched severities (what the sync lists).
    pub fetched_findings: usize,
    pub first: SyncMeasure,
    pub unchanged: SyncMeasure,
}

impl std::fmt::Display for SnykMemoryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest-snyk alone: {} projects, {} findings, --snyk-issue-severities {} ({} open findings fetched)",
            self.projects, self.findings, self.severities, self.fetched_findings
        )?;
        writeln!(f, "| sync | peak RSS (VmHWM) | time | Snyk calls | raw events published |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        for (name, m) in [("first", &self.first), ("unchanged resync", &self.unchanged)] {
            writeln!(
                f,
                "| {name} | {:.1} MiB | {:.1} s | {} | {} |",
                m.peak_mib, m.seconds, m.snyk_calls, m.published
            )?;
        }
        Ok(())
    }
}

/// The goal of issue 15, point 9: ingest-snyk's peak on a full sync of the whole org.
pub const PEAK_GOAL_MIB: f64 = 64.0;

impl SnykMemoryReport {
    /// What misses the goal (empty when both syncs stayed under it and the first published
    /// every project).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, m) in [("first sync", &self.first), ("unchanged resync", &self.unchanged)] {
            if m.peak_mib >= PEAK_GOAL_MIB {
                problems.push(format!("{name}: peak {:.1} MiB, not under {PEAK_GOAL_MIB} MiB", m.peak_mib));
            }
        }
        if self.first.published != self.projects as u64 {
            problems.push(format!(
                "the first sync published {} of {} projects",
                self.first.published, self.projects
            ));
        }
        if self.unchanged.published != 0 {
            problems.push(format!("the unchanged resync published {}", self.unchanged.published));
        }
        problems
    }
}

/// What runs ingest-snyk.
#[derive(Debug, Clone)]
pub enum IngestProgram {
    /// A benchmark binary (`pipeline-bench service ingest-snyk …`, glibc's allocator).
    Bench(ServiceCommand),
    /// The `ingest-snyk` binary itself, as deployed (its own allocator).
    Binary(std::path::PathBuf),
}

/// Runs the two syncs of an org of `projects` projects and `findings` findings, fetching
/// `severities`.
pub async fn run(
    projects: usize,
    findings: usize,
    severities: &str,
    program: &IngestProgram,
    timeout: Duration,
) -> Result<SnykMemoryReport, BenchError> {
    let nats = NatsServer::start().step("starting nats-server")?;
    let js = crate::connect(nats.url()).await?;
    let workdir = tempfile::tempdir().step("creating the work directory")?;
    let org = world::past_dated(SimOrg::synthetic(world::ORG_ID, projects, findings), Utc::now());
    let wanted: Vec<&str> = severities.split(',').map(str::trim).collect();
    let fetched_findings = org
        .issues
        .iter()
        .filter(|i| wanted.contains(&i.severity.as_str()) && i.status == snyk_sim::IssueStatus::Open)
        .count();
    let snyk = SnykSim::start_with(world::SNYK_TOKEN, vec![org]).await.step("starting the Snyk simulator")?;
    snyk.record_responses(false);
    let flags: Vec<String> = [
        INGEST_SNYK,
        "--nats-url",
        nats.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-org",
        &format!("{}@{}", world::ORG_ID, snyk.base_url()),
        "--snyk-token",
        world::SNYK_TOKEN,
        "--snyk-issue-severities",
        severities,
        // One full sync at start, no incremental pulls: the peak is the sync's.
        "--snyk-reconcile-interval",
        "24h",
        "--snyk-poll-interval",
        "0s",
    ]
    .map(str::to_owned)
    .to_vec();
    let (command, flags) = match program {
        IngestProgram::Bench(command) => (command.clone(), flags),
        IngestProgram::Binary(path) => (ServiceCommand::binary(path), flags[1..].to_vec()),
    };
    let mut measures = Vec::new();
    for _ in 0..2 {
        let calls_before = snyk.requests().len();
        let raw_before = crate::measure::last_sequence(&js, topology::RAW_EVENTS).await?;
        let synced_before = cursor_revision(&js).await?;
        let started = Instant::now();
        let mut process = ServiceProcess::spawn(&command, INGEST_SNYK, &flags, workdir.path())?;
        // The cursor is written when a full sync succeeded.
        loop {
            process.check_running()?;
            if cursor_revision(&js).await? != synced_before {
                break;
            }
            if started.elapsed() > timeout {
                return Err(BenchError::Timeout { what: "ingest-snyk's full sync".into() });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let peak_mib = process
            .peak_resident_mib()
            .ok_or_else(|| BenchError::Check("cannot read ingest-snyk's VmHWM".into()))?;
        process.stop().await?;
        measures.push(SyncMeasure {
            peak_mib,
            seconds,
            snyk_calls: snyk.requests().len() - calls_before,
            published: crate::measure::last_sequence(&js, topology::RAW_EVENTS).await? - raw_before,
        });
        tracing::info!(peak_mib, seconds, "ingest-snyk synced.");
    }
    let unchanged = measures.pop().expect("two syncs");
    let first = measures.pop().expect("two syncs");
    Ok(SnykMemoryReport {
        projects,
        findings,
        severities: severities.to_owned(),
        fetched_findings,
        first,
        unchanged,
    })
}

/// The revision of the org's pull cursor in `intake_state`, if any.
async fn cursor_revision(js: &jetstream::Context) -> Result<Option<u64>, BenchError> {
    let store = js.get_key_value(topology::INTAKE_STATE).await.step("opening intake_state")?;
    let entry = store.entry(format!("snyk.cursor.{}", world::ORG_ID)).await.step("reading the cursor")?;
    Ok(entry.map(|e| e.revision))
}
