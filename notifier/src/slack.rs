//! The Slack Web API (`chat.postMessage`, `conversations.history`) and incoming webhooks, with
//! per-channel pacing and typed, classified errors.

use std::collections::HashMap;
use std::time::Duration;

use bus::{Classify, ErrorClass};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::Secret;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::message::SlackMessage;

/// The `event_type` of the metadata on every message the notifier posts.
pub const METADATA_EVENT_TYPE: &str = "infra_tickets_notice";

/// Where a team's messages go.
#[derive(Clone)]
pub enum Destination {
    /// `chat.postMessage` to a channel id with the bot token.
    Channel(String),
    /// An incoming webhook; `name` identifies it in logs and markers (the URL is secret).
    Webhook { name: String, url: Secret },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Destination {
    /// `C0PLATFORM` or `webhook:<name>`: safe to log.
    pub fn label(&self) -> String {
        match self {
            Destination::Channel(id) => id.clone(),
            Destination::Webhook { name, .. } => format!("webhook:{name}"),
        }
    }
}

/// A failed Slack call.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// 429: wait `retry_after` before the next message.
    #[error("Slack rate-limited {operation}; retry after {retry_after:?}")]
    RateLimited { operation: &'static str, retry_after: Duration },
    /// Slack refused the message for good: the channel, the payload or the webhook is wrong.
    #[error("Slack refused {operation} to {destination}: {code}")]
    Refused { operation: &'static str, destination: String, code: String },
    /// The credentials do not work (`invalid_auth`, `token_revoked`, `missing_scope`…).
    #[error("Slack denied {operation} ({code}): check the bot token, its scopes or the webhook")]
    Unauthorized { operation: &'static str, code: String, pause: Duration },
    /// Nothing was sent: Slack could not be reached.
    #[error("Slack {operation} failed before sending: {message}")]
    Unreachable { operation: &'static str, message: String },
    /// The request may or may not have been processed (timeout, 5xx, unreadable answer).
    #[error("Slack {operation} failed with an unknown outcome: {message}")]
    Uncertain { operation: &'static str, message: String },
}

impl SlackError {
    /// Slack certainly did not post the message.
    pub fn not_posted(&self) -> bool {
        !matches!(self, SlackError::Uncertain { .. })
    }
}

impl Classify for SlackError {
    fn class(&self) -> ErrorClass {
        match self {
            SlackError::RateLimited { retry_after, .. } => ErrorClass::Retry { after: Some(*retry_after) },
            SlackError::Refused { .. } => ErrorClass::DeadLetter,
            SlackError::Unauthorized { pause, .. } => ErrorClass::Pause { after: *pause },
            SlackError::Unreachable { .. } | SlackError::Uncertain { .. } => {
                ErrorClass::Retry { after: None }
            }
        }
    }
}

/// Codes that mean the credentials, not the message, are wrong.
fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "not_authed"
            | "invalid_auth"
            | "token_revoked"
            | "token_expired"
            | "account_inactive"
            | "missing_scope"
            | "no_permission"
            | "not_allowed_token_type"
            | "ekm_access_denied"
            | "team_access_not_granted"
            | "invalid_token"
    )
}

/// Codes that mean Slack had a problem, not us: try again.
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" | "ratelimited"
    )
}

/// How the client talks to Slack.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// `https://slack.com/api`.
    pub api_url: String,
    pub bot_token: Option<Secret>,
    pub timeout: Duration,
    /// At most one message per channel per this interval (Slack: one per second).
    pub channel_interval: Duration,
    pub auth_pause: Duration,
}

/// The Slack client. Cheap to share (`Arc`).
pub struct SlackClient {
    http: reqwest::Client,
    settings: SlackSettings,
    pacer: ChannelPacer,
}

impl SlackClient {
    pub fn new(settings: SlackSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
        let pacer = ChannelPacer::new(settings.channel_interval);
        Ok(SlackClient { http, settings, pacer })
    }

    /// Waits for the destination's next free slot (one message per interval per channel).
    pub async fn wait_turn(&self, destination: &Destination) {
        self.pacer.wait_turn(&destination.label()).await;
    }

    /// Holds every message to the destination back until `retry_after` has passed.
    pub async fn hold(&self, destination: &Destination, retry_after: Duration) {
        self.pacer.hold(&destination.label(), retry_after).await;
    }

    /// Posts a message; returns Slack's `ts` (chat.postMessage) or `None` (webhook).
    pub async fn post(
        &self,
        destination: &Destination,
        message: &SlackMessage,
        idempotency_key: &str,
        issue_key: &str,
    ) -> Result<Option<String>, SlackError> {
        match destination {
            Destination::Channel(channel) => {
                let body = json!({
                    "channel": channel,
                    "text": message.text,
                    "blocks": message.blocks,
                    "unfurl_links": false,
                    "metadata": {
                        "event_type": METADATA_EVENT_TYPE,
                        "event_payload": {"idempotency_key": idempotency_key, "issue_key": issue_key},
                    },
                });
                let answer = self.web_api("chat.postMessage", &body, channel).await?;
                Ok(answer.get("ts").and_then(Value::as_str).map(str::to_owned))
            }
            Destination::Webhook { name, url } => self.webhook(name, url, message).await.map(|()| None),
        }
    }

