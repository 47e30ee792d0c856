//! A local Slack Web API and incoming webhooks, for tests and the demo.
//!
//! It speaks the real protocol and shapes (https://docs.slack.dev/reference/methods/chat.postMessage,
//! https://docs.slack.dev/reference/methods/conversations.history,
//! https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks):
//!
//! * `POST /api/chat.postMessage`: bot token as `Authorization: Bearer xoxb-…` (or `token` in a
//!   form body); JSON or form body with `channel`, `text`, `blocks`, `metadata {event_type,
//!   event_payload}`. Success `{"ok":true,"channel","ts","message"}`; errors are HTTP 200 with
//!   `{"ok":false,"error":…}`: `not_authed`, `invalid_auth`, `token_revoked`, `missing_scope`,
//!   `channel_not_found`, `not_in_channel`, `is_archived`, `no_text`, `msg_too_long`,
//!   `invalid_blocks` (with `errors` and `response_metadata.messages`), `invalid_blocks_format`,
//!   `invalid_metadata_format`, `invalid_json`.
//! * `GET|POST /api/conversations.history`: `channel`, `oldest`, `latest`, `inclusive`, `limit`,
//!   `cursor`, `include_all_metadata`; newest first; `has_more` and
//!   `response_metadata.next_cursor` for pagination. Needs `channels:history` for a public
//!   channel and `groups:history` for a private one (`missing_scope` with `needed` otherwise).
//! * `POST /api/auth.test`: who the token is; every Web API answer carries the token's scopes
//!   in the `x-oauth-scopes` header, as Slack's do.
//! * `POST /services/T…/B…/…`: incoming webhooks, one channel per URL; body `ok`, or an HTTP
//!   error status with a plain-text code (`invalid_payload`, `no_text`, `invalid_blocks`,
//!   `no_service`, `channel_is_archived`, `action_prohibited`).
//! * Faults: [`SlackSim::inject_rate_limit`] answers the next requests with HTTP 429 and
//!   `Retry-After`; [`SlackSim::enforce_channel_rate`] applies Slack's one message per second per
//!   channel; [`SlackSim::fail_after_post`] stores the message and *then* answers
//!   `internal_error`, `fatal_error`, a 5xx or nothing in time, as Slack documents can happen
//!   ("some aspect of the operation succeeded"); [`SlackSim::fail_before_post`] answers the
//!   same without storing; [`SlackSim::restrict_channel`] (`restricted_action`),
//!   [`SlackSim::archive_channel`] (`is_archived`), [`SlackSim::deactivate_token`]
//!   (`account_inactive`), [`SlackSim::revoke_token`] (`token_revoked`).
//! * What Slack would make of a message: [`PostedMessage::mentions`] and
//!   [`PostedMessage::links`] apply Slack's parsing of `<…>`, of bare URLs (outside `verbatim`
//!   text objects) and, with `link_names`, of `@here`-style names.
//! * A record of messages per channel: [`SlackSim::messages`], and `GET /_sim/messages` for the
//!   demo.

#![forbid(unsafe_code)]

pub mod blocks;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The default bot token a fresh simulator accepts.
pub const DEFAULT_BOT_TOKEN: &str = "xoxb-1111111111-2222222222-simulatorbottoken";
/// Scopes a bot token gets unless told otherwise.
pub const DEFAULT_SCOPES: [&str; 3] = ["chat:write", "channels:history", "groups:history"];

/// How a request fails, before or after Slack did the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 `{"ok": false, "error": code}` (`internal_error`, `fatal_error`…).
    ApiError(&'static str),
    /// An HTTP error status with an HTML body, as Slack's edge answers when it is down.
    Status(u16),
    /// No answer for this long (longer than the client's timeout: the client gives up).
    Silence(Duration),
}

/// One message as Slack stored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// `chat.postMessage` or `webhook`.
    pub via: &'static str,
    /// `link_names` was set: `@here`, `@channel` and `@name` are parsed as mentions.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link_names: bool,
}

impl PostedMessage {
    /// `metadata.event_payload.<field>` as a string, if present.
    pub fn metadata_field(&self, field: &str) -> Option<&str> {
        self.metadata.as_ref()?.get("event_payload")?.get(field)?.as_str()
    }

    /// All text of the message: the fallback text and every string inside its blocks.
    pub fn all_text(&self) -> String {
        let mut out = self.text.clone();
        if let Some(blocks) = &self.blocks {
            collect_strings(blocks, &mut out);
        }
        out
    }
}

