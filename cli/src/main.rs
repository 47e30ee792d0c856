use clap::{Parser, Subcommand};
use service_kit::{NatsArgs, TopologyArgs};

/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// infra-tickets: one JIRA ticket per unit of work, from AWS Health and Snyk.
#[derive(Debug, Parser)]
#[command(name = "infra-tickets", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the desired tickets that Snyk or AWS Health payloads would produce, as JSON lines.
    Explain(infra_tickets::explain::ExplainArgs),
    /// Show streams, consumers (pending, in flight) and key-value buckets; `--apply` first
    /// creates or updates them (the Kubernetes topology Job, with an admin NATS user), `--verify`
    /// first checks them as a least-privilege service would at start.
    Topology {
        #[command(flatten)]
        nats: NatsArgs,
        #[command(flatten)]
        topology: TopologyArgs,
        /// Create or update every stream, consumer and bucket, then report.
        #[arg(long, conflicts_with = "verify")]
        apply: bool,
        /// Check every stream, consumer and bucket against this build's settings, then report;
        /// exits non-zero naming what differs.
        #[arg(long)]
        verify: bool,
    },
    /// Re-drive the raw stream through triage after a policy or catalog change; `--diff` first
    /// shows which tickets would change, writing nothing; `--rebuild` restores lost group states.
    Replay(infra_tickets::replay::ReplayArgs),
    /// Exit 0 when the URL answers 2xx (container health checks).
    Probe {
        /// For example http://127.0.0.1:9090/readyz
        url: String,
    },
    /// Preflight: check NATS, JIRA, Slack, Snyk, AWS and the catalog as the services are
    /// configured (their flags, environment and config file), writing nothing; a ✗ names what to
    /// change, and the exit code is 1 when any check fails.
    Doctor(infra_tickets::doctor::DoctorArgs),
    /// The jira-writer's ledger (group key → JIRA issue).
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Inspect and redrive dead letters.
    Dlq {
        #[command(flatten)]
        nats: NatsArgs,
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Records, from JIRA (each ticket's key label and `infra-tickets` property), every group
    /// key whose ledger record was lost, then marks the ledger complete; existing records are
    /// left alone, so it is safe beside running writers. Reads the jira-writer's configuration
    /// as the writer does (environment, `ITK_CONFIG`, and the settings after `--`).
    Rebuild {
        /// jira-writer settings (`-- --jira-url https://… --nats-url …`).
        #[arg(last = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// One line per dead letter: sequence, stage, class, deliveries, when, reason.
    List,
    /// One dead letter with its headers and payload.
    Show {
        /// Sequence in the DEAD_LETTERS stream (from `dlq list`).
        sequence: u64,
    },
    /// Republish dead letters to their original subjects (after fixing the cause).
    Redrive {
        /// Sequences in the DEAD_LETTERS stream.
        #[arg(required_unless_present = "all")]
        sequences: Vec<u64>,
        /// Redrive every dead letter.
        #[arg(long, conflicts_with = "sequences")]
        all: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = service_kit::telemetry::init(
        "infra-tickets",
        &service_kit::TelemetryArgs {
            log_format: service_kit::args::LogFormat::Text,
            log_level: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        },
    )?;
    let output = match cli.command {
        Command::Explain(args) => {
            let mut out = String::new();
            for ticket in infra_tickets::explain::explain(args)? {
                out.push_str(&serde_json::to_string(&ticket)?);
                out.push('\n');
            }
            out
        }
        Command::Replay(args) if args.diff => {
            let diffs = infra_tickets::replay::diff(args, &service_kit::Clock::system()).await?;
            let mut out = String::new();
            for diff in &diffs {
                out.push_str(&format!("{diff}\n"));
            }
            out.push_str(&format!("{} ticket(s) would change\n", diffs.len()));
            out
        }
        Command::Replay(args) if args.rebuild => {
            let summary = infra_tickets::replay::rebuild(args, &service_kit::Clock::system()).await?;
            format!(
                "read {} raw event(s); {} lost group state(s) rebuilt, {} kept; {} desired ticket(s) published\n",
                summary.events, summary.groups_rebuilt, summary.groups_kept, summary.desired_published
            )
        }
        Command::Replay(args) => {
            let summary = infra_tickets::replay::replay(args, service_kit::Clock::system()).await?;
            format!(
                "replayed {} raw event(s); {} desired ticket(s) changed\n",
                summary.events, summary.desired_published
            )
        }
        Command::Probe { url } => {
            infra_tickets::probe::probe(&url).await?;
            String::new()
        }
        Command::Topology { nats, topology, apply, verify } => {
            let mut out = String::new();
            if apply || verify {
                let mode = if apply { bus::TopologyMode::Apply } else { bus::TopologyMode::Verify };
                out.push_str(&infra_tickets::operate::topology_set_up(&nats, &topology, mode).await?);
            }
            out.push_str(&infra_tickets::operate::topology_report(&nats).await?);
            out
        }
        Command::Doctor(args) => {
            let report = infra_tickets::doctor::doctor(&args).await;
            let out = if args.json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                report.render()
            };
            print!("{out}");
            std::process::exit(if report.ok { 0 } else { 1 });
        }
        Command::Ledger { command: LedgerCommand::Rebuild { settings } } => {
            let argv = std::iter::once("jira-writer".to_owned()).chain(settings).map(Into::into);
            let config: jira_writer::Config = service_kit::config::parse_from(argv);
            let report = jira_writer::rebuild_ledger(config).await?;
            format!(
                "{} ticket(s) with the base label read; {} record(s) rebuilt, {} already there, {} unreadable (no key label or property)\n",
                report.scanned, report.recovered, report.present, report.unreadable
            )
        }
        Command::Dlq { nats, command } => match command {
            DlqCommand::List => infra_tickets::operate::dlq_list(&nats).await?,
            DlqCommand::Show { sequence } => infra_tickets::operate::dlq_show(&nats, sequence).await?,
            DlqCommand::Redrive { sequences, all } => {
                infra_tickets::operate::dlq_redrive(&nats, &sequences, all).await?
            }
        },
    };
    print!("{output}");
    Ok(())
}
