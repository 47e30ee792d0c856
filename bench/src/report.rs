//! What the benchmark measured, and how it prints.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Scale;
use crate::capacity::{Replay, TriageCapacity};
use crate::measure::{self, FirstEvidence, Latencies};
use crate::pipeline::Counters;
use crate::world::Simulators;

/// Every number of one run.
pub struct Report {
    pub scale: Scale,
    pub large_seconds: f64,
    pub large_counters: Counters,
    pub large_evidence: FirstEvidence,
    pub large_latencies: Latencies,
    pub large_tickets: usize,
    pub large_peaks: BTreeMap<String, f64>,
    pub large_jira_calls: BTreeMap<String, usize>,
    pub large_snyk_calls: BTreeMap<String, usize>,
    /// New tickets expected from the events sent one at a time, and those made per source.
    pub trickle_expected: usize,
    pub trickle_sources: BTreeMap<String, usize>,
    pub trickle_counters: Counters,
    pub trickle_latencies: Latencies,
    pub resync: Counters,
    pub resync_jira_calls: BTreeMap<String, usize>,
    pub resync_snyk_calls: BTreeMap<String, usize>,
    pub final_peaks: BTreeMap<String, f64>,
    pub dead_letters: usize,
    pub capacity: TriageCapacity,
    pub replay: Replay,
}

/// Seconds from `since` to the last ticket created or message posted.
pub fn settled_seconds(sims: &Simulators, since: DateTime<Utc>) -> f64 {
    let last_ticket = measure::jira_tickets(&sims.jira).into_iter().map(|t| t.created).max();
    let last_message = measure::first_messages(&sims.slack).into_values().max();
    let last = last_ticket.into_iter().chain(last_message).max().unwrap_or(since);
    (last - since).num_milliseconds() as f64 / 1e3
}

/// Snyk calls after the first `skip`, by path shape and the query parameters that tell a full
/// listing from an incremental pull (`updated_after`) or a one-project refresh.
pub fn snyk_calls_by_kind(snyk: &snyk_sim::SnykSim, skip: usize) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for call in snyk.requests().into_iter().skip(skip) {
        let what = if call.path.ends_with("/issues") {
            "issues"
        } else {
            call.path.rsplit('/').next().unwrap_or("")
        };
        let what = if call.path.contains("/projects/") { "project" } else { what };
        let mut kind = format!("{} {what}", call.method);
        for param in ["updated_after", "scan_item.id", "ids", "starting_after"] {
            if call.params.iter().any(|(name, _)| name == param) {
                kind.push_str(&format!(" {param}"));
            }
        }
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// JIRA calls after the first `skip`, by method and path shape (keys and ids as `{}`).
pub fn jira_calls_by_kind(jira: &jira_sim::JiraSim, skip: usize) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for call in jira.calls().into_iter().skip(skip) {
        let shape: Vec<&str> =
            call.path
                .split('/')
                .map(|segment| {
                    if segment.chars().any(|c| c.is_ascii_digit()) && segment != "3" { "{}" } else { segment }
                })
                .collect();
        *kinds.entry(format!("{} {}", call.method, shape.join("/"))).or_insert(0) += 1;
    }
    kinds
}

