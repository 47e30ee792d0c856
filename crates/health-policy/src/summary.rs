//! The ticket's summary, as a person reads the board: the service as AWS names it, what
//! happens in words, the subject (engine and version, runtime, certificate, or the one
//! resource), then the account, region, event type and event id, so two different notices never
//! share a summary. Built from what identifies the event, never from its status, so it does not
//! churn.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::policy::{EntityRecord, EventFacts};

/// AWS's names for the `service` values of AWS Health.
const SERVICE_NAMES: &[(&str, &str)] = &[
    ("EC2", "Amazon EC2"),
    ("RDS", "Amazon RDS"),
    ("LAMBDA", "AWS Lambda"),
    ("DIRECTCONNECT", "AWS Direct Connect"),
    ("EKS", "Amazon EKS"),
    ("ECS", "Amazon ECS"),
    ("FARGATE", "AWS Fargate"),
    ("ELASTICACHE", "Amazon ElastiCache"),
    ("ES", "Amazon OpenSearch Service"),
    ("OPENSEARCH", "Amazon OpenSearch Service"),
    ("REDSHIFT", "Amazon Redshift"),
    ("ATHENA", "Amazon Athena"),
    ("MQ", "Amazon MQ"),
    ("DOCDB", "Amazon DocumentDB"),
    ("DOCUMENTDB", "Amazon DocumentDB"),
    ("NEPTUNE", "Amazon Neptune"),
    ("MEMORYDB", "Amazon MemoryDB"),
    ("ELASTICBEANSTALK", "AWS Elastic Beanstalk"),
    ("EBS", "Amazon EBS"),
    ("EFS", "Amazon EFS"),
    ("FSX", "Amazon FSx"),
    ("S3", "Amazon S3"),
    ("VPC", "Amazon VPC"),
    ("VPN", "AWS Site-to-Site VPN"),
    ("CLOUDFRONT", "Amazon CloudFront"),
    ("APIGATEWAY", "Amazon API Gateway"),
    ("KAFKA", "Amazon MSK"),
    ("MSK", "Amazon MSK"),
    ("EMR", "Amazon EMR"),
    ("SAGEMAKER", "Amazon SageMaker"),
    ("GLUE", "AWS Glue"),
    ("DMS", "AWS Database Migration Service"),
    ("IAM", "AWS IAM"),
    ("ACM", "AWS Certificate Manager"),
    ("CLOUDFORMATION", "AWS CloudFormation"),
    ("SNS", "Amazon SNS"),
    ("SQS", "Amazon SQS"),
    ("DYNAMODB", "Amazon DynamoDB"),
    ("KINESIS", "Amazon Kinesis"),
    ("ROUTE53", "Amazon Route 53"),
    ("AUTOSCALING", "Amazon EC2 Auto Scaling"),
    ("ELASTICLOADBALANCING", "Elastic Load Balancing"),
    ("ELB", "Elastic Load Balancing"),
    ("SSM", "AWS Systems Manager"),
    ("WORKSPACES", "Amazon WorkSpaces"),
    ("BACKUP", "AWS Backup"),
    ("TRANSFER", "AWS Transfer Family"),
    ("CODEBUILD", "AWS CodeBuild"),
    ("APPSYNC", "AWS AppSync"),
    ("CLOUDWATCH", "Amazon CloudWatch"),
];

/// The service as AWS writes it: `Amazon RDS`, `AWS Lambda`; `AWS <SERVICE>` otherwise.
pub fn service_name(service: &str) -> String {
    let upper = service.trim().to_ascii_uppercase();
    SERVICE_NAMES
        .iter()
        .find(|(code, _)| *code == upper)
        .map_or_else(|| format!("AWS {}", service.trim()), |(_, name)| (*name).to_owned())
}

/// What happens, in words, from the event type code and, for generic codes, the text.
pub fn what_happens(code: &str, description: &str) -> String {
    let by_code: &[(&str, &str)] = &[
        ("REBOOT", "scheduled reboot"),
        ("TASK_PATCHING_RETIREMENT", "task retirement for patching"),
        ("RETIREMENT", "instance retirement"),
        ("NETWORK_MAINTENANCE", "scheduled network maintenance"),
        ("SYSTEM_MAINTENANCE", "scheduled system maintenance"),
        ("POWER_MAINTENANCE", "scheduled power maintenance"),
        ("INSTANCE_STOP", "scheduled instance stop"),
        ("HARDWARE_MAINTENANCE", "hardware maintenance"),
        ("SECURITY_PATCH", "required patch"),
    ];
    if let Some((_, words)) = by_code.iter().find(|(part, _)| code.contains(part)) {
        return (*words).to_owned();
    }
    let text = description.to_lowercase();
    let by_text: &[(&[&str], &str)] = &[
        (&["certificate"], "certificate expiry"),
        (
            &["end of standard support", "standard support for", "standard support will end"],
            "end of standard support",
        ),
        (
            &[
                "end of support",
                "ending support",
                "deprecat",
                "end of life",
                "end-of-life",
                "no longer be supported",
                "retire",
            ],
            "end of support",
        ),
        (&["service software update", "software update", "service update"], "required software update"),
        (&["hardware"], "hardware maintenance"),
        (&["patch"], "required patch"),
        (&["upgrade"], "scheduled upgrade"),
        (&["maintenance"], "scheduled maintenance"),
    ];
    if let Some((_, words)) = by_text.iter().find(|(needles, _)| needles.iter().any(|n| text.contains(n))) {
        return (*words).to_owned();
    }
    let service_part = code.trim_start_matches("AWS_");
    let rest = service_part.split_once('_').map_or(service_part, |(_, rest)| rest);
    rest.replace('_', " ").to_lowercase()
}

