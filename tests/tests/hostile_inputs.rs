//! Hostile input end to end (issue 22, point 4): outside data that once dropped the NATS
//! connection, looped the Health API paging or made a group state too big to store. Each case
//! is published through ingest-health's intake (the path SQS, the API destination and the
//! reconcile share) into a real nats-server with triage running, and must end as a ticket or a
//! dead letter with a reason, with the next ordinary event still ticketed.

use std::time::Duration;

use aws_health_sim::{AwsHealthSim, PageLimits, SimEntity, SimEvent};
use chrono::{DateTime, Duration as Span, Utc};
use contracts::DesiredTicket;
use e2e_tests::{TestBroker, eventually};
use health_policy::samples;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const PLATFORM: &str = "111111111111";
const REBOOT: &str = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";
const TIMEOUT: Duration = Duration::from_secs(60);
const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
aws_accounts = ["111111111111"]
"#;

/// A broker with triage running, and ingest-health's intake publishing into it.
struct Stack {
    broker: TestBroker,
    intake: ingest_health::Intake,
    shutdown: CancellationToken,
    _catalog: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn stack() -> Stack {
    let broker = TestBroker::start().await;
    let catalog = tempfile::tempdir().expect("temp dir");
    let path = catalog.path().join("catalog.toml");
    std::fs::write(&path, CATALOG).expect("write the catalog");
    let shutdown = CancellationToken::new();
    let args = [
        "triage",
        "--nats-url",
        broker.url(),
        "--listen",
        "127.0.0.1:0",
        "--catalog",
        path.to_str().unwrap(),
    ];
    let triage: triage::Config =
        service_kit::config::try_parse_from(args.map(std::ffi::OsString::from), |_| None)
            .expect("triage flags");
    let stop = shutdown.clone();
    tokio::spawn(async move { triage::run(triage, stop).await.expect("triage runs") });
    let intake = ingest_health::Intake::new(broker.publisher.clone(), service_kit::Clock::system());
    Stack { broker, intake, shutdown, _catalog: catalog }
}

impl Stack {
    /// Publishes one EventBridge event as the SQS intake does; returns how many were stored.
    async fn publish(&self, event: &Value) -> usize {
        let events = self.intake.raw_events(event.to_string().as_bytes(), "hostile-test").expect("an event");
        self.intake.publish(&events).await.expect("published").stored
    }

    async fn tickets_of(&self, arn: &str) -> Vec<DesiredTicket> {
        let tickets = self.broker.desired_tickets().await;
        tickets.into_iter().filter(|t| t.group_key.as_str().contains(arn)).collect()
    }

    async fn wait_for_ticket(&self, arn: &str) -> Vec<DesiredTicket> {
        eventually(&format!("a ticket for {arn}"), TIMEOUT, || async {
            !self.tickets_of(arn).await.is_empty()
        })
        .await;
        self.tickets_of(arn).await
    }
}

fn reboot(id: &str, account: &str, instances: &[(&str, &str)]) -> (String, Value) {
    let now = Utc::now();
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, id);
    let mut event =
        samples::event(&arn, "EC2", REBOOT, "scheduledChange", account, "eu-west-1", now, "Reboot.");
    samples::window(&mut event, now + Span::days(20), Some(now + Span::days(20) + Span::hours(2)));
    samples::entities(&mut event, instances);
    samples::set(&mut event, "statusCode", "upcoming");
    (arn, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_6000_character_account_id_is_ticketed_and_the_connection_stays_up() {
    let stack = stack().await;
    let account = "9".repeat(6_000);
    let (arn, event) = reboot("hugeaccount", &account, &[("i-0huge1", "PENDING")]);
    assert_eq!(stack.publish(&event).await, 1, "stored on RAW_EVENTS, not refused by the server");
    let tickets = stack.wait_for_ticket(&arn).await;
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].body.notes.iter().any(|n| n.contains(&account[..100])), "the account is named");

