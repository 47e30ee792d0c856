//! The HTTP/1.1 server under every endpoint of every service (webhooks, probes, `/metrics`).
//!
//! `axum::serve` has no timeouts and no connection limit: hostile clients held 600 half-open
//! requests and 250 unfinished 1 MB bodies (half a gigabyte, over the pod's limit). Here:
//!
//! - a connection gets `header_timeout` to send a request's head (from accept, and from the
//!   first byte of each later request) and `idle_timeout` between requests on keep-alive;
//! - a request gets `body_timeout` to send its whole body (408 when it runs out);
//! - a declared `Content-Length` over `max_body_bytes` is answered 413 before anything of the
//!   body is read, and a body without a length is cut at the limit (413);
//! - at most `max_connections` are open at once; one more is closed at accept, so memory stays
//!   under about `max_connections × (max_body_bytes + MAX_READ_BUFFER)`.
//!
//! Refusals close the connection (`Connection: close`): the rest of a refused body is never read.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The largest read buffer of a connection, so the largest request head too: a client that
/// sends headers without end is refused at this size, and a slow one holds no more than this.
pub const MAX_READ_BUFFER: usize = 64 * 1024;

/// What one listener allows its clients (see the module's description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub max_body_bytes: u64,
}

impl Default for ServerLimits {
    /// The defaults of `HttpArgs`: 128 connections × 1 MiB stays well inside a 256 MiB pod.
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 128,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish (each
/// connection still bounded by its timeouts) and returns when every connection has ended.
/// `listener_name` labels the metrics (`main`, `metrics`).
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    listener_name: &'static str,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, mostly: accepting again at once would spin.
                    tracing::warn!(%error, "Accepting an HTTP connection failed; retrying shortly.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closed at once rather than queued: queued connections would hold memory and
            // file descriptors all the same, and the client (EventBridge, Snyk) retries.
            metrics::counter!("itk_http_connections_refused_total", "listener" => listener_name).increment(1);
            drop(stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            router.clone(),
            limits.clone(),
            shutdown.clone(),
            slot,
            listener_name,
        ));
    }
    // Every open connection holds a slot: having them all back means all have ended.
    let _all = slots.acquire_many(limits.max_connections).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
    listener_name: &'static str,
) {
    let _ = stream.set_nodelay(true);
    let open = metrics::gauge!("itk_http_open_connections", "listener" => listener_name);
    open.increment(1.0);
    let phase = Arc::new(Mutex::new(Phase::accepted(Instant::now())));
    let io = TokioIo::new(Watched { inner: stream, phase: phase.clone() });
    let service = hyper::service::service_fn({
        let (phase, limits) = (phase.clone(), limits.clone());
        move |request| handle(request, router.clone(), limits.clone(), phase.clone(), listener_name)
    });
    let mut builder = http1::Builder::new();
    // hyper's own header timer also runs between keep-alive requests; ours tells both apart.
    builder.header_read_timeout(None).max_buf_size(MAX_READ_BUFFER).keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error.");
                }
                break;
            }
            reason = watchdog(&phase, &limits) => {
                // Dropping the connection closes the socket.
                metrics::counter!("itk_http_connections_closed_total",
                    "listener" => listener_name, "reason" => reason)
                .increment(1);
                break;
            }
            () = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    open.decrement(1.0);
}

/// Returns when the connection has waited longer than it may: `header_timeout` or
/// `idle_timeout`. Never while a request is being handled (its body has its own timeout).
async fn watchdog(phase: &Mutex<Phase>, limits: &ServerLimits) -> &'static str {
    loop {
        let now = Instant::now();
        let check = phase.lock().expect("phase lock").deadline(limits);
        match check {
            Some((deadline, reason)) if deadline <= now => return reason,
            Some((deadline, _)) => tokio::time::sleep_until(deadline).await,
            // A request in flight: look again later (its end restarts the idle clock).
            None => tokio::time::sleep(limits.header_timeout.min(limits.idle_timeout)).await,
        }
    }
}

/// Where a connection is between requests: the pure state the watchdog reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase {
    in_flight: usize,
    /// Since when it waits, with no request being handled.
    waiting_since: Instant,
    /// Whether what it waits for is the rest of a request's head (bytes have come, or the
    /// connection is new) rather than a next request on keep-alive.
    reading_head: bool,
}

impl Phase {
    /// A new connection owes its first request's head from now.
    pub(crate) fn accepted(now: Instant) -> Phase {
        Phase { in_flight: 0, waiting_since: now, reading_head: true }
    }

    /// Bytes came in.
    pub(crate) fn bytes_read(&mut self, now: Instant) {
        if self.in_flight == 0 && !self.reading_head {
            self.reading_head = true;
            self.waiting_since = now;
        }
    }

    /// A request's head is complete and handed to the router.
    pub(crate) fn request_started(&mut self) {
        self.in_flight += 1;
        self.reading_head = false;
    }

    /// The router answered.
    pub(crate) fn request_ended(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.waiting_since = now;
            self.reading_head = false;
        }
    }

    /// When the wait runs out and why; `None` while a request is handled.
    pub(crate) fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, &'static str)> {
        (self.in_flight == 0).then(|| {
            if self.reading_head {
                (self.waiting_since + limits.header_timeout, "header_timeout")
            } else {
                (self.waiting_since + limits.idle_timeout, "idle_timeout")
            }
        })
    }
}

