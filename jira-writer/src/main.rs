#![forbid(unsafe_code)]

/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: jira_writer::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("jira-writer", &config.telemetry)?;
    jira_writer::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
