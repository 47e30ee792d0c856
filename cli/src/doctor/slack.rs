//! Slack (notifier): the bot token works (`auth.test`), its scopes cover what the notifier
//! calls, and every team's channel exists and has the bot in it. Membership is read with
//! `conversations.history` (`limit=1`), the call the notifier itself makes to settle a send,
//! so doctor needs no scope the notifier does not: Slack answers `not_in_channel` or
//! `channel_not_found` exactly as it would to the notifier
//! (<https://docs.slack.dev/reference/methods/conversations.history>).

use serde_json::Value;

use super::{Check, vendor};

/// What the notifier calls needs: `chat:write` to post, `channels:history` to settle a send in a
/// public channel; `groups:history` for private channels.
pub const REQUIRED_SCOPES: [&str; 2] = ["chat:write", "channels:history"];
pub const PRIVATE_CHANNEL_SCOPE: &str = "groups:history";

/// `auth.test`'s answer.
pub fn auth_check(answer: &Value) -> Check {
    let name = "slack: bot token (auth.test)";
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        let text = |key: &str| vendor(answer.get(key).and_then(Value::as_str).unwrap_or("?"));
        return Check::pass(name, format!("bot {} ({}) in {}", text("user"), text("user_id"), text("team")));
    }
    let error = answer.get("error").and_then(Value::as_str).unwrap_or("no answer");
    Check::fail(
        name,
        format!("Slack answered {}", vendor(error)),
        "give the notifier the app's current Bot User OAuth Token (xoxb-…) as SLACK_BOT_TOKEN; reinstall the app if it was revoked",
    )
}

/// The token's scopes (the `x-oauth-scopes` header of any Web API answer).
pub fn scope_checks(header: Option<&str>) -> Vec<Check> {
    let granted: Vec<&str> =
        header.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    for scope in REQUIRED_SCOPES {
        let name = format!("slack: scope {scope}");
        if granted.contains(&scope) {
            out.push(Check::pass(name, "granted"));
        } else {
            out.push(Check::fail(
                name,
                format!("not granted (the token has: {})", vendor(&granted.join(","))),
                format!("add the bot scope {scope} to the app (deploy/slack/manifest.yaml has it) and reinstall it to the workspace"),
            ));
        }
    }
    let name = format!("slack: scope {PRIVATE_CHANNEL_SCOPE}");
    out.push(Check::pass(
        name,
        if granted.contains(&PRIVATE_CHANNEL_SCOPE) {
            "granted (private channels can be settled)"
        } else {
            "not granted: private team channels fail below"
        },
    ));
    out
}

/// `conversations.history` on a team's channel.
pub fn channel_check(team: &str, channel: &str, answer: &Value) -> Check {
    let name = format!("slack: team {}: channel {} has the bot", vendor(team), vendor(channel));
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return Check::pass(name, "exists, the bot is a member");
    }
    let error = answer.get("error").and_then(Value::as_str).unwrap_or("no answer");
    let remedy = match error {
        "not_in_channel" => "invite the bot to the channel (`/invite @infra-tickets` in it)".to_owned(),
        "channel_not_found" => "check the team's slack_channel in the catalog (a channel id, C…); a private channel the bot is not in is not found either: invite the bot".to_owned(),
        "is_archived" => "unarchive the channel or give the team another one in the catalog".to_owned(),
        "missing_scope" => format!(
            "add the bot scope {} to the app and reinstall it",
            vendor(answer.get("needed").and_then(Value::as_str).unwrap_or(PRIVATE_CHANNEL_SCOPE))
        ),
        _ => "see Slack's error code in the Web API documentation".to_owned(),
    };
    Check::fail(name, format!("Slack answered {}", vendor(error)), remedy)
}

/// Calls Slack as the notifier is configured to.
pub async fn checks(config: &notifier::Config, catalog: Option<&catalog::Catalog>) -> Vec<Check> {
    let channels: Vec<(String, String)> = catalog
        .map(|c| {
            c.teams
                .iter()
                .filter_map(|(name, team)| Some((name.clone(), team.slack_channel.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let Some(token) = &config.slack_bot_token else {
        if channels.is_empty() {
            return vec![Check::pass("slack: bot token", "none set; no team names a channel")];
        }
        return vec![Check::fail(
            "slack: bot token",
            format!("{} team channel(s) but no --slack-bot-token", channels.len()),
            "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token",
        )];
    };
    let http = match reqwest::Client::builder().timeout(config.slack_timeout).build() {
        Ok(http) => http,
        Err(error) => return vec![Check::fail("slack: HTTP client", vendor(&error.to_string()), "")],
    };
    let base = config.slack_api_url.trim_end_matches('/');
    let call = |method: &str, form: Vec<(&'static str, String)>| {
        // Read methods take their arguments in the query string; the token goes in the header.
        http.get(format!("{base}/{method}")).bearer_auth(token.expose()).query(&form).send()
    };
    let (answer, scopes) = match call("auth.test", Vec::new()).await {
        Ok(response) => {
            let scopes =
                response.headers().get("x-oauth-scopes").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (response.json::<Value>().await.unwrap_or(Value::Null), scopes)
        }
        Err(error) => {
            return vec![Check::fail(
                "slack: bot token (auth.test)",
                format!("no answer: {}", vendor(&error.without_url().to_string())),
                "check --slack-api-url and that Slack is reachable from here",
            )];
        }
    };
    let auth = auth_check(&answer);
    let authenticated = auth.ok;
    let mut out = vec![auth];
    if !authenticated {
        return out;
    }
    out.extend(scope_checks(scopes.as_deref()));
    for (team, channel) in channels {
        let form = vec![("channel", channel.clone()), ("limit", "1".to_owned())];
        let answer = match call("conversations.history", form).await {
            Ok(response) => response.json::<Value>().await.unwrap_or(Value::Null),
            Err(error) => serde_json::json!({"ok": false, "error": error.without_url().to_string()}),
        };
        out.push(channel_check(&team, &channel, &answer));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_missing_scope_fails_naming_it_and_private_channels_are_noted() {
        let checks = scope_checks(Some("channels:history"));
        assert!(!checks[0].ok && checks[0].remedy.contains("chat:write"), "{checks:?}");
        assert!(checks[1].ok && checks[2].ok && checks[2].detail.contains("private"));
        assert!(scope_checks(Some("chat:write, channels:history,groups:history")).iter().all(|c| c.ok));
    }

    #[test]
    fn channel_answers_become_remedies() {
        assert!(channel_check("data", "C0DATA", &json!({"ok": true, "messages": []})).ok);
        let out = channel_check("data", "C0DATA", &json!({"ok": false, "error": "not_in_channel"}));
        assert!(!out.ok && out.remedy.contains("/invite"), "{out:?}");
        let scope = channel_check(
            "data",
            "G0",
            &json!({"ok": false, "error": "missing_scope", "needed": "groups:history"}),
        );
        assert!(scope.remedy.contains("groups:history"));
        let hostile = channel_check("x\ny", "C\u{1b}", &json!({"ok": false, "error": "bad\nline"}));
        assert!(
            !hostile.name.contains('\n')
                && !hostile.detail.contains('\n')
                && !hostile.name.contains('\u{1b}')
        );
    }

    #[test]
    fn auth_test_failures_name_slacks_error_not_the_token() {
        let out = auth_check(&json!({"ok": false, "error": "invalid_auth"}));
        assert!(!out.ok && out.detail.contains("invalid_auth") && out.remedy.contains("SLACK_BOT_TOKEN"));
        assert!(auth_check(&json!({"ok": true, "user": "bot", "user_id": "U1", "team": "T"})).ok);
    }
}
