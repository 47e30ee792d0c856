//! AWS Health API responses, converted to the EventBridge shape, and the raw envelope every
//! intake publishes. ingest-health's reconcile and `explain` use the same functions, so the
//! same notice becomes the same `RawEvent` whichever way it came.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contracts::{PayloadKind, RawEvent, Source};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use triage_policy::PolicyError;

use crate::dates::to_rfc1123;
use crate::event::{HealthEvent, time};

/// `detail-type` of AWS Health events on EventBridge.
pub const DETAIL_TYPE: &str = "AWS Health Event";

/// Whether `document` is something `explain` can read as AWS Health: an EventBridge event, a
/// `DescribeEvents`, `DescribeEventDetails` or `DescribeAffectedEntities` response (or their
/// organization variants), or a list of those.
pub fn recognise(document: &Value) -> bool {
    match document {
        Value::Array(list) => !list.is_empty() && list.iter().all(recognise),
        Value::Object(_) => is_eventbridge(document) || api_kind(document).is_some(),
        _ => false,
    }
}

fn is_eventbridge(document: &Value) -> bool {
    document.get("source").and_then(Value::as_str) == Some("aws.health")
        || document.get("detail-type").and_then(Value::as_str).is_some_and(|t| t.starts_with("AWS Health"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiKind {
    Events,
    Details,
    Entities,
    AffectedAccounts,
}

fn api_kind(document: &Value) -> Option<ApiKind> {
    let list_of = |field: &str, member: &str| {
        document
            .get(field)
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().all(|item| item.get(member).is_some()))
    };
    if list_of("events", "arn") && document.get("events").is_some() {
        Some(ApiKind::Events)
    } else if list_of("successfulSet", "event") {
        Some(ApiKind::Details)
    } else if list_of("entities", "eventArn") {
        Some(ApiKind::Entities)
    } else if document.get("affectedAccounts").is_some_and(Value::is_array)
        && document.get("eventArn").is_some()
    {
        Some(ApiKind::AffectedAccounts)
    } else {
        None
    }
}

/// Converts one Health API event (the `Event` or `OrganizationEvent` of `DescribeEvents`, or
/// the `event` of `DescribeEventDetails`) with its description, metadata and affected entities
/// (`AffectedEntity` objects) into the EventBridge shape for `account`.
pub fn eventbridge_from_api(
    event: &Value,
    description: Option<&str>,
    metadata: Option<&Value>,
    entities: &[Value],
    account: &str,
) -> Value {
    let arn = event.get("arn").and_then(Value::as_str).unwrap_or_default();
    let field = |name: &str| event.get(name).cloned().unwrap_or(Value::Null);
    let rfc1123 =
        |name: &str| time(event.get(name)).map(to_rfc1123).map(Value::String).unwrap_or(Value::Null);
    let last_updated = time(event.get("lastUpdatedTime"));
    let region = event.get("region").and_then(Value::as_str).unwrap_or("global");
    let affected: Vec<Value> = entities
        .iter()
        .map(|entity| {
            let mut converted = Map::new();
            for name in ["entityValue", "entityArn", "entityUrl"] {
                if let Some(value) = entity.get(name).filter(|v| !v.is_null()) {
                    converted.insert(name.into(), value.clone());
                }
            }
            if let Some(updated) = time(entity.get("lastUpdatedTime")) {
                converted.insert("lastUpdatedTime".into(), json!(to_rfc1123(updated)));
            }
            if let Some(status) = entity.get("statusCode").or_else(|| entity.get("status")) {
                converted.insert("status".into(), status.clone());
            }
            if let Some(tags) = entity.get("tags").filter(|t| t.is_object()) {
                converted.insert("tags".into(), tags.clone());
            }
            Value::Object(converted)
        })
        .collect();
    let resources: Vec<Value> = affected
        .iter()
        .filter_map(|e| e.get("entityArn").or_else(|| e.get("entityValue")).cloned())
        .collect();
    let mut detail = json!({
        "eventArn": arn,
        "service": field("service"),
        "eventTypeCode": field("eventTypeCode"),
        "eventTypeCategory": field("eventTypeCategory"),
        "eventScopeCode": event.get("eventScopeCode").cloned().unwrap_or(json!("ACCOUNT_SPECIFIC")),
        "startTime": rfc1123("startTime"),
        "endTime": rfc1123("endTime"),
        "lastUpdatedTime": rfc1123("lastUpdatedTime"),
        "statusCode": field("statusCode"),
        "eventRegion": region,
        "eventDescription": [{"language": "en_US", "latestDescription": description.unwrap_or_default()}],
        "affectedEntities": affected,
        "page": "1",
        "totalPages": "1",
        "backupEvent": "false",
        "affectedAccount": account,
    });
    let detail_object = detail.as_object_mut().expect("detail is an object");
    detail_object.retain(|_, value| !value.is_null());
    if let Some(metadata) = metadata.filter(|m| m.as_object().is_some_and(|o| !o.is_empty())) {
        detail_object.insert("eventMetadata".into(), metadata.clone());
    }
    for name in ["actionability", "personas"] {
        if let Some(value) = event.get(name).filter(|v| !v.is_null()) {
            detail_object.insert(name.into(), value.clone());
        }
    }
    let sent = last_updated.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    json!({
        "version": "0",
        "id": format!("health-api-{}", &hex::encode(Sha256::digest(format!("{arn}|{account}|{sent:?}")))[..32]),
        "detail-type": DETAIL_TYPE,
        "source": "aws.health",
        "account": account,
        "time": sent,
        "region": if region == "global" { "us-east-1" } else { region },
        "resources": resources,
        "detail": detail,
    })
}

/// The deduplication id of an event message: its identity (`eventArn`, affected account), its
/// version (`lastUpdatedTime` in whole seconds) and its page. Never the EventBridge `id`, the
/// delivery time or the backup flag, so a backup copy or the same version from another intake
/// is the same message. Without `lastUpdatedTime`, a hash of the detail stands for the version.
pub fn dedup_id(event: &HealthEvent, payload: &Value) -> String {
    let version = match event.last_updated {
        Some(time) => time.timestamp().to_string(),
        None => {
            let mut detail = payload.get("detail").cloned().unwrap_or(Value::Null);
            if let Some(object) = detail.as_object_mut() {
                object.remove("backupEvent");
            }
            format!("h{}", &hex::encode(Sha256::digest(detail.to_string().as_bytes()))[..16])
        }
    };
    format!("health:{}:{}:{}:{}", event.event_arn, event.affected_account, version, event.page)
}

/// The raw envelope of one EventBridge-shaped AWS Health event; refuses (as malformed) a
/// payload that is not one.
pub fn raw_event(
    payload: Value,
    received_from: &str,
    received_at: DateTime<Utc>,
) -> Result<RawEvent, PolicyError> {
    let event = HealthEvent::from_payload(&payload)?;
    let dedup = dedup_id(&event, &payload);
    Ok(RawEvent::new(
        Source::AwsHealth,
        PayloadKind::AwsHealthEvent,
        received_from,
        dedup,
        payload,
        received_at,
    ))
}

/// The subject partition of an event: `<affected account>/<region>`.
pub fn partition(raw: &RawEvent) -> String {
    let detail = raw.payload.get("detail");
    let account = detail.and_then(|d| d.get("affectedAccount")).and_then(Value::as_str);
    let account = account.or_else(|| raw.payload.get("account").and_then(Value::as_str)).unwrap_or("unknown");
    let region = detail.and_then(|d| d.get("eventRegion")).and_then(Value::as_str).unwrap_or("global");
    format!("{account}/{region}")
}

/// One event being assembled from API responses.
#[derive(Default)]
struct Assembly {
    summary: Option<Value>,
    /// Details per account (`None`: the non-organization call, which names no account).
    details: BTreeMap<Option<String>, (Value, Option<String>, Option<Value>)>,
    entities: Vec<Value>,
    accounts: Vec<String>,
}

/// API responses of one stream, joined by event ARN.
#[derive(Default)]
struct Batch {
    order: Vec<String>,
    events: BTreeMap<String, Assembly>,
    /// Accounts seen per event ARN in earlier batches: a later version (a closed event's
    /// details alone) concerns the same accounts.
    known_accounts: BTreeMap<String, Vec<String>>,
    /// The account of single-account API responses, which name none.
    default_account: Option<String>,
    /// Events that could not be attributed, with the reason.
    skipped: Vec<PolicyError>,
}

impl Batch {
    fn entry(&mut self, arn: &str) -> &mut Assembly {
        if !self.events.contains_key(arn) {
            self.order.push(arn.to_owned());
        }
        self.events.entry(arn.to_owned()).or_default()
    }

    /// Whether `document` repeats something this batch already has (a newer version of it).
    fn repeats(&self, kind: ApiKind, document: &Value) -> bool {
        let items = |field: &str| document.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
        match kind {
            ApiKind::Events => items("events").iter().any(|e| {
                arn_of(e).is_some_and(|arn| self.events.get(arn).is_some_and(|a| a.summary.is_some()))
            }),
            ApiKind::Details => items("successfulSet").iter().any(|d| {
                let account = d.get("awsAccountId").and_then(Value::as_str).map(str::to_owned);
                d.get("event")
                    .and_then(arn_of)
                    .is_some_and(|arn| self.events.get(arn).is_some_and(|a| a.details.contains_key(&account)))
            }),
            ApiKind::Entities | ApiKind::AffectedAccounts => false,
        }
    }

    fn add(&mut self, kind: ApiKind, document: &Value) {
        let items = |field: &str| document.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
        match kind {
            ApiKind::Events => {
                for event in items("events") {
                    if let Some(arn) = arn_of(&event) {
                        self.entry(arn).summary = Some(event.clone());
                    }
                }
            }
            ApiKind::Details => {
                for detail in items("successfulSet") {
                    let Some(event) = detail.get("event") else { continue };
                    let Some(arn) = arn_of(event) else { continue };
                    let account = detail.get("awsAccountId").and_then(Value::as_str).map(str::to_owned);
                    let description = detail
                        .get("eventDescription")
                        .and_then(|d| d.get("latestDescription"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let metadata = detail.get("eventMetadata").cloned();
                    self.entry(arn).details.insert(account, (event.clone(), description, metadata));
                }
            }
            ApiKind::Entities => {
                for entity in items("entities") {
                    let Some(arn) = entity.get("eventArn").and_then(Value::as_str) else { continue };
                    let assembly = self.entry(arn);
                    let same = |e: &Value| {
                        e.get("entityValue") == entity.get("entityValue")
                            && e.get("awsAccountId") == entity.get("awsAccountId")
                    };
                    assembly.entities.retain(|e| !same(e));
                    assembly.entities.push(entity.clone());
                }
            }
            ApiKind::AffectedAccounts => {
                if let Some(arn) = document.get("eventArn").and_then(Value::as_str) {
                    let assembly = self.entry(arn);
                    for account in items("affectedAccounts") {
                        if let Some(account) = account.as_str()
                            && !assembly.accounts.iter().any(|a| a == account)
                        {
                            assembly.accounts.push(account.to_owned());
                        }
                    }
                }
            }
        }
    }

    /// The EventBridge-shaped events of the batch, in the order their ARNs first appeared, one
    /// per affected account.
    /// Events that cannot be attributed are set aside in `skipped`; the rest go on.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for arn in std::mem::take(&mut self.order) {
            let assembly = self.events.remove(&arn).expect("every ordered ARN has an assembly");
            let known = self.known_accounts.entry(arn.clone()).or_default();
            match assemble(&arn, assembly, known, self.default_account.as_deref()) {
                Ok((events, accounts)) => {
                    *known = accounts;
                    out.extend(events);
                }
                Err(reason) => self.skipped.push(reason),
            }
        }
        out
    }
}

fn arn_of(event: &Value) -> Option<&str> {
    event.get("arn").and_then(Value::as_str)
}

/// The accounts an assembled event concerns: organization details, affected accounts and the
/// entities' accounts, in that order of appearance.
fn assemble(
    arn: &str,
    assembly: Assembly,
    known: &[String],
    default_account: Option<&str>,
) -> Result<(Vec<Value>, Vec<String>), PolicyError> {
    let mut accounts: Vec<String> = Vec::new();
    let mut note = |account: &str| {
        if !accounts.iter().any(|a| a == account) {
            accounts.push(account.to_owned());
        }
    };
    assembly.details.keys().flatten().for_each(|a| note(a));
    assembly.accounts.iter().for_each(|a| note(a));
    assembly
        .entities
        .iter()
        .filter_map(|e| e.get("awsAccountId").and_then(Value::as_str))
        .for_each(&mut note);
    if accounts.is_empty() {
        accounts = known.to_vec();
    }
    let public = [assembly.summary.as_ref()]
        .into_iter()
        .flatten()
        .chain(assembly.details.values().map(|(event, _, _)| event))
        .any(|event| event.get("eventScopeCode").and_then(Value::as_str) == Some("PUBLIC"));
    // A public event names no account because it concerns none: the default account is not its.
    if accounts.is_empty() && public {
        return Err(PolicyError::Ignored(format!(
            "event {arn} is a PUBLIC event: it concerns a whole Region, not an account's resources"
        )));
    }
    if accounts.is_empty()
        && let Some(account) = default_account
    {
        accounts.push(account.to_owned());
    }
    if accounts.is_empty() {
        return Err(PolicyError::malformed(
            "AWS Health API response",
            format!(
                "event {arn} names no affected account: add its DescribeAffectedEntities response (which \
                 carries awsAccountId), use the organization responses, or name the account (explain --account)"
            ),
        ));
    }
    let mut events = Vec::new();
    for account in &accounts {
        let details = assembly.details.get(&Some(account.clone())).or_else(|| assembly.details.get(&None));
        let (event, description, metadata) = match (details, &assembly.summary) {
            (Some((event, description, metadata)), _) => (event, description.as_deref(), metadata.as_ref()),
            (None, Some(summary)) => (summary, None, None),
            (None, None) => {
                return Err(PolicyError::malformed(
                    "AWS Health API response",
                    format!(
                        "event {arn} has entities but neither its DescribeEvents nor its DescribeEventDetails response"
                    ),
                ));
            }
        };
        let entities: Vec<Value> = assembly
            .entities
            .iter()
            .filter(|e| e.get("awsAccountId").and_then(Value::as_str).is_none_or(|a| a == account.as_str()))
            .cloned()
            .collect();
        events.push(eventbridge_from_api(event, description, metadata, &entities, account));
    }
    Ok((events, accounts))
}

/// The raw events a stream of documents yields, as ingest-health would publish them: EventBridge
/// events as they are; API responses joined by event ARN (a response repeating an event already
/// in the pending join starts a new version) and converted to the EventBridge shape. The first
/// event that cannot be attributed to an account fails the whole stream.
pub fn raw_events_from_documents(
    documents: &[Value],
    received_at: DateTime<Utc>,
) -> Result<Vec<RawEvent>, PolicyError> {
    let read = read_documents(documents, received_at, None)?;
    match read.skipped.into_iter().next() {
        Some(reason) => Err(reason),
        None => Ok(read.events),
    }
}

/// What a stream of documents yields: its raw events, and the events set aside because they
/// cannot be attributed to an account (no account known, a PUBLIC event), each with its reason.
#[derive(Debug)]
pub struct ReadDocuments {
    pub events: Vec<RawEvent>,
    pub skipped: Vec<PolicyError>,
}

/// As [`raw_events_from_documents`], but an event that cannot be attributed is set aside with
/// its reason and the rest goes on; `default_account` is the account of single-account API
/// responses, which name none. A document that is not AWS Health at all still fails.
pub fn read_documents(
    documents: &[Value],
    received_at: DateTime<Utc>,
    default_account: Option<&str>,
) -> Result<ReadDocuments, PolicyError> {
    let mut payloads: Vec<Value> = Vec::new();
    let mut batch = Batch { default_account: default_account.map(str::to_owned), ..Batch::default() };
    let mut queue: Vec<&Value> = documents.iter().rev().collect();
    while let Some(document) = queue.pop() {
        if let Value::Array(list) = document {
            queue.extend(list.iter().rev());
            continue;
        }
        if is_eventbridge(document) {
            payloads.extend(batch.drain());
            payloads.push(document.clone());
            continue;
        }
        let Some(kind) = api_kind(document) else {
            return Err(PolicyError::malformed(
                "AWS Health document",
                "neither an EventBridge event nor a DescribeEvents, DescribeEventDetails, \
                 DescribeAffectedEntities or DescribeAffectedAccountsForOrganization response",
            ));
        };
        if batch.repeats(kind, document) {
            payloads.extend(batch.drain());
        }
        batch.add(kind, document);
    }
    payloads.extend(batch.drain());
    let mut skipped = std::mem::take(&mut batch.skipped);
    let mut events = Vec::with_capacity(payloads.len());
    for payload in payloads {
        match raw_event(payload, "explain", received_at) {
            Ok(event) => events.push(event),
            Err(reason) => skipped.push(reason),
        }
    }
    Ok(ReadDocuments { events, skipped })
}
