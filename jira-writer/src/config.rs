//! The jira-writer's settings: flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Parser;
use service_kit::args::parse_duration;
use service_kit::{Clock, HttpArgs, NatsArgs, Secret, TelemetryArgs, TopologyArgs};

/// jira-writer: reconciles desired ticket states with JIRA Cloud.
#[derive(Debug, Clone, Parser)]
#[command(name = "jira-writer", version)]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// JIRA Cloud site, e.g. https://example.atlassian.net.
    #[arg(long = "jira-url", env = "JIRA_URL")]
    pub jira_url: String,
    /// Atlassian account e-mail of the API token.
    #[arg(long = "jira-email", env = "JIRA_EMAIL")]
    pub jira_email: String,
    /// Atlassian API token (Basic auth with the e-mail).
    #[arg(long = "jira-api-token", env = "JIRA_API_TOKEN", hide_env_values = true)]
    pub jira_api_token: Secret,
    /// At most this many JIRA requests per second from this process (0: no cap).
    #[arg(long = "jira-requests-per-second", env = "ITK_JIRA_RPS", default_value_t = 10.0)]
    pub jira_requests_per_second: f64,
    /// Timeout of one JIRA request.
    #[arg(long = "jira-timeout", env = "ITK_JIRA_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub jira_timeout: Duration,
    /// Attempts of one JIRA call (429/5xx/timeouts) before the message is retried later.
    #[arg(long = "jira-max-attempts", env = "ITK_JIRA_MAX_ATTEMPTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub jira_max_attempts: u32,
    /// First backoff delay between attempts; doubles per attempt.
    #[arg(long = "jira-backoff", env = "ITK_JIRA_BACKOFF", default_value = "200ms", value_parser = parse_duration)]
    pub jira_backoff: Duration,
    /// How long the consumer pauses (and reports unready) after a 401/403 before trying again.
    #[arg(long = "jira-auth-pause", env = "ITK_JIRA_AUTH_PAUSE", default_value = "30s", value_parser = parse_duration)]
    pub jira_auth_pause: Duration,
    /// While JIRA is down (5xx, timeouts, refused connections past the retries), how long the
    /// consumer pauses (unready, holding its messages, dead-lettering nothing) between tries.
    #[arg(long = "jira-outage-pause", env = "ITK_JIRA_OUTAGE_PAUSE", default_value = "15s", value_parser = parse_duration)]
    pub jira_outage_pause: Duration,
    /// The statuses of a project's workflow:
    /// `[PROJECT:]filed=ToDo,resolve=Done,reopen=ToDo,via=Assigned|In Progress,decisions=Cancelled|Waiting`
    /// (`filed`, the status new tickets are walked to, is optional: without it they stay where
    /// JIRA starts them); repeat (or separate with `;`) for several projects; one without
    /// `PROJECT:` is the default (JIRA Software's `resolve=Done,reopen=To Do,via=In Progress`
    /// when none is given).
    #[arg(long = "jira-workflow", env = "ITK_JIRA_WORKFLOWS", value_delimiter = ';',
          value_parser = crate::workflow::parse_workflow)]
    pub jira_workflows: Vec<(Option<String>, crate::workflow::WorkflowSettings)>,
    /// When the source changes a ticket that a person closed while the source still reports open
    /// work, reopen it with a comment saying what remains (`false`: leave it closed).
    #[arg(long = "reopen-closed-with-open-work", env = "ITK_JIRA_REOPEN_CLOSED_WITH_OPEN_WORK",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub reopen_closed_with_open_work: bool,

    /// Link types (name, inward or outward phrase, e.g. `Blocks`, `is implemented by`) that, when a
    /// person links a task to a ticket with one, move the ticket to its workflow's linked status;
    /// comma-separated, empty: status sync off.
    #[arg(
        long = "jira-link-types",
        env = "ITK_JIRA_LINK_TYPES",
        default_value = "Blocks,Relates",
        value_delimiter = ','
    )]
    pub jira_link_types: Vec<String>,
    /// The status a ticket moves to when a task is linked to it (a workflow's `linked=` wins).
    #[arg(long = "jira-linked-status", env = "ITK_JIRA_LINKED_STATUS", default_value = "Assigned")]
    pub jira_linked_status: String,
    /// Secret of JIRA's admin webhook (issue link created) posted to `/webhooks/jira` on the HTTP
    /// listener; each body's `X-Hub-Signature` is checked against it. Without it, the writer
    /// searches for new links every `--jira-link-scan-every` instead.
    #[arg(long = "jira-webhook-secret", env = "ITK_JIRA_WEBHOOK_SECRET", hide_env_values = true)]
    pub jira_webhook_secret: Option<Secret>,
    /// How often the open tickets' links are searched when no webhook secret is set.
    #[arg(long = "jira-link-scan-every", env = "ITK_JIRA_LINK_SCAN_EVERY", default_value = "2m", value_parser = parse_duration)]
    pub jira_link_scan_every: Duration,

    /// The ownership catalog (teams → JIRA project, components, team field value, labels).
    #[arg(long = "catalog", env = "ITK_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Project for teams the catalog gives none.
    #[arg(long = "jira-project", env = "ITK_JIRA_PROJECT")]
    pub jira_project: String,
    /// Issue type of every ticket.
    #[arg(long = "jira-issue-type", env = "ITK_JIRA_ISSUE_TYPE", default_value = "Task")]
    pub jira_issue_type: String,
    /// Priority name per lane.
    #[arg(long = "jira-lane-priorities", env = "ITK_JIRA_LANE_PRIORITIES",
          default_value = "P1=Highest,P2=High,P3=Medium,P4=Low,Maintenance=High",
          value_parser = crate::mapping::parse_lane_priorities)]
    pub jira_lane_priorities: std::collections::BTreeMap<contracts::Lane, String>,
    /// Labels on every ticket, comma-separated; the first is the duplicate sweep's handle.
    #[arg(
        long = "jira-labels",
        env = "ITK_JIRA_LABELS",
        default_value = "infra-tickets",
        value_delimiter = ','
    )]
    pub jira_labels: Vec<String>,
    /// The team custom field id (customfield_NNNNN), set from the catalog's jira_team_field.
    #[arg(long = "jira-team-field", env = "ITK_JIRA_TEAM_FIELD")]
    pub jira_team_field: Option<String>,

    /// The Atlassian organisation id (admin.atlassian.com → Settings), needed when the team field
    /// is JIRA's Team field and the catalog names teams rather than giving their ids: the names
    /// are looked up once at start in the Teams API.
    #[arg(long = "jira-org-id", env = "ITK_JIRA_ORG_ID")]
    pub jira_org_id: Option<String>,
    /// The site's cloud id, passed to the Teams API for site-scoped teams.
    #[arg(long = "jira-site-id", env = "ITK_JIRA_SITE_ID")]
    pub jira_site_id: Option<String>,

    /// How long JIRA's search may lag behind a create: a claim younger than this is waited
    /// out, not re-created.
    #[arg(long = "consistency-window", env = "ITK_JIRA_CONSISTENCY_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub consistency_window: Duration,
    /// How soon a message waiting on a young claim is first looked at again (default 2s); the
    /// wait doubles with each delivery, and never passes the end of the consistency window.
    #[arg(long = "claim-recheck", env = "ITK_JIRA_CLAIM_RECHECK", value_parser = parse_duration)]
    pub claim_recheck: Option<Duration>,
    /// A ticket closed no longer ago than this is reopened when its source comes back;
    /// otherwise a new ticket is filed and linked to it.
    #[arg(long = "reopen-window", env = "ITK_JIRA_REOPEN_WINDOW", default_value = "30d", value_parser = parse_duration)]
    pub reopen_window: Duration,
    /// How often the duplicate sweep runs.
    #[arg(long = "sweep-every", env = "ITK_JIRA_SWEEP_EVERY", default_value = "5m", value_parser = parse_duration)]
    pub sweep_every: Duration,
    /// Messages handled at once.
    #[arg(long = "concurrency", env = "ITK_JIRA_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Log the JIRA requests that would be sent; write nothing (JIRA, ledger, events).
    #[arg(long = "dry-run", env = "ITK_DRY_RUN")]
    pub dry_run: bool,
    /// Name of this replica in ledger claims (default: host and process id).
    #[arg(long = "instance-id", env = "ITK_INSTANCE_ID")]
    pub instance_id: Option<String>,

    #[arg(skip)]
    pub clock: Clock,
    /// Test hooks; inert in production.
    #[arg(skip)]
    pub hooks: Hooks,
}

