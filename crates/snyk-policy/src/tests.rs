//! The policy end to end in memory: snapshots in, desired tickets out.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use contracts::{Lane, RawEvent, TicketState};
use serde_json::{Value, json};
use triage_policy::{InMemoryTriage, Policy, PolicyError};

use super::*;

const ORG: &str = "0e8a0000-0000-4000-8000-0000000000c4";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn catalog() -> catalog::Catalog {
    catalog::Catalog::from_toml(
        r#"
default_team = "platform"
[teams.platform]
[teams.payments]
[teams.media]
time_zone = "Pacific/Auckland"
[[owners]]
team = "media"
snyk_targets = ["*/image-*"]
[[exposure]]
snyk_target = "acme/public-site"
exposure = "internet-facing"
"#,
    )
    .unwrap()
}

fn policy() -> SnykPolicy {
    SnykPolicy::new(Arc::new(catalog()), SnykSettings::default())
}

fn project(
    id: &str,
    origin: &str,
    target: &str,
    reference: &str,
    ptype: &str,
    env: &[&str],
    tags: &[(&str, &str)],
) -> Value {
    json!({
        "id": id, "type": "project",
        "attributes": {
            "name": format!("{target}:{reference}"), "type": ptype, "origin": origin, "target_file": "",
            "target_reference": reference, "created": "2026-01-01T00:00:00Z", "status": "active", "read_only": false,
            "environment": env, "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "settings": {"recurring_tests": {"frequency": "daily"}, "pull_requests": {}}
        },
        "relationships": {
            "target": {"data": {"id": format!("t-{target}"), "type": "target", "attributes": {"display_name": target, "url": null}}},
            "organization": {"data": {"id": ORG, "type": "organization"}}
        }
    })
}

fn issue(id: &str, project: &str, key: &str, severity: &str, maturity: Option<(&str, &str)>) -> Value {
    let mut attributes = json!({
        "key": key, "title": format!("Bug {key}"), "type": "package_vulnerability",
        "effective_severity_level": severity, "status": "open", "ignored": false,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
        "coordinates": [{"is_upgradeable": true, "representations": [{"dependency": {"package_name": "libxml2", "package_version": "2.9.14"}}]}],
        "problems": [{"id": key, "source": "SNYK", "type": "vulnerability"}, {"id": format!("CVE-2099-{id}"), "source": "NVD", "type": "vulnerability"}]
    });
    if let Some((format, level)) = maturity {
        attributes["exploit_details"] =
            json!({"sources": ["CISA"], "maturity_levels": [{"format": format, "level": level}]});
    }
    json!({"id": id, "type": "issue", "attributes": attributes,
           "relationships": {"scan_item": {"data": {"id": project, "type": "project"}},
                             "organization": {"data": {"id": ORG, "type": "organization"}}}})
}

fn event(project: Value, issues: Vec<Value>, received_at: &str) -> RawEvent {
    let project: rest::Project = serde_json::from_value(project).unwrap();
    let issues: Vec<rest::Issue> = issues.into_iter().map(|i| serde_json::from_value(i).unwrap()).collect();
    ProjectSnapshot::listed(ORG, project, issues, None).to_raw_event(
        &snapshot::rest_origin(ORG),
        at(received_at),
        None,
    )
}

fn image(name: &str) -> String {
    format!("{REGISTRY}/{name}")
}

const T0: &str = "2026-11-27T09:00:00Z";

#[test]
fn one_ticket_per_image_across_tags_and_os_and_app_projects() {
    let mut triage = InMemoryTriage::new(policy());
    let target = image("payments-api");
    let env = ["external"];
    let team = [("team", "payments")];
    for (pid, tag, ptype) in [("p1", "2.7.3", "deb"), ("p2", "2.7.3", "npm"), ("p3", "2.8.0", "deb")] {
        let issues = vec![issue(
            &format!("{pid}-i"),
            pid,
            "SNYK-DEBIAN12-LIBXML2-1",
            "critical",
            Some(("CVSSv4", "Attacked")),
        )];
        triage
            .apply(&event(project(pid, "ecr", &target, tag, ptype, &env, &team), issues, T0), at(T0))
            .unwrap();
    }
    let tickets = triage.tickets();
    assert_eq!(tickets.len(), 1);
    let ticket = tickets[0];
    assert_eq!(ticket.group_key.as_str(), format!("snyk/ecr/{target}"));
    assert_eq!((ticket.lane, ticket.team.as_str(), ticket.state), (Lane::P1, "payments", TicketState::Open));
    assert_eq!(ticket.due.as_ref().unwrap().date, day(2026, 12, 20));
    assert_eq!(ticket.body.items.len(), 1, "one item per Snyk key, not per project");
    let facts: std::collections::BTreeMap<_, _> = ticket.body.items[0].facts.iter().cloned().collect();
    assert_eq!(facts["Tags"], "2.7.3, 2.8.0");
    assert_eq!(facts["Exploit maturity"], "Mature");
    assert_eq!(facts["Package"], "libxml2@2.9.14");
    assert_eq!(facts["CVE"], "CVE-2099-p1-i, CVE-2099-p2-i, CVE-2099-p3-i");
    assert_eq!(ticket.links.len(), 3);
    assert!(ticket.links[0].url.starts_with("https://app.snyk.io/org/"));
}

