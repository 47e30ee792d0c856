//! A small JIRA Cloud REST v3 client: the calls infra-tickets makes, with Basic auth, a
//! requests-per-second cap, retries that honour `Retry-After`, and typed, classified errors.
//!
//! Used by jira-writer (reconcile) and by the notifier (its JQL reminder scan):
//!
//! ```no_run
//! # async fn example() -> Result<(), jira::JiraError> {
//! use jira::{JiraClient, JiraClientConfig};
//! let client = JiraClient::new(JiraClientConfig::new(
//!     "https://example.atlassian.net",
//!     "bot@example.com",
//!     service_kit::Secret::new("api-token"),
//! ))?;
//! let mut token = None;
//! loop {
//!     let page = client
//!         .search_jql(
//!             r#"labels = "infra-tickets" AND statusCategory != Done AND duedate is not EMPTY ORDER BY duedate ASC"#,
//!             &["summary", "duedate", "labels", "status"],
//!             token.as_deref(),
//!         )
//!         .await?;
//!     for issue in &page.issues {
//!         println!("{} due {:?}", issue.key, issue.due_date());
//!     }
//!     match page.next_page_token() {
//!         Some(next) => token = Some(next.to_owned()),
//!         None => break,
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Retries inside one call: 429 and 503 wait for `Retry-After` (up to
//! [`JiraClientConfig::max_retry_after`]; longer waits are handed to the caller as
//! [`JiraError::RateLimited`] so a consumer can NAK with that delay); other 5xx, 409 and timeouts
//! back off exponentially. A create (`POST /issue`) and a comment are NOT retried after an
//! ambiguous failure (5xx other than 503, timeout), because JIRA may have stored them: the caller
//! decides (jira-writer goes through its claim and search path).
//!
//! Errors classify for the consumer runtime ([`bus::Classify`]): 400/404/410/413/422 →
//! dead-letter with JIRA's `errorMessages` and `errors` (or, for an HTML error page from the edge,
//! its title and text on one line); 401/403 → pause (the writer tells a 403 of one project from
//! revoked credentials with `GET /myself`); 5xx, timeouts and refused connections that outlast the
//! retries → pause, since nothing works while JIRA is down, and waiting in place costs no
//! delivery; 409 and 429 → retry. A `Retry-After` holds back every request of the client, not
//! only the one that got it.

pub mod preflight;
pub mod system;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bus::{Classify, ErrorClass};
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use service_kit::Secret;
use tokio::sync::Mutex;

pub use system::TicketSystem;

/// How to reach JIRA and how hard to push it.
#[derive(Debug, Clone)]
pub struct JiraClientConfig {
    /// `https://<site>.atlassian.net` (no trailing `/rest/...`).
    pub base_url: String,
    /// Atlassian account e-mail of the API token.
    pub email: String,
    pub api_token: Secret,
    /// At most this many requests per second leave this client (0: no cap).
    pub requests_per_second: f64,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Attempts of one call, including the first.
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff_base: Duration,
    /// The longest `Retry-After` waited for inside a call; longer ones are returned.
    pub max_retry_after: Duration,
    /// How long a consumer pauses on 401/403 before trying again.
    pub auth_pause: Duration,
    /// How long a consumer pauses, at most, while JIRA is down (5xx, timeouts, refused
    /// connections) before trying the held message again. The first failure pauses for
    /// [`FIRST_OUTAGE_PAUSE`] and each one after it without a success in between doubles that,
    /// up to this: a lone 500 costs a moment, an outage costs no wasted calls.
    pub outage_pause: Duration,
}

impl JiraClientConfig {
    pub fn new(base_url: impl Into<String>, email: impl Into<String>, api_token: Secret) -> Self {
        JiraClientConfig {
            base_url: base_url.into(),
            email: email.into(),
            api_token,
            requests_per_second: 10.0,
            timeout: Duration::from_secs(30),
            max_attempts: 4,
            backoff_base: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(30),
            auth_pause: Duration::from_secs(30),
            outage_pause: Duration::from_secs(15),
        }
    }
}

/// A failed JIRA call, classified.
#[derive(Debug, thiserror::Error)]
pub enum JiraError {
    /// JIRA refused the request as invalid (400, 413, 422, 410): it will never succeed as is.
    #[error("JIRA refused {operation} with {status}: {message}")]
    Rejected { operation: String, status: u16, message: String },
    /// The issue (or another resource) does not exist (404).
    #[error("JIRA has no {operation} target: {message}")]
    NotFound { operation: String, message: String },
    /// The credentials are wrong or lack permission (401/403): nothing works until fixed.
    #[error("JIRA denied {operation} with {status} (check the e-mail, API token and permissions): {message}")]
    Unauthorized { operation: String, status: u16, message: String, pause: Duration },
    /// Rate limited (429, or 503 with `Retry-After`) past what the client waits for itself.
    #[error("JIRA rate-limited {operation}; retry after {retry_after:?}")]
    RateLimited { operation: String, retry_after: Option<Duration> },
    /// A conflict or a slow task that outlasted the retries.
    #[error("JIRA {operation} failed transiently: {message}")]
    Transient { operation: String, status: Option<u16>, message: String, retry_after: Option<Duration> },
    /// JIRA is down or unreachable (5xx, a timeout, a refused connection) past the retries, or
    /// failed ambiguously on a call that must not be repeated blindly: consumption pauses.
    #[error("JIRA is unavailable ({operation}): {message}")]
    Unavailable {
        operation: String,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
        pause: Duration,
    },
    /// The response was not what the API promises.
    #[error("JIRA answered {operation} with an unreadable body: {message}")]
    Decode { operation: String, message: String },
    /// A setting of the client is unusable.
    #[error("invalid JIRA client setting: {0}")]
    Config(String),
}

impl JiraError {
    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            JiraError::Rejected { status, .. } | JiraError::Unauthorized { status, .. } => Some(*status),
            JiraError::NotFound { .. } => Some(404),
            JiraError::RateLimited { .. } => Some(429),
            JiraError::Transient { status, .. } | JiraError::Unavailable { status, .. } => *status,
            _ => None,
        }
    }
}

