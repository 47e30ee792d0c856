//! Every stream, consumer and key-value bucket, in one place, set up by one idempotent
//! function: [`ensure_topology`]. Code is the source of truth; running it twice changes nothing,
//! and running it after a change of settings updates what exists.

use std::time::Duration;

use async_nats::jetstream::context::{CreateKeyValueErrorKind, CreateStreamErrorKind};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer, kv, stream};
use contracts::subjects;

use crate::BusError;

/// Raw events as received, kept for replay.
pub const RAW_EVENTS: &str = "RAW_EVENTS";
/// The latest desired state per group key.
pub const DESIRED_TICKETS: &str = "DESIRED_TICKETS";
/// What jira-writer did in JIRA.
pub const TICKET_CHANGES: &str = "TICKET_CHANGES";
/// Messages a stage gave up on, with the reason.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";

/// Durable consumers, named after the service that runs them.
pub const TRIAGE: &str = "triage";
pub const JIRA_WRITER: &str = "jira-writer";
pub const NOTIFIER: &str = "notifier";

/// Triage's state per group (the inputs behind one ticket).
pub const TRIAGE_GROUPS: &str = "triage_groups";
/// jira-writer's ledger: group key → JIRA issue.
pub const JIRA_LEDGER: &str = "jira_ledger";
/// notifier's markers: one per message sent (or being sent).
pub const NOTIFIER_MARKERS: &str = "notifier_markers";
/// Intakes' cursors and the upstream objects they have seen (kept until deleted).
pub const INTAKE_STATE: &str = "intake_state";
/// Each intake's last contact with its upstream, per source and scope (contracts::SourceContact).
pub const SOURCE_CONTACT: &str = "source_contact";
/// Webhook delivery ids already handled, for deduplication; each expires after
/// [`TopologyConfig::webhook_delivery_max_age`].
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries";
/// Object store: the last good copy of each exploitation feed triage read from a URL (CISA KEV,
/// EPSS), so that a triage started while the feed's site is down starts from it.
pub const FEEDS: &str = "feeds";

/// What a service does with the topology at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopologyMode {
    /// Create or update every stream, consumer and bucket: needs JetStream admin rights (one
    /// local server, the tests, compose without auth, the topology Job).
    #[default]
    Apply,
    /// Only check that each exists as this build expects, with read-only JetStream API calls
    /// (`$JS.API.STREAM.INFO.*`, `$JS.API.CONSUMER.INFO.*`): a service with a least-privilege
    /// user. Waits while something is missing (the topology Job may still be running).
    Verify,
}

/// Sizes, ages and delivery settings. Defaults suit one local server; production sets
/// `replicas = 3` on a cluster.
#[derive(Debug, Clone)]
pub struct TopologyConfig {
    pub replicas: usize,
    /// How long raw events are kept for replay.
    pub raw_max_age: Duration,
    /// Size cap of the raw stream in bytes (-1: none); the oldest go first.
    pub raw_max_bytes: i64,
    /// How long a `Nats-Msg-Id` is remembered.
    pub duplicate_window: Duration,
    pub changes_max_age: Duration,
    pub dead_letter_max_age: Duration,
    /// A consumer redelivers a message not acked (nor signalled in progress) within this.
    pub ack_wait: Duration,
    /// Deliveries before a message is given up on (and dead-lettered).
    pub max_deliver: i64,
    /// Messages in flight across all replicas of one consumer.
    pub max_ack_pending: i64,
    /// How long a webhook delivery id is remembered (redeliveries come within hours).
    pub webhook_delivery_max_age: Duration,
    /// Create and update, or only verify.
    pub mode: TopologyMode,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            replicas: 1,
            raw_max_age: Duration::from_secs(30 * 24 * 3600),
            raw_max_bytes: -1,
            duplicate_window: Duration::from_secs(15 * 60),
            changes_max_age: Duration::from_secs(30 * 24 * 3600),
            dead_letter_max_age: Duration::from_secs(90 * 24 * 3600),
            ack_wait: Duration::from_secs(30),
            max_deliver: 10,
            max_ack_pending: 1_000,
            webhook_delivery_max_age: Duration::from_secs(7 * 24 * 3600),
            mode: TopologyMode::Apply,
        }
    }
}

