//! Reading what the pipeline did: raw events with their publish times, consumer progress, the
//! tickets in the JIRA simulator and the messages in the Slack simulator, and the latency from a
//! raw event to the ticket and to the message it caused.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use bus::topology;
use chrono::{DateTime, Utc};
use contracts::{PayloadKind, RawEvent, TicketState};
use futures_util::StreamExt;
use health_policy::{HealthPolicy, HealthSettings};
use snyk_policy::{SnykPolicy, SnykSettings};
use triage_policy::InMemoryTriage;

use crate::{BenchError, StepExt};

/// One raw event as stored: its subject, bytes, publish time and decoded form.
pub struct StoredRaw {
    pub subject: String,
    pub payload: bytes::Bytes,
    pub published: DateTime<Utc>,
    pub event: Option<RawEvent>,
}

/// Every message of `RAW_EVENTS`, in stream order.
pub async fn raw_events(js: &jetstream::Context) -> Result<Vec<StoredRaw>, BenchError> {
    let stream = js.get_stream(topology::RAW_EVENTS).await.step("opening RAW_EVENTS")?;
    let ordered =
        stream.create_consumer(consumer::pull::OrderedConfig::default()).await.step("reading RAW_EVENTS")?;
    let pending = ordered.cached_info().num_pending;
    let mut messages = ordered.messages().await.step("reading RAW_EVENTS")?;
    let mut out = Vec::with_capacity(pending as usize);
    while (out.len() as u64) < pending {
        let Some(message) = messages.next().await else { break };
        let message = message.step("reading a raw event")?;
        let info = message.info().step("reading a raw event's metadata")?;
        let published = info.published.with_timezone(&Utc);
        out.push(StoredRaw {
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            published,
            event: RawEvent::from_json(&message.payload).ok(),
        });
    }
    Ok(out)
}

/// Progress of a durable consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub delivered: u64,
    pub pending: u64,
    pub ack_pending: u64,
}

impl Progress {
    pub fn drained(&self) -> bool {
        self.pending == 0 && self.ack_pending == 0
    }
}

/// Where durable consumer `name` of `stream` stands.
pub async fn progress(js: &jetstream::Context, stream: &str, name: &str) -> Result<Progress, BenchError> {
    let mut consumer: consumer::PullConsumer =
        js.get_consumer_from_stream(name, stream).await.step("opening a consumer")?;
    let info = consumer.info().await.step("reading a consumer's state")?;
    Ok(Progress {
        delivered: info.delivered.stream_sequence,
        pending: info.num_pending,
        ack_pending: info.num_ack_pending as u64,
    })
}

