//! AWS (ingest-health): credentials from the standard chain, the Health API (which needs a
//! Business, Enterprise On-Ramp or Enterprise support plan: without one every call answers
//! `SubscriptionRequiredException`, <https://docs.aws.amazon.com/health/latest/ug/health-api.html>),
//! the organizational view when configured
//! (`DescribeHealthServiceStatusForOrganization`), and the SQS queue (`GetQueueAttributes`, read
//! only: nothing is received or deleted).

use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_health::error::ProvideErrorMetadata as _;

use super::{Check, vendor};

/// An AWS error as (code, message), as the SDKs report them.
pub type AwsFailure = (Option<String>, Option<String>);

pub fn health_api_check(answer: Result<(), &AwsFailure>) -> Check {
    let name = "aws: Health API reachable";
    match answer {
        Ok(()) => Check::pass(name, "DescribeEvents answered"),
        Err((Some(code), _)) if code == "SubscriptionRequiredException" => Check::fail(
            name,
            "SubscriptionRequiredException: the account has no Business, Enterprise On-Ramp or Enterprise support plan",
            "subscribe the account to one of those support plans, or turn the Health API reconcile off (--health-api-interval 0s) and rely on EventBridge → SQS",
        ),
        Err((code, message)) => Check::fail(name, describe(code, message), remedy_for(code.as_deref())),
    }
}

pub fn organization_view_check(answer: Result<Option<&str>, &AwsFailure>) -> Check {
    let name = "aws: Health organizational view enabled";
    match answer {
        Ok(Some(status)) if status.eq_ignore_ascii_case("ENABLED") => Check::pass(name, "ENABLED"),
        Ok(status) => Check::fail(
            name,
            format!("the organizational view is {}", vendor(status.unwrap_or("not reported"))),
            "enable it once from the management account: `aws health enable-health-service-access-for-organization` (or drop --health-api-organization)",
        ),
        Err((code, message)) => Check::fail(name, describe(code, message), remedy_for(code.as_deref())),
    }
}

pub fn queue_check(queue_url: &str, answer: Result<Option<&str>, &AwsFailure>) -> Check {
    let name = format!("aws: SQS queue {} readable", vendor(queue_url));
    match answer {
        Ok(messages) => Check::pass(name, format!("{} message(s) waiting", vendor(messages.unwrap_or("?")))),
        Err((code, message)) => {
            let remedy = match code.as_deref() {
                Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
                    "create the queue (deploy/aws/health-intake.yaml) or fix --health-sqs-queue-url"
                        .to_owned()
                }
                other => remedy_for(other),
            };
            Check::fail(name, describe(code, message), remedy)
        }
    }
}

fn describe(code: &Option<String>, message: &Option<String>) -> String {
    format!(
        "{}: {}",
        vendor(code.as_deref().unwrap_or("error")),
        vendor(message.as_deref().unwrap_or("no message"))
    )
}

fn remedy_for(code: Option<&str>) -> String {
    match code {
        Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => {
            "grant ingest-health's role the actions in the README's Permissions section".into()
        }
        Some(
            "UnrecognizedClientException" | "InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException",
        ) => "the credentials are not valid: check the role (IRSA) or AWS_* variables".into(),
        _ => "check the Region, the endpoint settings and that AWS is reachable from here".into(),
    }
}

fn failure<E: aws_sdk_health::error::ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_health::error::SdkError<E>,
) -> AwsFailure {
    match error.code() {
        Some(code) => (Some(code.to_owned()), error.message().map(str::to_owned)),
        None => (None, Some(aws_sdk_health::error::DisplayErrorContext(error).to_string())),
    }
}

fn sqs_failure<E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static>(
    error: &aws_sdk_sqs::error::SdkError<E>,
) -> AwsFailure {
    match aws_sdk_sqs::error::ProvideErrorMetadata::code(error) {
        Some(code) => (
            Some(code.to_owned()),
            aws_sdk_sqs::error::ProvideErrorMetadata::message(error).map(str::to_owned),
        ),
        None => (None, Some(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())),
    }
}

pub async fn checks(config: &ingest_health::Config) -> Vec<Check> {
    let mut out = Vec::new();
    let uses_api = !config.api_interval.is_zero();
    if !uses_api && config.sqs_queue_url.is_none() {
        out.push(Check::pass(
            "aws: not called",
            "no Health API reconcile and no SQS queue (webhook intake only)",
        ));
        return out;
    }
    let shared = config.sdk_config().await;
    let credentials = match shared.credentials_provider() {
        None => Err("no credentials provider found".to_owned()),
        Some(provider) => provider.provide_credentials().await.map(|_| ()).map_err(|e| e.to_string()),
    };
    match credentials {
        Ok(()) => out.push(Check::pass("aws: credentials", "found in the standard chain")),
        Err(error) => {
            out.push(Check::fail(
                "aws: credentials",
                vendor(&error),
                "give ingest-health credentials: its ServiceAccount's IAM role (IRSA), or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            ));
            return out;
        }
    }
    if uses_api {
        let health = ingest_health::reconcile::Reconciler::client(config).await;
        let answer = if config.api_organization {
            health
                .describe_events_for_organization()
                .max_results(1)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failure(&e))
        } else {
            health.describe_events().max_results(1).send().await.map(|_| ()).map_err(|e| failure(&e))
        };
        out.push(health_api_check(answer.as_ref().map(|_| ())));
        if config.api_organization && answer.is_ok() {
            let status = health.describe_health_service_status_for_organization().send().await;
            let status = status.map_err(|e| failure(&e));
            out.push(organization_view_check(
                status.as_ref().map(|s| s.health_service_access_status_for_organization()),
            ));
        }
    }
    if let Some(queue_url) = &config.sqs_queue_url {
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared)
            .region(aws_sdk_sqs::config::Region::new(config.sqs_region()));
        if let Some(endpoint) = &config.sqs_endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        let sqs = aws_sdk_sqs::Client::from_conf(builder.build());
        let answer = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sqs_failure(&e));
        let messages = answer.as_ref().map(|a| {
            a.attributes()
                .and_then(|m| m.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
                .map(String::as_str)
        });
        out.push(queue_check(queue_url, messages));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_support_plan_says_which_plans_and_the_way_around_it() {
        let failure = (Some("SubscriptionRequiredException".to_owned()), Some("x".to_owned()));
        let out = health_api_check(Err(&failure));
        assert!(
            !out.ok && out.remedy.contains("--health-api-interval 0s") && out.detail.contains("Business")
        );
        assert!(health_api_check(Ok(())).ok);
        let denied = (Some("AccessDeniedException".to_owned()), None);
        assert!(health_api_check(Err(&denied)).remedy.contains("Permissions"));
    }

    #[test]
    fn a_disabled_organizational_view_and_a_missing_queue_fail() {
        assert!(organization_view_check(Ok(Some("ENABLED"))).ok);
        let out = organization_view_check(Ok(Some("DISABLED")));
        assert!(!out.ok && out.remedy.contains("enable-health-service-access-for-organization"));
        let missing = (Some("AWS.SimpleQueueService.NonExistentQueue".to_owned()), Some("gone".to_owned()));
        assert!(queue_check("https://q", Err(&missing)).remedy.contains("health-intake.yaml"));
        assert!(queue_check("https://q", Ok(Some("3"))).ok);
    }
}