impl PostedMessage {
    /// The mentions Slack would notify for this message: `<!here>`, `<!channel>`,
    /// `<!everyone>`, `<@U…>`, `<!subteam^…>`, and bare `@here`-style names with `link_names`.
    pub fn mentions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (text, _) in self.parsed_texts() {
            for inner in bracketed(&text) {
                if inner.starts_with('!') || inner.starts_with('@') || inner.starts_with('#') {
                    out.push(inner.split('|').next().unwrap_or_default().to_owned());
                }
            }
            if self.link_names {
                for word in text.split_whitespace() {
                    if ["@here", "@channel", "@everyone"]
                        .contains(&word.trim_end_matches(|c: char| !c.is_alphanumeric()))
                    {
                        out.push(word.to_owned());
                    }
                }
            }
        }
        out
    }

    /// The URLs a reader could click: `<url|label>` and `<url>` in parsed text, bare URLs in
    /// text Slack auto-links (the top-level `text` and non-`verbatim` mrkdwn), button `url`s.
    pub fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (text, verbatim) in self.parsed_texts() {
            for inner in bracketed(&text) {
                let target = inner.split('|').next().unwrap_or_default();
                if target.contains("://")
                    || target.starts_with("mailto:")
                    || target.starts_with("javascript:")
                {
                    out.push(target.to_owned());
                }
            }
            if !verbatim {
                let outside = strip_bracketed(&text);
                for word in outside.split_whitespace() {
                    let lower = word.to_ascii_lowercase();
                    if lower.starts_with("http://")
                        || lower.starts_with("https://")
                        || lower.starts_with("www.")
                    {
                        out.push(word.to_owned());
                    }
                }
            }
        }
        if let Some(blocks) = &self.blocks {
            collect_button_urls(blocks, &mut out);
        }
        out
    }

    /// Every string Slack parses as mrkdwn, with whether it is `verbatim`.
    fn parsed_texts(&self) -> Vec<(String, bool)> {
        let mut out = vec![(self.text.clone(), false)];
        if let Some(blocks) = &self.blocks {
            collect_mrkdwn(blocks, &mut out);
        }
        out
    }
}

