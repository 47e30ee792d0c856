//! Silence is an alert: tells the SRE channel when an intake's source has been failing, out of
//! touch or quiet for too long, and again when it works — once per change, however often it
//! is checked and however many notifiers run.
//!
//! ```text
//!  source_contact (written by the intakes, one record per source and scope)
//!        │ every --source-check-interval
//!        ▼
//!  condition(record, now) ── Healthy | Failing | NoContact | Quiet      (pure, below)
//!        │ changed between healthy and not, against `source-state/<key>` in notifier_markers
//!        ▼
//!  Sender::send_once(`source/<key>/<episode>/<alert|recovered>`) ──▶ SRE channel
//! ```
//!
//! Exactly once: the message's marker key names the episode (how many times this scope has
//! turned unhealthy), so a notifier that dies between posting and saving the state finds the
//! marker sent and only saves the state; two notifiers race on the same marker and one posts.

use std::sync::Arc;
use std::time::Duration;

use bus::{CasError, JsonKv};
use chrono::{DateTime, Utc};
use contracts::{ContactMode, SourceContact};
use serde::{Deserialize, Serialize};
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use crate::error::NotifyError;
use crate::markers::segment;
use crate::message::{self, SlackMessage};
use crate::sender::{SendOutcome, Sender};
use crate::slack::Destination;

/// How long is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A polled scope with no successful call (or no record written at all) for this long.
    pub failing_after: Duration,
    /// A scope that expects events with none for this long.
    pub quiet_after: Duration,
}

/// What a scope's record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Healthy,
    /// Its calls fail: no success since `since`, the last failure's reason.
    Failing {
        since: DateTime<Utc>,
        reason: String,
    },
    /// The intake stopped writing the record at `since`: it is stopped, or cannot reach NATS.
    NoContact {
        since: DateTime<Utc>,
    },
    /// Contact works but no event has arrived since `since`.
    Quiet {
        since: DateTime<Utc>,
    },
}

impl Condition {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Condition::Healthy)
    }
}

/// The condition of one scope at `now` (pure).
pub fn condition(record: &SourceContact, now: DateTime<Utc>, thresholds: &Thresholds) -> Condition {
    let too_long =
        |since: DateTime<Utc>, limit: Duration| (now - since).to_std().is_ok_and(|elapsed| elapsed >= limit);
    if record.mode == ContactMode::Polled {
        if too_long(record.updated_at, thresholds.failing_after) {
            return Condition::NoContact { since: record.updated_at };
        }
        let since = record.last_success_at.unwrap_or(record.first_seen_at);
        if record.failing() && too_long(since, thresholds.failing_after) {
            let reason = record.last_failure.as_ref().map(|f| f.reason.clone()).unwrap_or_default();
            return Condition::Failing { since, reason };
        }
    }
    if record.events_expected {
        let since = record.last_event_at.unwrap_or(record.first_seen_at);
        if too_long(since, thresholds.quiet_after) {
            return Condition::Quiet { since };
        }
    }
    Condition::Healthy
}

/// Whether an alert on this scope can be closed: healthy, and shown to work by the record itself
/// (its last call succeeded, and an event arrived where events are expected). A record written
/// anew after the bucket was lost is healthy only for lack of history, and closes nothing.
pub fn shows_recovery(record: &SourceContact, condition: &Condition) -> bool {
    condition.is_healthy()
        && !record.failing()
        && record.last_success_at.is_some()
        && (!record.events_expected || record.last_event_at.is_some())
}

/// What the notifier last told the SRE channel about one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub alerting: bool,
    /// How many times the scope turned unhealthy (the episode of the current or last alert).
    pub episode: u64,
}

/// The key of a scope's [`AlertState`] in `notifier_markers`.
pub fn state_key(contact_key: &str) -> String {
    format!("source-state/{}", segment(contact_key))
}

/// The marker of the message that opens (`alert`) or closes (`recovered`) an episode.
pub fn message_key(contact_key: &str, episode: u64, what: &str) -> String {
    format!("source/{}/{episode}/{what}", segment(contact_key))
}

/// Checks every scope's record and tells the SRE channel about changes.
pub struct SourceWatch {
    pub contacts: JsonKv<SourceContact>,
    pub states: JsonKv<AlertState>,
    pub sender: Arc<Sender>,
    pub destination: Destination,
    pub clock: Clock,
    pub thresholds: Thresholds,
    pub interval: Duration,
}

