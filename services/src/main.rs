//! One binary for the five services. The image links `triage`, `ingest-snyk`, `ingest-health`,
//! `jira-writer` and `notifier` to it, and the name it is called by chooses the service; the
//! services share most of their code (the runtime, NATS, HTTP, TLS, telemetry), which six
//! separate binaries would each carry again. `infra-tickets-services triage --help` works too.
//! Each arm is what that service's own `main.rs` does.

use std::ffi::OsString;
use std::path::Path;

/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERVICES: &[&str] = &["ingest-health", "ingest-snyk", "triage", "jira-writer", "notifier"];

fn main() -> anyhow::Result<()> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called = args
        .first()
        .and_then(|program| Path::new(program).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let service = if SERVICES.contains(&called.as_str()) {
        called
    } else if args.len() > 1 && SERVICES.contains(&args[1].to_string_lossy().as_ref()) {
        // `infra-tickets-services SERVICE ARGS…`: the service's name becomes its program name.
        args.remove(0);
        args[0].to_string_lossy().into_owned()
    } else {
        eprintln!(
            "usage: infra-tickets-services SERVICE [ARGS…], or call it by a service's name\n\
             services: {}",
            SERVICES.join(", ")
        );
        std::process::exit(2);
    };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(&service, args))
}

async fn run(service: &str, args: Vec<OsString>) -> anyhow::Result<()> {
    use service_kit::config::parse_from;
    use service_kit::shutdown::on_signal;
    use service_kit::telemetry::init;
    match service {
        "ingest-health" => {
            let config: ingest_health::Config = parse_from(args);
            let _telemetry = init(service, &config.telemetry)?;
            ingest_health::run(config, on_signal()).await?;
        }
        "ingest-snyk" => {
            let config: ingest_snyk::Config = parse_from(args);
            let _telemetry = init(service, &config.telemetry)?;
            ingest_snyk::run(config, on_signal()).await?;
        }
        "triage" => {
            let config: triage::Config = parse_from(args);
            let _telemetry = init(service, &config.telemetry)?;
            triage::run(config, on_signal()).await?;
        }
        "jira-writer" => {
            let config: jira_writer::Config = parse_from(args);
            let _telemetry = init(service, &config.telemetry)?;
            jira_writer::run(config, on_signal()).await?;
        }
        "notifier" => {
            let config: notifier::Config = parse_from(args);
            let _telemetry = init(service, &config.telemetry)?;
            notifier::run(config, on_signal()).await?;
        }
        other => anyhow::bail!("unknown service {other:?}"),
    }
    Ok(())
}