/// The stream configurations this build expects.
pub fn stream_configs(config: &TopologyConfig) -> Vec<stream::Config> {
    let base = stream::Config {
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        ..Default::default()
    };
    vec![
        stream::Config {
            name: RAW_EVENTS.into(),
            description: Some("Raw events as the intakes received them, kept for replay.".into()),
            subjects: vec![subjects::RAW_EVENTS.into()],
            max_age: config.raw_max_age,
            max_bytes: config.raw_max_bytes,
            ..base.clone()
        },
        stream::Config {
            name: DESIRED_TICKETS.into(),
            description: Some("The latest desired ticket state per group key.".into()),
            subjects: vec![subjects::DESIRED_TICKETS.into()],
            max_messages_per_subject: 1,
            ..base.clone()
        },
        stream::Config {
            name: TICKET_CHANGES.into(),
            description: Some("Changes jira-writer made in JIRA.".into()),
            subjects: vec![subjects::TICKET_CHANGES.into()],
            max_age: config.changes_max_age,
            ..base.clone()
        },
        stream::Config {
            name: DEAD_LETTERS.into(),
            description: Some("Messages a stage gave up on, with the reason.".into()),
            subjects: vec![subjects::DEAD_LETTERS.into()],
            max_age: config.dead_letter_max_age,
            ..base
        },
    ]
}

/// The durable consumer of a stage: `(stream, config)`.
pub fn consumer_config(
    config: &TopologyConfig,
    name: &str,
) -> Option<(&'static str, consumer::pull::Config)> {
    let stream = match name {
        TRIAGE => RAW_EVENTS,
        JIRA_WRITER => DESIRED_TICKETS,
        NOTIFIER => TICKET_CHANGES,
        _ => return None,
    };
    Some((
        stream,
        consumer::pull::Config {
            durable_name: Some(name.into()),
            description: Some(format!("The {name} service.")),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            max_deliver: config.max_deliver,
            max_ack_pending: config.max_ack_pending,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        },
    ))
}

