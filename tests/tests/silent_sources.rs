//! Silence is an alert, end to end on a real nats-server: the intakes record each scope's
//! contact (ingest-snyk against the Snyk simulator, ingest-health's API destination), and the
//! notifier tells the SRE channel of the Slack simulator once when a source has been failing,
//! out of touch or quiet past its threshold, and once when it works again — across a notifier
//! restart and a Slack answer that fails after posting.

use std::ffi::OsString;
use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e_tests::{TestBroker, eventually};
use health_policy::samples;
use service_kit::Clock;
use slack_sim::{DEFAULT_BOT_TOKEN, PostedMessage, SlackSim};
use snyk_sim::{Fault, SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

const SNYK_TOKEN: &str = "snyk-silence-token";
const HEALTH_SECRET: &str = "api-destination-secret";
const SRE: &str = "C0SRE";
const WAIT: Duration = Duration::from_secs(30);
/// Long enough for several checks at the test's 100 ms interval.
const SEVERAL_CHECKS: Duration = Duration::from_millis(800);

fn flags<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Vec<OsString> {
    args.into_iter().map(|a| OsString::from(a.as_ref())).collect()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

struct World {
    broker: TestBroker,
    slack: SlackSim,
    clock: Clock,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    async fn start() -> World {
        let broker = TestBroker::start().await;
        let slack = SlackSim::start().await.unwrap();
        slack.add_channel(SRE, "sre", true);
        let clock = Clock::manual(at("2026-12-01T09:00:00Z"));
        World { broker, slack, clock, shutdown: CancellationToken::new() }
    }

    /// A notifier with only the source check on (no reminders, no team channels).
    async fn notifier(&self) -> notifier::Notifier {
        let slack_url = self.slack.api_url();
        let mut config: notifier::Config = service_kit::config::try_parse_from(
            flags([
                "notifier",
                "--nats-url",
                self.broker.url(),
                "--listen",
                "127.0.0.1:0",
                "--slack-api-url",
                &slack_url,
                "--slack-bot-token",
                DEFAULT_BOT_TOKEN,
                "--reminders",
                "false",
                "--sre-slack-channel",
                SRE,
                "--source-check-interval",
                "100ms",
                "--channel-interval",
                "20ms",
                "--slack-timeout",
                "2s",
                "--claim-lease",
                "3s",
                "--history-skew",
                "2s",
            ]),
            |_| None,
        )
        .expect("valid notifier flags");
        config.clock = self.clock.clone();
        notifier::start(config, self.shutdown.child_token()).await.expect("the notifier starts")
    }

    fn sre_messages(&self) -> Vec<PostedMessage> {
        self.slack.messages(SRE)
    }

    async fn wait_for_sre_messages(&self, count: usize) -> Vec<PostedMessage> {
        eventually(&format!("{count} message(s) in the SRE channel"), WAIT, || async {
            self.sre_messages().len() >= count
        })
        .await;
        tokio::time::sleep(SEVERAL_CHECKS).await;
        let messages = self.sre_messages();
        assert_eq!(messages.len(), count, "{:#?}", texts(&messages));
        messages
    }

    fn advance(&self, hours: i64) {
        self.clock.advance(chrono::Duration::hours(hours));
    }
}

fn texts(messages: &[PostedMessage]) -> Vec<String> {
    messages.iter().map(PostedMessage::all_text).collect()
}

fn refused() -> Fault {
    Fault::Body {
        status: 401,
        body: r#"{"jsonapi":{"version":"1.0"},"errors":[{"status":"401","detail":"Unauthorized: token expired"}]}"#
            .into(),
    }
}

#[tokio::test]
async fn a_failing_snyk_org_is_told_once_when_it_fails_once_when_it_works_and_once_when_its_intake_stops() {
    let world = World::start().await;
    let snyk = SnykSim::start(SNYK_TOKEN).await.unwrap();
    let org = format!("{SEEDED_ORG_ID}@{}", snyk.base_url());
    let ingest_stop = world.shutdown.child_token();
    let mut ingest: ingest_snyk::Config = service_kit::config::try_parse_from(
        flags([
            "ingest-snyk",
            "--nats-url",
            world.broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--snyk-org",
            &org,
            "--snyk-token",
            SNYK_TOKEN,
            "--snyk-reconcile-interval",
            "0s",
            "--snyk-poll-interval",
            "0s",
            "--snyk-backoff",
            "20ms",
        ]),
        |_| None,
    )
    .expect("valid ingest-snyk flags");
    ingest.clock = world.clock.clone();
    let ingest = ingest_snyk::start(ingest, ingest_stop.clone()).await.expect("ingest-snyk starts");
    let notifier = world.notifier().await;

    assert!(ingest.sync_now().await.iter().all(Result::is_ok));
    tokio::time::sleep(SEVERAL_CHECKS).await;
    assert!(world.sre_messages().is_empty(), "a working source is not announced");

    // The token expires: an hour of failures is within the threshold, three hours are not.
    snyk.inject(Some("/projects"), refused());
    assert!(ingest.sync_now().await.iter().all(Result::is_err));
    world.advance(1);
    snyk.inject(Some("/projects"), refused());
    assert!(ingest.sync_now().await.iter().all(Result::is_err));
    tokio::time::sleep(SEVERAL_CHECKS).await;
    assert!(world.sre_messages().is_empty(), "an hour of failures is within --source-failing-after");
    world.advance(2);
    snyk.inject(Some("/projects"), refused());
    assert!(ingest.sync_now().await.iter().all(Result::is_err));
    let messages = world.wait_for_sre_messages(1).await;
    let alert = messages[0].all_text();
    assert!(alert.contains("failing for 3 hours"), "{alert}");
    assert!(alert.contains(&format!("org {SEEDED_ORG_ID}")) && alert.contains("401"), "{alert}");

    // A notifier restarted mid-episode does not repeat the alert.
    notifier.kill();
    let notifier = world.notifier().await;
    tokio::time::sleep(SEVERAL_CHECKS).await;
    assert_eq!(world.sre_messages().len(), 1, "{:#?}", texts(&world.sre_messages()));

    // The token works again; Slack answers the recovery with an error after posting it: one
    // message, settled from the channel history.
    world.slack.fail_after_post(&[slack_sim::Fault::ApiError("internal_error")]);
    assert!(ingest.sync_now().await.iter().all(Result::is_ok));
    let messages = world.wait_for_sre_messages(2).await;
    assert!(messages[1].all_text().contains("working again"), "{}", messages[1].all_text());

    // The intake stops: nothing fails, nothing reports. After the threshold, that is said too.
    ingest_stop.cancel();
    ingest.wait().await;
    world.advance(3);
    let messages = world.wait_for_sre_messages(3).await;
    let silent = messages[2].all_text();
    assert!(silent.contains("no contact for 3 hours") && silent.contains("stopped"), "{silent}");
    let keys: Vec<&str> = messages.iter().filter_map(|m| m.metadata_field("idempotency_key")).collect();
    assert_eq!(keys.len(), 3, "every message carries its marker key");
    drop(notifier);
}

#[tokio::test]
async fn an_api_destination_quiet_for_a_week_is_told_once_and_its_next_event_closes_it() {
    let world = World::start().await;
    let mut ingest: ingest_health::Config = service_kit::config::try_parse_from(
        flags([
            "ingest-health",
            "--nats-url",
            world.broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--health-webhook-secret",
            HEALTH_SECRET,
        ]),
        |_| None,
    )
    .expect("valid ingest-health flags");
    ingest.clock = world.clock.clone();
    let running =
        ingest_health::start(ingest, world.shutdown.child_token()).await.expect("ingest-health starts");
    let webhook = format!("http://{}{}", running.http_address, ingest_health::webhook::PATH);
    let _notifier = world.notifier().await;

    let post = |updated: DateTime<Utc>| {
        let event = samples::event(
            &samples::event_arn(
                "eu-west-1",
                "EC2",
                "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
                &updated.timestamp().to_string(),
            ),
            "EC2",
            "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
            "scheduledChange",
            "111111111111",
            "eu-west-1",
            updated,
            "One or more of your Amazon EC2 instances is scheduled for a reboot for maintenance.",
        );
        let webhook = webhook.clone();
        async move {
            let response = reqwest::Client::new()
                .post(&webhook)
                .header("x-itk-health-secret", HEALTH_SECRET)
                .header("content-type", "application/json")
                .body(event.to_string())
                .send()
                .await
                .expect("post to the webhook");
            assert_eq!(response.status(), 202);
        }
    };
    post(world.clock.now()).await;
    world.advance(6 * 24);
    tokio::time::sleep(SEVERAL_CHECKS).await;
    assert!(world.sre_messages().is_empty(), "six quiet days are within --source-quiet-after");

    world.advance(2 * 24);
    let messages = world.wait_for_sre_messages(1).await;
    let alert = messages[0].all_text();
    assert!(alert.contains("aws-health") && alert.contains("webhook"), "{alert}");
    assert!(alert.contains("no event for 8 days") && alert.contains("EventBridge rule"), "{alert}");

    post(world.clock.now()).await;
    let messages = world.wait_for_sre_messages(2).await;
    assert!(messages[1].all_text().contains("working again"), "{}", messages[1].all_text());
}
