//! Pure mapping from a desired ticket to JIRA field values and request bodies: project, issue
//! type, priority per lane, labels, components, the team field, the description in Atlassian
//! Document Format, and JIRA's size limits. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use contracts::{DesiredTicket, DueDateSource, Lane, TicketBody};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// JIRA's limits (Alertmanager's `maxSummaryLenRunes`, `maxDescriptionLenRunes`).
pub const MAX_SUMMARY: usize = 255;
pub const MAX_DESCRIPTION: usize = 32_767;
pub const MAX_LABEL: usize = 255;
pub use jira::PROPERTY_KEY;
/// Version of the property's value.
pub const PROPERTY_SCHEMA: u32 = 1;

/// How lanes and teams map to JIRA.
#[derive(Debug, Clone)]
pub struct MappingSettings {
    pub default_project: String,
    pub issue_type: String,
    /// Priority name per lane.
    pub lane_priorities: BTreeMap<Lane, String>,
    /// Labels on every ticket (the first is the sweep's handle).
    pub labels: Vec<String>,
    /// The team custom field id (`customfield_NNNNN`), if the site has one.
    pub team_field: Option<String>,
}

/// The field values infra-tickets writes (and remembers in the ledger as "last written").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldValues {
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    /// SHA-256 of the description ADF (the document itself is not kept).
    pub description_hash: String,
    pub due_date: Option<NaiveDate>,
    pub priority: Option<String>,
    /// Only the labels infra-tickets manages; labels people add are never touched.
    pub labels: BTreeSet<String>,
    pub components: Vec<String>,
    pub team_value: Option<String>,
}

/// Everything to write for one desired state.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub values: FieldValues,
    pub description: Value,
}

/// Maps a desired ticket with its team's catalog entry.
pub fn map(desired: &DesiredTicket, team: &catalog::Team, settings: &MappingSettings) -> Mapped {
    let description = render_description(desired);
    let mut labels: BTreeSet<String> = BTreeSet::new();
    let mut add = |label: &str| {
        let clean = clean_label(label);
        if !clean.is_empty() {
            labels.insert(clean);
        }
    };
    for label in &settings.labels {
        add(label);
    }
    add(&desired.group_key.token());
    add(&format!("lane-{}", desired.lane.as_str().to_ascii_lowercase()));
    add(&format!("source-{}", desired.source.as_str()));
    for label in desired.labels.iter().chain(&team.jira_labels) {
        add(label);
    }
    let values = FieldValues {
        project: team.jira_project.clone().unwrap_or_else(|| settings.default_project.clone()),
        issue_type: settings.issue_type.clone(),
        summary: truncate_chars(&single_line(&desired.summary), MAX_SUMMARY),
        description_hash: hash_json(&description),
        due_date: desired.due.as_ref().map(|d| d.date),
        priority: settings.lane_priorities.get(&desired.lane).cloned(),
        labels,
        components: team.jira_components.clone(),
        team_value: settings.team_field.as_ref().and(team.jira_team_field.clone()),
    };
    Mapped { values, description }
}

/// The `POST /rest/api/3/issue` body, with the labels and the issue property that carry the
/// group key.
pub fn create_body(desired: &DesiredTicket, mapped: &Mapped, settings: &MappingSettings) -> Value {
    let v = &mapped.values;
    let mut fields = json!({
        "project": { "key": v.project },
        "issuetype": { "name": v.issue_type },
        "summary": v.summary,
        "description": mapped.description,
        "labels": v.labels.iter().collect::<Vec<_>>(),
    });
    if let Some(date) = v.due_date {
        fields["duedate"] = json!(date.to_string());
    }
    if let Some(priority) = &v.priority {
        fields["priority"] = json!({ "name": priority });
    }
    if !v.components.is_empty() {
        fields["components"] = json!(v.components.iter().map(|c| json!({ "name": c })).collect::<Vec<_>>());
    }
    if let (Some(field), Some(value)) = (&settings.team_field, &v.team_value) {
        fields[field.as_str()] = json!({ "value": value });
    }
    json!({
        "fields": fields,
        "properties": properties(desired),
    })
}