impl Report {
    /// What is wrong with the numbers, if anything (a sanity check, not a speed check).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, what: &str| {
            if !ok {
                problems.push(what.to_owned());
            }
        };
        check(self.large_tickets > 0, "the large sync created no ticket");
        check(self.large_latencies.missing_tickets == 0, "a group of the large sync has no ticket");
        check(self.large_latencies.missing_messages == 0, "a ticket of the large sync has no message");
        check(
            self.trickle_latencies.to_jira_ms.len() == self.trickle_expected,
            "a new event made no ticket within the wait",
        );
        check(self.trickle_latencies.missing_tickets == 0, "a new event's group has no ticket");
        check(self.trickle_latencies.missing_messages == 0, "a new event's ticket has no message");
        check(
            self.large_latencies
                .to_jira_ms
                .iter()
                .chain(&self.trickle_latencies.to_jira_ms)
                .all(|l| *l >= 0.0),
            "a ticket was created before its first raw event",
        );
        check(self.resync.raw == 0, "the no-change resync published raw events");
        check(self.resync.desired == 0, "the no-change resync changed desired tickets");
        check(self.resync.jira_issues == 0, "the no-change resync created tickets");
        check(self.resync.snyk_calls > 0, "the resync made no Snyk call");
        check(self.dead_letters == 0, "dead letters");
        check(self.capacity.findings >= self.scale.findings / 2, "the triage backlog lacks findings");
        check(self.capacity.seconds > 0.0, "triage drained nothing");
        check(self.replay.events == self.scale.replay_events as u64, "the replay missed events");
        check(
            self.final_peaks.len() == 5 && self.final_peaks.values().all(|p| *p > 0.0),
            "a service's memory",
        );
        problems
    }
}

fn rate(count: f64, seconds: f64) -> String {
    if seconds <= 0.0 { "-".into() } else { format!("{:.0}", count / seconds) }
}

