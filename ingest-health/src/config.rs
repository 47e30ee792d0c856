//! ingest-health's settings: one typed struct from flags, a config file and the environment.

use std::time::Duration;

use service_kit::args::parse_duration;
use service_kit::{Clock, HttpArgs, NatsArgs, Secret, TelemetryArgs, TopologyArgs};

/// The longest the Health API keeps events: a backfill cannot reach further.
pub const MAX_BACKFILL: Duration = Duration::from_secs(90 * 24 * 3600);

/// ingest-health's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ingest-health",
    version,
    about = "Receives AWS Health events and publishes them as raw events."
)]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// SQS queue that an EventBridge rule on `source: aws.health` targets. Without it, SQS is
    /// not polled.
    #[arg(long = "health-sqs-queue-url", env = "HEALTH_SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,
    /// SQS endpoint override (a local SQS in tests); the standard endpoint otherwise.
    #[arg(long = "health-sqs-endpoint-url", env = "HEALTH_SQS_ENDPOINT_URL")]
    pub sqs_endpoint_url: Option<String>,
    /// Long-poll wait of one ReceiveMessage call, in seconds.
    #[arg(long = "health-sqs-wait-seconds", env = "HEALTH_SQS_WAIT_SECONDS", default_value_t = 20,
          value_parser = clap::value_parser!(i32).range(0..=20))]
    pub sqs_wait_seconds: i32,
    /// Messages per ReceiveMessage call.
    #[arg(long = "health-sqs-batch", env = "HEALTH_SQS_BATCH", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(1..=10))]
    pub sqs_batch: i32,
    /// AWS Region of the SQS queue and the Health API client.
    #[arg(long = "health-aws-region", env = "HEALTH_AWS_REGION", default_value = "us-east-1")]
    pub aws_region: String,

    /// Shared secret the EventBridge API destination sends in `--health-webhook-header`.
    /// Without it, the endpoint `POST /events/aws-health` is not served.
    #[arg(long = "health-webhook-secret", env = "HEALTH_WEBHOOK_SECRET")]
    pub webhook_secret: Option<Secret>,
    /// Header that carries the secret (the API destination connection's API key name).
    #[arg(
        long = "health-webhook-header",
        env = "HEALTH_WEBHOOK_HEADER",
        default_value = "x-itk-health-secret"
    )]
    pub webhook_header: String,
    /// Largest request body accepted, in bytes (EventBridge events are at most 256 KiB).
    #[arg(long = "health-webhook-max-bytes", env = "HEALTH_WEBHOOK_MAX_BYTES", default_value_t = 512 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024))]
    pub webhook_max_bytes: u64,

    /// Reconcile with the Health API every this often (e.g. 15m); 0s turns it off.
    #[arg(long = "health-api-interval", env = "HEALTH_API_INTERVAL", default_value = "0s", value_parser = parse_duration)]
    pub api_interval: Duration,
    /// Health API endpoint override (the simulator in tests); the standard endpoint otherwise.
    #[arg(long = "health-api-endpoint-url", env = "HEALTH_API_ENDPOINT_URL")]
    pub api_endpoint_url: Option<String>,
    /// Use the organization operations (management or delegated-administrator account).
    #[arg(long = "health-api-organization", env = "HEALTH_API_ORGANIZATION", default_value_t = false)]
    pub api_organization: bool,
    /// How far back the first reconcile looks (at most 90d, what the API keeps).
    #[arg(long = "health-api-backfill", env = "HEALTH_API_BACKFILL", default_value = "90d", value_parser = parse_backfill)]
    pub api_backfill: Duration,
    /// How far before the last reconcile the next one starts, for events updated meanwhile.
    #[arg(long = "health-api-overlap", env = "HEALTH_API_OVERLAP", default_value = "1h", value_parser = parse_duration)]
    pub api_overlap: Duration,
    /// maxResults asked of each listing call (10 to 100).
    #[arg(long = "health-api-page-size", env = "HEALTH_API_PAGE_SIZE", default_value_t = 100,
          value_parser = clap::value_parser!(i32).range(10..=100))]
    pub api_page_size: i32,
    /// The account the Health API is called in; names the affected account of events without
    /// entities outside the organization view.
    #[arg(long = "health-api-account-id", env = "HEALTH_API_ACCOUNT_ID")]
    pub api_account_id: Option<String>,

    #[arg(skip)]
    pub clock: Clock,
    /// The AWS SDK settings (Region, credentials) to use instead of loading them from the
    /// standard chain; tests set static credentials here.
    #[arg(skip)]
    pub aws: Option<aws_config::SdkConfig>,
}

impl Config {
    /// The AWS SDK settings: [`Config::aws`], else the standard chain (environment, profile,
    /// web identity, container and instance credentials) in `--health-aws-region`.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        match &self.aws {
            Some(sdk) => sdk.clone(),
            None => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(self.aws_region.clone()))
                    .load()
                    .await
            }
        }
    }
}

/// SDK settings with fixed credentials, for local endpoints (moto, the Health simulator).
pub fn static_sdk_config(
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_config::SdkConfig {
    let credentials =
        aws_credential_types::Credentials::new(access_key_id, secret_access_key, None, None, "static");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .build()
}

fn parse_backfill(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration > MAX_BACKFILL {
        return Err("the Health API keeps events for 90 days: use at most 90d".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_fail_fast_settings() {
        let config = Config::parse_from(["ingest-health", "--health-webhook-secret", "s3cret"]);
        assert_eq!(config.sqs_wait_seconds, 20);
        assert_eq!(config.api_backfill, MAX_BACKFILL);
        assert!(!format!("{config:?}").contains("s3cret"));
        let error = Config::try_parse_from(["ingest-health", "--health-api-backfill", "120d"]).unwrap_err();
        assert!(error.to_string().contains("90 days"), "{error}");
        let error = Config::try_parse_from(["ingest-health", "--health-sqs-wait-seconds", "60"]).unwrap_err();
        assert!(error.to_string().contains("--health-sqs-wait-seconds"), "{error}");
    }
}