/// The `infra-tickets` issue property: the authoritative group key in JIRA, and what the
/// notifier's reminder scan reads: `progress` (`{"remaining", "total", "unit"}`, or null when the
/// source does not count its work). Written at create and with every edit.
pub fn property_value(desired: &DesiredTicket) -> Value {
    json!({
        "idempotencyKey": desired.group_key.token(),
        "groupKey": desired.group_key.as_str(),
        "source": desired.source.as_str(),
        "schemaVersion": PROPERTY_SCHEMA,
        "contentHash": desired.content_hash,
        "upstreamVersion": desired.upstream_version,
        "progress": desired.body.progress,
        // What a ledger rebuilt from JIRA needs besides the key (writer/recovery.rs).
        "team": desired.team,
        "state": desired.state,
    })
}

/// The `properties` of a create or edit body: the `infra-tickets` property.
pub fn properties(desired: &DesiredTicket) -> Value {
    json!([ { "key": PROPERTY_KEY, "value": property_value(desired) } ])
}

/// How the site defines the team field, read from `GET /rest/api/3/field` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeamFieldKind {
    /// A single select: `{"value": "Payments"}` (the catalog's `jira_team_field` is the option).
    #[default]
    SingleSelect,
    /// A multi select: `[{"value": "Payments"}]`.
    MultiSelect,
    /// JIRA's Team field (Atlassian teams): the team's id as a string (the catalog holds the id
    /// or the team's name, looked up at start).
    Team,
    /// A user picker: `{"accountId": "..."}` (the catalog holds the account id, or the person's
    /// e-mail address or name, looked up at start).
    UserPicker,
}

/// The kind of `field_id` from the `GET /rest/api/3/field` answer, or why it does not fit.
pub fn team_field_kind(fields: &[Value], field_id: &str) -> Result<TeamFieldKind, String> {
    let field =
        fields.iter().find(|f| f.get("id").and_then(Value::as_str) == Some(field_id)).ok_or_else(|| {
            format!("the site has no field {field_id} (GET /rest/api/3/field does not list it)")
        })?;
    let custom = field.pointer("/schema/custom").and_then(Value::as_str).unwrap_or_default();
    let name = field.get("name").and_then(Value::as_str).unwrap_or(field_id);
    match custom.rsplit(':').next().unwrap_or_default() {
        "select" | "radiobuttons" => Ok(TeamFieldKind::SingleSelect),
        "multiselect" | "multicheckboxes" => Ok(TeamFieldKind::MultiSelect),
        "atlassian-team" | "rm-teams-custom-field-team" => Ok(TeamFieldKind::Team),
        "userpicker" => Ok(TeamFieldKind::UserPicker),
        _ => Err(format!(
            "field {field_id} ({name}) is of type {custom:?}; infra-tickets writes a single or multi select, \
             JIRA's Team field or a user picker (or leave --jira-team-field unset to use labels and components)"
        )),
    }
}

/// Whether a catalog value is already a Team field id (Atlassian team ids are UUIDs), not a
/// team's name to look up.
pub fn is_team_id(value: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && hex(parts[0], 8)
        && hex(parts[1], 4)
        && hex(parts[2], 4)
        && hex(parts[3], 4)
        && hex(parts[4], 12)
}

/// Whether a catalog value is already an Atlassian account id (`712020:` and a UUID, or the
/// older 24 hexadecimal digits), not a person's e-mail address or name to look up.
pub fn is_account_id(value: &str) -> bool {
    let hex24 = value.len() == 24 && value.chars().all(|c| c.is_ascii_hexdigit());
    let prefixed = value.split_once(':').is_some_and(|(prefix, rest)| {
        !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_digit())
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    });
    hex24 || prefixed
}

/// The id of the team named `name` among `(teamId, displayName, state)`: the exact name, else
/// the one name equal ignoring case; active teams only. The error says what is known.
pub fn pick_team(teams: &[(String, String, String)], name: &str) -> Result<String, String> {
    let active: Vec<&(String, String, String)> = teams
        .iter()
        .filter(|(_, _, state)| state.is_empty() || state.eq_ignore_ascii_case("ACTIVE"))
        .collect();
    if let Some((id, _, _)) = active.iter().find(|(_, n, _)| n == name) {
        return Ok(id.clone());
    }
    let loose: Vec<_> =
        active.iter().filter(|(_, n, _)| n.trim().eq_ignore_ascii_case(name.trim())).collect();
    match loose.as_slice() {
        [(id, _, _)] => Ok(id.clone()),
        [] => {
            let mut known: Vec<&str> = active.iter().map(|(_, n, _)| n.as_str()).collect();
            known.sort_unstable();
            let shown = known.iter().take(20).copied().collect::<Vec<_>>().join(", ");
            Err(format!(
                "no active Atlassian team is named {name:?} (teams: {})",
                if shown.is_empty() { "none".to_owned() } else { shown }
            ))
        }
        _ => Err(format!("{} teams are named {name:?} apart from case; give the team's id", loose.len())),
    }
}

