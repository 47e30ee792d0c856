//! Sends one message exactly once: claim a marker by compare-and-set, post, complete the marker.
//! See [`crate::markers`] for the states and how a claim left by a crash is resolved.

use std::sync::Arc;
#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bus::{CasError, JsonKv, Versioned};
use chrono::Utc;

use crate::error::NotifyError;
use crate::markers::Marker;
use crate::message::SlackMessage;
use crate::slack::{Destination, SlackClient, SlackError};

/// What to do with a webhook send a crash left unconfirmed: a webhook leaves no trace to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookRecovery {
    /// Never send twice; a message may be lost.
    AtMostOnce,
    /// Never lose a message; one may be sent twice.
    AtLeastOnce,
}

/// Fault injection for tests (the `test-util` feature): makes this process stop dead at a
/// point of the send, as if it were killed there. The marker is left as it is at that point.
/// Without the feature it holds nothing and halts nowhere: production builds carry none of it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Stop after claiming the marker, before posting.
    #[cfg(feature = "test-util")]
    pub halt_after_claim: Arc<AtomicBool>,
    /// Stop after posting, before completing the marker.
    #[cfg(feature = "test-util")]
    pub halt_after_post: Arc<AtomicBool>,
}

/// Where a send can be halted.
#[derive(Debug, Clone, Copy)]
enum HaltPoint {
    AfterClaim,
    AfterPost,
}

impl Faults {
    #[cfg(feature = "test-util")]
    async fn halt_if(&self, point: HaltPoint, key: &str) {
        let (flag, name) = match point {
            HaltPoint::AfterClaim => (&self.halt_after_claim, "after claim"),
            HaltPoint::AfterPost => (&self.halt_after_post, "after post"),
        };
        if flag.load(Ordering::SeqCst) {
            tracing::warn!(marker = %key, point = name, "Fault injected: halting here as if killed.");
            std::future::pending::<()>().await;
        }
    }

    #[cfg(not(feature = "test-util"))]
    async fn halt_if(&self, _point: HaltPoint, _key: &str) {}
}

/// Posts tried again after Slack answered "maybe" and the history showed nothing.
const MAX_UNCERTAIN_RETRIES: u32 = 2;

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Posted now.
    Sent { ts: Option<String> },
    /// Posted before (marker sent or abandoned); nothing done.
    AlreadySent,
    /// A crashed send was found in the channel history and its marker completed.
    Recovered { ts: String },
    /// Another process holds a fresh claim; try again after `remaining`.
    ClaimedElsewhere { remaining: Duration },
    /// A crashed webhook send was given up (at-most-once).
    Abandoned,
}

/// The settings of [`Sender`].
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// This process, in markers.
    pub instance: String,
    /// How long a claim is honoured before it counts as left by a crash. Longer than a Slack
    /// request can take.
    pub claim_lease: Duration,
    /// Slack's clock may differ from ours: the history is searched from claim time minus this.
    pub clock_skew: Duration,
    /// A 429 with a `Retry-After` up to this is waited out in place; longer ones are returned.
    pub max_wait_in_place: Duration,
    pub webhook_recovery: WebhookRecovery,
}

/// Sends messages exactly once.
pub struct Sender {
    markers: JsonKv<Marker>,
    slack: Arc<SlackClient>,
    settings: SenderSettings,
    faults: Faults,
}

impl Sender {
    pub fn new(
        markers: JsonKv<Marker>,
        slack: Arc<SlackClient>,
        settings: SenderSettings,
        faults: Faults,
    ) -> Self {
        Sender { markers, slack, settings, faults }
    }

    /// Whether the marker says the message is already sent (a cheap check before pacing).
    pub async fn is_done(&self, key: &str) -> Result<bool, NotifyError> {
        Ok(self.markers.get(key).await?.is_some_and(|m| m.value.is_final()))
    }

