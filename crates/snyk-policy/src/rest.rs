//! Snyk REST API documents (JSON:API), as `GET /rest/orgs/{org_id}/projects?expand=target` and
//! `GET /rest/orgs/{org_id}/issues` return them.
//!
//! Only the fields triage reads are typed; everything else a resource carries is kept in
//! `other`, so a document read and written back loses nothing a later policy might want.
//! Fields the OpenAPI spec marks as required are required here too. A page is read resource by
//! resource ([`read_projects_page`], [`read_issues_page`]): a resource that does not parse is
//! set aside with its id and the reason, and the rest of the page stands. Enumerations the API
//! may extend (project and issue status, severity) keep an unknown value as received
//! ([`ProjectStatus::Other`], …) instead of refusing it; [`Project::unknown_values`] and
//! [`Issue::unknown_values`] name them so they can be counted.

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    Active,
    Inactive,
    /// A status this version does not know, as received. Snyk still lists the project and its
    /// issues, so it counts as monitored: a guess must not resolve a team's ticket.
    #[serde(untagged)]
    Other(String),
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
        self.attributes.status != ProjectStatus::Inactive
    }

    /// The fields holding a value this version does not know (`status`).
    pub fn unknown_values(&self) -> Vec<&'static str> {
        match self.attributes.status {
            ProjectStatus::Other(_) => vec!["project.status"],
            _ => Vec::new(),
        }
    }
}

/// Open or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    Open,
    Resolved,
    /// A status this version does not know, as received: not open.
    #[serde(untagged)]
    Other(String),
}

/// An issue's severity: one of the known levels, or a value this version does not know, as
/// received (the spec's `Severity` already has `none` and `other` besides the four levels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeverityLevel {
    Known(Severity),
    Other(String),
}

impl SeverityLevel {
    /// The level, when known; an unknown level is never at or above a floor.
    pub fn known(&self) -> Option<Severity> {
        match self {
            SeverityLevel::Known(severity) => Some(*severity),
            SeverityLevel::Other(_) => None,
        }
    }
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
    pub effective_severity_level: SeverityLevel,
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

    /// The fields holding a value this version does not know.
    pub fn unknown_values(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if matches!(self.attributes.effective_severity_level, SeverityLevel::Other(_)) {
            fields.push("issue.effective_severity_level");
        }
        if matches!(self.attributes.status, IssueStatus::Other(_)) {
            fields.push("issue.status");
        }
        fields
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

/// A resource of a page that could not be read, set aside with why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedResource {
    /// The resource's `id`, when it has one.
    pub id: Option<String>,
    /// The project it belongs to: its own id for a project, the scan item for an issue.
    pub project_id: Option<String>,
    pub reason: String,
    /// The resource as received.
    pub resource: Value,
}

/// A page read resource by resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPage<T> {
    pub data: Vec<T>,
    pub rejected: Vec<RejectedResource>,
    pub links: Links,
}

/// The envelope of a page: `data` must be an array, each item is read on its own.
#[derive(Deserialize)]
struct Envelope {
    data: Vec<Value>,
    #[serde(default)]
    links: Option<Value>,
}

fn read_page<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
    project_of: fn(&Value) -> Option<&str>,
) -> Result<ReadPage<T>, serde_json::Error> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    // Links that do not read are no next page, not a refused page: the resources stand.
    let links = envelope.links.and_then(|l| serde_json::from_value(l).ok()).unwrap_or_default();
    let mut data = Vec::with_capacity(envelope.data.len());
    let mut rejected = Vec::new();
    for resource in envelope.data {
        match T::deserialize(&resource) {
            Ok(item) => data.push(item),
            Err(error) => {
                let id = resource.get("id").and_then(Value::as_str).map(str::to_owned);
                let project_id = project_of(&resource).map(str::to_owned);
                let name = id.as_deref().map_or_else(|| "without an id".to_owned(), |id| format!("{id:?}"));
                rejected.push(RejectedResource {
                    reason: format!("{what} {name} cannot be read: {error}"),
                    id,
                    project_id,
                    resource,
                });
            }
        }
    }
    Ok(ReadPage { data, rejected, links })
}

