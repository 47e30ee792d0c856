//! Publish and consume throughput against a real nats-server.
//!
//!     cargo run --release -p bus --example throughput -- [messages]
//!
//! Publishes `messages` raw-event-sized messages with `Nats-Msg-Id` (pipelined acks, 256 in
//! flight, then awaiting each ack in turn for comparison), then consumes and acks them all with
//! the consumer runtime (confirmed acks, 64 at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bus::consumer::{self, ConsumerOptions, Delivery, Handler};
use bus::topology::{self, TopologyConfig};
use bus::{Outgoing, Publisher, Readiness};
use tokio_util::sync::CancellationToken;

struct Count(AtomicU64);

impl Handler for Count {
    type Error = bus::BusError;
    async fn handle(&self, _delivery: &Delivery) -> Result<(), bus::BusError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn payload(i: usize) -> String {
    // About the size of a small raw event.
    format!(
        r#"{{"schema":1,"source":"aws-health","kind":"aws_health_event","received_at":"2026-11-27T09:00:00Z","received_from":"bench","dedup_id":"bench:{i}","payload":{{"detail":{{"eventArn":"arn:aws:health:eu-west-1::event/EC2/X/{i}"}}}}}}"#
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let messages: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let server = local_nats::NatsServer::start()?;
    let client = bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "bench")).await?;
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &TopologyConfig::default()).await?;
    let publisher = Publisher::new(js.clone());

    let batch: Vec<Outgoing> = (0..messages)
        .map(|i| {
            Outgoing::new(format!("events.aws-health.aws_health_event.p{}", i % 16), payload(i))
                .with_id(format!("m{i}"))
        })
        .collect();
    let started = Instant::now();
    publisher.publish_all(batch).await?;
    let pipelined = started.elapsed();

    let sequential_count = (messages / 10).max(1);
    let started = Instant::now();
    for i in 0..sequential_count {
        let message =
            Outgoing::new("events.aws-health.aws_health_event.seq", payload(i)).with_id(format!("s{i}"));
        publisher.publish(message).await?;
    }
    let sequential = started.elapsed();

    let total = (messages + sequential_count) as u64;
    let counter = Arc::new(Count(AtomicU64::new(0)));
    let shutdown = CancellationToken::new();
    let consumer = topology::pull_consumer(&js, topology::TRIAGE).await?;
    let options = ConsumerOptions { concurrency: 64, ..ConsumerOptions::new("bench") };
    let started = Instant::now();
    let run = tokio::spawn(consumer::run(
        consumer,
        counter.clone(),
        publisher,
        options,
        Readiness::new(),
        shutdown.clone(),
    ));
    while counter.0.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let consumed = started.elapsed();
    shutdown.cancel();
    run.await??;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("messages: {messages} (~{} bytes each)", payload(0).len());
    println!("publish, 256 acks in flight:   {:>9.0} msg/s", rate(messages, pipelined));
    println!("publish, each ack awaited:     {:>9.0} msg/s", rate(sequential_count, sequential));
    println!("consume + confirmed ack (x64): {:>9.0} msg/s", rate(total as usize, consumed));
    Ok(())
}
