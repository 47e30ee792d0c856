//! A real `nats-server` on loopback, for tests, benchmarks and the demo.
//!
//! The binary is looked up in this order: `NATS_SERVER_BIN`; the project-local install made by
//! `scripts/install-nats-server` (`.tools/nats/bin/nats-server`); `PATH`. Its version must be
//! 2.10 or newer (Debian's 2.9 lacks what async-nats needs for key-value buckets).
//!
//! ```no_run
//! let server = local_nats::NatsServer::start().expect("nats-server");
//! println!("{}", server.url());
//! ```

pub mod partition;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The oldest server the project supports.
pub const MINIMUM_VERSION: (u32, u32) = (2, 10);

#[derive(Debug, thiserror::Error)]
pub enum LocalNatsError {
    #[error(
        "no nats-server found: set NATS_SERVER_BIN, or run scripts/install-nats-server \
         (installs nats-server 2.15.1 into .tools/nats), or put nats-server >= 2.10 on PATH"
    )]
    NotFound,
    #[error(
        "{path} is nats-server {found}, but infra-tickets needs 2.10 or newer; run scripts/install-nats-server"
    )]
    TooOld { path: String, found: String },
    #[error("cannot run {path}: {source}")]
    Run {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nats-server did not report its port within {0:?}; its log: {1}")]
    NoPort(Duration, String),
    #[error("cannot prepare a directory for nats-server: {0}")]
    Io(#[from] std::io::Error),
}

/// Finds a nats-server binary of a supported version.
pub fn find_server() -> Result<PathBuf, LocalNatsError> {
    let candidates = candidate_paths();
    let path = candidates.into_iter().find(|p| p.is_file()).ok_or(LocalNatsError::NotFound)?;
    let found = server_version(&path)?;
    if !version_supported(&found) {
        return Err(LocalNatsError::TooOld { path: path.display().to_string(), found });
    }
    Ok(path)
}

fn candidate_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        paths.push(PathBuf::from(bin));
        return paths;
    }
    // The workspace root, two levels above this crate.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    paths.push(workspace.join(".tools/nats/bin/nats-server"));
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path).map(|dir| dir.join("nats-server")));
    }
    paths
}

/// `nats-server --version` prints `nats-server: v2.15.1`.
fn server_version(path: &Path) -> Result<String, LocalNatsError> {
    let output = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|source| LocalNatsError::Run { path: path.display().to_string(), source })?;
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    Ok(text.trim().rsplit(' ').next().unwrap_or("").trim_start_matches('v').to_owned())
}

fn version_supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= MINIMUM_VERSION
}

/// Options for one server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Client port; 0 picks a free one.
    pub port: u16,
    /// JetStream store; a temporary directory when `None`.
    pub store_dir: Option<PathBuf>,
    /// Server name (required in a cluster).
    pub name: Option<String>,
    /// Cluster: this node's route port and the routes to the others.
    pub cluster: Option<ClusterOptions>,
    /// A server config file (`-c`), for an `authorization` or `tls` block; the flags above
    /// still choose the address, port and store.
    pub config_file: Option<PathBuf>,
    /// Environment variables of the server process (a config file may refer to them as `$NAME`).
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub name: String,
    pub listen_port: u16,
    pub routes: Vec<String>,
    /// The route address told to the other nodes (`--cluster_advertise`); the listen address
    /// when `None`.
    pub advertise: Option<String>,
}

/// A running nats-server with JetStream; stopped (SIGKILL) when dropped.
pub struct NatsServer {
    child: Option<Child>,
    url: String,
    options: ServerOptions,
    binary: PathBuf,
    log_path: PathBuf,
    // Owns the temporary store and log directory for the server's life.
    _workdir: tempfile::TempDir,
}

