//! The Snyk path end to end: the Snyk simulator → ingest-snyk → RAW_EVENTS → triage (with the
//! Snyk policy) → DESIRED_TICKETS, against a real nats-server.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use bus::topology;
use contracts::{DesiredTicket, Lane, TicketState};
use e2e_tests::TestBroker;
use service_kit::Clock;
use snyk_sim::webhook::{Delivery, Signing};
use snyk_sim::{Fault, NewIssue, REGISTRY, SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "snyk-e2e-token";
const SECRET: &str = "snyk-e2e-webhook-secret";
const ORG: &str = SEEDED_ORG_ID;
const DRAIN: Duration = Duration::from_secs(20);

const CATALOG: &str = r#"
default_team = "platform"
snyk_team_tag = "team"

[teams.platform]
jira_project = "PLAT"
[teams.payments]
jira_project = "PAY"
[teams.media]
jira_project = "MEDIA"
[teams.web]
jira_project = "WEB"

[[owners]]
team = "media"
snyk_targets = ["*.dkr.ecr.*.amazonaws.com/image-*"]

[[owners]]
team = "web"
snyk_targets = ["acme/website"]
"#;

fn flags<const N: usize>(args: [&str; N]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

struct Path {
    broker: TestBroker,
    sim: SnykSim,
    ingest: ingest_snyk::Running,
    clock: Clock,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Path {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Path {
    start_with(SnykSim::start(TOKEN).await.expect("snyk-sim starts"), &[ORG]).await
}

/// The path with this simulator, ingesting these of its orgs.
async fn start_with(sim: SnykSim, orgs: &[&str]) -> Path {
    start_with_flags(sim, orgs, &[]).await
}

/// As [`start_with`], with more ingest-snyk flags.
async fn start_with_flags(sim: SnykSim, orgs: &[&str], extra: &[&str]) -> Path {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let clock = Clock::manual("2026-11-27T09:00:00Z".parse().unwrap());
    let shutdown = CancellationToken::new();

    let mut triage: triage::Config = service_kit::config::try_parse_from(
        flags([
            "triage",
            "--nats-url",
            broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            catalog.to_str().unwrap(),
        ]),
        |_| None,
    )
    .expect("valid triage flags");
    triage.clock = clock.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move { triage::run(triage, stop).await.expect("triage runs") });

    let org = orgs.iter().map(|org| format!("{org}@{}", sim.base_url())).collect::<Vec<_>>().join(",");
    let mut ingest_flags = flags([
        "ingest-snyk",
        "--nats-url",
        broker.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-org",
        &org,
        "--snyk-token",
        TOKEN,
        "--snyk-webhook-secret",
        SECRET,
        "--snyk-webhook-max-bytes",
        "65536",
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
        "--snyk-page-limit",
        "10",
        "--snyk-backoff",
        "20ms",
    ]);
    ingest_flags.extend(extra.iter().map(OsString::from));
    let mut ingest: ingest_snyk::Config =
        service_kit::config::try_parse_from(ingest_flags, |_| None).expect("valid ingest-snyk flags");
    ingest.clock = clock.clone();
    let ingest = ingest_snyk::start(ingest, shutdown.clone()).await.expect("ingest-snyk starts");
    Path { broker, sim, ingest, clock, shutdown, _dir: dir }
}

impl Path {
    async fn sync(&self) -> ingest_snyk::SyncReport {
        let report = self.ingest.sync_now().await.remove(0).expect("the sync succeeds");
        self.broker.wait_until_drained(topology::TRIAGE, DRAIN).await;
        report
    }

    /// A full sync of every org, each succeeding.
    async fn sync_all(&self) -> Vec<ingest_snyk::SyncReport> {
        let reports =
            self.ingest.sync_now().await.into_iter().map(|r| r.expect("the sync succeeds")).collect();
        self.broker.wait_until_drained(topology::TRIAGE, DRAIN).await;
        reports
    }

    async fn tickets(&self) -> BTreeMap<String, DesiredTicket> {
        self.broker.desired_tickets().await.into_iter().map(|t| (t.group_key.to_string(), t)).collect()
    }

    async fn last_sequence(&self, stream: &str) -> u64 {
        let mut stream = self.broker.js.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/snyk", self.ingest.http_address)
    }
}

fn image(name: &str) -> String {
    format!("snyk/ecr/{REGISTRY}/{name}")
}

fn date(text: &str) -> Option<chrono::NaiveDate> {
    Some(text.parse().unwrap())
}

#[tokio::test]
async fn the_seeded_org_yields_one_ticket_per_image_and_repository_in_the_right_lane() {
    let path = start().await;
    path.sync().await;
    let tickets = path.tickets().await;
    let got: Vec<(&str, Lane, &str, Option<chrono::NaiveDate>, TicketState)> = tickets
        .values()
        .map(|t| (t.group_key.as_str(), t.lane, t.team.as_str(), t.due.as_ref().map(|d| d.date), t.state))
        .collect();
    let expected_keys = [
        image("image-resizer"),
        image("ledger-worker"),
        image("payments-api"),
        image("search-indexer"),
        "snyk/github/acme/checkout".into(),
        "snyk/github/acme/internal-tools".into(),
        "snyk/github/acme/website".into(),
    ];
    let expected = [
        (Lane::P3, "media", date("2027-02-27")),
        (Lane::P4, "payments", None),
        (Lane::P1, "payments", date("2026-12-20")),
        (Lane::P2, "platform", date("2026-12-27")),
        (Lane::P1, "payments", date("2026-12-20")),
        (Lane::P4, "platform", None),
        (Lane::P3, "web", date("2027-02-27")),
    ];
    let expected: Vec<(&str, Lane, &str, Option<chrono::NaiveDate>, TicketState)> = expected_keys
        .iter()
        .zip(expected)
        .map(|(key, (lane, team, due))| (key.as_str(), lane, team, due, TicketState::Open))
        .collect();
    assert_eq!(got, expected, "ignored, resolved and inactive findings make no ticket");

    let payments = &tickets[&image("payments-api")];
    assert_eq!(payments.body.items.len(), 1, "one item for the CVE found in both tags and both projects");
    let facts: BTreeMap<&str, &str> =
        payments.body.items[0].facts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(facts["Tags"], "2.7.3, 2.8.0");
    assert_eq!(facts["Exploit maturity"], "Mature");
    assert!(facts["Package"].starts_with("libxml2@"));
    assert!(facts["CVE"].starts_with("CVE-"));
    assert!(
        payments.links.iter().all(|l| l.url.starts_with(&format!("https://app.snyk.io/org/{ORG}/project/")))
    );
    let checkout = &tickets["snyk/github/acme/checkout"];
    assert!(
        checkout.body.notes.iter().any(|n| n.contains("(sast")),
        "the Code project is part of the repository"
    );
    let resizer = &tickets[&image("image-resizer")];
    assert!(
        resizer.body.notes.iter().any(|n| n.contains("Exposure was assumed")),
        "{:?}",
        resizer.body.notes
    );

    // A second sync with nothing changed publishes nothing: no raw event, no desired ticket.
    let raw = path.last_sequence(topology::RAW_EVENTS).await;
    let desired = path.last_sequence(topology::DESIRED_TICKETS).await;
    let report = path.sync().await;
    assert_eq!(report.published, 0);
    assert_eq!(path.last_sequence(topology::RAW_EVENTS).await, raw);
    assert_eq!(path.last_sequence(topology::DESIRED_TICKETS).await, desired);
}

#[tokio::test]
async fn fixing_an_image_resolves_it_and_a_mature_finding_raises_an_internal_image_to_p2() {
    let path = start().await;
    path.sync().await;

    // Every critical finding of payments-api fixed (both tags): its ticket resolves.
    let fixed =
        path.sim.fix_issues(ORG, |p, i| p.target_name.ends_with("/payments-api") && i.severity == "critical");
    assert_eq!(fixed, 2);
    path.clock.set("2026-11-30T09:00:00Z".parse().unwrap());
    path.sync().await;
    let tickets = path.tickets().await;
    let payments = &tickets[&image("payments-api")];
    assert_eq!((payments.state, payments.team.as_str()), (TicketState::Resolved, "payments"));
    assert_eq!(tickets[&image("ledger-worker")].lane, Lane::P4, "other groups untouched");

    // A new critical, mature finding on the internal ledger-worker image, announced by a webhook.
    let ledger = path.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    path.sim.add_issue(
        ORG,
        &ledger,
        NewIssue::critical_mature("SNYK-ALPINE319-OPENSSL-7000001", "openssl", "3.1.4-r0"),
    );
    path.clock.set("2026-12-02T09:00:00Z".parse().unwrap());
    let body = path.sim.webhook_body(ORG, &ledger).unwrap();
    let (status, answer) = Delivery::project_snapshot(&body, SECRET, "delivery-1")
        .send(&reqwest::Client::new(), &path.webhook_url())
        .await
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    path.broker.wait_until_drained(topology::TRIAGE, DRAIN).await;
    let tickets = path.tickets().await;
    let ledger_ticket = &tickets[&image("ledger-worker")];
    assert_eq!(ledger_ticket.lane, Lane::P2);
    assert_eq!(ledger_ticket.due.as_ref().map(|d| d.date), date("2027-01-02"));
    assert_eq!(
        ledger_ticket.body.items[0].reference, "SNYK-ALPINE319-OPENSSL-7000001",
        "mature findings first"
    );
    assert!(
        ledger_ticket.body.notes.iter().any(|n| n.contains("Base image: alpine:3.19.1")),
        "the base image the webhook reported: {:?}",
        ledger_ticket.body.notes
    );
}

#[tokio::test]
async fn refused_webhooks_publish_nothing_and_malformed_pages_dead_letter() {
    let path = start().await;
    path.sync().await;
    let raw = path.last_sequence(topology::RAW_EVENTS).await;
    let http = reqwest::Client::new();
    let ledger = path.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    path.sim.add_issue(
        ORG,
        &ledger,
        NewIssue::critical_mature("SNYK-ALPINE319-OPENSSL-7000002", "openssl", "3.1.4-r0"),
    );
    let body = path.sim.webhook_body(ORG, &ledger).unwrap();
    for (signing, transport) in [
        (Signing::Missing, "missing"),
        (Signing::Header("sha256=deadbeef".into()), "wrong"),
        (Signing::Secret("someone-else".into()), "other-secret"),
    ] {
        let delivery = Delivery::project_snapshot(&body, SECRET, transport).with_signing(signing);
        let (status, _) = delivery.send(&http, &path.webhook_url()).await.unwrap();
        assert_eq!(status, 401, "{transport}");
    }
    let mut oversized = Delivery::project_snapshot(&body, SECRET, "oversized");
    oversized.body = serde_json::to_vec(&serde_json::json!({"padding": "x".repeat(70_000)})).unwrap();
    assert_eq!(oversized.send(&http, &path.webhook_url()).await.unwrap().0, 413);
    assert_eq!(path.last_sequence(topology::RAW_EVENTS).await, raw, "nothing published");
    assert_eq!(path.tickets().await[&image("ledger-worker")].lane, Lane::P4);

    // A malformed issues page: dead-lettered with the reason, nothing published, still running.
    path.sim.inject(
        Some("/issues"),
        Fault::Body { status: 200, body: r#"{"jsonapi":{"version":"1.0"},"data":{"id":1}}"#.into() },
    );
    let results = path.ingest.sync_now().await;
    assert!(results[0].is_err());
    let letters = path.broker.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].stage, "ingest-snyk");
    assert!(
        letters[0].reason.contains("malformed Snyk page") && letters[0].reason.contains("/issues"),
        "{}",
        letters[0].reason
    );
    assert_eq!(path.last_sequence(topology::RAW_EVENTS).await, raw);
    // The next sync picks up the change the refused webhooks announced.
    let report = path.sync().await;
    assert_eq!(report.published, 1);
    assert_eq!(path.tickets().await[&image("ledger-worker")].lane, Lane::P2);
}

#[tokio::test]
async fn one_bad_record_is_one_dead_letter_and_the_rest_of_the_org_is_ticketed() {
    let path = start().await;
    let ledger = path.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    let payments = path.sim.project_id(ORG, "payments-api:2.7.3").unwrap();
    // A project without relationships, and an issue without attributes of payments-api:2.7.3.
    let mut orphan = path.sim.rendered_project(ORG, &ledger).unwrap();
    orphan["id"] = "d0000000-0000-4000-8000-0000000000aa".into();
    orphan.as_object_mut().unwrap().remove("relationships");
    path.sim.add_raw_project(ORG, orphan);
    path.sim.add_raw_issue(
        ORG,
        serde_json::json!({"id": "e0000000-0000-4000-8000-0000000000bb", "type": "issue",
            "relationships": {"scan_item": {"data": {"id": payments, "type": "project"}}}}),
    );
    // A critical finding of ledger-worker whose severity is spelt in a way Snyk may add.
    let issue = path.sim.add_issue(
        ORG,
        &ledger,
        NewIssue::critical_mature("SNYK-ALPINE319-OPENSSL-7000009", "openssl", "3.1.4-r0"),
    );
    let mut strange = path.sim.rendered_issue(ORG, &issue.unwrap()).unwrap();
    path.sim.with_org(ORG, |org| org.issues.retain(|i| i.key != "SNYK-ALPINE319-OPENSSL-7000009"));
    strange["attributes"]["effective_severity_level"] = "severe".into();
    path.sim.add_raw_issue(ORG, strange);

    let report = path.sync().await;
    assert_eq!((report.rejected, report.held, report.unknown_values), (2, 1, 1), "{report:?}");
    let tickets = path.tickets().await;
    assert_eq!(tickets.len(), 7, "every group of the org is ticketed: {:?}", tickets.keys());
    let facts: BTreeMap<&str, &str> = tickets[&image("payments-api")].body.items[0]
        .facts
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(facts["Tags"], "2.8.0", "2.7.3 waits for its unreadable issue; 2.8.0 is ticketed");
    assert_eq!(tickets[&image("ledger-worker")].lane, Lane::P4, "an unknown severity does not qualify");
    let letters = path.broker.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| l.stage == "ingest-snyk"));
    assert!(letters.iter().any(|l| l.reason.contains("d0000000-0000-4000-8000-0000000000aa")));
    assert!(letters.iter().any(|l| l.reason.contains("e0000000-0000-4000-8000-0000000000bb")));

    // Every later sync goes on the same way, without filling the dead letters.
    let again = path.sync().await;
    assert_eq!((again.rejected, again.published), (2, 0));
    assert_eq!(path.broker.dead_letters().await.len(), 2);
}

