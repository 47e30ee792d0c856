//! What every intake does with what it received: publish each event as a raw event, durably,
//! or keep a body that is not one as a dead letter with the reason.

use async_nats::jetstream::publish::PublishAck;
use bus::{BusError, Outgoing, Publisher};
use contracts::RawEvent;
use serde_json::Value;
use service_kit::Clock;
use sha2::{Digest, Sha256};

/// The dead-letter stage name of this service.
pub const STAGE: &str = "ingest-health";

/// Why a body holds no usable AWS Health event.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Publishes raw events and dead letters.
#[derive(Clone)]
pub struct Intake {
    publisher: Publisher,
    clock: Clock,
    /// Where this intake's events are recorded as contact (see [`Intake::reporting_to`]).
    contact: Option<service_kit::contact::Scope>,
}

/// What publishing did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub stored: usize,
    pub duplicates: usize,
}

impl Intake {
    pub fn new(publisher: Publisher, clock: Clock) -> Self {
        Intake { publisher, clock, contact: None }
    }

    /// This intake, recording the events it publishes as `scope`'s (the notifier's silence check
    /// and the `itk_source_last_event_timestamp_seconds` gauge read them).
    pub fn reporting_to(&self, scope: service_kit::contact::Scope) -> Self {
        Intake { contact: Some(scope), ..self.clone() }
    }

    /// The contact scope this intake records to, if any.
    pub fn contact(&self) -> Option<&service_kit::contact::Scope> {
        self.contact.as_ref()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The raw events of a received body: one EventBridge event, a list of them, or an SNS
    /// notification wrapping one. Every event must be valid, or none is taken.
    pub fn raw_events(&self, body: &[u8], received_from: &str) -> Result<Vec<RawEvent>, Malformed> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
        let value = unwrap_sns(value)?;
        let payloads = match value {
            Value::Array(list) if list.is_empty() => {
                return Err(Malformed("the body is an empty list".into()));
            }
            Value::Array(list) => list,
            other => vec![other],
        };
        let now = self.clock.now();
        payloads
            .into_iter()
            .map(|payload| {
                health_policy::raw_event(payload, received_from, now).map_err(|e| Malformed(e.to_string()))
            })
            .collect()
    }

    /// Publishes each event and waits until the stream stored it (or found it a duplicate).
    pub async fn publish(&self, events: &[RawEvent]) -> Result<Published, BusError> {
        let messages: Vec<Outgoing> = events.iter().map(outgoing).collect();
        let acks: Vec<PublishAck> = self.publisher.publish_all(messages).await?;
        let duplicates = acks.iter().filter(|ack| ack.duplicate).count();
        let published = Published { stored: acks.len() - duplicates, duplicates };
        metrics::counter!("ingest_health_events_stored_total").increment(published.stored as u64);
        metrics::counter!("ingest_health_events_duplicate_total").increment(published.duplicates as u64);
        if let Some(contact) = &self.contact {
            contact.received(acks.len()).await;
        }
        Ok(published)
    }

    /// Keeps `body` as a dead letter on `dlq.ingest-health` with the reason.
    pub async fn dead_letter(&self, body: &[u8], reason: &str, origin: &str) -> Result<(), BusError> {
        use contracts::dead_letter as headers;
        let digest = hex::encode(Sha256::digest(body));
        let message = Outgoing::new(contracts::subjects::dead_letter(STAGE), body.to_vec())
            .with_id(format!("dlq:{STAGE}:{origin}:{}", &digest[..32]))
            .with_header(headers::REASON, &truncate(reason, 2_000))
            .with_header(headers::STAGE, STAGE)
            .with_header(headers::ERROR_CLASS, "permanent")
            .with_header(headers::DELIVERY_COUNT, "1")
            .with_header(headers::DEAD_AT, &self.clock.now().to_rfc3339())
            .with_header("Itk-Received-From", origin);
        self.publisher.publish_with_retry(message, 3).await?;
        metrics::counter!("ingest_health_dead_letters_total").increment(1);
        tracing::warn!(origin, reason, "Dead-lettered a body that is not an AWS Health event.");
        Ok(())
    }
}

fn outgoing(raw: &RawEvent) -> Outgoing {
    // The partition is the event's account and Region, outside text of any length: the subject
    // bounds and encodes it (contracts::subjects::token), so a 6,000-character account id cannot
    // push the PUB line past the server's max_control_line (which closes the connection and
    // every publish in flight with it).
    let subject = raw.subject(&health_policy::partition(raw));
    Outgoing::new(subject, raw.to_json()).with_id(raw.dedup_id.clone())
}

/// SNS → SQS without raw delivery wraps the event: `{"Type": "Notification", "Message": "…"}`.
fn unwrap_sns(value: Value) -> Result<Value, Malformed> {
    let is_sns = value.get("Type").and_then(Value::as_str) == Some("Notification");
    match value.get("Message").and_then(Value::as_str) {
        Some(message) if is_sns => serde_json::from_str(message)
            .map_err(|e| Malformed(format!("the SNS notification's Message is not JSON: {e}"))),
        _ => Ok(value),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
