//! ingest-snyk against a real nats-server and the Snyk simulator.

use std::time::Duration;

use async_nats::jetstream;
use bus::topology;
use clap::Parser;
use contracts::RawEvent;
use ingest_snyk::{Config, Running};
use local_nats::NatsServer;
use snyk_policy::{ProjectSnapshot, SnapshotStatus};
use snyk_sim::webhook::{Delivery, Signing};
use snyk_sim::{Fault, NewIssue, SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "snyk-test-token";
const SECRET: &str = "webhook-shared-secret";
const ORG: &str = SEEDED_ORG_ID;

struct Setup {
    _server: NatsServer,
    js: jetstream::Context,
    sim: SnykSim,
    ingest: Running,
    shutdown: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn setup(extra: &[&str]) -> Setup {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let org = format!("{ORG}@{}", sim.base_url());
    let mut args = vec![
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-org",
        &org,
        "--snyk-token",
        TOKEN,
        "--snyk-webhook-secret",
        SECRET,
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
        "--snyk-page-limit",
        "10",
        "--snyk-rate-limit",
        "1620",
        "--snyk-backoff",
        "20ms",
    ];
    args.extend_from_slice(extra);
    let config = Config::parse_from(args);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let client = bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "test")).await.unwrap();
    Setup { _server: server, js: bus::jetstream(client), sim, ingest, shutdown }
}

impl Setup {
    async fn raw_events(&self) -> Vec<RawEvent> {
        let mut stream = self.js.get_stream(topology::RAW_EVENTS).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut events = Vec::new();
        if state.messages == 0 {
            return events;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            let message = stream.get_raw_message(sequence).await.unwrap();
            events.push(RawEvent::from_json(&message.payload).unwrap());
        }
        events
    }

    async fn snapshots(&self) -> Vec<ProjectSnapshot> {
        self.raw_events().await.iter().map(|e| ProjectSnapshot::from_event(e).unwrap()).collect()
    }

    async fn sync(&self) -> ingest_snyk::SyncReport {
        let mut results = self.ingest.sync_now().await;
        results.remove(0).expect("the sync succeeds")
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/snyk", self.ingest.http_address)
    }
}

#[tokio::test]
async fn a_full_sync_publishes_one_snapshot_per_project_and_then_only_changes() {
    let s = setup(&[]).await;
    let org = s.sim.org(ORG).unwrap();
    let report = s.sync().await;
    assert_eq!(report.projects, org.projects.len());
    assert_eq!(report.published, org.projects.len());
    let snapshots = s.snapshots().await;
    assert_eq!(snapshots.len(), org.projects.len());
    let inactive: Vec<&ProjectSnapshot> =
        snapshots.iter().filter(|s| s.status == SnapshotStatus::Inactive).collect();
    assert_eq!(inactive.len(), 1, "old-cron is published as inactive");
    let payments = snapshots.iter().find(|s| s.project.attributes.name == "payments-api:2.7.3").unwrap();
    assert_eq!(payments.issues.len(), 1, "only open critical issues are fetched");
    assert_eq!(
        payments.project.target_display_name(),
        Some(format!("{}/payments-api", snyk_sim::REGISTRY).as_str())
    );

    // Nothing changed: nothing new.
    let again = s.sync().await;
    assert_eq!(again.published, 0);
    assert_eq!(s.raw_events().await.len(), org.projects.len());

    // A fix changes exactly the projects it touches.
    let fixed = s.sim.fix_issues(ORG, |p, _| p.name == "payments-api:2.8.0");
    assert_eq!(fixed, 2, "libxml2 (critical) and openssl (high)");
    let report = s.sync().await;
    assert_eq!((report.published, report.disappeared), (1, 0));
    let last = s.snapshots().await.pop().unwrap();
    assert_eq!((last.project.attributes.name.as_str(), last.issues.len()), ("payments-api:2.8.0", 0));

    // A deleted project is published as disappeared, once.
    let ledger = s.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    s.sim.delete_project(ORG, &ledger);
    let report = s.sync().await;
    assert_eq!((report.published, report.disappeared), (0, 1));
    let last = s.snapshots().await.pop().unwrap();
    assert_eq!((last.status, last.project.id.as_str()), (SnapshotStatus::Disappeared, ledger.as_str()));
    assert_eq!(s.sync().await.disappeared, 0);

    // The same content after the same history keeps its dedup id; the events say where from.
    let events = s.raw_events().await;
    assert!(events.iter().all(|e| e.received_from == format!("snyk-rest:{ORG}")));
    assert!(events.iter().all(|e| e.dedup_id.starts_with(&format!("snyk:{ORG}:"))));
}

