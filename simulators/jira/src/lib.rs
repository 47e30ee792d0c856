//! A local JIRA Cloud REST v3, checked against the official OpenAPI spec, for tests and the demo.
//!
//! [`JiraSim::start`] serves, on 127.0.0.1 and a free port, the endpoints infra-tickets calls,
//! with JIRA's status codes, shapes and error bodies (`{"errorMessages": [], "errors": {}}`):
//!
//! | operation | endpoint |
//! |---|---|
//! | create, get, edit (a `project` in an edit moves the issue) | `POST /rest/api/3/issue`, `GET`/`PUT /rest/api/3/issue/{key}` |
//! | comments | `GET`/`POST /rest/api/3/issue/{key}/comment` |
//! | each project's workflow (`expand=transitions` on a get too) | `GET`/`POST /rest/api/3/issue/{key}/transitions` |
//! | fields with their schema | `GET /rest/api/3/field` |
//! | issue links (idempotent) | `POST /rest/api/3/issueLink` |
//! | move to another project (a task that can report failed issues) | `POST /rest/api/3/bulk/issues/move`, `GET /rest/api/3/bulk/queue/{taskId}` |
//! | remote links (`globalId` upsert) | `POST /rest/api/3/issue/{key}/remotelink` |
//! | issue properties | `GET`/`PUT /rest/api/3/issue/{key}/properties/{property}` |
//! | search with `nextPageToken`, `fields`, `properties`, `reconcileIssues`, index lag | `GET`/`POST /rest/api/3/search/jql` |
//! | the removed legacy search: **410** | `/rest/api/{2,3,latest}/search` |
//! | current user | `GET /rest/api/3/myself` |
//! | doctor's reads ([`preflight`]): permissions, priorities, a project, create screens, workflows | `GET /rest/api/3/mypermissions`, `GET /rest/api/3/priority/search`, `GET /rest/api/3/project/{key}`, `GET /rest/api/3/issue/createmeta/{project}/issuetypes[/{id}]`, `POST /rest/api/3/workflows` |
//! | people by name or e-mail (the user-picker team field's people, the site's accounts) | `GET /rest/api/3/user/search` |
//! | the organisation's teams ([`ORG_ID`]; a Team field's teams) | `GET /gateway/api/public/teams/v1/org/{orgId}/teams` |
//! | issue links on the issue | `fields=issuelinks` on a get or a search |
//!
//! A new issue link is announced to the webhook a test sets ([`JiraSim::set_webhook`]) as JIRA
//! Cloud's admin webhooks do: `POST` of the `issuelink_created` body, signed with the webhook's
//! secret as `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`
//! (<https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks>).
//!
//! Basic auth is checked (401). Projects have their own workflow ([`workflow`]: JIRA Software's or
//! the seed team's, transitions listed in the workflow's order) and permissions (403 per project
//! and operation); the team field is of the kind the test picks (select, multi select, Team, user
//! picker; `GET /rest/api/3/field`). Tests steer it: search-index lag, latency, a storm of 429/5xx
//! on every Nth call, one-shot faults, 401/403, HTML error pages, requests that never answer,
//! refused connections, fields removed from a project's screens; and read it:
//! [`JiraSim::issues`], [`JiraSim::calls`] (every request and response, for counting and for the
//! [`contract`] check against the official spec). For people: `GET /_sim/issues` (JSON) and
//! `GET /_sim/board` (HTML).
//!
//! Time comes from a [`service_kit::Clock`], so a test can move the index lag forward instead of
//! sleeping.

pub mod contract;
pub mod jql;
pub mod model;
pub mod preflight;
pub mod workflow;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use model::{FieldSelection, SearchRequest, Site};
pub use workflow::Workflow;

/// A project of the simulated site.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    pub key: String,
    pub id: String,
    pub name: String,
    pub issue_types: Vec<String>,
    pub components: Vec<String>,
    /// Fields on the create/edit screens; `None`: every known field.
    pub screen_fields: Option<BTreeSet<String>>,
    /// The project's workflow (JIRA Software's by default).
    pub workflow: Workflow,
    /// Permissions the bot lacks in this project (its permission scheme): JIRA answers 403.
    pub denied: BTreeSet<Permission>,
}

/// A project permission JIRA checks per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    CreateIssues,
    EditIssues,
    TransitionIssues,
    AddComments,
    LinkIssues,
}

