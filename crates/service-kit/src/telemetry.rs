//! Logs (text or JSON, fields first) and OpenTelemetry traces.
//!
//! A tracer provider is always installed, so spans have trace ids and every publish carries a
//! `traceparent` that continues the trace; spans are exported over OTLP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set (without a collector an
//! exporter would only log errors), over HTTP/protobuf or gRPC as
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) says: the OpenTelemetry names.

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::{Arc, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::args::{LogFormat, TelemetryArgs};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?} (RUST_LOG / --log-level): {source}")]
    Filter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error(
        "unsupported OTLP protocol {0:?} (OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL): \
         use grpc or http/protobuf"
    )]
    Protocol(String),
    #[error("cannot start the OTLP gRPC exporter's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("a global subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and shuts down the tracer provider when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    /// The gRPC exporter's own runtime, when it exports over gRPC (see [`Exporting`]).
    grpc_runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
        // Dropped from async code (the end of `main`): a runtime may not block there.
        if let Some(runtime) = self.grpc_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OtlpProtocol {
    HttpProtobuf,
    Grpc,
}

/// The OTLP protocol the environment asks for (the traces-specific variable first), as the
/// OpenTelemetry specification names them; HTTP/protobuf when none is set.
fn otlp_protocol(traces: Option<String>, general: Option<String>) -> Result<OtlpProtocol, TelemetryError> {
    match traces.or(general).as_deref().map(str::trim) {
        None | Some("") | Some("http/protobuf") => Ok(OtlpProtocol::HttpProtobuf),
        Some("grpc") => Ok(OtlpProtocol::Grpc),
        Some(other) => Err(TelemetryError::Protocol(other.to_owned())),
    }
}

/// A tracer provider and, for gRPC, the runtime its exporter lives on.
///
/// The SDK's batch processor exports from its own thread with a plain executor; tonic's channel
/// and its timers need a Tokio runtime that outlives every export (without one, the processor's
/// thread panics with "no reactor running" and spans are dropped silently: a known trap of
/// opentelemetry-otlp). So the gRPC channel is built inside a small runtime of its own, kept
/// until the provider has shut down, whatever runtime the service itself uses.
struct Exporting {
    provider: SdkTracerProvider,
    grpc_runtime: Option<tokio::runtime::Runtime>,
}

/// Installs logging and tracing for a service.
pub fn init(service: &str, args: &TelemetryArgs) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|source| TelemetryError::Filter { filter: args.log_level.clone(), source })?;
    let Exporting { provider, grpc_runtime } = tracer_provider(service)?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service.to_owned()))
        .with_filter(EnvFilter::new("info,h2=off,hyper=off,reqwest=off,opentelemetry=off"));
    // Logs are diagnostics: they go to stderr, so that stdout carries only what a command prints
    // (explain's JSON lines, the demo's board) and can be piped. Containers collect both.
    let fmt = match args.log_format {
        LogFormat::Json => json_layer(std::io::stderr).boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard { provider, grpc_runtime })
}

/// JSON log lines, one object per event with its fields flattened, carrying the `trace_id` and
/// `span_id` of the span it happened in: a log line found in the log store leads to its trace,
/// and a trace to every line logged along it (intake, triage, the JIRA call, the Slack message).
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = Arc::new(OnceLock::new());
    let json = tracing_subscriber::fmt::format().json().flatten_event(true);
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(WithTraceIds { format: json, dispatch: dispatch.clone() })
        .with_writer(writer)
        .and_then(KeepDispatch(dispatch))
}