#[tokio::test]
async fn requests_follow_the_spec_and_survive_429_and_5xx() {
    let spec = snyk_sim::contract::Spec::load_default().expect("the Snyk contract description");
    let s = setup(&[]).await;
    s.sim.inject(Some("/issues"), Fault::TooManyRequests { retry_after: Some(1) });
    s.sim.inject(Some("/projects"), Fault::ServerError(503));
    s.sim.inject(Some("/projects"), Fault::TooManyRequests { retry_after: None });
    let report = s.sync().await;
    assert_eq!(report.published, s.sim.org(ORG).unwrap().projects.len());
    let requests = s.sim.requests();
    assert_eq!(requests.iter().filter(|r| r.faulted).count(), 3);
    let pages: Vec<_> = requests.iter().filter(|r| !r.faulted).collect();
    assert!(pages.iter().any(|r| r.params.iter().any(|(k, _)| k == "starting_after")), "it paged");
    for request in &pages {
        assert_eq!(request.status, 200, "{request:?}");
        assert!(request.params.contains(&("version".into(), "2024-10-15".into())));
    }
    let violations = spec.check_calls(&requests);
    assert!(violations.is_empty(), "{violations:#?}");
    // The 429 with Retry-After: 1 held the next request back by a second.
    let issues_429 =
        requests.iter().position(|r| r.faulted && r.status == 429 && r.path.ends_with("/issues")).unwrap();
    assert!(requests.len() > issues_429 + 1);
}

#[tokio::test]
async fn a_malformed_page_is_dead_lettered_and_the_service_keeps_running() {
    let s = setup(&[]).await;
    // Not a page at all (`data` is not an array): the page is dead-lettered whole.
    let bad = r#"{"jsonapi":{"version":"1.0"},"data":{"id":"x","type":"project"},"links":{}}"#;
    s.sim.inject(Some("/projects"), Fault::Body { status: 200, body: bad.into() });
    let results = s.ingest.sync_now().await;
    assert!(results[0].is_err());
    assert!(s.raw_events().await.is_empty(), "a partial listing publishes nothing");
    let letters = bus::dead_letter::list(&s.js).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].stage, "ingest-snyk");
    assert!(
        letters[0].reason.contains("malformed Snyk page") && letters[0].reason.contains("invalid type"),
        "{}",
        letters[0].reason
    );
    assert_eq!(&letters[0].payload[..], bad.as_bytes());
    // Still running: the next sync works.
    assert_eq!(s.sync().await.published, s.sim.org(ORG).unwrap().projects.len());
    let health = reqwest::get(format!("http://{}/readyz", s.ingest.http_address)).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_trigger_a_refresh() {
    let s = setup(&["--snyk-webhook-max-bytes", "4096"]).await;
    s.sync().await;
    let before = s.raw_events().await.len();
    let http = reqwest::Client::new();
    let url = s.webhook_url();

    let (status, _) = Delivery::ping("hook-1", SECRET, "t-ping").send(&http, &url).await.unwrap();
    assert_eq!(status, 200);

    // A new mature finding, announced by a webhook.
    let ledger = s.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    s.sim.add_issue(
        ORG,
        &ledger,
        NewIssue::critical_mature("SNYK-ALPINE319-OPENSSL-7000001", "openssl", "3.1.4-r0"),
    );
    let body = s.sim.webhook_body(ORG, &ledger).unwrap();

    for (signing, expected) in [
        (Signing::Missing, 401),
        (Signing::Header("sha256=00ff".into()), 401),
        (Signing::Secret("not-the-secret".into()), 401),
    ] {
        let delivery = Delivery::project_snapshot(&body, SECRET, "t-bad").with_signing(signing);
        let (status, answer) = delivery.send(&http, &url).await.unwrap();
        assert_eq!(status, expected, "{answer}");
    }
    let mut oversized = Delivery::project_snapshot(&body, SECRET, "t-big");
    oversized.body = vec![b' '; 5000];
    let (status, _) = oversized.send(&http, &url).await.unwrap();
    assert_eq!(status, 413);
    assert_eq!(s.raw_events().await.len(), before, "refused deliveries publish nothing");

    let (status, answer) = Delivery::project_snapshot(&body, SECRET, "t-1").send(&http, &url).await.unwrap();
    assert_eq!(status, 202, "{answer}");
    let events = s.snapshots().await;
    assert_eq!(events.len(), before + 1);
    let refreshed = events.last().unwrap();
    assert_eq!(refreshed.project.id, ledger);
    assert!(
        refreshed.issues.iter().any(|i| i.attributes.key == "SNYK-ALPINE319-OPENSSL-7000001"),
        "from the REST API"
    );
    assert_eq!(
        refreshed.base_image.as_ref().unwrap().image,
        "alpine:3.19.1",
        "the base image the webhook reported"
    );

    // The same delivery again is skipped; the base image is kept by later syncs.
    let (status, answer) = Delivery::project_snapshot(&body, SECRET, "t-1").send(&http, &url).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("duplicate"));
    assert_eq!(s.sync().await.published, 0);
    assert_eq!(s.raw_events().await.len(), before + 1);

    // A signed body that is not a project_snapshot body is dead-lettered.
    let garbage = Delivery {
        event: "project_snapshot/v0".into(),
        transport_id: "t-garbage".into(),
        body: br#"{"project": "not an object"}"#.to_vec(),
        signing: Signing::Secret(SECRET.into()),
    };
    let (status, _) = garbage.send(&http, &url).await.unwrap();
    assert_eq!(status, 400);
    let letters = bus::dead_letter::list(&s.js).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("malformed Snyk project_snapshot webhook body"),
        "{}",
        letters[0].reason
    );
    assert_eq!(s.raw_events().await.len(), before + 1);
}

