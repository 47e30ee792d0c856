//! The AWS Health path end to end: ingest-health (SQS on moto, the API destination webhook, the
//! Health API reconcile against aws-health-sim) and triage, in-process, on a real nats-server.

use std::time::Duration;

use aws_health_sim::moto::MotoServer;
use aws_health_sim::{AwsHealthSim, PageLimits, SimEntity, SimEvent, seed};
use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use contracts::{DesiredTicket, DueDateSource, Lane, TicketState};
use e2e_tests::{TestBroker, eventually};
use health_policy::samples;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "api-destination-secret";
const PLATFORM: &str = "111111111111";
const TIMEOUT: Duration = Duration::from_secs(30);

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

fn sdk() -> ingest_health::SdkConfig {
    ingest_health::static_sdk_config("us-east-1", "AKIDEXAMPLE", "test-secret")
}

/// A broker, moto's SQS with a queue, the Health simulator, ingest-health and triage.
struct Stack {
    broker: TestBroker,
    sim: AwsHealthSim,
    _moto: MotoServer,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    webhook: String,
    ingest: ingest_health::Config,
    shutdown: CancellationToken,
    _catalog: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Flags as a service's binary gets them.
fn flags<S: Into<std::ffi::OsString>>(args: impl IntoIterator<Item = S>) -> Vec<std::ffi::OsString> {
    args.into_iter().map(Into::into).collect()
}

/// Starts everything; the reconcile runs every `reconcile_every` when given.
async fn stack(sim_events: Vec<SimEvent>, reconcile_every: Option<&str>) -> Stack {
    let broker = TestBroker::start().await;
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("moto's server is needed for SQS: {e}"));
    let sim = AwsHealthSim::start_with(sim_events).await.expect("start the AWS Health simulator");
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk()).endpoint_url(moto.url()).build(),
    );
    let queue = sqs
        .create_queue()
        .queue_name("health-events")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .expect("create the queue");
    let queue_url = queue.queue_url().expect("a queue URL").to_owned();
    let catalog = tempfile::tempdir().expect("temp dir");
    let catalog_path = catalog.path().join("catalog.toml");
    std::fs::write(&catalog_path, CATALOG).expect("write the catalog");
    let shutdown = CancellationToken::new();

    let triage: triage::Config = service_kit::config::try_parse_from(
        flags([
            "triage",
            "--nats-url",
            broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            catalog_path.to_str().unwrap(),
        ]),
        |_| None,
    )
    .expect("valid triage flags");
    let stop = shutdown.clone();
    tokio::spawn(async move { triage::run(triage, stop).await.expect("triage runs") });

    let mut args = vec![
        "ingest-health".to_owned(),
        "--nats-url".into(),
        broker.url().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--health-sqs-queue-url".into(),
        queue_url.clone(),
        "--health-sqs-endpoint-url".into(),
        moto.url().into(),
        "--health-sqs-wait-seconds".into(),
        "1".into(),
        "--health-webhook-secret".into(),
        SECRET.into(),
        "--health-webhook-max-bytes".into(),
        "65536".into(),
        "--health-api-endpoint-url".into(),
        sim.url(),
        "--health-api-page-size".into(),
        "10".into(),
    ];
    if let Some(every) = reconcile_every {
        args.extend(["--health-api-interval".into(), every.into()]);
    }
    let mut ingest: ingest_health::Config =
        service_kit::config::try_parse_from(flags(args), |_| None).expect("valid ingest-health flags");
    ingest.aws = Some(sdk());
    let running = ingest_health::start(ingest.clone(), shutdown.clone()).await.expect("ingest-health starts");
    let webhook = format!("http://{}{}", running.http_address, ingest_health::webhook::PATH);
    tokio::spawn(running.wait());
    Stack { broker, sim, _moto: moto, sqs, queue_url, webhook, ingest, shutdown, _catalog: catalog }
}

impl Stack {
    async fn send_sqs(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send to SQS");
    }

    async fn post(&self, body: impl Into<reqwest::Body>, secret: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(&self.webhook)
            .header("x-itk-health-secret", secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post to the webhook")
    }

    async fn tickets(&self) -> Vec<DesiredTicket> {
        self.broker.desired_tickets().await
    }

    async fn wait_for_tickets(
        &self,
        what: &str,
        check: impl Fn(&[DesiredTicket]) -> bool,
    ) -> Vec<DesiredTicket> {
        let broker = &self.broker;
        let check = &check;
        eventually(what, TIMEOUT, || async move { check(&broker.desired_tickets().await) }).await;
        self.tickets().await
    }

    async fn raw_events(&self) -> u64 {
        self.broker.stream_messages(bus::topology::RAW_EVENTS).await
    }

    async fn messages_in_queue(&self) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        attributes
            .attributes()
            .map(|a| a.values().map(|v| v.parse::<usize>().unwrap_or(0)).sum())
            .unwrap_or(0)
    }

