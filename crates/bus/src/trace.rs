//! `traceparent` over NATS headers, so one trace spans every service.
//!
//! Publishing takes the trace context of the current `tracing` span when an OpenTelemetry layer
//! is installed. Without one (or with no active trace) it continues the trace of the message
//! being handled, and failing that starts a new trace: every publish carries a `traceparent`.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    /// The trace of the message the current task is handling.
    static INCOMING: SpanContext;
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// The span context carried by a message's headers, if any.
pub fn extract(headers: Option<&HeaderMap>) -> Option<SpanContext> {
    let headers = headers?;
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Makes `span` a child of the trace carried by `headers`.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(remote) = extract(headers) {
        let context = opentelemetry::Context::new().with_remote_span_context(remote);
        let _ = span.set_parent(context);
    }
}

/// Runs `future` with `incoming` as the trace to continue when no OpenTelemetry span is active.
pub async fn continue_trace<F: std::future::Future>(incoming: Option<SpanContext>, future: F) -> F::Output {
    match incoming {
        Some(context) => INCOMING.scope(context, future).await,
        None => future.await,
    }
}

/// Adds a `traceparent` header for the current context (see the module documentation).
pub fn inject(headers: &mut HeaderMap) {
    let current = tracing::Span::current().context();
    let span_context = current.span().span_context().clone();
    let span_context = if span_context.is_valid() {
        span_context
    } else {
        let trace_id = INCOMING
            .try_with(|incoming| incoming.trace_id())
            .unwrap_or_else(|_| TraceId::from_bytes(rand::random::<[u8; 16]>()));
        SpanContext::new(
            trace_id,
            SpanId::from_bytes(random_nonzero_span_id()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    };
    let context = opentelemetry::Context::new().with_remote_span_context(span_context);
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

fn random_nonzero_span_id() -> [u8; 8] {
    loop {
        let id = rand::random::<[u8; 8]>();
        if id != [0; 8] {
            return id;
        }
    }
}

/// The trace id of a message's `traceparent`, as 32 hex digits.
pub fn trace_id_of(headers: Option<&HeaderMap>) -> Option<String> {
    extract(headers).map(|c| c.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn continues_the_incoming_trace_without_an_otel_layer() {
        let mut first = HeaderMap::new();
        inject(&mut first);
        let incoming = extract(Some(&first)).expect("a valid traceparent");
        let mut second = HeaderMap::new();
        continue_trace(Some(incoming.clone()), async { inject(&mut second) }).await;
        assert_eq!(trace_id_of(Some(&second)), Some(incoming.trace_id().to_string()));
        assert_ne!(first.get(TRACEPARENT), second.get(TRACEPARENT), "a new span id");
    }
}
