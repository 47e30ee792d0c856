//! Read-only calls for `infra-tickets doctor`: what a site's configuration allows before the
//! writer relies on it. Each call is a read (the workflow query is a `POST` that reads).
//!
//! | call | endpoint (JIRA Cloud platform REST v3) |
//! |---|---|
//! | permissions of the caller in a project | `GET /rest/api/3/mypermissions?projectKey=&permissions=` |
//! | the site's priorities | `GET /rest/api/3/priority/search` |
//! | a project's issue types on the create screen | `GET /rest/api/3/issue/createmeta/{project}/issuetypes` |
//! | the fields of that create screen | `GET /rest/api/3/issue/createmeta/{project}/issuetypes/{issueTypeId}` |
//! | the workflow of a project and issue type | `POST /rest/api/3/workflows` (bulk get, `projectAndIssueTypes`) |
//!
//! From <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-permissions/#api-rest-api-3-mypermissions-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-priorities/#api-rest-api-3-priority-search-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-createmeta-projectidorkey-issuetypes-get>
//! and <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-workflows/#api-rest-api-3-workflows-post>.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{JiraClient, JiraError, Repeat, decode, segment};

/// One issue type of a project's create screen.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreateIssueType {
    pub id: String,
    pub name: String,
}

/// One field of a create screen.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateField {
    pub field_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub has_default_value: bool,
}

/// A workflow as statuses (by name) and transitions between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowGraph {
    pub name: String,
    pub statuses: Vec<String>,
    /// The status a new issue starts in (the workflow's initial transition), if listed.
    pub initial: Option<String>,
    pub transitions: Vec<WorkflowTransition>,
}

/// A transition: from these statuses (empty: from any, a global transition) to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowTransition {
    pub id: String,
    pub name: String,
    pub from: Vec<String>,
    pub to: String,
}

impl WorkflowGraph {
    /// The transitions JIRA offers an issue in `status`, in the workflow's order, as
    /// `GET …/transitions` lists them.
    pub fn offered(&self, status: &str) -> Vec<crate::Transition> {
        self.transitions
            .iter()
            .filter(|t| {
                if t.from.is_empty() {
                    !t.to.eq_ignore_ascii_case(status)
                } else {
                    t.from.iter().any(|f| f.eq_ignore_ascii_case(status))
                }
            })
            .map(|t| crate::Transition {
                id: t.id.clone(),
                name: t.name.clone(),
                to: Some(crate::TransitionTarget { name: t.to.clone(), status_category: None }),
            })
            .collect()
    }

    /// Reads `POST /rest/api/3/workflows`' answer (links format): statuses are referenced by
    /// `statusReference` and named in the top-level `statuses`.
    pub fn from_read_response(answer: &Value) -> Option<WorkflowGraph> {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        let names: BTreeMap<String, String> = answer
            .get("statuses")
            .and_then(Value::as_array)?
            .iter()
            .map(|s| (text(s, "statusReference"), text(s, "name")))
            .collect();
        let workflow = answer.get("workflows")?.as_array()?.first()?;
        let name_of = |reference: &str| names.get(reference).cloned().unwrap_or_else(|| reference.to_owned());
        let statuses = workflow
            .get("statuses")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(|s| name_of(&text(s, "statusReference"))).collect())
            .unwrap_or_else(|| names.values().cloned().collect());
        let mut graph =
            WorkflowGraph { name: text(workflow, "name"), statuses, initial: None, transitions: Vec::new() };
        for transition in workflow.get("transitions").and_then(Value::as_array).into_iter().flatten() {
            let to = name_of(&text(transition, "toStatusReference"));
            let kind = text(transition, "type");
            if kind == "INITIAL" {
                graph.initial = Some(to);
                continue;
            }
            let from = if kind == "GLOBAL" {
                Vec::new()
            } else {
                transition
                    .get("links")
                    .and_then(Value::as_array)
                    .map(|links| links.iter().map(|l| name_of(&text(l, "fromStatusReference"))).collect())
                    .unwrap_or_default()
            };
            graph.transitions.push(WorkflowTransition {
                id: text(transition, "id"),
                name: text(transition, "name"),
                from,
                to,
            });
        }
        Some(graph)
    }
}

impl JiraClient {
    /// `GET /rest/api/3/mypermissions`: whether the caller holds each of `permissions` (keys such
    /// as `CREATE_ISSUES`) in `project`.
    pub async fn my_permissions(
        &self,
        project: &str,
        permissions: &[&str],
    ) -> Result<BTreeMap<String, bool>, JiraError> {
        let params = [("projectKey", project.to_owned()), ("permissions", permissions.join(","))];
        let answer = self
            .call(Method::GET, "rest/api/3/mypermissions", &params, None, "get my permissions", Repeat::Safe)
            .await?;
        let mut out = BTreeMap::new();
        if let Some(map) = answer.get("permissions").and_then(Value::as_object) {
            for (key, permission) in map {
                out.insert(
                    key.clone(),
                    permission.get("havePermission").and_then(Value::as_bool).unwrap_or(false),
                );
            }
        }
        Ok(out)
    }

