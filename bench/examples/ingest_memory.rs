//! Where ingest-snyk's memory goes in a full sync: the resident memory that the parsed project
//! listing and the parsed critical-issue listing of the generated org take, each held at once
//! as `ingest_snyk::sync::SnykSync::sync_org` holds them before it publishes anything.
//!
//! ```text
//! cargo run --release -p pipeline-bench --example ingest_memory -- [PROJECTS] [FINDINGS]
//! ```

use snyk_policy::rest::{Issue, Project};
use snyk_sim::SimOrg;

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let projects: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let findings: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(250_000);
    let org = SimOrg::synthetic(pipeline_bench::world::ORG_ID, projects, findings);
    // The JSON as the simulator serves it, one resource at a time (pages of 100 in the API).
    let project_json: Vec<String> =
        org.projects.iter().map(|p| snyk_sim::render::project(&org, p, true, false).to_string()).collect();
    let issue_json: Vec<String> = org
        .issues
        .iter()
        .filter(|i| i.severity == "critical")
        .map(|i| snyk_sim::render::issue(&org, i).to_string())
        .collect();
    let json_bytes = |items: &[String]| items.iter().map(String::len).sum::<usize>() as f64 / 1024.0 / 1024.0;
    println!(
        "{} projects ({:.1} MiB of JSON), {} critical issues ({:.1} MiB of JSON)",
        project_json.len(),
        json_bytes(&project_json),
        issue_json.len(),
        json_bytes(&issue_json)
    );
    let before = resident_mib();
    let parsed_projects: Vec<Project> =
        project_json.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
    let with_projects = resident_mib();
    let parsed_issues: Vec<Issue> = issue_json.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
    let with_issues = resident_mib();
    println!(
        "parsed projects hold {:.1} MiB, parsed critical issues {:.1} MiB ({} + {} held at once)",
        with_projects - before,
        with_issues - with_projects,
        parsed_projects.len(),
        parsed_issues.len()
    );
}