impl Classify for JiraError {
    fn class(&self) -> ErrorClass {
        match self {
            JiraError::Rejected { .. } | JiraError::NotFound { .. } | JiraError::Config(_) => {
                ErrorClass::DeadLetter
            }
            JiraError::Unauthorized { pause, .. } => ErrorClass::Pause { after: *pause },
            JiraError::RateLimited { retry_after, .. } => ErrorClass::Retry { after: *retry_after },
            JiraError::Transient { retry_after, .. } => ErrorClass::Retry { after: *retry_after },
            JiraError::Unavailable { retry_after, pause, .. } => {
                ErrorClass::Pause { after: retry_after.map_or(*pause, |after| after.max(*pause)) }
            }
            JiraError::Decode { .. } => ErrorClass::Retry { after: None },
        }
    }
}

/// JIRA's error body.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCollection {
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default)]
    pub errors: std::collections::BTreeMap<String, String>,
}

impl ErrorCollection {
    /// `errorMessages` and `errors` as one line: `msg1; msg2; field: message`.
    pub fn to_text(&self) -> String {
        let mut parts: Vec<String> = self.error_messages.clone();
        parts.extend(self.errors.iter().map(|(field, message)| format!("{field}: {message}")));
        parts.join("; ")
    }
}

/// `201` of `POST /rest/api/3/issue`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CreatedIssue {
    pub id: String,
    pub key: String,
    #[serde(rename = "self")]
    pub self_url: String,
}

/// An issue as `GET /issue/{key}` or `search/jql` returns it: id, key, and the fields and
/// properties asked for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Issue {
    pub id: String,
    pub key: String,
    #[serde(rename = "self", default)]
    pub self_url: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl Issue {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    pub fn summary(&self) -> Option<&str> {
        self.field("summary").and_then(Value::as_str)
    }

    pub fn due_date(&self) -> Option<NaiveDate> {
        self.field("duedate").and_then(Value::as_str).and_then(|s| s.parse().ok())
    }

    pub fn labels(&self) -> Vec<String> {
        self.field("labels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// `new`, `indeterminate` or `done`.
    pub fn status_category(&self) -> Option<&str> {
        self.field("status")?.get("statusCategory")?.get("key")?.as_str()
    }

    pub fn status_name(&self) -> Option<&str> {
        self.field("status")?.get("name")?.as_str()
    }

    pub fn is_done(&self) -> bool {
        self.status_category() == Some("done")
    }

    pub fn project_key(&self) -> Option<&str> {
        self.field("project")?.get("key")?.as_str()
    }

    pub fn priority_name(&self) -> Option<&str> {
        self.field("priority")?.get("name")?.as_str()
    }

    pub fn component_names(&self) -> Vec<String> {
        self.field("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The value a team-like custom field was written with: a select's `value` (the first of a
    /// multi select), a user's `accountId`, a Team's `id`, or a plain string.
    pub fn option_value(&self, field: &str) -> Option<String> {
        let value = self.field(field)?;
        let value = value.as_array().and_then(|a| a.first()).unwrap_or(value);
        ["value", "accountId", "id"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .or_else(|| value.as_str())
            .map(str::to_owned)
    }

    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.field("created").and_then(Value::as_str).and_then(parse_jira_time)
    }

    pub fn resolution_date(&self) -> Option<DateTime<Utc>> {
        self.field("resolutiondate").and_then(Value::as_str).and_then(parse_jira_time)
    }

    pub fn property(&self, key: &str) -> Option<&Value> {
        self.properties.get(key)
    }
}

/// JIRA writes times as `2026-11-27T09:00:00.000+0000`.
pub fn parse_jira_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time the way JIRA does.
pub fn format_jira_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A `POST /rest/api/3/search/jql` request (`SearchAndReconcileRequestBean`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    pub jql: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    /// Issue ids to read after write (≤ 50), the same on every page.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reconcile_issues: Vec<i64>,
}

/// One page of `search/jql` results (`SearchAndReconcileResults`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub is_last: Option<bool>,
}

impl SearchPage {
    /// The token of the next page; `None` at the end (absent, null or `isLast: true`).
    pub fn next_page_token(&self) -> Option<&str> {
        if self.is_last == Some(true) {
            return None;
        }
        self.next_page_token.as_deref().filter(|t| !t.is_empty())
    }
}

/// One transition available from an issue's status.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub to: Option<TransitionTarget>,
}

impl Transition {
    /// The status category key of the target status.
    pub fn to_category(&self) -> Option<&str> {
        self.to.as_ref()?.status_category.as_ref().map(|c| c.key.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionTarget {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status_category: Option<StatusCategory>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StatusCategory {
    pub key: String,
}

/// Paces requests so at most `per_second` leave per second.
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Self {
        let interval = (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second));
        Pacer { interval, next: Mutex::new(tokio::time::Instant::now()) }
    }

    async fn wait_turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval.unwrap_or(Duration::ZERO);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds back every request until `until` (JIRA said `Retry-After`).
    async fn hold_until(&self, until: tokio::time::Instant) {
        let mut next = self.next.lock().await;
        *next = (*next).max(until);
    }
}

/// How long a cross-project move may take before it counts as failed (and is retried).
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a call may be repeated after an ambiguous failure (JIRA may have applied it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// GET, PUT, search, upserts: repeating changes nothing.
    Safe,
    /// POST issue, POST comment: repeating may duplicate; only rejected-before-processing
    /// answers (429, 503) are retried.
    OnlyIfRejected,
}

/// The JIRA Cloud REST v3 client. Cheap to clone.
#[derive(Clone)]
pub struct JiraClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: url::Url,
    authorization: Secret,
    config: JiraClientConfig,
    pacer: Pacer,
    /// JIRA calls that found it unavailable since the last one that got an answer.
    failures_in_a_row: std::sync::atomic::AtomicU32,
}

/// The pause after one call finds JIRA unavailable; it doubles with each failure in a row.
pub const FIRST_OUTAGE_PAUSE: Duration = Duration::from_millis(500);

impl std::fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &self.inner.base.as_str())
            .field("email", &self.inner.config.email)
            .finish_non_exhaustive()
    }
}