    /// Sends `message` to `destination` unless the marker `key` says it was sent.
    pub async fn send_once(
        &self,
        key: &str,
        destination: &Destination,
        message: &SlackMessage,
        issue_key: &str,
    ) -> Result<SendOutcome, NotifyError> {
        if self.is_done(key).await? {
            return Ok(SendOutcome::AlreadySent);
        }
        // Pace before claiming, so a claim is never held while waiting for the channel's turn.
        self.slack.wait_turn(destination).await;
        // The history is searched from here if an answer leaves the outcome unknown.
        let claimed_at = Utc::now();
        let mut uncertain_answers = 0;
        let mut revision = match self.claim(key, destination).await? {
            Claim::Claimed(revision) => revision,
            Claim::Settled(outcome) => return Ok(outcome),
        };
        self.faults.halt_if(HaltPoint::AfterClaim, key).await;
        loop {
            match self.slack.post(destination, message, key, issue_key).await {
                Ok(ts) => {
                    self.faults.halt_if(HaltPoint::AfterPost, key).await;
                    self.complete(key, destination, ts.clone(), false, revision).await?;
                    // The marker's first segment is its kind: `reminder` or `notice`.
                    let kind = key.split('/').next().unwrap_or("message").to_owned();
                    metrics::counter!("itk_slack_messages_sent_total", "kind" => kind).increment(1);
                    return Ok(SendOutcome::Sent { ts });
                }
                Err(SlackError::RateLimited { retry_after, .. })
                    if retry_after <= self.settings.max_wait_in_place =>
                {
                    tracing::info!(marker = %key, destination = %destination.label(), retry_after_ms = retry_after.as_millis() as u64,
                        "Slack rate-limited the message; waiting as told.");
                    metrics::counter!("itk_slack_rate_limited_total").increment(1);
                    self.slack.hold(destination, retry_after).await;
                    self.slack.wait_turn(destination).await;
                    // Renew the claim: the wait must not make it look abandoned.
                    revision = match self.markers.update(key, &self.sending(destination), revision).await {
                        Ok(revision) => revision,
                        Err(CasError::Conflict) => {
                            return Ok(SendOutcome::ClaimedElsewhere {
                                remaining: self.settings.claim_lease,
                            });
                        }
                        Err(CasError::Bus(error)) => return Err(error.into()),
                    };
                }
                Err(error) if error.not_posted() => {
                    let released = Marker::Released { at: Utc::now(), reason: error.to_string() };
                    if let Err(CasError::Bus(bus)) = self.markers.update(key, &released, revision).await {
                        tracing::warn!(marker = %key, error = %bus, "Could not release the claim; it expires with its lease.");
                    }
                    if let SlackError::RateLimited { retry_after, .. } = &error {
                        self.slack.hold(destination, *retry_after).await;
                    }
                    return Err(error.into());
                }
                // Maybe posted (internal_error, fatal_error, 5xx, a timeout after sending): keep
                // the claim and let the channel history tell; never simply post again.
                Err(error) => {
                    metrics::counter!("itk_slack_uncertain_answers_total").increment(1);
                    let Destination::Channel(channel) = destination else {
                        // A webhook leaves no trace: the claim's lease and --webhook-recovery decide.
                        return Err(error.into());
                    };
                    let since = claimed_at - self.settings.clock_skew;
                    match self.slack.find_in_history(channel, since, key).await {
                        Ok(Some(ts)) => {
                            tracing::info!(marker = %key, %ts, %error, "Slack answered an error after posting; the history has the message.");
                            self.complete(key, destination, Some(ts.clone()), true, revision).await?;
                            return Ok(SendOutcome::Recovered { ts });
                        }
                        Ok(None) if uncertain_answers < MAX_UNCERTAIN_RETRIES => {
                            uncertain_answers += 1;
                            tracing::warn!(marker = %key, %error, "Slack answered an error and the history has no such message; posting again.");
                            self.slack.wait_turn(destination).await;
                            revision =
                                match self.markers.update(key, &self.sending(destination), revision).await {
                                    Ok(revision) => revision,
                                    Err(CasError::Conflict) => {
                                        return Ok(SendOutcome::ClaimedElsewhere {
                                            remaining: self.settings.claim_lease,
                                        });
                                    }
                                    Err(CasError::Bus(error)) => return Err(error.into()),
                                };
                        }
                        // Still unknown: the claim stays; once its lease ends the history is read
                        // again before anything is sent.
                        Ok(None) => return Err(error.into()),
                        // The history of this channel cannot be read (`missing_scope` for a
                        // private channel, `not_in_channel`…): the channel waits, the claim stays.
                        Err(history @ SlackError::ChannelUnavailable { .. }) => {
                            tracing::warn!(marker = %key, %error, %history, "Cannot read the channel history to settle an unknown outcome; the claim stays.");
                            return Err(history.into());
                        }
                        Err(history) => {
                            tracing::warn!(marker = %key, %error, %history, "Cannot read the channel history to settle an unknown outcome; the claim stays.");
                            return Err(error.into());
                        }
                    }
                }
            }
        }
    }

