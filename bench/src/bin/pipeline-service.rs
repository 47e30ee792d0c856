//! One pipeline service as its own process, chosen by name:
//! `pipeline-service <ingest-snyk|ingest-health|triage|jira-writer|notifier> [FLAGS]`, the flags
//! being the service's own (see `pipeline_bench::dispatch`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if matches!(args.first().and_then(|a| a.to_str()), Some("--version" | "-V")) {
        println!("pipeline-service {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    pipeline_bench::dispatch::run_service(args).await?;
    Ok(())
}