impl SourceWatch {
    /// Checks every `interval` until `shutdown`. A check that fails (NATS, Slack) is logged and
    /// the next one tries again: the state only moves once its message is sent.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.check_all().await {
                tracing::warn!(%error, "The source silence check failed; trying again at the next check.");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One check of every scope; returns how many messages it sent.
    pub async fn check_all(&self) -> Result<usize, NotifyError> {
        let mut sent = 0;
        for key in self.contacts.keys().await? {
            let Some(record) = self.contacts.get(&key).await? else { continue };
            if record.value.schema > contracts::SCHEMA_VERSION {
                tracing::warn!(
                    key,
                    schema = record.value.schema,
                    "A source contact record is newer than this build; skipped."
                );
                continue;
            }
            match self.check(&key, &record.value).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(key, %error, "Could not tell the SRE channel about a source; trying again at the next check.")
                }
            }
        }
        Ok(sent)
    }

    /// Sends the message this scope's change calls for, if any, then saves the state.
    async fn check(&self, key: &str, record: &SourceContact) -> Result<bool, NotifyError> {
        let now = self.clock.now();
        let condition = condition(record, now, &self.thresholds);
        let stored = self.states.get(&state_key(key)).await?;
        let revision = stored.as_ref().map(|s| s.revision);
        let mut state = stored.map(|s| s.value).unwrap_or_default();
        // A notifier that posted an alert and died before saving the state, the scope healthy
        // since: the alert's marker says an episode is open, and its recovery is owed. (While
        // the scope is still unhealthy, sending the alert again finds the marker sent.)
        if !state.alerting
            && condition.is_healthy()
            && self.sender.is_done(&message_key(key, state.episode + 1, "alert")).await?
        {
            state = AlertState { alerting: true, episode: state.episode + 1 };
        }
        let scope = segment(key);
        metrics::gauge!("itk_source_alerting", "source" => record.source.as_str(), "scope" => record.scope.clone())
            .set(if condition.is_healthy() { 0.0 } else { 1.0 });
        let healthy =
            if state.alerting { shows_recovery(record, &condition) } else { condition.is_healthy() };
        let (next, marker, message) = match (state.alerting, healthy) {
            (false, false) => {
                let next = AlertState { alerting: true, episode: state.episode + 1 };
                let message = alert_message(record, &condition, now);
                (next.clone(), message_key(key, next.episode, "alert"), message)
            }
            (true, true) => {
                let next = AlertState { alerting: false, episode: state.episode };
                let message = recovered_message(record, now);
                (next, message_key(key, state.episode, "recovered"), message)
            }
            _ => return Ok(false),
        };
        let outcome = self.sender.send_once(&marker, &self.destination, &message, &scope).await?;
        let posted = match outcome {
            SendOutcome::Sent { .. } | SendOutcome::Recovered { .. } => true,
            SendOutcome::AlreadySent | SendOutcome::Abandoned => false,
            SendOutcome::ClaimedElsewhere { .. } => return Ok(false),
        };
        if posted {
            tracing::info!(source = %record.source, scope = %record.scope, alerting = next.alerting, "Told the SRE channel about a source.");
        }
        self.save(key, &next, revision).await?;
        Ok(posted)
    }

    async fn save(&self, key: &str, state: &AlertState, revision: Option<u64>) -> Result<(), NotifyError> {
        match self.states.write(&state_key(key), state, revision).await {
            // Another notifier saved the same change first.
            Ok(_) | Err(CasError::Conflict) => Ok(()),
            Err(CasError::Bus(error)) => Err(error.into()),
        }
    }
}

/// `snyk · org 4a18…`: the source and scope a message is about.
fn name(record: &SourceContact) -> String {
    format!("{} · {}", record.source, record.scope)
}

fn alert_message(record: &SourceContact, condition: &Condition, now: DateTime<Utc>) -> SlackMessage {
    let name = name(record);
    let (headline, explanation) = match condition {
        Condition::Failing { since, reason } => (
            format!("{name}: failing for {}", for_how_long(now - *since)),
            format!("Every call to the source has failed since {}. Last error: {reason}", at(*since)),
        ),
        Condition::NoContact { since } => (
            format!("{name}: no contact for {}", for_how_long(now - *since)),
            format!(
                "The intake has not reported since {}: it is stopped, crashing or cannot reach NATS.",
                at(*since)
            ),
        ),
        Condition::Quiet { since } => (
            format!("{name}: no event for {}", for_how_long(now - *since)),
            format!(
                "Nothing has arrived since {}. A feed this quiet usually means its EventBridge rule, the forwarding StackSet, the queue or the API destination is gone.",
                at(*since)
            ),
        ),
        Condition::Healthy => (format!("{name}: working"), String::new()),
    };
    message::render_source_notice(&headline, &explanation, &record.scope, record.source.as_str())
}

