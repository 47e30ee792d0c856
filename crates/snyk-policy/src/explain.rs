//! Raw events from Snyk documents on disk, for the operator CLI's `explain`.
//!
//! Several documents are one input, read in order:
//!
//! * a REST projects page (`GET /orgs/{org_id}/projects?expand=target`) lists projects;
//! * the REST issues pages that follow it (`GET /orgs/{org_id}/issues`) give their issues,
//!   joined by `relationships.scan_item` (an issues page must come after the projects page
//!   that lists its projects);
//! * a v1 webhook body (`project_snapshot`) stands for its project with its `newIssues`. Its
//!   target comes from a projects page given before it, or for GitHub projects from its
//!   `remoteRepoUrl`: project names are never parsed.
//!
//! The events are those ingest-snyk would publish on a first sync.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contracts::RawEvent;
use serde_json::Value;
use triage_policy::PolicyError;

use crate::grouping::GITHUB_ORIGINS;
use crate::rest::{
    Issue, Project, ProjectAttributes, ProjectRelationships, ProjectStatus, TargetAttributes, TargetData,
    TargetRelationship,
};
use crate::snapshot::{BaseImage, ProjectSnapshot, SnapshotStatus, rest_origin};
use crate::webhook::{WebhookBody, repository_from_url};

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    ProjectsPage,
    IssuesPage,
    WebhookBody,
}

/// The kind of a Snyk document, or `None` when it is none of them.
pub fn classify(document: &Value) -> Option<DocumentKind> {
    let object = document.as_object()?;
    if object.get("project").is_some_and(Value::is_object)
        && object.get("org").is_some_and(Value::is_object)
        && (object.contains_key("newIssues") || object.contains_key("removedIssues"))
    {
        return Some(DocumentKind::WebhookBody);
    }
    let data = object.get("data")?.as_array()?;
    let resource_type = |wanted: &str| {
        !data.is_empty() && data.iter().all(|item| item.get("type").and_then(Value::as_str) == Some(wanted))
    };
    let self_link = object
        .get("links")
        .and_then(|l| l.get("self"))
        .and_then(|s| s.as_str().or_else(|| s.get("href").and_then(Value::as_str)))
        .unwrap_or("");
    let path = self_link.split('?').next().unwrap_or("");
    if resource_type("project") || (data.is_empty() && path.ends_with("/projects")) {
        Some(DocumentKind::ProjectsPage)
    } else if resource_type("issue") || (data.is_empty() && path.ends_with("/issues")) {
        Some(DocumentKind::IssuesPage)
    } else if data.is_empty() && object.contains_key("jsonapi") && path.is_empty() {
        // An empty page pasted without its links (an org or project with no issues): it adds
        // nothing whichever listing it came from.
        Some(DocumentKind::IssuesPage)
    } else {
        None
    }
}

/// Whether this is a Snyk REST projects page, REST issues page or v1 webhook body.
pub fn recognise(document: &Value) -> bool {
    classify(document).is_some()
}

fn malformed(index: usize, what: &str, reason: impl std::fmt::Display) -> PolicyError {
    PolicyError::malformed("snyk document", format!("document {} ({what}): {reason}", index + 1))
}

