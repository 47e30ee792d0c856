//! How many Snyk findings per second the policy triages through `InMemoryTriage<SnykPolicy>`
//! (parsing each snapshot, grouping, folding into the group state, deriving and hashing the
//! desired ticket), for an org of many projects and issues.
//!
//! ```text
//! cargo run -p snyk-policy --release --example snyk_triage_throughput -- [PROJECTS] [ISSUES] [feeds]
//! ```
//!
//! With `feeds`, a CISA KEV catalog of 1,500 CVEs (a sixth of the findings' CVEs) and EPSS
//! scores for 300,000 CVEs (those of the findings, a tenth of them at or above the threshold) are
//! loaded, as large as the real feeds; parsing them is not timed.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use snyk_policy::rest::{Issue, Project};
use snyk_policy::{ProjectSnapshot, SnykPolicy, SnykSettings};
use triage_policy::InMemoryTriage;

const ORG: &str = "0e8a11c4-7d2b-4c55-9e61-3f2a1b0c9d84";

fn project(n: usize) -> Value {
    let (origin, target, reference, ptype) = if n % 4 == 3 {
        ("github", format!("acme/repo-{}", n / 8), "main".to_owned(), "npm")
    } else {
        (
            "ecr",
            format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/service-{}", n / 12),
            format!("1.{}.0", n % 3),
            if n % 2 == 1 { "npm" } else { "deb" },
        )
    };
    json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "type": "project",
        "attributes": {"name": format!("{target}:{reference}:{n}"), "type": ptype, "origin": origin, "target_file": "",
            "target_reference": reference, "created": "2026-01-01T00:00:00Z", "status": "active", "read_only": false,
            "environment": if n.is_multiple_of(3) { json!(["external"]) } else { json!(["internal"]) },
            "tags": [{"key": "team", "value": if n.is_multiple_of(2) { "payments" } else { "platform" }}],
            "settings": {"recurring_tests": {"frequency": "daily"}, "pull_requests": {}}},
        "relationships": {"target": {"data": {"id": format!("t-{target}"), "type": "target", "attributes": {"display_name": target, "url": null}}},
            "organization": {"data": {"id": ORG, "type": "organization"}}}})
}

fn issue(n: usize, project: &str) -> Value {
    let severity = if n.is_multiple_of(20) { "critical" } else { ["low", "medium", "high"][n % 3] };
    let maturity = match n % 7 {
        0 => json!({"sources": ["CISA"], "maturity_levels": [{"format": "CVSSv4", "level": "Attacked"}]}),
        1 | 2 => {
            json!({"sources": ["Snyk"], "maturity_levels": [{"format": "CVSSv4", "level": "Proof of Concept"}]})
        }
        _ => json!({"sources": [], "maturity_levels": []}),
    };
    json!({"id": format!("10000000-0000-4000-8000-{n:012}"), "type": "issue",
        "attributes": {"key": format!("SNYK-SYN-PKG{}-{}", n % 500, 7_000_000 + n % 2_000), "title": "Synthetic vulnerability",
            "type": "package_vulnerability", "effective_severity_level": severity, "status": "open", "ignored": n.is_multiple_of(97),
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "coordinates": [{"is_upgradeable": true, "is_fixable_upstream": true,
                "representations": [{"dependency": {"package_name": format!("pkg{}", n % 500), "package_version": "1.0.0"}}]}],
            "exploit_details": maturity,
            "problems": [{"id": format!("CVE-2099-{}", n % 9000), "source": "NVD", "type": "vulnerability"}]},
        "relationships": {"scan_item": {"data": {"id": project, "type": "project"}},
            "organization": {"data": {"id": ORG, "type": "organization"}}}})
}

