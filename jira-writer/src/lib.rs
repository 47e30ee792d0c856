//! Reconciles desired ticket states with JIRA Cloud: exactly one ticket per group key.
//!
//! * [`client`]: the JIRA Cloud REST v3 client (also used by the notifier's reminder scan).

pub mod client;

pub use client::{JiraClient, JiraClientConfig, JiraError};
