//! `explain` on the payloads operators have at hand: Snyk REST pages as the API serves them,
//! and AWS Health EventBridge events.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use clap::Parser;
use contracts::{Lane, TicketState};
use health_policy::samples;
use infra_tickets::explain::{ExplainArgs, ExplainedTicket, explain};
use snyk_sim::{SEEDED_ORG_ID, SnykSim};

const TOKEN: &str = "explain-token";

fn args(files: &[PathBuf], extra: &[&str]) -> ExplainArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ExplainArgs,
    }
    let mut argv: Vec<String> = vec!["explain".into()];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    argv.extend(files.iter().map(|f| f.display().to_string()));
    Wrapper::parse_from(argv).args
}

fn write(dir: &Path, name: &str, value: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

fn by_key<'a>(tickets: &'a [ExplainedTicket], suffix: &str) -> &'a ExplainedTicket {
    tickets.iter().find(|t| t.key.ends_with(suffix)).unwrap_or_else(|| panic!("no ticket ending {suffix}"))
}

async fn get(sim: &SnykSim, path: &str) -> serde_json::Value {
    let url = format!("{}/orgs/{SEEDED_ORG_ID}/{path}", sim.base_url());
    reqwest::Client::new()
        .get(url)
        .header("Authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn snyk_pages_explain_to_one_ticket_per_image_and_repository() {
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let projects = get(&sim, "projects?version=2024-10-15&expand=target&limit=100").await;
    let issues = get(&sim, "issues?version=2024-10-15&limit=100").await;
    assert!(
        projects["links"].get("next").is_none() && issues["links"].get("next").is_none(),
        "one page each"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = [write(dir.path(), "projects.json", &projects), write(dir.path(), "issues.json", &issues)];

    let tickets = explain(args(&files, &["--today", "2026-11-27"])).unwrap();
    let open: Vec<&ExplainedTicket> = tickets.iter().filter(|t| t.state == TicketState::Open).collect();
    assert_eq!(open.len(), 7, "one per image or repository with a qualifying finding: {tickets:#?}");
    assert!(tickets.iter().all(|t| t.team == "platform"), "without a catalog, the default team");
    let payments_api = by_key(&tickets, "/payments-api");
    assert_eq!(payments_api.lane, Lane::P1);
    assert_eq!(payments_api.priority.as_deref(), Some("P1"));
    assert_eq!(by_key(&tickets, "/ledger-worker").lane, Lane::P4);
    assert_eq!(by_key(&tickets, "/ledger-worker").due_date, None, "P4 has no due date");
    let p2 = by_key(&tickets, "/search-indexer");
    assert_eq!(p2.lane, Lane::P2);
    assert_eq!(p2.due_date, Some(NaiveDate::from_ymd_opt(2026, 12, 27).unwrap()), "a month from today");
    assert!(payments_api.items.iter().all(|i| !i.reference.is_empty()));

    // A catalog assigns owners, and the same files give the same answer.
    let catalog = write_catalog(dir.path());
    let with_catalog =
        explain(args(&files, &["--today", "2026-11-27", "--catalog", catalog.to_str().unwrap()])).unwrap();
    assert_eq!(by_key(&with_catalog, "/image-resizer").team, "media");
    assert_eq!(by_key(&with_catalog, "/payments-api").team, "payments", "from the Snyk project tag");
}

/// The simulators' world's catalog (the demo's and compose's), copied so each test owns its file.
fn write_catalog(dir: &Path) -> PathBuf {
    let path = dir.join("catalog.toml");
    let demo_catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/compose/catalog.toml");
    std::fs::copy(demo_catalog, &path).unwrap();
    path
}

#[tokio::test]
async fn health_events_explain_with_due_dates_renotifications_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let noticed = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
    let account = "111111111111";

    // A scheduled reboot, then its re-notification with the window two days later.
    let arn = samples::event_arn("eu-west-1", "EC2", "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", "a1");
    let mut reboot = samples::event(
        &arn,
        "EC2",
        "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
        "scheduledChange",
        account,
        "eu-west-1",
        noticed,
        "Your instance is scheduled for a reboot during the window.",
    );
    samples::set(&mut reboot, "statusCode", "upcoming");
    samples::window(
        &mut reboot,
        noticed + Duration::days(10),
        Some(noticed + Duration::days(10) + Duration::hours(2)),
    );
    samples::entities(&mut reboot, &[("i-0web0a1b2c3d4e5f6", "PENDING")]);
    let mut moved = reboot.clone();
    samples::window(&mut moved, noticed + Duration::days(12), None);
    samples::touch(&mut moved, noticed + Duration::days(1));

    // A Lambda end of support: the deadline is only in the text, next to distractor dates.
    let lambda_arn = samples::event_arn("us-east-1", "LAMBDA", "AWS_LAMBDA_OPERATIONAL_NOTIFICATION", "b2");
    let deadline = Utc.with_ymd_and_hms(2027, 3, 9, 0, 0, 0).unwrap();
    let text = aws_health_sim::seed::lambda_runtime_text(deadline, noticed - Duration::days(30));
    let mut lambda = samples::event(
        &lambda_arn,
        "LAMBDA",
        "AWS_LAMBDA_OPERATIONAL_NOTIFICATION",
        "accountNotification",
        account,
        "us-east-1",
        noticed,
        &text,
    );
    samples::entities(&mut lambda, &[("arn:aws:lambda:us-east-1:111111111111:function:etl", "PENDING")]);

    // A retirement that AWS then closes.
    let stop_arn = samples::event_arn("eu-west-1", "EC2", "AWS_EC2_INSTANCE_STOP_SCHEDULED", "c3");
    let mut stop = samples::event(
        &stop_arn,
        "EC2",
        "AWS_EC2_INSTANCE_STOP_SCHEDULED",
        "scheduledChange",
        account,
        "eu-west-1",
        noticed,
        "Your instance will be stopped.",
    );
    samples::window(&mut stop, noticed + Duration::days(5), None);
    samples::entities(&mut stop, &[("i-0old5555eeee6666f", "PENDING")]);
    let mut closed = stop.clone();
    samples::set(&mut closed, "statusCode", "closed");
    samples::touch(&mut closed, noticed + Duration::days(2));

    let files: Vec<PathBuf> = [
        ("1.json", &reboot),
        ("2.json", &moved),
        ("3.json", &lambda),
        ("4.json", &stop),
        ("5.json", &closed),
    ]
    .iter()
    .map(|(name, value)| write(dir.path(), name, value))
    .collect();
    let tickets = explain(args(&files, &["--today", "2026-11-27"])).unwrap();
    assert_eq!(tickets.len(), 3, "one ticket per event, account and team: {tickets:#?}");

    let reboot = tickets.iter().find(|t| t.key.contains("REBOOT")).unwrap();
    assert_eq!(reboot.lane, Lane::Maintenance);
    assert_eq!(reboot.priority, None);
    assert_eq!(reboot.due_date, Some(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()), "the moved window");
    let lambda = tickets.iter().find(|t| t.key.contains("LAMBDA")).unwrap();
    assert_eq!(lambda.due_date, Some(NaiveDate::from_ymd_opt(2027, 3, 9).unwrap()), "not a distractor date");
    assert!(
        lambda.due_source.as_deref().unwrap_or_default().contains("March 9, 2027"),
        "{:?}",
        lambda.due_source
    );
    let stopped = tickets.iter().find(|t| t.key.contains("STOP")).unwrap();
    assert_eq!(stopped.state, TicketState::Resolved, "a closed event resolves its ticket");
}

#[test]
fn an_unknown_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "other.json", &serde_json::json!({"hello": "world"}));
    let error = explain(args(std::slice::from_ref(&file), &[])).expect_err("refused");
    assert!(error.to_string().contains("other.json"), "{error}");
}

