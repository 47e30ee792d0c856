//! The tickets the pipeline should end with, computed without it: the simulators' final state
//! read as ingest reads it (Snyk REST pages, AWS Health API responses), turned into raw events by
//! the same functions `explain` uses, and folded by `triage_policy::InMemoryTriage` with the same
//! policies and catalog.

use std::sync::Arc;

use chrono::Utc;
use contracts::{DesiredTicket, RawEvent, TicketState};
use health_policy::{HealthPolicy, HealthSettings};
use serde_json::{Value, json};
use snyk_policy::{SnykPolicy, SnykSettings};
use triage_policy::{InMemoryTriage, Policy, PolicyError};

use crate::world::{ORG_ID, SNYK_TOKEN, Simulators};

/// The final desired state of every group.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Open tickets: each must exist exactly once in JIRA.
    pub open: Vec<DesiredTicket>,
    /// Groups that ended resolved (none in the generated load; kept for completeness).
    pub resolved: Vec<DesiredTicket>,
}

pub async fn compute(sims: &Simulators, catalog: Arc<catalog::Catalog>) -> anyhow::Result<Expected> {
    let now = Utc::now();
    let snyk_documents = snyk_pages(&sims.snyk.base_url()).await?;
    let snyk_events = snyk_policy::raw_events_from_documents(&snyk_documents, now)?;
    let mut tickets =
        fold(InMemoryTriage::new(SnykPolicy::new(catalog.clone(), SnykSettings::default())), &snyk_events)?;
    let health_events = health_raw_events(sims, now)?;
    tickets.extend(fold(
        InMemoryTriage::new(HealthPolicy::new(catalog, HealthSettings::default())),
        &health_events,
    )?);
    let (open, resolved) = tickets.into_iter().partition(|t| t.state == TicketState::Open);
    Ok(Expected { open, resolved })
}

fn fold<P: Policy>(mut triage: InMemoryTriage<P>, events: &[RawEvent]) -> anyhow::Result<Vec<DesiredTicket>> {
    let now = Utc::now();
    for event in events {
        match triage.apply(event, now) {
            Ok(_) | Err(PolicyError::Ignored(_)) => {}
            Err(error) => anyhow::bail!("the expected tickets cannot be computed: {error}"),
        }
    }
    Ok(triage.tickets().into_iter().cloned().collect())
}

/// Every projects page and every open critical issues page, following `links.next`.
async fn snyk_pages(base_url: &str) -> anyhow::Result<Vec<Value>> {
    let client = reqwest::Client::new();
    let mut documents = Vec::new();
    for first in [
        "projects?version=2024-10-15&expand=target&limit=100",
        "issues?version=2024-10-15&limit=100&effective_severity_level=critical&status=open",
    ] {
        let mut next = Some(url::Url::parse(&format!("{base_url}/orgs/{ORG_ID}/{first}"))?);
        while let Some(url) = next.take() {
            let page: Value = client
                .get(url.clone())
                .header("Authorization", format!("token {SNYK_TOKEN}"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if let Some(link) = page.pointer("/links/next").and_then(Value::as_str) {
                next = Some(resolve_link(base_url, link)?);
            }
            documents.push(page);
        }
    }
    Ok(documents)
}

/// A `links.next` value: absolute, from the host (`/rest/orgs/…`) or from the API base
/// (`/orgs/…`).
fn resolve_link(base_url: &str, link: &str) -> anyhow::Result<url::Url> {
    let base = url::Url::parse(base_url)?;
    Ok(if link.starts_with("http://") || link.starts_with("https://") {
        url::Url::parse(link)?
    } else if link.starts_with(base.path()) {
        base.join(link)?
    } else {
        url::Url::parse(&format!("{}{link}", base_url.trim_end_matches('/')))?
    })
}

/// Each event as the Health API shows it (event, details, affected entities), as ingest-health
/// reads it, converted the way ingest-health converts it.
fn health_raw_events(sims: &Simulators, now: chrono::DateTime<Utc>) -> anyhow::Result<Vec<RawEvent>> {
    let mut events = Vec::new();
    for event in sims.health.events() {
        let call = |operation: &str, input: Value| {
            sims.health.invoke(operation, &input).map_err(|e| anyhow::anyhow!("{operation}: {e:?}"))
        };
        let arns = json!([event.arn]);
        let documents = [
            call("DescribeEvents", json!({"filter": {"eventArns": arns}}))?,
            call("DescribeEventDetails", json!({"eventArns": arns}))?,
            call("DescribeAffectedEntities", json!({"filter": {"eventArns": arns}, "maxResults": 100}))?,
        ];
        events.extend(health_policy::raw_events_from_documents(&documents, now)?);
    }
    Ok(events)
}
