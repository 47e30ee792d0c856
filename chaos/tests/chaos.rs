//! The bounded chaos suite CI runs (see docs/chaos.md): two processes of each service on a
//! 3-node NATS cluster, seven fault rounds over 35 s (five SIGKILLed service processes, one of
//! each service; two NATS node faults, one SIGKILL and one partition that cuts a node off from
//! its peers while its clients still reach it), JIRA and Slack faults, three poison messages;
//! then every ticket exactly once with the right fields, one "created" notice per ticket, no
//! message twice, only the poison dead-lettered, and every consumer drained.

use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_nothing_duplicated_when_processes_and_nats_nodes_die() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("chaos=info")),
        )
        .with_test_writer()
        .try_init();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_chaos-service"));
    let report = chaos::run(chaos::Options::bounded(binary)).await.expect("the chaos run itself");
    println!("{}", report.render());
    assert!(
        !report.service_kills.is_empty()
            && !report.nats_kills.is_empty()
            && !report.nats_partitions.is_empty(),
        "faults were injected"
    );
    assert!(report.expected_tickets > 50, "a load worth the name: {}", report.expected_tickets);
    assert!(report.passed(), "{}", report.render());
}