/// Single-account Health API responses (they name no account), as `aws health` returns them.
fn api_responses(arn: &str, scope: &str, description: &str) -> Vec<serde_json::Value> {
    let event = serde_json::json!({
        "arn": arn, "service": "RDS", "eventTypeCode": "AWS_RDS_OPERATIONAL_NOTIFICATION",
        "eventTypeCategory": "accountNotification", "region": "eu-west-1",
        "startTime": 1_795_000_000.0, "lastUpdatedTime": 1_795_000_000.0,
        "statusCode": "open", "eventScopeCode": scope
    });
    vec![
        serde_json::json!({"events": [event.clone()]}),
        serde_json::json!({"successfulSet": [{"event": event, "eventDescription": {"latestDescription": description}}], "failedSet": []}),
    ]
}

const RDS_TEXT: &str = "Amazon RDS for MySQL 8.0 reaches the end of standard support on July 31, 2027. \
    Starting August 1, 2027, Amazon RDS charges you for RDS Extended Support.";

#[test]
fn unattributable_and_public_api_events_are_skipped_with_their_reason_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let private = "arn:aws:health:eu-west-1::event/RDS/AWS_RDS_OPERATIONAL_NOTIFICATION/AWS_RDS_OPERATIONAL_NOTIFICATION_p1";
    let public = "arn:aws:health:eu-west-1::event/RDS/AWS_RDS_OPERATIONAL_NOTIFICATION/AWS_RDS_OPERATIONAL_NOTIFICATION_pub";
    let mut files = Vec::new();
    for (index, document) in api_responses(private, "ACCOUNT_SPECIFIC", RDS_TEXT)
        .into_iter()
        .chain(api_responses(public, "PUBLIC", "Elevated error rates in one Availability Zone."))
        .enumerate()
    {
        files.push(write(dir.path(), &format!("{index}.json"), &document));
    }
    let mut reboot = samples::retirement();
    samples::set(&mut reboot, "eventScopeCode", "ACCOUNT_SPECIFIC");
    files.push(write(dir.path(), "eventbridge.json", &reboot));

    let run = infra_tickets::explain::explain_events(args(&files, &["--today", "2027-01-20"])).unwrap();
    assert_eq!(run.tickets.len(), 1, "the EventBridge event still makes its ticket: {:#?}", run.tickets);
    assert_eq!(run.skipped.len(), 2, "{:?}", run.skipped);
    assert!(
        run.skipped.iter().any(|s| s.contains(private) && s.contains("explain --account")),
        "{:?}",
        run.skipped
    );
    assert!(run.skipped.iter().any(|s| s.contains(public) && s.contains("PUBLIC")), "{:?}", run.skipped);

    // --account names the account of single-account responses: the notice is ticketed.
    let run = infra_tickets::explain::explain_events(args(
        &files,
        &["--today", "2027-01-20", "--account", "222222222222"],
    ))
    .unwrap();
    assert_eq!(run.tickets.len(), 2, "{:#?}", run.tickets);
    assert_eq!(run.skipped.len(), 1, "the PUBLIC event stays skipped: {:?}", run.skipped);
    let rds = by_key(&run.tickets, "/222222222222/platform");
    assert_eq!(rds.due_date, Some(NaiveDate::from_ymd_opt(2027, 7, 31).unwrap()));
    assert!(rds.summary.starts_with("Amazon RDS: end of standard support for MySQL 8.0"), "{}", rds.summary);
}

