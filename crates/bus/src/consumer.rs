//! The durable pull-consumer loop every service runs its handler in.
//!
//! ```text
//!   fetch (as many as free slots) ──▶ handle ──┬─ Ok ─────────────────▶ ack (confirmed)
//!                                              ├─ ErrorClass::Ack ─────▶ ack, logged
//!                                              ├─ ErrorClass::Retry ───▶ nak with delay, or dead-letter when deliveries are exhausted
//!                                              ├─ ErrorClass::DeadLetter ▶ dead-letter, then term
//!                                              ├─ ErrorClass::Pause ───▶ hold the message, stop fetching, report unready, retry in place
//!                                              └─ panic ───────────────▶ dead-letter, then term
//! ```
//!
//! A panic anywhere on the way from the handler's answer to the ack (classifying the error,
//! formatting it, dead-lettering) is caught too: the message is dead-lettered with the panic's
//! message instead of being redelivered until its deliveries run out and then lost.
//!
//! A handler must be idempotent: a message is acked only after its effect, so a crash between
//! the two redelivers it. Long work is kept alive with `+WPI` progress signals. On shutdown the
//! loop stops fetching, lets in-flight handlers finish (or releases them with a nak) and
//! returns; nothing is lost.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dead_letter::{self, DeadLetterClass};
use crate::{BusError, Publisher, Readiness};

/// What to do with a message whose handler failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing to do, and trying again would not change that (a stale or irrelevant input).
    Ack,
    /// Try again later: after `after` when the error says (`Retry-After`), else with backoff.
    Retry { after: Option<Duration> },
    /// It will never succeed: keep it in the dead-letter stream with the reason.
    DeadLetter,
    /// Nothing can succeed until an operator acts (revoked credentials): stop fetching, report
    /// unready, and retry this message in place every `after`.
    Pause { after: Duration },
}

/// Classifies an error by its type into an [`ErrorClass`].
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// A stage's work on one message.
pub trait Handler: Send + Sync + 'static {
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One delivery of one stored message.
pub struct Delivery {
    message: jetstream::Message,
    stream: String,
    stream_sequence: u64,
    delivered: u64,
    published: chrono::DateTime<chrono::Utc>,
    /// Messages still waiting for this consumer when this one was delivered.
    pending: u64,
}

impl Delivery {
    fn new(message: jetstream::Message) -> Self {
        let (stream, stream_sequence, delivered, published, pending) = match message.info() {
            Ok(info) => (
                info.stream.to_owned(),
                info.stream_sequence,
                info.delivered.max(1) as u64,
                info.published,
                info.pending,
            ),
            Err(_) => (String::new(), 0, 1, chrono::Utc::now(), 0),
        };
        Delivery { message, stream, stream_sequence, delivered, published, pending }
    }

    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message.headers.as_ref()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().and_then(|h| h.get(name)).map(|v| v.as_str())
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The message's sequence in its stream.
    pub fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// Which attempt this is: 1 on first delivery.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// When the stream stored the message.
    pub fn published(&self) -> chrono::DateTime<chrono::Utc> {
        self.published
    }

    /// Tells the server the message is still being worked on (restarts its ack wait). The loop
    /// does this on a timer too; call it in long loops for finer control.
    pub async fn progress(&self) {
        if let Err(error) = self.message.ack_with(AckKind::Progress).await {
            tracing::debug!(%error, "Progress signal not sent.");
        }
    }

    pub fn message(&self) -> &async_nats::Message {
        &self.message.message
    }
}

/// How a consumer loop runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The stage name, used in dead letters, metrics, logs and health.
    pub stage: String,
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// First retry delay; doubles with each delivery up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often a running handler's message is signalled in progress; keep it below the
    /// consumer's ack wait.
    pub progress_every: Duration,
    /// How long one pull waits for messages.
    pub fetch_wait: Duration,
    /// On shutdown, how long in-flight handlers may take before they are released.
    pub shutdown_grace: Duration,
    /// How often the consumer's lag (`itk_consumer_pending`, `itk_consumer_ack_pending`) is
    /// read from the server. On a timer, not only on delivery: a stuck or paused consumer
    /// receives nothing, and its lag must still rise on the dashboards and alerts.
    pub lag_every: Duration,
}

