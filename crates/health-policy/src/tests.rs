//! The policy end to end in memory: events in, desired tickets out.

use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::{DesiredTicket, DueDateSource, Lane, TicketState};
use serde_json::{Value, json};
use triage_policy::{InMemoryTriage, PolicyError};

use crate::samples::{self, entities, set, touch, window};
use crate::{HealthPolicy, HealthSettings, raw_event, raw_events_from_documents, recognise};

const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
aws_accounts = ["111111111111"]

[teams.payments]
time_zone = "Europe/Berlin"

[teams.data]
aws_accounts = ["222222222222"]

[[owners]]
team = "payments"
aws_resources = ["i-0pay*", "arn:aws:rds:*:*:db:payments-*"]
"#;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn triage() -> InMemoryTriage<HealthPolicy> {
    let catalog = Arc::new(Catalog::from_toml(CATALOG).unwrap());
    InMemoryTriage::new(HealthPolicy::new(catalog, HealthSettings::default()))
}

fn feed(
    triage: &mut InMemoryTriage<HealthPolicy>,
    payload: &Value,
) -> Result<Vec<DesiredTicket>, PolicyError> {
    let raw = raw_event(payload.clone(), "test", at("2027-01-20T00:00:00Z"))?;
    triage.apply(&raw, at("2027-01-20T00:00:00Z"))
}

fn tickets(triage: &InMemoryTriage<HealthPolicy>) -> Vec<DesiredTicket> {
    triage.tickets().into_iter().cloned().collect()
}

const REBOOT: &str = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";

fn reboot(instances: &[(&str, &str)], start: &str, updated: &str) -> Value {
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, "1a2b3c");
    let mut event = samples::event(
        &arn,
        "EC2",
        REBOOT,
        "scheduledChange",
        "111111111111",
        "eu-west-1",
        at(updated),
        "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
    );
    window(&mut event, at(start), Some(at(start) + chrono::Duration::hours(2)));
    entities(&mut event, instances);
    set(&mut event, "statusCode", "upcoming");
    event
}

#[test]
fn scheduled_reboot_yields_one_maintenance_ticket_due_on_the_window_start() {
    let mut triage = triage();
    let published =
        feed(&mut triage, &reboot(&[("i-0abc", "PENDING")], "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z"))
            .unwrap();
    assert_eq!(published.len(), 1);
    let ticket = &published[0];
    assert_eq!(ticket.lane, Lane::Maintenance);
    assert_eq!(ticket.team, "platform");
    assert_eq!(ticket.state, TicketState::Open);
    let due = ticket.due.as_ref().unwrap();
    assert_eq!(due.date, day("2027-02-09"));
    assert_eq!(due.source, DueDateSource::EventWindow);
    assert_eq!(
        ticket.summary,
        "Amazon EC2: scheduled reboot of i-0abc (account 111111111111, eu-west-1; \
         AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED 1a2b3c)"
    );
    assert_eq!(ticket.body.items[0].reference, "i-0abc");
    assert_eq!(ticket.body.items[0].status.as_deref(), Some("PENDING"));
    let progress = ticket.body.progress.as_ref().unwrap();
    assert_eq!((progress.remaining, progress.total, progress.unit.as_str()), (1, 1, "resources"));
    assert!(ticket.group_key.as_str().starts_with("aws-health/arn:aws:health:eu-west-1::event/EC2/"));
    assert_eq!(ticket.content_hash, ticket.compute_content_hash());
}

#[test]
fn a_moved_window_updates_the_same_ticket_and_says_so() {
    let mut triage = triage();
    feed(&mut triage, &reboot(&[("i-0abc", "PENDING")], "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z"))
        .unwrap();
    let moved =
        feed(&mut triage, &reboot(&[("i-0abc", "PENDING")], "2027-02-16T08:00:00Z", "2027-01-14T10:00:00Z"))
            .unwrap();
    assert_eq!(moved.len(), 1);
    let all = tickets(&triage);
    assert_eq!(all.len(), 1, "one ticket, updated");
    assert_eq!(all[0].due.as_ref().unwrap().date, day("2027-02-16"));
    assert!(
        all[0]
            .body
            .notes
            .iter()
            .any(|n| n.contains("Rescheduled: AWS moved the date from 2027-02-09 to 2027-02-16")),
        "{:?}",
        all[0].body.notes
    );
}

