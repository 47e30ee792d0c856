//! `infra-tickets ledger rebuild`: the jira-writer's ledger recovered from JIRA after its bucket
//! was lost, by an operator, with the writer's own configuration.

use std::process::Command;

use bus::JsonKv;
use bus::topology::JIRA_LEDGER;
use contracts::{GroupKey, Source};
use jira::{JiraClient, JiraClientConfig};
use jira_sim::{BOT_EMAIL, BOT_TOKEN, JiraSim, SimConfig};
use serde_json::{Value, json};
use service_kit::Secret;

/// A ticket as an earlier writer filed it: the base label, the key's label and the
/// `infra-tickets` property.
async fn file_ticket(client: &JiraClient, key: &GroupKey) -> String {
    let body = json!({
        "fields": {
            "project": {"key": "PLAT"},
            "issuetype": {"name": "Task"},
            "summary": format!("Critical vulnerabilities in {key}"),
            "labels": ["infra-tickets", key.token()],
        },
        "properties": [{"key": "infra-tickets", "value": {
            "idempotencyKey": key.token(),
            "groupKey": key.as_str(),
            "contentHash": "sha256:abc",
            "upstreamVersion": 4,
            "team": "platform",
            "state": "open",
        }}],
    });
    client.create_issue(&body).await.expect("filed").key
}

/// Runs the binary off the runtime, which serves the JIRA simulator meanwhile.
async fn rebuild(nats: &str, jira: &str) -> String {
    let (nats, jira) = (nats.to_owned(), jira.to_owned());
    tokio::task::spawn_blocking(move || rebuild_blocking(&nats, &jira)).await.unwrap()
}

fn rebuild_blocking(nats: &str, jira: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_infra-tickets"))
        .args(["ledger", "rebuild", "--", "--nats-url", nats, "--jira-url", jira])
        .args(["--jira-email", BOT_EMAIL, "--jira-project", "PLAT"])
        .env("JIRA_API_TOKEN", BOT_TOKEN)
        .env_remove("ITK_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains(BOT_TOKEN), "no secret in the output");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ledger_is_rebuilt_from_the_tickets_in_jira() {
    let nats = local_nats::NatsServer::start().unwrap();
    let sim = JiraSim::start(SimConfig::default()).await.unwrap();
    let client =
        JiraClient::new(JiraClientConfig::new(sim.url(), BOT_EMAIL, Secret::new(BOT_TOKEN))).unwrap();
    let keys = [
        GroupKey::new(Source::Snyk, ["github", "acme/checkout"]),
        GroupKey::new(Source::Snyk, ["github", "acme/website"]),
    ];
    let mut issues = Vec::new();
    for key in &keys {
        issues.push(file_ticket(&client, key).await);
    }

    let out = rebuild(nats.url(), &sim.url()).await;
    assert!(
        out.starts_with("2 ticket(s) with the base label read; 2 record(s) rebuilt, 0 already there"),
        "{out}"
    );
    let client_nats = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client_nats);
    let ledger = JsonKv::<Value>::open(&js, JIRA_LEDGER).await.unwrap();
    for (key, issue) in keys.iter().zip(&issues) {
        let record = ledger.get(&key.token()).await.unwrap().expect("a record").value;
        assert_eq!(record["issue"]["key"], json!(issue));
        assert_eq!(
            (record["content_hash"].as_str(), record["team"].as_str()),
            (Some("sha256:abc"), Some("platform"))
        );
    }

    let again = rebuild(nats.url(), &sim.url()).await;
    assert!(again.contains("0 record(s) rebuilt, 2 already there"), "{again}");
}