impl ConsumerOptions {
    pub fn new(stage: impl Into<String>) -> Self {
        ConsumerOptions {
            stage: stage.into(),
            concurrency: 32,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            progress_every: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(25),
            lag_every: Duration::from_secs(5),
        }
    }

    /// The delay before delivery `delivered + 1`.
    pub fn backoff(&self, delivered: u64) -> Duration {
        let exponent = delivered.saturating_sub(1).min(20) as u32;
        self.retry_base.saturating_mul(2u32.saturating_pow(exponent)).min(self.retry_max)
    }
}

/// Stops fetching while an error says nothing can succeed.
#[derive(Default)]
struct PauseGate {
    state: Mutex<Option<(Instant, String)>>,
}

impl PauseGate {
    fn pause(&self, until: Instant, reason: String) {
        *self.state.lock().expect("pause lock") = Some((until, reason));
    }

    fn clear(&self) -> bool {
        self.state.lock().expect("pause lock").take().is_some()
    }

    fn paused_until(&self) -> Option<Instant> {
        self.state.lock().expect("pause lock").as_ref().map(|(until, _)| *until)
    }
}

struct Shared<H> {
    handler: Arc<H>,
    publisher: Publisher,
    options: ConsumerOptions,
    max_deliver: i64,
    gate: PauseGate,
    health: Readiness,
    shutdown: CancellationToken,
}

/// The readiness component of a stage's consumer loop; a service registers it before the loop
/// starts so that it is not reported ready in between.
pub fn health_component(stage: &str) -> String {
    format!("consumer {stage}")
}