#[test]
fn reminders_duplicates_and_status_words_do_not_make_new_tickets() {
    let mut triage = triage();
    let first = reboot(&[("i-0abc", "PENDING")], "2027-01-22T08:00:00Z", "2027-01-20T09:00:00Z");
    assert_eq!(feed(&mut triage, &first).unwrap().len(), 1, "an upcoming first notice is ticketed");
    assert!(feed(&mut triage, &first).unwrap().is_empty(), "the same message again changes nothing");
    let mut reminder = first.clone();
    reminder["id"] = json!("another-delivery");
    set(&mut reminder, "statusCode", "open");
    touch(&mut reminder, at("2027-01-21T09:00:00Z"));
    feed(&mut triage, &reminder).unwrap();
    let all = tickets(&triage);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].due.as_ref().unwrap().date, day("2027-01-22"));
}

#[test]
fn pages_merge_backups_add_nothing_and_older_versions_change_nothing() {
    let mut triage = triage();
    let mut page1 = reboot(&[("i-0abc", "PENDING")], "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z");
    set(&mut page1, "totalPages", "2");
    let mut page2 = reboot(&[("i-0def", "PENDING")], "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z");
    set(&mut page2, "page", "2");
    set(&mut page2, "totalPages", "2");
    feed(&mut triage, &page1).unwrap();
    feed(&mut triage, &page2).unwrap();
    let merged = tickets(&triage);
    assert_eq!(merged.len(), 1);
    let refs: Vec<&str> = merged[0].body.items.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs, vec!["i-0abc", "i-0def"]);

    let mut backup = page2.clone();
    set(&mut backup, "backupEvent", "true");
    assert!(feed(&mut triage, &backup).unwrap().is_empty());

    let newer = reboot(
        &[("i-0abc", "RESOLVED"), ("i-0def", "PENDING")],
        "2027-02-09T08:00:00Z",
        "2027-01-13T10:00:00Z",
    );
    assert_eq!(feed(&mut triage, &newer).unwrap().len(), 1);
    assert!(feed(&mut triage, &page1).unwrap().is_empty(), "an older version changes nothing");
    let items = &tickets(&triage)[0].body.items;
    assert_eq!(items[0].status.as_deref(), Some("RESOLVED"));
}

#[test]
fn one_ticket_per_owning_team_each_with_its_resources_and_time_zone() {
    let mut triage = triage();
    let mut event = reboot(
        &[("i-0pay1", "PENDING"), ("i-0web1", "PENDING"), ("i-0tagged", "PENDING")],
        "2027-02-09T23:30:00Z",
        "2027-01-12T10:00:00Z",
    );
    event["detail"]["affectedEntities"][2]["tags"] = json!({"team": "data"});
    let published = feed(&mut triage, &event).unwrap();
    assert_eq!(published.len(), 3);
    let all = tickets(&triage);
    let by_team = |team: &str| all.iter().find(|t| t.team == team).unwrap();
    assert_eq!(by_team("payments").body.items.len(), 1);
    assert_eq!(by_team("payments").body.items[0].reference, "i-0pay1");
    assert_eq!(by_team("platform").body.items[0].reference, "i-0web1");
    assert_eq!(by_team("data").body.items[0].reference, "i-0tagged");
    assert_eq!(by_team("payments").due.as_ref().unwrap().date, day("2027-02-10"), "Berlin is an hour ahead");
    assert_eq!(by_team("platform").due.as_ref().unwrap().date, day("2027-02-09"));
    assert_ne!(by_team("payments").group_key, by_team("platform").group_key);
}

