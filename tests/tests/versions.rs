//! Every service answers `--version` with its name and version, as an operator checking a
//! deployment would ask (the `main.rs` of each parses exactly these configs).

use clap::{CommandFactory, Parser};

fn version_answer<C: Parser + CommandFactory>(name: &str) -> String {
    let Err(error) = C::try_parse_from([name, "--version"]) else {
        panic!("{name}: --version did not stop parsing");
    };
    assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion, "{name}: {error}");
    error.to_string()
}

#[test]
fn every_service_answers_version_with_its_name() {
    let expected = |name: &str| format!("{name} {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(version_answer::<ingest_snyk::Config>("ingest-snyk"), expected("ingest-snyk"));
    assert_eq!(version_answer::<ingest_health::Config>("ingest-health"), expected("ingest-health"));
    assert_eq!(version_answer::<triage::Config>("triage"), expected("triage"));
    assert_eq!(version_answer::<jira_writer::Config>("jira-writer"), expected("jira-writer"));
    assert_eq!(version_answer::<notifier::Config>("notifier"), expected("notifier"));
}
