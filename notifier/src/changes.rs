//! Ticket changes → messages: a new ticket, a ticket handed to another team, a reopened one, a
//! duplicate the sweep closed (naming the ticket kept) and, if enabled, a resolved one, each to
//! the owning team's channel, each exactly once.

use std::sync::Arc;

use bus::{Delivery, Handler};
use catalog::Catalog;
use chrono::NaiveDate;
use contracts::{ChangeKind, TicketChange};
use service_kit::Clock;

use crate::destinations::Destinations;
use crate::error::NotifyError;
use crate::index::IssueIndex;
use crate::markers::{notice_key, previous_team_notice_key};
use crate::message::{LinkPolicy, Notice, NoticeKind, render};
use crate::sender::{SendOutcome, Sender};
use crate::slack::SlackError;
use crate::waiting::{ChannelWaits, ParkedMessage};

/// Which changes are announced.
#[derive(Debug, Clone, Copy)]
pub struct ChangeSettings {
    pub notify_resolved: bool,
    /// Also tell the team that had the ticket before a team change.
    pub notify_previous_team: bool,
}

/// The message kind a change deserves, if any.
pub fn notice_kind(change: &TicketChange, settings: &ChangeSettings) -> Option<NoticeKind> {
    match change.kind {
        ChangeKind::Created => Some(NoticeKind::Created),
        ChangeKind::TeamChanged => {
            Some(NoticeKind::TeamChanged { previous_team: change.previous_team.clone() })
        }
        ChangeKind::Reopened => Some(NoticeKind::Reopened),
        ChangeKind::Resolved if settings.notify_resolved => Some(NoticeKind::Resolved),
        ChangeKind::Resolved | ChangeKind::Updated => None,
        // Its survivor is in the document beyond the common change: see [`duplicate_notice_kind`].
        ChangeKind::DuplicateClosed => None,
    }
}

/// The message kind of a `duplicate_closed` change: it names the ticket that survives.
pub fn duplicate_notice_kind(payload: &[u8]) -> Result<NoticeKind, contracts::ContractError> {
    let closed = contracts::DuplicateClosed::from_json(payload)?;
    Ok(NoticeKind::DuplicateClosed {
        survivor_key: closed.survivor.issue_key,
        survivor_url: closed.survivor.issue_url,
    })
}

/// The notice for a change; `today` is the receiving team's calendar day.
fn notice(change: &TicketChange, kind: NoticeKind, today: NaiveDate) -> Notice {
    Notice {
        kind,
        issue_key: change.issue_key.clone(),
        issue_url: change.issue_url.clone(),
        summary: change.summary.clone(),
        team: change.team.clone(),
        lane: Some(change.lane.as_str().to_owned()),
        due: change.due_date,
        today,
        reason: change.reason.clone(),
        progress: change.progress.as_ref().map(contracts::Progress::describe),
        due_moved_from: None,
    }
}

/// The `notifier` consumer's handler.
pub struct ChangeHandler {
    pub index: IssueIndex,
    pub sender: Arc<Sender>,
    pub destinations: Arc<Destinations>,
    pub waits: Arc<ChannelWaits>,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub links: LinkPolicy,
    pub settings: ChangeSettings,
}

impl ChangeHandler {
    /// The team's calendar day now, in its time zone.
    fn today_of(&self, team: &str) -> NaiveDate {
        self.clock.now().with_timezone(&self.catalog.team(team).time_zone).date_naive()
    }

