//! Commands that look at and act on a running deployment: `topology` and `dlq`.

use std::fmt::Write as _;

use bus::topology::{self, TopologyConfig};
use service_kit::{NatsArgs, TopologyArgs};

async fn jetstream(nats: &NatsArgs) -> Result<async_nats::jetstream::Context, bus::BusError> {
    let client = bus::connect(&nats.settings("infra-tickets-cli")).await?;
    Ok(bus::jetstream(client))
}

/// Applies (creates or updates) or verifies the topology with the settings the services use,
/// and says what it did: the Kubernetes topology Job runs `topology --apply` with an admin user
/// so that the services can run with least-privilege users in `verify` mode.
pub async fn topology_set_up(
    nats: &NatsArgs,
    settings: &TopologyArgs,
    mode: bus::TopologyMode,
) -> anyhow::Result<String> {
    let js = jetstream(nats).await?;
    let config = TopologyConfig { mode, ..settings.config() };
    let report = topology::ensure_topology(&js, &config).await?;
    let verb = match mode {
        bus::TopologyMode::Apply => "applied",
        bus::TopologyMode::Verify => "verified",
    };
    Ok(format!(
        "{verb}: {} stream(s), {} consumer(s), {} bucket(s) at {} replica(s)\n\n",
        report.streams.len(),
        report.consumers.len(),
        report.buckets.len(),
        config.replicas
    ))
}

/// Streams (messages, bytes), consumers (pending, in flight, redelivered) and buckets (keys).
pub async fn topology_report(nats: &NatsArgs) -> anyhow::Result<String> {
    let js = jetstream(nats).await?;
    let mut out = String::new();
    writeln!(out, "{:<18} {:>10} {:>12} {:>10}", "STREAM", "MESSAGES", "BYTES", "REPLICAS")?;
    for config in topology::stream_configs(&TopologyConfig::default()) {
        match js.get_stream(&config.name).await {
            Ok(mut stream) => {
                let info = stream.info().await?;
                writeln!(
                    out,
                    "{:<18} {:>10} {:>12} {:>10}",
                    config.name, info.state.messages, info.state.bytes, info.config.num_replicas
                )?;
            }
            Err(_) => {
                writeln!(out, "{:<18} missing (`infra-tickets topology --apply` creates it)", config.name)?
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<14} {:<16} {:>10} {:>10} {:>12}",
        "CONSUMER", "STREAM", "PENDING", "IN FLIGHT", "REDELIVERED"
    )?;
    for name in [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER] {
        let (stream, _) =
            topology::consumer_config(&TopologyConfig::default(), name).expect("known consumer");
        match js
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(name, stream)
            .await
        {
            Ok(mut consumer) => {
                let info = consumer.info().await?;
                writeln!(
                    out,
                    "{:<14} {:<16} {:>10} {:>10} {:>12}",
                    name, stream, info.num_pending, info.num_ack_pending, info.num_redelivered
                )?;
            }
            Err(_) => writeln!(out, "{name:<14} {stream:<16} missing")?,
        }
    }
    writeln!(out)?;
    writeln!(out, "{:<18} {:>10}", "BUCKET", "KEYS")?;
    for config in topology::bucket_configs(&TopologyConfig::default()) {
        match js.get_key_value(&config.bucket).await {
            Ok(store) => {
                let status = store.status().await?;
                writeln!(out, "{:<18} {:>10}", config.bucket, status.values())?;
            }
            Err(_) => writeln!(out, "{:<18} missing", config.bucket)?,
        }
    }
    for config in topology::object_store_configs(&TopologyConfig::default()) {
        match js.get_stream(&config.name).await {
            // An object is one metadata message and its chunks; the stream's subjects tell them
            // apart only by listing, so the store shows its size instead of its objects.
            Ok(mut stream) => {
                let info = stream.info().await?;
                writeln!(out, "{:<18} {:>10} bytes", config.name, info.state.bytes)?;
            }
            Err(_) => writeln!(out, "{:<18} missing", config.name)?,
        }
    }
    Ok(out)
}

/// One line per dead letter.
pub async fn dlq_list(nats: &NatsArgs) -> anyhow::Result<String> {
    let js = jetstream(nats).await?;
    let letters = bus::dead_letter::list(&js).await?;
    let mut out = String::new();
    writeln!(
        out,
        "{:>8}  {:<14} {:<10} {:>10}  {:<25} REASON",
        "SEQ", "STAGE", "CLASS", "DELIVERIES", "DEAD AT"
    )?;
    for letter in &letters {
        writeln!(
            out,
            "{:>8}  {:<14} {:<10} {:>10}  {:<25} {}",
            letter.sequence,
            letter.stage,
            letter.class,
            letter.deliveries,
            letter.dead_at.get(..25).unwrap_or(&letter.dead_at),
            letter.reason
        )?;
    }
    writeln!(out, "{} dead letter(s)", letters.len())?;
    Ok(out)
}

/// Everything about one dead letter, with its payload.
pub async fn dlq_show(nats: &NatsArgs, sequence: u64) -> anyhow::Result<String> {
    let js = jetstream(nats).await?;
    let Some(letter) = bus::dead_letter::get(&js, sequence).await? else {
        anyhow::bail!("no dead letter with sequence {sequence}");
    };
    let mut out = String::new();
    writeln!(out, "sequence:          {}", letter.sequence)?;
    writeln!(out, "stage:             {}", letter.stage)?;
    writeln!(out, "class:             {}", letter.class)?;
    writeln!(out, "reason:            {}", letter.reason)?;
    writeln!(out, "deliveries:        {}", letter.deliveries)?;
    writeln!(out, "dead at:           {}", letter.dead_at)?;
    writeln!(out, "original subject:  {}", letter.original_subject)?;
    writeln!(out, "original stream:   {} #{}", letter.original_stream, letter.original_sequence)?;
    writeln!(out, "headers:")?;
    let mut headers: Vec<String> = letter
        .original_headers()
        .iter()
        .flat_map(|(name, values)| {
            values.iter().map(move |v| format!("  {}: {}", name.as_ref() as &str, v.as_str()))
        })
        .collect();
    headers.sort();
    for line in headers {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "payload:")?;
    match serde_json::from_slice::<serde_json::Value>(&letter.payload) {
        Ok(json) => writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?,
        Err(_) => writeln!(out, "{}", String::from_utf8_lossy(&letter.payload))?,
    }
    Ok(out)
}

/// Republishes dead letters to their original subjects.
pub async fn dlq_redrive(nats: &NatsArgs, sequences: &[u64], all: bool) -> anyhow::Result<String> {
    let js = jetstream(nats).await?;
    let publisher = bus::Publisher::new(js.clone());
    let targets: Vec<u64> = if all {
        bus::dead_letter::list(&js).await?.iter().map(|l| l.sequence).collect()
    } else {
        sequences.to_vec()
    };
    let mut out = String::new();
    for sequence in targets {
        match bus::dead_letter::redrive(&publisher, sequence).await? {
            Some(new_sequence) => {
                writeln!(out, "redrove dead letter {sequence} (now #{new_sequence} in its stream)")?
            }
            None => writeln!(out, "no dead letter with sequence {sequence}")?,
        }
    }
    Ok(out)
}
