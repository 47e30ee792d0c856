//! `infra-tickets doctor` against a real nats-server and the simulators seeded as the demo seeds
//! them (`infra_tickets_demo::Simulators`): it passes on the demo world, and each way the world
//! can be wrong is shown by breaking the simulator that way and reading the ✗ with its remedy.
//! The binary runs as the services do: configured from the environment alone.

use std::collections::BTreeMap;
use std::process::Command;

use infra_tickets_demo::{SimulatorPorts, Simulators, StackOptions};
use serde_json::Value;

/// The demo's Slack bot token and Snyk token (demo/src/lib.rs).
const SLACK_TOKEN: &str = "xoxb-demo-bot-token";
const SNYK_TOKEN: &str = "demo-snyk-token";

struct World {
    nats: local_nats::NatsServer,
    sims: Simulators,
    dir: tempfile::TempDir,
    /// The services' environment (as compose and Kubernetes give it).
    env: BTreeMap<String, String>,
}

struct Outcome {
    ok: bool,
    report: Value,
    text: String,
}

impl Outcome {
    fn check(&self, name_part: &str) -> &Value {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().contains(name_part))
            .unwrap_or_else(|| panic!("no check named like {name_part:?} in {}", self.text))
    }

    fn failed(&self) -> Vec<String> {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The one failed check whose name contains `name_part`, and nothing else failed.
    fn only_failure(&self, name_part: &str) -> &Value {
        let failed = self.failed();
        assert!(!self.ok, "{}", self.text);
        assert!(
            !failed.is_empty() && failed.iter().all(|f| f.contains(name_part)),
            "expected only {name_part:?} to fail, got {failed:?}\n{}",
            self.text
        );
        let check = self.check(name_part);
        assert_eq!(check["ok"], false);
        assert!(!check["remedy"].as_str().unwrap().is_empty(), "{check}");
        check
    }
}

impl World {
    async fn start() -> World {
        Self::start_with(true).await
    }

    async fn start_with(apply_topology: bool) -> World {
        let nats = local_nats::NatsServer::start().unwrap();
        if apply_topology {
            let client =
                bus::connect(&bus::NatsConnection::unauthenticated(nats.url(), "doctor-test")).await.unwrap();
            bus::ensure_topology(&bus::jetstream(client), &bus::topology::TopologyConfig::default())
                .await
                .unwrap();
        }
        let sims = Simulators::start(&SimulatorPorts::any(), &StackOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(&catalog, infra_tickets_demo::CATALOG).unwrap();
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("NATS_URL", nats.url().to_owned());
        set("ITK_CATALOG", catalog.display().to_string());
        set("JIRA_URL", sims.jira.url());
        set("JIRA_EMAIL", jira_sim::BOT_EMAIL.into());
        set("JIRA_API_TOKEN", jira_sim::BOT_TOKEN.into());
        set("ITK_JIRA_PROJECT", "PLAT".into());
        set("ITK_JIRA_TEAM_FIELD", jira_sim::TEAM_FIELD.into());
        // The demo's JIRA projects run JIRA Software's workflow, which has no Assigned status:
        // a linked task moves a ticket to In Progress there.
        set("ITK_JIRA_LINKED_STATUS", "In Progress".into());
        set("SLACK_API_URL", sims.slack.api_url());
        set("SLACK_BOT_TOKEN", SLACK_TOKEN.into());
        set("SNYK_ORGS", format!("{}@{}", snyk_sim::SEEDED_ORG_ID, sims.snyk.base_url()));
        set("SNYK_TOKEN", SNYK_TOKEN.into());
        set("HEALTH_API_ENDPOINT_URL", sims.health.url());
        set("HEALTH_API_INTERVAL", "2s".into());
        set("AWS_ACCESS_KEY_ID", "demo".into());
        set("AWS_SECRET_ACCESS_KEY", "demo-secret".into());
        set("AWS_EC2_METADATA_DISABLED", "true".into());
        World { nats, sims, dir, env }
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_owned(), value.to_owned());
    }