    /// One reconcile with the Health API, as the running service does it.
    async fn reconcile_once(&self, organization: bool) -> ingest_health::Report {
        let reconciler = ingest_health::Reconciler {
            client: ingest_health::Reconciler::client(&self.ingest).await,
            organization,
            page_size: 10,
            backfill: ingest_health::MAX_BACKFILL,
            overlap: Duration::from_secs(3600),
            account_id: None,
            origin: "health-api:test".into(),
            intake: ingest_health::Intake::new(self.broker.publisher.clone(), service_kit::Clock::system()),
            cursors: None,
        };
        reconciler.reconcile_once().await.expect("reconcile")
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn day(time: DateTime<Utc>) -> NaiveDate {
    time.date_naive()
}

const REBOOT: &str = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";

/// An EventBridge scheduled-reboot event for `instances`, window at `start`, version `updated`.
fn reboot(id: &str, instances: &[(&str, &str)], start: DateTime<Utc>, updated: DateTime<Utc>) -> Value {
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, id);
    let mut event = samples::event(
        &arn,
        "EC2",
        REBOOT,
        "scheduledChange",
        PLATFORM,
        "eu-west-1",
        updated,
        "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
    );
    samples::window(&mut event, start, Some(start + Span::hours(2)));
    samples::entities(&mut event, instances);
    samples::set(&mut event, "statusCode", "upcoming");
    event
}

fn for_event<'a>(tickets: &'a [DesiredTicket], arn: &str) -> Vec<&'a DesiredTicket> {
    tickets.iter().filter(|t| t.group_key.as_str().contains(arn)).collect()
}

#[tokio::test]
async fn a_scheduled_reboot_through_sqs_gets_one_ticket_and_a_moved_window_moves_its_due_date() {
    let stack = stack(Vec::new(), None).await;
    let now = Utc::now();
    let first_window = now + Span::days(14);
    let first = reboot("sqs1", &[("i-0web0a1b2c3d4e5f6", "PENDING")], first_window, now - Span::hours(1));
    stack.send_sqs(&first.to_string()).await;
    let tickets = stack.wait_for_tickets("the reboot ticket", |t| t.len() == 1).await;
    let ticket = &tickets[0];
    assert_eq!(ticket.lane, Lane::Maintenance);
    assert_eq!(ticket.team, "platform");
    assert_eq!(ticket.state, TicketState::Open);
    assert_eq!(ticket.due.as_ref().unwrap().date, day(first_window));
    assert_eq!(ticket.due.as_ref().unwrap().source, DueDateSource::EventWindow);

    let moved_window = first_window + Span::days(7);
    let mut moved = reboot("sqs1", &[("i-0web0a1b2c3d4e5f6", "PENDING")], moved_window, now);
    samples::set(&mut moved, "statusCode", "open");
    stack.send_sqs(&moved.to_string()).await;
    let tickets = stack
        .wait_for_tickets("the moved due date", |t| {
            t.len() == 1 && t[0].due.as_ref().unwrap().date == day(moved_window)
        })
        .await;
    assert_eq!(tickets[0].group_key, ticket.group_key, "the same ticket, updated");
    assert!(tickets[0].body.notes.iter().any(|n| n.starts_with("Rescheduled: AWS moved the date")));
    eventually("SQS messages deleted after publishing", TIMEOUT, || async {
        stack.messages_in_queue().await == 0
    })
    .await;
    assert_eq!(stack.raw_events().await, 2);
}

#[tokio::test]
async fn a_first_notice_already_upcoming_with_a_two_day_deadline_is_ticketed() {
    let stack = stack(Vec::new(), None).await;
    let now = Utc::now();
    let start = now + Span::days(2);
    let event = reboot("short", &[("i-0web1111", "PENDING")], start, now);
    let response = stack.post(event.to_string(), SECRET).await;
    assert_eq!(response.status(), 202);
    let tickets = stack.wait_for_tickets("the short-notice ticket", |t| t.len() == 1).await;
    assert_eq!(tickets[0].due.as_ref().unwrap().date, day(start));
    assert_eq!(tickets[0].state, TicketState::Open);
}

