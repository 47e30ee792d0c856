//! What every infra-tickets service binary needs, so each `main.rs` stays a few lines:
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let config: triage::Config = service_kit::config::parse();
//!     let _telemetry = service_kit::telemetry::init("triage", &config.telemetry)?;
//!     triage::run(config, service_kit::shutdown::on_signal()).await?;
//!     Ok(())
//! }
//! ```

pub mod args;
pub mod clock;
pub mod config;
pub mod contact;
pub mod http;
pub mod nats;
pub mod readiness;
mod secret;
pub mod shutdown;
mod signature;
pub mod telemetry;

pub use args::{HttpArgs, TelemetryArgs, TopologyArgs};
pub use clock::Clock;
pub use contact::ContactLog;
pub use nats::NatsArgs;
pub use secret::Secret;
pub use signature::hub_signature_is_valid;