impl Permission {
    /// JIRA's refusal (our wording of the messages JIRA Cloud answers in `errorMessages`).
    pub fn refusal(self) -> &'static str {
        match self {
            Permission::CreateIssues => "You do not have permission to create issues in this project.",
            Permission::EditIssues => "You do not have permission to edit issues in this project.",
            Permission::TransitionIssues => "You do not have permission to transition this issue.",
            Permission::AddComments => "You do not have permission to comment on this issue.",
            Permission::LinkIssues => "You do not have permission to link issues in this project.",
        }
    }
}

impl ProjectConfig {
    pub fn new(key: &str, id: &str, components: &[&str]) -> Self {
        ProjectConfig {
            key: key.into(),
            id: id.into(),
            name: format!("{key} project"),
            issue_types: vec!["Task".into(), "Bug".into()],
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            screen_fields: None,
            workflow: Workflow::jira_software(),
            denied: BTreeSet::new(),
        }
    }

    /// The same project with another workflow.
    pub fn with_workflow(mut self, workflow: Workflow) -> Self {
        self.workflow = workflow;
        self
    }
}

/// The team custom field, of one of the types sites use.
#[derive(Debug, Clone)]
pub struct TeamFieldConfig {
    pub id: String,
    /// Option values (select kinds) or the names of the teams or people (the other kinds).
    pub options: Vec<String>,
    pub kind: TeamFieldKind,
}

/// How a site defines its team field (`schema.custom` in `GET /rest/api/3/field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamFieldKind {
    /// A single select: written `{"value": "Payments"}`.
    SingleSelect,
    /// A multi select: written `[{"value": "Payments"}]`.
    MultiSelect,
    /// JIRA's Team field (Atlassian teams): written as the team's id, read back as an object
    /// with `id` and `name`.
    Team,
    /// A user picker (the team's lead): written `{"accountId": "..."}`.
    UserPicker,
}

impl TeamFieldKind {
    /// `schema.custom` of the field.
    pub fn custom_type(self) -> &'static str {
        match self {
            TeamFieldKind::SingleSelect => "com.atlassian.jira.plugin.system.customfieldtypes:select",
            TeamFieldKind::MultiSelect => "com.atlassian.jira.plugin.system.customfieldtypes:multiselect",
            TeamFieldKind::Team => "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team",
            TeamFieldKind::UserPicker => "com.atlassian.jira.plugin.system.customfieldtypes:userpicker",
        }
    }

    /// `schema.type` of the field.
    pub fn schema_type(self) -> &'static str {
        match self {
            TeamFieldKind::SingleSelect => "option",
            TeamFieldKind::MultiSelect => "array",
            TeamFieldKind::Team => "team",
            TeamFieldKind::UserPicker => "user",
        }
    }
}

impl TeamFieldConfig {
    /// The id of team `index` (Team field: a UUID-shaped id; user picker: an account id).
    pub fn id_of(&self, index: usize) -> String {
        match self.kind {
            TeamFieldKind::Team => format!("5f1c2d3e-0000-4000-8000-{:012}", index + 1),
            TeamFieldKind::UserPicker => format!("712020:0000-{:04}", index + 1),
            _ => format!("{}", 30_000 + index),
        }
    }

    /// The id the field is written with for `name` (Team field, user picker), if there is one.
    pub fn id_for(&self, name: &str) -> Option<String> {
        self.options.iter().position(|o| o == name).map(|i| self.id_of(i))
    }
}

/// How the simulated site is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Accepted Basic credentials: (e-mail, API token).
    pub users: Vec<(String, String)>,
    pub projects: Vec<ProjectConfig>,
    pub team_field: TeamFieldConfig,
    pub clock: Clock,
    /// Changes younger than this are not yet visible to `search/jql` (unless reconciled).
    pub search_lag: Duration,
    /// Added to every API answer.
    pub latency: Duration,
}

/// The bot's credentials in [`SimConfig::default`].
pub const BOT_EMAIL: &str = "infra-tickets@example.com";
pub const BOT_TOKEN: &str = "bot-api-token";
/// A person's credentials in [`SimConfig::default`], for human edits through the same API.
pub const HUMAN_EMAIL: &str = "sre.person@example.com";
pub const HUMAN_TOKEN: &str = "human-api-token";
/// The team field id in [`SimConfig::default`].
pub const TEAM_FIELD: &str = "customfield_10050";
/// The site's Atlassian organisation (the Teams API's `orgId`).
pub const ORG_ID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-000000000042";

