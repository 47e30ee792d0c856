//! `/healthz` (alive), `/readyz` (ready to work: NATS and consumers up) and `/metrics`
//! (Prometheus text), plus whatever routes a service adds (webhooks).

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// The health and metrics routes over `health`.
pub fn health_router(health: bus::Health) -> Router {
    let metrics = metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(health))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
}

async fn readyz(State(health): State<bus::Health>) -> impl IntoResponse {
    let status = if health.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, health.report())
}

/// A bound HTTP server running in the background until `shutdown`.
pub struct HttpServer {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves `router` until `shutdown` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "HTTP endpoints listening.");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
    });
    Ok(HttpServer { address, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_follows_health() -> anyhow::Result<()> {
        let health = bus::Health::new();
        health.register("consumer x");
        let shutdown = CancellationToken::new();
        let server = serve("127.0.0.1:0".parse()?, health_router(health.clone()), shutdown.clone()).await?;
        let url = format!("http://{}", server.address);
        let client = reqwest::Client::new();
        assert_eq!(client.get(format!("{url}/healthz")).send().await?.status(), 200);
        let not_ready = client.get(format!("{url}/readyz")).send().await?;
        assert_eq!(not_ready.status(), 503);
        assert!(not_ready.text().await?.contains("consumer x: starting"));
        health.set_ready("consumer x");
        assert_eq!(client.get(format!("{url}/readyz")).send().await?.status(), 200);
        metrics::counter!("itk_test_total").increment(1);
        let metrics = client.get(format!("{url}/metrics")).send().await?.text().await?;
        assert!(metrics.contains("itk_test_total"), "{metrics}");
        shutdown.cancel();
        server.task.await??;
        Ok(())
    }
}
