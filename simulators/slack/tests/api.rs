//! The simulator's Web API and webhooks, over HTTP, in Slack's shapes.

use std::time::Duration;

use serde_json::{Value, json};
use slack_sim::{DEFAULT_BOT_TOKEN, SlackSim};

async fn post(sim: &SlackSim, token: &str, body: Value) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn post_message_answers_like_slack() {
    let sim = SlackSim::start().await.unwrap();
    sim.add_channel("C0PLATFORM", "platform", true);
    sim.add_channel("C0OUTSIDE", "outside", false);

    let body = json!({"channel": "C0PLATFORM", "text": "hello",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}],
        "metadata": {"event_type": "infra_tickets_notice", "event_payload": {"idempotency_key": "k/1"}}});
    let (status, _, answer) = post(&sim, DEFAULT_BOT_TOKEN, body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["channel"], "C0PLATFORM");
    assert_eq!(answer["message"]["text"], "hello");
    let ts = answer["ts"].as_str().unwrap().to_owned();
    assert_eq!(sim.messages("C0PLATFORM")[0].ts, ts);
    assert_eq!(sim.messages("C0PLATFORM")[0].metadata_field("idempotency_key"), Some("k/1"));

    let (_, _, answer) = post(&sim, "xoxb-wrong", body.clone()).await;
    assert_eq!(answer, json!({"ok": false, "error": "invalid_auth"}));
    let (_, _, answer) = post(&sim, DEFAULT_BOT_TOKEN, json!({"channel": "C0NOPE", "text": "x"})).await;
    assert_eq!(answer, json!({"ok": false, "error": "channel_not_found"}));
    let (_, _, answer) = post(&sim, DEFAULT_BOT_TOKEN, json!({"channel": "C0OUTSIDE", "text": "x"})).await;
    assert_eq!(answer, json!({"ok": false, "error": "not_in_channel"}));
    let (_, _, answer) = post(&sim, DEFAULT_BOT_TOKEN, json!({"channel": "C0PLATFORM"})).await;
    assert_eq!(answer["error"], "no_text");
    let (_, _, answer) =
        post(&sim, DEFAULT_BOT_TOKEN, json!({"channel": "C0PLATFORM", "text": "x".repeat(40_001)})).await;
    assert_eq!(answer["error"], "msg_too_long");
    let header = json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]);
    let (_, _, answer) =
        post(&sim, DEFAULT_BOT_TOKEN, json!({"channel": "C0PLATFORM", "text": "x", "blocks": header})).await;
    assert_eq!(answer["error"], "invalid_blocks");
    assert!(answer["errors"][0].as_str().unwrap().contains("/blocks/0/text/text"), "{answer}");
    let (_, _, answer) = post(
        &sim,
        DEFAULT_BOT_TOKEN,
        json!({"channel": "C0PLATFORM", "text": "x", "metadata": {"event_payload": {}}}),
    )
    .await;
    assert_eq!(answer["error"], "invalid_metadata_format");

    sim.inject_rate_limit(1, Duration::from_secs(3));
    let (status, retry_after, answer) = post(&sim, DEFAULT_BOT_TOKEN, body.clone()).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("3")));
    assert_eq!(answer["error"], "ratelimited");
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body.clone()).await.0, 200);

    sim.revoke_token(DEFAULT_BOT_TOKEN);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body).await.2["error"], "token_revoked");
    assert_eq!(sim.messages("C0PLATFORM").len(), 2);
}

