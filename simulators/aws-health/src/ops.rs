//! The AWS Health operations over the simulator's events.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::model::SimEvent;
use crate::protocol::ApiError;

/// Largest page the simulator returns, whatever `maxResults` asks (the real API returns fewer
/// than asked, too: always follow `nextToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    pub events: usize,
    pub entities: usize,
    pub accounts: usize,
}

impl Default for PageLimits {
    fn default() -> Self {
        PageLimits { events: 10, entities: 10, accounts: 10 }
    }
}

/// The operations the simulator implements.
pub const OPERATIONS: &[&str] = &[
    "DescribeEvents",
    "DescribeEventDetails",
    "DescribeAffectedEntities",
    "DescribeEventsForOrganization",
    "DescribeEventDetailsForOrganization",
    "DescribeAffectedAccountsForOrganization",
    "DescribeAffectedEntitiesForOrganization",
    SERVICE_STATUS,
];

/// Whether the organizational view is enabled (answered by the simulator's state).
pub const SERVICE_STATUS: &str = "DescribeHealthServiceStatusForOrganization";

pub fn dispatch(
    operation: &str,
    input: &Value,
    events: &[SimEvent],
    limits: PageLimits,
) -> Result<Value, ApiError> {
    match operation {
        "DescribeEvents" => describe_events(operation, input, events, limits, false),
        "DescribeEventsForOrganization" => describe_events(operation, input, events, limits, true),
        "DescribeEventDetails" => describe_event_details(input, events),
        "DescribeEventDetailsForOrganization" => describe_event_details_for_organization(input, events),
        "DescribeAffectedEntities" => describe_affected_entities(operation, input, events, limits),
        "DescribeAffectedEntitiesForOrganization" => {
            describe_affected_entities_for_organization(operation, input, events, limits)
        }
        "DescribeAffectedAccountsForOrganization" => {
            describe_affected_accounts_for_organization(operation, input, events, limits)
        }
        other => Err(ApiError::unknown_operation(other)),
    }
}

