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
    /// Slack refused the message itself for good (our payload is wrong): retrying cannot help.
    #[error("Slack refused {operation} to {destination}: {code}")]
    Refused { operation: &'static str, destination: String, code: String },
    /// One channel cannot take messages now (`channel_not_found`, `not_in_channel`,
    /// `is_archived`, `missing_scope` for its kind, `restricted_action`…): its messages wait
    /// until it works again; other channels go on.
    #[error(
        "Slack channel {destination} cannot take messages ({code}); its messages wait until it works again"
    )]
    ChannelUnavailable { operation: &'static str, destination: String, code: String, retry_after: Duration },
    /// The credentials do not work (`invalid_auth`, `token_revoked`, `account_inactive`…).
    #[error("Slack denied {operation} ({code}): check the bot token or the webhook")]
    Unauthorized { operation: &'static str, code: String, pause: Duration },
    /// Nothing was sent: Slack could not be reached.
    #[error("Slack {operation} failed before sending: {message}")]
    Unreachable { operation: &'static str, message: String },
    /// The request may or may not have been processed (`internal_error`, `fatal_error`, 5xx,
    /// a timeout or an unreadable answer after the request went out).
    #[error("Slack {operation} failed with an unknown outcome: {message}")]
    Uncertain { operation: &'static str, message: String },
}

impl SlackError {
    /// Slack certainly did not post the message.
    pub fn not_posted(&self) -> bool {
        !matches!(self, SlackError::Uncertain { .. })
    }

    /// The short reason a channel waits (`not_in_channel`), for metrics and readiness.
    pub fn channel_reason(&self) -> Option<&str> {
        match self {
            SlackError::ChannelUnavailable { code, .. } => Some(code.split(' ').next().unwrap_or(code)),
            _ => None,
        }
    }
}

impl Classify for SlackError {
    fn class(&self) -> ErrorClass {
        match self {
            SlackError::RateLimited { retry_after, .. } => ErrorClass::Retry { after: Some(*retry_after) },
            SlackError::Refused { .. } => ErrorClass::DeadLetter,
            SlackError::ChannelUnavailable { retry_after, .. } => {
                ErrorClass::Retry { after: Some(*retry_after) }
            }
            SlackError::Unauthorized { pause, .. } => ErrorClass::Pause { after: *pause },
            // Slack down (5xx, unreachable, timing out) is a pause, not a retry: a retry spends one
            // of the message's deliveries, so an outage longer than the redelivery schedule (about
            // ten minutes) would dead-letter every message in flight. A pause holds the message
            // in place and tries again, however long Slack is away; the marker and the channel's
            // history still settle a send whose outcome was unknown.
            SlackError::Unreachable { .. } | SlackError::Uncertain { .. } => {
                ErrorClass::Pause { after: SLACK_UNAVAILABLE_PAUSE }
            }
        }
    }
}

/// How long the consumer holds its message while Slack is down before trying again: short, since
/// one failed call (a single `internal_error`) also pauses; one call every two seconds is
/// nothing to a Slack that is coming back.
pub const SLACK_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);

/// Codes that mean the credentials, not one channel or message, are wrong: nothing can work
/// until an operator acts (https://docs.slack.dev/reference/methods/chat.postMessage#errors).
fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "not_authed"
            | "invalid_auth"
            | "token_revoked"
            | "token_expired"
            | "account_inactive"
            | "not_allowed_token_type"
            | "invalid_token"
            | "org_login_required"
    )
}

/// Codes that concern one channel (or, for webhooks, one webhook): that channel waits.
/// `missing_scope` belongs here: the bot token may post to public channels and still lack
/// `groups:history` for a private one. `no_service` and `channel_is_archived` are a webhook's.
fn is_channel_code(code: &str) -> bool {
    matches!(
        code,
        "channel_not_found"
            | "not_in_channel"
            | "is_archived"
            | "channel_is_archived"
            | "missing_scope"
            | "no_permission"
            | "restricted_action"
            | "restricted_action_read_only_channel"
            | "restricted_action_thread_only_channel"
            | "restricted_action_non_threadable_channel"
            | "ekm_access_denied"
            | "team_access_not_granted"
            | "access_denied"
            | "no_service"
            | "action_prohibited"
            | "posting_to_general_channel_denied"
    )
}

