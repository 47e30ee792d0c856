//! The HTTP side of the simulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::blocks::{self, MAX_MESSAGE_TEXT};
use crate::{Fault, PostedMessage, State};

type Shared = Arc<Mutex<State>>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/auth.test", get(auth_test).post(auth_test))
        .route("/api/conversations.history", get(history_get).post(history_post))
        .route("/services/{team}/{bot}/{secret}", post(webhook))
        .route("/_sim/messages", get(all_messages))
        .route("/_sim/messages/{channel}", get(channel_messages))
        .with_state(state)
}

/// `{"ok": false, "error": code}` with HTTP 200, as the Web API answers errors.
fn api_error(code: &str) -> Response {
    refuse(code).into_response()
}

/// A Web API error body, answered with HTTP 200.
struct Refusal(Value);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn refuse(code: &str) -> Refusal {
    Refusal(json!({"ok": false, "error": code}))
}

fn rate_limited(retry_after: u64, body: Response) -> Response {
    let mut response = body;
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
    response
}

/// Counts the request and answers 429 if a rate limit is injected.
fn admit(state: &mut State, endpoint: &'static str) -> Option<u64> {
    *state.requests.entry(endpoint).or_default() += 1;
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        state.rate_limited_answers += 1;
        return Some(state.retry_after_secs);
    }
    None
}

/// The Web API's token check: `Authorization: Bearer …`, or `token` in a form body.
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Vec<String>, Refusal> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = from_header.or_else(|| body.get("token").and_then(Value::as_str).map(str::to_owned));
    let Some(token) = token else { return Err(refuse("not_authed")) };
    match state.tokens.get(&token) {
        None => Err(refuse("invalid_auth")),
        Some(t) if t.revoked => Err(refuse("token_revoked")),
        Some(t) if t.inactive => Err(refuse("account_inactive")),
        Some(t) => Ok(t.scopes.clone()),
    }
}

/// Slack names a token's scopes in the `x-oauth-scopes` header of its Web API answers.
fn with_scopes(mut response: Response, scopes: &[String]) -> Response {
    if let Ok(value) = scopes.join(",").parse() {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    response
}

/// The answer to a request hit by a fault.
fn fault_answer(fault: Fault) -> (Response, Option<std::time::Duration>) {
    match fault {
        Fault::ApiError(code) => (api_error(code), None),
        Fault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = "<html><body><h1>Slack is having trouble</h1></body></html>";
            ((status, [(header::CONTENT_TYPE, "text/html")], body).into_response(), None)
        }
        Fault::Silence(delay) => (api_error("request_timeout"), Some(delay)),
    }
}

async fn deliver((response, delay): (Response, Option<std::time::Duration>)) -> Response {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

async fn auth_test(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let state = state.lock().expect("slack sim state");
    let body = read_body(&headers, &body).unwrap_or_default();
    match authenticate(&state, &headers, &body) {
        Ok(scopes) => with_scopes(
            axum::Json(json!({"ok": true, "url": "https://sim.slack.com/", "team": "Simulated",
                "user": "infra-tickets", "team_id": "T0SIMTEAM", "user_id": "U0SIMBOT01",
                "bot_id": "B0SIMBOT01", "is_enterprise_install": false}))
            .into_response(),
            &scopes,
        ),
        Err(refusal) => refusal.into_response(),
    }
}

fn require_scope(scopes: &[String], needed: &str) -> Result<(), Refusal> {
    if scopes.iter().any(|s| s == needed) {
        return Ok(());
    }
    let body = json!({"ok": false, "error": "missing_scope", "needed": needed, "provided": scopes.join(",")});
    Err(Refusal(body))
}

/// Reads a JSON or form body into an object; form values that hold JSON (`blocks`, `metadata`)
/// are parsed later, as Slack does.
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(refuse("invalid_json")),
        };
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| refuse("invalid_form_data"))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// A field that may be sent as JSON or as a string holding JSON.
fn json_field(body: &Map<String, Value>, name: &str) -> Result<Option<Value>, ()> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text).map(Some).map_err(|_| ()),
        Some(other) => Ok(Some(other.clone())),
    }
}

fn string_field(body: &Map<String, Value>, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flag(body: &Map<String, Value>, name: &str) -> bool {
    match body.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    }
}

/// The parts of a message both the Web API and webhooks check.
struct Content {
    text: String,
    blocks: Option<Value>,
}

