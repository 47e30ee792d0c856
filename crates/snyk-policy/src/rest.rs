//! Snyk REST API documents (JSON:API), as `GET /rest/orgs/{org_id}/projects?expand=target` and
//! `GET /rest/orgs/{org_id}/issues` return them.
//!
//! Only the fields triage reads are typed; everything else a resource carries is kept in
//! `other`, so a document read and written back loses nothing a later policy might want.
//! Fields the OpenAPI spec marks as required are required here too: a page without them is
//! malformed and refused with the reason.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::severity::Severity;

/// Reads `null` as the default (Snyk sends `null` for some empty lists).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A JSON:API link: a plain URL or `{"href": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Link {
    Url(String),
    Object {
        href: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Value>,
    },
}

impl Link {
    pub fn href(&self) -> &str {
        match self {
            Link::Url(url) => url,
            Link::Object { href, .. } => href,
        }
    }
}

/// Pagination links. Only a missing `next` ends a listing; a short page does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_link: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Link>,
}

impl Links {
    /// The next page's link, if there is one (an empty string counts as none).
    pub fn next_href(&self) -> Option<&str> {
        self.next.as_ref().map(Link::href).filter(|href| !href.trim().is_empty())
    }
}

/// One page of `GET /orgs/{org_id}/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectsPage {
    pub data: Vec<Project>,
    #[serde(default)]
    pub links: Links,
}

/// One page of `GET /orgs/{org_id}/issues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuesPage {
    pub data: Vec<Issue>,
    #[serde(default)]
    pub links: Links,
}

/// Whether Snyk still monitors a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    Active,
    Inactive,
}

