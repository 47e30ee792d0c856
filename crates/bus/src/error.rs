use crate::consumer::{Classify, ErrorClass};

/// Errors of the NATS plumbing itself. All of them are transient from a handler's point of
/// view (the broker is unreachable or busy), so they classify as retry.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect { url: String, source: async_nats::Error },
    #[error("cannot set up {what}: {source}")]
    Topology { what: String, source: async_nats::Error },
    #[error("publishing to {subject} failed: {source}")]
    Publish { subject: String, source: async_nats::Error },
    #[error("consumer {consumer} failed: {source}")]
    Consume { consumer: String, source: async_nats::Error },
    #[error("key-value bucket {bucket}, key {key}: {source}")]
    Kv { bucket: String, key: String, source: async_nats::Error },
    #[error("value under {key} in bucket {bucket} is not valid JSON for this build: {source}")]
    KvDecode { bucket: String, key: String, source: serde_json::Error },
}

impl Classify for BusError {
    fn class(&self) -> ErrorClass {
        match self {
            // A value this build cannot read will not become readable by waiting.
            BusError::KvDecode { .. } => ErrorClass::DeadLetter,
            _ => ErrorClass::Retry { after: None },
        }
    }
}
