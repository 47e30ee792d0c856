//! Health events triaged per second through `InMemoryTriage<HealthPolicy>`: 2,000 events of 10
//! entities across two teams, each sent three times (first notice, a reminder with the same
//! content, a re-notification with a moved window), plus text-dated Lambda notices.
//!
//! `cargo run -p health-policy --release --example health_triage_throughput`

use std::sync::Arc;
use std::time::Instant;

use catalog::Catalog;
use chrono::{Duration, Utc};
use health_policy::{HealthPolicy, HealthSettings, raw_event, samples};
use triage_policy::InMemoryTriage;

fn main() {
    let catalog = Catalog::from_toml(
        "default_team = \"platform\"\n[teams.platform]\naws_accounts = [\"111111111111\"]\n[teams.payments]\n\
         time_zone = \"Europe/Berlin\"\n[[owners]]\nteam = \"payments\"\naws_resources = [\"i-0pay*\"]\n",
    )
    .expect("catalog");
    let mut triage = InMemoryTriage::new(HealthPolicy::new(Arc::new(catalog), HealthSettings::default()));
    let now = Utc::now();
    let mut events = Vec::new();
    for i in 0..2_000 {
        let code = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED";
        let arn = samples::event_arn("eu-west-1", "EC2", code, &format!("bench{i:05}"));
        let instances: Vec<(String, &str)> = (0..10)
            .map(|e| {
                (if e % 2 == 0 { format!("i-0pay{i:05}{e}") } else { format!("i-0web{i:05}{e}") }, "PENDING")
            })
            .collect();
        let refs: Vec<(&str, &str)> = instances.iter().map(|(v, s)| (v.as_str(), *s)).collect();
        for (version, shift) in [(0, 0), (0, 0), (1, 7)] {
            let mut event = samples::event(
                &arn,
                "EC2",
                code,
                "scheduledChange",
                "111111111111",
                "eu-west-1",
                now + Duration::hours(version),
                "One or more of your instances is scheduled for a reboot.",
            );
            samples::window(&mut event, now + Duration::days(14 + shift), None);
            samples::entities(&mut event, &refs);
            events.push(event);
        }
        if i % 10 == 0 {
            let code = "AWS_LAMBDA_OPERATIONAL_NOTIFICATION";
            let arn = samples::event_arn("us-east-1", "LAMBDA", code, &format!("lambda{i:05}"));
            events.push(samples::event(
                &arn,
                "LAMBDA",
                code,
                "accountNotification",
                "111111111111",
                "us-east-1",
                now,
                samples::LAMBDA_NODE18_TEXT,
            ));
        }
    }
    let raws: Vec<_> = events.into_iter().map(|e| raw_event(e, "bench", now).expect("valid event")).collect();
    let started = Instant::now();
    let mut published = 0;
    for raw in &raws {
        published += triage.apply(raw, now).expect("ticketed").len();
    }
    let elapsed = started.elapsed();
    println!(
        "{} Health events triaged in {:.3}s: {:.0} events/s; {} desired tickets published, {} tickets",
        raws.len(),
        elapsed.as_secs_f64(),
        raws.len() as f64 / elapsed.as_secs_f64(),
        published,
        triage.tickets().len()
    );
}
