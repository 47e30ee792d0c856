//! jira-writer end to end: a real nats-server, the JIRA simulator (checked against the official
//! spec after every test), desired tickets published on DESIRED_TICKETS as triage publishes them.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bus::topology::{JIRA_LEDGER, JIRA_WRITER, TopologyConfig};
use bus::{JsonKv, Outgoing};
use chrono::NaiveDate;
use contracts::{
    ChangeKind, DesiredTicket, DueDate, DueDateSource, GroupKey, Lane, Source, TicketBody, TicketItem,
    TicketState, UpstreamLink,
};
use e2e_tests::{TestBroker, eventually};
use jira_sim::contract::Spec;
use jira_sim::{
    BOT_EMAIL, BOT_TOKEN, Fault, HUMAN_EMAIL, HUMAN_TOKEN, JiraSim, Permission, SimConfig, SimIssue,
    TEAM_FIELD, TeamFieldKind, Workflow,
};
use jira_writer::ledger::LedgerEntry;
use jira_writer::{JiraClient, JiraClientConfig, WriterError};
use serde_json::json;
use service_kit::{Clock, Secret};
use tokio_util::sync::CancellationToken;

const CATALOG: &str = r#"
default_team = "platform"

[teams.platform]
jira_project = "PLAT"
jira_components = ["platform"]
jira_team_field = "Platform"

[teams.payments]
jira_project = "PAY"
jira_components = ["payments"]
jira_team_field = "Payments"
jira_labels = ["team-payments"]
"#;

const WAIT: Duration = Duration::from_secs(60);

struct World {
    broker: TestBroker,
    sim: JiraSim,
    clock: Clock,
    catalog: tempfile::NamedTempFile,
}

struct Running {
    task: tokio::task::JoinHandle<Result<(), WriterError>>,
    shutdown: CancellationToken,
    hooks: jira_writer::Hooks,
}

