//! The NATS plumbing against a real nats-server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::consumer::{self, ConsumerOptions, Delivery, ErrorClass, Handler};
use bus::topology::{self, TopologyConfig};
use bus::{Classify, Outgoing, Publisher, Readiness};
use local_nats::NatsServer;
use tokio_util::sync::CancellationToken;

struct Broker {
    _server: NatsServer,
    js: async_nats::jetstream::Context,
    publisher: Publisher,
}

async fn broker(config: TopologyConfig) -> Broker {
    let server = NatsServer::start().expect("a nats-server >= 2.10 (run scripts/install-nats-server)");
    let client =
        bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "bus-tests")).await.unwrap();
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &config).await.unwrap();
    Broker { _server: server, publisher: Publisher::new(js.clone()), js }
}

fn fast_options(stage: &str) -> ConsumerOptions {
    ConsumerOptions {
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_millis(400),
        fetch_wait: Duration::from_millis(200),
        ..ConsumerOptions::new(stage)
    }
}

#[derive(Debug)]
enum TestError {
    Transient,
    Malformed(String),
    /// Its formatting panics: a bug on the settle path, outside the handler.
    UnprintablePanics,
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestError::Transient => write!(f, "transient: try again"),
            TestError::Malformed(text) => write!(f, "malformed input: {text}"),
            TestError::UnprintablePanics => panic!("formatting the error failed"),
        }
    }
}

impl std::error::Error for TestError {}

impl Classify for TestError {
    fn class(&self) -> ErrorClass {
        match self {
            TestError::Transient => ErrorClass::Retry { after: None },
            TestError::Malformed(_) | TestError::UnprintablePanics => ErrorClass::DeadLetter,
        }
    }
}

/// A JIRA 400 answered by a proxy as a multi-line HTML page (our own text, after the shape of the
/// HTML error pages reported in "Jira REST API returns HTML instead of JSON" threads on
/// community.atlassian.com): CR LF, tabs and a NUL.
const HTML_400: &str = "JIRA refused create issue with 400: <!DOCTYPE html>\r\n<html>\n<head>\n\t<title>400 Bad Request</title>\n</head>\n<body><h1>Bad Request</h1>\n<p>The request could not be understood.\u{0}</p>\n</body>\n</html>\n";

/// Records payloads; fails as the payload says (`fail-once`, `fail-always`, `bad`, `slow`).
#[derive(Default)]
struct Recorder {
    handled: Mutex<Vec<(String, u64)>>,
    attempts: Mutex<BTreeMap<String, usize>>,
    traceparents: Mutex<Vec<Option<String>>>,
    in_flight: AtomicUsize,
}

impl Handler for Recorder {
    type Error = TestError;

    async fn handle(&self, delivery: &Delivery) -> Result<(), TestError> {
        let body = String::from_utf8_lossy(delivery.payload()).to_string();
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(body.clone()).or_default();
            *n += 1;
            *n
        };
        self.traceparents.lock().unwrap().push(delivery.header("traceparent").map(str::to_owned));
        if body.starts_with("fail-once") && attempt == 1 {
            return Err(TestError::Transient);
        }
        if body.starts_with("fail-always") {
            return Err(TestError::Transient);
        }
        if body.starts_with("bad") {
            return Err(TestError::Malformed("not JSON".into()));
        }
        if body.starts_with("html") {
            return Err(TestError::Malformed(HTML_400.into()));
        }
        if body.starts_with("unprintable") {
            return Err(TestError::UnprintablePanics);
        }
        if body.starts_with("panic") {
            panic!("boom");
        }
        if body.starts_with("slow") {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        self.handled.lock().unwrap().push((body, delivery.delivered()));
        Ok(())
    }
}

fn start(
    broker: &Broker,
    handler: Arc<Recorder>,
    options: ConsumerOptions,
) -> (CancellationToken, tokio::task::JoinHandle<()>, Readiness) {
    let shutdown = CancellationToken::new();
    let health = Readiness::new();
    let js = broker.js.clone();
    let publisher = broker.publisher.clone();
    let (token, h) = (shutdown.clone(), health.clone());
    let task = tokio::spawn(async move {
        let consumer = topology::pull_consumer(&js, topology::TRIAGE).await.unwrap();
        consumer::run(consumer, handler, publisher, options, h, token).await.unwrap();
    });
    (shutdown, task, health)
}

