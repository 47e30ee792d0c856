//! Bad input at every entry point, end to end: the five services in-process on a real
//! nats-server, with the JIRA, Slack, Snyk and AWS Health simulators and moto's SQS.
//!
//! At each entry point (raw events on `events.*`, desired tickets on `desired.*`, ticket changes
//! on `tickets.*`, an SQS message body, the API destination webhook, the Snyk webhook) oversized,
//! truncated and wrongly typed payloads are refused before anything is published (401, 413,
//! NATS's payload limit) or dead-lettered with a reason by the stage that read them, and the
//! service goes on: a good input sent after them still becomes a JIRA ticket and a Slack message.

use std::time::Duration;

use aws_health_sim::AwsHealthSim;
use aws_health_sim::moto::MotoServer;
use bus::Outgoing;
use bus::dead_letter::DeadLetter;
use bus::topology;
use chrono::{Duration as Span, Utc};
use contracts::{ChangeKind, DesiredTicket, GroupKey, Lane, PayloadKind, RawEvent, Source, TicketChange};
use e2e_tests::{TestBroker, eventually};
use health_policy::samples;
use jira_sim::JiraSim;
use serde_json::{Value, json};
use slack_sim::SlackSim;
use snyk_sim::webhook::{Delivery, Signing};
use snyk_sim::{SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

const HEALTH_SECRET: &str = "bad-input-health-secret";
const SNYK_SECRET: &str = "bad-input-snyk-secret";
const SNYK_TOKEN: &str = "bad-input-snyk-token";
const PLATFORM: &str = "111111111111";
const CHANNEL: &str = "C0PLATFORM";
const WAIT: Duration = Duration::from_secs(60);

const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
jira_project = "PLAT"
jira_team_field = "Platform"
slack_channel = "C0PLATFORM"
aws_accounts = ["111111111111"]
"#;

const REBOOT: &str = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";

fn flags(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

/// Everything running: broker, simulators, moto, the five services.
struct World {
    broker: TestBroker,
    jira: JiraSim,
    slack: SlackSim,
    snyk: SnykSim,
    _health: AwsHealthSim,
    _moto: MotoServer,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    health_webhook: String,
    snyk_webhook: String,
    _ingest_snyk: ingest_snyk::Running,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    async fn start() -> World {
        let broker = TestBroker::start().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let catalog_path = dir.path().join("catalog.toml");
        std::fs::write(&catalog_path, CATALOG).expect("write the catalog");
        let catalog = catalog_path.to_str().expect("a UTF-8 path");
        let jira = JiraSim::start(jira_sim::SimConfig::default()).await.expect("the JIRA simulator starts");
        let slack = SlackSim::start().await.expect("the Slack simulator starts");
        slack.add_channel(CHANNEL, "platform", true);
        let snyk = SnykSim::start(SNYK_TOKEN).await.expect("the Snyk simulator starts");
        let health = AwsHealthSim::start_with(Vec::new()).await.expect("the AWS Health simulator starts");
        let moto = MotoServer::start().unwrap_or_else(|e| panic!("moto's server is needed for SQS: {e}"));
        let sdk = ingest_health::static_sdk_config("us-east-1", "AKIDEXAMPLE", "test-secret");
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(moto.url()).build(),
        );
        let queue = sqs
            .create_queue()
            .queue_name("health-events")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "2")
            .send()
            .await
            .expect("create the queue");
        let queue_url = queue.queue_url().expect("a queue URL").to_owned();
        let shutdown = CancellationToken::new();
        let nats = broker.url().to_owned();
        let common = ["--nats-url", nats.as_str(), "--listen", "127.0.0.1:0"];

        let triage: triage::Config = service_kit::config::try_parse_from(
            flags(&[&["triage"][..], &common, &["--catalog", catalog]].concat()),
            |_| None,
        )
        .expect("valid triage flags");
        let stop = shutdown.clone();
        tokio::spawn(async move { triage::run(triage, stop).await.expect("triage runs") });

        let jira_url = jira.url();
        let jira_args = [
            "--jira-url",
            jira_url.as_str(),
            "--jira-email",
            jira_sim::BOT_EMAIL,
            "--jira-api-token",
            jira_sim::BOT_TOKEN,
            "--jira-requests-per-second",
            "0",
        ];
        let writer: jira_writer::Config = service_kit::config::try_parse_from(
            flags(
                &[
                    &["jira-writer"][..],
                    &common,
                    &["--catalog", catalog],
                    &jira_args,
                    &["--jira-project", "PLAT", "--jira-team-field", jira_sim::TEAM_FIELD],
                    &["--consistency-window", "2s", "--claim-recheck", "200ms", "--jira-backoff", "20ms"],
                ]
                .concat(),
            ),
            |_| None,
        )
        .expect("valid jira-writer flags");
        let stop = shutdown.clone();
        tokio::spawn(async move { jira_writer::run(writer, stop).await.expect("jira-writer runs") });

        let slack_url = slack.api_url();
        let notifier: notifier::Config = service_kit::config::try_parse_from(
            flags(
                &[
                    &["notifier"][..],
                    &common,
                    &["--catalog", catalog],
                    &jira_args,
                    &[
                        "--slack-api-url",
                        slack_url.as_str(),
                        "--slack-bot-token",
                        slack_sim::DEFAULT_BOT_TOKEN,
                    ],
                    &["--channel-interval", "20ms", "--slack-timeout", "2s"],
                ]
                .concat(),
            ),
            |_| None,
        )
        .expect("valid notifier flags");
        let stop = shutdown.clone();
        tokio::spawn(async move { notifier::run(notifier, stop).await.expect("the notifier runs") });

        let health_url = health.url();
        let mut ingest_health: ingest_health::Config = service_kit::config::try_parse_from(
            flags(
                &[
                    &["ingest-health"][..],
                    &common,
                    &["--health-sqs-queue-url", queue_url.as_str(), "--health-sqs-endpoint-url", moto.url()],
                    &["--health-sqs-wait-seconds", "1", "--health-webhook-secret", HEALTH_SECRET],
                    &[
                        "--health-webhook-max-bytes",
                        "65536",
                        "--health-api-endpoint-url",
                        health_url.as_str(),
                    ],
                ]
                .concat(),
            ),
            |_| None,
        )
        .expect("valid ingest-health flags");
        ingest_health.aws = Some(sdk);
        let running =
            ingest_health::start(ingest_health, shutdown.clone()).await.expect("ingest-health starts");
        let health_webhook = format!("http://{}{}", running.http_address, ingest_health::webhook::PATH);
        tokio::spawn(running.wait());

        let org = format!("{SEEDED_ORG_ID}@{}", snyk.base_url());
        let ingest_snyk: ingest_snyk::Config = service_kit::config::try_parse_from(
            flags(
                &[
                    &["ingest-snyk"][..],
                    &common,
                    &["--snyk-org", org.as_str(), "--snyk-token", SNYK_TOKEN],
                    &["--snyk-webhook-secret", SNYK_SECRET, "--snyk-webhook-max-bytes", "65536"],
                    &[
                        "--snyk-reconcile-interval",
                        "0s",
                        "--snyk-poll-interval",
                        "0s",
                        "--snyk-backoff",
                        "20ms",
                    ],
                ]
                .concat(),
            ),
            |_| None,
        )
        .expect("valid ingest-snyk flags");
        let running = ingest_snyk::start(ingest_snyk, shutdown.clone()).await.expect("ingest-snyk starts");
        let snyk_webhook = format!("http://{}/webhooks/snyk", running.http_address);

        World {
            broker,
            jira,
            slack,
            snyk,
            _health: health,
            _moto: moto,
            sqs,
            queue_url,
            health_webhook,
            snyk_webhook,
            _ingest_snyk: running,
            shutdown,
            _dir: dir,
        }
    }

    async fn publish(
        &self,
        subject: &str,
        payload: impl Into<bytes::Bytes>,
        id: &str,
    ) -> Result<(), bus::BusError> {
        let message = Outgoing {
            subject: subject.to_owned(),
            message_id: Some(id.to_owned()),
            payload: payload.into(),
            headers: Default::default(),
        };
        self.broker.publisher.publish(message).await.map(|_| ())
    }

    async fn send_sqs(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send to SQS");
    }

    async fn post_health(&self, body: impl Into<reqwest::Body>, secret: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(&self.health_webhook)
            .header("x-itk-health-secret", secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post to the API destination webhook");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    async fn raw_events(&self) -> u64 {
        self.broker.stream_messages(topology::RAW_EVENTS).await
    }

    /// Waits for `count` dead letters of `stage`, and returns them.
    async fn dead_letters_of(&self, stage: &str, count: usize) -> Vec<DeadLetter> {
        let broker = &self.broker;
        eventually(&format!("{count} dead letters of {stage}"), WAIT, || async move {
            broker.dead_letters().await.iter().filter(|l| l.stage == stage).count() >= count
        })
        .await;
        let letters: Vec<DeadLetter> =
            self.broker.dead_letters().await.into_iter().filter(|l| l.stage == stage).collect();
        assert_eq!(letters.len(), count, "exactly {count} dead letters of {stage}: {:?}", reasons(&letters));
        for letter in &letters {
            assert!(!letter.reason.trim().is_empty(), "a dead letter says why: {letter:?}");
        }
        letters
    }

    /// A good scheduled reboot, sent through the API destination, becomes its JIRA issue and
    /// its Slack message: the pipeline still runs.
    async fn good_event_flows(&self, id: &str) {
        let (status, answer) = self.post_health(reboot(id).to_string(), HEALTH_SECRET).await;
        assert_eq!(status, 202, "{answer}");
        self.wait_for_ticket_and_message(id).await;
    }

    async fn wait_for_ticket_and_message(&self, id: &str) {
        let instance = format!("i-0{id}");
        let mentions = |issue: &jira_sim::SimIssue| {
            issue.description.as_ref().is_some_and(|d| d.to_string().contains(&instance))
        };
        let jira = &self.jira;
        let mentions = &mentions;
        eventually(&format!("the JIRA issue of {instance}"), WAIT, || async move {
            jira.issues().iter().any(mentions)
        })
        .await;
        let key = self.jira.issues().into_iter().find(|i| mentions(i)).expect("the issue").key;
        let slack = &self.slack;
        let key = &key;
        eventually(&format!("the Slack message of {key}"), WAIT, || async move {
            slack.messages(CHANNEL).iter().any(|m| m.text.contains(key.as_str()))
        })
        .await;
    }
}

fn reasons(letters: &[DeadLetter]) -> Vec<&str> {
    letters.iter().map(|l| l.reason.as_str()).collect()
}

fn reason_with<'a>(letters: &'a [DeadLetter], words: &[&str]) -> &'a DeadLetter {
    letters
        .iter()
        .find(|l| words.iter().all(|w| l.reason.contains(w)))
        .unwrap_or_else(|| panic!("a dead letter whose reason says {words:?}: {:?}", reasons(letters)))
}