    /// `GET /rest/api/3/priority/search`: every priority's name, all pages.
    pub async fn priority_names(&self) -> Result<Vec<String>, JiraError> {
        let mut names = Vec::new();
        let mut start = 0u64;
        // Bounded: 20 pages of 50.
        for _ in 0..20 {
            let params = [("startAt", start.to_string()), ("maxResults", "50".to_owned())];
            let page = self
                .call(
                    Method::GET,
                    "rest/api/3/priority/search",
                    &params,
                    None,
                    "search priorities",
                    Repeat::Safe,
                )
                .await?;
            let values = page.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
            names.extend(values.iter().filter_map(|p| p.get("name")?.as_str().map(str::to_owned)));
            start += values.len() as u64;
            if values.is_empty() || page.get("isLast").and_then(Value::as_bool).unwrap_or(true) {
                break;
            }
        }
        Ok(names)
    }

    /// `GET /rest/api/3/issue/createmeta/{project}/issuetypes`: the issue types the caller may
    /// create in `project` (a 404 when the project does not exist or is not visible).
    pub async fn create_issue_types(&self, project: &str) -> Result<Vec<CreateIssueType>, JiraError> {
        let path = format!("rest/api/3/issue/createmeta/{}/issuetypes", segment(project));
        let params = [("maxResults", "200".to_owned())];
        let page =
            self.call(Method::GET, &path, &params, None, "get create issue types", Repeat::Safe).await?;
        decode(page.get("issueTypes").cloned().unwrap_or(json!([])), "get create issue types")
    }

    /// `GET /rest/api/3/issue/createmeta/{project}/issuetypes/{issueTypeId}`: the fields of the
    /// create screen, with whether each is required.
    pub async fn create_fields(
        &self,
        project: &str,
        issue_type_id: &str,
    ) -> Result<Vec<CreateField>, JiraError> {
        let path =
            format!("rest/api/3/issue/createmeta/{}/issuetypes/{}", segment(project), segment(issue_type_id));
        let params = [("maxResults", "200".to_owned())];
        let page = self.call(Method::GET, &path, &params, None, "get create fields", Repeat::Safe).await?;
        let list = page.get("fields").or_else(|| page.get("results")).cloned().unwrap_or(json!([]));
        decode(list, "get create fields")
    }

    /// `POST /rest/api/3/workflows` for one project and issue type: the workflow JIRA uses
    /// there (needs the Administer projects permission in it, or Administer Jira).
    pub async fn workflow_of(
        &self,
        project_id: &str,
        issue_type_id: &str,
    ) -> Result<Option<WorkflowGraph>, JiraError> {
        let body = json!({
            "projectAndIssueTypes": [{"projectId": project_id, "issueTypeId": issue_type_id}],
            "useTransitionLinksFormat": true,
        });
        let answer = self
            .call(Method::POST, "rest/api/3/workflows", &[], Some(&body), "read workflows", Repeat::Safe)
            .await?;
        Ok(WorkflowGraph::from_read_response(&answer))
    }

    /// `GET /rest/api/3/project/{key}`'s id (for the workflow query), via the create screen's
    /// project: JIRA answers the id of the key in `issue/createmeta` only per issue type, so this
    /// reads `/project/{key}` (Browse projects).
    pub async fn project_id(&self, project: &str) -> Result<String, JiraError> {
        let path = format!("rest/api/3/project/{}", segment(project));
        let answer = self.call(Method::GET, &path, &[], None, "get project", Repeat::Safe).await?;
        Ok(answer.get("id").and_then(Value::as_str).unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_read_answer_becomes_statuses_and_transitions_by_name() {
        let answer = json!({
            "statuses": [
                {"statusReference": "a", "name": "ToDo"},
                {"statusReference": "b", "name": "Done"},
                {"statusReference": "c", "name": "Cancelled"}
            ],
            "workflows": [{
                "name": "Team",
                "statuses": [{"statusReference": "a"}, {"statusReference": "b"}, {"statusReference": "c"}],
                "transitions": [
                    {"id": "1", "name": "Create", "type": "INITIAL", "toStatusReference": "a", "links": []},
                    {"id": "21", "name": "Cancel", "type": "GLOBAL", "toStatusReference": "c", "links": []},
                    {"id": "31", "name": "Close", "type": "DIRECTED", "toStatusReference": "b",
                     "links": [{"fromStatusReference": "a", "fromPort": 0, "toPort": 1}]}
                ]
            }]
        });
        let graph = WorkflowGraph::from_read_response(&answer).unwrap();
        assert_eq!(graph.statuses, ["ToDo", "Done", "Cancelled"]);
        assert_eq!(graph.initial.as_deref(), Some("ToDo"));
        let offered: Vec<String> = graph.offered("ToDo").into_iter().map(|t| t.to.unwrap().name).collect();
        assert_eq!(offered, ["Cancelled", "Done"]);
        assert_eq!(graph.offered("Cancelled").len(), 0, "a global transition is not offered into itself");
    }
}