/// The raw events (one per project snapshot) that a set of documents stands for.
pub fn raw_events_from_documents(
    documents: &[Value],
    received_at: DateTime<Utc>,
) -> Result<Vec<RawEvent>, PolicyError> {
    let mut projects: Vec<(String, Project)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut issues: BTreeMap<String, Vec<Issue>> = BTreeMap::new();
    let mut webhooks: Vec<ProjectSnapshot> = Vec::new();
    for (n, document) in documents.iter().enumerate() {
        match classify(document) {
            None => {
                return Err(malformed(
                    n,
                    "unknown",
                    "not a Snyk REST projects page, REST issues page or v1 webhook body",
                ));
            }
            Some(DocumentKind::ProjectsPage) => {
                let page: crate::rest::ProjectsPage =
                    serde_json::from_value(document.clone()).map_err(|e| malformed(n, "projects page", e))?;
                for project in page.data {
                    let org = project
                        .relationships
                        .organization_id()
                        .ok_or_else(|| {
                            malformed(
                                n,
                                "projects page",
                                format!("project {} has no organization", project.id),
                            )
                        })?
                        .to_owned();
                    match index.get(&project.id) {
                        Some(&at) => projects[at] = (org, project),
                        None => {
                            index.insert(project.id.clone(), projects.len());
                            projects.push((org, project));
                        }
                    }
                }
            }
            Some(DocumentKind::IssuesPage) => {
                let page: crate::rest::IssuesPage =
                    serde_json::from_value(document.clone()).map_err(|e| malformed(n, "issues page", e))?;
                for issue in page.data {
                    let Some(project_id) = issue.project_id().map(str::to_owned) else { continue };
                    if !index.contains_key(&project_id) {
                        return Err(malformed(
                            n,
                            "issues page",
                            format!(
                                "issue {} belongs to project {project_id}, which no projects page before it lists",
                                issue.id
                            ),
                        ));
                    }
                    issues.entry(project_id).or_default().push(issue);
                }
            }
            Some(DocumentKind::WebhookBody) => {
                let body: WebhookBody =
                    serde_json::from_value(document.clone()).map_err(|e| malformed(n, "webhook body", e))?;
                let project = match index.get(&body.project.id) {
                    Some(&at) => projects[at].1.clone(),
                    None => {
                        project_from_webhook(&body).map_err(|reason| malformed(n, "webhook body", reason))?
                    }
                };
                let base_image = body
                    .project
                    .image_base_image
                    .clone()
                    .filter(|image| !image.trim().is_empty())
                    .map(|image| BaseImage { image, recommendations: Vec::new() });
                webhooks.push(ProjectSnapshot {
                    org_id: body.org.id.clone(),
                    status: SnapshotStatus::Active,
                    project,
                    issues: Vec::new(),
                    webhook_issues: body.new_issues,
                    base_image,
                });
            }
        }
    }
    let mut events: Vec<RawEvent> = projects
        .into_iter()
        .map(|(org, project)| {
            let project_issues = issues.remove(&project.id).unwrap_or_default();
            ProjectSnapshot::listed(&org, project, project_issues, None).to_raw_event(
                &rest_origin(&org),
                received_at,
                None,
            )
        })
        .collect();
    events.extend(
        webhooks
            .into_iter()
            .map(|s| s.to_raw_event(&format!("snyk-webhook:{}", s.org_id), received_at, None)),
    );
    Ok(events)
}

/// A REST-shaped project from a webhook's v1 project, when its target can be known without
/// parsing its name (GitHub: the repository URL).
fn project_from_webhook(body: &WebhookBody) -> Result<Project, String> {
    let v1 = &body.project;
    let origin = v1.origin.to_ascii_lowercase();
    let repository = GITHUB_ORIGINS
        .contains(&origin.as_str())
        .then(|| v1.remote_repo_url.as_deref().and_then(repository_from_url))
        .flatten()
        .ok_or_else(|| {
            format!(
                "project {} (origin {origin:?}) is not listed by a projects page before this webhook body, \
                 and its target cannot be told without one; give the projects page first",
                v1.id
            )
        })?;
    Ok(Project {
        id: v1.id.clone(),
        resource_type: "project".into(),
        attributes: ProjectAttributes {
            name: v1.name.clone(),
            project_type: v1.project_type.clone(),
            target_file: String::new(),
            target_reference: v1.branch.clone().unwrap_or_default(),
            origin,
            status: ProjectStatus::Active,
            business_criticality: v1.attributes.criticality.clone(),
            environment: v1.attributes.environment.clone(),
            lifecycle: v1.attributes.lifecycle.clone(),
            tags: v1.tags.clone(),
            other: Default::default(),
        },
        relationships: ProjectRelationships {
            target: TargetRelationship {
                data: TargetData {
                    id: String::new(),
                    resource_type: "target".into(),
                    attributes: Some(TargetAttributes {
                        display_name: Some(repository),
                        url: v1.remote_repo_url.clone(),
                    }),
                    other: Default::default(),
                },
                other: Default::default(),
            },
            other: Default::default(),
        },
        meta: None,
    })
}