#[test]
fn a_team_whose_resources_are_all_resolved_is_resolved_and_a_closed_event_resolves_all() {
    let mut triage = triage();
    feed(
        &mut triage,
        &reboot(
            &[("i-0pay1", "PENDING"), ("i-0web1", "PENDING")],
            "2027-02-09T08:00:00Z",
            "2027-01-12T10:00:00Z",
        ),
    )
    .unwrap();
    feed(
        &mut triage,
        &reboot(
            &[("i-0pay1", "RESOLVED"), ("i-0web1", "PENDING")],
            "2027-02-09T08:00:00Z",
            "2027-01-13T10:00:00Z",
        ),
    )
    .unwrap();
    let all = tickets(&triage);
    let state = |team: &str| all.iter().find(|t| t.team == team).unwrap().state;
    assert_eq!(state("payments"), TicketState::Resolved);
    assert_eq!(state("platform"), TicketState::Open);
    let mut closed = reboot(
        &[("i-0pay1", "RESOLVED"), ("i-0web1", "PENDING")],
        "2027-02-09T08:00:00Z",
        "2027-01-14T10:00:00Z",
    );
    set(&mut closed, "statusCode", "closed");
    feed(&mut triage, &closed).unwrap();
    assert!(tickets(&triage).iter().all(|t| t.state == TicketState::Resolved));
    assert!(tickets(&triage).iter().any(|t| t.body.notes.iter().any(|n| n.contains("AWS closed the event"))));
}

#[test]
fn lambda_notice_takes_the_deadline_from_its_text_not_the_distractors() {
    let mut triage = triage();
    let code = "AWS_LAMBDA_OPERATIONAL_NOTIFICATION";
    let arn = samples::event_arn("us-east-1", "LAMBDA", code, "node18");
    let mut event = samples::event(
        &arn,
        "LAMBDA",
        code,
        "accountNotification",
        "222222222222",
        "us-east-1",
        at("2026-01-09T00:00:00Z"),
        samples::LAMBDA_NODE18_TEXT,
    );
    set(&mut event, "startTime", "Fri, 9 Jan 2026 00:00:00 GMT");
    entities(&mut event, &[("arn:aws:lambda:us-east-1:222222222222:function:etl", "PENDING")]);
    let ticket = &feed(&mut triage, &event).unwrap()[0];
    assert_eq!(ticket.team, "data");
    let due = ticket.due.as_ref().unwrap();
    assert_eq!(due.date, day("2026-09-01"));
    assert_eq!(
        due.source,
        DueDateSource::EventText {
            sentence: "We are ending support for Node.js 18 in Lambda on September 1, 2026.".into()
        }
    );
    assert!(ticket.body.notes[0].contains("September 1, 2026"));
}

#[test]
fn direct_connect_without_a_date_in_its_text_takes_the_window_start() {
    let mut triage = triage();
    let code = "AWS_DIRECTCONNECT_MAINTENANCE_SCHEDULED";
    let arn = samples::event_arn("eu-central-1", "DIRECTCONNECT", code, "dx1");
    let mut event = samples::event(
        &arn,
        "DIRECTCONNECT",
        code,
        "scheduledChange",
        "111111111111",
        "eu-central-1",
        at("2027-01-10T00:00:00Z"),
        samples::DIRECT_CONNECT_TEXT,
    );
    window(&mut event, at("2027-02-03T22:00:00Z"), Some(at("2027-02-04T04:00:00Z")));
    entities(&mut event, &[("dxcon-fgq9abcd", "PENDING")]);
    let ticket = &feed(&mut triage, &event).unwrap()[0];
    assert_eq!(ticket.due.as_ref().unwrap().date, day("2027-02-03"));
    assert_eq!(ticket.due.as_ref().unwrap().source, DueDateSource::EventWindow);
}

#[test]
fn a_notice_without_any_date_says_so_and_has_no_due_date() {
    let mut triage = triage();
    let code = "AWS_EC2_OPERATIONAL_NOTIFICATION";
    let arn = samples::event_arn("us-east-1", "EC2", code, "nodate");
    let event = samples::event(
        &arn,
        "EC2",
        code,
        "accountNotification",
        "111111111111",
        "us-east-1",
        at("2027-01-10T00:00:00Z"),
        "Please review your security groups.",
    );
    let ticket = &feed(&mut triage, &event).unwrap()[0];
    assert_eq!(ticket.due, None);
    assert!(ticket.body.notes[0].starts_with("No due date"));
    assert_eq!(ticket.team, "platform", "an account-level notice goes to the account's team");
}

