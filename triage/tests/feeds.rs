//! Loading the feeds from URLs (the feeds simulator) and refreshing them: a failed refresh, or
//! one that returns something that is not the feed, keeps the last good copy; the copy kept in
//! the `feeds` object store (a real nats-server) is what a triage started during an outage uses.

use std::time::Duration;

use bus::TopologyConfig;
use feeds_sim::{Fault, FeedsSim};
use local_nats::NatsServer;
use triage::feeds::{FeedArgs, FeedCopies, load_feeds, refreshed};

const KEV_V1: &str = r#"{"catalogVersion": "2026.11.30", "dateReleased": "2026-11-30T12:00:00Z", "count": 1, "vulnerabilities": [
 {"cveID": "CVE-2026-88001", "vendorProject": "A", "product": "a", "vulnerabilityName": "a", "dateAdded": "2026-11-30",
  "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}]}"#;
const KEV_V2: &str = r#"{"catalogVersion": "2026.12.01", "dateReleased": "2026-12-01T12:00:00Z", "count": 2, "vulnerabilities": [
 {"cveID": "CVE-2026-88001", "vendorProject": "A", "product": "a", "vulnerabilityName": "a", "dateAdded": "2026-11-30",
  "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []},
 {"cveID": "CVE-2026-88002", "vendorProject": "B", "product": "b", "vulnerabilityName": "b", "dateAdded": "2026-12-01",
  "dueDate": "2026-12-22", "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": []}]}"#;
const EPSS: &str = "#model_version:v2025.03.14,score_date:2026-12-01T00:00:00Z\ncve,epss,percentile\nCVE-2026-88001,0.6,0.99\n";

#[tokio::test]
async fn feeds_load_from_urls_and_a_failed_refresh_keeps_the_last_good_copy() {
    let sim = FeedsSim::start().await.unwrap();
    sim.set_kev(KEV_V1);
    sim.set_epss(EPSS);
    let args = urls_of(&sim);
    let copies = FeedCopies::none();
    let feeds = load_feeds(&args, &copies).await.unwrap();
    assert_eq!(feeds.kev.as_ref().unwrap().catalog_version, "2026.11.30");
    assert!(feeds.epss("CVE-2026-88001").is_some());

    // The feed is down, then answers with a page that is not the feed: nothing changes.
    sim.set_fault(Some(Fault::Status(503)));
    let after_outage = refreshed(&args, &feeds, &copies).await;
    assert_eq!(after_outage.kev.as_ref().unwrap().catalog_version, "2026.11.30");
    assert!(after_outage.epss("CVE-2026-88001").is_some());
    sim.set_fault(Some(Fault::Body("<html>please log in</html>".into())));
    let after_portal = refreshed(&args, &after_outage, &copies).await;
    assert_eq!(after_portal.kev.as_ref().unwrap().len(), 1);
    assert!(after_portal.epss("CVE-2026-88001").is_some());

    // Back with a new catalog: the refresh takes it.
    sim.set_fault(None);
    sim.set_kev(KEV_V2);
    let next = refreshed(&args, &after_portal, &copies).await;
    assert_eq!(next.kev.as_ref().unwrap().catalog_version, "2026.12.01");
    assert!(next.kev("CVE-2026-88002").unwrap().known_ransomware);
    assert_eq!(sim.requests(), 8);

    // At start, with no copy kept, a URL that fails is refused with the reason.
    sim.set_fault(Some(Fault::Status(404)));
    let error = load_feeds(&args, &copies).await.unwrap_err().to_string();
    assert!(error.contains("HTTP 404"), "{error}");
}

fn urls_of(sim: &FeedsSim) -> FeedArgs {
    FeedArgs {
        kev_catalog: Some(sim.kev_url()),
        epss_scores: Some(sim.epss_url()),
        refresh: Duration::from_secs(86_400),
        policy_profile: None,
    }
}

async fn feed_copies(server: &NatsServer) -> FeedCopies {
    let client = bus::connect(&bus::NatsConnection::unauthenticated(server.url(), "t")).await.unwrap();
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &TopologyConfig::default()).await.unwrap();
    FeedCopies::in_store(&js).await.unwrap()
}

#[tokio::test]
async fn a_triage_started_during_a_feed_outage_starts_from_the_copy_kept_in_nats() {
    let server = NatsServer::start().expect("nats-server >= 2.10");
    let sim = FeedsSim::start().await.unwrap();
    sim.set_kev(KEV_V1);
    sim.set_epss(EPSS);
    let args = urls_of(&sim);

    // A first triage reads both feeds; a refresh reads the new catalog: the store keeps it.
    let first = feed_copies(&server).await;
    let feeds = load_feeds(&args, &first).await.unwrap();
    sim.set_kev(KEV_V2);
    let feeds = refreshed(&args, &feeds, &first).await;
    assert_eq!(feeds.kev.as_ref().unwrap().catalog_version, "2026.12.01");

    // CISA's site is down, then answers a page that is not the feed; a new triage (a new
    // connection, nothing in memory) starts from the last good copies.
    for fault in [Fault::Status(503), Fault::Body("<html>maintenance</html>".into())] {
        sim.set_fault(Some(fault));
        let restarted = load_feeds(&args, &feed_copies(&server).await).await.unwrap();
        assert_eq!(restarted.kev.as_ref().unwrap().catalog_version, "2026.12.01");
        assert!(restarted.kev("CVE-2026-88002").unwrap().known_ransomware);
        assert!(restarted.epss("CVE-2026-88001").is_some());
    }

    // The operator points triage at another URL: the copy of the old one is not used.
    let moved = FeedArgs { kev_catalog: Some(format!("{}?mirror", sim.kev_url())), ..urls_of(&sim) };
    let error = load_feeds(&moved, &feed_copies(&server).await).await.unwrap_err().to_string();
    assert!(error.contains("HTTP 503") || error.contains("not"), "{error}");
}
