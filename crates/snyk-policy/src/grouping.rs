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
//! The name is normalised once ([`GroupIdentity::target`]: lower case, no tag or digest, no
//! surrounding slashes), and both the group key and the catalog's rules use that one name, so
//! which project of a group arrives first never matters. The key also carries what makes the
//! name unique ([`GroupIdentity::scope`]): an image name with its registry host (an ECR
//! account and Region) is unique as it is; a bare image name (`payments-api`) is unique only in
//! its org, so the org is part of the key; a GitHub Enterprise repository carries its host.
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

/// Other source-control origins, with the family of their key and the host their SaaS lives
/// on (a target URL on another host is a self-hosted instance: part of the key).
pub const SOURCE_ORIGINS: [(&str, &str, Option<&str>); 6] = [
    ("gitlab", "gitlab", Some("gitlab.com")),
    ("bitbucket-cloud", "bitbucket-cloud", Some("bitbucket.org")),
    ("bitbucket-connect-app", "bitbucket-cloud", Some("bitbucket.org")),
    ("bitbucket-server", "bitbucket-server", None),
    ("azure-repos", "azure-repos", Some("dev.azure.com")),
    ("azure-repos-server", "azure-repos", None),
];

/// Projects Snyk monitors from the CLI or the API: no registry or repository behind them.
pub const MONITORED_ORIGINS: [&str; 2] = ["cli", "api"];

/// Which kinds of target are ticketed (`--snyk-ticketed-origins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum OriginClass {
    /// Container registries (ECR, ACR, GCR / Artifact Registry, Docker Hub, Quay, Harbor, …).
    Container,
    /// GitHub in all its variants.
    Github,
    /// GitLab, Bitbucket Cloud and Server, Azure Repos.
    Scm,
    /// The Snyk CLI and API.
    Cli,
}

/// What a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    ContainerImage,
    GithubRepository,
    /// A GitLab, Bitbucket or Azure Repos repository.
    SourceRepository,
    /// A target monitored from the CLI or the API, known only by its name.
    MonitoredTarget,
}

impl TargetKind {
    pub fn origin_class(self) -> OriginClass {
        match self {
            TargetKind::ContainerImage => OriginClass::Container,
            TargetKind::GithubRepository => OriginClass::Github,
            TargetKind::SourceRepository => OriginClass::Scm,
            TargetKind::MonitoredTarget => OriginClass::Cli,
        }
    }
}

/// The identity of a group: its kind, the family token in its key and its target name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupIdentity {
    pub kind: TargetKind,
    /// `ecr`, `acr`, … for images; `github` for repositories.
    pub family: String,
    /// `<registry>/<repository>` or `owner/repo`, normalised (lower case, no tag): the name
    /// the catalog matches.
    pub target: String,
    /// What makes `target` unique beyond itself: `org:<org id>` for an image name without a
    /// registry host, or a GitHub Enterprise Server host; none for an image with its registry
    /// host or a github.com repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl GroupIdentity {
    /// The parts of the key after `snyk`: family, scope when there is one, target.
    fn key_parts(&self) -> Vec<&str> {
        let mut parts = vec![self.family.as_str()];
        parts.extend(self.scope.as_deref());
        parts.push(&self.target);
        parts
    }

    /// `snyk/ecr/<registry>/<repository>`, `snyk/ecr/org:<org>/<repository>`,
    /// `snyk/github/<owner>/<repo>` or `snyk/github/<host>/<owner>/<repo>`.
    pub fn group_key(&self) -> GroupKey {
        GroupKey::new(Source::Snyk, self.key_parts())
    }

    /// The key of the group's state in triage's bucket.
    pub fn state_key(&self) -> String {
        triage_policy::state_key("snyk", &self.key_parts())
    }

    /// "container image X" / "GitHub repository X", with the scope when there is one.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            TargetKind::ContainerImage => "container image".to_owned(),
            TargetKind::GithubRepository => "GitHub repository".to_owned(),
            TargetKind::SourceRepository => format!("{} repository", self.family),
            TargetKind::MonitoredTarget => "CLI-monitored target".to_owned(),
        };
        match (&self.scope, self.kind) {
            (Some(scope), TargetKind::ContainerImage | TargetKind::MonitoredTarget) => {
                format!("{what} {} ({scope})", self.target)
            }
            (Some(host), _) => format!("{what} {host}/{}", self.target),
            (None, _) => format!("{what} {}", self.target),
        }
    }
}