fn ms(values: &[f64], q: f64) -> String {
    let value = measure::quantile(values, q);
    if value.is_nan() { "-".into() } else { format!("{value:.0} ms") }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scale;
        let c = &self.large_counters;
        let e = &self.large_evidence;
        writeln!(
            f,
            "Generated org: {} Snyk projects, {} findings, {} AWS Health events; JIRA answers after {:?}; notifier --channel-interval {}",
            s.projects, s.findings, s.health_events, s.jira_latency, s.slack_channel_interval
        )?;
        writeln!(f, "\nLarge sync (all five services as processes, from their start until settled)")?;
        writeln!(f, "| what | result |\n|---|---|")?;
        writeln!(f, "| time until the last ticket and message | {:.1} s |", self.large_seconds)?;
        writeln!(
            f,
            "| raw events | {} ({} Snyk snapshots with {} findings, {} Health events) |",
            c.raw, e.snyk_snapshots, e.snyk_findings, e.health_events
        )?;
        writeln!(f, "| JIRA tickets | {} |", self.large_tickets)?;
        writeln!(f, "| Slack messages | {} |", c.slack_messages)?;
        let l = &self.large_latencies;
        writeln!(
            f,
            "| first raw event → JIRA create, p50 / p99 | {} / {} |",
            ms(&l.to_jira_ms, 0.5),
            ms(&l.to_jira_ms, 0.99)
        )?;
        writeln!(
            f,
            "| first raw event → Slack message, p50 / p99 | {} / {} |",
            ms(&l.to_slack_ms, 0.5),
            ms(&l.to_slack_ms, 0.99)
        )?;
        let tickets = self.large_tickets.max(1) as f64;
        writeln!(
            f,
            "| JIRA calls | {} ({:.2} per ticket): {:?} |",
            c.jira_calls,
            c.jira_calls as f64 / tickets,
            self.large_jira_calls
        )?;
        writeln!(
            f,
            "| Snyk calls | {} ({:.3} per ticket, {:.3} per Snyk ticket): {:?} |",
            c.snyk_calls,
            c.snyk_calls as f64 / tickets,
            c.snyk_calls as f64 / self.snyk_groups().max(1) as f64,
            self.large_snyk_calls
        )?;
        writeln!(f, "| AWS Health calls | {} |", c.health_calls)?;
        writeln!(f, "| dead letters (whole run) | {} |", self.dead_letters)?;

        let t = &self.trickle_latencies;
        writeln!(
            f,
            "\nNew events one at a time ({} new tickets' worth, one every {:?}, into the settled pipeline)",
            s.trickle, s.trickle_every
        )?;
        writeln!(f, "| what | result |\n|---|---|")?;
        writeln!(
            f,
            "| new tickets | {} of {} expected, by source {:?} |",
            t.to_jira_ms.len(),
            self.trickle_expected,
            self.trickle_sources
        )?;
        writeln!(
            f,
            "| raw event → JIRA create, p50 / p99 / max | {} / {} / {} |",
            ms(&t.to_jira_ms, 0.5),
            ms(&t.to_jira_ms, 0.99),
            ms(&t.to_jira_ms, 1.0)
        )?;
        writeln!(
            f,
            "| raw event → Slack message, p50 / p99 / max | {} / {} / {} |",
            ms(&t.to_slack_ms, 0.5),
            ms(&t.to_slack_ms, 0.99),
            ms(&t.to_slack_ms, 1.0)
        )?;
        let tc = &self.trickle_counters;
        writeln!(
            f,
            "| JIRA calls per new ticket | {:.2} |",
            tc.jira_calls as f64 / t.to_jira_ms.len().max(1) as f64
        )?;

        let r = &self.resync;
        writeln!(
            f,
            "\nNo-change resync (ingest-snyk and ingest-health restarted: a full Snyk sync, a Health reconcile)"
        )?;
        writeln!(f, "| what | result |\n|---|---|")?;
        writeln!(f, "| Snyk calls | {} {:?} |", r.snyk_calls, self.resync_snyk_calls)?;
        writeln!(f, "| AWS Health calls | {} |", r.health_calls)?;
        writeln!(f, "| raw events published | {} |", r.raw)?;
        writeln!(f, "| desired tickets published | {} |", r.desired)?;
        writeln!(f, "| JIRA calls | {} {:?} |", r.jira_calls, self.resync_jira_calls)?;
        writeln!(f, "| Slack messages | {} |", r.slack_messages)?;

        let k = &self.capacity;
        writeln!(
            f,
            "\nTriage capacity (the triage service alone draining a backlog; snapshots with every severity)"
        )?;
        writeln!(f, "| what | result |\n|---|---|")?;
        writeln!(
            f,
            "| backlog | {} snapshots with {} findings + {} Health events |",
            k.snapshots, k.findings, k.health_events
        )?;
        writeln!(f, "| time to drain | {:.2} s |", k.seconds)?;
        writeln!(f, "| findings per second | {} |", rate(k.findings as f64, k.seconds))?;
        writeln!(
            f,
            "| raw events per second | {} |",
            rate((k.snapshots + k.health_events) as f64, k.seconds)
        )?;
        writeln!(f, "| desired tickets published | {} |", k.desired_published)?;
        writeln!(f, "| triage peak resident memory | {:.0} MiB |", k.peak_mib)?;

        let p = &self.replay;
        writeln!(
            f,
            "\nReplay (copies of the pipeline's raw events, new durable consumer, triage::Triage, 64 at once)"
        )?;
        writeln!(f, "| what | result |\n|---|---|")?;
        writeln!(
            f,
            "| raw events | {} ({:.0} MiB stored) |",
            p.events,
            p.stored_bytes as f64 / 1024.0 / 1024.0
        )?;
        writeln!(
            f,
            "| publish time | {:.1} s ({} events/s) |",
            p.publish_seconds,
            rate(p.events as f64, p.publish_seconds)
        )?;
        writeln!(
            f,
            "| replay time | {:.1} s ({} events/s) |",
            p.replay_seconds,
            rate(p.events as f64, p.replay_seconds)
        )?;
        writeln!(f, "| desired tickets published | {} |", p.desired_published)?;
        writeln!(f, "| group state writes | {} |", p.group_writes)?;

        writeln!(f, "\nPeak resident memory per service process (VmHWM)")?;
        writeln!(f, "| service | large sync | whole run |\n|---|---|---|")?;
        for (name, peak) in &self.final_peaks {
            let large = self.large_peaks.get(name).copied().unwrap_or(0.0);
            writeln!(f, "| {name} | {large:.0} MiB | {peak:.0} MiB |")?;
        }
        Ok(())
    }
}

