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
    /// How long a client may take to send a request's head, from its connection (or the first
    /// byte of a later request); then the connection is closed.
    #[arg(long = "http-header-timeout", env = "ITK_HTTP_HEADER_TIMEOUT", default_value = "10s",
          value_parser = parse_timeout)]
    pub http_header_timeout: Duration,
    /// How long a client may take to send a request's whole body (408 after).
    #[arg(long = "http-body-timeout", env = "ITK_HTTP_BODY_TIMEOUT", default_value = "30s",
          value_parser = parse_timeout)]
    pub http_body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long = "http-idle-timeout", env = "ITK_HTTP_IDLE_TIMEOUT", default_value = "60s",
          value_parser = parse_timeout)]
    pub http_idle_timeout: Duration,
    /// Connections open at once on each listener; one more is closed at accept. With
    /// --http-max-body-bytes it bounds the memory clients can hold (128 × 1 MiB by default,
    /// inside the 256 MiB pod limit).
    #[arg(long = "http-max-connections", env = "ITK_HTTP_MAX_CONNECTIONS", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub http_max_connections: u32,
    /// Largest request body on any endpoint, in bytes: a larger Content-Length gets 413 before
    /// the body is read, a body without one is cut there. A webhook's own limit works under
    /// this one, so raising a webhook's limit above it needs this raised too.
    #[arg(long = "http-max-body-bytes", env = "ITK_HTTP_MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub http_max_body_bytes: u64,
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

    /// Refuses a route's body limit above the server's: the server would answer 413 to bodies the
    /// route says it takes, and the operator who raised one flag would find out from the sender.
    pub fn check_route_body_limit(&self, route_flag: &str, route_bytes: u64) -> Result<(), String> {
        if route_bytes > self.http_max_body_bytes {
            return Err(format!(
                "{route_flag} is {route_bytes} bytes but --http-max-body-bytes (ITK_HTTP_MAX_BODY_BYTES) is {}: \
                 every endpoint refuses bodies over the latter, so raise it to at least {route_bytes}",
                self.http_max_body_bytes
            ));
        }
        Ok(())
    }

    /// What the HTTP listeners allow their clients.
    pub fn limits(&self) -> crate::http::ServerLimits {
        crate::http::ServerLimits {
            header_timeout: self.http_header_timeout,
            body_timeout: self.http_body_timeout,
            idle_timeout: self.http_idle_timeout,
            max_connections: self.http_max_connections,
            max_body_bytes: self.http_max_body_bytes,
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

/// [`parse_duration`], refusing zero: a zero timeout would close every connection at once.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be longer than 0s".into());
    }
    Ok(duration)
}
