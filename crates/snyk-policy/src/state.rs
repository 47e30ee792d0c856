//! What triage remembers per group: each project's last snapshot, reduced to what the policy
//! needs (exposure, tags, qualifying findings), and the group's due date.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contracts::Lane;
use serde::{Deserialize, Serialize};

use crate::due::DueRecord;
use crate::exposure::ProjectExposure;
use crate::feeds::KevCatalog;
use crate::grouping::GroupIdentity;
use crate::maturity::Maturity;
use crate::rest::{Issue, IssueStatus, Tag};
use crate::settings::SnykSettings;
use crate::severity::Severity;
use crate::snapshot::{BaseImage, ProjectSnapshot, SnapshotStatus};
use crate::webhook::WebhookIssue;

/// The state of one group (one image repository or one GitHub repository).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupIdentity>,
    /// Project id → its last snapshot. Inactive and disappeared projects stay as tombstones
    /// (no findings), so an older snapshot arriving late cannot bring them back.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectRecord>,
    /// The due date while the group qualifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DueRecord>,
    /// The last open ticket's lane and team, once the group has had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ticket: Option<LastTicket>,
    /// Every qualifying finding key seen since the group last began to qualify: the total of
    /// the ticket's progress (kept after resolution, so a resolved ticket says "0 of N").
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub qualified_keys: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTicket {
    pub lane: Lane,
    pub team: String,
}

/// One project as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub org_id: String,
    pub name: String,
    pub origin: String,
    pub project_type: String,
    /// Image tag or branch.
    #[serde(default)]
    pub target_reference: String,
    #[serde(default)]
    pub target_file: String,
    pub status: SnapshotStatus,
    pub exposure: ProjectExposure,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Qualifying findings only (at or above the floor, open, not ignored).
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<BaseImage>,
    pub observed_at: DateTime<Utc>,
}

impl ProjectRecord {
    pub fn is_active(&self) -> bool {
        self.status == SnapshotStatus::Active
    }

    /// Whether the project scans the image's operating system packages.
    pub fn is_os_project(&self) -> bool {
        matches!(self.project_type.as_str(), "deb" | "apk" | "rpm" | "linux" | "dockerfile")
    }

    /// The record of a snapshot, keeping only qualifying findings.
    pub fn from_snapshot(
        snapshot: &ProjectSnapshot,
        settings: &SnykSettings,
        kev_below_floor: Option<&KevCatalog>,
        observed_at: DateTime<Utc>,
    ) -> Self {
        let attributes = &snapshot.project.attributes;
        let findings = if snapshot.status == SnapshotStatus::Active {
            let rest = snapshot
                .issues
                .iter()
                .filter_map(|issue| Finding::from_rest(issue, settings, kev_below_floor));
            let v1 = snapshot
                .webhook_issues
                .iter()
                .filter_map(|issue| Finding::from_webhook(issue, settings, kev_below_floor));
            let mut findings: Vec<Finding> = rest.chain(v1).collect();
            findings.sort();
            findings.dedup();
            findings
        } else {
            Vec::new()
        };
        let mut tags = attributes.tags.clone();
        tags.sort();
        ProjectRecord {
            org_id: snapshot.org_id.clone(),
            name: attributes.name.clone(),
            origin: attributes.origin.clone(),
            project_type: attributes.project_type.clone(),
            target_reference: attributes.target_reference.clone(),
            target_file: attributes.target_file.clone(),
            status: snapshot.status,
            exposure: ProjectExposure::from_environment(&attributes.environment),
            tags,
            findings,
            base_image: snapshot.base_image.clone(),
            observed_at,
        }
    }
}

/// A qualifying finding, normalised from either REST or v1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// The Snyk issue key (`SNYK-…`), the same in every project it appears in.
    pub key: String,
    pub title: String,
    pub severity: Severity,
    pub issue_type: String,
    /// `name@version` (or a file for Snyk Code).
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub cves: Vec<String>,
    pub maturity: Maturity,
    /// How it can be fixed, in words (`upgradable`, `fixed upstream`…); empty when no fix.
    #[serde(default)]
    pub fixes: Vec<String>,
}

/// Issue types that are not vulnerabilities (licence policy findings, cloud and IaC
/// misconfigurations): never ticketed by this policy.
pub const NOT_VULNERABILITIES: [&str; 4] = ["license", "cloud", "config", "custom"];

/// Whether a finding counts: at or above the floor, open, not ignored.
pub fn qualifies(severity: Severity, open: bool, ignored: bool, floor: Severity) -> bool {
    severity >= floor && open && !ignored
}

/// Whether the catalog (when given) lists one of these CVEs.
fn listed(catalog: Option<&KevCatalog>, cves: &[String]) -> bool {
    catalog.is_some_and(|kev| {
        cves.iter().any(|c| {
            kev.get(c).is_some() || crate::feeds::canonical_cve(c).is_some_and(|c| kev.get(&c).is_some())
        })
    })
}

