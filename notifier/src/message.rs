//! What a message says: Block Kit blocks and a plain-text fallback, always within Slack's limits,
//! with untrusted text unable to mention anyone or link anywhere.
//!
//! Limits (https://docs.slack.dev/reference/block-kit/blocks): header text ≤ 150 characters,
//! section text ≤ 3000, section fields ≤ 10 of ≤ 2000, button text ≤ 75, URLs ≤ 3000, ≤ 50
//! blocks; the top-level `text` ≤ 40,000 (we keep it ≤ 3000: it is what notifications and
//! screen readers show). Every string is cut to its limit here, so a long summary or reason
//! never makes Slack refuse the message (`msg_too_long`, `invalid_blocks`).
//!
//! Safety (https://docs.slack.dev/messaging/formatting-message-text): Slack parses `&`, `<` and
//! `>` as control characters in mrkdwn and in the top-level `text`, so `<!channel>`, `<@U…>` or
//! `<http://x|click>` inside a JIRA summary would be a mention or a link. Untrusted text is
//! therefore escaped everywhere mrkdwn is parsed (blocks *and* the fallback `text`); mrkdwn text
//! objects are sent `verbatim`, so Slack does not turn bare URLs or `#channel` names into links;
//! in the fallback text `scheme://` is broken (`https[:]//…`), since that field has no verbatim
//! switch. The only links are the ones we add, and they point at the configured JIRA site.
//!
//! Dates are calendar dates written out ("Tue 15 Dec 2026"), never Slack's `<!date^…>` token:
//! that token is a Unix time Slack shows in each *reader's* zone, so midnight UTC reads as the
//! day before for everyone west of UTC.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::schedule::ReminderKind;

pub const HEADER_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3000;
pub const FIELD_TEXT_MAX: usize = 2000;
pub const FALLBACK_TEXT_MAX: usize = 3000;
pub const URL_MAX: usize = 3000;
pub const MAX_BLOCKS: usize = 50;

/// Why the message is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum NoticeKind {
    Created,
    TeamChanged {
        previous_team: Option<String>,
    },
    Reopened,
    Resolved,
    /// The sweep closed this ticket as a duplicate: the message names the ticket that survives.
    DuplicateClosed {
        survivor_key: String,
        survivor_url: String,
    },
    Reminder {
        kind: ReminderKind,
    },
}

impl NoticeKind {
    /// A short name for the context line and logs.
    pub fn name(&self) -> &'static str {
        match self {
            NoticeKind::Created => "created",
            NoticeKind::TeamChanged { .. } => "team-changed",
            NoticeKind::Reopened => "reopened",
            NoticeKind::Resolved => "resolved",
            NoticeKind::DuplicateClosed { .. } => "duplicate-closed",
            NoticeKind::Reminder { kind } => kind.as_str(),
        }
    }
}

/// Everything a message shows about one ticket. Every text field is untrusted (it comes from
/// Snyk, AWS or a person in JIRA) except `kind` and `today`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub issue_key: String,
    pub issue_url: String,
    pub summary: String,
    /// The owning team (the channel's team).
    pub team: String,
    pub lane: Option<String>,
    pub due: Option<NaiveDate>,
    /// The calendar day in the team's time zone when the message is made: "due in N days" is
    /// counted from it, so the header and the due date agree for the team.
    pub today: NaiveDate,
    /// Why infra-tickets filed it.
    pub reason: String,
    /// How much work is left ("3 of 5 resources still pending"), when known.
    pub progress: Option<String>,
    /// The due date the previous reminder announced, when it has moved since.
    pub due_moved_from: Option<NaiveDate>,
}

/// A rendered message: fallback text and blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// Which URLs a message may link to: issue pages of the configured JIRA site, nothing else.
#[derive(Debug, Clone, Default)]
pub struct LinkPolicy {
    /// `https://acme.atlassian.net` (scheme and authority, no trailing slash).
    site: Option<url::Url>,
}

