//! The Lightning P2P listener: accepting inbound connections without letting a flood take the node down.
//!
//! Owns: the accept loop, its limits and the process's open-file limit. A connection that has not finished
//! the noise handshake costs a file descriptor and nothing else, so one address may hold at most
//! [`MAX_PENDING_PER_IP`] of them and all addresses together [`MAX_PENDING`]; beyond that new ones are
//! closed at once. LDK's peer manager disconnects connections that have not finished the handshake within
//! one timer tick (10 s), so a pending slot frees quickly. All inbound connections together stay below the
//! open-file limit with room for the node's own files and RPC connections. An accept that fails (out of file
//! descriptors, say) backs off up to a second instead of spinning, and is logged at most every 10 s.
//!
//! Must never: speak the Lightning protocol (LDK does, over lightning-net-tokio), or block the accept loop.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use lanes_channel::types::PeerManager;

/// Connections one address may hold that have not finished the handshake.
pub const MAX_PENDING_PER_IP: usize = 16;
/// Connections all addresses together may hold that have not finished the handshake.
pub const MAX_PENDING: usize = 256;
/// File descriptors kept for the node itself (database, bitcoind, gRPC, outbound peers).
const RESERVED_FDS: u64 = 256;
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line about failed accepts this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft limit on open files to the hard limit (as LND and CLN do), and returns it.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit of this process.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                tracing::debug!(from = lim.rlim_cur, to = lim.rlim_max, "raised the open-file limit");
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur as u64
}

/// Open inbound connections per address, and the limits they are held to.
struct Gate {
    open: Mutex<HashMap<IpAddr, Vec<SocketAddr>>>,
    max_inbound: usize,
}

impl Gate {
    /// Whether a new connection from `addr` may go on; if so it is counted until [`Gate::closed`].
    fn admit(&self, addr: SocketAddr, pm: &PeerManager) -> Result<(), &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().map(Vec::len).sum();
        if total >= self.max_inbound {
            return Err("too many inbound connections for the open-file limit");
        }
        let from_ip = open.get(&addr.ip()).map_or(0, Vec::len);
        if from_ip >= MAX_PENDING_PER_IP || total >= MAX_PENDING {
            // Only count the ones that have not finished the handshake (the rest are peers).
            let peers: Vec<SocketAddr> = pm.list_peers().into_iter().filter_map(|p| p.socket_address.and_then(sock)).collect();
            let pending = |list: &Vec<SocketAddr>| list.iter().filter(|a| !peers.contains(a)).count();
            if open.get(&addr.ip()).map_or(0, pending) >= MAX_PENDING_PER_IP {
                return Err("too many connections from this address still in the handshake");
            }
            if open.values().map(pending).sum::<usize>() >= MAX_PENDING {
                return Err("too many connections still in the handshake");
            }
        }
        open.entry(addr.ip()).or_default().push(addr);
        Ok(())
    }

    fn closed(&self, addr: SocketAddr) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = open.get_mut(&addr.ip()) {
            if let Some(i) = list.iter().position(|a| *a == addr) {
                list.swap_remove(i);
            }
            if list.is_empty() {
                open.remove(&addr.ip());
            }
        }
    }
}

fn sock(a: lightning::ln::msgs::SocketAddress) -> Option<SocketAddr> {
    use lightning::ln::msgs::SocketAddress as S;
    match a {
        S::TcpIpV4 { addr, port } => Some(SocketAddr::from((addr, port))),
        S::TcpIpV6 { addr, port } => Some(SocketAddr::from((addr, port))),
        _ => None,
    }
}

/// Accepts Lightning peers on `listener` until shutdown, within the limits above. `fd_limit` is the
/// process's open-file limit.
pub async fn accept_peers(listener: TcpListener, pm: Arc<PeerManager>, fd_limit: u64, mut stop: watch::Receiver<bool>) {
    let gate = Arc::new(Gate { open: Mutex::new(HashMap::new()), max_inbound: fd_limit.saturating_sub(RESERVED_FDS).max(32) as usize });
    let mut backoff = Duration::ZERO;
    let (mut failed, mut refused, mut last_log) = (0u64, 0u64, None::<Instant>);
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let due = last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        match accepted {
            Ok((stream, addr)) => {
                backoff = Duration::ZERO;
                if let Err(why) = gate.admit(addr, &pm) {
                    refused += 1;
                    if due {
                        tracing::warn!(%addr, reason = why, refused_since_last_line = refused, "inbound connection refused");
                        (refused, last_log) = (0, Some(Instant::now()));
                    }
                    continue; // dropping the stream closes it
                }
                // Lightning's messages are small and answer one another: Nagle's algorithm held each
                // for the peer's delayed ACK, ~40 ms per message on Linux (Go, and so LND, disables it too).
                let _ = stream.set_nodelay(true);
                let Ok(stream) = stream.into_std() else {
                    gate.closed(addr);
                    continue;
                };
                tracing::debug!(%addr, "inbound connection");
                let (pm, gate) = (Arc::clone(&pm), Arc::clone(&gate));
                tokio::spawn(async move {
                    lightning_net_tokio::setup_inbound(pm, stream).await;
                    gate.closed(addr);
                });
            }
            Err(e) => {
                failed += 1;
                if due {
                    tracing::warn!(error = %e, failed_since_last_line = failed, "accepting a peer connection failed; backing off");
                    (failed, last_log) = (0, Some(Instant::now()));
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                if crate::watcher::wait(&mut stop, backoff).await {
                    return;
                }
            }
        }
    }
}