#[test]
fn reserved_instance_public_and_issue_events_are_not_ticketed() {
    let mut triage = triage();
    for (code, category, scope) in [
        ("AWS_EC2_RESERVED_INSTANCE_EXPIRATION_NOTICE", "accountNotification", "ACCOUNT_SPECIFIC"),
        ("AWS_EC2_OPERATIONAL_ISSUE", "issue", "ACCOUNT_SPECIFIC"),
        (REBOOT, "scheduledChange", "PUBLIC"),
    ] {
        let arn = samples::event_arn("us-east-1", "EC2", code, "x");
        let mut event = samples::event(
            &arn,
            "EC2",
            code,
            category,
            "111111111111",
            "us-east-1",
            at("2027-01-10T00:00:00Z"),
            "Text.",
        );
        set(&mut event, "eventScopeCode", scope);
        assert!(matches!(feed(&mut triage, &event), Err(PolicyError::Ignored(_))), "{code}");
    }
    assert!(tickets(&triage).is_empty());
}

#[test]
fn malformed_events_are_refused_with_a_reason() {
    let error = raw_event(json!({"source": "aws.health", "detail": {}}), "test", Utc::now()).unwrap_err();
    assert!(matches!(error, PolicyError::Malformed { .. }));
    assert!(error.to_string().contains("eventArn"));
}

fn api_documents() -> Vec<Value> {
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, "api1");
    let event = json!({
        "arn": arn, "service": "EC2", "eventTypeCode": REBOOT, "eventTypeCategory": "scheduledChange",
        "region": "eu-west-1", "startTime": 1802073600.0, "endTime": 1802080800.0,
        "lastUpdatedTime": 1799748930.412, "statusCode": "upcoming", "eventScopeCode": "ACCOUNT_SPECIFIC"
    });
    vec![
        json!({"events": [event.clone()], "nextToken": "abc"}),
        json!({"successfulSet": [{"event": event, "eventDescription": {"latestDescription": "Reboot."}, "eventMetadata": {}}], "failedSet": []}),
        json!({"entities": [{"eventArn": arn, "entityValue": "i-0pay1", "awsAccountId": "111111111111", "lastUpdatedTime": 1799748930.0, "statusCode": "PENDING"}]}),
        json!({"entities": [{"eventArn": arn, "entityValue": "i-0web1", "awsAccountId": "111111111111", "lastUpdatedTime": 1799748930.0, "statusCode": "PENDING"}]}),
    ]
}

#[test]
fn api_responses_join_into_the_eventbridge_shape_and_dedup_with_it() {
    let documents = api_documents();
    assert!(documents.iter().all(recognise));
    assert!(recognise(&samples::retirement()));
    assert!(!recognise(&json!({"issues": []})));
    let raws = raw_events_from_documents(&documents, Utc::now()).unwrap();
    assert_eq!(raws.len(), 1);
    let payload = &raws[0].payload;
    assert_eq!(payload["source"], "aws.health");
    assert_eq!(payload["detail"]["affectedAccount"], "111111111111");
    assert_eq!(payload["detail"]["affectedEntities"].as_array().unwrap().len(), 2);
    assert_eq!(payload["detail"]["lastUpdatedTime"], "Tue, 12 Jan 2027 10:15:30 GMT");
    assert_eq!(payload["detail"]["startTime"], "Mon, 8 Feb 2027 08:00:00 GMT");

    // The same version through EventBridge has the same deduplication id.
    let mut eventbridge = payload.clone();
    eventbridge["id"] = json!("eventbridge-delivery");
    eventbridge["detail"]["communicationId"] = json!("abc-1");
    let via_eventbridge = raw_event(eventbridge, "sqs", Utc::now()).unwrap();
    assert_eq!(via_eventbridge.dedup_id, raws[0].dedup_id);
    assert!(raws[0].dedup_id.starts_with("health:arn:aws:health:eu-west-1::event/EC2/"));

    let mut triage = triage();
    let published = triage.apply(&raws[0], Utc::now()).unwrap();
    assert_eq!(published.len(), 2, "two teams");
}

