//! Network partitions of a local cluster: every route between two nodes runs through a TCP
//! proxy the harness can cut, while clients still reach every node directly.
//!
//! Node `i` is given, as its routes, one proxy per other node `j` (`i → j`), forwarding to `j`'s
//! route port, and it advertises an address that refuses connections, so the servers cannot
//! learn each other's real route ports by gossip and go around the proxies. Cutting node `i`
//! closes every connection through the proxies `i → *` and `* → i` and refuses new ones until
//! healed: `i` is alone, as a node behind a failed switch is, but its clients keep their
//! connections.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A TCP forwarder on loopback that can be cut and healed.
pub struct TcpProxy {
    address: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: AtomicBool,
    stopped: AtomicBool,
    /// Both ends of every live connection, to close them when cut.
    live: Mutex<Vec<TcpStream>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let state = Arc::new(ProxyState::default());
        let accepting = state.clone();
        thread::Builder::new().name(format!("proxy-{}", address.port())).spawn(move || {
            for incoming in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = incoming else { continue };
                if accepting.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let _ = forward(client, upstream, &accepting);
            }
        })?;
        Ok(TcpProxy { address, state })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        let live = std::mem::take(&mut *self.state.live.lock().expect("proxy lock"));
        for stream in live {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread so it sees `stopped`.
        let _ = TcpStream::connect(self.address);
    }
}

/// Copies both ways between `client` and a new connection to `upstream`, each way on a thread.
fn forward(client: TcpStream, upstream: SocketAddr, state: &Arc<ProxyState>) -> io::Result<()> {
    let server = match TcpStream::connect(upstream) {
        Ok(server) => server,
        Err(error) => {
            let _ = client.shutdown(Shutdown::Both);
            return Err(error);
        }
    };
    {
        let mut live = state.live.lock().expect("proxy lock");
        live.push(client.try_clone()?);
        live.push(server.try_clone()?);
    }
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
    Ok(())
}

/// The route proxies of a cluster: `proxies[i][j]` carries node `i`'s route to node `j`.
pub struct RouteProxies {
    proxies: Vec<Vec<Option<TcpProxy>>>,
}

impl RouteProxies {
    /// One proxy per ordered pair of nodes, forwarding to the route ports given.
    pub fn start(route_ports: &[u16]) -> io::Result<RouteProxies> {
        let mut proxies = Vec::with_capacity(route_ports.len());
        for i in 0..route_ports.len() {
            let mut row = Vec::with_capacity(route_ports.len());
            for (j, port) in route_ports.iter().enumerate() {
                row.push(if i == j {
                    None
                } else {
                    Some(TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], *port)))?)
                });
            }
            proxies.push(row);
        }
        Ok(RouteProxies { proxies })
    }

    /// Node `i`'s routes: its proxies to every other node.
    pub fn routes_of(&self, i: usize) -> Vec<String> {
        self.proxies[i].iter().flatten().map(|p| format!("nats://{}", p.address())).collect()
    }

    fn touching(&self, node: usize) -> impl Iterator<Item = &TcpProxy> {
        self.proxies.iter().enumerate().flat_map(move |(i, row)| {
            row.iter().enumerate().filter_map(move |(j, p)| p.as_ref().filter(|_| i == node || j == node))
        })
    }

    /// Cuts node `node` off from every other node.
    pub fn isolate(&self, node: usize) {
        self.touching(node).for_each(TcpProxy::cut);
    }

    /// Joins node `node` to the others again.
    pub fn rejoin(&self, node: usize) {
        self.touching(node).for_each(TcpProxy::heal);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut reading = stream.try_clone().unwrap();
                    let mut writing = stream;
                    let _ = io::copy(&mut reading, &mut writing);
                });
            }
        });
        address
    }

    fn round_trip(address: SocketAddr) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"ping")?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer)?;
        Ok(answer.to_vec())
    }

    #[test]
    fn forwards_until_cut_and_again_once_healed() {
        let proxy = TcpProxy::start(echo_server()).unwrap();
        assert_eq!(round_trip(proxy.address()).unwrap(), b"ping");

        let mut open = TcpStream::connect(proxy.address()).unwrap();
        open.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        open.write_all(b"ping").unwrap();
        let mut answer = [0u8; 4];
        open.read_exact(&mut answer).unwrap();
        proxy.cut();
        let mut rest = Vec::new();
        assert_eq!(open.read_to_end(&mut rest).unwrap_or(0), 0, "a live connection is closed by the cut");
        assert!(round_trip(proxy.address()).is_err(), "new connections are refused while cut");

        proxy.heal();
        assert_eq!(round_trip(proxy.address()).unwrap(), b"ping");
    }

    #[test]
    fn isolating_a_node_cuts_its_routes_both_ways_only() {
        let ports: Vec<u16> = (0..3).map(|_| echo_server().port()).collect();
        let proxies = RouteProxies::start(&ports).unwrap();
        assert_eq!(proxies.routes_of(0).len(), 2);
        proxies.isolate(1);
        let through =
            |i: usize, j: usize| round_trip(proxies.proxies[i][j].as_ref().unwrap().address()).is_ok();
        assert!(!through(0, 1) && !through(1, 0) && !through(1, 2) && !through(2, 1));
        assert!(through(0, 2) && through(2, 0), "the other nodes still reach each other");
        proxies.rejoin(1);
        assert!(through(0, 1) && through(1, 2));
    }
}
