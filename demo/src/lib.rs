//! `infra-tickets-demo` (`scripts/demo`): the whole pipeline on one machine.
//!
//! Starts a local nats-server and the four simulators seeded with a realistic org (several
//! teams; ECR images and GitHub repositories in Snyk; AWS Health maintenance, a retirement, a
//! Direct Connect maintenance, a Lambda end of support, an event spanning two teams, a closed
//! event and a Reserved Instance notice), wires the five services to them in-process, waits
//! until the board settles, sends a re-notification that moves a maintenance window, waits
//! again, and returns the board and the Slack messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_health_sim::AwsHealthSim;
use bus::topology::{self, TopologyConfig};
use jira_sim::{JiraSim, ProjectConfig, SimConfig};
use local_nats::NatsServer;
use slack_sim::SlackSim;
use snyk_sim::{SEEDED_ORG_ID, SnykSim};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Run the whole pipeline locally against the simulators and print the board.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Leave everything running (JIRA board at the printed URL) until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Give up when the board has not settled within this.
    #[arg(long, default_value = "120s", value_parser = service_kit::args::parse_duration)]
    pub timeout: Duration,
}

/// The demo's ownership catalog: four teams, their boards and channels, who owns what. The
/// compose stack mounts the same file, so the simulators' world has one catalog.
pub const CATALOG: &str = include_str!("../../deploy/compose/catalog.toml");

const SNYK_TOKEN: &str = "demo-snyk-token";
const SLACK_TOKEN: &str = "xoxb-demo-bot-token";
const CHANNELS: [(&str, &str); 4] =
    [("C0PLATFORM", "platform"), ("C0PAYMENTS", "payments"), ("C0DATA", "data"), ("C0MEDIA", "media")];

/// One ticket on the board.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BoardTicket {
    pub project: String,
    pub key: String,
    pub lane: String,
    pub summary: String,
    pub due_date: Option<String>,
    pub status: String,
    pub labels: Vec<String>,
    pub comments: usize,
}

/// One Slack message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SlackLine {
    pub channel: String,
    pub text: String,
}

/// What the demo produced.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub board: Vec<BoardTicket>,
    pub messages: Vec<SlackLine>,
    pub dead_letters: usize,
    pub jira_url: String,
}

impl DemoReport {
    /// The board per project and lane, then the Slack messages per channel.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut by_project: BTreeMap<&str, Vec<&BoardTicket>> = BTreeMap::new();
        for ticket in &self.board {
            by_project.entry(&ticket.project).or_default().push(ticket);
        }
        out.push_str(&format!("JIRA board ({} tickets)\n", self.board.len()));
        out.push_str(&format!(
            "  {:<12} {:<9} {:<14}  {:<11} {}\n",
            "LANE", "KEY", "DUE", "STATUS", "SUMMARY"
        ));
        for (project, mut tickets) in by_project {
            out.push_str(&format!("\n{project}\n"));
            tickets.sort_by(|a, b| (&a.lane, &a.key).cmp(&(&b.lane, &b.key)));
            for t in tickets {
                out.push_str(&format!(
                    "  {:<12} {:<9} {:<14}  {:<11} {}\n",
                    t.lane,
                    t.key,
                    t.due_date.as_deref().unwrap_or("-"),
                    t.status,
                    truncate(&t.summary, 120)
                ));
            }
        }
        out.push_str(&format!("\nSlack ({} messages)\n", self.messages.len()));
        for message in &self.messages {
            out.push_str(&format!("  #{:<10} {}\n", message.channel, truncate(&message.text, 110)));
        }
        out.push_str(&format!("\nDead letters: {}\n", self.dead_letters));
        out
    }
}