async fn publish_raw(
    broker: &Broker,
    body: &str,
    id: Option<&str>,
) -> async_nats::jetstream::publish::PublishAck {
    let mut message =
        Outgoing::new(format!("events.snyk.snyk_project_snapshot.{}", body.len()), body.to_owned());
    message.message_id = id.map(str::to_owned);
    broker.publisher.publish(message).await.unwrap()
}

async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn dead_letters(broker: &Broker) -> Vec<bus::dead_letter::DeadLetter> {
    bus::dead_letter::list(&broker.js).await.unwrap()
}

#[tokio::test]
async fn round_trip_and_a_resent_event_is_stored_once() {
    let broker = broker(TopologyConfig::default()).await;
    let first = publish_raw(&broker, "hello", Some("snyk:org:p1:v1")).await;
    let again = publish_raw(&broker, "hello", Some("snyk:org:p1:v1")).await;
    assert!(again.duplicate);
    assert_eq!(first.sequence, again.sequence);

    let recorder = Arc::new(Recorder::default());
    let (shutdown, task, health) = start(&broker, recorder.clone(), fast_options("triage"));
    eventually("one message handled", || recorder.handled.lock().unwrap().len() == 1).await;
    assert!(health.is_ready());
    shutdown.cancel();
    task.await.unwrap();

    let consumer_info = broker
        .js
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            topology::TRIAGE,
            topology::RAW_EVENTS,
        )
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(consumer_info.num_ack_pending, 0, "acked");
    assert_eq!(consumer_info.num_pending, 0);
    assert_eq!(recorder.handled.lock().unwrap().clone(), vec![("hello".to_owned(), 1)]);
}