/// The subject the text names: a runtime, an engine and version, a certificate authority, a
/// service software release.
fn subject_in_text(description: &str) -> Option<String> {
    // One pattern, so a ticket costs one search: the leftmost subject the text names.
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(concat!(
            r"\b(?:Node\.js|Python|Java|\.NET|Ruby|Go|Amazon Linux|OpenJDK|Corretto)\s+\d+(?:\.\d+)?(?:\.x)?\b",
            r"|\b(?:Aurora MySQL|Aurora PostgreSQL|MySQL|PostgreSQL|MariaDB|Redis OSS|Redis|Valkey|Memcached|OpenSearch|",
            r"Elasticsearch|Apache Kafka|Kafka|ActiveMQ|RabbitMQ|DocumentDB|Kubernetes|SQL Server|Oracle)(?: version)?\s+",
            r"\d+(?:\.\d+){0,2}\b",
            r"|\brds-ca-[a-z0-9-]+\b",
            r"|\bR\d{8}(?:-P\d+)?\b",
            r"|\belasticache-[a-z0-9-]+\b",
        ))
        .expect("valid subject pattern")
    });
    pattern.find(description).map(|m| m.as_str().replace(" version ", " "))
}

/// A short id of the event: the id AWS puts at the end of the ARN, or a hash of the ARN.
fn short_event_id(arn: &str, code: &str) -> String {
    let tail = arn.rsplit('/').next().unwrap_or(arn);
    let id = tail.strip_prefix(code).map(|rest| rest.trim_start_matches('_')).unwrap_or("");
    if id.len() >= 4 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        id.chars().take(12).collect()
    } else {
        hex::encode(Sha256::digest(arn.as_bytes()))[..12].to_owned()
    }
}

/// `Amazon RDS: end of standard support for MySQL 5.7 (account 111111111111, eu-west-1;
/// AWS_RDS_PLANNED_LIFECYCLE_EVENT 7c1e0a5d2b9f)`.
pub fn summary(facts: &EventFacts, event_arn: &str, account: &str, resources: &[&EntityRecord]) -> String {
    let service = service_name(&facts.service);
    let what = what_happens(&facts.event_type_code, &facts.description);
    let subject = match subject_in_text(&facts.description) {
        Some(subject) => format!(" for {subject}"),
        None => match resources {
            [only] => format!(" of {}", only.value),
            _ => String::new(),
        },
    };
    let region = if facts.region.is_empty() { String::new() } else { format!(", {}", facts.region) };
    let identity = format!(
        " (account {account}{region}; {} {})",
        facts.event_type_code,
        short_event_id(event_arn, &facts.event_type_code)
    );
    // The identity stays whole, so a long subject cannot make two summaries equal.
    let head =
        truncate(&format!("{service}: {what}{subject}"), 250usize.saturating_sub(identity.chars().count()));
    format!("{head}{identity}")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max_chars => format!("{}…", &text[..cut]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_as_aws_names_them() {
        assert_eq!(service_name("RDS"), "Amazon RDS");
        assert_eq!(service_name("LAMBDA"), "AWS Lambda");
        assert_eq!(service_name("DIRECTCONNECT"), "AWS Direct Connect");
        assert_eq!(service_name("EKS"), "Amazon EKS");
        assert_eq!(service_name("ES"), "Amazon OpenSearch Service");
        assert_eq!(service_name("NEWTHING"), "AWS NEWTHING");
    }

    #[test]
    fn what_happens_in_words() {
        assert_eq!(what_happens("AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", ""), "scheduled reboot");
        assert_eq!(
            what_happens("AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED", ""),
            "instance retirement"
        );
        assert_eq!(
            what_happens(
                "AWS_EKS_PLANNED_LIFECYCLE_EVENT",
                "Standard support for Kubernetes version 1.32 in Amazon EKS will end on March 23, 2026."
            ),
            "end of standard support"
        );
        assert_eq!(
            what_happens(
                "AWS_RDS_PLANNED_LIFECYCLE_EVENT",
                "using an SSL/TLS certificate that expires on August 22, 2024"
            ),
            "certificate expiry"
        );
        assert_eq!(
            what_happens("AWS_S3_OPERATIONAL_NOTIFICATION", "Please read."),
            "operational notification"
        );
    }

    #[test]
    fn subjects_from_the_text() {
        assert_eq!(subject_in_text("functions using the Node.js 18 runtime").as_deref(), Some("Node.js 18"));
        assert_eq!(
            subject_in_text("Kubernetes version 1.32 in Amazon EKS").as_deref(),
            Some("Kubernetes 1.32")
        );
        assert_eq!(subject_in_text("instances on RDS for MySQL 5.7 reach").as_deref(), Some("MySQL 5.7"));
        assert_eq!(
            subject_in_text("Service software R20220323-P4 contains").as_deref(),
            Some("R20220323-P4")
        );
        assert_eq!(subject_in_text("Nothing here."), None);
    }

    #[test]
    fn event_ids_from_new_and_old_arns() {
        let code = "AWS_EC2_X_SCHEDULED";
        assert_eq!(
            short_event_id(
                "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_X_SCHEDULED/AWS_EC2_X_SCHEDULED_7c1e0a5d2b9f77",
                code
            ),
            "7c1e0a5d2b9f"
        );
        assert_eq!(short_event_id("arn:aws:health:eu-west-1::event/AWS_EC2_X_SCHEDULED_abc1", code), "abc1");
        assert_eq!(short_event_id("arn:x", code).len(), 12);
    }
}