    // The same publisher goes on: the connection was not dropped.
    let (next, event) = reboot("afterhuge", PLATFORM, &[("i-0next1", "PENDING")]);
    assert_eq!(stack.publish(&event).await, 1);
    assert_eq!(stack.wait_for_ticket(&next).await.len(), 1);
    assert!(stack.broker.dead_letters().await.is_empty(), "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_account_ids_and_regions_never_break_a_subject() {
    let stack = stack().await;
    let hostile =
        ["", "a.b.c", "*", ">", "acct with spaces\r\nPUB evil 1", "ключ/🚀/\u{202e}", &"x.".repeat(3_000)];
    let mut arns = Vec::new();
    for (i, account) in hostile.iter().enumerate() {
        let (arn, mut event) = reboot(&format!("hostile{i}"), account, &[("i-0hostile", "PENDING")]);
        samples::set(&mut event, "eventRegion", *account);
        assert_eq!(stack.publish(&event).await, 1, "account {i} stored");
        arns.push(arn);
    }
    for arn in &arns {
        let broker = &stack.broker;
        eventually(&format!("{arn} ticketed or dead-lettered"), TIMEOUT, || async {
            let ticketed = !stack.tickets_of(arn).await.is_empty();
            let dead = broker
                .dead_letters()
                .await
                .iter()
                .any(|d| String::from_utf8_lossy(&d.payload).contains(arn.as_str()));
            ticketed || dead
        })
        .await;
    }
    let (next, event) = reboot("afterhostile", PLATFORM, &[("i-0next2", "PENDING")]);
    assert_eq!(stack.publish(&event).await, 1);
    assert_eq!(stack.wait_for_ticket(&next).await.len(), 1);
}

/// 25 events in pages of 4: DescribeEvents pages three times or more.
fn many_events(now: DateTime<Utc>) -> Vec<SimEvent> {
    (0..25)
        .map(|i| {
            let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, &format!("loop{i:03}"));
            let updated = now - Span::minutes(i);
            let entities = vec![SimEntity::new(PLATFORM, &format!("i-0loop{i:03}"), "PENDING", updated)];
            SimEvent::new(&arn, "EC2", REBOOT, "scheduledChange", "eu-west-1", updated, "upcoming", "Reboot.")
                .with_window(now + Span::days(20), None)
                .with_entities(entities)
        })
        .collect()
}

