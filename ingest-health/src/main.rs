#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ingest_health::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("ingest-health", &config.telemetry)?;
    ingest_health::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
