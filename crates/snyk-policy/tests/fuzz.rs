//! Bad input for the Snyk parsers: REST projects and issues pages, v1 webhook bodies and the
//! project snapshots triage reads (`classify`, `recognise`, `raw_events_from_documents`,
//! `rest::parse_*`, `webhook::parse_webhook_body`, the policy through `InMemoryTriage`).
//! Arbitrary JSON and realistic documents damaged in every way: nothing panics; a refusal is
//! a `PolicyError` with a reason (a dead letter in triage); what is read yields valid, sealed
//! tickets in a Snyk lane, once.
//!
//! `PROPTEST_CASES=20000 cargo test -p snyk-policy --test fuzz` runs a long form
//! (docs/reliability.md records its time).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use contracts::{Lane, PayloadKind, RawEvent, Source};
use proptest::prelude::*;
use serde_json::{Value, json};
use snyk_policy::rest::{parse_issues_page, parse_projects_page};
use snyk_policy::webhook::parse_webhook_body;
use snyk_policy::{
    ProjectSnapshot, SnykPolicy, SnykSettings, classify, raw_events_from_documents, recognise,
};
use triage_policy::{InMemoryTriage, PolicyError};

/// Structure-aware mutations of realistic JSON documents: drop a field, change its type,
/// truncate or blow up a string, nest it, put odd unicode or out-of-range numbers in it.
/// (The same module is in every crate's `tests/fuzz.rs`; test crates cannot share a module.)
use payload_mutations as mutate;

fn cases(default: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over the default (the long run by hand).
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

const ORG: &str = "0e8a0000-0000-4000-8000-0000000000c4";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const NOW: &str = "2026-11-27T09:00:00Z";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid time")
}

fn triage() -> InMemoryTriage<SnykPolicy> {
    let catalog = catalog::Catalog::from_toml(
        r#"
default_team = "platform"
[teams.platform]
[teams.payments]
[teams.media]
time_zone = "Pacific/Kiritimati"
[[owners]]
team = "media"
snyk_targets = ["*/image-*"]
[[exposure]]
snyk_target = "acme/public-site"
exposure = "internet-facing"
"#,
    )
    .expect("the test catalog is valid");
    InMemoryTriage::new(SnykPolicy::new(Arc::new(catalog), SnykSettings::default()))
}

fn project(id: &str, origin: &str, target: &str, reference: &str, env: &str, team: &str) -> Value {
    json!({
        "id": id, "type": "project",
        "attributes": {
            "name": format!("{target}:{reference}"), "type": "deb", "origin": origin, "target_file": "",
            "target_reference": reference, "created": "2026-01-01T00:00:00Z", "status": "active", "read_only": false,
            "business_criticality": ["high"], "environment": [env], "lifecycle": ["production"],
            "tags": [{"key": "team", "value": team}],
            "settings": {"recurring_tests": {"frequency": "daily"}, "pull_requests": {}}
        },
        "relationships": {
            "target": {"data": {"id": format!("t-{id}"), "type": "target", "attributes": {"display_name": target, "url": null}}},
            "organization": {"data": {"id": ORG, "type": "organization"}}
        },
        "meta": {"latest_issue_counts": {"critical": 1, "high": 0, "medium": 0, "low": 0}}
    })
}

fn issue(id: &str, project: &str, key: &str, severity: &str, level: &str) -> Value {
    json!({"id": id, "type": "issue",
        "attributes": {
            "key": key, "title": format!("Heap overflow in {key}"), "type": "package_vulnerability",
            "effective_severity_level": severity, "status": "open", "ignored": false,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "coordinates": [{"is_upgradeable": true, "is_fixable_snyk": true,
                "representations": [{"dependency": {"package_name": "libxml2", "package_version": "2.9.14"}}]}],
            "exploit_details": {"sources": ["CISA"], "maturity_levels": [{"format": "CVSSv4", "level": level}]},
            "problems": [{"id": key, "source": "SNYK", "type": "vulnerability"},
                         {"id": "CVE-2099-1234", "source": "NVD", "type": "vulnerability"}]
        },
        "relationships": {"scan_item": {"data": {"id": project, "type": "project"}},
                          "organization": {"data": {"id": ORG, "type": "organization"}}}})
}

