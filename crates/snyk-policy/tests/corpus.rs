//! The payload corpus (`tests/corpus/*.json`, see its README): payloads of our own writing in
//! the shapes public sources show, each read as `explain` reads it and triaged; the board must
//! be what the case expects.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use snyk_policy::{SnykPolicy, SnykSettings, raw_events_from_documents};
use triage_policy::InMemoryTriage;

const CATALOG: &str = r#"
default_team = "platform"
[teams.platform]
[teams.web]
"#;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every case: its file name and its JSON.
pub fn cases() -> Vec<(String, Value)> {
    let mut cases: Vec<(String, Value)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

#[test]
fn every_case_cites_its_source_and_is_listed_in_the_readme() {
    let readme = std::fs::read_to_string(corpus_dir().join("README.md")).unwrap();
    let cases = cases();
    assert!(cases.len() >= 5);
    for (name, case) in &cases {
        let sources = case["modelled_on"].as_array().unwrap_or_else(|| panic!("{name}: modelled_on"));
        assert!(
            !sources.is_empty() && sources.iter().all(|s| s.as_str().is_some_and(|s| s.len() > 10)),
            "{name}"
        );
        assert!(readme.contains(&format!("`{name}`")), "{name} is not in the README's table");
    }
}

#[test]
fn every_case_gives_the_board_it_expects() {
    let at = "2026-11-27T09:00:00Z".parse().unwrap();
    for (name, case) in cases() {
        let documents = case["documents"].as_array().unwrap();
        let events = raw_events_from_documents(documents, at).unwrap_or_else(|e| panic!("{name}: {e}"));
        let catalog = catalog::Catalog::from_toml(CATALOG).unwrap();
        let mut triage = InMemoryTriage::new(SnykPolicy::new(Arc::new(catalog), SnykSettings::default()));
        for event in &events {
            triage.apply(event, at).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let got: Vec<Value> = triage
            .tickets()
            .iter()
            .map(|t| {
                serde_json::json!({
                    "group_key": t.group_key.as_str(),
                    "lane": t.lane,
                    "team": t.team,
                    "state": t.state,
                    "findings": t.body.items.len(),
                })
            })
            .collect();
        let expected = case["expect"].as_array().unwrap();
        assert_eq!(&got, expected, "{name}: {}", case["case"]);
    }
}