/// Codes Slack documents as "some aspect of the operation may have succeeded": the outcome is
/// unknown, so a post is settled from the channel history, never simply repeated.
fn is_uncertain_code(code: &str) -> bool {
    matches!(code, "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout")
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
    /// How soon a channel that could not take messages is tried again.
    pub channel_retry: Duration,
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
                    // Our own links only (see `message`): no mention or channel-name parsing,
                    // no previews of whatever a URL in the text points at.
                    "parse": "none",
                    "link_names": false,
                    "unfurl_links": false,
                    "unfurl_media": false,
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

    /// The bot token's scopes, from `auth.test`'s `x-oauth-scopes` header
    /// (https://docs.slack.dev/reference/methods/auth.test); `None` when the answer has no such
    /// header (a proxy in between may drop it), so the scopes cannot be told.
    pub async fn granted_scopes(&self) -> Result<Option<Vec<String>>, SlackError> {
        const METHOD: &str = "auth.test";
        let Some(token) = &self.settings.bot_token else {
            return Err(SlackError::Unauthorized {
                operation: METHOD,
                code: "not_authed (no --slack-bot-token / SLACK_BOT_TOKEN)".into(),
                pause: self.settings.auth_pause,
            });
        };
        let url = format!("{}/{METHOD}", self.settings.api_url.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| transport_error(METHOD, e))?;
        let scopes: Option<Vec<String>> =
            response.headers().get("x-oauth-scopes").and_then(|v| v.to_str().ok()).map(|listed| {
                listed.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
            });
        let status = response.status();
        if status.is_server_error() {
            return Err(SlackError::Unreachable { operation: METHOD, message: format!("HTTP {status}") });
        }
        let answer: Value = response.json().await.map_err(|e| SlackError::Unreachable {
            operation: METHOD,
            message: format!("unreadable answer: {e}"),
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(scopes);
        }
        let code = answer.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
        Err(classify_code(METHOD, "auth.test", code, &self.settings))
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
            .filter(|d| !d.is_empty())
            // `missing_scope` names the scope it wanted.
            .or_else(|| {
                answer.get("needed").and_then(Value::as_str).map(|needed| format!("needed: {needed}"))
            });
        let code = match detail {
            Some(detail) => format!("{code} ({detail})"),
            None => code,
        };
        Err(classify_code(method, destination, code, &self.settings))
    }

    async fn webhook(&self, name: &str, url: &Secret, message: &SlackMessage) -> Result<(), SlackError> {
        const OPERATION: &str = "incoming webhook";
        let body = json!({"text": message.text, "blocks": message.blocks, "unfurl_links": false, "unfurl_media": false});
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
        // A removed webhook, an archived channel, a webhook barred from its channel: that team's
        // messages wait; the others go on.
        if is_channel_code(&code)
            || matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::FORBIDDEN)
        {
            return Err(SlackError::ChannelUnavailable {
                operation: OPERATION,
                destination,
                code,
                retry_after: self.settings.channel_retry,
            });
        }
        Err(SlackError::Refused { operation: OPERATION, destination, code })
    }
}

/// A Web API `{"ok": false, "error": code}` as a typed error. `ratelimited` can come with
/// HTTP 200 too; it then waits the default second.
fn classify_code(
    operation: &'static str,
    destination: &str,
    code: String,
    settings: &SlackSettings,
) -> SlackError {
    let bare = code.split(' ').next().unwrap_or_default();
    if is_auth_code(bare) {
        SlackError::Unauthorized { operation, code, pause: settings.auth_pause }
    } else if is_channel_code(bare) {
        SlackError::ChannelUnavailable {
            operation,
            destination: destination.to_owned(),
            code,
            retry_after: settings.channel_retry,
        }
    } else if is_uncertain_code(bare) {
        SlackError::Uncertain { operation, message: code }
    } else if matches!(bare, "ratelimited" | "rate_limited") {
        SlackError::RateLimited { operation, retry_after: Duration::from_secs(1) }
    } else {
        SlackError::Refused { operation, destination: destination.to_owned(), code }
    }
}

/// Slack's `Retry-After` (seconds; an HTTP-date read too), capped by the shared rule so an absurd
/// value cannot overflow the pacer's `Instant`; at least a second, Slack's own unit.
fn retry_after(response: &reqwest::Response) -> Duration {
    retry_after_value(response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()))
}

fn retry_after_value(value: Option<&str>) -> Duration {
    value.and_then(bus::safe::retry_after).unwrap_or(Duration::from_secs(1)).max(Duration::from_secs(1))
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
    fn absurd_retry_after_values_are_capped_or_fall_back_to_a_second() {
        let one = Duration::from_secs(1);
        assert_eq!(retry_after_value(None), one);
        assert_eq!(retry_after_value(Some("0")), one);
        assert_eq!(retry_after_value(Some("30")), Duration::from_secs(30));
        assert_eq!(retry_after_value(Some("-5")), one);
        assert_eq!(retry_after_value(Some("18446744073709551615")), bus::safe::MAX_RETRY_AFTER);
        assert_eq!(retry_after_value(Some("Fri, 31 Dec 9999 23:59:59 GMT")), bus::safe::MAX_RETRY_AFTER);
        // What the pacer does with it must not overflow.
        let _ = Instant::now() + retry_after_value(Some("99999999999999999999999"));
    }

    #[test]
    fn codes_classify() {
        let pause = Duration::from_secs(1);
        let settings = SlackSettings {
            api_url: String::new(),
            bot_token: None,
            timeout: pause,
            channel_interval: pause,
            auth_pause: pause,
            channel_retry: Duration::from_secs(30),
        };
        let class = |code: &str| classify_code("chat.postMessage", "C1", code.into(), &settings);
        // The error codes chat.postMessage documents, by what they mean for the notifier
        // (https://docs.slack.dev/reference/methods/chat.postMessage#errors).
        for code in ["invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"] {
            assert_eq!(class(code).class(), ErrorClass::Pause { after: pause }, "{code}");
        }
        for code in [
            "channel_not_found",
            "not_in_channel",
            "is_archived",
            "missing_scope (needed: groups:history)",
            "restricted_action",
            "no_permission",
        ] {
            assert!(matches!(class(code), SlackError::ChannelUnavailable { .. }), "{code}");
            assert!(class(code).not_posted(), "{code}");
        }
        assert_eq!(class("missing_scope (needed: groups:history)").channel_reason(), Some("missing_scope"));
        for code in ["internal_error", "fatal_error", "service_unavailable", "request_timeout"] {
            assert!(matches!(class(code), SlackError::Uncertain { .. }), "{code}");
            assert!(!class(code).not_posted(), "{code} may have posted");
        }
        for code in ["invalid_blocks", "msg_too_long", "no_text", "invalid_metadata_format"] {
            assert_eq!(class(code).class(), ErrorClass::DeadLetter, "{code}");
        }
        assert!(matches!(class("ratelimited"), SlackError::RateLimited { .. }));
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