#[tokio::test]
async fn two_orgs_images_of_the_same_bare_name_are_two_tickets_in_their_own_lanes() {
    let second = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let mut first_org = snyk_sim::SimOrg::seeded();
    let mut second_org = snyk_sim::SimOrg::new(second, "Globex Retail", "globex-retail");
    // Snyk shows some registries' images by their bare name: unique only within the org.
    let template = first_org.project_by_name("payments-api:2.7.3").unwrap().clone();
    for (org, id, environment, mature) in [
        (&mut first_org, "f0000000-0000-4000-8000-000000000001", "external", true),
        (&mut second_org, "f0000000-0000-4000-8000-000000000002", "internal", false),
    ] {
        let mut project = template.clone();
        project.id = id.into();
        project.name = "checkout:1.0".into();
        project.target_id = format!("{id}-target");
        project.target_name = "checkout".into();
        project.target_reference = "1.0".into();
        project.environment = vec![environment.into()];
        project.tags.clear();
        org.projects.push(project);
        let mut issue = NewIssue::critical_mature("SNYK-DEBIAN12-GLIBC-9000001", "glibc", "2.36-9");
        if !mature {
            issue.maturity = Some(vec![("CVSSv4".into(), "Unreported".into())]);
        }
        org.add_new_issue(id, issue, "2026-11-20T00:00:00Z".parse().unwrap());
    }
    let sim = SnykSim::start_with(TOKEN, vec![first_org, second_org]).await.unwrap();
    let path = start_with(sim, &[ORG, second]).await;
    path.sync_all().await;
    let tickets = path.tickets().await;
    let keys: Vec<&String> = tickets.keys().collect();
    assert!(tickets.contains_key(&format!("snyk/ecr/org:{ORG}/checkout")), "{keys:#?}");
    let first = &tickets[&format!("snyk/ecr/org:{ORG}/checkout")];
    let other = &tickets[&format!("snyk/ecr/org:{second}/checkout")];
    assert_eq!((first.lane, first.team.as_str()), (Lane::P1, "platform"), "Internet-facing and mature");
    assert_eq!((other.lane, other.team.as_str()), (Lane::P4, "platform"), "internal, no known exploit");
    assert_eq!(tickets.len(), 9, "the seeded org's seven and one per org for checkout");
}

