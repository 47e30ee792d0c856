//! The simulator's events and entities, and how the API shows them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One AWS Health event as the simulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub arn: String,
    pub service: String,
    pub event_type_code: String,
    /// `scheduledChange`, `accountNotification`, `issue`, `investigation`.
    pub category: String,
    pub region: String,
    /// `ACCOUNT_SPECIFIC`, `PUBLIC`, `NONE`.
    pub scope: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub last_updated: DateTime<Utc>,
    /// `open`, `closed`, `upcoming`.
    pub status: String,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    /// Affected accounts (organization view).
    pub accounts: Vec<String>,
    pub entities: Vec<SimEntity>,
}

/// One affected entity.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEntity {
    pub account: String,
    pub value: String,
    pub arn: Option<String>,
    pub url: Option<String>,
    /// `IMPAIRED`, `UNIMPAIRED`, `UNKNOWN`, `PENDING`, `RESOLVED`.
    pub status: String,
    pub last_updated: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
}

impl SimEntity {
    pub fn new(account: &str, value: &str, status: &str, last_updated: DateTime<Utc>) -> Self {
        SimEntity {
            account: account.into(),
            value: value.into(),
            arn: None,
            url: None,
            status: status.into(),
            last_updated,
            tags: BTreeMap::new(),
        }
    }
}

/// Epoch seconds with fractions, as the API writes timestamps.
pub fn epoch(time: DateTime<Utc>) -> Value {
    json!(time.timestamp_millis() as f64 / 1000.0)
}

impl SimEvent {
    /// An account-specific event with its entities' accounts as affected accounts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        arn: &str,
        service: &str,
        event_type_code: &str,
        category: &str,
        region: &str,
        last_updated: DateTime<Utc>,
        status: &str,
        description: &str,
    ) -> Self {
        SimEvent {
            arn: arn.into(),
            service: service.into(),
            event_type_code: event_type_code.into(),
            category: category.into(),
            region: region.into(),
            scope: "ACCOUNT_SPECIFIC".into(),
            start: None,
            end: None,
            last_updated,
            status: status.into(),
            description: description.into(),
            metadata: BTreeMap::new(),
            accounts: Vec::new(),
            entities: Vec::new(),
        }
    }

    pub fn with_window(mut self, start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Self {
        self.start = Some(start);
        self.end = end;
        self
    }

    /// Adds entities (and their accounts to the affected accounts).
    pub fn with_entities(mut self, entities: Vec<SimEntity>) -> Self {
        for entity in entities {
            if !self.accounts.contains(&entity.account) {
                self.accounts.push(entity.account.clone());
            }
            self.entities.push(entity);
        }
        self
    }

    pub fn with_accounts(mut self, accounts: &[&str]) -> Self {
        for account in accounts {
            if !self.accounts.iter().any(|a| a == account) {
                self.accounts.push((*account).to_owned());
            }
        }
        self
    }

    /// `Event` (and `OrganizationEvent`, which lacks `availabilityZone`).
    pub fn to_api(&self) -> Value {
        let mut event = json!({
            "arn": self.arn,
            "service": self.service,
            "eventTypeCode": self.event_type_code,
            "eventTypeCategory": self.category,
            "region": self.region,
            "lastUpdatedTime": epoch(self.last_updated),
            "statusCode": self.status,
            "eventScopeCode": self.scope,
        });
        if let Some(start) = self.start {
            event["startTime"] = epoch(start);
        }
        if let Some(end) = self.end {
            event["endTime"] = epoch(end);
        }
        event
    }

    /// `EventDetails` / `OrganizationEventDetails` (with `awsAccountId` when given).
    pub fn details(&self, account: Option<&str>) -> Value {
        let mut details = json!({
            "event": self.to_api(),
            "eventDescription": {"latestDescription": self.description},
            "eventMetadata": self.metadata,
        });
        if let Some(account) = account {
            details["awsAccountId"] = json!(account);
        }
        details
    }

    /// `AffectedEntity`.
    pub fn entity_to_api(&self, entity: &SimEntity) -> Value {
        let mut value = json!({
            "eventArn": self.arn,
            "entityValue": entity.value,
            "awsAccountId": entity.account,
            "lastUpdatedTime": epoch(entity.last_updated),
            "statusCode": entity.status,
        });
        if let Some(arn) = &entity.arn {
            value["entityArn"] = json!(arn);
        }
        if let Some(url) = &entity.url {
            value["entityUrl"] = json!(url);
        }
        if !entity.tags.is_empty() {
            value["tags"] = json!(entity.tags);
        }
        value
    }
}