fn truncate(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

/// Where the simulators listen: fixed ports for compose, free ones for the demo and tests.
#[derive(Debug, Clone)]
pub struct SimulatorPorts {
    pub host: std::net::IpAddr,
    pub snyk: u16,
    pub aws_health: u16,
    pub jira: u16,
    pub slack: u16,
}

impl SimulatorPorts {
    /// Free loopback ports.
    pub fn any() -> Self {
        SimulatorPorts {
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            snyk: 0,
            aws_health: 0,
            jira: 0,
            slack: 0,
        }
    }
}

/// The four simulators, seeded with the demo org.
pub struct Simulators {
    pub jira: JiraSim,
    pub slack: SlackSim,
    pub snyk: SnykSim,
    pub health: AwsHealthSim,
}

impl Simulators {
    /// Starts JIRA (the four teams' projects), Slack (their channels and a bot token), Snyk (the
    /// seeded org) and AWS Health (the seeded notices, dated from now).
    pub async fn start(ports: &SimulatorPorts, options: &StackOptions) -> std::io::Result<Simulators> {
        let at = |port: u16| std::net::SocketAddr::new(ports.host, port);
        let mut jira_config = SimConfig::default();
        jira_config.projects.push(ProjectConfig::new("MEDIA", "10004", &["media"]));
        jira_config.team_field.options.push("Media".into());
        let jira = JiraSim::start_on(at(ports.jira), jira_config).await?;
        let slack = SlackSim::start_on(at(ports.slack)).await?;
        slack.add_bot_token(SLACK_TOKEN, &["chat:write", "channels:history"]);
        for (id, name) in CHANNELS.iter().filter(|(id, _)| !options.missing_channels.iter().any(|m| m == id))
        {
            slack.add_channel(id, name, true);
        }
        let snyk =
            SnykSim::start_on(at(ports.snyk), SNYK_TOKEN, vec![snyk_sim::model::SimOrg::seeded()]).await?;
        let health =
            AwsHealthSim::start_on(at(ports.aws_health), aws_health_sim::seed::events(chrono::Utc::now()))
                .await?;
        Ok(Simulators { jira, slack, snyk, health })
    }
}

/// Serve the seeded simulators on fixed ports until Ctrl-C (compose's `simulators` profile).
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorsArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: std::net::IpAddr,
    #[arg(long, default_value_t = 8081)]
    pub snyk_port: u16,
    #[arg(long, default_value_t = 8082)]
    pub aws_health_port: u16,
    #[arg(long, default_value_t = 8083)]
    pub jira_port: u16,
    #[arg(long, default_value_t = 8084)]
    pub slack_port: u16,
}

/// Runs the simulators until Ctrl-C or SIGTERM.
pub async fn serve_simulators(args: SimulatorsArgs) -> anyhow::Result<()> {
    let ports = SimulatorPorts {
        host: args.listen_host,
        snyk: args.snyk_port,
        aws_health: args.aws_health_port,
        jira: args.jira_port,
        slack: args.slack_port,
    };
    let sims = Simulators::start(&ports, &StackOptions::default()).await?;
    println!("Snyk REST:   {}  (org {SEEDED_ORG_ID}, token {SNYK_TOKEN})", sims.snyk.base_url());
    println!("AWS Health:  {}", sims.health.url());
    println!(
        "JIRA:        {}  (board at /_sim/board; {} / {})",
        sims.jira.url(),
        jira_sim::BOT_EMAIL,
        jira_sim::BOT_TOKEN
    );
    println!("Slack:       {}  (bot token {SLACK_TOKEN})", sims.slack.api_url());
    service_kit::shutdown::on_signal().cancelled().await;
    Ok(())
}

/// Everything the demo started, running until [`Stack::stop`] (or dropped).
pub struct Stack {
    pub nats: NatsServer,
    pub jira: JiraSim,
    pub slack: SlackSim,
    pub snyk: SnykSim,
    pub health: AwsHealthSim,
    pub js: async_nats::jetstream::Context,
    services: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
    workdir: tempfile::TempDir,
}

/// What to leave out of the demo world (tests use it to break things on purpose).
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Slack channels not created (messages to them fail with `channel_not_found`).
    pub missing_channels: Vec<String>,
    /// Run the notifier's reminder scan every 5 s at any hour (the demo itself keeps it off, so
    /// that its output does not depend on the hour it runs). [`Stack::settle`] still settles:
    /// its 3 s of quiet fit between two scans.
    pub reminders_at_any_hour: bool,
}

fn flags(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

fn parse<T: clap::Parser>(args: &[&str]) -> anyhow::Result<T> {
    Ok(service_kit::config::try_parse_from(flags(args), |_| None)?)
}

impl Stack {
    /// Starts NATS, the simulators and the five services.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        start_stack(options).await
    }

    /// The demo catalog's path, for CLI commands run against the stack.
    pub fn catalog_path(&self) -> std::path::PathBuf {
        self.workdir.path().join("catalog.toml")
    }

    /// Waits until every consumer is drained and the board and Slack stopped changing.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        settle(self, &self.js, timeout).await
    }

    /// Sends the re-notification (see [`renotify`]).
    pub fn renotify(&self) -> bool {
        renotify(&self.health)
    }

    pub async fn report(&self) -> anyhow::Result<DemoReport> {
        Ok(DemoReport {
            board: board(&self.jira),
            messages: messages(&self.slack),
            dead_letters: bus::dead_letter::list(&self.js).await?.len(),
            jira_url: self.jira.url(),
        })
    }

    /// Stops the services (they drain) and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while let Some(result) = self.services.join_next().await {
            if let Ok(Err(error)) = result {
                tracing::warn!(%error, "A service stopped with an error.");
            }
        }
    }
}