impl Running {
    fn address(&self) -> Option<SocketAddr> {
        self.hooks.listening.get().copied()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

impl World {
    async fn start(sim_config: SimConfig) -> World {
        Self::start_with(sim_config, TopologyConfig::default()).await
    }

    async fn start_with(sim_config: SimConfig, topology: TopologyConfig) -> World {
        let broker = TestBroker::start_with(topology).await;
        let clock = sim_config.clock.clone();
        let sim = JiraSim::start(sim_config).await.expect("the JIRA simulator starts");
        let mut catalog = tempfile::NamedTempFile::new().unwrap();
        catalog.write_all(CATALOG.as_bytes()).unwrap();
        World { broker, sim, clock, catalog }
    }

    fn config(&self, extra: &[&str]) -> jira_writer::Config {
        let url = self.sim.url();
        let mut args: Vec<String> = [
            "jira-writer",
            "--nats-url",
            self.broker.url(),
            "--listen",
            "127.0.0.1:0",
            "--jira-url",
            &url,
            "--jira-email",
            BOT_EMAIL,
            "--jira-api-token",
            BOT_TOKEN,
            "--jira-project",
            "PLAT",
            "--jira-team-field",
            TEAM_FIELD,
            "--catalog",
            self.catalog.path().to_str().unwrap(),
            "--consistency-window",
            "2s",
            "--claim-recheck",
            "200ms",
            "--jira-backoff",
            "20ms",
            "--jira-requests-per-second",
            "0",
            "--jira-auth-pause",
            "300ms",
            "--jira-outage-pause",
            "300ms",
            "--sweep-every",
            "1h",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut config: jira_writer::Config =
            service_kit::config::try_parse_from(args.into_iter().map(Into::into), |_| None)
                .expect("a valid config");
        config.clock = self.clock.clone();
        config
    }

    fn start_writer(&self, config: jira_writer::Config) -> Running {
        let shutdown = CancellationToken::new();
        let hooks = config.hooks.clone();
        let task = tokio::spawn(jira_writer::run(config, shutdown.clone()));
        Running { task, shutdown, hooks }
    }

    async fn publish(&self, desired: &DesiredTicket) {
        self.publish_with_id(desired, &desired.message_id()).await;
    }

    async fn publish_with_id(&self, desired: &DesiredTicket, id: &str) {
        let message = Outgoing::new(desired.subject(), desired.to_json()).with_id(id);
        self.broker.publisher.publish(message).await.expect("published");
    }

    async fn ledger(&self, desired: &DesiredTicket) -> Option<LedgerEntry> {
        // None while the bucket does not exist (a test deleted it; the writer makes it again).
        let ledger = JsonKv::<LedgerEntry>::open(&self.broker.js, JIRA_LEDGER).await.ok()?;
        ledger.get(&desired.group_key.token()).await.unwrap().map(|v| v.value)
    }

    async fn wait_applied(&self, desired: &DesiredTicket) {
        eventually("the ledger to record the desired state", WAIT, || async {
            self.ledger(desired).await.is_some_and(|e| {
                e.issue.is_some()
                    && e.applied_version == desired.upstream_version
                    && e.content_hash == desired.content_hash
            })
        })
        .await;
        self.broker.wait_until_drained(JIRA_WRITER, WAIT).await;
    }

    /// Publishes a first desired state, waits until it is applied, returns its issue's key.
    async fn file(&self, desired: &DesiredTicket) -> String {
        self.publish(desired).await;
        self.wait_applied(desired).await;
        self.issues_of(desired)[0].key.clone()
    }

    fn issues_of(&self, desired: &DesiredTicket) -> Vec<SimIssue> {
        let token = desired.group_key.token();
        self.sim.issues().into_iter().filter(|i| i.labels.contains(&token)).collect()
    }

    fn person(&self) -> JiraClient {
        JiraClient::new(JiraClientConfig::new(self.sim.url(), HUMAN_EMAIL, Secret::new(HUMAN_TOKEN))).unwrap()
    }

    /// Every request the writer sent and every answer the simulator gave, against the spec.
    fn assert_contract(&self) {
        let spec = Spec::load_default().expect("the JIRA contract description");
        let calls = self.sim.calls();
        assert!(!calls.is_empty(), "no JIRA calls to check");
        let violations = spec.check_calls(&calls);
        assert!(violations.is_empty(), "contract violations: {violations:#?}");
    }

    /// [`World::assert_contract`] but for the bulk move's request: the official spec marks as
    /// required `targetToMultipleSourceMapping` and `issueIdOrKeys`, names its own properties
    /// (`targetToSourcesMapping`, `issueIdsOrKeys`, what JIRA takes) do not have, so no body can
    /// satisfy it; everything else of every call is checked.
    fn assert_contract_but_the_move_request(&self) {
        let spec = Spec::load_default().expect("the JIRA contract description");
        let violations: Vec<_> = spec
            .check_calls(&self.sim.calls())
            .into_iter()
            .filter(|v| {
                !(v.call.starts_with("POST /rest/api/3/bulk/issues/move ")
                    && v.problem.starts_with("request of submitBulkMove breaks the schema")
                    && v.problem.contains("\"issueIdOrKeys\" is a required property")
                    && v.problem.contains("\"targetToMultipleSourceMapping\" is a required property")
                    && v.problem.matches("; at ").count() == 1)
            })
            .collect();
        assert!(violations.is_empty(), "contract violations: {violations:#?}");
    }

    fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| c.method == method && c.path.ends_with(path_suffix) && !c.faulted)
            .count()
    }
}

fn desired(name: &str, team: &str, lane: Lane, due: &str, version: u64) -> DesiredTicket {
    DesiredTicket {
        schema: contracts::SCHEMA_VERSION,
        group_key: GroupKey::new(Source::Snyk, ["github", name]),
        source: Source::Snyk,
        team: team.into(),
        lane,
        summary: format!("Critical vulnerabilities in {name}"),
        body: TicketBody {
            headline: format!("Upgrade the vulnerable packages of {name}. Then redeploy."),
            notes: vec!["Internet-facing, mature exploit.".into()],
            items: vec![TicketItem {
                reference: "SNYK-JS-LODASH-1040724".into(),
                title: "Prototype Pollution in lodash".into(),
                link: Some("https://security.snyk.io/vuln/SNYK-JS-LODASH-1040724".into()),
                status: Some("open".into()),
                facts: vec![("CVE".into(), "CVE-2020-8203".into())],
            }],
            progress: None,
        },
        due: Some(DueDate {
            date: due.parse().unwrap(),
            source: DueDateSource::LaneSla { lane, since: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap() },
        }),
        state: TicketState::Open,
        labels: vec!["snyk".into()],
        links: vec![UpstreamLink {
            global_id: format!("snyk:project:{name}"),
            title: format!("Snyk project {name}"),
            url: format!("https://app.snyk.io/org/acme/project/{name}"),
        }],
        content_hash: String::new(),
        upstream_version: version,
    }
    .seal()
}

/// The one issue of a desired ticket, with every field checked.
fn assert_one_issue(
    world: &World,
    d: &DesiredTicket,
    project: &str,
    priority: &str,
    team_value: &str,
) -> SimIssue {
    let issues = world.issues_of(d);
    assert_eq!(issues.len(), 1, "exactly one issue for {}: {issues:#?}", d.group_key);
    let issue = issues.into_iter().next().unwrap();
    assert_eq!(issue.project, project);
    assert_eq!(issue.priority.as_deref(), Some(priority));
    assert_eq!(issue.team.as_deref(), Some(team_value));
    assert_eq!(issue.due_date.as_deref(), Some(d.due.as_ref().unwrap().date.to_string().as_str()));
    assert_eq!(issue.summary, d.summary);
    assert_eq!(issue.issue_type.as_deref(), Some("Task"));
    let description = jira_sim::adf_text(issue.description.as_ref().expect("a description"));
    assert!(description.contains(&d.body.headline), "{description}");
    assert!(description.contains("SNYK-JS-LODASH-1040724"), "{description}");
    assert!(issue.labels.contains(&"infra-tickets".to_owned()));
    assert!(issue.labels.contains(&format!("lane-{}", d.lane.as_str().to_ascii_lowercase())));
    assert_eq!(issue.properties["infra-tickets"]["idempotencyKey"], d.group_key.token());
    assert_eq!(issue.properties["infra-tickets"]["groupKey"], d.group_key.as_str());
    assert_eq!(issue.remote_links.len(), 1, "one remote link per upstream link");
    assert_eq!(issue.remote_links[0].0.as_deref(), Some(d.links[0].global_id.as_str()));
    issue
}

async fn created_changes(world: &World) -> Vec<contracts::TicketChange> {
    world.broker.ticket_changes().await.into_iter().filter(|c| c.kind == ChangeKind::Created).collect()
}

#[tokio::test]
async fn redelivered_and_unchanged_states_make_one_issue_and_no_more_calls() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let tickets = [
        desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1),
        desired("acme/website", "platform", Lane::P2, "2026-12-27", 1),
        desired("acme/batch", "platform", Lane::P4, "2027-06-01", 1),
    ];
    for d in &tickets {
        world.publish(d).await;
    }
    for d in &tickets {
        world.wait_applied(d).await;
    }
    assert_one_issue(&world, &tickets[0], "PAY", "Highest", "Payments");
    assert_one_issue(&world, &tickets[1], "PLAT", "High", "Platform");
    assert_one_issue(&world, &tickets[2], "PLAT", "Low", "Platform");
    assert_eq!(world.count("POST", "/rest/api/3/issue"), 3);
    assert_eq!(
        world.count("POST", "/search/jql"),
        1,
        "one search at start (a new ledger is checked against JIRA), none per fresh claim"
    );
    assert_eq!(world.count("GET", "/rest/api/3/field"), 1, "the team field's type, read once at start");
    assert_eq!(world.sim.call_count(), 2 + 6, "two calls per created ticket: create and remote link");
    let calls_after_create = world.sim.call_count();

    // The same messages delivered again, and the same content at a later version.
    for d in &tickets {
        world.publish_with_id(d, &format!("redelivery-{}", d.group_key.token())).await;
        let mut same = d.clone();
        same.upstream_version = 2;
        world.publish(&same).await;
    }
    world.broker.wait_until_drained(JIRA_WRITER, WAIT).await;
    assert_eq!(world.sim.call_count(), calls_after_create, "unchanged states cost no JIRA call");
    for d in &tickets {
        assert_eq!(world.issues_of(d).len(), 1);
    }
    let created = created_changes(&world).await;
    assert_eq!(created.len(), 3, "{created:#?}");
    let payments = created.iter().find(|c| c.group_key == tickets[0].group_key).unwrap();
    assert_eq!(payments.team, "payments");
    assert_eq!(payments.issue_key, world.issues_of(&tickets[0])[0].key);
    assert_eq!(payments.issue_url, format!("{}/browse/{}", world.sim.url(), payments.issue_key));
    writer.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn a_crash_between_create_and_ledger_write_with_30s_search_lag_makes_no_duplicate() {
    let clock = Clock::manual("2026-11-27T09:00:00Z".parse().unwrap());
    let sim = SimConfig { clock: clock.clone(), search_lag: Duration::from_secs(30), ..SimConfig::default() };
    let topology = TopologyConfig { ack_wait: Duration::from_secs(2), ..TopologyConfig::default() };
    let world = World::start_with(sim, topology).await;
    // The window covers the lag; rechecks are quick so the test moves the clock, not waits.
    let config = world.config(&["--consistency-window", "45s"]);
    config.hooks.arm_crash_after_create();
    let first = world.start_writer(config);
    let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&d).await;
    let outcome = tokio::time::timeout(WAIT, first.task).await.expect("the writer crashes").unwrap();
    assert!(matches!(outcome, Err(WriterError::Crashed)), "{outcome:?}");
    assert_eq!(world.issues_of(&d).len(), 1, "the create reached JIRA");
    let ledger = world.ledger(&d).await.expect("the claim");
    assert!(
        ledger.issue.is_none() && ledger.claim.is_some(),
        "the crash came before the ledger write: {ledger:?}"
    );

    // Restart: the message is redelivered; search does not show the issue for 30 s.
    let searches_before = world.count("POST", "/search/jql");
    let second = world.start_writer(world.config(&["--consistency-window", "45s"]));
    eventually("the restarted writer to search and miss", WAIT, || async {
        world
            .sim
            .calls()
            .iter()
            .filter(|c| c.path.ends_with("/search/jql") && c.status == 200)
            .skip(searches_before)
            .any(|c| {
                c.response_body.as_ref().is_some_and(|b| b["issues"].as_array().is_some_and(|a| a.is_empty()))
            })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    clock.advance(chrono::Duration::seconds(10));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(world.issues_of(&d).len(), 1, "a young claim is waited out, not re-created");
    assert_eq!(world.ledger(&d).await.unwrap().issue, None);

    // The index catches up after 30 s: the issue is found by its label and adopted.
    clock.advance(chrono::Duration::seconds(21));
    world.wait_applied(&d).await;
    let issue = assert_one_issue(&world, &d, "PAY", "Highest", "Payments");
    assert_eq!(world.ledger(&d).await.unwrap().issue.unwrap().key, issue.key);
    assert_eq!(world.count("POST", "/rest/api/3/issue"), 1);
    let created = created_changes(&world).await;
    assert_eq!(created.len(), 1, "{created:#?}");
    second.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn two_replicas_racing_on_the_same_keys_make_one_issue_each() {
    let world = World::start(SimConfig { latency: Duration::from_millis(20), ..SimConfig::default() }).await;
    let a = world.start_writer(world.config(&["--instance-id", "replica-a", "--concurrency", "16"]));
    let b = world.start_writer(world.config(&["--instance-id", "replica-b", "--concurrency", "16"]));
    let names: Vec<String> = (0..8).map(|i| format!("acme/service-{i}")).collect();
    let mut last = Vec::new();
    for version in 1..=3u64 {
        for name in &names {
            let mut d = desired(name, "platform", Lane::P3, "2027-02-27", version);
            d.summary = format!("Critical vulnerabilities in {name} (v{version})");
            let d = d.seal();
            world.publish(&d).await;
            if version == 3 {
                last.push(d);
            }
        }
    }
    for d in &last {
        world.wait_applied(d).await;
    }
    for d in &last {
        let issue = assert_one_issue(&world, d, "PLAT", "Medium", "Platform");
        assert!(issue.summary.ends_with("(v3)"));
    }
    let created = created_changes(&world).await;
    assert_eq!(created.len(), names.len(), "one created event per ticket: {created:#?}");
    a.stop().await;
    b.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn storms_of_429_and_5xx_on_a_third_of_the_calls_still_make_one_issue_each() {
    let world = World::start(SimConfig::default()).await;
    world.sim.set_storm(Some((
        3,
        vec![
            Fault::RateLimited { retry_after_secs: 1 },
            Fault::ServerError,
            Fault::Unavailable { retry_after_secs: 1 },
            Fault::BadGateway,
        ],
    )));
    let writer = world.start_writer(world.config(&["--consistency-window", "1s"]));
    let tickets: Vec<DesiredTicket> =
        (0..6).map(|i| desired(&format!("acme/storm-{i}"), "payments", Lane::P2, "2026-12-27", 1)).collect();
    for d in &tickets {
        world.publish(d).await;
    }
    for d in &tickets {
        world.wait_applied(d).await;
    }
    for d in &tickets {
        assert_one_issue(&world, d, "PAY", "High", "Payments");
    }
    let faulted = world.sim.calls().iter().filter(|c| c.faulted).count();
    assert!(faulted > 0, "the storm hit");
    assert!(world.broker.dead_letters().await.is_empty());
    assert_eq!(created_changes(&world).await.len(), tickets.len());
    writer.stop().await;
    world.assert_contract();
}

/// The hardest duplicate: JIRA creates the issue but the answer is lost (a 500 after the work),
/// while its search still lags. The writer must neither repeat the create blindly nor create again
/// when the label search misses; it waits out the consistency window and adopts the issue.
#[tokio::test]
async fn creates_that_succeed_but_answer_500_under_search_lag_make_no_duplicate() {
    let world = World::start(SimConfig::default()).await;
    world.sim.set_search_lag(std::time::Duration::from_secs(2));
    world.sim.set_storm(Some((2, vec![Fault::ServerErrorAfterWork])));
    let writer =
        world.start_writer(world.config(&["--consistency-window", "3s", "--claim-recheck", "500ms"]));
    let tickets: Vec<DesiredTicket> = (0..6)
        .map(|i| desired(&format!("acme/lost-answer-{i}"), "payments", Lane::P2, "2026-12-27", 1))
        .collect();
    for d in &tickets {
        world.publish(d).await;
    }
    for d in &tickets {
        world.wait_applied(d).await;
    }
    for d in &tickets {
        assert_one_issue(&world, d, "PAY", "High", "Payments");
    }
    let lost_answers = world
        .sim
        .calls()
        .iter()
        .filter(|c| c.faulted && c.method == "POST" && c.path == "/rest/api/3/issue")
        .count();
    assert!(lost_answers > 0, "some creates were done but answered 500");
    assert!(world.broker.dead_letters().await.is_empty());
    assert_eq!(created_changes(&world).await.len(), tickets.len(), "one created change per ticket");
    writer.stop().await;
}

/// An edit that moves the due date carries a comment saying why; when JIRA does the edit and
/// then answers 500, the message is handled again and the comment is not written twice.
#[tokio::test]
async fn an_edit_jira_did_before_answering_500_leaves_one_comment() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let v1 = desired("acme/checkout", "platform", Lane::P2, "2026-12-27", 1);
    let key = world.file(&v1).await;

    // The second call from now (the edit, after the read of the comments) is done, then 500.
    world.sim.set_storm(Some((2, vec![Fault::ServerErrorAfterWork])));
    let mut v2 = v1.clone();
    v2.due = Some(DueDate { date: "2027-02-15".parse().unwrap(), source: DueDateSource::EventWindow });
    v2.upstream_version = 2;
    let v2 = v2.seal();
    world.publish(&v2).await;
    eventually("the edit to be answered 500 after the work", WAIT, || async {
        world.sim.calls().iter().any(|c| c.faulted && c.method == "PUT")
    })
    .await;
    world.sim.set_storm(None);
    world.wait_applied(&v2).await;

    let issue = world.sim.issue(&key).unwrap();
    assert_eq!(issue.due_date.as_deref(), Some("2027-02-15"));
    let moved: Vec<_> =
        issue.comments.iter().filter(|(_, text)| text.contains("from 2026-12-27 to 2027-02-15")).collect();
    assert_eq!(moved.len(), 1, "one comment for one move: {:?}", issue.comments);
    writer.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn a_change_is_one_edit_a_resolution_one_transition_and_a_human_due_date_wins() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let v1 = desired("acme/checkout", "platform", Lane::P2, "2026-12-27", 1);
    let key = world.file(&v1).await;

    // A person moves the due date in JIRA.
    world.person().edit_issue(&key, &json!({"fields": {"duedate": "2027-01-31"}}), false).await.unwrap();

    // The source changes the summary only: one edit, the person's due date stays.
    world.sim.clear_calls();
    let mut v2 = v1.clone();
    v2.summary = "Critical vulnerabilities in acme/checkout (3 new)".into();
    v2.upstream_version = 2;
    let v2 = v2.seal();
    world.publish(&v2).await;
    world.wait_applied(&v2).await;
    let calls: Vec<String> = world.sim.calls().iter().map(|c| format!("{} {}", c.method, c.path)).collect();
    assert_eq!(calls, [format!("PUT /rest/api/3/issue/{key}")]);
    let issue = world.sim.issue(&key).unwrap();
    assert_eq!(issue.summary, v2.summary);
    assert_eq!(issue.due_date.as_deref(), Some("2027-01-31"), "the human edit is kept");

    // The source moves the due date: applied, with a comment saying why.
    world.sim.clear_calls();
    let mut v3 = v2.clone();
    v3.due = Some(DueDate { date: "2027-02-15".parse().unwrap(), source: DueDateSource::EventWindow });
    v3.upstream_version = 3;
    let v3 = v3.seal();
    world.publish(&v3).await;
    world.wait_applied(&v3).await;
    let calls: Vec<String> = world.sim.calls().iter().map(|c| format!("{} {}", c.method, c.path)).collect();
    assert_eq!(
        calls,
        [format!("GET /rest/api/3/issue/{key}/comment"), format!("PUT /rest/api/3/issue/{key}")],
        "one edit, after one read of the comments (so an edit JIRA did and answered an error for \
         never says it twice)"
    );
    let issue = world.sim.issue(&key).unwrap();
    assert_eq!(issue.due_date.as_deref(), Some("2027-02-15"));
    let comment = &issue.comments.last().expect("a comment").1;
    assert!(
        comment.contains("from 2026-12-27 to 2027-02-15") && comment.contains("scheduled window"),
        "{comment}"
    );

    // The owner changes to a team with another project: JIRA Cloud cannot change the project by
    // an edit, so the issue is moved (bulk move, then its task), then one edit sets the new
    // team's field and component.
    world.sim.clear_calls();
    let mut v4 = v3.clone();
    v4.team = "payments".into();
    v4.upstream_version = 4;
    let v4 = v4.seal();
    world.publish(&v4).await;
    world.wait_applied(&v4).await;
    let calls = world.sim.calls();
    let count = |method: &str, path: &str| {
        calls.iter().filter(|c| c.method == method && c.path.contains(path)).count()
    };
    assert_eq!(count("POST", "/rest/api/3/bulk/issues/move"), 1, "one move");
    assert_eq!(count("PUT", "/rest/api/3/issue/"), 1, "one edit");
    assert!(
        calls.iter().all(|c| c.method == "GET" || c.path.contains("/bulk/issues/move") || c.method == "PUT"),
        "no other write"
    );
    let moved = world.sim.issue(&key).unwrap();
    assert_eq!((moved.project.as_str(), moved.team.as_deref()), ("PAY", Some("Payments")));
    assert_eq!(moved.components, ["payments"]);
    let changes = world.broker.ticket_changes().await;
    let team_changed = changes.iter().find(|c| c.kind == ChangeKind::TeamChanged).expect("a team change");
    assert_eq!(team_changed.previous_team.as_deref(), Some("platform"));
    assert_eq!(team_changed.issue_key, moved.key);

    // Resolved upstream: one transition, no edit.
    world.sim.clear_calls();
    let mut v5 = v4.clone();
    v5.state = TicketState::Resolved;
    v5.upstream_version = 5;
    let v5 = v5.seal();
    world.publish(&v5).await;
    world.wait_applied(&v5).await;
    assert_eq!(world.count("POST", "/transitions"), 1);
    assert_eq!(world.count("PUT", &moved.key), 0);
    assert_eq!(world.sim.issue(&key).unwrap().status_category, "done");
    let kinds: Vec<ChangeKind> = world.broker.ticket_changes().await.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Updated,
            ChangeKind::TeamChanged,
            ChangeKind::Resolved
        ]
    );

    // It comes back within the reopen window: reopened, not a new ticket.
    let mut v6 = v5.clone();
    v6.state = TicketState::Open;
    v6.upstream_version = 6;
    let v6 = v6.seal();
    world.publish(&v6).await;
    world.wait_applied(&v6).await;
    assert_eq!(world.issues_of(&v6).len(), 1);
    assert_eq!(world.sim.issue(&key).unwrap().status_category, "new");
    assert_eq!(world.broker.ticket_changes().await.last().unwrap().kind, ChangeKind::Reopened);
    writer.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn a_person_closing_a_ticket_is_respected_and_a_late_comeback_files_a_linked_ticket() {
    let clock = Clock::manual("2026-11-27T09:00:00Z".parse().unwrap());
    let world = World::start(SimConfig { clock: clock.clone(), ..SimConfig::default() }).await;
    // Reopening a ticket closed while its source is open is switched off here (tested below).
    let writer = world.start_writer(world.config(&[
        "--reopen-window",
        "7d",
        "--reopen-closed-with-open-work",
        "false",
    ]));
    let v1 = desired("acme/legacy", "platform", Lane::P4, "2027-06-01", 1);
    let key = world.file(&v1).await;
    // A person closes it; the source changes content but is still open: not reopened.
    assert!(world.person().transition_to_category(&key, "done", None).await.unwrap());
    let mut v2 = v1.clone();
    v2.summary = "Critical vulnerabilities in acme/legacy (updated)".into();
    v2.upstream_version = 2;
    let v2 = v2.seal();
    world.publish(&v2).await;
    world.wait_applied(&v2).await;
    assert_eq!(world.sim.issue(&key).unwrap().status_category, "done", "never fight a manual status change");
    // Resolved upstream while done: no transition.
    let mut v3 = v2.clone();
    v3.state = TicketState::Resolved;
    v3.upstream_version = 3;
    let v3 = v3.seal();
    world.sim.clear_calls();
    world.publish(&v3).await;
    world.wait_applied(&v3).await;
    assert_eq!(world.count("POST", "/transitions"), 0);
    // Back after 30 days (past the 7-day window): a new ticket linked to the old one.
    clock.advance(chrono::Duration::days(30));
    let mut v4 = v3.clone();
    v4.state = TicketState::Open;
    v4.upstream_version = 4;
    let v4 = v4.seal();
    world.publish(&v4).await;
    world.wait_applied(&v4).await;
    let issues = world.issues_of(&v4);
    assert_eq!(issues.len(), 2);
    let new = issues.iter().find(|i| i.key != key).unwrap();
    assert_eq!(new.status_category, "new");
    assert!(new.links.iter().any(|(t, other, _)| t == "Relates" && *other == key), "{:?}", new.links);
    assert_eq!(world.sim.issue(&key).unwrap().status_category, "done");
    assert_eq!(world.ledger(&v4).await.unwrap().issue.unwrap().key, new.key);
    writer.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn unauthorized_pauses_reports_unready_and_resumes() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let http = reqwest::Client::new();
    eventually("the writer to be ready", WAIT, || async {
        match writer.address() {
            Some(a) => http.get(format!("http://{a}/readyz")).send().await.is_ok_and(|r| r.status() == 200),
            None => false,
        }
    })
    .await;
    let readyz = format!("http://{}/readyz", writer.address().unwrap());
    world.sim.set_persistent_fault(Some(Fault::Unauthorized));
    let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&d).await;
    eventually("readyz to report the pause", WAIT, || async {
        match http.get(&readyz).send().await {
            Ok(r) if r.status() == 503 => r.text().await.unwrap_or_default().contains("paused"),
            _ => false,
        }
    })
    .await;
    assert!(world.sim.issues().is_empty());
    assert!(world.broker.dead_letters().await.is_empty(), "a 401 does not dead-letter");
    world.sim.set_persistent_fault(None);
    world.wait_applied(&d).await;
    assert_one_issue(&world, &d, "PAY", "Highest", "Payments");
    eventually("readyz to recover", WAIT, || async {
        http.get(&readyz).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    writer.stop().await;
    world.assert_contract();
}

#[tokio::test]
async fn a_field_not_on_the_screen_dead_letters_with_jiras_message_and_the_writer_goes_on() {
    let world = World::start(SimConfig::default()).await;
    world.sim.remove_from_screen("PLAT", TEAM_FIELD);
    let writer = world.start_writer(world.config(&[]));
    let refused = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&refused).await;
    eventually("a dead letter", WAIT, || async { !world.broker.dead_letters().await.is_empty() }).await;
    let letters = world.broker.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].stage, "jira-writer");
    assert!(
        letters[0].reason.contains(
            "customfield_10050: Field 'customfield_10050' cannot be set. It is not on the appropriate screen, or unknown."
        ),
        "{}",
        letters[0].reason
    );
    assert!(world.ledger(&refused).await.is_none_or(|e| e.claim.is_none()), "the claim is released");
    let fine = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&fine).await;
    world.wait_applied(&fine).await;
    assert_one_issue(&world, &fine, "PAY", "Highest", "Payments");
    writer.stop().await;
    world.assert_contract();
}

