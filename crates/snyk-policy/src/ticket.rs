//! The desired ticket of a group: summary, body (findings, why this lane, due date, owner, base
//! image), links to Snyk.

use std::collections::{BTreeMap, BTreeSet};

use contracts::{
    DesiredTicket, DueDate, DueDateSource, Lane, Progress, Source, TicketBody, TicketItem, TicketState,
    UpstreamLink,
};

use crate::exposure::{ExposureBasis, ProjectExposure};
use crate::grouping::{GroupIdentity, TargetKind};
use crate::maturity::Maturity;
use crate::severity::Severity;
use crate::state::{GroupState, LastTicket, ProjectRecord};
use crate::{DueDecision, Evaluation, MatureBy, OwnerBasis, SnykPolicy};

const SUMMARY_LIMIT: usize = 250;
const PROJECTS_LISTED: usize = 30;

fn summary(policy: &SnykPolicy, group: &GroupIdentity) -> String {
    let what = match policy.settings().severity_floor {
        Severity::Critical => "Critical vulnerabilities".to_owned(),
        floor => format!("Vulnerabilities ({floor} and above)"),
    };
    let text = format!("{what} in {}", group.describe());
    if text.len() <= SUMMARY_LIMIT {
        return text;
    }
    // Too long: the name is what a reader scans a board for, so the words go first, and of a
    // name still too long its end (the repository) is kept.
    let name = &group.target;
    if name.len() <= SUMMARY_LIMIT {
        return name.clone();
    }
    let ellipsis = "…";
    let mut start = name.len() - (SUMMARY_LIMIT - ellipsis.len());
    while !name.is_char_boundary(start) {
        start += 1;
    }
    format!("{ellipsis}{}", &name[start..])
}

fn labels(group: &GroupIdentity) -> Vec<String> {
    let kind = match group.kind {
        TargetKind::ContainerImage => "snyk-image",
        TargetKind::GithubRepository | TargetKind::SourceRepository => "snyk-repository",
        TargetKind::MonitoredTarget => "snyk-cli-target",
    };
    vec!["snyk".into(), kind.into()]
}

fn project_url(policy: &SnykPolicy, org_id: &str, project_id: &str) -> String {
    format!("{}/org/{org_id}/project/{project_id}", policy.settings().app_url.trim_end_matches('/'))
}

/// "tags" for images, "branches" for repositories.
fn reference_word(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::ContainerImage => "Tags",
        TargetKind::GithubRepository | TargetKind::SourceRepository => "Branches",
        TargetKind::MonitoredTarget => "References",
    }
}

/// One finding across the projects it appears in.
#[derive(Default)]
struct Item<'a> {
    title: &'a str,
    severity: Option<Severity>,
    packages: BTreeSet<&'a str>,
    cves: BTreeSet<&'a str>,
    maturity: Option<Maturity>,
    fixes: BTreeSet<&'a str>,
    projects: BTreeSet<&'a str>,
    references: BTreeSet<&'a str>,
    project_tags: BTreeSet<String>,
    first_project: Option<(&'a str, &'a str)>,
}

