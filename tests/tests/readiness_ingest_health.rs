//! ingest-health's `/readyz` in every mode: ready exactly when each configured intake can take
//! events (NATS connected; the webhook listening; the SQS queue answering; the last Health API
//! reconcile succeeded), and 503 naming what cannot, with the reason. The services run
//! in-process against a real nats-server, moto's SQS and the AWS Health simulator.

use std::time::Duration;

use aws_health_sim::moto::MotoServer;
use aws_health_sim::{AwsHealthSim, seed};
use e2e_tests::{TestBroker, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn sdk(region: &str) -> ingest_health::SdkConfig {
    ingest_health::static_sdk_config(region, "AKIDEXAMPLE", "test-secret")
}

/// `/readyz`'s status and body.
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

/// Starts ingest-health with `flags` (after the NATS and listen flags).
async fn start(
    broker: &TestBroker,
    flags: &[&str],
    region: &str,
    shutdown: &CancellationToken,
) -> ingest_health::Running {
    let mut args = vec!["ingest-health", "--nats-url", broker.url(), "--listen", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let mut config: ingest_health::Config =
        service_kit::config::try_parse_from(args.iter().map(Into::into), |_| None).expect("valid flags");
    config.aws = Some(sdk(region));
    ingest_health::start(config, shutdown.clone()).await.expect("ingest-health starts")
}

async fn create_queue(moto: &MotoServer, region: &str, name: &str) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk(region)).endpoint_url(moto.url()).build(),
    );
    let queue = sqs.create_queue().queue_name(name).send().await.expect("create the queue");
    (sqs, queue.queue_url().expect("a queue URL").to_owned())
}

#[tokio::test]
async fn webhook_only_is_ready_and_says_so_when_nats_is_down() {
    let mut broker = TestBroker::start().await;
    let shutdown = CancellationToken::new();
    // The Kubernetes base's mode: no queue, no Health API reconcile.
    let running = start(&broker, &["--health-webhook-secret", "s3cret"], "us-east-1", &shutdown).await;
    let address = running.http_address;
    wait_for_readyz(address, "webhook-only ingest-health ready", |status, body| {
        status == 200 && body.contains("nats: ok") && body.contains("webhook intake: ok")
    })
    .await;
    let (_, body) = readyz(address).await;
    assert!(!body.contains("sqs") && !body.contains("reconcile"), "only what is configured: {body}");

    broker.server.kill();
    wait_for_readyz(address, "503 naming NATS", |status, body| {
        status == 503 && body.contains("nats: disconnected") && body.contains("webhook intake: ok")
    })
    .await;
    broker.server.restart().expect("restart nats-server");
    wait_for_readyz(address, "ready again once NATS is back", |status, _| status == 200).await;

    shutdown.cancel();
    running.wait().await;
}

#[tokio::test]
async fn sqs_mode_is_ready_while_the_queue_answers_and_names_it_when_it_does_not() {
    let broker = TestBroker::start().await;
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("moto's server is needed for SQS: {e}"));
    let (sqs, queue_url) = create_queue(&moto, "us-east-1", "readiness-events").await;
    let shutdown = CancellationToken::new();
    let running = start(
        &broker,
        &[
            "--health-sqs-queue-url",
            &queue_url,
            "--health-sqs-endpoint-url",
            moto.url(),
            // The production long poll: readiness must not wait for it.
            "--health-sqs-wait-seconds",
            "20",
        ],
        "us-east-1",
        &shutdown,
    )
    .await;
    let address = running.http_address;
    let started = tokio::time::Instant::now();
    wait_for_readyz(address, "SQS-only ingest-health ready", |status, body| {
        status == 200 && body.contains("nats: ok") && body.contains("sqs intake: ok")
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(15), "ready before the first long poll ends");
    assert!(!readyz(address).await.1.contains("webhook"), "no webhook configured");

    sqs.delete_queue().queue_url(&queue_url).send().await.expect("delete the queue");
    wait_for_readyz(address, "503 naming the queue", |status, body| {
        status == 503
            && body.contains("sqs intake: receiving from the queue failed")
            && body.contains("nats: ok")
    })
    .await;
    let (_, again) = create_queue(&moto, "us-east-1", "readiness-events").await;
    assert_eq!(again, queue_url);
    wait_for_readyz(address, "ready again once the queue answers", |status, _| status == 200).await;

    shutdown.cancel();
    running.wait().await;
}

