//! JIRA Cloud (jira-writer; the notifier's reminder scan): the credentials, the search the writer
//! relies on (and issue properties in it), the team field's type, the lanes' priorities, and per
//! project: the issue type and the create screen, the bot's permissions and the workflow's
//! statuses and paths. The paths are walked with jira-writer's own
//! [`jira_writer::workflow::Walk`] over the workflow JIRA reports, so doctor and the writer
//! cannot disagree about which transitions lead where.

use std::collections::{BTreeMap, BTreeSet};

use jira::preflight::{CreateField, CreateIssueType, WorkflowGraph};
use jira::{JiraClient, JiraClientConfig, JiraError};
use jira_writer::workflow::{Step, Walk, WorkflowSettings, Workflows, same_status};
use serde_json::Value;

use super::{Check, vendor};

/// `schema.custom` of JIRA's Team field.
pub const TEAM_FIELD_TYPE: &str = "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team";

/// The fields the writer fills in a create: a required field outside this set makes every create
/// fail.
pub fn fields_we_set(team_field: Option<&str>) -> Vec<String> {
    let mut fields: Vec<String> =
        ["project", "issuetype", "summary", "description", "labels", "duedate", "priority", "components"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    fields.extend(team_field.map(str::to_owned));
    fields
}

/// Fields the writer needs on the create screen (it sets them on every ticket that has them).
pub const NEEDED_ON_SCREEN: [&str; 3] = ["labels", "duedate", "priority"];

/// The project permissions the writer uses (`GET /mypermissions` keys), and what each is for.
pub const PERMISSIONS: [(&str, &str); 7] = [
    ("BROWSE_PROJECTS", "Browse projects"),
    ("CREATE_ISSUES", "Create issues"),
    ("EDIT_ISSUES", "Edit issues"),
    ("TRANSITION_ISSUES", "Transition issues"),
    ("ADD_COMMENTS", "Add comments"),
    ("LINK_ISSUES", "Link issues"),
    ("CLOSE_ISSUES", "Close issues"),
];
/// Moving a ticket to another team's project: Move issues in the project and the global Make
/// bulk changes (JIRA Cloud moves through the bulk move API).
pub const MOVE_PERMISSIONS: [(&str, &str); 2] =
    [("MOVE_ISSUES", "Move issues"), ("BULK_CHANGE", "Make bulk changes")];

fn error_detail(error: &JiraError) -> String {
    vendor(&error.to_string())
}

pub fn auth_check(answer: Result<&Value, &JiraError>) -> Check {
    let name = "jira: credentials (/myself)";
    match answer {
        Ok(user) => Check::pass(
            name,
            format!("as {}", vendor(user.get("displayName").and_then(Value::as_str).unwrap_or("?"))),
        ),
        Err(error) => Check::fail(
            name,
            error_detail(error),
            "set --jira-email and --jira-api-token (JIRA_API_TOKEN) to a working Atlassian account and API token, and --jira-url to the site",
        ),
    }
}

pub fn search_check(answer: Result<(), &JiraError>) -> Check {
    let name = "jira: search (/search/jql) with issue properties";
    match answer {
        Ok(()) => Check::pass(name, "answers"),
        Err(error) if error.status() == Some(410) => Check::fail(
            name,
            error_detail(error),
            "JIRA removed this search API: upgrade infra-tickets (it uses /rest/api/3/search/jql)",
        ),
        Err(error) => Check::fail(name, error_detail(error), "grant Browse projects; check the site URL"),
    }
}

/// The team field's definition (`GET /field`) against the configuration: an org id (for JIRA's
/// Team field) with a select field, or a Team field whose catalog values are names without an
/// org id to look them up.
pub fn team_field_check(field_id: &str, fields: &[Value], org_id_set: bool, team_values: &[String]) -> Check {
    let name = format!("jira: team field {}", vendor(field_id));
    let Some(field) = fields.iter().find(|f| f.get("id").and_then(Value::as_str) == Some(field_id)) else {
        return Check::fail(
            name,
            "no such field on the site",
            "set --jira-team-field to the custom field's id (customfield_NNNNN, from Settings → Issues → Custom fields)",
        );
    };
    let custom = field.pointer("/schema/custom").and_then(Value::as_str).unwrap_or_default();
    let kind = custom.rsplit(':').next().unwrap_or(custom);
    let is_team = custom == TEAM_FIELD_TYPE;
    let looks_like_ids = !team_values.is_empty()
        && team_values.iter().all(|v| v.len() == 36 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    if org_id_set && !is_team {
        return Check::fail(
            name,
            format!("a Team field is configured (--jira-org-id), but the field is a {}", vendor(kind)),
            "point --jira-team-field at JIRA's Team field, or drop --jira-org-id to write the catalog's values into this field as it is",
        );
    }
    if is_team && !org_id_set && !team_values.is_empty() && !looks_like_ids {
        return Check::fail(
            name,
            "JIRA's Team field, but the catalog names teams and no --jira-org-id is set to look them up",
            "set --jira-org-id (admin.atlassian.com → Settings), or give the teams' ids in jira_team_field",
        );
    }
    Check::pass(name, vendor(kind))
}

pub fn priority_checks(lanes: &BTreeMap<contracts::Lane, String>, site: &[String]) -> Vec<Check> {
    lanes
        .iter()
        .map(|(lane, priority)| {
            let name = format!("jira: lane {lane} → priority {}", vendor(priority));
            if site.iter().any(|p| p.eq_ignore_ascii_case(priority)) {
                Check::pass(name, "exists")
            } else {
                Check::fail(
                    name,
                    format!("the site's priorities are {}", vendor(&site.join(", "))),
                    "change --jira-lane-priorities to names the site has, or add the priority in JIRA (Settings → Issues → Priorities)",
                )
            }
        })
        .collect()
}

pub fn issue_type_check(
    project: &str,
    wanted: &str,
    answer: Result<&[CreateIssueType], &JiraError>,
) -> Result<(Check, String), Check> {
    let name = format!("jira: project {}: exists with issue type {}", vendor(project), vendor(wanted));
    match answer {
        Ok(types) => match types.iter().find(|t| t.name.eq_ignore_ascii_case(wanted)) {
            Some(found) => {
                Ok((Check::pass(name, format!("issue type id {}", vendor(&found.id))), found.id.clone()))
            }
            None => Err(Check::fail(
                name,
                if types.is_empty() {
                    "the create screen offers no issue type (JIRA lists none without Create issues)"
                        .to_owned()
                } else {
                    format!(
                        "the create screen offers {}",
                        vendor(&types.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "))
                    )
                },
                "add the issue type to the project's issue type scheme, or set --jira-issue-type",
            )),
        },
        Err(error) => Err(Check::fail(
            name,
            error_detail(error),
            "check the team's jira_project in the catalog (or --jira-project) and that the bot may browse it",
        )),
    }
}

pub fn create_screen_checks(project: &str, fields: &[CreateField], team_field: Option<&str>) -> Vec<Check> {
    let ours = fields_we_set(team_field);
    let required: Vec<&CreateField> =
        fields.iter().filter(|f| f.required && !f.has_default_value && !ours.contains(&f.field_id)).collect();
    let p = vendor(project);
    let mut out = vec![if required.is_empty() {
        Check::pass(format!("jira: project {p}: required create fields are ours"), "none other required")
    } else {
        Check::fail(
            format!("jira: project {p}: required create fields are ours"),
            format!(
                "required without a default: {}",
                vendor(
                    &required
                        .iter()
                        .map(|f| format!("{} ({})", f.name, f.field_id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ),
            "make these fields optional or give them a default in the project's field configuration",
        )
    }];
    let on_screen: BTreeSet<&str> = fields.iter().map(|f| f.field_id.as_str()).collect();
    let mut missing: Vec<&str> =
        NEEDED_ON_SCREEN.iter().copied().filter(|f| !on_screen.contains(f)).collect();
    if let Some(team) = team_field.filter(|t| !on_screen.contains(t)) {
        missing.push(team);
    }
    out.push(if missing.is_empty() {
        Check::pass(
            format!("jira: project {p}: create screen has our fields"),
            "labels, due date, priority and the team field",
        )
    } else {
        Check::fail(
            format!("jira: project {p}: create screen has our fields"),
            format!("missing: {}", vendor(&missing.join(", "))),
            "add them to the project's create and edit screens",
        )
    });
    out
}

pub fn permission_checks(
    project: &str,
    granted: &BTreeMap<String, bool>,
    needed: &[(&str, &str)],
) -> Vec<Check> {
    needed
        .iter()
        .map(|(key, label)| {
            let name = format!("jira: project {}: permission {label}", vendor(project));
            if granted.get(*key).copied().unwrap_or(false) {
                Check::pass(name, "granted")
            } else {
                Check::fail(
                    name,
                    format!("{key} not granted to the bot"),
                    format!("grant {label} to the bot's account in the project's permission scheme"),
                )
            }
        })
        .collect()
}

/// Walks from `from` to `target` as the writer would (one offered transition at a time), over
/// the workflow's graph: the statuses passed, or why it is stuck.
pub fn walk(
    settings: &WorkflowSettings,
    graph: &WorkflowGraph,
    from: &str,
    target: &str,
) -> Result<Vec<String>, String> {
    let mut walk = Walk::new(settings, target);
    let mut current = from.to_owned();
    let mut path = vec![from.to_owned()];
    loop {
        match walk.step(&current, &graph.offered(&current)) {
            Step::Arrived => return Ok(path),
            Step::Held { status } => {
                return Err(format!("{status} is a people's decision: the writer stops there"));
            }
            Step::Take { to, last, .. } => {
                path.push(to.clone());
                if last {
                    return Ok(path);
                }
                current = to;
            }
            Step::Stuck { from, offered } => {
                let offered = if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") };
                return Err(format!("stuck at {from}: JIRA offers {offered}"));
            }
        }
    }
}

/// The configured statuses exist and the writer can walk each way it needs.
pub fn workflow_checks(
    project: &str,
    settings: &WorkflowSettings,
    linked: Option<&str>,
    graph: &WorkflowGraph,
) -> Vec<Check> {
    let p = vendor(project);
    let mut out = Vec::new();
    let mut named: Vec<(&str, &str)> = vec![("resolve", &settings.resolve), ("reopen", &settings.reopen)];
    if let Some(filed) = &settings.filed {
        named.push(("filed", filed));
    }
    if let Some(linked) = linked {
        named.push(("linked", linked));
    }
    named.extend(settings.via.iter().map(|v| ("via", v.as_str())));
    let missing: Vec<String> = named
        .iter()
        .filter(|(_, status)| !graph.statuses.iter().any(|s| same_status(s, status)))
        .map(|(role, status)| format!("{role}={status}"))
        .collect();
    let statuses = format!("jira: project {p}: workflow has the configured statuses");
    if missing.is_empty() {
        out.push(Check::pass(
            statuses,
            format!("{} ({})", vendor(&graph.name), vendor(&graph.statuses.join(", "))),
        ));
    } else {
        out.push(Check::fail(
            statuses,
            format!("{} lacks {}; it has {}", vendor(&graph.name), vendor(&missing.join(", ")), vendor(&graph.statuses.join(", "))),
            format!("set --jira-workflow '{project}:resolve=…,reopen=…,via=…' to this workflow's status names (and --jira-linked-status, or linked=)"),
        ));
    }
    let Some(start) = settings.filed.clone().or_else(|| graph.initial.clone()) else {
        out.push(Check::fail(
            format!("jira: project {p}: workflow paths"),
            "the workflow names no initial status",
            "set filed= in --jira-workflow for this project",
        ));
        return out;
    };
    let mut paths: Vec<(&str, String, String)> = Vec::new();
    if let (Some(filed), Some(initial)) = (&settings.filed, &graph.initial) {
        paths.push(("new → filed", initial.clone(), filed.clone()));
    }
    paths.push(("filed → resolved", start.clone(), settings.resolve.clone()));
    paths.push(("resolved → reopened", settings.resolve.clone(), settings.reopen.clone()));
    if let Some(linked) = linked {
        paths.push(("filed → linked", start.clone(), linked.to_owned()));
    }
    for (label, from, to) in paths {
        let name = format!("jira: project {p}: path {label} ({} → {})", vendor(&from), vendor(&to));
        match walk(settings, graph, &from, &to) {
            Ok(path) => out.push(Check::pass(name, vendor(&path.join(" → ")))),
            Err(why) => out.push(Check::fail(
                name,
                vendor(&why),
                "add the transitions to the workflow, or name the statuses on the way in via= of --jira-workflow",
            )),
        }
    }
    out
}

fn client(
    url: &str,
    email: &str,
    token: &service_kit::Secret,
    timeout: std::time::Duration,
) -> Result<JiraClient, JiraError> {
    let mut config = JiraClientConfig::new(url, email, token.clone());
    config.timeout = timeout;
    config.max_attempts = 2;
    config.requests_per_second = 0.0;
    JiraClient::new(config)
}

async fn search(client: &JiraClient, jql: &str) -> Result<(), JiraError> {
    let request = jira::SearchRequest {
        jql: jql.to_owned(),
        max_results: Some(1),
        fields: vec!["status".into()],
        properties: vec![jira::PROPERTY_KEY.into()],
        ..jira::SearchRequest::default()
    };
    client.search(&request).await.map(|_| ())
}

/// jira-writer's checks.
pub async fn writer_checks(config: &jira_writer::Config, catalog: Option<catalog::Catalog>) -> Vec<Check> {
    let client =
        match client(&config.jira_url, &config.jira_email, &config.jira_api_token, config.jira_timeout) {
            Ok(client) => client,
            Err(error) => return vec![Check::fail("jira: client", error_detail(&error), "fix --jira-url")],
        };
    let me = client.myself().await;
    let mut out = vec![auth_check(me.as_ref())];
    if me.is_err() {
        return out;
    }
    let mut projects: BTreeSet<String> = BTreeSet::from([config.jira_project.clone()]);
    let mut team_values = Vec::new();
    if let Some(catalog) = &catalog {
        for team in catalog.teams.values() {
            projects.extend(team.jira_project.clone());
            team_values.extend(team.jira_team_field.clone());
        }
    }
    let jql = format!(
        "project in ({}) ORDER BY created DESC",
        projects.iter().map(|p| format!("\"{}\"", p.replace(['"', '\\'], ""))).collect::<Vec<_>>().join(", ")
    );
    out.push(search_check(search(&client, &jql).await.as_ref().map(|_| ())));
    if let Some(field) = &config.jira_team_field {
        match client.fields().await {
            Ok(fields) => {
                out.push(team_field_check(field, &fields, config.jira_org_id.is_some(), &team_values))
            }
            Err(error) => {
                out.push(Check::fail("jira: fields", error_detail(&error), "grant Browse projects"))
            }
        }
    }
    match client.priority_names().await {
        Ok(names) => out.extend(priority_checks(&config.jira_lane_priorities, &names)),
        Err(error) => out.push(Check::fail("jira: priorities", error_detail(&error), "check the site URL")),
    }
    let workflows = match Workflows::from_specs(&config.jira_workflows) {
        Ok(workflows) => workflows,
        Err(error) => {
            out.push(Check::fail("jira: --jira-workflow", vendor(&error), "fix --jira-workflow"));
            return out;
        }
    };
    let links_synced = config.jira_link_types.iter().any(|t| !t.trim().is_empty());
    let mut needed: Vec<(&str, &str)> = PERMISSIONS.to_vec();
    if projects.len() > 1 {
        // Team changes move tickets between the teams' projects.
        needed.extend(MOVE_PERMISSIONS);
    }
    let keys: Vec<&str> = needed.iter().map(|(k, _)| *k).collect();
    for project in &projects {
        match client.my_permissions(project, &keys).await {
            Ok(granted) => out.extend(permission_checks(project, &granted, &needed)),
            Err(error) => out.push(Check::fail(
                format!("jira: project {}: permissions", vendor(project)),
                error_detail(&error),
                "check the project key",
            )),
        }
        let types = client.create_issue_types(project).await;
        let issue_type_id = match issue_type_check(project, &config.jira_issue_type, types.as_deref()) {
            Ok((check, id)) => {
                out.push(check);
                id
            }
            Err(check) => {
                out.push(check);
                continue;
            }
        };
        match client.create_fields(project, &issue_type_id).await {
            Ok(fields) => {
                out.extend(create_screen_checks(project, &fields, config.jira_team_field.as_deref()))
            }
            Err(error) => out.push(Check::fail(
                format!("jira: project {}: create screen", vendor(project)),
                error_detail(&error),
                "grant Create issues in the project",
            )),
        }
        let settings = workflows.of(project);
        let linked = if links_synced {
            Some(settings.linked.clone().unwrap_or_else(|| config.jira_linked_status.clone()))
        } else {
            None
        };
        let graph = match client.project_id(project).await {
            Ok(id) => client.workflow_of(&id, &issue_type_id).await,
            Err(error) => Err(error),
        };
        match graph {
            Ok(Some(graph)) => out.extend(workflow_checks(project, settings, linked.as_deref(), &graph)),
            Ok(None) => out.push(Check::fail(
                format!("jira: project {}: workflow", vendor(project)),
                "JIRA reported no workflow for the project and issue type",
                "check the project's workflow scheme",
            )),
            Err(error) => out.push(Check::fail(
                format!("jira: project {}: workflow", vendor(project)),
                error_detail(&error),
                "reading a workflow needs Administer projects in the project (or Administer Jira) for the bot, for this check only",
            )),
        }
    }
    out
}

/// The notifier's reminder scan: credentials and search.
pub async fn notifier_checks(config: &notifier::Config) -> Vec<Check> {
    let (Some(url), Some(email), Some(token)) =
        (&config.jira_url, &config.jira_email, &config.jira_api_token)
    else {
        return if config.reminders {
            vec![Check::fail(
                "notifier: JIRA for reminders",
                "reminders are on but --jira-url, --jira-email or --jira-api-token is missing",
                "set them (the reminder scan reads due dates from JIRA) or --reminders false",
            )]
        } else {
            Vec::new()
        };
    };
    let client = match client(url, email, token, std::time::Duration::from_secs(30)) {
        Ok(client) => client,
        Err(error) => {
            return vec![Check::fail("notifier: JIRA client", error_detail(&error), "fix --jira-url")];
        }
    };
    let me = client.myself().await;
    let mut auth = auth_check(me.as_ref());
    auth.name = format!("notifier: {}", auth.name);
    let mut out = vec![auth];
    if me.is_ok() {
        let mut check = search_check(
            search(&client, "labels = \"infra-tickets\" AND statusCategory != Done")
                .await
                .as_ref()
                .map(|_| ()),
        );
        check.name = format!("notifier: {}", check.name);
        out.push(check);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn seed_team() -> WorkflowGraph {
        let t = |id: &str, name: &str, from: &[&str], to: &str| jira::preflight::WorkflowTransition {
            id: id.into(),
            name: name.into(),
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: to.into(),
        };
        WorkflowGraph {
            name: "Team".into(),
            statuses: ["ToDo", "Assigned", "Waiting", "Cancelled", "Done"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            initial: Some("ToDo".into()),
            transitions: vec![
                t("21", "Cancel", &["ToDo", "Assigned", "Waiting"], "Cancelled"),
                t("11", "Assign", &["ToDo"], "Assigned"),
                t("61", "Close", &["Assigned", "Waiting"], "Done"),
                t("71", "Reopen", &["Done", "Cancelled"], "ToDo"),
            ],
        }
    }

    fn settings(spec: &str) -> WorkflowSettings {
        jira_writer::workflow::parse_workflow(spec).unwrap().1
    }

    #[test]
    fn the_seed_workflow_is_walked_through_assigned_never_to_cancelled() {
        let s = settings("resolve=Done,reopen=ToDo,via=Assigned,decisions=Cancelled");
        assert_eq!(walk(&s, &seed_team(), "ToDo", "Done").unwrap(), ["ToDo", "Assigned", "Done"]);
        let checks = workflow_checks("OPS", &s, Some("Assigned"), &seed_team());
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    }

    #[test]
    fn a_workflow_without_a_path_to_done_fails_saying_what_jira_offers() {
        let s = settings("resolve=Done,reopen=ToDo,decisions=Cancelled");
        let why = walk(&s, &seed_team(), "ToDo", "Done").unwrap_err();
        assert!(why.contains("stuck at ToDo") && why.contains("Assign → Assigned"), "{why}");
        let checks = workflow_checks("OPS", &settings("resolve=Closed,reopen=ToDo"), None, &seed_team());
        assert!(!checks[0].ok && checks[0].detail.contains("resolve=Closed"), "{checks:#?}");
    }

    #[test]
    fn a_select_field_where_a_team_field_is_configured_fails() {
        let select = json!([{"id": "customfield_1", "schema": {"custom": "com.atlassian.jira.plugin.system.customfieldtypes:select"}}]);
        let out = team_field_check("customfield_1", select.as_array().unwrap(), true, &[]);
        assert!(!out.ok && out.detail.contains("select") && out.remedy.contains("--jira-org-id"), "{out:?}");
        assert!(
            team_field_check("customfield_1", select.as_array().unwrap(), false, &["Payments".into()]).ok
        );
        let team = json!([{"id": "customfield_1", "schema": {"custom": TEAM_FIELD_TYPE}}]);
        assert!(!team_field_check("customfield_1", team.as_array().unwrap(), false, &["Payments".into()]).ok);
        assert!(team_field_check("customfield_1", team.as_array().unwrap(), true, &["Payments".into()]).ok);
        assert!(!team_field_check("customfield_2", team.as_array().unwrap(), true, &[]).ok);
    }

    #[test]
    fn missing_priorities_permissions_and_foreign_required_fields_fail() {
        let lanes = jira_writer::mapping::parse_lane_priorities("P1=Critical,P2=High").unwrap();
        let out = priority_checks(&lanes, &["High".into(), "Low".into()]);
        assert!(!out[0].ok && out[1].ok, "{out:?}");
        let granted =
            BTreeMap::from([("CREATE_ISSUES".to_owned(), false), ("BROWSE_PROJECTS".to_owned(), true)]);
        let out = permission_checks("PAY", &granted, &PERMISSIONS[..2]);
        assert!(out[0].ok && !out[1].ok && out[1].remedy.contains("Create issues"), "{out:?}");
        let field = |id: &str, required: bool| CreateField {
            field_id: id.into(),
            name: id.into(),
            required,
            has_default_value: false,
        };
        let screen = [
            field("summary", true),
            field("customfield_9", true),
            field("labels", false),
            field("duedate", false),
        ];
        let out = create_screen_checks("PAY", &screen, None);
        assert!(!out[0].ok && out[0].detail.contains("customfield_9"), "{out:?}");
        assert!(!out[1].ok && out[1].detail.contains("priority"), "{out:?}");
    }
}