/// The key-value bucket configurations this build expects.
pub fn bucket_configs(config: &TopologyConfig) -> Vec<kv::Config> {
    let bucket = |name: &str, description: &str, history: i64| kv::Config {
        bucket: name.into(),
        description: description.into(),
        history,
        num_replicas: config.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    vec![
        bucket(TRIAGE_GROUPS, "Triage state per group: the inputs behind one ticket.", 1),
        bucket(JIRA_LEDGER, "Group key to JIRA issue, and the field values last written.", 5),
        bucket(NOTIFIER_MARKERS, "One marker per Slack message sent or being sent.", 1),
        bucket(INTAKE_STATE, "Intake cursors and the upstream objects they have seen.", 1),
        bucket(SOURCE_CONTACT, "Each intake's last contact and event per source and scope.", 1),
        kv::Config {
            max_age: config.webhook_delivery_max_age,
            ..bucket(WEBHOOK_DELIVERIES, "Webhook delivery ids already handled.", 1)
        },
    ]
}

/// The object stores this build expects, as the streams that hold them (`OBJ_<bucket>`, made as
/// async-nats makes them: chunk and metadata subjects, rollup, direct get, discard new).
/// Created and updated through the stream API, so that a change of replicas updates the store
/// instead of failing as `create_object_store` on an existing bucket would.
pub fn object_store_configs(config: &TopologyConfig) -> Vec<stream::Config> {
    let store = |bucket: &str, description: &str, max_bytes: i64| stream::Config {
        name: format!("OBJ_{bucket}"),
        description: Some(description.into()),
        subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        max_bytes,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        // What the server sets when none is given (async-nats sends none), written out so that
        // verify compares like with like.
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    // The EPSS CSV is about 10 MB, the KEV catalog about 1.5 MB; a new copy is written before the
    // old one's chunks are purged, so the cap holds two of each with room to grow.
    vec![store(FEEDS, "The last good copy of each exploitation feed triage read.", 128 * 1024 * 1024)]
}

/// What [`ensure_topology`] set up.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyReport {
    pub streams: Vec<String>,
    pub consumers: Vec<String>,
    pub buckets: Vec<String>,
}

/// Creates or updates every stream, consumer and bucket (idempotent); in
/// [`TopologyMode::Verify`] only checks them ([`verify_topology`]).
pub async fn ensure_topology(
    js: &jetstream::Context,
    config: &TopologyConfig,
) -> Result<TopologyReport, BusError> {
    if config.mode == TopologyMode::Verify {
        return verify_topology(js, config).await;
    }
    let mut report = TopologyReport { streams: vec![], consumers: vec![], buckets: vec![] };
    for stream_config in stream_configs(config) {
        report.streams.push(apply_stream(js, "stream", stream_config).await?);
    }
    for name in [TRIAGE, JIRA_WRITER, NOTIFIER] {
        let (stream, consumer_config) = consumer_config(config, name).expect("a known consumer");
        until_answered(
            &format!("consumer {name} on {stream}"),
            || js.create_consumer_on_stream(consumer_config.clone(), stream),
            |e| matches!(e.kind(), ConsumerErrorKind::TimedOut),
        )
        .await?;
        report.consumers.push(name.to_owned());
    }
    for bucket_config in bucket_configs(config) {
        let name = bucket_config.bucket.clone();
        until_answered(
            &format!("key-value bucket {name}"),
            || js.create_or_update_key_value(bucket_config.clone()),
            bucket_unanswered,
        )
        .await?;
        start_revisions_after_any_earlier_bucket(js, &name).await?;
        report.buckets.push(name);
    }
    for store_config in object_store_configs(config) {
        report.buckets.push(apply_stream(js, "object store", store_config).await?);
    }
    Ok(report)
}

/// Revisions of a bucket that are newer than those of any bucket of the same name before it.
///
/// Triage publishes each desired ticket with the revision of the group state it wrote, and the
/// writer ignores a desired ticket older than the one it applied (a redelivery overtaken by a
/// newer state). A bucket deleted and created again would count from 1 again, and every state
/// rebuilt by a replay, and every real change after it, would look stale to the writer until the
/// new revisions caught up. So a bucket that has never been written starts at a revision taken
/// from the clock: seconds since 2025 times 2^20, above anything an earlier bucket reached unless
/// it averaged more than a million writes a second over its life. (A purge up to a sequence
/// beyond the end of an empty stream moves its first sequence there.) Below 2^53 for centuries,
/// so readers that keep JSON numbers as doubles (JIRA's issue properties hold the version) read
/// them exactly.
async fn start_revisions_after_any_earlier_bucket(
    js: &jetstream::Context,
    name: &str,
) -> Result<(), BusError> {
    let topology_error = |source: async_nats::Error| BusError::Topology {
        what: format!("the first revision of key-value bucket {name}"),
        source,
    };
    let mut stream = js.get_stream(format!("KV_{name}")).await.map_err(|e| topology_error(e.into()))?;
    let state = stream.info().await.map_err(|e| topology_error(e.into()))?.state.clone();
    if state.last_sequence > 0 || state.first_sequence > 1 {
        return Ok(()); // written already, or started already
    }
    let floor = revision_floor(chrono::Utc::now());
    stream.purge().sequence(floor).await.map_err(|e| topology_error(e.into()))?;
    tracing::info!(
        bucket = name,
        first_revision = floor,
        "New key-value bucket: revisions start after any earlier bucket's."
    );
    Ok(())
}

/// The first revision of a bucket created at `now` (see [`start_revisions_after_any_earlier_bucket`]).
fn revision_floor(now: chrono::DateTime<chrono::Utc>) -> u64 {
    const SINCE_2025: i64 = 1_735_689_600;
    let seconds = u64::try_from(now.timestamp() - SINCE_2025).unwrap_or(0);
    (seconds << 20).max(1)
}

/// Checks, without changing anything, that every stream, consumer and bucket exists with the
/// settings this build relies on (subjects, replicas, ages, delivery limits). Something missing
/// or different is asked again, up to [`TOPOLOGY_PATIENCE`] (the topology Job may be creating
/// or updating it), then fails with what differs and how to fix it.
pub async fn verify_topology(
    js: &jetstream::Context,
    config: &TopologyConfig,
) -> Result<TopologyReport, BusError> {
    let mut report = TopologyReport { streams: vec![], consumers: vec![], buckets: vec![] };
    for expected in stream_configs(config) {
        report.streams.push(verify_stream(js, "stream", expected).await?);
    }
    for name in [TRIAGE, JIRA_WRITER, NOTIFIER] {
        let (stream, expected) = consumer_config(config, name).expect("a known consumer");
        until_verified(&format!("consumer {name} on {stream}"), || async {
            let mut consumer = js
                .get_consumer_from_stream::<consumer::pull::Config, _, _>(name, stream)
                .await
                .map_err(|e| e.to_string())?;
            let info = consumer.info().await.map_err(|e| e.to_string())?.config.clone();
            let mut differences = Vec::new();
            differ(&mut differences, "ack_wait", expected.ack_wait, info.ack_wait);
            differ(&mut differences, "max_deliver", expected.max_deliver, info.max_deliver);
            differ(&mut differences, "max_ack_pending", expected.max_ack_pending, info.max_ack_pending);
            differences_to_result(differences)
        })
        .await?;
        report.consumers.push(name.to_owned());
    }
    for expected in bucket_configs(config) {
        let name = expected.bucket.clone();
        until_verified(&format!("key-value bucket {name}"), || async {
            // A bucket is the stream KV_<bucket>.
            let info = js
                .get_stream(format!("KV_{name}"))
                .await
                .map_err(|e| e.to_string())?
                .cached_info()
                .config
                .clone();
            let mut differences = Vec::new();
            differ(&mut differences, "history", expected.history, info.max_messages_per_subject);
            differ(&mut differences, "replicas", expected.num_replicas, info.num_replicas);
            differ(&mut differences, "max_age", expected.max_age, info.max_age);
            differences_to_result(differences)
        })
        .await?;
        report.buckets.push(name);
    }
    for expected in object_store_configs(config) {
        report.buckets.push(verify_stream(js, "object store", expected).await?);
    }
    Ok(report)
}

/// Creates or updates one stream (an object store is one too); returns its name. `kind` names
/// it in errors and logs.
async fn apply_stream(
    js: &jetstream::Context,
    kind: &str,
    config: stream::Config,
) -> Result<String, BusError> {
    until_answered(
        &format!("{kind} {}", config.name),
        || js.create_or_update_stream(config.clone()),
        stream_unanswered,
    )
    .await?;
    Ok(config.name)
}

/// Checks one stream (an object store is one too) against `expected`; returns its name.
async fn verify_stream(
    js: &jetstream::Context,
    kind: &str,
    expected: stream::Config,
) -> Result<String, BusError> {
    until_verified(&format!("{kind} {}", expected.name), || async {
        let info =
            js.get_stream(&expected.name).await.map_err(|e| e.to_string())?.cached_info().config.clone();
        stream_differences(&expected, &info)
    })
    .await?;
    Ok(expected.name)
}

fn stream_differences(expected: &stream::Config, found: &stream::Config) -> Result<(), String> {
    let mut differences = Vec::new();
    differ(&mut differences, "subjects", &expected.subjects, &found.subjects);
    differ(&mut differences, "replicas", expected.num_replicas, found.num_replicas);
    differ(&mut differences, "max_age", expected.max_age, found.max_age);
    differ(&mut differences, "max_bytes", limit(expected.max_bytes), limit(found.max_bytes));
    differ(
        &mut differences,
        "max_messages_per_subject",
        limit(expected.max_messages_per_subject),
        limit(found.max_messages_per_subject),
    );
    differ(&mut differences, "duplicate_window", expected.duplicate_window, found.duplicate_window);
    differences_to_result(differences)
}

/// A stream limit as the server reports it: a config sent with 0 ("not set") comes back as -1
/// ("unlimited"), so both read as unlimited here, or no stream created by `apply` would verify.
fn limit(value: i64) -> i64 {
    if value <= 0 { -1 } else { value }
}

fn differ<T: PartialEq + std::fmt::Debug>(differences: &mut Vec<String>, field: &str, expected: T, found: T) {
    if expected != found {
        differences.push(format!("{field} is {found:?}, expected {expected:?}"));
    }
}

fn differences_to_result(differences: Vec<String>) -> Result<(), String> {
    if differences.is_empty() { Ok(()) } else { Err(differences.join("; ")) }
}

/// `check`, asked again while it fails, up to [`TOPOLOGY_PATIENCE`].
async fn until_verified<F, Fut>(what: &str, check: F) -> Result<(), BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    patiently(what, check, |_| true, "Topology not as expected yet; checking again.").await.map_err(|why| {
        BusError::Topology {
            what: what.to_owned(),
            source: format!(
                "{why} (this service only verifies the topology: run `infra-tickets topology --apply` \
                 with an admin NATS credential, the Kubernetes topology Job)"
            )
            .into(),
        }
    })
}