/// The group a project of org `org_id` belongs to.
pub fn group_of(project: &Project, org_id: &str) -> Result<GroupIdentity, PolicyError> {
    let origin = project.attributes.origin.trim().to_ascii_lowercase();
    let source = SOURCE_ORIGINS.iter().find(|(name, _, _)| *name == origin);
    let kind = if CONTAINER_ORIGINS.contains(&origin.as_str()) {
        TargetKind::ContainerImage
    } else if GITHUB_ORIGINS.contains(&origin.as_str()) {
        TargetKind::GithubRepository
    } else if source.is_some() {
        TargetKind::SourceRepository
    } else if MONITORED_ORIGINS.contains(&origin.as_str()) {
        TargetKind::MonitoredTarget
    } else {
        return Err(PolicyError::Ignored(format!(
            "project {} comes from origin {:?}, which is neither a container registry, a source-control system nor the CLI",
            project.id,
            origin.escape_debug().to_string()
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
    let target = normalised_target(kind, display);
    if target.is_empty() {
        return Err(PolicyError::malformed(
            "snyk project",
            format!("project {} has an empty target", project.id),
        ));
    }
    let (family, scope) = match kind {
        TargetKind::ContainerImage => {
            let scope = (!has_registry_host(&target)).then(|| format!("org:{}", org_id.to_ascii_lowercase()));
            (origin, scope)
        }
        TargetKind::GithubRepository => {
            // GitHub Enterprise Cloud is on github.com too: only another host in the target's
            // URL makes it another repository.
            ("github".to_owned(), target_host(project).filter(|h| h != "github.com" && h != "www.github.com"))
        }
        TargetKind::SourceRepository => {
            let (_, family, saas_host) = source.expect("a source-control origin");
            // A self-hosted instance is keyed by its host; without a URL, by the org.
            let scope = match (target_host(project), saas_host) {
                (Some(host), Some(saas)) if host == *saas || host.ends_with(&format!(".{saas}")) => None,
                (Some(host), _) => Some(host),
                (None, Some(_)) => None,
                (None, None) => Some(format!("org:{}", org_id.to_ascii_lowercase())),
            };
            ((*family).to_owned(), scope)
        }
        // Names given on the command line are unique only within their org.
        TargetKind::MonitoredTarget => (origin, Some(format!("org:{}", org_id.to_ascii_lowercase()))),
    };
    Ok(GroupIdentity { kind, family, target, scope })
}

/// The one name of a target, for the key and for the catalog: lower case (registry hosts and
/// GitHub names are case-insensitive, image paths are lower case), without tag or digest.
pub fn normalised_target(kind: TargetKind, display: &str) -> String {
    let name = match kind {
        TargetKind::ContainerImage => image_repository(display),
        _ => display.trim().to_owned(),
    };
    name.trim_matches('/').to_ascii_lowercase()
}

/// Whether an image name starts with a registry host, by Docker's rule: a first component
/// with a `.` or a `:`, or `localhost`.
fn has_registry_host(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// The host of the target's URL (`https://ghe.acme.internal/…` → `ghe.acme.internal`), lower
/// case, without user info.
fn target_host(project: &Project) -> Option<String> {
    let url = project.relationships.target.data.attributes.as_ref()?.url.as_deref()?;
    let (_, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Without user info; the port is part of the host's identity.
    let host = authority.rsplit('@').next()?.to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
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

    const ORG: &str = "0E8A0000-0000-4000-8000-0000000000C4";

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
        let group = group_of(&a, ORG).unwrap();
        assert_eq!(group.target, "1234.dkr.ecr.eu-west-1.amazonaws.com/app");
        assert_eq!(group.group_key().as_str(), "snyk/ecr/1234.dkr.ecr.eu-west-1.amazonaws.com/app");
    }

    #[test]
    fn unsupported_origins_are_ignored_and_unexpanded_targets_are_malformed() {
        let kubernetes = project("1", "x", "kubernetes", "x", "");
        assert!(matches!(group_of(&kubernetes, ORG), Err(PolicyError::Ignored(_))));
        let mut bare = project("1", "x", "ecr", "x", "");
        bare.relationships.target.data.attributes = None;
        let err = group_of(&bare, ORG).unwrap_err();
        assert!(err.to_string().contains("expand=target"), "{err}");
    }

    #[test]
    fn the_key_carries_the_registry_host_else_the_org_and_the_enterprise_host() {
        let bare = project("1", "p", "ecr", "payments-api", "2.7.3");
        let in_a = group_of(&bare, ORG).unwrap();
        let in_b = group_of(&bare, "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").unwrap();
        assert_eq!(
            in_a.group_key().as_str(),
            "snyk/ecr/org:0e8a0000-0000-4000-8000-0000000000c4/payments-api"
        );
        assert_ne!(in_a.group_key(), in_b.group_key(), "two orgs' bare names are two groups");
        assert_eq!(in_a.target, "payments-api", "the catalog matches the name alone");
        let hosted =
            project("2", "p", "ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-api", "1");
        assert_eq!(
            group_of(&hosted, ORG).unwrap(),
            group_of(&hosted, "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").unwrap(),
            "a name with its registry host is the same image in every org"
        );
        let other_region =
            project("3", "p", "ecr", "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments-api", "1");
        assert_ne!(
            group_of(&hosted, ORG).unwrap().state_key(),
            group_of(&other_region, ORG).unwrap().state_key()
        );
        assert_eq!(
            group_of(&project("4", "p", "harbor-cr", "localhost:5000/app", "1"), ORG).unwrap().scope,
            None
        );

        let mut enterprise = project("5", "p", "github-enterprise", "Acme/Checkout", "main");
        enterprise.relationships.target.data.attributes.as_mut().unwrap().url =
            Some("https://GHE.acme.internal/Acme/Checkout".into());
        let group = group_of(&enterprise, ORG).unwrap();
        assert_eq!(group.group_key().as_str(), "snyk/github/ghe.acme.internal/acme/checkout");
        assert_eq!(group.describe(), "GitHub repository ghe.acme.internal/acme/checkout");
        let cloud = group_of(&project("6", "p", "github", "acme/checkout", "main"), ORG).unwrap();
        assert_eq!(cloud.group_key().as_str(), "snyk/github/acme/checkout");
        assert_ne!(
            cloud.state_key(),
            group.state_key(),
            "github.com and an Enterprise host are two repositories"
        );
    }

    #[test]
    fn every_source_control_origin_is_grouped_per_repository_and_the_cli_by_name() {
        let key = |origin: &str, name: &str, url: Option<&str>| {
            let mut p = project("1", "p", origin, name, "main");
            p.relationships.target.data.attributes.as_mut().unwrap().url = url.map(str::to_owned);
            group_of(&p, ORG).unwrap().group_key().to_string()
        };
        assert_eq!(key("gitlab", "Acme/Web", Some("https://gitlab.com/Acme/Web")), "snyk/gitlab/acme/web");
        assert_eq!(
            key("gitlab", "acme/web", Some("https://git.acme.internal/acme/web")),
            "snyk/gitlab/git.acme.internal/acme/web"
        );
        assert_eq!(key("bitbucket-connect-app", "acme/web", None), key("bitbucket-cloud", "ACME/web", None));
        assert_eq!(
            key("bitbucket-server", "ACME/web", None),
            "snyk/bitbucket-server/org:0e8a0000-0000-4000-8000-0000000000c4/acme/web"
        );
        assert_eq!(
            key("azure-repos", "acme/payments/web", Some("https://dev.azure.com/acme/payments/_git/web")),
            "snyk/azure-repos/acme/payments/web"
        );
        assert_eq!(
            key("cli", "payments-worker", None),
            "snyk/cli/org:0e8a0000-0000-4000-8000-0000000000c4/payments-worker"
        );
        let cli = group_of(&project("1", "p", "api", "Batch", "1"), ORG).unwrap();
        assert_eq!(cli.kind.origin_class(), OriginClass::Cli);
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
                group_of(&project(&i.to_string(), &format!("random name {i}"), origin, &display, t), ORG).unwrap()
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
                group_of(&project(&i.to_string(), "p", origin, &name, "main"), ORG).unwrap().state_key()
            }).collect();
            prop_assert!(keys.iter().all(|k| k == &keys[0]));
        }

        /// Different repositories never share a group.
        #[test]
        fn different_targets_are_different_groups(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            prop_assume!(a != b);
            let ga = group_of(&project("1", "p", "ecr", &format!("reg.io/{a}"), "1"), ORG).unwrap();
            let gb = group_of(&project("2", "p", "ecr", &format!("reg.io/{b}"), "1"), ORG).unwrap();
            prop_assert_ne!(ga.state_key(), gb.state_key());
            let image = group_of(&project("3", "p", "ecr", &format!("{a}/{b}"), "1"), ORG).unwrap();
            let repository = group_of(&project("4", "p", "github", &format!("{a}/{b}"), "main"), ORG).unwrap();
            prop_assert_ne!(image.state_key(), repository.state_key());
        }
    }
}