#[tokio::test]
async fn a_refused_token_makes_the_service_unready_with_the_reason() {
    let s = setup(&[]).await;
    let org = format!("{ORG}@{}", s.sim.base_url());
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        s._server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-org",
        &org,
        "--snyk-token",
        "revoked",
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
    ]);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let results = ingest.sync_now().await;
    assert!(results[0].as_ref().unwrap_err().to_string().contains("refused the token"));
    let ready = reqwest::get(format!("http://{}/readyz", ingest.http_address)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("refused the token") && !text.contains("revoked"), "{text}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();
}

#[tokio::test]
async fn several_orgs_and_a_scheduled_reconcile() {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    let second = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let sim = SnykSim::start_with(
        TOKEN,
        vec![snyk_sim::SimOrg::seeded(), snyk_sim::SimOrg::synthetic(second, 30, 200)],
    )
    .await
    .unwrap();
    let orgs = format!("{ORG}@{base},{second}@{base}", base = sim.base_url());
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-orgs",
        &orgs,
        "--snyk-token",
        TOKEN,
        "--snyk-reconcile-interval",
        "300ms",
    ]);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let client = bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "test")).await.unwrap();
    let js = bus::jetstream(client);
    let expected = sim.org(ORG).unwrap().projects.len() + 30;
    // No sync_now: the schedule syncs both orgs by itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut stream = js.get_stream(topology::RAW_EVENTS).await.unwrap();
        let info = stream.info().await.unwrap();
        if info.state.messages as usize == expected && info.state.subjects_count == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {expected} snapshots", info.state.messages);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Further scheduled syncs of unchanged orgs publish nothing.
    let requests = sim.requests().len();
    while sim.requests().len() < requests + 8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stream = js.get_stream(topology::RAW_EVENTS).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages as usize, expected);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();
}

