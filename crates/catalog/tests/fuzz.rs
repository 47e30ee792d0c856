//! Bad input for the ownership catalog (`Catalog::from_toml`): arbitrary text, a realistic
//! catalog damaged line by line (lines dropped, repeated, cut, foreign lines added) and field by
//! field (types changed, values out of range, odd unicode). Nothing panics; a refusal is a
//! typed `CatalogError` that says what is wrong; a catalog that is accepted keeps its promises
//! (every owner rule names a described team, no account has two owners) and answers any lookup.
//!
//! `PROPTEST_CASES=20000 cargo test -p catalog --test fuzz` runs a long form
//! (docs/reliability.md records its time).

use catalog::{Catalog, CatalogError};
use proptest::prelude::*;
use serde_json::Value;

/// Structure-aware mutations of realistic JSON documents: drop a field, change its type,
/// truncate or blow up a string, nest it, put odd unicode or out-of-range numbers in it.
/// (The same module is in every crate's `tests/fuzz.rs`; test crates cannot share a module.)
#[allow(dead_code)]
use payload_mutations as mutate;

fn cases(default: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over the default (the long run by hand).
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

const EXAMPLE: &str = r#"default_team = "platform"
snyk_team_tag = "team"
aws_team_tag = "owner"

[teams.platform]
jira_project = "PLAT"
jira_components = ["platform"]
slack_channel = "C0PLATFORM"
aws_accounts = ["222222222222"]

[teams.payments]
jira_project = "PAY"
jira_team_field = "Payments"
jira_labels = ["team-payments"]
slack_webhook_env = "SLACK_WEBHOOK_PAYMENTS"
time_zone = "Europe/Berlin"
aws_accounts = ["111111111111"]

[[owners]]
team = "payments"
snyk_targets = ["*.dkr.ecr.*.amazonaws.com/payments-*", "acme/checkout"]
aws_resources = ["arn:aws:rds:*:111111111111:db:payments-*", "i-0pay*"]

[[exposure]]
snyk_target = "acme/public-website"
exposure = "internet-facing"
"#;

/// Lines a person might paste into the catalog by mistake.
fn foreign_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("time_zone = \"Mars/Olympus_Mons\"".to_owned()),
        Just("aws_accounts = 111111111111".to_owned()),
        Just("[[owners]]\nteam = \"ghost\"".to_owned()),
        Just("default_team = \"\"".to_owned()),
        Just("default_team = \"   \"".to_owned()),
        Just("surprise = true".to_owned()),
        Just("[teams.data]\naws_accounts = [\"111111111111\"]".to_owned()),
        Just("exposure = \"public\"".to_owned()),
        Just("snyk_targets = [\"****************************************a\"]".to_owned()),
        Just("[teams.\"🦀\"]".to_owned()),
        Just("[teams]".to_owned()),
        Just("teams = []".to_owned()),
        Just("jira_components = [1, \"x\"]".to_owned()),
        "[a-z_]{1,12} = \"[^\"\\\\\n]{0,40}\"",
        ".{0,60}",
    ]
}

#[derive(Debug, Clone)]
enum LineChange {
    Drop(prop::sample::Index),
    Repeat(prop::sample::Index),
    Insert(prop::sample::Index, String),
    Cut(prop::sample::Index),
}

fn line_change() -> impl Strategy<Value = LineChange> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(LineChange::Drop),
        any::<prop::sample::Index>().prop_map(LineChange::Repeat),
        (any::<prop::sample::Index>(), foreign_line()).prop_map(|(at, line)| LineChange::Insert(at, line)),
        any::<prop::sample::Index>().prop_map(LineChange::Cut),
    ]
}