/// The notifier as deployed beside the writer, posting to the Slack simulator.
async fn start_notifier(
    world: &World,
    slack: &slack_sim::SlackSim,
    catalog: &tempfile::NamedTempFile,
) -> (notifier::Notifier, CancellationToken) {
    let args: Vec<String> = [
        "notifier",
        "--nats-url",
        world.broker.url(),
        "--listen",
        "127.0.0.1:0",
        "--catalog",
        catalog.path().to_str().unwrap(),
        "--slack-api-url",
        &slack.api_url(),
        "--slack-bot-token",
        slack_sim::DEFAULT_BOT_TOKEN,
        "--jira-url",
        &world.sim.url(),
        "--jira-email",
        BOT_EMAIL,
        "--jira-api-token",
        BOT_TOKEN,
        "--jira-requests-per-second",
        "0",
        "--reminders",
        "false",
        "--channel-interval",
        "20ms",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut config: notifier::Config =
        service_kit::config::try_parse_from(args.into_iter().map(Into::into), |_| None).unwrap();
    config.clock = world.clock.clone();
    let shutdown = CancellationToken::new();
    let running = notifier::start(config, shutdown.clone()).await.expect("the notifier starts");
    (running, shutdown)
}

/// A duplicate that slipped through (another tool, or a writer without the ledger, filed the same
/// ticket) is closed by the sweep and linked ("duplicates" on the closed one), one
/// `duplicate_closed` change names the ticket kept, and the notifier posts one Slack message
/// naming it. Exactly once: a restarted writer's sweeps (nothing in memory) do nothing again, and
/// one whose ledger write after the announcement was lost announces it again under the same
/// message id, which the stream stores once.
#[tokio::test]
async fn the_sweep_closes_and_links_a_duplicate_that_slipped_through() {
    let world = World::start(SimConfig::default()).await;
    let slack = slack_sim::SlackSim::start().await.unwrap();
    slack.add_channel("C0PAYMENTS", "payments", true);
    let mut slack_catalog = tempfile::NamedTempFile::new().unwrap();
    slack_catalog
        .write_all(b"default_team = \"payments\"\n[teams.payments]\njira_project = \"PAY\"\nslack_channel = \"C0PAYMENTS\"\n")
        .unwrap();
    let (notifier, notifier_stop) = start_notifier(&world, &slack, &slack_catalog).await;
    let writer = world.start_writer(world.config(&["--sweep-every", "300ms"]));
    let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&d).await;
    world.wait_applied(&d).await;
    let kept = world.issues_of(&d)[0].clone();
    // Another tool (or a writer without the ledger) files the same ticket again.
    let bot =
        JiraClient::new(JiraClientConfig::new(world.sim.url(), BOT_EMAIL, Secret::new(BOT_TOKEN))).unwrap();
    let duplicate = bot
        .create_issue(&json!({"fields": {
            "project": {"key": "PAY"}, "issuetype": {"name": "Task"}, "summary": d.summary,
            "labels": ["infra-tickets", d.group_key.token()]}}))
        .await
        .unwrap();
    let closed_changes = || async {
        world
            .broker
            .stream_payloads("TICKET_CHANGES")
            .await
            .into_iter()
            .filter_map(|p| contracts::DuplicateClosed::from_json(&p).ok())
            .collect::<Vec<_>>()
    };
    eventually("the duplicate's closure to be announced", WAIT, || async {
        !closed_changes().await.is_empty()
    })
    .await;
    let closed = world.sim.issue(&duplicate.key).unwrap();
    assert_eq!(closed.status_category, "done");
    assert!(
        closed.links.iter().any(|(t, other, dir)| t == "Duplicate" && *other == kept.key && dir == "outward"),
        "the closed one reads \"duplicates\" the kept one: {:?}",
        closed.links
    );
    assert_eq!(world.sim.issue(&kept.key).unwrap().status_category, "new");
    let entry = world.ledger(&d).await.unwrap();
    assert_eq!(entry.issue.unwrap().key, kept.key);
    assert_eq!(entry.duplicates_closed.get(&duplicate.id), Some(&kept.key), "recorded in the ledger");
    let announced = closed_changes().await;
    assert_eq!(announced.len(), 1);
    let change = &announced[0];
    assert_eq!(change.change.kind, ChangeKind::DuplicateClosed);
    assert_eq!(change.change.schema, 2, "a reader of schema 1 refuses it instead of misreading it");
    assert_eq!(
        (change.change.issue_key.as_str(), change.change.team.as_str()),
        (duplicate.key.as_str(), "payments")
    );
    assert_eq!(
        (change.survivor.issue_id.as_str(), change.survivor.issue_key.as_str()),
        (kept.id.as_str(), kept.key.as_str())
    );
    assert_eq!(change.change.group_key, d.group_key);
    assert_eq!(change.change.lane, Lane::P1);

    // The notifier posts one message naming the ticket kept, linking to it.
    eventually("the duplicate message", WAIT, || async {
        slack.messages("C0PAYMENTS").iter().any(|m| m.text.contains("duplicate"))
    })
    .await;
    let about_duplicate = || {
        slack
            .messages("C0PAYMENTS")
            .into_iter()
            .filter(|m| {
                m.metadata_field("idempotency_key")
                    == Some(format!("notice/{}/duplicate_closed", duplicate.id).as_str())
            })
            .collect::<Vec<_>>()
    };
    let messages = about_duplicate();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = &messages[0].text;
    assert!(text.starts_with(&format!("{}: Closed as a duplicate of {}", duplicate.key, kept.key)), "{text}");
    let blocks = serde_json::to_string(&messages[0].blocks).unwrap();
    assert!(blocks.contains(&format!("/browse/{}|{}>, the ticket kept", kept.key, kept.key)), "{blocks}");

    // A restarted writer (nothing in memory) sweeps again and again: the ledger says it is done.
    writer.stop().await;
    world.sim.clear_calls();
    let writer = world.start_writer(world.config(&["--sweep-every", "300ms"]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world.count("POST", "/issueLink"), 0, "not linked again");
    assert_eq!(world.count("POST", "/transitions"), 0, "not closed again");
    assert_eq!(closed_changes().await.len(), 1, "not announced again");

    // The ledger write after the announcement lost (a crash in between): the next sweep links and
    // announces again, under the same message id: still one change, one message.
    writer.stop().await;
    let ledger = JsonKv::<LedgerEntry>::open(&world.broker.js, JIRA_LEDGER).await.unwrap();
    let record = ledger.get(&d.group_key.token()).await.unwrap().unwrap();
    let mut lost = record.value.clone();
    lost.duplicates_closed.clear();
    ledger.update(&d.group_key.token(), &lost, record.revision).await.unwrap();
    world.sim.clear_calls();
    let writer = world.start_writer(world.config(&["--sweep-every", "300ms"]));
    eventually("the sweep to record it again", WAIT, || async {
        world.ledger(&d).await.is_some_and(|e| e.duplicates_closed.contains_key(&duplicate.id))
    })
    .await;
    assert_eq!(world.count("POST", "/transitions"), 0, "already closed: not transitioned");
    assert_eq!(closed_changes().await.len(), 1, "the same message id is stored once");
    world.broker.wait_until_drained("notifier", WAIT).await;
    assert_eq!(about_duplicate().len(), 1, "one Slack message");
    assert!(world.broker.dead_letters().await.is_empty());
    writer.stop().await;
    notifier_stop.cancel();
    let _ = notifier.wait().await;
    world.assert_contract();
}

/// A move to another team's project that JIRA's task reports as failed for the issue (the
/// target project requires a field the issue lacks) is an error, permanent for that message:
/// dead-lettered naming the issue and JIRA's reason, the ticket left where it was; the next
/// message goes through.
#[tokio::test]
async fn a_bulk_move_reporting_a_failed_issue_dead_letters_naming_the_issue_and_the_reason() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let v1 = desired("acme/checkout", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&v1).await;
    world.wait_applied(&v1).await;
    let issue = world.only_issue(&v1);
    world.sim.refuse_moves_into("PAY", "Field 'Sprint' is required in the target project.");
    let v2 = next_version(&v1, |d| d.team = "payments".into());
    world.publish(&v2).await;
    eventually("a dead letter", WAIT, || async { !world.broker.dead_letters().await.is_empty() }).await;
    let letters = world.broker.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].reason,
        format!(
            "JIRA refused move issue with 200: JIRA could not move {key} to project PAY: issue {id}: \
             Field 'Sprint' is required in the target project.",
            key = issue.key,
            id = issue.id
        )
    );
    assert_eq!(world.sim.issue(&issue.key).unwrap().project, "PLAT", "not moved");
    assert_eq!(world.ledger(&v1).await.unwrap().applied_version, 1, "not recorded as applied");
    assert!(world.broker.ticket_changes().await.iter().all(|c| c.kind != ChangeKind::TeamChanged));
    let fine = desired("acme/fine", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&fine).await;
    world.wait_applied(&fine).await;
    world.only_issue(&fine);
    writer.stop().await;
    world.assert_contract_but_the_move_request();
}

