//! `POST /webhooks/jira`: JIRA Cloud's admin webhook for `issuelink_created`, on the writer's HTTP
//! listener. A body whose `X-Hub-Signature` does not match the secret is refused (401) before it
//! is read as JSON. A link JIRA cannot be asked about now (outage, rate limit) is answered 503 so
//! that JIRA delivers it again; anything else is 204 (acted on, already done or not ours).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bus::{Classify, ErrorClass};
use service_kit::Secret;

use crate::writer::{Writer, parse_webhook};

/// The path JIRA's webhook is registered with.
pub const PATH: &str = "/webhooks/jira";

struct Receiver {
    writer: Arc<Writer>,
    secret: Secret,
}

/// The webhook route, to merge into the health router.
pub fn router(writer: Arc<Writer>, secret: Secret) -> Router {
    Router::new().route(PATH, post(receive)).with_state(Arc::new(Receiver { writer, secret }))
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok());
    if !service_kit::hub_signature_is_valid(&receiver.secret, &body, signature) {
        metrics::counter!("itk_jira_webhooks_total", "outcome" => "bad_signature").increment(1);
        tracing::warn!("A JIRA webhook with a missing or wrong signature was refused.");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some((event, source, destination)) = parse_webhook(&json) else {
        metrics::counter!("itk_jira_webhooks_total", "outcome" => "other_event").increment(1);
        return StatusCode::NO_CONTENT;
    };
    match receiver.writer.sync_webhook_link(&event, &source, &destination).await {
        Ok(outcome) => {
            tracing::debug!(?outcome, link = %event.link_id, "Issue link webhook handled.");
            metrics::counter!("itk_jira_webhooks_total", "outcome" => "handled").increment(1);
            StatusCode::NO_CONTENT
        }
        Err(error) => {
            let text = bus::safe::header_value(&error.to_string());
            match error.class() {
                ErrorClass::DeadLetter | ErrorClass::Ack => {
                    metrics::counter!("itk_jira_webhooks_total", "outcome" => "failed").increment(1);
                    tracing::error!(error = %text, link = %event.link_id, "Issue link webhook could not be acted on.");
                    StatusCode::NO_CONTENT
                }
                _ => {
                    metrics::counter!("itk_jira_webhooks_total", "outcome" => "retry").increment(1);
                    tracing::warn!(error = %text, link = %event.link_id, "Issue link webhook not handled yet; JIRA will deliver it again.");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }
    }
}