fn recovered_message(record: &SourceContact, now: DateTime<Utc>) -> SlackMessage {
    let name = name(record);
    let last = record.last_success_at.or(record.last_event_at).unwrap_or(now);
    message::render_source_notice(
        &format!("{name}: working again"),
        &format!("Contact at {}; what arrived meanwhile is being ticketed.", at(last)),
        &record.scope,
        record.source.as_str(),
    )
}

fn at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `45 minutes`, `3 hours`, `8 days`: the largest whole unit.
pub fn for_how_long(elapsed: chrono::Duration) -> String {
    let (count, unit) = if elapsed.num_days() >= 2 {
        (elapsed.num_days(), "day")
    } else if elapsed.num_hours() >= 2 {
        (elapsed.num_hours(), "hour")
    } else {
        (elapsed.num_minutes().max(0), "minute")
    };
    if count == 1 { format!("1 {unit}") } else { format!("{count} {unit}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::{ContactFailure, Source};

    const T: Thresholds = Thresholds {
        failing_after: Duration::from_secs(2 * 3600),
        quiet_after: Duration::from_secs(7 * 86400),
    };

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn record(mode: ContactMode, events_expected: bool) -> SourceContact {
        SourceContact::new(
            Source::AwsHealth,
            "sqs eu-west-1",
            mode,
            events_expected,
            at("2026-12-01T00:00:00Z"),
        )
    }

    fn failure(when: &str) -> Option<ContactFailure> {
        Some(ContactFailure { at: at(when), reason: "AccessDenied".into() })
    }

    /// Each row: the record's times, the check's time, the condition expected.
    #[test]
    fn conditions_follow_the_record_and_the_thresholds() {
        struct Row {
            what: &'static str,
            mode: ContactMode,
            events_expected: bool,
            updated: &'static str,
            success: Option<&'static str>,
            event: Option<&'static str>,
            failure: Option<&'static str>,
            now: &'static str,
            expected: Condition,
        }
        let rows = [
            Row {
                what: "a success an hour ago",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-01T09:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: None,
                failure: None,
                now: "2026-12-01T10:00:00Z",
                expected: Condition::Healthy,
            },
            Row {
                what: "failing for an hour: not yet",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-01T10:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: None,
                failure: Some("2026-12-01T10:00:00Z"),
                now: "2026-12-01T10:00:00Z",
                expected: Condition::Healthy,
            },
            Row {
                what: "failing for three hours",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-01T12:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: None,
                failure: Some("2026-12-01T12:00:00Z"),
                now: "2026-12-01T12:00:00Z",
                expected: Condition::Failing {
                    since: at("2026-12-01T09:00:00Z"),
                    reason: "AccessDenied".into(),
                },
            },
            Row {
                what: "never succeeded, counted from first contact",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-01T03:00:00Z",
                success: None,
                event: None,
                failure: Some("2026-12-01T03:00:00Z"),
                now: "2026-12-01T03:00:00Z",
                expected: Condition::Failing {
                    since: at("2026-12-01T00:00:00Z"),
                    reason: "AccessDenied".into(),
                },
            },
            Row {
                what: "the intake stopped writing",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-01T09:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: None,
                failure: None,
                now: "2026-12-01T11:30:00Z",
                expected: Condition::NoContact { since: at("2026-12-01T09:00:00Z") },
            },
            Row {
                what: "an EventBridge queue answering, but no event for eight days",
                mode: ContactMode::Polled,
                events_expected: true,
                updated: "2026-12-09T09:00:00Z",
                success: Some("2026-12-09T09:00:00Z"),
                event: Some("2026-12-01T09:00:00Z"),
                failure: None,
                now: "2026-12-09T09:10:00Z",
                expected: Condition::Quiet { since: at("2026-12-01T09:00:00Z") },
            },
            Row {
                what: "a quiet Snyk org is fine: Snyk publishes changes only",
                mode: ContactMode::Polled,
                events_expected: false,
                updated: "2026-12-30T09:00:00Z",
                success: Some("2026-12-30T09:00:00Z"),
                event: None,
                failure: None,
                now: "2026-12-30T09:10:00Z",
                expected: Condition::Healthy,
            },
            Row {
                what: "a webhook is not polled: hours without a call are fine",
                mode: ContactMode::Pushed,
                events_expected: true,
                updated: "2026-12-01T09:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: Some("2026-12-01T09:00:00Z"),
                failure: None,
                now: "2026-12-03T09:00:00Z",
                expected: Condition::Healthy,
            },
            Row {
                what: "a webhook quiet for a week",
                mode: ContactMode::Pushed,
                events_expected: true,
                updated: "2026-12-01T09:00:00Z",
                success: Some("2026-12-01T09:00:00Z"),
                event: Some("2026-12-01T09:00:00Z"),
                failure: None,
                now: "2026-12-08T09:00:00Z",
                expected: Condition::Quiet { since: at("2026-12-01T09:00:00Z") },
            },
            Row {
                what: "a record from a clock ahead of ours",
                mode: ContactMode::Polled,
                events_expected: true,
                updated: "2026-12-01T10:00:00Z",
                success: Some("2026-12-01T10:00:00Z"),
                event: Some("2026-12-01T10:00:00Z"),
                failure: None,
                now: "2026-12-01T09:55:00Z",
                expected: Condition::Healthy,
            },
        ];
        for row in rows {
            let mut record = record(row.mode, row.events_expected);
            record.updated_at = at(row.updated);
            record.last_success_at = row.success.map(at);
            record.last_event_at = row.event.map(at);
            record.last_failure = row.failure.and_then(failure);
            assert_eq!(condition(&record, at(row.now), &T), row.expected, "{}", row.what);
        }
    }

    #[test]
    fn a_record_without_history_closes_no_alert() {
        let now = at("2026-12-01T00:10:00Z");
        // Written anew after the bucket was lost, by a failing intake: too young to alert.
        let mut record = record(ContactMode::Polled, true);
        record.last_failure = failure("2026-12-01T00:05:00Z");
        let healthy = condition(&record, now, &T);
        assert!(healthy.is_healthy() && !shows_recovery(&record, &healthy));
        // A success, but an EventBridge feed must also show an event.
        record.last_success_at = Some(at("2026-12-01T00:06:00Z"));
        assert!(!shows_recovery(&record, &condition(&record, now, &T)));
        record.last_event_at = Some(at("2026-12-01T00:07:00Z"));
        assert!(shows_recovery(&record, &condition(&record, now, &T)));
    }

    #[test]
    fn keys_name_the_scope_and_the_episode() {
        assert_eq!(state_key("snyk.org_1"), "source-state/snyk_org_1");
        assert_eq!(message_key("snyk.org_1", 3, "alert"), "source/snyk_org_1/3/alert");
        assert!(crate::markers::is_valid_key(&message_key("aws-health.sqs_eu-west-1", 1, "recovered")));
    }

    #[test]
    fn durations_read_in_their_largest_whole_unit() {
        assert_eq!(for_how_long(chrono::Duration::minutes(45)), "45 minutes");
        assert_eq!(for_how_long(chrono::Duration::minutes(150)), "2 hours");
        assert_eq!(for_how_long(chrono::Duration::hours(49)), "2 days");
        assert_eq!(for_how_long(chrono::Duration::minutes(1)), "1 minute");
    }

    #[test]
    fn outside_text_in_an_alert_is_escaped() {
        let mut record = record(ContactMode::Polled, false);
        record.scope = "org <!channel>".into();
        let condition = Condition::Failing { since: at("2026-12-01T00:00:00Z"), reason: "<@U123> &".into() };
        let message = alert_message(&record, &condition, at("2026-12-01T03:00:00Z"));
        // The header is plain_text, which Slack never parses for mentions; the rest is mrkdwn.
        assert_eq!(message.blocks[0]["text"]["type"], "plain_text");
        let blocks = serde_json::to_string(&message.blocks[1..]).unwrap();
        assert!(!blocks.contains("<!channel>") && !blocks.contains("<@U123>"), "{blocks}");
        assert!(!message.text.contains("<!channel>"), "{}", message.text);
        assert!(blocks.contains("&lt;@U123&gt; &amp;"), "{blocks}");
    }
}
