//! The five services, each its own process (`pipeline-service <name>`), so that each one's peak
//! resident memory can be read from `/proc/<pid>/status`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::world::{self, Simulators};
use crate::{BenchError, StepExt};

pub const INGEST_SNYK: &str = "ingest-snyk";
pub const INGEST_HEALTH: &str = "ingest-health";
pub const TRIAGE: &str = "triage";
pub const JIRA_WRITER: &str = "jira-writer";
pub const NOTIFIER: &str = "notifier";
/// In the order they start: consumers first, so nothing waits on a missing stage.
pub const ALL: [&str; 5] = [TRIAGE, JIRA_WRITER, NOTIFIER, INGEST_HEALTH, INGEST_SNYK];

/// Where the services find NATS, the simulators and the catalog.
pub struct Wiring {
    pub nats_url: String,
    pub catalog: PathBuf,
    pub snyk_org: String,
    pub health_url: String,
    pub jira_url: String,
    pub slack_url: String,
    /// notifier's `--channel-interval` (Slack's own pace is one message per second per channel).
    pub slack_channel_interval: String,
}

impl Wiring {
    pub fn new(nats_url: &str, catalog: &Path, sims: &Simulators, slack_channel_interval: &str) -> Self {
        Wiring {
            nats_url: nats_url.to_owned(),
            catalog: catalog.to_owned(),
            snyk_org: format!("{}@{}", world::ORG_ID, sims.snyk.base_url()),
            health_url: sims.health.url(),
            jira_url: sims.jira.url(),
            slack_url: sims.slack.api_url(),
            slack_channel_interval: slack_channel_interval.to_owned(),
        }
    }

    /// The service's flags, as its own binary takes them.
    pub fn flags(&self, service: &str) -> Vec<String> {
        let catalog = self.catalog.to_string_lossy().into_owned();
        let mut flags: Vec<String> =
            [service, "--nats-url", &self.nats_url, "--listen", "127.0.0.1:0"].map(str::to_owned).to_vec();
        let mut add = |more: &[&str]| flags.extend(more.iter().map(|s| (*s).to_owned()));
        let jira = [
            "--jira-url",
            &self.jira_url,
            "--jira-email",
            jira_sim::BOT_EMAIL,
            "--jira-api-token",
            jira_sim::BOT_TOKEN,
            "--jira-requests-per-second",
            "200",
        ];
        match service {
            INGEST_SNYK => add(&[
                "--snyk-org",
                &self.snyk_org,
                "--snyk-token",
                world::SNYK_TOKEN,
                "--snyk-reconcile-interval",
                "1h",
                "--snyk-poll-interval",
                "5s",
            ]),
            INGEST_HEALTH => {
                add(&["--health-api-endpoint-url", &self.health_url, "--health-api-interval", "1s"])
            }
            TRIAGE => add(&["--catalog", &catalog]),
            JIRA_WRITER => {
                add(&["--catalog", &catalog]);
                add(&jira);
                add(&["--jira-project", "PLAT", "--jira-team-field", jira_sim::TEAM_FIELD]);
            }
            NOTIFIER => {
                add(&["--catalog", &catalog]);
                add(&jira);
                add(&[
                    "--slack-api-url",
                    &self.slack_url,
                    "--slack-bot-token",
                    world::SLACK_TOKEN,
                    "--channel-interval",
                    &self.slack_channel_interval,
                ]);
            }
            _ => {}
        }
        flags
    }
}

/// How to start a service process: `program [leading…] <name> <flags>`.
#[derive(Debug, Clone)]
pub struct ServiceCommand {
    pub program: PathBuf,
    pub leading: Vec<String>,
}

impl ServiceCommand {
    /// The `pipeline-service` binary.
    pub fn binary(program: impl Into<PathBuf>) -> Self {
        ServiceCommand { program: program.into(), leading: Vec::new() }
    }

    /// A `pipeline-bench` binary, which runs a service when its first argument is `service`.
    pub fn bench(program: impl Into<PathBuf>) -> Self {
        ServiceCommand { program: program.into(), leading: vec!["service".into()] }
    }
}

/// One running service process; killed if dropped without [`ServiceProcess::stop`].
pub struct ServiceProcess {
    pub name: &'static str,
    child: tokio::process::Child,
    pid: u32,
}

impl ServiceProcess {
    /// Starts the service with `flags` and its output in `<logs>/<name>.log`.
    pub fn spawn(
        command: &ServiceCommand,
        name: &'static str,
        flags: &[String],
        logs: &Path,
    ) -> Result<Self, BenchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))
            .step("opening a service log")?;
        let child = tokio::process::Command::new(&command.program)
            .args(&command.leading)
            .args(flags)
            // ingest-health's AWS SDK takes the standard credential chain; the simulator accepts any.
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("ITK_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(log.try_clone().step("duplicating a log handle")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Step {
                step: "starting a service process",
                source: Box::new(source),
            })?;
        let pid = child.id().ok_or_else(|| BenchError::Check(format!("{name} exited at once")))?;
        Ok(ServiceProcess { name, child, pid })
    }

    /// The process's peak resident memory so far (`VmHWM`), in MiB.
    pub fn peak_resident_mib(&self) -> Option<f64> {
        status_field(self.pid, "VmHWM:")
    }

    /// Fails if the process has exited (a service that died makes every number meaningless).
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait().step("checking a service process")? {
            None => Ok(()),
            Some(status) => Err(BenchError::Check(format!("{} exited: {status} (see its log)", self.name))),
        }
    }

    /// Stops the process with SIGTERM (it drains), SIGKILL after 20 s.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .step("signalling a service process")?;
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            self.child.kill().await.step("killing a service process")?;
        }
        Ok(())
    }
}

/// A `kB` field of `/proc/<pid>/status`, in MiB.
fn status_field(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok().map(|kb| kb / 1024.0)
}

/// This process's peak resident memory (`VmHWM`), in MiB.
pub fn own_peak_resident_mib() -> Option<f64> {
    status_field(std::process::id(), "VmHWM:")
}
