//! The notifier end to end: a real nats-server, the JIRA simulator (tickets filed as the writer
//! files them: label `infra-tickets`, the `itk-…` label, a due date) and the Slack simulator.
//! Ticket changes are published to TICKET_CHANGES as jira-writer publishes them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use contracts::{ChangeKind, GroupKey, Lane, Source, TicketChange};
use e2e_tests::{TestBroker, eventually};
use jira_sim::JiraSim;
use jira_writer::{JiraClient, JiraClientConfig};
use notifier::markers::Marker;
use serde_json::json;
use service_kit::{Clock, Secret};
use slack_sim::{DEFAULT_BOT_TOKEN, PostedMessage, SlackSim};
use tokio_util::sync::CancellationToken;

const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
jira_project = "PLAT"
slack_channel = "C0PLATFORM"

[teams.payments]
jira_project = "PAY"
slack_channel = "C0PAYMENTS"

[teams.data]
jira_project = "DATA"
slack_webhook_env = "SLACK_WEBHOOK_DATA"

[teams.ghost]
slack_channel = "C0GHOST"

[teams.west]
slack_channel = "C0WEST"
time_zone = "America/Los_Angeles"

[teams.east]
slack_channel = "C0EAST"
time_zone = "Asia/Tokyo"

[teams.secret]
slack_channel = "G0SECRET"
"#;

const WAIT: Duration = Duration::from_secs(30);

struct World {
    broker: TestBroker,
    slack: SlackSim,
    jira: JiraSim,
    /// The bot's JIRA client, as jira-writer uses it.
    writer: JiraClient,
    /// A person editing tickets in JIRA.
    person: JiraClient,
    clock: Clock,
    webhook_url: String,
    catalog: tempfile::NamedTempFile,
}

impl World {
    async fn start() -> World {
        let broker = TestBroker::start().await;
        let slack = SlackSim::start().await.unwrap();
        slack.add_channel("C0PLATFORM", "platform", true);
        slack.add_channel("C0PAYMENTS", "payments", true);
        slack.add_channel("C0DATA", "data", false);
        slack.add_channel("C0WEST", "west", true);
        slack.add_channel("C0EAST", "east", true);
        slack.add_private_channel("G0SECRET", "secret", true);
        let webhook_url = slack.add_webhook("C0DATA");
        let jira = JiraSim::start(jira_sim::SimConfig::default()).await.unwrap();
        let client = |email: &str, token: &str| {
            let mut config = JiraClientConfig::new(jira.url(), email, Secret::new(token));
            config.requests_per_second = 0.0;
            JiraClient::new(config).unwrap()
        };
        let writer = client(jira_sim::BOT_EMAIL, jira_sim::BOT_TOKEN);
        let person = client(jira_sim::HUMAN_EMAIL, jira_sim::HUMAN_TOKEN);
        let mut catalog = tempfile::NamedTempFile::new().unwrap();
        catalog.write_all(CATALOG.as_bytes()).unwrap();
        let clock = Clock::manual(at("2026-12-01T09:00:00Z"));
        World { broker, slack, jira, writer, person, clock, webhook_url, catalog }
    }

