//! The whole pipeline: NATS, the four simulators with the generated world, and the five
//! services as processes. The large sync, new events one at a time, and a no-change resync.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bus::topology;
use chrono::{DateTime, Utc};
use local_nats::NatsServer;

use crate::measure::{self, FirstEvidence, Latencies, StoredRaw};
use crate::services::{self, ServiceCommand, ServiceProcess, Wiring};
use crate::world::{self, Simulators};
use crate::{BenchError, Scale, StepExt};

/// Counters of the simulators and streams, to take differences of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub raw: u64,
    pub desired: u64,
    pub changes: u64,
    pub jira_calls: usize,
    pub jira_issues: usize,
    pub slack_messages: usize,
    pub snyk_calls: usize,
    pub health_calls: u64,
}

impl Counters {
    pub fn minus(&self, before: &Counters) -> Counters {
        Counters {
            raw: self.raw - before.raw,
            desired: self.desired - before.desired,
            changes: self.changes - before.changes,
            jira_calls: self.jira_calls - before.jira_calls,
            jira_issues: self.jira_issues - before.jira_issues,
            slack_messages: self.slack_messages - before.slack_messages,
            snyk_calls: self.snyk_calls - before.snyk_calls,
            health_calls: self.health_calls - before.health_calls,
        }
    }
}

/// Everything running for the pipeline phases.
pub struct Pipeline {
    pub nats: NatsServer,
    pub js: jetstream::Context,
    pub sims: Simulators,
    wiring: Wiring,
    command: ServiceCommand,
    workdir: tempfile::TempDir,
    services: BTreeMap<&'static str, ServiceProcess>,
    /// Peak resident memory of stopped service processes (a restarted service keeps the larger).
    stopped_peaks: BTreeMap<&'static str, f64>,
}

impl Pipeline {
    /// Starts NATS and the simulators; the services start with [`Pipeline::start_services`].
    pub async fn start(scale: &Scale, command: &ServiceCommand) -> Result<Pipeline, BenchError> {
        let nats = NatsServer::start().step("starting nats-server")?;
        let js = crate::connect(nats.url()).await?;
        let workdir = tempfile::tempdir().step("creating the work directory")?;
        let catalog = workdir.path().join("catalog.toml");
        std::fs::write(&catalog, world::CATALOG).step("writing the catalog")?;
        let sims = Simulators::start(scale).await?;
        let wiring = Wiring::new(nats.url(), &catalog, &sims, &scale.slack_channel_interval);
        Ok(Pipeline {
            nats,
            js,
            sims,
            wiring,
            command: command.clone(),
            workdir,
            services: BTreeMap::new(),
            stopped_peaks: BTreeMap::new(),
        })
    }

    /// Where the service logs are.
    pub fn logs(&self) -> &Path {
        self.workdir.path()
    }

    pub fn start_services(&mut self) -> Result<(), BenchError> {
        for name in services::ALL {
            self.start_service(name)?;
        }
        Ok(())
    }

    fn start_service(&mut self, name: &'static str) -> Result<(), BenchError> {
        let flags = self.wiring.flags(name);
        let process = ServiceProcess::spawn(&self.command, name, &flags, self.workdir.path())?;
        self.services.insert(name, process);
        Ok(())
    }

    /// Stops a service (remembering its peak memory) and starts it again.
    pub async fn restart_service(&mut self, name: &'static str) -> Result<(), BenchError> {
        if let Some(process) = self.services.remove(name) {
            self.remember_peak(&process);
            process.stop().await?;
        }
        self.start_service(name)
    }

    fn remember_peak(&mut self, process: &ServiceProcess) {
        if let Some(peak) = process.peak_resident_mib() {
            let kept = self.stopped_peaks.entry(process.name).or_insert(0.0);
            *kept = kept.max(peak);
        }
    }

    /// Peak resident memory of each service so far, in MiB.
    pub fn peaks(&self) -> BTreeMap<String, f64> {
        let mut peaks: BTreeMap<String, f64> =
            self.stopped_peaks.iter().map(|(name, peak)| ((*name).to_owned(), *peak)).collect();
        for (name, process) in &self.services {
            let peak = process.peak_resident_mib().unwrap_or(0.0);
            let kept = peaks.entry((*name).to_owned()).or_insert(0.0);
            *kept = kept.max(peak);
        }
        peaks
    }