/// Checks text and blocks; the error is Slack's code and, for blocks, its messages.
fn read_content(body: &Map<String, Value>) -> Result<Content, (&'static str, Vec<String>)> {
    let text = string_field(body, "text").unwrap_or_default();
    let blocks = json_field(body, "blocks").map_err(|()| ("invalid_blocks_format", vec![]))?;
    let no_blocks = blocks.as_ref().is_none_or(|b| b.as_array().is_some_and(Vec::is_empty));
    if text.trim().is_empty() && no_blocks {
        return Err(("no_text", vec![]));
    }
    if text.chars().count() > MAX_MESSAGE_TEXT {
        return Err(("msg_too_long", vec![]));
    }
    if let Some(blocks) = &blocks {
        blocks::validate(blocks).map_err(|errors| ("invalid_blocks", errors))?;
    }
    Ok(Content { text, blocks })
}

fn invalid_blocks(errors: Vec<String>) -> Response {
    let messages: Vec<String> = errors.iter().map(|e| format!("[ERROR] {e}")).collect();
    let body = json!({"ok": false, "error": "invalid_blocks", "errors": errors,
                      "response_metadata": {"messages": messages}});
    axum::Json(body).into_response()
}

/// `metadata: {"event_type": "…", "event_payload": {…}}`.
fn read_metadata(body: &Map<String, Value>) -> Result<Option<Value>, Refusal> {
    let metadata = json_field(body, "metadata").map_err(|()| refuse("invalid_metadata_format"))?;
    let Some(metadata) = metadata else { return Ok(None) };
    let event_type = metadata.get("event_type").and_then(Value::as_str).unwrap_or("");
    let payload_ok = metadata.get("event_payload").is_some_and(Value::is_object);
    let type_ok = !event_type.is_empty()
        && event_type.len() <= 255
        && event_type.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !type_ok || !payload_ok {
        return Err(refuse("invalid_metadata_format"));
    }
    if metadata.to_string().len() > 8_000 {
        return Err(refuse("metadata_too_large"));
    }
    Ok(Some(metadata))
}

/// The channel id for an id or `#name`, checked for membership.
fn resolve_channel(state: &State, requested: Option<String>) -> Result<String, Refusal> {
    let requested = requested.unwrap_or_default();
    let wanted = requested.trim_start_matches('#');
    let found = state.channels.iter().find(|(id, c)| id.as_str() == wanted || c.name == wanted);
    let Some((id, channel)) = found else { return Err(refuse("channel_not_found")) };
    if !channel.bot_is_member {
        return Err(refuse("not_in_channel"));
    }
    Ok(id.clone())
}

async fn post_message(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = {
        let mut state = state.lock().expect("slack sim state");
        post_message_locked(&mut state, &headers, &body)
    };
    deliver(answer).await
}

fn post_message_locked(
    state: &mut State,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, Option<std::time::Duration>) {
    let now = |response: Response| (response, None);
    if let Some(retry_after) = admit(state, "chat.postMessage") {
        return now(rate_limited(retry_after, api_error("ratelimited")));
    }
    if let Some(fault) = state.before_post.pop_front() {
        return fault_answer(fault);
    }
    let body = match read_body(headers, body) {
        Ok(body) => body,
        Err(refusal) => return now(refusal.into_response()),
    };
    let scopes = match authenticate(state, headers, &body) {
        Ok(scopes) => scopes,
        Err(refusal) => return now(refusal.into_response()),
    };
    let answer = |response: Response| with_scopes(response, &scopes);
    if let Err(response) = require_scope(&scopes, "chat:write") {
        return now(answer(response.into_response()));
    }
    let channel = match resolve_channel(state, string_field(&body, "channel")) {
        Ok(channel) => channel,
        Err(refusal) => return now(answer(refusal.into_response())),
    };
    if state.channels[&channel].archived {
        return now(answer(api_error("is_archived")));
    }
    if state.channels[&channel].restricted {
        return now(answer(api_error("restricted_action")));
    }
    let content = match read_content(&body) {
        Ok(content) => content,
        Err(("invalid_blocks", errors)) => return now(answer(invalid_blocks(errors))),
        Err((code, _)) => return now(answer(api_error(code))),
    };
    let metadata = match read_metadata(&body) {
        Ok(metadata) => metadata,
        Err(refusal) => return now(answer(refusal.into_response())),
    };
    if let Some(interval) = state.per_channel_interval {
        let at = Instant::now();
        if state.last_post.get(&channel).is_some_and(|last| at.duration_since(*last) < interval) {
            state.rate_limited_answers += 1;
            return now(rate_limited(interval.as_secs().max(1), api_error("ratelimited")));
        }
        state.last_post.insert(channel.clone(), at);
    }
    let ts = state.next_ts();
    let message = PostedMessage {
        channel: channel.clone(),
        ts: ts.clone(),
        text: content.text,
        blocks: content.blocks,
        metadata,
        via: "chat.postMessage",
        link_names: flag(&body, "link_names"),
    };
    let shown = render(&message, false);
    state.messages.push(message);
    // Slack did the work and then failed to say so.
    if let Some(fault) = state.after_post.pop_front() {
        return fault_answer(fault);
    }
    now(answer(
        axum::Json(json!({"ok": true, "channel": channel, "ts": ts, "message": shown})).into_response(),
    ))
}

