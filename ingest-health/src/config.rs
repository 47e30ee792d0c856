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
    /// Region of the SQS queue. Without it, the Region the queue URL names
    /// (`https://sqs.<region>.amazonaws.com/...`), else `--health-aws-region`. A Region that
    /// contradicts the queue URL stops the start.
    #[arg(long = "health-sqs-region", env = "HEALTH_SQS_REGION", value_parser = parse_region)]
    pub sqs_region: Option<String>,
    /// The AWS SDK's Region for everything else (the credential chain, e.g. STS for IRSA), and
    /// the queue's when neither `--health-sqs-region` nor the queue URL names one.
    #[arg(long = "health-aws-region", env = "HEALTH_AWS_REGION", default_value = "us-east-1",
          value_parser = parse_region)]
    pub aws_region: String,

    /// Shared secret the EventBridge API destination sends in `--health-webhook-header`.
    /// Without it, the endpoint `POST /events/aws-health` is not served.
    #[arg(long = "health-webhook-secret", env = "HEALTH_WEBHOOK_SECRET", hide_env_values = true)]
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
    /// Health API endpoint override (the simulator in tests); the standard endpoint of
    /// `--health-api-region` otherwise.
    #[arg(long = "health-api-endpoint-url", env = "HEALTH_API_ENDPOINT_URL")]
    pub api_endpoint_url: Option<String>,
    /// Region of the Health API endpoint. The API is global and served from one Region per
    /// partition (us-east-1, `health.us-east-1.amazonaws.com`, for the commercial partition;
    /// cn-northwest-1 in China), whatever Region the queue is in.
    #[arg(long = "health-api-region", env = "HEALTH_API_REGION", default_value = "us-east-1",
          value_parser = parse_region)]
    pub api_region: String,
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

/// A setting that cannot work, found at start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--health-sqs-region (HEALTH_SQS_REGION) is {given} but the queue URL {queue_url} is in {in_url}: the queue is only reachable in its own Region"
    )]
    SqsRegionMismatch { given: String, in_url: String, queue_url: String },
    #[error("--health-api-endpoint-url (HEALTH_API_ENDPOINT_URL) {url:?} is not an http(s) URL")]
    ApiEndpoint { url: String },
    #[error("--health-sqs-endpoint-url (HEALTH_SQS_ENDPOINT_URL) {url:?} is not an http(s) URL")]
    SqsEndpoint { url: String },
    #[error("{0}")]
    WebhookOverServerLimit(String),
}

impl Config {
    /// The Region the SQS client signs for: `--health-sqs-region`, else the queue URL's, else
    /// `--health-aws-region`.
    pub fn sqs_region(&self) -> String {
        self.sqs_region
            .clone()
            .or_else(|| self.sqs_queue_url.as_deref().and_then(region_of_queue_url))
            .unwrap_or_else(|| self.aws_region.clone())
    }

    /// Checks what flags alone cannot: the SQS Region against the queue URL, and endpoints.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let (Some(given), Some(queue_url)) = (&self.sqs_region, &self.sqs_queue_url)
            && let Some(in_url) = region_of_queue_url(queue_url)
            && &in_url != given
        {
            return Err(ConfigError::SqsRegionMismatch {
                given: given.clone(),
                in_url,
                queue_url: queue_url.clone(),
            });
        }
        let is_http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if let Some(url) = self.api_endpoint_url.as_deref().filter(|u| !is_http(u)) {
            return Err(ConfigError::ApiEndpoint { url: url.to_owned() });
        }
        if let Some(url) = self.sqs_endpoint_url.as_deref().filter(|u| !is_http(u)) {
            return Err(ConfigError::SqsEndpoint { url: url.to_owned() });
        }
        self.http
            .check_route_body_limit(
                "--health-webhook-max-bytes (HEALTH_WEBHOOK_MAX_BYTES)",
                self.webhook_max_bytes,
            )
            .map_err(ConfigError::WebhookOverServerLimit)?;
        Ok(())
    }

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

