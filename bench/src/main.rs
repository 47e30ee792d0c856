//! `cargo run --release -p pipeline-bench -- [--short]`: the whole pipeline against the
//! simulators with a generated org; prints the tables of docs/benchmarks.md ("Whole pipeline").

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The end-to-end benchmark.
#[derive(Debug, Parser)]
#[command(name = "pipeline-bench")]
struct Args {
    /// A small org (CI's smoke run) instead of 5,000 projects, 250,000 findings and 2,000
    /// Health events.
    #[arg(long, env = "BENCH_SHORT")]
    short: bool,
    /// The `pipeline-service` executable; by default the one next to this binary.
    #[arg(long, env = "BENCH_SERVICE_BINARY")]
    service_binary: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber_init();
    let binary = match args.service_binary {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("pipeline-service"),
    };
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: build it first (cargo build [--release] -p pipeline-bench --bins)",
        binary.display()
    );
    let scale = if args.short { pipeline_bench::Scale::short() } else { pipeline_bench::Scale::full() };
    let report = pipeline_bench::run(scale, binary).await.context("the benchmark failed")?;
    println!("{report}");
    let problems = report.problems();
    anyhow::ensure!(problems.is_empty(), "the numbers are not sane: {problems:?}");
    Ok(())
}

/// Progress lines on stderr (`RUST_LOG` to change).
fn tracing_subscriber_init() {
    service_kit::telemetry::init_for_tests();
}
