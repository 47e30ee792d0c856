//! Health API reconcile: on a schedule, lists events by `lastUpdatedTime` (DescribeEvents, or
//! DescribeEventsForOrganization), then their details and affected entities (and affected
//! accounts in the organization view), always following `nextToken`, converts them to the
//! EventBridge shape and publishes them like any other intake. It catches what EventBridge
//! missed and backfills up to 90 days.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_health::types::{
    AffectedEntity, DateTimeRange, EntityAccountFilter, EntityFilter, Event, EventAccountFilter,
    EventDescription, EventFilter, OrganizationEvent, OrganizationEventFilter,
};
use bus::{BusError, JsonKv, Readiness};
use chrono::{DateTime, Utc};
use contracts::RawEvent;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::intake::{Intake, Published};

pub const COMPONENT: &str = "health api reconcile";
/// Most ARNs (or ARN/account pairs) one details or entities call takes.
const BATCH: usize = 10;

/// Why a reconcile failed; the next one retries from the same cursor.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("AWS Health {operation} failed: {message}")]
    Api { operation: &'static str, message: String },
    /// The API handed back a `nextToken` it had already given in this listing: following it
    /// would page forever. The reconcile stops and the next one starts over (a retry, not a
    /// dead letter: nothing is wrong with any event).
    #[error("AWS Health {operation} returned nextToken {token} a second time; stopped paging")]
    RepeatedPageToken { operation: &'static str, token: String },
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl ReconcileError {
    /// Every reconcile failure is retried at the next interval from the same cursor.
    pub fn class(&self) -> bus::ErrorClass {
        bus::ErrorClass::Retry { after: None }
    }
}

fn api_error<E: std::error::Error + 'static>(operation: &'static str) -> impl FnOnce(E) -> ReconcileError {
    move |error| ReconcileError::Api {
        operation,
        message: aws_sdk_health::error::DisplayErrorContext(error).to_string(),
    }
}

/// An event's API JSON, description and metadata, as DescribeEventDetails returns them.
type Details = (Value, Option<String>, Option<Value>);

/// The [`Details`] of one item of DescribeEventDetails (or its organization form).
fn details_of(
    event: &Event,
    description: Option<&EventDescription>,
    metadata: Option<&HashMap<String, String>>,
) -> Details {
    let description = description.and_then(|d| d.latest_description()).map(str::to_owned);
    (event_json(event), description, metadata.map(|m| json!(m)))
}

/// Where the last successful reconcile started.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub last_run: DateTime<Utc>,
}

/// What one reconcile did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub events: usize,
    pub published: Published,
    pub skipped: usize,
}

/// Reconciles with the Health API.
pub struct Reconciler {
    pub client: aws_sdk_health::Client,
    pub organization: bool,
    pub page_size: i32,
    pub backfill: Duration,
    pub overlap: Duration,
    pub account_id: Option<String>,
    pub origin: String,
    pub intake: Intake,
    pub cursors: Option<JsonKv<Cursor>>,
}

impl Reconciler {
    /// The Health client from the standard credential chain, with an optional endpoint.
    pub async fn client(config: &crate::Config) -> aws_sdk_health::Client {
        let shared = config.sdk_config().await;
        // The Health API's own Region (global endpoint), not the queue's.
        let mut builder = aws_sdk_health::config::Builder::from(&shared)
            .region(aws_sdk_health::config::Region::new(config.api_region.clone()));
        if let Some(endpoint) = &config.api_endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_health::Client::from_conf(builder.build())
    }