impl NatsServer {
    /// A single server on a free loopback port with a temporary store.
    pub fn start() -> Result<Self, LocalNatsError> {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Result<Self, LocalNatsError> {
        let binary = find_server()?;
        let workdir = tempfile::Builder::new().prefix("local-nats-").tempdir()?;
        let log_path = workdir.path().join("nats-server.log");
        let mut server =
            NatsServer { child: None, url: String::new(), options, binary, log_path, _workdir: workdir };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), LocalNatsError> {
        let workdir = self._workdir.path();
        let ports_dir = workdir.join("ports");
        if ports_dir.exists() {
            std::fs::remove_dir_all(&ports_dir)?;
        }
        std::fs::create_dir_all(&ports_dir)?;
        let store = self.options.store_dir.clone().unwrap_or_else(|| workdir.join("jetstream"));
        let mut command = Command::new(&self.binary);
        command
            .args(["-a", "127.0.0.1", "-js"])
            .arg("-p")
            .arg(if self.options.port == 0 { "-1".to_owned() } else { self.options.port.to_string() })
            .arg("-sd")
            .arg(&store)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&self.log_path);
        if let Some(config) = &self.options.config_file {
            command.arg("-c").arg(config);
        }
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        if let Some(name) = &self.options.name {
            command.arg("--server_name").arg(name);
        }
        if let Some(cluster) = &self.options.cluster {
            command
                .arg("--cluster_name")
                .arg(&cluster.name)
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{}", cluster.listen_port))
                .arg("--routes")
                .arg(cluster.routes.join(","));
            if let Some(advertise) = &cluster.advertise {
                command.arg("--cluster_advertise").arg(advertise);
            }
        }
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|source| LocalNatsError::Run { path: self.binary.display().to_string(), source })?;
        self.child = Some(child);
        self.url = wait_for_ports_file(&ports_dir, &self.log_path, Duration::from_secs(10))?;
        if self.options.port == 0 {
            // Keep the port across restarts so clients can reconnect.
            self.options.port = self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
        if self.options.store_dir.is_none() {
            self.options.store_dir = Some(store);
        }
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// Kills the server (SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) -> Result<(), LocalNatsError> {
        self.kill();
        self.spawn()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `<dir>/nats-server_<pid>.ports` holds `{"nats":["nats://127.0.0.1:NNNNN"], …}`.
fn wait_for_ports_file(dir: &Path, log: &Path, timeout: Duration) -> Result<String, LocalNatsError> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if let Some(url) = json["nats"][0].as_str() {
                    return Ok(url.to_owned());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(LocalNatsError::NoPort(timeout, std::fs::read_to_string(log).unwrap_or_default()))
}

/// A cluster of servers on loopback with routes between them.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    /// The proxies every route runs through, when the cluster can be partitioned.
    proxies: Option<partition::RouteProxies>,
}

impl NatsCluster {
    /// Starts `size` nodes named `n1`…; returns when every node reported its port (the
    /// cluster may still be electing a JetStream leader: clients retry).
    pub fn start(size: usize) -> Result<Self, LocalNatsError> {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let routes: Vec<String> = route_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        Self::start_routed(&route_ports, |_| routes.clone(), None)
    }

    /// [`NatsCluster::start`], with every route through a proxy so that
    /// [`NatsCluster::isolate`] can cut a node off from the others while its clients still reach
    /// it ([`partition`]).
    pub fn start_partitionable(size: usize) -> Result<Self, LocalNatsError> {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let proxies = partition::RouteProxies::start(&route_ports)?;
        // Told to the others instead of the real route port, so no node learns a way around
        // the proxies by gossip: a port nothing listens on refuses at once.
        let nowhere = format!("127.0.0.1:{}", free_port()?);
        let mut cluster = Self::start_routed(&route_ports, |i| proxies.routes_of(i), Some(nowhere))?;
        cluster.proxies = Some(proxies);
        Ok(cluster)
    }

    fn start_routed(
        route_ports: &[u16],
        routes_of: impl Fn(usize) -> Vec<String>,
        advertise: Option<String>,
    ) -> Result<Self, LocalNatsError> {
        let mut nodes = Vec::with_capacity(route_ports.len());
        for (i, port) in route_ports.iter().enumerate() {
            nodes.push(NatsServer::start_with(ServerOptions {
                port: free_port()?,
                store_dir: None,
                name: Some(format!("n{}", i + 1)),
                cluster: Some(ClusterOptions {
                    name: "infra-tickets".into(),
                    listen_port: *port,
                    routes: routes_of(i),
                    advertise: advertise.clone(),
                }),
                ..ServerOptions::default()
            })?);
        }
        Ok(NatsCluster { nodes, proxies: None })
    }

    /// Cuts node `index` off from the other nodes (a cluster from
    /// [`NatsCluster::start_partitionable`]; otherwise does nothing and says so).
    pub fn isolate(&self, index: usize) -> bool {
        self.proxies.as_ref().map(|p| p.isolate(index)).is_some()
    }

    /// Joins node `index` to the others again.
    pub fn rejoin(&self, index: usize) -> bool {
        self.proxies.as_ref().map(|p| p.rejoin(index)).is_some()
    }

    /// Every node's URL, comma-separated, as clients take it.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| n.url().to_owned()).collect::<Vec<_>>().join(",")
    }
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_supported("2.10.0"));
        assert!(version_supported("2.15.1"));
        assert!(version_supported("3.0.0"));
        assert!(!version_supported("2.9.10"));
        assert!(!version_supported(""));
    }

    #[test]
    fn starts_restarts_and_keeps_its_port() {
        let mut server = NatsServer::start().expect("a nats-server >= 2.10");
        let url = server.url().to_owned();
        assert!(url.starts_with("nats://127.0.0.1:"));
        server.restart().unwrap();
        assert_eq!(server.url(), url);
        assert!(server.is_running());
    }
}