fn projects_page() -> Value {
    json!({
        "jsonapi": {"version": "1.0"},
        "data": [
            project("p1", "ecr", &format!("{REGISTRY}/payments-api"), "2.7.3", "external", "payments"),
            project("p2", "ecr", &format!("{REGISTRY}/image-resizer"), "1.0.0", "internal", "media"),
            project("p3", "github", "acme/public-site", "main", "frontend", "web"),
        ],
        "links": {"self": format!("/orgs/{ORG}/projects?version=2024-10-15&expand=target&limit=10"),
                  "next": format!("/orgs/{ORG}/projects?version=2024-10-15&expand=target&limit=10&starting_after=p3")}
    })
}

fn issues_page() -> Value {
    json!({
        "jsonapi": {"version": "1.0"},
        "data": [
            issue("i1", "p1", "SNYK-DEBIAN12-LIBXML2-1000001", "critical", "Attacked"),
            issue("i2", "p2", "SNYK-DEBIAN12-OPENSSL-1000002", "critical", "Not Defined"),
            issue("i3", "p3", "SNYK-JS-LODASH-1000003", "high", "Attacked"),
        ],
        "links": {"self": {"href": format!("/orgs/{ORG}/issues?version=2024-10-15")}}
    })
}

fn webhook_body() -> Value {
    json!({"project": {"name": "acme/checkout", "id": "9c41e6b2-0000-4000-8000-000000000001", "origin": "github",
        "type": "npm", "remoteRepoUrl": "https://github.com/acme/checkout.git", "branch": "main",
        "attributes": {"criticality": ["medium"], "environment": ["external"], "lifecycle": ["production"]},
        "tags": [{"key": "team", "value": "payments"}]},
      "org": {"name": "Acme", "id": ORG, "slug": "acme"},
      "group": {"name": "Acme", "id": "5d2c"},
      "newIssues": [{"id": "SNYK-JS-EXPRESS-1000004", "issueType": "vuln", "pkgName": "express",
        "pkgVersions": ["4.17.1"],
        "issueData": {"title": "RCE", "severity": "critical", "exploitMaturity": "mature",
          "exploitDetails": {"sources": ["CISA"], "maturityLevels": [{"type": "primary", "level": "Attacked", "format": "CVSSv4"}]},
          "identifiers": {"CVE": ["CVE-2099-4"]}},
        "isIgnored": false, "fixInfo": {"isUpgradable": true, "isFixable": true, "fixedIn": ["4.17.3"]}}],
      "removedIssues": []})
}

/// The three documents as `explain` reads them: a projects page, its issues, a webhook body.
fn documents() -> Value {
    json!([projects_page(), issues_page(), webhook_body()])
}

fn check_refusal(error: &PolicyError) -> Result<(), TestCaseError> {
    match error {
        PolicyError::Malformed { what, reason } => {
            prop_assert!(!what.is_empty() && !reason.trim().is_empty(), "{error}");
        }
        PolicyError::Ignored(reason) => prop_assert!(!reason.trim().is_empty(), "{error}"),
    }
    Ok(())
}

/// Feeds an event to triage: refused with a reason, or tickets that are valid, and the same
/// event again changes nothing.
fn check_triage(triage: &mut InMemoryTriage<SnykPolicy>, raw: &RawEvent) -> Result<(), TestCaseError> {
    let now = at(NOW);
    match triage.apply(raw, now) {
        Err(error) => check_refusal(&error)?,
        Ok(published) => {
            for ticket in &published {
                prop_assert_eq!(ticket.source, Source::Snyk);
                prop_assert!(
                    matches!(ticket.lane, Lane::P1 | Lane::P2 | Lane::P3 | Lane::P4),
                    "{:?}",
                    ticket.lane
                );
                prop_assert!(!ticket.team.trim().is_empty());
                prop_assert!(!ticket.summary.trim().is_empty());
                prop_assert_eq!(&ticket.content_hash, &ticket.compute_content_hash(), "sealed");
                let read = contracts::DesiredTicket::from_json(&ticket.to_json());
                prop_assert!(read.is_ok(), "a published ticket reads back: {:?}", read.err());
            }
            let again = triage.apply(raw, now);
            prop_assert!(
                matches!(&again, Ok(none) if none.is_empty()),
                "the same event twice publishes nothing the second time: {again:?}"
            );
        }
    }
    Ok(())
}