#[test]
fn a_stream_of_documents_updates_then_resolves() {
    let mut documents = api_documents();
    let mut closed = documents[1].clone();
    closed["successfulSet"][0]["event"]["statusCode"] = json!("closed");
    closed["successfulSet"][0]["event"]["lastUpdatedTime"] = json!(1799848930.0);
    documents.push(closed);
    let raws = raw_events_from_documents(&documents, Utc::now()).unwrap();
    assert_eq!(raws.len(), 2, "the repeated details start a new version");
    let mut triage = triage();
    for raw in &raws {
        triage.apply(raw, Utc::now()).unwrap();
    }
    assert!(triage.tickets().iter().all(|t| t.state == TicketState::Resolved));
    let unattributed = raw_events_from_documents(&documents[..2], Utc::now()).unwrap_err();
    assert!(unattributed.to_string().contains("names no affected account"));
}

fn text_notice(updated: &str, description: &str) -> Value {
    let code = "AWS_EKS_OPERATIONAL_NOTIFICATION";
    let arn = samples::event_arn("us-east-1", "EKS", code, "eks130");
    let mut event = samples::event(
        &arn,
        "EKS",
        code,
        "accountNotification",
        "111111111111",
        "us-east-1",
        at(updated),
        description,
    );
    entities(&mut event, &[("arn:aws:eks:us-east-1:111111111111:cluster/edge", "PENDING")]);
    event
}

const EKS_130: &str = "Standard support for Kubernetes version 1.30 in Amazon EKS will end on July 23, 2026. \
    Kubernetes version 1.30 will remain in extended support until July 23, 2027.";

#[test]
fn a_deadline_is_stable_across_reminders_updates_after_it_and_resolved_resources() {
    let mut triage = triage();
    feed(&mut triage, &text_notice("2026-05-01T00:00:00Z", EKS_130)).unwrap();
    // After the deadline AWS restates it: still the deadline, the ticket stays overdue.
    feed(&mut triage, &text_notice("2026-08-01T00:00:00Z", EKS_130)).unwrap();
    assert_eq!(tickets(&triage)[0].due.as_ref().unwrap().date, day("2026-07-23"));
    // A later message that names only the extended-support end does not move it later.
    feed(
        &mut triage,
        &text_notice("2026-08-15T00:00:00Z", "Your clusters are in extended support until July 23, 2027."),
    )
    .unwrap();
    // A message without any date does not remove it.
    feed(&mut triage, &text_notice("2026-08-20T00:00:00Z", "Please upgrade your clusters.")).unwrap();
    let ticket = &tickets(&triage)[0];
    assert_eq!(ticket.due.as_ref().unwrap().date, day("2026-07-23"));
    assert!(!ticket.body.notes.iter().any(|n| n.starts_with("Rescheduled")), "{:?}", ticket.body.notes);
}

#[test]
fn the_same_sentence_with_a_new_date_moves_the_deadline_and_the_note_names_the_message() {
    let mut triage = triage();
    feed(&mut triage, &text_notice("2026-05-01T00:00:00Z", EKS_130)).unwrap();
    let postponed = EKS_130.replace("July 23, 2026", "August 20, 2026");
    feed(&mut triage, &text_notice("2026-06-01T09:30:00Z", &postponed)).unwrap();
    let ticket = &tickets(&triage)[0];
    assert_eq!(ticket.due.as_ref().unwrap().date, day("2026-08-20"));
    let note = ticket.body.notes.iter().find(|n| n.starts_with("Rescheduled")).unwrap();
    assert!(note.contains("from 2026-07-23 to 2026-08-20"), "{note}");
    assert!(note.contains("the message of 2026-06-01 09:30 UTC"), "{note}");
    assert!(note.contains("will end on August 20, 2026"), "{note}");
}