#[tokio::test]
async fn an_event_with_resources_of_two_teams_yields_two_tickets() {
    let stack = stack(Vec::new(), None).await;
    let now = Utc::now();
    let event =
        reboot("teams", &[("i-0pay1111", "PENDING"), ("i-0web2222", "PENDING")], now + Span::days(9), now);
    assert_eq!(stack.post(event.to_string(), SECRET).await.status(), 202);
    let tickets = stack.wait_for_tickets("two tickets", |t| t.len() == 2).await;
    let payments = tickets.iter().find(|t| t.team == "payments").expect("a payments ticket");
    let platform = tickets.iter().find(|t| t.team == "platform").expect("a platform ticket");
    assert_eq!(payments.body.items.iter().map(|i| i.reference.as_str()).collect::<Vec<_>>(), ["i-0pay1111"]);
    assert_eq!(platform.body.items.iter().map(|i| i.reference.as_str()).collect::<Vec<_>>(), ["i-0web2222"]);
}

#[tokio::test]
async fn the_api_reconcile_dates_text_only_deadlines_and_windows_and_skips_reserved_instances() {
    let now = Utc::now();
    let stack = stack(seed::events(now), Some("1h")).await;
    let tickets = stack
        .wait_for_tickets("the seeded events' tickets", |t| {
            !for_event(t, seed::LAMBDA_RUNTIME_ARN).is_empty()
                && !for_event(t, seed::DIRECT_CONNECT_ARN).is_empty()
                && !for_event(t, seed::CLOSED_ARN).is_empty()
        })
        .await;
    let lambda = for_event(&tickets, seed::LAMBDA_RUNTIME_ARN)[0];
    let deadline = (now + Span::days(120)).date_naive();
    assert_eq!(lambda.team, "data");
    assert_eq!(lambda.due.as_ref().unwrap().date, deadline, "the deadline, not the EOL or later stages");
    match &lambda.due.as_ref().unwrap().source {
        DueDateSource::EventText { sentence } => {
            assert!(sentence.starts_with("We are ending support"), "{sentence}")
        }
        other => panic!("expected a date from the text, got {other:?}"),
    }
    let direct_connect = for_event(&tickets, seed::DIRECT_CONNECT_ARN)[0];
    assert_eq!(direct_connect.due.as_ref().unwrap().date, (now + Span::days(10)).date_naive());
    assert_eq!(direct_connect.due.as_ref().unwrap().source, DueDateSource::EventWindow);
    assert!(
        for_event(&tickets, seed::RESERVED_INSTANCE_ARN).is_empty(),
        "Reserved Instance notices are not ticketed"
    );
    assert!(for_event(&tickets, seed::CLOSED_ARN).iter().all(|t| t.state == TicketState::Resolved));
    assert_eq!(for_event(&tickets, seed::TWO_TEAMS_ARN).len(), 2);

    // A board people can read: the service as AWS names it, what happens, and never the same
    // summary for two different notices; each ticket counts what remains.
    assert!(lambda.summary.starts_with("AWS Lambda: end of support"), "{}", lambda.summary);
    assert!(
        direct_connect.summary.starts_with("AWS Direct Connect: scheduled maintenance"),
        "{}",
        direct_connect.summary
    );
    let mut by_notice: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for ticket in &tickets {
        let notice = ticket.links[0].global_id.as_str();
        if let Some(other) = by_notice.insert(ticket.summary.as_str(), notice) {
            assert_eq!(other, notice, "two notices share the summary {}", ticket.summary);
        }
    }
    let progress = lambda.body.progress.as_ref().expect("the ticket counts its resources");
    assert_eq!((progress.total, progress.unit.as_str()), (lambda.body.items.len() as u32, "resources"));
}

