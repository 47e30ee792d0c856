//! Readiness parts every service shares: its NATS connection, and its HTTP intakes.
//!
//! [`bus::Readiness`] is a set of components that each part of a service keeps up to date; the
//! service is ready when every registered one is. The consumers and pollers report themselves;
//! what no loop reports on its own (the connection to NATS, a listening intake) is kept here.

use std::time::Duration;

use bus::Readiness;
use bus::async_nats::{Client, connection::State};
use tokio_util::sync::CancellationToken;

/// The component that follows the NATS connection.
pub const NATS: &str = "nats";

/// How often the connection state is looked at: a probe (every few seconds) sees a lost
/// connection within one period of this.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Keeps the [`NATS`] component of `health` in step with `client`'s connection until
/// `shutdown`: ready while connected, not ready with the reason while the client reconnects.
pub fn watch_nats(
    client: Client,
    health: Readiness,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    health.register(NATS);
    tokio::spawn(async move {
        let mut last = None;
        let mut ticker = tokio::time::interval(WATCH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => {
                    health.set_unready(NATS, "stopping");
                    return;
                }
            }
            let state = client.connection_state();
            if last.as_ref() == Some(&state) {
                continue;
            }
            match state {
                State::Connected => health.set_ready(NATS),
                State::Disconnected => {
                    tracing::warn!("Lost the connection to NATS; reconnecting.");
                    health.set_unready(NATS, "disconnected, reconnecting");
                }
                State::Pending => health.set_unready(NATS, "connecting"),
            }
            last = Some(state);
        }
    })
}

/// Marks an intake that is served on the HTTP listener: it can take requests from the moment
/// the listener is bound, so it is ready once the server runs, and unready again on shutdown.
pub fn intake_listening(health: &Readiness, component: &str, shutdown: CancellationToken) {
    health.set_ready(component);
    let health = health.clone();
    let component = component.to_owned();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health.set_unready(&component, "stopping");
    });
}
