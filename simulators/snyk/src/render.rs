//! The simulated data in Snyk's REST (JSON:API) and v1 webhook shapes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::model::{IssueStatus, ProjectStatus, SimIssue, SimOrg, SimProject};

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A project resource; `expand_target` adds the target's attributes.
pub fn project(org: &SimOrg, project: &SimProject, expand_target: bool, issue_counts: bool) -> Value {
    let mut attributes = json!({
        "name": project.name,
        "type": project.project_type,
        "target_file": project.target_file,
        "target_reference": project.target_reference,
        "origin": project.origin,
        "created": time(project.created),
        "status": match project.status { ProjectStatus::Active => "active", ProjectStatus::Inactive => "inactive" },
        "read_only": false,
        "business_criticality": project.business_criticality,
        "environment": project.environment,
        "lifecycle": project.lifecycle,
        "tags": project.tags.iter().map(|(key, value)| json!({"key": key, "value": value})).collect::<Vec<_>>(),
        "settings": {"recurring_tests": {"frequency": "daily"}, "pull_requests": {"is_enabled": true}},
    });
    if let Some(platform) = &project.platform {
        attributes["build_args"] = json!({"platform": platform});
    }
    let target_link = json!({"related": format!("/orgs/{}/targets/{}", org.id, project.target_id)});
    let target = if expand_target {
        json!({"data": {"id": project.target_id, "type": "target",
                        "attributes": {"display_name": project.target_name, "url": project.target_url}},
               "links": target_link})
    } else {
        json!({"data": {"id": project.target_id, "type": "target"}, "links": target_link})
    };
    let mut meta = json!({"cli_monitored_at": null});
    if issue_counts {
        let mut counts = json!({"critical": 0, "high": 0, "medium": 0, "low": 0});
        for issue in org.issues.iter().filter(|i| i.project_id == project.id && i.status == IssueStatus::Open)
        {
            if let Some(count) = counts.get_mut(issue.severity.as_str()) {
                *count = json!(count.as_u64().unwrap_or(0) + 1);
            }
        }
        counts["updated_at"] = json!(time(project.created));
        meta["latest_issue_counts"] = counts;
    }
    json!({
        "type": "project",
        "id": project.id,
        "attributes": attributes,
        "relationships": {
            "organization": {"data": {"id": org.id, "type": "organization"},
                             "links": {"related": format!("/orgs/{}", org.id)}},
            "target": target,
        },
        "meta": meta,
    })
}

fn score(severity: &str) -> f64 {
    match severity {
        "critical" => 9.8,
        "high" => 8.1,
        "medium" => 5.3,
        _ => 3.1,
    }
}

/// An issue resource.
pub fn issue(org: &SimOrg, issue: &SimIssue) -> Value {
    let representation = match (&issue.package, &issue.location) {
        (Some((name, version)), _) => {
            json!({"dependency": {"package_name": name, "package_version": version}})
        }
        (None, Some((file, line))) => json!({"sourceLocation": {
            "file": file, "commit_id": "9f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c",
            "region": {"start": {"line": line, "column": 5}, "end": {"line": line, "column": 48}}}}),
        (None, None) => json!({"resourcePath": "unknown"}),
    };
    let code = issue.issue_type == "code";
    let mut attributes = json!({
        "key": issue.key,
        "title": issue.title,
        "type": issue.issue_type,
        "effective_severity_level": issue.severity,
        "status": match issue.status { IssueStatus::Open => "open", IssueStatus::Resolved => "resolved" },
        "ignored": issue.ignored,
        "created_at": time(issue.created_at),
        "updated_at": time(issue.updated_at),
        "coordinates": [{
            "is_fixable_manually": code,
            "is_fixable_snyk": issue.upgradeable,
            "is_fixable_upstream": issue.fixable_upstream,
            "is_patchable": false,
            "is_pinnable": false,
            "is_upgradeable": issue.upgradeable,
            "reachability": if code { "not-applicable" } else { "no-info" },
            "representations": [representation],
        }],
        "severities": [{
            "level": issue.severity, "score": score(&issue.severity), "source": "Snyk", "version": "4.0",
            "vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "modification_time": time(issue.updated_at),
        }],
    });
    let snyk_problem = if code {
        json!({"id": issue.key, "source": "SNYK", "type": "rule"})
    } else {
        json!({"id": issue.key, "source": "SNYK", "type": "vulnerability", "updated_at": time(issue.updated_at)})
    };
    let mut problems = vec![snyk_problem];
    if let Some(cve) = &issue.cve {
        let nvd = json!({"id": cve, "source": "NVD", "type": "vulnerability", "updated_at": time(issue.updated_at)});
        // Snyk gives problems in no fixed order.
        if issue.id.ends_with(['1', '3', '5', '7', '9']) {
            problems.insert(0, nvd);
        } else {
            problems.push(nvd);
        }
    }
    attributes["problems"] = json!(problems);
    if code {
        attributes["key_asset"] = json!(issue.key);
    }
    if let Some(levels) = &issue.maturity {
        attributes["exploit_details"] = json!({
            "sources": ["CISA", "Snyk"],
            "maturity_levels": levels.iter().map(|(format, level)| json!({"format": format, "level": level})).collect::<Vec<_>>(),
        });
    }
    if let Some(resolved_at) = issue.resolved_at {
        attributes["resolution"] = json!({"type": "fixed", "resolved_at": time(resolved_at)});
    }
    let mut relationships = json!({
        "organization": {"data": {"id": org.id, "type": "organization"}},
        "scan_item": {"data": {"id": issue.project_id, "type": "project"}},
    });
    if issue.ignored {
        relationships["ignore"] = json!({"data": {"id": format!("ignore-{}", issue.id), "type": "ignore"}});
    }
    json!({"id": issue.id, "type": "issue", "attributes": attributes, "relationships": relationships})
}

