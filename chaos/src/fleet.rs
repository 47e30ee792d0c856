//! The services as OS processes (`chaos-service <name> …`), so they can be killed with SIGKILL
//! and started again with the same flags.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to start one service.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub service: &'static str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// One replica of one service.
pub struct ServiceProcess {
    pub spec: ServiceSpec,
    pub replica: usize,
    /// How many times it was started.
    pub starts: u32,
    child: Option<Child>,
    log: PathBuf,
}

impl ServiceProcess {
    /// `triage#2`.
    pub fn label(&self) -> String {
        format!("{}#{}", self.spec.service, self.replica)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A process that ended without being killed.
#[derive(Debug, Clone)]
pub struct UnexpectedExit {
    pub process: String,
    pub status: String,
    pub log: PathBuf,
}

/// Every service process; all are killed when dropped.
pub struct Fleet {
    binary: PathBuf,
    pub processes: Vec<ServiceProcess>,
    pub unexpected_exits: Vec<UnexpectedExit>,
    pub kills: u32,
}

impl Fleet {
    /// Starts `replicas` processes of each spec, logging to `<log_dir>/<service>-<replica>.log`.
    pub fn start(
        binary: &Path,
        log_dir: &Path,
        specs: Vec<ServiceSpec>,
        replicas: usize,
    ) -> anyhow::Result<Fleet> {
        anyhow::ensure!(binary.is_file(), "the service binary {} does not exist", binary.display());
        let mut fleet = Fleet {
            binary: binary.to_owned(),
            processes: Vec::new(),
            unexpected_exits: Vec::new(),
            kills: 0,
        };
        for spec in specs {
            for replica in 1..=replicas {
                let log = log_dir.join(format!("{}-{replica}.log", spec.service));
                fleet.processes.push(ServiceProcess {
                    spec: spec.clone(),
                    replica,
                    starts: 0,
                    child: None,
                    log,
                });
            }
        }
        for index in 0..fleet.processes.len() {
            fleet.spawn(index)?;
        }
        Ok(fleet)
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let process = &mut self.processes[index];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&process.log)?;
        let child = Command::new(&self.binary)
            .arg(process.spec.service)
            .args(&process.spec.args)
            .envs(process.spec.env.iter().map(|(k, v)| (k, v)))
            // No collector here, and no config file from the caller's environment.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("ITK_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        process.child = Some(child);
        process.starts += 1;
        Ok(())
    }

    /// Kills a process with SIGKILL; returns its label.
    pub fn kill(&mut self, index: usize) -> String {
        self.note_exits();
        let process = &mut self.processes[index];
        if let Some(mut child) = process.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
        process.label()
    }

    /// Starts a killed process again with the same flags.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        if self.processes[index].child.is_none() {
            self.spawn(index)?;
        }
        Ok(())
    }

    /// Records processes that ended by themselves (a crash, an error at start) and starts them
    /// again, so one failure does not hide the next.
    pub fn note_exits(&mut self) {
        for index in 0..self.processes.len() {
            let process = &mut self.processes[index];
            let Some(child) = process.child.as_mut() else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                self.unexpected_exits.push(UnexpectedExit {
                    process: process.label(),
                    status: status.to_string(),
                    log: process.log.clone(),
                });
                process.child = None;
                if let Err(error) = self.spawn(index) {
                    tracing::error!(%error, "Cannot restart a service process.");
                }
            }
        }
    }

    /// Stops every process with SIGTERM and waits (a graceful end, after the checks).
    pub fn stop(&mut self) {
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while std::time::Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