impl LinkPolicy {
    /// Links to `site` only; `None` allows no link at all.
    pub fn new(site: Option<&str>) -> Result<Self, String> {
        let Some(site) = site else { return Ok(LinkPolicy { site: None }) };
        let url =
            url::Url::parse(site).map_err(|e| format!("the JIRA site URL {site:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(format!("the JIRA site URL {site:?} must be an http(s) URL with a host"));
        }
        Ok(LinkPolicy { site: Some(url) })
    }

    /// The URL, re-serialised, if it is an issue page of the configured site and fits Slack's
    /// limit; anything else (another host, `javascript:`, user info, a `|` or `>` that would end
    /// a mrkdwn link) is refused.
    pub fn issue_link(&self, candidate: &str) -> Option<String> {
        let site = self.site.as_ref()?;
        let url = url::Url::parse(candidate).ok()?;
        let same_origin = url.scheme() == site.scheme()
            && url.host_str() == site.host_str()
            && url.port_or_known_default() == site.port_or_known_default();
        let base = site.path().trim_end_matches('/');
        let on_browse = url.path().strip_prefix(base).is_some_and(|rest| rest.starts_with("/browse/"));
        let clean = url.username().is_empty() && url.password().is_none() && url.fragment().is_none();
        let text = url.to_string();
        let fits = text.chars().count() <= URL_MAX && !text.contains(['|', '<', '>', ' ']);
        (same_origin && on_browse && clean && fits).then_some(text)
    }
}

/// Renders a notice.
pub fn render(notice: &Notice, links: &LinkPolicy) -> SlackMessage {
    let key = &notice.issue_key;
    let summary = one_line(&notice.summary);
    let headline = headline(notice);
    let issue_link = links.issue_link(&notice.issue_url);
    let link = match &issue_link {
        Some(url) => format!("<{url}|{}>", escape(key)),
        None => format!("*{}*", escape(key)),
    };
    let mut fields = vec![field("Owner", &notice.team)];
    if let NoticeKind::TeamChanged { previous_team: Some(previous) } = &notice.kind {
        fields.push(field("Previously", previous));
    }
    if let Some(lane) = &notice.lane {
        fields.push(field("Lane", lane));
    }
    fields.push(field("Due", &due_text(notice)));
    if let Some(progress) = &notice.progress {
        fields.push(field("Progress", progress));
    }
    let room = SECTION_TEXT_MAX - link.chars().count() - 1;

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&headline, HEADER_MAX), "emoji": false}}),
        json!({"type": "section",
               "text": mrkdwn(&format!("{link} {}", cut_escaped(&summary, room, "…"))),
               "fields": fields}),
    ];
    // A closed duplicate: the message is there to point at the ticket kept.
    let survivor_link = match &notice.kind {
        NoticeKind::DuplicateClosed { survivor_key, survivor_url } => {
            let url = links.issue_link(survivor_url);
            let text = match &url {
                Some(url) => format!("<{url}|{}>", escape(&cut(&one_line(survivor_key), 255))),
                None => format!("*{}*", escape(&cut(&one_line(survivor_key), 255))),
            };
            blocks.push(json!({"type": "section", "text": mrkdwn(&format!(
                "{link} was a duplicate and is closed. Follow {text}, the ticket kept."
            ))}));
            Some(url)
        }
        _ => None,
    };
    if let (Some(from), Some(to)) = (notice.due_moved_from, notice.due) {
        let moved = format!(
            "The due date moved from {} to {} since the last reminder.",
            calendar_date(from),
            calendar_date(to)
        );
        blocks.push(json!({"type": "section", "text": mrkdwn(&moved)}));
    }
    let reason = notice.reason.trim();
    if !reason.is_empty() && survivor_link.is_none() {
        let title = "*Why it was filed*\n";
        let more = format!("… (more in {link})");
        let room = SECTION_TEXT_MAX - title.chars().count();
        blocks.push(json!({"type": "section", "text": mrkdwn(&format!("{title}{}", cut_escaped(reason, room, &more)))}));
    }
    // The button opens the ticket to work on: for a closed duplicate, the one kept.
    let button = match &survivor_link {
        Some(survivor) => survivor.as_ref(),
        None => issue_link.as_ref(),
    };
    if let Some(url) = button {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in JIRA"}, "url": url}
        ]}));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("infra-tickets · {}", notice.kind.name())}
    ]}));

    let mut text = format!("{key}: {headline}");
    if let Some(due) = notice.due {
        text.push_str(&format!(" (due {})", calendar_date(due)));
    }
    if let Some(progress) = &notice.progress {
        text.push_str(&format!("; {}", one_line(progress)));
    }
    SlackMessage { text: fallback_text(&text), blocks }
}