    fn cursor_key(&self) -> &'static str {
        if self.organization { "health-api.organization" } else { "health-api.account" }
    }

    /// Reconciles every `interval` until `shutdown`, starting now.
    pub async fn run(self, interval: Duration, health: Readiness, shutdown: CancellationToken) {
        health.register(COMPONENT);
        loop {
            match self.reconcile_once().await {
                Ok(report) => {
                    health.set_ready(COMPONENT);
                    if let Some(contact) = self.intake.contact() {
                        contact.succeeded().await;
                    }
                    tracing::info!(
                        events = report.events,
                        stored = report.published.stored,
                        duplicates = report.published.duplicates,
                        skipped = report.skipped,
                        "Reconciled with the Health API."
                    );
                }
                Err(error) => {
                    health.set_unready(COMPONENT, error.to_string());
                    if let Some(contact) = self.intake.contact() {
                        contact.failed(&error.to_string()).await;
                    }
                    tracing::warn!(%error, "Reconcile with the Health API failed; retrying at the next interval.");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One reconcile from the stored cursor (or the backfill horizon).
    pub async fn reconcile_once(&self) -> Result<Report, ReconcileError> {
        let started = self.intake.clock().now();
        let horizon =
            started - chrono::Duration::from_std(self.backfill).unwrap_or(chrono::Duration::days(90));
        let cursor = match &self.cursors {
            Some(cursors) => cursors.get(self.cursor_key()).await?.map(|c| c.value.last_run),
            None => None,
        };
        let overlap = chrono::Duration::from_std(self.overlap).unwrap_or_default();
        let since = cursor.map_or(horizon, |last| (last - overlap).max(horizon));
        let (events, skipped) = if self.organization {
            self.organization_events(since).await?
        } else {
            self.account_events(since).await?
        };
        let published =
            if events.is_empty() { Published::default() } else { self.intake.publish(&events).await? };
        if let Some(cursors) = &self.cursors {
            cursors.put(self.cursor_key(), &Cursor { last_run: started }).await?;
        }
        Ok(Report { events: events.len(), published, skipped })
    }

    fn raw(&self, payload: Value) -> Option<RawEvent> {
        match health_policy::raw_event(payload, &self.origin, self.intake.clock().now()) {
            Ok(raw) => Some(raw),
            Err(error) => {
                tracing::warn!(%error, "The Health API returned an event that cannot be read; skipped.");
                None
            }
        }
    }

    async fn account_events(&self, since: DateTime<Utc>) -> Result<(Vec<RawEvent>, usize), ReconcileError> {
        let summaries: Vec<Event> = all_pages("DescribeEvents", |token| async move {
            let filter = EventFilter::builder().last_updated_times(range_from(since)).build();
            let page = self
                .client
                .describe_events()
                .filter(filter)
                .max_results(self.page_size)
                .set_next_token(token)
                .send()
                .await
                .map_err(api_error("DescribeEvents"))?;
            Ok((page.events().to_vec(), page.next_token().map(str::to_owned)))
        })
        .await?;
        let arns: Vec<String> = summaries.iter().filter_map(|e| e.arn().map(str::to_owned)).collect();
        let mut details: BTreeMap<String, Details> = BTreeMap::new();
        for chunk in arns.chunks(BATCH) {
            let output = self
                .client
                .describe_event_details()
                .set_event_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(api_error("DescribeEventDetails"))?;
            for item in output.successful_set() {
                if let Some(event) = item.event() {
                    details.insert(
                        event.arn().unwrap_or_default().to_owned(),
                        details_of(event, item.event_description(), item.event_metadata()),
                    );
                }
            }
            for failed in output.failed_set() {
                tracing::warn!(
                    event_arn = failed.event_arn().unwrap_or_default(),
                    error = failed.error_message().unwrap_or_default(),
                    "No details for an event."
                );
            }
        }
        let mut entities: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for chunk in arns.chunks(BATCH) {
            let listed = all_pages("DescribeAffectedEntities", |token| async move {
                let filter = EntityFilter::builder()
                    .set_event_arns(Some(chunk.to_vec()))
                    .build()
                    .map_err(api_error("DescribeAffectedEntities"))?;
                let page = self
                    .client
                    .describe_affected_entities()
                    .filter(filter)
                    .max_results(self.page_size)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(api_error("DescribeAffectedEntities"))?;
                Ok((page.entities().to_vec(), page.next_token().map(str::to_owned)))
            })
            .await?;
            for entity in &listed {
                entities
                    .entry(entity.event_arn().unwrap_or_default().to_owned())
                    .or_default()
                    .push(entity_json(entity));
            }
        }
        let mut events = Vec::new();
        let mut skipped = 0;
        for summary in &summaries {
            let arn = summary.arn().unwrap_or_default();
            let listed = entities.remove(arn).unwrap_or_default();
            let mut accounts: Vec<String> = Vec::new();
            for account in listed.iter().filter_map(|e| e.get("awsAccountId").and_then(Value::as_str)) {
                if !accounts.iter().any(|a| a == account) {
                    accounts.push(account.to_owned());
                }
            }
            if accounts.is_empty() {
                match &self.account_id {
                    Some(account) => accounts.push(account.clone()),
                    None => {
                        tracing::warn!(
                            event_arn = arn,
                            "An event without entities names no account; set --health-api-account-id."
                        );
                        skipped += 1;
                        continue;
                    }
                }
            }
            let (event, description, metadata) =
                details.get(arn).cloned().unwrap_or_else(|| (event_json(summary), None, None));
            for account in &accounts {
                let own: Vec<Value> = listed
                    .iter()
                    .filter(|e| e.get("awsAccountId").and_then(Value::as_str).is_none_or(|a| a == account))
                    .cloned()
                    .collect();
                let payload = health_policy::eventbridge_from_api(
                    &event,
                    description.as_deref(),
                    metadata.as_ref(),
                    &own,
                    account,
                );
                events.extend(self.raw(payload));
            }
        }
        Ok((events, skipped))
    }

    async fn organization_events(
        &self,
        since: DateTime<Utc>,
    ) -> Result<(Vec<RawEvent>, usize), ReconcileError> {
        let summaries: Vec<OrganizationEvent> =
            all_pages("DescribeEventsForOrganization", |token| async move {
                let filter = OrganizationEventFilter::builder().last_updated_time(range_from(since)).build();
                let page = self
                    .client
                    .describe_events_for_organization()
                    .filter(filter)
                    .max_results(self.page_size)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(api_error("DescribeEventsForOrganization"))?;
                Ok((page.events().to_vec(), page.next_token().map(str::to_owned)))
            })
            .await?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut skipped = 0;
        for summary in &summaries {
            let arn = summary.arn().unwrap_or_default();
            let accounts: Vec<String> =
                all_pages("DescribeAffectedAccountsForOrganization", |token| async move {
                    let page = self
                        .client
                        .describe_affected_accounts_for_organization()
                        .event_arn(arn)
                        .max_results(self.page_size)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(api_error("DescribeAffectedAccountsForOrganization"))?;
                    Ok((page.affected_accounts().to_vec(), page.next_token().map(str::to_owned)))
                })
                .await?;
            if accounts.is_empty() {
                tracing::debug!(event_arn = %arn, "An organization event affects no account (a public event); skipped.");
                skipped += 1;
            }
            pairs.extend(accounts.into_iter().map(|account| (arn.to_owned(), account)));
        }
        let mut details: BTreeMap<(String, String), Details> = BTreeMap::new();
        for chunk in pairs.chunks(BATCH) {
            let filters = chunk
                .iter()
                .map(|(arn, account)| {
                    EventAccountFilter::builder().event_arn(arn).aws_account_id(account).build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(api_error("DescribeEventDetailsForOrganization"))?;
            let output = self
                .client
                .describe_event_details_for_organization()
                .set_organization_event_detail_filters(Some(filters))
                .send()
                .await
                .map_err(api_error("DescribeEventDetailsForOrganization"))?;
            for item in output.successful_set() {
                if let (Some(event), Some(account)) = (item.event(), item.aws_account_id()) {
                    let key = (event.arn().unwrap_or_default().to_owned(), account.to_owned());
                    details.insert(key, details_of(event, item.event_description(), item.event_metadata()));
                }
            }
        }
        let mut entities: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for chunk in pairs.chunks(BATCH) {
            let filters = chunk
                .iter()
                .map(|(arn, account)| {
                    EntityAccountFilter::builder().event_arn(arn).aws_account_id(account).build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(api_error("DescribeAffectedEntitiesForOrganization"))?;
            let filters = &filters;
            let listed = all_pages("DescribeAffectedEntitiesForOrganization", |token| async move {
                let page = self
                    .client
                    .describe_affected_entities_for_organization()
                    .set_organization_entity_account_filters(Some(filters.clone()))
                    .max_results(self.page_size)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(api_error("DescribeAffectedEntitiesForOrganization"))?;
                Ok((page.entities().to_vec(), page.next_token().map(str::to_owned)))
            })
            .await?;
            for entity in &listed {
                let key = (
                    entity.event_arn().unwrap_or_default().to_owned(),
                    entity.aws_account_id().unwrap_or_default().to_owned(),
                );
                entities.entry(key).or_default().push(entity_json(entity));
            }
        }
        let summaries: BTreeMap<&str, &OrganizationEvent> =
            summaries.iter().map(|e| (e.arn().unwrap_or_default(), e)).collect();
        let mut events = Vec::new();
        for (arn, account) in &pairs {
            let key = (arn.clone(), account.clone());
            let (event, description, metadata) = details
                .remove(&key)
                .unwrap_or_else(|| (organization_event_json(summaries[arn.as_str()]), None, None));
            let own = entities.remove(&key).unwrap_or_default();
            let payload = health_policy::eventbridge_from_api(
                &event,
                description.as_deref(),
                metadata.as_ref(),
                &own,
                account,
            );
            events.extend(self.raw(payload));
        }
        Ok((events, skipped))
    }
}

/// Every item of a paged Health API listing: `page` is called with each `nextToken` the
/// previous page returned (none at first) until a page returns none. A token seen before in
/// the same listing (a loop, however long) stops it with [`ReconcileError::RepeatedPageToken`].
async fn all_pages<T, Page, Fut>(operation: &'static str, mut page: Page) -> Result<Vec<T>, ReconcileError>
where
    Page: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ReconcileError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let (batch, next) = page(token).await?;
        items.extend(batch);
        match next {
            None => return Ok(items),
            Some(next) if !seen.insert(next.clone()) => {
                let token: String = next.chars().take(100).collect();
                return Err(ReconcileError::RepeatedPageToken { operation, token: format!("{token:?}") });
            }
            Some(next) => token = Some(next),
        }
    }
}

fn range_from(since: DateTime<Utc>) -> DateTimeRange {
    DateTimeRange::builder()
        .from(aws_sdk_health::primitives::DateTime::from_millis(since.timestamp_millis()))
        .build()
}

/// Epoch seconds, as the API's JSON writes timestamps.
fn epoch(time: Option<&aws_sdk_health::primitives::DateTime>) -> Value {
    match time {
        Some(time) => json!(time.to_millis().map_or(time.secs() as f64, |ms| ms as f64 / 1000.0)),
        None => Value::Null,
    }
}

fn put(object: &mut Value, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        object[name] = json!(value);
    }
}

/// The API JSON of an `Event` (what DescribeEvents and DescribeEventDetails return).
pub fn event_json(event: &Event) -> Value {
    let mut value = json!({
        "startTime": epoch(event.start_time()),
        "endTime": epoch(event.end_time()),
        "lastUpdatedTime": epoch(event.last_updated_time()),
    });
    put(&mut value, "arn", event.arn());
    put(&mut value, "service", event.service());
    put(&mut value, "eventTypeCode", event.event_type_code());
    put(&mut value, "eventTypeCategory", event.event_type_category().map(|c| c.as_str()));
    put(&mut value, "region", event.region());
    put(&mut value, "availabilityZone", event.availability_zone());
    put(&mut value, "statusCode", event.status_code().map(|c| c.as_str()));
    put(&mut value, "eventScopeCode", event.event_scope_code().map(|c| c.as_str()));
    put(&mut value, "actionability", event.actionability().map(|c| c.as_str()));
    if !event.personas().is_empty() {
        value["personas"] = json!(event.personas().iter().map(|p| p.as_str()).collect::<Vec<_>>());
    }
    value
}

/// The API JSON of an `OrganizationEvent`.
pub fn organization_event_json(event: &OrganizationEvent) -> Value {
    let mut value = json!({
        "startTime": epoch(event.start_time()),
        "endTime": epoch(event.end_time()),
        "lastUpdatedTime": epoch(event.last_updated_time()),
    });
    put(&mut value, "arn", event.arn());
    put(&mut value, "service", event.service());
    put(&mut value, "eventTypeCode", event.event_type_code());
    put(&mut value, "eventTypeCategory", event.event_type_category().map(|c| c.as_str()));
    put(&mut value, "region", event.region());
    put(&mut value, "statusCode", event.status_code().map(|c| c.as_str()));
    put(&mut value, "eventScopeCode", event.event_scope_code().map(|c| c.as_str()));
    put(&mut value, "actionability", event.actionability().map(|c| c.as_str()));
    value
}

/// The API JSON of an `AffectedEntity`.
pub fn entity_json(entity: &AffectedEntity) -> Value {
    let mut value = json!({"lastUpdatedTime": epoch(entity.last_updated_time())});
    put(&mut value, "eventArn", entity.event_arn());
    put(&mut value, "entityArn", entity.entity_arn());
    put(&mut value, "entityValue", entity.entity_value());
    put(&mut value, "entityUrl", entity.entity_url());
    put(&mut value, "awsAccountId", entity.aws_account_id());
    put(&mut value, "statusCode", entity.status_code().map(|c| c.as_str()));
    if let Some(tags) = entity.tags().filter(|t| !t.is_empty()) {
        value["tags"] = json!(tags);
    }
    value
}
