//! The AWS Health event in its EventBridge shape, read tolerantly: times as RFC 1123, ISO 8601
//! or epoch seconds; `page`, `totalPages` and `backupEvent` as strings, numbers or booleans;
//! optional fields missing (`lastUpdatedTime` is, in some of AWS's own samples).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use triage_policy::PolicyError;

use crate::dates::{from_epoch_seconds, parse_timestamp};

/// The AWS Health event categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Category {
    #[cfg_attr(feature = "clap", value(name = "scheduledChange"))]
    #[serde(rename = "scheduledChange")]
    ScheduledChange,
    #[cfg_attr(feature = "clap", value(name = "accountNotification"))]
    #[serde(rename = "accountNotification")]
    AccountNotification,
    #[cfg_attr(feature = "clap", value(name = "issue"))]
    #[serde(rename = "issue")]
    Issue,
    #[cfg_attr(feature = "clap", value(name = "investigation"))]
    #[serde(rename = "investigation")]
    Investigation,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ScheduledChange => "scheduledChange",
            Category::AccountNotification => "accountNotification",
            Category::Issue => "issue",
            Category::Investigation => "investigation",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "scheduledchange" => Some(Category::ScheduledChange),
            "accountnotification" => Some(Category::AccountNotification),
            "issue" => Some(Category::Issue),
            "investigation" => Some(Category::Investigation),
            _ => None,
        }
    }

    /// A category guessed from the event type code, for events that omit it.
    fn from_code(code: &str) -> Self {
        if ["SCHEDULED", "RETIREMENT", "PLANNED_LIFECYCLE", "MAINTENANCE"].iter().any(|w| code.contains(w)) {
            Category::ScheduledChange
        } else if code.contains("OPERATIONAL_ISSUE") {
            Category::Issue
        } else {
            Category::AccountNotification
        }
    }
}

/// One affected entity (resource) of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `entityValue`: an instance id, a connection id, an ARN…
    pub value: String,
    pub arn: Option<String>,
    pub url: Option<String>,
    /// `IMPAIRED`, `UNIMPAIRED`, `PENDING`, `RESOLVED`, `UNKNOWN`.
    pub status: Option<String>,
    pub last_updated: Option<DateTime<Utc>>,
    /// Tags, when AWS includes them (older events do; the API calls them unsupported).
    pub tags: BTreeMap<String, String>,
}

/// An AWS Health event as EventBridge delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthEvent {
    /// `account`: the account it was delivered to (the management or delegated-admin account in
    /// the organizational view).
    pub delivered_to: Option<String>,
    /// `time`: when it was sent to EventBridge.
    pub sent_at: Option<DateTime<Utc>>,
    pub resources: Vec<String>,
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    pub category: Category,
    /// `ACCOUNT_SPECIFIC`, `PUBLIC` or `NONE`.
    pub scope: String,
    pub communication_id: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub last_updated: Option<DateTime<Utc>>,
    /// `open`, `closed`, `upcoming`.
    pub status: String,
    pub region: String,
    pub description: String,
    pub entities: Vec<Entity>,
    pub page: u32,
    pub total_pages: u32,
    pub backup: bool,
    /// The account the event is about: `detail.affectedAccount`, else the delivery account.
    pub affected_account: String,
    pub actionability: Option<String>,
    pub personas: Vec<String>,
}