impl JiraClient {
    pub fn new(config: JiraClientConfig) -> Result<Self, JiraError> {
        let mut base = url::Url::parse(&config.base_url)
            .map_err(|e| JiraError::Config(format!("JIRA URL {:?}: {e}", config.base_url)))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.email.trim().is_empty() {
            return Err(JiraError::Config("the JIRA e-mail is empty".into()));
        }
        let credentials = format!("{}:{}", config.email, config.api_token.expose());
        let authorization =
            Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials)));
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| JiraError::Config(format!("HTTP client: {e}")))?;
        let pacer = Pacer::new(config.requests_per_second);
        Ok(JiraClient {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                config,
                pacer,
                failures_in_a_row: Default::default(),
            }),
        })
    }

    /// The site's base URL.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The browse URL of an issue: `<base>/browse/<key>`.
    pub fn browse_url(&self, key: &str) -> String {
        format!("{}browse/{key}", self.inner.base)
    }

    /// `POST /rest/api/3/search/jql`, one page: `fields` to return (none: ids only).
    pub async fn search_jql(
        &self,
        jql: &str,
        fields: &[&str],
        next_page_token: Option<&str>,
    ) -> Result<SearchPage, JiraError> {
        self.search(&SearchRequest {
            jql: jql.to_owned(),
            next_page_token: next_page_token.map(str::to_owned),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            ..SearchRequest::default()
        })
        .await
    }

    /// `POST /rest/api/3/search/jql` with every option.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchPage, JiraError> {
        let body = serde_json::to_value(request).expect("a search request serialises");
        let value = self
            .call(Method::POST, "rest/api/3/search/jql", &[], Some(&body), "search issues", Repeat::Safe)
            .await?;
        decode(value, "search issues")
    }

    /// Every page of a search, up to `max_pages` pages.
    pub async fn search_all(
        &self,
        request: &SearchRequest,
        max_pages: usize,
    ) -> Result<Vec<Issue>, JiraError> {
        let mut request = request.clone();
        let mut issues = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..max_pages.max(1) {
            let page = self.search(&request).await?;
            let next = page.next_page_token().map(str::to_owned);
            issues.extend(page.issues);
            match next {
                // A token handed out twice would page in a loop (and, bounded by `max_pages`,
                // return a partial list as if whole): a retryable failure instead.
                Some(token) if !seen.insert(token.clone()) => {
                    let shown: String = token.chars().take(100).collect();
                    return Err(JiraError::Transient {
                        operation: "search issues".to_owned(),
                        status: None,
                        message: format!(
                            "JIRA returned nextPageToken {shown:?} a second time; stopped paging"
                        ),
                        retry_after: None,
                    });
                }
                Some(token) => request.next_page_token = Some(token),
                None => break,
            }
        }
        Ok(issues)
    }

    /// `POST /rest/api/3/issue` with an `IssueUpdateDetails` body (`fields`, `update`,
    /// `properties`).
    pub async fn create_issue(&self, body: &Value) -> Result<CreatedIssue, JiraError> {
        let value = self
            .call(Method::POST, "rest/api/3/issue", &[], Some(body), "create issue", Repeat::OnlyIfRejected)
            .await?;
        decode(value, "create issue")
    }

    /// `GET /rest/api/3/issue/{key}` with the given fields and properties.
    pub async fn get_issue(
        &self,
        key: &str,
        fields: &[&str],
        properties: &[&str],
    ) -> Result<Issue, JiraError> {
        let mut query = vec![("fields", fields.join(","))];
        if !properties.is_empty() {
            query.push(("properties", properties.join(",")));
        }
        let path = format!("rest/api/3/issue/{}", segment(key));
        let value = self.call(Method::GET, &path, &query, None, "get issue", Repeat::Safe).await?;
        decode(value, "get issue")
    }

    /// `PUT /rest/api/3/issue/{key}`; with `return_issue` the edited issue comes back (its key
    /// changes when it moved project).
    pub async fn edit_issue(
        &self,
        key: &str,
        body: &Value,
        return_issue: bool,
    ) -> Result<Option<Issue>, JiraError> {
        let path = format!("rest/api/3/issue/{}", segment(key));
        let query = if return_issue { vec![("returnIssue", "true".to_owned())] } else { vec![] };
        // An edit is idempotent unless it adds a comment: repeated after JIRA did the work, it
        // would add the comment twice.
        let repeat =
            if body.pointer("/update/comment").is_some() { Repeat::OnlyIfRejected } else { Repeat::Safe };
        let value = self.call(Method::PUT, &path, &query, Some(body), "edit issue", repeat).await?;
        if return_issue { decode(value, "edit issue").map(Some) } else { Ok(None) }
    }

    /// Moves an issue to another project, which an edit cannot do in JIRA Cloud:
    /// `POST /rest/api/3/bulk/issues/move`, then `GET /rest/api/3/bulk/queue/{taskId}` until the
    /// task ends. Returns the issue as it is now (with its new key). Moving an issue already in
    /// the target project changes nothing, so a retried move is harmless.
    pub async fn move_issue(
        &self,
        key: &str,
        project: &str,
        issue_type_id: &str,
    ) -> Result<Issue, JiraError> {
        let body = json!({
            "sendBulkNotification": false,
            "targetToSourcesMapping": {
                format!("{project},{issue_type_id}"): {
                    "inferClassificationDefaults": true,
                    "inferFieldDefaults": true,
                    "inferStatusDefaults": true,
                    "inferSubtaskTypeDefault": true,
                    "issueIdsOrKeys": [key],
                }
            }
        });
        let operation = "move issue";
        let submitted = self
            .call(Method::POST, "rest/api/3/bulk/issues/move", &[], Some(&body), operation, Repeat::Safe)
            .await?;
        let task_id = submitted.get("taskId").and_then(Value::as_str).ok_or_else(|| JiraError::Decode {
            operation: operation.into(),
            message: format!("no taskId in {submitted}"),
        })?;
        let path = format!("rest/api/3/bulk/queue/{}", segment(task_id));
        let mut wait = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + MOVE_TIMEOUT;
        loop {
            let progress = self.call(Method::GET, &path, &[], None, "move progress", Repeat::Safe).await?;
            match progress.get("status").and_then(Value::as_str).unwrap_or_default() {
                // A complete task can still report issues it could not move: permanent (JIRA
                // gave its reason; moving again would fail the same way), with the issue named.
                "COMPLETE" => match move_failures(&progress) {
                    None => break,
                    Some(failures) => {
                        return Err(JiraError::Rejected {
                            operation: operation.into(),
                            status: 200,
                            message: one_line(
                                &format!("JIRA could not move {key} to project {project}: {failures}"),
                                1_000,
                            ),
                        });
                    }
                },
                "FAILED" | "CANCELLED" | "CANCEL_REQUESTED" | "DEAD" => {
                    return Err(JiraError::Rejected {
                        operation: operation.into(),
                        status: 200,
                        message: one_line(
                            &format!(
                                "moving {key} to project {project} ended {}: {}",
                                progress["status"],
                                move_failures(&progress).unwrap_or_else(|| "no reason given".into())
                            ),
                            1_000,
                        ),
                    });
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(JiraError::Transient {
                        operation: operation.into(),
                        status: None,
                        message: format!(
                            "task {task_id} moving {key} did not finish within {MOVE_TIMEOUT:?}"
                        ),
                        retry_after: None,
                    });
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        // The old key still resolves to the moved issue.
        self.get_issue(key, &["issuetype", "project"], &[]).await
    }

    /// `POST /rest/api/3/issue/{key}/comment` with an ADF body; returns the comment id.
    pub async fn add_comment(&self, key: &str, body_adf: &Value) -> Result<String, JiraError> {
        let path = format!("rest/api/3/issue/{}/comment", segment(key));
        let body = json!({ "body": body_adf });
        let value =
            self.call(Method::POST, &path, &[], Some(&body), "add comment", Repeat::OnlyIfRejected).await?;
        Ok(value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned())
    }

    /// The plain text of the issue's latest comments (`GET /rest/api/3/issue/{key}/comment`,
    /// newest first, up to 100): the writer checks it before a comment it may have written
    /// already, when JIRA did the work and then answered an error.
    pub async fn recent_comment_texts(&self, key: &str) -> Result<Vec<String>, JiraError> {
        let path = format!("rest/api/3/issue/{}/comment", segment(key));
        let query = [("orderBy", "-created".to_owned()), ("maxResults", "100".to_owned())];
        let value = self.call(Method::GET, &path, &query, None, "read comments", Repeat::Safe).await?;
        let comments = value.get("comments").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(comments.iter().filter_map(|c| c.get("body")).map(adf_text).collect())
    }

    /// `GET /rest/api/3/issue/{key}/transitions`.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Transition>, JiraError> {
        #[derive(Deserialize)]
        struct Transitions {
            #[serde(default)]
            transitions: Vec<Transition>,
        }
        let path = format!("rest/api/3/issue/{}/transitions", segment(key));
        let value = self.call(Method::GET, &path, &[], None, "get transitions", Repeat::Safe).await?;
        decode::<Transitions>(value, "get transitions").map(|t| t.transitions)
    }

    /// `POST /rest/api/3/issue/{key}/transitions`, with an optional ADF comment.
    pub async fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        comment: Option<&Value>,
    ) -> Result<(), JiraError> {
        let path = format!("rest/api/3/issue/{}/transitions", segment(key));
        let mut body = json!({ "transition": { "id": transition_id } });
        if let Some(comment) = comment {
            body["update"] = json!({ "comment": [ { "add": { "body": comment } } ] });
        }
        self.call(Method::POST, &path, &[], Some(&body), "transition issue", Repeat::Safe).await.map(|_| ())
    }

    /// `GET /rest/api/3/issue/{key}?fields=status&expand=transitions`: the issue's status and
    /// the transitions available from it, in the workflow's order, in one call.
    pub async fn status_and_transitions(&self, key: &str) -> Result<(String, Vec<Transition>), JiraError> {
        #[derive(Deserialize)]
        struct WithTransitions {
            #[serde(default)]
            transitions: Vec<Transition>,
        }
        let path = format!("rest/api/3/issue/{}", segment(key));
        let query = [("fields", "status".to_owned()), ("expand", "transitions".to_owned())];
        let value = self.call(Method::GET, &path, &query, None, "get transitions", Repeat::Safe).await?;
        let issue: Issue = decode(value.clone(), "get transitions")?;
        let transitions = decode::<WithTransitions>(value, "get transitions")?.transitions;
        Ok((issue.status_name().unwrap_or_default().to_owned(), transitions))
    }

    /// Moves an issue to a status of `category` (`done`, `new`, `indeterminate`) by the first
    /// available transition leading there. `Ok(false)` when none is available. For people's
    /// actions in tests and tools: the writer follows its configured workflow instead
    /// (jira-writer's `workflow` module), since the first transition into a category can be any of several.
    pub async fn transition_to_category(
        &self,
        key: &str,
        category: &str,
        comment: Option<&Value>,
    ) -> Result<bool, JiraError> {
        let transitions = self.transitions(key).await?;
        let Some(transition) = transitions.iter().find(|t| t.to_category() == Some(category)) else {
            return Ok(false);
        };
        self.do_transition(key, &transition.id, comment).await?;
        Ok(true)
    }

    /// `POST /rest/api/3/issueLink`: "`source_key` <outward phrase> `destination_key`", e.g. with
    /// `Duplicate`: "<source> duplicates <destination>". Idempotent in JIRA.
    pub async fn link_issues(
        &self,
        link_type: &str,
        source_key: &str,
        destination_key: &str,
    ) -> Result<(), JiraError> {
        // JIRA's names are the reverse of what they suggest: the `inwardIssue` is the one that
        // reads the outward phrase ("A duplicates B" is inwardIssue A, outwardIssue B), as
        // <https://developer.atlassian.com/cloud/jira/platform/issue-linking-model/> shows.
        let body = json!({
            "type": { "name": link_type },
            "inwardIssue": { "key": source_key },
            "outwardIssue": { "key": destination_key },
        });
        self.call(Method::POST, "rest/api/3/issueLink", &[], Some(&body), "link issues", Repeat::Safe)
            .await
            .map(|_| ())
    }

    /// `POST /rest/api/3/issue/{key}/remotelink` with a `globalId`: created once, updated after.
    pub async fn upsert_remote_link(
        &self,
        key: &str,
        global_id: &str,
        title: &str,
        url: &str,
    ) -> Result<(), JiraError> {
        let path = format!("rest/api/3/issue/{}/remotelink", segment(key));
        let body = json!({ "globalId": global_id, "object": { "title": title, "url": url } });
        self.call(Method::POST, &path, &[], Some(&body), "upsert remote link", Repeat::Safe).await.map(|_| ())
    }

    /// `PUT /rest/api/3/issue/{key}/properties/{property}`.
    pub async fn set_issue_property(
        &self,
        key: &str,
        property: &str,
        value: &Value,
    ) -> Result<(), JiraError> {
        let path = format!("rest/api/3/issue/{}/properties/{}", segment(key), segment(property));
        self.call(Method::PUT, &path, &[], Some(value), "set issue property", Repeat::Safe).await.map(|_| ())
    }

    /// `GET /rest/api/3/field`: every field of the site, with its `schema`.
    pub async fn fields(&self) -> Result<Vec<Value>, JiraError> {
        let value = self.call(Method::GET, "rest/api/3/field", &[], None, "get fields", Repeat::Safe).await?;
        decode(value, "get fields")
    }

    /// `GET /rest/api/3/user/search?query=`: the users whose name or e-mail address matches
    /// `query` (JIRA matches the start of the display name, its words and the address; the
    /// address is absent when the person's privacy settings hide it).
    pub async fn find_users(&self, query: &str) -> Result<Vec<Value>, JiraError> {
        let params = [("query", query.to_owned()), ("maxResults", "50".to_owned())];
        let value = self
            .call(Method::GET, "rest/api/3/user/search", &params, None, "find users", Repeat::Safe)
            .await?;
        decode(value, "find users")
    }

    /// `GET /gateway/api/public/teams/v1/org/{orgId}/teams` (Atlassian's Teams API through the
    /// site): every team of the organisation as `(teamId, displayName, state)`, all pages.
    pub async fn org_teams(
        &self,
        org_id: &str,
        site_id: Option<&str>,
    ) -> Result<Vec<(String, String, String)>, JiraError> {
        let path = format!("gateway/api/public/teams/v1/org/{}/teams", segment(org_id));
        let mut teams = Vec::new();
        let mut cursor: Option<String> = None;
        // Bounded: 100 pages of 300 teams.
        for _ in 0..100 {
            let mut params = vec![("size", "300".to_owned())];
            if let Some(site) = site_id {
                params.push(("siteId", site.to_owned()));
            }
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor.clone()));
            }
            let page = self.call(Method::GET, &path, &params, None, "list teams", Repeat::Safe).await?;
            let text =
                |v: &Value, name: &str| v.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            for team in page.get("entities").and_then(Value::as_array).into_iter().flatten() {
                teams.push((text(team, "teamId"), text(team, "displayName"), text(team, "state")));
            }
            cursor = page.get("cursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(teams)
    }

    /// `GET /rest/api/3/myself`: checks the credentials.
    pub async fn myself(&self) -> Result<Value, JiraError> {
        self.call(Method::GET, "rest/api/3/myself", &[], None, "get current user", Repeat::Safe).await
    }

    /// One call with pacing and retries. Returns the JSON body (`Null` for an empty one).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        operation: &str,
        repeat: Repeat,
    ) -> Result<Value, JiraError> {
        let config = &self.inner.config;
        let url = self.inner.base.join(path).map_err(|e| JiraError::Config(format!("path {path}: {e}")))?;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(method.clone(), url.clone(), query, body, operation).await;
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let retry_after = match &error {
                JiraError::RateLimited { retry_after, .. } => Some(*retry_after),
                JiraError::Unavailable { status: Some(503), retry_after, .. } => Some(*retry_after),
                JiraError::Transient { .. } | JiraError::Unavailable { .. } if repeat == Repeat::Safe => {
                    Some(None)
                }
                _ => None,
            };
            if let Some(Some(after)) = retry_after {
                // Every worker of this client waits, not only the one that was told.
                self.inner.pacer.hold_until(tokio::time::Instant::now() + after).await;
            }
            let Some(retry_after) = retry_after else { return Err(error) };
            if attempt >= config.max_attempts {
                return Err(error);
            }
            let delay = match retry_after {
                Some(after) if after > config.max_retry_after => return Err(error),
                Some(after) => after,
                None => backoff(config.backoff_base, attempt),
            };
            metrics::counter!("itk_jira_retries_total", "operation" => operation.to_owned()).increment(1);
            tracing::debug!(operation, attempt, delay_ms = delay.as_millis() as u64, error = %error, "JIRA call failed; retrying.");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: url::Url,
        query: &[(&str, String)],
        body: Option<&Value>,
        operation: &str,
    ) -> Result<Value, JiraError> {
        self.inner.pacer.wait_turn().await;
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, self.inner.authorization.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = request.send().await;
        let status_label = match &sent {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "transport_error".to_owned(),
        };
        metrics::counter!("itk_jira_requests_total", "operation" => operation.to_owned(), "status" => status_label)
            .increment(1);
        let response = sent.map_err(|e| self.unavailable(operation, None, describe_transport(e), None))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            // Seconds or an HTTP-date, capped: an absurd value must not overflow the pacer's Instant.
            .and_then(bus::safe::retry_after);
        let text = response
            .text()
            .await
            .map_err(|e| self.unavailable(operation, Some(status.as_u16()), describe_transport(e), None))?;
        if !status.is_server_error() {
            // JIRA answered: whatever was wrong before is over.
            self.inner.failures_in_a_row.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| JiraError::Decode { operation: operation.to_owned(), message: e.to_string() });
        }
        Err(self.error_for(status, &text, retry_after, operation))
    }

    fn error_for(
        &self,
        status: StatusCode,
        text: &str,
        retry_after: Option<Duration>,
        operation: &str,
    ) -> JiraError {
        let message = match serde_json::from_str::<ErrorCollection>(text) {
            Ok(collection) if !collection.to_text().is_empty() => one_line(&collection.to_text(), 1_000),
            _ => describe_body(text),
        };
        let operation = operation.to_owned();
        match status.as_u16() {
            401 | 403 => JiraError::Unauthorized {
                operation,
                status: status.as_u16(),
                message,
                pause: self.inner.config.auth_pause,
            },
            404 => JiraError::NotFound { operation, message },
            429 => JiraError::RateLimited { operation, retry_after },
            409 => JiraError::Transient { operation, status: Some(409), message, retry_after },
            500..=599 => self.unavailable(&operation, Some(status.as_u16()), message, retry_after),
            other => JiraError::Rejected { operation, status: other, message },
        }
    }
}