#[test]
fn lanes_by_exposure_and_maturity() {
    let cases = [
        (vec!["external"], Some(("CVSSv3", "High")), Lane::P1),
        (vec!["internal"], Some(("CVSSv4", "Attacked")), Lane::P2),
        (vec!["external"], Some(("CVSSv4", "Proof of Concept")), Lane::P3),
        (vec!["internal", "backend"], None, Lane::P4),
        // Unknown exposure is assumed Internet-facing by default.
        (vec![], None, Lane::P3),
        (vec![], Some(("CVSSv3", "Functional")), Lane::P1),
    ];
    for (env, maturity, lane) in cases {
        let mut triage = InMemoryTriage::new(policy());
        let p = project("p", "ecr", &image("svc"), "1", "deb", &env, &[]);
        triage.apply(&event(p, vec![issue("i", "p", "SNYK-1", "critical", maturity)], T0), at(T0)).unwrap();
        assert_eq!(triage.tickets()[0].lane, lane, "{env:?} {maturity:?}");
    }
}

#[test]
fn an_assumed_exposure_is_said_and_the_unknown_rule_is_configurable() {
    let p = project("p", "ecr", &image("svc"), "1", "deb", &[], &[]);
    let e = event(p, vec![issue("i", "p", "SNYK-1", "critical", None)], T0);
    let mut triage = InMemoryTriage::new(policy());
    triage.apply(&e, at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert!(
        ticket.body.notes.iter().any(|n| n.contains("Exposure was assumed Internet-facing")),
        "{:?}",
        ticket.body.notes
    );
    let settings = SnykSettings { unknown_exposure: exposure::Exposure::Internal, ..SnykSettings::default() };
    let mut triage = InMemoryTriage::new(SnykPolicy::new(Arc::new(catalog()), settings));
    triage.apply(&e, at(T0)).unwrap();
    assert_eq!(triage.tickets()[0].lane, Lane::P4);
}

#[test]
fn a_github_repository_is_one_ticket_across_origins_manifests_and_code() {
    let mut triage = InMemoryTriage::new(policy());
    let projects = [
        ("g1", "github", "acme/Checkout", "npm"),
        ("g2", "github-cloud-app", "acme/checkout", "maven"),
        ("g3", "github-enterprise", "acme/checkout", "sast"),
    ];
    for (pid, origin, target, ptype) in projects {
        let issues = vec![issue(&format!("{pid}-i"), pid, &format!("SNYK-{pid}"), "critical", None)];
        triage
            .apply(
                &event(project(pid, origin, target, "main", ptype, &["internal"], &[]), issues, T0),
                at(T0),
            )
            .unwrap();
    }
    let tickets = triage.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].group_key.as_str(), "snyk/github/acme/checkout");
    assert_eq!(tickets[0].body.items.len(), 3);
    assert_eq!((tickets[0].lane, tickets[0].team.as_str()), (Lane::P4, "platform"));
    assert_eq!(tickets[0].due, None);
}

#[test]
fn only_critical_open_unignored_findings_on_active_projects_qualify() {
    let mut triage = InMemoryTriage::new(policy());
    let mut ignored = issue("i2", "p", "SNYK-2", "critical", Some(("CVSSv4", "Attacked")));
    ignored["attributes"]["ignored"] = json!(true);
    let mut resolved = issue("i3", "p", "SNYK-3", "critical", Some(("CVSSv4", "Attacked")));
    resolved["attributes"]["status"] = json!("resolved");
    let high = issue("i4", "p", "SNYK-4", "high", Some(("CVSSv4", "Attacked")));
    let mut license = issue("i5", "p", "snyk:lic:npm:x:AGPL-3.0", "critical", None);
    license["attributes"]["type"] = json!("license");
    let p = project("p", "ecr", &image("quiet"), "1", "deb", &["external"], &[]);
    let published =
        triage.apply(&event(p.clone(), vec![ignored, resolved, high, license], T0), at(T0)).unwrap();
    assert!(published.is_empty(), "nothing qualifies, nothing is ticketed");
    let mut inactive = p;
    inactive["attributes"]["status"] = json!("inactive");
    let published = triage
        .apply(&event(inactive, vec![issue("i1", "p", "SNYK-1", "critical", None)], T0), at(T0))
        .unwrap();
    assert!(published.is_empty(), "an inactive project's findings do not count");
}

