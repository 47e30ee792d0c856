//! The chaos suite: the five services as separate processes (two replicas each) on a 3-node
//! NATS JetStream cluster with every stream and bucket at three replicas, against the JIRA,
//! Slack, Snyk and AWS Health simulators. While a generated Snyk org and AWS Health events flow
//! through, it SIGKILLs a random service process or a NATS node and starts it again, round after
//! round; JIRA answers with 429/5xx storms, latency and search lag, Slack (through a proxy) with
//! 429, 503, 500 after posting, and delays; a few malformed raw events are published straight to
//! `events.*`. At the end it checks what users would check: every expected ticket exactly once
//! with the right fields, one "created" notice per ticket and no message twice, no dead letter
//! but the poison, and every consumer drained. See docs/chaos.md.

pub mod cluster;
pub mod expected;
pub mod fleet;
pub mod slack_proxy;
pub mod verify;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::topology::TopologyConfig;
use contracts::{PayloadKind, RawEvent, Source};
use local_nats::NatsCluster;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::cluster::Lag;
use crate::fleet::{Fleet, ServiceSpec, UnexpectedExit};
use crate::slack_proxy::{ProxyPlan, ProxyStats};
use crate::world::{ApiFaults, Load, Simulators};

/// Streams, buckets and consumers are replicated on every node.
pub const REPLICAS: usize = 3;

/// One chaos run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Chooses what is killed and where the load lands.
    pub seed: u64,
    /// How long processes and nodes are killed for.
    pub chaos_duration: Duration,
    /// Fault rounds, spread over `chaos_duration`; each adds a load wave and kills one process
    /// and starts it again, or, every `nats_kill_every`-th round, hits one NATS node: killed
    /// (SIGKILL) the first time, cut off from its peers while its clients still reach it (a
    /// partition) the next, and so on in turn.
    pub rounds: usize,
    pub nats_kill_every: usize,
    /// Replicas (processes) of each service.
    pub service_replicas: usize,
    pub load: Load,
    pub faults: ApiFaults,
    /// The redelivery timeout of every consumer (`--ack-wait`).
    pub ack_wait: Duration,
    /// How long the pipeline may take to converge after the faults stop (a bound, not a goal).
    pub settle_timeout: Duration,
    /// The `chaos-service` binary.
    pub service_binary: PathBuf,
    /// Where the processes' logs go; a new directory under the system's temp dir when `None`.
    pub log_dir: Option<PathBuf>,
}

impl Options {
    /// The bounded form CI runs: a small org, a few kills, a deterministic seed.
    pub fn bounded(service_binary: PathBuf) -> Options {
        Options {
            seed: 8,
            chaos_duration: Duration::from_secs(35),
            rounds: 7,
            nats_kill_every: 3,
            service_replicas: 2,
            load: Load {
                snyk_projects: 240,
                snyk_issues: 2_400,
                health_events: 30,
                wave_health_events: 6,
                wave_snyk_findings: 4,
            },
            faults: ApiFaults {
                jira_storm_every: 7,
                jira_latency: Duration::from_millis(20),
                jira_search_lag: Duration::from_secs(2),
                slack: ProxyPlan {
                    unavailable_every: 9,
                    fail_after_post_every: 11,
                    max_delay: Duration::from_millis(200),
                },
                slack_rate_limited_per_round: 3,
            },
            ack_wait: Duration::from_secs(10),
            settle_timeout: Duration::from_secs(150),
            service_binary,
            log_dir: None,
        }
    }
}

