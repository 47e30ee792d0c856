//! EventBridge AWS Health events for tests, benchmarks and the demo: realistic field values,
//! built with a few helpers.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::dates::to_rfc1123;

/// An event ARN as AWS writes it: `arn:aws:health:<region>::event/<SERVICE>/<CODE>/<CODE>_<id>`.
pub fn event_arn(region: &str, service: &str, code: &str, id: &str) -> String {
    format!("arn:aws:health:{region}::event/{service}/{code}/{code}_{id}")
}

/// A single-page, account-specific EventBridge event with no entities yet.
#[allow(clippy::too_many_arguments)]
pub fn event(
    arn: &str,
    service: &str,
    code: &str,
    category: &str,
    account: &str,
    region: &str,
    last_updated: DateTime<Utc>,
    description: &str,
) -> Value {
    json!({
        "version": "0",
        "id": format!("{:x}", last_updated.timestamp()),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": account,
        "time": last_updated.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [],
        "detail": {
            "eventArn": arn,
            "service": service,
            "eventTypeCode": code,
            "eventTypeCategory": category,
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": format!("{:x}-1", last_updated.timestamp()),
            "lastUpdatedTime": to_rfc1123(last_updated),
            "statusCode": "open",
            "eventRegion": region,
            "eventDescription": [{"language": "en_US", "latestDescription": description}],
            "affectedEntities": [],
            "page": "1",
            "totalPages": "1",
            "backupEvent": "false",
            "affectedAccount": account,
        }
    })
}

/// Sets `detail.<field>`.
pub fn set(event: &mut Value, field: &str, value: impl Into<Value>) {
    event["detail"][field] = value.into();
}

/// Sets the window (`startTime`, `endTime`) in RFC 1123.
pub fn window(event: &mut Value, start: DateTime<Utc>, end: Option<DateTime<Utc>>) {
    set(event, "startTime", to_rfc1123(start));
    if let Some(end) = end {
        set(event, "endTime", to_rfc1123(end));
    }
}

/// Sets the affected entities from `(entityValue, status)` pairs, and `resources` to match.
pub fn entities(event: &mut Value, list: &[(&str, &str)]) {
    let updated = event["detail"]["lastUpdatedTime"].clone();
    let entities: Vec<Value> = list
        .iter()
        .map(|(value, status)| json!({"entityValue": value, "lastUpdatedTime": updated, "status": status}))
        .collect();
    event["resources"] = list.iter().map(|(value, _)| json!(value)).collect();
    set(event, "affectedEntities", Value::Array(entities));
}

/// Moves the event to a new version (`lastUpdatedTime` and the envelope's `time`).
pub fn touch(event: &mut Value, last_updated: DateTime<Utc>) {
    event["time"] = json!(last_updated.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    set(event, "lastUpdatedTime", to_rfc1123(last_updated));
    if let Some(list) = event["detail"]["affectedEntities"].as_array_mut() {
        for entity in list {
            entity["lastUpdatedTime"] = json!(to_rfc1123(last_updated));
        }
    }
}

/// The instance-retirement example of the reference (synthetic values, real field names).
pub fn retirement() -> Value {
    json!({
        "version": "0",
        "id": "3f9d2c71-8a4e-4b0f-9c55-0e7d6a1b2c3d",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "444455556666",
        "time": "2027-01-12T10:15:30Z",
        "region": "eu-west-1",
        "resources": ["i-0a1b2c3d4e5f60718"],
        "detail": {
            "eventArn": "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED_7c1e0a5d2b9f",
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": "5e2f90c4b8a7d1e63f0a9b2c4d5e6f708192a3b4-1",
            "startTime": "Tue, 9 Feb 2027 08:00:00 GMT",
            "endTime": "Tue, 9 Feb 2027 08:00:00 GMT",
            "lastUpdatedTime": "Tue, 12 Jan 2027 10:15:30 GMT",
            "statusCode": "upcoming",
            "eventRegion": "eu-west-1",
            "eventDescription": [{"language": "en_US", "latestDescription": "EC2 has detected degradation of the underlying hardware hosting your instance i-0a1b2c3d4e5f60718 in the eu-west-1 region. We will stop your instance after 2027-02-09 08:00 UTC."}],
            "affectedEntities": [{"entityValue": "i-0a1b2c3d4e5f60718", "lastUpdatedTime": "Tue, 12 Jan 2027 10:15:30 GMT", "status": "PENDING"}],
            "page": "1",
            "totalPages": "1",
            "backupEvent": "false",
            "affectedAccount": "210987654321",
            "actionability": "ACTION_REQUIRED",
            "personas": ["OPERATIONS"]
        }
    })
}

/// The text of AWS's Node.js 18 end-of-support notice: one deadline, three distractor dates.
pub const LAMBDA_NODE18_TEXT: &str = "We are contacting you as we have identified that your AWS Account currently has one or more AWS Lambda functions using the Node.js 18 runtime. We are ending support for Node.js 18 in Lambda on September 1, 2026. This follows Node.js 18 End-Of-Life (EOL) reached on April 30, 2025. Starting on September 1, 2026, Lambda will no longer apply security patches and other updates to the Node.js 18 runtime. Starting October 1, 2026, you will no longer be able to create new Lambda functions using the Node.js 18 runtime. Starting November 1, 2026, you will no longer be able to update existing functions using the Node.js 18 runtime.";

/// A Direct Connect maintenance description: no date in the text.
pub const DIRECT_CONNECT_TEXT: &str = "Planned maintenance has been scheduled on an AWS Direct Connect router. During this maintenance window, your AWS Direct Connect connection dxcon-fgq9abcd will become unavailable. To avoid interruption, we recommend that you configure a redundant connection.";
