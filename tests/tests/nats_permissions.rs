//! The NATS users of deploy/nats/auth.conf against a real nats-server: the file is read from the
//! repository as it is deployed, the passwords come from the server's environment, an admin
//! applies the topology, and the five services run in-process, each with its own user and
//! `--topology-mode verify`, against the simulators. A ticket is filed and a Slack message
//! posted end to end without a single permissions violation; then each credential is shown to
//! be refused what it must not do: the notifier cannot publish `desired.*` (file tickets), the
//! intakes cannot publish `tickets.*` (post to Slack), no service writes another's bucket or
//! changes the topology.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use aws_health_sim::AwsHealthSim;
use bus::topology::{self, TopologyConfig};
use bus::{NatsAuth, NatsConnection, NatsTls};
use jira_sim::{JiraSim, ProjectConfig, SimConfig};
use local_nats::{NatsServer, ServerOptions};
use slack_sim::SlackSim;
use snyk_sim::webhook::Delivery;
use snyk_sim::{SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

/// The users of auth.conf and the server environment variable holding each one's password.
const USERS: [(&str, &str); 6] = [
    ("admin", "ITK_NATS_PASSWORD_ADMIN"),
    ("ingest-health", "ITK_NATS_PASSWORD_INGEST_HEALTH"),
    ("ingest-snyk", "ITK_NATS_PASSWORD_INGEST_SNYK"),
    ("triage", "ITK_NATS_PASSWORD_TRIAGE"),
    ("jira-writer", "ITK_NATS_PASSWORD_JIRA_WRITER"),
    ("notifier", "ITK_NATS_PASSWORD_NOTIFIER"),
];

/// The catalog of the simulators' world (compose and the demo use the same).
const CATALOG: &str = include_str!("../../deploy/compose/catalog.toml");
const SNYK_TOKEN: &str = "perm-snyk-token";
const SNYK_WEBHOOK_SECRET: &str = "perm-snyk-webhook-secret";
const SLACK_TOKEN: &str = "xoxb-perm-bot-token";
const CHANNELS: [(&str, &str); 4] =
    [("C0PLATFORM", "platform"), ("C0PAYMENTS", "payments"), ("C0DATA", "data"), ("C0MEDIA", "media")];
const SETTLE: Duration = Duration::from_secs(90);
/// How long a refused JetStream publish waits for the ack that never comes.
const REFUSED_WAIT: Duration = Duration::from_secs(2);

/// A password per user, distinctive enough to be searched for in error messages.
fn password(user: &str) -> String {
    format!("pw-{user}-Zq8vK2")
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `config.merge.authorization` of deploy/nats/values.yaml (JSON, YAML's flow style).
fn values_authorization() -> serde_json::Value {
    let values = std::fs::read_to_string(repo_file("deploy/nats/values.yaml")).unwrap();
    let key = "\n    authorization: ";
    let start = values.find(key).expect("config.merge.authorization in values.yaml") + key.len();
    let end = start + values[start..].find("\n    ]}").expect("the block's end") + "\n    ]}".len();
    serde_json::from_str(&values[start..end]).expect("values.yaml's authorization block is JSON")
}

/// The authorization block of deploy/nats/values.yaml (`config.merge`), rendered into a server
/// config as the NATS chart renders it (`nats.formatConfig`: pretty JSON, then each
/// `"<< X >>"` written unquoted as `X`, here the password variables).
fn chart_rendered_conf(dir: &std::path::Path) -> PathBuf {
    let block = values_authorization();
    let mut rendered = serde_json::to_string_pretty(&serde_json::json!({ "authorization": block })).unwrap();
    while let Some(open) = rendered.find("\"<< ") {
        let close = open + rendered[open..].find(" >>\"").expect("a closing >>");
        let raw = rendered[open + 4..close].trim().to_owned();
        rendered.replace_range(open..close + 4, &raw);
    }
    assert!(rendered.contains("\"password\": $ITK_NATS_PASSWORD_NOTIFIER"), "{rendered}");
    let path = dir.join("chart-nats.conf");
    std::fs::write(&path, rendered).unwrap();
    path
}

fn connection(url: &str, user: &str) -> NatsConnection {
    NatsConnection {
        url: url.to_owned(),
        name: format!("perm-test-{user}"),
        auth: NatsAuth::UserPassword { user: user.to_owned(), password: password(user) },
        tls: NatsTls::default(),
    }
}

/// A client of `user` that records what the server says about it (permissions violations come
/// as `-ERR` to the connection, not as an answer to the request).
async fn watched_client(url: &str, user: &str) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let client = async_nats::ConnectOptions::new()
        .user_and_password(user.to_owned(), password(user))
        .name(format!("perm-probe-{user}"))
        // As bus::connect does: replies come to the user's own inbox subjects.
        .custom_inbox_prefix(bus::inbox_prefix(user))
        .event_callback(move |event| {
            let seen = seen.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    seen.lock().unwrap().push(error.to_string());
                }
            }
        })
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"));
    (client, errors)
}

