//! Bad input for the three contracts: `RawEvent`, `DesiredTicket` and `TicketChange` read from
//! arbitrary bytes and from realistic documents damaged in every way a producer or a person
//! could damage them. Reading never panics; a refusal is a typed `ContractError` that names the
//! document and what is wrong; what is read round-trips.
//!
//! `PROPTEST_CASES=20000 cargo test -p contracts --test fuzz` runs a long form
//! (docs/reliability.md records its time).

use chrono::{NaiveDate, Utc};
use contracts::{
    ChangeKind, ContractError, DesiredTicket, DueDate, DueDateSource, GroupKey, Lane, PayloadKind, RawEvent,
    Source, TicketBody, TicketChange, TicketItem, TicketState, UpstreamLink,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Structure-aware mutations of realistic JSON documents: drop a field, change its type,
/// truncate or blow up a string, nest it, put odd unicode or out-of-range numbers in it.
/// (The same module is in every crate's `tests/fuzz.rs`; test crates cannot share a module.)
use payload_mutations as mutate;

fn cases(default: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over the default (the long run by hand).
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn raw_event() -> RawEvent {
    RawEvent::new(
        Source::AwsHealth,
        PayloadKind::AwsHealthEvent,
        "sqs:https://sqs.eu-west-1.amazonaws.com/111111111111/health-events",
        "health:arn:aws:health:eu-west-1::event/EC2/X/X_1:111111111111:1799748930:1",
        json!({"source": "aws.health", "detail-type": "AWS Health Event", "detail": {"eventArn": "arn:x"}}),
        "2027-01-12T10:15:30Z".parse().unwrap(),
    )
}

fn desired_ticket() -> DesiredTicket {
    DesiredTicket {
        schema: contracts::SCHEMA_VERSION,
        group_key: GroupKey::new(
            Source::Snyk,
            ["ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-api"],
        ),
        source: Source::Snyk,
        team: "payments".into(),
        lane: Lane::P1,
        summary: "Critical vulnerabilities in container image payments-api".into(),
        body: TicketBody {
            headline: "2 critical vulnerabilities, one with a mature exploit.".into(),
            notes: vec!["Exposure: internet-facing (project attribute environment=external).".into()],
            items: vec![TicketItem {
                reference: "SNYK-DEBIAN12-LIBXML2-1000001".into(),
                title: "Heap overflow in libxml2".into(),
                link: Some(
                    "https://app.snyk.io/org/acme/project/9c41/issue/SNYK-DEBIAN12-LIBXML2-1000001".into(),
                ),
                status: Some("open".into()),
                facts: vec![("Package".into(), "libxml2@2.9.14".into()), ("CVE".into(), "CVE-2099-1".into())],
            }],
            progress: Some(contracts::Progress { remaining: 1, total: 1, unit: "critical findings".into() }),
        },
        due: Some(DueDate {
            date: NaiveDate::from_ymd_opt(2026, 12, 13).unwrap(),
            source: DueDateSource::LaneSla {
                lane: Lane::P1,
                since: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            },
        }),
        state: TicketState::Open,
        labels: vec!["infra-tickets".into(), "snyk".into()],
        links: vec![UpstreamLink {
            global_id: "snyk-project-9c41".into(),
            title: "Snyk project".into(),
            url: "https://app.snyk.io/org/acme/project/9c41".into(),
        }],
        content_hash: String::new(),
        upstream_version: 7,
    }
    .seal()
}

fn ticket_change() -> TicketChange {
    TicketChange {
        schema: contracts::SCHEMA_VERSION,
        kind: ChangeKind::TeamChanged,
        group_key: GroupKey::new(
            Source::AwsHealth,
            ["arn:aws:health:eu-west-1::event/EC2/X/X_1", "111111111111", "platform"],
        ),
        source: Source::AwsHealth,
        issue_id: "10042".into(),
        issue_key: "PLAT-42".into(),
        issue_url: "https://acme.atlassian.net/browse/PLAT-42".into(),
        team: "platform".into(),
        previous_team: Some("payments".into()),
        lane: Lane::Maintenance,
        due_date: NaiveDate::from_ymd_opt(2027, 2, 9),
        summary: "AWS EC2 scheduled reboot in eu-west-1".into(),
        progress: None,
        reason: "AWS scheduled a reboot of i-0abc.".into(),
        content_hash: "ab".repeat(32),
        upstream_version: 3,
        at: Utc::now(),
    }
}

fn same_but_float_ulps(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || ((x - y) / x.abs().max(y.abs())).abs() < 1e-14
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_but_float_ulps(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_but_float_ulps(v, w)))
        }
        _ => a == b,
    }
}

/// A refusal names the document, and says what is wrong.
fn check_refusal(error: &ContractError, document: &str) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(message.contains(document), "{message}");
    match error {
        ContractError::Malformed { source, .. } => {
            prop_assert!(message.len() > format!("malformed {document}: ").len(), "{message}");
            // serde_json says where: "at line L column C" or "EOF while parsing".
            let said = source.to_string();
            prop_assert!(said.contains("line") || said.contains("EOF"), "{said}");
        }
        ContractError::UnsupportedVersion { found, supported, .. } => prop_assert!(found > supported),
        ContractError::Invalid { reason, .. } => prop_assert!(!reason.is_empty(), "{message}"),
    }
    Ok(())
}