fn items(policy: &SnykPolicy, group: &GroupIdentity, evaluation: &Evaluation<'_>) -> Vec<TicketItem> {
    let mut by_key: BTreeMap<&str, Item<'_>> = BTreeMap::new();
    for (id, project, finding) in &evaluation.findings {
        let item = by_key.entry(finding.key.as_str()).or_default();
        item.title = &finding.title;
        item.severity = item.severity.max(Some(finding.severity));
        item.packages.extend(finding.packages.iter().map(String::as_str));
        item.cves.extend(finding.cves.iter().map(String::as_str));
        item.maturity = item.maturity.max(Some(finding.maturity));
        item.fixes.extend(finding.fixes.iter().map(String::as_str));
        item.projects.insert(&project.name);
        if !project.target_reference.is_empty() {
            item.references.insert(&project.target_reference);
        }
        item.project_tags.extend(project.tags.iter().map(|t| format!("{}={}", t.key, t.value)));
        if item.first_project.is_none() {
            item.first_project = Some((project.org_id.as_str(), *id));
        }
    }
    let mut items: Vec<(Maturity, &str, TicketItem)> = by_key
        .into_iter()
        .map(|(key, item)| {
            let join = |set: &BTreeSet<&str>, none: &str| {
                if set.is_empty() {
                    none.to_owned()
                } else {
                    set.iter().copied().collect::<Vec<_>>().join(", ")
                }
            };
            let maturity = item.maturity.unwrap_or(Maturity::NoData);
            let mut facts = vec![
                ("Severity".to_owned(), item.severity.map(|s| s.to_string()).unwrap_or_default()),
                ("Package".to_owned(), join(&item.packages, "not reported")),
                ("CVE".to_owned(), join(&item.cves, "none")),
                ("Exploit maturity".to_owned(), maturity.label().to_owned()),
                ("Fixability".to_owned(), join(&item.fixes, "no fix available")),
                ("Projects".to_owned(), join(&item.projects, "")),
                (reference_word(group.kind).to_owned(), join(&item.references, "none")),
            ];
            // What the exploitation feeds say of its CVEs (constant-time lookups).
            let feeds = &evaluation.feeds;
            if policy.profile().kev_enabled {
                let listed: Vec<String> =
                    item.cves.iter().filter_map(|c| feeds.kev(c)).map(|e| e.sentence()).collect();
                if !listed.is_empty() {
                    facts.push(("CISA KEV".to_owned(), listed.join(" ")));
                }
            }
            if policy.profile().epss_enabled {
                let scored: Vec<String> = item
                    .cves
                    .iter()
                    .filter_map(|c| feeds.epss(c).map(|s| format!("{c} {}", s.label())))
                    .collect();
                if !scored.is_empty() {
                    facts.push(("EPSS".to_owned(), scored.join(", ")));
                }
            }
            if !item.project_tags.is_empty() {
                facts.push((
                    "Project tags".to_owned(),
                    item.project_tags.iter().cloned().collect::<Vec<_>>().join(", "),
                ));
            }
            let link = item
                .first_project
                .map(|(org, project)| format!("{}#issue-{key}", project_url(policy, org, project)));
            (
                maturity,
                key,
                TicketItem {
                    reference: key.to_owned(),
                    title: item.title.to_owned(),
                    link,
                    status: Some("open".into()),
                    facts,
                },
            )
        })
        .collect();
    // Mature exploits first, then by key, so the most urgent work is on top.
    items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    items.into_iter().map(|(_, _, item)| item).collect()
}

fn exposure_note(policy: &SnykPolicy, group: &GroupIdentity, evaluation: &Evaluation<'_>) -> String {
    let label = evaluation.exposure.exposure.label();
    let why = match &evaluation.exposure.basis {
        ExposureBasis::Catalog => "set by the ownership catalog".to_owned(),
        ExposureBasis::Project(name) => {
            let value = evaluation
                .active
                .iter()
                .find(|(_, p)| &p.name == name)
                .map(
                    |(_, p)| {
                        if p.exposure == ProjectExposure::InternetFacing { "external" } else { "internal" }
                    },
                )
                .unwrap_or("");
            format!("Snyk project {name} has environment {value}")
        }
        ExposureBasis::Assumed => "assumed".to_owned(),
    };
    let maturity = match (evaluation.mature_key, &evaluation.mature_by) {
        (Some(key), Some(MatureBy::Kev(cve))) => {
            format!("a known exploited vulnerability ({key}: {cve} is in CISA KEV)")
        }
        (Some(key), Some(MatureBy::Epss(cve, score))) => format!(
            "a likely exploit ({key}: {cve} has EPSS {score:.3}, at or above {})",
            policy.profile().epss_threshold
        ),
        (Some(key), _) => format!("a mature exploit ({key})"),
        (None, _) => "no mature exploit".to_owned(),
    };
    let what = match group.kind {
        TargetKind::ContainerImage => "image",
        TargetKind::GithubRepository | TargetKind::SourceRepository => "repository",
        TargetKind::MonitoredTarget => "target",
    };
    format!("Lane {}: {label} {what} ({why}) with {maturity}.", evaluation.lane)
}

