//! `/healthz` (alive) and `/readyz` (ready to work: NATS, consumers, intakes and pollers up),
//! plus whatever routes a service adds (webhooks), on `--listen`; `/metrics` (Prometheus text)
//! on its own listener, `--metrics-listen`, so that scraping can be allowed where the intakes
//! are not, and the Internet-facing port does not publish the service's internals. Both run on
//! [`server`], which bounds what a client may hold: timeouts, connections, body sizes.

mod server;
pub use server::{BodyRefused, MAX_READ_BUFFER, ServerLimits};

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::args::HttpArgs;

/// Buckets of every `*_seconds` histogram (handler durations, API calls, scans): from a
/// millisecond to a minute, so p50 and p99 of fast and slow stages both fall inside.
pub const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Buckets of `itk_stage_latency_seconds` (stored to handled): it includes time waiting in
/// the stream, which reaches hours while a consumer is paused by an outage.
pub const STAGE_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

/// The process-wide Prometheus recorder (installed on first use). Histograms are rendered as
/// cumulative buckets (`_bucket{le=...}`, `_sum`, `_count`), which is what
/// `histogram_quantile` in the dashboards and alert rules reads; the exporter's default
/// (summaries) cannot be aggregated across pods.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full("itk_stage_latency_seconds".into()),
                            STAGE_LATENCY_BUCKETS,
                        )
                    })
                    .expect("the bucket lists are not empty")
            };
            builder().install_recorder().unwrap_or_else(|_| builder().build_recorder().handle())
        })
        .clone()
}

/// The health routes over `health`: `/healthz` and `/readyz`.
pub fn health_router(health: bus::Readiness) -> Router {
    // Installing the recorder here too: metrics recorded before the metrics listener starts
    // (at start, by the topology set-up) are kept.
    let _ = metrics_handle();
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz).with_state(health))
}

/// `/metrics` only.
pub fn metrics_router() -> Router {
    let metrics = metrics_handle();
    Router::new().route("/metrics", get(move || std::future::ready(metrics.render())))
}

async fn readyz(State(health): State<bus::Readiness>) -> impl IntoResponse {
    let status = if health.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let report = health.report();
    // Nothing registered yet: say so rather than answer 503 with an empty body.
    (status, if report.is_empty() { "starting: nothing is running yet".to_owned() } else { report })
}

/// A bound HTTP server running in the background until `shutdown`.
pub struct HttpServer {
    pub address: SocketAddr,
    /// Where `/metrics` listens, for servers started by [`serve_with_metrics`]; the same as
    /// `address` for [`serve`].
    pub metrics_address: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves `router` with the default [`ServerLimits`] until `shutdown` is
/// cancelled.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    serve_with_limits(listen, router, ServerLimits::default(), shutdown).await
}

/// [`serve`] with the limits given.
pub async fn serve_with_limits(
    listen: SocketAddr,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "HTTP endpoints listening.");
    let task = tokio::spawn(server::run(listener, router, limits, shutdown, "main"));
    Ok(HttpServer { address, metrics_address: address, task })
}