#[tokio::test]
async fn dry_run_plans_and_writes_nothing() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&["--dry-run"]));
    let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&d).await;
    world.broker.wait_until_drained(JIRA_WRITER, WAIT).await;
    assert!(world.sim.issues().is_empty());
    assert!(
        world.sim.calls().iter().all(|c| c.method == "GET" || c.path.ends_with("/search/jql")),
        "only reads"
    );
    assert!(world.ledger(&d).await.is_none());
    assert!(world.broker.ticket_changes().await.is_empty());
    writer.stop().await;
}

/// The ledger bucket lost (deleted, or the whole NATS store recreated): the next writer rebuilds
/// it from JIRA, by label and issue property, before it takes a message. No ticket is filed twice,
/// an unchanged state costs no JIRA call, a changed one is one edit that keeps a person's label,
/// a resolved one is a transition, and nothing is announced again.
#[tokio::test]
async fn a_lost_ledger_is_rebuilt_from_jira_before_any_message_and_files_nothing_twice() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let unchanged = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    let moved = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
    let fixed = desired("acme/batch", "platform", Lane::P4, "2027-06-01", 1);
    let tickets = [&unchanged, &moved, &fixed];
    for d in tickets {
        world.publish(d).await;
    }
    for d in tickets {
        world.wait_applied(d).await;
    }
    let keys: Vec<String> = tickets.iter().map(|d| world.only_issue(d).key).collect();
    let label_update = json!({"update": {"labels": [{"add": "decided-by-a-person"}]}});
    world.person().edit_issue(&keys[1], &label_update, false).await.unwrap();
    writer.stop().await;

    world.broker.js.delete_key_value(JIRA_LEDGER).await.expect("the ledger bucket deleted");
    world.sim.clear_calls();
    let writer = world.start_writer(world.config(&[]));
    for (d, key) in tickets.iter().zip(&keys) {
        eventually("the ledger rebuilt from JIRA", WAIT, || async {
            world.ledger(d).await.is_some_and(|e| e.issue.is_some_and(|i| &i.key == key))
        })
        .await;
    }
    let same = next_version(&unchanged, |_| {});
    let later = next_version(&moved, |d| {
        d.due = Some(DueDate { date: "2027-01-20".parse().unwrap(), source: DueDateSource::EventWindow });
    });
    let resolved = next_version(&fixed, |d| d.state = TicketState::Resolved);
    for d in [&same, &later, &resolved] {
        world.publish(d).await;
    }
    for d in [&later, &resolved] {
        world.wait_applied(d).await;
    }

    assert_eq!(world.sim.issues().len(), 3, "no second ticket");
    assert_eq!(world.count("POST", "/rest/api/3/issue"), 0, "no create");
    let calls = world.sim.calls();
    assert!(
        !calls.iter().any(|c| c.path.contains(&format!("/{}", keys[0]))),
        "the unchanged ticket untouched"
    );
    let website = world.sim.issue(&keys[1]).unwrap();
    assert_eq!(website.due_date.as_deref(), Some("2027-01-20"));
    assert!(website.labels.iter().any(|l| l == "decided-by-a-person"), "{:?}", website.labels);
    assert_eq!(world.sim.issue(&keys[2]).unwrap().status, "Done");
    let created = created_changes(&world).await;
    assert_eq!(created.len(), 3, "each ticket announced once: {created:#?}");
    assert!(world.broker.dead_letters().await.is_empty());

    // The rebuilt ledger carries its marker: the next start searches nothing.
    writer.stop().await;
    world.sim.clear_calls();
    let writer = world.start_writer(world.config(&[]));
    let again =
        next_version(&later, |d| d.summary = "Critical vulnerabilities in acme/website (2 new)".into());
    world.publish(&again).await;
    world.wait_applied(&again).await;
    assert_eq!(world.count("POST", "/search/jql"), 0, "a complete ledger is not rebuilt");
    writer.stop().await;
    world.assert_contract();
}

