//! Spans reach an OTLP collector over gRPC when `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`: a real
//! tonic server speaking the OpenTelemetry collector's TraceService receives them, and the
//! guard's drop at the end of an async `main` flushes them without a panic.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Set only in the child process the test starts: the OpenTelemetry variables are read from the
/// environment, which a test may not change in its own process.
const CHILD: &str = "ITK_OTLP_GRPC_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_grpc_to_a_collector() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (received, mut requests) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(received)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_service_exports_one_span_and_exits", "--nocapture"])
        .env(CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .await
        .unwrap();
    let output =
        String::from_utf8_lossy(&child.stdout).into_owned() + &String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{output}");
    assert!(!output.contains("panicked"), "{output}");

    let request = tokio::time::timeout(std::time::Duration::from_secs(20), requests.recv())
        .await
        .expect("the collector received spans within 20 s")
        .unwrap();
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    let service = resource.attributes.iter().find(|a| a.key == "service.name").unwrap();
    assert!(format!("{:?}", service.value).contains("otlp-grpc-test"), "{service:?}");
    let names: Vec<&str> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|span| span.name.as_str())
        .collect();
    assert!(names.contains(&"handle"), "{names:?}");
}

/// The child: what a service does, in an async `main` that ends by dropping the guard (which
/// flushes the batch to the collector).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_exports_one_span_and_exits() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let guard = service_kit::telemetry::init(
        "otlp-grpc-test",
        &service_kit::TelemetryArgs {
            log_format: service_kit::args::LogFormat::Json,
            log_level: "info".into(),
        },
    )
    .unwrap();
    tracing::info_span!("handle", subject = "desired.snyk").in_scope(|| tracing::info!("Ticket filed."));
    drop(guard);
}
