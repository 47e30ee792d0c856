//! The notifier's own index of our issues, kept from the ticket changes it consumes: issue key →
//! team, lane, summary, reason. The reminder scan asks JIRA only for what people may change
//! there (due date, status) and reads the rest from here.

use bus::{BusError, CasError, JsonKv};
use chrono::{DateTime, NaiveDate, Utc};
use contracts::TicketChange;
use serde::{Deserialize, Serialize};

use crate::markers::{index_key, last_reminder_key};
use crate::schedule::ReminderKind;

/// What the notifier knows about one issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueRecord {
    pub issue_id: String,
    pub issue_key: String,
    pub issue_url: String,
    pub team: String,
    pub lane: String,
    pub summary: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// How much work is left, as of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<contracts::Progress>,
    pub group_key: String,
    /// The change this record is from; an older change never overwrites a newer one.
    pub at: DateTime<Utc>,
    pub upstream_version: u64,
}

impl IssueRecord {
    pub fn from_change(change: &TicketChange) -> Self {
        IssueRecord {
            issue_id: change.issue_id.clone(),
            issue_key: change.issue_key.clone(),
            issue_url: change.issue_url.clone(),
            team: change.team.clone(),
            lane: change.lane.as_str().to_owned(),
            summary: change.summary.clone(),
            reason: change.reason.clone(),
            due_date: change.due_date,
            progress: change.progress.clone(),
            group_key: change.group_key.as_str().to_owned(),
            at: change.at,
            upstream_version: change.upstream_version,
        }
    }

    fn is_newer_than(&self, other: &IssueRecord) -> bool {
        (self.upstream_version, self.at) >= (other.upstream_version, other.at)
    }
}

/// Issue records in the `notifier_markers` bucket under `issue/<key>`.
#[derive(Clone)]
pub struct IssueIndex {
    kv: JsonKv<IssueRecord>,
}

impl IssueIndex {
    pub fn new(kv: JsonKv<IssueRecord>) -> Self {
        IssueIndex { kv }
    }

    /// Records a change unless a newer one is already recorded.
    pub async fn record(&self, change: &TicketChange) -> Result<(), BusError> {
        let record = IssueRecord::from_change(change);
        let key = index_key(&record.issue_key);
        loop {
            let current = self.kv.get(&key).await?;
            if let Some(current) = &current
                && !record.is_newer_than(&current.value)
            {
                return Ok(());
            }
            match self.kv.write(&key, &record, current.map(|c| c.revision)).await {
                Ok(_) => return Ok(()),
                Err(CasError::Conflict) => continue,
                Err(CasError::Bus(error)) => return Err(error),
            }
        }
    }

    pub async fn get(&self, issue_key: &str) -> Result<Option<IssueRecord>, BusError> {
        Ok(self.kv.get(&index_key(issue_key)).await?.map(|v| v.value))
    }
}

/// The last reminder sent for an issue: the due date it announced, so the next one can say the
/// due date moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastReminder {
    pub due: NaiveDate,
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// Last reminders in the `notifier_markers` bucket under `last-reminder/<key>`.
#[derive(Clone)]
pub struct LastReminders {
    kv: JsonKv<LastReminder>,
}

impl LastReminders {
    pub fn new(kv: JsonKv<LastReminder>) -> Self {
        LastReminders { kv }
    }

    pub async fn get(&self, issue_key: &str) -> Result<Option<LastReminder>, BusError> {
        Ok(self.kv.get(&last_reminder_key(issue_key)).await?.map(|v| v.value))
    }

    pub async fn record(&self, issue_key: &str, due: NaiveDate, kind: ReminderKind) -> Result<(), BusError> {
        let value = LastReminder { due, kind: kind.as_str().to_owned(), at: Utc::now() };
        self.kv.put(&last_reminder_key(issue_key), &value).await.map(|_| ())
    }
}