impl JiraClient {
    fn unavailable(
        &self,
        operation: &str,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    ) -> JiraError {
        let in_a_row = self.inner.failures_in_a_row.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pause =
            FIRST_OUTAGE_PAUSE.saturating_mul(1u32 << in_a_row.min(16)).min(self.inner.config.outage_pause);
        JiraError::Unavailable { operation: operation.to_owned(), status, message, retry_after, pause }
    }
}

/// What a finished bulk task reports it could not do, in words: each issue of
/// `failedAccessibleIssues` (issue id → JIRA's reasons) and `invalidOrInaccessibleIssueCount`
/// (issues it could not see). `None` when it reports no failure.
fn move_failures(progress: &Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    match progress.get("failedAccessibleIssues") {
        Some(Value::Object(map)) => {
            for (issue, reasons) in map {
                let reasons = match reasons {
                    Value::Array(list) => list
                        .iter()
                        .map(|r| r.as_str().map(str::to_owned).unwrap_or_else(|| r.to_string()))
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.as_str().map(str::to_owned).unwrap_or_else(|| other.to_string()),
                };
                let reasons = if reasons.is_empty() { "no reason given".to_owned() } else { reasons };
                parts.push(format!("issue {issue}: {reasons}"));
            }
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            parts.push(format!("issues {}", Value::Array(list.clone())))
        }
        _ => {}
    }
    let invalid = progress.get("invalidOrInaccessibleIssueCount").and_then(Value::as_u64).unwrap_or(0);
    if invalid > 0 {
        parts.push(format!("{invalid} issue(s) invalid or not accessible to the bot"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A body that is not JIRA's error JSON, as one short line: an HTML page (from a proxy or WAF in
/// front of JIRA) as its text without tags, anything else as it is, without control characters.
pub fn describe_body(text: &str) -> String {
    let looks_html = text.trim_start().starts_with('<');
    if !looks_html {
        return one_line(text, 500);
    }
    // `to_ascii_lowercase` keeps every byte index, so `lower[i..]` lines up with `text`.
    let lower = text.to_ascii_lowercase();
    let mut plain = String::with_capacity(text.len());
    let (mut in_tag, mut in_style_or_script) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            '<' => {
                in_tag = true;
                let rest = &lower[i..];
                if rest.starts_with("<style") || rest.starts_with("<script") {
                    in_style_or_script = true;
                } else if rest.starts_with("</style") || rest.starts_with("</script") {
                    in_style_or_script = false;
                }
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag || in_style_or_script => {}
            _ => plain.push(c),
        }
    }
    format!("an HTML page, not JIRA's JSON: {}", one_line(&plain, 300))
}

/// `text` on one line (control characters and runs of whitespace become one space), at most
/// `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty());
    let line = joined.collect::<Vec<_>>().join(" ");
    truncate_chars(&line, max)
}

fn decode<T: serde::de::DeserializeOwned>(value: Value, operation: &str) -> Result<T, JiraError> {
    serde_json::from_value(value)
        .map_err(|e| JiraError::Decode { operation: operation.to_owned(), message: e.to_string() })
}

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(10)));
    let jitter = rand::random_range(0.0..0.25);
    exponential.mul_f64(1.0 + jitter)
}

