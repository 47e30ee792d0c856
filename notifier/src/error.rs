//! The notifier's errors, classified for the consumer runtime.

use std::time::Duration;

use bus::{BusError, Classify, ErrorClass};

use crate::slack::SlackError;

/// Why one ticket change or reminder could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the ticket change cannot be read: {0}")]
    Malformed(#[from] contracts::ContractError),
    #[error(
        "team {team:?} has no Slack destination: set slack_channel or slack_webhook_env in its [teams.{team}] catalog section"
    )]
    NoDestination { team: String },
    #[error(transparent)]
    Slack(#[from] SlackError),
    #[error(transparent)]
    Jira(#[from] jira::JiraError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Another notifier holds a fresh claim on the message; it will finish or its claim expires.
    #[error("another notifier is sending {marker}; checking again in {retry_after:?}")]
    ClaimedElsewhere { marker: String, retry_after: Duration },
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        match self {
            NotifyError::Malformed(_) | NotifyError::NoDestination { .. } => ErrorClass::DeadLetter,
            NotifyError::Slack(error) => error.class(),
            NotifyError::Jira(error) => error.class(),
            NotifyError::Bus(error) => error.class(),
            NotifyError::ClaimedElsewhere { retry_after, .. } => {
                ErrorClass::Retry { after: Some(*retry_after) }
            }
        }
    }
}

impl NotifyError {
    /// Whether no other message can go now either (the credentials are wrong, or Slack or JIRA
    /// is down): a scan stops instead of trying each of its messages against it.
    pub fn stops_all_sending(&self) -> bool {
        matches!(self.class(), ErrorClass::Pause { .. })
    }
}

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("invalid setting: {0}")]
    Config(String),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Jira(#[from] jira::JiraError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot serve HTTP: {0}")]
    Listen(#[from] std::io::Error),
}
