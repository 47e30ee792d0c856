//! The ownership catalog: it loads (every rule compiles), every team says where its tickets and
//! messages go and in which time zone its days count, and no owner rule is hidden behind an
//! earlier one of another team (the first matching rule wins).

use std::path::Path;

use catalog::{Catalog, Pattern};

use super::{Check, vendor};

/// A catalog file as read: the parsed catalog, or why it could not be; and which teams set a
/// time zone themselves (the parsed catalog fills in UTC).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: String,
    pub catalog: Option<Catalog>,
    pub error: Option<String>,
    pub teams_with_time_zone: Vec<String>,
}

pub fn load(path: &Path) -> Loaded {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Err(error) => Loaded {
            path: shown,
            catalog: None,
            error: Some(format!("cannot read it: {error}")),
            teams_with_time_zone: Vec::new(),
        },
        Ok(text) => from_text(&shown, &text),
    }
}

pub fn from_text(path: &str, text: &str) -> Loaded {
    let teams_with_time_zone = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("teams").and_then(|v| v.as_table()).cloned())
        .map(|teams| {
            teams
                .iter()
                .filter(|(_, team)| team.get("time_zone").is_some())
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    match Catalog::from_toml(text) {
        Ok(catalog) => {
            Loaded { path: path.to_owned(), catalog: Some(catalog), error: None, teams_with_time_zone }
        }
        Err(error) => Loaded {
            path: path.to_owned(),
            catalog: None,
            error: Some(error.to_string()),
            teams_with_time_zone,
        },
    }
}

/// Every check of one catalog.
pub fn checks(loaded: &Loaded) -> Vec<Check> {
    let name = format!("catalog {}: loads, rules compile", vendor(&loaded.path));
    let Some(catalog) = &loaded.catalog else {
        return vec![Check::fail(
            name,
            vendor(loaded.error.as_deref().unwrap_or("unreadable")),
            "fix the catalog file (the README's \"The ownership catalog\" shows the format); `infra-tickets explain --catalog FILE` checks it too",
        )];
    };
    let mut out = vec![Check::pass(
        name,
        format!("{} team(s), {} owner rule(s)", catalog.teams.len(), catalog.owners.len()),
    )];
    if !catalog.teams.is_empty() && !catalog.teams.contains_key(&catalog.default_team) {
        out.push(Check::fail(
            "catalog: default team",
            format!(
                "default_team {:?} has no [teams.{}] section",
                vendor(&catalog.default_team),
                vendor(&catalog.default_team)
            ),
            "add the default team's section, with its project and channel",
        ));
    }
    for (team_name, team) in &catalog.teams {
        let team_label = vendor(team_name);
        out.push(match &team.jira_project {
            Some(project) => {
                Check::pass(format!("catalog: team {team_label}: JIRA project"), vendor(project))
            }
            None => Check::fail(
                format!("catalog: team {team_label}: JIRA project"),
                "no jira_project",
                format!("set jira_project in [teams.{team_label}] (else its tickets go to --jira-project)"),
            ),
        });
        out.push(match (&team.slack_channel, &team.slack_webhook_env) {
            (Some(channel), _) => {
                Check::pass(format!("catalog: team {team_label}: Slack channel"), vendor(channel))
            }
            (None, Some(env)) => Check::pass(
                format!("catalog: team {team_label}: Slack channel"),
                format!("incoming webhook from ${}", vendor(env)),
            ),
            (None, None) => Check::fail(
                format!("catalog: team {team_label}: Slack channel"),
                "neither slack_channel nor slack_webhook_env",
                format!("set slack_channel (the channel id, C…) in [teams.{team_label}]"),
            ),
        });
        let zone_set = loaded.teams_with_time_zone.iter().any(|t| t == team_name);
        out.push(Check::pass(
            format!("catalog: team {team_label}: time zone"),
            if zone_set { team.time_zone.name().to_owned() } else { "UTC (not set: the default)".to_owned() },
        ));
    }
    out.push(overlap_check(catalog));
    out
}

/// A later rule's pattern that an earlier rule of another team already matches never applies.
/// The patterns of one kind of an owner rule.
type PatternsOf = fn(&catalog::OwnerRule) -> &[Pattern];

pub fn overlaps(catalog: &Catalog) -> Vec<String> {
    let mut found = Vec::new();
    let kinds: [(&str, PatternsOf); 2] =
        [("snyk_targets", |r| &r.snyk_targets), ("aws_resources", |r| &r.aws_resources)];
    for (later_index, later) in catalog.owners.iter().enumerate() {
        for earlier in &catalog.owners[..later_index] {
            if earlier.team == later.team {
                continue;
            }
            for (kind, patterns) in kinds {
                for pattern in patterns(later) {
                    if let Some(shadow) = patterns(earlier).iter().find(|e| e.matches(pattern.as_str())) {
                        found.push(format!(
                            "{kind} {:?} of team {} is already matched by {:?} of team {}",
                            vendor(pattern.as_str()),
                            vendor(&later.team),
                            vendor(shadow.as_str()),
                            vendor(&earlier.team)
                        ));
                    }
                }
            }
        }
    }
    found
}

fn overlap_check(catalog: &Catalog) -> Check {
    let found = overlaps(catalog);
    if found.is_empty() {
        Check::pass("catalog: owner rules do not overlap", "no rule hidden by an earlier one")
    } else {
        Check::fail(
            "catalog: owner rules do not overlap",
            found.join("; "),
            "the first matching [[owners]] rule wins: move the narrower rule first or narrow the earlier pattern",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_team = "platform"
[teams.platform]
jira_project = "PLAT"
slack_channel = "C0PLATFORM"
time_zone = "Europe/Berlin"
[teams.payments]
jira_project = "PAY"
slack_channel = "C0PAYMENTS"
[[owners]]
team = "payments"
aws_resources = ["i-0pay*"]
"#;

    #[test]
    fn a_complete_catalog_passes_and_names_the_default_time_zone() {
        let checks = checks(&from_text("c.toml", GOOD));
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
        let zone = |team: &str| {
            checks
                .iter()
                .find(|c| c.name.contains(team) && c.name.ends_with("time zone"))
                .unwrap()
                .detail
                .clone()
        };
        assert_eq!(zone("platform"), "Europe/Berlin");
        assert!(zone("payments").contains("UTC"));
    }

    #[test]
    fn a_team_without_project_or_channel_and_a_broken_file_fail_with_remedies() {
        let text = "default_team = \"platform\"\n[teams.platform]\ntime_zone = \"UTC\"\n";
        let failed: Vec<Check> = checks(&from_text("c.toml", text)).into_iter().filter(|c| !c.ok).collect();
        assert_eq!(failed.len(), 2, "{failed:#?}");
        assert!(failed[0].remedy.contains("jira_project") && failed[1].remedy.contains("slack_channel"));
        let broken = checks(&from_text("c.toml", "default_team = \"p\"\n[[owners]]\nteam = 3\n"));
        assert!(!broken[0].ok && !broken[0].remedy.is_empty(), "{broken:?}");
    }

    #[test]
    fn a_rule_hidden_by_an_earlier_one_of_another_team_is_reported() {
        let text = format!(
            "{GOOD}\n[[owners]]\nteam = \"platform\"\naws_resources = [\"i-0payments-*\", \"i-0plat*\"]\n"
        );
        let catalog = Catalog::from_toml(&text).unwrap();
        let found = overlaps(&catalog);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("i-0payments-*") && found[0].contains("i-0pay*"), "{found:?}");
    }
}
