//! `cargo run --release -p pipeline-bench -- [--short] [--json FILE]`: the whole pipeline against
//! the simulators with a generated org; prints the tables of docs/benchmarks.md ("Whole
//! pipeline") and, with `--json`, the same figures as one JSON document.
//! `pipeline-bench service <name> [FLAGS]` runs one service (the benchmark starts each service
//! process that way). `pipeline-bench --snyk-memory` measures ingest-snyk alone on a full sync.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use pipeline_bench::services::ServiceCommand;
use pipeline_bench::snyk_memory::IngestProgram;

/// The end-to-end benchmark.
#[derive(Debug, Parser)]
#[command(name = "pipeline-bench", version)]
struct Args {
    /// A small org (CI's smoke run) instead of 5,000 projects, 250,000 findings and 2,000
    /// Health events.
    #[arg(long, env = "BENCH_SHORT")]
    short: bool,
    /// A `pipeline-service` executable to start the services with; by default this binary.
    #[arg(long, env = "BENCH_SERVICE_BINARY")]
    service_binary: Option<PathBuf>,
    /// Only ingest-snyk's peak memory on a full sync of the org (then an unchanged resync),
    /// ingest-snyk alone as its own process against the Snyk simulator.
    #[arg(long)]
    snyk_memory: bool,
    /// With `--snyk-memory`: ingest-snyk's `--snyk-issue-severities`.
    #[arg(long, default_value = "info,low,medium,high,critical")]
    snyk_severities: String,
    /// With `--snyk-memory`: the `ingest-snyk` binary to measure (as deployed, with its own
    /// allocator) instead of this binary's `service ingest-snyk`.
    #[arg(long)]
    snyk_binary: Option<PathBuf>,
    /// Also write the figures as one JSON document to this file (`-` for standard output, after
    /// the tables).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args_os().skip(1).peekable();
    if argv.peek().is_some_and(|first| first == "service") {
        pipeline_bench::dispatch::run_service(argv.skip(1).collect()).await?;
        return Ok(());
    }
    let args = Args::parse();
    // Progress lines (`RUST_LOG` to change).
    service_kit::telemetry::init_for_tests();
    let services = match args.service_binary {
        Some(path) => ServiceCommand::binary(path),
        None => ServiceCommand::bench(std::env::current_exe().context("locating this binary")?),
    };
    let scale = if args.short { pipeline_bench::Scale::short() } else { pipeline_bench::Scale::full() };
    if args.snyk_memory {
        let report = pipeline_bench::snyk_memory::run(
            scale.projects,
            scale.findings,
            &args.snyk_severities,
            &match args.snyk_binary {
                Some(path) => IngestProgram::Binary(path),
                None => IngestProgram::Bench(services),
            },
            scale.timeout,
        )
        .await
        .context("the Snyk memory benchmark failed")?;
        println!("{report}");
        let problems = report.problems();
        anyhow::ensure!(problems.is_empty(), "ingest-snyk misses the memory goal: {problems:?}");
        return Ok(());
    }
    let report = pipeline_bench::run(scale, services).await.context("the benchmark failed")?;
    println!("{report}");
    if let Some(path) = &args.json {
        let summary = serde_json::to_string_pretty(&report.summary()).context("rendering the summary")?;
        if path.as_os_str() == "-" {
            println!("{summary}");
        } else {
            std::fs::write(path, summary + "\n").with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let problems = report.problems();
    anyhow::ensure!(problems.is_empty(), "the numbers are not sane: {problems:?}");
    Ok(())
}