#[test]
fn why_says_for_every_event_why_it_was_or_was_not_ticketed_and_which_sentence_and_rule_gave_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let code = "AWS_RDS_OPERATIONAL_NOTIFICATION";
    let arn = samples::event_arn("eu-west-1", "RDS", code, "why1");
    let noticed = Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap();
    let notice = samples::event(
        &arn,
        "RDS",
        code,
        "accountNotification",
        "111111111111",
        "eu-west-1",
        noticed,
        RDS_TEXT,
    );
    let mut informational = samples::event(
        &samples::event_arn("eu-west-1", "ES", "AWS_ES_OPERATIONAL_NOTIFICATION", "why2"),
        "ES",
        "AWS_ES_OPERATIONAL_NOTIFICATION",
        "accountNotification",
        "111111111111",
        "eu-west-1",
        noticed,
        "Service software update R20220928-P1 available.",
    );
    samples::set(&mut informational, "actionability", "INFORMATIONAL");
    let files = vec![
        write(dir.path(), "1.json", &notice),
        write(dir.path(), "2.json", &informational),
        write(dir.path(), "3.json", &samples::retirement()),
    ];
    let run =
        infra_tickets::explain::explain_events(args(&files, &["--today", "2027-01-20", "--why"])).unwrap();
    assert_eq!(run.why.len(), 3, "one line per event: {:#?}", run.why);
    assert!(run.why[0].contains("ticketed; 1 ticket(s) changed (platform)"), "{}", run.why[0]);
    assert!(run.why[0].contains("due 2027-07-31 by rule \"deadline:"), "{}", run.why[0]);
    assert!(run.why[0].contains("reaches the end of standard support on July 31, 2027."), "{}", run.why[0]);
    assert!(
        run.why[1].contains("not ticketed: ") && run.why[1].contains("actionability INFORMATIONAL"),
        "{}",
        run.why[1]
    );
    assert!(run.why[2].contains("the start of the scheduled window"), "{}", run.why[2]);
    let quiet = infra_tickets::explain::explain_events(args(&files, &["--today", "2027-01-20"])).unwrap();
    assert!(quiet.why.is_empty(), "without --why, nothing is explained");
}

#[test]
fn the_binary_prints_only_json_lines_on_stdout_and_the_reasons_and_logs_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let public = "arn:aws:health:eu-west-1::event/RDS/AWS_RDS_OPERATIONAL_NOTIFICATION/AWS_RDS_OPERATIONAL_NOTIFICATION_pub";
    let mut files: Vec<PathBuf> = api_responses(public, "PUBLIC", "Elevated error rates.")
        .iter()
        .enumerate()
        .map(|(i, d)| write(dir.path(), &format!("{i}.json"), d))
        .collect();
    files.push(write(dir.path(), "eventbridge.json", &samples::retirement()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_infra-tickets"))
        .arg("explain")
        .args(["--today", "2027-01-20", "--why"])
        .args(&files)
        // As verbose as it gets: whatever is logged goes to stderr, never between the JSON lines.
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    for line in lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("skipped: ") && stderr.contains("PUBLIC"), "{stderr}");
    assert!(stderr.contains("why health:"), "{stderr}");
}
