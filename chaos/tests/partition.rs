//! A partition as the chaos suite makes it: the cut node drops out of its peers' replica groups
//! while its clients still reach it, and the cluster heals once it rejoins.

use std::time::Duration;

use bus::topology::TopologyConfig;
use chaos::cluster;
use local_nats::NatsCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_node_leaves_its_peers_keeps_its_clients_and_heals() {
    let nats = NatsCluster::start_partitionable(3).expect("a 3-node cluster");
    let js = cluster::connect(&nats.urls()).await.unwrap();
    let topology = TopologyConfig { replicas: 3, ..TopologyConfig::default() };
    cluster::ensure_topology(&js, &topology, Duration::from_secs(60)).await.unwrap();
    cluster::wait_healthy(&js, 3, Duration::from_secs(60)).await.expect("healthy at start");

    assert!(nats.isolate(2));
    let majority = cluster::connect(nats.nodes[0].url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reason = loop {
        if let Some(reason) = cluster::unhealthy(&majority, 3).await {
            break reason;
        }
        assert!(tokio::time::Instant::now() < deadline, "the peers never saw n3 go");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    println!("while n3 is cut off: {reason}");
    let isolated = async_nats::connect(nats.nodes[2].url()).await.expect("n3 still takes clients");
    isolated.flush().await.expect("and answers them");

    assert!(nats.rejoin(2));
    cluster::wait_healthy(&majority, 3, Duration::from_secs(90)).await.expect("healed after the rejoin");
}
