//! Shared set-up for the end-to-end tests: a real nats-server with the whole topology, and
//! helpers to read what the pipeline produced.
//!
//! Each test file under `tests/tests/` exercises one path through the services, which run
//! in-process (their `run(config, shutdown)`) against this broker and the simulators.

use std::time::Duration;

use async_nats::jetstream;
use bus::topology::{self, TopologyConfig};
use bus::{NatsConnection, Publisher};
use contracts::{DesiredTicket, TicketChange};
use local_nats::NatsServer;

/// A nats-server with every stream, consumer and bucket set up.
pub struct TestBroker {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub publisher: Publisher,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(TopologyConfig::default()).await
    }

    pub async fn start_with(config: TopologyConfig) -> Self {
        service_kit::telemetry::init_for_tests();
        let server = NatsServer::start().expect("a nats-server >= 2.10 (run scripts/install-nats-server)");
        let client = bus::connect(&Self::settings_for(server.url())).await.expect("connect to nats-server");
        let js = bus::jetstream(client);
        bus::ensure_topology(&js, &config).await.expect("topology");
        TestBroker { server, publisher: Publisher::new(js.clone()), js }
    }

    fn settings_for(url: &str) -> NatsConnection {
        NatsConnection::unauthenticated(url, "e2e-tests")
    }

    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The latest desired ticket of every group key.
    pub async fn desired_tickets(&self) -> Vec<DesiredTicket> {
        let mut tickets: Vec<DesiredTicket> = self
            .stream_payloads(topology::DESIRED_TICKETS)
            .await
            .iter()
            .map(|p| DesiredTicket::from_json(p).expect("a valid desired ticket"))
            .collect();
        tickets.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        tickets
    }

    /// Every ticket change published so far, in order.
    pub async fn ticket_changes(&self) -> Vec<TicketChange> {
        self.stream_payloads(topology::TICKET_CHANGES)
            .await
            .iter()
            .map(|p| TicketChange::from_json(p).expect("a valid ticket change"))
            .collect()
    }

    /// Every dead letter so far.
    pub async fn dead_letters(&self) -> Vec<bus::dead_letter::DeadLetter> {
        bus::dead_letter::list(&self.js).await.expect("read dead letters")
    }

    /// Messages currently stored in a stream.
    pub async fn stream_messages(&self, stream: &str) -> u64 {
        let mut stream = self.js.get_stream(stream).await.expect("stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// The payloads currently stored in a stream, oldest first.
    pub async fn stream_payloads(&self, name: &str) -> Vec<bytes::Bytes> {
        let messages = topology::stored_messages(&self.js, name).await.expect("read the stream");
        messages.into_iter().map(|message| message.payload).collect()
    }

    /// Waits until the durable consumer has nothing pending or in flight.
    pub async fn wait_until_drained(&self, consumer: &str, timeout: Duration) {
        let (stream, _) =
            topology::consumer_config(&TopologyConfig::default(), consumer).expect("known consumer");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut handle = self
                .js
                .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(consumer, stream)
                .await
                .expect("consumer");
            let info = handle.info().await.expect("consumer info");
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{consumer} not drained after {timeout:?}: {} pending, {} in flight",
                info.num_pending,
                info.num_ack_pending
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits for `check` to hold, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