/// Whether triage, jira-writer and notifier have nothing pending.
pub async fn pipeline_drained(js: &jetstream::Context) -> Result<bool, BenchError> {
    for name in [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER] {
        let (stream, _) = topology::consumer_config(&topology::TopologyConfig::default(), name)
            .expect("a consumer of the topology");
        if !progress(js, stream, name).await?.drained() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Messages stored in a stream so far (its last sequence).
pub async fn last_sequence(js: &jetstream::Context, stream: &str) -> Result<u64, BenchError> {
    let mut stream = js.get_stream(stream).await.step("opening a stream")?;
    Ok(stream.info().await.step("reading a stream's state")?.state.last_sequence)
}

/// Each ticketed group's first evidence: the publish time of the raw event that first made
/// its desired ticket open, found by folding the raw events through the same policies (pure
/// domain logic, no I/O) in stream order.
pub struct FirstEvidence {
    pub by_group: BTreeMap<String, DateTime<Utc>>,
    /// Findings in the Snyk snapshots and Health events among the raw events.
    pub snyk_findings: usize,
    pub snyk_snapshots: usize,
    pub health_events: usize,
}

pub fn first_evidence(raw: &[StoredRaw], catalog: Arc<catalog::Catalog>) -> FirstEvidence {
    let mut snyk = InMemoryTriage::new(SnykPolicy::new(catalog.clone(), SnykSettings::default()));
    let mut health = InMemoryTriage::new(HealthPolicy::new(catalog, HealthSettings::default()));
    let mut out =
        FirstEvidence { by_group: BTreeMap::new(), snyk_findings: 0, snyk_snapshots: 0, health_events: 0 };
    for stored in raw {
        let Some(event) = &stored.event else { continue };
        let tickets = match event.kind {
            PayloadKind::SnykProjectSnapshot => {
                out.snyk_snapshots += 1;
                out.snyk_findings += findings_in(event);
                snyk.apply(event, stored.published)
            }
            PayloadKind::AwsHealthEvent => {
                out.health_events += 1;
                health.apply(event, stored.published)
            }
        };
        for ticket in tickets.unwrap_or_default() {
            if ticket.state == TicketState::Open {
                out.by_group.entry(ticket.group_key.as_str().to_owned()).or_insert(stored.published);
            }
        }
    }
    out
}

/// Findings (issues) in a Snyk project snapshot.
pub fn findings_in(event: &RawEvent) -> usize {
    event.payload.get("issues").and_then(|i| i.as_array()).map_or(0, Vec::len)
}

/// One ticket in JIRA: its key, its group key (from the `infra-tickets` issue property) and
/// when it was created.
pub struct JiraTicket {
    pub key: String,
    pub group_key: String,
    pub created: DateTime<Utc>,
}

pub fn jira_tickets(jira: &jira_sim::JiraSim) -> Vec<JiraTicket> {
    jira.issues()
        .into_iter()
        .filter_map(|issue| {
            let group_key = issue.properties.get("infra-tickets")?.get("groupKey")?.as_str()?.to_owned();
            let created = DateTime::parse_from_str(&issue.created, "%Y-%m-%dT%H:%M:%S%.3f%z").ok()?;
            Some(JiraTicket { key: issue.key, group_key, created: created.with_timezone(&Utc) })
        })
        .collect()
}

/// The first Slack message about each issue key (from the message metadata), with its time.
pub fn first_messages(slack: &slack_sim::SlackSim) -> BTreeMap<String, DateTime<Utc>> {
    let mut first: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for message in slack.all_messages() {
        let (Some(key), Some(at)) = (message.metadata_field("issue_key"), slack_time(&message.ts)) else {
            continue;
        };
        first.entry(key.to_owned()).and_modify(|t| *t = (*t).min(at)).or_insert(at);
    }
    first
}

fn slack_time(ts: &str) -> Option<DateTime<Utc>> {
    let (seconds, micros) = ts.split_once('.')?;
    DateTime::from_timestamp(seconds.parse().ok()?, micros.parse::<u32>().ok()? * 1_000)
}

/// Latencies (ms) from the first evidence of a group to its JIRA ticket and to its first Slack
/// message, for the groups whose first evidence is at or after `since`.
pub struct Latencies {
    pub to_jira_ms: Vec<f64>,
    pub to_slack_ms: Vec<f64>,
    /// Groups with evidence but no ticket, or a ticket but no message.
    pub missing_tickets: usize,
    pub missing_messages: usize,
}

pub fn latencies(
    evidence: &FirstEvidence,
    tickets: &[JiraTicket],
    messages: &BTreeMap<String, DateTime<Utc>>,
    since: DateTime<Utc>,
) -> Latencies {
    let by_group: BTreeMap<&str, &JiraTicket> = tickets.iter().map(|t| (t.group_key.as_str(), t)).collect();
    let mut out =
        Latencies { to_jira_ms: vec![], to_slack_ms: vec![], missing_tickets: 0, missing_messages: 0 };
    let ms =
        |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_microseconds().unwrap_or(0) as f64 / 1e3;
    for (group, first) in evidence.by_group.iter().filter(|(_, first)| **first >= since) {
        let Some(ticket) = by_group.get(group.as_str()) else {
            out.missing_tickets += 1;
            continue;
        };
        out.to_jira_ms.push(ms(*first, ticket.created));
        match messages.get(&ticket.key) {
            Some(sent) => out.to_slack_ms.push(ms(*first, *sent)),
            None => out.missing_messages += 1,
        }
    }
    out
}

/// The `q` quantile (0–1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