#[tokio::test]
async fn an_incremental_pull_sees_a_finding_downgraded_below_the_floor() {
    let path = start().await;
    path.sync().await;
    assert_eq!(path.tickets().await[&image("ledger-worker")].state, TicketState::Open);
    // Snyk rescores ledger-worker's critical findings as high: still open, no longer critical.
    let downgraded = path.sim.set_issue_severity(ORG, "high", |p, i| {
        p.target_name.ends_with("/ledger-worker") && i.severity == "critical"
    });
    assert!(downgraded >= 1);
    // And payments-api's high openssl finding as medium: below the floor, never ticketed.
    let unrelated = path.sim.set_issue_severity(ORG, "medium", |p, i| {
        p.target_name.ends_with("/payments-api") && i.severity == "high"
    });
    assert!(unrelated >= 1);
    path.sim.clear_requests();
    let report = path.ingest.pull_now().await.remove(0).expect("the pull succeeds");
    path.broker.wait_until_drained(topology::TRIAGE, DRAIN).await;
    assert_eq!(report.published, 1, "{report:?}");
    let ticket = &path.tickets().await[&image("ledger-worker")];
    assert_eq!(ticket.state, TicketState::Resolved, "no full sync needed");
    // A change below the floor of an issue never ticketed costs no refresh.
    let refreshed: Vec<_> =
        path.sim.requests().into_iter().filter(|r| r.params.iter().any(|(k, _)| k == "ids")).collect();
    assert_eq!(refreshed.len(), 1, "only ledger-worker's project: {refreshed:#?}");
}

