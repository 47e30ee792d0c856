//! What `infra-tickets doctor` reads before go-live, answered from the site's configuration:
//!
//! | operation | endpoint |
//! |---|---|
//! | the caller's permissions in a project (the projects' permission schemes: [`crate::JiraSim::deny`]) | `GET /rest/api/3/mypermissions` |
//! | the site's priorities ([`crate::JiraSim::remove_priority`]) | `GET /rest/api/3/priority/search` |
//! | a project | `GET /rest/api/3/project/{projectIdOrKey}` |
//! | the create screen's issue types and fields (required ones: [`crate::JiraSim::require_on_create`]) | `GET /rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes[/{issueTypeId}]` |
//! | the workflow of a project and issue type (links format) | `POST /rest/api/3/workflows` |
//!
//! Shapes from the official v3 reference:
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-permissions/#api-rest-api-3-mypermissions-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-priorities/#api-rest-api-3-priority-search-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-projects/#api-rest-api-3-project-projectidorkey-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-createmeta-projectidorkey-issuetypes-get>,
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-workflows/#api-rest-api-3-workflows-post>.

use serde_json::{Value, json};

use crate::model::{Answer, PRIORITIES, Site, error, issue_type_id};
use crate::{Permission, ProjectConfig};

/// `GET /mypermissions` keys of the project permissions the simulator enforces.
fn enforced(key: &str) -> Option<Permission> {
    Some(match key {
        "CREATE_ISSUES" => Permission::CreateIssues,
        "EDIT_ISSUES" => Permission::EditIssues,
        "TRANSITION_ISSUES" => Permission::TransitionIssues,
        "ADD_COMMENTS" => Permission::AddComments,
        "LINK_ISSUES" => Permission::LinkIssues,
        _ => return None,
    })
}

fn find<'a>(site: &'a Site, id_or_key: &str) -> Option<&'a ProjectConfig> {
    site.config.projects.iter().find(|p| p.key == id_or_key || p.id == id_or_key)
}

fn not_found(project: &str) -> Answer {
    error(404, &format!("No project could be found with key '{project}'."))
}

/// `GET /rest/api/3/mypermissions?projectKey=&permissions=`.
pub fn my_permissions(site: &Site, project_key: Option<&str>, permissions: Option<&str>) -> Answer {
    let Some(permissions) = permissions.filter(|p| !p.trim().is_empty()) else {
        return error(400, "The permissions parameter is required.");
    };
    let project = match project_key {
        Some(key) => match find(site, key) {
            Some(project) => Some(project),
            None => return not_found(key),
        },
        None => None,
    };
    let mut out = serde_json::Map::new();
    for (index, key) in permissions.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
        let have = match (enforced(key), project) {
            (Some(permission), Some(project)) => !project.denied.contains(&permission),
            // Without a project: whether the caller has it in any project.
            (Some(permission), None) => site.config.projects.iter().any(|p| !p.denied.contains(&permission)),
            (None, _) => true,
        };
        let global = key == "BULK_CHANGE";
        out.insert(
            key.to_owned(),
            json!({
                "id": (index + 1).to_string(),
                "key": key,
                "name": key.replace('_', " ").to_lowercase(),
                "type": if global { "GLOBAL" } else { "PROJECT" },
                "description": "",
                "havePermission": have,
            }),
        );
    }
    (200, Some(json!({ "permissions": out })))
}

/// `GET /rest/api/3/priority/search`.
pub fn priority_search(site: &Site, start_at: usize, max_results: usize) -> Answer {
    let all: Vec<Value> = PRIORITIES
        .iter()
        .filter(|(_, name)| !site.removed_priorities.contains(*name))
        .map(|(id, name)| {
            json!({
                "self": format!("{}/rest/api/3/priority/{id}", site.base_url),
                "id": id, "name": name, "description": "", "statusColor": "#cccccc",
                "iconUrl": format!("{}/images/icons/priorities/{}.svg", site.base_url, name.to_lowercase()),
                "isDefault": *name == "Medium",
            })
        })
        .collect();
    let max_results = max_results.clamp(1, 100);
    let page: Vec<Value> = all.iter().skip(start_at).take(max_results).cloned().collect();
    let is_last = start_at + page.len() >= all.len();
    (
        200,
        Some(json!({
            "maxResults": max_results, "startAt": start_at, "total": all.len(), "isLast": is_last,
            "values": page,
        })),
    )
}

/// `GET /rest/api/3/project/{projectIdOrKey}`.
pub fn project(site: &Site, id_or_key: &str) -> Answer {
    let Some(project) = find(site, id_or_key) else { return not_found(id_or_key) };
    let types: Vec<Value> =
        project.issue_types.iter().enumerate().map(|(i, name)| issue_type_json(site, i, name)).collect();
    (
        200,
        Some(json!({
            "self": format!("{}/rest/api/3/project/{}", site.base_url, project.id),
            "id": project.id, "key": project.key, "name": project.name,
            "projectTypeKey": "software", "simplified": false, "style": "classic",
            "issueTypes": types,
        })),
    )
}

fn issue_type_json(site: &Site, index: usize, name: &str) -> Value {
    let id = issue_type_id(index);
    json!({
        "self": format!("{}/rest/api/3/issuetype/{id}", site.base_url),
        "id": id, "name": name, "description": "", "subtask": false,
        "iconUrl": format!("{}/images/icons/issuetypes/{}.svg", site.base_url, name.to_lowercase()),
    })
}

