//! The EventBridge API destination endpoint: `POST /events/aws-health`, authenticated by a
//! shared secret in a header (compared in constant time). A bad secret gets 401 and a body over
//! the limit 413, before anything is read or published.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use service_kit::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::intake::Intake;

pub const PATH: &str = "/events/aws-health";

struct Endpoint {
    intake: Intake,
    secret: Secret,
    header: String,
    max_bytes: usize,
}

/// The route, to merge into the service's router.
pub fn router(intake: Intake, secret: Secret, header: String, max_bytes: u64) -> Router {
    let endpoint = Arc::new(Endpoint { intake, secret, header, max_bytes: max_bytes as usize });
    Router::new().route(PATH, post(receive)).layer(DefaultBodyLimit::disable()).with_state(endpoint)
}

/// Compares digests so neither the secret's content nor its length leaks through timing.
fn authorised(endpoint: &Endpoint, headers: &HeaderMap) -> bool {
    let Some(given) = headers.get(endpoint.header.as_str()) else { return false };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(endpoint.secret.expose().as_bytes());
    bool::from(given.ct_eq(&expected))
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn receive(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap, body: Body) -> Response {
    if !authorised(&endpoint, &headers) {
        metrics::counter!("ingest_health_webhook_refused_total", "reason" => "secret").increment(1);
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "missing or wrong secret"}));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        metrics::counter!("ingest_health_webhook_refused_total", "reason" => "size").increment(1);
        reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("the body is larger than {} bytes", endpoint.max_bytes)}),
        )
    };
    if declared.is_some_and(|length| length > endpoint.max_bytes) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, endpoint.max_bytes).await else {
        return too_large();
    };
    match endpoint.intake.raw_events(&bytes, "webhook") {
        Ok(events) => match endpoint.intake.publish(&events).await {
            Ok(published) => reply(
                StatusCode::ACCEPTED,
                json!({"stored": published.stored, "duplicates": published.duplicates}),
            ),
            // EventBridge retries 5xx: nothing is lost.
            Err(error) => {
                tracing::warn!(%error, "Publishing a webhook event failed.");
                reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "cannot store the event now; retry"}))
            }
        },
        Err(malformed) => match endpoint.intake.dead_letter(&bytes, &malformed.0, "webhook").await {
            Ok(()) => reply(StatusCode::BAD_REQUEST, json!({"error": malformed.0, "dead_lettered": true})),
            Err(error) => {
                tracing::warn!(%error, "Dead-lettering a webhook body failed.");
                reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "cannot store the body now; retry"}))
            }
        },
    }
}