/// A message to the SRE channel about a source (see [`crate::sources`]): `headline`,
/// `explanation` and `scope` hold outside text (an org id, an error from the upstream), escaped
/// here.
pub fn render_source_notice(headline: &str, explanation: &str, scope: &str, source: &str) -> SlackMessage {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&one_line(headline), HEADER_MAX), "emoji": false}}),
        json!({"type": "section", "fields": [field("Source", source), field("Scope", scope)]}),
    ];
    if !explanation.trim().is_empty() {
        blocks.push(json!({"type": "section", "text": mrkdwn(&cut_escaped(&one_line(explanation), SECTION_TEXT_MAX, "…"))}));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": "infra-tickets · source check (docs/runbook.md#infraticketssourcefailing)"}
    ]}));
    SlackMessage { text: fallback_text(headline), blocks }
}

/// One line of a list message (the digest).
#[derive(Debug, Clone, PartialEq)]
pub struct ListItem {
    pub issue_key: String,
    pub issue_url: String,
    pub summary: String,
    pub due: NaiveDate,
    pub progress: Option<String>,
}

/// A list of tickets in one message: as many lines as fit Slack's limits, then "and N more"
/// with a link to the full list (`more_url`, if the policy allows it).
pub fn render_list(
    title: &str,
    items: &[ListItem],
    today: NaiveDate,
    more_url: Option<&str>,
    links: &LinkPolicy,
) -> SlackMessage {
    const LINES_MAX: usize = 40;
    const LIST_TEXT_MAX: usize = 9_000;
    let lines: Vec<String> = items
        .iter()
        .map(|item| {
            let key = match links.issue_link(&item.issue_url) {
                Some(url) => format!("<{url}|{}>", escape(&item.issue_key)),
                None => format!("*{}*", escape(&item.issue_key)),
            };
            let mut line = format!(
                "• {key} {} — due {} ({})",
                escape(&cut(&one_line(&item.summary), 200)),
                calendar_date(item.due),
                relative_days(item.due, today)
            );
            if let Some(progress) = &item.progress {
                line.push_str(&format!(", {}", escape(&one_line(progress))));
            }
            line
        })
        .collect();
    let mut shown = 0;
    let mut used = 0;
    for line in &lines {
        let size = line.chars().count() + 1;
        if shown == LINES_MAX || used + size > LIST_TEXT_MAX {
            break;
        }
        shown += 1;
        used += size;
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(title, HEADER_MAX), "emoji": false}}),
    ];
    // Sections of up to 3000 characters each, whole lines only.
    let mut section = String::new();
    for line in &lines[..shown] {
        if section.chars().count() + line.chars().count() + 1 > SECTION_TEXT_MAX {
            blocks.push(json!({"type": "section", "text": mrkdwn(&section)}));
            section.clear();
        }
        if !section.is_empty() {
            section.push('\n');
        }
        section.push_str(&cut(line, SECTION_TEXT_MAX));
    }
    if !section.is_empty() {
        blocks.push(json!({"type": "section", "text": mrkdwn(&section)}));
    }
    let hidden = lines.len() - shown;
    if hidden > 0 {
        let more = match more_url.and_then(|url| links.issue_link_or_search(url)) {
            Some(url) => format!("…and {hidden} more: <{url}|see them all in JIRA>"),
            None => format!("…and {hidden} more in JIRA"),
        };
        blocks.push(json!({"type": "section", "text": mrkdwn(&more)}));
    }
    blocks
        .push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "infra-tickets · digest"}]}));
    let text = format!("{title}: {} tickets", items.len());
    SlackMessage { text: fallback_text(&text), blocks }
}