impl Finding {
    /// `kev_below_floor`: the KEV catalog when a listed finding below the floor still
    /// qualifies (off by default).
    pub fn from_rest(
        issue: &Issue,
        settings: &SnykSettings,
        kev_below_floor: Option<&KevCatalog>,
    ) -> Option<Finding> {
        let a = &issue.attributes;
        if NOT_VULNERABILITIES.contains(&a.issue_type.as_str()) {
            return None;
        }
        // An unknown severity cannot be placed against the floor; ingest counts it.
        let severity = a.effective_severity_level.known()?;
        let open = a.status == IssueStatus::Open;
        // Below the floor a KEV-listed finding still counts when asked (off by default).
        let exempt = || open && !a.ignored && listed(kev_below_floor, &issue.cves());
        if !(qualifies(severity, open, a.ignored, settings.severity_floor) || exempt()) {
            return None;
        }
        let mut packages: Vec<String> =
            a.coordinates.iter().flat_map(|c| c.packages().chain(c.files())).collect();
        packages.sort();
        packages.dedup();
        let mut fixes = Vec::new();
        let any = |pick: fn(&crate::rest::Coordinate) -> Option<bool>| {
            a.coordinates.iter().any(|c| pick(c) == Some(true))
        };
        for (present, words) in [
            (any(|c| c.is_upgradeable), "upgradable"),
            (any(|c| c.is_pinnable), "pinnable"),
            (any(|c| c.is_patchable), "patchable"),
            (any(|c| c.is_fixable_upstream), "fixed upstream"),
            (any(|c| c.is_fixable_snyk), "fixable by Snyk"),
            (any(|c| c.is_fixable_manually), "fixable manually"),
        ] {
            if present {
                fixes.push(words.to_owned());
            }
        }
        let maturity = a
            .exploit_details
            .as_ref()
            .map(|d| Maturity::from_levels(&d.maturity_levels, settings.functional_is_mature))
            .unwrap_or(Maturity::NoData);
        Some(Finding {
            key: a.key.clone(),
            title: a.title.clone(),
            severity,
            issue_type: a.issue_type.clone(),
            packages,
            cves: issue.cves(),
            maturity,
            fixes,
        })
    }

    pub fn from_webhook(
        issue: &WebhookIssue,
        settings: &SnykSettings,
        kev_below_floor: Option<&KevCatalog>,
    ) -> Option<Finding> {
        let data = &issue.issue_data;
        if issue.issue_type.as_deref().is_some_and(|t| NOT_VULNERABILITIES.contains(&t)) {
            return None;
        }
        let severity = data.severity.known()?;
        let cves = data.identifiers.as_ref().map_or(&[][..], |i| i.cve.as_slice());
        let exempt = || !issue.is_ignored && listed(kev_below_floor, cves);
        if !(qualifies(severity, true, issue.is_ignored, settings.severity_floor) || exempt()) {
            return None;
        }
        let mut packages: Vec<String> = match &issue.pkg_name {
            Some(name) if issue.pkg_versions.is_empty() => vec![name.clone()],
            Some(name) => issue.pkg_versions.iter().map(|v| format!("{name}@{v}")).collect(),
            None => Vec::new(),
        };
        packages.sort();
        packages.dedup();
        let mut fixes = Vec::new();
        if let Some(fix) = &issue.fix_info {
            for (present, words) in [
                (fix.is_upgradable, "upgradable"),
                (fix.is_pinnable, "pinnable"),
                (fix.is_patchable, "patchable"),
                (
                    fix.is_fixable && !fix.is_upgradable && !fix.is_pinnable && !fix.is_patchable,
                    "fixed upstream",
                ),
            ] {
                if present {
                    fixes.push(words.to_owned());
                }
            }
        }
        let mut cves = data.identifiers.as_ref().map(|i| i.cve.clone()).unwrap_or_default();
        cves.sort();
        cves.dedup();
        Some(Finding {
            key: issue.id.clone(),
            title: data.title.clone().unwrap_or_else(|| issue.id.clone()),
            severity,
            issue_type: issue.issue_type.clone().unwrap_or_else(|| "vuln".into()),
            packages,
            cves,
            maturity: issue.maturity(settings.functional_is_mature),
            fixes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn severity() -> impl Strategy<Value = Severity> {
        prop_oneof![
            Just(Severity::Info),
            Just(Severity::Low),
            Just(Severity::Medium),
            Just(Severity::High),
            Just(Severity::Critical)
        ]
    }

    proptest! {
        #[test]
        fn only_open_unignored_findings_at_or_above_the_floor_qualify(
            s in severity(), floor in severity(), open in any::<bool>(), ignored in any::<bool>()
        ) {
            let q = qualifies(s, open, ignored, floor);
            prop_assert_eq!(q, open && !ignored && s >= floor);
            if floor == Severity::Critical {
                prop_assert_eq!(q, open && !ignored && s == Severity::Critical);
            }
        }
    }
}