/// A message as the Web API shows it.
fn render(message: &PostedMessage, with_metadata: bool) -> Value {
    let mut shown = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": message.text,
        "ts": message.ts,
        "bot_id": "B0SIMBOT01",
        "app_id": "A0SIMAPP01",
        "username": "infra-tickets",
    });
    if let Some(blocks) = &message.blocks {
        shown["blocks"] = blocks.clone();
    }
    if with_metadata && let Some(metadata) = &message.metadata {
        shown["metadata"] = metadata.clone();
    }
    shown
}

async fn history_get(
    state: AxumState<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let body = query.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    history(state, headers, body)
}

async fn history_post(state: AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    match read_body(&headers, &body) {
        Ok(body) => history(state, headers, body),
        Err(refusal) => refusal.into_response(),
    }
}

/// A Slack timestamp as microseconds, for ordering; `None` when malformed.
fn ts_micros(ts: &str) -> Option<u64> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, "0"));
    let seconds: u64 = seconds.parse().ok()?;
    let mut fraction = fraction.to_owned();
    if fraction.len() > 6 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while fraction.len() < 6 {
        fraction.push('0');
    }
    Some(seconds * 1_000_000 + fraction.parse::<u64>().ok()?)
}

const CURSOR_PREFIX: &str = "next_ts:";

fn history(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Map<String, Value>) -> Response {
    let mut state = state.lock().expect("slack sim state");
    if let Some(retry_after) = admit(&mut state, "conversations.history") {
        return rate_limited(retry_after, api_error("ratelimited"));
    }
    let scopes = match authenticate(&state, &headers, &body) {
        Ok(scopes) => scopes,
        Err(refusal) => return refusal.into_response(),
    };
    let channel = match resolve_channel(&state, string_field(&body, "channel")) {
        Ok(channel) => channel,
        Err(refusal) => return with_scopes(refusal.into_response(), &scopes),
    };
    // Public channels need channels:history, private ones groups:history.
    let needed = if state.channels[&channel].private { "groups:history" } else { "channels:history" };
    if let Err(response) = require_scope(&scopes, needed) {
        return with_scopes(response.into_response(), &scopes);
    }
    let bound = |name: &str| -> Result<Option<u64>, Refusal> {
        match string_field(&body, name).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(text) => ts_micros(&text).map(Some).ok_or_else(|| refuse("invalid_ts_oldest")),
        }
    };
    let (oldest, latest) = match (bound("oldest"), bound("latest")) {
        (Ok(oldest), Ok(latest)) => (oldest.unwrap_or(0), latest.unwrap_or(u64::MAX)),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let inclusive = flag(&body, "inclusive");
    let with_metadata = flag(&body, "include_all_metadata");
    let limit = match string_field(&body, "limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(0)) => 100,
        Some(Ok(n)) => n.min(999),
        Some(Err(_)) => return api_error("invalid_limit"),
    };
    let before = match string_field(&body, "cursor").filter(|c| !c.is_empty()) {
        None => u64::MAX,
        Some(cursor) => match decode_cursor(&cursor) {
            Some(before) => before,
            None => return api_error("invalid_cursor"),
        },
    };
    let mut in_range: Vec<&PostedMessage> = state
        .messages
        .iter()
        .filter(|m| m.channel == channel)
        .filter(|m| {
            let ts = ts_micros(&m.ts).unwrap_or(0);
            let after_oldest = if inclusive { ts >= oldest } else { ts > oldest };
            let before_latest = if inclusive { ts <= latest } else { ts < latest };
            after_oldest && before_latest && ts < before
        })
        .collect();
    in_range.sort_by_key(|m| std::cmp::Reverse(ts_micros(&m.ts).unwrap_or(0)));
    let has_more = in_range.len() > limit;
    let page: Vec<Value> = in_range.iter().take(limit).map(|m| render(m, with_metadata)).collect();
    let next_cursor = if has_more {
        let last = in_range[limit - 1];
        base64::engine::general_purpose::STANDARD.encode(format!("{CURSOR_PREFIX}{}", last.ts))
    } else {
        String::new()
    };
    axum::Json(json!({
        "ok": true,
        "messages": page,
        "has_more": has_more,
        "pin_count": 0,
        "channel_actions_ts": null,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }))
    .into_response()
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    ts_micros(text.strip_prefix(CURSOR_PREFIX)?)
}