impl LinkPolicy {
    /// A link to the site's issue search (`/issues/?jql=…`) or an issue page.
    fn issue_link_or_search(&self, candidate: &str) -> Option<String> {
        if let Some(link) = self.issue_link(candidate) {
            return Some(link);
        }
        let site = self.site.as_ref()?;
        let url = url::Url::parse(candidate).ok()?;
        let base = site.path().trim_end_matches('/');
        let same = url.origin() == site.origin()
            && url.path().strip_prefix(base).is_some_and(|rest| rest == "/issues/" || rest == "/issues");
        let text = url.to_string();
        (same && text.chars().count() <= URL_MAX && !text.contains(['|', '<', '>', ' '])).then_some(text)
    }

    /// `https://site/issues/?jql=<jql>`, when a site is configured.
    pub fn search_url(&self, jql: &str) -> Option<String> {
        let site = self.site.as_ref()?;
        let mut url = site.clone();
        let base = site.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/issues/"));
        url.query_pairs_mut().clear().append_pair("jql", jql);
        Some(url.to_string())
    }
}

fn headline(notice: &Notice) -> String {
    let summary = one_line(&notice.summary);
    let team = one_line(&notice.team);
    match &notice.kind {
        NoticeKind::Created => format!("New ticket for {team}: {summary}"),
        NoticeKind::TeamChanged { previous_team: Some(previous) } => {
            format!("Handed to {team} from {}: {summary}", one_line(previous))
        }
        NoticeKind::TeamChanged { previous_team: None } => format!("Handed to {team}: {summary}"),
        NoticeKind::Reopened => format!("Reopened: {summary}"),
        NoticeKind::Resolved => format!("Resolved: {summary}"),
        NoticeKind::DuplicateClosed { survivor_key, .. } => {
            format!("Closed as a duplicate of {}: {summary}", one_line(survivor_key))
        }
        NoticeKind::Reminder { .. } => match notice.due {
            Some(due) => {
                let days = (due - notice.today).num_days();
                if days < 0 {
                    format!("Overdue by {}: {summary}", plural_days(-days))
                } else if days == 0 {
                    format!("Due today: {summary}")
                } else {
                    format!("Due in {}: {summary}", plural_days(days))
                }
            }
            None => format!("Reminder: {summary}"),
        },
    }
}

/// "Tue 15 Dec 2026 (in 14 days)", counted from the team's day.
fn due_text(notice: &Notice) -> String {
    match notice.due {
        Some(due) => format!("{} ({})", calendar_date(due), relative_days(due, notice.today)),
        None => "not set".into(),
    }
}

fn relative_days(due: NaiveDate, today: NaiveDate) -> String {
    let days = (due - today).num_days();
    match days {
        0 => "today".into(),
        d if d < 0 => format!("{} ago", plural_days(-d)),
        d => format!("in {}", plural_days(d)),
    }
}

/// A calendar date as people read it, the same in every zone and locale: `Tue 15 Dec 2026`.
pub fn calendar_date(date: NaiveDate) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    format!(
        "{} {} {} {}",
        WEEKDAYS[date.weekday().num_days_from_monday() as usize],
        date.day(),
        MONTHS[date.month0() as usize],
        date.year()
    )
}

fn plural_days(days: i64) -> String {
    if days == 1 { "1 day".into() } else { format!("{days} days") }
}

/// A mrkdwn text object Slack takes as written: no auto-linking of URLs or channel names.
fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// A `*Title*\nvalue` field; `value` is untrusted and escaped here.
fn field(title: &str, value: &str) -> Value {
    let title = format!("*{title}*\n");
    let value = cut_escaped(&one_line(value), FIELD_TEXT_MAX - title.chars().count(), "…");
    mrkdwn(&format!("{title}{value}"))
}

/// The top-level `text`: escaped, links broken, within the limit. Slack parses this field as
/// mrkdwn (mentions, `<url|label>`, bare URLs) with no verbatim switch.
fn fallback_text(text: &str) -> String {
    cut_escaped(&defang_urls(text), FALLBACK_TEXT_MAX, "…")
}

/// `https://x` → `https[:]//x`, `www.x` → `www[.]x`: readable, not clickable.
fn defang_urls(text: &str) -> String {
    text.replace("://", "[:]//").replace("www.", "www[.]").replace("WWW.", "WWW[.]")
}

