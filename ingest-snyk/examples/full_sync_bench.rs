//! Snyk API calls (and time, and memory) for a full sync of a large org, against the minimum
//! the API allows (every listing at its largest page, 100), through the real ingest-snyk, a
//! real nats-server and the Snyk simulator.
//!
//! ```text
//! NATS_SERVER_BIN=… cargo run -p ingest-snyk --example full_sync_bench -- [PROJECTS] [ISSUES] [SEVERITIES]
//! ```
//!
//! SEVERITIES is `--snyk-issue-severities` (default `critical`; `info,low,medium,high,critical`
//! fetches every issue).

use std::time::Instant;

use snyk_sim::{SimOrg, SnykSim};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token";
const ORG: &str = "5e1f0c2a-9b7d-4e3c-8a6f-1d2c3b4a5e6f";

/// `VmHWM` and `VmRSS` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let projects: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let issues: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let severities = args.next().unwrap_or_else(|| "critical".into());

    let server = local_nats::NatsServer::start()?;
    let org = SimOrg::synthetic(ORG, projects, issues);
    let wanted: Vec<&str> = severities.split(',').collect();
    let matching = org
        .issues
        .iter()
        .filter(|i| wanted.contains(&i.severity.as_str()) && i.status == snyk_sim::IssueStatus::Open)
        .count();
    let sim = SnykSim::start_with(TOKEN, vec![org]).await?;
    sim.record_responses(false);
    let (_, before) = memory();

    let config: ingest_snyk::Config = service_kit::config::try_parse_from(
        [
            "ingest-snyk",
            "--nats-url",
            server.url(),
            "--listen",
            "127.0.0.1:0",
            "--snyk-org",
            &format!("{ORG}@{}", sim.base_url()),
            "--snyk-token",
            TOKEN,
            "--snyk-reconcile-interval",
            "0s",
            "--snyk-poll-interval",
            "0s",
            "--snyk-issue-severities",
            &severities,
        ]
        .map(std::ffi::OsString::from),
        |_| None,
    )?;
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await?;
    let started = Instant::now();
    let report = ingest.sync_now().await.remove(0)?;
    let first = started.elapsed();
    let calls = sim.requests().len();
    let (peak, _) = memory();
    sim.clear_requests();
    let started = Instant::now();
    let again = ingest.sync_now().await.remove(0)?;
    let second = started.elapsed();
    let second_calls = sim.requests().len();
    let minimum = projects.div_ceil(100) + matching.div_ceil(100);
    println!("org: {projects} projects, {issues} issues, {matching} matching severities {severities}");
    println!(
        "first full sync: {calls} API calls (minimum {minimum} = {} projects pages + {} issues pages), {:.1} s, {} snapshots published",
        projects.div_ceil(100),
        matching.div_ceil(100),
        first.as_secs_f64(),
        report.published
    );
    println!(
        "second full sync (unchanged): {second_calls} API calls, {:.1} s, {} snapshots published",
        second.as_secs_f64(),
        again.published
    );
    println!(
        "process memory (simulator with the org included): {before:.0} MiB before the sync, peak {peak:.0} MiB (+{:.0} MiB during ingest)",
        peak - before
    );
    shutdown.cancel();
    Ok(())
}
