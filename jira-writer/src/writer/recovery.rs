//! The ledger rebuilt from JIRA when it was lost.
//!
//! The ledger bucket is the writer's only memory of which issue belongs to which group key: a
//! fresh claim creates without searching (two JIRA calls per ticket). If the bucket is deleted,
//! or the whole NATS store is lost and recreated, every next desired state would file a second
//! ticket. So the bucket carries a marker, written once the ledger is known to be complete; a
//! writer that starts and finds no marker first reads back every ticket carrying the base label,
//! and records each group key's issue from its key label and its `infra-tickets` property
//! (group key, content hash, version, team, source state), before it takes any message. On a new
//! site that is one empty search.
//!
//! A recovered record remembers no field values "last written" beyond what JIRA shows, and no
//! remote links: an unchanged desired state (same content hash) then costs no JIRA call, and a
//! changed one is applied as one edit, without removing labels people added.

use std::collections::BTreeMap;
use std::time::Duration;

use bus::topology::JIRA_LEDGER;
use bus::{CasError, JsonKv};
use chrono::{DateTime, Utc};
use contracts::{GroupKey, TicketState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{SEARCH_FIELDS, Writer, WriterError, is_key_label, oldest_first};
use crate::client::TicketSystem;
use crate::client::{Issue, SearchRequest};
use crate::ledger::{IssueRef, LedgerEntry};
use crate::mapping::{self, FieldValues, PROPERTY_KEY};

/// The ledger key of the marker: outside the group keys' `itk-…` tokens.
pub const LEDGER_MARKER_KEY: &str = "_ledger_complete";

/// Pages of a rebuild search at most (100 issues each).
const REBUILD_MAX_PAGES: usize = 10_000;

/// Written into the ledger once it is known to hold every ticket's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerMarker {
    pub since: DateTime<Utc>,
    pub by: String,
    /// Records recovered from JIRA when the marker was written (0 on a new site).
    pub recovered: usize,
}

/// What a rebuild found and recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Tickets carrying the base label.
    pub scanned: usize,
    /// Group keys recorded from JIRA.
    pub recovered: usize,
    /// Group keys that already had a record (left as they were).
    pub present: usize,
    /// Tickets whose key label or property could not be read (not recorded; their next desired
    /// state is matched by label like a create whose answer was lost).
    pub unreadable: usize,
}

impl<S: TicketSystem> Writer<S> {
    fn ledger_marker(&self) -> JsonKv<LedgerMarker> {
        JsonKv::new(self.ledger.store().clone(), JIRA_LEDGER)
    }

    /// Whether the ledger's completeness marker is there (one key read; no JIRA call).
    pub async fn ledger_is_complete(&self) -> Result<bool, WriterError> {
        Ok(self.ledger_marker().get(LEDGER_MARKER_KEY).await?.is_some())
    }

