//! moto's server as a local SQS for tests: started on a free loopback port, stopped on drop.
//! It is installed project-locally by `scripts/install-moto` into `.tools/moto`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
pub struct MotoServer {
    child: Child,
    url: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `MOTO_SERVER_BIN`, else `.tools/moto/bin/moto_server` in the workspace.
pub fn find_server() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("MOTO_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/moto/bin/moto_server"),
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(format!(
            "moto_server not found at {} (set MOTO_SERVER_BIN or run scripts/install-moto)",
            candidate.display()
        ))
    }
}

impl MotoServer {
    /// Starts moto's server and waits until it answers.
    pub fn start() -> Result<Self, String> {
        let binary = find_server()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {} (run scripts/install-moto): {e}", binary.display()))?;
        let server = MotoServer { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("moto_server did not listen on port {port} within 30s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`: the endpoint URL for the SDK.
    pub fn url(&self) -> &str {
        &self.url
    }
}