    async fn send(&self, key: &str, team: &str, notice: &Notice) -> Result<(), NotifyError> {
        let destination = self.destinations.for_team(team)?;
        let label = destination.label();
        let message = render(notice, &self.links);
        let park = |reason: String| ParkedMessage {
            marker: key.to_owned(),
            team: team.to_owned(),
            issue_key: notice.issue_key.clone(),
            notice: notice.clone(),
            reason,
            since: chrono::Utc::now(),
        };
        // A channel known to be waiting: queue behind the messages already waiting for it.
        if let Some(reason) = self.waits.waiting_reason(&label)
            && !self.sender.is_done(key).await?
        {
            self.waits.park(&park(reason)).await?;
            tracing::info!(marker = %key, destination = %label, "The channel waits; the message waits with it.");
            return Ok(());
        }
        let outcome = match self.sender.send_once(key, &destination, &message, &notice.issue_key).await {
            Ok(outcome) => outcome,
            Err(NotifyError::Slack(error @ SlackError::ChannelUnavailable { .. })) => {
                self.waits.record(&label, &error);
                self.waits.park(&park(error.to_string())).await?;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        if !matches!(outcome, SendOutcome::ClaimedElsewhere { .. }) {
            self.waits.record_delivered(&label);
        }
        match outcome {
            SendOutcome::ClaimedElsewhere { remaining } => {
                Err(NotifyError::ClaimedElsewhere { marker: key.to_owned(), retry_after: remaining })
            }
            outcome => {
                tracing::info!(marker = %key, issue_key = %notice.issue_key, destination = %destination.label(), ?outcome, "Ticket change announced.");
                Ok(())
            }
        }
    }
}

impl Handler for ChangeHandler {
    type Error = NotifyError;

    async fn handle(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        let change = TicketChange::from_json(delivery.payload())?;
        self.index.record(&change).await?;
        let kind = match change.kind {
            ChangeKind::DuplicateClosed => Some(duplicate_notice_kind(delivery.payload())?),
            _ => notice_kind(&change, &self.settings),
        };
        let Some(kind) = kind else { return Ok(()) };
        let message = notice(&change, kind.clone(), self.today_of(&change.team));
        self.send(&notice_key(&change), &change.team, &message).await?;
        if self.settings.notify_previous_team
            && change.kind == ChangeKind::TeamChanged
            && let Some(previous) = change.previous_team.as_deref().filter(|p| *p != change.team)
        {
            let message = notice(&change, kind, self.today_of(previous));
            self.send(&previous_team_notice_key(&change, previous), previous, &message).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::{GroupKey, Lane, Source};

    fn change(kind: ChangeKind) -> TicketChange {
        TicketChange {
            schema: 1,
            kind,
            group_key: GroupKey::new(Source::Snyk, ["github", "acme/checkout"]),
            source: Source::Snyk,
            issue_id: "10001".into(),
            issue_key: "PAY-1".into(),
            issue_url: "https://x/browse/PAY-1".into(),
            team: "payments".into(),
            previous_team: Some("platform".into()),
            lane: Lane::P2,
            due_date: None,
            summary: "s".into(),
            progress: None,
            reason: "r".into(),
            content_hash: "h".into(),
            upstream_version: 3,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn announces_created_moved_and_reopened_and_resolved_only_on_request() {
        let quiet = ChangeSettings { notify_resolved: false, notify_previous_team: false };
        let loud = ChangeSettings { notify_resolved: true, ..quiet };
        assert_eq!(notice_kind(&change(ChangeKind::Created), &quiet), Some(NoticeKind::Created));
        assert_eq!(
            notice_kind(&change(ChangeKind::TeamChanged), &quiet),
            Some(NoticeKind::TeamChanged { previous_team: Some("platform".into()) })
        );
        assert_eq!(notice_kind(&change(ChangeKind::Reopened), &quiet), Some(NoticeKind::Reopened));
        assert_eq!(notice_kind(&change(ChangeKind::Updated), &loud), None);
        assert_eq!(notice_kind(&change(ChangeKind::Resolved), &quiet), None);
        assert_eq!(notice_kind(&change(ChangeKind::Resolved), &loud), Some(NoticeKind::Resolved));
        assert_eq!(notice_key(&change(ChangeKind::TeamChanged)), "notice/10001/team_changed/v3/to-payments");
        assert_eq!(notice_key(&change(ChangeKind::Reopened)), "notice/10001/reopened/v3");
        // Creation announced twice with different versions: one message.
        let mut again = change(ChangeKind::Created);
        again.upstream_version = 7;
        assert_eq!(notice_key(&change(ChangeKind::Created)), notice_key(&again));
    }
}