async fn start_stack(options: StackOptions) -> anyhow::Result<Stack> {
    let nats = NatsServer::start()?;
    let client =
        bus::connect(&bus::NatsConnection::unauthenticated(nats.url(), "infra-tickets-demo")).await?;
    let js = bus::jetstream(client);
    bus::ensure_topology(&js, &TopologyConfig::default()).await?;
    let workdir = tempfile::tempdir()?;
    let catalog_path = workdir.path().join("catalog.toml");
    std::fs::write(&catalog_path, CATALOG)?;
    let catalog = catalog_path.to_str().expect("a UTF-8 temp path");

    let Simulators { jira, slack, snyk, health } =
        Simulators::start(&SimulatorPorts::any(), &options).await?;

    let shutdown = CancellationToken::new();
    let mut services = JoinSet::new();
    let nats_url = nats.url().to_owned();
    let jira_url = jira.url();
    let slack_url = slack.api_url();
    let org = format!("{SEEDED_ORG_ID}@{}", snyk.base_url());
    let health_url = health.url();
    let common = ["--nats-url", nats_url.as_str(), "--listen", "127.0.0.1:0", "--catalog", catalog];

    let triage: triage::Config = parse(&[&["triage"][..], &common].concat())?;
    let stop = shutdown.clone();
    services.spawn(async move { Ok(triage::run(triage, stop).await?) });

    let snyk_args =
        ["--snyk-org", org.as_str(), "--snyk-token", SNYK_TOKEN, "--snyk-reconcile-interval", "1h"];
    let ingest_snyk: ingest_snyk::Config = parse(&[&["ingest-snyk"][..], &common[..4], &snyk_args].concat())?;
    let stop = shutdown.clone();
    services.spawn(async move { Ok(ingest_snyk::run(ingest_snyk, stop).await?) });

    let health_args = ["--health-api-endpoint-url", health_url.as_str(), "--health-api-interval", "2s"];
    let mut ingest_health: ingest_health::Config =
        parse(&[&["ingest-health"][..], &common[..4], &health_args].concat())?;
    ingest_health.aws = Some(ingest_health::static_sdk_config("us-east-1", "demo", "demo-secret"));
    let stop = shutdown.clone();
    services.spawn(async move { Ok(ingest_health::run(ingest_health, stop).await?) });

    let jira_args = [
        "--jira-url",
        jira_url.as_str(),
        "--jira-email",
        jira_sim::BOT_EMAIL,
        "--jira-api-token",
        jira_sim::BOT_TOKEN,
        "--jira-requests-per-second",
        "200",
    ];
    // The demo's projects run JIRA Software's workflow, which has no Assigned: a task linked to
    // a ticket moves it to In Progress (`infra-tickets doctor` reports the default there).
    let writer_args = [
        "--jira-project",
        "PLAT",
        "--jira-team-field",
        jira_sim::TEAM_FIELD,
        "--jira-linked-status",
        "In Progress",
    ];
    let writer: jira_writer::Config =
        parse(&[&["jira-writer"][..], &common, &jira_args, &writer_args].concat())?;
    let stop = shutdown.clone();
    services.spawn(async move { Ok(jira_writer::run(writer, stop).await?) });

    // A channel that cannot take messages is tried again every few seconds in the demo.
    // Reminders are off: they go out only in the team's working hours, so with them the demo's
    // output would depend on the hour it runs (a ticket due in 10 days gets its 14-day reminder
    // at 10:00, not at 20:00). The tests show the reminders.
    let slack_args = [
        "--slack-api-url",
        slack_url.as_str(),
        "--slack-bot-token",
        SLACK_TOKEN,
        "--channel-retry",
        "2s",
        "--reminders",
        if options.reminders_at_any_hour { "true" } else { "false" },
    ];
    let reminder_args: &[&str] = if options.reminders_at_any_hour {
        &["--working-hours", "00:00-23:59", "--reminder-scan-interval", "5s"]
    } else {
        &[]
    };
    let notifier: notifier::Config =
        parse(&[&["notifier"][..], &common, &jira_args, &slack_args, reminder_args].concat())?;
    let stop = shutdown.clone();
    services.spawn(async move { Ok(notifier::run(notifier, stop).await?) });

    Ok(Stack { nats, jira, slack, snyk, health, js, services, shutdown, workdir })
}