/// Escapes the three characters Slack's mrkdwn reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escapes `text` and cuts it to `max` characters *after* escaping, ending with `more`; an
/// entity is never cut in half.
fn cut_escaped(text: &str, max: usize, more: &str) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let room = max.saturating_sub(more.chars().count());
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let size = piece.chars().count();
        if used + size > room {
            break;
        }
        out.push_str(&piece);
        used += size;
    }
    out.push_str(more);
    out
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

    const SITE: &str = "https://example.atlassian.net";

    fn links() -> LinkPolicy {
        LinkPolicy::new(Some(SITE)).unwrap()
    }

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            issue_key: "PLAT-412".into(),
            issue_url: format!("{SITE}/browse/PLAT-412"),
            summary: "EC2 instance retirement – eu-west-1".into(),
            team: "fleet".into(),
            lane: Some("Maintenance".into()),
            due: Some("2027-02-09".parse().unwrap()),
            today: "2027-01-26".parse().unwrap(),
            reason: "AWS Health scheduled the retirement of i-0a1b <prod>.".into(),
            progress: None,
            due_moved_from: None,
        }
    }

    fn all_text(message: &SlackMessage) -> String {
        format!("{}\n{}", message.text, serde_json::to_string(&message.blocks).unwrap())
    }

    #[test]
    fn shows_link_summary_lane_due_owner_and_reason() {
        let message = render(&notice(NoticeKind::Created), &links());
        let all = all_text(&message);
        assert!(all.contains("<https://example.atlassian.net/browse/PLAT-412|PLAT-412>"), "{all}");
        assert!(all.contains("Maintenance") && all.contains("fleet"), "{all}");
        assert!(all.contains("Tue 9 Feb 2027 (in 14 days)"), "{all}");
        assert!(all.contains("i-0a1b &lt;prod&gt;"), "reason is escaped: {all}");
        assert!(message.text.starts_with("PLAT-412: New ticket for fleet"), "{}", message.text);
        assert!(message.text.ends_with("(due Tue 9 Feb 2027)"), "{}", message.text);
    }

    #[test]
    fn a_closed_duplicate_names_and_links_the_ticket_kept() {
        let kind = NoticeKind::DuplicateClosed {
            survivor_key: "PLAT-400".into(),
            survivor_url: format!("{SITE}/browse/PLAT-400"),
        };
        let message = render(&notice(kind), &links());
        let all = all_text(&message);
        assert!(message.text.starts_with("PLAT-412: Closed as a duplicate of PLAT-400"), "{}", message.text);
        assert!(all.contains("Follow <https://example.atlassian.net/browse/PLAT-400|PLAT-400>"), "{all}");
        assert!(all.contains(r#""url":"https://example.atlassian.net/browse/PLAT-400""#), "{all}");
        let elsewhere = NoticeKind::DuplicateClosed {
            survivor_key: "<!channel>".into(),
            survivor_url: "https://evil.example/browse/X-1".into(),
        };
        let message = render(&notice(elsewhere), &links());
        let all = all_text(&message);
        // No link to another site; the key is escaped wherever mrkdwn is parsed (the header is
        // plain text, which Slack never parses).
        assert!(!all.contains("evil.example"), "{all}");
        assert!(!message.text.contains('<'), "{}", message.text);
        assert!(all.contains("Follow *&lt;!channel&gt;*, the ticket kept"), "{all}");
    }

    #[test]
    fn due_dates_are_calendar_dates_never_a_timestamp_shown_in_the_readers_zone() {
        let message = render(&notice(NoticeKind::Reminder { kind: ReminderKind::Due14d }), &links());
        let all = all_text(&message);
        assert!(!all.contains("<!date"), "{all}");
        assert!(
            message.text.contains("Due in 14 days") && all.contains("Tue 9 Feb 2027 (in 14 days)"),
            "{all}"
        );
        assert_eq!(calendar_date("2026-12-31".parse().unwrap()), "Thu 31 Dec 2026");
        assert_eq!(calendar_date("2028-02-29".parse().unwrap()), "Tue 29 Feb 2028");
    }

    #[test]
    fn team_change_names_the_old_team_and_reminders_count_days_from_the_teams_day() {
        let moved =
            render(&notice(NoticeKind::TeamChanged { previous_team: Some("payments".into()) }), &links());
        assert!(moved.text.contains("Handed to fleet from payments"), "{}", moved.text);
        let mut reminder = notice(NoticeKind::Reminder { kind: ReminderKind::Due5d });
        reminder.today = "2027-02-04".parse().unwrap();
        assert!(render(&reminder, &links()).text.contains("Due in 5 days"));
        reminder.today = "2027-02-09".parse().unwrap();
        assert!(render(&reminder, &links()).text.contains("Due today"));
        reminder.kind = NoticeKind::Reminder { kind: ReminderKind::Overdue };
        reminder.today = "2027-02-11".parse().unwrap();
        assert!(render(&reminder, &links()).text.contains("Overdue by 2 days"));
    }

    #[test]
    fn progress_and_a_moved_due_date_are_shown() {
        let mut reminder = notice(NoticeKind::Reminder { kind: ReminderKind::Due5d });
        reminder.today = "2027-02-04".parse().unwrap();
        reminder.progress = Some("3 of 5 resources still pending".into());
        reminder.due_moved_from = Some("2027-02-02".parse().unwrap());
        let message = render(&reminder, &links());
        let all = all_text(&message);
        assert!(message.text.contains("3 of 5 resources still pending"), "{}", message.text);
        assert!(all.contains("moved from Tue 2 Feb 2027 to Tue 9 Feb 2027"), "{all}");
    }

    /// Hostile text as it reaches us from the sources, each case of our own writing modelled on
    /// a public report of the shape.
    const HOSTILE: &[(&str, &str)] = &[
        // Slack's special mentions in angle brackets (docs.slack.dev/messaging/formatting-message-text, "Special mentions").
        ("broadcast mention", "Retire <!channel> and <!here> and <!everyone> now"),
        // User and group mentions (same page, "Mentioning users" / "Mentioning groups").
        ("user and group mention", "owner <@U0123ABCD> cc <!subteam^S0456EFGH>"),
        // A labelled link hiding its target (gitlab-org/gitlab MR 126744: Slack links in issue descriptions).
        ("labelled link", "see <http://evil.example/login|the AWS console>"),
        // A bare URL, which Slack links by itself unless verbatim.
        ("bare url", "details at https://evil.example/phish and www.evil.example"),
        // Entities already escaped upstream, which must stay text (Slack's control-character rule).
        ("pre-escaped", "a &lt;b&gt; c &amp;amp; <#C0123|general>"),
        // A Snyk project name with a date token (docs.slack.dev formatting, "Date formatting").
        ("date token", "acme/checkout:<!date^1392734382^{date}|x>"),
    ];

    #[test]
    fn untrusted_text_cannot_mention_anyone_or_link_anywhere_in_any_field() {
        for (case, hostile) in HOSTILE {
            let mut dangerous = notice(NoticeKind::TeamChanged { previous_team: Some(hostile.to_string()) });
            dangerous.summary = hostile.to_string();
            dangerous.reason = hostile.to_string();
            dangerous.team = hostile.to_string();
            dangerous.lane = Some(hostile.to_string());
            dangerous.progress = Some(hostile.to_string());
            let message = render(&dangerous, &links());
            // The fallback text: no control characters from the source, no clickable scheme.
            assert!(!message.text.contains('<') && !message.text.contains('>'), "{case}: {}", message.text);
            assert!(
                !message.text.contains("://") && !message.text.contains("www."),
                "{case}: {}",
                message.text
            );
            // Every mrkdwn text object: verbatim, and the only `<` is our own issue link.
            for text in mrkdwn_texts(&message.blocks) {
                let ours = text.replace("<https://example.atlassian.net/browse/PLAT-412|PLAT-412>", "");
                assert!(!ours.contains('<'), "{case}: {text}");
            }
            assert_eq!(slack_sim::blocks::validate(&Value::Array(message.blocks.clone())), Ok(()), "{case}");
        }
    }

    fn mrkdwn_texts(blocks: &[Value]) -> Vec<String> {
        fn walk(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if map.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                        let text = map.get("text").and_then(Value::as_str).unwrap_or_default();
                        if !text.starts_with("infra-tickets · ") {
                            assert_eq!(map.get("verbatim"), Some(&Value::Bool(true)), "{text}");
                        }
                        out.push(text.to_owned());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        blocks.iter().for_each(|b| walk(b, &mut out));
        out
    }

    #[test]
    fn links_and_buttons_point_only_at_the_configured_jira_site() {
        let refused = [
            "https://evil.example/browse/PLAT-412",
            "javascript:alert(1)",
            "https://example.atlassian.net.evil.example/browse/PLAT-412",
            "https://user:pw@example.atlassian.net/browse/PLAT-412",
            "http://example.atlassian.net/browse/PLAT-412",
            "https://example.atlassian.net/secure/admin",
            "https://example.atlassian.net/browse/PLAT-412|click here",
            "",
        ];
        for url in refused {
            let mut odd = notice(NoticeKind::Created);
            odd.issue_url = url.to_owned();
            let message = render(&odd, &links());
            let all = all_text(&message);
            assert!(!all.contains("\"url\""), "no button for {url:?}: {all}");
            assert!(!all.contains("<http") && !all.contains("<javascript"), "no link for {url:?}: {all}");
            assert!(all.contains("*PLAT-412*"), "{all}");
        }
        let message = render(&notice(NoticeKind::Created), &LinkPolicy::default());
        assert!(!all_text(&message).contains("\"url\""), "no site configured: no links");
        assert!(LinkPolicy::new(Some("ftp://x")).is_err() && LinkPolicy::new(Some("not a url")).is_err());
    }

    #[test]
    fn long_content_stays_within_block_kit_limits_and_entities_are_never_cut() {
        let mut long = notice(NoticeKind::Created);
        long.summary = "<".repeat(10_000);
        long.reason = "&".repeat(10_000);
        long.team = "t".repeat(5_000);
        long.progress = Some(">".repeat(5_000));
        let message = render(&long, &links());
        assert_eq!(slack_sim::blocks::validate(&Value::Array(message.blocks.clone())), Ok(()));
        assert!(message.text.chars().count() <= FALLBACK_TEXT_MAX);
        for text in mrkdwn_texts(&message.blocks) {
            let without = text.replace("&lt;", "").replace("&gt;", "").replace("&amp;", "");
            assert!(
                !without.contains('&'),
                "an entity was cut: …{}",
                &without[without.len().saturating_sub(40)..]
            );
        }
        assert!(
            all_text(&message).contains("(more in <https://example.atlassian.net/browse/PLAT-412|PLAT-412>)")
        );
    }

    #[test]
    fn a_long_list_is_cut_with_and_n_more_and_a_link() {
        let items: Vec<ListItem> = (0..500)
            .map(|n| ListItem {
                issue_key: format!("PLAT-{n}"),
                issue_url: format!("{SITE}/browse/PLAT-{n}"),
                summary: format!("ticket {n} <!here> {}", "x".repeat(150)),
                due: "2027-02-09".parse().unwrap(),
                progress: Some("2 critical findings left".into()),
            })
            .collect();
        let more = links().search_url(r#"labels = "infra-tickets""#);
        let message = render_list(
            "Due within 14 days",
            &items,
            "2027-02-01".parse().unwrap(),
            more.as_deref(),
            &links(),
        );
        assert_eq!(slack_sim::blocks::validate(&Value::Array(message.blocks.clone())), Ok(()));
        let all = all_text(&message);
        let shown = all.matches("• <https://example.atlassian.net/browse/PLAT-").count();
        assert_eq!(shown, 31, "as many lines as fit");
        assert!(
            all.contains(&format!("…and {} more: <https://example.atlassian.net/issues/?jql=", 500 - shown)),
            "{all}"
        );
        assert!(all.contains("due Tue 9 Feb 2027 (in 8 days), 2 critical findings left"), "{all}");
        assert!(!all.contains("<!here>"));
        let total: usize = mrkdwn_texts(&message.blocks).iter().map(|t| t.chars().count()).sum();
        assert!(total < 12_000, "well below the total Slack takes in one message: {total}");
    }
}
