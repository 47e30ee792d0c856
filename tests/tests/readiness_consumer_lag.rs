//! The consumer lag gauges are read from the server on a timer: they show the messages waiting
//! while a consumer is paused (or its handler stuck), when no delivery would update them.

use std::sync::Arc;
use std::time::Duration;

use bus::consumer::{self, ConsumerOptions, Delivery, ErrorClass, Handler};
use bus::{Classify, Outgoing, Readiness};
use e2e_tests::{TestBroker, eventually};
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the vendor refuses our credentials")
    }
}

impl std::error::Error for Refused {}

impl Classify for Refused {
    fn class(&self) -> ErrorClass {
        ErrorClass::Pause { after: Duration::from_secs(60) }
    }
}

/// Pauses on every message, as a service does while its vendor refuses the credentials.
struct Pausing;

impl Handler for Pausing {
    type Error = Refused;

    async fn handle(&self, _delivery: &Delivery) -> Result<(), Refused> {
        Err(Refused)
    }
}

/// The value of `name{stage="<stage>"}` in the process's `/metrics` text.
fn gauge(name: &str, stage: &str) -> Option<f64> {
    let text = service_kit::http::metrics_handle().render();
    let prefix = format!("{name}{{stage=\"{stage}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn the_lag_gauge_shows_waiting_messages_while_the_consumer_is_paused() {
    let _ = service_kit::http::metrics_handle();
    let broker = TestBroker::start().await;
    let stage = "lag-test";
    let raw = |n: u32| {
        Outgoing::new(format!("events.lag-test.kind.{n}"), format!("{{\"n\":{n}}}"))
            .with_id(format!("lag-{n}"))
    };
    broker.publisher.publish(raw(0)).await.expect("publish");
    let pull =
        bus::topology::pull_consumer(&broker.js, bus::topology::TRIAGE).await.expect("the triage consumer");
    let options = ConsumerOptions {
        concurrency: 1,
        lag_every: Duration::from_millis(200),
        ..ConsumerOptions::new(stage)
    };
    let shutdown = CancellationToken::new();
    let health = Readiness::new();
    let running = tokio::spawn(consumer::run(
        pull,
        Arc::new(Pausing),
        broker.publisher.clone(),
        options,
        health.clone(),
        shutdown.clone(),
    ));
    eventually("the consumer pauses on the first message", Duration::from_secs(20), || async {
        gauge("itk_consumer_paused", stage) == Some(1.0)
    })
    .await;
    assert!(health.report().contains("paused: the vendor refuses our credentials"), "{}", health.report());

    // Nothing is delivered while paused; the gauge still follows what waits.
    for n in 1..=5 {
        broker.publisher.publish(raw(n)).await.expect("publish");
    }
    eventually("itk_consumer_pending shows the 5 waiting messages", Duration::from_secs(20), || async {
        gauge("itk_consumer_pending", stage) == Some(5.0)
    })
    .await;
    assert_eq!(gauge("itk_consumer_ack_pending", stage), Some(1.0), "the held message");

    shutdown.cancel();
    running.await.expect("the loop task").expect("the loop stops");
}