#[tokio::test]
async fn incremental_pulls_refresh_only_the_projects_whose_issues_changed() {
    let s = setup(&[]).await;
    s.sync().await;
    let before = s.raw_events().await.len();
    s.sim.clear_requests();
    let nothing = s.ingest.pull_now().await.remove(0).unwrap();
    assert_eq!((nothing.issues, nothing.published), (0, 0));
    assert_eq!(s.sim.requests().len(), 1, "one page of issues updated since the last sync");

    let fixed = s.sim.fix_issues(ORG, |p, i| p.name == "search-indexer:5.0.2" && i.severity == "critical");
    assert_eq!(fixed, 1);
    s.sim.clear_requests();
    let report = s.ingest.pull_now().await.remove(0).unwrap();
    assert_eq!((report.issues, report.projects, report.published), (1, 1, 1));
    let requests = s.sim.requests();
    assert_eq!(requests.len(), 3, "changed issues, then the project and its issues: {requests:#?}");
    assert!(requests[0].params.iter().any(|(k, _)| k == "updated_after"));
    assert!(!requests[0].params.iter().any(|(k, _)| k == "status"), "resolved issues are changes too");
    let events = s.snapshots().await;
    assert_eq!(events.len(), before + 1);
    let last = events.last().unwrap();
    assert_eq!((last.project.attributes.name.as_str(), last.issues.len()), ("search-indexer:5.0.2", 0));
    let violations = snyk_sim::contract::Spec::load_default().unwrap().check_calls(&requests);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn explain_turns_the_same_pages_into_the_same_raw_events() {
    let s = setup(&[]).await;
    s.sync().await;
    // The pages ingest read (issues first, then projects), given to explain as a user would
    // paste them: projects pages, then issues pages.
    let (projects, issues): (Vec<_>, Vec<_>) =
        s.sim.requests().into_iter().partition(|r| r.path.ends_with("/projects"));
    let documents: Vec<serde_json::Value> =
        projects.into_iter().chain(issues).filter_map(|r| r.response).collect();
    assert!(documents.len() >= 3);
    let explained = snyk_policy::raw_events_from_documents(&documents, chrono::Utc::now()).unwrap();
    let published = s.raw_events().await;
    let key = |e: &RawEvent| (e.dedup_id.clone(), e.received_from.clone(), e.payload.clone());
    let mut explained: Vec<_> = explained.iter().map(key).collect();
    let mut published: Vec<_> = published.iter().map(key).collect();
    explained.sort_by(|a, b| a.0.cmp(&b.0));
    published.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(explained, published);
}

/// A projects page whose `links.next` is `next`, holding nothing.
fn empty_page_linking_to(next: &str) -> String {
    serde_json::json!({"jsonapi": {"version": "1.0"}, "data": [], "links": {"next": next}}).to_string()
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_the_token_never_leaves() {
    let s = setup(&[]).await;
    // The "elsewhere": a server that would answer a listing and records what reached it.
    let elsewhere = SnykSim::start(TOKEN).await.unwrap();
    let foreign =
        format!("{}/orgs/{ORG}/projects?version=2024-10-15&starting_after=v1.x", elsewhere.base_url());
    let same_host_other_port = foreign.replace(&elsewhere.address().port().to_string(), "1");
    for link in [foreign.clone(), same_host_other_port, foreign.replace("http://", "https://")] {
        s.sim.inject(Some("/projects"), Fault::Body { status: 200, body: empty_page_linking_to(&link) });
        let error = s.ingest.sync_now().await.remove(0).unwrap_err().to_string();
        assert!(error.contains("is not followed") && error.contains("not to the configured API"), "{error}");
    }
    assert!(elsewhere.requests().is_empty(), "no request, so no token, reached another origin");
    assert!(s.raw_events().await.is_empty());
    // An absolute link to the configured API itself is followed.
    let own = format!("{}/orgs/{ORG}/projects?version=2024-10-15&limit=20&expand=target", s.sim.base_url());
    s.sim.inject(Some("/projects"), Fault::Body { status: 200, body: empty_page_linking_to(&own) });
    assert_eq!(s.sync().await.published, s.sim.org(ORG).unwrap().projects.len());
}

#[tokio::test]
async fn a_repeated_cursor_stops_the_listing_with_an_error() {
    let s = setup(&[]).await;
    let again =
        format!("/orgs/{ORG}/projects?version=2024-10-15&limit=10&expand=target&starting_after=v1.same");
    // The first page and the page at the cursor both hand back the same cursor.
    for _ in 0..2 {
        s.sim.inject(Some("/projects"), Fault::Body { status: 200, body: empty_page_linking_to(&again) });
    }
    let error = tokio::time::timeout(Duration::from_secs(20), s.ingest.sync_now())
        .await
        .expect("the listing stops")
        .remove(0)
        .unwrap_err()
        .to_string();
    assert!(error.contains("repeats the cursor \"v1.same\""), "{error}");
    assert_eq!(s.sim.requests().iter().filter(|r| r.path.ends_with("/projects")).count(), 2);
    // The next sync pages normally.
    assert_eq!(s.sync().await.published, s.sim.org(ORG).unwrap().projects.len());
}

#[tokio::test]
async fn a_response_above_the_size_bound_is_refused_unread() {
    let s = setup(&["--snyk-max-response-bytes", "65536"]).await;
    let padding = "x".repeat(100_000);
    let body = serde_json::json!({"jsonapi": {"version": "1.0"}, "data": [], "meta": {"padding": padding}});
    s.sim.inject(Some("/projects"), Fault::Body { status: 200, body: body.to_string() });
    let error = s.ingest.sync_now().await.remove(0).unwrap_err().to_string();
    assert!(
        error.contains("larger than 65536 bytes") && error.contains("--snyk-max-response-bytes"),
        "{error}"
    );
    assert!(s.raw_events().await.is_empty());
    assert_eq!(s.sync().await.published, s.sim.org(ORG).unwrap().projects.len());
}

#[tokio::test]
async fn one_bad_resource_is_one_dead_letter_and_the_rest_of_the_org_goes_on() {
    let s = setup(&[]).await;
    let payments = s.sim.project_id(ORG, "payments-api:2.7.3").unwrap();
    let ledger = s.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    // A project without relationships (the spec allows it; it cannot be grouped).
    let mut orphan = s.sim.rendered_project(ORG, &ledger).unwrap();
    orphan["id"] = "d0000000-0000-4000-8000-000000000001".into();
    orphan.as_object_mut().unwrap().remove("relationships");
    s.sim.add_raw_project(ORG, orphan);
    // A project with a status Snyk may add: tolerated and counted.
    let mut paused = s.sim.rendered_project(ORG, &ledger).unwrap();
    paused["id"] = "d0000000-0000-4000-8000-000000000002".into();
    paused["attributes"]["status"] = "paused".into();
    s.sim.add_raw_project(ORG, paused);
    // An issue of payments-api:2.7.3 without attributes: that project keeps its last snapshot.
    s.sim.add_raw_issue(
        ORG,
        serde_json::json!({"id": "e0000000-0000-4000-8000-000000000001", "type": "issue",
            "relationships": {"scan_item": {"data": {"id": payments, "type": "project"}}}}),
    );
    let report = s.sync().await;
    let org = s.sim.org(ORG).unwrap();
    assert_eq!((report.rejected, report.held, report.unknown_values), (2, 1, 1), "{report:?}");
    assert_eq!(
        report.published,
        org.projects.len() + 1 - 1,
        "every project but the held one, and the paused one"
    );
    let snapshots = s.snapshots().await;
    assert!(!snapshots.iter().any(|s| s.project.id == payments), "held, not published without its issue");
    let paused = snapshots.iter().find(|s| s.project.id == "d0000000-0000-4000-8000-000000000002").unwrap();
    assert_eq!(paused.status, SnapshotStatus::Active, "an unknown status still counts as monitored");
    let letters = bus::dead_letter::list(&s.js).await.unwrap();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert_eq!(letters.len(), 2, "{reasons:#?}");
    assert!(
        reasons.iter().any(|r| r.contains("project \"d0000000-0000-4000-8000-000000000001\" cannot be read")
            && r.contains("missing field `relationships`")),
        "{reasons:#?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("issue \"e0000000-0000-4000-8000-000000000001\" cannot be read")
            && r.contains("missing field `attributes`")),
        "{reasons:#?}"
    );
    assert!(
        letters.iter().all(|l| serde_json::from_slice::<serde_json::Value>(&l.payload).unwrap()["id"]
            .as_str()
            .is_some_and(|id| id.starts_with('d') || id.starts_with('e'))),
        "the resource alone is kept"
    );

    // The same bad records at the next sync: no new dead letter, nothing disappears.
    let again = s.sync().await;
    assert_eq!((again.rejected, again.held, again.published, again.disappeared), (2, 1, 0, 0));
    assert_eq!(bus::dead_letter::list(&s.js).await.unwrap().len(), 2);

    // Once the bad issue is gone, the held project is published.
    s.sim.with_org(ORG, |org| org.raw_issues.clear());
    let fixed = s.sync().await;
    assert_eq!((fixed.held, fixed.published), (0, 1));
    assert_eq!(s.snapshots().await.last().unwrap().project.id, payments);
}

