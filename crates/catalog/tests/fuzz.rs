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
mod mutate {
    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_json::{Value, json};

    /// Any JSON value, a few levels deep.
    pub fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,24}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// One change to one place of a document.
    #[derive(Debug, Clone)]
    pub enum Mutation {
        /// The field or element is removed (the root becomes `null`).
        Drop,
        /// Any other JSON: the type changes.
        Replace(Value),
        /// A string cut short, an array or object with its tail removed.
        Truncate(Index),
        /// A string of this many characters.
        Huge(usize),
        /// Control characters, right-to-left marks, emoji, combining marks.
        Unicode(String),
        /// The value wrapped this many arrays deep.
        Nest(usize),
        /// A number out of the range any field expects.
        Number(Value),
        /// `""`, `[]` or `{}` of the same type.
        Empty,
    }

    fn odd_unicode() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\u{0}".to_owned()),
            Just("\u{202e}evil\u{202c}".to_owned()),
            Just("🦀🦀🦀".to_owned()),
            Just("e\u{301}\u{301}\u{301}".to_owned()),
            Just("\u{feff}".to_owned()),
            Just("\u{10ffff}".to_owned()),
            ".{1,16}",
        ]
    }

    fn odd_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!(0.5)),
            Just(json!(4_294_967_296_u64)),
            Just(json!(1e11)),
            Just(json!(253_402_300_800_i64)),
            any::<i64>().prop_map(Value::from),
        ]
    }

    pub fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            3 => Just(Mutation::Drop),
            3 => any_json().prop_map(Mutation::Replace),
            2 => any::<Index>().prop_map(Mutation::Truncate),
            1 => (1_000_usize..100_000).prop_map(Mutation::Huge),
            2 => odd_unicode().prop_map(Mutation::Unicode),
            1 => (1_usize..100).prop_map(Mutation::Nest),
            2 => odd_number().prop_map(Mutation::Number),
            1 => Just(Mutation::Empty),
        ]
    }

    /// Up to `max` mutations, each at a place chosen among all places of the document.
    pub fn mutations(max: usize) -> impl Strategy<Value = Vec<(Index, Mutation)>> {
        prop::collection::vec((any::<Index>(), mutation()), 1..=max)
    }

    #[derive(Debug, Clone)]
    enum Step {
        Key(String),
        At(usize),
    }

    fn places(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(path.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(Step::Key(key.clone()));
                    places(child, path, out);
                    path.pop();
                }
            }
            Value::Array(list) => {
                for (index, child) in list.iter().enumerate() {
                    path.push(Step::At(index));
                    places(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
        path.iter().try_fold(value, |value, step| match step {
            Step::Key(key) => value.get_mut(key.as_str()),
            Step::At(index) => value.get_mut(*index),
        })
    }

    /// Applies the mutations in order to `document`.
    pub fn apply(mut document: Value, mutations: &[(Index, Mutation)]) -> Value {
        for (place, mutation) in mutations {
            let mut all = Vec::new();
            places(&document, &mut Vec::new(), &mut all);
            let path = &all[place.index(all.len())];
            change(&mut document, path, mutation);
        }
        document
    }

    fn change(document: &mut Value, path: &[Step], mutation: &Mutation) {
        if let Mutation::Drop = mutation {
            match path.split_last() {
                None => *document = Value::Null,
                Some((last, parent)) => match (at(document, parent), last) {
                    (Some(Value::Object(map)), Step::Key(key)) => {
                        map.remove(key);
                    }
                    (Some(Value::Array(list)), Step::At(index)) if *index < list.len() => {
                        list.remove(*index);
                    }
                    _ => {}
                },
            }
            return;
        }
        let Some(target) = at(document, path) else { return };
        *target = match mutation {
            Mutation::Drop => unreachable!("handled above"),
            Mutation::Replace(value) => value.clone(),
            Mutation::Truncate(cut) => match target.take() {
                Value::String(text) => {
                    let chars: Vec<char> = text.chars().collect();
                    Value::String(chars[..cut.index(chars.len() + 1)].iter().collect())
                }
                Value::Array(mut list) => {
                    list.truncate(cut.index(list.len() + 1));
                    Value::Array(list)
                }
                Value::Object(map) => {
                    let keep = cut.index(map.len() + 1);
                    Value::Object(map.into_iter().take(keep).collect())
                }
                other => other,
            },
            Mutation::Huge(length) => {
                let seed = target.as_str().unwrap_or("x").to_owned();
                Value::String(seed.chars().chain(std::iter::repeat('é')).take(*length).collect())
            }
            Mutation::Unicode(text) => match target.take() {
                Value::String(s) => Value::String(format!("{s}{text}")),
                _ => Value::String(text.clone()),
            },
            Mutation::Nest(depth) => {
                let mut value = target.take();
                for _ in 0..*depth {
                    value = Value::Array(vec![value]);
                }
                value
            }
            Mutation::Number(number) => number.clone(),
            Mutation::Empty => match target {
                Value::Array(_) => json!([]),
                Value::Object(_) => json!({}),
                _ => json!(""),
            },
        };
    }

    /// Bytes as they may arrive: cut anywhere, with some bytes overwritten.
    pub fn damaged_bytes(document: &Value) -> impl Strategy<Value = Vec<u8>> + use<> {
        let bytes = serde_json::to_vec(document).expect("JSON serialises");
        (any::<Index>(), prop::collection::vec((any::<Index>(), any::<u8>()), 0..4)).prop_map(
            move |(cut, flips)| {
                let mut bytes = bytes.clone();
                for (place, byte) in flips {
                    let index = place.index(bytes.len());
                    bytes[index] = byte;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
                bytes
            },
        )
    }
}

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