fn due_note(policy: &SnykPolicy, state: &GroupState, lane: Lane, decision: Option<&DueDecision>) -> String {
    let Some(due) = &state.due else { return String::new() };
    let calendar = policy.calendar();
    let rule = |lane: Lane| calendar.rules.of(lane).describe(policy.settings().sprint_days);
    if let Some(DueDecision { date, kev: Some(entry), .. }) = decision {
        let lane_date = match due.date {
            Some(lane_date) => {
                format!("earlier than the lane's {lane_date} ({} from {})", rule(due.due_lane), due.since)
            }
            None => format!("the lane {lane} has no due date"),
        };
        return format!("Due {date}: {} The KEV due date is {lane_date}.", entry.sentence());
    }
    match (due.date, due.kept_from) {
        (None, _) => format!("No due date: {lane} findings are fixed any time."),
        (Some(date), Some(kept)) => format!(
            "Due {date}, kept from when the group was {kept} ({} from {}): the lane is now {lane}, and a due date is never moved later.",
            rule(kept),
            due.since
        ),
        (Some(date), None) => {
            format!(
                "Due {date}: {} from {}, when the group entered {}.",
                rule(due.due_lane),
                due.since,
                due.due_lane
            )
        }
    }
}

fn owner_note(team: &str, owner: &OwnerBasis, group: &GroupIdentity) -> String {
    match owner {
        OwnerBasis::Tag { key, projects, others } => {
            let mut note = format!("Owner {team}: Snyk project tag {key}={team} on {}.", projects.join(", "));
            if !others.is_empty() {
                note.push_str(&format!(" Other projects of this group name {}.", others.join(", ")));
            }
            note
        }
        OwnerBasis::Catalog => format!("Owner {team}: the ownership catalog's rule for {}.", group.target),
        OwnerBasis::Default => {
            format!(
                "Owner {team}: no Snyk project tag or catalog rule names an owner, so the default team has it."
            )
        }
    }
}

fn base_image_note(evaluation: &Evaluation<'_>) -> Option<String> {
    let mut images: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for (_, project) in &evaluation.active {
        if let Some(base) = &project.base_image {
            let entry = images.entry(base.image.as_str()).or_default();
            if !project.target_reference.is_empty() {
                entry.0.insert(&project.target_reference);
            }
            entry.1.extend(base.recommendations.iter().map(String::as_str));
        }
    }
    if images.is_empty() {
        return None;
    }
    let os_findings: BTreeSet<&str> = evaluation
        .findings
        .iter()
        .filter(|(_, p, _)| p.is_os_project())
        .map(|(_, _, f)| f.key.as_str())
        .collect();
    let parts: Vec<String> = images
        .iter()
        .map(|(image, (tags, advice))| {
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!(" (tags {})", tags.iter().copied().collect::<Vec<_>>().join(", "))
            };
            let advice = if advice.is_empty() {
                String::new()
            } else {
                format!("; Snyk recommends: {}", advice.iter().copied().collect::<Vec<_>>().join(" "))
            };
            format!("{image}{tags}{advice}")
        })
        .collect();
    Some(format!(
        "Base image: {}. {} of the findings are in operating system packages, which a base image upgrade may fix.",
        parts.join("; "),
        os_findings.len()
    ))
}

fn projects_note(group: &GroupIdentity, evaluation: &Evaluation<'_>) -> String {
    let mut names: Vec<String> = evaluation
        .active
        .iter()
        .map(|(_, p)| {
            let mut detail = vec![p.project_type.clone()];
            if !p.target_file.is_empty() {
                detail.push(p.target_file.clone());
            }
            if !p.target_reference.is_empty() {
                detail.push(p.target_reference.clone());
            }
            format!("{} ({})", p.name, detail.join(", "))
        })
        .collect();
    names.sort();
    let more = names.len().saturating_sub(PROJECTS_LISTED);
    names.truncate(PROJECTS_LISTED);
    let mut note = format!("Snyk projects of this {}: {}", group.describe(), names.join("; "));
    if more > 0 {
        note.push_str(&format!("; and {more} more"));
    }
    note.push('.');
    note
}