#[tokio::test]
async fn an_org_walked_project_by_project_gets_the_same_tickets() {
    let every = ["--snyk-issue-severities", "info,low,medium,high,critical"];
    let whole = start_with_flags(SnykSim::start(TOKEN).await.unwrap(), &[ORG], &every).await;
    // Over the issue budget from the first page: the org is walked project by project.
    let budget = [&every[..], &["--snyk-sync-issue-budget", "1"]].concat();
    let walked = start_with_flags(SnykSim::start(TOKEN).await.unwrap(), &[ORG], &budget).await;
    let (a, b) = (whole.sync().await, walked.sync().await);
    assert!(!a.per_project && b.per_project, "{a:?} {b:?}");
    let (mine, theirs) = (whole.tickets().await, walked.tickets().await);
    assert!(mine.len() >= 4, "{:?}", mine.keys());
    assert_eq!(mine.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    // Everything but the raw event's stream sequence, which the order of publication sets.
    let content = |ticket: &DesiredTicket| {
        let mut value = serde_json::to_value(ticket).unwrap();
        value.as_object_mut().unwrap().remove("upstream_version");
        value
    };
    for (key, ticket) in &mine {
        assert_eq!(content(ticket), content(&theirs[key]), "{key}: the same ticket either way");
    }
    // A fix is seen the same way by the walk.
    walked.sim.fix_issues(ORG, |p, _| p.name.starts_with("payments-api"));
    whole.sim.fix_issues(ORG, |p, _| p.name.starts_with("payments-api"));
    let (a, b) = (whole.sync().await, walked.sync().await);
    assert_eq!(a.published, b.published);
    let payments = image("payments-api");
    let (mine, theirs) = (whole.tickets().await, walked.tickets().await);
    assert_eq!(mine[&payments].state, TicketState::Resolved, "{:?}", mine[&payments]);
    assert_eq!(theirs[&payments].state, TicketState::Resolved);
}
