//! One pipeline service as its own process, chosen by name:
//! `pipeline-service <ingest-snyk|ingest-health|triage|jira-writer|notifier> [FLAGS]`, the flags
//! being the service's own (see `pipeline_bench::dispatch`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pipeline_bench::dispatch::run_service(std::env::args_os().skip(1).collect()).await?;
    Ok(())
}