/// `GET /rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes`.
pub fn create_issue_types(site: &Site, id_or_key: &str) -> Answer {
    let Some(project) = find(site, id_or_key) else { return not_found(id_or_key) };
    if project.denied.contains(&Permission::CreateIssues) {
        // JIRA lists only the issue types the caller may create.
        return (200, Some(json!({"issueTypes": [], "maxResults": 50, "startAt": 0, "total": 0})));
    }
    let types: Vec<Value> =
        project.issue_types.iter().enumerate().map(|(i, name)| issue_type_json(site, i, name)).collect();
    (200, Some(json!({"issueTypes": types, "maxResults": 50, "startAt": 0, "total": types.len()})))
}

/// `GET /rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}`.
pub fn create_fields(site: &Site, id_or_key: &str, type_id: &str) -> Answer {
    let Some(project) = find(site, id_or_key) else { return not_found(id_or_key) };
    if !(0..project.issue_types.len()).any(|i| issue_type_id(i) == type_id) {
        return error(
            404,
            &format!("Issue type with id '{type_id}' does not exist or is not valid in project."),
        );
    }
    let team = &site.config.team_field;
    let mut known: Vec<(String, String, Value)> = [
        ("summary", "Summary", json!({"type": "string", "system": "summary"})),
        ("issuetype", "Issue Type", json!({"type": "issuetype", "system": "issuetype"})),
        ("project", "Project", json!({"type": "project", "system": "project"})),
        ("description", "Description", json!({"type": "string", "system": "description"})),
        ("duedate", "Due date", json!({"type": "date", "system": "duedate"})),
        ("labels", "Labels", json!({"type": "array", "items": "string", "system": "labels"})),
        ("priority", "Priority", json!({"type": "priority", "system": "priority"})),
        ("components", "Components", json!({"type": "array", "items": "component", "system": "components"})),
        ("environment", "Environment", json!({"type": "string", "system": "environment"})),
    ]
    .into_iter()
    .map(|(id, name, schema)| (id.to_owned(), name.to_owned(), schema))
    .collect();
    known.push((
        team.id.clone(),
        "Team".into(),
        json!({"type": team.kind.schema_type(), "custom": team.kind.custom_type()}),
    ));
    for (p, field) in &site.required_on_create {
        if *p == project.key && !known.iter().any(|(id, _, _)| id == field) {
            known.push((field.clone(), field.clone(), json!({"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"})));
        }
    }
    let fields: Vec<Value> = known
        .into_iter()
        .filter(|(id, _, _)| {
            ["summary", "issuetype", "project"].contains(&id.as_str())
                || project.screen_fields.as_ref().is_none_or(|s| s.contains(id))
                    && !site.off_screen.contains(&(project.key.clone(), id.clone()))
        })
        .map(|(id, name, schema)| {
            let required = ["summary", "issuetype", "project"].contains(&id.as_str())
                || site.required_on_create.contains(&(project.key.clone(), id.clone()));
            json!({
                "fieldId": id, "key": id, "name": name, "required": required,
                "hasDefaultValue": id == "issuetype" || id == "priority",
                "schema": schema, "operations": ["set"],
            })
        })
        .collect();
    (200, Some(json!({"fields": fields, "maxResults": 50, "startAt": 0, "total": fields.len()})))
}

/// `POST /rest/api/3/workflows` with `projectAndIssueTypes`: each project's workflow, in the
/// links format (`toStatusReference`, `links[].fromStatusReference`; global transitions have
/// type `GLOBAL`, the create transition `INITIAL`).
pub fn read_workflows(site: &Site, body: &Value) -> Answer {
    let Some(pairs) = body.get("projectAndIssueTypes").and_then(Value::as_array) else {
        return error(400, "Provide projectAndIssueTypes, workflowIds or workflowNames.");
    };
    let mut statuses: Vec<Value> = Vec::new();
    let mut workflows: Vec<Value> = Vec::new();
    for pair in pairs {
        let project_id = pair.get("projectId").and_then(Value::as_str).unwrap_or_default();
        let Some(project) = site.config.projects.iter().find(|p| p.id == project_id) else { continue };
        let workflow = &project.workflow;
        let reference =
            |name: &str| workflow.status(name).map(|s| format!("ref-{}", s.id)).unwrap_or_default();
        for status in &workflow.statuses {
            if !statuses.iter().any(|s| s["id"] == json!(status.id)) {
                statuses.push(json!({
                    "id": status.id, "name": status.name, "statusReference": format!("ref-{}", status.id),
                    "statusCategory": match status.category() { "new" => "TODO", "done" => "DONE", _ => "IN_PROGRESS" },
                    "scope": {"type": "GLOBAL"}, "description": "",
                }));
            }
        }
        let mut transitions = vec![json!({
            "id": "1", "name": "Create", "type": "INITIAL", "description": "",
            "toStatusReference": reference(&workflow.initial), "links": [],
        })];
        for t in &workflow.transitions {
            let links: Vec<Value> = t
                .from
                .iter()
                .map(|from| json!({"fromStatusReference": reference(from), "fromPort": 0, "toPort": 1}))
                .collect();
            transitions.push(json!({
                "id": t.id, "name": t.name, "description": "",
                "type": if t.from.is_empty() { "GLOBAL" } else { "DIRECTED" },
                "toStatusReference": reference(&t.to), "links": links,
            }));
        }
        workflows.push(json!({
            "id": format!("wf-{}", project.id), "name": workflow.name, "description": "",
            "isEditable": true, "scope": {"type": "GLOBAL"},
            "version": {"id": "v1", "versionNumber": 1},
            "statuses": workflow.statuses.iter().map(|s| json!({"statusReference": format!("ref-{}", s.id), "deprecated": false, "properties": {}})).collect::<Vec<_>>(),
            "transitions": transitions,
        }));
    }
    (200, Some(json!({"statuses": statuses, "workflows": workflows})))
}
