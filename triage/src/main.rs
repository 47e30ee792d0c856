/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: triage::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("triage", &config.telemetry)?;
    triage::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