pub(crate) fn open(
    policy: &SnykPolicy,
    group: &GroupIdentity,
    state: &GroupState,
    evaluation: &Evaluation<'_>,
) -> DesiredTicket {
    let items = items(policy, group, evaluation);
    let references: BTreeSet<&str> = evaluation
        .findings
        .iter()
        .map(|(_, p, _)| p.target_reference.as_str())
        .filter(|r| !r.is_empty())
        .collect();
    let references = if references.is_empty() {
        String::new()
    } else {
        format!(
            " ({} {})",
            reference_word(group.kind).to_lowercase(),
            references.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let due_date = policy.decide_due(state, evaluation);
    let when = match &due_date {
        Some(decision) => format!("Fix them by {}.", decision.date),
        None => "There is no due date (P4): fix them any time.".to_owned(),
    };
    let floor = policy.settings().severity_floor;
    let headline = format!(
        "Snyk reports {} {} finding(s) in {}{references}. {when}",
        items.len(),
        if floor == Severity::Critical { "critical".to_owned() } else { format!("{floor}-or-above") },
        group.describe()
    );
    let mut notes = vec![exposure_note(policy, group, evaluation)];
    if evaluation.exposure.basis == ExposureBasis::Assumed {
        notes.push(format!(
            "Exposure was assumed {}: no Snyk project of this {} sets its environment attribute to external or internal, and the ownership catalog does not say.",
            evaluation.exposure.exposure.label(),
            group.describe()
        ));
    }
    let decision = policy.decide_due(state, evaluation);
    notes.push(due_note(policy, state, evaluation.lane, decision.as_ref()));
    notes.push(owner_note(&evaluation.team, &evaluation.owner, group));
    notes.extend(base_image_note(evaluation));
    notes.push(projects_note(group, evaluation));
    if group.kind == TargetKind::MonitoredTarget {
        notes.push(format!(
            "These projects are monitored from the Snyk CLI or API ({}): Snyk knows no registry or repository for them, so they are grouped by their target name {} within their org.",
            group.family, group.target
        ));
    }
    notes.retain(|n| !n.is_empty());

    let mut projects_with_findings: Vec<(&str, &ProjectRecord)> =
        evaluation.active.iter().filter(|(_, p)| !p.findings.is_empty()).map(|(id, p)| (*id, *p)).collect();
    projects_with_findings.sort_by(|a, b| a.1.name.cmp(&b.1.name).then_with(|| a.0.cmp(b.0)));
    let links = projects_with_findings
        .into_iter()
        .map(|(id, p)| UpstreamLink {
            global_id: format!("snyk-project:{id}"),
            title: format!("Snyk project {}", p.name),
            url: project_url(policy, &p.org_id, id),
        })
        .collect();
    let due = due_date.map(|decision| match (&decision.kev, &state.due) {
        // The contract has no KEV source yet: the KEV sentence is the text the date is from.
        (Some(entry), _) => {
            DueDate { date: decision.date, source: DueDateSource::EventText { sentence: entry.sentence() } }
        }
        (None, Some(record)) => DueDate {
            date: decision.date,
            source: DueDateSource::LaneSla { lane: record.due_lane, since: record.since },
        },
        (None, None) => DueDate { date: decision.date, source: DueDateSource::EventWindow },
    });
    DesiredTicket {
        schema: contracts::SCHEMA_VERSION,
        group_key: group.group_key(),
        source: Source::Snyk,
        team: evaluation.team.clone(),
        lane: evaluation.lane,
        summary: summary(policy, group),
        body: TicketBody { headline, notes, progress: Some(progress(policy, state, items.len())), items },
        due,
        state: TicketState::Open,
        labels: labels(group),
        links,
        content_hash: String::new(),
        upstream_version: 0,
    }
    .seal()
}

/// Qualifying findings left of those seen since the group began to qualify.
fn progress(policy: &SnykPolicy, state: &GroupState, remaining: usize) -> Progress {
    let floor = policy.settings().severity_floor;
    let unit = if floor == Severity::Critical {
        "critical findings".to_owned()
    } else {
        format!("{floor}-or-above findings")
    };
    let remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
    let total = u32::try_from(state.qualified_keys.len()).unwrap_or(u32::MAX).max(remaining);
    Progress { remaining, total, unit }
}

pub(crate) fn resolved(
    policy: &SnykPolicy,
    group: &GroupIdentity,
    state: &GroupState,
    last: &LastTicket,
) -> DesiredTicket {
    let floor = policy.settings().severity_floor;
    let headline = format!(
        "No {} finding remains open in {}: Snyk reports them fixed, ignored, or their projects inactive or removed.",
        if floor == Severity::Critical { "critical".to_owned() } else { format!("{floor}-or-above") },
        group.describe()
    );
    DesiredTicket {
        schema: contracts::SCHEMA_VERSION,
        group_key: group.group_key(),
        source: Source::Snyk,
        team: last.team.clone(),
        lane: last.lane,
        summary: summary(policy, group),
        body: TicketBody {
            headline,
            notes: Vec::new(),
            items: Vec::new(),
            progress: Some(progress(policy, state, 0)),
        },
        due: None,
        state: TicketState::Resolved,
        labels: labels(group),
        links: Vec::new(),
        content_hash: String::new(),
        upstream_version: 0,
    }
    .seal()
}
