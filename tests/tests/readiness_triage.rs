//! triage's `/readyz`: ready exactly while it can triage (NATS connected and its consumer
//! fetching), 503 with the reason otherwise, against a real nats-server.

use std::time::Duration;

use e2e_tests::{TestBroker, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

async fn readyz(address: std::net::SocketAddr) -> (u16, String) {
    match reqwest::get(format!("http://{address}/readyz")).await {
        Ok(response) => (response.status().as_u16(), response.text().await.unwrap_or_default()),
        Err(error) => (0, error.to_string()),
    }
}

async fn wait_for_readyz(address: std::net::SocketAddr, what: &str, check: impl Fn(u16, &str) -> bool) {
    let check = &check;
    eventually(what, WAIT, || async move {
        let (status, body) = readyz(address).await;
        check(status, &body)
    })
    .await;
}

#[tokio::test]
async fn triage_is_ready_while_connected_and_consuming_and_names_nats_when_it_is_down() {
    let mut broker = TestBroker::start().await;
    let config: triage::Config = service_kit::config::try_parse_from(
        ["triage", "--nats-url", broker.url(), "--listen", "127.0.0.1:0"].map(Into::into),
        |_| None,
    )
    .expect("valid flags");
    let shutdown = CancellationToken::new();
    let running = triage::start(config, shutdown.clone()).await.expect("triage starts");
    let address = running.http_address;
    wait_for_readyz(address, "triage ready", |status, body| {
        status == 200 && body.contains("nats: ok") && body.contains("consumer triage: ok")
    })
    .await;
    let metrics = reqwest::get(format!("http://{}/metrics", running.metrics_address)).await.unwrap();
    assert_eq!(metrics.status(), 200);

    broker.server.kill();
    wait_for_readyz(address, "503 naming NATS", |status, body| {
        status == 503 && body.contains("nats: disconnected")
    })
    .await;
    broker.server.restart().expect("restart nats-server");
    wait_for_readyz(address, "ready again once NATS is back", |status, body| {
        status == 200 && body.contains("consumer triage: ok")
    })
    .await;

    shutdown.cancel();
    running.wait().await.expect("triage stops cleanly");
}

#[tokio::test]
async fn triage_without_nats_does_not_start_and_names_nats() {
    let mut gone = local_nats::NatsServer::start().expect("nats-server");
    let url = gone.url().to_owned();
    gone.kill();
    let config: triage::Config = service_kit::config::try_parse_from(
        ["triage", "--nats-url", url.as_str(), "--listen", "127.0.0.1:0"].map(Into::into),
        |_| None,
    )
    .expect("valid flags");
    let error = triage::start(config, CancellationToken::new()).await.err().expect("no NATS, no start");
    assert!(error.to_string().to_lowercase().contains("nats"), "{error}");
}
