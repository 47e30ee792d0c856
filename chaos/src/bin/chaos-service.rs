//! One infra-tickets service as its own process, for the chaos suite to SIGKILL.
//!
//! `chaos-service <service> [that service's flags…]`, where `<service>` is `ingest-snyk`,
//! `ingest-health`, `triage`, `jira-writer` or `notifier`. Like each service's own `main.rs`: parse
//! the config, start telemetry, call the library's `run` until SIGTERM/Ctrl-C.

use std::ffi::OsString;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if matches!(args.first().and_then(|a| a.to_str()), Some("--version" | "-V")) {
        println!("chaos-service {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    anyhow::ensure!(
        !args.is_empty(),
        "usage: chaos-service <service> [flags…]; services: {}",
        SERVICES.join(", ")
    );
    let service = args[0].to_string_lossy().into_owned();
    // The service name stands where the program name would be.
    args[0] = OsString::from(&service);
    let shutdown = service_kit::shutdown::on_signal();
    match service.as_str() {
        "ingest-snyk" => {
            let config: ingest_snyk::Config = parse(args);
            let _telemetry = service_kit::telemetry::init(&service, &config.telemetry)?;
            ingest_snyk::run(config, shutdown).await?;
        }
        "ingest-health" => {
            let config: ingest_health::Config = parse(args);
            let _telemetry = service_kit::telemetry::init(&service, &config.telemetry)?;
            ingest_health::run(config, shutdown).await?;
        }
        "triage" => {
            let config: triage::Config = parse(args);
            let _telemetry = service_kit::telemetry::init(&service, &config.telemetry)?;
            triage::run(config, shutdown).await?;
        }
        "jira-writer" => {
            let config: jira_writer::Config = parse(args);
            let _telemetry = service_kit::telemetry::init(&service, &config.telemetry)?;
            jira_writer::run(config, shutdown).await?;
        }
        "notifier" => {
            let config: notifier::Config = parse(args);
            let _telemetry = service_kit::telemetry::init(&service, &config.telemetry)?;
            notifier::run(config, shutdown).await?;
        }
        other => anyhow::bail!("unknown service {other:?}; services: {}", SERVICES.join(", ")),
    }
    Ok(())
}

const SERVICES: [&str; 5] = ["ingest-snyk", "ingest-health", "triage", "jira-writer", "notifier"];

/// The service's config from the remaining flags and the environment; exits with clap's message.
fn parse<T: Parser>(args: Vec<OsString>) -> T {
    match service_kit::config::try_parse_from::<T, _, _>(args, |name| std::env::var_os(name)) {
        Ok(config) => config,
        Err(service_kit::config::ParseError::Clap(error)) => error.exit(),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    }
}
