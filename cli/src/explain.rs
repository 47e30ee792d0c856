//! `infra-tickets explain`: what tickets would these payloads produce?
//!
//! Reads Snyk and AWS Health payloads from files (in the order given, as one input), runs them
//! through the same policies triage runs, in memory, and prints the final desired tickets as JSON,
//! one per line. Operators use it to check a policy or catalog before deploying it.

use std::path::PathBuf;
use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::{DesiredTicket, DueDateSource, Lane, RawEvent};
use health_policy::{HealthPolicy, HealthSettings};
use serde::Serialize;
use snyk_policy::{SnykPolicy, SnykSettings};
use triage_policy::{InMemoryTriage, PolicyError};

/// Explain what tickets payloads would produce.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Payload files: Snyk REST projects and issues pages, Snyk v1 webhook bodies, AWS Health
    /// EventBridge events, DescribeEvents / DescribeEventDetails / DescribeAffectedEntities
    /// responses. Several files are one input, in the order given.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Ownership catalog (TOML); without it everything goes to --default-team.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    #[arg(long, default_value = "platform")]
    pub default_team: String,
    /// The day to evaluate on (YYYY-MM-DD), for due dates that count from today.
    #[arg(long)]
    pub today: Option<NaiveDate>,
    #[command(flatten)]
    pub snyk: SnykSettings,
    #[command(flatten)]
    pub health: HealthSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not JSON: {source}")]
    NotJson { path: String, source: serde_json::Error },
    #[error("{path} is neither a Snyk nor an AWS Health payload explain knows")]
    Unrecognised { path: String },
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// One line of output.
#[derive(Debug, Serialize)]
pub struct ExplainedTicket {
    pub key: String,
    pub team: String,
    pub lane: Lane,
    pub priority: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub due_source: Option<String>,
    pub state: contracts::TicketState,
    pub summary: String,
    pub items: Vec<contracts::TicketItem>,
}

impl From<&DesiredTicket> for ExplainedTicket {
    fn from(ticket: &DesiredTicket) -> Self {
        ExplainedTicket {
            key: ticket.group_key.to_string(),
            team: ticket.team.clone(),
            lane: ticket.lane,
            priority: (ticket.lane != Lane::Maintenance).then(|| ticket.lane.to_string()),
            due_date: ticket.due.as_ref().map(|d| d.date),
            due_source: ticket.due.as_ref().map(|d| match &d.source {
                DueDateSource::LaneSla { lane, since } => format!("{lane} service level from {since}"),
                DueDateSource::EventWindow => "the event's scheduled window".to_owned(),
                DueDateSource::EventText { sentence } => sentence.clone(),
            }),
            state: ticket.state,
            summary: ticket.summary.clone(),
            items: ticket.body.items.clone(),
        }
    }
}

/// Runs explain and returns the tickets, in group-key order.
pub fn explain(args: ExplainArgs) -> Result<Vec<ExplainedTicket>, ExplainError> {
    let catalog = Arc::new(match &args.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default_only(&args.default_team),
    });
    let now: DateTime<Utc> = match args.today {
        Some(day) => day.and_hms_opt(12, 0, 0).expect("noon exists").and_utc(),
        None => Utc::now(),
    };
    let mut snyk_documents = Vec::new();
    let mut health_documents = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ExplainError::Read { path: shown.clone(), source })?;
        let document: serde_json::Value = serde_json::from_str(&text)
            .map_err(|source| ExplainError::NotJson { path: shown.clone(), source })?;
        if snyk_policy::recognise(&document) {
            snyk_documents.push(document);
        } else if health_policy::recognise(&document) {
            health_documents.push(document);
        } else {
            return Err(ExplainError::Unrecognised { path: shown });
        }
    }

    let mut tickets: Vec<ExplainedTicket> = Vec::new();
    if !snyk_documents.is_empty() {
        let events = snyk_policy::raw_events_from_documents(&snyk_documents, now)?;
        let triage = InMemoryTriage::new(SnykPolicy::new(catalog.clone(), args.snyk));
        tickets.extend(fold(triage, &events, now)?);
    }
    if !health_documents.is_empty() {
        let events = health_policy::raw_events_from_documents(&health_documents, now)?;
        let triage = InMemoryTriage::new(HealthPolicy::new(catalog, args.health));
        tickets.extend(fold(triage, &events, now)?);
    }
    tickets.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(tickets)
}

fn fold<P: triage_policy::Policy>(
    mut triage: InMemoryTriage<P>,
    events: &[RawEvent],
    now: DateTime<Utc>,
) -> Result<Vec<ExplainedTicket>, PolicyError> {
    for event in events {
        match triage.apply(event, now) {
            Ok(_) => {}
            // Not ticketed by policy (filtered event types): nothing to explain.
            Err(PolicyError::Ignored(reason)) => {
                tracing::info!(dedup_id = %event.dedup_id, %reason, "Not ticketed.");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(triage.tickets().into_iter().map(ExplainedTicket::from).collect())
}