    /// Stops every service.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        for (_, process) in std::mem::take(&mut self.services) {
            process.stop().await?;
        }
        Ok(())
    }

    pub async fn counters(&self) -> Result<Counters, BenchError> {
        Ok(Counters {
            raw: measure::last_sequence(&self.js, topology::RAW_EVENTS).await?,
            desired: measure::last_sequence(&self.js, topology::DESIRED_TICKETS).await?,
            changes: measure::last_sequence(&self.js, topology::TICKET_CHANGES).await?,
            jira_calls: self.sims.jira.call_count(),
            jira_issues: self.sims.jira.issues().len(),
            slack_messages: self.sims.slack.all_messages().len(),
            snyk_calls: self.sims.snyk.requests().len(),
            health_calls: self.sims.health.total_calls(),
        })
    }

    /// Waits until at least `min_raw` raw events and `min_snyk_calls` Snyk calls happened, every
    /// consumer is drained, and nothing was published, created or sent for `quiet`.
    pub async fn settle(
        &mut self,
        min_raw: u64,
        min_snyk_calls: usize,
        quiet: Duration,
        deadline: Instant,
    ) -> Result<Counters, BenchError> {
        let mut last = Counters::default();
        let mut quiet_since = Instant::now();
        loop {
            for process in self.services.values_mut() {
                process.check_running()?;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout { what: format!("the pipeline settling (last: {last:?})") });
            }
            let now = self.counters().await?;
            let ready = now.raw >= min_raw
                && now.snyk_calls >= min_snyk_calls
                && measure::pipeline_drained(&self.js).await?;
            // The intakes poll their APIs all the time: their calls are not a sign of work.
            let moved = Counters { snyk_calls: 0, health_calls: 0, ..now }
                != Counters { snyk_calls: 0, health_calls: 0, ..last };
            if moved || !ready {
                last = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= quiet {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Settles, then waits until every open group has its ticket and its first message.
    pub async fn settle_complete(
        &mut self,
        min_raw: u64,
        min_snyk_calls: usize,
        since: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Outcome, BenchError> {
        loop {
            let counters = self.settle(min_raw, min_snyk_calls, Duration::from_secs(2), deadline).await?;
            let raw = measure::raw_events(&self.js).await?;
            let evidence = measure::first_evidence(&raw, world::catalog());
            let tickets = measure::jira_tickets(&self.sims.jira);
            let messages = measure::first_messages(&self.sims.slack);
            let latencies = measure::latencies(&evidence, &tickets, &messages, since);
            let complete = latencies.missing_tickets == 0 && latencies.missing_messages == 0;
            if complete || Instant::now() > deadline {
                return Ok(Outcome { counters, raw, evidence, latencies, tickets: tickets.len() });
            }
        }
    }

    /// Adds `count` new tickets' worth of source events, one every `every`: AWS Health events
    /// and critical Snyk findings in repositories without a ticket, alternately.
    pub async fn trickle(&self, count: usize, every: Duration) -> Result<DateTime<Utc>, BenchError> {
        let started = Utc::now();
        let mut projects = self.sims.untouched_github_projects().into_iter();
        for n in 0..count {
            let now = Utc::now();
            let snyk_project = if n % 2 == 1 { projects.next() } else { None };
            match snyk_project {
                Some(project) => {
                    let issue = snyk_sim::NewIssue::critical_mature(
                        &format!("SNYK-JS-BENCHNEW-{n}"),
                        &format!("bench-new-{n}"),
                        "1.0.0",
                    );
                    self.sims.snyk.add_issue(world::ORG_ID, &project, issue);
                }
                None => self.sims.health.put_event(world::health_event("new", n, now, now)),
            }
            tokio::time::sleep(every).await;
        }
        Ok(started)
    }
}

/// What a settled phase produced.
pub struct Outcome {
    pub counters: Counters,
    pub raw: Vec<StoredRaw>,
    pub evidence: FirstEvidence,
    pub latencies: Latencies,
    pub tickets: usize,
}