/// A transport error without the URL's query (no secrets travel there, but keep it short).
fn describe_transport(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        format!("cannot connect: {}", error.without_url())
    } else {
        error.without_url().to_string()
    }
}

/// The issue property that carries the group key into JIRA (jira-writer writes it; the
/// notifier's reminder scan and the ledger recovery read it).
pub const PROPERTY_KEY: &str = "infra-tickets";

/// At most `max` characters, with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The text of an ADF document (or of a plain string, as Data Center answers), its text nodes
/// joined: what a comment says, whatever marks or attributes the site added to the document.
pub fn adf_text(doc: &Value) -> String {
    fn walk(node: &Value, out: &mut String) {
        match node {
            Value::String(text) => out.push_str(text),
            Value::Object(map) => {
                if let Some(Value::String(text)) = map.get("text") {
                    out.push_str(text);
                }
                if let Some(Value::Array(children)) = map.get("content") {
                    for child in children {
                        walk(child, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(doc, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_as_the_consumer_needs() {
        let rejected = JiraError::Rejected { operation: "x".into(), status: 400, message: "m".into() };
        assert_eq!(rejected.class(), ErrorClass::DeadLetter);
        let denied = JiraError::Unauthorized {
            operation: "x".into(),
            status: 401,
            message: "m".into(),
            pause: Duration::from_secs(5),
        };
        assert_eq!(denied.class(), ErrorClass::Pause { after: Duration::from_secs(5) });
        let limited =
            JiraError::RateLimited { operation: "x".into(), retry_after: Some(Duration::from_secs(9)) };
        assert_eq!(limited.class(), ErrorClass::Retry { after: Some(Duration::from_secs(9)) });
    }

    #[test]
    fn a_lone_failure_pauses_briefly_and_failures_in_a_row_pause_up_to_the_outage_pause() {
        let config = JiraClientConfig::new("http://127.0.0.1:9", "bot@example.com", Secret::new("t"));
        let client = JiraClient::new(config).unwrap();
        let pauses: Vec<Duration> = (0..8)
            .map(|_| match client.unavailable("create issue", Some(500), "m".into(), None).class() {
                ErrorClass::Pause { after } => after,
                other => panic!("{other:?}"),
            })
            .collect();
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(
            pauses,
            [ms(500), ms(1_000), ms(2_000), ms(4_000), ms(8_000), ms(15_000), ms(15_000), ms(15_000)]
        );
    }

    #[test]
    fn error_collections_read_as_one_line() {
        let body = r#"{"errorMessages":["Field 'priority' is required"],"errors":{"labels":"Field 'labels' cannot be set."}}"#;
        let collection: ErrorCollection = serde_json::from_str(body).unwrap();
        assert_eq!(
            collection.to_text(),
            "Field 'priority' is required; labels: Field 'labels' cannot be set."
        );
    }

    #[test]
    fn the_last_page_is_recognised_however_jira_says_it() {
        let absent: SearchPage = serde_json::from_str(r#"{"issues":[]}"#).unwrap();
        assert_eq!(absent.next_page_token(), None);
        let last: SearchPage =
            serde_json::from_str(r#"{"issues":[],"nextPageToken":"t","isLast":true}"#).unwrap();
        assert_eq!(last.next_page_token(), None);
        let more: SearchPage =
            serde_json::from_str(r#"{"issues":[],"nextPageToken":"t","isLast":false}"#).unwrap();
        assert_eq!(more.next_page_token(), Some("t"));
    }

    /// Error bodies that are not JIRA's JSON, as sites answer them. HTML page: our own text in the
    /// shape reported at https://community.atlassian.com/forums/Jira-questions/Intermittent-HTTP-400-Bad-Request-from-Jira-REST-API-rest-api-3/qaq-p/3240036
    /// (a servlet error page with an inline style); plain text with CR LF: the shape of a gateway's
    /// `502 Bad Gateway` answer.
    #[test]
    fn error_bodies_that_are_not_json_read_as_one_line() {
        let cases = [
            (
                "<!doctype html>\r\n<html lang=\"en\"><head><title>HTTP Status 400 – Bad Request</title>\n<style type=\"text/css\">body {font-family:Tahoma;} h1 {color:white;}</style></head>\n<body><h1>HTTP Status 400 – Bad Request</h1></body></html>",
                "an HTML page, not JIRA's JSON: HTTP Status 400 – Bad Request HTTP Status 400 – Bad Request",
            ),
            ("Bad Gateway\r\nupstream connect error\n", "Bad Gateway upstream connect error"),
            ("", ""),
        ];
        for (body, expected) in cases {
            assert_eq!(describe_body(body), expected, "{body:?}");
        }
        let multi = ErrorCollection { error_messages: vec!["first\nsecond".into()], ..Default::default() };
        assert_eq!(one_line(&multi.to_text(), 100), "first second");
    }

    #[test]
    fn a_bulk_task_reporting_failed_issues_is_recognised() {
        assert_eq!(move_failures(&json!({"status": "COMPLETE"})), None);
        assert_eq!(
            move_failures(&json!({"failedAccessibleIssues": {}, "invalidOrInaccessibleIssueCount": 0})),
            None
        );
        assert_eq!(
            move_failures(&json!({"failedAccessibleIssues":
                {"10001": ["The issue type is not valid in the target project."]}})),
            Some("issue 10001: The issue type is not valid in the target project.".into())
        );
        assert_eq!(
            move_failures(&json!({"failedAccessibleIssues": {}, "invalidOrInaccessibleIssueCount": 2})),
            Some("2 issue(s) invalid or not accessible to the bot".into())
        );
    }

    #[test]
    fn jira_times_parse() {
        let t = parse_jira_time("2026-11-27T09:00:00.000+0000").unwrap();
        assert_eq!(format_jira_time(t), "2026-11-27T09:00:00.000+0000");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client =
            JiraClient::new(JiraClientConfig::new("http://127.0.0.1:1", "a@b.c", Secret::new("hunter2")))
                .unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