/// The payload corpus of snyk-policy (see its README): every case, by file name.
fn corpus() -> Vec<(String, serde_json::Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/snyk-policy/tests/corpus");
    let mut cases: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let case = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            (path.file_name().unwrap().to_string_lossy().into_owned(), case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

#[tokio::test]
async fn the_corpus_goes_through_ingest_as_through_explain() {
    let mut rest_cases = 0;
    for (name, case) in corpus() {
        let documents = case["documents"].as_array().unwrap().clone();
        let s = setup(&[]).await;
        match snyk_policy::classify(&documents[0]) {
            Some(snyk_policy::DocumentKind::WebhookBody) => {
                let http = reqwest::Client::new();
                for (n, body) in documents.iter().enumerate() {
                    let delivery = Delivery::project_snapshot(body, SECRET, &format!("corpus-{name}-{n}"));
                    let (status, answer) = delivery.send(&http, &s.webhook_url()).await.unwrap();
                    assert_eq!(status, 202, "{name}: {answer}");
                }
                assert!(bus::dead_letter::list(&s.js).await.unwrap().is_empty(), "{name}");
            }
            _ => {
                rest_cases += 1;
                // Served as the org's listings, in order: projects pages, then issues pages.
                for document in &documents {
                    let listing = match snyk_policy::classify(document) {
                        Some(snyk_policy::DocumentKind::ProjectsPage) => "/projects",
                        _ => "/issues",
                    };
                    s.sim.inject(Some(listing), Fault::Body { status: 200, body: document.to_string() });
                }
                let report = s.sync().await;
                assert_eq!(report.rejected, 0, "{name}");
                let explained =
                    snyk_policy::raw_events_from_documents(&documents, chrono::Utc::now()).unwrap();
                let key = |e: &RawEvent| (e.dedup_id.clone(), e.payload.clone());
                let mut explained: Vec<_> = explained.iter().map(key).collect();
                let mut published: Vec<_> = s.raw_events().await.iter().map(key).collect();
                explained.sort_by(|a, b| a.0.cmp(&b.0));
                published.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(published, explained, "{name}");
            }
        }
    }
    assert!(rest_cases >= 3);
}

#[tokio::test]
async fn replayed_webhooks_with_new_transport_ids_coalesce_into_few_refreshes() {
    let s = setup(&["--snyk-webhook-coalesce", "600ms"]).await;
    s.sync().await;
    let http = reqwest::Client::new();
    let ledger = s.sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    let body = s.sim.webhook_body(ORG, &ledger).unwrap();
    s.sim.clear_requests();
    let refreshes = |s: &Setup| {
        s.sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/projects") && r.params.iter().any(|(k, _)| k == "ids"))
            .count()
    };
    let (status, answer) =
        Delivery::project_snapshot(&body, SECRET, "replay-0").send(&http, &s.webhook_url()).await.unwrap();
    assert_eq!((status, answer.contains("refreshed")), (202, true), "{answer}");
    // A real change lands while replays of the same body arrive with fresh transport ids.
    s.sim.add_issue(
        ORG,
        &ledger,
        NewIssue::critical_mature("SNYK-ALPINE319-MUSL-7000077", "musl", "1.2.4-r2"),
    );
    for n in 1..20 {
        let delivery = Delivery::project_snapshot(&body, SECRET, &format!("replay-{n}"));
        let (status, answer) = delivery.send(&http, &s.webhook_url()).await.unwrap();
        assert_eq!((status, answer.contains("coalesced")), (202, true), "{answer}");
    }
    assert_eq!(refreshes(&s), 1, "twenty deliveries, one refresh so far");
    // At the end of the window, one more refresh reads the last word.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while refreshes(&s) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the trailing refresh ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(refreshes(&s), 2);
    let last = s.snapshots().await.pop().unwrap();
    assert!(last.issues.iter().any(|i| i.attributes.key == "SNYK-ALPINE319-MUSL-7000077"), "nothing lost");
}

#[tokio::test]
async fn one_orgs_refusal_affects_that_org_only() {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    // An org id of this test alone: the metrics registry is the process's.
    let second = "6b5a4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d";
    let sim = SnykSim::start_with(
        TOKEN,
        vec![snyk_sim::SimOrg::seeded(), snyk_sim::SimOrg::synthetic(second, 5, 10)],
    )
    .await
    .unwrap();
    let orgs = format!("{ORG}@{base},{second}@{base}", base = sim.base_url());
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-orgs",
        &orgs,
        "--snyk-token",
        TOKEN,
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
    ]);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let forbidden = r#"{"jsonapi":{"version":"1.0"},"errors":[{"status":"403","detail":"Forbidden"}]}"#;
    sim.inject(Some(second), Fault::Body { status: 403, body: forbidden.into() });
    let results = ingest.sync_now().await;
    assert_eq!(results[0].as_ref().unwrap().published, sim.org(ORG).unwrap().projects.len());
    assert!(results[1].as_ref().unwrap_err().to_string().contains("refused the token"));
    let ready = reqwest::get(format!("http://{}/readyz", ingest.http_address)).await.unwrap();
    assert_eq!(ready.status(), 200, "the other org is ingested");
    let detail = ready.text().await.unwrap();
    assert!(
        detail.contains("snyk api: degraded: 1 of 2 orgs refused: org 6b5a4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d")
            && detail.contains("403")
            && !detail.contains(ORG),
        "the readiness detail names the refused org only: {detail}"
    );
    let refused = |metrics: &str, org: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("itk_snyk_org_refused{") && l.contains(&format!("org=\"{org}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    let metrics_url = format!("http://{}/metrics", ingest.metrics_address);
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert_eq!(refused(&metrics, second).as_deref(), Some("1"), "{metrics}");
    // The refused org recovers on its own at the next sync.
    let results = ingest.sync_now().await;
    assert_eq!(results[1].as_ref().unwrap().published, 5);
    let ready = reqwest::get(format!("http://{}/readyz", ingest.http_address)).await.unwrap();
    assert_eq!(ready.text().await.unwrap(), "nats: ok\nsnyk api: ok");
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert_eq!(refused(&metrics, second).as_deref(), Some("0"));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();
}

#[tokio::test]
async fn orgs_are_discovered_from_the_token_with_include_and_exclude_lists() {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    let (second, third) = ("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    let sim = SnykSim::start_with(
        TOKEN,
        vec![
            snyk_sim::SimOrg::seeded(),
            snyk_sim::SimOrg::synthetic(second, 5, 10),
            snyk_sim::SimOrg::synthetic(third, 3, 6),
        ],
    )
    .await
    .unwrap();
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-api-url",
        &sim.base_url(),
        "--snyk-discover-orgs",
        "--snyk-org-exclude",
        &third.to_uppercase(),
        "--snyk-token",
        TOKEN,
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
    ]);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let results = ingest.sync_now().await;
    let published: Vec<usize> = results.into_iter().map(|r| r.unwrap().published).collect();
    let mut expected = vec![sim.org(ORG).unwrap().projects.len(), 5];
    expected.sort();
    let mut got = published.clone();
    got.sort();
    assert_eq!(got, expected, "the seeded org and the second; the third is excluded");
    let requests = sim.requests();
    assert!(requests.iter().any(|r| r.path == "/rest/orgs"));
    assert!(!requests.iter().any(|r| r.path.contains(third)), "an excluded org is never read");
    let violations = snyk_sim::contract::Spec::load_default().unwrap().check_calls(&requests);
    assert!(violations.is_empty(), "{violations:#?}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();
}

#[tokio::test]
async fn each_region_uses_its_own_token() {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    let eu_org = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let us = SnykSim::start(TOKEN).await.unwrap();
    let eu = SnykSim::start_with("eu-region-token", vec![snyk_sim::SimOrg::synthetic(eu_org, 4, 8)])
        .await
        .unwrap();
    let orgs = format!("{ORG}@{},{eu_org}@{}", us.base_url(), eu.base_url());
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-orgs",
        &orgs,
        "--snyk-token",
        TOKEN,
        "--snyk-region-token",
        &format!("{}=eu-region-token", eu.base_url()),
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
    ]);
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let results = ingest.sync_now().await;
    assert_eq!(results[0].as_ref().unwrap().published, us.org(ORG).unwrap().projects.len());
    assert_eq!(results[1].as_ref().unwrap().published, 4, "the EU org is read with the EU token");
    assert!(eu.requests().iter().all(|r| r.status == 200));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();
}

