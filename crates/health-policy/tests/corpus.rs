//! The corpus of AWS Health notices (tests/corpus/notices.json): notices of our own writing that
//! reproduce the forms of real ones found in public sources (each case cites the one it was
//! modelled on), with the due date a careful SRE would set. One table test feeds every case's
//! messages in order through the policy, as triage does, and fails on any wrong date, any
//! notice ticketed that should not be (or the reverse) and any approximate mark missing.
//!
//! `cargo test -p health-policy --test corpus`

use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, NaiveDate, Utc};
use health_policy::{HealthPolicy, HealthSettings, raw_event, samples};
use serde::Deserialize;
use serde_json::Value;
use triage_policy::{InMemoryTriage, PolicyError};

const CATALOG: &str = "default_team = \"platform\"\n[teams.platform]\naws_accounts = [\"111111111111\"]\n";
const ACCOUNT: &str = "111111111111";

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    source: String,
    modelled_on: String,
    service: String,
    code: String,
    category: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    actionability: Option<String>,
    #[serde(default)]
    region: Option<String>,
    messages: Vec<Message>,
}

/// One message of a case; fields it leaves out keep the previous message's values.
#[derive(Debug, Deserialize)]
struct Message {
    sent: DateTime<Utc>,
    expect_due: Option<NaiveDate>,
    #[serde(default)]
    approximate: bool,
    #[serde(default = "yes")]
    ticketed: bool,
    description: Option<String>,
    start: Option<String>,
    end: Option<String>,
    status: Option<String>,
    entities: Option<Vec<(String, String)>>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn yes() -> bool {
    true
}

fn corpus() -> Vec<Case> {
    let text = include_str!("corpus/notices.json");
    serde_json::from_str(text).expect("the corpus is valid JSON of the documented shape")
}

/// The payloads of a case's messages, in order, each carrying forward what it leaves out.
fn payloads(case: &Case, index: usize) -> Vec<Value> {
    let region = case.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
    let arn = samples::event_arn(&region, &case.service, &case.code, &format!("corpus{index:04}"));
    let (mut description, mut start, mut end, mut status, mut entities) =
        (String::new(), None, None, "open".to_owned(), Vec::new());
    case.messages
        .iter()
        .map(|message| {
            description = message.description.clone().unwrap_or_else(|| description.clone());
            start = message.start.clone().or_else(|| start.clone());
            end = message.end.clone().or_else(|| end.clone());
            status = message.status.clone().unwrap_or_else(|| status.clone());
            entities = message.entities.clone().unwrap_or_else(|| entities.clone());
            let mut event = samples::event(
                &arn,
                &case.service,
                &case.code,
                &case.category,
                ACCOUNT,
                &region,
                message.sent,
                &description,
            );
            if let Some(start) = &start {
                samples::set(&mut event, "startTime", start.as_str());
            }
            if let Some(end) = &end {
                samples::set(&mut event, "endTime", end.as_str());
            }
            samples::set(&mut event, "statusCode", status.as_str());
            if let Some(scope) = &case.scope {
                samples::set(&mut event, "eventScopeCode", scope.as_str());
            }
            if let Some(actionability) = &case.actionability {
                samples::set(&mut event, "actionability", actionability.as_str());
            }
            let pairs: Vec<(&str, &str)> = entities.iter().map(|(v, s)| (v.as_str(), s.as_str())).collect();
            samples::entities(&mut event, &pairs);
            event
        })
        .collect()
}

/// What went wrong with one message of a case, or nothing.
fn check(case: &Case, index: usize) -> Vec<String> {
    let catalog = Arc::new(Catalog::from_toml(CATALOG).expect("catalog"));
    let mut triage = InMemoryTriage::new(HealthPolicy::new(catalog, HealthSettings::default()));
    let mut wrong = Vec::new();
    for (number, (message, payload)) in case.messages.iter().zip(payloads(case, index)).enumerate() {
        let at = |what: String| {
            format!("{} message {}: {what} (modelled on {})", case.id, number + 1, case.source)
        };
        let raw = match raw_event(payload, "corpus", message.sent) {
            Ok(raw) => raw,
            Err(error) => {
                wrong.push(at(format!("refused: {error}")));
                continue;
            }
        };
        match triage.apply(&raw, message.sent) {
            Err(PolicyError::Ignored(reason)) if !message.ticketed => {
                assert!(!reason.is_empty());
                continue;
            }
            Err(error) => {
                wrong.push(at(format!("expected a ticket, got {error}")));
                continue;
            }
            Ok(_) if !message.ticketed => {
                wrong.push(at("ticketed, but it should not be".into()));
                continue;
            }
            Ok(_) => {}
        }
        let tickets = triage.tickets();
        if tickets.is_empty() {
            wrong.push(at("no ticket".into()));
        }
        for ticket in tickets {
            let due = ticket.due.as_ref().map(|d| d.date);
            if due != message.expect_due {
                wrong.push(at(format!(
                    "due {due:?}, expected {:?}; notes {:?}",
                    message.expect_due, ticket.body.notes
                )));
            }
            let marked = ticket.body.notes.iter().any(|n| n.starts_with("Approximate"));
            if marked != message.approximate {
                wrong.push(at(format!("approximate mark {marked}, expected {}", message.approximate)));
            }
        }
    }
    wrong
}

#[test]
fn every_corpus_notice_gets_the_due_date_a_careful_sre_would_set() {
    let cases = corpus();
    let mut wrong = Vec::new();
    let mut right = 0;
    for (index, case) in cases.iter().enumerate() {
        assert!(
            !case.source.trim().is_empty() && !case.modelled_on.trim().is_empty(),
            "{} cites its source",
            case.id
        );
        let problems = check(case, index);
        if problems.is_empty() {
            right += 1;
        }
        wrong.extend(problems);
    }
    let messages: usize = cases.iter().map(|c| c.messages.len()).sum();
    println!("AWS Health corpus: {right} of {} notices right ({messages} messages)", cases.len());
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn the_corpus_is_large_and_varied() {
    let cases = corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let ids: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids are distinct");
    for service in ["RDS", "LAMBDA", "DIRECTCONNECT", "EKS", "EC2", "ELASTICACHE", "ES", "REDSHIFT"] {
        assert!(cases.iter().any(|c| c.service == service), "{service} is in the corpus");
    }
    assert!(cases.iter().filter(|c| c.messages.len() > 1).count() >= 5, "re-notification sequences");
    assert!(
        cases
            .iter()
            .filter(|c| c.messages.iter().any(|m| m.description.as_deref().is_some_and(|d| d.contains('年'))))
            .count()
            >= 2,
        "Japanese-first notices"
    );
}