/// The e-mail address of a person of a user-picker team field: `Payments Lead` →
/// `payments.lead@example.com`.
pub fn person_email(name: &str) -> String {
    let local: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
    format!("{}@example.com", local.join("."))
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            users: vec![(BOT_EMAIL.into(), BOT_TOKEN.into()), (HUMAN_EMAIL.into(), HUMAN_TOKEN.into())],
            projects: vec![
                ProjectConfig::new("PLAT", "10001", &["platform", "fleet", "maintenance"]),
                ProjectConfig::new("PAY", "10002", &["payments", "checkout"]),
                ProjectConfig::new("DATA", "10003", &["data", "pipelines"]),
            ],
            team_field: TeamFieldConfig {
                id: TEAM_FIELD.into(),
                options: ["Platform", "Payments", "Data", "Fleet"].iter().map(|s| (*s).to_owned()).collect(),
                kind: TeamFieldKind::SingleSelect,
            },
            clock: Clock::system(),
            search_lag: Duration::ZERO,
            latency: Duration::ZERO,
        }
    }
}

/// A fault the simulator answers with instead of doing the work (nothing is changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` seconds.
    RateLimited { retry_after_secs: u64 },
    /// 500.
    ServerError,
    /// 502.
    BadGateway,
    /// 503 with `Retry-After` seconds.
    Unavailable { retry_after_secs: u64 },
    /// 401: the token was revoked.
    Unauthorized,
    /// 403: the account lacks a permission.
    Forbidden,
    /// The request is carried out, then answered with 500 as if the server failed on the way
    /// back (a gateway timeout after the work): the client cannot tell whether it happened.
    ServerErrorAfterWork,
    /// 400 answered by the edge in front of JIRA as a multi-line HTML page, not JSON (a WAF rule
    /// or a proxy refusing the request before JIRA sees it; reported in
    /// <https://community.atlassian.com/forums/Jira-questions/Intermittent-HTTP-400-Bad-Request-from-Jira-REST-API-rest-api-3/qaq-p/3240036>).
    HtmlBadRequest,
    /// No answer within an hour: the client's timeout ends the request.
    Hang,
}

/// The HTML page of [`Fault::HtmlBadRequest`]: our own text in the shape of a servlet
/// container's error page (doctype, title, inline style, heading), over several lines.
pub const HTML_BAD_REQUEST: &str = "<!doctype html>\r\n<html lang=\"en\">\r\n<head>\r\n\t<title>HTTP Status 400 – Bad Request</title>\r\n\t<style type=\"text/css\">body {font-family:sans-serif;}</style>\r\n</head>\r\n<body>\r\n\t<h1>HTTP Status 400 – Bad Request</h1>\r\n</body>\r\n</html>\r\n";

/// Every request the simulator answered.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub request_body: Option<Value>,
    pub status: u16,
    pub response_body: Option<Value>,
    /// Answered with an injected fault.
    pub faulted: bool,
    pub user: Option<String>,
}

#[derive(Default)]
struct Faults {
    storm: Option<(u64, Vec<Fault>)>,
    one_shot: VecDeque<Fault>,
    persistent: Option<Fault>,
    counter: u64,
    storm_index: usize,
}

/// Where new issue links are announced.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// Signs each body (`X-Hub-Signature`); `None`: unsigned.
    pub secret: Option<String>,
}

/// One webhook delivery: the body sent and the status answered (0: no answer).
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub body: Value,
    pub status: u16,
}

struct Shared {
    site: Mutex<Site>,
    webhook: Mutex<Option<Webhook>>,
    deliveries: Mutex<Vec<WebhookDelivery>>,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<CallRecord>>,
    search_lag: Mutex<Duration>,
    latency: Mutex<Duration>,
}

/// A running simulator. Stops when dropped.
pub struct JiraSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    shutdown: CancellationToken,
    /// Stops the current listener (connections are refused until [`JiraSim::resume_listening`]).
    serving: Mutex<CancellationToken>,
}

/// An issue as a test or a person sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SimIssue {
    pub id: String,
    pub key: String,
    pub project: String,
    pub status: String,
    pub status_category: String,
    pub summary: String,
    pub issue_type: Option<String>,
    pub priority: Option<String>,
    pub due_date: Option<String>,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub team: Option<String>,
    pub description: Option<Value>,
    pub properties: serde_json::Map<String, Value>,
    /// `(globalId, title, url)` of every remote link.
    pub remote_links: Vec<(Option<String>, String, String)>,
    /// `(author e-mail, body text)` of every comment.
    pub comments: Vec<(String, String)>,
    /// `(link type, other issue key, direction)`: direction `outward` when this issue is the
    /// outward side (e.g. "duplicates" the other).
    pub links: Vec<(String, String, String)>,
    pub created: String,
    pub resolved: Option<String>,
}