    /// Looks for a message carrying `idempotency_key` in its metadata, posted to `channel` after
    /// `oldest`; returns its `ts`.
    pub async fn find_in_history(
        &self,
        channel: &str,
        oldest: DateTime<Utc>,
        idempotency_key: &str,
    ) -> Result<Option<String>, SlackError> {
        let oldest = format!("{}.{:06}", oldest.timestamp().max(0), oldest.timestamp_subsec_micros());
        let mut cursor = String::new();
        for _ in 0..100 {
            let body = json!({
                "channel": channel,
                "oldest": oldest,
                "inclusive": true,
                "include_all_metadata": true,
                "limit": 200,
                "cursor": cursor,
            });
            let answer = self.web_api("conversations.history", &body, channel).await?;
            let messages = answer.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
            for message in messages {
                let payload = message.get("metadata").and_then(|m| m.get("event_payload"));
                if payload.and_then(|p| p.get("idempotency_key")).and_then(Value::as_str)
                    == Some(idempotency_key)
                {
                    return Ok(message.get("ts").and_then(Value::as_str).map(str::to_owned));
                }
            }
            cursor = answer
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// Calls a Web API method with a JSON body (`conversations.history` takes a form).
    async fn web_api(
        &self,
        method: &'static str,
        body: &Value,
        destination: &str,
    ) -> Result<Value, SlackError> {
        let Some(token) = &self.settings.bot_token else {
            return Err(SlackError::Unauthorized {
                operation: method,
                code: "not_authed (no --slack-bot-token / SLACK_BOT_TOKEN)".into(),
                pause: self.settings.auth_pause,
            });
        };
        let url = format!("{}/{method}", self.settings.api_url.trim_end_matches('/'));
        let request = self.http.post(url).bearer_auth(token.expose());
        let request = if method == "chat.postMessage" {
            request.json(body)
        } else {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_encode(body))
        };
        let response = request.send().await.map_err(|e| transport_error(method, e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SlackError::RateLimited { operation: method, retry_after: retry_after(&response) });
        }
        if status.is_server_error() {
            return Err(SlackError::Uncertain { operation: method, message: format!("HTTP {status}") });
        }
        let answer: Value = response.json().await.map_err(|e| SlackError::Uncertain {
            operation: method,
            message: format!("unreadable answer: {e}"),
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        let code = answer.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
        let detail = answer
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
            .filter(|d| !d.is_empty());
        let code = match detail {
            Some(detail) => format!("{code} ({detail})"),
            None => code,
        };
        Err(classify_code(method, destination, code, self.settings.auth_pause))
    }

    async fn webhook(&self, name: &str, url: &Secret, message: &SlackMessage) -> Result<(), SlackError> {
        const OPERATION: &str = "incoming webhook";
        let body = json!({"text": message.text, "blocks": message.blocks, "unfurl_links": false});
        let response = self
            .http
            .post(url.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(OPERATION, e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SlackError::RateLimited {
                operation: OPERATION,
                retry_after: retry_after(&response),
            });
        }
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() {
            return Err(SlackError::Uncertain { operation: OPERATION, message: format!("HTTP {status}") });
        }
        let code = text.trim().chars().take(200).collect::<String>();
        let code = if code.is_empty() { format!("HTTP {status}") } else { code };
        let destination = format!("webhook:{name}");
        if status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && is_auth_code(&code)) {
            return Err(SlackError::Unauthorized {
                operation: OPERATION,
                code,
                pause: self.settings.auth_pause,
            });
        }
        Err(SlackError::Refused { operation: OPERATION, destination, code })
    }
}

fn classify_code(operation: &'static str, destination: &str, code: String, pause: Duration) -> SlackError {
    let bare = code.split(' ').next().unwrap_or_default();
    if is_auth_code(bare) {
        SlackError::Unauthorized { operation, code, pause }
    } else if is_transient_code(bare) {
        SlackError::Unreachable { operation, message: code }
    } else {
        SlackError::Refused { operation, destination: destination.to_owned(), code }
    }
}

fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds.max(1))
}

/// A transport error without the URL (a webhook URL is a secret).
fn transport_error(operation: &'static str, error: reqwest::Error) -> SlackError {
    let connect = error.is_connect();
    let message = if error.is_timeout() { "timed out".to_owned() } else { error.without_url().to_string() };
    if connect {
        SlackError::Unreachable { operation, message }
    } else {
        SlackError::Uncertain { operation, message }
    }
}

fn form_encode(body: &Value) -> String {
    let pairs: Vec<(String, String)> = body
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// One message per interval per channel, shared by every task of the process.
struct ChannelPacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl ChannelPacer {
    fn new(interval: Duration) -> Self {
        ChannelPacer { interval, next: Mutex::new(HashMap::new()) }
    }

    async fn wait_turn(&self, channel: &str) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.get(channel).copied().unwrap_or(now).max(now);
            next.insert(channel.to_owned(), slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    async fn hold(&self, channel: &str, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut next = self.next.lock().await;
        let entry = next.entry(channel.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        let pause = Duration::from_secs(1);
        assert!(matches!(
            classify_code("m", "C1", "invalid_auth".into(), pause),
            SlackError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify_code("m", "C1", "channel_not_found".into(), pause),
            SlackError::Refused { .. }
        ));
        assert!(matches!(
            classify_code("m", "C1", "internal_error".into(), pause),
            SlackError::Unreachable { .. }
        ));
        assert_eq!(classify_code("m", "C1", "not_in_channel".into(), pause).class(), ErrorClass::DeadLetter);
        assert_eq!(
            classify_code("m", "C1", "invalid_auth".into(), pause).class(),
            ErrorClass::Pause { after: pause }
        );
    }

    #[test]
    fn webhook_urls_never_print() {
        let destination =
            Destination::Webhook { name: "payments".into(), url: Secret::new("https://hooks/secret") };
        assert_eq!(format!("{destination:?}"), "webhook:payments");
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_interval_per_channel() {
        let pacer = ChannelPacer::new(Duration::from_secs(1));
        let start = Instant::now();
        pacer.wait_turn("C1").await;
        pacer.wait_turn("C2").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.wait_turn("C1").await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        pacer.hold("C2", Duration::from_secs(5)).await;
        pacer.wait_turn("C2").await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }
}