#[test]
fn owner_from_tag_then_catalog_rule_then_default() {
    let p = policy();
    let cases = [
        (image("image-resizer"), vec![("team", "payments")], "payments"),
        (image("image-resizer"), vec![], "media"),
        (image("image-resizer"), vec![("team", "unknown-team")], "media"),
        (image("other"), vec![("owner", "payments")], "platform"),
    ];
    for (target, tags, team) in cases {
        let mut triage = InMemoryTriage::new(SnykPolicy::new(p.catalog.clone(), SnykSettings::default()));
        let pr = project("p", "ecr", &target, "1", "deb", &["external"], &tags);
        triage.apply(&event(pr, vec![issue("i", "p", "SNYK-1", "critical", None)], T0), at(T0)).unwrap();
        assert_eq!(triage.tickets()[0].team, team, "{target} {tags:?}");
    }
}

#[test]
fn the_catalog_overrides_exposure() {
    let mut triage = InMemoryTriage::new(policy());
    let p = project("p", "github", "acme/public-site", "main", "npm", &["internal"], &[]);
    triage
        .apply(
            &event(p, vec![issue("i", "p", "SNYK-1", "critical", Some(("CVSSv4", "Attacked")))], T0),
            at(T0),
        )
        .unwrap();
    let ticket = triage.tickets()[0];
    assert_eq!(ticket.lane, Lane::P1);
    assert!(ticket.body.notes[0].contains("set by the ownership catalog"), "{}", ticket.body.notes[0]);
}

#[test]
fn due_dates_are_in_the_owning_team_time_zone() {
    // 2026-12-06T12:00Z is already 2026-12-07 in Auckland: the next sprint is a later one.
    let mut triage = InMemoryTriage::new(policy());
    let p = project("p", "ecr", &image("image-thumbs"), "1", "deb", &["external"], &[]);
    let when = "2026-12-06T12:00:00Z";
    triage
        .apply(
            &event(p, vec![issue("i", "p", "SNYK-1", "critical", Some(("CVSSv4", "Attacked")))], when),
            at(when),
        )
        .unwrap();
    let ticket = triage.tickets()[0];
    assert_eq!(ticket.team, "media");
    assert_eq!(ticket.due.as_ref().unwrap().date, day(2027, 1, 3));
}

#[test]
fn fixed_then_resolved_then_reopened_with_a_new_due_date() {
    let mut triage = InMemoryTriage::new(policy());
    let p = project("p", "ecr", &image("svc"), "1", "deb", &["internal"], &[]);
    let mature = issue("i", "p", "SNYK-1", "critical", Some(("CVSSv4", "Attacked")));
    triage.apply(&event(p.clone(), vec![mature.clone()], T0), at(T0)).unwrap();
    assert_eq!(triage.tickets()[0].due.as_ref().unwrap().date, day(2026, 12, 27));
    let later = "2026-12-01T09:00:00Z";
    let published = triage.apply(&event(p.clone(), vec![], later), at(later)).unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].state, TicketState::Resolved);
    assert_eq!(published[0].lane, Lane::P2);
    let again = "2026-12-10T09:00:00Z";
    let published = triage.apply(&event(p, vec![mature], again), at(again)).unwrap();
    assert_eq!(published[0].state, TicketState::Open);
    assert_eq!(published[0].due.as_ref().unwrap().date, day(2027, 1, 10));
}