/// The account id of the one active person `query` (an e-mail address or a display name)
/// names among the users `GET /rest/api/3/user/search` found: the address, else the display
/// name, matched whole (ignoring case). None or several is an error saying so.
pub fn pick_user(users: &[Value], query: &str) -> Result<String, String> {
    let text = |u: &Value, name: &str| u.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let people: Vec<&Value> = users
        .iter()
        .filter(|u| u.get("active").and_then(Value::as_bool).unwrap_or(true))
        .filter(|u| matches!(text(u, "accountType").as_str(), "" | "atlassian"))
        .collect();
    let wanted = query.trim();
    let by = |field: &str| -> Vec<&&Value> {
        people.iter().filter(|u| text(u, field).trim().eq_ignore_ascii_case(wanted)).collect()
    };
    let found = if wanted.contains('@') { by("emailAddress") } else { by("displayName") };
    match found.as_slice() {
        [one] => Ok(text(one, "accountId")),
        [] if wanted.contains('@') => Err(format!(
            "no active JIRA user has the e-mail address {wanted:?} (or their privacy settings hide it: give the \
             account id)"
        )),
        [] => Err(format!("no active JIRA user is named {wanted:?}")),
        several => Err(format!("{} JIRA users match {wanted:?}; give the account id", several.len())),
    }
}

/// The team field's value as JIRA takes it for `kind`; `None` clears it.
pub fn team_field_value(kind: TeamFieldKind, value: Option<&str>) -> Value {
    let Some(value) = value else { return Value::Null };
    match kind {
        TeamFieldKind::SingleSelect => json!({ "value": value }),
        TeamFieldKind::MultiSelect => json!([ { "value": value } ]),
        TeamFieldKind::Team => json!(value),
        TeamFieldKind::UserPicker => json!({ "accountId": value }),
    }
}

/// Rewrites the team field in a create or edit `fields` object from the select shape that
/// [`create_body`] and [`diff`] write into the shape `kind` takes.
pub fn shape_team_field(fields: &mut serde_json::Map<String, Value>, field: &str, kind: TeamFieldKind) {
    if let Some(value) = fields.get_mut(field) {
        let text = value.get("value").and_then(Value::as_str).map(str::to_owned);
        *value = team_field_value(kind, text.as_deref());
    }
}

/// What one edit must change: fields whose desired value differs from the value last written.
/// A field people changed but the source did not is left alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    pub fields: serde_json::Map<String, Value>,
    pub labels_add: Vec<String>,
    pub labels_remove: Vec<String>,
    /// `(from, to)` when the source moved the due date.
    pub due_date_moved: Option<(Option<NaiveDate>, Option<NaiveDate>)>,
    /// The project the issue must move to before the edit (a team change across boards).
    pub moves_to_project: Option<String>,
}

impl Edit {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.labels_add.is_empty()
            && self.labels_remove.is_empty()
            && self.moves_to_project.is_none()
    }

    /// The `PUT /rest/api/3/issue/{key}` body; a moved due date carries a comment saying why.
    pub fn body(&self, due_comment: Option<&Value>) -> Value {
        let mut body = json!({ "fields": self.fields });
        let mut update = serde_json::Map::new();
        let mut label_ops: Vec<Value> = self.labels_add.iter().map(|l| json!({ "add": l })).collect();
        label_ops.extend(self.labels_remove.iter().map(|l| json!({ "remove": l })));
        if !label_ops.is_empty() {
            update.insert("labels".into(), Value::Array(label_ops));
        }
        if let Some(comment) = due_comment {
            update.insert("comment".into(), json!([ { "add": { "body": comment } } ]));
        }
        if !update.is_empty() {
            body["update"] = Value::Object(update);
        }
        body
    }
}

