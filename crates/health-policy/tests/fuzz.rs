//! Bad input for the AWS Health parsers: EventBridge events (SQS, the API destination) and
//! Health API responses (the reconcile), read by `recognise`, `raw_event`,
//! `raw_events_from_documents`, the policy's `apply` (through `InMemoryTriage`) and the
//! date and deadline extraction. Arbitrary JSON and realistic documents damaged in every way:
//! nothing panics; a refusal is `PolicyError::Malformed` with a reason (a dead letter in
//! triage) or `PolicyError::Ignored`; what is read yields valid, sealed tickets, once.
//!
//! `PROPTEST_CASES=20000 cargo test -p health-policy --test fuzz` runs a long form
//! (docs/reliability.md records its time).

use std::sync::Arc;

use catalog::Catalog;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use contracts::{Lane, RawEvent, Source};
use health_policy::dates::{find_dates, parse_timestamp};
use health_policy::text::{deadline_from_text, sentences};
use health_policy::{
    HealthEvent, HealthPolicy, HealthSettings, due_of, raw_event, raw_events_from_documents, recognise,
    samples,
};
use proptest::prelude::*;
use serde_json::{Value, json};
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

const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
aws_accounts = ["111111111111"]

[teams.payments]
time_zone = "Pacific/Kiritimati"

[teams.data]
time_zone = "Pacific/Pago_Pago"
aws_accounts = ["210987654321"]

[[owners]]
team = "payments"
aws_resources = ["i-0pay*", "arn:aws:rds:*:*:db:payments-*"]
"#;

fn triage() -> InMemoryTriage<HealthPolicy> {
    let catalog = Arc::new(Catalog::from_toml(CATALOG).expect("the test catalog is valid"));
    InMemoryTriage::new(HealthPolicy::new(catalog, HealthSettings::default()))
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid time")
}

const NOW: &str = "2027-01-20T00:00:00Z";
const REBOOT: &str = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";

/// EventBridge events as AWS sends them: a retirement, a scheduled reboot of two teams'
/// instances, a text-only end of support, page 2 of 3 of a backup copy, an RDS patch with an
/// epoch window and no `lastUpdatedTime`.
fn eventbridge_events() -> Vec<Value> {
    let updated = at("2027-01-12T10:15:30Z");
    let reboot_arn = samples::event_arn("eu-west-1", "EC2", REBOOT, "1a2b3c");
    let mut reboot = samples::event(
        &reboot_arn,
        "EC2",
        REBOOT,
        "scheduledChange",
        "111111111111",
        "eu-west-1",
        updated,
        "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
    );
    samples::window(&mut reboot, at("2027-02-09T08:00:00Z"), Some(at("2027-02-09T10:00:00Z")));
    samples::entities(&mut reboot, &[("i-0pay1111", "PENDING"), ("i-0web2222", "PENDING")]);
    let lambda_arn = samples::event_arn("us-east-1", "LAMBDA", "AWS_LAMBDA_PLANNED_LIFECYCLE_EVENT", "n18");
    let mut lambda = samples::event(
        &lambda_arn,
        "LAMBDA",
        "AWS_LAMBDA_PLANNED_LIFECYCLE_EVENT",
        "accountNotification",
        "210987654321",
        "us-east-1",
        updated,
        samples::LAMBDA_NODE18_TEXT,
    );
    samples::entities(&mut lambda, &[("arn:aws:lambda:us-east-1:210987654321:function:etl", "PENDING")]);
    let mut paged = reboot.clone();
    samples::set(&mut paged, "page", "2");
    samples::set(&mut paged, "totalPages", "3");
    samples::set(&mut paged, "backupEvent", "true");
    let mut rds = samples::event(
        &samples::event_arn("eu-west-1", "RDS", "AWS_RDS_SYSTEM_UPGRADE_SCHEDULED", "p1"),
        "RDS",
        "AWS_RDS_SYSTEM_UPGRADE_SCHEDULED",
        "scheduledChange",
        "111111111111",
        "eu-west-1",
        updated,
        "A required patch will be applied to arn:aws:rds:eu-west-1:111111111111:db:payments-main no later than March 3, 2027.",
    );
    samples::set(&mut rds, "startTime", 1_804_024_800.0);
    rds["detail"].as_object_mut().unwrap().remove("lastUpdatedTime");
    samples::entities(&mut rds, &[("arn:aws:rds:eu-west-1:111111111111:db:payments-main", "PENDING")]);
    vec![samples::retirement(), reboot, lambda, paged, rds]
}