impl JiraSim {
    /// Starts the simulator on 127.0.0.1 and a free port.
    pub async fn start(config: SimConfig) -> std::io::Result<JiraSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts the simulator on `listen` (the `simulators` command and compose use fixed ports).
    pub async fn start_on(listen: SocketAddr, config: SimConfig) -> std::io::Result<JiraSim> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let search_lag = config.search_lag;
        let latency = config.latency;
        let mut site = Site::new(config);
        site.base_url = format!("http://{address}");
        let shared = Arc::new(Shared {
            site: Mutex::new(site),
            webhook: Mutex::new(None),
            deliveries: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            calls: Mutex::new(Vec::new()),
            search_lag: Mutex::new(search_lag),
            latency: Mutex::new(latency),
        });
        let shutdown = CancellationToken::new();
        let serving = shutdown.child_token();
        serve(listener, shared.clone(), serving.clone());
        tracing::info!(%address, "JIRA simulator listening.");
        Ok(JiraSim { shared, address, shutdown, serving: Mutex::new(serving) })
    }

    /// Closes the listening socket: connections are refused (a site down at the network level)
    /// until [`JiraSim::resume_listening`]. The site's state is kept.
    pub fn stop_listening(&self) {
        self.serving.lock().expect("serving lock").cancel();
    }

    /// Listens again on the same address, with the same state.
    pub async fn resume_listening(&self) -> std::io::Result<()> {
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                // The old socket may take a moment to close.
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    tracing::debug!(%error, "Address still in use; retrying.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let serving = self.shutdown.child_token();
        serve(listener, self.shared.clone(), serving.clone());
        *self.serving.lock().expect("serving lock") = serving;
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Changes younger than `lag` are invisible to search (unless reconciled).
    pub fn set_search_lag(&self, lag: Duration) {
        *self.shared.search_lag.lock().expect("lag lock") = lag;
        self.shared.site.lock().expect("site lock").config.search_lag = lag;
    }

    /// Every API answer waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().expect("latency lock") = latency;
    }

    /// Every `every`-th API call is answered with the next fault of `faults` (in turn); `None`
    /// ends the storm.
    pub fn set_storm(&self, storm: Option<(u64, Vec<Fault>)>) {
        let mut faults = self.shared.faults.lock().expect("faults lock");
        faults.storm = storm.filter(|(every, list)| *every > 0 && !list.is_empty());
        faults.counter = 0;
    }

    /// The next API call is answered with `fault`.
    pub fn fail_next(&self, fault: Fault) {
        self.shared.faults.lock().expect("faults lock").one_shot.push_back(fault);
    }

    /// Every API call is answered with `fault` until cleared with `None`.
    pub fn set_persistent_fault(&self, fault: Option<Fault>) {
        self.shared.faults.lock().expect("faults lock").persistent = fault;
    }

    /// Takes `permission` away from the bot in `project`: JIRA answers 403 there.
    pub fn deny(&self, project: &str, permission: Permission) {
        let mut site = self.shared.site.lock().expect("site lock");
        if let Some(p) = site.config.projects.iter_mut().find(|p| p.key == project) {
            p.denied.insert(permission);
        }
    }

    /// Gives every project `workflow` (issues keep their status name if the workflow has it).
    pub fn set_workflow(&self, workflow: Workflow) {
        let mut site = self.shared.site.lock().expect("site lock");
        for project in &mut site.config.projects {
            project.workflow = workflow.clone();
        }
    }

    /// Bulk moves into `project` complete without moving anything: the task reports each issue
    /// in `failedAccessibleIssues` with `reason`, as JIRA does for an issue it cannot move
    /// (a required field without a default, a status the target workflow lacks).
    pub fn refuse_moves_into(&self, project: &str, reason: &str) {
        self.shared.site.lock().expect("site lock").move_refusals.insert(project.into(), reason.into());
    }

    /// A fault: from the second page on, search answers with the `nextPageToken` it was asked
    /// with, as a broken paginator would (a client must stop paging, not loop).
    pub fn repeat_search_page_tokens(&self, repeat: bool) {
        self.shared.site.lock().expect("site lock").repeat_search_page_tokens = repeat;
    }

    /// Removes a priority from the site: not listed, refused in creates.
    pub fn remove_priority(&self, name: &str) {
        self.shared.site.lock().expect("site lock").removed_priorities.insert(name.into());
    }

    /// Makes `field` required on `project`'s create screen (its field configuration); creates
    /// without it are refused.
    pub fn require_on_create(&self, project: &str, field: &str) {
        self.shared.site.lock().expect("site lock").required_on_create.insert((project.into(), field.into()));
    }

    /// Gives `project` `workflow`.
    pub fn set_project_workflow(&self, project: &str, workflow: Workflow) {
        let mut site = self.shared.site.lock().expect("site lock");
        if let Some(p) = site.config.projects.iter_mut().find(|p| p.key == project) {
            p.workflow = workflow;
        }
    }

    /// Takes `field` off the create and edit screens of `project`.
    pub fn remove_from_screen(&self, project: &str, field: &str) {
        self.shared.site.lock().expect("site lock").off_screen.insert((project.into(), field.into()));
    }

    /// Every request answered so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.lock().expect("calls lock").clone()
    }

    /// How many API requests were answered (faults included).
    pub fn call_count(&self) -> usize {
        self.shared.calls.lock().expect("calls lock").len()
    }

    pub fn clear_calls(&self) {
        self.shared.calls.lock().expect("calls lock").clear();
    }

    /// Announces every issue link created from now on to `webhook` (`None`: to nobody).
    pub fn set_webhook(&self, webhook: Option<Webhook>) {
        *self.shared.webhook.lock().expect("webhook lock") = webhook;
    }

    /// Every webhook delivery so far, in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.deliveries.lock().expect("deliveries lock").clone()
    }

    /// Sends a delivered webhook body again, as JIRA does when it retries: the status answered.
    pub async fn redeliver_webhook(&self, index: usize) -> u16 {
        let body = self.webhook_deliveries()[index].body.clone();
        deliver_webhook(&self.shared, body).await
    }

    /// Every issue with its fields, comments and links, oldest first.
    pub fn issues(&self) -> Vec<SimIssue> {
        let site = self.shared.site.lock().expect("site lock");
        site.issues.keys().map(|id| sim_issue(&site, *id)).collect()
    }

    /// One issue by id or key (old keys of moved issues included).
    pub fn issue(&self, id_or_key: &str) -> Option<SimIssue> {
        let site = self.shared.site.lock().expect("site lock");
        site.find(id_or_key).map(|id| sim_issue(&site, id))
    }
}