/// `nextToken`: the operation, a fingerprint of the request and the offset, opaque to clients.
fn token(operation: &str, input: &Value, offset: usize) -> String {
    let text = format!("{operation}|{}|{offset}", fingerprint(input));
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn fingerprint(input: &Value) -> String {
    let mut input = input.clone();
    if let Some(object) = input.as_object_mut() {
        object.remove("nextToken");
        object.remove("maxResults");
    }
    let text = input.to_string();
    format!(
        "{:016x}",
        text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
    )
}

fn offset(operation: &str, input: &Value) -> Result<usize, ApiError> {
    let Some(token) = input.get("nextToken").and_then(Value::as_str) else { return Ok(0) };
    let invalid = || ApiError::invalid_token(format!("invalid nextToken for {operation}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.split('|');
    let (Some(op), Some(print), Some(offset)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if op != operation || print != fingerprint(input) {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

/// `maxResults` within `min..=max`, capped by the simulator's page limit.
fn page_size(input: &Value, min: u64, max: u64, cap: usize) -> Result<usize, ApiError> {
    match input.get("maxResults").and_then(Value::as_u64) {
        None => Ok(cap),
        Some(n) if (min..=max).contains(&n) => Ok((n as usize).min(cap)),
        Some(n) => Err(ApiError::validation(format!("maxResults {n} is outside {min}..{max}"))),
    }
}

/// One page of `items` and the token for the next.
fn paginate(
    operation: &str,
    input: &Value,
    items: Vec<Value>,
    size: usize,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let start = offset(operation, input)?;
    if start > items.len() {
        return Err(ApiError::invalid_token(format!("nextToken is past the end for {operation}")));
    }
    let end = (start + size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| token(operation, input, end));
    Ok((items[start..end].to_vec(), next))
}

fn respond(field: &str, page: Vec<Value>, next: Option<String>) -> Value {
    let mut out = json!({ field: page });
    if let Some(next) = next {
        out["nextToken"] = json!(next);
    }
    out
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    let seconds = value.as_f64()?;
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

fn in_range(time_value: DateTime<Utc>, range: &Value) -> bool {
    range.get("from").and_then(time).is_none_or(|from| time_value >= from)
        && range.get("to").and_then(time).is_none_or(|to| time_value <= to)
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

fn matches_filter(event: &SimEvent, filter: &Value, organization: bool) -> bool {
    let listed = |name: &str, actual: &str| {
        strings(filter.get(name)).is_none_or(|list| list.iter().any(|v| v == actual))
    };
    let updated_ok = if organization {
        filter.get("lastUpdatedTime").is_none_or(|range| in_range(event.last_updated, range))
    } else {
        filter
            .get("lastUpdatedTimes")
            .and_then(Value::as_array)
            .is_none_or(|ranges| ranges.iter().any(|range| in_range(event.last_updated, range)))
    };
    let accounts_ok = strings(filter.get("awsAccountIds"))
        .is_none_or(|list| event.accounts.iter().any(|a| list.contains(a)));
    listed("eventArns", &event.arn)
        && listed("eventTypeCodes", &event.event_type_code)
        && listed("services", &event.service)
        && listed("regions", &event.region)
        && listed("eventTypeCategories", &event.category)
        && listed("eventStatusCodes", &event.status)
        && updated_ok
        && accounts_ok
}

fn describe_events(
    operation: &str,
    input: &Value,
    events: &[SimEvent],
    limits: PageLimits,
    organization: bool,
) -> Result<Value, ApiError> {
    let size = page_size(input, 1, 100, limits.events)?;
    let filter = input.get("filter").cloned().unwrap_or(json!({}));
    if !organization && filter.get("lastUpdatedTime").is_some() {
        return Err(ApiError::serialization(
            "EventFilter has lastUpdatedTimes (a list), not lastUpdatedTime",
        ));
    }
    let mut matching: Vec<&SimEvent> =
        events.iter().filter(|e| matches_filter(e, &filter, organization)).collect();
    matching.sort_by(|a, b| b.last_updated.cmp(&a.last_updated).then(a.arn.cmp(&b.arn)));
    let items = matching.iter().map(|e| e.to_api()).collect();
    let (page, next) = paginate(operation, input, items, size)?;
    Ok(respond("events", page, next))
}

fn find<'a>(events: &'a [SimEvent], arn: &str) -> Option<&'a SimEvent> {
    events.iter().find(|e| e.arn == arn)
}

fn bounded_list(input: &Value, name: &str, max: usize) -> Result<Vec<Value>, ApiError> {
    let list = input.get(name).and_then(Value::as_array).cloned().unwrap_or_default();
    if list.is_empty() || list.len() > max {
        return Err(ApiError::validation(format!("{name} must have 1 to {max} members, has {}", list.len())));
    }
    Ok(list)
}

fn describe_event_details(input: &Value, events: &[SimEvent]) -> Result<Value, ApiError> {
    let arns = bounded_list(input, "eventArns", 10)?;
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for arn in arns.iter().filter_map(Value::as_str) {
        match find(events, arn) {
            Some(event) => successful.push(event.details(None)),
            None => failed.push(json!({"eventArn": arn, "errorName": "UnknownEvent", "errorMessage": format!("no event {arn}")})),
        }
    }
    Ok(json!({"successfulSet": successful, "failedSet": failed}))
}

fn describe_event_details_for_organization(input: &Value, events: &[SimEvent]) -> Result<Value, ApiError> {
    let filters = bounded_list(input, "organizationEventDetailFilters", 10)?;
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for filter in filters {
        let arn = filter.get("eventArn").and_then(Value::as_str).unwrap_or_default();
        let account = filter.get("awsAccountId").and_then(Value::as_str);
        let error = |name: &str, message: String| json!({"eventArn": arn, "awsAccountId": account, "errorName": name, "errorMessage": message});
        match (find(events, arn), account) {
            (None, _) => failed.push(error("UnknownEvent", format!("no event {arn}"))),
            (Some(event), None) if event.scope == "ACCOUNT_SPECIFIC" => {
                failed.push(error("AccountIdRequired", "account-specific events require awsAccountId".into()))
            }
            (Some(event), Some(account)) if !event.accounts.iter().any(|a| a == account) => {
                failed.push(error("UnknownAccount", format!("{account} is not affected by {arn}")))
            }
            (Some(event), account) => successful.push(event.details(account)),
        }
    }
    Ok(json!({"successfulSet": successful, "failedSet": failed}))
}

fn describe_affected_entities(
    operation: &str,
    input: &Value,
    events: &[SimEvent],
    limits: PageLimits,
) -> Result<Value, ApiError> {
    let size = page_size(input, 1, 100, limits.entities)?;
    let filter = input.get("filter").cloned().unwrap_or(json!({}));
    let arns = bounded_list(&filter, "eventArns", 10)?;
    let statuses = strings(filter.get("statusCodes"));
    let mut items = Vec::new();
    for arn in arns.iter().filter_map(Value::as_str) {
        if let Some(event) = find(events, arn) {
            for entity in &event.entities {
                if statuses.as_ref().is_none_or(|s| s.contains(&entity.status)) {
                    items.push(event.entity_to_api(entity));
                }
            }
        }
    }
    let (page, next) = paginate(operation, input, items, size)?;
    Ok(respond("entities", page, next))
}

fn describe_affected_entities_for_organization(
    operation: &str,
    input: &Value,
    events: &[SimEvent],
    limits: PageLimits,
) -> Result<Value, ApiError> {
    let size = page_size(input, 1, 100, limits.entities)?;
    let filters = match input.get("organizationEntityAccountFilters") {
        Some(_) => bounded_list(input, "organizationEntityAccountFilters", 10)?,
        None => bounded_list(input, "organizationEntityFilters", 10)?,
    };
    let mut items = Vec::new();
    for filter in filters {
        let arn = filter.get("eventArn").and_then(Value::as_str).unwrap_or_default();
        let account = filter.get("awsAccountId").and_then(Value::as_str);
        let statuses = strings(filter.get("statusCodes"));
        if let Some(event) = find(events, arn) {
            for entity in &event.entities {
                if account.is_none_or(|a| a == entity.account)
                    && statuses.as_ref().is_none_or(|s| s.contains(&entity.status))
                {
                    items.push(event.entity_to_api(entity));
                }
            }
        }
    }
    let (page, next) = paginate(operation, input, items, size)?;
    let mut out = respond("entities", page, next);
    out["failedSet"] = json!([]);
    Ok(out)
}

fn describe_affected_accounts_for_organization(
    operation: &str,
    input: &Value,
    events: &[SimEvent],
    limits: PageLimits,
) -> Result<Value, ApiError> {
    let size = page_size(input, 10, 100, limits.accounts)?;
    let arn = input
        .get("eventArn")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("eventArn is required"))?;
    let event = find(events, arn);
    let accounts = event.map(|e| e.accounts.iter().map(|a| json!(a)).collect()).unwrap_or_default();
    let (page, next) = paginate(operation, input, accounts, size)?;
    let mut out = respond("affectedAccounts", page, next);
    out["eventScopeCode"] = json!(event.map_or("NONE", |e| e.scope.as_str()));
    Ok(out)
}
