//! The demo world end to end: the board it settles on, replay, replay --diff after a catalog
//! change, and redriving a dead letter once its cause is fixed.

use std::time::Duration;

use clap::Parser;
use infra_tickets::replay::ReplayArgs;
use infra_tickets_demo::{CATALOG, DemoReport, Stack, StackOptions};
use service_kit::Clock;

const SETTLE: Duration = Duration::from_secs(120);

fn ticket<'a>(report: &'a DemoReport, summary_part: &str) -> Vec<&'a infra_tickets_demo::BoardTicket> {
    report.board.iter().filter(|t| t.summary.contains(summary_part)).collect()
}

/// JIRA requests that change something.
fn jira_writes(stack: &Stack) -> usize {
    stack.jira.calls().iter().filter(|c| c.method != "GET" && !c.path.contains("/search")).count()
}

fn replay_args(stack: &Stack, catalog: &std::path::Path, diff: bool) -> ReplayArgs {
    replay_args_with(stack, catalog, diff, &[])
}

fn replay_args_with(stack: &Stack, catalog: &std::path::Path, diff: bool, extra: &[&str]) -> ReplayArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ReplayArgs,
    }
    let mut argv = vec![
        "replay".to_owned(),
        "--nats-url".into(),
        stack.nats.url().into(),
        "--catalog".into(),
        catalog.display().to_string(),
        "--quiet".into(),
    ];
    if diff {
        argv.push("--diff".into());
    }
    argv.extend(extra.iter().map(|a| a.to_string()));
    Wrapper::parse_from(argv).args
}

#[tokio::test]
async fn the_demo_prints_the_expected_board_and_messages() {
    let today = chrono::Utc::now().date_naive();
    let report =
        infra_tickets_demo::demo(infra_tickets_demo::DemoArgs { keep_running: false, timeout: SETTLE })
            .await
            .unwrap();
    let rendered = report.render();

    // One ticket per image or repository, in the lane the matrix gives, on the owner's board.
    let lanes: Vec<(&str, &str, &str)> = vec![
        ("/payments-api", "PAY", "P1"),
        ("acme/checkout", "PAY", "P1"),
        ("/ledger-worker", "PAY", "P4"),
        ("/image-resizer", "MEDIA", "P3"),
        ("/search-indexer", "PLAT", "P2"),
        ("acme/internal-tools", "PLAT", "P4"),
    ];
    for (target, project, lane) in lanes {
        let found = ticket(&report, target);
        assert_eq!(found.len(), 1, "one ticket for {target}:\n{rendered}");
        assert_eq!((found[0].project.as_str(), found[0].lane.as_str()), (project, lane), "{target}");
    }
    for quiet in ["/legacy-batch", "/old-cron"] {
        assert!(ticket(&report, quiet).is_empty(), "{quiet} has no qualifying finding:\n{rendered}");
    }

    // AWS Health: one Maintenance ticket per event, account and team, due when the event says.
    // The seeded reboot window starts 14 days out; the re-notification moved it 2 days later.
    let reboot = ticket(&report, "reboot");
    assert_eq!(reboot.len(), 1, "the re-notification updated the same ticket:\n{rendered}");
    let moved = today + chrono::Duration::days(16);
    assert_eq!(
        reboot[0].due_date.as_deref(),
        Some(moved.to_string().as_str()),
        "the due date moved with the window"
    );
    assert!(reboot[0].comments >= 1, "the ticket says why its due date moved");
    let network = ticket(&report, "network maintenance");
    let mut network_projects: Vec<&str> = network.iter().map(|t| t.project.as_str()).collect();
    network_projects.sort();
    assert_eq!(network_projects, ["PAY", "PLAT"], "an event spanning two teams gives each its ticket");
    assert_eq!(ticket(&report, "DIRECTCONNECT").len(), 1);
    assert_eq!(ticket(&report, "LAMBDA")[0].project, "DATA");
    assert!(ticket(&report, "RESERVED").is_empty(), "Reserved Instance notices are not ticketed");
    assert!(report.board.iter().filter(|t| t.lane == "Maintenance").all(|t| t.due_date.is_some()));

    // One "new ticket" message per ticket, in its team's channel; nothing dead-lettered.
    assert_eq!(report.messages.len(), report.board.len(), "{rendered}");
    for ticket in &report.board {
        let channel = match ticket.project.as_str() {
            "PLAT" => "platform",
            "PAY" => "payments",
            "DATA" => "data",
            "MEDIA" => "media",
            other => panic!("unexpected project {other}"),
        };
        let sent: Vec<_> =
            report.messages.iter().filter(|m| m.text.starts_with(&format!("{}:", ticket.key))).collect();
        assert_eq!(sent.len(), 1, "one message for {}", ticket.key);
        assert_eq!(sent[0].channel, channel);
    }
    assert_eq!(report.dead_letters, 0);
    assert!(
        rendered.contains(&format!("JIRA board ({} tickets)", report.board.len()))
            && rendered.contains("Slack (")
    );
}

