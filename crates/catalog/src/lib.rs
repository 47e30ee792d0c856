//! The ownership catalog: one TOML file that says which team owns what, and where each team's
//! tickets and messages go.
//!
//! ```toml
//! default_team = "platform"          # owner of last resort
//! snyk_team_tag = "team"             # Snyk project tag key naming the owner (team=payments)
//! aws_team_tag = "team"              # AWS resource tag key naming the owner
//!
//! [teams.payments]
//! jira_project = "PAY"               # JIRA project (board) of the team
//! jira_components = ["payments"]
//! jira_team_field = "Payments"       # value of the writer's team custom field, if any
//! slack_channel = "C0PAYMENTS"       # channel id for chat.postMessage
//! slack_webhook_env = "SLACK_WEBHOOK_PAYMENTS"  # or: env var holding an incoming webhook URL
//! time_zone = "Europe/Berlin"        # due dates are calendar days in this zone (default UTC)
//! aws_accounts = ["111111111111"]    # accounts whose unowned resources are this team's
//!
//! [[owners]]                         # first matching rule wins
//! team = "payments"
//! snyk_targets = ["*.dkr.ecr.*.amazonaws.com/payments-*", "acme/checkout"]
//! aws_resources = ["arn:aws:rds:*:111111111111:db:payments-*", "i-0pay*"]
//!
//! [[exposure]]                       # overrides what Snyk's project attributes say
//! snyk_target = "acme/public-website"
//! exposure = "internet-facing"       # or "internal"
//! ```
//!
//! Patterns are globs: `*` matches any run of characters (including `/`), `?` one character;
//! matching is case-sensitive, as ARNs and image names are.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

mod pattern;
pub use pattern::Pattern;

/// Where a team's tickets and messages go.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// JIRA project key; the writer's default project when absent.
    #[serde(default)]
    pub jira_project: Option<String>,
    #[serde(default)]
    pub jira_components: Vec<String>,
    /// Value for the writer's configured team custom field.
    #[serde(default)]
    pub jira_team_field: Option<String>,
    #[serde(default)]
    pub jira_labels: Vec<String>,
    /// Slack channel id for `chat.postMessage`.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Name of the environment variable that holds the team's incoming webhook URL (a secret,
    /// so it is never written in the catalog itself).
    #[serde(default)]
    pub slack_webhook_env: Option<String>,
    /// IANA time zone; due dates are calendar days in it.
    #[serde(default = "utc")]
    pub time_zone: chrono_tz::Tz,
    #[serde(default)]
    pub aws_accounts: Vec<String>,
}

fn utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}

/// Exposure of a Snyk target, when the catalog knows better than Snyk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    InternetFacing,
    Internal,
}

/// A rule naming the owner of matching Snyk targets and AWS resources.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRule {
    pub team: String,
    #[serde(default)]
    pub snyk_targets: Vec<Pattern>,
    #[serde(default)]
    pub aws_resources: Vec<Pattern>,
}

/// A rule overriding the exposure of matching Snyk targets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureRule {
    pub snyk_target: Pattern,
    pub exposure: Exposure,
}

/// The ownership catalog. Build it with [`Catalog::load`], [`Catalog::from_toml`] or
/// [`Catalog::default_only`]; every constructor validates it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub default_team: String,
    #[serde(default = "team_tag")]
    pub snyk_team_tag: String,
    #[serde(default = "team_tag")]
    pub aws_team_tag: String,
    #[serde(default)]
    pub teams: BTreeMap<String, Team>,
    #[serde(default)]
    pub owners: Vec<OwnerRule>,
    #[serde(default)]
    pub exposure: Vec<ExposureRule>,
}

fn team_tag() -> String {
    "team".into()
}

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read the ownership catalog {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ownership catalog is not valid TOML or has an unknown field: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the ownership catalog is inconsistent: {0}")]
    Invalid(String),
}

