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
mod kv;
mod publish;
mod readiness;
pub mod safe;
pub mod topology;
pub mod trace;

pub use consumer::{Classify, ConsumerOptions, Delivery, ErrorClass, Handler};
pub use error::BusError;
pub use kv::{CasError, JsonKv, Versioned};
pub use publish::{Outgoing, Publisher};
pub use readiness::Readiness;
pub use topology::{TopologyConfig, TopologyMode, ensure_topology};

pub use async_nats;

use std::path::PathBuf;
use std::time::Duration;

/// How a client proves who it is to nats-server. At most one way: the server's `authorization`
/// block (deploy/nats/auth.conf) gives each service a user whose permissions cover only its
/// own subjects, so a second, conflicting identity is a configuration mistake.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// No credentials (a local server without an `authorization` block).
    #[default]
    None,
    /// A user and password of the server's `authorization { users = [...] }`.
    UserPassword { user: String, password: String },
    /// A shared token (`authorization { token = ... }`).
    Token(String),
    /// A file holding an NKey seed (`SU...`); the server knows the public key.
    NKeySeedFile(PathBuf),
    /// A `.creds` file (JWT and seed) for operator mode.
    CredentialsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    // Names the kind and the user or file, never a password, token or seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => {
                f.debug_struct("UserPassword").field("user", user).field("password", &"[redacted]").finish()
            }
            NatsAuth::Token(_) => f.write_str("Token([redacted])"),
            NatsAuth::NKeySeedFile(path) => f.debug_tuple("NKeySeedFile").field(path).finish(),
            NatsAuth::CredentialsFile(path) => f.debug_tuple("CredentialsFile").field(path).finish(),
        }
    }
}

/// TLS to nats-server. Any file given implies TLS is required: a client that was handed a CA
/// must not fall back to plain text when a server (or someone in between) offers none.
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    /// PEM file of the CA(s) that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients (`verify: true`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
    /// Refuse to talk to a server that does not offer TLS.
    pub required: bool,
}

impl NatsTls {
    fn is_required(&self) -> bool {
        self.required || self.ca_file.is_some() || self.client_cert.is_some()
    }
}

/// Everything [`connect`] needs: where, who, and how securely.
#[derive(Clone)]
pub struct NatsConnection {
    /// One URL or several, comma-separated; `tls://` URLs are accepted.
    pub url: String,
    /// Connection name shown by the server (the service name).
    pub name: String,
    pub auth: NatsAuth,
    pub tls: NatsTls,
}

impl std::fmt::Debug for NatsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConnection")
            .field("url", &redact_url(&self.url))
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsConnection {
    /// A connection without credentials or TLS: tests, tools and benchmarks against a local
    /// server. Services build theirs from `service_kit::NatsArgs`.
    pub fn unauthenticated(url: impl Into<String>, name: impl Into<String>) -> Self {
        NatsConnection { url: url.into(), name: name.into(), auth: NatsAuth::None, tls: NatsTls::default() }
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
pub async fn connect(settings: &NatsConnection) -> Result<async_nats::Client, BusError> {
    let error = |source: async_nats::Error| BusError::Connect { url: redact_url(&settings.url), source };
    let mut options = async_nats::ConnectOptions::new()
        .name(&settings.name)
        // Replies (publish acks, JetStream API answers, pulled messages) come to this client's
        // own inbox subjects, so a least-privilege user may subscribe to its own replies only
        // (`_INBOX_<name>.>` in deploy/nats/auth.conf), not to every client's `_INBOX.>`.
        .custom_inbox_prefix(inbox_prefix(&settings.name))
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)));
    match &settings.auth {
        NatsAuth::None => {}
        NatsAuth::UserPassword { user, password } => {
            options = options.user_and_password(user.clone(), password.clone());
        }
        NatsAuth::Token(token) => options = options.token(token.clone()),
        NatsAuth::NKeySeedFile(path) => {
            // The error names the file, never its content.
            let seed = std::fs::read_to_string(path).map_err(|e| {
                error(format!("cannot read the NKey seed file {}: {e}", path.display()).into())
            })?;
            options = options.nkey(seed.trim().to_owned());
        }
        NatsAuth::CredentialsFile(path) => {
            options = options.credentials_file(path).await.map_err(|e| {
                error(format!("cannot read the credentials file {}: {e}", path.display()).into())
            })?;
        }
    }
    let tls = &settings.tls;
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(error("a TLS client certificate and its key go together: set both or neither".into()));
    }
    if let Some(ca) = &tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.is_required() {
        options = options.require_tls(true);
    }
    let urls: Vec<&str> = settings.url.split(',').map(str::trim).collect();
    options.connect(urls).await.map_err(|source| error(Box::new(source)))
}

/// `_INBOX_<name>`: the connection name with anything but letters, digits, `-` and `_` made
/// `_`, so that it is one subject token whatever the name holds.
pub fn inbox_prefix(name: &str) -> String {
    let token: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(64)
        .collect();
    format!("_INBOX_{token}")
}

/// A JetStream context whose API requests time out rather than hang.
pub fn jetstream(client: async_nats::Client) -> async_nats::jetstream::Context {
    let mut context = async_nats::jetstream::new(client);
    context.set_timeout(Duration::from_secs(10));
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_holds_a_password_or_token() {
        let connection = NatsConnection {
            url: "nats://svc:hunter2@a:4222".into(),
            name: "notifier".into(),
            auth: NatsAuth::UserPassword { user: "notifier".into(), password: "hunter2".into() },
            tls: NatsTls::default(),
        };
        let printed = format!("{connection:?} {:?}", NatsAuth::Token("s3cret-token".into()));
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret-token"), "{printed}");
        assert!(printed.contains("notifier"), "{printed}");
    }

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            super::redact_url("nats://user:pw@a:4222,nats://b:4222"),
            "nats://[redacted]@a:4222,nats://b:4222"
        );
    }
}