/// The trace ids carried by a stream's messages.
async fn trace_ids(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    let messages = bus::topology::stored_messages(js, stream).await.unwrap();
    messages
        .iter()
        .map(|message| {
            bus::trace::trace_id_of(Some(&message.headers)).expect("every message carries a traceparent")
        })
        .collect()
}

#[tokio::test]
async fn one_trace_follows_an_event_from_its_intake_to_the_ticket_change() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let raw = trace_ids(&stack.js, bus::topology::RAW_EVENTS).await;
    let desired = trace_ids(&stack.js, bus::topology::DESIRED_TICKETS).await;
    let changes = trace_ids(&stack.js, bus::topology::TICKET_CHANGES).await;
    assert!(!changes.is_empty());
    for id in desired.iter().chain(&changes) {
        assert!(raw.contains(id), "trace {id} started at an intake");
    }
    stack.stop().await;
}

#[tokio::test]
async fn replaying_the_raw_stream_twice_writes_nothing_to_jira_and_sends_nothing() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let writes = jira_writes(&stack);
    let messages = stack.slack.all_messages().len();
    for _ in 0..2 {
        let summary =
            infra_tickets::replay::replay(replay_args(&stack, &stack.catalog_path(), false), Clock::system())
                .await
                .unwrap();
        assert!(summary.events > 0);
        assert_eq!(summary.desired_published, 0, "nothing changed, nothing published");
        stack.settle(SETTLE).await.unwrap();
    }
    assert_eq!(jira_writes(&stack), writes, "no JIRA write");
    assert_eq!(stack.slack.all_messages().len(), messages, "no Slack message");
    stack.stop().await;
}