/// Runs `handler` over `consumer` until `shutdown` is cancelled, then drains and returns.
pub async fn run<H: Handler>(
    consumer: PullConsumer,
    handler: Arc<H>,
    publisher: Publisher,
    options: ConsumerOptions,
    health: Readiness,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let max_deliver = consumer.cached_info().config.max_deliver;
    let stage = options.stage.clone();
    let health_name = health_component(&stage);
    health.register(&health_name);
    let shared = Arc::new(Shared {
        handler,
        publisher,
        options,
        max_deliver,
        gate: PauseGate::default(),
        health: health.clone(),
        shutdown: shutdown.clone(),
    });
    let lag =
        tokio::spawn(report_lag(consumer.clone(), stage.clone(), shared.options.lag_every, shutdown.clone()));
    let slots = Arc::new(Semaphore::new(shared.options.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    tracing::info!(stage = %stage, max_deliver, concurrency = shared.options.concurrency, "Consumer started.");
    metrics::gauge!("itk_consumer_paused", "stage" => stage.clone()).set(0.0);

    loop {
        while tasks.try_join_next().is_some() {}
        if shutdown.is_cancelled() {
            break;
        }
        if let Some(until) = shared.gate.paused_until().filter(|u| *u > Instant::now()) {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => continue,
                _ = shutdown.cancelled() => break,
            }
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        let batch =
            consumer.batch().max_messages(permits.len()).expires(shared.options.fetch_wait).messages().await;
        let mut batch = match batch {
            Ok(batch) => {
                if shared.gate.paused_until().is_none() {
                    health.set_ready(&health_name);
                }
                batch
            }
            Err(error) => {
                tracing::warn!(stage = %stage, %error, "Fetch failed; retrying.");
                health.set_unready(&health_name, format!("fetch failed: {error}"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        while let Some(next) = batch.next().await {
            match next {
                Ok(message) => {
                    let permit = permits.pop().expect("no more messages than permits");
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        process(shared, Delivery::new(message)).await;
                        drop(permit);
                    });
                }
                Err(error) => {
                    tracing::debug!(stage = %stage, %error, "Pull ended early.");
                    break;
                }
            }
        }
    }

    health.set_unready(&health_name, "stopping");
    lag.abort();
    let in_flight = tasks.len();
    tracing::info!(stage = %stage, in_flight, "Consumer stopping; finishing in-flight messages.");
    let drained = tokio::time::timeout(shared.options.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // Unacked messages are redelivered after the ack wait: released, not lost.
        tracing::warn!(stage = %stage, remaining = tasks.len(), "Handlers outlived the grace period; released for redelivery.");
        tasks.abort_all();
    }
    tracing::info!(stage = %stage, "Consumer stopped.");
    Ok(())
}

/// Sets the lag gauges of `stage` from the server's view of the consumer every `every` until
/// `shutdown`: `num_pending` (stored, not yet delivered) and `num_ack_pending` (delivered, not
/// yet acknowledged: held by a paused or slow handler). A failed read leaves the last values
/// (the server is away; the readiness says so).
async fn report_lag(consumer: PullConsumer, stage: String, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match consumer.get_info().await {
            Ok(info) => {
                metrics::gauge!("itk_consumer_pending", "stage" => stage.clone())
                    .set(info.num_pending as f64);
                metrics::gauge!("itk_consumer_ack_pending", "stage" => stage.clone())
                    .set(info.num_ack_pending as f64);
            }
            Err(error) => tracing::debug!(stage = %stage, %error, "Consumer lag not read."),
        }
    }
}

/// The outcome of one handler run, for metrics and logs.
enum Outcome {
    Ok,
    Ignored,
    Retried,
    DeadLettered,
    Released,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Ignored => "ignored",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Released => "released",
        }
    }
}

async fn process<H: Handler>(shared: Arc<Shared<H>>, delivery: Delivery) {
    let stage = shared.options.stage.as_str();
    let span = tracing::info_span!(
        "handle",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = %delivery.subject(),
        stage = %stage,
        stream_sequence = delivery.stream_sequence(),
        delivered = delivery.delivered(),
    );
    crate::trace::set_parent_from(&span, delivery.headers());
    let incoming = crate::trace::extract(delivery.headers());
    let started = Instant::now();
    let settled = AssertUnwindSafe(handle_and_settle(&shared, &delivery)).catch_unwind();
    let outcome = match crate::trace::continue_trace(incoming, settled).instrument(span.clone()).await {
        Ok(outcome) => outcome,
        Err(panic) => settle_after_panic(&shared, &delivery, panic_message(&panic)).instrument(span).await,
    };
    metrics::counter!("itk_messages_total", "stage" => stage.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
    metrics::histogram!("itk_handler_seconds", "stage" => stage.to_owned())
        .record(started.elapsed().as_secs_f64());
    // Consumer lag as the server saw it at delivery: what autoscaling and dashboards watch.
    metrics::gauge!("itk_consumer_pending", "stage" => stage.to_owned()).set(delivery.pending as f64);
    metrics::histogram!("itk_stage_latency_seconds", "stage" => stage.to_owned())
        .record((chrono::Utc::now() - delivery.published()).num_milliseconds().max(0) as f64 / 1000.0);
}

async fn handle_and_settle<H: Handler>(shared: &Shared<H>, delivery: &Delivery) -> Outcome {
    loop {
        let result = with_progress(delivery, shared.options.progress_every, async {
            AssertUnwindSafe(shared.handler.handle(delivery)).catch_unwind().await
        })
        .await;
        let error = match result {
            Ok(Ok(())) => {
                clear_pause(shared);
                return ack(delivery, AckKind::Ack, Outcome::Ok).await;
            }
            Ok(Err(error)) => error,
            Err(panic) => {
                let reason = format!("handler panicked: {}", panic_message(&panic));
                tracing::error!(reason = %reason, "Handler panicked.");
                return dead_letter(shared, delivery, DeadLetterClass::Permanent, reason).await;
            }
        };
        match error.class() {
            ErrorClass::Ack => {
                clear_pause(shared);
                tracing::info!(error = %error, "Nothing to do; acknowledged.");
                return ack(delivery, AckKind::Ack, Outcome::Ignored).await;
            }
            ErrorClass::DeadLetter => {
                tracing::warn!(error = %error, "Permanent error; dead-lettering.");
                return dead_letter(shared, delivery, DeadLetterClass::Permanent, error.to_string()).await;
            }
            ErrorClass::Retry { after } => {
                let exhausted = shared.max_deliver > 0 && delivery.delivered() >= shared.max_deliver as u64;
                if exhausted {
                    let reason = format!("gave up after {} deliveries: {error}", delivery.delivered());
                    tracing::warn!(error = %error, "Retries exhausted; dead-lettering.");
                    return dead_letter(shared, delivery, DeadLetterClass::Exhausted, reason).await;
                }
                let delay = after.unwrap_or_else(|| shared.options.backoff(delivery.delivered()));
                tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64, "Transient error; will retry.");
                return ack(delivery, AckKind::Nak(Some(delay)), Outcome::Retried).await;
            }
            ErrorClass::Pause { after } => {
                let reason = format!("paused: {error}");
                tracing::error!(error = %error, pause_ms = after.as_millis() as u64, "Pausing the consumer until an operator acts.");
                shared.gate.pause(Instant::now() + after, reason.clone());
                shared.health.set_unready(&health_component(&shared.options.stage), reason);
                metrics::counter!("itk_consumer_pauses_total", "stage" => shared.options.stage.clone())
                    .increment(1);
                metrics::gauge!("itk_consumer_paused", "stage" => shared.options.stage.clone()).set(1.0);
                let resumed = with_progress(delivery, shared.options.progress_every, async {
                    tokio::select! {
                        _ = tokio::time::sleep(after) => true,
                        _ = shared.shutdown.cancelled() => false,
                    }
                })
                .await;
                if !resumed {
                    return ack(delivery, AckKind::Nak(None), Outcome::Released).await;
                }
            }
        }
    }
}

/// The settle path itself panicked: dead-letter the message with the panic's message. Should
/// dead-lettering panic again, the message is released for redelivery (never silently dropped).
async fn settle_after_panic<H>(shared: &Shared<H>, delivery: &Delivery, panic: String) -> Outcome {
    let reason = format!("settling the message panicked: {panic}");
    tracing::error!(reason = %crate::safe::header_value(&reason), "Settling panicked; dead-lettering.");
    let stored = AssertUnwindSafe(dead_letter(shared, delivery, DeadLetterClass::Permanent, reason))
        .catch_unwind()
        .await;
    match stored {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!("Dead-lettering panicked too; releasing the message for redelivery.");
            let delay = shared.options.backoff(delivery.delivered());
            ack(delivery, AckKind::Nak(Some(delay)), Outcome::Retried).await
        }
    }
}