#[tokio::test]
async fn the_same_event_through_sqs_and_the_api_reconcile_is_stored_once() {
    let now = Utc::now();
    let updated = at(&(now - Span::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let start = updated + Span::days(12);
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, "twice");
    let sim_event =
        SimEvent::new(&arn, "EC2", REBOOT, "scheduledChange", "eu-west-1", updated, "upcoming", "Reboot.")
            .with_window(start, Some(start + Span::hours(2)))
            .with_entities(vec![SimEntity::new(PLATFORM, "i-0web7777", "PENDING", updated)]);
    let stack = stack(vec![sim_event], None).await;

    let report = stack.reconcile_once(false).await;
    assert_eq!((report.events, report.published.stored), (1, 1));
    let mut via_eventbridge = reboot("twice", &[("i-0web7777", "PENDING")], start, updated);
    via_eventbridge["id"] = "7e2f0c1a-eventbridge-delivery".into();
    stack.send_sqs(&via_eventbridge.to_string()).await;
    eventually("the SQS copy consumed", TIMEOUT, || async { stack.messages_in_queue().await == 0 }).await;
    let again = stack.reconcile_once(false).await;
    assert_eq!((again.published.stored, again.published.duplicates), (0, 1));
    assert_eq!(stack.raw_events().await, 1, "stored once");
    stack.wait_for_tickets("one ticket", |t| t.len() == 1).await;
}

#[tokio::test]
async fn a_closed_event_resolves_its_tickets() {
    let now = Utc::now();
    let stack = stack(seed::events(now), Some("1s")).await;
    stack.wait_for_tickets("the two-team tickets", |t| for_event(t, seed::TWO_TEAMS_ARN).len() == 2).await;
    let closed = stack.sim.modify_event(seed::TWO_TEAMS_ARN, |event| {
        event.status = "closed".into();
        event.last_updated = Utc::now();
    });
    assert!(closed);
    let tickets = stack
        .wait_for_tickets("both tickets resolved", |t| {
            let mine = for_event(t, seed::TWO_TEAMS_ARN);
            mine.len() == 2 && mine.iter().all(|t| t.state == TicketState::Resolved)
        })
        .await;
    assert!(
        for_event(&tickets, seed::TWO_TEAMS_ARN)[0]
            .body
            .notes
            .iter()
            .any(|n| n.contains("AWS closed the event"))
    );
}

/// 25 events with 7 entities each, and pages of 4 events and 3 entities.
fn many_events(now: DateTime<Utc>) -> Vec<SimEvent> {
    (0..25)
        .map(|i| {
            let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, &format!("bulk{i:03}"));
            let updated = now - Span::minutes(i);
            let entities = (0..7)
                .map(|e| SimEntity::new(PLATFORM, &format!("i-0bulk{i:03}x{e}"), "PENDING", updated))
                .collect();
            SimEvent::new(&arn, "EC2", REBOOT, "scheduledChange", "eu-west-1", updated, "upcoming", "Reboot.")
                .with_window(now + Span::days(20), None)
                .with_entities(entities)
        })
        .collect()
}

#[tokio::test]
async fn the_api_reconcile_pages_through_events_and_entities_in_both_views() {
    let now = Utc::now();
    let stack = stack(many_events(now), None).await;
    stack.sim.set_page_limits(PageLimits { events: 4, entities: 3, accounts: 10 });
    let report = stack.reconcile_once(false).await;
    assert_eq!(report.published.stored, 25);
    let calls = stack.sim.calls();
    assert_eq!(calls["DescribeEvents"], 7, "25 events in pages of 4");
    assert_eq!(calls["DescribeEventDetails"], 3, "10 ARNs per call");
    assert_eq!(calls["DescribeAffectedEntities"], 24 + 24 + 12, "70, 70 and 35 entities in pages of 3");
    let tickets = stack.wait_for_tickets("25 tickets", |t| t.len() == 25).await;
    assert!(tickets.iter().all(|t| t.body.items.len() == 7), "every entity of every page");

    stack.sim.reset_calls();
    let organization = stack.reconcile_once(true).await;
    assert_eq!((organization.events, organization.published.duplicates), (25, 25));
    let calls = stack.sim.calls();
    assert_eq!(calls["DescribeEventsForOrganization"], 7);
    assert_eq!(calls["DescribeAffectedAccountsForOrganization"], 25);
    assert!(calls["DescribeAffectedEntitiesForOrganization"] > 3);
}

#[tokio::test]
async fn malformed_events_dead_letter_with_a_reason_and_are_deleted_from_the_queue() {
    let stack = stack(Vec::new(), None).await;
    stack.send_sqs("this is not JSON").await;
    stack
        .send_sqs(
            r#"{"source": "aws.health", "detail-type": "AWS Health Event", "detail": {"service": "EC2"}}"#,
        )
        .await;
    let response = stack.post(r#"{"source": "aws.ec2", "detail": {}}"#, SECRET).await;
    assert_eq!(response.status(), 400);
    let broker = &stack.broker;
    eventually("three dead letters", TIMEOUT, || async move { broker.dead_letters().await.len() == 3 }).await;
    let letters = stack.broker.dead_letters().await;
    assert!(letters.iter().all(|l| l.stage == "ingest-health"));
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("not JSON")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("eventArn is missing")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("aws.ec2")), "{reasons:?}");
    assert!(
        letters.iter().any(|l| l.payload.as_ref() == b"this is not JSON"),
        "the body is kept as received"
    );
    eventually("SQS messages deleted", TIMEOUT, || async { stack.messages_in_queue().await == 0 }).await;
    assert_eq!(stack.raw_events().await, 0);
}