/// Serves `router` (health routes and webhooks) on `--listen` and `/metrics` on
/// `--metrics-listen` until `shutdown`; the task ends when both servers stopped. A port that
/// cannot be bound fails the start, and the error names the setting.
pub async fn serve_with_metrics(
    args: &HttpArgs,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    let metrics_listen = args.metrics_address();
    let metrics_listener = tokio::net::TcpListener::bind(metrics_listen).await.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("metrics on {metrics_listen} (--metrics-listen, ITK_METRICS_LISTEN): {error}"),
        )
    })?;
    let metrics_address = metrics_listener.local_addr()?;
    let main = serve_with_limits(args.listen, router, args.limits(), shutdown.clone()).await?;
    tracing::info!(address = %metrics_address, "Metrics listening.");
    let metrics =
        tokio::spawn(server::run(metrics_listener, metrics_router(), args.limits(), shutdown, "metrics"));
    let task = tokio::spawn(async move {
        let (main, metrics) = tokio::join!(main.task, metrics);
        main.map_err(std::io::Error::other)??;
        metrics.map_err(std::io::Error::other)??;
        Ok(())
    });
    Ok(HttpServer { address: main.address, metrics_address, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        http: HttpArgs,
    }

    fn http_args(args: &[&str]) -> HttpArgs {
        Flags::parse_from(std::iter::once("service").chain(args.iter().copied())).http
    }

    #[tokio::test]
    async fn readiness_follows_health() -> anyhow::Result<()> {
        let health = bus::Readiness::new();
        let shutdown = CancellationToken::new();
        let server = serve("127.0.0.1:0".parse()?, health_router(health.clone()), shutdown.clone()).await?;
        let url = format!("http://{}", server.address);
        let client = reqwest::Client::new();
        assert_eq!(client.get(format!("{url}/healthz")).send().await?.status(), 200);
        let nothing = client.get(format!("{url}/readyz")).send().await?;
        assert_eq!(nothing.status(), 503);
        assert!(nothing.text().await?.contains("nothing is running yet"));
        health.register("consumer x");
        let not_ready = client.get(format!("{url}/readyz")).send().await?;
        assert_eq!(not_ready.status(), 503);
        assert!(not_ready.text().await?.contains("consumer x: starting"));
        health.set_ready("consumer x");
        assert_eq!(client.get(format!("{url}/readyz")).send().await?.status(), 200);
        shutdown.cancel();
        server.task.await??;
        Ok(())
    }

    #[tokio::test]
    async fn metrics_have_their_own_port_and_the_probes_stay_on_listen() -> anyhow::Result<()> {
        let health = bus::Readiness::new();
        health.set_ready("x");
        let shutdown = CancellationToken::new();
        let args = http_args(&["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        let server = serve_with_metrics(&args, health_router(health), shutdown.clone()).await?;
        assert_ne!(server.address, server.metrics_address);
        metrics::counter!("itk_test_total").increment(1);
        let client = reqwest::Client::new();
        let main = format!("http://{}", server.address);
        let scrape = format!("http://{}", server.metrics_address);
        assert_eq!(client.get(format!("{main}/readyz")).send().await?.status(), 200);
        assert_eq!(client.get(format!("{main}/healthz")).send().await?.status(), 200);
        assert_eq!(
            client.get(format!("{main}/metrics")).send().await?.status(),
            404,
            "no metrics on --listen"
        );
        let metrics = client.get(format!("{scrape}/metrics")).send().await?;
        assert_eq!(metrics.status(), 200);
        assert!(metrics.text().await?.contains("itk_test_total"));
        assert_eq!(client.get(format!("{scrape}/readyz")).send().await?.status(), 404, "only /metrics there");
        shutdown.cancel();
        server.task.await??;
        Ok(())
    }

    #[tokio::test]
    async fn a_taken_metrics_port_fails_the_start_naming_the_setting() -> anyhow::Result<()> {
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = taken.local_addr()?.port();
        let args = http_args(&["--listen", "127.0.0.1:0", "--metrics-listen", &format!("127.0.0.1:{port}")]);
        let error =
            serve_with_metrics(&args, Router::new(), CancellationToken::new()).await.err().expect("refused");
        assert!(error.to_string().contains("--metrics-listen"), "{error}");
        Ok(())
    }

    #[test]
    fn metrics_listen_defaults_to_9464_and_follows_a_free_listen_port() {
        let defaults = http_args(&[]);
        assert_eq!(defaults.metrics_address(), "0.0.0.0:9464".parse().unwrap());
        assert_eq!(defaults.listen, "0.0.0.0:9090".parse().unwrap());
        // Tests and the demo run several services in one process on free ports.
        let free = http_args(&["--listen", "127.0.0.1:0"]);
        assert_eq!(free.metrics_address(), "127.0.0.1:0".parse().unwrap());
        let explicit = http_args(&["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:9999"]);
        assert_eq!(explicit.metrics_address(), "127.0.0.1:9999".parse().unwrap());
    }

    #[tokio::test]
    async fn stage_durations_are_histograms_with_buckets() -> anyhow::Result<()> {
        let handle = metrics_handle();
        metrics::histogram!("itk_handler_seconds", "stage" => "bucket-test").record(0.02);
        metrics::histogram!("itk_stage_latency_seconds", "stage" => "bucket-test").record(1200.0);
        let text = handle.render();
        assert!(text.contains(r#"itk_handler_seconds_bucket{stage="bucket-test",le="0.025"} 1"#), "{text}");
        assert!(text.contains(r#"itk_handler_seconds_bucket{stage="bucket-test",le="+Inf"} 1"#), "{text}");
        assert!(
            text.contains(r#"itk_stage_latency_seconds_bucket{stage="bucket-test",le="3600"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"itk_stage_latency_seconds_count{stage="bucket-test"} 1"#), "{text}");
        assert!(!text.contains("quantile="), "no summaries: {text}");
        Ok(())
    }
}
