//! The simulated JIRA site: projects, issues, workflow, links, properties, the search index.
//!
//! Every operation takes the request as JIRA would receive it and answers with JIRA's status
//! and body, so the HTTP layer only routes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use crate::jql::{self, Clause, Op};
use crate::workflow::{Category, Status};
use crate::{Permission, ProjectConfig, SimConfig, TeamFieldKind};

/// A JIRA answer: status and JSON body (`None`: empty body).
pub type Answer = (u16, Option<Value>);

/// `{"errorMessages": [...], "errors": {...}}`.
pub fn error_body(messages: &[&str], errors: &[(&str, String)]) -> Value {
    let errors: Map<String, Value> =
        errors.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
    json!({ "errorMessages": messages, "errors": errors })
}

pub fn error(status: u16, message: &str) -> Answer {
    (status, Some(error_body(&[message], &[])))
}

fn field_errors(errors: Vec<(String, String)>) -> Answer {
    let map: Map<String, Value> = errors.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    (400, Some(json!({ "errorMessages": [], "errors": map })))
}

const NOT_FOUND: &str = "Issue does not exist or you do not have permission to see it.";

/// One issue, with its history as the search index sees it.
#[derive(Debug, Clone)]
pub struct IssueRecord {
    pub id: u64,
    pub key: String,
    pub project: String,
    pub status: Status,
    /// Fields as JIRA stores them (our names, JIRA's shapes), without status/project/key.
    pub fields: Map<String, Value>,
    pub properties: BTreeMap<String, Value>,
    pub comments: Vec<Comment>,
    pub remote_links: Vec<RemoteLink>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// What the search index holds: (time of the change, searchable view after it).
    pub history: Vec<(DateTime<Utc>, SearchView)>,
    pub previous_keys: Vec<String>,
}

