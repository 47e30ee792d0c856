//! `infra-tickets explain`: what tickets would these payloads produce?
//!
//! Reads Snyk and AWS Health payloads from files (in the order given, as one input), runs them
//! through the same policies triage runs, in memory, and prints the final desired tickets as JSON,
//! one per line. Operators use it to check a policy or catalog before deploying it.
//!
//! stdout holds only the JSON lines. An AWS Health event that cannot be attributed (no account
//! known, a PUBLIC event in Health API responses) is skipped with its reason on stderr and the
//! run goes on; `--why` prints on stderr, for every event, why it was or was not ticketed and
//! which sentence and rule gave its due date.

use std::path::PathBuf;
use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::{DesiredTicket, DueDateSource, Lane, RawEvent};
use health_policy::{DueFrom, HealthEvent, HealthPolicy, HealthSettings};
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
    /// The account single-account AWS Health API responses are about (they name none; the
    /// organization responses and EventBridge events do).
    #[arg(long, value_name = "AWS_ACCOUNT_ID")]
    pub account: Option<String>,
    /// Print on stderr, for every event, why it was or was not ticketed and which sentence and
    /// rule gave its due date.
    #[arg(long)]
    pub why: bool,
    #[command(flatten)]
    pub snyk: SnykSettings,
    /// CISA KEV catalog JSON file, as triage's --kev-catalog (explain reads files only).
    #[arg(long = "kev-catalog")]
    pub kev_catalog: Option<PathBuf>,
    /// EPSS scores CSV file, as triage's --epss-scores.
    #[arg(long = "epss-scores")]
    pub epss_scores: Option<PathBuf>,
    /// Policy profile (TOML), as triage's --policy-profile.
    #[arg(long = "policy-profile")]
    pub policy_profile: Option<PathBuf>,
    #[command(flatten)]
    pub health: HealthSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{path}: {reason}")]
    Feed { path: String, reason: String },
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

/// What a run found: the tickets, in group-key order, and the lines for stderr (events skipped
/// with their reason; with `--why`, every event's explanation).
#[derive(Debug, Default)]
pub struct Explanation {
    pub tickets: Vec<ExplainedTicket>,
    pub skipped: Vec<String>,
    pub why: Vec<String>,
}

/// Runs explain, prints what goes to stderr there, and returns the tickets for stdout.
pub fn explain(args: ExplainArgs) -> Result<Vec<ExplainedTicket>, ExplainError> {
    let explanation = explain_events(args)?;
    // One line each, without control characters: the lines quote notice text.
    for line in explanation.skipped.iter().chain(&explanation.why) {
        eprintln!("{}", bus::safe::header_value(line));
    }
    Ok(explanation.tickets)
}

/// Runs explain and returns everything it found, printing nothing.
pub fn explain_events(args: ExplainArgs) -> Result<Explanation, ExplainError> {
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

    let mut explanation = Explanation::default();
    if !snyk_documents.is_empty() {
        let events = snyk_policy::raw_events_from_documents(&snyk_documents, now)?;
        let policy = snyk_policy_of(&args, catalog.clone())?;
        let mut triage = InMemoryTriage::new(policy);
        let (tickets, why) = fold(&mut triage, &events, now, |_| None)?;
        explanation.tickets.extend(tickets);
        explanation.why.extend(why);
        // The rule behind each due date (the profile's lane rule, or a KEV dueDate).
        for (_, state) in triage.states() {
            if let (Some(group), Some(due)) = (&state.group, triage.policy().due_decision(state)) {
                explanation.why.push(format!(
                    "why due {}: {} by rule: {}",
                    group.group_key(),
                    due.date,
                    due.rule
                ));
            }
        }
    }
    if !health_documents.is_empty() {
        let read = health_policy::read_documents(&health_documents, now, args.account.as_deref())?;
        explanation.skipped.extend(read.skipped.iter().map(|reason| format!("skipped: {reason}")));
        let mut triage = InMemoryTriage::new(HealthPolicy::new(catalog, args.health));
        let (tickets, why) = fold(&mut triage, &read.events, now, health_due_reason)?;
        explanation.tickets.extend(tickets);
        explanation.why.extend(why);
    }
    if !args.why {
        explanation.why.clear();
    }
    explanation.tickets.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(explanation)
}