#[tokio::test]
async fn reconcile_on_is_ready_after_a_reconcile_and_names_the_health_api_when_it_fails() {
    let broker = TestBroker::start().await;
    let sim = AwsHealthSim::start_with(seed::events(chrono::Utc::now())).await.expect("the Health simulator");
    let shutdown = CancellationToken::new();
    let url = sim.url();
    let running = start(
        &broker,
        &[
            "--health-webhook-secret",
            "s3cret",
            "--health-api-interval",
            "1s",
            "--health-api-endpoint-url",
            &url,
        ],
        "us-east-1",
        &shutdown,
    )
    .await;
    wait_for_readyz(running.http_address, "ready after the first reconcile", |status, body| {
        status == 200 && body.contains("health api reconcile: ok") && body.contains("webhook intake: ok")
    })
    .await;
    shutdown.cancel();
    running.wait().await;

    // The Health API out of reach (nothing listens there): the reconcile says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let endpoint = format!("http://{closed}");
    let running = start(
        &broker,
        &["--health-api-interval", "1s", "--health-api-endpoint-url", &endpoint],
        "us-east-1",
        &shutdown,
    )
    .await;
    wait_for_readyz(running.http_address, "503 naming the Health API", |status, body| {
        status == 503
            && body.contains("health api reconcile: AWS Health DescribeEvents failed")
            && body.contains("nats: ok")
    })
    .await;
    shutdown.cancel();
    running.wait().await;
}

#[tokio::test]
async fn every_intake_at_once_is_ready_and_metrics_are_on_their_own_port() {
    let broker = TestBroker::start().await;
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("moto's server is needed for SQS: {e}"));
    let sim = AwsHealthSim::start_with(seed::events(chrono::Utc::now())).await.expect("the Health simulator");
    // The queue lives in eu-west-1; the Health API is called in us-east-1.
    let (_sqs, queue_url) = create_queue(&moto, "eu-west-1", "eu-health-events").await;
    let shutdown = CancellationToken::new();
    let url = sim.url();
    let running = start(
        &broker,
        &[
            "--health-sqs-queue-url",
            &queue_url,
            "--health-sqs-endpoint-url",
            moto.url(),
            "--health-sqs-region",
            "eu-west-1",
            "--health-sqs-wait-seconds",
            "1",
            "--health-webhook-secret",
            "s3cret",
            "--health-api-interval",
            "1h",
            "--health-api-endpoint-url",
            &url,
        ],
        // The SDK's own Region is not the queue's: the queue is only found in eu-west-1.
        "us-east-1",
        &shutdown,
    )
    .await;
    wait_for_readyz(running.http_address, "every intake ready", |status, body| {
        status == 200
            && ["nats: ok", "sqs intake: ok", "webhook intake: ok", "health api reconcile: ok"]
                .iter()
                .all(|part| body.contains(part))
    })
    .await;
    assert_ne!(running.http_address, running.metrics_address);
    let metrics = reqwest::get(format!("http://{}/metrics", running.metrics_address)).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let main = reqwest::get(format!("http://{}/metrics", running.http_address)).await.unwrap();
    assert_eq!(main.status(), 404, "the webhook port does not publish metrics");
    shutdown.cancel();
    running.wait().await;
}

#[tokio::test]
async fn a_queue_region_that_contradicts_the_queue_url_stops_the_start() {
    let broker = TestBroker::start().await;
    let args = [
        "ingest-health",
        "--nats-url",
        broker.url(),
        "--listen",
        "127.0.0.1:0",
        "--health-sqs-queue-url",
        "https://sqs.eu-west-1.amazonaws.com/111111111111/health-events",
        "--health-sqs-region",
        "us-east-1",
    ];
    let config: ingest_health::Config =
        service_kit::config::try_parse_from(args.iter().map(Into::into), |_| None).expect("valid flags");
    let error = ingest_health::start(config, CancellationToken::new()).await.err().expect("refused at start");
    let message = error.to_string();
    assert!(message.contains("--health-sqs-region") && message.contains("eu-west-1"), "{message}");
}