/// The socket, telling the connection's [`Phase`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    phase: Arc<Mutex<Phase>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.phase.lock().expect("phase lock").bytes_read(Instant::now());
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks the request ended however its handling ends (answered or dropped).
struct InFlight(Arc<Mutex<Phase>>);

impl InFlight {
    fn start(phase: Arc<Mutex<Phase>>) -> InFlight {
        phase.lock().expect("phase lock").request_started();
        InFlight(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().expect("phase lock").request_ended(Instant::now());
    }
}

async fn handle(
    request: Request<Incoming>,
    router: Router,
    limits: Arc<ServerLimits>,
    phase: Arc<Mutex<Phase>>,
    listener_name: &'static str,
) -> Result<Response, Infallible> {
    let _in_flight = InFlight::start(phase);
    let refused = |verdict: Verdict| {
        metrics::counter!("itk_http_requests_refused_total",
            "listener" => listener_name, "reason" => verdict.reason())
        .increment(1);
        Ok(verdict.response(&limits))
    };
    if declared_length(&request).is_some_and(|length| length > limits.max_body_bytes) {
        return refused(Verdict::TooLarge);
    }
    let verdict = Arc::new(AtomicU8::new(Verdict::Fine as u8));
    let (parts, body) = request.into_parts();
    let body = GuardedBody {
        inner: body,
        remaining: limits.max_body_bytes,
        limit: limits.max_body_bytes,
        timeout: limits.body_timeout,
        deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
        verdict: verdict.clone(),
        refused: false,
    };
    let request = Request::from_parts(parts, axum::body::Body::new(body));
    let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
    match Verdict::from_u8(verdict.load(Ordering::Acquire)) {
        // Whatever the handler made of the body error, the client is told what happened.
        Verdict::Fine => Ok(response),
        other => refused(other),
    }
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Verdict {
    Fine = 0,
    TooLarge = 1,
    TimedOut = 2,
}

impl Verdict {
    fn from_u8(value: u8) -> Verdict {
        match value {
            1 => Verdict::TooLarge,
            2 => Verdict::TimedOut,
            _ => Verdict::Fine,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Verdict::Fine => "none",
            Verdict::TooLarge => "body_too_large",
            Verdict::TimedOut => "body_timeout",
        }
    }

    fn response(self, limits: &ServerLimits) -> Response {
        let (status, text) = match self {
            Verdict::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", limits.max_body_bytes),
            ),
            _ => (
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {}", humantime::format_duration(limits.body_timeout)),
            ),
        };
        let mut response = (status, text).into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Why a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefused {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body did not arrive within {}", humantime::format_duration(*.after))]
    TimedOut { after: Duration },
    #[error("reading the body failed: {0}")]
    Read(#[source] hyper::Error),
}

/// The request body, cut at the size limit and at the body deadline.
struct GuardedBody {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    verdict: Arc<AtomicU8>,
    refused: bool,
}

impl GuardedBody {
    fn refuse(
        &mut self,
        verdict: Verdict,
        error: BodyRefused,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyRefused>>> {
        self.refused = true;
        self.verdict.store(verdict as u8, Ordering::Release);
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyRefused;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyRefused>>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        // Checked first too: a client trickling bytes keeps the inner body ready.
        if this.deadline.is_elapsed() {
            let after = this.timeout;
            return this.refuse(Verdict::TimedOut, BodyRefused::TimedOut { after });
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let length = frame.data_ref().map_or(0, |data| data.len() as u64);
                if length > this.remaining {
                    let limit = this.limit;
                    return this.refuse(Verdict::TooLarge, BodyRefused::TooLarge { limit });
                }
                this.remaining -= length;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyRefused::Read(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let after = this.timeout;
                    return this.refuse(Verdict::TimedOut, BodyRefused::TimedOut { after });
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.refused || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ServerLimits::default()
        }
    }

    #[test]
    fn a_new_connection_owes_its_head_within_the_header_timeout() {
        let start = Instant::now();
        let phase = Phase::accepted(start);
        assert_eq!(phase.deadline(&limits()), Some((start + Duration::from_secs(10), "header_timeout")));
    }

    #[test]
    fn a_request_being_handled_has_no_connection_deadline() {
        let start = Instant::now();
        let mut phase = Phase::accepted(start);
        phase.bytes_read(start);
        phase.request_started();
        assert_eq!(phase.deadline(&limits()), None);
        // Bytes of the body (or a pipelined request) do not start a header clock.
        phase.bytes_read(start + Duration::from_secs(1));
        assert_eq!(phase.deadline(&limits()), None);
    }

    #[test]
    fn between_requests_the_idle_timeout_runs_then_the_header_timeout_from_the_next_byte() {
        let start = Instant::now();
        let mut phase = Phase::accepted(start);
        phase.request_started();
        let answered = start + Duration::from_secs(2);
        phase.request_ended(answered);
        assert_eq!(phase.deadline(&limits()), Some((answered + Duration::from_secs(60), "idle_timeout")));
        let next = answered + Duration::from_secs(30);
        phase.bytes_read(next);
        assert_eq!(phase.deadline(&limits()), Some((next + Duration::from_secs(10), "header_timeout")));
        // More bytes of the same head do not extend it.
        phase.bytes_read(next + Duration::from_secs(5));
        assert_eq!(phase.deadline(&limits()), Some((next + Duration::from_secs(10), "header_timeout")));
    }
}
