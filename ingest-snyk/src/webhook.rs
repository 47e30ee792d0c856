//! `POST /webhooks/snyk`: Snyk v1 webhooks.
//!
//! 1. A body over the configured size gets 413 before it is read whole.
//! 2. `X-Hub-Signature: sha256=<hex>` must be the HMAC-SHA256 of the raw body under the shared
//!    secret, compared in constant time; missing or wrong → 401, nothing published.
//! 3. `X-Snyk-Event`: `ping/v0` is answered 200; `project_snapshot/v0` goes on; other events
//!    are acknowledged (202) and dropped; a `project_snapshot` of another version is kept as a
//!    dead letter (its shape may have changed) and refused with 400.
//! 4. A delivery whose `X-Snyk-Transport-ID` was already processed is answered 200 and skipped.
//! 5. A body that is not a `project_snapshot` body is dead-lettered with the reason (400).
//! 6. The project is refreshed from the REST API (the webhook is a trigger, the API the truth)
//!    with the base image the webhook reports; then the delivery is remembered. If the refresh
//!    fails the answer is 503, so Snyk may deliver again.
//! 7. Transport ids are not signed, so a replayed body with a new id passes 4. Refreshes of one
//!    project coalesce: within `--snyk-webhook-coalesce` of its last refresh, a delivery only
//!    makes sure one more refresh runs at the end of the window (202 `coalesced`), so any
//!    number of replays costs at most two refreshes per window and the last word is still
//!    read from the API.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bus::JsonKv;
use serde_json::json;
use service_kit::Secret;
use snyk_policy::BaseImage;
use snyk_policy::webhook::parse_webhook_body;

use crate::sync::{Org, Syncer, dead_letter};

/// The path Snyk delivers to.
pub const PATH: &str = "/webhooks/snyk";

/// What the webhook needs.
pub struct WebhookState {
    pub secret: Secret,
    pub syncer: Arc<Syncer>,
    pub orgs: Vec<Org>,
    pub deliveries: JsonKv<serde_json::Value>,
    pub coalescer: Coalescer,
}

/// When each project was last refreshed after a webhook, and which have a refresh pending at
/// the end of their window.
pub struct Coalescer {
    window: std::time::Duration,
    projects: std::sync::Mutex<std::collections::HashMap<String, CoalesceState>>,
}

#[derive(Debug, Clone, Copy)]
struct CoalesceState {
    last_refresh: tokio::time::Instant,
    trailing_pending: bool,
}

/// What to do with a delivery for a project.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Refresh now.
    Now,
    /// A refresh runs at this instant (already planned, or planned by this delivery).
    Later { at: tokio::time::Instant, newly_planned: bool },
}

impl Coalescer {
    /// A zero window turns coalescing off.
    pub fn new(window: std::time::Duration) -> Self {
        Coalescer { window, projects: Default::default() }
    }

    fn plan(&self, project: &str) -> Plan {
        let now = tokio::time::Instant::now();
        let mut projects = self.projects.lock().expect("coalescer lock");
        // Forget projects whose window is long over, so the map stays small.
        projects.retain(|_, s| s.trailing_pending || now.duration_since(s.last_refresh) < self.window * 4);
        match projects.get_mut(project) {
            Some(state) if !self.window.is_zero() && now.duration_since(state.last_refresh) < self.window => {
                let at = state.last_refresh + self.window;
                let newly_planned = !state.trailing_pending;
                state.trailing_pending = true;
                Plan::Later { at, newly_planned }
            }
            _ => {
                projects
                    .insert(project.to_owned(), CoalesceState { last_refresh: now, trailing_pending: false });
                Plan::Now
            }
        }
    }

    /// The trailing refresh starts now.
    fn trailing_started(&self, project: &str) {
        let mut projects = self.projects.lock().expect("coalescer lock");
        projects.insert(
            project.to_owned(),
            CoalesceState { last_refresh: tokio::time::Instant::now(), trailing_pending: false },
        );
    }
}

/// The webhook route, with its body limit.
pub fn router(state: Arc<WebhookState>, max_bytes: usize) -> Router {
    Router::new().route(PATH, post(receive)).layer(DefaultBodyLimit::max(max_bytes)).with_state(state)
}