/// The edit from `written` (last written) to `wanted`.
pub fn diff(written: &FieldValues, wanted: &Mapped, settings: &MappingSettings) -> Edit {
    let new = &wanted.values;
    let mut edit = Edit::default();
    if new.project != written.project {
        // JIRA Cloud cannot change an issue's project by an edit: the writer moves it first.
        edit.moves_to_project = Some(new.project.clone());
    }
    if new.summary != written.summary {
        edit.fields.insert("summary".into(), json!(new.summary));
    }
    if new.description_hash != written.description_hash {
        edit.fields.insert("description".into(), wanted.description.clone());
    }
    if new.due_date != written.due_date {
        edit.fields.insert("duedate".into(), new.due_date.map_or(Value::Null, |d| json!(d.to_string())));
        edit.due_date_moved = Some((written.due_date, new.due_date));
    }
    if new.priority != written.priority
        && let Some(priority) = &new.priority
    {
        edit.fields.insert("priority".into(), json!({ "name": priority }));
    }
    if new.components != written.components {
        edit.fields.insert(
            "components".into(),
            json!(new.components.iter().map(|c| json!({ "name": c })).collect::<Vec<_>>()),
        );
    }
    if new.team_value != written.team_value
        && let Some(field) = &settings.team_field
    {
        edit.fields
            .insert(field.clone(), new.team_value.as_ref().map_or(Value::Null, |v| json!({ "value": v })));
    }
    edit.labels_add = new.labels.difference(&written.labels).cloned().collect();
    edit.labels_remove = written.labels.difference(&new.labels).cloned().collect();
    edit
}