/// Triage's state lost while the pipeline runs (its bucket deleted, set up again as the topology
/// Job would) is rebuilt from the raw stream by `replay --rebuild`: the board and Slack do not change, nothing
/// is filed twice, and a real change after the rebuild still reaches JIRA (the rebuilt states'
/// versions are newer than those the writer applied from the lost ones).
#[tokio::test]
async fn lost_triage_state_is_rebuilt_by_a_replay_that_changes_nothing_in_jira_and_later_changes_still_apply()
{
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let before = stack.report().await.unwrap();
    let (writes, messages) = (jira_writes(&stack), stack.slack.all_messages().len());

    stack.js.delete_key_value(bus::topology::TRIAGE_GROUPS).await.unwrap();
    bus::ensure_topology(&stack.js, &bus::topology::TopologyConfig::default()).await.unwrap();
    let summary = infra_tickets::replay::rebuild(
        replay_args_with(&stack, &stack.catalog_path(), false, &["--rebuild"]),
        &Clock::system(),
    )
    .await
    .unwrap();
    assert!(summary.groups_rebuilt > 0 && summary.groups_kept == 0, "the states were rebuilt: {summary:?}");
    stack.settle(SETTLE).await.unwrap();
    let extra: Vec<_> = stack
        .jira
        .calls()
        .into_iter()
        .filter(|c| c.method != "GET" && !c.path.contains("/search"))
        .skip(writes)
        .map(|c| {
            format!(
                "{} {} {}",
                c.method,
                c.path,
                c.request_body
                    .map(|b| b.to_string().chars().take(400).collect::<String>())
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        jira_writes(&stack),
        writes,
        "the rebuilt states are the ones JIRA has: no JIRA write: {extra:#?}"
    );
    assert_eq!(stack.slack.all_messages().len(), messages, "no Slack message");
    let rebuilt = stack.report().await.unwrap();
    assert_eq!(rebuilt.board, before.board, "the same board");
    assert_eq!(rebuilt.dead_letters, 0);
    let again =
        infra_tickets::replay::replay(replay_args(&stack, &stack.catalog_path(), false), Clock::system())
            .await
            .unwrap();
    assert_eq!(again.desired_published, 0, "the state is whole again: a second replay changes nothing");

    // AWS moves the reboot window: the ticket's due date follows, as before the loss.
    assert!(stack.renotify());
    stack.settle(SETTLE).await.unwrap();
    let moved = stack.report().await.unwrap();
    let reboot = ticket(&moved, "reboot");
    assert_eq!(reboot.len(), 1);
    assert_ne!(
        reboot[0].due_date,
        ticket(&before, "reboot")[0].due_date,
        "the due date moved after the rebuild"
    );
    assert_eq!(moved.board.len(), before.board.len(), "nothing filed twice");
    stack.stop().await;
}

#[tokio::test]
async fn replay_diff_after_a_catalog_change_lists_the_moves_and_replay_moves_them() {
    service_kit::telemetry::init_for_tests();
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let before = stack.report().await.unwrap();
    assert_eq!(ticket(&before, "/image-resizer")[0].project, "MEDIA");

    // The image moves from media to payments.
    let changed = CATALOG.replace(
        "snyk_targets = [\"*.dkr.ecr.*.amazonaws.com/image-*\"]",
        "snyk_targets = [\"*.dkr.ecr.*.amazonaws.com/nothing-*\"]",
    )
    .replace("aws_resources = [\"i-0pay*\", \"arn:aws:rds:*:*:db:payments-*\"]", "aws_resources = [\"i-0pay*\", \"arn:aws:rds:*:*:db:payments-*\"]\nsnyk_targets = [\"*.dkr.ecr.*.amazonaws.com/image-*\"]");
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(&catalog, changed).unwrap();

    let diffs =
        infra_tickets::replay::diff(replay_args(&stack, &catalog, true), &Clock::system()).await.unwrap();
    assert_eq!(diffs.len(), 1, "exactly the ticket that moves team: {diffs:?}");
    assert!(diffs[0].group_key.ends_with("/image-resizer"));
    assert_eq!(diffs[0].changes, ["team media → payments"]);
    assert_eq!(jira_writes(&stack), jira_writes(&stack), "diff writes nothing");

    let writes = jira_writes(&stack);
    infra_tickets::replay::replay(replay_args(&stack, &catalog, false), Clock::system()).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let after = stack.report().await.unwrap();
    let moved = ticket(&after, "/image-resizer");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].project, "PAY", "moved to the payments board");
    assert!(jira_writes(&stack) > writes);
    let handed_over: Vec<_> = after
        .messages
        .iter()
        .filter(|m| m.channel == "payments" && m.text.contains("image-resizer") && m.text.contains("media"))
        .collect();
    assert_eq!(handed_over.len(), 1, "the new team is told, naming the old one: {:?}", after.messages);
    stack.stop().await;
}