#[tokio::test]
async fn retryable_errors_are_redelivered_and_permanent_ones_dead_lettered() {
    let broker = broker(TopologyConfig { max_deliver: 3, ..TopologyConfig::default() }).await;
    publish_raw(&broker, "fail-once", Some("a")).await;
    publish_raw(&broker, "bad input", Some("b")).await;
    publish_raw(&broker, "fail-always", Some("c")).await;
    publish_raw(&broker, "panic now", Some("d")).await;

    let recorder = Arc::new(Recorder::default());
    let (shutdown, task, _) = start(&broker, recorder.clone(), fast_options("triage"));
    eventually("the retried message handled", || {
        recorder.handled.lock().unwrap().iter().any(|(b, d)| b == "fail-once" && *d == 2)
    })
    .await;
    let mut letters = Vec::new();
    for _ in 0..100 {
        letters = dead_letters(&broker).await;
        if letters.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(letters.len(), 3, "bad, exhausted and panicked: {letters:?}");
    let by_payload = |p: &str| letters.iter().find(|l| l.payload.starts_with(p.as_bytes())).unwrap().clone();
    let bad = by_payload("bad");
    assert_eq!(bad.stage, "triage");
    assert_eq!(bad.class, "permanent");
    assert!(bad.reason.contains("malformed input: not JSON"), "{}", bad.reason);
    assert_eq!(bad.deliveries, 1);
    assert_eq!(bad.original_subject, "events.snyk.snyk_project_snapshot.9");
    assert_eq!(bad.original_stream, "RAW_EVENTS");
    assert!(bad.headers.get("traceparent").is_some(), "original headers kept");
    assert_eq!(bad.headers.get("Itk-Original-Msg-Id").map(|v| v.as_str()), Some("b"));

    let exhausted = by_payload("fail-always");
    assert_eq!(exhausted.class, "exhausted");
    assert_eq!(exhausted.deliveries, 3);
    assert!(exhausted.reason.contains("gave up after 3 deliveries"), "{}", exhausted.reason);
    assert_eq!(recorder.attempts.lock().unwrap()["fail-always"], 3);

    let panicked = by_payload("panic");
    assert!(panicked.reason.contains("handler panicked: boom"), "{}", panicked.reason);
}

#[tokio::test]
async fn a_redriven_dead_letter_is_processed() {
    let broker = broker(TopologyConfig::default()).await;
    publish_raw(&broker, "bad", Some("x")).await;
    let recorder = Arc::new(Recorder::default());
    let (shutdown, task, _) = start(&broker, recorder.clone(), fast_options("triage"));
    let mut letters = Vec::new();
    for _ in 0..100 {
        letters = dead_letters(&broker).await;
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(letters.len(), 1);
    // The redriven copy fails the same way: it comes back as a new dead letter, proving it
    // was delivered again (a fixed handler would process it).
    let sequence = bus::dead_letter::redrive(&broker.publisher, letters[0].sequence).await.unwrap();
    assert!(sequence.is_some());
    eventually("the redriven message handled again", || recorder.attempts.lock().unwrap()["bad"] == 2).await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_during_busy_work_loses_nothing() {
    let broker =
        broker(TopologyConfig { ack_wait: Duration::from_secs(2), ..TopologyConfig::default() }).await;
    let total = 60;
    let messages: Vec<Outgoing> = (0..total)
        .map(|i| {
            Outgoing::new("events.snyk.snyk_project_snapshot.x", format!("slow-{i}")).with_id(format!("s{i}"))
        })
        .collect();
    broker.publisher.publish_all(messages).await.unwrap();

    let recorder = Arc::new(Recorder::default());
    let options = ConsumerOptions { concurrency: 8, ..fast_options("triage") };
    let (shutdown, task, _) = start(&broker, recorder.clone(), options.clone());
    eventually("work in flight", || recorder.in_flight.load(Ordering::SeqCst) > 0).await;
    shutdown.cancel();
    task.await.unwrap();
    let after_first = recorder.handled.lock().unwrap().len();
    assert!(after_first < total, "stopped early ({after_first} of {total})");
    assert_eq!(recorder.in_flight.load(Ordering::SeqCst), 0, "in-flight work finished before returning");

    // A new process picks up the rest; every message is handled, none lost.
    let (shutdown, task, _) = start(&broker, recorder.clone(), options);
    eventually("all handled", || {
        let handled = recorder.handled.lock().unwrap();
        let distinct: std::collections::BTreeSet<_> = handled.iter().map(|(b, _)| b.clone()).collect();
        distinct.len() == total
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let handled = recorder.handled.lock().unwrap();
    assert_eq!(handled.len(), total, "each handled once: acked work is not redelivered");
}

#[tokio::test]
async fn topology_set_up_twice_leaves_the_same_configuration() {
    let broker = broker(TopologyConfig::default()).await;
    let snapshot = |js: async_nats::jetstream::Context| async move {
        let mut configs = Vec::new();
        for name in [
            topology::RAW_EVENTS,
            topology::DESIRED_TICKETS,
            topology::TICKET_CHANGES,
            topology::DEAD_LETTERS,
        ] {
            let mut stream = js.get_stream(name).await.unwrap();
            configs.push(serde_json::to_value(&stream.info().await.unwrap().config).unwrap());
        }
        for name in [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER] {
            let (stream, _) = topology::consumer_config(&TopologyConfig::default(), name).unwrap();
            let mut consumer = js
                .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(name, stream)
                .await
                .unwrap();
            configs.push(serde_json::to_value(&consumer.info().await.unwrap().config).unwrap());
        }
        configs
    };
    let before = snapshot(broker.js.clone()).await;
    let report = bus::ensure_topology(&broker.js, &TopologyConfig::default()).await.unwrap();
    assert_eq!(report.buckets.len(), 7);
    assert_eq!(snapshot(broker.js.clone()).await, before);

    // A changed setting is applied to the existing stream.
    let changed = TopologyConfig { raw_max_age: Duration::from_secs(3600), ..TopologyConfig::default() };
    bus::ensure_topology(&broker.js, &changed).await.unwrap();
    let mut raw = broker.js.get_stream(topology::RAW_EVENTS).await.unwrap();
    assert_eq!(raw.info().await.unwrap().config.max_age, Duration::from_secs(3600));
}

/// A stage that republishes what it handles, as triage does.
struct Forwarder {
    publisher: Publisher,
}

impl Handler for Forwarder {
    type Error = bus::BusError;

    async fn handle(&self, delivery: &Delivery) -> Result<(), bus::BusError> {
        let next = Outgoing::new("desired.itk-test", delivery.payload().to_vec()).with_id("fwd-1");
        self.publisher.publish(next).await.map(|_| ())
    }
}

#[tokio::test]
async fn a_traceparent_published_by_one_stage_is_seen_by_the_next() {
    service_kit_free_tracing();
    let broker = broker(TopologyConfig::default()).await;
    let ack = publish_raw(&broker, "traced", Some("t1")).await;
    let raw = broker
        .js
        .get_stream(topology::RAW_EVENTS)
        .await
        .unwrap()
        .get_raw_message(ack.sequence)
        .await
        .unwrap();
    let incoming =
        bus::trace::trace_id_of(Some(&raw.headers)).expect("the first publish carries a traceparent");

    let shutdown = CancellationToken::new();
    let consumer = topology::pull_consumer(&broker.js, topology::TRIAGE).await.unwrap();
    let forwarder = Arc::new(Forwarder { publisher: broker.publisher.clone() });
    let task = tokio::spawn(consumer::run(
        consumer,
        forwarder,
        broker.publisher.clone(),
        fast_options("triage"),
        Readiness::new(),
        shutdown.clone(),
    ));
    let mut desired = broker.js.get_stream(topology::DESIRED_TICKETS).await.unwrap();
    for _ in 0..100 {
        if desired.info().await.unwrap().state.messages == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let forwarded = desired.get_last_raw_message_by_subject("desired.itk-test").await.unwrap();
    assert_eq!(bus::trace::trace_id_of(Some(&forwarded.headers)), Some(incoming));
}

/// The trace test must pass with or without an OpenTelemetry layer; it runs without one here.
fn service_kit_free_tracing() {}

#[tokio::test]
async fn publish_all_pipelines_and_keeps_order() {
    let broker = broker(TopologyConfig::default()).await;
    let messages: Vec<Outgoing> = (0..1000)
        .map(|i| {
            Outgoing::new("events.aws-health.aws_health_event.a", format!("{i}")).with_id(format!("m{i}"))
        })
        .collect();
    let acks = broker.publisher.publish_all(messages.clone()).await.unwrap();
    assert_eq!(acks.len(), 1000);
    assert!(acks.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let again = broker.publisher.publish_all(messages).await.unwrap();
    assert!(again.iter().all(|a| a.duplicate), "re-sent ids are stored once");
}

/// No text can break a message: a multi-line HTML error in the reason, a message id and a header
/// value with CR/LF, and a panic on the settle path each end in a dead letter (or a stored
/// message), and the next message goes through.
#[tokio::test]
async fn unsafe_text_and_a_panic_after_the_handler_lose_no_message() {
    let broker = broker(TopologyConfig { max_deliver: 3, ..TopologyConfig::default() }).await;
    publish_raw(&broker, "html error page", Some("id with\r\nnewline")).await;
    publish_raw(&broker, "unprintable error", Some("u")).await;
    let tagged = Outgoing::new("events.snyk.snyk_project_snapshot.5", "after")
        .with_id("after")
        .with_header("Itk-Note", "line one\nline two");
    broker.publisher.publish(tagged).await.expect("a value with LF is published, not a panic");

    let recorder = Arc::new(Recorder::default());
    let (shutdown, task, _) = start(&broker, recorder.clone(), fast_options("triage"));
    eventually("the next message handled", || {
        recorder.handled.lock().unwrap().iter().any(|(b, _)| b == "after")
    })
    .await;
    let mut letters = Vec::new();
    for _ in 0..100 {
        letters = dead_letters(&broker).await;
        if letters.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(letters.len(), 2, "{letters:?}");
    let by_payload = |p: &str| letters.iter().find(|l| l.payload.starts_with(p.as_bytes())).unwrap().clone();
    let html = by_payload("html");
    assert_eq!((html.class.as_str(), html.deliveries), ("permanent", 1));
    assert!(
        html.reason.starts_with("malformed input: JIRA refused create issue with 400: <!DOCTYPE html> <html> <head> <title>400 Bad Request</title>"),
        "{}",
        html.reason
    );
    assert!(!html.reason.chars().any(char::is_control), "{:?}", html.reason);
    assert_eq!(html.headers.get("Itk-Original-Msg-Id").map(|v| v.as_str()), Some("id%20with%0D%0Anewline"));
    let unprintable = by_payload("unprintable");
    assert_eq!((unprintable.class.as_str(), unprintable.deliveries), ("permanent", 1));
    assert!(
        unprintable.reason.contains("settling the message panicked: formatting the error failed"),
        "{}",
        unprintable.reason
    );
    assert_eq!(
        recorder.attempts.lock().unwrap()["unprintable error"],
        1,
        "dead-lettered at once, not retried"
    );
}