/// Compiles only while the service's future is `Send` (the CLI and the benchmarks spawn it on
/// a multi-threaded runtime; these tests' runtimes would not notice).
#[allow(dead_code)]
fn the_service_future_is_send(config: Config) {
    fn send<T: Send>(_: T) {}
    send(ingest_snyk::run(config, CancellationToken::new()));
}

/// Per project: its status and its issues' ids, as published.
fn published_issues(
    snapshots: &[ProjectSnapshot],
) -> std::collections::BTreeMap<String, (SnapshotStatus, Vec<String>)> {
    snapshots
        .iter()
        .map(|s| {
            let mut ids: Vec<String> = s.issues.iter().map(|i| i.id.clone()).collect();
            ids.sort();
            (s.project.id.clone(), (s.status, ids))
        })
        .collect()
}

#[tokio::test]
async fn an_org_over_the_issue_budget_is_walked_project_by_project_with_the_same_snapshots() {
    let every = "info,low,medium,high,critical";
    // The same org, synced holding its whole issue listing, and under a budget it exceeds.
    let fits = setup(&["--snyk-issue-severities", every]).await;
    let over = setup(&["--snyk-issue-severities", every, "--snyk-sync-issue-budget", "1"]).await;
    for s in [&fits, &over] {
        // One unreadable issue holds its project in both ways of listing.
        let payments = s.sim.project_id(ORG, "payments-api:2.7.3").unwrap();
        s.sim.add_raw_issue(
            ORG,
            serde_json::json!({"id": "e0000000-0000-4000-8000-000000000001", "type": "issue",
                "relationships": {"scan_item": {"data": {"id": payments, "type": "project"}}}}),
        );
    }
    let (whole, walked) = (fits.sync().await, over.sync().await);
    assert!(!whole.per_project && walked.per_project, "{whole:?} {walked:?}");
    assert_eq!(
        (whole.projects, whole.issues, whole.published, whole.held, whole.rejected),
        (walked.projects, walked.issues, walked.published, walked.held, walked.rejected),
        "{whole:?} {walked:?}"
    );
    assert_eq!((walked.held, walked.rejected), (1, 1));
    assert!(whole.issues > whole.projects, "every severity: several issues per project");
    let (a, b) = (fits.snapshots().await, over.snapshots().await);
    assert_eq!(a.len(), whole.published);
    assert_eq!(published_issues(&a), published_issues(&b), "the same snapshots either way");
    assert_eq!(bus::dead_letter::list(&over.js).await.unwrap().len(), 1, "the bad issue once");

    // What the walk cost: the first issues page (then dropped), the project pages, and one
    // issue listing per project (its single page here).
    let requests = over.sim.requests();
    let issue_calls: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/issues")).collect();
    let per_project =
        issue_calls.iter().filter(|r| r.params.iter().any(|(k, _)| k == "scan_item.id")).count();
    let org_wide = issue_calls.len() - per_project;
    let projects = fits.sim.org(ORG).unwrap().projects.len();
    assert_eq!(org_wide, 1, "the org-wide listing stops at the page that exceeds the budget");
    assert!(per_project >= projects, "{per_project} listings for {projects} projects");
    // The requests follow the spec (the responses hold the bad issue on purpose).
    let spec = snyk_sim::contract::Spec::load_default().unwrap();
    for request in &requests {
        let problems = spec.check_request(&request.path, &request.params);
        assert!(problems.is_empty(), "{request:?}: {problems:#?}");
    }

    // Walked again, unchanged: nothing published, and the org's issues are not listed up to
    // the budget first (the last walk showed they do not fit).
    let before = over.sim.requests().len();
    let again = over.sync().await;
    assert!(again.per_project);
    assert_eq!((again.published, again.disappeared, again.held), (0, 0, 1));
    let requests = over.sim.requests();
    let org_wide = requests[before..]
        .iter()
        .filter(|r| r.path.ends_with("/issues") && !r.params.iter().any(|(k, _)| k == "scan_item.id"))
        .count();
    assert_eq!(org_wide, 0);
    // A fix is seen by the walk as by the whole listing.
    over.sim.fix_issues(ORG, |p, _| p.name == "payments-api:2.8.0");
    let fixed = over.sync().await;
    assert_eq!(fixed.published, 1);
    let last = over.snapshots().await.pop().unwrap();
    assert_eq!((last.project.attributes.name.as_str(), last.issues.len()), ("payments-api:2.8.0", 0));

    // Once the walk finds the org fits the budget, the next sync lists it whole again.
    over.sim.fix_issues(ORG, |_, _| true);
    let emptied = over.sync().await;
    assert!(emptied.per_project && emptied.issues == 0, "{emptied:?}");
    let whole_again = over.sync().await;
    assert!(!whole_again.per_project, "{whole_again:?}");
    assert_eq!((whole_again.published, whole_again.held), (0, 1));
}

