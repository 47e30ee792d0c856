//! Markers: one per message, in the `notifier_markers` bucket, so each is sent exactly once.
//!
//! ```text
//!   (absent) ──create──▶ sending{at, by} ──post ok──▶ sent{ts}
//!                          │   │
//!                          │   └─ refused before posting (429, channel_not_found…) ──▶ released ──claim again──▶ sending
//!                          └─ left behind by a crash, older than the lease:
//!                               chat.postMessage: look for the key in the channel's history since `at`
//!                                   found ──▶ sent{ts, recovered}      not found ──▶ sending (taken over)
//!                               webhook: at-most-once ──▶ abandoned    at-least-once ──▶ sending (taken over)
//! ```
//!
//! Keys (`[-/_=.a-zA-Z0-9]+`, as NATS KV requires):
//! * `reminder/<issue key>/<due-14d|due-5d|overdue>/<due date>`: the due date is part of the key,
//!   so a moved due date re-arms the reminders;
//! * `digest/<team>/<local date>`: a team's daily digest (instead of single reminders);
//! * `notice/<issue id>/created`: one per issue, however often its creation is announced;
//! * `notice/<issue id>/duplicate_closed`: one per duplicate the sweep closed;
//! * `notice/<issue id>/<team_changed|reopened|resolved>/v<version>[/to-<team>]`: one per
//!   ticket change;
//! * `issue/<issue key>`: the index the notifier keeps from ticket changes (team, lane, summary);
//! * `last-reminder/<issue key>`: the due date the last reminder announced;
//! * `waiting.<marker key>`: a message parked while its channel cannot take messages
//!   (see [`crate::waiting`]).

use chrono::{DateTime, NaiveDate, Utc};
use contracts::{ChangeKind, TicketChange};
use serde::{Deserialize, Serialize};

use crate::schedule::ReminderKind;

/// The state of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Marker {
    /// Claimed by `by` at `at` (wall-clock time); the message may or may not be posted yet.
    Sending { at: DateTime<Utc>, by: String, destination: String },
    /// Posted; `ts` is Slack's message timestamp (absent for webhooks).
    Sent {
        at: DateTime<Utc>,
        destination: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<String>,
        /// Found in the channel history after a crash rather than confirmed by the sender.
        #[serde(default)]
        recovered: bool,
    },
    /// Refused before anything was posted; may be claimed again.
    Released { at: DateTime<Utc>, reason: String },
    /// A webhook send left unconfirmed by a crash, given up on (at-most-once).
    Abandoned { at: DateTime<Utc>, reason: String },
}

impl Marker {
    /// Sent or given up: nothing more to do.
    pub fn is_final(&self) -> bool {
        matches!(self, Marker::Sent { .. } | Marker::Abandoned { .. })
    }
}

/// The identity of a reminder.
pub fn reminder_key(issue_key: &str, kind: ReminderKind, due: NaiveDate) -> String {
    format!("reminder/{}/{}/{}", segment(issue_key), kind.as_str(), due)
}

/// The identity of a team's daily digest: one per team and local day.
pub fn digest_key(team: &str, day: NaiveDate) -> String {
    format!("digest/{}/{day}", segment(team))
}

/// The identity of the message about one ticket change.
pub fn notice_key(change: &TicketChange) -> String {
    let issue = segment(&change.issue_id);
    match change.kind {
        // An issue is created once: however often (and with whichever version) its creation is
        // announced (a writer that adopts the issue it just created announces it again), one
        // message.
        ChangeKind::Created => format!("notice/{issue}/created"),
        // A duplicate is closed once.
        ChangeKind::DuplicateClosed => format!("notice/{issue}/duplicate_closed"),
        ChangeKind::TeamChanged => format!(
            "notice/{issue}/{}/v{}/to-{}",
            change.kind.as_str(),
            change.upstream_version,
            segment(&change.team)
        ),
        _ => format!("notice/{issue}/{}/v{}", change.kind.as_str(), change.upstream_version),
    }
}

/// The message to the previous team about a team change (optional).
pub fn previous_team_notice_key(change: &TicketChange, previous_team: &str) -> String {
    format!("{}/from-{}", notice_key(change), segment(previous_team))
}

pub fn index_key(issue_key: &str) -> String {
    format!("issue/{}", segment(issue_key))
}

/// The due date the last reminder of an issue announced.
pub fn last_reminder_key(issue_key: &str) -> String {
    format!("last-reminder/{}", segment(issue_key))
}

/// One key segment: characters NATS KV does not allow become `_`; never empty, never `.`-only.
pub fn segment(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=') { c } else { '_' })
        .collect();
    if cleaned.is_empty() { "_".into() } else { cleaned }
}

/// Whether a key is one NATS KV accepts.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '=' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reminder_keys_hold_the_due_date() {
        let due = "2027-02-09".parse().unwrap();
        assert_eq!(reminder_key("PLAT-412", ReminderKind::Due5d, due), "reminder/PLAT-412/due-5d/2027-02-09");
    }

    #[test]
    fn markers_round_trip() {
        let marker = Marker::Sent {
            at: Utc::now(),
            destination: "C1".into(),
            ts: Some("1.000001".into()),
            recovered: false,
        };
        let json = serde_json::to_string(&marker).unwrap();
        assert!(json.contains(r#""state":"sent""#), "{json}");
        assert_eq!(serde_json::from_str::<Marker>(&json).unwrap(), marker);
    }

    proptest! {
        #[test]
        fn every_key_is_valid(issue in ".*", team in ".*", days in 0i64..4000) {
            let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assert!(is_valid_key(&reminder_key(&issue, ReminderKind::Due14d, due)));
            prop_assert!(is_valid_key(&index_key(&issue)));
            let key = format!("notice/{}/team_changed/v1/to-{}", segment(&issue), segment(&team));
            prop_assert!(is_valid_key(&key));
        }
    }
}