/// An EventBridge scheduled reboot of one platform instance, a week from now.
fn reboot(id: &str) -> Value {
    let now = Utc::now();
    let arn = samples::event_arn("eu-west-1", "EC2", REBOOT, id);
    let mut event = samples::event(
        &arn,
        "EC2",
        REBOOT,
        "scheduledChange",
        PLATFORM,
        "eu-west-1",
        now - Span::minutes(5),
        "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
    );
    let start = now + Span::days(7);
    samples::window(&mut event, start, Some(start + Span::hours(2)));
    samples::entities(&mut event, &[(&format!("i-0{id}"), "PENDING")]);
    event
}

fn good_raw_event(id: &str) -> RawEvent {
    health_policy::raw_event(reboot(id), "bad-input-test", Utc::now()).expect("a valid event")
}

/// A big string that is not what any field wants: 600 kB, under NATS's 1 MB message limit.
fn padding() -> String {
    "é".repeat(300_000)
}

#[tokio::test]
async fn bad_raw_events_dead_letter_in_triage_with_reasons_and_triage_goes_on() {
    let world = World::start().await;
    let subject = "events.aws-health.aws_health_event.111111111111_eu-west-1";
    let good = serde_json::to_value(good_raw_event("goodraw0")).unwrap();
    let good_bytes = serde_json::to_vec(&good).unwrap();
    let with = |field: &str, value: Value| {
        let mut event = good.clone();
        event[field] = value;
        serde_json::to_vec(&event).unwrap()
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not-json", b"this is not JSON".to_vec()),
        ("truncated", good_bytes[..good_bytes.len() / 2].to_vec()),
        ("wrong-type", with("received_at", json!(12345))),
        ("newer-schema", with("schema", json!(9))),
        ("no-event-arn", with("payload", json!({"source": "aws.health", "account": PLATFORM, "detail": {}}))),
        ("huge", with("payload", json!({"source": "aws.health", "detail": {"eventDescription": padding()}}))),
    ];
    for (id, payload) in &bad {
        world.publish(subject, payload.clone(), id).await.expect("NATS stores it");
    }
    let snapshot = serde_json::to_vec(&RawEvent::new(
        Source::Snyk,
        PayloadKind::SnykProjectSnapshot,
        "snyk-rest:bad",
        "wrong-shape",
        json!({"org_id": 5, "status": "exploded"}),
        Utc::now(),
    ))
    .unwrap();
    world.publish("events.snyk.snyk_project_snapshot.bad", snapshot, "wrong-shape").await.unwrap();

    // Over NATS's payload limit: refused before anything is stored.
    let refused = world.publish(subject, vec![b' '; 2 * 1024 * 1024], "oversized").await;
    assert!(refused.is_err(), "a 2 MB message is refused by the server");

    let letters = world.dead_letters_of("triage", 7).await;
    assert!(letters.iter().all(|l| l.class == "permanent"), "{letters:?}");
    let not_json = reason_with(&letters, &["malformed raw event", "expected ident at line 1 column 2"]);
    assert_eq!(not_json.payload.as_ref(), b"this is not JSON", "kept as received");
    assert_eq!(not_json.original_subject, subject);
    reason_with(&letters, &["malformed raw event", "EOF while parsing"]);
    reason_with(&letters, &["malformed raw event", "invalid type: integer `12345`"]);
    reason_with(&letters, &["raw event has schema version 9, this build reads up to 1"]);
    reason_with(&letters, &["malformed AWS Health event", "eventArn is missing"]);
    reason_with(&letters, &["malformed snyk project snapshot"]);
    let huge =
        letters.iter().find(|l| l.payload.len() > 500_000).expect("the huge event is dead-lettered whole");
    assert!(huge.reason.contains("eventArn is missing"), "{}", huge.reason);
    assert!(world.broker.desired_tickets().await.is_empty(), "nothing became a ticket");

    world.publish(subject, good_bytes, "good").await.unwrap();
    world.wait_for_ticket_and_message("goodraw0").await;
    world.good_event_flows("goodraw1").await;
}