#[tokio::test]
async fn history_pages_newest_first_and_shows_metadata_on_request() {
    let sim = SlackSim::start().await.unwrap();
    sim.add_channel("C0PLATFORM", "platform", true);
    for i in 0..5 {
        let body = json!({"channel": "C0PLATFORM", "text": format!("m{i}"),
            "metadata": {"event_type": "t", "event_payload": {"idempotency_key": format!("k{i}")}}});
        post(&sim, DEFAULT_BOT_TOKEN, body).await;
    }
    let oldest = sim.messages("C0PLATFORM")[0].ts.clone();
    let client = reqwest::Client::new();
    let mut cursor = String::new();
    let mut seen = Vec::new();
    loop {
        let answer: Value = client
            .get(format!("{}/conversations.history", sim.api_url()))
            .bearer_auth(DEFAULT_BOT_TOKEN)
            .query(&[
                ("channel", "C0PLATFORM"),
                ("oldest", &oldest),
                ("limit", "2"),
                ("include_all_metadata", "true"),
                ("cursor", &cursor),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        for message in answer["messages"].as_array().unwrap() {
            seen.push(message["metadata"]["event_payload"]["idempotency_key"].as_str().unwrap().to_owned());
        }
        cursor = answer["response_metadata"]["next_cursor"].as_str().unwrap().to_owned();
        assert_eq!(answer["has_more"], !cursor.is_empty());
        if cursor.is_empty() {
            break;
        }
    }
    // `oldest` is exclusive: the first message is not included.
    assert_eq!(seen, ["k4", "k3", "k2", "k1"]);

    let answer: Value = client
        .post(format!("{}/conversations.history", sim.api_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("channel=C0PLATFORM&limit=1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["messages"][0].get("metadata").is_none(), "metadata only on request: {answer}");

    sim.add_bot_token("xoxb-write-only", &["chat:write"]);
    let answer: Value = client
        .get(format!("{}/conversations.history?channel=C0PLATFORM", sim.api_url()))
        .bearer_auth("xoxb-write-only")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"], "missing_scope");
    assert_eq!(answer["needed"], "channels:history");
}

#[tokio::test]
async fn webhooks_answer_ok_or_a_plain_code() {
    let sim = SlackSim::start().await.unwrap();
    sim.add_channel("C0PAYMENTS", "payments", false);
    let url = sim.add_webhook("C0PAYMENTS");
    assert!(url.contains("/services/T"), "{url}");
    let client = reqwest::Client::new();
    let send = |body: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response =
                client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(send(json!({"text": "hi"}).to_string()).await, (200, "ok".into()));
    assert_eq!(send("{not json".into()).await, (400, "invalid_payload".into()));
    assert_eq!(send(json!({"blocks": []}).to_string()).await.1, "no_text".to_owned());
    let blocks = json!({"text": "x", "blocks": [{"type": "section"}]});
    assert_eq!(send(blocks.to_string()).await, (400, "invalid_blocks".into()));
    sim.archive_channel("C0PAYMENTS");
    assert_eq!(send(json!({"text": "hi"}).to_string()).await, (410, "channel_is_archived".into()));
    sim.remove_webhook(&url);
    assert_eq!(send(json!({"text": "hi"}).to_string()).await, (404, "no_service".into()));
    let messages = sim.messages("C0PAYMENTS");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].via, "webhook");
}

#[tokio::test]
async fn faults_after_posting_keep_the_message_and_channels_answer_their_own_problems() {
    use slack_sim::Fault;
    let sim = SlackSim::start().await.unwrap();
    sim.add_channel("C0PLATFORM", "platform", true);
    sim.add_private_channel("C0SECRET", "secret", true);
    let body = |channel: &str, key: &str| {
        json!({"channel": channel, "text": "hello",
            "metadata": {"event_type": "infra_tickets_notice", "event_payload": {"idempotency_key": key}}})
    };

    // Slack documents internal_error and fatal_error as "part of the operation may have
    // succeeded": the simulator stores the message and then answers the error.
    sim.fail_after_post(&[
        Fault::ApiError("internal_error"),
        Fault::ApiError("fatal_error"),
        Fault::Status(503),
    ]);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k1")).await.2["error"], "internal_error");
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k2")).await.2["error"], "fatal_error");
    let response = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .json(&body("C0PLATFORM", "k3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(sim.messages("C0PLATFORM").len(), 3, "each was stored before the error");
    sim.fail_before_post(&[Fault::ApiError("internal_error")]);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k4")).await.2["error"], "internal_error");
    assert_eq!(sim.messages("C0PLATFORM").len(), 3, "not stored");

    // A private channel's history needs groups:history.
    sim.add_bot_token("xoxb-public-only", &["chat:write", "channels:history"]);
    assert_eq!(post(&sim, "xoxb-public-only", body("C0SECRET", "k5")).await.2["ok"], true);
    let history = |token: &'static str, channel: &'static str| {
        let url = format!("{}/conversations.history", sim.api_url());
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .query(&[("channel", channel)])
                .send()
                .await
                .unwrap();
            let scopes = response.headers().get("x-oauth-scopes").map(|v| v.to_str().unwrap().to_owned());
            (scopes, response.json::<Value>().await.unwrap())
        }
    };
    let (scopes, answer) = history("xoxb-public-only", "C0SECRET").await;
    assert_eq!(scopes.as_deref(), Some("chat:write,channels:history"));
    assert_eq!(
        (answer["error"].as_str(), answer["needed"].as_str()),
        (Some("missing_scope"), Some("groups:history"))
    );
    assert_eq!(history("xoxb-public-only", "C0PLATFORM").await.1["ok"], true);
    assert_eq!(history(DEFAULT_BOT_TOKEN, "C0SECRET").await.1["ok"], true);

    // auth.test names the scopes.
    let response = reqwest::Client::new()
        .post(format!("{}/auth.test", sim.api_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-oauth-scopes"], "chat:write,channels:history,groups:history");
    assert_eq!(response.json::<Value>().await.unwrap()["ok"], true);

    // Per-channel refusals and a deactivated workspace.
    sim.restrict_channel("C0PLATFORM", true);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k6")).await.2["error"], "restricted_action");
    sim.restrict_channel("C0PLATFORM", false);
    sim.set_member("C0PLATFORM", false);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k7")).await.2["error"], "not_in_channel");
    sim.set_member("C0PLATFORM", true);
    sim.set_archived("C0PLATFORM", true);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0PLATFORM", "k8")).await.2["error"], "is_archived");
    sim.deactivate_token(DEFAULT_BOT_TOKEN);
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body("C0SECRET", "k9")).await.2["error"], "account_inactive");
}

#[tokio::test]
async fn the_simulator_says_which_mentions_and_links_slack_would_make() {
    let sim = SlackSim::start().await.unwrap();
    sim.add_channel("C0PLATFORM", "platform", true);
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "<!here> see https://a.example <https://b.example|b>"}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": true, "text": "https://c.example &lt;!channel&gt;"}},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://d.example"}]}
    ]);
    let body =
        json!({"channel": "C0PLATFORM", "text": "hi <@U0123> @channel www.e.example", "blocks": blocks});
    assert_eq!(post(&sim, DEFAULT_BOT_TOKEN, body).await.2["ok"], true);
    let message = &sim.messages("C0PLATFORM")[0];
    assert_eq!(message.mentions(), ["@U0123", "!here"]);
    assert_eq!(
        message.links(),
        ["www.e.example", "https://b.example", "https://a.example", "https://d.example"]
    );
}