/// A v1 `project_snapshot` webhook body for a project: its open issues as `newIssues`.
pub fn webhook_body(org: &SimOrg, project: &SimProject) -> Value {
    let issues: Vec<Value> = org
        .issues
        .iter()
        .filter(|i| i.project_id == project.id && i.status == IssueStatus::Open && i.package.is_some())
        .map(|i| {
            let (name, version) = i.package.clone().unwrap_or_default();
            let maturity = match &i.maturity {
                Some(levels) if levels.iter().any(|(_, l)| l == "Attacked" || l == "High") => "mature",
                Some(levels) if levels.iter().any(|(_, l)| l == "Proof of Concept") => "proof-of-concept",
                Some(_) => "no-known-exploit",
                None => "no-data",
            };
            json!({
                "id": i.key, "issueType": "vuln", "pkgName": name, "pkgVersions": [version],
                "issueData": {
                    "id": i.key, "title": i.title, "severity": i.severity, "exploitMaturity": maturity,
                    "identifiers": {"CVE": i.cve.iter().collect::<Vec<_>>(), "CWE": []},
                    "exploitDetails": {"sources": ["Snyk"], "maturityLevels": i.maturity.iter().flatten().map(|(f, l)| json!({"type": "secondary", "format": f, "level": l})).collect::<Vec<_>>()},
                },
                "isIgnored": i.ignored, "isPatched": false,
                "fixInfo": {"isUpgradable": i.upgradeable, "isPinnable": false, "isPatchable": false, "isFixable": i.fixable_upstream, "fixedIn": [], "nearestFixedInVersion": ""},
            })
        })
        .collect();
    let mut v1_project = json!({
        "id": project.id, "name": project.name, "origin": project.origin, "type": project.project_type,
        "created": time(project.created), "isMonitored": project.status == ProjectStatus::Active,
        "attributes": {"criticality": project.business_criticality, "environment": project.environment, "lifecycle": project.lifecycle},
        "tags": project.tags.iter().map(|(key, value)| json!({"key": key, "value": value})).collect::<Vec<_>>(),
        "branch": project.target_reference,
    });
    if project.origin == "ecr" {
        v1_project["imageTag"] = json!(project.target_reference);
        v1_project["imageId"] = json!(format!("sha256:{}", project.id.replace('-', "")));
        v1_project["imagePlatform"] = json!(project.platform);
        if let Some(base) = &project.base_image {
            v1_project["imageBaseImage"] = json!(base);
        }
    } else if let Some(url) = &project.target_url {
        v1_project["remoteRepoUrl"] = json!(url);
    }
    json!({
        "project": v1_project,
        "org": {"name": org.name, "id": org.id, "slug": org.slug,
                "url": format!("https://api.snyk.io/v1/org/{}", org.slug), "created": "2025-02-11T09:00:00.000Z"},
        "group": {"name": "Globex", "id": "5d2c0000-0000-4000-8000-0000000000e8"},
        "newIssues": issues,
        "removedIssues": [],
    })
}