    fn sending(&self, destination: &Destination) -> Marker {
        Marker::Sending {
            at: Utc::now(),
            by: self.settings.instance.clone(),
            destination: destination.label(),
        }
    }

    /// Claims the marker, or settles it when it is final or was left by a crash and the message
    /// is found.
    async fn claim(&self, key: &str, destination: &Destination) -> Result<Claim, NotifyError> {
        loop {
            let current = self.markers.get(key).await?;
            let attempt = match current {
                None => self.markers.create(key, &self.sending(destination)).await,
                Some(Versioned { value, .. }) if value.is_final() => {
                    return Ok(Claim::Settled(SendOutcome::AlreadySent));
                }
                Some(Versioned { value: Marker::Released { .. }, revision }) => {
                    self.markers.update(key, &self.sending(destination), revision).await
                }
                Some(Versioned { value: Marker::Sending { at, by, .. }, revision }) => {
                    let age = (Utc::now() - at).to_std().unwrap_or_default();
                    if age < self.settings.claim_lease {
                        return Ok(Claim::Settled(SendOutcome::ClaimedElsewhere {
                            remaining: self.settings.claim_lease - age,
                        }));
                    }
                    tracing::warn!(marker = %key, claimed_by = %by, claimed_at = %at, "Resolving a claim left by a crash.");
                    match self.resolve_abandoned(key, destination, at, revision).await? {
                        Some(outcome) => return Ok(Claim::Settled(outcome)),
                        None => self.markers.update(key, &self.sending(destination), revision).await,
                    }
                }
                Some(Versioned { value: Marker::Sent { .. } | Marker::Abandoned { .. }, .. }) => {
                    unreachable!("final markers are handled above")
                }
            };
            match attempt {
                Ok(revision) => return Ok(Claim::Claimed(revision)),
                // Someone else moved first: read again and decide again.
                Err(CasError::Conflict) => continue,
                Err(CasError::Bus(error)) => return Err(error.into()),
            }
        }
    }

    /// A claim older than its lease: was the message posted? `None` means send it (again).
    async fn resolve_abandoned(
        &self,
        key: &str,
        destination: &Destination,
        claimed_at: chrono::DateTime<Utc>,
        revision: u64,
    ) -> Result<Option<SendOutcome>, NotifyError> {
        let settle = |marker: Marker, outcome: SendOutcome| async move {
            match self.markers.update(key, &marker, revision).await {
                Ok(_) => Ok(Some(outcome)),
                // Someone else resolved it meanwhile; whatever they did stands.
                Err(CasError::Conflict) => Ok(Some(SendOutcome::AlreadySent)),
                Err(CasError::Bus(error)) => Err(NotifyError::from(error)),
            }
        };
        match destination {
            Destination::Channel(channel) => {
                let since = claimed_at - self.settings.clock_skew;
                match self.slack.find_in_history(channel, since, key).await? {
                    Some(ts) => {
                        tracing::info!(marker = %key, %ts, "Found the message in the channel history; not sending again.");
                        let marker = Marker::Sent {
                            at: Utc::now(),
                            destination: destination.label(),
                            ts: Some(ts.clone()),
                            recovered: true,
                        };
                        settle(marker, SendOutcome::Recovered { ts }).await
                    }
                    None => Ok(None),
                }
            }
            Destination::Webhook { .. } => match self.settings.webhook_recovery {
                WebhookRecovery::AtLeastOnce => Ok(None),
                WebhookRecovery::AtMostOnce => {
                    tracing::warn!(marker = %key, "A webhook send was interrupted and cannot be checked; not sending again (at-most-once).");
                    let reason = "interrupted webhook send; at-most-once".to_owned();
                    settle(Marker::Abandoned { at: Utc::now(), reason }, SendOutcome::Abandoned).await
                }
            },
        }
    }

    async fn complete(
        &self,
        key: &str,
        destination: &Destination,
        ts: Option<String>,
        recovered: bool,
        revision: u64,
    ) -> Result<(), NotifyError> {
        let marker = Marker::Sent { at: Utc::now(), destination: destination.label(), ts, recovered };
        match self.markers.update(key, &marker, revision).await {
            Ok(_) => Ok(()),
            Err(CasError::Conflict) => {
                // Our claim outlived its lease and another process took over: it may post too.
                tracing::error!(marker = %key, "The claim expired during the send; another process took it over. Raise --claim-lease.");
                Ok(())
            }
            Err(CasError::Bus(error)) => Err(error.into()),
        }
    }
}

enum Claim {
    Claimed(u64),
    Settled(SendOutcome),
}
