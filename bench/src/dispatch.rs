//! One pipeline service in this process, chosen by name, with the service's own flags exactly as
//! its binary takes them: `<name> [FLAGS]`. The benchmark starts each service this way as its
//! own process (`pipeline-bench service <name> …` or `pipeline-service <name> …`), so that each
//! one's peak memory can be read.

use std::ffi::OsString;

use tokio_util::sync::CancellationToken;

use crate::services::{INGEST_HEALTH, INGEST_SNYK, JIRA_WRITER, NOTIFIER, TRIAGE};
use crate::{BenchError, StepExt};

/// Runs the service named by `args[0]` until SIGTERM or Ctrl-C.
pub async fn run_service(args: Vec<OsString>) -> Result<(), BenchError> {
    let name = args.first().and_then(|n| n.to_str()).map(str::to_owned).ok_or_else(|| {
        BenchError::Check("usage: <ingest-snyk|ingest-health|triage|jira-writer|notifier> [FLAGS]".into())
    })?;
    let shutdown = service_kit::shutdown::on_signal();
    match name.as_str() {
        INGEST_SNYK => ingest_snyk(args, shutdown).await,
        INGEST_HEALTH => ingest_health(args, shutdown).await,
        TRIAGE => triage(args, shutdown).await,
        JIRA_WRITER => jira_writer(args, shutdown).await,
        NOTIFIER => notifier(args, shutdown).await,
        other => Err(BenchError::Check(format!("unknown service {other:?}"))),
    }
}

fn parse<T: clap::Parser>(args: Vec<OsString>) -> Result<T, BenchError> {
    service_kit::config::try_parse_from(args, |name| std::env::var_os(name))
        .step("parsing the service's flags")
}

async fn ingest_snyk(args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), BenchError> {
    let config: ingest_snyk::Config = parse(args)?;
    let _telemetry =
        service_kit::telemetry::init(INGEST_SNYK, &config.telemetry).step("starting telemetry")?;
    ingest_snyk::run(config, shutdown).await.step("ingest-snyk")
}

async fn ingest_health(args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), BenchError> {
    let config: ingest_health::Config = parse(args)?;
    let _telemetry =
        service_kit::telemetry::init(INGEST_HEALTH, &config.telemetry).step("starting telemetry")?;
    ingest_health::run(config, shutdown).await.step("ingest-health")
}

async fn triage(args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), BenchError> {
    let config: triage::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init(TRIAGE, &config.telemetry).step("starting telemetry")?;
    triage::run(config, shutdown).await.step("triage")
}

async fn jira_writer(args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), BenchError> {
    let config: jira_writer::Config = parse(args)?;
    let _telemetry =
        service_kit::telemetry::init(JIRA_WRITER, &config.telemetry).step("starting telemetry")?;
    jira_writer::run(config, shutdown).await.step("jira-writer")
}

async fn notifier(args: Vec<OsString>, shutdown: CancellationToken) -> Result<(), BenchError> {
    let config: notifier::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init(NOTIFIER, &config.telemetry).step("starting telemetry")?;
    notifier::run(config, shutdown).await.step("notifier")
}
