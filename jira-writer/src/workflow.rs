//! Workflows: which status the source's states map to in each project, and how to get there.
//!
//! JIRA sites differ: JIRA Software's To Do → In Progress → Done, or a team's own ToDo → Assigned
//! ⇄ Waiting → Done with Cancelled beside Done and no direct ToDo → Done. A status category says
//! too little ("done" is Done and Cancelled alike), so the writer never picks a transition by
//! category: it reaches a named status by following transitions, reading the available ones at
//! each step ([`next_step`]), through the statuses configured as the way there (`via`). Statuses
//! that are people's decisions (Cancelled, Won't Do, Waiting) are never left by the writer.
//!
//! Configured per project, with a default, as
//! `[PROJECT:]filed=ToDo,resolve=Done,reopen=ToDo,via=Assigned|In Progress,decisions=Cancelled|Waiting,linked=Assigned`
//! (`filed` and `linked` optional).

use std::collections::BTreeMap;

use crate::client::Transition;

/// The statuses of one project's workflow that the writer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSettings {
    /// The status a new ticket is filed in (`None`: wherever JIRA's workflow starts it, which
    /// costs no call). When set, the writer walks a new ticket there before announcing it.
    pub filed: Option<String>,
    /// The status the source resolving a ticket moves it to.
    pub resolve: String,
    /// The status a ticket whose source came back is reopened to.
    pub reopen: String,
    /// Statuses the writer may pass through on the way, in order of preference.
    pub via: Vec<String>,
    /// Statuses that are people's decisions: a ticket there is never transitioned by the writer.
    pub decisions: Vec<String>,
    /// The status a ticket moves to when a person links a task to it (`None`:
    /// `--jira-linked-status`).
    pub linked: Option<String>,
}

impl Default for WorkflowSettings {
    /// JIRA Software's workflow.
    fn default() -> Self {
        WorkflowSettings {
            filed: None,
            resolve: "Done".into(),
            reopen: "To Do".into(),
            via: vec!["In Progress".into()],
            decisions: Vec::new(),
            linked: None,
        }
    }
}

impl WorkflowSettings {
    pub fn is_decision(&self, status: &str) -> bool {
        self.decisions.iter().any(|d| same_status(d, status))
    }
}

/// Workflow settings per project key, with a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workflows {
    pub default: WorkflowSettings,
    pub per_project: BTreeMap<String, WorkflowSettings>,
}

impl Workflows {
    /// From `--jira-workflow` values: at most one without a project (the default) and at most one
    /// per project.
    pub fn from_specs(specs: &[(Option<String>, WorkflowSettings)]) -> Result<Self, String> {
        let mut workflows = Workflows::default();
        let mut default_seen = false;
        for (project, settings) in specs {
            match project {
                None if default_seen => {
                    return Err("two default workflows (without PROJECT:) are given".into());
                }
                None => {
                    default_seen = true;
                    workflows.default = settings.clone();
                }
                Some(key) => {
                    if workflows.per_project.insert(key.clone(), settings.clone()).is_some() {
                        return Err(format!("project {key} is given two workflows"));
                    }
                }
            }
        }
        Ok(workflows)
    }

    pub fn of(&self, project: &str) -> &WorkflowSettings {
        self.per_project.get(project).unwrap_or(&self.default)
    }
}

/// Parses `[PROJECT:]resolve=Done,reopen=ToDo,via=Assigned|In Progress,decisions=Cancelled`.
/// `resolve` and `reopen` are required; a status may not be both a decision and a target.
pub fn parse_workflow(text: &str) -> Result<(Option<String>, WorkflowSettings), String> {
    let text = text.trim();
    let (project, body) = match text.split_once(':') {
        Some((project, body)) if !project.contains('=') => {
            let project = project.trim();
            if project.is_empty() || !project.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{project:?} is not a JIRA project key"));
            }
            (Some(project.to_owned()), body)
        }
        _ => (None, text),
    };
    let (mut filed, mut resolve, mut reopen, mut via, mut decisions, mut linked) =
        (None, None, None, Vec::new(), Vec::new(), None);
    for pair in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            format!("{pair:?} is not NAME=VALUE (filed, resolve, reopen, via, decisions, linked)")
        })?;
        let list = || -> Vec<String> {
            value.split('|').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        match name.trim() {
            "filed" => filed = Some(value.trim().to_owned()).filter(|v| !v.is_empty()),
            "resolve" => resolve = Some(value.trim().to_owned()),
            "reopen" => reopen = Some(value.trim().to_owned()),
            "via" => via = list(),
            "decisions" => decisions = list(),
            "linked" => linked = Some(value.trim().to_owned()).filter(|v| !v.is_empty()),
            other => {
                return Err(format!(
                    "unknown workflow setting {other:?} (filed, resolve, reopen, via, decisions, linked)"
                ));
            }
        }
    }
    let required = |value: Option<String>, name: &str| {
        value.filter(|v| !v.is_empty()).ok_or_else(|| format!("the workflow {text:?} names no {name} status"))
    };
    let settings = WorkflowSettings {
        filed,
        resolve: required(resolve, "resolve")?,
        reopen: required(reopen, "reopen")?,
        via,
        decisions,
        linked,
    };
    for target in
        [settings.filed.as_ref(), Some(&settings.resolve), Some(&settings.reopen), settings.linked.as_ref()]
            .into_iter()
            .flatten()
    {
        if settings.is_decision(target) {
            return Err(format!("{target:?} is both a target and a people's decision in {text:?}"));
        }
    }
    Ok((project, settings))
}