/// Whether creating or updating a stream failed only because JetStream gave no answer.
fn stream_unanswered(error: &async_nats::jetstream::context::CreateStreamError) -> bool {
    matches!(error.kind(), CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable)
}

/// Whether creating or updating a bucket failed only because JetStream gave no answer.
/// `create_or_update_key_value` reports every failure of its account query and of its stream
/// request as `JetStream`, timeouts included (only `create_key_value` has `TimedOut`), so the
/// cause underneath says whether it may pass: a service restarted while the cluster elects a
/// leader got "jetstream request timed out" and exited instead of waiting.
fn bucket_unanswered(error: &async_nats::jetstream::context::CreateKeyValueError) -> bool {
    use async_nats::jetstream::context::{AccountError, AccountErrorKind, CreateStreamError};
    match error.kind() {
        CreateKeyValueErrorKind::TimedOut => true,
        CreateKeyValueErrorKind::JetStream => std::error::Error::source(error).is_some_and(|cause| {
            cause.downcast_ref::<CreateStreamError>().is_some_and(|e| {
                matches!(
                    e.kind(),
                    CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable
                )
            }) || cause.downcast_ref::<AccountError>().is_some_and(|e| {
                matches!(e.kind(), AccountErrorKind::TimedOut | AccountErrorKind::JetStreamUnavailable)
            })
        }),
        _ => false,
    }
}