/// What happened and what the checks found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub log_dir: PathBuf,
    pub chaos_phase: Duration,
    pub settle_time: Duration,
    pub service_kills: Vec<String>,
    pub nats_kills: Vec<String>,
    pub nats_partitions: Vec<String>,
    pub unexpected_exits: Vec<UnexpectedExit>,
    pub expected_tickets: usize,
    pub jira_issues: usize,
    pub jira_calls: usize,
    pub jira_faulted: usize,
    pub slack_messages: usize,
    /// Of them, reminders (every one that fell due was checked to be there once).
    pub reminders: usize,
    pub slack_rate_limited: u64,
    pub slack_proxy: ProxyStats,
    pub snyk_findings_added: usize,
    pub health_events_total: usize,
    pub poison: Vec<String>,
    pub dead_letters: usize,
    pub lags: Vec<Lag>,
    /// Everything the checks found wrong; empty when the run passed.
    pub problems: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!("chaos run, seed {}: {}", self.seed, if self.passed() { "PASSED" } else { "FAILED" }));
        line(format!("  chaos phase {:.0?}, then converged in {:.1?}", self.chaos_phase, self.settle_time));
        line(format!(
            "  service processes killed (SIGKILL) {}: {}",
            self.service_kills.len(),
            self.service_kills.join(", ")
        ));
        line(format!(
            "  NATS nodes killed (SIGKILL) {}: {}",
            self.nats_kills.len(),
            self.nats_kills.join(", ")
        ));
        line(format!(
            "  NATS nodes cut off from their peers (partition) {}: {}",
            self.nats_partitions.len(),
            self.nats_partitions.join(", ")
        ));
        line(format!(
            "  load: {} AWS Health events, {} critical findings added during the run, {} poison messages",
            self.health_events_total,
            self.snyk_findings_added,
            self.poison.len()
        ));
        line(format!(
            "  JIRA: {} tickets expected, {} issues, {} calls ({} answered with an injected fault)",
            self.expected_tickets, self.jira_issues, self.jira_calls, self.jira_faulted
        ));
        line(format!(
            "  Slack: {} messages ({} reminders, each one due there once); {} answered 429 by Slack, {} 503 and {} 500-after-posting by the proxy",
            self.slack_messages,
            self.reminders,
            self.slack_rate_limited,
            self.slack_proxy.unavailable,
            self.slack_proxy.failed_after_post
        ));
        line(format!("  dead letters: {}", self.dead_letters));
        for lag in &self.lags {
            line(format!(
                "  consumer {}: {} pending, {} unacked",
                lag.consumer, lag.pending, lag.ack_pending
            ));
        }
        for (exit, count) in exit_counts(&self.unexpected_exits) {
            line(format!(
                "  {} exited by itself ({}) {count} times; log {}",
                exit.process,
                exit.status,
                exit.log.display()
            ));
        }
        line(format!("  logs: {}", self.log_dir.display()));
        if !self.problems.is_empty() {
            line(format!("  {} problems:", self.problems.len()));
            for problem in self.problems.iter().take(60) {
                line(format!("    - {problem}"));
            }
            if self.problems.len() > 60 {
                line(format!("    … and {} more", self.problems.len() - 60));
            }
        }
        out
    }
}

/// Unexpected exits counted per process and status, in order of first occurrence.
fn exit_counts(exits: &[UnexpectedExit]) -> Vec<(&UnexpectedExit, usize)> {
    let mut counts: Vec<(&UnexpectedExit, usize)> = Vec::new();
    for exit in exits {
        match counts.iter_mut().find(|(e, _)| e.process == exit.process && e.status == exit.status) {
            Some((_, count)) => *count += 1,
            None => counts.push((exit, 1)),
        }
    }
    counts
}