/// One event as the Health API returns it: DescribeEvents, DescribeEventDetails and
/// DescribeAffectedEntities (epoch-second times, `statusCode` on entities).
fn api_responses() -> Value {
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, "api1");
    let event = json!({
        "arn": arn, "service": "EC2", "eventTypeCode": REBOOT, "eventTypeCategory": "scheduledChange",
        "region": "eu-west-1", "startTime": 1_804_060_800.0, "endTime": 1_804_068_000.0,
        "lastUpdatedTime": 1_799_748_930.53, "statusCode": "upcoming", "eventScopeCode": "ACCOUNT_SPECIFIC"
    });
    json!([
        {"events": [event.clone()]},
        {"successfulSet": [{"event": event,
            "eventDescription": {"latestDescription": "Your instances are scheduled for a reboot on Tue, 9 Feb 2027 08:00:00 GMT."},
            "eventMetadata": {"truncated": "false"}}], "failedSet": []},
        {"entities": [
            {"entityArn": "arn:aws:health:eu-west-1:111111111111:entity/g1", "eventArn": arn, "entityValue": "i-0pay3333",
             "awsAccountId": "111111111111", "lastUpdatedTime": 1_799_748_930.53, "statusCode": "PENDING", "tags": {}},
            {"entityArn": "arn:aws:health:eu-west-1:210987654321:entity/g2", "eventArn": arn, "entityValue": "i-0data4444",
             "awsAccountId": "210987654321", "lastUpdatedTime": 1_799_748_930.53, "statusCode": "PENDING"}
        ]}
    ])
}