struct Secured {
    server: NatsServer,
    admin: jetstream::Context,
}

impl Secured {
    async fn start(config: PathBuf) -> Secured {
        service_kit::telemetry::init_for_tests();
        let server = NatsServer::start_with(ServerOptions {
            config_file: Some(config),
            env: USERS.iter().map(|(user, var)| (var.to_string(), password(user))).collect(),
            ..ServerOptions::default()
        })
        .expect("a nats-server >= 2.10 with the authorization block");
        let admin = bus::connect(&connection(server.url(), "admin")).await.expect("admin connects");
        let admin = bus::jetstream(admin);
        // The topology Job: the only one that creates streams, consumers and buckets.
        bus::ensure_topology(&admin, &TopologyConfig::default()).await.expect("admin applies the topology");
        Secured { server, admin }
    }

    fn url(&self) -> &str {
        self.server.url()
    }

    /// The server log's permissions violations so far.
    fn violations(&self) -> Vec<String> {
        self.server.log().lines().filter(|line| line.contains("Violation")).map(str::to_owned).collect()
    }

    async fn messages(&self, stream: &str) -> u64 {
        self.admin.get_stream(stream).await.unwrap().info().await.unwrap().state.messages
    }

    async fn drained(&self) -> bool {
        for name in [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER] {
            let (stream, _) = topology::consumer_config(&TopologyConfig::default(), name).unwrap();
            let mut consumer: jetstream::consumer::PullConsumer =
                self.admin.get_consumer_from_stream(name, stream).await.unwrap();
            let info = consumer.info().await.unwrap();
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return false;
            }
        }
        true
    }
}

fn parse<T: clap::Parser>(args: &[&str]) -> T {
    let flags: Vec<std::ffi::OsString> = args.iter().map(std::ffi::OsString::from).collect();
    service_kit::config::try_parse_from(flags, |_| None)
        .unwrap_or_else(|e| panic!("valid flags for {}: {e}", args[0]))
}