/// The ledger lost while the writer runs: deleted, then made again empty at once (as another
/// service's start does after the NATS store was lost). A state for a known key arriving in that
/// window waits instead of filing a second ticket; the writer notices, rebuilds the ledger from
/// JIRA and goes on, with no dead letter and no second announcement.
#[tokio::test]
async fn a_ledger_lost_while_running_is_rebuilt_and_creates_wait_for_it() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let known = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    world.publish(&known).await;
    world.wait_applied(&known).await;
    let key = world.only_issue(&known).key;

    world.broker.js.delete_key_value(JIRA_LEDGER).await.expect("the ledger bucket deleted");
    bus::ensure_topology(&world.broker.js, &TopologyConfig::default()).await.expect("the bucket made again");
    let moved = next_version(&known, |d| {
        d.due = Some(DueDate { date: "2027-01-20".parse().unwrap(), source: DueDateSource::EventWindow });
    });
    let new = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&moved).await;
    world.publish(&new).await;
    world.wait_applied(&moved).await;
    world.wait_applied(&new).await;

    assert_eq!(world.issues_of(&known).len(), 1, "no second ticket for the known key");
    assert_eq!(world.only_issue(&moved).key, key);
    assert_eq!(world.sim.issue(&key).unwrap().due_date.as_deref(), Some("2027-01-20"));
    assert_eq!(world.issues_of(&new).len(), 1);
    let created = created_changes(&world).await;
    assert_eq!(created.len(), 2, "each ticket announced once: {created:#?}");
    assert!(world.broker.dead_letters().await.is_empty());
    writer.stop().await;
    world.assert_contract();
}

/// `infra-tickets ledger rebuild` (the library call behind it): every lost record comes back
/// from JIRA and the ledger is marked complete; run again, it changes nothing.
#[tokio::test]
async fn the_ledger_rebuild_records_every_lost_key_and_leaves_existing_records() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let tickets = [
        desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1),
        desired("acme/website", "platform", Lane::P2, "2026-12-27", 1),
    ];
    for d in &tickets {
        world.publish(d).await;
    }
    for d in &tickets {
        world.wait_applied(d).await;
    }
    writer.stop().await;
    world.broker.js.delete_key_value(JIRA_LEDGER).await.expect("the ledger bucket deleted");

    let report = jira_writer::rebuild_ledger(world.config(&[])).await.expect("rebuilt");
    assert_eq!((report.scanned, report.recovered, report.present, report.unreadable), (2, 2, 0, 0));
    for d in &tickets {
        let entry = world.ledger(d).await.expect("a record");
        assert_eq!(entry.issue.unwrap().key, world.only_issue(d).key);
        assert_eq!(
            (entry.content_hash.as_str(), entry.team.as_str()),
            (d.content_hash.as_str(), d.team.as_str())
        );
    }
    let again = jira_writer::rebuild_ledger(world.config(&[])).await.expect("rebuilt again");
    assert_eq!((again.recovered, again.present), (0, 2));
    world.assert_contract();
}

async fn publish_all(world: &World, batch: &[DesiredTicket]) {
    let messages: Vec<Outgoing> =
        batch.iter().map(|d| Outgoing::new(d.subject(), d.to_json()).with_id(d.message_id())).collect();
    world.broker.publisher.publish_all(messages).await.unwrap();
}

