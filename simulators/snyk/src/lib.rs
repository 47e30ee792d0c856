//! A local Snyk REST API and webhook sender, in Snyk's shapes, for tests and the demo.
//!
//! [`SnykSim::start`] serves on 127.0.0.1 and a free port:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /rest/orgs/{org_id}/projects` | JSON:API pages; `expand=target`, `ids`, `origins`, `types`, `target_id`, `meta.latest_issue_counts` |
//! | `GET /rest/orgs` and `GET /rest/groups/{group_id}/orgs` | JSON:API pages of the orgs the token sees (of one group) |
//! | `GET /v1/org/{org_id}/webhooks` | the org's registered v1 webhooks ([`SnykSim::register_webhook`]) |
//! | `GET /rest/orgs/{org_id}/issues` | JSON:API pages; `scan_item.id`/`scan_item.type`, `type`, `effective_severity_level`, `status`, `ignored`, `created_/updated_after/before` |
//!
//! As Snyk does: `version` is required (400 without it; 404 for a version dated before
//! [`SnykSim::set_oldest_version`], one no longer served), `limit` is 10–100 in tens, unknown
//! query parameters get 400, `Authorization: token <API token>` is checked (401), pages are
//! followed through `links.next` (relative links: without the `/rest` prefix for projects, with
//! it for issues, the inconsistency Snyk has), and every response is `application/vnd.api+json`.
//!
//! Tests steer it: add or fix findings, deactivate or delete projects, inject 429 (with or
//! without `Retry-After`), 5xx or a malformed body for the next matching request; and read it:
//! every request with its response ([`SnykSim::requests`]) for counting and for the
//! [`contract`] check against the official OpenAPI spec. [`webhook`] sends signed v1 webhooks.

pub mod contract;
pub mod model;
pub mod render;
pub mod webhook;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use model::{
    IssueStatus, NewIssue, ProjectStatus, REGISTRY, SEEDED_GROUP_ID, SEEDED_ORG_ID, SimIssue, SimOrg,
    SimProject,
};

/// The API version the simulator says it served.
pub const VERSION_SERVED: &str = "2024-10-15";

/// A fault for the next matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429, with `Retry-After: <seconds>` when given.
    TooManyRequests { retry_after: Option<u64> },
    /// A 5xx with a JSON:API error body.
    ServerError(u16),
    /// This status and body, as they are (e.g. a malformed page with 200).
    Body { status: u16, body: String },
}

/// One request and what the simulator answered.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    /// The path as requested (`/rest/orgs/…/issues`).
    pub path: String,
    /// The raw query string.
    pub query: String,
    pub params: Vec<(String, String)>,
    pub status: u16,
    pub response: Option<Value>,
    /// Answered by an injected fault.
    pub faulted: bool,
}

struct SimState {
    token: String,
    orgs: BTreeMap<String, SimOrg>,
    faults: VecDeque<(Option<String>, Fault)>,
    requests: Vec<RequestRecord>,
    /// Whether request records keep the response body (for the contract check).
    record_responses: bool,
    /// Versions dated before this one are no longer served (404), as a version past its sunset.
    oldest_version: Option<chrono::NaiveDate>,
    /// Registered v1 webhooks per org: (id, url).
    webhooks: BTreeMap<String, Vec<(String, String)>>,
}

/// A running simulator. Stops when dropped.
pub struct SnykSim {
    address: SocketAddr,
    state: Arc<Mutex<SimState>>,
    shutdown: CancellationToken,
}

impl Drop for SnykSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl SnykSim {
    /// Starts with the seeded org ([`SimOrg::seeded`]), accepting `token`.
    pub async fn start(token: &str) -> std::io::Result<SnykSim> {
        Self::start_with(token, vec![SimOrg::seeded()]).await
    }

