//! Two replicas of one intake record the same scope in the `source_contact` bucket of a real
//! nats-server: the record holds the latest of both, so a replica that fails never hides the
//! other's success (and the notifier's silence check sees the source working).

use bus::JsonKv;
use bus::topology::{SOURCE_CONTACT, TopologyConfig};
use contracts::{ContactMode, Source, SourceContact};
use local_nats::NatsServer;
use service_kit::{Clock, ContactLog};

#[tokio::test]
async fn two_replicas_of_an_intake_keep_one_record_with_the_latest_of_both() {
    let server = NatsServer::start().expect("a nats-server >= 2.10 (run scripts/install-nats-server)");
    let client =
        bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "contact-tests")).await.unwrap();
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &TopologyConfig::default()).await.unwrap();
    let clock = Clock::manual("2026-12-01T09:00:00Z".parse().unwrap());
    let replica = || ContactLog::open(&js, Source::AwsHealth, clock.clone());
    let (a, b) = (replica().await.unwrap(), replica().await.unwrap());
    let scope = |log: &ContactLog| log.scope("sqs eu-west-1", ContactMode::Polled, true);

    scope(&a).received(1).await;
    scope(&a).succeeded().await;
    clock.advance(chrono::Duration::minutes(5));
    scope(&b).succeeded().await;
    clock.advance(chrono::Duration::minutes(5));
    // Replica a loses its credentials; b goes on working a minute later.
    scope(&a).failed("AccessDenied").await;
    clock.advance(chrono::Duration::minutes(1));
    scope(&b).succeeded().await;

    let records = JsonKv::<SourceContact>::open(&js, SOURCE_CONTACT).await.unwrap();
    let stored =
        records.get(&SourceContact::key(Source::AwsHealth, "sqs eu-west-1")).await.unwrap().unwrap().value;
    assert_eq!(
        stored.first_seen_at,
        "2026-12-01T09:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()
    );
    assert_eq!(stored.last_success_at, Some("2026-12-01T09:11:00Z".parse().unwrap()));
    assert_eq!(stored.last_event_at, Some("2026-12-01T09:00:00Z".parse().unwrap()), "a's event is kept");
    assert_eq!(stored.last_failure.as_ref().map(|f| f.reason.as_str()), Some("AccessDenied"));
    assert!(!stored.failing(), "b's later success counts: {stored:?}");
}