fn desired(id: &str) -> DesiredTicket {
    DesiredTicket {
        schema: contracts::SCHEMA_VERSION,
        group_key: GroupKey::new(
            Source::AwsHealth,
            ["arn:aws:health:eu-west-1::event/EC2/X/X_bad", PLATFORM, id],
        ),
        source: Source::AwsHealth,
        team: "platform".into(),
        lane: Lane::Maintenance,
        summary: format!("Bad input {id}"),
        body: contracts::TicketBody::default(),
        due: None,
        state: contracts::TicketState::Open,
        labels: vec![],
        links: vec![],
        content_hash: String::new(),
        upstream_version: 1,
    }
    .seal()
}

#[tokio::test]
async fn bad_desired_tickets_dead_letter_in_jira_writer_and_nothing_is_filed() {
    let world = World::start().await;
    let good = serde_json::to_value(desired("shape")).unwrap();
    let with = |field: &str, value: Value| {
        let mut ticket = good.clone();
        ticket[field] = value;
        serde_json::to_vec(&ticket).unwrap()
    };
    let without = |field: &str| {
        let mut ticket = good.clone();
        ticket.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&ticket).unwrap()
    };
    let good_bytes = serde_json::to_vec(&good).unwrap();
    let mut huge = good.clone();
    huge["summary"] = json!(padding());
    huge.as_object_mut().unwrap().remove("state");
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not-json", b"{\"group_key\": ".to_vec()),
        ("truncated", good_bytes[..good_bytes.len() - 10].to_vec()),
        ("wrong-lane", with("lane", json!("P9"))),
        ("newer-schema", with("schema", json!(9))),
        ("negative-version", with("upstream_version", json!(-1))),
        ("no-team", without("team")),
        ("huge", serde_json::to_vec(&huge).unwrap()),
    ];
    for (id, payload) in &bad {
        world.publish(&format!("desired.itk-bad-{id}"), payload.clone(), id).await.expect("NATS stores it");
    }
    let letters = world.dead_letters_of("jira-writer", bad.len()).await;
    reason_with(&letters, &["malformed desired ticket", "EOF while parsing"]);
    reason_with(&letters, &["malformed desired ticket", "unknown variant `P9`"]);
    reason_with(&letters, &["desired ticket has schema version 9"]);
    reason_with(&letters, &["malformed desired ticket", "invalid value: integer `-1`, expected u64"]);
    reason_with(&letters, &["malformed desired ticket", "missing field `team`"]);
    reason_with(&letters, &["malformed desired ticket", "missing field `state`"]);
    assert!(world.jira.issues().is_empty(), "nothing filed in JIRA");
    world.good_event_flows("gooddesired").await;
}

