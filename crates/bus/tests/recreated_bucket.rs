//! A key-value bucket deleted and set up again counts its revisions on from above the old
//! bucket's, so versions that downstream consumers compare (triage's `upstream_version`) never
//! go back after the state was lost.

use bus::JsonKv;
use bus::topology::{TRIAGE_GROUPS, TopologyConfig};
use local_nats::NatsServer;

#[tokio::test]
async fn a_recreated_bucket_counts_revisions_on_from_above_the_lost_one() {
    let server = NatsServer::start().expect("a nats-server >= 2.10 (run scripts/install-nats-server)");
    let client =
        bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "bus-bucket-tests")).await.unwrap();
    let js = bus::jetstream(client);
    let config = TopologyConfig::default();
    let open = || async { JsonKv::<u32>::open(&js, TRIAGE_GROUPS).await.unwrap() };

    bus::ensure_topology(&js, &config).await.unwrap();
    let first = open().await.put("group", &1).await.unwrap();
    assert!(first > 1 << 20, "a new bucket starts high: {first}");
    let second = open().await.put("group", &2).await.unwrap();
    assert_eq!(second, first + 1, "then counts one by one");

    bus::ensure_topology(&js, &config).await.unwrap();
    assert_eq!(open().await.put("group", &3).await.unwrap(), second + 1, "setting up again changes nothing");

    // Lost, then set up again a second later: revisions go on above the old ones.
    js.delete_key_value(TRIAGE_GROUPS).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    bus::ensure_topology(&js, &config).await.unwrap();
    let after_loss = open().await.put("group", &4).await.unwrap();
    assert!(after_loss > second + 1, "{after_loss} after {}", second + 1);
}