/// Waits until every consumer is drained and the board and Slack stopped changing for a while.
async fn settle(stack: &Stack, js: &async_nats::jetstream::Context, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let quiet_for = Duration::from_secs(3);
    let mut last = (usize::MAX, usize::MAX, u64::MAX);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the board did not settle within {timeout:?}"
        );
        let raw = js.get_stream(topology::RAW_EVENTS).await?.info().await?.state.messages;
        let now =
            (stack.jira.issues().len() + stack.jira.call_count(), stack.slack.all_messages().len(), raw);
        let drained = drained(js).await?;
        tracing::debug!(?now, drained, "Waiting for the board to settle.");
        if now != last || !drained || raw == 0 {
            last = now;
            quiet_since = tokio::time::Instant::now();
        } else if quiet_since.elapsed() >= quiet_for {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn drained(js: &async_nats::jetstream::Context) -> anyhow::Result<bool> {
    for name in [topology::TRIAGE, topology::JIRA_WRITER, topology::NOTIFIER] {
        let (stream, _) =
            topology::consumer_config(&TopologyConfig::default(), name).expect("known consumer");
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream(name, stream).await?;
        let info = consumer.info().await?;
        if info.num_pending > 0 || info.num_ack_pending > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A re-notification: AWS moves the reboot window two days later and updates the event.
fn renotify(health: &AwsHealthSim) -> bool {
    health.modify_event(aws_health_sim::seed::REBOOT_ARN, |event| {
        let two_days = chrono::Duration::days(2);
        event.start = event.start.map(|t| t + two_days);
        event.end = event.end.map(|t| t + two_days);
        event.last_updated = chrono::Utc::now();
    })
}

fn board(jira: &JiraSim) -> Vec<BoardTicket> {
    let mut board: Vec<BoardTicket> = jira
        .issues()
        .into_iter()
        .map(|issue| {
            // jira-writer labels each issue with its lane (`lane-p1`, `lane-maintenance`).
            let lane = issue
                .labels
                .iter()
                .find_map(|l| l.strip_prefix("lane-"))
                .and_then(|l| l.parse::<contracts::Lane>().ok())
                .map_or_else(|| "-".to_owned(), |l| l.to_string());
            BoardTicket {
                project: issue.project.clone(),
                key: issue.key.clone(),
                lane,
                summary: issue.summary.clone(),
                due_date: issue.due_date.clone(),
                status: issue.status.clone(),
                labels: issue.labels.clone(),
                comments: issue.comments.len(),
            }
        })
        .collect();
    board.sort_by(|a, b| (&a.project, &a.key).cmp(&(&b.project, &b.key)));
    board
}

fn messages(slack: &SlackSim) -> Vec<SlackLine> {
    slack
        .all_messages()
        .into_iter()
        .map(|m| SlackLine {
            channel: slack.channel_name(&m.channel).unwrap_or_else(|| m.channel.clone()),
            text: m.text.clone(),
        })
        .collect()
}

/// Runs the demo and returns its report; with `keep_running`, waits for Ctrl-C first.
pub async fn demo(args: DemoArgs) -> anyhow::Result<DemoReport> {
    let stack = Stack::start(StackOptions::default()).await?;
    stack.settle(args.timeout).await?;
    anyhow::ensure!(stack.renotify(), "the seeded reboot event is missing");
    stack.settle(args.timeout).await?;
    let report = stack.report().await?;
    if args.keep_running {
        println!("{}", report.render());
        println!("JIRA board:  {}/_sim/board", stack.jira.url());
        println!("JIRA issues: {}/_sim/issues", stack.jira.url());
        println!("Slack:       {}/_sim/messages", stack.slack.base_url());
        println!("Snyk API:    {}", stack.snyk.base_url());
        println!("AWS Health:  {}", stack.health.url());
        println!("NATS:        {}", stack.nats.url());
        println!("Running; Ctrl-C stops.");
        tokio::signal::ctrl_c().await?;
    }
    stack.stop().await;
    Ok(report)
}

/// The demo's catalog, parsed (for tests that check the board against it).
pub fn catalog() -> Arc<catalog::Catalog> {
    Arc::new(catalog::Catalog::from_toml(CATALOG).expect("the demo catalog is valid"))
}
