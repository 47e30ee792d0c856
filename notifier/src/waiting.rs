//! Channels that cannot take messages now, and the messages waiting for them.
//!
//! A problem of one channel (`channel_not_found`, `not_in_channel`, `is_archived`,
//! `missing_scope` for a private channel, `restricted_action`, a removed webhook) stays in that
//! channel: the ticket-change message is *parked* in the `notifier_markers` bucket under
//! `waiting.<marker key>` (its marker is released, so nothing was sent) and acknowledged, so it
//! neither blocks other teams nor runs out of deliveries into the dead letters. Every
//! `--channel-retry` the oldest parked message of each waiting channel is tried again; when
//! one goes through, the channel counts as working and the rest follow, each exactly once
//! (the marker decides). Reminders need no parking: the next scan finds them again.
//!
//! While a channel waits, the `slack channels` readiness component names it with the reason,
//! `itk_slack_channel_waiting{channel}` is 1, and each problem is logged once when it starts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{BusError, CasError, JsonKv, Readiness};
use catalog::Catalog;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use crate::destinations::Destinations;
use crate::error::NotifyError;
use crate::message::{LinkPolicy, Notice, render};
use crate::sender::{SendOutcome, Sender};
use crate::slack::SlackError;

/// The readiness component that lists waiting channels.
pub const HEALTH_COMPONENT: &str = "slack channels";
/// Key prefix of parked messages (a `.` separates it, so it never clashes with marker keys).
pub const PARKED_PREFIX: &str = "waiting.";

/// A message that could not go to its channel yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkedMessage {
    /// The message's marker key.
    pub marker: String,
    /// The team whose channel it is for (resolved again when retried).
    pub team: String,
    pub issue_key: String,
    /// What the message says; rendered again when it goes, so "in N days" counts from that day.
    pub notice: Notice,
    /// Why it waits, as Slack said it.
    pub reason: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Problem {
    reason: String,
    since: DateTime<Utc>,
}

/// What the notifier knows about waiting channels. Cheap to share (`Arc`).
pub struct ChannelWaits {
    parked: JsonKv<ParkedMessage>,
    problems: Mutex<BTreeMap<String, Problem>>,
    health: Readiness,
    /// To render a parked notice when it goes: the receiving team's day, the allowed links.
    catalog: Arc<Catalog>,
    clock: Clock,
    links: LinkPolicy,
}

impl ChannelWaits {
    pub fn new(
        parked: JsonKv<ParkedMessage>,
        health: Readiness,
        catalog: Arc<Catalog>,
        clock: Clock,
        links: LinkPolicy,
    ) -> Self {
        health.set_ready(HEALTH_COMPONENT);
        ChannelWaits { parked, problems: Mutex::new(BTreeMap::new()), health, catalog, clock, links }
    }

    /// The reason a channel (by destination label) waits, if it does.
    pub fn waiting_reason(&self, channel: &str) -> Option<String> {
        self.problems.lock().expect("waits lock").get(channel).map(|p| p.reason.clone())
    }

    /// Records that `channel` cannot take messages, for `error`'s reason.
    pub fn record(&self, channel: &str, error: &SlackError) {
        let reason = error.channel_reason().unwrap_or("unavailable").to_owned();
        let mut problems = self.problems.lock().expect("waits lock");
        let new = problems.get(channel).is_none_or(|p| p.reason != reason);
        if new {
            tracing::error!(channel, %reason, %error, "A Slack channel cannot take messages; its messages wait, other channels go on.");
            metrics::counter!("itk_slack_channel_problems_total", "channel" => channel.to_owned(), "reason" => reason.clone())
                .increment(1);
            problems.insert(channel.to_owned(), Problem { reason, since: Utc::now() });
        }
        metrics::gauge!("itk_slack_channel_waiting", "channel" => channel.to_owned()).set(1.0);
        self.report(&problems);
    }

    /// Records that a message reached `channel`: it works (again).
    pub fn record_delivered(&self, channel: &str) {
        let mut problems = self.problems.lock().expect("waits lock");
        if let Some(problem) = problems.remove(channel) {
            tracing::info!(channel, reason = %problem.reason, since = %problem.since, "A Slack channel takes messages again.");
            metrics::gauge!("itk_slack_channel_waiting", "channel" => channel.to_owned()).set(0.0);
            self.report(&problems);
        }
    }

