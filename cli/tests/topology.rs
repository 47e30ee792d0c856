//! `infra-tickets topology --apply` is what the Kubernetes topology Job runs before the services
//! start with least-privilege NATS users in verify mode; `--verify` is their start-up check.

use std::process::Command;

fn topology(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_infra-tickets"))
        .arg("topology")
        .args(args)
        .env("NATS_URL", url)
        .env_remove("ITK_TOPOLOGY_MODE")
        .output()
        .unwrap()
}

#[test]
fn apply_creates_the_whole_topology_and_verify_then_accepts_it() {
    let nats = local_nats::NatsServer::start().unwrap();

    let before = topology(nats.url(), &[]);
    assert!(before.status.success());
    let report = String::from_utf8(before.stdout).unwrap();
    assert!(report.contains("RAW_EVENTS") && report.contains("missing"), "{report}");

    let applied = topology(nats.url(), &["--apply", "--stream-replicas", "1"]);
    let out = String::from_utf8_lossy(&applied.stdout);
    assert!(applied.status.success(), "{out}{}", String::from_utf8_lossy(&applied.stderr));
    assert!(out.starts_with("applied: 4 stream(s), 3 consumer(s), 7 bucket(s) at 1 replica(s)"), "{out}");
    assert!(!out.contains("missing"), "{out}");

    // Applying twice changes nothing and succeeds (the Job runs at every deploy).
    assert!(topology(nats.url(), &["--apply"]).status.success());

    let verified = topology(nats.url(), &["--verify"]);
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{out}{}", String::from_utf8_lossy(&verified.stderr));
    assert!(out.starts_with("verified: 4 stream(s), 3 consumer(s), 7 bucket(s)"), "{out}");
}

#[test]
fn apply_and_verify_together_are_refused() {
    let output = topology("nats://127.0.0.1:1", &["--apply", "--verify"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}
