//! Dead letters: the original payload and headers, plus why, where and how often.
//!
//! Published on `dlq.<stage>` in the `DEAD_LETTERS` stream. [`redrive`] republishes the
//! original to its subject (without the dead-letter headers, under a fresh message id so the
//! duplicate window does not swallow it) and removes the dead letter.

use async_nats::HeaderMap;
use async_nats::jetstream;
use contracts::dead_letter as headers;

use crate::consumer::Delivery;
use crate::topology::DEAD_LETTERS;
use crate::{BusError, Outgoing, Publisher};

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterClass {
    /// The handler said it can never succeed (malformed input, a 400 from JIRA…).
    Permanent,
    /// It kept failing transiently until its deliveries ran out.
    Exhausted,
}

impl DeadLetterClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterClass::Permanent => "permanent",
            DeadLetterClass::Exhausted => "exhausted",
        }
    }
}

/// Stores a dead letter for `delivery`; returns when the stream has it.
pub async fn publish(
    publisher: &Publisher,
    stage: &str,
    delivery: &Delivery,
    class: DeadLetterClass,
    reason: &str,
) -> Result<(), BusError> {
    // Keep the original headers but those dead-lettering adds (from an earlier dead letter)
    // and the message id, which would make the stream drop a redrive; it is kept aside.
    let mut outgoing_headers = match delivery.headers() {
        Some(original) => without(original, &headers::ALL, true),
        None => HeaderMap::new(),
    };
    // Every value goes through `safe`: a reason may hold a vendor's multi-line error page.
    let mut put = |name: &str, value: &str| crate::safe::insert(&mut outgoing_headers, name, value);
    if let Some(id) = delivery.header("Nats-Msg-Id") {
        put(ORIGINAL_MSG_ID, id);
    }
    put(headers::REASON, reason);
    put(headers::STAGE, stage);
    put(headers::ERROR_CLASS, class.as_str());
    put(headers::DELIVERY_COUNT, &delivery.delivered().to_string());
    put(headers::ORIGINAL_SUBJECT, delivery.subject());
    put(headers::ORIGINAL_STREAM, delivery.stream());
    put(headers::ORIGINAL_SEQUENCE, &delivery.stream_sequence().to_string());
    put(headers::DEAD_AT, &chrono::Utc::now().to_rfc3339());
    let message = Outgoing {
        subject: contracts::subjects::dead_letter(stage),
        // Dead-lettering the same delivery twice (a crash before the term) stores it once.
        message_id: Some(format!("dlq:{stage}:{}:{}", delivery.stream(), delivery.stream_sequence())),
        payload: bytes::Bytes::copy_from_slice(delivery.payload()),
        headers: outgoing_headers,
    };
    publisher.publish_with_retry(message, 3).await.map(|_| ())
}

const ORIGINAL_MSG_ID: &str = "Itk-Original-Msg-Id";

/// A copy of `source` without the headers named in `drop` (and without `Nats-Msg-Id` when
/// `drop_message_id`).
fn without(source: &HeaderMap, drop: &[&str], drop_message_id: bool) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (name, values) in source.iter() {
        let name: &str = name.as_ref();
        if drop.contains(&name) || (drop_message_id && name == "Nats-Msg-Id") {
            continue;
        }
        for value in values {
            crate::safe::append(&mut kept, name, value.as_str());
        }
    }
    kept
}

/// A stored dead letter, as operators see it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Sequence in the `DEAD_LETTERS` stream.
    pub sequence: u64,
    pub stage: String,
    pub reason: String,
    pub class: String,
    pub deliveries: u64,
    pub original_subject: String,
    pub original_stream: String,
    pub original_sequence: u64,
    pub dead_at: String,
    pub payload: bytes::Bytes,
    pub headers: HeaderMap,
}

impl DeadLetter {
    fn from_stream_message(message: jetstream::message::StreamMessage) -> Self {
        let header =
            |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default();
        DeadLetter {
            sequence: message.sequence,
            stage: header(headers::STAGE),
            reason: header(headers::REASON),
            class: header(headers::ERROR_CLASS),
            deliveries: header(headers::DELIVERY_COUNT).parse().unwrap_or(0),
            original_subject: header(headers::ORIGINAL_SUBJECT),
            original_stream: header(headers::ORIGINAL_STREAM),
            original_sequence: header(headers::ORIGINAL_SEQUENCE).parse().unwrap_or(0),
            dead_at: header(headers::DEAD_AT),
            payload: message.payload.clone(),
            headers: message.headers.clone(),
        }
    }

    /// The original headers, without what dead-lettering added.
    pub fn original_headers(&self) -> HeaderMap {
        let mut added = headers::ALL.to_vec();
        added.push(ORIGINAL_MSG_ID);
        without(&self.headers, &added, true)
    }
}

fn stream_error(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Topology { what: format!("{DEAD_LETTERS}: {what}"), source: Box::new(source) }
}

/// Every stored dead letter, oldest first.
pub async fn list(js: &jetstream::Context) -> Result<Vec<DeadLetter>, BusError> {
    let messages = crate::topology::stored_messages(js, DEAD_LETTERS).await?;
    Ok(messages.into_iter().map(DeadLetter::from_stream_message).collect())
}

/// One dead letter by its sequence.
pub async fn get(js: &jetstream::Context, sequence: u64) -> Result<Option<DeadLetter>, BusError> {
    let stream = js.get_stream(DEAD_LETTERS).await.map_err(|e| stream_error("open", e))?;
    match stream.get_raw_message(sequence).await {
        Ok(message) => Ok(Some(DeadLetter::from_stream_message(message))),
        Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(stream_error("read", e)),
    }
}

/// Republishes a dead letter to its original subject and deletes it. Returns the new sequence
/// in the original stream, or `None` when there was no such dead letter.
pub async fn redrive(publisher: &Publisher, sequence: u64) -> Result<Option<u64>, BusError> {
    let js = publisher.context();
    let Some(letter) = get(js, sequence).await? else { return Ok(None) };
    let outgoing = Outgoing {
        subject: letter.original_subject.clone(),
        message_id: Some(format!("redrive:{sequence}")),
        payload: letter.payload.clone(),
        headers: letter.original_headers(),
    };
    let ack = publisher.publish(outgoing).await?;
    let stream = js.get_stream(DEAD_LETTERS).await.map_err(|e| stream_error("open", e))?;
    stream.delete_message(sequence).await.map_err(|e| stream_error("delete", e))?;
    Ok(Some(ack.sequence))
}