/// The Region an SQS queue URL names: `https://sqs.<region>.amazonaws.com[.cn]/<account>/<name>`
/// or the legacy `https://<region>.queue.amazonaws.com/...`. `None` for other hosts (a local
/// SQS, a VPC endpoint's DNS name).
pub fn region_of_queue_url(queue_url: &str) -> Option<String> {
    let rest = queue_url.split_once("://").map_or(queue_url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next()?;
    let labels: Vec<&str> = host.split('.').collect();
    let region = match labels.as_slice() {
        ["sqs", region, "amazonaws", ..] => region,
        [region, "queue", "amazonaws", ..] => region,
        _ => return None,
    };
    parse_region(region).ok()
}

/// An AWS Region name: lower-case letters, digits and dashes, like `eu-west-1`.
fn parse_region(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err("not an AWS Region name (e.g. us-east-1, eu-west-1)".into())
    }
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

    #[test]
    fn the_queue_region_and_the_health_api_region_are_separate_settings() {
        let queue = "https://sqs.eu-west-1.amazonaws.com/111111111111/health-events";
        let config = Config::parse_from(["ingest-health", "--health-sqs-queue-url", queue]);
        assert_eq!(config.sqs_region(), "eu-west-1", "taken from the queue URL");
        assert_eq!(config.api_region, "us-east-1", "the Health API's global endpoint");
        config.validate().expect("consistent");

        let config = Config::parse_from([
            "ingest-health",
            "--health-sqs-queue-url",
            "http://127.0.0.1:5000/111111111111/health-events",
            "--health-sqs-region",
            "ap-southeast-2",
            "--health-api-region",
            "cn-northwest-1",
        ]);
        assert_eq!(config.sqs_region(), "ap-southeast-2");
        assert_eq!(config.api_region, "cn-northwest-1");
        config.validate().expect("a local queue URL names no Region");

        let legacy = Config::parse_from([
            "ingest-health",
            "--health-sqs-queue-url",
            "https://eu-central-1.queue.amazonaws.com/1/q",
        ]);
        assert_eq!(legacy.sqs_region(), "eu-central-1");
        let no_queue = Config::parse_from(["ingest-health", "--health-aws-region", "eu-north-1"]);
        assert_eq!(no_queue.sqs_region(), "eu-north-1");
    }

    #[test]
    fn contradicting_or_malformed_regions_fail_at_start() {
        let config = Config::parse_from([
            "ingest-health",
            "--health-sqs-queue-url",
            "https://sqs.eu-west-1.amazonaws.com/111111111111/health-events",
            "--health-sqs-region",
            "us-east-1",
        ]);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("--health-sqs-region") && error.contains("eu-west-1"), "{error}");
        for flag in ["--health-sqs-region", "--health-api-region", "--health-aws-region"] {
            let error = Config::try_parse_from(["ingest-health", flag, "Europe"]).unwrap_err().to_string();
            assert!(error.contains(flag) && error.contains("not an AWS Region"), "{error}");
        }
        let config = Config::parse_from([
            "ingest-health",
            "--health-api-endpoint-url",
            "health.us-east-1.amazonaws.com",
        ]);
        assert!(config.validate().unwrap_err().to_string().contains("--health-api-endpoint-url"));
    }

    #[test]
    fn a_webhook_limit_over_the_servers_is_refused_naming_both_flags() {
        let config = Config::parse_from(["ingest-health", "--health-webhook-max-bytes", "4194304"]);
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("--health-webhook-max-bytes") && error.contains("--http-max-body-bytes"),
            "{error}"
        );
        let raised = Config::parse_from([
            "ingest-health",
            "--health-webhook-max-bytes",
            "4194304",
            "--http-max-body-bytes",
            "4194304",
        ]);
        raised.validate().expect("both raised");
    }
}
