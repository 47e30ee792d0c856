//! Settings every service shares, as clap argument groups. A service's config struct flattens
//! the ones it needs; each setting is a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Streams, consumers and buckets: set up (idempotently) by every service at start.
#[derive(Debug, Clone, Args)]
pub struct TopologyArgs {
    /// Replicas of every stream and bucket: 1 on one server, 3 on a cluster.
    #[arg(long = "stream-replicas", env = "ITK_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// How long raw events are kept for replay (e.g. 30d).
    #[arg(long = "raw-max-age", env = "ITK_RAW_MAX_AGE", default_value = "30d", value_parser = parse_duration)]
    pub raw_max_age: Duration,
    /// Size cap of the raw stream in bytes; -1 for none.
    #[arg(long = "raw-max-bytes", env = "ITK_RAW_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub raw_max_bytes: i64,
    /// How long a message id is remembered for deduplication.
    #[arg(long = "duplicate-window", env = "ITK_DUPLICATE_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub duplicate_window: Duration,
    /// A message not acked within this is redelivered.
    #[arg(long = "ack-wait", env = "ITK_ACK_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// Deliveries of one message before it is dead-lettered.
    #[arg(long = "max-deliver", env = "ITK_MAX_DELIVER", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(2..))]
    pub max_deliver: i64,
    /// At start: `apply` creates or updates the topology (needs JetStream admin rights);
    /// `verify` only checks it, for a least-privilege NATS user (the topology Job applies it).
    #[arg(long = "topology-mode", env = "ITK_TOPOLOGY_MODE", default_value = "apply",
          value_parser = crate::nats::parse_topology_mode)]
    pub topology_mode: bus::TopologyMode,
}

impl TopologyArgs {
    pub fn config(&self) -> bus::TopologyConfig {
        bus::TopologyConfig {
            replicas: usize::from(self.stream_replicas),
            raw_max_age: self.raw_max_age,
            raw_max_bytes: self.raw_max_bytes,
            duplicate_window: self.duplicate_window.min(self.raw_max_age),
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            mode: self.topology_mode,
            ..bus::TopologyConfig::default()
        }
    }
}

/// Where `/healthz`, `/readyz` (and any service endpoints, webhooks) listen, and where
/// `/metrics` does.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address of `/healthz`, `/readyz` and the service's webhooks.
    #[arg(long = "listen", env = "ITK_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// Address of `/metrics` (Prometheus), apart from `--listen` so that scraping can be
    /// allowed where the intakes are not. When `--listen` asks for a free port (port 0: tests,
    /// the demo) and this is left at its default, `/metrics` takes a free port on `--listen`'s
    /// address too.
    #[arg(long = "metrics-listen", env = "ITK_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
}

const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9464";

impl HttpArgs {
    /// Where `/metrics` is served (see `--metrics-listen`).
    pub fn metrics_address(&self) -> SocketAddr {
        let default: SocketAddr = DEFAULT_METRICS_LISTEN.parse().expect("a socket address");
        if self.listen.port() == 0 && self.metrics_listen == default {
            SocketAddr::new(self.listen.ip(), 0)
        } else {
            self.metrics_listen
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs and traces. Traces go to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    #[arg(long = "log-format", env = "ITK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    #[arg(long = "log-level", env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

/// Parses `30s`, `15m`, `2h`, `30d`, `1d 12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 15m, 2h, 30d)"))
}