#[tokio::test]
async fn a_wrong_secret_and_an_oversized_body_are_refused_and_nothing_is_published() {
    let stack = stack(Vec::new(), None).await;
    let event = reboot("refused", &[("i-0web1", "PENDING")], Utc::now() + Span::days(3), Utc::now());
    assert_eq!(stack.post(event.to_string(), "wrong-secret").await.status(), 401);
    let no_secret = reqwest::Client::new().post(&stack.webhook).body(event.to_string()).send().await.unwrap();
    assert_eq!(no_secret.status(), 401);
    let mut huge = event.clone();
    samples::set(
        &mut huge,
        "eventDescription",
        vec![serde_json::json!({"language": "en_US", "latestDescription": "x".repeat(100_000)})],
    );
    assert_eq!(stack.post(huge.to_string(), SECRET).await.status(), 413);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.raw_events().await, 0);
    assert!(stack.broker.dead_letters().await.is_empty());
    assert!(stack.tickets().await.is_empty());
}

#[tokio::test]
async fn an_sqs_message_that_cannot_be_published_stays_in_the_queue_until_it_can() {
    let mut stack = stack(Vec::new(), None).await;
    stack.broker.server.kill();
    let event = reboot("outage", &[("i-0web4242", "PENDING")], Utc::now() + Span::days(5), Utc::now());
    stack.send_sqs(&event.to_string()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(stack.messages_in_queue().await, 1, "not deleted while NATS is down");
    stack.broker.server.restart().expect("restart nats-server");
    let broker = &stack.broker;
    eventually("the event published after the outage", Duration::from_secs(60), || async move {
        broker.stream_messages(bus::topology::RAW_EVENTS).await == 1
    })
    .await;
    eventually("the message deleted once published", TIMEOUT, || async {
        stack.messages_in_queue().await == 0
    })
    .await;
}

/// The number the issue asks for: Health API calls of one reconcile of 500 events with 20
/// entities each, with the largest pages the API allows (100) and with pages of 10 entities
/// (what the API is reported to return).
#[tokio::test]
async fn api_calls_for_a_reconcile_of_500_events_with_20_entities_each() {
    let now = Utc::now();
    let events: Vec<SimEvent> = (0..500)
        .map(|i| {
            let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, &format!("scale{i:04}"));
            let updated = now - Span::seconds(i);
            let entities = (0..20)
                .map(|e| SimEntity::new(PLATFORM, &format!("i-0scale{i:04}x{e:02}"), "PENDING", updated))
                .collect();
            SimEvent::new(&arn, "EC2", REBOOT, "scheduledChange", "eu-west-1", updated, "upcoming", "Reboot.")
                .with_window(now + Span::days(20), None)
                .with_entities(entities)
        })
        .collect();
    let stack = stack(events, None).await;
    for (entities_per_page, expected) in [(100, 5 + 50 + 100), (10, 5 + 50 + 1_000)] {
        stack.sim.set_page_limits(PageLimits { events: 100, entities: entities_per_page, accounts: 100 });
        stack.sim.reset_calls();
        let mut reconciler_config = stack.ingest.clone();
        reconciler_config.api_page_size = 100;
        let report = {
            let reconciler = ingest_health::Reconciler {
                client: ingest_health::Reconciler::client(&reconciler_config).await,
                organization: false,
                page_size: 100,
                backfill: ingest_health::MAX_BACKFILL,
                overlap: Duration::from_secs(3600),
                account_id: None,
                origin: "health-api:test".into(),
                intake: ingest_health::Intake::new(
                    stack.broker.publisher.clone(),
                    service_kit::Clock::system(),
                ),
                cursors: None,
            };
            reconciler.reconcile_once().await.expect("reconcile")
        };
        assert_eq!(report.events, 500);
        let calls = stack.sim.calls();
        println!(
            "reconcile of 500 events x 20 entities, {entities_per_page} entities per page: {} API calls {calls:?}",
            stack.sim.total_calls()
        );
        assert_eq!(stack.sim.total_calls(), expected);
    }
    assert_eq!(stack.raw_events().await, 500, "the second reconcile stored nothing new");
}
