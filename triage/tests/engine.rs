//! The triage engine against a real nats-server, with a small policy: state folding, change
//! detection, concurrency, and recovery of tickets left pending by a crash.

use std::sync::Arc;

use bus::topology::{self, TopologyConfig};
use bus::{JsonKv, Publisher};
use chrono::{DateTime, Utc};
use contracts::{DesiredTicket, GroupKey, Lane, PayloadKind, RawEvent, Source, TicketBody, TicketState};
use local_nats::NatsServer;
use serde::{Deserialize, Serialize};
use triage::engine::{Engine, GroupRecord};
use triage_policy::{Policy, PolicyError};

/// Counts findings per image: payload `{"image": "...", "findings": n}`; resolved at 0.
struct CountingPolicy;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    image: String,
    findings: u64,
}

impl Policy for CountingPolicy {
    type State = Counts;

    fn state_key(&self, event: &RawEvent) -> Result<String, PolicyError> {
        let image =
            event.payload["image"].as_str().ok_or_else(|| PolicyError::malformed("event", "no image"))?;
        Ok(triage_policy::state_key("test", &[image]))
    }

    fn apply(&self, state: &mut Counts, event: &RawEvent, _now: DateTime<Utc>) -> Result<(), PolicyError> {
        state.image = event.payload["image"].as_str().unwrap_or_default().to_owned();
        state.findings = event.payload["findings"]
            .as_u64()
            .ok_or_else(|| PolicyError::malformed("event", "no findings"))?;
        Ok(())
    }

    fn desired(&self, state: &Counts, _now: DateTime<Utc>) -> Vec<DesiredTicket> {
        vec![
            DesiredTicket {
                schema: contracts::SCHEMA_VERSION,
                group_key: GroupKey::new(Source::Snyk, ["ecr", &state.image]),
                source: Source::Snyk,
                team: "payments".into(),
                lane: Lane::P3,
                summary: format!("{} findings in {}", state.findings, state.image),
                body: TicketBody::default(),
                due: None,
                state: if state.findings == 0 { TicketState::Resolved } else { TicketState::Open },
                labels: vec![],
                links: vec![],
                content_hash: String::new(),
                upstream_version: 0,
            }
            .seal(),
        ]
    }
}

fn event(image: &str, findings: u64) -> RawEvent {
    RawEvent::new(
        Source::Snyk,
        PayloadKind::SnykProjectSnapshot,
        "test",
        format!("{image}:{findings}"),
        serde_json::json!({"image": image, "findings": findings}),
        Utc::now(),
    )
}

struct Setup {
    _server: NatsServer,
    js: async_nats::jetstream::Context,
    engine: Arc<Engine<CountingPolicy>>,
}

async fn setup() -> Setup {
    let server = NatsServer::start().expect("nats-server >= 2.10");
    let client = bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "t")).await.unwrap();
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &TopologyConfig::default()).await.unwrap();
    let groups = JsonKv::open(&js, topology::TRIAGE_GROUPS).await.unwrap();
    let engine = Arc::new(Engine::new(CountingPolicy, groups, Publisher::new(js.clone())));
    Setup { _server: server, js, engine }
}

async fn desired(js: &async_nats::jetstream::Context) -> Vec<DesiredTicket> {
    let messages = topology::stored_messages(js, topology::DESIRED_TICKETS).await.unwrap();
    messages.iter().map(|m| DesiredTicket::from_json(&m.payload).unwrap()).collect()
}

#[tokio::test]
async fn publishes_only_changes_with_increasing_versions() {
    let s = setup().await;
    let now = Utc::now();
    assert_eq!(s.engine.process(&event("app", 3), now).await.unwrap(), 1);
    assert_eq!(s.engine.process(&event("app", 3), now).await.unwrap(), 0, "same content: nothing");
    assert_eq!(s.engine.process(&event("app", 0), now).await.unwrap(), 1, "resolved");
    let tickets = desired(&s.js).await;
    assert_eq!(tickets.len(), 1, "the stream keeps the latest per group");
    assert_eq!(tickets[0].state, TicketState::Resolved);
    assert!(tickets[0].upstream_version > 1);
}

#[tokio::test]
async fn concurrent_events_of_one_group_all_land() {
    let s = setup().await;
    let now = Utc::now();
    let mut tasks = Vec::new();
    for n in 1..=20u64 {
        let engine = s.engine.clone();
        tasks.push(tokio::spawn(async move { engine.process(&event("busy", n), now).await.unwrap() }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let groups: JsonKv<GroupRecord<Counts>> = JsonKv::open(&s.js, topology::TRIAGE_GROUPS).await.unwrap();
    let record = groups.get(&triage_policy::state_key("test", &["busy"])).await.unwrap().unwrap();
    assert!(record.value.pending.is_empty());
    let tickets = desired(&s.js).await;
    let last = &tickets[0];
    assert_eq!(last.summary, format!("{} findings in busy", record.value.stored.state.findings));
}

#[tokio::test]
async fn tickets_left_pending_by_a_crash_are_published_by_the_next_run() {
    let s = setup().await;
    let now = Utc::now();
    // A run that wrote its state and died before publishing: the record holds the ticket as
    // pending and the stream has nothing.
    let groups: JsonKv<GroupRecord<Counts>> = JsonKv::open(&s.js, topology::TRIAGE_GROUPS).await.unwrap();
    let state = Counts { image: "crashy".into(), findings: 2 };
    let ticket = CountingPolicy.desired(&state, now).remove(0);
    let mut record = GroupRecord::<Counts>::default();
    record.stored.state = state;
    record.stored.mark_published(&ticket);
    record.pending = vec![ticket];
    groups.create(&triage_policy::state_key("test", &["crashy"]), &record).await.unwrap();
    assert!(desired(&s.js).await.is_empty());

    // The redelivered event changes nothing, yet the pending ticket is published.
    s.engine.process(&event("crashy", 2), now).await.unwrap();
    let tickets = desired(&s.js).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].summary, "2 findings in crashy");
    let after = groups.get(&triage_policy::state_key("test", &["crashy"])).await.unwrap().unwrap();
    assert!(after.value.pending.is_empty());
}