/// The contents of each `<…>` in `text`.
fn bracketed(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        match after.find('>') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn strip_bracketed(text: &str) -> String {
    let mut out = String::new();
    let mut depth = false;
    for c in text.chars() {
        match c {
            '<' => depth = true,
            '>' if depth => {
                depth = false;
                out.push(' ');
            }
            _ if !depth => out.push(c),
            _ => {}
        }
    }
    out
}

fn collect_mrkdwn(value: &Value, out: &mut Vec<(String, bool)>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("mrkdwn")
                && let Some(text) = map.get("text").and_then(Value::as_str)
            {
                out.push((text.to_owned(), map.get("verbatim").and_then(Value::as_bool) == Some(true)));
            }
            map.values().for_each(|v| collect_mrkdwn(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_mrkdwn(v, out)),
        _ => {}
    }
}

fn collect_button_urls(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("button")
                && let Some(url) = map.get("url").and_then(Value::as_str)
            {
                out.push(url.to_owned());
            }
            map.values().for_each(|v| collect_button_urls(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_button_urls(v, out)),
        _ => {}
    }
}

fn collect_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
struct Channel {
    name: String,
    bot_is_member: bool,
    archived: bool,
    private: bool,
    /// Posting is restricted (a read-only or announcement channel): `restricted_action`.
    restricted: bool,
}

#[derive(Debug, Clone)]
struct Token {
    scopes: Vec<String>,
    revoked: bool,
    /// The bot's user or the workspace was deactivated: `account_inactive`.
    inactive: bool,
}

#[derive(Debug, Clone)]
struct Webhook {
    channel: String,
    removed: bool,
}

/// What the simulator knows and has recorded.
#[derive(Default)]
struct State {
    channels: BTreeMap<String, Channel>,
    tokens: BTreeMap<String, Token>,
    webhooks: BTreeMap<String, Webhook>,
    messages: Vec<PostedMessage>,
    last_ts_micros: u64,
    /// Requests left to answer with 429, and the `Retry-After` to send.
    rate_limited: u32,
    retry_after_secs: u64,
    /// When set, a second message to a channel within a second is refused with 429.
    per_channel_interval: Option<Duration>,
    last_post: BTreeMap<String, Instant>,
    requests: BTreeMap<&'static str, u64>,
    rate_limited_answers: u64,
    /// Faults for the next `chat.postMessage` calls: after storing the message, or instead.
    after_post: std::collections::VecDeque<Fault>,
    before_post: std::collections::VecDeque<Fault>,
}

impl State {
    fn next_ts(&mut self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
        let micros = now.max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SlackSim {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl Drop for SlackSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl SlackSim {
    /// Starts on `127.0.0.1:0` with [`DEFAULT_BOT_TOKEN`] and no channels.
    pub async fn start() -> std::io::Result<SlackSim> {
        Self::start_on("127.0.0.1:0".parse().expect("a valid address")).await
    }

    pub async fn start_on(listen: SocketAddr) -> std::io::Result<SlackSim> {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let router = server::router(state.clone());
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let served =
                axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(error) = served {
                tracing::error!(%error, "Slack simulator stopped.");
            }
        });
        let sim = SlackSim { address, state, stop };
        sim.add_bot_token(DEFAULT_BOT_TOKEN, &DEFAULT_SCOPES);
        Ok(sim)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("slack sim state")
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The Web API base, to use instead of `https://slack.com/api`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// Accepts `token` with these scopes.
    pub fn add_bot_token(&self, token: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.state().tokens.insert(token.to_owned(), Token { scopes, revoked: false, inactive: false });
    }

    /// The token's bot user or workspace is deactivated: it then gets `account_inactive`.
    pub fn deactivate_token(&self, token: &str) {
        if let Some(token) = self.state().tokens.get_mut(token) {
            token.inactive = true;
        }
    }

    /// Revokes a token: it then gets `token_revoked`.
    pub fn revoke_token(&self, token: &str) {
        if let Some(token) = self.state().tokens.get_mut(token) {
            token.revoked = true;
        }
    }

    /// A public channel; `bot_is_member` says whether the bot was invited.
    pub fn add_channel(&self, id: &str, name: &str, bot_is_member: bool) {
        self.insert_channel(id, name, bot_is_member, false);
    }

    /// A private channel: its history needs `groups:history`.
    pub fn add_private_channel(&self, id: &str, name: &str, bot_is_member: bool) {
        self.insert_channel(id, name, bot_is_member, true);
    }

    fn insert_channel(&self, id: &str, name: &str, bot_is_member: bool, private: bool) {
        let channel =
            Channel { name: name.to_owned(), bot_is_member, archived: false, private, restricted: false };
        self.state().channels.insert(id.to_owned(), channel);
    }

    /// Invites the bot to a channel, or removes it (`not_in_channel`).
    pub fn set_member(&self, id: &str, bot_is_member: bool) {
        if let Some(channel) = self.state().channels.get_mut(id) {
            channel.bot_is_member = bot_is_member;
        }
    }

    pub fn archive_channel(&self, id: &str) {
        self.set_archived(id, true);
    }

    /// Archives or unarchives a channel.
    pub fn set_archived(&self, id: &str, archived: bool) {
        if let Some(channel) = self.state().channels.get_mut(id) {
            channel.archived = archived;
        }
    }

    /// Makes posting to a channel a `restricted_action` (or allows it again).
    pub fn restrict_channel(&self, id: &str, restricted: bool) {
        if let Some(channel) = self.state().channels.get_mut(id) {
            channel.restricted = restricted;
        }
    }

    /// The next `chat.postMessage` calls store their message and then fail with these faults,
    /// one each.
    pub fn fail_after_post(&self, faults: &[Fault]) {
        self.state().after_post.extend(faults.iter().copied());
    }

    /// The next `chat.postMessage` calls fail with these faults without storing anything.
    pub fn fail_before_post(&self, faults: &[Fault]) {
        self.state().before_post.extend(faults.iter().copied());
    }

    /// Adds an incoming webhook posting to `channel`; returns its (secret) URL.
    pub fn add_webhook(&self, channel: &str) -> String {
        let mut state = self.state();
        let n = state.webhooks.len() + 1;
        let path = format!("/services/T0SIMTEAM/B{n:08}/{}", secret_part(n));
        state.webhooks.insert(path.clone(), Webhook { channel: channel.to_owned(), removed: false });
        format!("{}{path}", self.base_url())
    }

    /// Removes a webhook: it then answers 404 `no_service`.
    pub fn remove_webhook(&self, url: &str) {
        let path = url.strip_prefix(&self.base_url()).unwrap_or(url);
        if let Some(hook) = self.state().webhooks.get_mut(path) {
            hook.removed = true;
        }
    }

    /// Answers the next `requests` requests (any endpoint) with HTTP 429 and `Retry-After`.
    pub fn inject_rate_limit(&self, requests: u32, retry_after: Duration) {
        let mut state = self.state();
        state.rate_limited = requests;
        state.retry_after_secs = retry_after.as_secs().max(1);
    }

    /// Refuses, with 429 and `Retry-After: 1`, a message to a channel less than `interval`
    /// after the previous one (Slack: about one message per second per channel).
    pub fn enforce_channel_rate(&self, interval: Option<Duration>) {
        self.state().per_channel_interval = interval;
    }

    /// Messages in a channel, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<PostedMessage> {
        self.state().messages.iter().filter(|m| m.channel == channel).cloned().collect()
    }

    /// Every message, oldest first.
    pub fn all_messages(&self) -> Vec<PostedMessage> {
        self.state().messages.clone()
    }

    /// Requests received per endpoint (`chat.postMessage`, `conversations.history`, `webhook`).
    pub fn request_count(&self, endpoint: &str) -> u64 {
        self.state().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// How many requests were answered with 429.
    pub fn rate_limited_count(&self) -> u64 {
        self.state().rate_limited_answers
    }

    /// The channel's name, if known.
    pub fn channel_name(&self, id: &str) -> Option<String> {
        self.state().channels.get(id).map(|c| c.name.clone())
    }
}

/// A webhook's secret path segment: 24 characters, as Slack's are.
fn secret_part(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut seed = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..24)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ALPHABET[(seed % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}