#[test]
fn a_rising_lane_tightens_and_a_falling_lane_keeps_the_due_date() {
    let mut triage = InMemoryTriage::new(policy());
    let p = project("p", "ecr", &image("svc"), "1", "deb", &["internal"], &[]);
    let plain = issue("i1", "p", "SNYK-1", "critical", None);
    let mature = issue("i2", "p", "SNYK-2", "critical", Some(("CVSSv4", "Attacked")));
    triage.apply(&event(p.clone(), vec![plain.clone()], T0), at(T0)).unwrap();
    assert_eq!((triage.tickets()[0].lane, triage.tickets()[0].due.clone()), (Lane::P4, None));
    let t1 = "2026-12-02T09:00:00Z";
    triage.apply(&event(p.clone(), vec![plain.clone(), mature], t1), at(t1)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!(ticket.lane, Lane::P2);
    assert_eq!(ticket.due.as_ref().unwrap().date, day(2027, 1, 2));
    let t2 = "2026-12-03T09:00:00Z";
    triage.apply(&event(p, vec![plain], t2), at(t2)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!(ticket.lane, Lane::P4);
    assert_eq!(ticket.due.as_ref().unwrap().date, day(2027, 1, 2), "never loosened");
    assert!(ticket.body.notes.iter().any(|n| n.contains("never moved later")), "{:?}", ticket.body.notes);
}

#[test]
fn applying_twice_or_an_older_snapshot_changes_nothing() {
    let policy = policy();
    let p = project("p", "ecr", &image("svc"), "1", "deb", &["internal"], &[]);
    let new = event(p.clone(), vec![issue("i", "p", "SNYK-1", "critical", None)], "2026-11-28T00:00:00Z");
    let old = event(p, vec![], T0);
    let mut state = GroupState::default();
    policy.apply(&mut state, &new, at(T0)).unwrap();
    let once = state.clone();
    policy.apply(&mut state, &new, at(T0)).unwrap();
    assert_eq!(state, once);
    policy.apply(&mut state, &old, at(T0)).unwrap();
    assert_eq!(state, once);
}

#[test]
fn a_disappeared_project_is_dropped_from_its_group() {
    let mut triage = InMemoryTriage::new(policy());
    let p = project("p", "ecr", &image("svc"), "1", "deb", &["internal"], &[]);
    triage.apply(&event(p.clone(), vec![issue("i", "p", "SNYK-1", "critical", None)], T0), at(T0)).unwrap();
    let gone = ProjectSnapshot::disappeared(ORG, serde_json::from_value(p).unwrap());
    let later = at("2026-11-28T00:00:00Z");
    let published = triage.apply(&gone.to_raw_event("snyk-rest:x", later, None), later).unwrap();
    assert_eq!(published[0].state, TicketState::Resolved);
}

#[test]
fn malformed_and_unsupported_snapshots_are_told_apart() {
    let policy = policy();
    let mut bad = event(project("p", "ecr", &image("svc"), "1", "deb", &[], &[]), vec![], T0);
    bad.payload["project"]["attributes"] = json!("nope");
    assert!(matches!(policy.state_key(&bad), Err(PolicyError::Malformed { .. })));
    let kubernetes = event(project("p", "kubernetes", "local", "", "npm", &[], &[]), vec![], T0);
    assert!(matches!(policy.state_key(&kubernetes), Err(PolicyError::Ignored(_))));
}

#[test]
fn the_same_snapshot_has_the_same_dedup_id_and_a_change_a_new_one() {
    let p = project("p", "ecr", &image("svc"), "1", "deb", &[], &[]);
    let a = event(p.clone(), vec![issue("i", "p", "SNYK-1", "critical", None)], T0);
    let b = event(p.clone(), vec![issue("i", "p", "SNYK-1", "critical", None)], "2026-12-01T00:00:00Z");
    let c = event(p, vec![], T0);
    assert_eq!(a.dedup_id, b.dedup_id);
    assert_ne!(a.dedup_id, c.dedup_id);

    // Issue counts and monitoring times in `meta` move without a change: not part of the hash.
    let snapshot = ProjectSnapshot::from_event(&a).unwrap();
    let mut moved = snapshot.clone();
    moved.project.meta =
        Some(json!({"cli_monitored_at": "2026-12-01T00:00:00Z", "latest_issue_counts": {"critical": 1}}));
    let (event, hash) = moved.to_raw_event_and_hash("x", at(T0), None);
    assert_eq!(hash, snapshot.content_hash());
    assert_eq!(hash, moved.content_hash());
    assert_eq!(event.dedup_id, a.dedup_id);
    // After a different history, the same content is a new event (A → B → A is not a repeat).
    let after_c =
        snapshot.to_raw_event("x", at(T0), Some(&ProjectSnapshot::from_event(&c).unwrap().content_hash()));
    assert_ne!(after_c.dedup_id, a.dedup_id);
}

#[test]
fn explain_joins_projects_and_issues_pages_and_reads_webhook_bodies() {
    let projects = json!({"jsonapi": {"version": "1.0"}, "links": {"self": "/orgs/x/projects?version=2024-10-15"},
        "data": [project("p", "ecr", &image("svc"), "1", "deb", &["external"], &[]),
                 project("g", "github", "acme/site", "main", "npm", &["internal"], &[])]});
    let issues = json!({"jsonapi": {"version": "1.0"}, "links": {},
        "data": [issue("i1", "p", "SNYK-1", "critical", Some(("CVSSv4", "Attacked"))), issue("i2", "g", "SNYK-2", "critical", None)]});
    let webhook = json!({"project": {"id": "w", "name": "acme/tools:package.json", "origin": "github", "type": "npm",
            "remoteRepoUrl": "https://github.com/acme/tools", "attributes": {"environment": ["internal"]}},
        "org": {"id": ORG, "name": "Globex"},
        "newIssues": [{"id": "SNYK-JS-X-1", "pkgName": "x", "pkgVersions": ["1.0.0"],
            "issueData": {"title": "RCE", "severity": "critical", "exploitMaturity": "mature"}, "isIgnored": false}],
        "removedIssues": []});
    assert_eq!(classify(&projects), Some(DocumentKind::ProjectsPage));
    assert_eq!(classify(&issues), Some(DocumentKind::IssuesPage));
    assert_eq!(classify(&webhook), Some(DocumentKind::WebhookBody));
    assert!(!recognise(&json!({"detail-type": "AWS Health Event"})));
    let events = raw_events_from_documents(&[projects.clone(), issues.clone(), webhook], at(T0)).unwrap();
    assert_eq!(events.len(), 3);
    let mut triage = InMemoryTriage::new(policy());
    for e in &events {
        triage.apply(e, at(T0)).unwrap();
    }
    let lanes: Vec<(String, Lane)> =
        triage.tickets().iter().map(|t| (t.group_key.to_string(), t.lane)).collect();
    assert_eq!(
        lanes,
        vec![
            (format!("snyk/ecr/{}", image("svc")), Lane::P1),
            ("snyk/github/acme/site".to_owned(), Lane::P4),
            ("snyk/github/acme/tools".to_owned(), Lane::P2),
        ]
    );
    let err = raw_events_from_documents(&[issues, projects], at(T0)).unwrap_err();
    assert!(err.to_string().contains("no projects page before it lists"), "{err}");
    let ecr_webhook = json!({"project": {"id": "e", "origin": "ecr", "name": "svc:1"}, "org": {"id": ORG}, "newIssues": []});
    let err = raw_events_from_documents(&[ecr_webhook], at(T0)).unwrap_err();
    assert!(err.to_string().contains("give the projects page first"), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One project: target index, GitHub or image, environment, findings (severity, maturity).
    type Spec = (usize, bool, u8, Vec<(bool, bool)>);

    fn spec() -> impl Strategy<Value = Spec> {
        (0usize..4, any::<bool>(), 0u8..3, proptest::collection::vec((any::<bool>(), any::<bool>()), 0..4))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the projects, there is exactly one open ticket per target with a qualifying
        /// finding, and its lane is the matrix of the most exposed project and any mature finding.
        #[test]
        fn one_ticket_per_target_in_the_matrix_lane(projects in proptest::collection::vec(spec(), 1..12)) {
            let mut triage = InMemoryTriage::new(policy());
            let mut expected: BTreeMap<String, (exposure::ProjectExposure, bool, bool)> = BTreeMap::new();
            for (n, (target, github, env, findings)) in projects.iter().enumerate() {
                let pid = format!("p{n}");
                let (origin, name, key) = if *github {
                    ("github", format!("acme/repo-{target}"), format!("snyk/github/acme/repo-{target}"))
                } else {
                    ("ecr", image(&format!("svc-{target}")), format!("snyk/ecr/{}", image(&format!("svc-{target}"))))
                };
                let environment: &[&str] = match env { 0 => &["external"], 1 => &["internal"], _ => &[] };
                let issues: Vec<Value> = findings.iter().enumerate().map(|(i, (critical, mature))| {
                    issue(&format!("{pid}-{i}"), &pid, &format!("SNYK-{n}-{i}"),
                          if *critical { "critical" } else { "high" },
                          mature.then_some(("CVSSv4", "Attacked")))
                }).collect();
                let reference = format!("{n}");
                triage.apply(&event(project(&pid, origin, &name, &reference, "deb", environment, &[]), issues, T0), at(T0)).unwrap();
                let entry = expected.entry(key).or_insert((exposure::ProjectExposure::Internal, false, false));
                entry.0 = entry.0.max(exposure::ProjectExposure::from_environment(environment));
                entry.1 |= findings.iter().any(|(c, m)| *c && *m);
                entry.2 |= findings.iter().any(|(c, _)| *c);
            }
            let tickets: BTreeMap<String, Lane> =
                triage.tickets().iter().map(|t| (t.group_key.to_string(), t.lane)).collect();
            let wanted: BTreeMap<String, Lane> = expected
                .into_iter()
                .filter(|(_, (_, _, qualifies))| *qualifies)
                .map(|(key, (most_exposed, mature, _))| {
                    // Unknown exposure is assumed Internet-facing by default.
                    let exposure = if most_exposed == exposure::ProjectExposure::Internal {
                        exposure::Exposure::Internal
                    } else {
                        exposure::Exposure::InternetFacing
                    };
                    (key, matrix::lane(exposure, mature))
                })
                .collect();
            prop_assert_eq!(tickets, wanted);
        }
    }
}

/// Point of the grouping: the catalog, the key and the owner read one normalised name, so a
/// group whose projects show its name in different cases (GitHub does) or with and without a
/// registry host's case and a tag gets the same owner, lane, exposure and due date whatever
/// order its projects and their pages arrive in.
mod order {
    use super::*;
    use proptest::prelude::*;

    fn catalog() -> catalog::Catalog {
        catalog::Catalog::from_toml(
            r#"
default_team = "platform"
[teams.platform]
[teams.web]
[teams.media]
time_zone = "Pacific/Auckland"
[[owners]]
team = "web"
snyk_targets = ["acme/website"]
[[owners]]
team = "media"
snyk_targets = ["*.dkr.ecr.*.amazonaws.com/image-*"]
[[exposure]]
snyk_target = "acme/website"
exposure = "internal"
"#,
        )
        .unwrap()
    }

    /// The projects of two groups, each name written as Snyk may display it.
    fn snapshots() -> Vec<RawEvent> {
        let repo = [
            ("r1", "github", "Acme/Website", "main", "npm", &["external"][..], None),
            ("r2", "github-cloud-app", "acme/website", "main", "sast", &[][..], Some(("CVSSv4", "Attacked"))),
            ("r3", "github-enterprise", "ACME/WEBSITE", "release", "maven", &["internal"][..], None),
        ];
        let images = [
            (
                "i1",
                "ecr",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/Image-Resizer:1.0",
                "1.0",
                "deb",
                &["external"][..],
                None,
            ),
            (
                "i2",
                "ecr",
                "123456789012.DKR.ECR.eu-west-1.amazonaws.com/image-resizer",
                "1.1",
                "npm",
                &["internal"][..],
                Some(("CVSSv3", "High")),
            ),
            (
                "i3",
                "ecr",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-resizer@sha256:00ff",
                "1.2",
                "deb",
                &[][..],
                None,
            ),
        ];
        repo.iter()
            .chain(images.iter())
            .map(|(id, origin, target, reference, ptype, env, maturity)| {
                let issues =
                    vec![issue(&format!("{id}-i"), id, &format!("SNYK-X-{id}"), "critical", *maturity)];
                event(project(id, origin, target, reference, ptype, env, &[]), issues, T0)
            })
            .collect()
    }

    /// Key, lane, team, due date, summary and notes of each ticket.
    type Outcome = Vec<(String, Lane, String, Option<NaiveDate>, String, Vec<String>)>;

    fn outcome(events: &[RawEvent]) -> Outcome {
        let mut triage = InMemoryTriage::new(SnykPolicy::new(Arc::new(catalog()), SnykSettings::default()));
        for event in events {
            triage.apply(event, at(T0)).unwrap();
        }
        let mut tickets: Vec<_> = triage
            .tickets()
            .into_iter()
            .map(|t| {
                (
                    t.group_key.to_string(),
                    t.lane,
                    t.team.clone(),
                    t.due.as_ref().map(|d| d.date),
                    t.summary.clone(),
                    t.body.notes.clone(),
                )
            })
            .collect();
        tickets.sort();
        tickets
    }

    #[test]
    fn the_catalog_matches_the_normalised_name_whatever_case_arrives_first() {
        let tickets = outcome(&snapshots());
        let got: Vec<(&str, Lane, &str)> =
            tickets.iter().map(|(key, lane, team, ..)| (key.as_str(), *lane, team.as_str())).collect();
        assert_eq!(
            got,
            [
                ("snyk/ecr/123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-resizer", Lane::P1, "media"),
                ("snyk/github/acme/website", Lane::P2, "web"),
            ],
            "the catalog's owner and exposure rules apply though the first project says Acme/Website"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn owner_lane_exposure_and_due_date_do_not_depend_on_the_order(
            order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle()
        ) {
            let events = snapshots();
            let permuted: Vec<RawEvent> = order.iter().map(|&i| events[i].clone()).collect();
            prop_assert_eq!(outcome(&permuted), outcome(&events));
        }
    }
}

#[test]
fn the_ticket_says_how_many_qualifying_findings_are_left_of_those_seen() {
    let mut triage = InMemoryTriage::new(policy());
    let target = image("payments-api");
    let both = vec![
        issue("a", "p1", "SNYK-A", "critical", None),
        issue("b", "p1", "SNYK-B", "critical", None),
        issue("c", "p1", "SNYK-C", "high", None),
    ];
    let listed = |issues| event(project("p1", "ecr", &target, "1", "deb", &["external"], &[]), issues, T0);
    triage.apply(&listed(both.clone()), at(T0)).unwrap();
    let progress = triage.tickets()[0].body.progress.clone().unwrap();
    assert_eq!((progress.remaining, progress.total, progress.unit.as_str()), (2, 2, "critical findings"));
    assert_eq!(progress.describe(), "2 critical findings left");

    let later = "2026-11-28T09:00:00Z";
    let one_fixed = vec![both[1].clone()];
    let snapshot =
        |issues, when| event(project("p1", "ecr", &target, "1", "deb", &["external"], &[]), issues, when);
    triage.apply(&snapshot(one_fixed, later), at(later)).unwrap();
    assert_eq!(
        triage.tickets()[0].body.progress.as_ref().unwrap().describe(),
        "1 of 2 critical findings still pending"
    );

    let fixed = "2026-11-29T09:00:00Z";
    triage.apply(&snapshot(vec![], fixed), at(fixed)).unwrap();
    let ticket = triage.tickets()[0];
    assert_eq!(ticket.state, TicketState::Resolved);
    assert_eq!(ticket.body.progress.as_ref().unwrap().describe(), "0 of 2 critical findings still pending");
}

#[test]
fn a_long_summary_keeps_the_name_and_cuts_the_words() {
    let summary_of = |target: &str| {
        let mut triage = InMemoryTriage::new(policy());
        let issues = vec![issue("i", "p1", "SNYK-A", "critical", None)];
        triage
            .apply(&event(project("p1", "github", target, "main", "npm", &[], &[]), issues, T0), at(T0))
            .unwrap();
        triage.tickets()[0].summary.clone()
    };
    let long = format!("acme/{}", "service-".repeat(29));
    assert!(long.len() <= 250 && long.len() > 210);
    assert_eq!(summary_of(&long), long.trim_end_matches('/'), "the name alone");
    let longer = format!("acme-{}/payments-gateway", "x".repeat(300));
    let summary = summary_of(&longer);
    assert!(summary.starts_with('…') && summary.ends_with("/payments-gateway"), "{summary}");
    assert!(summary.len() <= 250);
    assert_eq!(summary_of("acme/checkout"), "Critical vulnerabilities in GitHub repository acme/checkout");
}

#[test]
fn cli_and_other_source_control_projects_are_ticketed_unless_left_out() {
    let cli = || {
        event(
            project("c1", "cli", "Payments-Worker", "", "npm", &["internal"], &[]),
            vec![issue("ci", "c1", "SNYK-JS-X-1", "critical", None)],
            T0,
        )
    };
    let gitlab = || {
        event(
            project("g1", "gitlab", "acme/web", "main", "npm", &["external"], &[]),
            vec![issue("gi", "g1", "SNYK-JS-X-2", "critical", None)],
            T0,
        )
    };
    let mut triage = InMemoryTriage::new(policy());
    triage.apply(&cli(), at(T0)).unwrap();
    triage.apply(&gitlab(), at(T0)).unwrap();
    let tickets = triage.tickets();
    let keys: Vec<&str> = tickets.iter().map(|t| t.group_key.as_str()).collect();
    assert_eq!(keys, [format!("snyk/cli/org:{ORG}/payments-worker").as_str(), "snyk/gitlab/acme/web"]);
    assert!(
        tickets[0].body.notes.iter().any(|n| n.contains("monitored from the Snyk CLI or API")),
        "{:?}",
        tickets[0].body.notes
    );

    let only_images = SnykSettings {
        ticketed_origins: vec![grouping::OriginClass::Container, grouping::OriginClass::Github],
        ..SnykSettings::default()
    };
    let policy = SnykPolicy::new(Arc::new(catalog()), only_images);
    let error = policy.state_key(&cli()).unwrap_err();
    assert!(matches!(error, PolicyError::Ignored(_)), "{error}");
    assert!(error.to_string().contains("--snyk-ticketed-origins leaves Cli out"), "{error}");
}

fn kev_feeds() -> feeds::Feeds {
    let kev = feeds::KevCatalog::parse(
        r#"{"catalogVersion": "2026.11.30", "dateReleased": "2026-11-30T12:00:00Z", "count": 2, "vulnerabilities": [
        {"cveID": "CVE-2099-1001", "vendorProject": "Sample", "product": "libxml2", "vulnerabilityName": "made up",
         "dateAdded": "2026-11-20", "dueDate": "2026-12-11", "knownRansomwareCampaignUse": "Known"},
        {"cveID": "CVE-2099-1003", "vendorProject": "Sample", "product": "libxml2", "vulnerabilityName": "made up",
         "dateAdded": "2026-11-21", "dueDate": "2027-06-01", "knownRansomwareCampaignUse": "Unknown"}]}"#,
    )
    .unwrap();
    let epss = feeds::EpssScores::parse(
        "#model_version:v2025.03.14,score_date:2026-11-30T00:00:00Z\ncve,epss,percentile\nCVE-2099-1002,0.72,0.99\nCVE-2099-1004,0.10,0.80\n",
    )
    .unwrap();
    feeds::Feeds { kev: Some(Arc::new(kev)), epss: Some(Arc::new(epss)) }
}

fn internal_image(key: &str, issue_id: &str, severity: &str) -> RawEvent {
    let p = project("p", "ecr", &image("ledger"), "1", "deb", &["internal"], &[]);
    event(p, vec![issue(issue_id, "p", key, severity, None)], T0)
}

#[test]
fn a_kev_listed_cve_is_mature_and_its_earlier_due_date_wins() {
    let policy = policy().with_feeds(kev_feeds());
    let mut triage = InMemoryTriage::new(policy);
    triage.apply(&internal_image("SNYK-1", "1001", "critical"), at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    // Internal and no Snyk maturity would be P4; KEV makes it P2, due by KEV's date (the lane's
    // would be 2026-12-27).
    assert_eq!(ticket.lane, Lane::P2);
    let due = ticket.due.clone().unwrap();
    assert_eq!(due.date, day(2026, 12, 11));
    let sentence = "CVE-2099-1001 is in CISA KEV since 2026-11-20, due 2026-12-11; known to be used in ransomware campaigns.";
    assert_eq!(due.source, contracts::DueDateSource::EventText { sentence: sentence.into() });
    let facts = &ticket.body.items[0].facts;
    assert!(facts.contains(&("CISA KEV".to_owned(), sentence.to_owned())), "{facts:?}");
    assert!(
        ticket
            .body
            .notes
            .iter()
            .any(|n| n.contains("CISA KEV") && n.contains("earlier than the lane's 2026-12-27")),
        "{:?}",
        ticket.body.notes
    );
    let state = triage.states().next().unwrap().1.clone();
    let decision = triage.policy().due_decision(&state).unwrap();
    assert!(decision.rule.starts_with("CISA KEV dueDate of CVE-2099-1001"), "{}", decision.rule);

    // A KEV date later than the lane's: the lane's date stays.
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()));
    triage.apply(&internal_image("SNYK-3", "1003", "critical"), at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!((ticket.lane, ticket.due.as_ref().unwrap().date), (Lane::P2, day(2026, 12, 27)));
    let state = triage.states().next().unwrap().1.clone();
    assert_eq!(
        triage.policy().due_decision(&state).unwrap().rule,
        "profile seed, lane P2: 1 month(s) from 2026-11-27"
    );

    // KEV off in the profile: P4 as before.
    let off = Profile { kev_enabled: false, ..Profile::seed(&SnykSettings::default()) };
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()).with_profile(off));
    triage.apply(&internal_image("SNYK-1", "1001", "critical"), at(T0)).unwrap();
    assert_eq!(triage.tickets()[0].lane, Lane::P4);
}