/// Which sentence and rule give an AWS Health message's due date, or why it has none.
/// The Snyk policy with the profile and feeds the flags name.
fn snyk_policy_of(args: &ExplainArgs, catalog: Arc<Catalog>) -> Result<SnykPolicy, ExplainError> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map_err(|e| ExplainError::Feed { path: path.display().to_string(), reason: e.to_string() })
    };
    let fail =
        |path: &PathBuf, reason: String| ExplainError::Feed { path: path.display().to_string(), reason };
    let mut policy = SnykPolicy::new(catalog, args.snyk.clone());
    if let Some(path) = &args.policy_profile {
        let profile =
            snyk_policy::Profile::parse(&read(path)?, &args.snyk).map_err(|e| fail(path, e.to_string()))?;
        policy = policy.with_profile(profile);
    }
    let mut feeds = snyk_policy::feeds::Feeds::default();
    if let Some(path) = &args.kev_catalog {
        let kev =
            snyk_policy::feeds::KevCatalog::parse(&read(path)?).map_err(|e| fail(path, e.to_string()))?;
        feeds.kev = Some(Arc::new(kev));
    }
    if let Some(path) = &args.epss_scores {
        let epss =
            snyk_policy::feeds::EpssScores::parse(&read(path)?).map_err(|e| fail(path, e.to_string()))?;
        feeds.epss = Some(Arc::new(epss));
    }
    Ok(policy.with_feeds(feeds))
}

fn health_due_reason(event: &RawEvent) -> Option<String> {
    let parsed = HealthEvent::from_payload(&event.payload).ok()?;
    Some(match health_policy::due_of(&parsed) {
        None => "no due date: no date in the text and no scheduled window".to_owned(),
        Some(due) => {
            let date = due.when.describe();
            let approximate =
                if due.approximate { " (approximate: the notice names only the month)" } else { "" };
            match due.from {
                DueFrom::Window => {
                    format!("due {date}{approximate}: the start of the scheduled window (startTime)")
                }
                DueFrom::Text { sentence, rule } => {
                    format!(
                        "due {date}{approximate} by rule \"{rule}\" from the sentence \u{201c}{sentence}\u{201d}"
                    )
                }
            }
        }
    })
}

/// Applies every event in order; returns the final tickets and, per event, why it was or was
/// not ticketed.
fn fold<P: triage_policy::Policy>(
    triage: &mut InMemoryTriage<P>,
    events: &[RawEvent],
    now: DateTime<Utc>,
    due_reason: impl Fn(&RawEvent) -> Option<String>,
) -> Result<(Vec<ExplainedTicket>, Vec<String>), PolicyError> {
    let mut why = Vec::with_capacity(events.len());
    for event in events {
        let outcome = match triage.apply(event, now) {
            Ok(changed) => {
                let teams: Vec<&str> = changed.iter().map(|t| t.team.as_str()).collect();
                let changed = if teams.is_empty() {
                    "ticketed; no ticket changed (a repeat or an older version)".to_owned()
                } else {
                    format!("ticketed; {} ticket(s) changed ({})", teams.len(), teams.join(", "))
                };
                match due_reason(event) {
                    Some(reason) => format!("{changed}; {reason}"),
                    None => changed,
                }
            }
            // Not ticketed by policy (scope, category, actionability, billing, filters).
            Err(PolicyError::Ignored(reason)) => format!("not ticketed: {reason}"),
            Err(error) => return Err(error),
        };
        why.push(format!("why {}: {outcome}", event.dedup_id));
    }
    Ok((triage.tickets().into_iter().map(ExplainedTicket::from).collect(), why))
}
