//! A local AWS Health API for tests and the demo.
//!
//! It speaks both wire protocols of the service: AWS JSON 1.1 (`POST /` with
//! `X-Amz-Target: AWSHealth_20160804.<Operation>` and `Content-Type: application/x-amz-json-1.1`)
//! and Smithy RPC v2 CBOR (`POST /service/AWSHealth_20160804/operation/<Operation>`), which
//! current releases of `aws-sdk-health` send. Errors are AWS error shapes
//! (`{"__type": ..., "message": ...}`). Timestamps are epoch seconds.
//!
//! Operations: `DescribeEvents`, `DescribeEventDetails`, `DescribeAffectedEntities` and the
//! organization variants `DescribeEventsForOrganization`, `DescribeEventDetailsForOrganization`,
//! `DescribeAffectedAccountsForOrganization`, `DescribeAffectedEntitiesForOrganization`, with
//! filters by `lastUpdatedTime` and `nextToken` pagination in small pages, and
//! `DescribeHealthServiceStatusForOrganization` (whether the organizational view is on;
//! <https://docs.aws.amazon.com/health/latest/APIReference/API_DescribeHealthServiceStatusForOrganization.html>).
//! [`AwsHealthSim::require_subscription`] answers every call with `SubscriptionRequiredException`. Requests must be
//! SigV4-signed (any credentials; the signature is not verified). Tests change the events while
//! it runs and read how many calls each operation got.

mod model;
pub mod moto;
mod ops;
mod protocol;
pub mod seed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use model::{SimEntity, SimEvent, epoch};
pub use ops::{OPERATIONS, PageLimits};
pub use protocol::ApiError;

/// The service's target prefix (`X-Amz-Target`) and RPC v2 service name.
pub const TARGET_PREFIX: &str = "AWSHealth_20160804";

#[derive(Default)]
struct SimState {
    events: Vec<SimEvent>,
    limits: PageLimits,
    calls: BTreeMap<String, u64>,
    /// The account has no Business, Enterprise On-Ramp or Enterprise support plan.
    subscription_required: bool,
    /// The organizational view is turned off (`enable-health-service-access-for-organization`
    /// was never run).
    organization_view_disabled: bool,
    /// Operations whose later pages hand back the token they were asked with (a paging loop).
    repeat_tokens: std::collections::BTreeSet<String>,
}

/// A running simulator. Dropping it stops the server.
pub struct AwsHealthSim {
    address: SocketAddr,
    state: Arc<Mutex<SimState>>,
    shutdown: CancellationToken,
}

impl Drop for AwsHealthSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl AwsHealthSim {
    /// Starts an empty simulator on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Vec::new()).await
    }

    /// Starts a simulator holding `events`.
    pub async fn start_with(events: Vec<SimEvent>) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), events).await
    }

    /// Starts a simulator holding `events` on `listen` (the `simulators` command and compose
    /// use fixed ports).
    pub async fn start_on(listen: SocketAddr, events: Vec<SimEvent>) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(SimState { events, ..SimState::default() }));
        let router = Router::new()
            .route("/", post(json_1_1))
            .route("/service/{service}/operation/{operation}", post(rpc_v2_cbor))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
            if let Err(error) = served {
                tracing::error!(%error, "AWS Health simulator stopped.");
            }
        });
        Ok(AwsHealthSim { address, state, shutdown })
    }

    /// `http://127.0.0.1:<port>`: the endpoint URL for the SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        f(&mut self.state.lock().expect("simulator state lock"))
    }

    /// Adds an event, or replaces the one with the same ARN.
    pub fn put_event(&self, event: SimEvent) {
        self.with_state(|s| match s.events.iter_mut().find(|e| e.arn == event.arn) {
            Some(existing) => *existing = event,
            None => s.events.push(event),
        });
    }

    /// Changes the event with `arn`; returns whether there was one.
    pub fn modify_event(&self, arn: &str, change: impl FnOnce(&mut SimEvent)) -> bool {
        self.with_state(|s| s.events.iter_mut().find(|e| e.arn == arn).map(change).is_some())
    }

    pub fn events(&self) -> Vec<SimEvent> {
        self.with_state(|s| s.events.clone())
    }

    pub fn clear(&self) {
        self.with_state(|s| s.events.clear());
    }

    /// Sets the largest page each listing returns.
    pub fn set_page_limits(&self, limits: PageLimits) {
        self.with_state(|s| s.limits = limits);
    }

    /// Calls received per operation.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.with_state(|s| s.calls.clone())
    }

    pub fn total_calls(&self) -> u64 {
        self.with_state(|s| s.calls.values().sum())
    }

    pub fn reset_calls(&self) {
        self.with_state(|s| s.calls.clear());
    }

    fn call(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        call(&self.state, operation, input)
    }

    /// Every call answers `SubscriptionRequiredException` while `required`, as the Health API does
    /// for an account without a Business, Enterprise On-Ramp or Enterprise support plan
    /// (<https://docs.aws.amazon.com/health/latest/ug/health-api.html>).
    pub fn require_subscription(&self, required: bool) {
        self.state.lock().expect("simulator state lock").subscription_required = required;
    }

    /// Whether `DescribeHealthServiceStatusForOrganization` answers `ENABLED` (the default) or
    /// `DISABLED`, and the organization operations work.
    pub fn set_organization_view(&self, enabled: bool) {
        self.state.lock().expect("simulator state lock").organization_view_disabled = !enabled;
    }

    /// A fault: from its second page on, `operation` answers with the very `nextToken` it was
    /// asked with, as a broken paginator would (the client must notice and stop paging).
    pub fn repeat_page_tokens(&self, operation: &str, repeat: bool) {
        let mut state = self.state.lock().expect("simulator state lock");
        if repeat {
            state.repeat_tokens.insert(operation.to_owned());
        } else {
            state.repeat_tokens.remove(operation);
        }
    }

    /// Runs an operation in process (for tools that want the responses without HTTP).
    pub fn invoke(&self, operation: &str, input: &Value) -> Result<Value, ApiError> {
        self.call(operation, input)
    }
}

