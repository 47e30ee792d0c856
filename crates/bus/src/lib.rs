//! NATS JetStream plumbing shared by every infra-tickets service.
//!
//! * [`topology`]: every stream, consumer and key-value bucket, created or updated by one
//!   idempotent function.
//! * [`Publisher`]: publishes with `Nats-Msg-Id` and `traceparent`, with pipelined acks.
//! * [`consumer`]: the durable pull-consumer loop every service runs its handler in:
//!   bounded concurrency, errors classified into ack / retry / dead-letter / pause, progress
//!   signals for long work, and a graceful stop that loses nothing.
//! * [`dead_letter`]: dead letters keep the original message and say why; they can be redriven.
//! * [`JsonKv`]: typed JSON values in a key-value bucket, with compare-and-set.
//! * [`Health`]: readiness of the parts of a service, for `/readyz`.
//! * [`safe`]: the one place that makes header values and message ids safe (no CR, LF or other
//!   control characters, bounded length); every publish goes through it.

pub mod consumer;
pub mod dead_letter;
mod error;
mod health;
mod kv;
mod publish;
pub mod safe;
pub mod topology;
pub mod trace;

pub use consumer::{Classify, ConsumerOptions, Delivery, ErrorClass, Handler};
pub use error::BusError;
pub use health::Health;
pub use kv::{CasError, JsonKv, Versioned};
pub use publish::{Outgoing, Publisher};
pub use topology::{TopologyConfig, ensure_topology};

pub use async_nats;

use std::time::Duration;

/// How to reach NATS.
#[derive(Clone)]
pub struct NatsSettings {
    /// One URL or several, comma-separated (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// Connection name shown by the server (the service name).
    pub name: String,
    /// Optional credentials file (NGS / operator mode).
    pub credentials_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("url", &redact_url(&self.url))
            .field("name", &self.name)
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

/// Hides `user:password@` in a URL.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://[redacted]@{}", &one[..scheme], &one[at + 1..])
            }
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Connects to NATS; keeps reconnecting for the life of the client.
pub async fn connect(settings: &NatsSettings) -> Result<async_nats::Client, BusError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(&settings.name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)));
    if let Some(path) = &settings.credentials_file {
        options = options.credentials_file(path).await.map_err(|source| BusError::Connect {
            url: redact_url(&settings.url),
            source: Box::new(source),
        })?;
    }
    let urls: Vec<&str> = settings.url.split(',').map(str::trim).collect();
    options
        .connect(urls)
        .await
        .map_err(|source| BusError::Connect { url: redact_url(&settings.url), source: Box::new(source) })
}

/// A JetStream context whose API requests time out rather than hang.
pub fn jetstream(client: async_nats::Client) -> async_nats::jetstream::Context {
    let mut context = async_nats::jetstream::new(client);
    context.set_timeout(Duration::from_secs(10));
    context
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            super::redact_url("nats://user:pw@a:4222,nats://b:4222"),
            "nats://[redacted]@a:4222,nats://b:4222"
        );
    }
}
