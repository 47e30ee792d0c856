#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: notifier::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("notifier", &config.telemetry)?;
    notifier::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