    async fn doctor(&self, args: &[&str]) -> Outcome {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let env = self.env.clone();
        let home = self.dir.path().to_owned();
        let output = tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_infra-tickets"));
            command.arg("doctor").arg("--json").args(&args).env_clear();
            // No profile or credentials of the machine's own.
            command.env("HOME", &home).env("PATH", std::env::var_os("PATH").unwrap_or_default());
            command.envs(&env).output().unwrap()
        })
        .await
        .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let report: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(report["ok"].as_bool().unwrap(), output.status.success(), "{text}");
        for secret in [SLACK_TOKEN, SNYK_TOKEN, jira_sim::BOT_TOKEN, "demo-secret"] {
            assert!(!text.contains(secret), "a secret in the report: {text}");
        }
        Outcome { ok: output.status.success(), report, text }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_demo_world_and_prints_a_checklist() {
    let world = World::start().await;
    let outcome = world.doctor(&[]).await;
    assert!(outcome.ok, "failed: {:?}\n{}", outcome.failed(), outcome.text);
    // Every dependency was looked at.
    for part in [
        "nats[jira-writer]: topology",
        "nats[notifier]: server version",
        "catalog: team media: Slack channel",
        "jira: credentials",
        "jira: team field customfield_10050",
        "jira: lane P1 → priority Highest",
        "jira: project PAY: permission Create issues",
        "jira: project MEDIA: path filed → resolved",
        "jira: project DATA: required create fields",
        "slack: team data: channel C0DATA has the bot",
        "slack: scope chat:write",
        "org ",
        "aws: Health API reachable",
    ] {
        assert_eq!(outcome.check(part)["ok"], true, "{part}");
    }
    // The text checklist, and writing nothing: no issue, no message.
    let text = Command::new(env!("CARGO_BIN_EXE_infra-tickets"))
        .args(["doctor", "--service", "triage"])
        .env("NATS_URL", world.nats.url())
        .env("ITK_CATALOG", &world.env["ITK_CATALOG"])
        .output()
        .unwrap();
    let out = String::from_utf8(text.stdout).unwrap();
    assert!(text.status.success(), "{out}");
    assert!(
        out.contains("✓ nats[triage]: topology") && out.contains("failed\n") && !out.contains('✗'),
        "{out}"
    );
    // Every JIRA call doctor made, request and answer, is as our contract description says.
    let spec = jira_sim::contract::Spec::load_default().unwrap();
    let calls = world.sims.jira.calls();
    assert!(calls.iter().any(|c| c.path.contains("/workflows")), "the workflow was read");
    let violations = spec.check_calls(&calls);
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(world.sims.jira.issues().is_empty());
    assert!(world.sims.slack.all_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_slack_scope_and_a_bot_outside_a_channel_fail() {
    let mut world = World::start().await;
    world.sims.slack.add_bot_token("xoxb-no-chat-write", &["channels:history"]);
    world.set("SLACK_BOT_TOKEN", "xoxb-no-chat-write");
    let outcome = world.doctor(&["--service", "notifier"]).await;
    let check = outcome.only_failure("slack: scope chat:write");
    assert!(check["remedy"].as_str().unwrap().contains("chat:write"), "{check}");

    let mut world = World::start().await;
    world.sims.slack.set_member("C0DATA", false);
    let outcome = world.doctor(&["--service", "notifier"]).await;
    let check = outcome.only_failure("slack: team data: channel C0DATA");
    assert!(check["detail"].as_str().unwrap().contains("not_in_channel"), "{check}");
    assert!(check["remedy"].as_str().unwrap().contains("/invite"), "{check}");
    world.set("SLACK_BOT_TOKEN", "xoxb-revoked");
    let outcome = world.doctor(&["--service", "notifier"]).await;
    assert!(outcome.only_failure("slack: bot token")["detail"].as_str().unwrap().contains("invalid_auth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_without_a_path_to_done_fails_naming_what_jira_offers() {
    let world = World::start().await;
    let mut workflow = jira_sim::Workflow::jira_software();
    workflow.transitions.retain(|t| t.to != "Done");
    world.sims.jira.set_project_workflow("PAY", workflow);
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    let check = outcome.only_failure("jira: project PAY: path filed → resolved");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("stuck at") && detail.contains("Stop Progress → To Do"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_field_where_a_team_field_is_configured_fails() {
    let mut world = World::start().await;
    // --jira-org-id is what a Team field needs (names looked up in the Teams API); the site's
    // field is a single select.
    world.set("ITK_JIRA_ORG_ID", jira_sim::ORG_ID);
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    let check = outcome.only_failure("jira: team field customfield_10050");
    assert!(check["detail"].as_str().unwrap().contains("select"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_without_create_permission_a_missing_priority_and_a_foreign_required_field_fail() {
    let world = World::start().await;
    world.sims.jira.deny("PAY", jira_sim::Permission::CreateIssues);
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    assert_eq!(outcome.check("jira: project PAY: permission Create issues")["ok"], false, "{}", outcome.text);
    assert_eq!(outcome.failed().len(), 2, "create permission and the issue types it hides: {}", outcome.text);
    assert!(outcome.failed().iter().all(|f| f.contains("project PAY")));

    let world = World::start().await;
    world.sims.jira.remove_priority("Highest");
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    let check = outcome.only_failure("jira: lane P1 → priority Highest");
    assert!(check["remedy"].as_str().unwrap().contains("--jira-lane-priorities"), "{check}");

    let world = World::start().await;
    world.sims.jira.require_on_create("DATA", "customfield_10099");
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    let check = outcome.only_failure("jira: project DATA: required create fields are ours");
    assert!(check["detail"].as_str().unwrap().contains("customfield_10099"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_snyk_token_and_an_unserved_api_version_fail() {
    let mut world = World::start().await;
    world.set("SNYK_TOKEN", "not-the-token");
    let outcome = world.doctor(&["--service", "ingest-snyk"]).await;
    let check = outcome.only_failure("token accepted");
    assert!(check["remedy"].as_str().unwrap().contains("SNYK_TOKEN"), "{check}");

    world.set("SNYK_TOKEN", SNYK_TOKEN);
    world.sims.snyk.set_oldest_version(chrono::NaiveDate::from_ymd_opt(2025, 1, 1));
    let outcome = world.doctor(&["--service", "ingest-snyk", "--", "--snyk-api-version", "2024-10-15"]).await;
    let check = outcome.only_failure("API version 2024-10-15 served");
    assert!(check["remedy"].as_str().unwrap().contains("--snyk-api-version"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_api_without_a_support_plan_and_a_disabled_organizational_view_fail() {
    let mut world = World::start().await;
    world.sims.health.require_subscription(true);
    let outcome = world.doctor(&["--service", "ingest-health"]).await;
    let check = outcome.only_failure("aws: Health API reachable");
    assert!(check["detail"].as_str().unwrap().contains("SubscriptionRequiredException"), "{check}");

    world.sims.health.require_subscription(false);
    world.sims.health.set_organization_view(false);
    world.set("HEALTH_API_ORGANIZATION", "true");
    let outcome = world.doctor(&["--service", "ingest-health"]).await;
    let check = outcome.only_failure("aws: Health organizational view enabled");
    assert!(check["remedy"].as_str().unwrap().contains("enable-health-service-access-for-organization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topology_and_a_missing_setting_fail() {
    let mut world = World::start_with(false).await;
    world.env.remove("JIRA_URL");
    let outcome = world.doctor(&["--service", "triage", "--service", "jira-writer"]).await;
    let topology = outcome.check("nats[triage]: topology");
    assert_eq!(topology["ok"], false);
    assert!(topology["remedy"].as_str().unwrap().contains("topology --apply"), "{topology}");
    let config = outcome.check("jira-writer: configuration");
    assert_eq!(config["ok"], false);
    assert!(config["detail"].as_str().unwrap().contains("--jira-url"), "{config}");

    // The same setting from the services' config file, or after `--` (each service takes the
    // flags it has: triage has no --jira-url and still parses).
    let file = world.dir.path().join("services.toml");
    std::fs::write(&file, format!("jira-url = \"{}\"\n", world.sims.jira.url())).unwrap();
    let from_file = world
        .doctor(&["--service", "triage", "--service", "jira-writer", "--config", file.to_str().unwrap()])
        .await;
    assert_eq!(from_file.check("jira-writer: configuration")["ok"], true, "{}", from_file.text);
    assert_eq!(from_file.check("triage: configuration")["ok"], true, "{}", from_file.text);
    let url = world.sims.jira.url();
    let after_dashes =
        world.doctor(&["--service", "triage", "--service", "jira-writer", "--", "--jira-url", &url]).await;
    assert_eq!(after_dashes.check("jira-writer: configuration")["ok"], true, "{}", after_dashes.text);
    assert_eq!(after_dashes.check("triage: configuration")["ok"], true, "{}", after_dashes.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqs_queue_is_read_and_a_missing_one_fails() {
    let moto = aws_health_sim::moto::MotoServer::start()
        .unwrap_or_else(|e| panic!("moto's server is needed for SQS: {e}"));
    let sdk = ingest_health::static_sdk_config("us-east-1", "demo", "demo-secret");
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(moto.url()).build(),
    );
    let queue = sqs.create_queue().queue_name("health-events").send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let mut world = World::start().await;
    world.set("HEALTH_SQS_ENDPOINT_URL", moto.url());
    world.set("HEALTH_SQS_REGION", "us-east-1");
    world.set("HEALTH_SQS_QUEUE_URL", &queue_url);
    let outcome = world.doctor(&["--service", "ingest-health"]).await;
    assert!(outcome.ok, "{}", outcome.text);
    assert_eq!(outcome.check("aws: SQS queue")["detail"], "0 message(s) waiting");

    world.set("HEALTH_SQS_QUEUE_URL", &queue_url.replace("health-events", "no-such-queue"));
    let outcome = world.doctor(&["--service", "ingest-health"]).await;
    let check = outcome.only_failure("aws: SQS queue");
    assert!(check["remedy"].as_str().unwrap().contains("health-intake.yaml"), "{check}");
}

/// jira-writer's default linked status, Assigned, is not in JIRA Software's workflow, which the
/// demo's projects run: a task linked to a demo ticket could not move it. Doctor says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_linked_status_on_jira_softwares_workflow_is_reported() {
    let mut world = World::start().await;
    world.env.remove("ITK_JIRA_LINKED_STATUS");
    let outcome = world.doctor(&["--service", "jira-writer"]).await;
    let failed = outcome.failed();
    assert_eq!(failed.len(), 8, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|f| f.ends_with("workflow has the configured statuses") || f.contains("filed → linked"))
    );
    let statuses = outcome.check("project PAY: workflow has the configured statuses");
    assert!(statuses["detail"].as_str().unwrap().contains("linked=Assigned"), "{statuses}");
}

/// Each service checks NATS as its own least-privilege user of deploy/nats/auth.conf (the
/// compose and Kubernetes setup): what doctor asks is what that user may ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_checks_nats_as_its_own_least_privilege_user() {
    let users = ["admin", "ingest-health", "ingest-snyk", "triage", "jira-writer", "notifier"];
    let password = |user: &str| format!("pw-{user}-doctor");
    let variable = |user: &str| format!("ITK_NATS_PASSWORD_{}", user.to_uppercase().replace('-', "_"));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let server = local_nats::NatsServer::start_with(local_nats::ServerOptions {
        config_file: Some(repo.join("deploy/nats/auth.conf")),
        env: users.iter().map(|u| (variable(u), password(u))).collect(),
        ..local_nats::ServerOptions::default()
    })
    .unwrap();
    let admin = bus::NatsConnection {
        url: server.url().to_owned(),
        name: "doctor-test-admin".into(),
        auth: bus::NatsAuth::UserPassword { user: "admin".into(), password: password("admin") },
        ..bus::NatsConnection::unauthenticated(server.url(), "doctor-test-admin")
    };
    let admin = bus::jetstream(bus::connect(&admin).await.unwrap());
    bus::ensure_topology(&admin, &bus::topology::TopologyConfig::default()).await.unwrap();

    let mut world = World::start().await;
    world.set("NATS_URL", server.url());
    for service in &users[1..] {
        world.set("NATS_USER", service);
        world.set("NATS_PASSWORD", &password(service));
        let outcome = world.doctor(&["--service", service]).await;
        assert!(outcome.ok, "{service}: {:?}\n{}", outcome.failed(), outcome.text);
        assert_eq!(outcome.check(&format!("nats[{service}]: topology"))["ok"], true);
    }
    assert!(!server.log().contains("Violation"), "{}", server.log());

    world.set("NATS_PASSWORD", "wrong");
    let outcome = world.doctor(&["--service", "triage"]).await;
    assert!(
        outcome.only_failure("nats[triage]: connects")["remedy"].as_str().unwrap().contains("--nats-user")
    );
}

impl World {
    /// The demo catalog with `from` replaced by `to`.
    fn edit_catalog(&self, from: &str, to: &str) {
        let catalog = infra_tickets_demo::CATALOG.replace(from, to);
        assert_ne!(catalog, infra_tickets_demo::CATALOG, "{from:?} is in the demo catalog");
        std::fs::write(&self.env["ITK_CATALOG"], catalog).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_channel_without_groups_history_fails_naming_the_scope() {
    let world = World::start().await;
    // The demo's bot has chat:write and channels:history only.
    world.sims.slack.add_private_channel("G0DATA", "data-private", true);
    world.edit_catalog("slack_channel = \"C0DATA\"", "slack_channel = \"G0DATA\"");
    let outcome = world.doctor(&["--service", "notifier"]).await;
    let check = outcome.only_failure("slack: team data: channel G0DATA");
    assert!(check["detail"].as_str().unwrap().contains("missing_scope"), "{check}");
    assert!(check["remedy"].as_str().unwrap().contains("groups:history"), "{check}");
    assert!(outcome.check("slack: scope groups:history")["detail"].as_str().unwrap().contains("private"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_without_a_channel_and_an_overlapping_rule_fail_in_the_catalog() {
    let world = World::start().await;
    // Media loses its channel; a platform rule after payments' "i-0pay*" never applies.
    let catalog = infra_tickets_demo::CATALOG.replace("slack_channel = \"C0MEDIA\"\n", "")
        + "\n[[owners]]\nteam = \"platform\"\naws_resources = [\"i-0payroll\"]\n";
    std::fs::write(&world.env["ITK_CATALOG"], catalog).unwrap();
    let outcome = world.doctor(&["--service", "triage"]).await;
    let failed = outcome.failed();
    assert_eq!(failed.len(), 2, "{failed:?}\n{}", outcome.text);
    let channel = outcome.check("catalog: team media: Slack channel");
    assert!(channel["remedy"].as_str().unwrap().contains("slack_channel"), "{channel}");
    let overlap = outcome.check("catalog: owner rules do not overlap");
    assert!(overlap["detail"].as_str().unwrap().contains("i-0payroll"), "{overlap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_snyk_webhook_must_be_registered() {
    let mut world = World::start().await;
    world.set("SNYK_WEBHOOK_SECRET", "webhook-secret-doctor");
    let outcome = world.doctor(&["--service", "ingest-snyk"]).await;
    let check = outcome.only_failure("webhook to /webhooks/snyk registered");
    assert!(check["remedy"].as_str().unwrap().contains("/webhooks"), "{check}");
    assert!(!outcome.text.contains("webhook-secret-doctor"));

    world.sims.snyk.register_webhook(snyk_sim::SEEDED_ORG_ID, "https://itk.example.com/webhooks/snyk");
    let outcome = world.doctor(&["--service", "ingest-snyk"]).await;
    assert!(outcome.ok, "{}", outcome.text);
}