    fn report(&self, problems: &BTreeMap<String, Problem>) {
        metrics::gauge!("itk_slack_channels_waiting").set(problems.len() as f64);
        if problems.is_empty() {
            self.health.set_ready(HEALTH_COMPONENT);
            return;
        }
        let detail = problems
            .iter()
            .map(|(channel, p)| {
                format!("{channel} waits ({} since {})", p.reason, p.since.format("%Y-%m-%dT%H:%M:%SZ"))
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.health.set_unready(HEALTH_COMPONENT, detail);
    }

    /// Parks a message for its channel; parking it twice keeps the first.
    pub async fn park(&self, parked: &ParkedMessage) -> Result<(), BusError> {
        match self.parked.create(&parked_key(&parked.marker), parked).await {
            Ok(_) | Err(CasError::Conflict) => Ok(()),
            Err(CasError::Bus(error)) => Err(error),
        }
    }

    /// Every parked message, oldest first.
    pub async fn parked(&self) -> Result<Vec<ParkedMessage>, BusError> {
        let mut out = Vec::new();
        for key in self.parked.keys().await? {
            if !key.starts_with(PARKED_PREFIX) {
                continue;
            }
            if let Some(entry) = self.parked.get(&key).await? {
                out.push(entry.value);
            }
        }
        out.sort_by(|a, b| (a.since, &a.marker).cmp(&(b.since, &b.marker)));
        Ok(out)
    }

    async fn unpark(&self, marker: &str) -> Result<(), BusError> {
        let key = parked_key(marker);
        self.parked.store().purge(&key).await.map_err(|e| BusError::Kv {
            bucket: bus::topology::NOTIFIER_MARKERS.to_owned(),
            key,
            source: Box::new(e),
        })
    }

    /// Tries the parked messages every `interval` until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        sender: Arc<Sender>,
        destinations: Arc<Destinations>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            // Listing the bucket's keys costs in proportion to all markers: do it when a channel
            // is known to wait, and every tenth round for messages another replica parked (and
            // at start, for those a stopped process left).
            let any_waiting = !self.problems.lock().expect("waits lock").is_empty();
            round += 1;
            if !any_waiting && round % 10 != 1 {
                continue;
            }
            if let Err(error) = self.retry_once(&sender, &destinations, &shutdown).await {
                tracing::warn!(%error, "Could not retry the waiting messages; trying again later.");
            }
        }
    }

    /// One round: per channel, the oldest parked message first; the rest only if it went.
    pub async fn retry_once(
        &self,
        sender: &Sender,
        destinations: &Destinations,
        shutdown: &CancellationToken,
    ) -> Result<u64, NotifyError> {
        let mut by_channel: BTreeMap<String, Vec<ParkedMessage>> = BTreeMap::new();
        for parked in self.parked().await? {
            let label = destinations.for_team(&parked.team).map(|d| d.label()).unwrap_or_default();
            by_channel.entry(label).or_default().push(parked);
        }
        metrics::gauge!("itk_slack_messages_waiting")
            .set(by_channel.values().map(Vec::len).sum::<usize>() as f64);
        let mut delivered = 0;
        for (channel, messages) in by_channel {
            for parked in messages {
                if shutdown.is_cancelled() {
                    return Ok(delivered);
                }
                let destination = destinations.for_team(&parked.team)?;
                let mut notice = parked.notice.clone();
                notice.today =
                    self.clock.now().with_timezone(&self.catalog.team(&parked.team).time_zone).date_naive();
                let message = render(&notice, &self.links);
                match sender.send_once(&parked.marker, &destination, &message, &parked.issue_key).await {
                    Ok(SendOutcome::ClaimedElsewhere { .. }) => break,
                    Ok(outcome) => {
                        tracing::info!(marker = %parked.marker, %channel, ?outcome, waited_since = %parked.since, "A waiting message went out.");
                        self.record_delivered(&channel);
                        self.unpark(&parked.marker).await?;
                        delivered += 1;
                    }
                    Err(NotifyError::Slack(error @ SlackError::ChannelUnavailable { .. })) => {
                        self.record(&channel, &error);
                        break;
                    }
                    Err(error) if error.stops_all_sending() => return Err(error),
                    Err(error) => {
                        tracing::warn!(marker = %parked.marker, %channel, %error, "A waiting message could not go yet.");
                        break;
                    }
                }
            }
        }
        Ok(delivered)
    }
}

fn parked_key(marker: &str) -> String {
    format!("{PARKED_PREFIX}{marker}")
}
