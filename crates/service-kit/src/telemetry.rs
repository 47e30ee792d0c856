//! Logs (text or JSON, fields first) and OpenTelemetry traces.
//!
//! A tracer provider is always installed, so spans have trace ids and every publish carries a
//! `traceparent` that continues the trace; spans are exported over OTLP/HTTP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (without a collector an exporter would only log errors).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::args::{LogFormat, TelemetryArgs};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?} (RUST_LOG / --log-level): {source}")]
    Filter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and shuts down the tracer provider when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs logging and tracing for a service.
pub fn init(service: &str, args: &TelemetryArgs) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|source| TelemetryError::Filter { filter: args.log_level.clone(), source })?;
    let provider = tracer_provider(service)?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service.to_owned()))
        .with_filter(EnvFilter::new("info,h2=off,hyper=off,reqwest=off,opentelemetry=off"));
    // Logs are diagnostics: they go to stderr, so that stdout carries only what a command prints
    // (explain's JSON lines, the demo's board) and can be piped. Containers collect both.
    let fmt = match args.log_format {
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed()
        }
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// For tests: installs telemetry once per process (later calls do nothing). Logs go to the test
/// writer at `warn` unless `RUST_LOG` says otherwise.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let provider = tracer_provider("tests").expect("a tracer provider without exporter");
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("tests"));
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .with(otel)
            .try_init();
        opentelemetry::global::set_tracer_provider(provider);
    });
}
