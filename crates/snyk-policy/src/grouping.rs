//! Grouping: one ticket per container image repository or per GitHub repository.
//!
//! A group is found from the project's *target* (`relationships.target`, fetched with
//! `expand=target`), never from the project's name:
//!
//! * container registries (`ecr`, `acr`, `gcr`, `docker-hub`, …): the image repository, i.e.
//!   the target's display name without a tag or digest, so every tag and both the OS and the
//!   application projects inside each image fall into one group;
//! * GitHub (`github`, `github-cloud-app`, `github-server-app`, `github-enterprise`): the
//!   repository `owner/repo` (case-insensitive, as GitHub is), across all four origins, every
//!   manifest and the Snyk Code project.
//!
//! Other origins (CLI, GitLab, Bitbucket, Kubernetes…) are not ticketed.

use contracts::{GroupKey, Source};
use serde::{Deserialize, Serialize};
use triage_policy::PolicyError;

use crate::rest::Project;

/// Registry origins whose projects are container images.
pub const CONTAINER_ORIGINS: [&str; 12] = [
    "ecr",
    "acr",
    "gcr",
    "google-artifact-cr",
    "docker-hub",
    "github-cr",
    "gitlab-cr",
    "artifactory-cr",
    "harbor-cr",
    "quay-cr",
    "nexus-cr",
    "digitalocean-cr",
];

/// The origins of one GitHub repository.
pub const GITHUB_ORIGINS: [&str; 4] =
    ["github", "github-cloud-app", "github-server-app", "github-enterprise"];

/// What a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    ContainerImage,
    GithubRepository,
}

/// The identity of a group: its kind, the family token in its key and its target name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupIdentity {
    pub kind: TargetKind,
    /// `ecr`, `acr`, … for images; `github` for repositories.
    pub family: String,
    /// `<registry>/<repository>` or `owner/repo`, as Snyk displays it (the name the catalog
    /// matches).
    pub target: String,
}

impl GroupIdentity {
    /// The part of the key that identifies the target (GitHub names are case-insensitive).
    fn key_target(&self) -> String {
        match self.kind {
            TargetKind::ContainerImage => self.target.clone(),
            TargetKind::GithubRepository => self.target.to_ascii_lowercase(),
        }
    }

    /// `snyk/ecr/<registry>/<repository>` or `snyk/github/<owner>/<repo>`.
    pub fn group_key(&self) -> GroupKey {
        GroupKey::new(Source::Snyk, [self.family.as_str(), self.key_target().as_str()])
    }

    /// The key of the group's state in triage's bucket.
    pub fn state_key(&self) -> String {
        triage_policy::state_key("snyk", &[&self.family, &self.key_target()])
    }

    /// "container image X" / "GitHub repository X".
    pub fn describe(&self) -> String {
        match self.kind {
            TargetKind::ContainerImage => format!("container image {}", self.target),
            TargetKind::GithubRepository => format!("GitHub repository {}", self.target),
        }
    }
}

/// The group a project belongs to.
pub fn group_of(project: &Project) -> Result<GroupIdentity, PolicyError> {
    let origin = project.attributes.origin.trim().to_ascii_lowercase();
    let kind = if CONTAINER_ORIGINS.contains(&origin.as_str()) {
        TargetKind::ContainerImage
    } else if GITHUB_ORIGINS.contains(&origin.as_str()) {
        TargetKind::GithubRepository
    } else {
        return Err(PolicyError::Ignored(format!(
            "project {} comes from origin {origin:?}; only container registries and GitHub are ticketed",
            project.id
        )));
    };
    let display = project.target_display_name().ok_or_else(|| {
        PolicyError::malformed(
            "snyk project",
            format!(
                "project {} has no target display name (the projects page must be fetched with expand=target)",
                project.id
            ),
        )
    })?;
    let (family, target) = match kind {
        TargetKind::ContainerImage => (origin, image_repository(display)),
        TargetKind::GithubRepository => ("github".to_owned(), display.trim().trim_matches('/').to_owned()),
    };
    if target.is_empty() {
        return Err(PolicyError::malformed(
            "snyk project",
            format!("project {} has an empty target", project.id),
        ));
    }
    Ok(GroupIdentity { kind, family, target })
}

