//! Snyk v1 webhook bodies (`project_snapshot/v0`).
//!
//! ```json
//! {"project": {"id", "name", "origin", "type", "imageTag", "imageBaseImage", "remoteRepoUrl",
//!              "attributes": {"criticality", "environment", "lifecycle"}, "tags": [..]},
//!  "org": {"id", "name", "slug"}, "group": {..},
//!  "newIssues": [..], "removedIssues": [..]}
//! ```
//!
//! The webhook is a trigger: ingest refreshes the project from the REST API. `explain` reads a
//! body on its own, taking its `newIssues` as the project's findings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::maturity::Maturity;
use crate::rest::{MaturityLevel, Tag, null_as_default};

/// A `project_snapshot` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    pub project: WebhookProject,
    pub org: WebhookOrg,
    #[serde(default, deserialize_with = "null_as_default")]
    pub new_issues: Vec<WebhookIssue>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub removed_issues: Vec<WebhookIssue>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookOrg {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProject {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub origin: String,
    #[serde(default, rename = "type")]
    pub project_type: String,
    #[serde(default)]
    pub image_tag: Option<String>,
    /// The base image Snyk detected (`debian:12.6-slim`).
    #[serde(default)]
    pub image_base_image: Option<String>,
    #[serde(default)]
    pub remote_repo_url: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: WebhookProjectAttributes,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookProjectAttributes {
    #[serde(default, deserialize_with = "null_as_default")]
    pub criticality: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub environment: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lifecycle: Vec<String>,
}

/// One issue of `newIssues` / `removedIssues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIssue {
    pub id: String,
    #[serde(default)]
    pub issue_type: Option<String>,
    #[serde(default)]
    pub pkg_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub pkg_versions: Vec<String>,
    pub issue_data: WebhookIssueData,
    #[serde(default)]
    pub is_ignored: bool,
    #[serde(default)]
    pub fix_info: Option<WebhookFixInfo>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIssueData {
    #[serde(default)]
    pub title: Option<String>,
    pub severity: crate::rest::SeverityLevel,
    #[serde(default)]
    pub exploit_maturity: Option<String>,
    #[serde(default)]
    pub exploit_details: Option<WebhookExploitDetails>,
    #[serde(default)]
    pub identifiers: Option<WebhookIdentifiers>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookExploitDetails {
    #[serde(default, deserialize_with = "null_as_default")]
    pub maturity_levels: Vec<MaturityLevel>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct WebhookIdentifiers {
    #[serde(default, deserialize_with = "null_as_default")]
    pub cve: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFixInfo {
    #[serde(default)]
    pub is_upgradable: bool,
    #[serde(default)]
    pub is_pinnable: bool,
    #[serde(default)]
    pub is_patchable: bool,
    #[serde(default)]
    pub is_fixable: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fixed_in: Vec<String>,
    #[serde(default)]
    pub nearest_fixed_in_version: Option<String>,
}

impl WebhookIssue {
    /// The most mature of `exploitMaturity` and `exploitDetails.maturityLevels`.
    pub fn maturity(&self, functional_is_mature: bool) -> Maturity {
        let v1 =
            self.issue_data.exploit_maturity.as_deref().map(Maturity::from_v1).unwrap_or(Maturity::NoData);
        // The CVSS statements, the primary first, when there are any; else the v1 word.
        match self.issue_data.exploit_details.as_ref().map(|d| &d.maturity_levels) {
            Some(levels) if !levels.is_empty() => Maturity::from_levels(levels, functional_is_mature),
            _ => v1,
        }
    }
}

/// Reads a webhook body.
pub fn parse_webhook_body(body: &[u8]) -> Result<WebhookBody, serde_json::Error> {
    serde_json::from_slice(body)
}

/// `owner/repo` from a GitHub repository URL (`https://github.com/acme/checkout(.git)`).
pub fn repository_from_url(url: &str) -> Option<String> {
    let url = url.trim();
    // The scp-like ssh form `git@github.com:acme/checkout.git` is `github.com/acme/checkout`.
    let scp_like;
    let url = match url.split_once("://") {
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => {
                scp_like = format!("{host}/{}", path.trim_start_matches('/'));
                scp_like.as_str()
            }
            _ => url,
        },
        Some(_) => url,
    };
    let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let path = without_scheme.split_once('/').map(|(_, path)| path)?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.rsplitn(3, '/');
    let repo = parts.next().filter(|p| !p.is_empty())?;
    let owner = parts.next().filter(|p| !p.is_empty())?;
    Some(format!("{owner}/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"project": {"name": "fleet/telemetry-api:2.7.3", "id": "9c41e6b2-0000-4000-8000-000000000001", "origin": "ecr", "type": "deb",
   "imageTag": "2.7.3", "imageBaseImage": "debian:12.6-slim",
   "attributes": {"criticality": ["medium"], "environment": ["external"], "lifecycle": ["production"]},
   "tags": [{"key": "team", "value": "fleet"}]},
 "org": {"name": "Globex Platform", "id": "0e8a0000-0000-4000-8000-0000000000c4", "slug": "globex-platform"},
 "group": {"name": "Globex", "id": "5d2c"},
 "newIssues": [{"id": "SNYK-DEBIAN12-LIBXML2-1000001", "issueType": "vuln", "pkgName": "libxml2",
   "pkgVersions": ["2.9.14+dfsg-1.3~deb12u1"],
   "issueData": {"severity": "critical", "exploitMaturity": "proof-of-concept",
     "exploitDetails": {"sources": ["CISA"], "maturityLevels": [{"type": "primary", "level": "Attacked", "format": "CVSSv4"}]}},
   "isIgnored": false, "fixInfo": {"isUpgradable": false, "isFixable": true, "fixedIn": ["2.9.14+dfsg-1.3~deb12u2"]}}],
 "removedIssues": []}"#;

    #[test]
    fn repositories_from_https_and_ssh_remote_urls() {
        for url in [
            "https://github.com/acme/checkout",
            "https://github.com/acme/checkout.git",
            "git@github.com:acme/checkout.git",
            "ssh://git@github.com/acme/checkout.git",
            "git@github.com:/acme/checkout",
            " https://github.com/acme/checkout/ ",
        ] {
            assert_eq!(repository_from_url(url).as_deref(), Some("acme/checkout"), "{url}");
        }
        assert_eq!(repository_from_url("git@github.com:checkout.git"), None);
    }

    #[test]
    fn reads_a_project_snapshot_body() {
        let body = parse_webhook_body(BODY.as_bytes()).unwrap();
        assert_eq!(body.project.image_base_image.as_deref(), Some("debian:12.6-slim"));
        assert_eq!(body.project.attributes.environment, vec!["external"]);
        let issue = &body.new_issues[0];
        assert_eq!(issue.maturity(false), Maturity::Mature, "the CVSSv4 statement is more mature");
        assert!(issue.fix_info.as_ref().unwrap().is_fixable);
    }

    #[test]
    fn repository_urls() {
        assert_eq!(repository_from_url("https://github.com/acme/checkout").as_deref(), Some("acme/checkout"));
        assert_eq!(
            repository_from_url("https://ghe.example.com/acme/tools.git").as_deref(),
            Some("acme/tools")
        );
        assert_eq!(repository_from_url("https://github.com/").as_deref(), None);
    }
}