impl Report {
    /// The same figures as the tables, as one JSON document (`pipeline-bench --json FILE`), so
    /// runs can be compared by a script: rates per second, latencies in ms (null when there were
    /// none), memory in MiB.
    pub fn summary(&self) -> Value {
        let s = &self.scale;
        let per_second = |count: f64, seconds: f64| (seconds > 0.0).then(|| count / seconds);
        let quantiles = |values: &[f64], qs: &[(&str, f64)]| {
            let mut out = serde_json::Map::new();
            for (name, q) in qs {
                let value = measure::quantile(values, *q);
                out.insert((*name).to_owned(), if value.is_nan() { Value::Null } else { json!(value) });
            }
            Value::Object(out)
        };
        let counters = |c: &Counters| {
            json!({
                "raw_events": c.raw, "desired_tickets": c.desired, "ticket_changes": c.changes,
                "jira_calls": c.jira_calls, "jira_issues": c.jira_issues, "slack_messages": c.slack_messages,
                "snyk_calls": c.snyk_calls, "health_calls": c.health_calls,
            })
        };
        let tickets = self.large_tickets.max(1) as f64;
        let (k, p) = (&self.capacity, &self.replay);
        let new_tickets = self.trickle_latencies.to_jira_ms.len();
        json!({
            "scale": {
                "projects": s.projects, "findings": s.findings, "health_events": s.health_events,
                "trickle": s.trickle, "replay_events": s.replay_events,
                "jira_latency_ms": s.jira_latency.as_secs_f64() * 1e3,
            },
            "large_sync": {
                "seconds": self.large_seconds,
                "tickets": self.large_tickets,
                "counters": counters(&self.large_counters),
                "jira_calls_per_ticket": self.large_counters.jira_calls as f64 / tickets,
                "jira_calls_by_kind": self.large_jira_calls,
                "snyk_calls_by_kind": self.large_snyk_calls,
                "to_jira_ms": quantiles(&self.large_latencies.to_jira_ms, &[("p50", 0.5), ("p99", 0.99)]),
                "to_slack_ms": quantiles(&self.large_latencies.to_slack_ms, &[("p50", 0.5), ("p99", 0.99)]),
                "peak_mib": self.large_peaks,
            },
            "trickle": {
                "expected": self.trickle_expected,
                "new_tickets": new_tickets,
                "by_source": self.trickle_sources,
                "to_jira_ms": quantiles(&self.trickle_latencies.to_jira_ms, &[("p50", 0.5), ("p99", 0.99), ("max", 1.0)]),
                "to_slack_ms": quantiles(&self.trickle_latencies.to_slack_ms, &[("p50", 0.5), ("p99", 0.99), ("max", 1.0)]),
                "jira_calls_per_new_ticket": self.trickle_counters.jira_calls as f64 / new_tickets.max(1) as f64,
            },
            "resync": {
                "counters": counters(&self.resync),
                "jira_calls_by_kind": self.resync_jira_calls,
                "snyk_calls_by_kind": self.resync_snyk_calls,
            },
            "triage_capacity": {
                "snapshots": k.snapshots, "findings": k.findings, "health_events": k.health_events,
                "seconds": k.seconds,
                "findings_per_second": per_second(k.findings as f64, k.seconds),
                "raw_events_per_second": per_second((k.snapshots + k.health_events) as f64, k.seconds),
                "desired_published": k.desired_published,
                "peak_mib": k.peak_mib,
            },
            "replay": {
                "events": p.events, "stored_bytes": p.stored_bytes,
                "publish_seconds": p.publish_seconds, "replay_seconds": p.replay_seconds,
                "events_per_second": per_second(p.events as f64, p.replay_seconds),
                "desired_published": p.desired_published, "group_writes": p.group_writes,
            },
            "peak_mib": self.final_peaks,
            "dead_letters": self.dead_letters,
            "problems": self.problems(),
        })
    }

    fn snyk_groups(&self) -> usize {
        self.large_evidence.by_group.keys().filter(|k| k.starts_with("snyk")).count()
    }
}