/// What a running writer tells its caller (the bound HTTP address) and, with the `test-util`
/// feature only, fault injection for tests; production builds carry none of it.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Filled with the address `/healthz`, `/readyz`, `/metrics` listen on.
    pub listening: Arc<OnceLock<SocketAddr>>,
    /// When set, the next create is followed by a simulated process crash before the ledger
    /// write: `run` returns [`crate::WriterError::Crashed`] and unacked messages are redelivered.
    #[cfg(feature = "test-util")]
    pub crash_after_create: Arc<std::sync::atomic::AtomicBool>,
    /// Cancelled by that crash.
    #[cfg(feature = "test-util")]
    pub(crate) crashed: tokio_util::sync::CancellationToken,
}

#[cfg(feature = "test-util")]
impl Hooks {
    pub fn arm_crash_after_create(&self) {
        self.crash_after_create.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Simulates the crash when armed (once): `run` returns at once.
    pub(crate) fn crash_if_armed(&self) -> bool {
        let armed = self.crash_after_create.swap(false, std::sync::atomic::Ordering::SeqCst);
        if armed {
            self.crashed.cancel();
        }
        armed
    }
}

/// Resolves with [`crate::WriterError::Crashed`] once a test hook simulated a crash; never
/// without the `test-util` feature.
pub(crate) async fn simulated_crash(hooks: &Hooks) -> crate::WriterError {
    #[cfg(feature = "test-util")]
    {
        hooks.crashed.cancelled().await;
        crate::WriterError::Crashed
    }
    #[cfg(not(feature = "test-util"))]
    {
        let _ = hooks;
        std::future::pending().await
    }
}