/// Benchmark (run by hand): `cargo test -p e2e-tests --test jira_writer benchmark -- --ignored --nocapture`.
/// JIRA answering after 50 ms, no requests-per-second cap, 64 messages at once, on both workflows:
/// tickets per second and JIRA calls per created ticket, per unchanged state and per resolve.
#[tokio::test]
#[ignore]
async fn benchmark_calls_per_ticket_and_throughput() {
    let count = 200usize;
    for (workflow, args) in [
        (Workflow::jira_software(), vec!["--concurrency", "64"]),
        (Workflow::seed_team(), vec!["--concurrency", "64", "--jira-workflow", SEED_WORKFLOW]),
    ] {
        let mut sim = sim_with(workflow.clone());
        sim.latency = Duration::from_millis(50);
        let world = World::start(sim).await;
        let writer = world.start_writer(world.config(&args));
        let tickets: Vec<DesiredTicket> = (0..count)
            .map(|i| desired(&format!("acme/bench-{i}"), "platform", Lane::P3, "2027-02-27", 1))
            .collect();
        let started = Instant::now();
        publish_all(&world, &tickets).await;
        for d in &tickets {
            world.wait_applied(d).await;
        }
        let elapsed = started.elapsed();
        let created_calls = world.sim.call_count();
        let same: Vec<DesiredTicket> = tickets.iter().map(|d| next_version(d, |_| {})).collect();
        publish_all(&world, &same).await;
        world.broker.wait_until_drained(JIRA_WRITER, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let unchanged_calls = world.sim.call_count() - created_calls;
        world.sim.clear_calls();
        let resolved: Vec<DesiredTicket> = tickets
            .iter()
            .map(|d| next_version(&next_version(d, |_| {}), |d| d.state = TicketState::Resolved))
            .collect();
        let started_resolve = Instant::now();
        publish_all(&world, &resolved).await;
        for d in &resolved {
            world.wait_applied(d).await;
        }
        let resolve_elapsed = started_resolve.elapsed();
        assert!(world.sim.issues().iter().all(|i| i.status == "Done"));
        println!(
            "{}: {count} tickets created in {:.2} s = {:.1} tickets/s, {:.2} JIRA calls per created ticket; \
             {unchanged_calls} calls for {count} unchanged states; resolved in {:.2} s, {:.2} calls per resolve",
            workflow.name,
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            created_calls as f64 / count as f64,
            resolve_elapsed.as_secs_f64(),
            world.sim.call_count() as f64 / count as f64,
        );
        writer.stop().await;
    }
}

// ----- workflows, people's decisions, permissions, outages, unsafe error texts -----

/// The seed team's workflow as the writer is configured for it.
const SEED_WORKFLOW: &str = "resolve=Done,reopen=ToDo,via=Assigned,decisions=Cancelled|Waiting";

fn sim_with(workflow: Workflow) -> SimConfig {
    let mut config = SimConfig::default();
    for project in &mut config.projects {
        project.workflow = workflow.clone();
    }
    config
}

impl World {
    /// `/readyz`: its status and body.
    async fn readyz(&self, writer: &Running) -> (u16, String) {
        let Some(address) = writer.address() else { return (0, String::new()) };
        match reqwest::get(format!("http://{address}/readyz")).await {
            Ok(response) => (response.status().as_u16(), response.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    fn only_issue(&self, desired: &DesiredTicket) -> SimIssue {
        let issues = self.issues_of(desired);
        assert_eq!(issues.len(), 1, "one issue for {}: {issues:#?}", desired.group_key);
        issues.into_iter().next().unwrap()
    }

    /// A person moves an issue along the transition named `name`.
    async fn person_moves(&self, key: &str, name: &str) {
        let person = self.person();
        let offered = person.transitions(key).await.unwrap();
        let transition =
            offered.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} in {offered:?}"));
        person.do_transition(key, &transition.id, None).await.unwrap();
    }
}

fn next_version(d: &DesiredTicket, change: impl FnOnce(&mut DesiredTicket)) -> DesiredTicket {
    let mut next = d.clone();
    next.upstream_version += 1;
    change(&mut next);
    next.seal()
}

/// The status a ticket is filed in is configured per project, with a default: on both workflows,
/// PAY files in its own status (reached by transitions, before the Created change), PLAT keeps the
/// default (where JIRA starts a ticket, at no extra call: create and remote link only).
#[tokio::test]
async fn the_filed_status_is_configured_per_project_with_a_default() {
    for (workflow, default, pay, filed, started) in [
        (
            Workflow::jira_software(),
            "resolve=Done,reopen=To Do,via=In Progress",
            "PAY:filed=In Progress,resolve=Done,reopen=To Do,via=In Progress",
            "In Progress",
            "To Do",
        ),
        (
            Workflow::seed_team(),
            SEED_WORKFLOW,
            "PAY:filed=Assigned,resolve=Done,reopen=ToDo,via=Assigned,decisions=Cancelled|Waiting",
            "Assigned",
            "ToDo",
        ),
    ] {
        let world = World::start(sim_with(workflow.clone())).await;
        let workflows = format!("{default};{pay}");
        let writer = world.start_writer(world.config(&["--jira-workflow", &workflows]));
        let platform = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
        world.publish(&platform).await;
        world.wait_applied(&platform).await;
        let calls: Vec<String> = world
            .sim
            .calls()
            .iter()
            // At start: the team field's type, and the search that checks a new ledger.
            .filter(|c| c.path != "/rest/api/3/field" && !c.path.ends_with("/search/jql"))
            .map(|c| format!("{} {}", c.method, c.path))
            .collect();
        assert_eq!(world.count("POST", "/search/jql"), 1, "{}: the start's one search", workflow.name);
        let plat = world.only_issue(&platform);
        assert_eq!(plat.status, started, "{}: the default files where JIRA starts", workflow.name);
        assert_eq!(
            calls,
            ["POST /rest/api/3/issue".to_owned(), format!("POST /rest/api/3/issue/{}/remotelink", plat.key)],
            "{}: two calls",
            workflow.name
        );

        world.sim.clear_calls();
        let payments = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
        world.publish(&payments).await;
        world.wait_applied(&payments).await;
        let pay = world.only_issue(&payments);
        assert_eq!(pay.status, filed, "{}: PAY files in its own status", workflow.name);
        assert_eq!(world.count("POST", "/transitions"), 1, "{}", workflow.name);
        assert!(pay.comments.last().unwrap().1.contains(&format!("filed this ticket in {filed}")));
        let created: Vec<String> =
            created_changes(&world).await.iter().map(|c| c.issue_key.clone()).collect();
        assert_eq!(created, [plat.key.clone(), pay.key.clone()], "each announced once");
        assert!(world.broker.dead_letters().await.is_empty());
        writer.stop().await;
        world.assert_contract();
    }
}

/// Resolving and reopening follow each workflow's transitions: on JIRA Software one step, on the
/// seed's workflow (Cancel listed first, no ToDo → Done) through Assigned, never to Cancelled.
#[tokio::test]
async fn both_workflows_resolve_and_reopen_by_following_transitions() {
    for (workflow, args, resolved_calls, reopened) in [
        (Workflow::jira_software(), vec![], 2, "To Do"),
        (Workflow::seed_team(), vec!["--jira-workflow", SEED_WORKFLOW], 4, "ToDo"),
    ] {
        let world = World::start(sim_with(workflow.clone())).await;
        let writer = world.start_writer(world.config(&args));
        let v1 = desired("acme/checkout", "platform", Lane::P2, "2026-12-27", 1);
        world.publish(&v1).await;
        world.wait_applied(&v1).await;
        let key = world.only_issue(&v1).key;

        world.sim.clear_calls();
        let v2 = next_version(&v1, |d| d.state = TicketState::Resolved);
        world.publish(&v2).await;
        world.wait_applied(&v2).await;
        let issue = world.sim.issue(&key).unwrap();
        assert_eq!(issue.status, "Done", "{}: resolved to Done, not Cancelled", workflow.name);
        assert_eq!(world.sim.call_count(), resolved_calls, "{}: {:#?}", workflow.name, world.sim.calls());
        assert!(issue.comments.last().unwrap().1.contains("the source reports it fixed"), "{issue:?}");

        world.sim.clear_calls();
        let v3 = next_version(&v2, |d| d.state = TicketState::Open);
        world.publish(&v3).await;
        world.wait_applied(&v3).await;
        assert_eq!(world.sim.issue(&key).unwrap().status, reopened, "{}", workflow.name);
        let kinds: Vec<ChangeKind> = world.broker.ticket_changes().await.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeKind::Created, ChangeKind::Resolved, ChangeKind::Reopened]);
        assert!(world.broker.dead_letters().await.is_empty());
        writer.stop().await;
        world.assert_contract();
    }
}

/// A person's Cancelled or Waiting stands: the source resolving gives a comment, not a
/// transition. A target the workflow offers no way to is a dead letter naming what JIRA offered,
/// and the ticket is not recorded as resolved.
#[tokio::test]
async fn people_decisions_stand_and_an_unreachable_status_is_a_dead_letter() {
    let world = World::start(sim_with(Workflow::seed_team())).await;
    let writer = world.start_writer(world.config(&["--jira-workflow", SEED_WORKFLOW]));
    let cancelled = desired("acme/cancelled", "platform", Lane::P2, "2026-12-27", 1);
    let waiting = desired("acme/waiting", "platform", Lane::P2, "2026-12-27", 1);
    for d in [&cancelled, &waiting] {
        world.publish(d).await;
        world.wait_applied(d).await;
    }
    let cancelled_key = world.only_issue(&cancelled).key;
    let waiting_key = world.only_issue(&waiting).key;
    world.person_moves(&cancelled_key, "Cancel").await;
    world.person_moves(&waiting_key, "Assign").await;
    world.person_moves(&waiting_key, "Wait for someone").await;

    world.sim.clear_calls();
    for d in [&cancelled, &waiting] {
        let fixed = next_version(d, |d| d.state = TicketState::Resolved);
        world.publish(&fixed).await;
        world.wait_applied(&fixed).await;
    }
    assert_eq!(world.count("POST", "/transitions"), 0, "a person's decision is never transitioned");
    for (key, status) in [(&cancelled_key, "Cancelled"), (&waiting_key, "Waiting")] {
        let issue = world.sim.issue(key).unwrap();
        assert_eq!(issue.status, status);
        let comment = &issue.comments.last().expect("a comment").1;
        assert!(comment.contains(&format!("stays in {status}")), "{comment}");
    }
    writer.stop().await;

    // Configured without a way through Assigned, Done cannot be reached from ToDo.
    let writer = world.start_writer(world.config(&["--jira-workflow", "resolve=Done,reopen=ToDo"]));
    let stuck = desired("acme/stuck", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&stuck).await;
    world.wait_applied(&stuck).await;
    let resolved = next_version(&stuck, |d| d.state = TicketState::Resolved);
    world.publish(&resolved).await;
    eventually("a dead letter", WAIT, || async { !world.broker.dead_letters().await.is_empty() }).await;
    let letter = world.broker.dead_letters().await.remove(0);
    let key = world.only_issue(&stuck).key;
    assert!(
        letter.reason.contains(&format!(
            "cannot move {key} from ToDo to Done: JIRA offered Cancel → Cancelled, Assign → Assigned"
        )),
        "{}",
        letter.reason
    );
    assert_eq!(world.sim.issue(&key).unwrap().status, "ToDo");
    assert_eq!(
        world.ledger(&stuck).await.unwrap().source_state,
        TicketState::Open,
        "not recorded as resolved"
    );
    writer.stop().await;
    world.assert_contract();
}

/// A JIRA 400 answered as a multi-line HTML page (by the edge in front of JIRA) reaches the dead
/// letter as one line, and the next message goes through.
#[tokio::test]
async fn a_jira_400_html_page_dead_letters_one_message_and_the_next_goes_through() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    // Started: the site's fields are read; the next call is the create.
    eventually("the writer to be ready", WAIT, || async { world.readyz(&writer).await.0 == 200 }).await;
    let refused = desired("acme/refused", "platform", Lane::P2, "2026-12-27", 1);
    world.sim.fail_next(Fault::HtmlBadRequest);
    world.publish(&refused).await;
    eventually("a dead letter", WAIT, || async { !world.broker.dead_letters().await.is_empty() }).await;
    let fine = desired("acme/fine", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&fine).await;
    world.wait_applied(&fine).await;
    world.only_issue(&fine);
    let letters = world.broker.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].deliveries, 1, "dead-lettered at once, not lost after redeliveries");
    assert_eq!(
        letters[0].reason,
        "JIRA refused create issue with 400: an HTML page, not JIRA's JSON: HTTP Status 400 – Bad Request HTTP Status 400 – Bad Request"
    );
    assert!(world.issues_of(&refused).is_empty());
    assert!(world.ledger(&refused).await.is_none_or(|e| e.claim.is_none()), "the claim is released");
    writer.stop().await;
    world.assert_contract();
}

/// One project without create permission dead-letters its tickets only, naming the project, the
/// operation and JIRA's message; the other project goes on. A 403 while `GET /myself` fails too
/// is the credentials: the writer pauses, unready, and dead-letters nothing.
#[tokio::test]
async fn a_403_in_one_project_dead_letters_its_message_only_and_a_403_everywhere_pauses() {
    let world = World::start(SimConfig::default()).await;
    world.sim.deny("PAY", Permission::CreateIssues);
    let writer = world.start_writer(world.config(&[]));
    let payments = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
    let platform = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
    world.publish(&payments).await;
    world.publish(&platform).await;
    world.wait_applied(&platform).await;
    eventually("a dead letter", WAIT, || async { !world.broker.dead_letters().await.is_empty() }).await;
    assert_one_issue(&world, &platform, "PLAT", "High", "Platform");
    assert!(world.issues_of(&payments).is_empty());
    let letters = world.broker.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].reason,
        "JIRA denied create issue in project PAY: You do not have permission to create issues in this project. \
         (the bot's account lacks this permission there; other projects go on)"
    );
    assert_eq!(world.readyz(&writer).await.0, 200, "one project's permission does not pause the writer");

    world.sim.set_persistent_fault(Some(Fault::Forbidden));
    let later = desired("acme/batch", "platform", Lane::P4, "2027-06-01", 1);
    world.publish(&later).await;
    eventually("readyz to report the pause", WAIT, || async {
        let (status, body) = world.readyz(&writer).await;
        status == 503 && body.contains("paused") && body.contains("403")
    })
    .await;
    assert_eq!(world.broker.dead_letters().await.len(), 1, "no dead letter while the credentials fail");
    world.sim.set_persistent_fault(None);
    world.wait_applied(&later).await;
    assert_one_issue(&world, &later, "PLAT", "Low", "Platform");
    writer.stop().await;
    world.assert_contract();
}

