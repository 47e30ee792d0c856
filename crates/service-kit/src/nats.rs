//! How a service reaches NATS, as a clap argument group (flags and environment variables).

use std::path::PathBuf;

use clap::Args;

/// How to reach NATS.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(long = "nats-url", env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS credentials file (operator mode).
    #[arg(long = "nats-credentials", env = "NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,
}

impl NatsArgs {
    pub fn settings(&self, service: &str) -> bus::NatsSettings {
        bus::NatsSettings {
            url: self.nats_url.clone(),
            name: service.to_owned(),
            credentials_file: self.nats_credentials.clone(),
        }
    }
}