fn call(state: &Mutex<SimState>, operation: &str, input: &Value) -> Result<Value, ApiError> {
    let mut state = state.lock().expect("simulator state lock");
    *state.calls.entry(operation.to_owned()).or_default() += 1;
    if state.subscription_required {
        return Err(ApiError {
            status: 400,
            kind: "SubscriptionRequiredException",
            message: "The AWS Health API is only available to accounts with a Business, Enterprise On-Ramp, or Enterprise Support plan.".into(),
        });
    }
    if operation == ops::SERVICE_STATUS {
        let status = if state.organization_view_disabled { "DISABLED" } else { "ENABLED" };
        return Ok(serde_json::json!({"healthServiceAccessStatusForOrganization": status}));
    }
    let mut output = ops::dispatch(operation, input, &state.events, state.limits)?;
    if state.repeat_tokens.contains(operation)
        && let Some(asked) = input.get("nextToken").filter(|t| t.is_string())
        && output.get("nextToken").is_some()
    {
        output["nextToken"] = asked.clone();
    }
    Ok(output)
}

fn signed(headers: &HeaderMap) -> Result<(), ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if authorization.starts_with("AWS4-HMAC-SHA256 ") {
        Ok(())
    } else {
        Err(ApiError {
            status: 403,
            kind: "MissingAuthenticationTokenException",
            message: "Missing Authentication Token: requests must be signed with SigV4".into(),
        })
    }
}

async fn json_1_1(State(state): State<Arc<Mutex<SimState>>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        signed(&headers)?;
        let content_type =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !content_type.starts_with("application/x-amz-json-1.1") {
            return Err(ApiError::serialization(format!(
                "Content-Type must be application/x-amz-json-1.1, not {content_type:?}"
            )));
        }
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let operation = target
            .strip_prefix(TARGET_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| ApiError::unknown_operation(target))?;
        let input: Value = if body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::serialization(format!("body is not JSON: {e}")))?
        };
        call(&state, operation, &input)
    })();
    let (status, value) = match result {
        Ok(value) => (200, value),
        Err(error) => (error.status, error.to_json()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], value.to_string()).into_response()
}

async fn rpc_v2_cbor(
    State(state): State<Arc<Mutex<SimState>>>,
    Path((service, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        signed(&headers)?;
        if service != TARGET_PREFIX {
            return Err(ApiError::unknown_operation(&format!("{service}.{operation}")));
        }
        if headers.get("smithy-protocol").and_then(|v| v.to_str().ok()) != Some("rpc-v2-cbor") {
            return Err(ApiError::serialization("smithy-protocol: rpc-v2-cbor header is required"));
        }
        let input = protocol::cbor_to_json(&body)?;
        call(&state, &operation, &input)
    })();
    let (status, value) = match result {
        Ok(value) => (200, value),
        Err(error) => (error.status, error.to_json()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            (header::CONTENT_TYPE, "application/cbor"),
            (header::HeaderName::from_static("smithy-protocol"), "rpc-v2-cbor"),
        ],
        protocol::json_to_cbor(&value),
    )
        .into_response()
}