/// Serves the API and the board on `listener` until `stop`.
fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let router = Router::new()
        .route("/_sim/issues", axum::routing::get(list_issues))
        .route("/_sim/board", axum::routing::get(board))
        .fallback(api)
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
}

impl Drop for JiraSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn sim_issue(site: &Site, id: u64) -> SimIssue {
    let record = &site.issues[&id];
    let fields = site.all_fields(id);
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let named =
        |name: &str| fields.get(name).and_then(|v| v.get("name")).and_then(Value::as_str).map(str::to_owned);
    let key_of = |other: u64| site.issues.get(&other).map(|i| i.key.clone()).unwrap_or_default();
    let mut links = Vec::new();
    for link in &site.links {
        if link.outward == id {
            links.push((link.link_type.clone(), key_of(link.inward), "outward".to_owned()));
        }
        if link.inward == id {
            links.push((link.link_type.clone(), key_of(link.outward), "inward".to_owned()));
        }
    }
    SimIssue {
        id: id.to_string(),
        key: record.key.clone(),
        project: record.project.clone(),
        status: record.status.name().into(),
        status_category: record.status.category().into(),
        summary: text("summary").unwrap_or_default(),
        issue_type: named("issuetype"),
        priority: named("priority"),
        due_date: text("duedate"),
        labels: fields
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        components: fields
            .get("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        team: fields.get(&site.config.team_field.id).and_then(model::team_name),
        description: fields.get("description").filter(|d| !d.is_null()).cloned(),
        properties: record.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        remote_links: record
            .remote_links
            .iter()
            .map(|l| {
                let get = |k: &str| l.object.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                (l.global_id.clone(), get("title"), get("url"))
            })
            .collect(),
        comments: record.comments.iter().map(|c| (c.author.clone(), adf_text(&c.body))).collect(),
        links,
        created: model::jira_time(record.created),
        resolved: record.resolved.map(model::jira_time),
    }
}

/// The plain text of an ADF document (text nodes joined, blocks on new lines).
pub fn adf_text(node: &Value) -> String {
    let mut out = String::new();
    collect_text(node, &mut out);
    out.trim().to_owned()
}

fn collect_text(node: &Value, out: &mut String) {
    if let Some(text) = node.get("text").and_then(Value::as_str) {
        out.push_str(text);
    }
    if let Some(children) = node.get("content").and_then(Value::as_array) {
        for child in children {
            collect_text(child, out);
        }
        if matches!(node.get("type").and_then(Value::as_str), Some("paragraph" | "heading" | "listItem")) {
            out.push('\n');
        }
    }
}

async fn list_issues(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let site = shared.site.lock().expect("site lock");
    let issues: Vec<SimIssue> = site.issues.keys().map(|id| sim_issue(&site, *id)).collect();
    axum::Json(issues)
}

async fn board(State(shared): State<Arc<Shared>>) -> Html<String> {
    let site = shared.site.lock().expect("site lock");
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>JIRA simulator board</title>\
         <style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:2em}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>",
    );
    for project in &site.config.projects {
        html.push_str(&format!("<h2>{} ({})</h2><table><tr>", escape(&project.name), escape(&project.key)));
        for column in ["Key", "Summary", "Status", "Priority", "Due", "Team", "Labels"] {
            html.push_str(&format!("<th>{column}</th>"));
        }
        html.push_str("</tr>");
        for id in site.issues.keys() {
            let issue = sim_issue(&site, *id);
            if issue.project != project.key {
                continue;
            }
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&issue.key),
                escape(&issue.summary),
                escape(&issue.status),
                escape(issue.priority.as_deref().unwrap_or("")),
                escape(issue.due_date.as_deref().unwrap_or("")),
                escape(issue.team.as_deref().unwrap_or("")),
                escape(&issue.labels.join(" ")),
            ));
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>");
    Html(html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Every `/rest/...` request: auth, faults, latency, the operation, and the call log.
async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *shared.latency.lock().expect("latency lock");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let request_body: Option<Value> = if body.is_empty() { None } else { serde_json::from_slice(&body).ok() };
    let user = authenticated_user(&shared, &headers);
    let fault = next_fault(&shared);
    if let Some(fault @ (Fault::HtmlBadRequest | Fault::Hang)) = fault {
        if fault == Fault::Hang {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
        shared.calls.lock().expect("calls lock").push(CallRecord {
            method: method.to_string(),
            path,
            query,
            request_body,
            status: 400,
            response_body: None,
            faulted: true,
            user,
        });
        let mut response = (StatusCode::BAD_REQUEST, HTML_BAD_REQUEST).into_response();
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/html;charset=UTF-8"));
        return response;
    }
    let (status, response_body, extra_headers) = match (fault, &user) {
        (Some(Fault::ServerErrorAfterWork), Some(user)) => {
            let _ = dispatch(&shared, &method, &path, &query, request_body.as_ref(), user);
            fault_answer(Fault::ServerErrorAfterWork)
        }
        (Some(fault), _) => fault_answer(fault),
        (None, None) => (
            401,
            Some(model::error_body(
                &["You are not authenticated. Authentication required to perform this operation."],
                &[],
            )),
            vec![],
        ),
        (None, Some(user)) if !body.is_empty() && request_body.is_none() => {
            let _ = user;
            (
                400,
                Some(model::error_body(
                    &["Invalid request payload. Refer to the REST API documentation and try again."],
                    &[],
                )),
                vec![],
            )
        }
        (None, Some(user)) => {
            let (status, body) = dispatch(&shared, &method, &path, &query, request_body.as_ref(), user);
            (status, body, vec![])
        }
    };
    let events = std::mem::take(&mut shared.site.lock().expect("site lock").webhook_events);
    if !events.is_empty() {
        // Sent after the answer, as JIRA does (asynchronously, in order).
        let shared = shared.clone();
        tokio::spawn(async move {
            for event in events {
                deliver_webhook(&shared, event).await;
            }
        });
    }
    shared.calls.lock().expect("calls lock").push(CallRecord {
        method: method.to_string(),
        path: path.clone(),
        query,
        request_body,
        status,
        response_body: response_body.clone(),
        faulted: fault.is_some(),
        user,
    });
    let mut response = match response_body {
        Some(body) => {
            (StatusCode::from_u16(status).expect("a valid status"), axum::Json(body)).into_response()
        }
        None => StatusCode::from_u16(status).expect("a valid status").into_response(),
    };
    for (name, value) in extra_headers {
        response.headers_mut().insert(name, HeaderValue::from_str(&value).expect("a valid header"));
    }
    response
}

/// POSTs one webhook body to the configured URL, signed when a secret is set; the status.
async fn deliver_webhook(shared: &Shared, body: Value) -> u16 {
    use hmac::Mac as _;
    let Some(webhook) = shared.webhook.lock().expect("webhook lock").clone() else { return 0 };
    let bytes = serde_json::to_vec(&body).expect("a JSON body");
    let client = reqwest::Client::new();
    let mut request = client
        .post(&webhook.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Atlassian Webhook HTTP Client");
    if let Some(secret) = &webhook.secret {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(&bytes);
        request =
            request.header("X-Hub-Signature", format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
    }
    let status = match request.body(bytes).timeout(Duration::from_secs(30)).send().await {
        Ok(response) => response.status().as_u16(),
        Err(error) => {
            tracing::warn!(%error, "Webhook not delivered.");
            0
        }
    };
    shared.deliveries.lock().expect("deliveries lock").push(WebhookDelivery { body, status });
    status
}

fn authenticated_user(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (email, token) = text.split_once(':')?;
    let site = shared.site.lock().expect("site lock");
    site.config.users.iter().any(|(e, t)| e == email && t == token).then(|| email.to_owned())
}

fn next_fault(shared: &Shared) -> Option<Fault> {
    let mut faults = shared.faults.lock().expect("faults lock");
    if let Some(fault) = faults.persistent {
        return Some(fault);
    }
    if let Some(fault) = faults.one_shot.pop_front() {
        return Some(fault);
    }
    faults.counter += 1;
    let counter = faults.counter;
    let index = faults.storm_index;
    let (every, list) = faults.storm.as_ref()?;
    if !counter.is_multiple_of(*every) {
        return None;
    }
    let fault = list[index % list.len()];
    faults.storm_index += 1;
    Some(fault)
}

type Headers = Vec<(&'static str, String)>;

fn fault_answer(fault: Fault) -> (u16, Option<Value>, Headers) {
    match fault {
        Fault::RateLimited { retry_after_secs } => (
            429,
            Some(model::error_body(&["Rate limit exceeded."], &[])),
            vec![
                ("retry-after", retry_after_secs.to_string()),
                ("x-ratelimit-limit", "100".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("ratelimit-reason", "jira-burst-based".into()),
            ],
        ),
        Fault::ServerError | Fault::ServerErrorAfterWork => {
            (500, Some(model::error_body(&["Internal server error"], &[])), vec![])
        }
        Fault::BadGateway => (502, None, vec![]),
        Fault::Unavailable { retry_after_secs } => (
            503,
            Some(model::error_body(&["Service unavailable; try again later."], &[])),
            vec![("retry-after", retry_after_secs.to_string())],
        ),
        Fault::Unauthorized => (
            401,
            Some(model::error_body(
                &["You are not authenticated. Authentication required to perform this operation."],
                &[],
            )),
            vec![],
        ),
        Fault::HtmlBadRequest | Fault::Hang => (400, None, vec![]),
        Fault::Forbidden => (
            403,
            Some(model::error_body(&["You do not have permission to perform this operation."], &[])),
            vec![],
        ),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url_decode_pairs(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn list_param(query: &str, name: &str) -> Vec<String> {
    url_decode_pairs(query)
        .into_iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(text)) => text.split(',').map(|s| s.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

const REMOVED_SEARCH: &str = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";

fn dispatch(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<&Value>,
    user: &str,
) -> model::Answer {
    let segments: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut site = shared.site.lock().expect("site lock");
    let empty = json!({});
    let body_or_empty = body.unwrap_or(&empty);
    match (method.as_str(), segments.as_slice()) {
        (_, ["rest", "api", "2" | "3" | "latest", "search"])
        | (_, ["rest", "api", "2" | "3" | "latest", "search", "id"]) => model::error(410, REMOVED_SEARCH),
        ("POST", ["rest", "api", "3", "search", "jql"]) => {
            if let Some(object) = body.and_then(Value::as_object) {
                let allowed = [
                    "jql",
                    "nextPageToken",
                    "maxResults",
                    "fields",
                    "expand",
                    "properties",
                    "fieldsByKeys",
                    "reconcileIssues",
                ];
                if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return model::error(
                        400,
                        &format!(
                            "Invalid request payload. Refer to the REST API documentation and try again. Unrecognized field \"{unknown}\"."
                        ),
                    );
                }
            }
            let request = SearchRequest {
                jql: body_or_empty.get("jql").and_then(Value::as_str).unwrap_or_default().to_owned(),
                next_page_token: body_or_empty
                    .get("nextPageToken")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                max_results: body_or_empty.get("maxResults").and_then(Value::as_u64).map(|m| m as u32),
                fields: strings(body_or_empty.get("fields")),
                properties: strings(body_or_empty.get("properties")),
                reconcile_issues: body_or_empty
                    .get("reconcileIssues")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
            };
            site.search(&request)
        }
        ("GET", ["rest", "api", "3", "search", "jql"]) => {
            let request = SearchRequest {
                jql: query_param(query, "jql").unwrap_or_default(),
                next_page_token: query_param(query, "nextPageToken"),
                max_results: query_param(query, "maxResults").and_then(|m| m.parse().ok()),
                fields: list_param(query, "fields"),
                properties: list_param(query, "properties"),
                reconcile_issues: list_param(query, "reconcileIssues")
                    .iter()
                    .filter_map(|i| i.parse().ok())
                    .collect(),
            };
            site.search(&request)
        }
        ("GET", ["rest", "api", "3", "myself"]) => (200, Some(model::user_json(&site.base_url, user))),
        ("GET", ["rest", "api", "3", "field"]) => site.fields(),
        ("GET", ["rest", "api", "3", "user", "search"]) => site.user_search(
            query_param(query, "query").as_deref(),
            query_param(query, "maxResults").and_then(|m| m.parse().ok()),
        ),
        // With or without the trailing slash Atlassian's documentation writes.
        ("GET", ["gateway", "api", "public", "teams", "v1", "org", org, "teams"]) => site.org_teams(
            org,
            query_param(query, "cursor").as_deref(),
            query_param(query, "size").and_then(|m| m.parse().ok()),
        ),
        ("POST", ["rest", "api", "3", "issue"]) => site.create_issue(body_or_empty),
        ("POST", ["rest", "api", "3", "bulk", "issues", "move"]) => site.bulk_move(body_or_empty, user),
        ("GET", ["rest", "api", "3", "bulk", "queue", task]) => site.bulk_task(task),
        ("GET", ["rest", "api", "3", "issue", key]) => {
            let fields = list_param(query, "fields");
            let selection =
                if fields.is_empty() { FieldSelection::All } else { FieldSelection::parse(&fields) };
            site.get_issue(key, &selection, &list_param(query, "properties"), &list_param(query, "expand"))
        }
        ("PUT", ["rest", "api", "3", "issue", key]) => {
            let return_issue = query_param(query, "returnIssue").as_deref() == Some("true");
            site.edit_issue(key, body_or_empty, return_issue, user)
        }
        ("GET", ["rest", "api", "3", "issue", key, "comment"]) => site.comments(key),
        ("POST", ["rest", "api", "3", "issue", key, "comment"]) => site.add_comment(key, body_or_empty, user),
        ("GET", ["rest", "api", "3", "issue", key, "transitions"]) => site.transitions(key),
        ("POST", ["rest", "api", "3", "issue", key, "transitions"]) => {
            site.do_transition(key, body_or_empty, user)
        }
        ("POST", ["rest", "api", "3", "issue", key, "remotelink"]) => {
            site.upsert_remote_link(key, body_or_empty)
        }
        ("PUT", ["rest", "api", "3", "issue", key, "properties", property]) => {
            site.set_property(key, property, body)
        }
        ("GET", ["rest", "api", "3", "issue", key, "properties", property]) => {
            site.get_property(key, property)
        }
        ("POST", ["rest", "api", "3", "issueLink"]) => site.link_issues(body_or_empty),
        ("GET", ["rest", "api", "3", "mypermissions"]) => preflight::my_permissions(
            &site,
            query_param(query, "projectKey").or_else(|| query_param(query, "projectId")).as_deref(),
            query_param(query, "permissions").as_deref(),
        ),
        ("GET", ["rest", "api", "3", "priority", "search"]) => preflight::priority_search(
            &site,
            query_param(query, "startAt").and_then(|m| m.parse().ok()).unwrap_or(0),
            query_param(query, "maxResults").and_then(|m| m.parse().ok()).unwrap_or(50),
        ),
        ("GET", ["rest", "api", "3", "project", project]) => preflight::project(&site, project),
        ("GET", ["rest", "api", "3", "issue", "createmeta", project, "issuetypes"]) => {
            preflight::create_issue_types(&site, project)
        }
        ("GET", ["rest", "api", "3", "issue", "createmeta", project, "issuetypes", type_id]) => {
            preflight::create_fields(&site, project, type_id)
        }
        ("POST", ["rest", "api", "3", "workflows"]) => preflight::read_workflows(&site, body_or_empty),
        _ => model::error(404, "null for uri: the simulator does not serve this resource."),
    }
}