/// JIRA down (500s, then requests that never answer, then refused connections) for longer than the consumer's whole
/// redelivery schedule (3 deliveries, 2 s ack wait; the outage lasts over 20 pause rounds, as an
/// hour is against production's 15 s pause and 10-minute schedule): consumption pauses with
/// readiness off, nothing is dead-lettered, and it resumes alone with every ticket once, in order.
#[tokio::test]
async fn an_outage_longer_than_the_redelivery_schedule_pauses_and_loses_nothing() {
    let topology =
        TopologyConfig { max_deliver: 3, ack_wait: Duration::from_secs(2), ..TopologyConfig::default() };
    let world = World::start_with(SimConfig::default(), topology).await;
    let writer = world.start_writer(world.config(&["--jira-timeout", "300ms", "--jira-max-attempts", "2"]));
    eventually("the writer to be ready", WAIT, || async { world.readyz(&writer).await.0 == 200 }).await;
    // 500s, requests that never answer, then refused connections.
    for fault in [Some(Fault::ServerError), Some(Fault::Hang), None] {
        match fault {
            Some(fault) => world.sim.set_persistent_fault(Some(fault)),
            None => world.sim.stop_listening(),
        }
        let name = format!("acme/outage-{fault:?}").to_lowercase();
        let v1 = desired(&name, "platform", Lane::P2, "2026-12-27", 1);
        let v2 = next_version(&v1, |d| d.summary = format!("{} (v2)", d.summary));
        world.publish(&v1).await;
        world.publish(&v2).await;
        eventually("readyz to report the outage", WAIT, || async {
            let (status, body) = world.readyz(&writer).await;
            status == 503 && body.contains("paused") && body.contains("JIRA is unavailable")
        })
        .await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert!(world.broker.dead_letters().await.is_empty(), "{fault:?}: nothing dead-lettered");
        match fault {
            Some(_) => world.sim.set_persistent_fault(None),
            None => world.sim.resume_listening().await.expect("listening again"),
        }
        world.wait_applied(&v2).await;
        let issue = world.only_issue(&v2);
        assert!(issue.summary.ends_with("(v2)"), "the later version wins: {}", issue.summary);
        eventually("readyz to recover", WAIT, || async { world.readyz(&writer).await.0 == 200 }).await;
    }
    assert!(world.broker.dead_letters().await.is_empty());
    writer.stop().await;
}

/// The notifier's reminders read the ticket's progress from the `infra-tickets` property, at
/// `progress` (`{"remaining", "total", "unit"}`), written at create and with every edit.
#[tokio::test]
async fn the_issue_property_carries_the_progress() {
    let world = World::start(SimConfig::default()).await;
    let writer = world.start_writer(world.config(&[]));
    let progress = |remaining| contracts::Progress { remaining, total: 5, unit: "resources".into() };
    let v1 = next_version(&desired("acme/fleet", "platform", Lane::P2, "2026-12-27", 0), |d| {
        d.body.progress = Some(progress(5))
    });
    world.publish(&v1).await;
    world.wait_applied(&v1).await;
    let issue = world.only_issue(&v1);
    assert_eq!(
        issue.properties["infra-tickets"]["progress"],
        json!({"remaining": 5, "total": 5, "unit": "resources"})
    );
    let v2 = next_version(&v1, |d| d.body.progress = Some(progress(3)));
    world.publish(&v2).await;
    world.wait_applied(&v2).await;
    let issue = world.sim.issue(&issue.key).unwrap();
    assert_eq!(issue.properties["infra-tickets"]["progress"]["remaining"], 3);
    assert!(
        jira_sim::adf_text(issue.description.as_ref().unwrap()).contains("3 of 5 resources still pending")
    );
    writer.stop().await;
    world.assert_contract();
}

/// A person closing a ticket whose source still reports open work sees it reopened on the next
/// source change, with a comment saying what remains; a ticket a person holds in Waiting gets a
/// comment per source change and keeps its status. On the seed's workflow.
#[tokio::test]
async fn a_ticket_closed_with_open_work_reopens_and_a_waiting_one_gets_a_comment() {
    let world = World::start(sim_with(Workflow::seed_team())).await;
    let writer = world.start_writer(world.config(&["--jira-workflow", SEED_WORKFLOW]));
    let progress = |remaining| Some(contracts::Progress { remaining, total: 5, unit: "resources".into() });
    let closed = next_version(&desired("acme/closed", "platform", Lane::P2, "2026-12-27", 0), |d| {
        d.body.progress = progress(5)
    });
    let waiting = desired("acme/waiting", "platform", Lane::P2, "2026-12-27", 1);
    for d in [&closed, &waiting] {
        world.publish(d).await;
        world.wait_applied(d).await;
    }
    let closed_key = world.only_issue(&closed).key;
    let waiting_key = world.only_issue(&waiting).key;
    world.person_moves(&closed_key, "Assign").await;
    world.person_moves(&closed_key, "Close").await;
    world.person_moves(&waiting_key, "Assign").await;
    world.person_moves(&waiting_key, "Wait for someone").await;

    let closed_v2 = next_version(&closed, |d| d.body.progress = progress(3));
    let waiting_v2 = next_version(&waiting, |d| d.summary = format!("{} (2 new)", d.summary));
    for d in [&closed_v2, &waiting_v2] {
        world.publish(d).await;
        world.wait_applied(d).await;
    }
    let reopened = world.sim.issue(&closed_key).unwrap();
    assert_eq!(reopened.status, "ToDo");
    let comment = &reopened.comments.last().expect("a comment").1;
    assert!(comment.contains("still reports open work (3 of 5 resources still pending)"), "{comment}");
    let held = world.sim.issue(&waiting_key).unwrap();
    assert_eq!(held.status, "Waiting");
    let comment = &held.comments.last().expect("a comment").1;
    assert!(comment.contains("the source changed") && comment.contains("stays in Waiting"), "{comment}");
    let kinds: Vec<ChangeKind> = world
        .broker
        .ticket_changes()
        .await
        .iter()
        .filter(|c| c.issue_key == closed_key)
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::Created, ChangeKind::Updated, ChangeKind::Reopened]);
    writer.stop().await;
    world.assert_contract();
}

/// The team field is written as the site defines it (read from `GET /rest/api/3/field` at start):
/// a single or multi select by value, JIRA's Team field by team id, a user picker by account id.
/// A field the site does not have fails the start with a clear message.
#[tokio::test]
async fn the_team_field_is_written_as_the_site_defines_it() {
    for kind in [
        TeamFieldKind::SingleSelect,
        TeamFieldKind::MultiSelect,
        TeamFieldKind::Team,
        TeamFieldKind::UserPicker,
    ] {
        let mut sim = SimConfig::default();
        sim.team_field.kind = kind;
        let value = match kind {
            TeamFieldKind::Team | TeamFieldKind::UserPicker => sim.team_field.id_for("Payments").unwrap(),
            _ => "Payments".to_owned(),
        };
        let world = World::start(sim).await;
        let mut catalog = tempfile::NamedTempFile::new().unwrap();
        write!(
            catalog,
            "default_team = \"payments\"\n[teams.payments]\njira_project = \"PAY\"\njira_team_field = \"{value}\"\n"
        )
        .unwrap();
        let writer = world.start_writer(world.config(&["--catalog", catalog.path().to_str().unwrap()]));
        let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
        world.publish(&d).await;
        world.wait_applied(&d).await;
        let issue = world.only_issue(&d);
        assert_eq!(issue.team.as_deref(), Some("Payments"), "{kind:?}");
        let create = world
            .sim
            .calls()
            .into_iter()
            .find(|c| c.method == "POST" && c.path == "/rest/api/3/issue")
            .unwrap();
        let written = &create.request_body.unwrap()["fields"][TEAM_FIELD];
        let expected = match kind {
            TeamFieldKind::SingleSelect => json!({ "value": value }),
            TeamFieldKind::MultiSelect => json!([{ "value": value }]),
            TeamFieldKind::Team => json!(value),
            TeamFieldKind::UserPicker => json!({ "accountId": value }),
        };
        assert_eq!(written, &expected, "{kind:?}");
        assert!(world.broker.dead_letters().await.is_empty());
        writer.stop().await;
        world.assert_contract();
    }

    let world = World::start(SimConfig::default()).await;
    let outcome = tokio::time::timeout(
        WAIT,
        jira_writer::run(world.config(&["--jira-team-field", "customfield_99999"]), CancellationToken::new()),
    )
    .await
    .expect("the start fails at once");
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("the site has no field customfield_99999"), "{message}");
}

