//! What a message says: Block Kit blocks and a plain-text fallback, always within Slack's limits.
//!
//! Limits (https://docs.slack.dev/reference/block-kit/blocks): header text ≤ 150 characters,
//! section text ≤ 3000, section fields ≤ 10 of ≤ 2000, button text ≤ 75, URLs ≤ 3000, ≤ 50
//! blocks; the top-level `text` ≤ 40,000. Every string is cut to its limit here, so a long
//! summary or reason never makes Slack refuse the message.

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;
use serde_json::{Value, json};

use crate::schedule::ReminderKind;

pub const HEADER_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3000;
pub const FIELD_TEXT_MAX: usize = 2000;
pub const FALLBACK_TEXT_MAX: usize = 3000;
pub const URL_MAX: usize = 3000;

/// Why the message is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Created,
    TeamChanged { previous_team: Option<String> },
    Reopened,
    Resolved,
    Reminder { kind: ReminderKind, today: NaiveDate },
}

impl NoticeKind {
    /// A short name for the context line and logs.
    pub fn name(&self) -> &'static str {
        match self {
            NoticeKind::Created => "created",
            NoticeKind::TeamChanged { .. } => "team-changed",
            NoticeKind::Reopened => "reopened",
            NoticeKind::Resolved => "resolved",
            NoticeKind::Reminder { kind, .. } => kind.as_str(),
        }
    }
}

/// Everything a message shows about one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub issue_key: String,
    pub issue_url: String,
    pub summary: String,
    /// The owning team (the channel's team).
    pub team: String,
    pub lane: Option<String>,
    pub due: Option<NaiveDate>,
    /// Why infra-tickets filed it.
    pub reason: String,
}

/// A rendered message: fallback text and blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// Renders a notice.
pub fn render(notice: &Notice) -> SlackMessage {
    let key = &notice.issue_key;
    let summary = one_line(&notice.summary);
    let headline = headline(notice);
    let link = if notice.issue_url.chars().count() <= URL_MAX && !notice.issue_url.is_empty() {
        format!("<{}|{}>", escape(&notice.issue_url), escape(key))
    } else {
        format!("*{}*", escape(key))
    };
    let mut fields = vec![field("Owner", &escape(&notice.team))];
    if let NoticeKind::TeamChanged { previous_team: Some(previous) } = &notice.kind {
        fields.push(field("Previously", &escape(previous)));
    }
    if let Some(lane) = &notice.lane {
        fields.push(field("Lane", &escape(lane)));
    }
    fields.push(field("Due", &notice.due.map(slack_date).unwrap_or_else(|| "not set".into())));

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&headline, HEADER_MAX), "emoji": false}}),
        json!({"type": "section",
               "text": {"type": "mrkdwn", "text": cut(&format!("{link} {}", escape(&summary)), SECTION_TEXT_MAX)},
               "fields": fields}),
    ];
    let reason = notice.reason.trim();
    if !reason.is_empty() {
        let why = format!("*Why it was filed*\n{}", escape(reason));
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&why, SECTION_TEXT_MAX)}}),
        );
    }
    if !notice.issue_url.is_empty() && notice.issue_url.chars().count() <= URL_MAX {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in JIRA"}, "url": notice.issue_url}
        ]}));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("infra-tickets · {}", notice.kind.name())}
    ]}));

    let text = cut(&format!("{key}: {headline} — {summary}"), FALLBACK_TEXT_MAX);
    SlackMessage { text, blocks }
}

fn headline(notice: &Notice) -> String {
    let summary = one_line(&notice.summary);
    match &notice.kind {
        NoticeKind::Created => format!("New ticket for {}: {summary}", notice.team),
        NoticeKind::TeamChanged { previous_team: Some(previous) } => {
            format!("Handed to {} from {previous}: {summary}", notice.team)
        }
        NoticeKind::TeamChanged { previous_team: None } => format!("Handed to {}: {summary}", notice.team),
        NoticeKind::Reopened => format!("Reopened: {summary}"),
        NoticeKind::Resolved => format!("Resolved: {summary}"),
        NoticeKind::Reminder { kind, today } => {
            let days = notice.due.map(|due| (due - *today).num_days()).unwrap_or_default();
            match kind {
                ReminderKind::Overdue => format!("Overdue by {}: {summary}", plural_days(-days)),
                _ if days == 0 => format!("Due today: {summary}"),
                _ => format!("Due in {}: {summary}", plural_days(days)),
            }
        }
    }
}

fn plural_days(days: i64) -> String {
    if days == 1 { "1 day".into() } else { format!("{days} days") }
}

fn field(title: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": cut(&format!("*{title}*\n{value}"), FIELD_TEXT_MAX)})
}

/// A date Slack shows in the reader's locale, with the ISO date as fallback.
fn slack_date(date: NaiveDate) -> String {
    let timestamp = date.and_time(NaiveTime::MIN).and_utc().timestamp();
    format!("<!date^{timestamp}^{{date_short}}|{date}>")
}

/// Escapes the three characters Slack's mrkdwn reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            issue_key: "PLAT-412".into(),
            issue_url: "https://example.atlassian.net/browse/PLAT-412".into(),
            summary: "EC2 instance retirement – eu-west-1".into(),
            team: "fleet".into(),
            lane: Some("Maintenance".into()),
            due: Some("2027-02-09".parse().unwrap()),
            reason: "AWS Health scheduled the retirement of i-0a1b <prod>.".into(),
        }
    }

    #[test]
    fn shows_link_summary_lane_due_owner_and_reason() {
        let message = render(&notice(NoticeKind::Created));
        let all = serde_json::to_string(&message.blocks).unwrap();
        assert!(all.contains("<https://example.atlassian.net/browse/PLAT-412|PLAT-412>"), "{all}");
        assert!(all.contains("Maintenance") && all.contains("fleet") && all.contains("2027-02-09"), "{all}");
        assert!(all.contains("i-0a1b &lt;prod&gt;"), "reason is escaped: {all}");
        assert!(message.text.starts_with("PLAT-412: New ticket for fleet"), "{}", message.text);
    }

    #[test]
    fn team_change_names_the_old_team_and_reminders_count_days() {
        let moved = render(&notice(NoticeKind::TeamChanged { previous_team: Some("payments".into()) }));
        assert!(moved.text.contains("Handed to fleet from payments"), "{}", moved.text);
        let today = "2027-02-04".parse().unwrap();
        let reminder = render(&notice(NoticeKind::Reminder { kind: ReminderKind::Due5d, today }));
        assert!(reminder.text.contains("Due in 5 days"), "{}", reminder.text);
        let late = "2027-02-11".parse().unwrap();
        let overdue = render(&notice(NoticeKind::Reminder { kind: ReminderKind::Overdue, today: late }));
        assert!(overdue.text.contains("Overdue by 2 days"), "{}", overdue.text);
    }

    #[test]
    fn long_content_stays_within_block_kit_limits() {
        let mut long = notice(NoticeKind::Created);
        long.summary = "s".repeat(10_000);
        long.reason = "r".repeat(10_000);
        long.team = "t".repeat(5_000);
        let message = render(&long);
        assert_eq!(slack_sim::blocks::validate(&Value::Array(message.blocks.clone())), Ok(()));
        assert!(message.text.chars().count() <= FALLBACK_TEXT_MAX);
    }
}