    /// Starts with these orgs.
    pub async fn start_with(token: &str, orgs: Vec<SimOrg>) -> std::io::Result<SnykSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), token, orgs).await
    }

    /// Starts with these orgs on `listen` (the `simulators` command and compose use fixed ports).
    pub async fn start_on(listen: SocketAddr, token: &str, orgs: Vec<SimOrg>) -> std::io::Result<SnykSim> {
        let state = Arc::new(Mutex::new(SimState {
            token: token.to_owned(),
            orgs: orgs.into_iter().map(|o| (o.id.clone(), o)).collect(),
            faults: VecDeque::new(),
            requests: Vec::new(),
            record_responses: true,
            oldest_version: None,
            webhooks: BTreeMap::new(),
        }));
        let router = Router::new()
            .route("/rest/orgs/{org_id}/projects", get(list_projects))
            .route("/rest/orgs/{org_id}/issues", get(list_issues))
            .route("/rest/orgs", get(list_orgs))
            .route("/rest/groups/{group_id}/orgs", get(list_group_orgs))
            .route("/v1/org/{org_id}/webhooks", get(list_webhooks))
            .fallback(not_found)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        Ok(SnykSim { address, state, shutdown })
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("simulator lock")
    }

    /// `http://127.0.0.1:<port>/rest`, the base URL a client is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}/rest", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A copy of an org as it is now.
    pub fn org(&self, org_id: &str) -> Option<SimOrg> {
        self.lock().orgs.get(org_id).cloned()
    }

    /// Versions dated before `oldest` answer 404, as versions Snyk no longer serves (`None`:
    /// every valid version is served).
    pub fn set_oldest_version(&self, oldest: Option<chrono::NaiveDate>) {
        self.lock().oldest_version = oldest;
    }

    /// Registers a v1 webhook of `org` pointing at `url` (as `POST /v1/org/{orgId}/webhooks`
    /// does); returns its id.
    pub fn register_webhook(&self, org_id: &str, url: &str) -> String {
        let mut state = self.lock();
        let list = state.webhooks.entry(org_id.to_owned()).or_default();
        let id = format!("d3cf26b3-0000-4000-8000-{:012}", list.len() + 1);
        list.push((id.clone(), url.to_owned()));
        id
    }

    pub fn add_org(&self, org: SimOrg) {
        self.lock().orgs.insert(org.id.clone(), org);
    }

    /// Changes an org in place.
    pub fn with_org<T>(&self, org_id: &str, change: impl FnOnce(&mut SimOrg) -> T) -> Option<T> {
        self.lock().orgs.get_mut(org_id).map(change)
    }

    /// The id of the project with this name.
    pub fn project_id(&self, org_id: &str, name: &str) -> Option<String> {
        self.with_org(org_id, |org| org.project_by_name(name).map(|p| p.id.clone())).flatten()
    }

    /// Adds a finding to a project; returns the issue id.
    pub fn add_issue(&self, org_id: &str, project_id: &str, issue: NewIssue) -> Option<String> {
        self.with_org(org_id, |org| org.add_new_issue(project_id, issue, Utc::now()))
    }

    /// Resolves (as fixed) every open issue matching `which`; returns how many.
    pub fn fix_issues(&self, org_id: &str, which: impl Fn(&SimProject, &SimIssue) -> bool) -> usize {
        let now = Utc::now();
        self.with_org(org_id, |org| {
            let projects: BTreeMap<String, SimProject> =
                org.projects.iter().map(|p| (p.id.clone(), p.clone())).collect();
            let mut fixed = 0;
            for issue in org.issues.iter_mut().filter(|i| i.status == IssueStatus::Open) {
                if projects.get(&issue.project_id).is_some_and(|p| which(p, issue)) {
                    issue.status = IssueStatus::Resolved;
                    issue.resolved_at = Some(now);
                    issue.updated_at = now;
                    fixed += 1;
                }
            }
            fixed
        })
        .unwrap_or(0)
    }

    /// Sets the severity of every issue matching `which` (a rescoring, as when NVD or Snyk
    /// revise a CVSS vector); returns how many changed.
    pub fn set_issue_severity(
        &self,
        org_id: &str,
        severity: &str,
        which: impl Fn(&SimProject, &SimIssue) -> bool,
    ) -> usize {
        let now = Utc::now();
        self.with_org(org_id, |org| {
            let projects: BTreeMap<String, SimProject> =
                org.projects.iter().map(|p| (p.id.clone(), p.clone())).collect();
            let mut changed = 0;
            for issue in org.issues.iter_mut().filter(|i| i.severity != severity) {
                if projects.get(&issue.project_id).is_some_and(|p| which(p, issue)) {
                    issue.severity = severity.to_owned();
                    issue.updated_at = now;
                    changed += 1;
                }
            }
            changed
        })
        .unwrap_or(0)
    }

    /// Marks a project inactive (deactivated in Snyk).
    pub fn deactivate_project(&self, org_id: &str, project_id: &str) -> bool {
        self.with_org(org_id, |org| {
            org.projects
                .iter_mut()
                .find(|p| p.id == project_id)
                .map(|p| p.status = ProjectStatus::Inactive)
                .is_some()
        })
        .unwrap_or(false)
    }

    /// Lists a raw project resource, served as given (see [`SimOrg::raw_projects`]).
    pub fn add_raw_project(&self, org_id: &str, resource: Value) -> bool {
        self.with_org(org_id, |org| org.raw_projects.push(resource)).is_some()
    }

    /// Lists a raw issue resource, served as given (see [`SimOrg::raw_issues`]).
    pub fn add_raw_issue(&self, org_id: &str, resource: Value) -> bool {
        self.with_org(org_id, |org| org.raw_issues.push(resource)).is_some()
    }

    /// A project of the model rendered as the REST API lists it (`expand=target`), for a test
    /// to alter and list raw.
    pub fn rendered_project(&self, org_id: &str, project_id: &str) -> Option<Value> {
        self.with_org(org_id, |org| {
            org.projects.iter().find(|p| p.id == project_id).map(|p| render::project(org, p, true, false))
        })
        .flatten()
    }

    /// An issue of the model rendered as the REST API lists it, for a test to alter.
    pub fn rendered_issue(&self, org_id: &str, issue_id: &str) -> Option<Value> {
        self.with_org(org_id, |org| {
            org.issues.iter().find(|i| i.id == issue_id).map(|i| render::issue(org, i))
        })
        .flatten()
    }

    /// Deletes a project and its issues.
    pub fn delete_project(&self, org_id: &str, project_id: &str) -> bool {
        self.with_org(org_id, |org| {
            let before = org.projects.len();
            org.projects.retain(|p| p.id != project_id);
            org.issues.retain(|i| i.project_id != project_id);
            org.projects.len() < before
        })
        .unwrap_or(false)
    }

    /// A v1 `project_snapshot` body for a project, as Snyk would send it after a test.
    pub fn webhook_body(&self, org_id: &str, project_id: &str) -> Option<Value> {
        self.with_org(org_id, |org| {
            org.projects.iter().find(|p| p.id == project_id).map(|p| render::webhook_body(org, p))
        })
        .flatten()
    }

    /// Answers the next request whose path contains `path_contains` (any request: `None`) with
    /// `fault`. Faults queue up in order.
    pub fn inject(&self, path_contains: Option<&str>, fault: Fault) {
        self.lock().faults.push_back((path_contains.map(str::to_owned), fault));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Whether request records keep response bodies (default yes; benchmarks of large orgs
    /// turn it off so the simulator's memory does not hide the client's).
    pub fn record_responses(&self, keep: bool) {
        self.lock().record_responses = keep;
    }
}

type Shared = Arc<Mutex<SimState>>;

async fn list_projects(
    State(state): State<Shared>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    serve(&state, Listing::Projects, &org_id, query.unwrap_or_default(), &headers)
}

async fn list_issues(
    State(state): State<Shared>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    serve(&state, Listing::Issues, &org_id, query.unwrap_or_default(), &headers)
}

async fn list_orgs(State(state): State<Shared>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    serve(&state, Listing::Orgs, "", query.unwrap_or_default(), &headers)
}

async fn list_group_orgs(
    State(state): State<Shared>,
    Path(group_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    serve(&state, Listing::GroupOrgs, &group_id, query.unwrap_or_default(), &headers)
}

/// `GET /v1/org/{orgId}/webhooks` (<https://docs.snyk.io/snyk-api/reference/webhooks-v1>):
/// `{"results": [{"id", "url"}], "total"}`; v1 errors are `{"code", "message", "error"}`. The v1
/// API is outside the REST contract description (`contract/snyk-rest.json`).
async fn list_webhooks(
    State(state): State<Shared>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().expect("simulator lock");
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let authorized = authorization
        .split_once(' ')
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("token") && token == state.token);
    let (status, body) = if !authorized {
        (
            StatusCode::UNAUTHORIZED,
            json!({"code": 401, "message": "Invalid auth token provided", "error": "Invalid auth token provided"}),
        )
    } else if !state.orgs.contains_key(&org_id) {
        (StatusCode::NOT_FOUND, json!({"code": 404, "message": "Org not found", "error": "Org not found"}))
    } else {
        let results: Vec<Value> = state
            .webhooks
            .get(&org_id)
            .into_iter()
            .flatten()
            .map(|(id, url)| json!({"id": id, "url": url}))
            .collect();
        (StatusCode::OK, json!({"total": results.len(), "results": results}))
    };
    state.requests.push(RequestRecord {
        method: "GET".into(),
        path: format!("/v1/org/{org_id}/webhooks"),
        query: String::new(),
        params: Vec::new(),
        status: status.as_u16(),
        response: Some(body.clone()),
        faulted: false,
    });
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "The requested resource does not exist.", None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Projects,
    Issues,
    /// `GET /rest/orgs`: the orgs the token can see.
    Orgs,
    /// `GET /rest/groups/{group_id}/orgs`: the orgs of one group.
    GroupOrgs,
}

const PAGING: [&str; 4] = ["version", "starting_after", "ending_before", "limit"];
const PROJECT_FILTERS: [&str; 6] =
    ["target_id", "ids", "origins", "types", "expand", "meta.latest_issue_counts"];
/// Documented for projects but not simulated: refused with a clear 400 rather than ignored.
const PROJECT_UNSIMULATED: [&str; 14] = [
    "target_reference",
    "target_file",
    "target_runtime",
    "meta_count",
    "names",
    "names_start_with",
    "meta.latest_dependency_total",
    "cli_monitored_before",
    "cli_monitored_after",
    "importing_user_public_id",
    "tags",
    "business_criticality",
    "environment",
    "lifecycle",
];
const ISSUE_FILTERS: [&str; 10] = [
    "scan_item.id",
    "scan_item.type",
    "type",
    "updated_before",
    "updated_after",
    "created_before",
    "created_after",
    "effective_severity_level",
    "status",
    "ignored",
];

fn error_response(status: StatusCode, detail: &str, parameter: Option<&str>) -> Response {
    let mut error = json!({"status": status.as_u16().to_string(), "detail": detail});
    if let Some(parameter) = parameter {
        error["source"] = json!({"parameter": parameter});
    }
    let body = json!({"jsonapi": {"version": "1.0"}, "errors": [error]});
    json_api(status, body.to_string(), None)
}

fn json_api(status: StatusCode, body: String, version: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/vnd.api+json"));
    headers.insert("snyk-version-served", HeaderValue::from_static(VERSION_SERVED));
    headers.insert("snyk-request-id", HeaderValue::from_static("00000000-0000-4000-8000-00000000c0de"));
    if let Some(requested) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("snyk-version-requested", requested);
    }
    response
}