/// The catalog may name the team (JIRA's Team field) or the person (user picker, by e-mail
/// address or name) instead of giving ids: the writer looks each name up once at start (the
/// organisation's teams in one listing, each person once) and writes the id; a name JIRA does not
/// know fails the start naming the catalog team and the value.
#[tokio::test]
async fn team_and_person_names_in_the_catalog_are_looked_up_once_at_start() {
    let catalog = |entries: &[(&str, &str, &str)]| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "default_team = \"payments\"").unwrap();
        for (team, project, value) in entries {
            writeln!(file, "[teams.{team}]\njira_project = \"{project}\"\njira_team_field = \"{value}\"")
                .unwrap();
        }
        file
    };
    let start_fails = |world: &World, extra: Vec<String>| {
        let config = world.config(&extra.iter().map(String::as_str).collect::<Vec<_>>());
        async move {
            let outcome = tokio::time::timeout(WAIT, jira_writer::run(config, CancellationToken::new()))
                .await
                .expect("the start fails at once");
            outcome.unwrap_err().to_string()
        }
    };
    for kind in [TeamFieldKind::Team, TeamFieldKind::UserPicker] {
        let mut sim = SimConfig::default();
        sim.team_field.kind = kind;
        let (payments, platform, unknown, lookups) = match kind {
            TeamFieldKind::Team => ("Payments", "Platform", "Paymnts", "/teams"),
            _ => ("payments@example.com", "Platform", "nobody@example.com", "/user/search"),
        };
        let world = World::start(sim.clone()).await;
        // Two catalog teams share one name: looked up once.
        let names = catalog(&[
            ("payments", "PAY", payments),
            ("data", "DATA", payments),
            ("platform", "PLAT", platform),
        ]);
        let path = names.path().to_str().unwrap().to_owned();
        let writer =
            world.start_writer(world.config(&["--catalog", &path, "--jira-org-id", jira_sim::ORG_ID]));
        let d = desired("acme/checkout", "payments", Lane::P1, "2026-12-11", 1);
        let p = desired("acme/website", "platform", Lane::P2, "2026-12-27", 1);
        world.publish(&d).await;
        world.publish(&p).await;
        world.wait_applied(&d).await;
        world.wait_applied(&p).await;
        for (desired, name) in [(&d, "Payments"), (&p, "Platform")] {
            let issue = world.only_issue(desired);
            assert_eq!(issue.team.as_deref(), Some(name), "{kind:?}");
            let create = world
                .sim
                .calls()
                .into_iter()
                .find(|c| {
                    c.method == "POST"
                        && c.path == "/rest/api/3/issue"
                        && c.response_body.as_ref().is_some_and(|b| b["key"] == issue.key.as_str())
                })
                .unwrap();
            let id = sim.team_field.id_for(name).unwrap();
            let expected = match kind {
                TeamFieldKind::Team => json!(id),
                _ => json!({ "accountId": id }),
            };
            assert_eq!(create.request_body.unwrap()["fields"][TEAM_FIELD], expected, "{kind:?}");
        }
        let expected_lookups = if kind == TeamFieldKind::Team { 1 } else { 2 };
        assert_eq!(world.count("GET", lookups), expected_lookups, "{kind:?}: each name once, at start");
        assert!(world.broker.dead_letters().await.is_empty());
        writer.stop().await;
        world.assert_contract();

        let wrong = catalog(&[("payments", "PAY", unknown)]);
        let wrong_path = wrong.path().to_str().unwrap().to_owned();
        let args =
            vec!["--catalog".to_owned(), wrong_path.clone(), "--jira-org-id".into(), jira_sim::ORG_ID.into()];
        let message = start_fails(&world, args).await;
        let expected = match kind {
            TeamFieldKind::Team => format!(
                "catalog team payments: jira_team_field \"{unknown}\": no active Atlassian team is named \"{unknown}\" \
                 (teams: Data, Fleet, Payments, Platform) in organisation {}",
                jira_sim::ORG_ID
            ),
            _ => format!(
                "catalog team payments: jira_team_field \"{unknown}\": no active JIRA user has the e-mail address"
            ),
        };
        assert!(message.contains(&expected), "{kind:?}: {message}");
        if kind == TeamFieldKind::Team {
            let message = start_fails(&world, vec!["--catalog".to_owned(), path.clone()]).await;
            assert!(message.contains("give --jira-org-id (ITK_JIRA_ORG_ID)"), "{message}");
        }
    }
}

/// A `Retry-After` holds back every request of the client, not only the one that was told: a
/// second worker's call made during the wait reaches JIRA only after it.
#[tokio::test]
async fn retry_after_holds_back_every_worker_of_the_client() {
    let world = World::start(SimConfig::default()).await;
    let mut config = JiraClientConfig::new(world.sim.url(), BOT_EMAIL, Secret::new(BOT_TOKEN));
    config.requests_per_second = 0.0;
    let client = JiraClient::new(config).unwrap();
    world.sim.fail_next(Fault::RateLimited { retry_after_secs: 3 });
    let told = tokio::spawn({
        let client = client.clone();
        async move { client.myself().await }
    });
    eventually("the 429", WAIT, || async { world.sim.call_count() == 1 }).await;
    let other = tokio::spawn({
        let client = client.clone();
        async move { client.myself().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.sim.call_count(), 1, "no request leaves while JIRA said to wait");
    told.await.unwrap().expect("the told call succeeds after the wait");
    other.await.unwrap().expect("the other call succeeds after the wait");
    let statuses: Vec<u16> = world.sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200, 200]);
}

impl World {
    /// A person files a task of their own (no infra-tickets labels) in PLAT.
    async fn person_files_task(&self, summary: &str) -> String {
        let created = self
            .person()
            .create_issue(&json!({"fields": {
                "project": {"key": "PLAT"}, "issuetype": {"name": "Task"}, "summary": summary}}))
            .await
            .unwrap();
        created.key
    }

    fn linked_moves(&self) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| {
                c.method == "POST"
                    && c.path.ends_with("/transitions")
                    && c.user.as_deref() == Some(BOT_EMAIL)
                    && !c.faulted
            })
            .count()
    }
}

/// Point 9 of issue 13, on both workflows: a person linking a task to a ticket ("task blocks
/// ticket") moves the ticket to the linked status (JIRA Software: In Progress, configured; the
/// seed's: Assigned, the default), first from JIRA's signed webhook, then from the periodic search
/// of a writer without a webhook secret. A redelivered webhook or the next search does nothing,
/// even after a person moved the ticket back; a ticket a person holds in Waiting or closed is not
/// moved; a webhook with a wrong signature is refused.
#[tokio::test]
async fn a_task_linked_to_a_ticket_moves_it_from_the_webhook_or_the_search_once() {
    const SECRET: &str = "webhook-secret-for-tests";
    for (workflow, mut args, target, move_back, hold) in [
        (
            Workflow::jira_software(),
            vec!["--jira-linked-status", "In Progress"],
            "In Progress",
            "Stop Progress",
            vec!["Done"],
        ),
        (
            Workflow::seed_team(),
            vec!["--jira-workflow", SEED_WORKFLOW],
            "Assigned",
            "Unassign",
            vec!["Assign", "Wait for someone"],
        ),
    ] {
        let name = workflow.name.clone();
        let world = World::start(sim_with(workflow)).await;
        args.extend(["--jira-link-types", "Blocks", "--jira-link-scan-every", "200ms"]);
        let mut with_webhook = args.clone();
        with_webhook.extend(["--jira-webhook-secret", SECRET]);
        let writer = world.start_writer(world.config(&with_webhook));
        let linked = desired("acme/linked", "platform", Lane::P2, "2026-12-27", 1);
        let held = desired("acme/held", "platform", Lane::P2, "2026-12-27", 1);
        let related = desired("acme/related", "platform", Lane::P2, "2026-12-27", 1);
        for d in [&linked, &held, &related] {
            world.publish(d).await;
            world.wait_applied(d).await;
        }
        eventually("the writer to listen", WAIT, || async { writer.address().is_some() }).await;
        let hook = format!("http://{}/webhooks/jira", writer.address().unwrap());
        world.sim.set_webhook(Some(jira_sim::Webhook { url: hook.clone(), secret: Some(SECRET.into()) }));
        let person = world.person();

        // Webhook: the task blocks the ticket; the ticket moves, with a comment naming the task.
        let ticket = world.only_issue(&linked).key;
        let task = world.person_files_task("Roll out the lodash upgrade").await;
        person.link_issues("Blocks", &task, &ticket).await.unwrap();
        eventually("the linked ticket to move", WAIT, || async {
            world.sim.issue(&ticket).unwrap().status == target
        })
        .await;
        let issue = world.sim.issue(&ticket).unwrap();
        assert!(issue.comments.last().unwrap().1.contains(&task), "{name}: {issue:?}");
        assert!(
            issue.links.iter().any(|(t, other, dir)| t == "Blocks" && *other == task && dir == "inward"),
            "{name}: the ticket reads 'is blocked by' the task: {:?}",
            issue.links
        );
        assert_eq!(world.sim.webhook_deliveries()[0].status, 204, "{name}");

        // Redelivered after a person moved the ticket back: nothing happens.
        world.person_moves(&ticket, move_back).await;
        let moves = world.linked_moves();
        assert_eq!(world.sim.redeliver_webhook(0).await, 204, "{name}");
        assert_eq!(world.linked_moves(), moves, "{name}: a redelivery moves nothing");
        assert_ne!(world.sim.issue(&ticket).unwrap().status, target, "{name}: the person's move stands");

        // A ticket held by a person (closed, or Waiting) is not moved.
        let held_key = world.only_issue(&held).key;
        for step in &hold {
            world.person_moves(&held_key, step).await;
        }
        let held_status = world.sim.issue(&held_key).unwrap().status;
        let other_task = world.person_files_task("Decide on the held one").await;
        person.link_issues("Blocks", &other_task, &held_key).await.unwrap();
        eventually("the second webhook", WAIT, || async { world.sim.webhook_deliveries().len() == 2 }).await;
        assert_eq!(world.sim.webhook_deliveries()[1].status, 204, "{name}");
        assert_eq!(world.sim.issue(&held_key).unwrap().status, held_status, "{name}");

        // A wrong or missing signature is refused before anything is read.
        let body = world.sim.webhook_deliveries()[0].body.to_string();
        let http = reqwest::Client::new();
        for signature in [Some("sha256=00ff"), None] {
            let mut request = http.post(&hook).body(body.clone());
            if let Some(signature) = signature {
                request = request.header("X-Hub-Signature", signature);
            }
            assert_eq!(request.send().await.unwrap().status().as_u16(), 401, "{name}");
        }
        writer.stop().await;

        // No webhook secret: the periodic search finds the new link, and leaves the old ones be.
        world.sim.set_webhook(None);
        let writer = world.start_writer(world.config(&args));
        let related_key = world.only_issue(&related).key;
        let third_task = world.person_files_task("Patch the related service").await;
        // The ticket blocks the task this time: either direction counts.
        person.link_issues("Blocks", &related_key, &third_task).await.unwrap();
        eventually("the search to move the linked ticket", WAIT, || async {
            world.sim.issue(&related_key).unwrap().status == target
        })
        .await;
        let moves = world.linked_moves();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(world.linked_moves(), moves, "{name}: later searches move nothing");
        assert_ne!(world.sim.issue(&ticket).unwrap().status, target, "{name}");
        assert_eq!(world.sim.issue(&held_key).unwrap().status, held_status, "{name}");
        assert!(world.broker.dead_letters().await.is_empty(), "{name}");
        writer.stop().await;
        world.assert_contract();
    }
}
