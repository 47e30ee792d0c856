//! Status sync, as the seed team's JIRA Automation did it: when a person links a task to a
//! ticket with one of the configured link types, the ticket moves to its workflow's linked status
//! (default Assigned), walking transitions like every other move, never out of a person's
//! decision or a done status.
//!
//! Two triggers feed [`Writer::sync_link`]: JIRA's `issuelink_created` admin webhook (its body
//! signed with the webhook's secret as `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`,
//! <https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks>,
//! checked by [`service_kit::hub_signature_is_valid`]) and, when no secret is set,
//! a periodic search of our open tickets' `issuelinks` ([`Writer::scan_links`]). Each link is
//! acted on once: its id goes into the ledger record, so a redelivered webhook, the next search or
//! a person moving the ticket back later changes nothing.

use serde_json::Value;

use super::{Reached, Writer, WriterError, is_key_label};
use crate::client::TicketSystem;
use crate::client::{Issue, SearchRequest};
use crate::mapping;
use crate::workflow;

/// A link between two issues, as the webhook or `issuelinks` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub link_id: String,
    /// The link type's name, inward and outward phrases.
    pub type_names: [String; 3],
}

/// What the status sync did with one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The ticket moved to the linked status.
    Moved { ticket: String, status: String },
    /// Acted on before, or the ticket already there, held by a person or done.
    Unchanged,
    /// Not a configured link type, or not a task linked to one of our tickets.
    Ignored,
}

/// The `issueLink` of an `issuelink_created` webhook body: `(link, source id, destination id)`;
/// `None` for any other event. Ids are numbers in JIRA's body; strings are accepted too.
pub fn parse_webhook(body: &Value) -> Option<(LinkEvent, String, String)> {
    if body.get("webhookEvent").and_then(Value::as_str) != Some("issuelink_created") {
        return None;
    }
    let link = body.get("issueLink")?;
    let id = |name: &str| -> Option<String> {
        match link.get(name)? {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => Some(s.clone()),
            _ => None,
        }
    };
    let kind = link.get("issueLinkType")?;
    let text = |name: &str| kind.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let event =
        LinkEvent { link_id: id("id")?, type_names: [text("name"), text("inwardName"), text("outwardName")] };
    Some((event, id("sourceIssueId")?, id("destinationIssueId")?))
}

const TICKET_FIELDS: [&str; 4] = ["labels", "status", "project", "issuelinks"];

impl<S: TicketSystem> Writer<S> {
    fn link_type_wanted(&self, event: &LinkEvent) -> bool {
        self.settings.link_types.iter().any(|wanted| {
            event
                .type_names
                .iter()
                .any(|name| !name.is_empty() && name.trim().eq_ignore_ascii_case(wanted.trim()))
        })
    }

    /// Whether `issue` is one of our tickets: it carries our base label and a key label.
    fn ours(&self, issue: &Issue) -> Option<String> {
        let base = self.settings.mapping.labels.first()?;
        let labels = issue.labels();
        if !labels.contains(base) {
            return None;
        }
        labels.into_iter().find(|l| is_key_label(l))
    }

    /// A webhook's link: reads both issues (2 calls), then syncs the one that is our ticket.
    pub async fn sync_webhook_link(
        &self,
        event: &LinkEvent,
        source_id: &str,
        destination_id: &str,
    ) -> Result<LinkOutcome, WriterError> {
        if !self.link_type_wanted(event) {
            return Ok(LinkOutcome::Ignored);
        }
        let source = self.client.get_issue(source_id, &TICKET_FIELDS, &[]).await?;
        let destination = self.client.get_issue(destination_id, &TICKET_FIELDS, &[]).await?;
        let (ticket, task) = match (self.ours(&source), self.ours(&destination)) {
            (Some(_), None) => (source, destination),
            (None, Some(_)) => (destination, source),
            // Two of our tickets (a superseded one, a duplicate) or none: not a person's task.
            _ => return Ok(LinkOutcome::Ignored),
        };
        self.sync_link(&ticket, event, &task.key).await
    }

    /// One pass of the fallback search: our open tickets with their `issuelinks`; each link of a
    /// configured type to an issue that is not one of ours is synced.
    pub async fn scan_links(&self) -> Result<Vec<LinkOutcome>, WriterError> {
        let Some(base) = self.settings.mapping.labels.first() else { return Ok(Vec::new()) };
        let request = SearchRequest {
            // Only our own, cleaned label goes into the query (no text from JIRA or a person).
            jql: format!(
                "labels = \"{}\" AND statusCategory != Done ORDER BY created ASC",
                mapping::clean_label(base)
            ),
            max_results: Some(100),
            fields: TICKET_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            ..SearchRequest::default()
        };
        let tickets = self.client.search_all(&request, 50).await?;
        let ours: std::collections::HashSet<String> = tickets.iter().map(|t| t.key.clone()).collect();
        let mut outcomes = Vec::new();
        for ticket in &tickets {
            for (event, other_key) in issue_links(ticket) {
                if ours.contains(&other_key) || !self.link_type_wanted(&event) {
                    continue;
                }
                outcomes.push(self.sync_link(ticket, &event, &other_key).await?);
            }
        }
        Ok(outcomes)
    }

