//! NATS: the service's own connection settings and user, JetStream, the server's version and the
//! topology as `bus::topology` declares it (verify mode: the services' start-up check, which
//! reads stream, consumer and bucket info and writes nothing).

use service_kit::{NatsArgs, TopologyArgs};

use super::{Check, vendor};

/// The oldest server the topology's settings need.
pub const MIN_VERSION: (u64, u64) = (2, 10);

/// `2.10.4`, `v2.11.0-RC.1` → (2, 10), (2, 11).
pub fn parse_version(text: &str) -> Option<(u64, u64)> {
    let text = text.trim().trim_start_matches('v');
    let mut parts = text.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub fn version_check(service: &str, version: &str) -> Check {
    let name = format!("nats[{service}]: server version ≥ 2.10");
    match parse_version(version) {
        Some(found) if found >= MIN_VERSION => Check::pass(name, vendor(version)),
        Some(_) => Check::fail(
            name,
            format!("the server is {}", vendor(version)),
            "upgrade nats-server to 2.10 or newer (the streams use settings older servers refuse)",
        ),
        None => Check::fail(
            name,
            format!("the server reports version {:?}", vendor(version)),
            "check that --nats-url points at a nats-server",
        ),
    }
}

/// The topology verify's answer as a check.
pub fn topology_check(
    service: &str,
    verified: Result<&bus::topology::TopologyReport, &str>,
    replicas: usize,
) -> Check {
    let name = format!("nats[{service}]: topology");
    match verified {
        Ok(report) => Check::pass(
            name,
            format!(
                "{} stream(s), {} consumer(s), {} bucket(s) as configured ({replicas} replica(s))",
                report.streams.len(),
                report.consumers.len(),
                report.buckets.len()
            ),
        ),
        Err(error) => Check::fail(
            name,
            vendor(error),
            "run `infra-tickets topology --apply` as the NATS admin with the same --stream-replicas and limits (or fix this service's NATS permissions if it names a permission)",
        ),
    }
}

/// Connects as the service, then checks JetStream, the version and the topology.
pub async fn checks(service: &str, nats: &NatsArgs, topology: &TopologyArgs) -> Vec<Check> {
    let settings = nats.settings(service);
    let connect = format!("nats[{service}]: connects");
    let client = match bus::connect(&settings).await {
        Ok(client) => client,
        Err(error) => {
            return vec![Check::fail(
                connect,
                vendor(&error.to_string()),
                "check --nats-url, the credentials (--nats-user/--nats-password, --nats-credentials, --nats-token, --nats-nkey-seed) and TLS settings",
            )];
        }
    };
    let mut out = vec![Check::pass(connect, format!("as {}", describe_user(nats)))];
    out.push(version_check(service, &client.server_info().version));
    let js = bus::jetstream(client);
    // Asked with a stream info request, which every service's user may make (deploy/nats/auth.conf
    // grants STREAM.INFO, not the account info of $JS.API.INFO): any answer, "not found" too, is
    // JetStream answering.
    let jetstream = format!("nats[{service}]: JetStream enabled");
    match js.get_stream(bus::topology::RAW_EVENTS).await {
        Ok(_) => out.push(Check::pass(jetstream, "answers")),
        Err(error)
            if matches!(
                error.kind(),
                async_nats::jetstream::context::GetStreamErrorKind::JetStream(e)
                    if e.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            out.push(Check::pass(jetstream, "answers"))
        }
        Err(error) => {
            out.push(Check::fail(
                jetstream,
                vendor(&error.to_string()),
                "enable JetStream on the server (`jetstream {}` in its config, or -js), and let this user request $JS.API.STREAM.INFO.*",
            ));
            return out;
        }
    }
    let config = bus::topology::TopologyConfig { mode: bus::TopologyMode::Verify, ..topology.config() };
    // Verify waits for what it does not find yet (the services wait for the topology Job);
    // doctor first asks once for each piece, so a missing one is reported at once.
    let missing = missing_pieces(&js, &config).await;
    if !missing.is_empty() {
        out.push(Check::fail(
            format!("nats[{service}]: topology"),
            format!("missing: {}", vendor(&missing.join(", "))),
            "run `infra-tickets topology --apply` as the NATS admin with the same --stream-replicas and limits",
        ));
        return out;
    }
    let verified = bus::topology::ensure_topology(&js, &config).await;
    let error = verified.as_ref().err().map(|e| e.to_string());
    out.push(topology_check(
        service,
        verified.as_ref().map_err(|_| error.as_deref().unwrap_or_default()),
        config.replicas,
    ));
    out
}

async fn missing_pieces(
    js: &async_nats::jetstream::Context,
    config: &bus::topology::TopologyConfig,
) -> Vec<String> {
    let mut missing = Vec::new();
    for stream in bus::topology::stream_configs(config) {
        if js.get_stream(&stream.name).await.is_err() {
            missing.push(format!("stream {}", stream.name));
        }
    }
    for name in [bus::topology::TRIAGE, bus::topology::JIRA_WRITER, bus::topology::NOTIFIER] {
        let Some((stream, _)) = bus::topology::consumer_config(config, name) else { continue };
        let found = js
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(name, stream)
            .await;
        if found.is_err() {
            missing.push(format!("consumer {name}"));
        }
    }
    for bucket in bus::topology::bucket_configs(config) {
        if js.get_key_value(&bucket.bucket).await.is_err() {
            missing.push(format!("bucket {}", bucket.bucket));
        }
    }
    for store in bus::topology::object_store_configs(config) {
        if js.get_stream(&store.name).await.is_err() {
            missing.push(format!("object store {}", store.name));
        }
    }
    missing
}

fn describe_user(nats: &NatsArgs) -> String {
    match (&nats.nats_user, &nats.nats_credentials, &nats.nats_token, &nats.nats_nkey_seed) {
        (Some(user), _, _, _) => format!("user {}", vendor(user)),
        (_, Some(_), _, _) => "a credentials file".into(),
        (_, _, Some(_), _) => "a token".into(),
        (_, _, _, Some(_)) => "an NKey".into(),
        _ => "no user (unauthenticated)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_2_10_fail_with_the_upgrade_named() {
        assert!(version_check("triage", "2.10.4").ok);
        assert!(version_check("triage", "v2.11.0-RC.1").ok);
        assert!(version_check("triage", "3.0.0").ok);
        let old = version_check("triage", "2.9.25");
        assert!(!old.ok && old.remedy.contains("2.10"), "{old:?}");
        assert!(!version_check("triage", "banana").ok);
    }
}
