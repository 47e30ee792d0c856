//! The simulator against the official Snyk REST OpenAPI spec, and Snyk's API behaviours.

use serde_json::Value;
use snyk_sim::contract::{Spec, query_params};
use snyk_sim::{Fault, SEEDED_ORG_ID, SnykSim};

const TOKEN: &str = "snyk-test-token";

async fn get(
    sim: &SnykSim,
    path_and_query: &str,
    token: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let url = format!("http://{}{path_and_query}", sim.address());
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("token {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// Follows `links.next` like a client: `/rest/…` joins the origin, `/orgs/…` the base URL.
async fn all_pages(sim: &SnykSim, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(link) = next.take() {
        let path = if link.starts_with("/rest/") { link } else { format!("/rest{link}") };
        let (status, body, headers) = get(sim, &path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(headers["content-type"], "application/vnd.api+json");
        next = body["links"]["next"].as_str().map(str::to_owned);
        pages.push(body);
    }
    pages
}

#[tokio::test]
async fn every_page_of_the_seeded_org_matches_the_spec() {
    let spec = Spec::load_default().expect("the Snyk contract description");
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let org = SEEDED_ORG_ID;
    let projects =
        all_pages(&sim, &format!("/orgs/{org}/projects?version=2024-10-15&limit=10&expand=target")).await;
    assert!(projects.len() >= 2, "the seeded org spans several pages of 10");
    assert!(
        projects[0]["links"]["next"].as_str().unwrap().starts_with("/orgs/"),
        "project links come without the /rest prefix"
    );
    let listed: usize = projects.iter().map(|p| p["data"].as_array().unwrap().len()).sum();
    assert_eq!(listed, sim.org(org).unwrap().projects.len());
    let issues = all_pages(&sim, &format!("/rest/orgs/{org}/issues?version=2024-10-15&limit=10")).await;
    assert!(issues[0]["links"]["next"].as_str().unwrap().starts_with("/rest/orgs/"));
    let filtered = all_pages(
        &sim,
        &format!("/rest/orgs/{org}/issues?version=2024-10-15&limit=100&effective_severity_level=critical,high&status=open&ignored=false"),
    )
    .await;
    let critical: Vec<&Value> = filtered[0]["data"].as_array().unwrap().iter().collect();
    assert!(
        critical.iter().all(|i| i["attributes"]["status"] == "open" && i["attributes"]["ignored"] == false)
    );
    let project = projects[0]["data"][0]["id"].as_str().unwrap();
    all_pages(
        &sim,
        &format!("/rest/orgs/{org}/issues?version=2024-10-15&scan_item.id={project}&scan_item.type=project"),
    )
    .await;
    all_pages(&sim, &format!("/orgs/{org}/projects?version=2024-10-15&ids={project}&expand=target&meta.latest_issue_counts=true")).await;

    let violations = spec.check_calls(&sim.requests());
    assert!(violations.is_empty(), "{violations:#?}");
    // Some issues have no exploit details, some resolved ones a resolution; all validated above.
    let all: Vec<&Value> = issues.iter().flat_map(|p| p["data"].as_array().unwrap()).collect();
    assert!(all.iter().any(|i| i["attributes"].get("exploit_details").is_none()));
    assert!(all.iter().any(|i| i["attributes"]["resolution"]["type"] == "fixed"));
    assert!(all.iter().any(|i| i["attributes"]["type"] == "code"));
}

#[tokio::test]
async fn a_deliberately_wrong_document_and_request_fail_validation() {
    let spec = Spec::load_default().expect("the Snyk contract description");
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let path = format!("/rest/orgs/{SEEDED_ORG_ID}/projects");
    let (_, mut page, _) = get(&sim, &format!("{path}?version=2024-10-15&expand=target"), Some(TOKEN)).await;
    assert!(spec.check_response(&path, 200, &page).is_empty());
    page["data"][0]["attributes"].as_object_mut().unwrap().remove("origin");
    page["data"][0]["attributes"]["status"] = "paused".into();
    let problems = spec.check_response(&path, 200, &page);
    assert!(problems.iter().any(|p| p.contains("origin")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("paused")), "{problems:#?}");

    let issues = format!("/rest/orgs/{SEEDED_ORG_ID}/issues");
    let (_, mut page, _) = get(&sim, &format!("{issues}?version=2024-10-15"), Some(TOKEN)).await;
    page["data"][0]["attributes"]["effective_severity_level"] = "severe".into();
    assert!(!spec.check_response(&issues, 200, &page).is_empty());

    let bad = query_params(
        "/rest/orgs/x/issues?version=yesterday&limit=15&severity=critical&status=open&status=resolved",
    );
    let problems = spec.check_request(&issues, &bad);
    for expected in ["version", "limit", "unknown query parameter severity", "comma-separated"] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:#?}");
    }
    let missing = spec.check_request(&issues, &query_params("/x?limit=10"));
    assert!(missing.iter().any(|p| p.contains("required parameter version")), "{missing:#?}");
}

#[tokio::test]
async fn behaves_like_snyk_on_auth_version_parameters_and_faults() {
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let path = format!("/rest/orgs/{SEEDED_ORG_ID}/issues");
    let (status, body, _) = get(&sim, &format!("{path}?version=2024-10-15"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = get(&sim, &format!("{path}?version=2024-10-15"), Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, body, _) = get(&sim, &path, Some(TOKEN)).await;
    assert_eq!(status, 400);
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("version"));
    let (status, body, _) = get(&sim, &format!("{path}?version=2024-10-15&unknown=1"), Some(TOKEN)).await;
    assert_eq!(
        (status, body["errors"][0]["detail"].as_str().unwrap()),
        (400, "Unknown query parameter 'unknown'")
    );
    let (status, _, _) = get(&sim, &format!("{path}?version=2024-10-15&limit=5"), Some(TOKEN)).await;
    assert_eq!(status, 400);
    let (status, _, _) =
        get(&sim, "/rest/orgs/00000000-0000-4000-8000-000000000000/issues?version=2024-10-15", Some(TOKEN))
            .await;
    assert_eq!(status, 404);

    sim.inject(Some("/issues"), Fault::TooManyRequests { retry_after: Some(7) });
    sim.inject(None, Fault::ServerError(503));
    let (status, _, headers) = get(&sim, &format!("{path}?version=2024-10-15"), Some(TOKEN)).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "7"));
    let (status, _, _) = get(&sim, &format!("{path}?version=2024-10-15"), Some(TOKEN)).await;
    assert_eq!(status, 503);
    let (status, _, _) = get(&sim, &format!("{path}?version=2024-10-15"), Some(TOKEN)).await;
    assert_eq!(status, 200, "faults are used up");
}

#[tokio::test]
async fn tests_can_change_the_org() {
    let sim = SnykSim::start(TOKEN).await.unwrap();
    let org = SEEDED_ORG_ID;
    let ledger = sim.project_id(org, "ledger-worker:1.4.0").unwrap();
    sim.add_issue(
        org,
        &ledger,
        snyk_sim::NewIssue::critical_mature("SNYK-ALPINE319-OPENSSL-1", "openssl", "3.1.4-r0"),
    )
    .unwrap();
    let fixed =
        sim.fix_issues(org, |p, i| p.target_name.ends_with("/payments-api") && i.severity == "critical");
    assert_eq!(fixed, 2, "one libxml2 finding per tag");
    assert!(sim.deactivate_project(org, &ledger));
    let body = sim.webhook_body(org, &ledger).unwrap();
    assert_eq!(body["project"]["imageBaseImage"], "alpine:3.19.1");
    assert!(
        body["newIssues"].as_array().unwrap().iter().any(|i| i["issueData"]["exploitMaturity"] == "mature")
    );
    assert!(sim.delete_project(org, &ledger));
    assert!(sim.project_id(org, "ledger-worker:1.4.0").is_none());
}