#[test]
fn progress_counts_the_resources_still_pending() {
    let mut triage = triage();
    feed(
        &mut triage,
        &reboot(
            &[("i-0a", "PENDING"), ("i-0b", "PENDING"), ("i-0c", "PENDING")],
            "2027-02-09T08:00:00Z",
            "2027-01-12T10:00:00Z",
        ),
    )
    .unwrap();
    feed(
        &mut triage,
        &reboot(
            &[("i-0a", "RESOLVED"), ("i-0b", "PENDING"), ("i-0c", "PENDING")],
            "2027-02-09T08:00:00Z",
            "2027-01-13T10:00:00Z",
        ),
    )
    .unwrap();
    let ticket = &tickets(&triage)[0];
    let progress = ticket.body.progress.as_ref().unwrap();
    assert_eq!(progress.describe(), "2 of 3 resources still pending");
    assert!(ticket.body.notes.iter().any(|n| n == "Progress: 2 of 3 resources still pending."));
    let statuses: Vec<(&str, Option<&str>)> =
        ticket.body.items.iter().map(|i| (i.reference.as_str(), i.status.as_deref())).collect();
    assert_eq!(statuses, [("i-0a", Some("RESOLVED")), ("i-0b", Some("PENDING")), ("i-0c", Some("PENDING"))]);
    assert_eq!(
        ticket.summary,
        "Amazon EC2: scheduled reboot (account 111111111111, eu-west-1; AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED 1a2b3c)"
    );
}

#[test]
fn two_different_notices_never_share_a_summary() {
    let mut triage = triage();
    for id in ["aaa111", "bbb222"] {
        let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, id);
        let mut event = samples::event(
            &arn,
            "EC2",
            REBOOT,
            "scheduledChange",
            "111111111111",
            "eu-west-1",
            at("2027-01-12T10:00:00Z"),
            "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
        );
        window(&mut event, at("2027-02-09T08:00:00Z"), None);
        feed(&mut triage, &event).unwrap();
    }
    let lambda = {
        let code = "AWS_LAMBDA_OPERATIONAL_NOTIFICATION";
        let arn = samples::event_arn("us-east-1", "LAMBDA", code, "node18");
        samples::event(
            &arn,
            "LAMBDA",
            code,
            "accountNotification",
            "111111111111",
            "us-east-1",
            at("2026-01-09T00:00:00Z"),
            samples::LAMBDA_NODE18_TEXT,
        )
    };
    feed(&mut triage, &lambda).unwrap();
    let summaries: Vec<String> = tickets(&triage).iter().map(|t| t.summary.clone()).collect();
    let distinct: std::collections::BTreeSet<&String> = summaries.iter().collect();
    assert_eq!(distinct.len(), 3, "{summaries:?}");
    assert!(
        summaries.iter().any(|s| s.starts_with("AWS Lambda: end of support for Node.js 18 (account")),
        "{summaries:?}"
    );
}

#[test]
fn scope_none_informational_and_money_texts_are_not_ticketed_unless_configured() {
    let mut event = text_notice("2026-05-01T00:00:00Z", EKS_130);
    set(&mut event, "eventScopeCode", "NONE");
    assert!(matches!(feed(&mut triage(), &event), Err(PolicyError::Ignored(r)) if r.contains("NONE")));

    let mut informational = text_notice("2026-05-01T00:00:00Z", EKS_130);
    set(&mut informational, "actionability", "INFORMATIONAL");
    assert!(
        matches!(feed(&mut triage(), &informational), Err(PolicyError::Ignored(r)) if r.contains("INFORMATIONAL"))
    );
    let catalog = Arc::new(Catalog::from_toml(CATALOG).unwrap());
    let settings = HealthSettings { ticket_informational: true, ..HealthSettings::default() };
    let mut configured = InMemoryTriage::new(HealthPolicy::new(catalog, settings));
    assert_eq!(feed(&mut configured, &informational).unwrap().len(), 1, "--health-ticket-informational");

    for text in [
        "Your Amazon EC2 Reserved Instances listed below are scheduled to expire on 2026-02-28.",
        "Your Compute Savings Plan sp-1 expires on June 1, 2026.",
        "The following Amazon Redshift reserved nodes in your account expire on 2026-05-01.",
        "Your EC2 capacity reservation cr-1 was underutilized last week.",
    ] {
        let money = text_notice("2026-01-01T00:00:00Z", text);
        assert!(
            matches!(feed(&mut triage(), &money), Err(PolicyError::Ignored(r)) if r.contains("by its text")),
            "{text}"
        );
    }
    let g3 = text_notice(
        "2024-10-30T00:00:00Z",
        "Migrate to newer G instances by October 31, 2025. Starting January 1, 2025, customers can no longer \
         purchase new Reserved Instances (RI) or Instance Savings Plans (SP) for G3 instances.",
    );
    assert_eq!(
        feed(&mut triage(), &g3).unwrap().len(),
        1,
        "a retirement that mentions Reserved Instances is work"
    );
}