/// How long a starting service waits for JetStream to answer a topology request.
const TOPOLOGY_PATIENCE: Duration = Duration::from_secs(60);

/// `request`, tried again while JetStream gives no answer (a cluster electing a new leader after
/// a node died answers nothing for some seconds) up to [`TOPOLOGY_PATIENCE`]; a service that
/// starts then waits instead of exiting. Any other error (a setting the stream refuses) fails
/// at once.
async fn until_answered<T, E, F, Fut>(
    what: &str,
    request: F,
    unanswered: fn(&E) -> bool,
) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    patiently(what, request, unanswered, "JetStream did not answer; trying again.")
        .await
        .map_err(|error| BusError::Topology { what: what.to_owned(), source: Box::new(error) })
}

/// The one wait of both: `attempt` tried again, after a pause doubling from 250 ms to 4 s, while
/// `worth_waiting` says its error may pass and [`TOPOLOGY_PATIENCE`] is not spent; else its
/// last error.
async fn patiently<T, E, F, Fut>(
    what: &str,
    mut attempt: F,
    worth_waiting: impl Fn(&E) -> bool,
    retrying: &'static str,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + TOPOLOGY_PATIENCE;
    let mut delay = Duration::from_millis(250);
    loop {
        match attempt().await {
            Ok(answer) => return Ok(answer),
            Err(error) if worth_waiting(&error) && tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(what, %error, delay_ms = delay.as_millis() as u64, "{retrying}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Opens the durable pull consumer of a stage (made by [`ensure_topology`]).
pub async fn pull_consumer(js: &jetstream::Context, name: &str) -> Result<consumer::PullConsumer, BusError> {
    let (stream, _) =
        consumer_config(&TopologyConfig::default(), name).ok_or_else(|| BusError::Topology {
            what: format!("consumer {name}"),
            source: "no such consumer in the topology".into(),
        })?;
    js.get_consumer_from_stream(name, stream).await.map_err(|source| BusError::Topology {
        what: format!("consumer {name} on {stream}"),
        source: Box::new(source),
    })
}

/// Every message currently stored in `stream`, oldest first (sequences deleted or aged out in
/// between are skipped). For inspection and tools: it reads one message per request.
pub async fn stored_messages(
    js: &jetstream::Context,
    stream: &str,
) -> Result<Vec<jetstream::message::StreamMessage>, BusError> {
    let error = |what: &str, source: async_nats::Error| BusError::Topology {
        what: format!("stream {stream}: {what}"),
        source,
    };
    let mut handle = js.get_stream(stream).await.map_err(|e| error("open", Box::new(e)))?;
    let state = handle.info().await.map_err(|e| error("info", Box::new(e)))?.state.clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return Ok(messages);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        match handle.get_raw_message(sequence).await {
            Ok(message) => messages.push(message),
            Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(error("read", Box::new(e))),
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::context::{
        AccountError, AccountErrorKind, CreateKeyValueError, CreateStreamError,
    };

    use super::*;

    #[test]
    fn a_bucket_request_that_timed_out_underneath_is_waited_for_and_a_refusal_is_not() {
        let wrapped = |cause| CreateKeyValueError::with_source(CreateKeyValueErrorKind::JetStream, cause);
        let stream_timeout = CreateStreamError::new(CreateStreamErrorKind::TimedOut);
        assert!(bucket_unanswered(&wrapped(
            Box::new(stream_timeout) as Box<dyn std::error::Error + Send + Sync>
        )));
        let no_jetstream = AccountError::new(AccountErrorKind::JetStreamUnavailable);
        assert!(bucket_unanswered(&wrapped(Box::new(no_jetstream))));
        assert!(bucket_unanswered(&CreateKeyValueError::new(CreateKeyValueErrorKind::TimedOut)));

        let refused = CreateStreamError::new(CreateStreamErrorKind::InvalidStreamName);
        assert!(!bucket_unanswered(&wrapped(Box::new(refused))));
        assert!(!bucket_unanswered(&CreateKeyValueError::new(CreateKeyValueErrorKind::InvalidStoreName)));
    }
}