/// The comment saying why the due date moved.
pub fn due_date_comment(desired: &DesiredTicket, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Value {
    let show = |d: Option<NaiveDate>| d.map_or("none".to_owned(), |d| d.to_string());
    let why = desired
        .due
        .as_ref()
        .map(|d| due_reason(&d.source))
        .unwrap_or_else(|| "the source no longer sets one".into());
    paragraph_doc(&format!(
        "infra-tickets moved the due date from {} to {} because the source changed it: {}.",
        show(from),
        show(to),
        why
    ))
}

/// A one-paragraph ADF document.
pub fn paragraph_doc(text: &str) -> Value {
    json!({ "type": "doc", "version": 1, "content": [ paragraph(text) ] })
}

fn due_reason(source: &DueDateSource) -> String {
    match source {
        DueDateSource::LaneSla { lane, since } => format!("lane {lane} service level counted from {since}"),
        DueDateSource::EventWindow => "the start of the event's scheduled window".into(),
        DueDateSource::EventText { sentence } => {
            format!("the event says \"{}\"", truncate_chars(sentence, 300))
        }
    }
}

fn text(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// The inline content of `text`: none for an empty text (JIRA refuses an empty text node).
fn inline(content: &str) -> Vec<Value> {
    if content.is_empty() { Vec::new() } else { vec![text(content)] }
}

fn paragraph(content: &str) -> Value {
    json!({ "type": "paragraph", "content": inline(content) })
}

fn heading(level: u8, content: &str) -> Value {
    json!({ "type": "heading", "attrs": { "level": level }, "content": inline(content) })
}

fn bullet_list(items: Vec<Value>) -> Value {
    json!({ "type": "bulletList", "content": items.into_iter().map(|p| json!({ "type": "listItem", "content": [p] })).collect::<Vec<_>>() })
}

fn item_paragraph(item: &contracts::TicketItem) -> Value {
    let mut content = Vec::new();
    if !item.reference.is_empty() {
        content.push(json!({ "type": "text", "text": item.reference, "marks": [ { "type": "code" } ] }));
    }
    content.push(text(&format!(" {}", item.title)));
    if let Some(status) = &item.status {
        content.push(text(&format!(" ({status})")));
    }
    for (label, value) in &item.facts {
        content.push(text(&format!(" · {label}: {value}")));
    }
    if let Some(link) = &item.link {
        content.push(text(" "));
        content.push(json!({ "type": "text", "text": "link", "marks": [ { "type": "link", "attrs": { "href": link } } ] }));
    }
    json!({ "type": "paragraph", "content": content })
}

/// The description as an ADF document within [`MAX_DESCRIPTION`] characters (serialised):
/// items that do not fit are counted in a closing line instead.
pub fn render_description(desired: &DesiredTicket) -> Value {
    let body: &TicketBody = &desired.body;
    let mut head = vec![paragraph(&truncate_chars(&body.headline, 4_000))];
    if let Some(progress) = &body.progress {
        head.push(paragraph(&format!("Progress: {}.", progress.describe())));
    }
    if let Some(due) = &desired.due {
        head.push(paragraph(&format!("Due {}: {}.", due.date, due_reason(&due.source))));
    }
    if !body.notes.is_empty() {
        head.push(bullet_list(body.notes.iter().map(|n| paragraph(&truncate_chars(n, 1_000))).collect()));
    }
    let footer = paragraph(&format!(
        "Filed by infra-tickets for {} ({}).",
        desired.group_key,
        desired.group_key.token()
    ));
    let doc = |content: Vec<Value>| json!({ "type": "doc", "version": 1, "content": content });
    let size = |value: &Value| value.to_string().chars().count();
    let mut items: Vec<Value> = Vec::new();
    let mut omitted = 0;
    for item in &body.items {
        let candidate = item_paragraph(item);
        let mut trial = head.clone();
        trial.push(heading(3, "Items"));
        let mut trial_items = items.clone();
        trial_items.push(candidate.clone());
        trial.push(bullet_list(trial_items));
        trial.push(paragraph("… and 999999 more items, not shown (JIRA's description limit)."));
        trial.push(footer.clone());
        if omitted == 0 && size(&doc(trial)) <= MAX_DESCRIPTION {
            items.push(candidate);
        } else {
            omitted += 1;
        }
    }
    let mut content = head;
    if !items.is_empty() {
        content.push(heading(3, "Items"));
        content.push(bullet_list(items));
    }
    if omitted > 0 {
        content
            .push(paragraph(&format!("… and {omitted} more items, not shown (JIRA's description limit).")));
    }
    content.push(footer);
    doc(content)
}

/// A label JIRA accepts: no whitespace, at most 255 characters.
pub fn clean_label(label: &str) -> String {
    let joined: String = label.trim().chars().map(|c| if c.is_whitespace() { '-' } else { c }).collect();
    truncate_chars(&joined, MAX_LABEL)
}

fn single_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub use jira::truncate_chars;

pub fn hash_json(value: &Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// Parses `P1=Highest,P2=High,…`.
pub fn parse_lane_priorities(text: &str) -> Result<BTreeMap<Lane, String>, String> {
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lane, priority) =
            pair.split_once('=').ok_or_else(|| format!("{pair:?} is not LANE=PRIORITY (e.g. P1=Highest)"))?;
        let lane: Lane = lane.trim().parse()?;
        if priority.trim().is_empty() {
            return Err(format!("lane {lane} has an empty priority"));
        }
        map.insert(lane, priority.trim().to_owned());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::{DueDate, GroupKey, Source, TicketItem, TicketState};

    fn settings() -> MappingSettings {
        MappingSettings {
            default_project: "PLAT".into(),
            issue_type: "Task".into(),
            lane_priorities: parse_lane_priorities("P1=Highest,P2=High,Maintenance=Medium").unwrap(),
            labels: vec!["infra-tickets".into()],
            team_field: Some("customfield_10050".into()),
        }
    }

    fn desired() -> DesiredTicket {
        DesiredTicket {
            schema: 1,
            group_key: GroupKey::new(Source::Snyk, ["github", "acme/checkout"]),
            source: Source::Snyk,
            team: "payments".into(),
            lane: Lane::P1,
            summary: "Critical vulnerabilities in\nacme/checkout".into(),
            body: TicketBody {
                headline: "Fix these.".into(),
                notes: vec!["Internet-facing".into()],
                items: vec![],
                progress: None,
            },
            due: Some(DueDate {
                date: NaiveDate::from_ymd_opt(2026, 12, 11).unwrap(),
                source: DueDateSource::LaneSla {
                    lane: Lane::P1,
                    since: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
                },
            }),
            state: TicketState::Open,
            labels: vec!["snyk critical".into()],
            links: vec![],
            content_hash: String::new(),
            upstream_version: 1,
        }
        .seal()
    }

    fn team() -> catalog::Team {
        catalog::Team {
            jira_project: Some("PAY".into()),
            jira_components: vec!["payments".into()],
            jira_team_field: Some("Payments".into()),
            ..catalog::Team::default()
        }
    }

    #[test]
    fn maps_lane_team_and_labels_without_spaces() {
        let d = desired();
        let mapped = map(&d, &team(), &settings());
        assert_eq!(mapped.values.project, "PAY");
        assert_eq!(mapped.values.priority.as_deref(), Some("Highest"));
        assert_eq!(mapped.values.summary, "Critical vulnerabilities in acme/checkout");
        assert!(mapped.values.labels.contains(&d.group_key.token()));
        assert!(mapped.values.labels.contains("snyk-critical"));
        assert!(mapped.values.labels.iter().all(|l| !l.contains(' ')));
        let body = create_body(&d, &mapped, &settings());
        assert_eq!(body["fields"]["customfield_10050"]["value"], "Payments");
        assert_eq!(body["properties"][0]["value"]["idempotencyKey"], d.group_key.token());
        assert_eq!(body["fields"]["duedate"], "2026-12-11");
    }

    #[test]
    fn long_bodies_fit_jiras_limits() {
        let mut d = desired();
        d.summary = "x".repeat(400);
        d.body.items = (0..2_000)
            .map(|i| TicketItem {
                reference: format!("SNYK-JS-LODASH-{i}"),
                title: "Prototype pollution in a very long package name that repeats".into(),
                link: Some(format!("https://snyk.io/vuln/{i}")),
                status: Some("open".into()),
                facts: vec![("CVE".into(), format!("CVE-2026-{i}"))],
            })
            .collect();
        let d = d.seal();
        let mapped = map(&d, &team(), &settings());
        assert_eq!(mapped.values.summary.chars().count(), MAX_SUMMARY);
        let size = mapped.description.to_string().chars().count();
        assert!(size <= MAX_DESCRIPTION, "{size}");
        assert!(mapped.description.to_string().contains("more items, not shown"));
    }

    #[test]
    fn an_edit_touches_only_what_the_source_changed() {
        let d = desired();
        let written = map(&d, &team(), &settings()).values;
        assert!(diff(&written, &map(&d, &team(), &settings()), &settings()).is_empty());
        let mut moved = d.clone();
        moved.due.as_mut().unwrap().date = NaiveDate::from_ymd_opt(2027, 1, 5).unwrap();
        moved.summary = "New summary".into();
        let edit = diff(&written, &map(&moved.seal(), &team(), &settings()), &settings());
        assert_eq!(edit.fields.keys().collect::<Vec<_>>(), ["description", "duedate", "summary"]);
        assert!(edit.due_date_moved.is_some());
        assert!(edit.labels_add.is_empty() && edit.labels_remove.is_empty());
    }

    #[test]
    fn a_team_change_is_one_edit_of_project_components_and_team_field() {
        let d = desired();
        let written = map(&d, &team(), &settings()).values;
        let platform = catalog::Team {
            jira_project: Some("PLAT".into()),
            jira_components: vec!["platform".into()],
            jira_team_field: Some("Platform".into()),
            ..catalog::Team::default()
        };
        let edit = diff(&written, &map(&d, &platform, &settings()), &settings());
        assert_eq!(edit.moves_to_project.as_deref(), Some("PLAT"));
        assert!(!edit.fields.contains_key("project"), "an edit cannot change the project");
        assert_eq!(edit.fields["customfield_10050"]["value"], "Platform");
        assert_eq!(edit.fields["components"][0]["name"], "platform");
    }

    /// `GET /rest/api/3/field` entries as sites answer them (our own, after the field list in the
    /// official v3 spec's example and the Team field's `schema.custom` reported in
    /// https://github.com/textfuel/lazyjira/issues/69 and https://github.com/getsentry/sentry/pull/76091).
    #[test]
    fn the_team_fields_kind_comes_from_its_schema() {
        let field = |custom: &str| {
            json!({"id": "customfield_10050", "name": "Team", "custom": true,
                   "schema": {"type": "any", "custom": custom, "customId": 10050}})
        };
        let cases = [
            ("com.atlassian.jira.plugin.system.customfieldtypes:select", Ok(TeamFieldKind::SingleSelect)),
            ("com.atlassian.jira.plugin.system.customfieldtypes:multiselect", Ok(TeamFieldKind::MultiSelect)),
            ("com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team", Ok(TeamFieldKind::Team)),
            ("com.atlassian.teams:rm-teams-custom-field-team", Ok(TeamFieldKind::Team)),
            ("com.atlassian.jira.plugin.system.customfieldtypes:userpicker", Ok(TeamFieldKind::UserPicker)),
        ];
        for (custom, expected) in cases {
            assert_eq!(team_field_kind(&[field(custom)], "customfield_10050"), expected, "{custom}");
        }
        let text = team_field_kind(
            &[field("com.atlassian.jira.plugin.system.customfieldtypes:textfield")],
            "customfield_10050",
        );
        assert!(text.unwrap_err().contains("textfield"));
        assert!(
            team_field_kind(&[], "customfield_10050").unwrap_err().contains("no field customfield_10050")
        );
        let mut fields = serde_json::Map::new();
        fields.insert("customfield_10050".into(), json!({"value": "5f1c-id"}));
        shape_team_field(&mut fields, "customfield_10050", TeamFieldKind::Team);
        assert_eq!(fields["customfield_10050"], "5f1c-id");
    }

    #[test]
    fn adf_never_holds_an_empty_text_node() {
        let mut d = desired();
        d.body.headline = String::new();
        d.body.notes = vec![String::new()];
        d.body.items = vec![TicketItem {
            reference: String::new(),
            title: String::new(),
            link: None,
            status: None,
            facts: vec![],
        }];
        let doc = render_description(&d.seal());
        fn empty_text(node: &Value) -> bool {
            node.get("type").and_then(Value::as_str) == Some("text")
                && node.get("text").and_then(Value::as_str).is_none_or(str::is_empty)
                || node.get("content").and_then(Value::as_array).is_some_and(|c| c.iter().any(empty_text))
        }
        assert!(!empty_text(&doc), "{doc}");
    }

    #[test]
    fn team_and_people_names_resolve_to_ids_with_clear_errors() {
        assert!(is_team_id("5f1c2d3e-0000-4000-8000-000000000001"));
        assert!(!is_team_id("Payments"));
        assert!(is_account_id("712020:0a1b2c3d-0000-4000-8000-000000000001"));
        assert!(is_account_id("5b10a2844c20165700ede21g".replace('g', "f").as_str()));
        assert!(!is_account_id("lead@example.com") && !is_account_id("Payments Lead"));
        let teams = vec![
            ("t-1".to_owned(), "Payments".to_owned(), "ACTIVE".to_owned()),
            ("t-2".to_owned(), "Data".to_owned(), "ARCHIVED".to_owned()),
        ];
        assert_eq!(pick_team(&teams, "Payments").unwrap(), "t-1");
        assert_eq!(pick_team(&teams, "payments ").unwrap(), "t-1");
        let unknown = pick_team(&teams, "Data").unwrap_err();
        assert!(
            unknown.contains("no active Atlassian team is named \"Data\" (teams: Payments)"),
            "{unknown}"
        );
        let users = vec![
            json!({"accountId": "a-1", "displayName": "Payments Lead", "emailAddress": "p.lead@example.com", "active": true, "accountType": "atlassian"}),
            json!({"accountId": "a-2", "displayName": "Payments Lead", "active": true, "accountType": "atlassian"}),
            json!({"accountId": "a-3", "displayName": "Gone", "emailAddress": "gone@example.com", "active": false}),
        ];
        assert_eq!(pick_user(&users, "P.Lead@example.com").unwrap(), "a-1");
        assert!(pick_user(&users, "Payments Lead").unwrap_err().contains("2 JIRA users match"));
        assert!(pick_user(&users, "gone@example.com").unwrap_err().contains("no active JIRA user"));
    }

    #[test]
    fn lane_priorities_parse_with_clear_errors() {
        assert!(parse_lane_priorities("P9=High").unwrap_err().contains("P9"));
        assert!(parse_lane_priorities("P1").unwrap_err().contains("LANE=PRIORITY"));
    }
}