fn change(kind: ChangeKind) -> TicketChange {
    TicketChange {
        schema: contracts::SCHEMA_VERSION,
        kind,
        group_key: GroupKey::new(Source::AwsHealth, ["bad-input"]),
        source: Source::AwsHealth,
        issue_id: "10001".into(),
        issue_key: "PLAT-1".into(),
        issue_url: "https://example.atlassian.net/browse/PLAT-1".into(),
        team: "platform".into(),
        previous_team: None,
        lane: Lane::Maintenance,
        due_date: None,
        summary: "Bad input".into(),
        progress: None,
        reason: "A test.".into(),
        content_hash: "hash".into(),
        upstream_version: 1,
        at: Utc::now(),
    }
}

#[tokio::test]
async fn bad_ticket_changes_dead_letter_in_the_notifier_and_nothing_is_sent() {
    let world = World::start().await;
    let good = serde_json::to_value(change(ChangeKind::Created)).unwrap();
    let good_bytes = serde_json::to_vec(&good).unwrap();
    let with = |field: &str, value: Value| {
        let mut change = good.clone();
        change[field] = value;
        serde_json::to_vec(&change).unwrap()
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not-json", vec![0xff, 0xfe, 0x00, 0x01]),
        ("truncated", good_bytes[..good_bytes.len() / 3].to_vec()),
        ("wrong-kind", with("kind", json!("exploded"))),
        ("newer-schema", with("schema", json!(9))),
        ("wrong-time", with("at", json!("yesterday"))),
        ("huge", with("summary", json!([padding()]))),
    ];
    for (id, payload) in &bad {
        world.publish(&format!("tickets.created.itk-bad-{id}"), payload.clone(), id).await.expect("stored");
    }
    let letters = world.dead_letters_of("notifier", bad.len()).await;
    reason_with(&letters, &["malformed ticket change", "expected value"]);
    reason_with(&letters, &["malformed ticket change", "EOF while parsing"]);
    reason_with(&letters, &["malformed ticket change", "unknown variant `exploded`"]);
    reason_with(&letters, &["ticket change has schema version 9"]);
    reason_with(&letters, &["malformed ticket change", "input contains invalid characters"]);
    reason_with(&letters, &["malformed ticket change", "invalid type: sequence, expected a string"]);
    assert!(world.slack.messages(CHANNEL).is_empty(), "nothing sent to Slack");
    world.good_event_flows("goodchange").await;
}