macro_rules! contract_properties {
    ($name:ident, $ty:ty, $document:literal, $seed:expr) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(cases(2_000))]

                #[test]
                fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                    if let Err(error) = <$ty>::from_json(&bytes) {
                        check_refusal(&error, $document)?;
                    }
                }

                #[test]
                fn arbitrary_json_never_panics(document in mutate::any_json()) {
                    if let Err(error) = <$ty>::from_json(document.to_string().as_bytes()) {
                        check_refusal(&error, $document)?;
                    }
                }

                #[test]
                fn damaged_documents_are_refused_with_a_reason_or_read_whole(
                    mutations in mutate::mutations(4)
                ) {
                    let seed = serde_json::to_value($seed).unwrap();
                    let document = mutate::apply(seed, &mutations);
                    match <$ty>::from_json(document.to_string().as_bytes()) {
                        Ok(read) => {
                            // serde_json is built without `float_roundtrip`: a float that needs
                            // 17 digits may come back a few ULPs off; everything else is exact.
                            let again = <$ty>::from_json(&read.to_json()).expect("what was read reads again");
                            let (read, again) =
                                (serde_json::to_value(&read).unwrap(), serde_json::to_value(&again).unwrap());
                            prop_assert!(same_but_float_ulps(&read, &again), "{} vs {}", read, again);
                        }
                        Err(error) => check_refusal(&error, $document)?,
                    }
                }

                #[test]
                fn truncated_and_corrupted_bytes_are_refused_with_a_reason(
                    bytes in mutate::damaged_bytes(&serde_json::to_value($seed).unwrap())
                ) {
                    if let Err(error) = <$ty>::from_json(&bytes) {
                        check_refusal(&error, $document)?;
                    }
                }
            }
        }
    };
}

contract_properties!(raw_events, RawEvent, "raw event", raw_event());
contract_properties!(desired_tickets, DesiredTicket, "desired ticket", desired_ticket());
contract_properties!(ticket_changes, TicketChange, "ticket change", ticket_change());

proptest! {
    #![proptest_config(cases(2_000))]

    /// Whatever a raw event says, its subject is one valid NATS subject of four tokens.
    #[test]
    fn subjects_of_anything_read_are_valid(partition in ".{0,64}", mutations in mutate::mutations(3)) {
        let document = mutate::apply(serde_json::to_value(raw_event()).unwrap(), &mutations);
        if let Ok(event) = RawEvent::from_json(document.to_string().as_bytes()) {
            let subject = event.subject(&partition);
            prop_assert_eq!(subject.split('.').count(), 4, "{}", subject);
            prop_assert!(!subject.contains([' ', '*', '>', '\n', '\r', '\t']), "{}", subject);
        }
        let desired = mutate::apply(serde_json::to_value(desired_ticket()).unwrap(), &mutations);
        if let Ok(ticket) = DesiredTicket::from_json(desired.to_string().as_bytes()) {
            prop_assert_eq!(ticket.subject().split('.').count(), 2);
            let _ = ticket.message_id();
            let _ = ticket.compute_content_hash();
        }
        let change = mutate::apply(serde_json::to_value(ticket_change()).unwrap(), &mutations);
        if let Ok(change) = TicketChange::from_json(change.to_string().as_bytes()) {
            prop_assert_eq!(change.subject().split('.').count(), 3);
            let _ = change.message_id();
        }
    }
}

#[test]
fn the_reasons_say_what_is_wrong() {
    let mut missing = serde_json::to_value(desired_ticket()).unwrap();
    missing.as_object_mut().unwrap().remove("lane");
    let error = DesiredTicket::from_json(missing.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.contains("missing field `lane`"), "{error}");

    let mut wrong_type = serde_json::to_value(ticket_change()).unwrap();
    wrong_type["upstream_version"] = json!("three");
    let error = TicketChange::from_json(wrong_type.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.contains("invalid type: string \"three\", expected u64"), "{error}");

    let mut out_of_range = serde_json::to_value(raw_event()).unwrap();
    out_of_range["schema"] = json!(70_000);
    let error = RawEvent::from_json(out_of_range.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.contains("70000") && error.contains("u16"), "{error}");

    let mut newer = serde_json::to_value(raw_event()).unwrap();
    newer["schema"] = json!(2);
    let error = RawEvent::from_json(newer.to_string().as_bytes()).unwrap_err().to_string();
    assert_eq!(error, "raw event has schema version 2, this build reads up to 1");

    let truncated = &desired_ticket().to_json()[..40];
    let error = DesiredTicket::from_json(truncated).unwrap_err().to_string();
    assert!(error.starts_with("malformed desired ticket: EOF while parsing"), "{error}");

    let mut unknown_kind = serde_json::to_value(raw_event()).unwrap();
    unknown_kind["kind"] = json!("snyk_webhook");
    let error = RawEvent::from_json(unknown_kind.to_string().as_bytes()).unwrap_err().to_string();
    assert!(error.contains("unknown variant `snyk_webhook`"), "{error}");

    let event = format!(
        r#"{{"source":"snyk","kind":"snyk_project_snapshot","received_at":"2027-01-12T10:15:30Z","received_from":"x","dedup_id":"y","payload":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let error = RawEvent::from_json(event.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("recursion limit exceeded"), "{error}");
}

#[test]
fn a_huge_payload_is_read_without_trouble() {
    let mut event = raw_event();
    event.payload =
        json!({"detail": {"eventDescription": "é".repeat(2_000_000)}, "list": vec![Value::Null; 100_000]});
    let bytes = event.to_json();
    assert_eq!(RawEvent::from_json(&bytes).unwrap(), event);
}