/// Runs the suite: start everything, break things for `chaos_duration`, let it converge, check.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let log_dir = match &options.log_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "chaos-seed{}-{}-{}",
            options.seed,
            std::process::id(),
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        )),
    };
    std::fs::create_dir_all(&log_dir)?;
    let mut report = Report { seed: options.seed, log_dir: log_dir.clone(), ..Report::default() };
    let mut rng = StdRng::seed_from_u64(options.seed);

    let mut nats = NatsCluster::start_partitionable(REPLICAS)?;
    let urls = nats.urls();
    let js = cluster::connect(&urls).await?;
    let topology =
        TopologyConfig { replicas: REPLICAS, ack_wait: options.ack_wait, ..TopologyConfig::default() };
    cluster::ensure_topology(&js, &topology, Duration::from_secs(60)).await?;
    cluster::wait_healthy(&js, REPLICAS, Duration::from_secs(60))
        .await
        .map_err(|reason| anyhow::anyhow!("the new cluster is not healthy: {reason}"))?;

    let sims = Simulators::start(&options.load, &options.faults).await?;
    let catalog_path = log_dir.join("catalog.toml");
    std::fs::write(&catalog_path, world::CATALOG)?;
    let catalog = Arc::new(catalog::Catalog::from_toml(world::CATALOG)?);
    let specs = service_specs(&urls, &sims, &catalog_path, &options);
    let mut fleet = Fleet::start(&options.service_binary, &log_dir, specs, options.service_replicas)?;
    tracing::info!(log_dir = %log_dir.display(), processes = fleet.processes.len(), "Services started.");

    sims.inject_faults(&options.faults, true);
    report.poison = inject_poison(&js).await?;

    // Services are killed in turn, in an order the seed shuffles, a random replica each time: a
    // few kills already hit every service.
    let mut kill_order: Vec<&'static str> = fleet.processes.iter().map(|p| p.spec.service).collect();
    kill_order.dedup();
    kill_order.shuffle(&mut rng);
    let chaos_started = Instant::now();
    let round_every = options.chaos_duration / u32::try_from(options.rounds.max(1)).unwrap_or(u32::MAX);
    for round in 1..=options.rounds {
        let due = chaos_started + round_every * u32::try_from(round - 1).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let wave = sims.add_wave(round, &options.load, &mut rng);
        report.snyk_findings_added += wave.snyk_findings;
        sims.slack.inject_rate_limit(options.faults.slack_rate_limited_per_round, Duration::from_secs(1));
        fleet.note_exits();
        if options.nats_kill_every > 0 && round % options.nats_kill_every == 0 {
            let node = rng.random_range(0..nats.nodes.len());
            let down_for = Duration::from_millis(rng.random_range(2_000..6_000));
            let partition = (report.nats_kills.len() + report.nats_partitions.len()) % 2 == 1;
            if partition {
                tracing::info!(round, node = node + 1, ?down_for, "Cutting a NATS node off from its peers.");
                nats.isolate(node);
                report.nats_partitions.push(format!("n{}", node + 1));
                tokio::time::sleep(down_for).await;
                nats.rejoin(node);
            } else {
                tracing::info!(round, node = node + 1, ?down_for, "Killing a NATS node.");
                nats.nodes[node].kill();
                report.nats_kills.push(format!("n{}", node + 1));
                tokio::time::sleep(down_for).await;
                nats.nodes[node].restart()?;
            }
            if let Err(reason) = cluster::wait_healthy(&js, REPLICAS, Duration::from_secs(90)).await {
                report
                    .problems
                    .push(format!("after node n{} came back, the cluster did not heal: {reason}", node + 1));
            }
        } else {
            let service = kill_order[report.service_kills.len() % kill_order.len()];
            let replica = rng.random_range(1..=options.service_replicas);
            let index = fleet
                .processes
                .iter()
                .position(|p| p.spec.service == service && p.replica == replica)
                .expect("every service has its replicas");
            let down_for = Duration::from_millis(rng.random_range(300..3_000));
            let label = fleet.kill(index);
            tracing::info!(round, process = %label, ?down_for, "Killed a service process.");
            report.service_kills.push(label);
            tokio::time::sleep(down_for).await;
            fleet.restart(index)?;
        }
    }
    report.chaos_phase = chaos_started.elapsed();
    sims.inject_faults(&options.faults, false);
    report.health_events_total = sims.health.events().len();

    let expected = expected::compute(&sims, catalog.clone()).await?;
    report.expected_tickets = expected.open.len();
    let settle_started = Instant::now();
    settle(&js, &sims, &expected, &catalog, &mut fleet, options.settle_timeout).await;
    report.settle_time = settle_started.elapsed();

    let issues = sims.jira.issues();
    let messages = sims.slack.all_messages();
    let letters = bus::dead_letter::list(&js).await?;
    report.lags = cluster::consumer_lag(&js).await?;
    report.problems.extend(verify::check_board(&expected, &issues, &catalog));
    report.problems.extend(verify::check_slack(&expected, &issues, &messages, &catalog));
    report.problems.extend(verify::check_reminders(
        &expected,
        &issues,
        &messages,
        &catalog,
        chrono::Utc::now(),
    ));
    report.reminders = messages
        .iter()
        .filter(|m| m.metadata_field("idempotency_key").is_some_and(|k| k.starts_with("reminder/")))
        .count();
    report.problems.extend(verify::check_dead_letters(&letters, &report.poison));
    report.problems.extend(verify::check_lag(&report.lags));
    fleet.note_exits();
    report.unexpected_exits = fleet.unexpected_exits.clone();
    report.problems.extend(exit_counts(&fleet.unexpected_exits).into_iter().map(|(e, count)| {
        format!("{} exited by itself ({}) {count} times; see {}", e.process, e.status, e.log.display())
    }));
    let calls = sims.jira.calls();
    report.jira_calls = calls.len();
    report.jira_faulted = calls.iter().filter(|c| c.faulted).count();
    report.jira_issues = issues.len();
    report.slack_messages = messages.len();
    report.slack_rate_limited = sims.slack.rate_limited_count();
    report.slack_proxy = sims.slack_proxy.stats();
    report.dead_letters = letters.len();
    std::fs::write(log_dir.join("report.txt"), report.render())?;
    fleet.stop();
    tracing::info!(elapsed = ?started.elapsed(), passed = report.passed(), "Chaos run done.");
    Ok(report)
}

