//! The benchmark's short mode runs to the end and its numbers are sane (no timing assertions:
//! speed is measured by `cargo run --release -p pipeline-bench`, not asserted).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_benchmark_completes_with_sane_numbers() {
    service_kit::telemetry::init_for_tests();
    let services = pipeline_bench::services::ServiceCommand::binary(env!("CARGO_BIN_EXE_pipeline-service"));
    let scale = pipeline_bench::Scale::short();
    let report = pipeline_bench::run(scale.clone(), services).await.expect("the short benchmark runs");
    println!("{report}");
    assert_eq!(report.problems(), Vec::<String>::new());
    // Every Health event and every project with a critical finding made exactly one ticket.
    assert_eq!(report.large_tickets, report.large_evidence.by_group.len());
    assert!(report.large_evidence.snyk_snapshots >= scale.projects);
    assert_eq!(report.large_evidence.health_events, scale.health_events);
    // A no-change resync makes no JIRA call.
    assert_eq!(report.resync.jira_calls, 0, "{:?}", report.resync_jira_calls);
    assert_eq!(report.capacity.findings, scale.findings);
    assert_eq!(report.replay.events, scale.replay_events as u64);
    // The JSON summary carries the same figures as the tables.
    let summary = report.summary();
    assert_eq!(summary["large_sync"]["tickets"], report.large_tickets);
    assert_eq!(summary["resync"]["counters"]["jira_calls"], 0);
    assert_eq!(summary["replay"]["events"], report.replay.events);
    assert_eq!(summary["triage_capacity"]["findings"], report.capacity.findings);
    assert!(summary["triage_capacity"]["findings_per_second"].as_f64().is_some_and(|rate| rate > 0.0));
    assert!(summary["trickle"]["to_jira_ms"]["p99"].is_number(), "{summary}");
    assert_eq!(summary["peak_mib"].as_object().map(|peaks| peaks.len()), Some(5), "{summary}");
    assert_eq!(summary["problems"], serde_json::json!([]));
}