fn webhook_error(status: StatusCode, code: &str) -> Response {
    (status, code.to_owned()).into_response()
}

async fn webhook(
    AxumState(state): AxumState<Shared>,
    Path((team, bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().expect("slack sim state");
    if let Some(retry_after) = admit(&mut state, "webhook") {
        return rate_limited(retry_after, webhook_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    }
    let path = format!("/services/{team}/{bot}/{secret}");
    let Some(hook) = state.webhooks.get(&path).cloned() else {
        return webhook_error(StatusCode::NOT_FOUND, "no_service");
    };
    if hook.removed {
        return webhook_error(StatusCode::NOT_FOUND, "no_service");
    }
    let Some(channel) = state.channels.get(&hook.channel).cloned() else {
        return webhook_error(StatusCode::NOT_FOUND, "channel_not_found");
    };
    if channel.archived {
        return webhook_error(StatusCode::GONE, "channel_is_archived");
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parsed: Option<Map<String, Value>> = if content_type.starts_with("application/x-www-form-urlencoded")
    {
        // Legacy form: `payload=<json>`.
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "payload"))
            .and_then(|(_, json)| serde_json::from_str(&json).ok())
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(body) = parsed else { return webhook_error(StatusCode::BAD_REQUEST, "invalid_payload") };
    if body.contains_key("channel")
        && string_field(&body, "channel").as_deref() != Some(hook.channel.as_str())
    {
        // Webhooks post to their own channel only.
        return webhook_error(StatusCode::FORBIDDEN, "action_prohibited");
    }
    let content = match read_content(&body) {
        Ok(content) => content,
        Err(("invalid_blocks_format", _)) => return webhook_error(StatusCode::BAD_REQUEST, "invalid_blocks"),
        Err((code, _)) => return webhook_error(StatusCode::BAD_REQUEST, code),
    };
    if let Some(interval) = state.per_channel_interval {
        let now = Instant::now();
        if state.last_post.get(&hook.channel).is_some_and(|last| now.duration_since(*last) < interval) {
            state.rate_limited_answers += 1;
            let answer = webhook_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            return rate_limited(interval.as_secs().max(1), answer);
        }
        state.last_post.insert(hook.channel.clone(), now);
    }
    let ts = state.next_ts();
    state.messages.push(PostedMessage {
        channel: hook.channel,
        ts,
        text: content.text,
        blocks: content.blocks,
        // Incoming webhooks do not carry message metadata.
        metadata: None,
        via: "webhook",
        link_names: flag(&body, "link_names"),
    });
    (StatusCode::OK, "ok").into_response()
}

async fn all_messages(AxumState(state): AxumState<Shared>) -> Response {
    let state = state.lock().expect("slack sim state");
    let mut channels: BTreeMap<String, Vec<&PostedMessage>> = BTreeMap::new();
    for message in &state.messages {
        channels.entry(message.channel.clone()).or_default().push(message);
    }
    axum::Json(json!({"channels": channels})).into_response()
}

async fn channel_messages(AxumState(state): AxumState<Shared>, Path(channel): Path<String>) -> Response {
    let state = state.lock().expect("slack sim state");
    let messages: Vec<&PostedMessage> = state.messages.iter().filter(|m| m.channel == channel).collect();
    axum::Json(json!({"channel": channel, "messages": messages})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_order_numerically() {
        assert!(ts_micros("1700000000.000100").unwrap() > ts_micros("1700000000.000099").unwrap());
        assert_eq!(ts_micros("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(ts_micros("1700000000.5"), Some(1_700_000_000_500_000));
        assert_eq!(ts_micros("x.1"), None);
    }
}