impl Catalog {
    /// A catalog that sends everything to one team.
    pub fn default_only(team: impl Into<String>) -> Self {
        Catalog {
            default_team: team.into(),
            snyk_team_tag: team_tag(),
            aws_team_tag: team_tag(),
            teams: BTreeMap::new(),
            owners: Vec::new(),
            exposure: Vec::new(),
        }
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| CatalogError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = toml::from_str(text)?;
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        if self.default_team.trim().is_empty() {
            return Err(CatalogError::Invalid("default_team is empty".into()));
        }
        for rule in &self.owners {
            if !self.teams.is_empty() && !self.teams.contains_key(&rule.team) {
                return Err(CatalogError::Invalid(format!(
                    "an [[owners]] rule names team {:?}, which has no [teams.{}] section",
                    rule.team, rule.team
                )));
            }
        }
        let mut account_owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, team) in &self.teams {
            for account in &team.aws_accounts {
                if let Some(other) = account_owner.insert(account, name) {
                    return Err(CatalogError::Invalid(format!(
                        "AWS account {account} is listed by both team {other:?} and team {name:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The team's settings; a team the catalog does not describe gets the defaults.
    pub fn team(&self, name: &str) -> std::borrow::Cow<'_, Team> {
        match self.teams.get(name) {
            Some(team) => std::borrow::Cow::Borrowed(team),
            None => std::borrow::Cow::Owned(Team { time_zone: utc(), ..Team::default() }),
        }
    }

    /// The team named by the first owner rule matching a Snyk target name
    /// (`<registry>/<repository>` for images, `<owner>/<repo>` for GitHub).
    pub fn owner_of_snyk_target(&self, target: &str) -> Option<&str> {
        self.owners
            .iter()
            .find(|rule| rule.snyk_targets.iter().any(|p| p.matches(target)))
            .map(|rule| rule.team.as_str())
    }

    /// The team named by the first owner rule matching a resource id or ARN.
    pub fn owner_of_aws_resource(&self, resource: &str) -> Option<&str> {
        self.owners
            .iter()
            .find(|rule| rule.aws_resources.iter().any(|p| p.matches(resource)))
            .map(|rule| rule.team.as_str())
    }

    /// The team that owns an AWS account's unowned resources.
    pub fn owner_of_account(&self, account: &str) -> Option<&str> {
        self.teams
            .iter()
            .find(|(_, team)| team.aws_accounts.iter().any(|a| a == account))
            .map(|(name, _)| name.as_str())
    }

    /// The exposure the catalog sets for a Snyk target, if any.
    pub fn exposure_of_snyk_target(&self, target: &str) -> Option<Exposure> {
        self.exposure.iter().find(|rule| rule.snyk_target.matches(target)).map(|rule| rule.exposure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
default_team = "platform"

[teams.platform]
jira_project = "PLAT"
aws_accounts = ["222222222222"]

[teams.payments]
jira_project = "PAY"
slack_channel = "C0PAYMENTS"
time_zone = "Europe/Berlin"
aws_accounts = ["111111111111"]

[[owners]]
team = "payments"
snyk_targets = ["*.dkr.ecr.*.amazonaws.com/payments-*", "acme/checkout"]
aws_resources = ["arn:aws:rds:*:*:db:payments-*", "i-0pay*"]

[[exposure]]
snyk_target = "acme/checkout"
exposure = "internal"
"#;

    #[test]
    fn resolves_owners_accounts_and_exposure() {
        let catalog = Catalog::from_toml(EXAMPLE).unwrap();
        assert_eq!(
            catalog.owner_of_snyk_target("123.dkr.ecr.eu-west-1.amazonaws.com/payments-api"),
            Some("payments")
        );
        assert_eq!(catalog.owner_of_snyk_target("acme/other"), None);
        assert_eq!(catalog.owner_of_aws_resource("i-0pay123"), Some("payments"));
        assert_eq!(
            catalog.owner_of_aws_resource("arn:aws:rds:eu-west-1:111111111111:db:payments-main"),
            Some("payments")
        );
        assert_eq!(catalog.owner_of_account("222222222222"), Some("platform"));
        assert_eq!(catalog.exposure_of_snyk_target("acme/checkout"), Some(Exposure::Internal));
        assert_eq!(catalog.team("payments").time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(catalog.team("nobody").time_zone, chrono_tz::UTC);
    }

    #[test]
    fn refuses_unknown_team_and_fields_with_a_clear_message() {
        let err =
            Catalog::from_toml("default_team = \"a\"\n[teams.a]\n[[owners]]\nteam = \"b\"\n").unwrap_err();
        assert!(err.to_string().contains("team \"b\""), "{err}");
        let err = Catalog::from_toml("default_team = \"a\"\nteamz = 1\n").unwrap_err();
        assert!(err.to_string().contains("teamz"), "{err}");
        let err =
            Catalog::from_toml("default_team = \"a\"\n[teams.a]\ntime_zone = \"Mars/Base\"\n").unwrap_err();
        assert!(err.to_string().contains("Mars/Base"), "{err}");
    }
}