/// Status names compare as JIRA shows them, ignoring case and surrounding spaces.
pub fn same_status(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// What to do next on the way to a target status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The issue is in the target status.
    Arrived,
    /// A person's decision holds the issue in this status: leave it there.
    Held { status: String },
    /// Take this transition; `last` when it leads to the target.
    Take { transition_id: String, to: String, last: bool },
    /// No way on from here: what JIRA offered, as `transition → status`.
    Stuck { from: String, offered: Vec<String> },
}

/// One walk towards a status, one transition at a time: [`next_step`] with the statuses passed
/// kept, and bounded (every step enters a via status not entered before, or the target). The
/// writer feeds it what JIRA offers at each step; `infra-tickets doctor` feeds it the workflow's
/// graph, so both walk the same way.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    settings: &'a WorkflowSettings,
    target: &'a str,
    passed: Vec<String>,
    steps_left: usize,
}

impl<'a> Walk<'a> {
    pub fn new(settings: &'a WorkflowSettings, target: &'a str) -> Self {
        Walk { settings, target, passed: Vec::new(), steps_left: settings.via.len() + 2 }
    }

    /// The next step from `current`, given the transitions offered there. A [`Step::Take`] is
    /// taken as given (its statuses are not entered again); past the bound, [`Step::Stuck`].
    pub fn step(&mut self, current: &str, offered: &[Transition]) -> Step {
        if self.steps_left == 0 {
            return Step::Stuck {
                from: current.to_owned(),
                offered: vec!["more steps than the workflow's via statuses".into()],
            };
        }
        self.steps_left -= 1;
        let step = next_step(self.settings, self.target, current, offered, &self.passed);
        if let Step::Take { to, .. } = &step {
            self.passed.push(current.to_owned());
            self.passed.push(to.clone());
        }
        step
    }
}

