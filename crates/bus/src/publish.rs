//! Publishing to JetStream with `Nats-Msg-Id`, `traceparent` and pipelined acks.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, publish::PublishAck};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::BusError;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// Sent as `Nats-Msg-Id`: a re-send inside the stream's duplicate window is stored once.
    pub message_id: Option<String>,
    pub payload: Bytes,
    pub headers: HeaderMap,
}

impl Outgoing {
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Outgoing {
            subject: subject.into(),
            message_id: None,
            payload: payload.into(),
            headers: HeaderMap::new(),
        }
    }

    pub fn with_id(mut self, message_id: impl Into<String>) -> Self {
        self.message_id = Some(message_id.into());
        self
    }

    /// Adds a header; `value` is made safe ([`crate::safe::header_value`]), whatever it holds.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        crate::safe::insert(&mut self.headers, name, value);
        self
    }
}

/// Publishes to JetStream. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
    in_flight: usize,
}

impl Publisher {
    /// `in_flight`: how many acks [`Publisher::publish_all`] awaits at once.
    pub fn new(js: jetstream::Context) -> Self {
        Publisher { js, in_flight: 256 }
    }

    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Sends one message and returns the ack to await later (pipelining). Header values and the
    /// message id are made safe here ([`crate::safe`]): no text can make the publish panic.
    pub async fn send(&self, message: Outgoing) -> Result<PublishAckFuture, BusError> {
        let Outgoing { subject, message_id, payload, headers } = message;
        let mut headers = crate::safe::headers(&headers);
        crate::trace::inject(&mut headers);
        let mut publish = jetstream::message::PublishMessage::build().headers(headers).payload(payload);
        if let Some(id) = message_id {
            publish = publish.message_id(crate::safe::message_id(&id));
        }
        self.js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|source| BusError::Publish { subject, source: Box::new(source) })
    }

    /// Sends one message and waits until the stream stored it.
    pub async fn publish(&self, message: Outgoing) -> Result<PublishAck, BusError> {
        let subject = message.subject.clone();
        let ack = self.send(message).await?;
        ack.await.map_err(|source| BusError::Publish { subject, source: Box::new(source) })
    }

    /// Publishes every message, keeping up to `in_flight` acks outstanding, and returns when
    /// all are stored. Acks come back in any order; the result is in the input order.
    pub async fn publish_all<I>(&self, messages: I) -> Result<Vec<PublishAck>, BusError>
    where
        I: IntoIterator<Item = Outgoing>,
    {
        let mut pending = FuturesUnordered::new();
        let mut results: Vec<Option<PublishAck>> = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            results.push(None);
            if pending.len() >= self.in_flight {
                let (i, ack) = next_ack(&mut pending).await?;
                results[i] = Some(ack);
            }
            let subject = message.subject.clone();
            let future = self.send(message).await?;
            pending.push(async move { (index, subject, future.await) });
        }
        while !pending.is_empty() {
            let (i, ack) = next_ack(&mut pending).await?;
            results[i] = Some(ack);
        }
        Ok(results.into_iter().map(|a| a.expect("every publish was acked")).collect())
    }

    /// Publishes and retries transient failures (no responders while a cluster elects a
    /// leader, timeouts) with a short backoff, up to `attempts` times.
    pub async fn publish_with_retry(&self, message: Outgoing, attempts: u32) -> Result<PublishAck, BusError> {
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.publish(message.clone()).await {
                Ok(ack) => return Ok(ack),
                Err(error) if attempt < attempts => {
                    tracing::warn!(%error, attempt, "Publish failed; retrying.");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

type AckResult = Result<PublishAck, async_nats::jetstream::context::PublishError>;

async fn next_ack<F>(pending: &mut FuturesUnordered<F>) -> Result<(usize, PublishAck), BusError>
where
    F: std::future::Future<Output = (usize, String, AckResult)>,
{
    let (index, subject, result) = pending.next().await.expect("pending is not empty");
    let ack = result.map_err(|source| BusError::Publish { subject, source: Box::new(source) })?;
    Ok((index, ack))
}