/// A project resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub attributes: ProjectAttributes,
    pub relationships: ProjectRelationships,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// `key: value` tag on a project (`team: payments`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectAttributes {
    pub name: String,
    /// The package manager (`deb`, `apk`, `npm`, `maven`, `sast` for Snyk Code…).
    #[serde(rename = "type")]
    pub project_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub target_file: String,
    /// The image tag or the branch.
    #[serde(default, deserialize_with = "null_as_default")]
    pub target_reference: String,
    pub origin: String,
    pub status: ProjectStatus,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub business_criticality: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub environment: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    /// `created`, `read_only`, `settings`, `build_args`, … as received.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRelationships {
    pub target: TargetRelationship,
    /// `organization`, `importer`, `owner`, as received.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ProjectRelationships {
    /// The organisation id the relationship names, if any.
    pub fn organization_id(&self) -> Option<&str> {
        self.other.get("organization")?.get("data")?.get("id")?.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRelationship {
    pub data: TargetData,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetData {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Present with `expand=target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<TargetAttributes>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

impl Project {
    /// The target's display name (`<registry>/<repository>`, `<owner>/<repo>`), present when
    /// the page was fetched with `expand=target`.
    pub fn target_display_name(&self) -> Option<&str> {
        self.relationships
            .target
            .data
            .attributes
            .as_ref()
            .and_then(|a| a.display_name.as_deref())
            .filter(|name| !name.trim().is_empty())
    }

    pub fn is_active(&self) -> bool {
        self.attributes.status == ProjectStatus::Active
    }
}

/// Open or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    Open,
    Resolved,
}

/// An issue resource: one issue in one scan item (project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub attributes: IssueAttributes,
    pub relationships: IssueRelationships,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueAttributes {
    /// The Snyk vulnerability id (`SNYK-…`) for open source and container issues; an opaque
    /// id for Snyk Code.
    pub key: String,
    pub title: String,
    /// `package_vulnerability`, `license`, `code`, …
    #[serde(rename = "type")]
    pub issue_type: String,
    pub effective_severity_level: Severity,
    pub status: IssueStatus,
    pub ignored: bool,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub coordinates: Vec<Coordinate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploit_details: Option<ExploitDetails>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// `created_at`, `updated_at`, `severities`, `classes`, `risk`, `resolution`, … as received.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coordinate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_upgradeable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_pinnable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_patchable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fixable_snyk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fixable_upstream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fixable_manually: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub representations: Vec<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Coordinate {
    /// `name@version` of every dependency this coordinate names.
    pub fn packages(&self) -> impl Iterator<Item = String> + '_ {
        self.representations.iter().filter_map(|representation| {
            let dependency = representation.get("dependency")?;
            let name = dependency.get("package_name")?.as_str()?;
            let version = dependency.get("package_version").and_then(Value::as_str).unwrap_or("");
            Some(if version.is_empty() { name.to_owned() } else { format!("{name}@{version}") })
        })
    }

    /// Source files (Snyk Code) this coordinate names.
    pub fn files(&self) -> impl Iterator<Item = String> + '_ {
        self.representations.iter().filter_map(|representation| {
            let location = representation.get("sourceLocation")?;
            let file = location.get("file")?.as_str()?;
            let line = location.pointer("/region/start/line").and_then(Value::as_u64);
            Some(match line {
                Some(line) => format!("{file}:{line}"),
                None => file.to_owned(),
            })
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExploitDetails {
    #[serde(default, deserialize_with = "null_as_default")]
    pub maturity_levels: Vec<MaturityLevel>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sources: Vec<String>,
}

/// One exploit maturity statement: `{format: "CVSSv4", level: "Attacked"}`, optionally with
/// `type: primary|secondary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaturityLevel {
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub level: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A vulnerability record behind an issue: the CVE is the one with `source: NVD`, the Snyk id
/// the one with `source: SNYK`, in any order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub source: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueRelationships {
    pub scan_item: ResourceReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<ResourceReference>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `{"data": {"id", "type"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceReference {
    pub data: ResourceIdentifier,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceIdentifier {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
}

impl Issue {
    /// The project this issue was found in, when its scan item is a project.
    pub fn project_id(&self) -> Option<&str> {
        let item = &self.relationships.scan_item.data;
        (item.resource_type == "project").then_some(item.id.as_str())
    }

    /// CVE ids (from `problems` with source NVD, or any id that looks like a CVE).
    pub fn cves(&self) -> Vec<String> {
        let mut cves: Vec<String> = self
            .attributes
            .problems
            .iter()
            .filter(|p| p.source.eq_ignore_ascii_case("NVD") || p.id.starts_with("CVE-"))
            .map(|p| p.id.clone())
            .collect();
        cves.sort();
        cves.dedup();
        cves
    }
}

/// Reads a projects page, saying what is wrong when it is not one.
pub fn parse_projects_page(body: &[u8]) -> Result<ProjectsPage, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Reads an issues page, saying what is wrong when it is not one.
pub fn parse_issues_page(body: &[u8]) -> Result<IssuesPage, serde_json::Error> {
    serde_json::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECTS: &str = r#"{"jsonapi":{"version":"1.0"},"data": [{"type": "project", "id": "9c41e6b2-5a70-4d18-b3f9-2e6a7c8d9e01",
   "attributes": {"name": "fleet/telemetry-api:2.7.3", "type": "deb", "origin": "ecr",
     "target_file": "", "target_reference": "2.7.3", "created": "2026-04-18T07:02:55.310Z",
     "status": "active", "read_only": false, "business_criticality": ["medium"],
     "environment": ["external", "hosted"], "lifecycle": ["production"],
     "tags": [{"key": "team", "value": "fleet"}], "build_args": {"platform": "linux/arm64"}, "settings": {}},
   "relationships": {"target": {"data": {"type": "target", "id": "71d3a0e9-0000-4000-8000-000000000001",
       "attributes": {"display_name": "fleet/telemetry-api", "url": null}}},
       "organization": {"data": {"type": "organization", "id": "0e8a0000-0000-4000-8000-0000000000c4"}}},
   "meta": {"cli_monitored_at": null}}],
 "links": {"next": "/orgs/0e8a/projects?version=2024-10-15&limit=100&expand=target&starting_after=djE6OTg3NjU%3D"}}"#;

    #[test]
    fn reads_a_projects_page_and_keeps_what_it_does_not_type() {
        let page = parse_projects_page(PROJECTS.as_bytes()).unwrap();
        let project = &page.data[0];
        assert_eq!(project.target_display_name(), Some("fleet/telemetry-api"));
        assert_eq!(project.attributes.target_reference, "2.7.3");
        assert_eq!(project.relationships.organization_id(), Some("0e8a0000-0000-4000-8000-0000000000c4"));
        assert!(page.links.next_href().unwrap().starts_with("/orgs/"));
        let again: Project = serde_json::from_value(serde_json::to_value(project).unwrap()).unwrap();
        assert_eq!(&again, project);
        assert_eq!(again.attributes.other["build_args"]["platform"], "linux/arm64");
    }

    #[test]
    fn a_page_without_required_fields_is_refused_with_the_field() {
        let err = parse_projects_page(br#"{"data":[{"id":"x","type":"project","attributes":{"name":"n"}}]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = parse_issues_page(br#"{"data":"oops"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
