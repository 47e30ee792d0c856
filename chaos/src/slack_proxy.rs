//! A fault-injecting HTTP proxy in front of the Slack simulator: the notifier talks to Slack
//! through it. It answers some requests with 503 without forwarding them, delays others, and
//! answers some `chat.postMessage` calls with 500 *after* Slack posted the message (the case a
//! sender cannot tell from a failure: the message exists, the answer says it does not).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio_util::sync::CancellationToken;

/// Which requests fail, by their number (deterministic).
#[derive(Debug, Clone)]
pub struct ProxyPlan {
    /// Every n-th request is answered 503 `Retry-After: 1` and not forwarded (0: never).
    pub unavailable_every: u64,
    /// Every n-th `chat.postMessage` is forwarded, then answered 500 (0: never).
    pub fail_after_post_every: u64,
    /// Requests are delayed by up to this (spread by request number).
    pub max_delay: Duration,
}

/// What the proxy did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyStats {
    pub forwarded: u64,
    pub unavailable: u64,
    pub failed_after_post: u64,
}

struct Shared {
    upstream: String,
    plan: ProxyPlan,
    enabled: AtomicBool,
    requests: AtomicU64,
    posts: AtomicU64,
    forwarded: AtomicU64,
    unavailable: AtomicU64,
    failed_after_post: AtomicU64,
    client: reqwest::Client,
}

/// The running proxy; stops when dropped.
pub struct FaultyProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl FaultyProxy {
    /// Proxies to `upstream` (the simulator's base URL); faults start disabled.
    pub async fn start(upstream: String, plan: ProxyPlan) -> std::io::Result<FaultyProxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            plan,
            enabled: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            posts: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            failed_after_post: AtomicU64::new(0),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(std::io::Error::other)?,
        });
        let stop = CancellationToken::new();
        let app = axum::Router::new().fallback(proxy).with_state(shared.clone());
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
        });
        Ok(FaultyProxy { address, shared, stop })
    }

    /// The Web API base URL to give the notifier (`--slack-api-url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            forwarded: self.shared.forwarded.load(Ordering::SeqCst),
            unavailable: self.shared.unavailable.load(Ordering::SeqCst),
            failed_after_post: self.shared.failed_after_post.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn every(n: u64, period: u64) -> bool {
    period > 0 && n % period == period - 1
}

async fn proxy(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst);
    let enabled = shared.enabled.load(Ordering::SeqCst);
    let plan = &shared.plan;
    if enabled && every(n, plan.unavailable_every) {
        shared.unavailable.fetch_add(1, Ordering::SeqCst);
        return answer(StatusCode::SERVICE_UNAVAILABLE, Some("1"), "upstream unavailable".into());
    }
    if enabled && !plan.max_delay.is_zero() {
        // Spread delays over [0, max_delay) by request number (Knuth's multiplicative hash).
        let fraction = (n.wrapping_mul(2_654_435_761) % 1000) as u32;
        tokio::time::sleep(plan.max_delay * fraction / 1000).await;
    }
    let (parts, body) = request.into_parts();
    let is_post = parts.uri.path().ends_with("/chat.postMessage");
    let Ok(body) = to_bytes(body, 4 * 1024 * 1024).await else {
        return answer(StatusCode::BAD_REQUEST, None, "unreadable body".into());
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut outgoing = shared.client.request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = parts.headers.get(&name) {
            outgoing = outgoing.header(name, value.clone());
        }
    }
    let upstream = match outgoing.body(body).send().await {
        Ok(response) => response,
        Err(error) => return answer(StatusCode::BAD_GATEWAY, None, format!("proxy: {error}")),
    };
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let status = upstream.status();
    let retry_after = upstream.headers().get(header::RETRY_AFTER).cloned();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    // The token's scopes, which the notifier checks at start, travel in this header.
    let scopes = upstream.headers().get(SCOPES_HEADER).cloned();
    let text = upstream.text().await.unwrap_or_default();
    if is_post && enabled && status.is_success() {
        let post = shared.posts.fetch_add(1, Ordering::SeqCst);
        if every(post, plan.fail_after_post_every) {
            shared.failed_after_post.fetch_add(1, Ordering::SeqCst);
            return answer(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error".into());
        }
    }
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if let Some(value) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = scopes {
        response.headers_mut().insert(SCOPES_HEADER, value);
    }
    response
}

const SCOPES_HEADER: &str = "x-oauth-scopes";

fn answer(status: StatusCode, retry_after: Option<&'static str>, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}