/// A policy profile previewed, then applied: `replay --diff --policy-profile` lists exactly the
/// tickets whose due date the profile moves and writes nothing; `replay` with it moves them in
/// JIRA, and the reminders follow the new date: the team is told once, naming the move.
#[tokio::test]
async fn replay_diff_with_a_new_profile_lists_the_due_date_moves_and_replay_moves_them() {
    service_kit::telemetry::init_for_tests();
    let stack =
        Stack::start(StackOptions { reminders_at_any_hour: true, ..StackOptions::default() }).await.unwrap();
    stack.settle(SETTLE).await.unwrap();
    let before = stack.report().await.unwrap();
    let indexer = ticket(&before, "/search-indexer")[0].clone();
    assert_eq!(indexer.lane, "P2");
    let reminders_of = |report: &DemoReport| {
        report
            .messages
            .iter()
            .filter(|m| m.text.contains("search-indexer") && m.text.contains(": Due in "))
            .count()
    };
    assert_eq!(reminders_of(&before), 0, "due in a month: no reminder yet");

    // P2 becomes a 7-day service level; nothing else changes.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.toml");
    std::fs::write(&profile, "name = \"p2-in-a-week\"\n\n[due]\nP2 = \"7 days\"\n").unwrap();
    let with_profile = ["--policy-profile", profile.to_str().unwrap()];

    let writes = jira_writes(&stack);
    let diffs = infra_tickets::replay::diff(
        replay_args_with(&stack, &stack.catalog_path(), true, &with_profile),
        &Clock::system(),
    )
    .await
    .unwrap();
    let p2_tickets: Vec<_> = before.board.iter().filter(|t| t.lane == "P2").collect();
    assert_eq!(diffs.len(), p2_tickets.len(), "exactly the P2 tickets: {diffs:?}");
    let moved =
        diffs.iter().find(|d| d.group_key.ends_with("/search-indexer")).expect("search-indexer moves");
    let week = (chrono::Utc::now().date_naive() + chrono::Days::new(7)).to_string();
    assert_eq!(moved.changes.len(), 1, "{moved:?}");
    assert!(moved.changes[0].starts_with("due date ") && moved.changes[0].ends_with(&week), "{moved:?}");
    assert_eq!(jira_writes(&stack), writes, "the preview writes nothing");

    infra_tickets::replay::replay(
        replay_args_with(&stack, &stack.catalog_path(), false, &with_profile),
        Clock::system(),
    )
    .await
    .unwrap();
    stack.settle(SETTLE).await.unwrap();
    let after = stack.report().await.unwrap();
    let indexer_after = ticket(&after, "/search-indexer")[0];
    assert_eq!(indexer_after.key, indexer.key, "the same ticket, moved");
    assert_eq!(indexer_after.due_date.as_deref(), Some(week.as_str()));
    let unchanged = |t: &&infra_tickets_demo::BoardTicket| t.lane != "P2";
    let others_before: Vec<_> =
        before.board.iter().filter(unchanged).map(|t| (&t.key, &t.due_date)).collect();
    let others_after: Vec<_> = after.board.iter().filter(unchanged).map(|t| (&t.key, &t.due_date)).collect();
    assert_eq!(others_before, others_after, "no other ticket's due date moved");
    // The next scans (every 5 s) send the 14-day reminder, and only once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reminders_of(&stack.report().await.unwrap()) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = stack.report().await.unwrap();
    assert_eq!(reminders_of(&after), 1, "the 14-day reminder, once: {:?}", after.messages);
    stack.stop().await;
}

#[tokio::test]
async fn a_missing_channel_holds_its_message_until_the_channel_exists() {
    service_kit::telemetry::init_for_tests();
    let stack =
        Stack::start(StackOptions { missing_channels: vec!["C0MEDIA".into()], ..StackOptions::default() })
            .await
            .unwrap();
    stack.settle(SETTLE).await.unwrap();
    // One channel's problem stays in that channel: the media message waits, nothing is
    // dead-lettered, the other channels got theirs.
    assert!(bus::dead_letter::list(&stack.js).await.unwrap().is_empty());
    assert!(stack.slack.messages("C0MEDIA").is_empty());
    assert!(!stack.slack.messages("C0PLATFORM").is_empty());

    stack.slack.add_channel("C0MEDIA", "media", true);
    let deadline = std::time::Instant::now() + SETTLE;
    while stack.slack.messages("C0MEDIA").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.settle(SETTLE).await.unwrap();
    assert_eq!(stack.slack.messages("C0MEDIA").len(), 1, "the waiting message went, once");
    assert!(bus::dead_letter::list(&stack.js).await.unwrap().is_empty());
    stack.stop().await;
}
