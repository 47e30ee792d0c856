//! CISA KEV and EPSS on the Snyk path end to end: the Snyk simulator → ingest-snyk → RAW_EVENTS
//! → triage (loading a KEV catalog and EPSS scores in their published formats) →
//! DESIRED_TICKETS, against a real nats-server.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use bus::topology;
use contracts::{DesiredTicket, DueDateSource, Lane};
use e2e_tests::TestBroker;
use service_kit::Clock;
use snyk_sim::{NewIssue, REGISTRY, SEEDED_ORG_ID, SnykSim};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "kev-e2e-token";
const ORG: &str = SEEDED_ORG_ID;
const DRAIN: Duration = Duration::from_secs(20);

/// Our own catalog in CISA's format (crates/snyk-policy/tests/feeds/README.md cites it).
const KEV: &str = r#"{"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.11.26",
 "dateReleased": "2026-11-26T15:00:00.0000Z", "count": 1, "vulnerabilities": [
 {"cveID": "CVE-2026-77001", "vendorProject": "Sample", "product": "libsample", "vulnerabilityName": "Sample heap overflow",
  "dateAdded": "2026-11-26", "shortDescription": "A made-up flaw for tests.", "requiredAction": "Upgrade.",
  "dueDate": "2026-12-10", "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-122"]}]}"#;

const EPSS: &str = "#model_version:v2025.03.14,score_date:2026-11-26T00:00:00Z\ncve,epss,percentile\nCVE-2026-77001,0.91,0.998\nCVE-2026-77002,0.02,0.4\n";

fn flags<const N: usize>(args: [&str; N]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn image(name: &str) -> String {
    format!("snyk/ecr/{REGISTRY}/{name}")
}

#[tokio::test]
async fn a_kev_listed_critical_finding_on_an_internal_image_is_p2_due_by_kev() {
    let broker = TestBroker::start().await;
    let sim = SnykSim::start(TOKEN).await.expect("snyk-sim starts");
    let dir = tempfile::tempdir().unwrap();
    let kev = dir.path().join("known_exploited_vulnerabilities.json");
    let epss = dir.path().join("epss_scores-current.csv");
    std::fs::write(&kev, KEV).unwrap();
    std::fs::write(&epss, EPSS).unwrap();
    let clock = Clock::manual("2026-11-27T09:00:00Z".parse().unwrap());
    let shutdown = CancellationToken::new();

    // A KEV file that is not the catalog stops triage with the reason.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"message\": \"Access Denied\"}").unwrap();
    let bad: triage::Config = service_kit::config::try_parse_from(
        flags([
            "triage",
            "--nats-url",
            broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--kev-catalog",
            broken.to_str().unwrap(),
        ]),
        |_| None,
    )
    .unwrap();
    let error = triage::start(bad, shutdown.child_token()).await.err().expect("refused").to_string();
    assert!(error.contains("no `vulnerabilities` array"), "{error}");

    let mut config: triage::Config = service_kit::config::try_parse_from(
        flags([
            "triage",
            "--nats-url",
            broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--kev-catalog",
            kev.to_str().unwrap(),
            "--epss-scores",
            epss.to_str().unwrap(),
        ]),
        |_| None,
    )
    .expect("valid triage flags");
    config.clock = clock.clone();
    let _triage = triage::start(config, shutdown.clone()).await.expect("triage starts");

    // ledger-worker is internal with no mature finding (P4). A critical finding whose CVE KEV
    // lists, without any Snyk exploit maturity:
    let ledger = sim.project_id(ORG, "ledger-worker:1.4.0").unwrap();
    let mut listed = NewIssue::critical_mature("SNYK-ALPINE319-LIBSAMPLE-7700001", "libsample", "1.2.3-r0");
    listed.maturity = None;
    listed.cve = Some("CVE-2026-77001".into());
    sim.add_issue(ORG, &ledger, listed);

    let mut ingest: ingest_snyk::Config = service_kit::config::try_parse_from(
        flags([
            "ingest-snyk",
            "--nats-url",
            broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--snyk-org",
            &format!("{ORG}@{}", sim.base_url()),
            "--snyk-token",
            TOKEN,
            "--snyk-reconcile-interval",
            "0s",
            "--snyk-poll-interval",
            "0s",
            "--snyk-backoff",
            "20ms",
        ]),
        |_| None,
    )
    .expect("valid ingest-snyk flags");
    ingest.clock = clock.clone();
    let ingest = ingest_snyk::start(ingest, shutdown.clone()).await.expect("ingest-snyk starts");
    ingest.sync_now().await.remove(0).expect("the sync succeeds");
    broker.wait_until_drained(topology::TRIAGE, DRAIN).await;

    let tickets: BTreeMap<String, DesiredTicket> =
        broker.desired_tickets().await.into_iter().map(|t| (t.group_key.to_string(), t)).collect();
    let ticket = &tickets[&image("ledger-worker")];
    assert_eq!(ticket.lane, Lane::P2, "KEV makes the finding mature: internal → P2");
    let due = ticket.due.as_ref().expect("a due date");
    // The lane's date would be 2026-12-27 (a month); KEV's is earlier.
    assert_eq!(due.date, "2026-12-10".parse().unwrap());
    let sentence = "CVE-2026-77001 is in CISA KEV since 2026-11-26, due 2026-12-10; known to be used in ransomware campaigns.";
    assert_eq!(due.source, DueDateSource::EventText { sentence: sentence.into() });
    let item = ticket.body.items.iter().find(|i| i.reference == "SNYK-ALPINE319-LIBSAMPLE-7700001").unwrap();
    assert!(item.facts.contains(&("CISA KEV".to_owned(), sentence.to_owned())), "{:?}", item.facts);
    assert!(item.facts.contains(&("EPSS".to_owned(), "CVE-2026-77001 0.910 (percentile 0.998)".to_owned())));
    assert!(
        ticket.body.notes.iter().any(|n| n.contains("earlier than the lane's 2026-12-27")),
        "{:?}",
        ticket.body.notes
    );
    shutdown.cancel();
}