    fn config(&self, extra: &[&str]) -> notifier::Config {
        let mut args: Vec<String> = [
            "notifier",
            "--nats-url",
            self.broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            self.catalog.path().to_str().unwrap(),
            "--slack-api-url",
            &self.slack.api_url(),
            "--slack-bot-token",
            DEFAULT_BOT_TOKEN,
            "--jira-url",
            &self.jira.url(),
            "--jira-email",
            jira_sim::BOT_EMAIL,
            "--jira-api-token",
            jira_sim::BOT_TOKEN,
            "--jira-requests-per-second",
            "0",
            "--reminder-scan-interval",
            "100ms",
            "--channel-interval",
            "20ms",
            "--slack-timeout",
            "2s",
            "--claim-lease",
            "3s",
            "--history-skew",
            "2s",
            "--auth-pause",
            "1s",
            "--channel-retry",
            "200ms",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut config: notifier::Config =
            service_kit::config::try_parse_from(args.into_iter().map(Into::into), |_| None).unwrap();
        config.clock = self.clock.clone();
        config.environment =
            notifier::Environment::from_pairs([("SLACK_WEBHOOK_DATA", self.webhook_url.clone())]);
        config
    }

    async fn start_notifier(&self, config: notifier::Config) -> (notifier::Notifier, CancellationToken) {
        let shutdown = CancellationToken::new();
        let running = notifier::start(config, shutdown.clone()).await.expect("the notifier starts");
        (running, shutdown)
    }

    /// Files an issue the way jira-writer does: labels `infra-tickets` and the group token,
    /// the idempotency property, the due date.
    async fn file_issue(&self, project: &str, summary: &str, due: Option<NaiveDate>) -> (String, String) {
        let token = GroupKey::new(Source::AwsHealth, [summary]).token();
        let mut fields = json!({
            "project": {"key": project},
            "issuetype": {"name": "Task"},
            "summary": summary,
            "labels": ["infra-tickets", token],
        });
        if let Some(due) = due {
            fields["duedate"] = json!(due.to_string());
        }
        let body = json!({"fields": fields, "properties": [
            {"key": "infra-tickets", "value": {"idempotencyKey": token, "source": "aws-health", "schemaVersion": 1}}
        ]});
        let created = self.writer.create_issue(&body).await.expect("issue created");
        (created.id, created.key)
    }

    /// A ticket change as jira-writer publishes it, linking to the JIRA site.
    fn change(
        &self,
        kind: ChangeKind,
        issue: (&str, &str),
        team: &str,
        previous: Option<&str>,
        version: u64,
    ) -> TicketChange {
        let mut change = change(kind, issue, team, previous, version);
        change.issue_url = format!("{}/browse/{}", self.jira.url(), issue.1);
        change
    }

    /// Publishes a ticket change as jira-writer does after a write.
    async fn publish_change(&self, change: &TicketChange) {
        let outgoing = bus::Outgoing::new(change.subject(), change.to_json()).with_id(change.message_id());
        self.broker.publisher.publish(outgoing).await.expect("change published");
    }

    async fn set_due(&self, key: &str, due: NaiveDate) {
        self.person.edit_issue(key, &json!({"fields": {"duedate": due.to_string()}}), false).await.unwrap();
    }

    /// Moves the clock to `day` days after the start and waits for a whole scan after it.
    async fn scan_on_day(&self, notifier: &notifier::Notifier, day: i64) {
        self.clock.set(at("2026-12-01T09:00:00Z") + chrono::Duration::days(day));
        let seen = notifier.scans.completed();
        eventually("two scans after the clock moved", WAIT, || async {
            notifier.scans.completed() >= seen + 2
        })
        .await;
    }

    /// Reminder messages by their idempotency key, in order.
    fn reminders(&self, channel: &str) -> Vec<String> {
        self.slack
            .messages(channel)
            .iter()
            .filter_map(|m| m.metadata_field("idempotency_key").map(str::to_owned))
            .filter(|k| k.starts_with("reminder/"))
            .collect()
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap() + chrono::Duration::days(n)
}

fn change(
    kind: ChangeKind,
    issue: (&str, &str),
    team: &str,
    previous: Option<&str>,
    version: u64,
) -> TicketChange {
    let (issue_id, issue_key) = issue;
    TicketChange {
        schema: contracts::SCHEMA_VERSION,
        kind,
        group_key: GroupKey::new(Source::AwsHealth, [issue_key]),
        source: Source::AwsHealth,
        issue_id: issue_id.to_owned(),
        issue_key: issue_key.to_owned(),
        issue_url: format!("https://example.atlassian.net/browse/{issue_key}"),
        team: team.to_owned(),
        previous_team: previous.map(str::to_owned),
        lane: Lane::Maintenance,
        due_date: Some(day(30)),
        summary: format!("EC2 instance retirement {issue_key}"),
        progress: None,
        reason: "AWS Health scheduled the retirement of i-0a1b2c3d in eu-west-1.".into(),
        content_hash: format!("hash-{version}"),
        upstream_version: version,
        at: Utc::now(),
    }
}

fn keys_of(messages: &[PostedMessage]) -> Vec<String> {
    messages.iter().filter_map(|m| m.metadata_field("idempotency_key").map(str::to_owned)).collect()
}

#[tokio::test]
async fn created_and_team_changed_tickets_produce_one_message_each_in_the_right_channel() {
    let world = World::start().await;
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;

    let created = world.change(ChangeKind::Created, ("10001", "PLAT-1"), "platform", None, 1);
    world.publish_change(&created).await;
    // The same change again (a writer retry outside the duplicate window): no second message.
    let mut again = created.clone();
    again.at = Utc::now();
    let outgoing = bus::Outgoing::new(again.subject(), again.to_json()).with_id("a-later-retry");
    world.broker.publisher.publish(outgoing).await.unwrap();
    // Its creation announced again with another version (a writer adopting the issue it just
    // created): still one message.
    world.publish_change(&world.change(ChangeKind::Created, ("10001", "PLAT-1"), "platform", None, 2)).await;
    world.publish_change(&world.change(ChangeKind::Updated, ("10001", "PLAT-1"), "platform", None, 2)).await;
    world
        .publish_change(&world.change(
            ChangeKind::TeamChanged,
            ("10001", "PLAT-1"),
            "payments",
            Some("platform"),
            3,
        ))
        .await;
    world.publish_change(&world.change(ChangeKind::Created, ("10002", "DATA-1"), "data", None, 1)).await;
    world.publish_change(&world.change(ChangeKind::Resolved, ("10002", "DATA-1"), "data", None, 2)).await;
    world.broker.wait_until_drained("notifier", WAIT).await;

    let platform = world.slack.messages("C0PLATFORM");
    assert_eq!(keys_of(&platform), ["notice/10001/created"], "one message for the new ticket");
    let text = platform[0].all_text();
    assert!(text.contains(&format!("<{}/browse/PLAT-1|PLAT-1>", world.jira.url())), "{text}");
    assert!(
        text.contains("Maintenance")
            && text.contains("Thu 31 Dec 2026 (in 30 days)")
            && text.contains("platform"),
        "{text}"
    );
    assert!(text.contains("AWS Health scheduled the retirement"), "says why: {text}");

    let payments = world.slack.messages("C0PAYMENTS");
    assert_eq!(keys_of(&payments), ["notice/10001/team_changed/v3/to-payments"]);
    assert!(payments[0].text.contains("Handed to payments from platform"), "{}", payments[0].text);

    // The webhook team gets its message through the webhook (no metadata there); resolved is
    // off by default.
    let data = world.slack.messages("C0DATA");
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0].via, "webhook");
    assert!(data[0].text.contains("New ticket for data"), "{}", data[0].text);
    assert!(world.broker.dead_letters().await.is_empty());
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

/// A duplicate the writer's sweep closed: one message to the team naming and linking the ticket
/// kept, however often the change is stored (a retry after the duplicate window, another sweep
/// with the key at a later version); a `duplicate_closed` change without its survivor is
/// dead-lettered, not announced half.
#[tokio::test]
async fn a_closed_duplicate_is_announced_once_naming_the_ticket_kept() {
    let world = World::start().await;
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    let mut closed = world.change(ChangeKind::DuplicateClosed, ("10007", "PLAT-7"), "platform", None, 3);
    closed.schema = contracts::schema_for(ChangeKind::DuplicateClosed);
    closed.reason = "PLAT-7 was a duplicate and is closed; PLAT-6 is the ticket to follow.".into();
    let document = contracts::DuplicateClosed {
        change: closed.clone(),
        survivor: contracts::IssueName {
            issue_id: "10006".into(),
            issue_key: "PLAT-6".into(),
            issue_url: format!("{}/browse/PLAT-6", world.jira.url()),
        },
    };
    let publish = |bytes: Vec<u8>, id: &str| {
        let outgoing = bus::Outgoing::new(closed.subject(), bytes).with_id(id);
        let publisher = world.broker.publisher.clone();
        async move { publisher.publish(outgoing).await.unwrap() }
    };
    publish(document.to_json(), &closed.message_id()).await;
    publish(document.to_json(), "a-later-retry").await;
    let mut later = document.clone();
    later.change.upstream_version = 5;
    publish(later.to_json(), "another-sweep").await;
    // Without the survivor: refused.
    publish(closed.to_json(), "no-survivor").await;
    world.broker.wait_until_drained("notifier", WAIT).await;

    let messages = world.slack.messages("C0PLATFORM");
    assert_eq!(keys_of(&messages), ["notice/10007/duplicate_closed"], "one message");
    assert!(messages[0].text.starts_with("PLAT-7: Closed as a duplicate of PLAT-6"), "{}", messages[0].text);
    let text = messages[0].all_text();
    assert!(
        text.contains(&format!("Follow <{}/browse/PLAT-6|PLAT-6>, the ticket kept", world.jira.url())),
        "{text}"
    );
    let letters = world.broker.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.contains("malformed duplicate closed change")
            && letters[0].reason.contains("survivor"),
        "{}",
        letters[0].reason
    );
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn reminders_follow_a_tickets_life_once_each_and_honour_due_dates_changed_in_jira() {
    let world = World::start().await;
    // A: due on day 30, done on day 28. B: due on day 20, never done: overdue once.
    // C: due on day 20, moved to day 40 by a person on day 10, done on day 38. D: no due date until a person
    // sets it on day 5 to day 8; done on day 7.
    let a = world.file_issue("PLAT", "ticket A", Some(day(30))).await;
    let b = world.file_issue("PLAT", "ticket B", Some(day(20))).await;
    let c = world.file_issue("PLAT", "ticket C", Some(day(20))).await;
    let d = world.file_issue("PLAT", "ticket D", None).await;
    for (issue, version) in [(&a, 1), (&b, 1), (&c, 1), (&d, 1)] {
        world
            .publish_change(&world.change(
                ChangeKind::Created,
                (&issue.0, &issue.1),
                "platform",
                None,
                version,
            ))
            .await;
    }
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminder-labels", "true"])).await;
    world.broker.wait_until_drained("notifier", WAIT).await;

    for n in 0..=45 {
        if n == 5 {
            world.set_due(&d.1, day(8)).await;
        }
        if n == 7 {
            assert!(world.writer.transition_to_category(&d.1, "done", None).await.unwrap());
        }
        if n == 10 {
            world.set_due(&c.1, day(40)).await;
        }
        if n == 28 {
            assert!(world.writer.transition_to_category(&a.1, "done", None).await.unwrap());
        }
        if n == 38 {
            assert!(world.writer.transition_to_category(&c.1, "done", None).await.unwrap());
        }
        world.scan_on_day(&notifier, n).await;
    }

    let reminders = world.reminders("C0PLATFORM");
    let of = |key: &str| {
        reminders.iter().filter(|r| r.starts_with(&format!("reminder/{key}/"))).cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        of(&a.1),
        [format!("reminder/{}/due-14d/{}", a.1, day(30)), format!("reminder/{}/due-5d/{}", a.1, day(30))]
    );
    assert_eq!(
        of(&b.1),
        [
            format!("reminder/{}/due-14d/{}", b.1, day(20)),
            format!("reminder/{}/due-5d/{}", b.1, day(20)),
            format!("reminder/{}/overdue/{}", b.1, day(20)),
        ]
    );
    assert_eq!(
        of(&c.1),
        [
            format!("reminder/{}/due-14d/{}", c.1, day(20)),
            format!("reminder/{}/due-14d/{}", c.1, day(40)),
            format!("reminder/{}/due-5d/{}", c.1, day(40)),
        ],
        "the moved due date re-arms both; the old 5-day reminder never fires"
    );
    assert_eq!(
        of(&d.1),
        [format!("reminder/{}/due-5d/{}", d.1, day(8))],
        "set 3 days out: only the 5-day one"
    );

    // They came on the right days, and say so.
    let messages = world.slack.messages("C0PLATFORM");
    let a_five = messages.iter().find(|m| m.metadata_field("idempotency_key") == Some(&of(&a.1)[1])).unwrap();
    // Due Thursday 31 Dec: due − 5 is a Saturday, so the 5-day reminder went on Friday 25 Dec.
    assert!(a_five.text.contains("Due in 6 days"), "{}", a_five.text);
    let a_issue = world.jira.issue(&a.1).unwrap();
    assert!(
        a_issue.labels.contains(&"notified-14d".to_owned())
            && a_issue.labels.contains(&"notified-5d".to_owned())
    );
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

async fn marker(world: &World, key: &str) -> Option<Marker> {
    let kv: bus::JsonKv<Marker> =
        bus::JsonKv::open(&world.broker.js, bus::topology::NOTIFIER_MARKERS).await.unwrap();
    kv.get(key).await.unwrap().map(|v| v.value)
}

#[tokio::test]
async fn a_notifier_killed_between_claim_and_send_sends_exactly_one_reminder_after_restart() {
    let world = World::start().await;
    let issue = world.file_issue("PLAT", "killed before sending", Some(day(10))).await;
    let key = format!("reminder/{}/due-14d/{}", issue.1, day(10));

    let config = world.config(&[]);
    config.faults.halt_after_claim.store(true, Ordering::SeqCst);
    let (doomed, _shutdown) = world.start_notifier(config).await;
    eventually("the claim", WAIT, || async {
        matches!(marker(&world, &key).await, Some(Marker::Sending { .. }))
    })
    .await;
    doomed.kill();
    assert!(world.reminders("C0PLATFORM").is_empty());

    let (notifier, shutdown) = world.start_notifier(world.config(&[])).await;
    eventually("the reminder after the claim expired", WAIT, || async {
        !world.reminders("C0PLATFORM").is_empty()
    })
    .await;
    for _ in 0..3 {
        world.scan_on_day(&notifier, 0).await;
    }
    assert_eq!(world.reminders("C0PLATFORM"), std::slice::from_ref(&key));
    assert!(matches!(marker(&world, &key).await, Some(Marker::Sent { recovered: false, .. })));
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn a_notifier_killed_after_posting_is_not_repeated_the_history_settles_it() {
    let world = World::start().await;
    let issue = world.file_issue("PLAT", "killed after posting", Some(day(3))).await;
    let key = format!("reminder/{}/due-5d/{}", issue.1, day(3));

    let config = world.config(&[]);
    config.faults.halt_after_post.store(true, Ordering::SeqCst);
    let (doomed, _shutdown) = world.start_notifier(config).await;
    eventually("the post", WAIT, || async { !world.reminders("C0PLATFORM").is_empty() }).await;
    doomed.kill();
    assert!(matches!(marker(&world, &key).await, Some(Marker::Sending { .. })));

    let (notifier, shutdown) = world.start_notifier(world.config(&[])).await;
    eventually("the marker settled from the channel history", WAIT, || async {
        matches!(marker(&world, &key).await, Some(Marker::Sent { recovered: true, .. }))
    })
    .await;
    world.scan_on_day(&notifier, 0).await;
    assert_eq!(world.reminders("C0PLATFORM"), [key]);
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn two_replicas_send_one_reminder_not_two() {
    let world = World::start().await;
    let mut expected = Vec::new();
    for n in 0..6 {
        let issue = world.file_issue("PLAT", &format!("replicated {n}"), Some(day(10))).await;
        expected.push(format!("reminder/{}/due-14d/{}", issue.1, day(10)));
    }
    let (first, stop_first) = world.start_notifier(world.config(&[])).await;
    let (second, stop_second) = world.start_notifier(world.config(&[])).await;
    eventually("every reminder", WAIT, || async { world.reminders("C0PLATFORM").len() >= expected.len() })
        .await;
    for _ in 0..3 {
        world.scan_on_day(&first, 0).await;
        world.scan_on_day(&second, 0).await;
    }
    let mut sent = world.reminders("C0PLATFORM");
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    stop_first.cancel();
    stop_second.cancel();
    first.wait().await.unwrap();
    second.wait().await.unwrap();
}

#[tokio::test]
async fn a_429_storm_delays_messages_but_loses_none() {
    let world = World::start().await;
    world.slack.inject_rate_limit(5, Duration::from_secs(1));
    world.slack.enforce_channel_rate(Some(Duration::from_millis(500)));
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    for n in 0..8 {
        let id = format!("{}", 20_000 + n);
        let key = format!("PLAT-{}", 100 + n);
        world.publish_change(&world.change(ChangeKind::Created, (&id, &key), "platform", None, 1)).await;
    }
    eventually("all eight messages", Duration::from_secs(60), || async {
        world.slack.messages("C0PLATFORM").len() >= 8
    })
    .await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    let mut keys = keys_of(&world.slack.messages("C0PLATFORM"));
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 8, "no message lost, none twice");
    assert_eq!(world.slack.messages("C0PLATFORM").len(), 8);
    assert!(world.slack.rate_limited_count() >= 5, "the storm happened");
    assert!(world.broker.dead_letters().await.is_empty());
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn invalid_auth_reports_unready_until_the_token_works() {
    let world = World::start().await;
    let mut config = world.config(&["--reminders", "false"]);
    config.slack_bot_token = Some(Secret::new("xoxb-revoked-or-mistyped"));
    let (notifier, shutdown) = world.start_notifier(config).await;
    world.publish_change(&world.change(ChangeKind::Created, ("40001", "PLAT-9"), "platform", None, 1)).await;
    let readyz = format!("http://{}/readyz", notifier.address);
    let probe = || async {
        let response = reqwest::get(&readyz).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    eventually("/readyz reports the pause", WAIT, || async {
        let (status, body) = probe().await;
        status == 503 && body.contains("invalid_auth")
    })
    .await;
    let (_, body) = probe().await;
    assert!(!body.contains("xoxb-revoked"), "the token never shows: {body}");
    assert!(world.slack.all_messages().is_empty());
    assert!(world.broker.dead_letters().await.is_empty(), "nothing is given up while paused");

    // The operator fixes the token (here: Slack starts accepting it); the message goes, once.
    world.slack.add_bot_token("xoxb-revoked-or-mistyped", &slack_sim::DEFAULT_SCOPES);
    eventually("the held message", WAIT, || async { world.slack.messages("C0PLATFORM").len() == 1 }).await;
    eventually("ready again", WAIT, || async { probe().await.0 == 200 }).await;
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

/// Reminder scan cost for 10,000 open tickets: JIRA calls and time. Run by hand:
/// `cargo test -p e2e-tests --test notifier --release -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_reminder_scan_for_10000_open_tickets() {
    let world = World::start().await;
    let total: i64 = 10_000;
    let started = std::time::Instant::now();
    let mut filed = Vec::new();
    let mut batch = Vec::new();
    for n in 0..total {
        // Due dates spread over the next 200 days: ~10% are due a reminder on any day.
        let due = day(n % 200);
        let writer = world.writer.clone();
        let project = ["PLAT", "PAY"][n as usize % 2];
        let token = format!("itk-bench{n:06}");
        batch.push(tokio::spawn(async move {
            let body = json!({"fields": {"project": {"key": project}, "issuetype": {"name": "Task"},
                "summary": format!("bench {n}"), "duedate": due.to_string(), "labels": ["infra-tickets", token]}});
            writer.create_issue(&body).await.map(|c| (c.id, c.key))
        }));
        if batch.len() == 64 {
            for task in batch.drain(..) {
                filed.push(task.await.unwrap().unwrap());
            }
        }
    }
    for task in batch.drain(..) {
        filed.push(task.await.unwrap().unwrap());
    }
    println!("filed {} issues in {:?}", filed.len(), started.elapsed());
    let changes: Vec<bus::Outgoing> = filed
        .iter()
        .map(|(id, key)| {
            let team = if key.starts_with("PLAT") { "platform" } else { "payments" };
            let c = world.change(ChangeKind::Updated, (id, key), team, None, 1);
            bus::Outgoing::new(c.subject(), c.to_json()).with_id(c.message_id())
        })
        .collect();
    world.broker.publisher.publish_all(changes).await.unwrap();

    world.jira.clear_calls();
    let (notifier, shutdown) = world
        .start_notifier(world.config(&["--reminder-scan-interval", "1h", "--channel-interval", "1ms"]))
        .await;
    world.broker.wait_until_drained("notifier", Duration::from_secs(300)).await;
    eventually("the first scan", Duration::from_secs(600), || async { notifier.scans.completed() >= 1 })
        .await;
    let (first, first_time) = notifier.scans.last().expect("a successful scan");
    let first_calls = world.jira.call_count();
    shutdown.cancel();
    notifier.wait().await.unwrap();

    world.jira.clear_calls();
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminder-scan-interval", "1h"])).await;
    eventually("the steady-state scan", Duration::from_secs(600), || async {
        notifier.scans.completed() >= 1
    })
    .await;
    let (steady, steady_time) = notifier.scans.last().expect("a successful scan");
    let steady_calls = world.jira.call_count();
    shutdown.cancel();
    notifier.wait().await.unwrap();

    let sent: BTreeMap<String, usize> =
        world.slack.all_messages().iter().fold(BTreeMap::new(), |mut m, msg| {
            *m.entry(msg.channel.clone()).or_default() += 1;
            m
        });
    println!("first scan: {first:?} in {first_time:?}, JIRA calls {first_calls}");
    println!("steady scan: {steady:?} in {steady_time:?}, JIRA calls {steady_calls}");
    println!("messages per channel: {sent:?}");
    assert!(first.due > 0 && first.issues < total as u64, "only the reminder window is fetched");
    assert_eq!(steady.sent, 0);
    assert_eq!(steady.already_sent, first.sent);
}

#[tokio::test]
async fn an_interrupted_webhook_send_follows_the_recovery_setting() {
    let world = World::start().await;
    // at-least-once: the interrupted reminder is sent after the restart.
    let resent = world.file_issue("DATA", "webhook at least once", Some(day(3))).await;
    world.publish_change(&world.change(ChangeKind::Created, (&resent.0, &resent.1), "data", None, 1)).await;
    let config = world.config(&["--webhook-recovery", "at-least-once"]);
    config.faults.halt_after_claim.store(true, Ordering::SeqCst);
    let (doomed, _stop) = world.start_notifier(config).await;
    let key = format!("reminder/{}/due-5d/{}", resent.1, day(3));
    eventually("the claim", WAIT, || async {
        matches!(marker(&world, &key).await, Some(Marker::Sending { .. }))
    })
    .await;
    doomed.kill();
    let reminders =
        || world.slack.messages("C0DATA").into_iter().filter(|m| m.text.contains("Due in")).count();
    assert_eq!(reminders(), 0);
    let (notifier, shutdown) =
        world.start_notifier(world.config(&["--webhook-recovery", "at-least-once"])).await;
    eventually("the resent reminder", WAIT, || async { reminders() == 1 }).await;
    world.scan_on_day(&notifier, 0).await;
    assert_eq!(reminders(), 1);
    shutdown.cancel();
    notifier.wait().await.unwrap();

    // at-most-once: an interrupted send that cannot be checked is not repeated.
    let dropped = world.file_issue("DATA", "webhook at most once", Some(day(4))).await;
    world.publish_change(&world.change(ChangeKind::Created, (&dropped.0, &dropped.1), "data", None, 1)).await;
    let config = world.config(&["--webhook-recovery", "at-most-once"]);
    config.faults.halt_after_claim.store(true, Ordering::SeqCst);
    let (doomed, _stop) = world.start_notifier(config).await;
    let key = format!("reminder/{}/due-5d/{}", dropped.1, day(4));
    eventually("the claim", WAIT, || async {
        matches!(marker(&world, &key).await, Some(Marker::Sending { .. }))
    })
    .await;
    doomed.kill();
    let (notifier, shutdown) =
        world.start_notifier(world.config(&["--webhook-recovery", "at-most-once"])).await;
    eventually("the claim given up", WAIT, || async {
        matches!(marker(&world, &key).await, Some(Marker::Abandoned { .. }))
    })
    .await;
    world.scan_on_day(&notifier, 0).await;
    assert_eq!(reminders(), 1, "only the first ticket's reminder");
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

async fn probe(notifier: &notifier::Notifier, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{}{path}", notifier.address)).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The `Due` field of a message, as the reader sees it.
fn due_field(message: &PostedMessage) -> String {
    let text = message.all_text();
    let start = text.find("*Due*\n").expect("a Due field") + "*Due*\n".len();
    text[start..].lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_due_date_reads_as_the_same_calendar_day_in_los_angeles_and_tokyo() {
    let world = World::start().await;
    // 01:00 UTC on 2 Dec: Tuesday 17:00 on 1 Dec in Los Angeles, Wednesday 10:00 on 2 Dec in
    // Tokyo. Both tickets are due on Tuesday 15 Dec.
    world.clock.set(at("2026-12-02T01:00:00Z"));
    let due = NaiveDate::from_ymd_opt(2026, 12, 15).unwrap();
    let west = world.file_issue("PLAT", "west coast retirement", Some(due)).await;
    let east = world.file_issue("PLAT", "tokyo retirement", Some(due)).await;
    for (issue, team) in [(&west, "west"), (&east, "east")] {
        let mut created = world.change(ChangeKind::Created, (&issue.0, &issue.1), team, None, 1);
        created.due_date = Some(due);
        world.publish_change(&created).await;
    }
    // The changes are indexed (issue → team) before the first scan runs.
    let (indexer, stop_indexer) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    stop_indexer.cancel();
    indexer.wait().await.unwrap();
    let (notifier, shutdown) = world.start_notifier(world.config(&[])).await;
    eventually("both reminders", WAIT, || async {
        world.reminders("C0WEST").len() == 1 && world.reminders("C0EAST").len() == 1
    })
    .await;

    for (channel, days) in [("C0WEST", 14), ("C0EAST", 13)] {
        let messages = world.slack.messages(channel);
        assert_eq!(messages.len(), 2, "{channel}: the new ticket and its reminder");
        for message in &messages {
            let all = message.all_text();
            // No `<!date^…>` token: Slack would show its instant in each reader's own zone, the
            // day before for a reader west of UTC.
            assert!(!all.contains("<!date"), "{channel}: {all}");
            assert_eq!(due_field(message), format!("Tue 15 Dec 2026 (in {days} days)"), "{channel}");
        }
        // The header counts from the team's day and agrees with the date.
        let reminder = &messages[1];
        assert!(reminder.text.contains(&format!("Due in {days} days")), "{channel}: {}", reminder.text);
        assert!(reminder.text.contains("(due Tue 15 Dec 2026)"), "{channel}: {}", reminder.text);
    }
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn answers_that_leave_the_outcome_unknown_settle_from_the_history_and_never_post_twice() {
    use slack_sim::Fault;
    let world = World::start().await;
    // Slack stores each message and then answers: internal_error, fatal_error, HTTP 500, HTTP
    // 503, and nothing within --slack-timeout (2s).
    world.slack.fail_after_post(&[
        Fault::ApiError("internal_error"),
        Fault::ApiError("fatal_error"),
        Fault::Status(500),
        Fault::Status(503),
        Fault::Silence(Duration::from_secs(4)),
    ]);
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    let mut expected = Vec::new();
    for n in 0..5 {
        let (id, key) = (format!("{}", 50_000 + n), format!("PLAT-{}", 500 + n));
        let created = world.change(ChangeKind::Created, (&id, &key), "platform", None, 1);
        world.publish_change(&created).await;
        expected.push(format!("notice/{id}/created"));
        // One at a time, so each meets its own fault.
        world.broker.wait_until_drained("notifier", WAIT).await;
    }
    assert_eq!(keys_of(&world.slack.messages("C0PLATFORM")), expected, "each message once");
    for key in &expected {
        assert!(
            matches!(marker(&world, key).await, Some(Marker::Sent { recovered: true, .. })),
            "{key} settled from the history"
        );
    }
    // An internal_error where Slack did *not* post: the history shows nothing, it is posted.
    world.slack.fail_before_post(&[Fault::ApiError("internal_error")]);
    world
        .publish_change(&world.change(ChangeKind::Created, ("50009", "PLAT-509"), "platform", None, 1))
        .await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    let keys = keys_of(&world.slack.messages("C0PLATFORM"));
    assert_eq!(keys.iter().filter(|k| k.as_str() == "notice/50009/created").count(), 1, "{keys:?}");
    assert!(world.broker.dead_letters().await.is_empty());
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn one_channels_problem_stays_in_that_channel_and_its_messages_go_when_it_works() {
    let world = World::start().await;
    let (notifier, shutdown) = world.start_notifier(world.config(&[])).await;
    // payments: the bot was removed; east: archived; west: posting restricted; ghost: no
    // such channel. Platform works.
    world.slack.set_member("C0PAYMENTS", false);
    world.slack.archive_channel("C0EAST");
    world.slack.restrict_channel("C0WEST", true);
    let broken = [
        ("payments", "C0PAYMENTS", "not_in_channel"),
        ("east", "C0EAST", "is_archived"),
        ("west", "C0WEST", "restricted_action"),
        ("ghost", "C0GHOST", "channel_not_found"),
    ];
    let mut n = 0;
    for (team, _, _) in broken.iter().chain([&("platform", "C0PLATFORM", "")]) {
        for _ in 0..2 {
            n += 1;
            let (id, key) = (format!("{}", 60_000 + n), format!("PLAT-{}", 600 + n));
            world.publish_change(&world.change(ChangeKind::Created, (&id, &key), team, None, 1)).await;
        }
    }
    // A reminder for a waiting channel waits too.
    let due_soon = world.file_issue("PAY", "payments reminder waits", Some(day(3))).await;
    world
        .publish_change(&world.change(ChangeKind::Created, (&due_soon.0, &due_soon.1), "payments", None, 1))
        .await;
    world.broker.wait_until_drained("notifier", WAIT).await;

    assert_eq!(world.slack.messages("C0PLATFORM").len(), 2, "the working channel goes on");
    eventually("readiness names every waiting channel with its reason", WAIT, || async {
        let (status, body) = probe(&notifier, "/readyz").await;
        status == 503
            && broken.iter().all(|(_, channel, reason)| body.contains(&format!("{channel} waits ({reason}")))
    })
    .await;
    let metrics = reqwest::get(format!("http://{}/metrics", notifier.metrics_address)).await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains(r#"itk_slack_channel_waiting{channel="C0PAYMENTS"} 1"#), "{metrics}");
    assert!(world.broker.dead_letters().await.is_empty(), "nothing is given up");
    world.scan_on_day(&notifier, 0).await;
    assert!(notifier.scans.last().unwrap().0.waiting >= 1);

    // Two days later the operator fixes each channel; every waiting message goes, once, and
    // counts its days from the day it goes.
    world.clock.set(at("2026-12-03T09:00:00Z"));
    // A retry that rendered its message before the clock moved fails on the still-broken
    // channel; let every retry in flight end (a few --channel-retry rounds) before the fix, so
    // that what goes is rendered on the day it goes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.slack.set_member("C0PAYMENTS", true);
    world.slack.set_archived("C0EAST", false);
    world.slack.restrict_channel("C0WEST", false);
    world.slack.add_channel("C0GHOST", "ghost", true);
    eventually("every waiting message", WAIT, || async {
        eprintln!(
            "DEBUG {:?}",
            ["C0EAST", "C0WEST", "C0GHOST", "C0PAYMENTS"].map(|c| keys_of(&world.slack.messages(c)))
        );
        ["C0EAST", "C0WEST", "C0GHOST"].iter().all(|c| world.slack.messages(c).len() == 2)
            // Two changes, the reminder ticket's own change and its reminder.
            && world.slack.messages("C0PAYMENTS").len() == 4
    })
    .await;
    assert_eq!(due_field(&world.slack.messages("C0EAST")[0]), "Thu 31 Dec 2026 (in 28 days)");
    world.scan_on_day(&notifier, 2).await;
    assert_eq!(world.reminders("C0PAYMENTS"), [format!("reminder/{}/due-5d/{}", due_soon.1, day(3))]);
    eventually("ready again", WAIT, || async { probe(&notifier, "/readyz").await.0 == 200 }).await;
    for (_, channel, _) in broken {
        let keys = keys_of(&world.slack.messages(channel));
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique, "{channel}: none twice");
    }
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

/// Slack down for longer than the redelivery schedule (here: 6 failed calls, twice
/// `--max-deliver 3`): the notifier pauses with the message held, reports unready, fills no dead
/// letter, and the message goes once when Slack is back. (An hour in production is the same
/// path: every try is a pause, none spends a delivery.)
#[tokio::test]
async fn a_slack_outage_longer_than_the_redelivery_schedule_pauses_and_loses_nothing() {
    use slack_sim::Fault;
    let world = World::start().await;
    world.slack.fail_before_post(&[Fault::Status(503); 6]);
    let (notifier, shutdown) =
        world.start_notifier(world.config(&["--reminders", "false", "--max-deliver", "3"])).await;
    world
        .publish_change(&world.change(ChangeKind::Created, ("71001", "PLAT-711"), "platform", None, 1))
        .await;
    eventually("/readyz reports the pause", WAIT, || async {
        let (status, body) = probe(&notifier, "/readyz").await;
        status == 503 && body.contains("paused")
    })
    .await;
    eventually("the held message, once Slack answers", Duration::from_secs(60), || async {
        world.slack.messages("C0PLATFORM").len() == 1
    })
    .await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    assert_eq!(keys_of(&world.slack.messages("C0PLATFORM")), ["notice/71001/created"], "once");
    assert!(world.broker.dead_letters().await.is_empty(), "an outage is not a dead letter");
    eventually("ready again", WAIT, || async { probe(&notifier, "/readyz").await.0 == 200 }).await;
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn a_deactivated_workspace_pauses_the_notifier_and_loses_nothing() {
    let world = World::start().await;
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    world.slack.deactivate_token(DEFAULT_BOT_TOKEN);
    world
        .publish_change(&world.change(ChangeKind::Created, ("70001", "PLAT-701"), "platform", None, 1))
        .await;
    eventually("/readyz reports the pause", WAIT, || async {
        let (status, body) = probe(&notifier, "/readyz").await;
        status == 503 && body.contains("account_inactive")
    })
    .await;
    assert!(world.broker.dead_letters().await.is_empty());
    world.slack.add_bot_token(DEFAULT_BOT_TOKEN, &slack_sim::DEFAULT_SCOPES);
    eventually("the held message", WAIT, || async { world.slack.messages("C0PLATFORM").len() == 1 }).await;
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn a_token_without_the_history_scope_is_refused_at_start_naming_it() {
    let world = World::start().await;
    world.slack.add_bot_token("xoxb-post-only", &["chat:write", "groups:history"]);
    let mut config = world.config(&["--reminders", "false"]);
    config.slack_bot_token = Some(Secret::new("xoxb-post-only"));
    let error = notifier::start(config, CancellationToken::new()).await.err().expect("refused");
    let text = error.to_string();
    assert!(
        text.contains("lacks the scope(s) channels:history") && text.contains("deploy/slack/manifest.yaml"),
        "{text}"
    );
    assert!(!text.contains("xoxb-post-only"), "the token never shows: {text}");

    // Without groups:history it starts (public channels only); a private channel whose send
    // needs settling then waits with the scope named.
    world.slack.add_bot_token("xoxb-public-only", &["chat:write", "channels:history"]);
    let flags = ["--reminders", "false", "--ack-wait", "3s"];
    let mut config = world.config(&flags);
    config.slack_bot_token = Some(Secret::new("xoxb-public-only"));
    let (notifier, shutdown) = world.start_notifier(config).await;
    world.slack.fail_after_post(&[slack_sim::Fault::ApiError("internal_error")]);
    world.publish_change(&world.change(ChangeKind::Created, ("80101", "PLAT-811"), "secret", None, 1)).await;
    world
        .publish_change(&world.change(ChangeKind::Created, ("80102", "PLAT-812"), "platform", None, 1))
        .await;
    eventually("the private channel waits, naming the scope", WAIT, || async {
        let (status, body) = probe(&notifier, "/readyz").await;
        status == 503 && body.contains("G0SECRET waits (missing_scope")
    })
    .await;
    eventually("the public channel goes on", WAIT, || async {
        world.slack.messages("C0PLATFORM").len() == 1
    })
    .await;
    assert_eq!(world.slack.messages("G0SECRET").len(), 1, "posted once, never again without the history");
    assert!(world.broker.dead_letters().await.is_empty());
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn a_send_interrupted_in_a_private_channel_is_settled_from_its_history() {
    let world = World::start().await;
    // A short ack wait, so the change the killed process held comes back soon.
    let flags = ["--reminders", "false", "--ack-wait", "3s"];
    let config = world.config(&flags);
    config.faults.halt_after_post.store(true, Ordering::SeqCst);
    let (doomed, _stop) = world.start_notifier(config).await;
    world.publish_change(&world.change(ChangeKind::Created, ("80001", "PLAT-801"), "secret", None, 1)).await;
    eventually("the post", WAIT, || async { world.slack.messages("G0SECRET").len() == 1 }).await;
    doomed.kill();
    let (notifier, shutdown) = world.start_notifier(world.config(&flags)).await;
    eventually("settled with groups:history", WAIT, || async {
        matches!(marker(&world, "notice/80001/created").await, Some(Marker::Sent { recovered: true, .. }))
    })
    .await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    assert_eq!(world.slack.messages("G0SECRET").len(), 1);
    assert!(world.slack.request_count("conversations.history") >= 1);
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn untrusted_text_mentions_no_one_and_links_only_to_the_jira_site() {
    let world = World::start().await;
    let (notifier, shutdown) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    let mut hostile = world.change(ChangeKind::Created, ("90001", "PLAT-901"), "platform", None, 1);
    // As a JIRA summary, a Snyk project name or an AWS event text could carry them.
    hostile.summary = "Patch now <!channel> <@U0ADMIN> <!subteam^S0SEC> @here www.evil.example".into();
    hostile.reason =
        "Log in at <https://evil.example/login|the AWS console> or https://evil.example/x or www.evil.example".into();
    hostile.progress = Some(contracts::Progress { remaining: 3, total: 5, unit: "<!here> resources".into() });
    let mut elsewhere = world.change(ChangeKind::Created, ("90002", "PLAT-902"), "platform", None, 1);
    elsewhere.issue_url = "https://evil.example/browse/PLAT-902".into();
    world.publish_change(&hostile).await;
    world.publish_change(&elsewhere).await;
    world.broker.wait_until_drained("notifier", WAIT).await;

    let messages = world.slack.messages("C0PLATFORM");
    assert_eq!(messages.len(), 2);
    let site = format!("{}/browse/", world.jira.url());
    for message in &messages {
        assert_eq!(message.mentions(), Vec::<String>::new(), "{}", message.all_text());
        for link in message.links() {
            assert!(link.starts_with(&site), "only JIRA links: {link}");
        }
        assert!(!message.link_names);
    }
    assert!(messages[0].text.contains("Patch now &lt;!channel&gt;"), "{}", messages[0].text);
    assert!(messages[0].all_text().contains("3 of 5 &lt;!here&gt; resources still pending"));
    assert!(messages[1].links().is_empty(), "a URL outside the JIRA site gets no link or button");
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn reminders_go_out_in_the_teams_working_hours_before_a_weekend_once_with_progress_and_a_moved_date() {
    let world = World::start().await;
    // Tokyo. Due Sunday 20 Dec: due − 14 is Sunday 6 Dec, so the 14-day reminder is for
    // Friday 4 Dec, 09:00–18:00 Tokyo time.
    world.clock.set(at("2026-12-03T01:00:00Z")); // Thursday 10:00 in Tokyo
    let due = NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
    let token = GroupKey::new(Source::Snyk, ["acme/checkout"]).token();
    let body = json!({
        "fields": {"project": {"key": "PLAT"}, "issuetype": {"name": "Task"}, "summary": "checkout image",
                   "labels": ["infra-tickets", token], "duedate": due.to_string()},
        "properties": [{"key": "infra-tickets", "value": {"idempotencyKey": token, "schemaVersion": 1,
            "progress": {"remaining": 3, "total": 5, "unit": "resources"}}}]
    });
    let created = world.writer.create_issue(&body).await.unwrap();
    let mut change = world.change(ChangeKind::Created, (&created.id, &created.key), "east", None, 1);
    change.due_date = Some(due);
    world.publish_change(&change).await;
    let (indexer, stop_indexer) = world.start_notifier(world.config(&["--reminders", "false"])).await;
    world.broker.wait_until_drained("notifier", WAIT).await;
    stop_indexer.cancel();
    indexer.wait().await.unwrap();

    let (notifier, shutdown) = world.start_notifier(world.config(&[])).await;
    let scan_at = |instant: &'static str| {
        let world = &world;
        let notifier = &notifier;
        async move {
            world.clock.set(at(instant));
            let seen = notifier.scans.completed();
            eventually("two scans", WAIT, || async { notifier.scans.completed() >= seen + 2 }).await;
        }
    };
    scan_at("2026-12-03T01:00:00Z").await; // Thursday 10:00: the window is not open yet
    scan_at("2026-12-03T23:30:00Z").await; // Friday 08:30: before working hours
    assert!(world.reminders("C0EAST").is_empty());
    assert!(notifier.scans.last().unwrap().0.outside_hours >= 1);
    scan_at("2026-12-04T00:00:00Z").await; // Friday 09:00
    scan_at("2026-12-05T01:00:00Z").await; // Saturday: nothing more
    let key = format!("reminder/{}/due-14d/{due}", created.key);
    assert_eq!(world.reminders("C0EAST"), std::slice::from_ref(&key), "once, on the Friday");
    let reminder = world
        .slack
        .messages("C0EAST")
        .into_iter()
        .find(|m| m.metadata_field("idempotency_key") == Some(&key))
        .unwrap();
    assert!(
        reminder.text.contains("Due in 16 days") && reminder.text.contains("3 of 5 resources still pending"),
        "{}",
        reminder.text
    );

    // Someone moves the due date in JIRA; the next reminder says so.
    let later = NaiveDate::from_ymd_opt(2026, 12, 22).unwrap();
    world.set_due(&created.key, later).await;
    scan_at("2026-12-08T00:30:00Z").await; // Tuesday 09:30
    let moved_key = format!("reminder/{}/due-14d/{later}", created.key);
    assert_eq!(world.reminders("C0EAST"), [key, moved_key.clone()]);
    let moved = world
        .slack
        .messages("C0EAST")
        .into_iter()
        .find(|m| m.metadata_field("idempotency_key") == Some(&moved_key))
        .unwrap();
    assert!(
        moved.all_text().contains("The due date moved from Sun 20 Dec 2026 to Tue 22 Dec 2026"),
        "{}",
        moved.all_text()
    );
    shutdown.cancel();
    notifier.wait().await.unwrap();
}

#[tokio::test]
async fn a_digest_team_gets_one_message_a_day_listing_the_tickets_due_within_14_days() {
    let world = World::start().await;
    let soon = world.file_issue("PAY", "checkout image", Some(day(3))).await;
    let later = world.file_issue("PAY", "rds maintenance", Some(day(10))).await;
    let far = world.file_issue("PAY", "far away", Some(day(20))).await;
    let (notifier, shutdown) = world.start_notifier(world.config(&["--digest-teams", "payments"])).await;
    for _ in 0..3 {
        world.scan_on_day(&notifier, 0).await;
    }
    let digests = |channel: &str| {
        world
            .slack
            .messages(channel)
            .into_iter()
            .filter(|m| m.metadata_field("idempotency_key").is_some_and(|k| k.starts_with("digest/")))
            .collect::<Vec<_>>()
    };
    let today = digests("C0PAYMENTS");
    assert_eq!(today.len(), 1, "once a day");
    assert_eq!(today[0].metadata_field("idempotency_key"), Some("digest/payments/2026-12-01"));
    let text = today[0].all_text();
    assert!(
        text.contains(&format!("{}|{}>", soon.1, soon.1)) && text.contains("due Fri 4 Dec 2026 (in 3 days)"),
        "{text}"
    );
    assert!(text.contains(&later.1) && !text.contains(&far.1), "{text}");
    assert!(today[0].text.contains("payments: 2 tickets due within 14 days"), "{}", today[0].text);
    assert!(world.reminders("C0PAYMENTS").is_empty(), "no single reminders for a digest team");
    world.scan_on_day(&notifier, 1).await;
    world.scan_on_day(&notifier, 1).await;
    assert_eq!(digests("C0PAYMENTS").len(), 2, "the next day's");
    shutdown.cancel();
    notifier.wait().await.unwrap();
}