fn version_date(version: &str) -> Option<chrono::NaiveDate> {
    let date = version.split_once('~').map_or(version, |(d, _)| d);
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

fn version_is_valid(version: &str) -> bool {
    let (date, stage) = version.split_once('~').unwrap_or((version, ""));
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = parts.len() == 3
        && parts[0].len() == 4
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
    date_ok && ["", "beta", "experimental"].contains(&stage)
}

/// Comma-separated values of an `explode: false` array parameter (all occurrences).
fn list(params: &[(String, String)], name: &str) -> Option<Vec<String>> {
    let values: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then_some(values)
}

fn single<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn serve(state: &Shared, listing: Listing, org_id: &str, query: String, headers: &HeaderMap) -> Response {
    let mut state = state.lock().expect("simulator lock");
    let path = match listing {
        Listing::Projects => format!("/rest/orgs/{org_id}/projects"),
        Listing::Issues => format!("/rest/orgs/{org_id}/issues"),
        Listing::Orgs => "/rest/orgs".to_owned(),
        Listing::GroupOrgs => format!("/rest/groups/{org_id}/orgs"),
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let mut record = RequestRecord {
        method: "GET".into(),
        path: path.clone(),
        query: query.clone(),
        params: params.clone(),
        status: 200,
        response: None,
        faulted: false,
    };
    let fault_at =
        state.faults.iter().position(|(filter, _)| filter.as_deref().is_none_or(|f| path.contains(f)));
    if let Some(index) = fault_at {
        let (_, fault) = state.faults.remove(index).expect("a queued fault");
        let response = match fault {
            Fault::TooManyRequests { retry_after } => {
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests, please try again later.",
                    None,
                );
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
                }
                response
            }
            Fault::ServerError(status) => error_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Internal server error.",
                None,
            ),
            Fault::Body { status, body } => {
                json_api(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body, None)
            }
        };
        record.status = response.status().as_u16();
        record.faulted = true;
        state.requests.push(record);
        return response;
    }
    let (status, body) = answer(&state, listing, org_id, &path, &params, headers);
    record.status = status.as_u16();
    if state.record_responses {
        record.response = serde_json::from_str(&body).ok();
    }
    state.requests.push(record);
    json_api(status, body, single(&params, "version"))
}