impl HealthEvent {
    /// Reads an EventBridge AWS Health event.
    pub fn from_payload(payload: &Value) -> Result<Self, PolicyError> {
        let malformed = |reason: String| PolicyError::malformed("AWS Health event", reason);
        let envelope =
            payload.as_object().ok_or_else(|| malformed("the payload is not a JSON object".into()))?;
        if let Some(source) = envelope.get("source").and_then(Value::as_str)
            && source != "aws.health"
        {
            return Err(malformed(format!("source is {source:?}, not \"aws.health\"")));
        }
        let detail = envelope
            .get("detail")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("it has no \"detail\" object".into()))?;
        let event_arn = text(detail.get("eventArn"))
            .filter(|arn| !arn.trim().is_empty())
            .ok_or_else(|| malformed("detail.eventArn is missing".into()))?;
        let delivered_to = text(envelope.get("account"));
        let affected_account = text(detail.get("affectedAccount"))
            .filter(|a| !a.is_empty())
            .or_else(|| delivered_to.clone())
            .ok_or_else(|| malformed(format!("event {event_arn} names no affected account")))?;
        let event_type_code = text(detail.get("eventTypeCode")).unwrap_or_else(|| code_from_arn(&event_arn));
        let category = text(detail.get("eventTypeCategory"))
            .and_then(|c| Category::parse(&c))
            .unwrap_or_else(|| Category::from_code(&event_type_code));
        let service = text(detail.get("service")).unwrap_or_else(|| {
            event_type_code.trim_start_matches("AWS_").split('_').next().unwrap_or("").into()
        });
        let entities = match detail.get("affectedEntities") {
            Some(Value::Array(list)) => list.iter().filter_map(entity).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(malformed("detail.affectedEntities is not a list".into())),
        };
        let page = number(detail.get("page")).unwrap_or(1).max(1);
        Ok(HealthEvent {
            delivered_to,
            sent_at: time(envelope.get("time")),
            resources: strings(envelope.get("resources")),
            service,
            category,
            scope: text(detail.get("eventScopeCode")).unwrap_or_else(|| "ACCOUNT_SPECIFIC".into()),
            communication_id: text(detail.get("communicationId")),
            start: time(detail.get("startTime")),
            end: time(detail.get("endTime")),
            last_updated: time(detail.get("lastUpdatedTime")),
            status: text(detail.get("statusCode")).unwrap_or_else(|| "open".into()).to_ascii_lowercase(),
            region: text(detail.get("eventRegion"))
                .or_else(|| text(envelope.get("region")))
                .unwrap_or_default(),
            description: description(detail.get("eventDescription")),
            entities,
            page,
            total_pages: number(detail.get("totalPages")).unwrap_or(1).max(page),
            backup: flag(detail.get("backupEvent")),
            affected_account,
            actionability: text(detail.get("actionability")),
            personas: strings(detail.get("personas")),
            event_arn,
            event_type_code,
        })
    }

    /// The version of the event upstream: `lastUpdatedTime`, else the time it was sent.
    pub fn version(&self) -> Option<DateTime<Utc>> {
        self.last_updated.or(self.sent_at)
    }

    /// The affected entities, or the envelope's `resources` when the event lists none.
    pub fn entities_or_resources(&self) -> Vec<Entity> {
        if !self.entities.is_empty() {
            return self.entities.clone();
        }
        self.resources
            .iter()
            .map(|resource| Entity {
                value: resource.clone(),
                arn: resource.starts_with("arn:").then(|| resource.clone()),
                url: None,
                status: None,
                last_updated: None,
                tags: BTreeMap::new(),
            })
            .collect()
    }
}

/// `arn:aws:health:<region>::event/<SERVICE>/<CODE>/<CODE>_<id>` (or without `<SERVICE>`) → `<CODE>`.
fn code_from_arn(arn: &str) -> String {
    let path = arn.rsplit_once(":event/").map_or(arn, |(_, path)| path);
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [_, code, _] => (*code).to_owned(),
        [last] | [_, last] => last.rsplit_once('_').map_or(*last, |(code, _)| code).to_owned(),
        _ => String::new(),
    }
}

fn entity(value: &Value) -> Option<Entity> {
    let object = value.as_object()?;
    let entity_value = text(object.get("entityValue")).or_else(|| text(object.get("entityArn")))?;
    let tags = match object.get("tags") {
        Some(Value::Object(map)) => {
            map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
        }
        _ => BTreeMap::new(),
    };
    Some(Entity {
        arn: text(object.get("entityArn")).filter(|a| a.starts_with("arn:")),
        url: text(object.get("entityUrl")).filter(|u| !u.is_empty()),
        status: text(object.get("status"))
            .or_else(|| text(object.get("statusCode")))
            .map(|s| s.to_ascii_uppercase()),
        last_updated: time(object.get("lastUpdatedTime")).or_else(|| time(object.get("lastUpdatedtime"))),
        tags,
        value: entity_value,
    })
}

