//! EventBridge → SQS: long-polls the queue; each message is published durably THEN deleted. A
//! message that cannot be published stays in the queue (SQS redelivers it after its visibility
//! timeout); a message that is not an AWS Health event is dead-lettered, then deleted.

use std::time::Duration;

use aws_sdk_sqs::types::Message;
use bus::Readiness;
use tokio_util::sync::CancellationToken;

use crate::intake::Intake;

pub const COMPONENT: &str = "sqs intake";

/// Polls one queue.
pub struct SqsIntake {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub wait_seconds: i32,
    pub batch: i32,
    pub intake: Intake,
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Published,
    DeadLettered,
    /// Left in the queue (publishing failed); SQS will deliver it again.
    Kept,
}

impl SqsIntake {
    /// Builds the client from the standard credential chain, with an optional endpoint.
    pub async fn connect(config: &crate::Config, queue_url: String, intake: Intake) -> Self {
        let shared = config.sdk_config().await;
        // The queue's own Region, which need not be the Health API's (see Config::sqs_region).
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared)
            .region(aws_sdk_sqs::config::Region::new(config.sqs_region()));
        if let Some(endpoint) = &config.sqs_endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        SqsIntake {
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
            queue_url,
            wait_seconds: config.sqs_wait_seconds,
            batch: config.sqs_batch,
            intake,
        }
    }

    /// Polls until `shutdown`; receive errors are retried with backoff and reported as unready
    /// with the reason. Ready once a receive succeeded: until then (at start, after an error)
    /// it asks without waiting, so that readiness does not lag a long poll behind.
    pub async fn run(self, health: Readiness, shutdown: CancellationToken) {
        health.register(COMPONENT);
        let mut backoff = Duration::from_millis(500);
        while !shutdown.is_cancelled() {
            let wait = if health.component_ready(COMPONENT) { self.wait_seconds } else { 0 };
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = self.receive(wait) => received,
            };
            match received {
                Ok(messages) => {
                    health.set_ready(COMPONENT);
                    if let Some(contact) = self.intake.contact() {
                        contact.succeeded().await;
                    }
                    backoff = Duration::from_millis(500);
                    for message in messages {
                        self.handle(&message).await;
                    }
                }
                Err(error) => {
                    let reason = format!("receiving from the queue failed: {error}");
                    if let Some(contact) = self.intake.contact() {
                        contact.failed(&reason).await;
                    }
                    health.set_unready(COMPONENT, reason);
                    tracing::warn!(queue = %self.queue_url, %error, "Receiving from SQS failed; retrying.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn receive(&self, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Publishes (or dead-letters) one message, then deletes it; keeps it when publishing fails.
    pub async fn handle(&self, message: &Message) -> Outcome {
        let id = message.message_id().unwrap_or("unknown");
        let body = message.body().unwrap_or_default().as_bytes();
        let origin = format!("sqs:{}", self.queue_url);
        let outcome = match self.intake.raw_events(body, &origin) {
            Ok(events) => match self.intake.publish(&events).await {
                Ok(published) => {
                    tracing::info!(
                        message_id = id,
                        stored = published.stored,
                        duplicates = published.duplicates,
                        "Published an SQS message."
                    );
                    Outcome::Published
                }
                Err(error) => {
                    tracing::warn!(message_id = id, %error, "Publishing failed; the message stays in the queue.");
                    return Outcome::Kept;
                }
            },
            Err(malformed) => match self.intake.dead_letter(body, &malformed.0, &origin).await {
                Ok(()) => Outcome::DeadLettered,
                Err(error) => {
                    tracing::warn!(message_id = id, %error, "Dead-lettering failed; the message stays in the queue.");
                    return Outcome::Kept;
                }
            },
        };
        if let Some(receipt) = message.receipt_handle() {
            let deleted =
                self.client.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await;
            if let Err(error) = deleted {
                // Published already: a redelivery is stored once (same deduplication id).
                tracing::warn!(message_id = id, error = %aws_sdk_sqs::error::DisplayErrorContext(error), "Deleting the message failed.");
            }
        }
        outcome
    }
}