fn error_body(status: StatusCode, detail: &str, parameter: Option<&str>) -> (StatusCode, String) {
    let mut error = json!({"status": status.as_u16().to_string(), "detail": detail});
    if let Some(parameter) = parameter {
        error["source"] = json!({"parameter": parameter});
    }
    (status, json!({"jsonapi": {"version": "1.0"}, "errors": [error]}).to_string())
}

fn answer(
    state: &SimState,
    listing: Listing,
    org_id: &str,
    path: &str,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> (StatusCode, String) {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let authorized = authorization
        .split_once(' ')
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("token") && token == state.token);
    if !authorized {
        return error_body(StatusCode::UNAUTHORIZED, "Unauthorized: a valid API token is required.", None);
    }
    let (filters, unsimulated): (&[&str], &[&str]) = match listing {
        Listing::Projects => (&PROJECT_FILTERS, &PROJECT_UNSIMULATED),
        Listing::Issues => (&ISSUE_FILTERS, &[]),
        Listing::Orgs => (&[], &ORG_UNSIMULATED),
        Listing::GroupOrgs => (&[], &GROUP_ORG_UNSIMULATED),
    };
    for (name, _) in params {
        if unsimulated.contains(&name.as_str()) {
            let detail = format!("Query parameter '{name}' is not simulated");
            return error_body(StatusCode::BAD_REQUEST, &detail, Some(name));
        }
        if !PAGING.contains(&name.as_str()) && !filters.contains(&name.as_str()) {
            return error_body(
                StatusCode::BAD_REQUEST,
                &format!("Unknown query parameter '{name}'"),
                Some(name),
            );
        }
    }
    match single(params, "version") {
        None => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "Missing required query parameter 'version'",
                Some("version"),
            );
        }
        Some(v) if !version_is_valid(v) => {
            return error_body(StatusCode::BAD_REQUEST, &format!("Invalid version '{v}'"), Some("version"));
        }
        Some(v) if state.oldest_version.is_some_and(|oldest| version_date(v).is_some_and(|d| d < oldest)) => {
            // Our wording; a version past its sunset is not found.
            return error_body(
                StatusCode::NOT_FOUND,
                &format!("The requested version '{v}' is no longer available"),
                Some("version"),
            );
        }
        Some(_) => {}
    }
    let limit = match single(params, "limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (10..=100).contains(&n) && n % 10 == 0 => n,
        Some(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "limit must be a multiple of 10 from 10 to 100",
                Some("limit"),
            );
        }
    };
    if single(params, "ending_before").is_some() {
        return error_body(StatusCode::BAD_REQUEST, "ending_before is not simulated", Some("ending_before"));
    }
    // Filter and order first; only the page asked for is rendered.
    let listed = match listing {
        Listing::Orgs => Ok(org_items(state, None)),
        Listing::GroupOrgs if !state.orgs.values().any(|o| o.group_id == org_id) => {
            return error_body(StatusCode::NOT_FOUND, "Group not found.", None);
        }
        Listing::GroupOrgs => Ok(org_items(state, Some(org_id))),
        _ => {
            let Some(org) = state.orgs.get(org_id) else {
                return error_body(StatusCode::NOT_FOUND, "Org not found.", None);
            };
            match listing {
                Listing::Projects => project_items(org, params),
                _ => issue_items(org, params),
            }
        }
    };
    let (ids, render) = match listed {
        Ok(listed) => listed,
        Err(response) => return response,
    };
    let start = match single(params, "starting_after") {
        None => 0,
        Some(cursor) => {
            let Some(id) = cursor.strip_prefix("v1.") else {
                return error_body(StatusCode::BAD_REQUEST, "Invalid cursor", Some("starting_after"));
            };
            // Ids are in order: carry on after the cursor's id, even if that item is gone.
            ids.partition_point(|item_id| item_id.as_str() <= id)
        }
    };
    let end = (start + limit).min(ids.len());
    let page: Vec<Value> = (start..end).map(&render).collect();
    let more = end < ids.len();
    // Snyk's links are relative, with the `/rest` prefix on issues and without on projects.
    let link_path = match listing {
        Listing::Projects | Listing::Orgs | Listing::GroupOrgs => path.trim_start_matches("/rest").to_owned(),
        Listing::Issues => path.to_owned(),
    };
    let base_params: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != "starting_after" && k != "ending_before").cloned().collect();
    let encode = |extra: Option<(&str, String)>| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &base_params {
            serializer.append_pair(k, v);
        }
        if let Some((k, v)) = extra {
            serializer.append_pair(k, &v);
        }
        format!("{link_path}?{}", serializer.finish())
    };
    let mut links =
        json!({"self": encode(single(params, "starting_after").map(|c| ("starting_after", c.to_owned())))});
    links["first"] = json!(encode(None));
    if more && end > start {
        links["next"] = json!(encode(Some(("starting_after", format!("v1.{}", ids[end - 1])))));
    }
    (StatusCode::OK, json!({"jsonapi": {"version": "1.0"}, "data": page, "links": links}).to_string())
}

