//! The replay of `bench/src/capacity.rs` with the process's allocator as the only change:
//! glibc's by default, mimalloc with `--features mimalloc`. Templates are the generated org's
//! critical-only project snapshots (what ingest-snyk publishes by default).
//!
//! ```text
//! cargo run --release -p pipeline-bench --example replay_allocator -- [EVENTS]
//! cargo run --release -p pipeline-bench --features mimalloc --example replay_allocator -- [EVENTS]
//! ```

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pipeline_bench::measure::StoredRaw;
use pipeline_bench::{Scale, capacity, world};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let scale = Scale { replay_events: events, ..Scale::full() };
    let templates: Vec<StoredRaw> = capacity::snapshots(&scale, |severity| severity == "critical")?
        .into_iter()
        .map(|event| StoredRaw {
            subject: event.subject(world::ORG_ID),
            payload: event.to_json().into(),
            published: chrono::Utc::now(),
            event: Some(event),
        })
        .collect();
    let replay = capacity::replay(&scale, &templates).await?;
    let allocator = if cfg!(feature = "mimalloc") { "mimalloc" } else { "glibc malloc" };
    println!(
        "{allocator}: {} raw events replayed in {:.1} s ({:.0} per second); published in {:.1} s",
        replay.events,
        replay.replay_seconds,
        replay.events as f64 / replay.replay_seconds,
        replay.publish_seconds
    );
    Ok(())
}