    /// Moves `ticket` to its workflow's linked status for the link `event` to `task_key`, once.
    async fn sync_link(
        &self,
        ticket: &Issue,
        event: &LinkEvent,
        task_key: &str,
    ) -> Result<LinkOutcome, WriterError> {
        let Some(token) = self.ours(ticket) else { return Ok(LinkOutcome::Ignored) };
        let Some(record) = self.ledger.get(&token).await? else { return Ok(LinkOutcome::Ignored) };
        if record.value.issue.as_ref().is_none_or(|i| i.id != ticket.id) {
            // Not the ticket the ledger has for this key (a closed duplicate or superseded one).
            return Ok(LinkOutcome::Ignored);
        }
        if record.value.superseded.iter().any(|s| s.key == task_key) {
            return Ok(LinkOutcome::Ignored);
        }
        if record.value.synced_links.contains(&event.link_id) {
            return Ok(LinkOutcome::Unchanged);
        }
        if self.settings.dry_run {
            tracing::info!(issue_key = %ticket.key, task = %task_key, "Dry run: would move the ticket for its linked task.");
            return Ok(LinkOutcome::Unchanged);
        }
        let project = ticket.project_key().unwrap_or(&self.settings.mapping.default_project).to_owned();
        let workflow = self.settings.workflows.of(&project);
        let target = workflow.linked.clone().unwrap_or_else(|| self.settings.linked_status.clone());
        let status = ticket.status_name().unwrap_or_default().to_owned();
        let done = ticket.is_done() || workflow::same_status(&status, &workflow.resolve);
        let mut outcome = LinkOutcome::Unchanged;
        if !done && !workflow.is_decision(&status) {
            let comment = format!(
                "infra-tickets moved this ticket to {target}: {task_key} was linked to it ({}).",
                event.type_names[0]
            );
            if self.reach(&ticket.key, &project, &target, &comment).await? == Reached::Moved {
                metrics::counter!("itk_jira_linked_moves_total").increment(1);
                tracing::info!(issue_key = %ticket.key, task = %task_key, status = %target, "Moved a ticket for its linked task.");
                outcome = LinkOutcome::Moved { ticket: ticket.key.clone(), status: target };
            }
        }
        self.record_synced_link(&token, &event.link_id).await?;
        Ok(outcome)
    }

    /// Adds `link_id` to the record's synced links (compare-and-set, read again on a conflict).
    async fn record_synced_link(&self, token: &str, link_id: &str) -> Result<(), WriterError> {
        for _ in 0..5 {
            let Some(mut record) = self.ledger.get(token).await? else { return Ok(()) };
            if !record.value.synced_links.insert(link_id.to_owned()) {
                return Ok(());
            }
            match self.ledger.update(token, &record.value, record.revision).await {
                Ok(_) => return Ok(()),
                Err(bus::CasError::Conflict) => continue,
                Err(bus::CasError::Bus(e)) => return Err(e.into()),
            }
        }
        Err(WriterError::Busy { key: token.to_owned() })
    }
}

/// The links of an issue's `issuelinks` field: the link and the other issue's key.
fn issue_links(issue: &Issue) -> Vec<(LinkEvent, String)> {
    let Some(links) = issue.field("issuelinks").and_then(Value::as_array) else { return Vec::new() };
    links
        .iter()
        .filter_map(|link| {
            let other = link.get("outwardIssue").or_else(|| link.get("inwardIssue"))?;
            let kind = link.get("type")?;
            let text = |name: &str| kind.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            let event = LinkEvent {
                link_id: link.get("id")?.as_str()?.to_owned(),
                type_names: [text("name"), text("inward"), text("outward")],
            };
            Some((event, other.get("key")?.as_str()?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_signature_is_jiras_hmac_of_the_body() {
        use hmac::Mac as _;
        let body = br#"{"webhookEvent":"issuelink_created"}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let secret = service_kit::Secret::new("s3cret");
        assert!(service_kit::hub_signature_is_valid(&secret, body, Some(&header)));
        assert!(!service_kit::hub_signature_is_valid(
            &service_kit::Secret::new("other"),
            body,
            Some(&header)
        ));
        assert!(!service_kit::hub_signature_is_valid(&secret, b"{}", Some(&header)));
        assert!(!service_kit::hub_signature_is_valid(&secret, body, None));
        assert!(!service_kit::hub_signature_is_valid(&secret, body, Some("sha1=00")));
    }

    #[test]
    fn the_webhook_body_names_the_link_and_both_issues() {
        let body = json!({"timestamp": 1, "webhookEvent": "issuelink_created", "issueLink": {
            "id": 10001, "sourceIssueId": 10000, "destinationIssueId": 10002,
            "issueLinkType": {"id": 10000, "name": "Blocks", "inwardName": "is blocked by", "outwardName": "blocks"}}});
        let (event, source, destination) = parse_webhook(&body).unwrap();
        assert_eq!(event.link_id, "10001");
        assert_eq!(event.type_names, ["Blocks", "is blocked by", "blocks"].map(String::from));
        assert_eq!((source.as_str(), destination.as_str()), ("10000", "10002"));
        assert!(parse_webhook(&json!({"webhookEvent": "issuelink_deleted", "issueLink": {}})).is_none());
        let injected = json!({"webhookEvent": "issuelink_created", "issueLink": {
            "id": 1, "sourceIssueId": "1 OR x", "destinationIssueId": 2, "issueLinkType": {}}});
        assert!(parse_webhook(&injected).is_none(), "ids are digits only");
    }
}