#[tokio::test]
async fn bad_sqs_bodies_dead_letter_in_ingest_health_and_are_deleted_from_the_queue() {
    let world = World::start().await;
    let good = reboot("goodsqs");
    let good_text = good.to_string();
    let with_detail = |field: &str, value: Value| {
        let mut event = good.clone();
        event["detail"][field] = value;
        event.to_string()
    };
    let mut no_arn = good.clone();
    no_arn["detail"].as_object_mut().unwrap().remove("eventArn");
    no_arn["detail"]["eventDescription"] =
        json!([{"language": "en_US", "latestDescription": "x".repeat(100_000)}]);
    let bad = [
        good_text[..good_text.len() / 2].to_owned(),
        with_detail("affectedEntities", json!(42)),
        json!({"source": "aws.health", "detail": "a string"}).to_string(),
        "[1, 2, 3]".to_owned(),
        no_arn.to_string(),
    ];
    for body in &bad {
        world.send_sqs(body).await;
    }
    let letters = world.dead_letters_of("ingest-health", bad.len()).await;
    reason_with(&letters, &["not JSON"]);
    reason_with(&letters, &["detail.affectedEntities is not a list"]);
    reason_with(&letters, &["it has no \"detail\" object"]);
    reason_with(&letters, &["the payload is not a JSON object"]);
    reason_with(&letters, &["detail.eventArn is missing"]);
    assert!(
        letters.iter().any(|l| l.payload.as_ref() == bad[0].as_bytes()),
        "the truncated body is kept as received"
    );
    assert_eq!(world.raw_events().await, 0, "nothing published");
    world.send_sqs(&good_text).await;
    world.wait_for_ticket_and_message("goodsqs").await;
    world.good_event_flows("goodsqs2").await;
}

