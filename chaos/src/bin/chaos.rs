//! The long form of the chaos suite, run by hand:
//!
//! ```text
//! cargo run -p chaos --bin chaos -- --duration 10m --kills 60
//! ```
//!
//! Same harness as the CI test (`chaos/tests/chaos.rs`), with a larger org, more waves and as
//! many kills as asked, spread over `--duration`. Prints the report; exits 1 when a check failed.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Kill service processes and NATS nodes under load, then check the board and Slack.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// How long to keep killing.
    #[arg(long, default_value = "10m", value_parser = service_kit::args::parse_duration)]
    duration: Duration,
    /// Kills (service processes and NATS nodes together) spread over --duration.
    #[arg(long, default_value_t = 60)]
    kills: usize,
    /// Every n-th kill is a NATS node rather than a service process.
    #[arg(long, default_value_t = 3)]
    nats_kill_every: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Snyk projects and issues of the generated org.
    #[arg(long, default_value_t = 1_000)]
    projects: usize,
    #[arg(long, default_value_t = 20_000)]
    issues: usize,
    /// AWS Health events at the start, and per kill round.
    #[arg(long, default_value_t = 150)]
    health_events: usize,
    #[arg(long, default_value_t = 6)]
    wave_health_events: usize,
    /// Critical Snyk findings added per kill round.
    #[arg(long, default_value_t = 5)]
    wave_findings: usize,
    /// Bound on the convergence after the last kill.
    #[arg(long, default_value = "5m", value_parser = service_kit::args::parse_duration)]
    settle_timeout: Duration,
    /// Where the processes' logs go (default: a new directory in the temp dir).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// The chaos-service binary (default: next to this one).
    #[arg(long)]
    service_binary: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let binary = match args.service_binary {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("chaos-service"),
    };
    let mut options = chaos::Options::bounded(binary);
    options.seed = args.seed;
    options.chaos_duration = args.duration;
    options.rounds = args.kills;
    options.nats_kill_every = args.nats_kill_every;
    options.load.snyk_projects = args.projects;
    options.load.snyk_issues = args.issues;
    options.load.health_events = args.health_events;
    options.load.wave_health_events = args.wave_health_events;
    options.load.wave_snyk_findings = args.wave_findings;
    options.settle_timeout = args.settle_timeout;
    options.log_dir = args.log_dir;
    let report = chaos::run(options).await?;
    println!("{}", report.render());
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