/// Documented for orgs but not simulated: refused with a clear 400 rather than ignored.
const ORG_UNSIMULATED: [&str; 5] = ["group_id", "is_personal", "slug", "name", "expand"];

/// Documented for a group's orgs but not simulated.
const GROUP_ORG_UNSIMULATED: [&str; 2] = ["slug", "name"];

/// Every org, or those of a group, in id order (one token sees them all).
fn org_items<'a>(state: &'a SimState, group: Option<&str>) -> Listed<'a> {
    let orgs: Vec<&SimOrg> = state.orgs.values().filter(|o| group.is_none_or(|g| o.group_id == g)).collect();
    let ids = orgs.iter().map(|o| o.id.clone()).collect();
    (
        ids,
        Box::new(move |i| {
            let org = orgs[i];
            json!({"type": "org", "id": org.id,
                   "attributes": {"name": org.name, "slug": org.slug, "is_personal": false,
                                  "group_id": org.group_id,
                                  "created_at": "2024-03-01T09:00:00Z"}})
        }),
    )
}

/// Item ids in order, and how to render the item at an index.
type Listed<'a> = (Vec<String>, Box<dyn Fn(usize) -> Value + 'a>);

/// A listed item: modelled, or a raw resource served as given.
type Item<'a, T> = (String, Result<&'a T, &'a Value>);