fn answer(status: StatusCode, outcome: &'static str, detail: impl Into<String>) -> Response {
    metrics::counter!("itk_snyk_webhooks_total", "outcome" => outcome).increment(1);
    (status, axum::Json(json!({"outcome": outcome, "detail": detail.into()}))).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(State(state): State<Arc<WebhookState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !service_kit::hub_signature_is_valid(&state.secret, &body, header(&headers, "x-hub-signature")) {
        tracing::warn!(bytes = body.len(), "Snyk webhook refused: missing or wrong X-Hub-Signature.");
        return answer(StatusCode::UNAUTHORIZED, "bad_signature", "missing or wrong X-Hub-Signature");
    }
    let event = header(&headers, "x-snyk-event").unwrap_or("");
    let (name, version) = event.split_once('/').unwrap_or((event, ""));
    match (name, version) {
        ("ping", _) => return answer(StatusCode::OK, "pong", "ping received"),
        ("project_snapshot", "v0") => {}
        ("project_snapshot", other) => {
            let reason =
                format!("project_snapshot webhook of unsupported version {other:?} (this build reads v0)");
            return refuse_as_dead_letter(&state, &body, reason).await;
        }
        _ => return answer(StatusCode::ACCEPTED, "ignored", format!("event {event:?} is not used")),
    }
    let transport_id = header(&headers, "x-snyk-transport-id").map(str::to_owned);
    let marker = transport_id.as_deref().map(delivery_key);
    if let Some(marker) = &marker {
        match state.deliveries.get(marker).await {
            Ok(Some(_)) => return answer(StatusCode::OK, "duplicate", "delivery already processed"),
            Ok(None) => {}
            Err(error) => return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error.to_string()),
        }
    }
    let webhook = match parse_webhook_body(&body) {
        Ok(webhook) => webhook,
        Err(error) => {
            let reason = format!("malformed Snyk project_snapshot webhook body: {error}");
            return refuse_as_dead_letter(&state, &body, reason).await;
        }
    };
    let Some(org) = state.orgs.iter().find(|o| o.id.eq_ignore_ascii_case(&webhook.org.id)) else {
        tracing::warn!(org = %webhook.org.id, "Snyk webhook for an org this service does not ingest.");
        return answer(StatusCode::ACCEPTED, "ignored", "org not configured");
    };
    let base_image = webhook
        .project
        .image_base_image
        .clone()
        .filter(|image| !image.trim().is_empty())
        .map(|image| BaseImage { image, recommendations: base_image_advice(&webhook.project.other) });
    let coalesce_key = format!("{}/{}", org.id, webhook.project.id);
    if let Plan::Later { at, newly_planned } = state.coalescer.plan(&coalesce_key) {
        if newly_planned {
            let (state, org, project) = (state.clone(), org.clone(), webhook.project.id.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                state.coalescer.trailing_started(&coalesce_key);
                match state.syncer.refresh_project(&org, &project, base_image).await {
                    Ok(published) => {
                        tracing::info!(project = %project, published, "Coalesced Snyk webhook refresh done.")
                    }
                    Err(error) => tracing::error!(%error, project = %project,
                        "Coalesced refresh after Snyk webhooks failed; the next pull or sync catches up."),
                }
            });
        }
        remember_delivery(&state, marker.as_deref(), transport_id.as_deref(), &webhook.project.id).await;
        metrics::counter!("itk_snyk_webhook_refreshes_coalesced_total").increment(1);
        return answer(
            StatusCode::ACCEPTED,
            "coalesced",
            "a refresh of this project runs at the end of its window",
        );
    }
    match state.syncer.refresh_project(org, &webhook.project.id, base_image).await {
        Ok(published) => {
            remember_delivery(&state, marker.as_deref(), transport_id.as_deref(), &webhook.project.id).await;
            let detail =
                if published { "project refreshed and published" } else { "project refreshed, unchanged" };
            answer(StatusCode::ACCEPTED, "refreshed", detail)
        }
        Err(crate::sync::SyncError::Api(crate::client::ApiError::Malformed { url, reason, body })) => {
            let reason = format!("malformed Snyk page from {url}: {reason}");
            if let Err(error) = dead_letter(state.syncer.publisher(), &body, &reason, &url).await {
                tracing::error!(%error, "Could not store a dead letter.");
            }
            answer(StatusCode::SERVICE_UNAVAILABLE, "refresh_failed", reason)
        }
        Err(error) => {
            tracing::error!(%error, project = %webhook.project.id, "Refresh after a Snyk webhook failed.");
            answer(StatusCode::SERVICE_UNAVAILABLE, "refresh_failed", error.to_string())
        }
    }
}

/// Remembers a processed delivery, so the same transport id is skipped next time.
async fn remember_delivery(
    state: &WebhookState,
    marker: Option<&str>,
    transport_id: Option<&str>,
    project: &str,
) {
    if let Some(marker) = marker {
        let seen = json!({"transport_id": transport_id, "project": project});
        if let Err(error) = state.deliveries.create(marker, &seen).await {
            tracing::debug!(%error, "Webhook delivery marker not written (already there?).");
        }
    }
}

async fn refuse_as_dead_letter(state: &WebhookState, body: &[u8], reason: String) -> Response {
    tracing::warn!(%reason, "Snyk webhook dead-lettered.");
    if let Err(error) = dead_letter(state.syncer.publisher(), body, &reason, "webhook").await {
        tracing::error!(%error, "Could not store a dead letter.");
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error.to_string());
    }
    answer(StatusCode::BAD_REQUEST, "dead_lettered", reason)
}

/// `snyk.webhook.<transport id>` (made key-safe).
fn delivery_key(transport_id: &str) -> String {
    let token: String = transport_id
        .chars()
        .take(128)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    format!("snyk.webhook.{token}")
}

/// The base image advice of a v1 project (`baseImageRemediation.advice[].message`), if given.
fn base_image_advice(project: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    project
        .get("baseImageRemediation")
        .and_then(|r| r.get("advice"))
        .and_then(|a| a.as_array())
        .map(|advice| {
            advice
                .iter()
                .filter_map(|a| a.get("message").and_then(|m| m.as_str()))
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