fn description(value: Option<&Value>) -> String {
    let Some(value) = value else { return String::new() };
    match value {
        Value::String(text) => text.clone(),
        Value::Object(object) => text(object.get("latestDescription")).unwrap_or_default(),
        Value::Array(list) => {
            let english = list.iter().find(|d| d.get("language").and_then(Value::as_str) == Some("en_US"));
            english
                .or_else(|| list.first())
                .and_then(|d| text(d.get("latestDescription")))
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(list)) => list.iter().filter_map(|v| text(Some(v))).collect(),
        _ => Vec::new(),
    }
}

fn number(value: Option<&Value>) -> Option<u32> {
    match value? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A time as EventBridge (RFC 1123 or ISO 8601 string) or the API (epoch number) writes it.
pub fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::Number(n) => from_epoch_seconds(n.as_f64()?),
        Value::String(s) => parse_timestamp(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_documented_example() {
        let event = HealthEvent::from_payload(&crate::samples::retirement()).unwrap();
        assert_eq!(event.affected_account, "210987654321");
        assert_eq!(event.delivered_to.as_deref(), Some("444455556666"));
        assert_eq!(event.category, Category::ScheduledChange);
        assert_eq!(event.start, Some("2027-02-09T08:00:00Z".parse().unwrap()));
        assert_eq!(event.entities[0].status.as_deref(), Some("PENDING"));
        assert_eq!((event.page, event.total_pages, event.backup), (1, 1, false));
    }

    #[test]
    fn tolerates_variants_and_missing_fields() {
        let event = HealthEvent::from_payload(&json!({
            "source": "aws.health",
            "account": "123456789012",
            "time": "2027-01-12T10:15:30Z",
            "resources": ["dxcon-1"],
            "detail": {
                "eventArn": "arn:aws:health:us-east-1::event/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_abc",
                "startTime": 1804024800.0,
                "page": 2, "totalPages": "3", "backupEvent": true,
                "eventDescription": [{"language": "en_US", "latestDescription": "Text."}]
            }
        }))
        .unwrap();
        assert_eq!(event.event_type_code, "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED");
        assert_eq!(event.category, Category::ScheduledChange);
        assert_eq!(event.affected_account, "123456789012");
        assert_eq!(event.last_updated, None);
        assert_eq!(event.version(), Some("2027-01-12T10:15:30Z".parse().unwrap()));
        assert_eq!((event.page, event.total_pages, event.backup), (2, 3, true));
        assert_eq!(event.entities_or_resources()[0].value, "dxcon-1");
        assert_eq!(event.description, "Text.");
    }

    #[test]
    fn refuses_what_is_not_a_health_event() {
        for (payload, reason) in [
            (json!([1]), "not a JSON object"),
            (json!({"source": "aws.ec2", "detail": {}}), "aws.ec2"),
            (json!({"source": "aws.health"}), "no \"detail\""),
            (json!({"detail": {"affectedAccount": "1"}}), "eventArn is missing"),
            (json!({"detail": {"eventArn": "arn:x"}}), "no affected account"),
            (json!({"account": "1", "detail": {"eventArn": "arn:x", "affectedEntities": "x"}}), "not a list"),
        ] {
            let error = HealthEvent::from_payload(&payload).unwrap_err().to_string();
            assert!(error.contains(reason), "{error}");
        }
    }

    #[test]
    fn codes_from_old_and_new_arns() {
        assert_eq!(
            code_from_arn("arn:aws:health:eu-west-1::event/EC2/AWS_EC2_X_SCHEDULED/AWS_EC2_X_SCHEDULED_7c1e"),
            "AWS_EC2_X_SCHEDULED"
        );
        assert_eq!(
            code_from_arn("arn:aws:health:eu-west-1::event/AWS_EC2_X_SCHEDULED_7c1e"),
            "AWS_EC2_X_SCHEDULED"
        );
    }
}