fn clear_pause<H>(shared: &Shared<H>) {
    if shared.gate.clear() {
        tracing::info!(stage = %shared.options.stage, "Consumer resumed.");
        metrics::gauge!("itk_consumer_paused", "stage" => shared.options.stage.clone()).set(0.0);
        shared.health.set_ready(&health_component(&shared.options.stage));
    }
}

async fn ack(delivery: &Delivery, kind: AckKind, outcome: Outcome) -> Outcome {
    let result = match kind {
        // Confirmed acks: once this returns, the message will not come back.
        AckKind::Ack | AckKind::Term => delivery.message.double_ack_with(kind).await,
        _ => delivery.message.ack_with(kind).await,
    };
    if let Err(error) = result {
        tracing::warn!(%error, "Acknowledgement not confirmed; the message may be redelivered.");
    }
    outcome
}

async fn dead_letter<H>(
    shared: &Shared<H>,
    delivery: &Delivery,
    class: DeadLetterClass,
    reason: String,
) -> Outcome {
    let stored =
        dead_letter::publish(&shared.publisher, &shared.options.stage, delivery, class, &reason).await;
    match stored {
        Ok(()) => {
            metrics::counter!("itk_dead_letters_total", "stage" => shared.options.stage.clone()).increment(1);
            ack(delivery, AckKind::Term, Outcome::DeadLettered).await
        }
        Err(error) => {
            tracing::error!(%error, "Dead letter not stored; will retry the message.");
            ack(delivery, AckKind::Nak(Some(shared.options.backoff(delivery.delivered()))), Outcome::Retried)
                .await
        }
    }
}

/// Runs `work`, signalling progress every `every` until it completes.
async fn with_progress<F: Future>(delivery: &Delivery, every: Duration, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => delivery.progress().await,
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let options = ConsumerOptions::new("t");
        assert_eq!(options.backoff(1), Duration::from_secs(1));
        assert_eq!(options.backoff(2), Duration::from_secs(2));
        assert_eq!(options.backoff(4), Duration::from_secs(8));
        assert_eq!(options.backoff(100), Duration::from_secs(300));
    }
}
