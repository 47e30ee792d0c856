//! The dependency rules of docs/architecture.md, read from `cargo metadata`, so a new
//! dependency that breaks one fails here rather than in review:
//! - no service crate depends on another service crate (shared clients live in `crates/`);
//! - the libraries under `crates/` depend on no service crate;
//! - the policy crates do no I/O (no runtime, network or AWS crate) and parse no command line
//!   (clap only behind their optional `clap` feature, which the services turn on);
//! - the operator CLI ships no simulator and no demo.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const SERVICES: &[&str] = &["ingest-health", "ingest-snyk", "triage", "jira-writer", "notifier"];
const POLICIES: &[&str] = &["triage-policy", "snyk-policy", "health-policy"];
const IO_CRATES: &[&str] =
    &["tokio", "reqwest", "async-nats", "hyper", "axum", "aws-config", "aws-sdk-sqs", "aws-sdk-health"];
const SIMULATORS: &[&str] = &["jira-sim", "slack-sim", "snyk-sim", "aws-health-sim", "infra-tickets-demo"];

/// Package name → (its folder relative to the workspace, its non-dev, non-optional dependencies).
fn workspace() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let root = metadata["workspace_root"].as_str().unwrap().to_owned();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let manifest = package["manifest_path"].as_str().unwrap();
            let folder =
                manifest.trim_start_matches(&root).trim_start_matches('/').trim_end_matches("/Cargo.toml");
            let dependencies = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null() && d["optional"] != true)
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), (folder.to_owned(), dependencies))
        })
        .collect()
}

#[test]
fn the_crates_keep_the_dependency_rules() {
    let packages = workspace();
    for service in SERVICES {
        assert!(packages.contains_key(*service), "{service} is not a workspace package");
    }
    let mut broken = Vec::new();
    for (name, (folder, dependencies)) in &packages {
        let on = |set: &[&str]| -> Vec<&String> {
            dependencies.iter().filter(|d| set.contains(&d.as_str()) && *d != name).collect()
        };
        if SERVICES.contains(&name.as_str()) && !on(SERVICES).is_empty() {
            broken.push(format!("service {name} depends on service crates {:?}", on(SERVICES)));
        }
        if folder.starts_with("crates/") && !on(SERVICES).is_empty() {
            broken.push(format!("library {name} ({folder}) depends on service crates {:?}", on(SERVICES)));
        }
        if POLICIES.contains(&name.as_str()) {
            if !on(IO_CRATES).is_empty() {
                broken.push(format!("policy {name} depends on I/O crates {:?}", on(IO_CRATES)));
            }
            if dependencies.contains("clap") {
                broken.push(format!("policy {name} depends on clap (make it the optional `clap` feature)"));
            }
        }
        if name == "infra-tickets" && !on(SIMULATORS).is_empty() {
            broken.push(format!("the operator CLI depends on {:?}", on(SIMULATORS)));
        }
    }
    assert!(broken.is_empty(), "dependency rules broken (docs/architecture.md):\n{}", broken.join("\n"));
}