fn damage_lines(text: &str, changes: &[LineChange]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for change in changes {
        match change {
            LineChange::Drop(at) if !lines.is_empty() => {
                lines.remove(at.index(lines.len()));
            }
            LineChange::Repeat(at) if !lines.is_empty() => {
                let line = lines[at.index(lines.len())].clone();
                lines.insert(at.index(lines.len()), line);
            }
            LineChange::Insert(at, line) => lines.insert(at.index(lines.len() + 1), line.clone()),
            LineChange::Cut(at) if !lines.is_empty() => {
                let index = at.index(lines.len());
                let chars: Vec<char> = lines[index].chars().collect();
                lines[index] = chars[..at.index(chars.len() + 1)].iter().collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// A refusal says what is wrong; an accepted catalog keeps its promises and answers lookups.
fn check(text: &str, probes: &[String]) -> Result<(), TestCaseError> {
    match Catalog::from_toml(text) {
        Err(error) => {
            let message = error.to_string();
            prop_assert!(message.starts_with("the ownership catalog"), "{message}");
            match &error {
                CatalogError::Parse(toml) => prop_assert!(!toml.message().is_empty(), "{message}"),
                CatalogError::Invalid(reason) => prop_assert!(!reason.is_empty(), "{message}"),
                CatalogError::Read { .. } => prop_assert!(false, "from_toml reads no file"),
            }
        }
        Ok(catalog) => {
            prop_assert!(!catalog.default_team.trim().is_empty());
            if !catalog.teams.is_empty() {
                for rule in &catalog.owners {
                    prop_assert!(catalog.teams.contains_key(&rule.team), "owner {} is described", rule.team);
                }
            }
            let mut accounts = std::collections::BTreeSet::new();
            for team in catalog.teams.values() {
                for account in &team.aws_accounts {
                    prop_assert!(accounts.insert(account.clone()), "account {} has one owner", account);
                }
            }
            for probe in probes {
                let _ = catalog.owner_of_snyk_target(probe);
                let _ = catalog.owner_of_aws_resource(probe);
                let _ = catalog.owner_of_account(probe);
                let _ = catalog.exposure_of_snyk_target(probe);
                let _ = catalog.team(probe).time_zone;
            }
        }
    }
    Ok(())
}

fn probes() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just("123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-api".to_owned()),
            Just("arn:aws:rds:eu-west-1:111111111111:db:payments-main".to_owned()),
            Just("111111111111".to_owned()),
            Just("i-0pay1234".to_owned()),
            Just("a".repeat(10_000)),
            ".{0,40}",
        ],
        0..6,
    )
}

proptest! {
    #![proptest_config(cases(2_000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}", probes in probes()) {
        check(&text, &probes)?;
    }

    #[test]
    fn a_catalog_damaged_line_by_line_is_refused_with_a_reason_or_consistent(
        changes in prop::collection::vec(line_change(), 1..5),
        probes in probes(),
    ) {
        check(&damage_lines(EXAMPLE, &changes), &probes)?;
    }

    #[test]
    fn a_catalog_damaged_field_by_field_is_refused_with_a_reason_or_consistent(
        mutations in mutate::mutations(4),
        probes in probes(),
    ) {
        let table: toml::Table = toml::from_str(EXAMPLE).expect("the example is valid");
        let document: Value = serde_json::to_value(table).expect("TOML is JSON");
        let damaged = mutate::apply(document, &mutations);
        // What TOML cannot say (null, a top-level non-table) is not a catalog anyone can write.
        if let Ok(text) = toml::to_string(&damaged) {
            check(&text, &probes)?;
        }
    }
}

#[test]
fn refusals_say_what_is_wrong() {
    let expectations = [
        ("default_team = \"\"", "default_team is empty"),
        (
            "default_team = \"p\"\n[teams.a]\n[[owners]]\nteam = \"ghost\"",
            "names team \"ghost\", which has no [teams.ghost] section",
        ),
        (
            "default_team = \"p\"\n[teams.a]\naws_accounts = [\"1\"]\n[teams.b]\naws_accounts = [\"1\"]",
            "AWS account 1 is listed by both team \"a\" and team \"b\"",
        ),
        ("default_team = \"p\"\n[teams.a]\ntime_zone = \"Mars/Olympus_Mons\"", "Mars/Olympus_Mons"),
        ("default_team = \"p\"\nsurprise = true", "unknown field `surprise`"),
        (
            "default_team = \"p\"\n[[exposure]]\nsnyk_target = \"x\"\nexposure = \"public\"",
            "unknown variant `public`",
        ),
        ("default_team = 42", "invalid type: integer `42`, expected a string"),
        ("[teams.a]", "missing field `default_team`"),
        ("default_team = \"p\"\n[teams.a\n", "unclosed table, expected `]`"),
    ];
    for (text, reason) in expectations {
        let error = Catalog::from_toml(text).unwrap_err().to_string();
        assert!(error.contains(reason), "{text:?}: {error}");
    }
}
