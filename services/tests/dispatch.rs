//! The one binary runs the service it is called by, as the image's links call it.

use std::process::Command;

fn help(command: &mut Command) -> String {
    let output = command.arg("--help").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn called_by_a_services_name_it_is_that_service() {
    let binary = env!("CARGO_BIN_EXE_infra-tickets-services");
    let dir = tempfile::tempdir().unwrap();
    for (service, own_flag) in [
        ("triage", "--catalog"),
        ("ingest-snyk", "--snyk-orgs"),
        ("ingest-health", "--health-sqs-queue-url"),
        ("jira-writer", "--jira-url"),
        ("notifier", "--slack-api-url"),
    ] {
        let link = dir.path().join(service);
        std::os::unix::fs::symlink(binary, &link).unwrap();
        let by_link = help(&mut Command::new(&link));
        assert!(by_link.contains(own_flag), "{service}: {by_link}");
        assert!(by_link.contains(&format!("Usage: {service}")), "{service}: {by_link}");
        let by_argument = help(Command::new(binary).arg(service));
        assert_eq!(by_link, by_argument, "{service}");
    }
}

#[test]
fn an_unknown_name_gets_the_usage_and_exit_code_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_infra-tickets-services")).arg("billing").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let usage = String::from_utf8_lossy(&output.stderr);
    assert!(usage.contains("services: ingest-health, ingest-snyk, triage, jira-writer, notifier"), "{usage}");
}