/// Each service's flags, as an operator would set them for a 3-node cluster.
fn service_specs(
    urls: &str,
    sims: &Simulators,
    catalog: &std::path::Path,
    options: &Options,
) -> Vec<ServiceSpec> {
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let ack_wait = format!("{}ms", options.ack_wait.as_millis());
    let catalog = catalog.display().to_string();
    let common = owned(&[
        "--nats-url",
        urls,
        "--listen",
        "127.0.0.1:0",
        "--stream-replicas",
        "3",
        "--ack-wait",
        &ack_wait,
    ]);
    let with_catalog = [common.clone(), owned(&["--catalog", &catalog])].concat();
    let jira_url = sims.jira.url();
    let jira = owned(&[
        "--jira-url",
        &jira_url,
        "--jira-email",
        jira_sim::BOT_EMAIL,
        "--jira-api-token",
        jira_sim::BOT_TOKEN,
        "--jira-requests-per-second",
        "100",
    ]);
    let org = format!("{}@{}", world::ORG_ID, sims.snyk.base_url());
    let health_url = sims.health.url();
    let slack_url = sims.slack_proxy.api_url();
    let aws_env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), world::AWS_ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), world::AWS_SECRET_ACCESS_KEY.to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ("AWS_CONFIG_FILE".to_owned(), "/nonexistent/aws-config".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE".to_owned(), "/nonexistent/aws-credentials".to_owned()),
    ];
    vec![
        ServiceSpec {
            service: "ingest-snyk",
            args: [
                common.clone(),
                owned(&[
                    "--snyk-org",
                    &org,
                    "--snyk-token",
                    world::SNYK_TOKEN,
                    "--snyk-reconcile-interval",
                    "30s",
                    "--snyk-poll-interval",
                    "3s",
                ]),
            ]
            .concat(),
            env: Vec::new(),
        },
        ServiceSpec {
            service: "ingest-health",
            args: [
                common.clone(),
                owned(&["--health-api-endpoint-url", &health_url, "--health-api-interval", "3s"]),
            ]
            .concat(),
            env: aws_env,
        },
        ServiceSpec { service: "triage", args: with_catalog.clone(), env: Vec::new() },
        ServiceSpec {
            service: "jira-writer",
            args: [
                with_catalog.clone(),
                jira.clone(),
                owned(&[
                    "--jira-project",
                    "PLAT",
                    "--jira-team-field",
                    jira_sim::TEAM_FIELD,
                    "--consistency-window",
                    "20s",
                    "--claim-recheck",
                    "1s",
                    "--sweep-every",
                    "30s",
                ]),
            ]
            .concat(),
            env: Vec::new(),
        },
        ServiceSpec {
            service: "notifier",
            args: [
                with_catalog,
                jira,
                owned(&[
                    "--slack-api-url",
                    &slack_url,
                    "--slack-bot-token",
                    world::SLACK_TOKEN,
                    "--slack-timeout",
                    "5s",
                    "--claim-lease",
                    "15s",
                    "--channel-interval",
                    "50ms",
                    "--reminder-scan-interval",
                    "5s",
                    // Reminders at any hour of a working day, so a run at night checks them too.
                    "--working-hours",
                    REMINDER_HOURS,
                ]),
            ]
            .concat(),
            env: Vec::new(),
        },
    ]
}