#[tokio::test]
async fn orgs_are_discovered_from_a_group_with_include_and_exclude_lists() {
    service_kit::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server (set NATS_SERVER_BIN)");
    let group = "3f2e1d0c-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    let (second, third) = ("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    let in_group = |id: &str, projects, issues| {
        let mut org = snyk_sim::SimOrg::synthetic(id, projects, issues);
        org.group_id = group.into();
        org
    };
    let mut third_org = in_group(third, 3, 6);
    third_org.slug = "sandbox".into();
    // The seeded org is in another group: not ingested.
    // An id that is not one (it would make another request path) is left out.
    let crooked = in_group("orgs%2Fx/projects?all", 1, 1);
    let sim = SnykSim::start_with(
        TOKEN,
        vec![snyk_sim::SimOrg::seeded(), in_group(second, 5, 10), third_org, crooked],
    )
    .await
    .unwrap();
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-group",
        &format!("{}@{}", group.to_uppercase(), sim.base_url()),
        "--snyk-org-exclude",
        "sandbox",
        "--snyk-token",
        TOKEN,
        "--snyk-reconcile-interval",
        "0s",
        "--snyk-poll-interval",
        "0s",
    ]);
    assert!(config.orgs.is_empty(), "no org listed by hand");
    let shutdown = CancellationToken::new();
    let ingest = ingest_snyk::start(config, shutdown.clone()).await.unwrap();
    let results = ingest.sync_now().await;
    let synced: Vec<(String, usize)> =
        results.into_iter().map(|r| r.map(|r| (r.org, r.published)).unwrap()).collect();
    assert_eq!(synced, [(second.to_owned(), 5)], "the group's org, without the excluded one");
    let requests = sim.requests();
    assert!(requests.iter().any(|r| r.path == format!("/rest/groups/{group}/orgs")), "{requests:#?}");
    assert!(!requests.iter().any(|r| r.path.contains(third) || r.path.contains(ORG)), "never read");
    assert!(!requests.iter().any(|r| r.path.contains("/orgs/x")), "{requests:#?}");
    let violations = snyk_sim::contract::Spec::load_default().unwrap().check_calls(&requests);
    assert!(violations.is_empty(), "{violations:#?}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ingest.wait()).await.unwrap();

    // A group the token cannot read fails the start with the group named.
    let config = Config::parse_from([
        "ingest-snyk",
        "--nats-url",
        server.url(),
        "--listen",
        "127.0.0.1:0",
        "--snyk-group",
        &format!("{group}@{}", sim.base_url()),
        "--snyk-token",
        "another-token",
    ]);
    let error = ingest_snyk::start(config, CancellationToken::new()).await.err().expect("refused");
    assert!(error.to_string().contains(group) && error.to_string().contains("refused"), "{error}");
}