    /// Before the writer takes messages: when the ledger has no marker, rebuilds it from JIRA and
    /// writes the marker. While JIRA or NATS cannot be reached, keeps trying until `shutdown`
    /// (`Ok(None)`), so a lost ledger never lets a message through unprotected.
    pub async fn recover_lost_ledger(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<RecoveryReport>, WriterError> {
        if self.settings.dry_run {
            return Ok(None);
        }
        let mut pause = Duration::from_millis(200);
        loop {
            let attempt = async {
                if self.ledger_is_complete().await? {
                    return Ok(None);
                }
                self.rebuild_and_mark_complete().await.map(Some)
            };
            match attempt.await {
                Ok(report) => return Ok(report),
                Err(error) if matches!(bus::Classify::class(&error), bus::ErrorClass::DeadLetter) => {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(error = %error, retry_in_ms = pause.as_millis() as u64, "The ledger has no completeness marker and cannot be rebuilt from JIRA yet; trying again.");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    /// [`Writer::rebuild_ledger`], then the completeness marker.
    pub async fn rebuild_and_mark_complete(&self) -> Result<RecoveryReport, WriterError> {
        let report = self.rebuild_ledger().await?;
        let marker = LedgerMarker {
            since: self.clock.now(),
            by: self.settings.instance.clone(),
            recovered: report.recovered,
        };
        self.ledger_marker().put(LEDGER_MARKER_KEY, &marker).await?;
        Ok(report)
    }

    /// Records, for every group key whose ticket carries the base label and that has no ledger
    /// record, the issue JIRA holds for it. Existing records are left alone.
    pub async fn rebuild_ledger(&self) -> Result<RecoveryReport, WriterError> {
        let Some(base) = self.settings.mapping.labels.first() else {
            tracing::warn!(
                "No base label (--jira-labels) to find our tickets by; the ledger cannot be rebuilt from JIRA."
            );
            return Ok(RecoveryReport::default());
        };
        let mut fields: Vec<String> = SEARCH_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        if let Some(team_field) = &self.settings.mapping.team_field {
            fields.push(team_field.clone());
        }
        let request = SearchRequest {
            jql: format!("labels = \"{}\" ORDER BY created ASC", mapping::clean_label(base)),
            max_results: Some(100),
            fields,
            properties: vec![PROPERTY_KEY.to_owned()],
            ..SearchRequest::default()
        };
        let issues = self.client.search_all(&request, REBUILD_MAX_PAGES).await?;
        let (recovered, unreadable) =
            recovered_entries(issues.clone(), self.settings.mapping.team_field.as_deref(), self.clock.now());
        let mut report = RecoveryReport { scanned: issues.len(), unreadable, ..RecoveryReport::default() };
        for (token, entry) in recovered {
            match self.ledger.create(&token, &entry).await {
                Ok(_) => report.recovered += 1,
                Err(CasError::Conflict) => report.present += 1,
                Err(CasError::Bus(e)) => return Err(e.into()),
            }
        }
        metrics::counter!("itk_jira_ledger_recovered_total").increment(report.recovered as u64);
        if report.recovered > 0 || report.unreadable > 0 {
            tracing::warn!(
                scanned = report.scanned,
                recovered = report.recovered,
                present = report.present,
                unreadable = report.unreadable,
                "The ledger had no completeness marker: records rebuilt from JIRA."
            );
        } else {
            tracing::info!(
                scanned = report.scanned,
                present = report.present,
                "Ledger complete (nothing to recover from JIRA)."
            );
        }
        Ok(report)
    }
}

/// The ledger records that JIRA's tickets stand for, per key token, and how many tickets could
/// not be read. Pure: the rebuild's decisions, tested without a network.
///
/// Of a key's tickets, the one recorded is the oldest still open (the one the duplicate sweep
/// keeps), or, when all are done, the newest (a ticket that replaced one a person closed); done
/// tickets older than it are recorded as superseded.
pub fn recovered_entries(
    issues: Vec<Issue>,
    team_field: Option<&str>,
    now: DateTime<Utc>,
) -> (Vec<(String, LedgerEntry)>, usize) {
    let mut unreadable = 0;
    let mut groups: BTreeMap<String, Vec<Issue>> = BTreeMap::new();
    for issue in issues {
        match issue.labels().into_iter().find(|l| is_key_label(l)) {
            Some(token) => groups.entry(token).or_default().push(issue),
            None => unreadable += 1,
        }
    }
    let mut entries = Vec::new();
    for (token, mut group) in groups {
        oldest_first(&mut group);
        let current = group.iter().position(|i| !i.is_done()).unwrap_or(group.len() - 1);
        let issue = &group[current];
        let Some(property) = issue.property(PROPERTY_KEY).and_then(|p| TicketProperty::read(p, &token))
        else {
            unreadable += group.len();
            continue;
        };
        let superseded = group[..current]
            .iter()
            .filter(|i| i.is_done())
            .map(|i| IssueRef { id: i.id.clone(), key: i.key.clone() })
            .collect();
        let source_state =
            property.state.unwrap_or(if issue.is_done() { TicketState::Resolved } else { TicketState::Open });
        let mut entry = LedgerEntry::claimed(property.group_key, "", now);
        entry.claim = None;
        entry.issue = Some(IssueRef { id: issue.id.clone(), key: issue.key.clone() });
        entry.team = property.team.unwrap_or_default();
        entry.source_state = source_state;
        entry.applied_version = property.upstream_version;
        entry.content_hash = property.content_hash;
        entry.written = Some(shown_values(issue, team_field));
        entry.superseded = superseded;
        entries.push((token, entry));
    }
    (entries, unreadable)
}

/// The `infra-tickets` property as the rebuild reads it.
struct TicketProperty {
    group_key: GroupKey,
    content_hash: String,
    upstream_version: u64,
    team: Option<String>,
    state: Option<TicketState>,
}

impl TicketProperty {
    /// `None` when the property lacks the group key, or names another key than the label.
    fn read(value: &Value, token: &str) -> Option<TicketProperty> {
        let group_key = GroupKey::from_raw(value.get("groupKey")?.as_str()?);
        if group_key.token() != token {
            return None;
        }
        Some(TicketProperty {
            group_key,
            content_hash: value.get("contentHash").and_then(Value::as_str).unwrap_or_default().to_owned(),
            upstream_version: value.get("upstreamVersion").and_then(Value::as_u64).unwrap_or(0),
            team: value.get("team").and_then(Value::as_str).map(str::to_owned),
            state: value.get("state").and_then(|s| serde_json::from_value(s.clone()).ok()),
        })
    }
}

/// What JIRA shows of the fields infra-tickets writes, as the baseline of "last written". No
/// labels: a later edit then only adds ours, never removes one a person added.
fn shown_values(issue: &Issue, team_field: Option<&str>) -> FieldValues {
    FieldValues {
        project: issue.project_key().unwrap_or_default().to_owned(),
        issue_type: issue
            .field("issuetype")
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        summary: issue.summary().unwrap_or_default().to_owned(),
        description_hash: String::new(),
        due_date: issue.due_date(),
        priority: issue.priority_name().map(str::to_owned),
        labels: Default::default(),
        components: issue.component_names(),
        team_value: team_field.and_then(|f| issue.option_value(f)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ticket(id: u32, token_of: &GroupKey, done: bool, created: &str, property: Option<Value>) -> Issue {
        let mut issue = Issue { id: id.to_string(), key: format!("PLAT-{id}"), ..Issue::default() };
        issue.fields.insert("labels".into(), json!(["infra-tickets", token_of.token(), "person-added"]));
        issue.fields.insert("created".into(), json!(created));
        issue.fields.insert("project".into(), json!({"key": "PLAT"}));
        issue.fields.insert("summary".into(), json!("Patch acme/app"));
        issue.fields.insert("duedate".into(), json!("2027-01-15"));
        let category = if done { "done" } else { "indeterminate" };
        issue.fields.insert("status".into(), json!({"name": "X", "statusCategory": {"key": category}}));
        if let Some(property) = property {
            issue.properties.insert(PROPERTY_KEY.into(), property);
        }
        issue
    }

    fn property(key: &GroupKey, extra: Value) -> Value {
        let mut p = json!({"groupKey": key.as_str(), "contentHash": "h1", "upstreamVersion": 7});
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        p
    }

    fn now() -> DateTime<Utc> {
        "2026-12-02T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_ticket_is_recorded_from_its_label_and_property() {
        let key = GroupKey::from_raw("snyk:ecr:acme/app");
        let issue = ticket(
            1,
            &key,
            false,
            "2026-11-01T09:00:00.000+0000",
            Some(property(&key, json!({"team": "platform", "state": "open"}))),
        );
        let (entries, unreadable) = recovered_entries(vec![issue], None, now());
        assert_eq!(unreadable, 0);
        let (token, entry) = &entries[0];
        assert_eq!(token, &key.token());
        assert_eq!(entry.group_key, key);
        assert_eq!(entry.issue.as_ref().unwrap().key, "PLAT-1");
        assert_eq!(
            (entry.team.as_str(), entry.applied_version, entry.content_hash.as_str()),
            ("platform", 7, "h1")
        );
        assert_eq!(entry.source_state, TicketState::Open);
        assert!(entry.claim.is_none());
        let written = entry.written.as_ref().unwrap();
        assert_eq!(written.due_date, "2027-01-15".parse().ok());
        assert!(written.labels.is_empty(), "no label is taken as ours, so none a person added is removed");
    }

    #[test]
    fn the_open_ticket_is_kept_and_older_closed_ones_are_superseded() {
        let key = GroupKey::from_raw("snyk:ecr:acme/app");
        let p = || Some(property(&key, json!({})));
        let issues = vec![
            ticket(3, &key, false, "2026-11-03T09:00:00.000+0000", p()),
            ticket(1, &key, true, "2026-11-01T09:00:00.000+0000", p()),
            ticket(4, &key, false, "2026-11-04T09:00:00.000+0000", p()),
        ];
        let (entries, _) = recovered_entries(issues, None, now());
        let entry = &entries[0].1;
        assert_eq!(entry.issue.as_ref().unwrap().key, "PLAT-3", "the oldest open one, as the sweep keeps");
        assert_eq!(entry.superseded.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["PLAT-1"]);
    }

    #[test]
    fn when_every_ticket_is_done_the_newest_is_recorded_and_its_state_read_from_jira() {
        let key = GroupKey::from_raw("aws-health:123:EC2_RETIREMENT");
        let p = || Some(property(&key, json!({})));
        let issues = vec![
            ticket(1, &key, true, "2026-11-01T09:00:00.000+0000", p()),
            ticket(2, &key, true, "2026-11-20T09:00:00.000+0000", p()),
        ];
        let (entries, _) = recovered_entries(issues, None, now());
        let entry = &entries[0].1;
        assert_eq!(entry.issue.as_ref().unwrap().key, "PLAT-2");
        assert_eq!(
            entry.source_state,
            TicketState::Resolved,
            "no state in an older property: read from the status"
        );
        assert_eq!(entry.superseded.len(), 1);
    }

    #[test]
    fn tickets_without_a_key_label_or_a_matching_property_are_counted_not_recorded() {
        let key = GroupKey::from_raw("snyk:ecr:acme/app");
        let other = GroupKey::from_raw("snyk:ecr:acme/other");
        let mut no_label = ticket(1, &key, false, "2026-11-01T09:00:00.000+0000", None);
        no_label.fields.insert("labels".into(), json!(["infra-tickets"]));
        let no_property = ticket(2, &key, false, "2026-11-01T09:00:00.000+0000", None);
        let wrong_key =
            ticket(3, &other, false, "2026-11-01T09:00:00.000+0000", Some(property(&key, json!({}))));
        let (entries, unreadable) = recovered_entries(vec![no_label, no_property, wrong_key], None, now());
        assert!(entries.is_empty());
        assert_eq!(unreadable, 3);
    }
}