/// Malformed raw events published straight to `events.*`, as a broken producer would: a
/// truncated JSON document, and envelopes whose payloads are of the wrong type. Returns their
/// subjects; each must end up as exactly one dead letter.
async fn inject_poison(js: &async_nats::jetstream::Context) -> anyhow::Result<Vec<String>> {
    let now = chrono::Utc::now();
    let wrong_snyk = RawEvent::new(
        Source::Snyk,
        PayloadKind::SnykProjectSnapshot,
        "chaos",
        "chaos-poison-2",
        serde_json::json!({"project": 42, "issues": "none"}),
        now,
    );
    let wrong_health = RawEvent::new(
        Source::AwsHealth,
        PayloadKind::AwsHealthEvent,
        "chaos",
        "chaos-poison-3",
        serde_json::json!(["not", "an", "event"]),
        now,
    );
    let poison: Vec<(String, Vec<u8>)> = vec![
        (
            contracts::subjects::raw_event(Source::Snyk, PayloadKind::SnykProjectSnapshot, "chaos-poison-1"),
            br#"{"schema":1,"source":"snyk","kind":"snyk_proj"#.to_vec(),
        ),
        (wrong_snyk.subject("chaos-poison-2"), wrong_snyk.to_json()),
        (wrong_health.subject("chaos-poison-3"), wrong_health.to_json()),
    ];
    let mut subjects = Vec::new();
    for (n, (subject, body)) in poison.into_iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("chaos-poison-{}", n + 1).as_str());
        js.publish_with_headers(subject.clone(), headers, body.into()).await?.await?;
        subjects.push(subject);
    }
    Ok(subjects)
}

/// The notifiers' working hours in the chaos run (`--working-hours`).
pub const REMINDER_HOURS: &str = "00:00-23:59";

/// Waits (bounded) until the consumers are drained and the board and Slack are complete, or, if
/// something stays wrong, until nothing has changed for a while: the checks then say what.
async fn settle(
    js: &async_nats::jetstream::Context,
    sims: &Simulators,
    expected: &expected::Expected,
    catalog: &catalog::Catalog,
    fleet: &mut Fleet,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let quiet_needed = Duration::from_secs(20);
    let mut last_activity = (usize::MAX, usize::MAX);
    let mut quiet_since = Instant::now();
    let mut complete_polls = 0;
    while Instant::now() < deadline {
        fleet.note_exits();
        let drained = matches!(cluster::consumer_lag(js).await, Ok(lags) if cluster::drained(&lags));
        let issues = sims.jira.issues();
        let messages = sims.slack.all_messages();
        let complete = drained
            && verify::check_board(expected, &issues, catalog).is_empty()
            && verify::check_slack(expected, &issues, &messages, catalog).is_empty()
            && verify::check_reminders(expected, &issues, &messages, catalog, chrono::Utc::now()).is_empty();
        complete_polls = if complete { complete_polls + 1 } else { 0 };
        if complete_polls >= 3 {
            return;
        }
        let activity = (sims.jira.call_count(), messages.len());
        if activity != last_activity || !drained {
            last_activity = activity;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= quiet_needed {
            tracing::warn!("Nothing changed for {quiet_needed:?} but the checks still fail; checking now.");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(?timeout, "The pipeline did not converge in time; checking now.");
}