fn policy_with(feeds: feeds::Feeds) -> SnykPolicy {
    policy().with_feeds(feeds)
}

#[test]
fn an_epss_score_at_the_threshold_is_mature_and_shown() {
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()));
    triage.apply(&internal_image("SNYK-2", "1002", "critical"), at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!(ticket.lane, Lane::P2);
    assert!(
        ticket.body.items[0]
            .facts
            .contains(&("EPSS".to_owned(), "CVE-2099-1002 0.720 (percentile 0.990)".to_owned()))
    );
    assert!(ticket.body.notes[0].contains("CVE-2099-1002 has EPSS 0.720"), "{}", ticket.body.notes[0]);
    // Below the threshold: shown, not mature.
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()));
    triage.apply(&internal_image("SNYK-4", "1004", "critical"), at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!(ticket.lane, Lane::P4);
    assert!(ticket.body.items[0].facts.iter().any(|(k, _)| k == "EPSS"));
}

#[test]
fn a_kev_listed_finding_below_the_floor_qualifies_only_when_asked() {
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()));
    triage.apply(&internal_image("SNYK-1", "1001", "high"), at(T0)).unwrap();
    assert!(triage.tickets().is_empty());
    let below = Profile { kev_below_floor: true, ..Profile::seed(&SnykSettings::default()) };
    let mut triage = InMemoryTriage::new(policy_with(kev_feeds()).with_profile(below));
    triage.apply(&internal_image("SNYK-1", "1001", "high"), at(T0)).unwrap();
    let ticket = triage.tickets()[0].clone();
    assert_eq!((ticket.lane, ticket.due.unwrap().date), (Lane::P2, day(2026, 12, 11)));
    // Not listed: still below the floor.
    let mut triage = InMemoryTriage::new(
        policy_with(kev_feeds())
            .with_profile(Profile { kev_below_floor: true, ..Profile::seed(&SnykSettings::default()) }),
    );
    triage.apply(&internal_image("SNYK-2", "1002", "high"), at(T0)).unwrap();
    assert!(triage.tickets().is_empty());
}