async fn reconciler(
    broker: &TestBroker,
    sim: &AwsHealthSim,
    organization: bool,
) -> ingest_health::Reconciler {
    let args = ["ingest-health", "--nats-url", broker.url(), "--health-api-endpoint-url", &sim.url()];
    let mut config: ingest_health::Config =
        service_kit::config::try_parse_from(args.map(std::ffi::OsString::from), |_| None).expect("flags");
    config.aws = Some(ingest_health::static_sdk_config("us-east-1", "AKIDEXAMPLE", "test-secret"));
    ingest_health::Reconciler {
        client: ingest_health::Reconciler::client(&config).await,
        organization,
        page_size: 10,
        backfill: ingest_health::MAX_BACKFILL,
        overlap: Duration::from_secs(3600),
        account_id: None,
        origin: "health-api:test".into(),
        intake: ingest_health::Intake::new(broker.publisher.clone(), service_kit::Clock::system()),
        cursors: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_health_api_page_token_stops_paging_with_a_retryable_error() {
    use ingest_health::reconcile::ReconcileError;
    let broker = TestBroker::start().await;
    let sim = AwsHealthSim::start_with(many_events(Utc::now())).await.expect("simulator");
    sim.set_page_limits(PageLimits { events: 4, entities: 3, accounts: 10 });
    for (operation, organization) in [("DescribeEvents", false), ("DescribeEventsForOrganization", true)] {
        sim.repeat_page_tokens(operation, true);
        sim.reset_calls();
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            reconciler(&broker, &sim, organization).await.reconcile_once(),
        )
        .await
        .expect("the reconcile ends instead of paging forever");
        let error = outcome.expect_err("a repeated token is an error");
        assert!(
            matches!(&error, ReconcileError::RepeatedPageToken { operation: op, .. } if *op == operation),
            "{error}"
        );
        assert_eq!(error.class(), bus::ErrorClass::Retry { after: None });
        assert_eq!(sim.calls()[operation], 2, "page 2 hands back page 1's token: stop there");
        assert_eq!(broker.stream_messages(bus::topology::RAW_EVENTS).await, 0, "nothing half-published");
        sim.repeat_page_tokens(operation, false);
    }
    let report = reconciler(&broker, &sim, false).await.reconcile_once().await.expect("a healthy reconcile");
    assert_eq!(report.published.stored, 25, "the next reconcile takes every event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_jira_search_page_token_stops_paging_with_a_retryable_error() {
    use jira_writer::client::{JiraClient, JiraClientConfig, JiraError, SearchRequest};
    let sim = jira_sim::JiraSim::start(jira_sim::SimConfig::default()).await.expect("JIRA simulator");
    let client = JiraClient::new(JiraClientConfig::new(
        sim.url(),
        jira_sim::BOT_EMAIL,
        service_kit::Secret::new(jira_sim::BOT_TOKEN),
    ))
    .expect("client");
    for i in 0..7 {
        let fields = serde_json::json!({"fields": {
            "project": {"key": "PLAT"}, "issuetype": {"name": "Task"}, "summary": format!("paged {i}")}});
        client.create_issue(&fields).await.expect("create");
    }
    let request = SearchRequest {
        jql: "project = PLAT".into(),
        max_results: Some(2),
        fields: vec!["summary".into()],
        ..SearchRequest::default()
    };
    assert_eq!(client.search_all(&request, 100).await.expect("a healthy search").len(), 7);

    sim.repeat_search_page_tokens(true);
    let error = client.search_all(&request, 100).await.expect_err("a repeated token is an error");
    assert!(
        matches!(&error, JiraError::Transient { message, .. } if message.contains("a second time")),
        "{error}"
    );
    assert!(matches!(bus::Classify::class(&error), bus::ErrorClass::Retry { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_event_with_2500_entities_is_ticketed_not_dead_lettered() {
    let stack = stack().await;
    let values: Vec<String> =
        (0..2_500).map(|i| format!("arn:aws:ec2:eu-west-1:111111111111:instance/i-0{i:016x}")).collect();
    let list: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), "PENDING")).collect();
    let (arn, event) = reboot("manyentities", PLATFORM, &list);
    assert_eq!(stack.publish(&event).await, 1);
    let tickets = stack.wait_for_ticket(&arn).await;
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!(ticket.body.items.len(), health_policy::MAX_TICKET_ITEMS);
    assert_eq!(ticket.body.progress.as_ref().map(|p| p.total), Some(2_500));
    assert!(
        ticket.body.notes.iter().any(|n| n.starts_with("And 2400 more resources")),
        "{:?}",
        ticket.body.notes
    );
    assert!(stack.broker.dead_letters().await.is_empty(), "no page dead-lettered");
    let (next, event) = reboot("aftermany", PLATFORM, &[("i-0next3", "PENDING")]);
    assert_eq!(stack.publish(&event).await, 1);
    assert_eq!(stack.wait_for_ticket(&next).await.len(), 1);
}

/// A seeded generator of hostile text: subject metacharacters, control characters, RTL marks,
/// emoji, non-ASCII letters and runs of any length up to 6,000 characters.
fn hostile_text(seed: &mut u64) -> String {
    const PIECES: &[&str] = &[
        ".", "*", ">", " ", "\r\n", "\t", "\u{0}", "\u{202e}", "🚀", "é", "ключ", "$KV.", "_INBOX.", "1",
        "a", "/",
    ];
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let length = match next() % 4 {
        0 => (next() % 8) as usize,
        1 => (next() % 100) as usize,
        2 => 1_000 + (next() % 1_000) as usize,
        _ => 6_000,
    };
    let mut text = String::new();
    while text.chars().count() < length {
        text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
    }
    text
}

/// The property, end to end: for any hostile account id, Region and entity value, publishing
/// never fails or drops the connection, and every event ends as a ticket or a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_hostile_fields_are_all_ticketed_or_dead_lettered_none_lost() {
    let stack = stack().await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let cases: usize = std::env::var("HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let mut arns = Vec::new();
    for i in 0..cases {
        let (account, region, entity) =
            (hostile_text(&mut seed), hostile_text(&mut seed), hostile_text(&mut seed));
        let (arn, mut event) = reboot(&format!("gen{i}"), &account, &[(entity.as_str(), "PENDING")]);
        samples::set(&mut event, "eventRegion", region.as_str());
        assert_eq!(stack.publish(&event).await, 1, "case {i} stored");
        arns.push(arn);
    }
    let broker = &stack.broker;
    eventually("every generated event ticketed or dead-lettered", TIMEOUT, || async {
        let tickets = broker.desired_tickets().await;
        let dead = broker.dead_letters().await;
        arns.iter().all(|arn| {
            tickets.iter().any(|t| t.group_key.as_str().contains(arn.as_str()))
                || dead.iter().any(|d| String::from_utf8_lossy(&d.payload).contains(arn.as_str()))
        })
    })
    .await;
    assert_eq!(broker.stream_messages(bus::topology::RAW_EVENTS).await, cases as u64, "none lost");
    let (next, event) = reboot("aftergenerated", PLATFORM, &[("i-0next4", "PENDING")]);
    assert_eq!(stack.publish(&event).await, 1);
    assert_eq!(stack.wait_for_ticket(&next).await.len(), 1);
}