/// The id a raw resource is listed under (its `id`, or its text when it has none).
fn raw_id(raw: &Value) -> String {
    raw.get("id").and_then(Value::as_str).map_or_else(|| raw.to_string(), str::to_owned)
}

fn project_items<'a>(
    org: &'a SimOrg,
    params: &[(String, String)],
) -> Result<Listed<'a>, (StatusCode, String)> {
    let expand = list(params, "expand").unwrap_or_default();
    if let Some(bad) = expand.iter().find(|e| e.as_str() != "target") {
        return Err(error_body(
            StatusCode::BAD_REQUEST,
            &format!("Invalid expand value '{bad}'"),
            Some("expand"),
        ));
    }
    let expand_target = !expand.is_empty();
    let counts = single(params, "meta.latest_issue_counts") == Some("true");
    let ids = list(params, "ids");
    let origins = list(params, "origins");
    let types = list(params, "types");
    let targets: Vec<&str> =
        params.iter().filter(|(k, _)| k == "target_id").map(|(_, v)| v.as_str()).collect();
    let mut items: Vec<Item<'a, SimProject>> = org
        .projects
        .iter()
        .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .filter(|p| origins.as_ref().is_none_or(|o| o.contains(&p.origin)))
        .filter(|p| types.as_ref().is_none_or(|t| t.contains(&p.project_type)))
        .filter(|p| targets.is_empty() || targets.contains(&p.target_id.as_str()))
        .map(|p| (p.id.clone(), Ok(p)))
        .collect();
    // Raw resources are filtered by id only: the model cannot read the rest of them.
    items.extend(
        org.raw_projects
            .iter()
            .map(|raw| (raw_id(raw), Err(raw)))
            .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(id))),
    );
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let ids = items.iter().map(|(id, _)| id.clone()).collect();
    Ok((
        ids,
        Box::new(move |i| match items[i].1 {
            Ok(project) => render::project(org, project, expand_target, counts),
            Err(raw) => raw.clone(),
        }),
    ))
}