/// The bytes triage stores for one group: the state and the tickets it implies (the pending
/// list of `triage_groups` holds at most these), against NATS's default 1 MiB max payload.
fn stored_bytes(triage: &InMemoryTriage<HealthPolicy>) -> usize {
    let state: usize = triage.states().map(|(_, s)| serde_json::to_vec(s).unwrap().len()).sum();
    state + tickets(triage).iter().map(|t| t.to_json().len()).sum::<usize>()
}

#[test]
fn an_event_with_2500_entities_stays_storable_lists_100_and_counts_them_all() {
    let values: Vec<String> =
        (0..2_500).map(|i| format!("arn:aws:ec2:eu-west-1:111111111111:instance/i-0{i:016x}")).collect();
    let list: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), "PENDING")).collect();
    let mut triage = triage();
    let event = reboot(&list, "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z");
    assert_eq!(feed(&mut triage, &event).unwrap().len(), 1);
    assert!(stored_bytes(&triage) < 900_000, "{} bytes", stored_bytes(&triage));
    let ticket = &tickets(&triage)[0];
    assert_eq!(ticket.body.items.len(), crate::MAX_TICKET_ITEMS);
    let progress = ticket.body.progress.as_ref().unwrap();
    assert_eq!((progress.remaining, progress.total), (2_500, 2_500));
    assert!(
        ticket.body.notes.iter().any(|n| n.starts_with("And 2400 more resources, 2400 of them")),
        "{:?}",
        ticket.body.notes
    );
    assert!(feed(&mut triage, &event).unwrap().is_empty(), "the same event again changes nothing");

    // Half resolved in a newer version: pruned ones are recognised and counted, not doubled.
    let half: Vec<(&str, &str)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_str(), if i % 2 == 0 { "RESOLVED" } else { "PENDING" }))
        .collect();
    let mut newer = reboot(&half, "2027-02-09T08:00:00Z", "2027-01-13T10:00:00Z");
    touch(&mut newer, at("2027-01-13T10:00:00Z"));
    feed(&mut triage, &newer).unwrap();
    let progress = tickets(&triage)[0].body.progress.clone().unwrap();
    assert_eq!((progress.remaining, progress.total), (1_250, 2_500));
    assert!(
        tickets(&triage)[0].body.items.iter().all(|i| i.status.as_deref() == Some("PENDING")),
        "unresolved first"
    );

    // All resolved: the ticket resolves, the state still bounded.
    let done: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), "RESOLVED")).collect();
    let mut last = reboot(&done, "2027-02-09T08:00:00Z", "2027-01-14T10:00:00Z");
    touch(&mut last, at("2027-01-14T10:00:00Z"));
    feed(&mut triage, &last).unwrap();
    let ticket = &tickets(&triage)[0];
    assert_eq!(ticket.state, TicketState::Resolved, "{:?}", ticket.body.notes);
    assert!(stored_bytes(&triage) < 900_000);
}

#[test]
fn twenty_thousand_long_entities_still_fit_and_are_counted() {
    let values: Vec<String> = (0..20_000).map(|i| format!("{}-{i}", "v".repeat(300))).collect();
    let list: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), "PENDING")).collect();
    let mut triage = triage();
    feed(&mut triage, &reboot(&list, "2027-02-09T08:00:00Z", "2027-01-12T10:00:00Z")).unwrap();
    assert!(stored_bytes(&triage) < 1_000_000, "{} bytes", stored_bytes(&triage));
    let ticket = &tickets(&triage)[0];
    assert_eq!(ticket.body.progress.as_ref().unwrap().total, 20_000);
    assert!(ticket.body.items.len() <= crate::MAX_TICKET_ITEMS);
}