#[test]
fn a_new_profile_moves_the_due_date_on_the_next_fold() {
    let event = {
        let p = project("p", "ecr", &image("ledger"), "1", "deb", &["internal"], &[]);
        event(p, vec![issue("1005", "p", "SNYK-5", "critical", Some(("CVSSv4", "Attacked")))], T0)
    };
    let mut triage = InMemoryTriage::new(policy());
    triage.apply(&event, at(T0)).unwrap();
    let stored = triage.states().next().unwrap().1.clone();
    assert_eq!(triage.tickets()[0].due.as_ref().unwrap().date, day(2026, 12, 27));
    let fixed =
        Profile::parse("name = \"fixed\"\n[due]\nP2 = \"14 days\"", &SnykSettings::default()).unwrap();
    let replayed = SnykPolicy::new(Arc::new(catalog()), SnykSettings::default()).with_profile(fixed);
    let mut state = stored;
    replayed.apply(&mut state, &event, at("2026-12-02T00:00:00Z")).unwrap();
    let ticket = replayed.desired(&state, at("2026-12-02T00:00:00Z")).remove(0);
    assert_eq!(ticket.due.unwrap().date, day(2026, 12, 11));
    assert_eq!(
        replayed.due_decision(&state).unwrap().rule,
        "profile fixed, lane P2: 14 day(s) from 2026-11-27"
    );
}