/// Wraps the JSON event format and appends the OpenTelemetry ids of the current span.
struct WithTraceIds<F> {
    format: F,
    /// The subscriber this layer belongs to, to ask the OpenTelemetry layer for a span's context:
    /// while an event is dispatched, `dispatcher::get_default` answers "none" (no re-entry).
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

/// Remembers the dispatcher [`WithTraceIds`] is registered in.
struct KeepDispatch(Arc<OnceLock<WeakDispatch>>);

impl<S: tracing::Subscriber> Layer<S> for KeepDispatch {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.format.format_event(ctx, Writer::new(&mut line), event)?;
        // The JSON formatter has let go of the span's extensions by now; reading the OpenTelemetry
        // context locks them again (it must not while they are held).
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
        let ids = ctx
            .lookup_current()
            .zip(dispatch)
            .and_then(|(span, dispatch)| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch));
        let ids = ids.map(|cx| cx.span().span_context().clone()).filter(|ids| ids.is_valid());
        match (ids, line.trim_end().strip_suffix('}')) {
            (Some(ids), Some(object)) => writeln!(
                writer,
                r#"{object},"trace_id":"{}","span_id":"{}"}}"#,
                ids.trace_id(),
                ids.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

fn tracer_provider(service: &str) -> Result<Exporting, TelemetryError> {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let mut grpc_runtime = None;
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .ok()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok());
    if let Some(endpoint) = endpoint {
        let protocol = otlp_protocol(
            std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").ok(),
            std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok(),
        )?;
        let exporter = match protocol {
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder().with_http().build()?,
            OtlpProtocol::Grpc => {
                let (exporter, runtime) = grpc_exporter(&endpoint)?;
                grpc_runtime = Some(runtime);
                exporter
            }
        };
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(Exporting { provider: builder.build(), grpc_runtime })
}

/// The OTLP/gRPC exporter, built inside the runtime its channel will live on (see [`Exporting`]).
fn grpc_exporter(
    endpoint: &str,
) -> Result<(opentelemetry_otlp::SpanExporter, tokio::runtime::Runtime), TelemetryError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-grpc")
        .enable_all()
        .build()?;
    let entered = runtime.enter();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    // tonic wants the endpoint's scheme; the variable may name only host:port.
    if !endpoint.contains("://") {
        exporter = exporter.with_endpoint(format!("http://{endpoint}"));
    }
    let exporter = exporter.build()?;
    drop(entered);
    Ok((exporter, runtime))
}

/// For tests: installs telemetry once per process (later calls do nothing). Logs go to the test
/// writer at `warn` unless `RUST_LOG` says otherwise.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let provider = tracer_provider("tests").expect("a tracer provider without exporter").provider;
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;

    /// Collects what the layer writes, one buffer for the whole test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_otlp_protocol_follows_the_opentelemetry_variables() {
        let protocol = |traces: Option<&str>, general: Option<&str>| {
            otlp_protocol(traces.map(str::to_owned), general.map(str::to_owned))
        };
        assert_eq!(protocol(None, None).unwrap(), OtlpProtocol::HttpProtobuf);
        assert_eq!(protocol(None, Some("grpc")).unwrap(), OtlpProtocol::Grpc);
        assert_eq!(protocol(Some("http/protobuf"), Some("grpc")).unwrap(), OtlpProtocol::HttpProtobuf);
        assert_eq!(protocol(Some("grpc"), None).unwrap(), OtlpProtocol::Grpc);
        let refused = protocol(None, Some("http/json")).unwrap_err().to_string();
        assert!(refused.contains("http/json") && refused.contains("grpc or http/protobuf"), "{refused}");
    }

    #[test]
    fn json_lines_carry_the_trace_and_span_ids_of_the_span_they_were_logged_in() {
        let captured = Captured::default();
        let writer = captured.clone();
        let provider = tracer_provider("test").unwrap().provider;
        let subscriber = tracing_subscriber::registry()
            .with(json_layer(move || writer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let expected = tracing::subscriber::with_default(subscriber, || {
            tracing::info!(outside = true, "before any span");
            let span = tracing::info_span!("handle", subject = "desired.snyk");
            let _entered = span.enter();
            tracing::warn!(key = "snyk:acme/api", "Ticket filed.");
            span.context().span().span_context().clone()
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).expect(line)).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "before any span");
        assert!(lines[0].get("trace_id").is_none(), "{text}");
        assert_eq!(lines[1]["message"], "Ticket filed.");
        assert_eq!(lines[1]["key"], "snyk:acme/api");
        assert_eq!(lines[1]["trace_id"], expected.trace_id().to_string());
        assert_eq!(lines[1]["span_id"], expected.span_id().to_string());
        assert_eq!(lines[1]["trace_id"].as_str().unwrap().len(), 32);
    }
}
