//! The 3-node NATS cluster as the harness sees it: connecting, setting up the topology at three
//! replicas, knowing when every stream and consumer has a leader and current replicas again, and
//! reading consumer lag.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use bus::topology::{self, TopologyConfig};
use futures_util::StreamExt;

/// The durable consumers whose lag must drain.
pub const CONSUMERS: [&str; 3] = [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER];

pub async fn connect(urls: &str) -> anyhow::Result<jetstream::Context> {
    let client = bus::connect(&bus::NatsConnection::unauthenticated(urls, "chaos-harness")).await?;
    Ok(bus::jetstream(client))
}

/// The topology at three replicas, retried while the cluster elects its JetStream leader.
pub async fn ensure_topology(
    js: &jetstream::Context,
    config: &TopologyConfig,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match bus::ensure_topology(js, config).await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "Topology not set up yet; the cluster may still elect a leader.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => anyhow::bail!("the topology was not set up within {timeout:?}: {error}"),
        }
    }
}

/// Why the cluster is not healthy yet, or `None` when every stream (the KV buckets' too) and
/// every durable consumer has a leader and all its replicas are current.
pub async fn unhealthy(js: &jetstream::Context, replicas: usize) -> Option<String> {
    let mut names = js.stream_names();
    let mut streams = Vec::new();
    while let Some(name) = names.next().await {
        match name {
            Ok(name) => streams.push(name),
            Err(error) => return Some(format!("cannot list streams: {error}")),
        }
    }
    for name in &streams {
        let info = match js.get_stream(name).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => info.clone(),
                Err(error) => return Some(format!("{name}: {error}")),
            },
            Err(error) => return Some(format!("{name}: {error}")),
        };
        if let Some(problem) = group_problem(name, info.cluster.as_ref(), replicas) {
            return Some(problem);
        }
    }
    for name in CONSUMERS {
        let (stream, _) =
            topology::consumer_config(&TopologyConfig::default(), name).expect("a known consumer");
        let consumer: Result<PullConsumer, _> = js.get_consumer_from_stream(name, stream).await;
        match consumer {
            Ok(mut consumer) => match consumer.info().await {
                Ok(info) => {
                    if let Some(problem) = group_problem(name, info.cluster.as_ref(), replicas) {
                        return Some(problem);
                    }
                }
                Err(error) => return Some(format!("consumer {name}: {error}")),
            },
            Err(error) => return Some(format!("consumer {name}: {error}")),
        }
    }
    None
}

fn group_problem(
    name: &str,
    cluster: Option<&jetstream::stream::ClusterInfo>,
    replicas: usize,
) -> Option<String> {
    let Some(cluster) = cluster else { return Some(format!("{name}: no cluster information")) };
    if cluster.leader.is_none() {
        return Some(format!("{name}: no leader"));
    }
    let current = cluster.replicas.iter().filter(|peer| peer.current && !peer.offline).count();
    (current + 1 < replicas).then(|| format!("{name}: {} of {} followers current", current, replicas - 1))
}

/// Waits until [`unhealthy`] says nothing; returns the last reason on timeout.
pub async fn wait_healthy(js: &jetstream::Context, replicas: usize, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match unhealthy(js, replicas).await {
            None => return Ok(()),
            Some(reason) if tokio::time::Instant::now() >= deadline => return Err(reason),
            Some(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Messages not yet delivered and delivered but not acked, per durable consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    pub consumer: String,
    pub pending: u64,
    pub ack_pending: usize,
}

pub async fn consumer_lag(js: &jetstream::Context) -> anyhow::Result<Vec<Lag>> {
    let mut lags = Vec::new();
    for name in CONSUMERS {
        let (stream, _) =
            topology::consumer_config(&TopologyConfig::default(), name).expect("a known consumer");
        let mut consumer: PullConsumer = js.get_consumer_from_stream(name, stream).await?;
        let info = consumer.info().await?;
        lags.push(Lag {
            consumer: name.to_owned(),
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
        });
    }
    Ok(lags)
}

pub fn drained(lags: &[Lag]) -> bool {
    lags.iter().all(|lag| lag.pending == 0 && lag.ack_pending == 0)
}
