//! Workflows as JIRA sites configure them: statuses with their categories and transitions, each
//! from some statuses (or from any, a global transition) to one, listed in the workflow's own
//! order. `GET /issue/{key}/transitions` offers the transitions of the current status in that
//! order, which is not sorted by name or category: a client that takes "the first transition into
//! the done category" takes whatever the workflow lists first.
//!
//! Two workflows are built in:
//! * [`Workflow::jira_software`]: JIRA Software's To Do ⇄ In Progress → Done, Done → To Do.
//! * [`Workflow::seed_team`]: the seed team's ToDo → Assigned ⇄ Waiting → Done, Cancelled from
//!   any open status, no direct ToDo → Done, Cancel listed before Close (a JIRA company-managed
//!   workflow as teams build them; modelled on the status and transition shapes of
//!   `GET /rest/api/3/issue/{key}/transitions` in the official v3 spec).

use serde_json::{Value, json};

/// A status category: JIRA has exactly these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    New,
    Indeterminate,
    Done,
}

impl Category {
    /// `new`, `indeterminate` or `done`.
    pub fn key(self) -> &'static str {
        match self {
            Category::New => "new",
            Category::Indeterminate => "indeterminate",
            Category::Done => "done",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Category::New => "To Do",
            Category::Indeterminate => "In Progress",
            Category::Done => "Done",
        }
    }

    fn id(self) -> i64 {
        match self {
            Category::New => 2,
            Category::Indeterminate => 4,
            Category::Done => 3,
        }
    }

    fn color(self) -> &'static str {
        match self {
            Category::New => "blue-gray",
            Category::Indeterminate => "yellow",
            Category::Done => "green",
        }
    }
}

/// One status of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    pub name: String,
    pub category: Category,
}

impl Status {
    pub fn new(id: &str, name: &str, category: Category) -> Self {
        Status { id: id.into(), name: name.into(), category }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The category key: `new`, `indeterminate` or `done`.
    pub fn category(&self) -> &'static str {
        self.category.key()
    }

    pub fn category_name(&self) -> &'static str {
        self.category.name()
    }

    /// The status as JIRA shows it in `fields.status` and in a transition's `to`.
    pub fn json(&self, base: &str) -> Value {
        json!({
            "self": format!("{base}/rest/api/3/status/{}", self.id),
            "id": self.id,
            "name": self.name,
            "description": "",
            "statusCategory": {
                "self": format!("{base}/rest/api/3/statuscategory/{}", self.category.id()),
                "id": self.category.id(),
                "key": self.category.key(),
                "name": self.category.name(),
                "colorName": self.category.color(),
            },
        })
    }
}

/// One transition of a workflow.
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: String,
    pub name: String,
    /// The statuses it starts from; empty: from every other status (a global transition).
    pub from: Vec<String>,
    pub to: String,
}

/// A workflow: statuses, the status new issues get, and transitions in the workflow's order.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub name: String,
    pub statuses: Vec<Status>,
    pub initial: String,
    pub transitions: Vec<Transition>,
}

fn transition(id: &str, name: &str, from: &[&str], to: &str) -> Transition {
    Transition {
        id: id.into(),
        name: name.into(),
        from: from.iter().map(|s| (*s).to_owned()).collect(),
        to: to.into(),
    }
}

impl Workflow {
    /// JIRA Software's default: To Do ⇄ In Progress → Done, To Do → Done, Done → To Do.
    pub fn jira_software() -> Self {
        Workflow {
            name: "Software Simplified Workflow".into(),
            statuses: vec![
                Status::new("10000", "To Do", Category::New),
                Status::new("3", "In Progress", Category::Indeterminate),
                Status::new("10001", "Done", Category::Done),
            ],
            initial: "To Do".into(),
            transitions: vec![
                transition("11", "Stop Progress", &["In Progress"], "To Do"),
                transition("21", "Start Progress", &["To Do"], "In Progress"),
                transition("31", "Done", &["To Do", "In Progress"], "Done"),
                transition("41", "Reopen", &["Done"], "To Do"),
            ],
        }
    }

    /// The seed team's: ToDo → Assigned ⇄ Waiting → Done; Cancel from any open status (listed
    /// first); no direct ToDo → Done; Done and Cancelled reopen to ToDo.
    pub fn seed_team() -> Self {
        Workflow {
            name: "Infrastructure Team Workflow".into(),
            statuses: vec![
                Status::new("10100", "ToDo", Category::New),
                Status::new("10101", "Assigned", Category::Indeterminate),
                Status::new("10102", "Waiting", Category::Indeterminate),
                Status::new("10103", "Cancelled", Category::Done),
                Status::new("10104", "Done", Category::Done),
            ],
            initial: "ToDo".into(),
            transitions: vec![
                transition("21", "Cancel", &["ToDo", "Assigned", "Waiting"], "Cancelled"),
                transition("11", "Assign", &["ToDo"], "Assigned"),
                transition("31", "Wait for someone", &["Assigned"], "Waiting"),
                transition("41", "Back to work", &["Waiting"], "Assigned"),
                transition("51", "Unassign", &["Assigned"], "ToDo"),
                transition("61", "Close", &["Assigned", "Waiting"], "Done"),
                transition("71", "Reopen", &["Done", "Cancelled"], "ToDo"),
            ],
        }
    }

    pub fn status(&self, name: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.name == name)
    }

    pub fn initial_status(&self) -> Status {
        self.status(&self.initial).cloned().expect("the initial status is one of the workflow's")
    }

    /// The transitions available from `from`, in the workflow's order, with their targets.
    pub fn available(&self, from: &str) -> Vec<(&Transition, &Status)> {
        self.transitions
            .iter()
            .filter(|t| if t.from.is_empty() { t.to != from } else { t.from.iter().any(|f| f == from) })
            .filter_map(|t| self.status(&t.to).map(|s| (t, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_workflow_has_no_direct_way_from_todo_to_done_and_lists_cancel_first() {
        let workflow = Workflow::seed_team();
        let from_todo: Vec<&str> = workflow.available("ToDo").iter().map(|(_, s)| s.name()).collect();
        assert_eq!(from_todo, ["Cancelled", "Assigned"]);
        let from_assigned: Vec<&str> = workflow.available("Assigned").iter().map(|(_, s)| s.name()).collect();
        assert_eq!(from_assigned, ["Cancelled", "Waiting", "ToDo", "Done"]);
        assert_eq!(workflow.initial_status().category(), "new");
    }

    #[test]
    fn every_transition_of_the_built_in_workflows_names_known_statuses() {
        for workflow in [Workflow::jira_software(), Workflow::seed_team()] {
            for t in &workflow.transitions {
                assert!(workflow.status(&t.to).is_some(), "{} → {}", t.name, t.to);
                assert!(t.from.iter().all(|f| workflow.status(f).is_some()), "{}", t.name);
            }
        }
    }
}