/// An org the token can see (`GET /rest/orgs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgResource {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub attributes: OrgAttributes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgAttributes {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Reads an orgs page resource by resource.
pub fn read_orgs_page(body: &[u8]) -> Result<ReadPage<OrgResource>, serde_json::Error> {
    read_page(body, "org", |resource| resource.get("id")?.as_str())
}

/// Reads a projects page resource by resource; only a page that is not one is an error.
pub fn read_projects_page(body: &[u8]) -> Result<ReadPage<Project>, serde_json::Error> {
    read_page(body, "project", |resource| resource.get("id")?.as_str())
}

/// Reads an issues page resource by resource; only a page that is not one is an error.
pub fn read_issues_page(body: &[u8]) -> Result<ReadPage<Issue>, serde_json::Error> {
    read_page(body, "issue", |resource| {
        let item = resource.pointer("/relationships/scan_item/data")?;
        (item.get("type")?.as_str()? == "project").then_some(())?;
        item.get("id")?.as_str()
    })
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
    fn one_bad_resource_is_set_aside_and_the_rest_of_the_page_stands() {
        let mut page: Value = serde_json::from_str(PROJECTS).unwrap();
        let good = page["data"][0].clone();
        let mut no_relationships = good.clone();
        no_relationships["id"] = "b0000000-0000-4000-8000-000000000001".into();
        no_relationships.as_object_mut().unwrap().remove("relationships");
        let mut new_status = good.clone();
        new_status["id"] = "b0000000-0000-4000-8000-000000000002".into();
        new_status["attributes"]["status"] = "paused".into();
        page["data"] = serde_json::json!([no_relationships, good, new_status, 42]);
        let read = read_projects_page(page.to_string().as_bytes()).unwrap();
        assert_eq!(read.data.len(), 2, "the good one and the one with a new status");
        assert_eq!(read.data[1].attributes.status, ProjectStatus::Other("paused".into()));
        assert!(read.data[1].is_active());
        assert_eq!(read.data[1].unknown_values(), ["project.status"]);
        let again: Project = serde_json::from_value(serde_json::to_value(&read.data[1]).unwrap()).unwrap();
        assert_eq!(again.attributes.status, ProjectStatus::Other("paused".into()), "kept as received");
        assert_eq!(read.rejected.len(), 2);
        let first = &read.rejected[0];
        assert_eq!(first.id.as_deref(), Some("b0000000-0000-4000-8000-000000000001"));
        assert_eq!(first.project_id, first.id);
        assert!(first.reason.contains("missing field `relationships`"), "{}", first.reason);
        assert_eq!(read.rejected[1].id, None);
        assert!(read.rejected[1].reason.contains("without an id"), "{}", read.rejected[1].reason);
        assert!(read.links.next_href().is_some());
        assert!(read_projects_page(br#"{"data": {"id": "x"}}"#).is_err(), "not a page at all");
    }

    #[test]
    fn issues_with_new_severities_and_statuses_are_kept_and_named() {
        let issue = |severity: &str, status: &str| {
            serde_json::json!({"id": "i1", "type": "issue",
              "attributes": {"key": "SNYK-X-1", "title": "t", "type": "package_vulnerability",
                "effective_severity_level": severity, "status": status, "ignored": false,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
              "relationships": {"scan_item": {"data": {"id": "p1", "type": "project"}}}})
        };
        let page = serde_json::json!({"data": [issue("critical", "open"), issue("catastrophic", "triaged"),
            {"id": "i3", "type": "issue", "relationships": {"scan_item": {"data": {"id": "p9", "type": "project"}}}}]});
        let read = read_issues_page(page.to_string().as_bytes()).unwrap();
        assert_eq!(read.data[0].attributes.effective_severity_level.known(), Some(Severity::Critical));
        assert!(read.data[0].unknown_values().is_empty());
        assert_eq!(read.data[1].attributes.effective_severity_level.known(), None);
        assert_eq!(read.data[1].unknown_values(), ["issue.effective_severity_level", "issue.status"]);
        assert_eq!(read.rejected.len(), 1);
        assert_eq!(read.rejected[0].project_id.as_deref(), Some("p9"), "the issue's project is named");
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
