//! Hostile clients against the real server every service runs (`service_kit::http`): half-open
//! heads, slow bodies, huge declared lengths and more connections than allowed. Short timeouts
//! here; the bounds asserted are generous so a loaded machine does not fail them.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use service_kit::http::{HttpServer, ServerLimits, serve_with_limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const GENEROUS: Duration = Duration::from_secs(10);

fn limits() -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_secs(1),
        max_connections: 8,
        max_body_bytes: 64 * 1024,
    }
}

async fn server(limits: ServerLimits) -> anyhow::Result<(HttpServer, CancellationToken)> {
    let router = Router::new()
        .route("/echo", post(|body: Bytes| async move { format!("{} bytes", body.len()) }))
        .merge(service_kit::http::health_router(bus::Readiness::new()));
    let shutdown = CancellationToken::new();
    let server = serve_with_limits("127.0.0.1:0".parse()?, router, limits, shutdown.clone()).await?;
    Ok((server, shutdown))
}

/// Everything the server sends until it closes the connection (an error counts as closed).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(GENEROUS, async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&all).into_owned()
}

/// Whether the server closed the connection within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(within, stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_heads_are_closed_after_the_header_timeout() -> anyhow::Result<()> {
    let (server, shutdown) = server(limits()).await?;
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut stream = TcpStream::connect(server.address).await?;
        stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ").await?;
        clients.push(stream);
    }
    let mut silent = TcpStream::connect(server.address).await?;
    for stream in clients.iter_mut().chain(std::iter::once(&mut silent)) {
        assert!(closed_within(stream, GENEROUS).await, "a half-open connection was left open");
    }
    shutdown.cancel();
    tokio::time::timeout(GENEROUS, server.task).await???;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_after_the_body_timeout_with_408() -> anyhow::Result<()> {
    let (server, _shutdown) = server(limits()).await?;
    let mut stream = TcpStream::connect(server.address).await?;
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789").await?;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_content_length_gets_413_before_the_body_is_read() -> anyhow::Result<()> {
    let (server, _shutdown) = server(limits()).await?;
    let mut stream = TcpStream::connect(server.address).await?;
    // Not one byte of the body is sent: a 413 can only come from the declared length.
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n").await?;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_cut_at_the_limit_and_small_ones_pass() -> anyhow::Result<()> {
    let (server, _shutdown) = server(limits()).await?;
    let client = reqwest::Client::new();
    let url = format!("http://{}/echo", server.address);
    let small = client.post(&url).body(vec![b'a'; 1000]).send().await?;
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().await?, "1000 bytes");
    let mut stream = TcpStream::connect(server.address).await?;
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await?;
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..5 {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
        stream.write_all(&chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_large_bodies_beyond_the_connection_limit_are_refused() -> anyhow::Result<()> {
    let limits = limits();
    let (server, _shutdown) =
        server(ServerLimits { body_timeout: Duration::from_secs(30), ..limits.clone() }).await?;
    let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", limits.max_body_bytes);
    let half = vec![b'a'; limits.max_body_bytes as usize / 2];
    let mut held = Vec::new();
    for _ in 0..limits.max_connections {
        let mut stream = TcpStream::connect(server.address).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&half).await?;
        held.push(stream);
    }
    // Give the server time to accept them all and start reading their bodies.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.address).await?;
        let _ = stream.write_all(head.as_bytes()).await;
        if closed_within(&mut stream, GENEROUS).await {
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "every connection over the limit is closed at once");
    // The held ones are still served: finishing a body gets its answer.
    let first = &mut held[0];
    first.write_all(&half).await?;
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(GENEROUS, first.read(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> anyhow::Result<()> {
    let (server, _shutdown) = server(limits()).await?;
    let mut stream = TcpStream::connect(server.address).await?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(GENEROUS, stream.read(&mut answer)).await??;
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive past the header timeout (500 ms): it is the idle timeout (1 s) that applies.
    let mut byte = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await.is_err());
    assert!(closed_within(&mut stream, GENEROUS).await, "an idle connection was left open");
    Ok(())
}
