//! One pipeline service as its own process, chosen by name (the benchmark samples each
//! process's peak memory): `pipeline-service <ingest-snyk|ingest-health|triage|jira-writer|notifier> [FLAGS]`.
//! The flags are the service's own, exactly as its binary takes them.

use std::ffi::OsString;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let name =
        args.first().and_then(|n| n.to_str()).map(str::to_owned).context(
            "usage: pipeline-service <ingest-snyk|ingest-health|triage|jira-writer|notifier> [FLAGS]",
        )?;
    let shutdown = service_kit::shutdown::on_signal();
    match name.as_str() {
        "ingest-snyk" => ingest_snyk(args, shutdown).await,
        "ingest-health" => ingest_health(args, shutdown).await,
        "triage" => triage(args, shutdown).await,
        "jira-writer" => jira_writer(args, shutdown).await,
        "notifier" => notifier(args, shutdown).await,
        other => anyhow::bail!("unknown service {other:?}"),
    }
}

fn parse<T: clap::Parser>(args: Vec<OsString>) -> anyhow::Result<T> {
    Ok(service_kit::config::try_parse_from(args, |name| std::env::var_os(name))?)
}

async fn ingest_snyk(args: Vec<OsString>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config: ingest_snyk::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init("ingest-snyk", &config.telemetry)?;
    Ok(ingest_snyk::run(config, shutdown).await?)
}

async fn ingest_health(args: Vec<OsString>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config: ingest_health::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init("ingest-health", &config.telemetry)?;
    Ok(ingest_health::run(config, shutdown).await?)
}

async fn triage(args: Vec<OsString>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config: triage::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init("triage", &config.telemetry)?;
    Ok(triage::run(config, shutdown).await?)
}

async fn jira_writer(args: Vec<OsString>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config: jira_writer::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init("jira-writer", &config.telemetry)?;
    Ok(jira_writer::run(config, shutdown).await?)
}

async fn notifier(args: Vec<OsString>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config: notifier::Config = parse(args)?;
    let _telemetry = service_kit::telemetry::init("notifier", &config.telemetry)?;
    Ok(notifier::run(config, shutdown).await?)
}
