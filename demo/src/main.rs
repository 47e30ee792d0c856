use clap::{Parser, Subcommand};

/// glibc's allocator serialises the tokio workers on its arena lock under this workload
/// (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// infra-tickets-demo: the whole pipeline on one machine against seeded simulators (the
/// default), or the seeded simulators alone (compose's `simulators` profile).
///
/// A binary of its own so the operator CLI shipped in production images carries no simulator.
#[derive(Debug, Parser)]
#[command(name = "infra-tickets-demo", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    demo: infra_tickets_demo::DemoArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the seeded JIRA, Slack, Snyk and AWS Health simulators on fixed ports (compose's
    /// `simulators` profile).
    Simulators(infra_tickets_demo::SimulatorsArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = service_kit::telemetry::init(
        "infra-tickets-demo",
        &service_kit::TelemetryArgs {
            log_format: service_kit::args::LogFormat::Text,
            log_level: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        },
    )?;
    match cli.command {
        Some(Command::Simulators(args)) => infra_tickets_demo::serve_simulators(args).await?,
        None => {
            let keep_running = cli.demo.keep_running;
            let report = infra_tickets_demo::demo(cli.demo).await?;
            if !keep_running {
                print!("{}", report.render());
            }
        }
    }
    Ok(())
}