/// A refusal says what is wrong.
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
fn check_triage(triage: &mut InMemoryTriage<HealthPolicy>, raw: &RawEvent) -> Result<(), TestCaseError> {
    let now = at(NOW);
    match triage.apply(raw, now) {
        Err(error) => check_refusal(&error)?,
        Ok(published) => {
            for ticket in &published {
                prop_assert_eq!(ticket.source, Source::AwsHealth);
                prop_assert_eq!(ticket.lane, Lane::Maintenance);
                prop_assert!(!ticket.team.trim().is_empty());
                prop_assert!(!ticket.summary.trim().is_empty());
                prop_assert_eq!(&ticket.content_hash, &ticket.compute_content_hash(), "sealed");
                prop_assert_eq!(ticket.subject().split('.').count(), 2);
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

proptest! {
    #![proptest_config(cases(2_000))]

    #[test]
    fn arbitrary_json_never_panics(document in mutate::any_json()) {
        let _ = recognise(&document);
        if let Err(error) = raw_events_from_documents(std::slice::from_ref(&document), at(NOW)) {
            check_refusal(&error)?;
        }
        match raw_event(document, "fuzz", at(NOW)) {
            Err(error) => check_refusal(&error)?,
            Ok(raw) => check_triage(&mut triage(), &raw)?,
        }
    }

}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn damaged_bytes_on_the_queue_are_refused_with_a_reason_or_read(
        bytes in mutate::damaged_bytes(&samples::retirement()),
    ) {
        // As ingest-health reads an SQS body: JSON first, then the event.
        if let Ok(document) = serde_json::from_slice::<Value>(&bytes) {
            match raw_event(document, "sqs:fuzz", at(NOW)) {
                Err(error) => check_refusal(&error)?,
                Ok(raw) => check_triage(&mut triage(), &raw)?,
            }
        }
    }

    #[test]
    fn damaged_eventbridge_events_are_refused_with_a_reason_or_ticketed_once(
        which in 0_usize..5,
        mutations in mutate::mutations(4),
    ) {
        let document = mutate::apply(eventbridge_events().swap_remove(which), &mutations);
        let _ = recognise(&document);
        let via_documents = raw_events_from_documents(std::slice::from_ref(&document), at(NOW));
        match raw_event(document, "sqs:fuzz", at(NOW)) {
            Err(error) => {
                check_refusal(&error)?;
                prop_assert!(matches!(error, PolicyError::Malformed { .. }), "intake refuses only malformed");
            }
            Ok(raw) => {
                prop_assert!(!raw.dedup_id.is_empty());
                let _ = health_policy::partition(&raw);
                if let Ok(event) = HealthEvent::from_payload(&raw.payload) {
                    let _ = due_of(&event);
                    let _ = event.entities_or_resources();
                }
                check_triage(&mut triage(), &raw)?;
            }
        }
        if let Err(error) = via_documents {
            check_refusal(&error)?;
        }
    }

}

proptest! {
    #![proptest_config(cases(150))]

    #[test]
    fn events_of_one_arn_in_any_damaged_order_are_ticketed_without_panic(
        mutations in prop::collection::vec(mutate::mutations(2), 1..5),
    ) {
        let mut triage = triage();
        let base = eventbridge_events();
        for (index, mutations) in mutations.iter().enumerate() {
            let document = mutate::apply(base[index % base.len()].clone(), mutations);
            if let Ok(raw) = raw_event(document, "sqs:fuzz", at(NOW)) {
                check_triage(&mut triage, &raw)?;
            }
        }
    }

}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn damaged_health_api_responses_are_refused_with_a_reason_or_read(
        mutations in mutate::mutations(4),
    ) {
        let documents = mutate::apply(api_responses(), &mutations);
        let _ = recognise(&documents);
        match raw_events_from_documents(std::slice::from_ref(&documents), at(NOW)) {
            Err(error) => check_refusal(&error)?,
            Ok(events) => {
                let mut triage = triage();
                for raw in &events {
                    prop_assert_eq!(raw.source, Source::AwsHealth);
                    check_triage(&mut triage, raw)?;
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(cases(400))]

    #[test]
    fn deadlines_in_any_text_are_on_or_after_the_floor_unless_restated_deadlines(
        words in prop::collection::vec(
            "(by|on|no later than|since|Starting|reached|no longer|before|[0-9]{1,5}|September|Sept\\.|Feb|Wed,|GMT|UTC|PST|[+-][0-9]{4}|2026-03-08|T14:00|[0-9]{1,2}:[0-9]{2}|PM|[.,:;!?()]|\\n|é|\u{1F600}|\u{202E}|[٠-٩]{1,4}|.{0,8})",
            0..80,
        ),
        floor in prop::option::of(0_i64..100_000),
    ) {
        let text = words.join(" ");
        let floor = floor.map(|days| NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Duration::days(days));
        for sentence in sentences(&text) {
            prop_assert!(text.contains(sentence));
        }
        for found in find_dates(&text) {
            prop_assert!(found.start < found.end && text.is_char_boundary(found.start) && text.is_char_boundary(found.end));
        }
        let _ = parse_timestamp(&text);
        if let Some(deadline) = deadline_from_text(&text, floor) {
            // A past date survives only when its clause names a deadline (a restated deadline).
            prop_assert!(
                floor.is_none_or(|floor| deadline.when.sort_key().date_naive() >= floor || deadline.rule.starts_with("deadline")),
                "{deadline:?}"
            );
            prop_assert!(!deadline.sentence.is_empty());
        }
    }

}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn any_timestamp_field_is_read_or_left_out(value in prop_oneof![
        mutate::any_json(),
        any::<f64>().prop_map(|f| json!(f.to_string())),
        any::<i64>().prop_map(|i| json!(i)),
        "[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{1,6} [0-9]{1,2}:[0-9]{2}:[0-9]{2} (GMT|UTC|[+-][0-9]{4})".prop_map(Value::String),
        "[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})".prop_map(Value::String),
    ]) {
        let mut event = samples::retirement();
        for field in ["startTime", "endTime", "lastUpdatedTime"] {
            samples::set(&mut event, field, value.clone());
        }
        event["time"] = value;
        match raw_event(event, "sqs:fuzz", at(NOW)) {
            Err(error) => check_refusal(&error)?,
            Ok(raw) => check_triage(&mut triage(), &raw)?,
        }
    }
}

#[test]
fn a_megabyte_of_description_is_read_in_one_piece() {
    let mut event = samples::retirement();
    // The Node.js 18 notice, moved after the event's own date so its deadline is not history.
    let notice = samples::LAMBDA_NODE18_TEXT.replace("2026", "2028").replace("2025", "2027");
    let text = format!("{notice} ").repeat(2_000);
    samples::set(&mut event, "eventDescription", json!([{"language": "en_US", "latestDescription": text}]));
    samples::set(&mut event, "eventTypeCategory", "accountNotification");
    samples::set(&mut event, "eventTypeCode", "AWS_LAMBDA_SECURITY_NOTIFICATION");
    let raw = raw_event(event, "sqs:fuzz", at(NOW)).expect("a valid event");
    let published = triage().apply(&raw, at(NOW)).expect("ticketed");
    assert_eq!(published.len(), 1);
    assert!(published[0].due.is_some(), "the deadline is still found");
}

#[test]
fn refusals_say_what_is_wrong() {
    let expectations: [(Value, &str); 6] = [
        (json!("a string"), "the payload is not a JSON object"),
        (json!({"source": "aws.health", "detail": "x"}), "it has no \"detail\" object"),
        (json!({"source": "aws.health", "detail": {"eventArn": 42}}), "names no affected account"),
        (json!({"source": "aws.health", "detail": {"eventArn": "  "}}), "detail.eventArn is missing"),
        (
            json!({"source": "aws.health", "account": "1", "detail": {"eventArn": "arn:x", "affectedEntities": {}}}),
            "detail.affectedEntities is not a list",
        ),
        (json!({"source": "aws.ec2", "detail": {}}), "source is \"aws.ec2\""),
    ];
    for (payload, reason) in expectations {
        let error = raw_event(payload.clone(), "sqs:test", at(NOW)).unwrap_err();
        assert!(matches!(error, PolicyError::Malformed { .. }), "{payload}: {error}");
        assert!(error.to_string().contains(reason), "{payload}: {error}");
    }
    let error = raw_events_from_documents(
        &[json!({"entities": [{"eventArn": "arn:x", "entityValue": "i-1"}]})],
        at(NOW),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("names no affected account"), "{error}");
    let error = raw_events_from_documents(&[json!({"unexpected": true})], at(NOW)).unwrap_err().to_string();
    assert!(error.contains("neither an EventBridge event nor"), "{error}");
}
