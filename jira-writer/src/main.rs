#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: jira_writer::Config = service_kit::config::parse();
    let _telemetry = service_kit::telemetry::init("jira-writer", &config.telemetry)?;
    jira_writer::run(config, service_kit::shutdown::on_signal()).await?;
    Ok(())
}