/// A KEV catalog and EPSS scores of the real feeds' sizes over the findings' CVEs.
fn feeds() -> snyk_policy::feeds::Feeds {
    use snyk_policy::feeds::{EpssScores, Feeds, KevCatalog};
    let entries: Vec<Value> = (0..1_500)
        .map(|n| {
            json!({"cveID": format!("CVE-2099-{}", 1_000 + n * 5), "vendorProject": "Synthetic", "product": "pkg",
                "vulnerabilityName": "Synthetic", "dateAdded": "2026-10-01", "dueDate": "2026-10-22",
                "knownRansomwareCampaignUse": if n % 5 == 0 { "Known" } else { "Unknown" }, "notes": "", "cwes": []})
        })
        .collect();
    let kev = json!({"title": "synthetic", "catalogVersion": "2026.11.30", "dateReleased": "2026-11-30T00:00:00Z",
        "count": entries.len(), "vulnerabilities": entries});
    let mut epss =
        String::from("#model_version:v2025.03.14,score_date:2026-11-30T00:00:00Z\ncve,epss,percentile\n");
    for n in 1_000..9_000 {
        let score = if n % 10 == 0 { 0.8 } else { 0.01 };
        epss.push_str(&format!("CVE-2099-{n},{score},0.5\n"));
    }
    for n in 0..292_000 {
        epss.push_str(&format!("CVE-2000-{n:05},0.001,0.1\n"));
    }
    Feeds {
        kev: Some(Arc::new(KevCatalog::parse(&kev.to_string()).expect("a catalog"))),
        epss: Some(Arc::new(EpssScores::parse(&epss).expect("scores"))),
    }
}

/// `VmHWM` (peak resident memory) of this process in MiB.
fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let projects: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let issues: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let received_at: DateTime<Utc> = "2026-11-27T09:00:00Z".parse().unwrap();

    let mut per_project: Vec<Vec<Issue>> = vec![Vec::new(); projects];
    let project_values: Vec<Project> =
        (0..projects).map(|n| serde_json::from_value(project(n)).unwrap()).collect();
    for n in 0..issues {
        let p = n % projects;
        per_project[p].push(serde_json::from_value(issue(n, &project_values[p].id)).unwrap());
    }
    let events: Vec<_> = project_values
        .into_iter()
        .zip(per_project)
        .map(|(p, i)| ProjectSnapshot::listed(ORG, p, i, None).to_raw_event("bench", received_at, None))
        .collect();

    let with_feeds = args.next().as_deref() == Some("feeds");

    let before = peak_memory_mib();
    let mut policy =
        SnykPolicy::new(Arc::new(catalog::Catalog::default_only("platform")), SnykSettings::default());
    if with_feeds {
        policy = policy.with_feeds(feeds());
        println!("feeds loaded: CISA KEV 1500 CVEs, EPSS 300000 scores");
    }
    let mut triage = InMemoryTriage::new(policy);
    let started = Instant::now();
    let mut published = 0;
    for event in &events {
        published += triage.apply(event, received_at).expect("a valid snapshot").len();
    }
    let elapsed = started.elapsed();
    let tickets = triage.tickets().len();
    println!(
        "{projects} project snapshots, {issues} findings: {:.2} s, {:.0} findings/s, {:.0} snapshots/s; {published} desired tickets published, {tickets} groups ticketed",
        elapsed.as_secs_f64(),
        issues as f64 / elapsed.as_secs_f64(),
        projects as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "peak memory: {before:.0} MiB with the generated events, {:.0} MiB after triage (group states and tickets held in memory)",
        peak_memory_mib()
    );
    // A resync of the same snapshots: the steady state.
    let started = Instant::now();
    let mut again = 0;
    for event in &events {
        again += triage.apply(event, received_at).expect("a valid snapshot").len();
    }
    let elapsed = started.elapsed();
    println!(
        "resync of the same snapshots: {:.2} s, {:.0} findings/s, {again} desired tickets published",
        elapsed.as_secs_f64(),
        issues as f64 / elapsed.as_secs_f64()
    );
}