#[tokio::test]
async fn the_api_destination_refuses_bad_secrets_and_oversized_bodies_and_dead_letters_malformed_ones() {
    let world = World::start().await;
    let good = reboot("goodhook").to_string();
    assert_eq!(world.post_health(good.clone(), "wrong-secret").await.0, 401);
    assert_eq!(world.post_health(good.clone(), "").await.0, 401);
    let oversized = json!({"source": "aws.health", "detail": {"eventDescription": "x".repeat(70_000)}});
    assert_eq!(world.post_health(oversized.to_string(), HEALTH_SECRET).await.0, 413);
    assert_eq!(world.raw_events().await, 0, "refused before anything is published");
    assert!(world.broker.dead_letters().await.is_empty(), "refused, not dead-lettered");

    let malformed = [
        good[..good.len() - 1].to_owned(),
        json!({"source": "aws.health", "account": PLATFORM, "detail": {"eventArn": ["a", "list"]}})
            .to_string(),
        json!({"source": "aws.ec2", "detail": {}}).to_string(),
    ];
    for body in &malformed {
        let (status, answer) = world.post_health(body.clone(), HEALTH_SECRET).await;
        assert_eq!(status, 400, "{answer}");
        let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
        assert_eq!(answer["dead_lettered"], true);
        assert!(!answer["error"].as_str().unwrap_or_default().is_empty(), "the answer says why: {answer}");
    }
    let letters = world.dead_letters_of("ingest-health", malformed.len()).await;
    reason_with(&letters, &["not JSON"]);
    reason_with(&letters, &["detail.eventArn is missing"]);
    reason_with(&letters, &["source is \"aws.ec2\""]);
    assert_eq!(world.raw_events().await, 0);
    world.good_event_flows("goodhook").await;
}

#[tokio::test]
async fn the_snyk_webhook_refuses_bad_signatures_and_oversized_bodies_and_dead_letters_malformed_ones() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let project = world.snyk.project_id(SEEDED_ORG_ID, "ledger-worker:1.4.0").expect("a seeded project");
    let body = world.snyk.webhook_body(SEEDED_ORG_ID, &project).expect("its webhook body");
    for (signing, transport) in [
        (Signing::Missing, "missing"),
        (Signing::Header("sha256=deadbeef".into()), "wrong"),
        (Signing::Secret("someone-else".into()), "other-secret"),
    ] {
        let delivery = Delivery::project_snapshot(&body, SNYK_SECRET, transport).with_signing(signing);
        assert_eq!(delivery.send(&http, &world.snyk_webhook).await.unwrap().0, 401, "{transport}");
    }
    let mut oversized = Delivery::project_snapshot(&body, SNYK_SECRET, "oversized");
    oversized.body = serde_json::to_vec(&json!({"padding": "x".repeat(70_000)})).unwrap();
    assert_eq!(oversized.send(&http, &world.snyk_webhook).await.unwrap().0, 413);
    assert!(world.broker.dead_letters().await.is_empty(), "refused, not dead-lettered");

    let text = body.to_string();
    let mut no_project = body.clone();
    no_project.as_object_mut().unwrap().remove("project");
    let mut wrong_issues = body.clone();
    wrong_issues["newIssues"] = json!("none");
    let malformed: [(&str, Vec<u8>); 3] = [
        ("truncated", text.as_bytes()[..text.len() / 2].to_vec()),
        ("no-project", serde_json::to_vec(&no_project).unwrap()),
        ("wrong-issues", serde_json::to_vec(&wrong_issues).unwrap()),
    ];
    for (transport, bytes) in &malformed {
        let mut delivery = Delivery::project_snapshot(&body, SNYK_SECRET, transport);
        delivery.body = bytes.clone();
        let (status, answer) = delivery.send(&http, &world.snyk_webhook).await.unwrap();
        assert_eq!(status, 400, "{transport}: {answer}");
        assert!(answer.contains("dead_lettered"), "{transport}: {answer}");
    }
    let letters = world.dead_letters_of("ingest-snyk", malformed.len()).await;
    assert!(letters.iter().any(|l| l.payload.as_ref() == malformed[0].1.as_slice()), "kept as received");
    assert_eq!(world.raw_events().await, 0, "nothing published");

    let delivery = Delivery::project_snapshot(&body, SNYK_SECRET, "good");
    let (status, answer) = delivery.send(&http, &world.snyk_webhook).await.unwrap();
    assert_eq!(status, 202, "{answer}");
    let broker = &world.broker;
    eventually("the good webhook's snapshot published", WAIT, || async move {
        broker.stream_messages(topology::RAW_EVENTS).await == 1
    })
    .await;
    world.good_event_flows("goodsnyk").await;
}