/// The flags every service gets: its own user, verify-only topology, free ports.
fn nats_flags(url: &str, user: &str) -> Vec<String> {
    [
        "--nats-url",
        url,
        "--nats-user",
        user,
        "--nats-password",
        &password(user),
        "--topology-mode",
        "verify",
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn args<'a>(service: &'a str, nats: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![service];
    all.extend(nats.iter().map(String::as_str));
    all.extend_from_slice(rest);
    all
}

struct World {
    nats: Secured,
    jira: JiraSim,
    slack: SlackSim,
    snyk: SnykSim,
    _health: AwsHealthSim,
    snyk_webhook: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The whole pipeline on a server with this config, every service with its own user.
async fn world(config: impl FnOnce(&std::path::Path) -> PathBuf) -> World {
    let dir = tempfile::tempdir().unwrap();
    let nats = Secured::start(config(dir.path())).await;
    let catalog_path = dir.path().join("catalog.toml");
    std::fs::write(&catalog_path, CATALOG).unwrap();
    let catalog = catalog_path.to_str().unwrap();

    let mut jira_config = SimConfig::default();
    jira_config.projects.push(ProjectConfig::new("MEDIA", "10004", &["media"]));
    jira_config.team_field.options.push("Media".into());
    let jira = JiraSim::start(jira_config).await.unwrap();
    let slack = SlackSim::start().await.unwrap();
    slack.add_bot_token(SLACK_TOKEN, &["chat:write", "channels:history"]);
    for (id, name) in CHANNELS {
        slack.add_channel(id, name, true);
    }
    slack.add_channel("C0SRE", "sre", true);
    let snyk = SnykSim::start(SNYK_TOKEN).await.unwrap();
    let health = AwsHealthSim::start_with(aws_health_sim::seed::events(chrono::Utc::now())).await.unwrap();

    let shutdown = CancellationToken::new();
    let url = nats.url().to_owned();
    let (jira_url, slack_url, health_url) = (jira.url(), slack.api_url(), health.url());
    let org = format!("{SEEDED_ORG_ID}@{}", snyk.base_url());

    let flags = nats_flags(&url, "triage");
    let triage: triage::Config = parse(&args("triage", &flags, &["--catalog", catalog]));
    let stop = shutdown.clone();
    tokio::spawn(async move { triage::run(triage, stop).await.expect("triage runs") });

    let flags = nats_flags(&url, "ingest-snyk");
    let ingest_snyk: ingest_snyk::Config = parse(&args(
        "ingest-snyk",
        &flags,
        &[
            "--snyk-org",
            &org,
            "--snyk-token",
            SNYK_TOKEN,
            "--snyk-webhook-secret",
            SNYK_WEBHOOK_SECRET,
            "--snyk-reconcile-interval",
            "1h",
        ],
    ));
    let running = ingest_snyk::start(ingest_snyk, shutdown.clone()).await.expect("ingest-snyk starts");
    let snyk_webhook = format!("http://{}/webhooks/snyk", running.http_address);
    tokio::spawn(running.wait());

    let flags = nats_flags(&url, "ingest-health");
    let mut ingest_health: ingest_health::Config = parse(&args(
        "ingest-health",
        &flags,
        &["--health-api-endpoint-url", &health_url, "--health-api-interval", "2s"],
    ));
    ingest_health.aws = Some(ingest_health::static_sdk_config("us-east-1", "perm", "perm-secret"));
    let running = ingest_health::start(ingest_health, shutdown.clone()).await.expect("ingest-health starts");
    tokio::spawn(running.wait());

    let jira_args = [
        "--jira-url",
        jira_url.as_str(),
        "--jira-email",
        jira_sim::BOT_EMAIL,
        "--jira-api-token",
        jira_sim::BOT_TOKEN,
        "--jira-requests-per-second",
        "200",
    ];
    let flags = nats_flags(&url, "jira-writer");
    let mut rest =
        vec!["--catalog", catalog, "--jira-project", "PLAT", "--jira-team-field", jira_sim::TEAM_FIELD];
    rest.extend(jira_args);
    let writer: jira_writer::Config = parse(&args("jira-writer", &flags, &rest));
    let stop = shutdown.clone();
    tokio::spawn(async move { jira_writer::run(writer, stop).await.expect("jira-writer runs") });

    // Reminders on: their scan reads JIRA and writes the notifier's own markers. The source
    // check on: it lists and reads the intakes' contact records every second.
    let flags = nats_flags(&url, "notifier");
    let mut rest = vec![
        "--catalog",
        catalog,
        "--slack-api-url",
        &slack_url,
        "--slack-bot-token",
        SLACK_TOKEN,
        "--reminder-scan-interval",
        "1s",
        "--sre-slack-channel",
        "C0SRE",
        "--source-check-interval",
        "1s",
    ];
    rest.extend(jira_args);
    let notifier: notifier::Config = parse(&args("notifier", &flags, &rest));
    let stop = shutdown.clone();
    tokio::spawn(async move { notifier::run(notifier, stop).await.expect("notifier runs") });

    World { nats, jira, slack, snyk, _health: health, snyk_webhook, shutdown, _dir: dir }
}

impl World {
    /// Waits until tickets are filed, messages posted, and nothing is pending any more.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut last = (usize::MAX, usize::MAX);
        let mut quiet = 0;
        loop {
            let now = (self.jira.issues().len(), self.slack.all_messages().len());
            let settled = now.0 > 0 && now.1 > 0 && now == last && self.nats.drained().await;
            quiet = if settled { quiet + 1 } else { 0 };
            if quiet >= 10 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pipeline did not settle within {SETTLE:?}: {} issues, {} Slack messages; \
                 violations: {:#?}",
                now.0,
                now.1,
                self.nats.violations()
            );
            last = now;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[tokio::test]
async fn every_service_works_with_its_own_user_and_no_more() {
    pipeline_and_refusals(world(|_| repo_file("deploy/nats/auth.conf")).await).await;
}

/// auth.conf and the Helm values grant exactly the same, user for user (the tests above show
/// what is granted is enough and what is refused is refused; this, that neither grants more).
#[test]
fn auth_conf_and_the_helm_values_are_the_same_users() {
    let conf = std::fs::read_to_string(repo_file("deploy/nats/auth.conf")).unwrap();
    let conf = &conf[conf.find("authorization {").expect("an authorization block")..];
    let quoted = |text: &str| -> std::collections::BTreeSet<String> {
        text.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    };
    let mut from_conf = std::collections::BTreeMap::new();
    for block in conf.split("user: ").skip(1) {
        let user = block.split_whitespace().next().unwrap().to_owned();
        let password = block.split("password: ").nth(1).unwrap().split_whitespace().next().unwrap();
        let publish = &block[block.find("publish:").unwrap()..block.find("subscribe:").unwrap()];
        let subscribe = &block[block.find("subscribe:").unwrap()..];
        from_conf.insert(user, (password.to_owned(), quoted(publish), quoted(subscribe)));
    }
    let block = values_authorization();
    let strings = |value: &serde_json::Value| -> std::collections::BTreeSet<String> {
        match value {
            serde_json::Value::String(one) => [one.clone()].into(),
            other => {
                other["allow"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
            }
        }
    };
    let mut from_values = std::collections::BTreeMap::new();
    for user in block["users"].as_array().unwrap() {
        let password = user["password"].as_str().unwrap();
        let password = password.trim_start_matches("<<").trim_end_matches(">>").trim().to_owned();
        let permissions = &user["permissions"];
        from_values.insert(
            user["user"].as_str().unwrap().to_owned(),
            (password, strings(&permissions["publish"]), strings(&permissions["subscribe"])),
        );
    }
    assert_eq!(from_conf.len(), USERS.len(), "{:?}", from_conf.keys());
    for (user, variable) in USERS {
        assert_eq!(from_conf[user].0, format!("${variable}"), "{user}'s password variable in auth.conf");
    }
    assert_eq!(from_conf, from_values, "auth.conf and values.yaml differ");
}

/// The same users as Kubernetes gets them: the Helm values' `config.merge`.
#[tokio::test]
async fn the_helm_values_grant_the_same_as_auth_conf() {
    pipeline_and_refusals(world(chart_rendered_conf).await).await;
}

async fn pipeline_and_refusals(world: World) {
    world.settle().await;

    // A Snyk webhook: ingest-snyk's delivery dedup bucket under its own user.
    let project = world.snyk.project_id(SEEDED_ORG_ID, "ledger-worker:1.4.0").expect("seeded project");
    let body = world.snyk.webhook_body(SEEDED_ORG_ID, &project).unwrap();
    let delivery = Delivery::project_snapshot(&body, SNYK_WEBHOOK_SECRET, "perm-delivery-1");
    let http = reqwest::Client::new();
    let (status, answer) = delivery.send(&http, &world.snyk_webhook).await.unwrap();
    assert_eq!(status, 202, "{answer}");
    // Snyk delivers again: the dedup bucket (written above) says it was handled.
    let (status, answer) = delivery.send(&http, &world.snyk_webhook).await.unwrap();
    assert_eq!((status, answer.contains("duplicate")), (200, true), "{answer}");
    world.settle().await;

    let issues = world.jira.issues();
    let messages = world.slack.all_messages();
    assert!(issues.len() >= 5, "tickets filed for Snyk and AWS Health: {}", issues.len());
    assert!(
        issues.iter().any(|i| i.labels.iter().any(|l| l == "lane-maintenance")),
        "an AWS Health ticket (Maintenance lane): {:?}",
        issues.iter().map(|i| &i.labels).collect::<Vec<_>>()
    );
    assert!(!messages.is_empty(), "Slack messages posted");
    for issue in &issues {
        assert!(
            messages.iter().any(|m| m.text.contains(&issue.key)),
            "a Slack message names {} ({})",
            issue.key,
            issue.summary
        );
    }
    let dead = bus::dead_letter::list(&world.nats.admin).await.unwrap();
    assert!(
        dead.is_empty(),
        "no dead letters: {:?}",
        dead.iter().map(|d| (&d.stage, &d.reason)).collect::<Vec<_>>()
    );
    assert_eq!(world.nats.violations(), Vec::<String>::new(), "no permissions violation on the happy path");

    // Each consuming stage dead-letters what it cannot read, under its own user (dlq.<stage>).
    let admin = bus::Publisher::new(world.nats.admin.clone());
    for (subject, stage) in [
        ("events.snyk.snyk_project_snapshot.perm-bad", topology::TRIAGE),
        ("desired.itk-perm-bad", topology::JIRA_WRITER),
        ("tickets.created.itk-perm-bad", topology::NOTIFIER),
    ] {
        let message =
            bus::Outgoing::new(subject.to_owned(), b"not json".to_vec()).with_id(format!("bad-{stage}"));
        admin.publish(message).await.expect("the admin publishes anywhere");
        e2e_tests::eventually(&format!("a dead letter of {stage}"), SETTLE, || async {
            bus::dead_letter::list(&world.nats.admin).await.unwrap().iter().any(|l| l.stage == stage)
        })
        .await;
    }
    assert_eq!(world.nats.violations(), Vec::<String>::new(), "dead-lettering needs nothing more");

    refusals(&world.nats).await;
    assert!(
        world.nats.violations().iter().any(|v| v.contains("notifier") && v.contains("desired.")),
        "the server log records the refusals (so the happy path's empty list means something): {:#?}",
        world.nats.violations()
    );
}

/// What each credential must not do, each tried for real and refused by the server.
async fn refusals(nats: &Secured) {
    let desired_before = nats.messages(topology::DESIRED_TICKETS).await;
    let changes_before = nats.messages(topology::TICKET_CHANGES).await;
    let raw_before = nats.messages(topology::RAW_EVENTS).await;

    // Each refusal waits for an ack that never comes, so they are tried side by side.
    let mut checks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>> = Vec::new();
    for (user, subject) in [
        // The notifier cannot file tickets.
        ("notifier", "desired.snyk-ecr-forged"),
        // The intakes cannot post to Slack, nor file tickets directly.
        ("ingest-snyk", "tickets.created.forged"),
        ("ingest-snyk", "desired.forged"),
        ("ingest-health", "tickets.created.forged"),
        ("ingest-health", "desired.forged"),
        // Triage cannot claim jira-writer did something; jira-writer cannot inject raw events.
        ("triage", "tickets.created.forged"),
        ("jira-writer", "events.snyk.snyk_project_snapshot.forged"),
        // Each intake publishes only its own source.
        ("ingest-health", "events.snyk.snyk_project_snapshot.forged"),
        ("ingest-snyk", "events.aws-health.aws_health_event.forged"),
        // A stage dead-letters only as itself.
        ("notifier", "dlq.jira-writer"),
    ] {
        checks.push(Box::pin(refused_publish(nats, user, subject)));
    }
    // Nobody writes another service's bucket.
    for (user, bucket) in [
        ("notifier", topology::JIRA_LEDGER),
        ("triage", topology::NOTIFIER_MARKERS),
        ("ingest-snyk", topology::TRIAGE_GROUPS),
        ("ingest-health", topology::WEBHOOK_DELIVERIES),
        ("jira-writer", topology::INTAKE_STATE),
    ] {
        checks.push(Box::pin(refused_kv_put(nats, user, bucket, "forged")));
    }
    // Each intake records only its own source's contact; the notifier only reads them.
    for (user, key) in
        [("ingest-snyk", "aws-health.forged"), ("ingest-health", "snyk.forged"), ("notifier", "snyk.forged")]
    {
        checks.push(Box::pin(refused_kv_put(nats, user, topology::SOURCE_CONTACT, key)));
    }
    // Nobody but the admin changes the topology.
    for (user, _) in USERS.iter().skip(1) {
        checks.push(Box::pin(refused_topology_change(nats, user)));
    }
    // Nor subscribes to another stage's subjects (the pipeline is read only through consumers),
    // nor to the replies of another client (what triage pulls comes to triage's inbox).
    for (user, subject) in [
        ("notifier", "desired.>"),
        ("ingest-snyk", "tickets.>"),
        ("triage", "$KV.jira_ledger.>"),
        ("notifier", "_INBOX_triage.>"),
        ("notifier", "_INBOX.>"),
    ] {
        checks.push(Box::pin(async move {
            let (client, errors) = watched_client(nats.url(), user).await;
            let _subscription = client.subscribe(subject).await.unwrap();
            client.flush().await.unwrap();
            wait_for_error(&errors, "Subscription", subject, user).await;
        }));
    }
    futures_util::future::join_all(checks).await;

    assert_eq!(nats.messages(topology::DESIRED_TICKETS).await, desired_before, "nothing forged was stored");
    assert_eq!(nats.messages(topology::TICKET_CHANGES).await, changes_before);
    assert_eq!(nats.messages(topology::RAW_EVENTS).await, raw_before);
}

/// `user` publishes to `subject` through JetStream: no ack, and the server says why.
async fn refused_publish(nats: &Secured, user: &str, subject: &str) {
    let (client, errors) = watched_client(nats.url(), user).await;
    let mut js = jetstream::new(client);
    js.set_timeout(REFUSED_WAIT);
    let result = match js.publish(subject.to_owned(), "forged".into()).await {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(result.is_err(), "{user} published to {subject} and JetStream stored it");
    wait_for_error(&errors, "Publish", subject, user).await;
}

async fn refused_kv_put(nats: &Secured, user: &str, bucket: &str, key: &str) {
    let (client, errors) = watched_client(nats.url(), user).await;
    let mut js = jetstream::new(client);
    js.set_timeout(REFUSED_WAIT);
    // Opening is allowed (STREAM.INFO, for verify); writing is not.
    let store = js.get_key_value(bucket).await.unwrap_or_else(|e| panic!("{user} opens {bucket}: {e}"));
    let result = store.put(key, "forged".into()).await;
    assert!(result.is_err(), "{user} wrote {key} to {bucket}");
    wait_for_error(&errors, "Publish", &format!("$KV.{bucket}.{key}"), user).await;
    let admin_view = nats.admin.get_key_value(bucket).await.unwrap();
    assert!(admin_view.entry(key).await.unwrap().is_none(), "{bucket} holds no forged {key}");
}

async fn refused_topology_change(nats: &Secured, user: &str) {
    let (client, errors) = watched_client(nats.url(), user).await;
    let mut js = jetstream::new(client);
    js.set_timeout(REFUSED_WAIT);
    let result = js.delete_stream(topology::DESIRED_TICKETS).await;
    assert!(result.is_err(), "{user} deleted a stream");
    wait_for_error(&errors, "Publish", "$JS.API.STREAM.DELETE.DESIRED_TICKETS", user).await;
    let config = bus::topology::stream_configs(&TopologyConfig::default())
        .into_iter()
        .find(|c| c.name == topology::TICKET_CHANGES)
        .unwrap();
    let result =
        js.update_stream(jetstream::stream::Config { max_age: Duration::from_secs(1), ..config }).await;
    assert!(result.is_err(), "{user} changed a stream");
    let result = js.delete_consumer_from_stream(topology::NOTIFIER, topology::TICKET_CHANGES).await;
    assert!(result.is_err(), "{user} deleted a consumer");
    let mut stream =
        nats.admin.get_stream(topology::DESIRED_TICKETS).await.expect("the stream is still there");
    let _ = stream.info().await.unwrap();
}

/// The server told `user`'s connection it may not do `what` on `subject`; the message names the
/// user's subject, never a password.
async fn wait_for_error(errors: &Mutex<Vec<String>>, what: &str, subject: &str, user: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        {
            let errors = errors.lock().unwrap();
            if let Some(error) =
                errors.iter().find(|e| e.contains("Permissions Violation") && e.contains(what))
            {
                assert!(error.contains(subject), "{user}: {error} (expected {subject})");
                assert!(!error.contains(&password(user)), "a password in {error}");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not refuse {what} to {subject} for {user}: {errors:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Triage keeps the last good copy of a feed read from a URL in the `feeds` object store, and a
/// triage started while the feed is down reads it back: both with triage's own user (auth.conf),
/// without a permissions violation.
#[tokio::test]
async fn triage_keeps_and_reads_its_feed_copies_with_its_own_user() {
    let nats = Secured::start(repo_file("deploy/nats/auth.conf")).await;
    let sim = feeds_sim::FeedsSim::start().await.unwrap();
    sim.set_kev(
        r#"{"catalogVersion": "2026.12.01", "dateReleased": "2026-12-01T12:00:00Z", "count": 1, "vulnerabilities": [
 {"cveID": "CVE-2026-88001", "vendorProject": "A", "product": "a", "vulnerabilityName": "a", "dateAdded": "2026-11-30",
  "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}]}"#,
    );
    sim.set_epss("#model_version:v2025.03.14,score_date:2026-12-01T00:00:00Z\ncve,epss,percentile\nCVE-2026-88001,0.6,0.99\n");
    let args = triage::feeds::FeedArgs {
        kev_catalog: Some(sim.kev_url()),
        epss_scores: Some(sim.epss_url()),
        refresh: Duration::from_secs(86_400),
        policy_profile: None,
    };
    let as_triage = || async {
        // Named as triage names itself: its replies come to _INBOX_triage, the only inbox it may read.
        let triage = NatsConnection { name: "triage".into(), ..connection(nats.url(), "triage") };
        let js = bus::jetstream(bus::connect(&triage).await.unwrap());
        triage::feeds::FeedCopies::in_store(&js).await.expect("triage opens the feeds store")
    };
    let copies = as_triage().await;
    triage::feeds::load_feeds(&args, &copies).await.unwrap();
    // A refresh writes the copy again over the first (the old chunks purged).
    let feeds = triage::feeds::load_feeds(&args, &copies).await.unwrap();
    triage::feeds::refreshed(&args, &feeds, &copies).await;

    sim.set_fault(Some(feeds_sim::Fault::Status(503)));
    let restarted = triage::feeds::load_feeds(&args, &as_triage().await).await.expect("the kept copies");
    assert!(restarted.kev("CVE-2026-88001").is_some());
    assert!(restarted.epss("CVE-2026-88001").is_some());
    assert_eq!(nats.violations(), Vec::<String>::new());
}
