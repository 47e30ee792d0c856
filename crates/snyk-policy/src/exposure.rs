//! Exposure: Internet-facing or internal.
//!
//! Per project, from Snyk's `environment` attribute: it contains `external` → Internet-facing;
//! it contains `internal` (and not `external`) → internal; neither → unknown. The ownership
//! catalog can override it per target. A group (image or repository) takes its most exposed
//! project; an unknown exposure counts as the configured rule says (default Internet-facing),
//! and the ticket then says the exposure was assumed.

use serde::{Deserialize, Serialize};

/// What one project's attributes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectExposure {
    Internal,
    Unknown,
    InternetFacing,
}

impl ProjectExposure {
    /// From the `environment` values (`external`, `internal`, `frontend`…, any case).
    pub fn from_environment<S: AsRef<str>>(environment: &[S]) -> ProjectExposure {
        let has =
            |wanted: &str| environment.iter().any(|value| value.as_ref().trim().eq_ignore_ascii_case(wanted));
        if has("external") {
            ProjectExposure::InternetFacing
        } else if has("internal") {
            ProjectExposure::Internal
        } else {
            ProjectExposure::Unknown
        }
    }
}

/// The exposure a lane is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    InternetFacing,
    Internal,
}

impl Exposure {
    pub fn label(self) -> &'static str {
        match self {
            Exposure::InternetFacing => "Internet-facing",
            Exposure::Internal => "internal",
        }
    }
}

impl From<catalog::Exposure> for Exposure {
    fn from(value: catalog::Exposure) -> Self {
        match value {
            catalog::Exposure::InternetFacing => Exposure::InternetFacing,
            catalog::Exposure::Internal => Exposure::Internal,
        }
    }
}

/// Why a group has the exposure it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposureBasis {
    /// The ownership catalog says so for this target.
    Catalog,
    /// A project's `environment` says so (the first such project, by name).
    Project(String),
    /// No project says; the unknown-exposure rule applied.
    Assumed,
}

/// A group's exposure and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupExposure {
    pub exposure: Exposure,
    pub basis: ExposureBasis,
}

/// The exposure of a group from the catalog override and its projects' exposures (by name).
pub fn group_exposure<'a>(
    catalog_override: Option<catalog::Exposure>,
    projects: impl IntoIterator<Item = (&'a str, ProjectExposure)>,
    unknown_is: Exposure,
) -> GroupExposure {
    if let Some(exposure) = catalog_override {
        return GroupExposure { exposure: exposure.into(), basis: ExposureBasis::Catalog };
    }
    let mut most: Option<(ProjectExposure, &str)> = None;
    for (name, exposure) in projects {
        let better = match most {
            None => true,
            Some((current, current_name)) => {
                exposure > current || (exposure == current && name < current_name)
            }
        };
        if better {
            most = Some((exposure, name));
        }
    }
    match most {
        Some((ProjectExposure::InternetFacing, name)) => GroupExposure {
            exposure: Exposure::InternetFacing,
            basis: ExposureBasis::Project(name.to_owned()),
        },
        // An unknown project is at least as exposed as an internal one: the rule decides.
        Some((ProjectExposure::Unknown, _)) | None => {
            GroupExposure { exposure: unknown_is, basis: ExposureBasis::Assumed }
        }
        Some((ProjectExposure::Internal, name)) => {
            GroupExposure { exposure: Exposure::Internal, basis: ExposureBasis::Project(name.to_owned()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_environment_encoding() {
        assert_eq!(ProjectExposure::from_environment(&["external"]), ProjectExposure::InternetFacing);
        assert_eq!(
            ProjectExposure::from_environment(&["External", "hosted"]),
            ProjectExposure::InternetFacing
        );
        assert_eq!(ProjectExposure::from_environment(&["internal"]), ProjectExposure::Internal);
        assert_eq!(ProjectExposure::from_environment(&["backend", "Internal"]), ProjectExposure::Internal);
        assert_eq!(
            ProjectExposure::from_environment(&["internal", "external"]),
            ProjectExposure::InternetFacing,
            "a project that says both is exposed"
        );
        assert_eq!(ProjectExposure::from_environment::<&str>(&[]), ProjectExposure::Unknown);
        assert_eq!(ProjectExposure::from_environment(&["frontend", "saas"]), ProjectExposure::Unknown);
    }

    #[test]
    fn the_catalog_overrides_and_the_most_exposed_project_wins() {
        let internal = [("a", ProjectExposure::Internal), ("b", ProjectExposure::InternetFacing)];
        let g = group_exposure(None, internal, Exposure::Internal);
        assert_eq!(
            g,
            GroupExposure { exposure: Exposure::InternetFacing, basis: ExposureBasis::Project("b".into()) }
        );
        let g = group_exposure(Some(catalog::Exposure::Internal), internal, Exposure::InternetFacing);
        assert_eq!(g, GroupExposure { exposure: Exposure::Internal, basis: ExposureBasis::Catalog });
        let g = group_exposure(Some(catalog::Exposure::InternetFacing), [], Exposure::Internal);
        assert_eq!(g.exposure, Exposure::InternetFacing);
    }

    #[test]
    fn unknown_follows_the_rule_and_is_marked_assumed() {
        let unknown = [("a", ProjectExposure::Unknown), ("b", ProjectExposure::Internal)];
        let g = group_exposure(None, unknown, Exposure::InternetFacing);
        assert_eq!(g, GroupExposure { exposure: Exposure::InternetFacing, basis: ExposureBasis::Assumed });
        let g = group_exposure(None, unknown, Exposure::Internal);
        assert_eq!(g, GroupExposure { exposure: Exposure::Internal, basis: ExposureBasis::Assumed });
        let g = group_exposure(None, [("only", ProjectExposure::Internal)], Exposure::InternetFacing);
        assert_eq!(
            g,
            GroupExposure { exposure: Exposure::Internal, basis: ExposureBasis::Project("only".into()) }
        );
    }
}