/// The raw events a good set of documents yields, as ingest-snyk would publish them.
fn snapshot_events() -> Vec<RawEvent> {
    let documents = documents();
    raw_events_from_documents(documents.as_array().unwrap(), at(NOW)).expect("the seeds are valid")
}

proptest! {
    #![proptest_config(cases(2_000))]

    #[test]
    fn arbitrary_json_never_panics(document in mutate::any_json()) {
        let _ = classify(&document);
        let _ = recognise(&document);
        if let Err(error) = raw_events_from_documents(std::slice::from_ref(&document), at(NOW)) {
            check_refusal(&error)?;
        }
        let raw = RawEvent::new(Source::Snyk, PayloadKind::SnykProjectSnapshot, "fuzz", "fuzz", document, at(NOW));
        check_triage(&mut triage(), &raw)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_page_and_body_readers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_projects_page(&bytes);
        let _ = parse_issues_page(&bytes);
        let _ = parse_webhook_body(&bytes);
    }
}

proptest! {
    #![proptest_config(cases(1_000))]

    #[test]
    fn damaged_bytes_of_pages_and_bodies_are_refused_with_a_reason(
        projects in mutate::damaged_bytes(&projects_page()),
        issues in mutate::damaged_bytes(&issues_page()),
        body in mutate::damaged_bytes(&webhook_body()),
    ) {
        if let Err(error) = parse_projects_page(&projects) {
            prop_assert!(!error.to_string().is_empty());
        }
        if let Err(error) = parse_issues_page(&issues) {
            prop_assert!(!error.to_string().is_empty());
        }
        if let Err(error) = parse_webhook_body(&body) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn damaged_documents_are_refused_with_a_reason_or_ticketed_once(mutations in mutate::mutations(4)) {
        let damaged = mutate::apply(documents(), &mutations);
        let list = match &damaged {
            Value::Array(list) => list.clone(),
            other => vec![other.clone()],
        };
        for document in &list {
            let _ = classify(document);
            let bytes = serde_json::to_vec(document).unwrap();
            let _ = parse_projects_page(&bytes);
            let _ = parse_issues_page(&bytes);
            let _ = parse_webhook_body(&bytes);
        }
        match raw_events_from_documents(&list, at(NOW)) {
            Err(error) => check_refusal(&error)?,
            Ok(events) => {
                let mut triage = triage();
                for raw in &events {
                    prop_assert_eq!(raw.kind, PayloadKind::SnykProjectSnapshot);
                    check_triage(&mut triage, raw)?;
                }
            }
        }
    }

    #[test]
    fn damaged_snapshots_on_the_bus_are_refused_with_a_reason_or_ticketed_once(
        which in 0_usize..4,
        mutations in mutate::mutations(4),
    ) {
        let mut raw = snapshot_events().swap_remove(which);
        raw.payload = mutate::apply(raw.payload, &mutations);
        let _ = ProjectSnapshot::from_event(&raw);
        check_triage(&mut triage(), &raw)?;
    }

    /// Any time a producer can write in RFC 3339 with a four-digit year (chrono's extremes: the
    /// tests below).
    #[test]
    fn snapshots_received_at_any_time_are_triaged_without_panic(
        seconds in -62_135_596_800_i64..253_402_300_799,
        which in 0_usize..4,
    ) {
        let mut raw = snapshot_events().swap_remove(which);
        raw.received_at = DateTime::from_timestamp(seconds, 0).expect("in chrono's range");
        check_triage(&mut triage(), &raw)?;
    }
}

/// A raw event on `events.snyk.*` whose `received_at` is at the end of chrono's range (a
/// producer's bug or a hostile publisher): triage must dead-letter it, not panic.
#[test]
fn a_snapshot_received_at_the_end_of_time_does_not_panic() {
    let mut event = serde_json::to_value(snapshot_events().remove(0)).unwrap();
    event["received_at"] = json!("+262142-12-31T23:59:59Z");
    let refused = RawEvent::from_json(event.to_string().as_bytes()).expect_err("refused off the wire");
    assert!(refused.to_string().contains("outside the years"), "{refused}");
    // A producer in the same process could still build one: the policy must not panic either.
    let raw: RawEvent = serde_json::from_value(event).expect("chrono reads years past 9999");
    let outcome = std::panic::catch_unwind(|| triage().apply(&raw, at(NOW)));
    assert!(outcome.is_ok(), "triage panicked on received_at {}", raw.received_at);
}

#[test]
fn refusals_say_what_is_wrong() {
    let mut no_target = projects_page();
    no_target["data"][0]["relationships"]["target"]["data"].as_object_mut().unwrap().remove("attributes");
    let events = raw_events_from_documents(&[no_target], at(NOW)).unwrap();
    let error = triage().apply(&events[0], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("has no target display name"), "{error}");

    let mut wrong_ignored = issues_page();
    wrong_ignored["data"][0]["attributes"]["ignored"] = json!("perhaps");
    let error =
        raw_events_from_documents(&[projects_page(), wrong_ignored], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("document 2 (issues page)") && error.contains("perhaps"), "{error}");

    // A severity Snyk may add is no refusal: kept as received, and it does not qualify.
    let mut new_severity = issues_page();
    new_severity["data"][0]["attributes"]["effective_severity_level"] = json!("apocalyptic");
    let events = raw_events_from_documents(&[projects_page(), new_severity], at(NOW)).unwrap();
    assert_eq!(events[0].payload["issues"][0]["attributes"]["effective_severity_level"], "apocalyptic");

    let error = raw_events_from_documents(&[issues_page()], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("which no projects page before it lists"), "{error}");

    let mut ecr_webhook = webhook_body();
    ecr_webhook["project"]["origin"] = json!("ecr");
    let error = raw_events_from_documents(&[ecr_webhook], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("give the projects page first"), "{error}");

    let error =
        raw_events_from_documents(&[json!({"data": [{"type": "widget"}]})], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("not a Snyk REST projects page, REST issues page or v1 webhook body"), "{error}");

    let mut wrong_kind = snapshot_events().remove(0);
    wrong_kind.kind = PayloadKind::AwsHealthEvent;
    let error = triage().apply(&wrong_kind, at(NOW)).unwrap_err().to_string();
    assert!(error.contains("not a snyk_project_snapshot"), "{error}");

    let mut truncated = snapshot_events().remove(0);
    truncated.payload.as_object_mut().unwrap().remove("project");
    let error = triage().apply(&truncated, at(NOW)).unwrap_err().to_string();
    assert!(error.contains("missing field `project`"), "{error}");
}

/// The same at the end of time for a group owned by a team east of UTC (media, in
/// Pacific/Kiritimati, +14:00): the due date's "today" in the team's zone is past chrono's range.
#[test]
fn a_snapshot_received_at_the_end_of_time_for_a_team_east_of_utc_does_not_panic() {
    let mut event = serde_json::to_value(snapshot_events().remove(1)).unwrap();
    event["received_at"] = json!("+262142-12-31T23:59:59Z");
    let refused = RawEvent::from_json(event.to_string().as_bytes()).expect_err("refused off the wire");
    assert!(refused.to_string().contains("outside the years"), "{refused}");
    // A producer in the same process could still build one: the policy must not panic either.
    let raw: RawEvent = serde_json::from_value(event).expect("chrono reads years past 9999");
    let outcome = std::panic::catch_unwind(|| triage().apply(&raw, at(NOW)));
    assert!(outcome.is_ok(), "triage panicked on received_at {}", raw.received_at);
}
