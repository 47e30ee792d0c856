//! Where each team's messages go, from the ownership catalog: a channel id for
//! `chat.postMessage`, or an incoming webhook URL read from the environment variable the catalog
//! names (a secret, never written in the catalog).

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::Catalog;
use service_kit::Secret;

use crate::error::{NotifyError, StartError};
use crate::slack::Destination;

/// Reads environment variables. Injected so tests need not change the process environment.
#[derive(Clone)]
pub struct Environment(Arc<Lookup>);

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Environment {
    /// The process environment.
    pub fn process() -> Self {
        Environment(Arc::new(|name| std::env::var(name).ok()))
    }

    /// A fixed set of variables.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Environment(Arc::new(move |name| map.get(name).cloned()))
    }

    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

impl Default for Environment {
    fn default() -> Self {
        Environment::process()
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment")
    }
}

/// Each team's destination.
#[derive(Debug, Clone)]
pub struct Destinations {
    by_team: BTreeMap<String, Destination>,
}

impl Destinations {
    /// Resolves every team of the catalog; a team naming an unset webhook variable, or a channel
    /// without a bot token, is a configuration error reported at start.
    pub fn from_catalog(
        catalog: &Catalog,
        env: &Environment,
        have_bot_token: bool,
    ) -> Result<Self, StartError> {
        let mut by_team = BTreeMap::new();
        for (name, team) in &catalog.teams {
            let owner = format!("team {name:?}");
            let channel = team.slack_channel.as_deref();
            let webhook_env = team.slack_webhook_env.as_deref();
            if let Some(destination) = resolve(&owner, name, channel, webhook_env, env, have_bot_token)? {
                by_team.insert(name.clone(), destination);
            }
        }
        Ok(Destinations { by_team })
    }

    pub fn for_team(&self, team: &str) -> Result<Destination, NotifyError> {
        self.by_team.get(team).cloned().ok_or_else(|| NotifyError::NoDestination { team: team.to_owned() })
    }

    /// Whether any team's destination matches.
    pub fn any(&self, test: impl Fn(&Destination) -> bool) -> bool {
        self.by_team.values().any(test)
    }

    pub fn is_empty(&self) -> bool {
        self.by_team.is_empty()
    }
}

/// One destination: `channel` (posted to with the bot token), else the incoming webhook whose
/// URL the variable `webhook_env` holds (named `webhook_name` in logs and markers); neither is
/// none. A channel without a bot token, or a variable unset or not holding an http(s) URL, is
/// a configuration error naming `owner` (`team "payments"`, `the SRE channel`).
pub fn resolve(
    owner: &str,
    webhook_name: &str,
    channel: Option<&str>,
    webhook_env: Option<&str>,
    env: &Environment,
    have_bot_token: bool,
) -> Result<Option<Destination>, StartError> {
    if let Some(channel) = channel {
        if !have_bot_token {
            return Err(StartError::Config(format!(
                "{owner} posts to channel {channel} but no bot token is set (--slack-bot-token / SLACK_BOT_TOKEN)"
            )));
        }
        return Ok(Some(Destination::Channel(channel.to_owned())));
    }
    let Some(variable) = webhook_env else { return Ok(None) };
    let url = env.var(variable).ok_or_else(|| {
        StartError::Config(format!("{owner} names webhook variable {variable}, which is not set"))
    })?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(StartError::Config(format!(
            "webhook variable {variable} of {owner} does not hold an http(s) URL"
        )));
    }
    Ok(Some(Destination::Webhook { name: webhook_name.to_owned(), url: Secret::new(url) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"
default_team = "platform"
[teams.platform]
slack_channel = "C0PLATFORM"
[teams.payments]
slack_webhook_env = "SLACK_WEBHOOK_PAYMENTS"
[teams.quiet]
"#;

    #[test]
    fn resolves_channels_and_webhooks_and_names_what_is_missing() {
        let catalog = Catalog::from_toml(CATALOG).unwrap();
        let env =
            Environment::from_pairs([("SLACK_WEBHOOK_PAYMENTS", "https://hooks.slack.com/services/T/B/x")]);
        let destinations = Destinations::from_catalog(&catalog, &env, true).unwrap();
        assert_eq!(destinations.for_team("platform").unwrap().label(), "C0PLATFORM");
        assert_eq!(destinations.for_team("payments").unwrap().label(), "webhook:payments");
        let error = destinations.for_team("quiet").unwrap_err();
        assert!(error.to_string().contains("[teams.quiet]"), "{error}");

        let error = Destinations::from_catalog(
            &catalog,
            &Environment::from_pairs::<[(&str, &str); 0], _, _>([]),
            true,
        )
        .unwrap_err();
        assert!(error.to_string().contains("SLACK_WEBHOOK_PAYMENTS"), "{error}");
        let error = Destinations::from_catalog(&catalog, &env, false).unwrap_err();
        assert!(error.to_string().contains("SLACK_BOT_TOKEN"), "{error}");
    }
}