fn parse_time(
    params: &[(String, String)],
    name: &str,
) -> Result<Option<DateTime<Utc>>, (StatusCode, String)> {
    match single(params, name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| {
            error_body(StatusCode::BAD_REQUEST, &format!("{name} must be an RFC 3339 date-time"), Some(name))
        }),
    }
}

fn issue_items<'a>(org: &'a SimOrg, params: &[(String, String)]) -> Result<Listed<'a>, (StatusCode, String)> {
    let scan_item = single(params, "scan_item.id");
    let scan_type = single(params, "scan_item.type");
    if scan_item.is_some() != scan_type.is_some() {
        return Err(error_body(
            StatusCode::BAD_REQUEST,
            "scan_item.id and scan_item.type must be given together",
            Some("scan_item.id"),
        ));
    }
    if scan_type.is_some_and(|t| t != "project" && t != "environment") {
        return Err(error_body(StatusCode::BAD_REQUEST, "Invalid scan_item.type", Some("scan_item.type")));
    }
    let issue_type = single(params, "type");
    let severities = list(params, "effective_severity_level");
    let statuses = list(params, "status");
    let ignored = match single(params, "ignored") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(error_body(StatusCode::BAD_REQUEST, "ignored must be a boolean", Some("ignored")));
        }
    };
    let (updated_after, updated_before) =
        (parse_time(params, "updated_after")?, parse_time(params, "updated_before")?);
    let (created_after, created_before) =
        (parse_time(params, "created_after")?, parse_time(params, "created_before")?);
    let status_word = |i: &SimIssue| match i.status {
        IssueStatus::Open => "open",
        IssueStatus::Resolved => "resolved",
    };
    let mut items: Vec<Item<'a, SimIssue>> = org
        .issues
        .iter()
        .filter(|i| scan_item.is_none_or(|id| scan_type == Some("project") && i.project_id == id))
        .filter(|i| issue_type.is_none_or(|t| i.issue_type == t))
        .filter(|i| severities.as_ref().is_none_or(|s| s.contains(&i.severity)))
        .filter(|i| statuses.as_ref().is_none_or(|s| s.iter().any(|s| s == status_word(i))))
        .filter(|i| ignored.is_none_or(|ignored| i.ignored == ignored))
        .filter(|i| {
            updated_after.is_none_or(|t| i.updated_at > t) && updated_before.is_none_or(|t| i.updated_at < t)
        })
        .filter(|i| {
            created_after.is_none_or(|t| i.created_at > t) && created_before.is_none_or(|t| i.created_at < t)
        })
        .map(|i| (i.id.clone(), Ok(i)))
        .collect();
    // Raw issues are filtered by scan item only: the model cannot read the rest of them.
    items.extend(
        org.raw_issues
            .iter()
            .filter(|raw| {
                let item = raw.pointer("/relationships/scan_item/data/id").and_then(Value::as_str);
                scan_item.is_none_or(|id| item == Some(id))
            })
            .map(|raw| (raw_id(raw), Err(raw))),
    );
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let ids = items.iter().map(|(id, _)| id.clone()).collect();
    Ok((
        ids,
        Box::new(move |i| match items[i].1 {
            Ok(issue) => render::issue(org, issue),
            Err(raw) => raw.clone(),
        }),
    ))
}