/// The values the search index knows of an issue at one moment.
#[derive(Debug, Clone)]
pub struct SearchView {
    pub key: String,
    pub project: String,
    pub status: Status,
    pub fields: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub body: Value,
    pub author: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RemoteLink {
    pub id: u64,
    pub global_id: Option<String>,
    pub object: Value,
    pub relationship: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssueLink {
    pub link_type: String,
    /// The issue that reads the link type's inward phrase ("is duplicated by", "is blocked by"):
    /// the link's destination, given as `outwardIssue` in `POST /rest/api/3/issueLink`.
    pub inward: u64,
    /// The issue that reads the outward phrase ("duplicates", "blocks"): the link's source,
    /// given as `inwardIssue` in the POST. JIRA's field names are the reverse of what they
    /// suggest: <https://developer.atlassian.com/cloud/jira/platform/issue-linking-model/> labels
    /// an issue with `type.outward` when its `issuelinks` entry carries an `outwardIssue`.
    pub outward: u64,
}

pub const PRIORITIES: [(&str, &str); 5] =
    [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")];
pub const LINK_TYPES: [(&str, &str, &str, &str); 3] = [
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
    ("10000", "Blocks", "is blocked by", "blocks"),
];

/// The whole site.
pub struct Site {
    pub base_url: String,
    pub config: SimConfig,
    pub issues: BTreeMap<u64, IssueRecord>,
    pub links: BTreeSet<IssueLink>,
    /// The id of each link (`issuelinks[].id`, the webhook's `issueLink.id`).
    pub link_ids: BTreeMap<IssueLink, u64>,
    /// `issuelink_created` webhook bodies not sent yet (the server sends them after the answer).
    pub webhook_events: Vec<Value>,
    next_issue_id: u64,
    next_other_id: u64,
    counters: BTreeMap<String, u64>,
    /// Fields removed from a project's screens by a test.
    pub off_screen: BTreeSet<(String, String)>,
    /// Target projects whose bulk moves fail per issue, with the reason reported.
    pub move_refusals: BTreeMap<String, String>,
    /// Bulk-operation tasks (`/rest/api/3/bulk/queue/{taskId}`), by task id.
    tasks: BTreeMap<u64, Value>,
    /// Priorities a test removed from the site (not listed, refused in a create).
    pub removed_priorities: BTreeSet<String>,
    /// (project, field) the project's field configuration makes required on create.
    pub required_on_create: BTreeSet<(String, String)>,
    /// A fault: a search page asked with `nextPageToken` answers with that same token again.
    pub repeat_search_page_tokens: bool,
}

impl Site {
    pub fn new(config: SimConfig) -> Self {
        Site {
            base_url: String::new(),
            config,
            issues: BTreeMap::new(),
            links: BTreeSet::new(),
            link_ids: BTreeMap::new(),
            webhook_events: Vec::new(),
            next_issue_id: 10_000,
            next_other_id: 20_000,
            counters: BTreeMap::new(),
            off_screen: BTreeSet::new(),
            move_refusals: BTreeMap::new(),
            tasks: BTreeMap::new(),
            removed_priorities: BTreeSet::new(),
            required_on_create: BTreeSet::new(),
            repeat_search_page_tokens: false,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    fn other_id(&mut self) -> u64 {
        self.next_other_id += 1;
        self.next_other_id
    }

    fn project(&self, key: &str) -> Option<&ProjectConfig> {
        self.config.projects.iter().find(|p| p.key == key)
    }

    /// JIRA's 403 when the bot lacks `permission` in `project` (a permission scheme per project).
    fn denied(&self, project: &str, permission: Permission) -> Option<Answer> {
        let project = self.project(project)?;
        project.denied.contains(&permission).then(|| error(403, permission.refusal()))
    }

    fn project_of(&self, id: u64) -> String {
        self.issues[&id].project.clone()
    }

    fn project_json(&self, project: &ProjectConfig) -> Value {
        json!({
            "self": format!("{}/rest/api/3/project/{}", self.base_url, project.id),
            "id": project.id,
            "key": project.key,
            "name": project.name,
        })
    }

    pub fn find(&self, id_or_key: &str) -> Option<u64> {
        if let Ok(id) = id_or_key.parse::<u64>() {
            return self.issues.contains_key(&id).then_some(id);
        }
        self.issues
            .values()
            .find(|i| i.key == id_or_key || i.previous_keys.iter().any(|k| k == id_or_key))
            .map(|i| i.id)
    }

    // ----- create and edit -----

    /// `POST /rest/api/3/issue`.
    pub fn create_issue(&mut self, body: &Value) -> Answer {
        let Some(fields) = body.get("fields").and_then(Value::as_object) else {
            return field_errors(vec![("project".into(), "Specify a valid project ID or key".into())]);
        };
        let project_key = match self.project_ref(fields.get("project")) {
            Ok(key) => key,
            Err(answer) => return answer,
        };
        let mut stored = Map::new();
        let mut errors = Vec::new();
        for (name, value) in fields {
            if name == "project" {
                continue;
            }
            match self.normalise_field(&project_key, name, value) {
                Ok(Some(v)) => {
                    stored.insert(name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => errors.push((name.clone(), message)),
            }
        }
        if !stored.contains_key("summary") && !errors.iter().any(|(f, _)| f == "summary") {
            errors.push(("summary".into(), "You must specify a summary of the issue.".into()));
        }
        if !stored.contains_key("issuetype") && !errors.iter().any(|(f, _)| f == "issuetype") {
            errors.push(("issuetype".into(), "Specify an issue type".into()));
        }
        for (project, field) in &self.required_on_create {
            if *project == project_key
                && !stored.contains_key(field)
                && !errors.iter().any(|(f, _)| f == field)
            {
                errors.push((field.clone(), format!("{field} is required.")));
            }
        }
        if let Some(update) = body.get("update").and_then(Value::as_object) {
            for name in update.keys() {
                if fields.contains_key(name) {
                    errors.push((name.clone(), "Field cannot be set in both 'fields' and 'update'.".into()));
                }
            }
        }
        let mut properties = BTreeMap::new();
        if let Some(list) = body.get("properties") {
            match parse_properties(list) {
                Ok(p) => properties = p,
                Err(message) => return error(400, &message),
            }
        }
        if !errors.is_empty() {
            return field_errors(errors);
        }
        if let Some(denied) = self.denied(&project_key, Permission::CreateIssues) {
            return denied;
        }
        let now = self.now();
        self.next_issue_id += 1;
        let id = self.next_issue_id;
        let initial = self.project(&project_key).expect("a known project").workflow.initial_status();
        let counter = self.counters.entry(project_key.clone()).or_insert(0);
        *counter += 1;
        let key = format!("{project_key}-{counter}");
        let mut record = IssueRecord {
            id,
            key: key.clone(),
            project: project_key,
            status: initial,
            fields: stored,
            properties,
            comments: Vec::new(),
            remote_links: Vec::new(),
            created: now,
            updated: now,
            resolved: None,
            history: Vec::new(),
            previous_keys: Vec::new(),
        };
        if let Some(update) = body.get("update").and_then(Value::as_object)
            && let Err(answer) = self.apply_update_verbs(&mut record, update)
        {
            return answer;
        }
        snapshot(&mut record, now);
        self.issues.insert(id, record);
        let self_url = format!("{}/rest/api/3/issue/{id}", self.base_url);
        (201, Some(json!({ "id": id.to_string(), "key": key, "self": self_url })))
    }

    fn project_ref(&self, value: Option<&Value>) -> Result<String, Answer> {
        let invalid = || field_errors(vec![("project".into(), "Specify a valid project ID or key".into())]);
        let value = value.ok_or_else(invalid)?;
        let key = value.get("key").and_then(Value::as_str);
        let id = value.get("id").and_then(Value::as_str);
        self.config
            .projects
            .iter()
            .find(|p| Some(p.key.as_str()) == key || Some(p.id.as_str()) == id)
            .map(|p| p.key.clone())
            .ok_or_else(invalid)
    }

    /// Validates one field for a project and returns it as JIRA stores it.
    fn normalise_field(&self, project_key: &str, name: &str, value: &Value) -> Result<Option<Value>, String> {
        let project = self.project(project_key).expect("a known project");
        let on_screen = project.screen_fields.as_ref().is_none_or(|s| s.contains(name))
            && !self.off_screen.contains(&(project_key.to_owned(), name.to_owned()));
        let known = [
            "summary",
            "description",
            "issuetype",
            "duedate",
            "labels",
            "priority",
            "components",
            "assignee",
            "environment",
        ]
        .contains(&name)
            || name == self.config.team_field.id;
        if !known || !on_screen {
            return Err(format!(
                "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            ));
        }
        if value.is_null() {
            return match name {
                "summary" => Err("You must specify a summary of the issue.".into()),
                "issuetype" => Err("Specify an issue type".into()),
                _ => Ok(Some(Value::Null)),
            };
        }
        let stored = match name {
            "summary" => {
                let text = value.as_str().ok_or("Summary must be a string.")?;
                if text.trim().is_empty() {
                    return Err("You must specify a summary of the issue.".into());
                }
                if text.chars().count() > 255 {
                    return Err("Summary must be less than 255 characters.".into());
                }
                if text.contains('\n') {
                    return Err("The summary is invalid because it contains newline characters.".into());
                }
                Value::String(text.to_owned())
            }
            "description" | "environment" => {
                let is_doc = value.get("type").and_then(Value::as_str) == Some("doc")
                    && value.get("version").and_then(Value::as_i64) == Some(1)
                    && value.get("content").is_some_and(Value::is_array);
                if !is_doc {
                    return Err(
                        "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                            .into(),
                    );
                }
                if value.to_string().chars().count() > 32_767 {
                    return Err(
                        "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
                            .into(),
                    );
                }
                value.clone()
            }
            "issuetype" => {
                let wanted_name = value.get("name").and_then(Value::as_str);
                let wanted_id = value.get("id").and_then(Value::as_str);
                let (index, type_name) = project
                    .issue_types
                    .iter()
                    .enumerate()
                    .find(|(i, n)| {
                        Some(n.as_str()) == wanted_name || Some(issue_type_id(*i).as_str()) == wanted_id
                    })
                    .ok_or("Specify a valid issue type")?;
                json!({ "id": issue_type_id(index), "name": type_name, "subtask": false })
            }
            "duedate" => {
                let text = value.as_str().ok_or("Error parsing date string")?;
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| format!("Error parsing date string: {text}"))?;
                Value::String(text.to_owned())
            }
            "labels" => {
                let labels = value.as_array().ok_or("The labels must be a list.")?;
                let mut out = Vec::new();
                for label in labels {
                    let text = label.as_str().ok_or("A label must be a string.")?;
                    validate_label(text)?;
                    if !out.contains(&text.to_owned()) {
                        out.push(text.to_owned());
                    }
                }
                json!(out)
            }
            "priority" => {
                let wanted_name = value.get("name").and_then(Value::as_str);
                let wanted_id = value.get("id").and_then(Value::as_str);
                let (id, name) = PRIORITIES
                    .iter()
                    .filter(|(_, n)| !self.removed_priorities.contains(*n))
                    .find(|(id, n)| Some(*n) == wanted_name || Some(*id) == wanted_id)
                    .ok_or("Specify a valid priority")?;
                json!({ "id": id, "name": name, "self": format!("{}/rest/api/3/priority/{id}", self.base_url) })
            }
            "components" => {
                let list = value.as_array().ok_or("The components must be a list.")?;
                let mut out = Vec::new();
                for component in list {
                    let wanted = component.get("name").and_then(Value::as_str).unwrap_or_default();
                    let index = project
                        .components
                        .iter()
                        .position(|c| c == wanted)
                        .ok_or_else(|| format!("Component name '{wanted}' is not valid"))?;
                    out.push(json!({ "id": format!("{}{:02}", project.id, index), "name": wanted }));
                }
                json!(out)
            }
            _ if name == self.config.team_field.id => self.team_value(value)?,
            _ => value.clone(),
        };
        Ok(Some(stored))
    }

    /// The team field's value as JIRA stores it, checked against the field's kind.
    fn team_value(&self, value: &Value) -> Result<Value, String> {
        let field = &self.config.team_field;
        let option = |value: &Value| -> Result<Value, String> {
            let wanted = value.get("value").and_then(Value::as_str).ok_or("Specify the option value.")?;
            let index = field
                .options
                .iter()
                .position(|o| o == wanted)
                .ok_or_else(|| format!("Option value '{wanted}' is not valid"))?;
            Ok(json!({ "value": wanted, "id": field.id_of(index) }))
        };
        match field.kind {
            TeamFieldKind::SingleSelect => option(value),
            TeamFieldKind::MultiSelect => {
                let list = value.as_array().ok_or("Specify a list of option values.")?;
                Ok(Value::Array(list.iter().map(option).collect::<Result<_, _>>()?))
            }
            TeamFieldKind::Team => {
                // Written as the team id (a string); an object or a team's name is refused.
                let id = value.as_str().ok_or_else(|| format!("Team Id '{value}' is not valid"))?;
                let index = (0..field.options.len())
                    .find(|i| field.id_of(*i) == id)
                    .ok_or_else(|| format!("Team Id '{id}' is not valid"))?;
                let name = &field.options[index];
                Ok(
                    json!({ "id": id, "name": name, "title": name, "isShared": true, "isVisible": true, "isVerified": false }),
                )
            }
            TeamFieldKind::UserPicker => {
                let id =
                    value.get("accountId").and_then(Value::as_str).ok_or("Specify a user by accountId.")?;
                let index = (0..field.options.len())
                    .find(|i| field.id_of(*i) == id)
                    .ok_or_else(|| format!("The user with accountId '{id}' does not exist"))?;
                Ok(
                    json!({ "accountId": id, "displayName": field.options[index], "active": true, "accountType": "atlassian" }),
                )
            }
        }
    }

    /// The people of a user-picker team field: (account id, display name, e-mail).
    fn people(&self) -> Vec<(String, String, String)> {
        let field = &self.config.team_field;
        if field.kind != TeamFieldKind::UserPicker {
            return Vec::new();
        }
        (0..field.options.len())
            .map(|i| (field.id_of(i), field.options[i].clone(), crate::person_email(&field.options[i])))
            .collect()
    }

    /// `GET /rest/api/3/user/search?query=`: active users whose display name or e-mail address
    /// starts with the query, or a word of the display name does (case-insensitive), as JIRA
    /// Cloud matches them; at most `maxResults` (50).
    pub fn user_search(&self, query: Option<&str>, max_results: Option<usize>) -> Answer {
        let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
            return error(400, "The query parameter 'query' is required.");
        };
        let wanted = query.to_lowercase();
        let matches = |name: &str, email: &str| {
            email.to_lowercase().starts_with(&wanted)
                || name.to_lowercase().starts_with(&wanted)
                || name.split_whitespace().any(|w| w.to_lowercase().starts_with(&wanted))
        };
        let mut users: Vec<Value> = self
            .people()
            .into_iter()
            .filter(|(_, name, email)| matches(name, email))
            .map(|(id, name, email)| {
                json!({
                    "self": format!("{}/rest/api/3/user?accountId={id}", self.base_url),
                    "accountId": id,
                    "accountType": "atlassian",
                    "emailAddress": email,
                    "displayName": name,
                    "active": true,
                    "timeZone": "UTC",
                })
            })
            .collect();
        for (email, _) in &self.config.users {
            let user = user_json(&self.base_url, email);
            if matches(user["displayName"].as_str().unwrap_or_default(), email) {
                users.push(user);
            }
        }
        users.truncate(max_results.unwrap_or(50).min(1000));
        (200, Some(Value::Array(users)))
    }

    /// `GET /gateway/api/public/teams/v1/org/{orgId}/teams` (Atlassian's Teams API, served on the
    /// site): the organisation's teams (those of a Team field), `size` per page (at most 300)
    /// from `cursor`.
    pub fn org_teams(&self, org_id: &str, cursor: Option<&str>, size: Option<usize>) -> Answer {
        if org_id != crate::ORG_ID {
            return error(404, &format!("Organization {org_id} was not found."));
        }
        let field = &self.config.team_field;
        let teams: Vec<Value> = if field.kind == TeamFieldKind::Team {
            (0..field.options.len())
                .map(|i| {
                    json!({
                        "teamId": field.id_of(i),
                        "displayName": field.options[i],
                        "description": "",
                        "organizationId": crate::ORG_ID,
                        "state": "ACTIVE",
                        "teamType": "OPEN",
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let start = cursor.and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
        let size = size.unwrap_or(50).clamp(1, 300);
        let page: Vec<Value> = teams.iter().skip(start).take(size).cloned().collect();
        let mut answer = json!({ "entities": page });
        // The last page carries no cursor.
        if start + size < teams.len() {
            answer["cursor"] = json!((start + size).to_string());
        }
        (200, Some(answer))
    }

    /// `GET /rest/api/3/field`: the system fields infra-tickets uses and the team field.
    pub fn fields(&self) -> Answer {
        let system = |id: &str, name: &str, kind: &str| {
            json!({
                "id": id, "key": id, "name": name, "custom": false, "orderable": true, "navigable": true,
                "searchable": true, "clauseNames": [id], "schema": { "type": kind, "system": id },
            })
        };
        let team = &self.config.team_field;
        let number: String = team.id.trim_start_matches("customfield_").to_owned();
        let mut schema = json!({
            "type": team.kind.schema_type(),
            "custom": team.kind.custom_type(),
            "customId": number.parse::<i64>().unwrap_or(0),
        });
        if team.kind == TeamFieldKind::MultiSelect {
            schema["items"] = json!("option");
        }
        let fields = vec![
            system("summary", "Summary", "string"),
            system("description", "Description", "string"),
            system("duedate", "Due date", "date"),
            system("labels", "Labels", "array"),
            system("priority", "Priority", "priority"),
            system("components", "Components", "array"),
            json!({
                "id": team.id, "key": team.id, "name": "Team", "custom": true, "orderable": true,
                "navigable": true, "searchable": true,
                "clauseNames": [format!("cf[{number}]"), "Team"], "schema": schema,
            }),
        ];
        (200, Some(Value::Array(fields)))
    }

    fn apply_update_verbs(
        &self,
        record: &mut IssueRecord,
        update: &Map<String, Value>,
    ) -> Result<(), Answer> {
        for (name, operations) in update {
            let Some(operations) = operations.as_array() else {
                return Err(error(400, &format!("The update operations of '{name}' must be a list.")));
            };
            for operation in operations {
                let Some(operation) = operation.as_object() else {
                    return Err(error(400, "An update operation must be an object."));
                };
                for (verb, value) in operation {
                    match (name.as_str(), verb.as_str()) {
                        ("labels", "add" | "remove") => {
                            let label = value.as_str().unwrap_or_default();
                            if verb == "add"
                                && let Err(message) = validate_label(label)
                            {
                                return Err(field_errors(vec![("labels".into(), message)]));
                            }
                            let mut labels: Vec<String> = record
                                .fields
                                .get("labels")
                                .and_then(Value::as_array)
                                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                                .unwrap_or_default();
                            labels.retain(|l| l != label);
                            if verb == "add" {
                                labels.push(label.to_owned());
                            }
                            record.fields.insert("labels".into(), json!(labels));
                        }
                        ("comment", "add") => {}
                        (_, "set") => {
                            let stored = self
                                .normalise_field(&record.project, name, value)
                                .map_err(|m| field_errors(vec![(name.clone(), m)]))?;
                            if let Some(stored) = stored {
                                record.fields.insert(name.clone(), stored);
                            }
                        }
                        _ => {
                            return Err(field_errors(vec![(
                                name.clone(),
                                format!("Field '{name}' does not support the operation '{verb}'."),
                            )]));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `PUT /rest/api/3/issue/{key}`. As in JIRA Cloud, an edit cannot change the project:
    /// that takes a move (`POST /rest/api/3/bulk/issues/move`).
    pub fn edit_issue(&mut self, id_or_key: &str, body: &Value, return_issue: bool, author: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        if let Some(denied) = self.denied(&self.project_of(id), Permission::EditIssues) {
            return denied;
        }
        let mut record = self.issues[&id].clone();
        let empty = Map::new();
        let fields = body.get("fields").and_then(Value::as_object).unwrap_or(&empty);
        let mut errors = Vec::new();
        let target_project = record.project.clone();
        for (name, value) in fields {
            if name == "project" {
                errors.push((
                    name.clone(),
                    "Field 'project' cannot be set. It is not on the appropriate screen, or unknown.".into(),
                ));
                continue;
            }
            match self.normalise_field(&target_project, name, value) {
                Ok(Some(v)) => {
                    record.fields.insert(name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => errors.push((name.clone(), message)),
            }
        }
        if let Some(update) = body.get("update").and_then(Value::as_object) {
            for name in update.keys() {
                if fields.contains_key(name) {
                    errors.push((name.clone(), "Field cannot be set in both 'fields' and 'update'.".into()));
                }
            }
            if errors.is_empty()
                && let Err(answer) = self.apply_update_verbs(&mut record, update)
            {
                return answer;
            }
        }
        if !errors.is_empty() {
            return field_errors(errors);
        }
        if let Some(list) = body.get("properties") {
            match parse_properties(list) {
                Ok(p) => record.properties.extend(p),
                Err(message) => return error(400, &message),
            }
        }
        let now = self.now();
        record.updated = now;
        snapshot(&mut record, now);
        self.issues.insert(id, record);
        let comments: Vec<Value> = body
            .pointer("/update/comment")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter_map(|op| op.pointer("/add/body").cloned()).collect())
            .unwrap_or_default();
        for comment in comments {
            self.add_comment(&id.to_string(), &json!({ "body": comment }), author);
        }
        if return_issue { (200, Some(self.issue_json(id, &FieldSelection::All, &[]))) } else { (204, None) }
    }

    /// `POST /rest/api/3/bulk/issues/move`: moves issues to the project (and issue type) each
    /// mapping key names, `<project>,<issueTypeId>[,<parent>]`; they get new keys and their old
    /// keys keep resolving. The task completes at once; its progress is at
    /// `GET /rest/api/3/bulk/queue/{taskId}`.
    pub fn bulk_move(&mut self, body: &Value, author: &str) -> Answer {
        let Some(mappings) = body.get("targetToSourcesMapping").and_then(Value::as_object) else {
            return error(400, "targetToSourcesMapping is required.");
        };
        let mut moves: Vec<(u64, String, String)> = Vec::new();
        for (target, mapping) in mappings {
            let mut parts = target.split(',');
            let (Some(project), Some(type_id)) = (parts.next(), parts.next()) else {
                return error(
                    400,
                    &format!("Invalid target \"{target}\": expected <project>,<issueTypeId>."),
                );
            };
            let project_key = match self.project_ref(Some(&json!({ "key": project }))) {
                Ok(key) => key,
                Err(answer) => return answer,
            };
            let project_config = self.project(&project_key).expect("a known project");
            let Some(type_name) = project_config
                .issue_types
                .iter()
                .enumerate()
                .find(|(i, _)| issue_type_id(*i) == type_id)
                .map(|(_, name)| name.clone())
            else {
                return error(
                    400,
                    &format!("The issue type {type_id} is not valid in project {project_key}."),
                );
            };
            let sources =
                mapping.get("issueIdsOrKeys").and_then(Value::as_array).cloned().unwrap_or_default();
            for source in sources {
                let Some(id) = source.as_str().and_then(|key| self.find(key)) else {
                    return error(
                        400,
                        &format!("Issue {source} does not exist or you do not have permission to see it."),
                    );
                };
                moves.push((id, project_key.clone(), type_name.clone()));
            }
        }
        let now = self.now();
        let mut processed = Vec::new();
        let mut failed = Map::new();
        for (id, project, type_name) in moves {
            if let Some(reason) = self.move_refusals.get(&project) {
                failed.insert(id.to_string(), json!([reason]));
                continue;
            }
            let mut record = self.issues[&id].clone();
            if record.project != project {
                let counter = self.counters.entry(project.clone()).or_insert(0);
                *counter += 1;
                record.previous_keys.push(record.key.clone());
                record.key = format!("{project}-{counter}");
                record.project = project.clone();
            }
            let index =
                self.project(&project).and_then(|p| p.issue_types.iter().position(|n| *n == type_name));
            if let Some(index) = index {
                record.fields.insert(
                    "issuetype".into(),
                    json!({ "id": issue_type_id(index), "name": type_name, "subtask": false }),
                );
            }
            record.updated = now;
            snapshot(&mut record, now);
            self.issues.insert(id, record);
            processed.push(json!(id));
        }
        self.next_other_id += 1;
        let task_id = self.next_other_id;
        let at = json!(jira_time(now));
        self.tasks.insert(
            task_id,
            json!({
                "taskId": task_id.to_string(),
                "status": "COMPLETE",
                "progressPercent": 100,
                "processedAccessibleIssues": processed,
                "totalIssueCount": processed.len() + failed.len(),
                "failedAccessibleIssues": failed,
                "invalidOrInaccessibleIssueCount": 0,
                "created": at,
                "started": at,
                "updated": at,
                "submittedBy": user_json(&self.base_url, author),
            }),
        );
        (201, Some(json!({ "taskId": task_id.to_string() })))
    }

    /// `GET /rest/api/3/bulk/queue/{taskId}`.
    pub fn bulk_task(&self, task_id: &str) -> Answer {
        match task_id.parse::<u64>().ok().and_then(|id| self.tasks.get(&id)) {
            Some(task) => (200, Some(task.clone())),
            None => error(404, "The task was not found."),
        }
    }

    // ----- read -----

    /// `GET /rest/api/3/issue/{key}`; `expand=transitions` adds the transitions available now.
    pub fn get_issue(
        &self,
        id_or_key: &str,
        fields: &FieldSelection,
        properties: &[String],
        expand: &[String],
    ) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        let mut issue = self.issue_json(id, fields, properties);
        if expand.iter().any(|e| e == "transitions") {
            issue["transitions"] = Value::Array(self.transitions_json(id));
        }
        (200, Some(issue))
    }

    /// Every field of an issue as JIRA shows it.
    pub fn all_fields(&self, id: u64) -> Map<String, Value> {
        let record = &self.issues[&id];
        let project = self.project(&record.project).expect("a known project");
        let mut fields = record.fields.clone();
        fields.insert("project".into(), self.project_json(project));
        fields.insert("status".into(), record.status.json(&self.base_url));
        fields.insert("created".into(), json!(jira_time(record.created)));
        fields.insert("updated".into(), json!(jira_time(record.updated)));
        fields.insert(
            "resolutiondate".into(),
            record.resolved.map(jira_time).map_or(Value::Null, Value::String),
        );
        fields.insert(
            "resolution".into(),
            if record.resolved.is_some() { json!({ "id": "10000", "name": "Done" }) } else { Value::Null },
        );
        fields.insert("issuelinks".into(), Value::Array(self.issue_links_json(id)));
        for name in ["duedate", "labels", "components", "priority", "description"] {
            fields.entry(name).or_insert(if name == "labels" || name == "components" {
                json!([])
            } else {
                Value::Null
            });
        }
        fields
    }

    /// The `issuelinks` field: per link, the other issue as `outwardIssue` when this one reads
    /// the outward phrase, else as `inwardIssue`, with its status.
    fn issue_links_json(&self, id: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for link in &self.links {
            let (side, other) = if link.outward == id {
                ("outwardIssue", link.inward)
            } else if link.inward == id {
                ("inwardIssue", link.outward)
            } else {
                continue;
            };
            let Some(other_record) = self.issues.get(&other) else { continue };
            let link_id = self.link_ids.get(link).copied().unwrap_or_default();
            let mut entry = json!({
                "id": link_id.to_string(),
                "self": format!("{}/rest/api/3/issueLink/{link_id}", self.base_url),
                "type": link_type_json(&link.link_type, &self.base_url),
            });
            entry[side] = json!({
                "id": other.to_string(),
                "key": other_record.key,
                "self": format!("{}/rest/api/3/issue/{other}", self.base_url),
                "fields": { "status": other_record.status.json(&self.base_url) },
            });
            out.push(entry);
        }
        out
    }

    fn issue_json(&self, id: u64, selection: &FieldSelection, properties: &[String]) -> Value {
        let record = &self.issues[&id];
        let fields: Map<String, Value> =
            self.all_fields(id).into_iter().filter(|(name, _)| selection.includes(name)).collect();
        let mut issue = json!({
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": id.to_string(),
            "key": record.key,
            "self": format!("{}/rest/api/3/issue/{id}", self.base_url),
            "fields": fields,
        });
        let wanted: Map<String, Value> = properties
            .iter()
            .filter_map(|p| record.properties.get(p).map(|v| (p.clone(), v.clone())))
            .collect();
        if !wanted.is_empty() {
            issue["properties"] = Value::Object(wanted);
        }
        issue
    }

    // ----- comments, transitions, links, properties -----

    /// `POST /rest/api/3/issue/{key}/comment`.
    pub fn add_comment(&mut self, id_or_key: &str, body: &Value, author: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        if let Some(denied) = self.denied(&self.project_of(id), Permission::AddComments) {
            return denied;
        }
        let Some(adf) = body.get("body").filter(|b| b.get("type").and_then(Value::as_str) == Some("doc"))
        else {
            return field_errors(vec![(
                "comment".into(),
                "Comment body can not be empty! It must be an Atlassian Document.".into(),
            )]);
        };
        let comment_id = self.other_id();
        let now = self.now();
        let record = self.issues.get_mut(&id).expect("found");
        if record.comments.len() >= 5_000 {
            return error(413, "The issue has reached the limit of 5000 comments.");
        }
        let comment = Comment { id: comment_id, body: adf.clone(), author: author.to_owned(), created: now };
        record.comments.push(comment.clone());
        record.updated = now;
        (201, Some(self.comment_json(id, &comment)))
    }

    fn comment_json(&self, issue_id: u64, comment: &Comment) -> Value {
        json!({
            "self": format!("{}/rest/api/3/issue/{issue_id}/comment/{}", self.base_url, comment.id),
            "id": comment.id.to_string(),
            "author": user_json(&self.base_url, &comment.author),
            "body": comment.body,
            "created": jira_time(comment.created),
            "updated": jira_time(comment.created),
            "jsdPublic": true,
        })
    }

    /// `GET /rest/api/3/issue/{key}/comment`.
    pub fn comments(&self, id_or_key: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        let comments: Vec<Value> =
            self.issues[&id].comments.iter().map(|c| self.comment_json(id, c)).collect();
        let total = comments.len();
        (200, Some(json!({ "startAt": 0, "maxResults": 5000, "total": total, "comments": comments })))
    }

    /// The transitions available to an issue now, in its workflow's order, as JIRA lists them.
    fn transitions_json(&self, id: u64) -> Vec<Value> {
        let record = &self.issues[&id];
        let project = self.project(&record.project).expect("a known project");
        project
            .workflow
            .available(record.status.name())
            .into_iter()
            .map(|(transition, to)| {
                json!({
                    "id": transition.id, "name": transition.name, "to": to.json(&self.base_url),
                    "hasScreen": false, "isGlobal": transition.from.is_empty(), "isInitial": false,
                    "isAvailable": true, "isConditional": false, "isLooped": false,
                })
            })
            .collect()
    }

    /// `GET /rest/api/3/issue/{key}/transitions`.
    pub fn transitions(&self, id_or_key: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        (200, Some(json!({ "transitions": self.transitions_json(id) })))
    }

    /// `POST /rest/api/3/issue/{key}/transitions`.
    pub fn do_transition(&mut self, id_or_key: &str, body: &Value, author: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        let Some(transition_id) = body.pointer("/transition/id").and_then(Value::as_str) else {
            return error(400, "Missing 'transition' identifier");
        };
        let project = self.project_of(id);
        if let Some(denied) = self.denied(&project, Permission::TransitionIssues) {
            return denied;
        }
        let workflow = &self.project(&project).expect("a known project").workflow;
        let current = self.issues[&id].status.name().to_owned();
        let Some(to) = workflow
            .available(&current)
            .into_iter()
            .find(|(t, _)| t.id == transition_id)
            .map(|(_, to)| to.clone())
        else {
            return error(400, &format!("Transition id '{transition_id}' is not valid for this issue."));
        };
        if let Some(comments) = body.pointer("/update/comment").and_then(Value::as_array) {
            for comment in comments {
                if let Some(adf) = comment.pointer("/add/body") {
                    let answer = self.add_comment(id_or_key, &json!({ "body": adf }), author);
                    if answer.0 != 201 {
                        return answer;
                    }
                }
            }
        }
        let now = self.now();
        let record = self.issues.get_mut(&id).expect("found");
        record.resolved = if to.category == Category::Done { Some(now) } else { None };
        record.status = to;
        record.updated = now;
        snapshot(record, now);
        (204, None)
    }

    /// `POST /rest/api/3/issueLink`: idempotent.
    pub fn link_issues(&mut self, body: &Value) -> Answer {
        let type_name = body.pointer("/type/name").and_then(Value::as_str);
        let type_id = body.pointer("/type/id").and_then(Value::as_str);
        let Some((_, name, _, _)) =
            LINK_TYPES.iter().find(|(id, n, _, _)| Some(*n) == type_name || Some(*id) == type_id)
        else {
            return error(
                404,
                &format!("No issue link type with name '{}' found.", type_name.unwrap_or_default()),
            );
        };
        let side = |pointer: &str| {
            let id = body.pointer(&format!("{pointer}/id")).and_then(Value::as_str);
            let key = body.pointer(&format!("{pointer}/key")).and_then(Value::as_str);
            id.or(key).and_then(|k| self.find(k))
        };
        // `inwardIssue` reads the outward phrase (see [`IssueLink`]).
        let (Some(outward), Some(inward)) = (side("/inwardIssue"), side("/outwardIssue")) else {
            return error(404, "Issue does not exist or you do not have permission to see it.");
        };
        for side in [inward, outward] {
            if let Some(denied) = self.denied(&self.project_of(side), Permission::LinkIssues) {
                return denied;
            }
        }
        let link = IssueLink { link_type: (*name).to_owned(), inward, outward };
        if self.links.insert(link.clone()) {
            self.next_other_id += 1;
            let link_id = self.next_other_id;
            self.link_ids.insert(link.clone(), link_id);
            self.webhook_events.push(issuelink_created(&link, link_id, self.config.clock.now()));
        }
        (201, None)
    }

    /// `POST /rest/api/3/issue/{key}/remotelink`: with a `globalId`, an upsert.
    pub fn upsert_remote_link(&mut self, id_or_key: &str, body: &Value) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        if let Some(denied) = self.denied(&self.project_of(id), Permission::LinkIssues) {
            return denied;
        }
        let Some(object) = body.get("object").filter(|o| o.get("title").is_some() && o.get("url").is_some())
        else {
            return field_errors(vec![(
                "object".into(),
                "The remote link needs an object with a title and url.".into(),
            )]);
        };
        let global_id = body.get("globalId").and_then(Value::as_str).map(str::to_owned);
        if global_id.as_ref().is_some_and(|g| g.chars().count() > 255) {
            return field_errors(vec![(
                "globalId".into(),
                "The global ID is longer than 255 characters.".into(),
            )]);
        }
        let relationship = body.get("relationship").and_then(Value::as_str).map(str::to_owned);
        let new_id = self.other_id();
        let base = self.base_url.clone();
        let record = self.issues.get_mut(&id).expect("found");
        let existing = global_id
            .as_ref()
            .and_then(|g| record.remote_links.iter_mut().find(|l| l.global_id.as_ref() == Some(g)));
        let (status, link_id) = match existing {
            Some(link) => {
                link.object = object.clone();
                link.relationship = relationship;
                (200, link.id)
            }
            None => {
                record.remote_links.push(RemoteLink {
                    id: new_id,
                    global_id,
                    object: object.clone(),
                    relationship,
                });
                (201, new_id)
            }
        };
        (
            status,
            Some(
                json!({ "id": link_id, "self": format!("{base}/rest/api/3/issue/{id}/remotelink/{link_id}") }),
            ),
        )
    }

    /// `PUT /rest/api/3/issue/{key}/properties/{property}`.
    pub fn set_property(&mut self, id_or_key: &str, property: &str, value: Option<&Value>) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        if let Some(denied) = self.denied(&self.project_of(id), Permission::EditIssues) {
            return denied;
        }
        let Some(value) = value else { return error(400, "The property value must not be empty.") };
        if property.is_empty() || property.chars().count() > 255 {
            return error(400, "The property key must be between 1 and 255 characters.");
        }
        if value.to_string().chars().count() > 32_768 {
            return error(400, "The property value is longer than 32768 characters.");
        }
        let record = self.issues.get_mut(&id).expect("found");
        let created = record.properties.insert(property.to_owned(), value.clone()).is_none();
        (if created { 201 } else { 200 }, None)
    }

    /// `GET /rest/api/3/issue/{key}/properties/{property}`.
    pub fn get_property(&self, id_or_key: &str, property: &str) -> Answer {
        let Some(id) = self.find(id_or_key) else { return error(404, NOT_FOUND) };
        match self.issues[&id].properties.get(property) {
            Some(value) => (200, Some(json!({ "key": property, "value": value }))),
            None => error(404, &format!("The property '{property}' does not exist.")),
        }
    }

    // ----- search -----

    /// `search/jql` (GET or POST, already decoded into a request).
    pub fn search(&self, request: &SearchRequest) -> Answer {
        let query = match jql::parse(&request.jql) {
            Ok(q) => q,
            Err(message) => return error(400, &message),
        };
        if request.reconcile_issues.len() > 50 {
            return error(400, "The reconcileIssues list can contain at most 50 issue IDs.");
        }
        if request.properties.len() > 5 {
            return error(400, "At most 5 properties can be requested.");
        }
        let now = self.now();
        let indexed_before = now - Duration::from_std(self.config.search_lag).unwrap_or_default();
        let mut hits: Vec<(u64, SearchView)> = Vec::new();
        for record in self.issues.values() {
            let view = if request.reconcile_issues.contains(&record.id) {
                record.history.last().map(|(_, v)| v.clone())
            } else {
                record.history.iter().rev().find(|(at, _)| *at <= indexed_before).map(|(_, v)| v.clone())
            };
            if let Some(view) = view
                && query.clauses.iter().all(|c| matches(c, &view, now, &self.config.team_field.id))
            {
                hits.push((record.id, view));
            }
        }
        hits.sort_by(|(a_id, a), (b_id, b)| {
            for (field, ascending) in &query.order_by {
                let ordering = sort_key(a, *a_id, field).cmp(&sort_key(b, *b_id, field));
                let ordering = if *ascending { ordering } else { ordering.reverse() };
                if ordering != std::cmp::Ordering::Equal {
                    return ordering;
                }
            }
            b_id.cmp(a_id)
        });
        let id_only = request.fields.is_empty() || request.fields.iter().all(|f| f == "id" || f == "key");
        let cap = if id_only { 5_000 } else { 100 };
        let max = request.max_results.unwrap_or(50).clamp(1, cap) as usize;
        let offset = match request.next_page_token.as_deref() {
            None => 0,
            Some(token) => match decode_token(token, &request.jql) {
                Some(offset) => offset,
                None => return error(400, "The provided next page token is invalid or expired."),
            },
        };
        let page: Vec<Value> = hits
            .iter()
            .skip(offset)
            .take(max)
            .map(|(id, _)| self.issue_json(*id, &FieldSelection::parse(&request.fields), &request.properties))
            .collect();
        let end = offset + page.len();
        let mut body = json!({ "issues": page, "isLast": end >= hits.len() });
        if end < hits.len() {
            body["nextPageToken"] = match &request.next_page_token {
                Some(asked) if self.repeat_search_page_tokens => json!(asked),
                _ => json!(encode_token(end, &request.jql)),
            };
        }
        (200, Some(body))
    }
}

/// What a search or get asks for in `fields`.
#[derive(Debug, Clone)]
pub enum FieldSelection {
    All,
    Some { include: Vec<String>, exclude: Vec<String>, all: bool },
}

impl FieldSelection {
    pub fn parse(list: &[String]) -> Self {
        let items: Vec<String> = list
            .iter()
            .flat_map(|f| f.split(','))
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        let all = items.iter().any(|f| f == "*all" || f == "*navigable");
        let exclude = items.iter().filter_map(|f| f.strip_prefix('-').map(str::to_owned)).collect();
        let include = items.into_iter().filter(|f| !f.starts_with('-') && !f.starts_with('*')).collect();
        FieldSelection::Some { include, exclude, all }
    }

    fn includes(&self, name: &str) -> bool {
        match self {
            FieldSelection::All => true,
            FieldSelection::Some { include, exclude, all } => {
                !exclude.iter().any(|e| e == name) && (*all || include.iter().any(|i| i == name))
            }
        }
    }
}

/// A decoded `search/jql` request.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub jql: String,
    pub next_page_token: Option<String>,
    pub max_results: Option<u32>,
    pub fields: Vec<String>,
    pub properties: Vec<String>,
    pub reconcile_issues: Vec<u64>,
}

fn encode_token(offset: usize, jql: &str) -> String {
    let text = format!("{offset}:{}", jql.len());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_token(token: &str, jql: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (offset, length) = text.split_once(':')?;
    (length.parse::<usize>().ok()? == jql.len()).then_some(())?;
    offset.parse().ok()
}

fn snapshot(record: &mut IssueRecord, at: DateTime<Utc>) {
    let view = SearchView {
        key: record.key.clone(),
        project: record.project.clone(),
        status: record.status.clone(),
        fields: record.fields.clone(),
        created: record.created,
        updated: record.updated,
        resolved: record.resolved,
    };
    record.history.push((at, view));
    if record.history.len() > 64 {
        record.history.remove(0);
    }
}

fn validate_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("A label must not be empty.".into());
    }
    if label.chars().any(char::is_whitespace) {
        return Err(format!("The label '{label}' contains spaces which is invalid."));
    }
    if label.chars().count() > 255 {
        return Err(format!("The label '{label}' is longer than 255 characters."));
    }
    Ok(())
}

fn parse_properties(list: &Value) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for property in list.as_array().ok_or("The properties must be a list.")? {
        let key = property.get("key").and_then(Value::as_str).ok_or("A property needs a key.")?;
        let value = property.get("value").ok_or("A property needs a value.")?;
        if value.to_string().chars().count() > 32_768 {
            return Err(format!("The value of property '{key}' is longer than 32768 characters."));
        }
        out.insert(key.to_owned(), value.clone());
    }
    Ok(out)
}

pub(crate) fn issue_type_id(index: usize) -> String {
    format!("{}", 10_001 + index)
}

pub fn jira_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

pub fn user_json(base: &str, email: &str) -> Value {
    let account_id = format!("5b10a2844c20165700ede{:03}", email.len());
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={account_id}"),
        "accountId": account_id,
        "displayName": email.split('@').next().unwrap_or(email),
        "active": true,
        "accountType": "atlassian",
        "timeZone": "UTC",
    })
}

/// The team a stored team field value names, whatever the field's kind.
pub fn team_name(value: &Value) -> Option<String> {
    let one = |v: &Value| {
        ["value", "name", "displayName"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
    };
    match value {
        Value::Array(items) => items.first().and_then(one),
        other => one(other),
    }
}

/// The text values of a field for matching.
fn values_of(view: &SearchView, field: &str, team_field: &str) -> Vec<String> {
    let text = |name: &str| view.fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let named = |name: &str| {
        view.fields.get(name).and_then(|v| v.get("name")).and_then(Value::as_str).map(str::to_owned)
    };
    match field {
        "project" => vec![view.project.clone()],
        "key" => vec![view.key.clone()],
        "labels" => view
            .fields
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        "status" => vec![view.status.name().to_owned()],
        "statusCategory" => vec![view.status.category_name().to_owned(), view.status.category().to_owned()],
        "resolution" => vec![if view.resolved.is_some() { "Done".into() } else { "Unresolved".into() }],
        "issuetype" | "priority" => named(field).into_iter().collect(),
        "component" => view
            .fields
            .get("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        "summary" | "duedate" => text(field).into_iter().collect(),
        "created" => vec![view.created.to_rfc3339()],
        "updated" => vec![view.updated.to_rfc3339()],
        "resolutiondate" => view.resolved.map(|r| r.to_rfc3339()).into_iter().collect(),
        other if other == team_field => view.fields.get(other).and_then(team_name).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn matches(clause: &Clause, view: &SearchView, now: DateTime<Utc>, team_field: &str) -> bool {
    let values = values_of(view, &clause.field, team_field);
    let wanted: Vec<String> = clause
        .values
        .iter()
        .filter_map(|v| match v {
            jql::Value::Text(t) => Some(t.clone()),
            jql::Value::Empty => None,
        })
        .collect();
    let wants_empty = clause.values.contains(&jql::Value::Empty);
    let equal = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let is_time = matches!(clause.field.as_str(), "duedate" | "created" | "updated" | "resolutiondate");
    match clause.op {
        Op::IsEmpty => values.is_empty(),
        Op::IsNotEmpty => !values.is_empty(),
        Op::Eq if wants_empty => values.is_empty(),
        Op::Ne if wants_empty => !values.is_empty(),
        Op::Eq | Op::In if !is_time => values.iter().any(|v| wanted.iter().any(|w| equal(v, w))),
        Op::Ne | Op::NotIn if !is_time => !values.iter().any(|v| wanted.iter().any(|w| equal(v, w))),
        Op::Contains => {
            let needle = wanted.first().map(|w| w.to_lowercase()).unwrap_or_default();
            values.iter().any(|v| v.to_lowercase().contains(&needle))
        }
        _ if is_time => {
            let Some(value) = values.first().and_then(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
                    .or_else(|| jql::instant(v, now))
            }) else {
                return false;
            };
            let Some(bound) = wanted.first().and_then(|w| jql::instant(w, now)) else { return false };
            match clause.op {
                Op::Eq | Op::In => value == bound,
                Op::Ne | Op::NotIn => value != bound,
                Op::Lt => value < bound,
                Op::Le => value <= bound,
                Op::Gt => value > bound,
                Op::Ge => value >= bound,
                _ => false,
            }
        }
        _ => false,
    }
}

fn sort_key(view: &SearchView, id: u64, field: &str) -> (String, u64) {
    let text = match field {
        "created" => view.created.to_rfc3339(),
        "updated" => view.updated.to_rfc3339(),
        "duedate" => view.fields.get("duedate").and_then(Value::as_str).unwrap_or("9999").to_owned(),
        "key" => format!("{}-{:010}", view.project, id),
        "summary" => view.fields.get("summary").and_then(Value::as_str).unwrap_or_default().to_owned(),
        "resolutiondate" => view.resolved.map(|r| r.to_rfc3339()).unwrap_or_default(),
        _ => String::new(),
    };
    (text, id)
}

/// A link type as JIRA shows it (`IssueLinkType`).
fn link_type_json(name: &str, base_url: &str) -> Value {
    let (id, name, inward, outward) =
        LINK_TYPES.iter().find(|(_, n, _, _)| *n == name).copied().unwrap_or(("0", name, name, name));
    json!({
        "id": id, "name": name, "inward": inward, "outward": outward,
        "self": format!("{base_url}/rest/api/3/issueLinkType/{id}"),
    })
}

/// The body of JIRA Cloud's `issuelink_created` webhook: `issueLink` with the source (the issue
/// reading the outward phrase) and destination ids as numbers and the link type with its
/// `inwardName`/`outwardName`, as documented in
/// <https://developer.atlassian.com/cloud/jira/platform/webhooks/> (issue link events).
pub fn issuelink_created(link: &IssueLink, link_id: u64, at: DateTime<Utc>) -> Value {
    let (type_id, name, inward, outward) = LINK_TYPES
        .iter()
        .find(|(_, n, _, _)| *n == link.link_type)
        .copied()
        .unwrap_or(("0", link.link_type.as_str(), "", ""));
    json!({
        "timestamp": at.timestamp_millis(),
        "webhookEvent": "issuelink_created",
        "issueLink": {
            "id": link_id,
            "sourceIssueId": link.outward,
            "destinationIssueId": link.inward,
            "issueLinkType": {
                "id": type_id.parse::<u64>().unwrap_or_default(),
                "name": name,
                "inwardName": inward,
                "outwardName": outward,
                "isSubTaskLinkType": false,
                "isSystemLinkType": false,
            },
            "systemLink": false,
        },
    })
}