/// An image reference without its tag or digest: `reg:5000/team/app:1.2@sha256:…` →
/// `reg:5000/team/app` (a `:` before the last `/` is a registry port, not a tag).
pub fn image_repository(reference: &str) -> String {
    let reference = reference.trim();
    let without_digest = reference.split_once('@').map(|(name, _)| name).unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match without_digest[last_slash..].find(':') {
        Some(colon) => without_digest[..last_slash + colon].to_owned(),
        None => without_digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{
        ProjectAttributes, ProjectRelationships, ProjectStatus, TargetAttributes, TargetData,
        TargetRelationship,
    };
    use proptest::prelude::*;

    pub(crate) fn project(id: &str, name: &str, origin: &str, target: &str, reference: &str) -> Project {
        Project {
            id: id.into(),
            resource_type: "project".into(),
            attributes: ProjectAttributes {
                name: name.into(),
                project_type: "deb".into(),
                target_file: String::new(),
                target_reference: reference.into(),
                origin: origin.into(),
                status: ProjectStatus::Active,
                business_criticality: vec![],
                environment: vec![],
                lifecycle: vec![],
                tags: vec![],
                other: Default::default(),
            },
            relationships: ProjectRelationships {
                target: TargetRelationship {
                    data: TargetData {
                        id: format!("target-{target}"),
                        resource_type: "target".into(),
                        attributes: Some(TargetAttributes { display_name: Some(target.into()), url: None }),
                        other: Default::default(),
                    },
                    other: Default::default(),
                },
                other: Default::default(),
            },
            meta: None,
        }
    }

    #[test]
    fn image_references() {
        assert_eq!(
            image_repository("1234.dkr.ecr.eu-west-1.amazonaws.com/payments-api"),
            "1234.dkr.ecr.eu-west-1.amazonaws.com/payments-api"
        );
        assert_eq!(
            image_repository("1234.dkr.ecr.eu-west-1.amazonaws.com/payments-api:2.7.3"),
            "1234.dkr.ecr.eu-west-1.amazonaws.com/payments-api"
        );
        assert_eq!(image_repository("reg:5000/team/app:1.2@sha256:abc"), "reg:5000/team/app");
        assert_eq!(image_repository("reg:5000/team/app"), "reg:5000/team/app");
        assert_eq!(image_repository("debian"), "debian");
    }

    #[test]
    fn the_project_name_plays_no_part() {
        let a =
            project("1", "something/else:latest", "ecr", "1234.dkr.ecr.eu-west-1.amazonaws.com/app", "1.0");
        let group = group_of(&a).unwrap();
        assert_eq!(group.target, "1234.dkr.ecr.eu-west-1.amazonaws.com/app");
        assert_eq!(group.group_key().as_str(), "snyk/ecr/1234.dkr.ecr.eu-west-1.amazonaws.com/app");
    }

    #[test]
    fn unsupported_origins_are_ignored_and_unexpanded_targets_are_malformed() {
        let cli = project("1", "x", "cli", "x", "");
        assert!(matches!(group_of(&cli), Err(PolicyError::Ignored(_))));
        let mut bare = project("1", "x", "ecr", "x", "");
        bare.relationships.target.data.attributes = None;
        let err = group_of(&bare).unwrap_err();
        assert!(err.to_string().contains("expand=target"), "{err}");
    }

    fn tag() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9._-]{0,10}"
    }

    proptest! {
        /// Every tag and project type of one image repository is one group.
        #[test]
        fn all_tags_of_an_image_are_one_group(
            repo in "[a-z][a-z0-9-]{0,12}",
            tags in proptest::collection::vec(tag(), 1..6),
            origin in proptest::sample::select(CONTAINER_ORIGINS.to_vec()),
        ) {
            let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
            let base = format!("{registry}/{repo}");
            let groups: Vec<GroupIdentity> = tags.iter().enumerate().map(|(i, t)| {
                // Some targets are displayed with their tag, some without.
                let display = if i % 2 == 0 { format!("{base}:{t}") } else { base.clone() };
                group_of(&project(&i.to_string(), &format!("random name {i}"), origin, &display, t)).unwrap()
            }).collect();
            prop_assert!(groups.iter().all(|g| g == &groups[0]));
            prop_assert_eq!(&groups[0].target, &base);
        }

        /// A GitHub repository is one group across the four GitHub origins and any case.
        #[test]
        fn a_repository_is_one_group_across_origins(
            owner in "[A-Za-z][A-Za-z0-9-]{0,8}",
            repo in "[A-Za-z][A-Za-z0-9._-]{0,8}",
            origins in proptest::collection::vec(proptest::sample::select(GITHUB_ORIGINS.to_vec()), 1..6),
        ) {
            let keys: Vec<String> = origins.iter().enumerate().map(|(i, origin)| {
                let name = if i % 2 == 0 { format!("{owner}/{repo}") } else { format!("{owner}/{repo}").to_uppercase() };
                group_of(&project(&i.to_string(), "p", origin, &name, "main")).unwrap().state_key()
            }).collect();
            prop_assert!(keys.iter().all(|k| k == &keys[0]));
        }

        /// Different repositories never share a group.
        #[test]
        fn different_targets_are_different_groups(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            prop_assume!(a != b);
            let ga = group_of(&project("1", "p", "ecr", &format!("reg/{a}"), "1")).unwrap();
            let gb = group_of(&project("2", "p", "ecr", &format!("reg/{b}"), "1")).unwrap();
            prop_assert_ne!(ga.state_key(), gb.state_key());
            let image = group_of(&project("3", "p", "ecr", &format!("{a}/{b}"), "1")).unwrap();
            let repository = group_of(&project("4", "p", "github", &format!("{a}/{b}"), "main")).unwrap();
            prop_assert_ne!(image.state_key(), repository.state_key());
        }
    }
}