/// The next step towards `target` from `current`, given the transitions JIRA offers now and the
/// statuses already passed through (never gone back to, so the walk ends).
pub fn next_step(
    settings: &WorkflowSettings,
    target: &str,
    current: &str,
    offered: &[Transition],
    passed: &[String],
) -> Step {
    if same_status(current, target) {
        return Step::Arrived;
    }
    if settings.is_decision(current) {
        return Step::Held { status: current.to_owned() };
    }
    let leads_to =
        |status: &str| offered.iter().find(|t| t.to.as_ref().is_some_and(|to| same_status(&to.name, status)));
    if let Some(transition) = leads_to(target) {
        return Step::Take { transition_id: transition.id.clone(), to: target.to_owned(), last: true };
    }
    for via in &settings.via {
        if same_status(via, current) || passed.iter().any(|p| same_status(p, via)) {
            continue;
        }
        if let Some(transition) = leads_to(via) {
            return Step::Take { transition_id: transition.id.clone(), to: via.clone(), last: false };
        }
    }
    Step::Stuck {
        from: current.to_owned(),
        offered: offered
            .iter()
            .map(|t| format!("{} → {}", t.name, t.to.as_ref().map_or("?", |to| to.name.as_str())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::TransitionTarget;

    fn offered(list: &[(&str, &str, &str)]) -> Vec<Transition> {
        list.iter()
            .map(|(id, name, to)| Transition {
                id: (*id).into(),
                name: (*name).into(),
                to: Some(TransitionTarget { name: (*to).into(), status_category: None }),
            })
            .collect()
    }

    fn seed() -> WorkflowSettings {
        parse_workflow("resolve=Done,reopen=ToDo,via=Assigned,decisions=Cancelled|Waiting").unwrap().1
    }

    #[test]
    fn settings_parse_with_clear_errors() {
        let (project, settings) = parse_workflow(
            "OPS: resolve=Done, reopen=ToDo, via=Assigned|In Progress, decisions=Cancelled|Won't Do",
        )
        .unwrap();
        assert_eq!(project.as_deref(), Some("OPS"));
        assert_eq!(settings.via, ["Assigned", "In Progress"]);
        assert!(settings.is_decision("won't do"));
        assert!(parse_workflow("resolve=Done").unwrap_err().contains("no reopen"));
        assert!(parse_workflow("resolve=Done,reopen=ToDo,colour=red").unwrap_err().contains("colour"));
        assert!(parse_workflow("resolve=Done,reopen=ToDo,decisions=Done").unwrap_err().contains("both"));
        assert!(parse_workflow("a b:resolve=Done,reopen=ToDo").unwrap_err().contains("project key"));
        let (_, filed) = parse_workflow("filed=Assigned,resolve=Done,reopen=ToDo,via=Assigned").unwrap();
        assert_eq!(filed.filed.as_deref(), Some("Assigned"));
        assert_eq!(parse_workflow("resolve=Done,reopen=ToDo").unwrap().1.filed, None, "JIRA's own start");
        let held = "filed=Waiting,resolve=Done,reopen=ToDo,decisions=Waiting";
        assert!(parse_workflow(held).unwrap_err().contains("both"));
        let both = [
            parse_workflow("resolve=Done,reopen=To Do").unwrap(),
            parse_workflow("resolve=X,reopen=Y").unwrap(),
        ];
        assert!(Workflows::from_specs(&both).unwrap_err().contains("two default"));
    }

    /// The seed team's workflow as its `GET …/transitions` lists it (Cancel first; no ToDo → Done):
    /// resolving from ToDo goes through Assigned, never to Cancelled.
    #[test]
    fn resolving_on_the_seed_workflow_goes_through_assigned() {
        let from_todo = offered(&[("21", "Cancel", "Cancelled"), ("11", "Assign", "Assigned")]);
        assert_eq!(
            next_step(&seed(), "Done", "ToDo", &from_todo, &[]),
            Step::Take { transition_id: "11".into(), to: "Assigned".into(), last: false }
        );
        let from_assigned = offered(&[
            ("21", "Cancel", "Cancelled"),
            ("31", "Wait for someone", "Waiting"),
            ("51", "Unassign", "ToDo"),
            ("61", "Close", "Done"),
        ]);
        assert_eq!(
            next_step(&seed(), "Done", "Assigned", &from_assigned, &["Assigned".into()]),
            Step::Take { transition_id: "61".into(), to: "Done".into(), last: true }
        );
    }

    #[test]
    fn decisions_hold_arrival_is_noticed_and_a_dead_end_says_what_was_offered() {
        assert_eq!(next_step(&seed(), "Done", "Done", &[], &[]), Step::Arrived);
        assert_eq!(
            next_step(&seed(), "Done", "cancelled", &[], &[]),
            Step::Held { status: "cancelled".into() }
        );
        assert_eq!(next_step(&seed(), "ToDo", "Waiting", &[], &[]), Step::Held { status: "Waiting".into() });
        let only_cancel = offered(&[("21", "Cancel", "Cancelled")]);
        assert_eq!(
            next_step(&seed(), "Done", "ToDo", &only_cancel, &[]),
            Step::Stuck { from: "ToDo".into(), offered: vec!["Cancel → Cancelled".into()] }
        );
        // A via status already passed is not gone back to: the walk ends.
        let back = offered(&[("11", "Assign", "Assigned")]);
        assert!(matches!(
            next_step(&seed(), "Done", "ToDo", &back, &["Assigned".into()]),
            Step::Stuck { .. }
        ));
    }

    #[test]
    fn jira_software_resolves_in_one_step() {
        let from_todo = offered(&[("21", "Start Progress", "In Progress"), ("31", "Done", "Done")]);
        assert_eq!(
            next_step(&WorkflowSettings::default(), "Done", "To Do", &from_todo, &[]),
            Step::Take { transition_id: "31".into(), to: "Done".into(), last: true }
        );
    }
}
