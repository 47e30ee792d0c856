/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ingest_snyk::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("ingest-snyk", &config.telemetry)?;
    ingest_snyk::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
