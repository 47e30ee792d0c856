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
//!   `response_metadata.next_cursor` for pagination. Needs the `channels:history` scope.
//! * `POST /services/T…/B…/…`: incoming webhooks, one channel per URL; body `ok`, or an HTTP
//!   error status with a plain-text code (`invalid_payload`, `no_text`, `invalid_blocks`,
//!   `no_service`, `channel_is_archived`, `action_prohibited`).
//! * Faults: [`SlackSim::inject_rate_limit`] answers the next requests with HTTP 429 and
//!   `Retry-After`; [`SlackSim::enforce_channel_rate`] applies Slack's one message per second per
//!   channel.
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
pub const DEFAULT_SCOPES: [&str; 2] = ["chat:write", "channels:history"];

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
}

#[derive(Debug, Clone)]
struct Token {
    scopes: Vec<String>,
    revoked: bool,
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
        self.state().tokens.insert(token.to_owned(), Token { scopes, revoked: false });
    }

    /// Revokes a token: it then gets `token_revoked`.
    pub fn revoke_token(&self, token: &str) {
        if let Some(token) = self.state().tokens.get_mut(token) {
            token.revoked = true;
        }
    }

    /// A public channel; `bot_is_member` says whether the bot was invited.
    pub fn add_channel(&self, id: &str, name: &str, bot_is_member: bool) {
        let channel = Channel { name: name.to_owned(), bot_is_member, archived: false };
        self.state().channels.insert(id.to_owned(), channel);
    }

    pub fn archive_channel(&self, id: &str) {
        if let Some(channel) = self.state().channels.get_mut(id) {
            channel.archived = true;
        }
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
