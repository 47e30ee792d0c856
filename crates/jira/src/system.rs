//! What the jira-writer's reconcile asks of a ticket system, as one trait.
//!
//! The reconcile (claims, adoption, edits, workflow walks, links, the duplicate sweep, the
//! ledger rebuild) is written once against [`TicketSystem`]; [`JiraClient`] is its Jira Cloud
//! implementation (REST v3). A second flavour (Jira Data Center's REST v2) implements the same
//! operations: bodies arrive as the Cloud shapes (`IssueUpdateDetails`, ADF documents), which an
//! implementation renders in its own dialect, and answers come back as the same [`Issue`] and
//! [`Transition`] values.
//!
//! Every operation returns [`JiraError`], already classed as retry, pause or dead letter, so the
//! reconcile's error handling does not depend on the flavour.

use std::future::Future;

use serde_json::Value;

use crate::{CreatedIssue, Issue, JiraClient, JiraError, SearchPage, SearchRequest, Transition};

/// The operations of a ticket system the reconcile uses. Implementations are cheap to share
/// (`&self` everywhere) and their futures are `Send`, so one writer serves many workers.
pub trait TicketSystem: Send + Sync + 'static {
    /// The address a person opens the ticket at.
    fn browse_url(&self, key: &str) -> String;

    /// One page of a JQL search, with the fields and properties asked for.
    fn search(&self, request: &SearchRequest) -> impl Future<Output = Result<SearchPage, JiraError>> + Send;

    /// Every page of a search, up to `max_pages`.
    fn search_all(
        &self,
        request: &SearchRequest,
        max_pages: usize,
    ) -> impl Future<Output = Result<Vec<Issue>, JiraError>> + Send;

    /// Creates an issue from an `IssueUpdateDetails` body (`fields`, `update`, `properties`).
    fn create_issue(&self, body: &Value) -> impl Future<Output = Result<CreatedIssue, JiraError>> + Send;

    /// One issue with the given fields and properties.
    fn get_issue(
        &self,
        key: &str,
        fields: &[&str],
        properties: &[&str],
    ) -> impl Future<Output = Result<Issue, JiraError>> + Send;

    /// Edits an issue; with `return_issue` the edited issue comes back.
    fn edit_issue(
        &self,
        key: &str,
        body: &Value,
        return_issue: bool,
    ) -> impl Future<Output = Result<Option<Issue>, JiraError>> + Send;

    /// Moves an issue to another project; the issue as it is afterwards (with its new key).
    fn move_issue(
        &self,
        key: &str,
        project: &str,
        issue_type_id: &str,
    ) -> impl Future<Output = Result<Issue, JiraError>> + Send;

    /// Adds a comment (an ADF document); the comment's id.
    fn add_comment(&self, key: &str, body: &Value) -> impl Future<Output = Result<String, JiraError>> + Send;
    /// The plain text of the issue's latest comments, newest first.
    fn recent_comment_texts(&self, key: &str) -> impl Future<Output = Result<Vec<String>, JiraError>> + Send;

    /// The issue's status name and the transitions offered from it, in the workflow's order.
    fn status_and_transitions(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<(String, Vec<Transition>), JiraError>> + Send;

    /// Takes one transition, with an optional comment (an ADF document).
    fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        comment: Option<&Value>,
    ) -> impl Future<Output = Result<(), JiraError>> + Send;

    /// Links two issues: "`source_key` <outward phrase of `link_type`> `destination_key`".
    fn link_issues(
        &self,
        link_type: &str,
        source_key: &str,
        destination_key: &str,
    ) -> impl Future<Output = Result<(), JiraError>> + Send;

    /// Creates or updates the remote link with this global id.
    fn upsert_remote_link(
        &self,
        key: &str,
        global_id: &str,
        title: &str,
        url: &str,
    ) -> impl Future<Output = Result<(), JiraError>> + Send;

    /// The account the credentials belong to (whether they work at all).
    fn myself(&self) -> impl Future<Output = Result<Value, JiraError>> + Send;
}

/// Jira Cloud (REST v3): each operation is the client's call of the same name.
impl TicketSystem for JiraClient {
    fn browse_url(&self, key: &str) -> String {
        JiraClient::browse_url(self, key)
    }

    fn search(&self, request: &SearchRequest) -> impl Future<Output = Result<SearchPage, JiraError>> + Send {
        JiraClient::search(self, request)
    }

    fn search_all(
        &self,
        request: &SearchRequest,
        max_pages: usize,
    ) -> impl Future<Output = Result<Vec<Issue>, JiraError>> + Send {
        JiraClient::search_all(self, request, max_pages)
    }

    fn create_issue(&self, body: &Value) -> impl Future<Output = Result<CreatedIssue, JiraError>> + Send {
        JiraClient::create_issue(self, body)
    }

    fn get_issue(
        &self,
        key: &str,
        fields: &[&str],
        properties: &[&str],
    ) -> impl Future<Output = Result<Issue, JiraError>> + Send {
        JiraClient::get_issue(self, key, fields, properties)
    }

    fn edit_issue(
        &self,
        key: &str,
        body: &Value,
        return_issue: bool,
    ) -> impl Future<Output = Result<Option<Issue>, JiraError>> + Send {
        JiraClient::edit_issue(self, key, body, return_issue)
    }

    fn move_issue(
        &self,
        key: &str,
        project: &str,
        issue_type_id: &str,
    ) -> impl Future<Output = Result<Issue, JiraError>> + Send {
        JiraClient::move_issue(self, key, project, issue_type_id)
    }

    fn add_comment(&self, key: &str, body: &Value) -> impl Future<Output = Result<String, JiraError>> + Send {
        JiraClient::add_comment(self, key, body)
    }

    fn recent_comment_texts(&self, key: &str) -> impl Future<Output = Result<Vec<String>, JiraError>> + Send {
        JiraClient::recent_comment_texts(self, key)
    }

    fn status_and_transitions(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<(String, Vec<Transition>), JiraError>> + Send {
        JiraClient::status_and_transitions(self, key)
    }

    fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        comment: Option<&Value>,
    ) -> impl Future<Output = Result<(), JiraError>> + Send {
        JiraClient::do_transition(self, key, transition_id, comment)
    }

    fn link_issues(
        &self,
        link_type: &str,
        source_key: &str,
        destination_key: &str,
    ) -> impl Future<Output = Result<(), JiraError>> + Send {
        JiraClient::link_issues(self, link_type, source_key, destination_key)
    }

    fn upsert_remote_link(
        &self,
        key: &str,
        global_id: &str,
        title: &str,
        url: &str,
    ) -> impl Future<Output = Result<(), JiraError>> + Send {
        JiraClient::upsert_remote_link(self, key, global_id, title, url)
    }

    fn myself(&self) -> impl Future<Output = Result<Value, JiraError>> + Send {
        JiraClient::myself(self)
    }
}
