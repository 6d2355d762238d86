//! Lightning peers: connecting, listing, disconnecting, and staying connected to channel peers.
//!
//! Owns: peer addresses (persisted, so channel peers are reconnected after a restart), the
//! reconnect loop, and the peer_connected/peer_disconnected events. Must never: speak the Lightning
//! protocol itself (LDK's PeerManager does, over lightning-net-tokio).
use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use lanes_channel::types::{ChannelManager, NetworkGraph, PeerManager};

use crate::bus::{EventBus, NodeEvent};
use crate::store::Records;
use crate::error::PeerError;
use crate::{watcher, NodeError};

/// Where a peer can be reached: the addresses that worked, most recent first, then ones given but not
/// tried yet. (Records written before several addresses were kept have only `address`.)
#[derive(Clone, Default, Serialize, Deserialize)]
struct PeerAddress {
    node_id: String,
    /// The address that last worked (kept for older readers).
    address: String,
    #[serde(default)]
    addresses: Vec<String>,
}

impl crate::record::Record for PeerAddress {
    const KIND: &'static str = "peer address";
}

/// How many addresses are kept per peer.
const MAX_ADDRESSES: usize = 8;

impl PeerAddress {
    fn all(&self) -> Vec<String> {
        let mut all = self.addresses.clone();
        if !self.address.is_empty() && !all.contains(&self.address) {
            all.insert(0, self.address.clone());
        }
        all
    }

    /// `addr` worked: it goes first.
    fn worked(mut self, addr: &str) -> Self {
        let mut all = self.all();
        all.retain(|a| a != addr);
        all.insert(0, addr.to_string());
        all.truncate(MAX_ADDRESSES);
        self.address = addr.to_string();
        self.addresses = all;
        self
    }

    /// `addr` was given but not tried: it goes after the ones known to work, never replacing them.
    fn heard(mut self, addr: &str) -> Self {
        let mut all = self.all();
        if !all.iter().any(|a| a == addr) {
            all.push(addr.to_string());
        }
        all.truncate(MAX_ADDRESSES);
        if self.address.is_empty() {
            self.address = all[0].clone();
        }
        self.addresses = all;
        self
    }
}

/// The addresses to try for a channel peer, in order: those we know (worked first), then those it announces
/// in gossip, without repeats.
fn candidates(known: Option<&PeerAddress>, announced: &[String]) -> Vec<String> {
    let mut out = known.map(PeerAddress::all).unwrap_or_default();
    for a in announced {
        if !out.contains(a) && check_address(a).is_ok() {
            out.push(a.clone());
        }
    }
    out
}

/// A connected peer.
pub struct PeerInfo {
    pub node_id: PublicKey,
    pub address: String,
    pub inbound: bool,
}

/// The peers service.
pub struct Peers {
    addresses: Records<PeerAddress>,
    connected: Mutex<HashSet<PublicKey>>,
    node_id: PublicKey,
    peer_manager: Arc<PeerManager>,
    channel_manager: Arc<ChannelManager>,
    network_graph: Arc<NetworkGraph>,
    bus: Arc<EventBus>,
}

/// Parses `node_id@host:port`.
pub fn parse_peer_address(s: &str) -> Result<(PublicKey, String), NodeError> {
    let (id, addr) = s.trim().split_once('@').ok_or_else(|| NodeError::Invalid(format!("peer address {s:?} is not node_id@host:port")))?;
    let node_id = parse_node_id(id)?;
    check_address(addr).map_err(|why| NodeError::Invalid(format!("peer address {s:?}: {why}")))?;
    Ok((node_id, addr.to_string()))
}

/// Checks `host:port` (an IPv4 or [IPv6] address, or a host name) the way a dial would need it.
fn check_address(addr: &str) -> Result<(), String> {
    use lightning::ln::msgs::SocketAddress;
    let parsed = SocketAddress::from_str(addr).map_err(|e| format!("{addr:?} is not host:port ({e})"))?;
    let port = match &parsed {
        SocketAddress::TcpIpV4 { port, .. } | SocketAddress::TcpIpV6 { port, .. } => *port,
        SocketAddress::Hostname { hostname, port } => {
            // Digits and dots only is meant as an IPv4 address, and must be one (256.256.256.256 is not).
            if hostname.as_str().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!("{:?} is not an IPv4 address", hostname.as_str()));
            }
            *port
        }
        SocketAddress::OnionV2(_) | SocketAddress::OnionV3 { .. } => return Err("Tor (.onion) addresses are not supported".into()),
    };
    if port == 0 {
        return Err("port 0 is not a port to dial".into());
    }
    Ok(())
}

pub fn parse_node_id(s: &str) -> Result<PublicKey, NodeError> {
    PublicKey::from_str(s.trim()).map_err(|_| NodeError::Invalid(format!("{s:?} is not a node id (33-byte public key in hex)")))
}

impl Peers {
    pub fn open(
        store: &lanes_store::DynStore,
        node_id: PublicKey,
        peer_manager: Arc<PeerManager>,
        channel_manager: Arc<ChannelManager>,
        network_graph: Arc<NetworkGraph>,
        bus: Arc<EventBus>,
    ) -> Result<Self, NodeError> {
        Ok(Self { addresses: Records::open(store, lanes_store::layout::PEER_ADDRESSES)?, connected: Mutex::new(HashSet::new()), node_id, peer_manager, channel_manager, network_graph, bus })
    }

    /// Connects to `node_id` at `addr` and waits for the handshake (10 s at most).
    pub async fn connect(&self, node_id: PublicKey, addr: &str, persist: bool) -> Result<(), NodeError> {
        if node_id == self.node_id {
            return Err(NodeError::Invalid("cannot connect to ourselves".into()));
        }
        check_address(addr).map_err(NodeError::Invalid)?;
        let pm = Arc::clone(&self.peer_manager);
        let already = pm.peer_by_node_id(&node_id).is_some();
        if !already {
            let sock: SocketAddr = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| NodeError::Invalid(format!("cannot resolve {addr}: {e}")))?
                .next()
                .ok_or_else(|| NodeError::Invalid(format!("{addr} resolves to no address")))?;
            let stream = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(sock))
                .await
                .map_err(|_| NodeError::from(PeerError::Unreachable(format!("connecting to {sock} timed out"))))?
                .map_err(|e| NodeError::from(PeerError::Unreachable(format!("could not connect to {sock}: {e}"))))?;
            // No Nagle: see crate::listener (each small message waited ~40 ms for the peer's delayed ACK).
            let _ = stream.set_nodelay(true);
            let stream = stream.into_std().map_err(|e| NodeError::from(PeerError::Unreachable(format!("could not connect to {sock}: {e}"))))?;
            let conn = lightning_net_tokio::setup_outbound(Arc::clone(&pm), node_id, stream);
            let mut conn = Box::pin(conn);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                if pm.peer_by_node_id(&node_id).is_some() {
                    break;
                }
                tokio::select! {
                    _ = &mut conn => return Err(PeerError::Unreachable(format!("{node_id}@{sock} closed the connection during the handshake (wrong node id?)")).into()),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(PeerError::Unreachable(format!("handshake with {node_id}@{sock} timed out")).into());
                }
            }
            // The connection future drives the socket; keep it running.
            tokio::spawn(conn);
        }
        // An address we dialed and that answered goes first; one given for a peer that was already
        // connected (not dialed, so not known to work) is kept behind the ones that worked, never replacing them.
        let dialed = !already;
        if dialed || persist {
            self.addresses.update(&node_id.serialize(), |rec| {
                let rec = rec.unwrap_or_else(|| PeerAddress { node_id: node_id.to_string(), ..Default::default() });
                Some(if dialed { rec.worked(addr) } else { rec.heard(addr) })
            })?;
        }
        Ok(())
    }

    pub fn list(&self) -> Vec<PeerInfo> {
        self.peer_manager
            .list_peers()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.counterparty_node_id,
                address: p.socket_address.map(|a| a.to_string()).unwrap_or_default(),
                inbound: p.is_inbound_connection,
            })
            .collect()
    }

    pub fn disconnect(&self, node_id: PublicKey) -> Result<(), NodeError> {
        if self.peer_manager.peer_by_node_id(&node_id).is_none() {
            return Err(NodeError::NotFound(format!("peer {node_id} is not connected")));
        }
        self.peer_manager.disconnect_by_node_id(node_id);
        Ok(())
    }

    /// Until shutdown: reports peers coming and going, and reconnects to channel peers we know an
    /// address for.
    pub async fn maintain(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = 0u64;
        loop {
            self.report_changes();
            if tick.is_multiple_of(10) {
                self.reconnect_channel_peers().await;
            }
            tick += 1;
            if watcher::wait(&mut shutdown, Duration::from_millis(500)).await {
                return;
            }
        }
    }

    fn report_changes(&self) {
        let now: HashSet<PublicKey> = self.peer_manager.list_peers().into_iter().map(|p| p.counterparty_node_id).collect();
        let mut known = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        for p in now.difference(&known) {
            tracing::info!(peer = %p, "peer connected");
            self.bus.publish(NodeEvent { kind: "peer_connected", node_id: p.to_string(), ..Default::default() });
        }
        for p in known.difference(&now) {
            tracing::info!(peer = %p, "peer disconnected");
            self.bus.publish(NodeEvent { kind: "peer_disconnected", node_id: p.to_string(), ..Default::default() });
        }
        *known = now;
    }

    async fn reconnect_channel_peers(&self) {
        let wanted: HashSet<PublicKey> = self.channel_manager.list_channels().into_iter().map(|c| c.counterparty.node_id).collect();
        for peer in wanted {
            if self.peer_manager.peer_by_node_id(&peer).is_some() {
                continue;
            }
            // What we know, then what the peer announces (an inbound peer's only usable addresses).
            let known = self.addresses.get(&peer.serialize()).ok().flatten();
            let announced = announced_addresses(&self.network_graph, &peer);
            for address in candidates(known.as_ref(), &announced) {
                match self.connect(peer, &address, false).await {
                    Ok(()) => {
                        tracing::info!(peer = %peer, address = %address, "reconnected to channel peer");
                        break;
                    }
                    Err(e) => tracing::debug!(peer = %peer, address = %address, error = %e, "reconnect failed; will retry"),
                }
            }
        }
    }
}

/// The addresses `peer` announces in its node_announcement, as host:port.
fn announced_addresses(graph: &NetworkGraph, peer: &PublicKey) -> Vec<String> {
    let g = graph.read_only();
    g.node(&lightning::routing::gossip::NodeId::from_pubkey(peer))
        .and_then(|n| n.announcement_info.as_ref().map(|a| a.addresses().iter().map(|a| a.to_string()).collect()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619";

    #[test]
    fn addresses_are_checked() {
        for good in ["127.0.0.1:9735", "[::1]:9735", "node.example.com:9735"] {
            assert!(parse_peer_address(&format!("{ID}@{good}")).is_ok(), "{good}");
        }
        for bad in ["256.256.256.256:1", "127.0.0.1:0", "127.0.0.1", "127.0.0.1:99999", "x:y", "aaaa.onion:9735"] {
            assert!(matches!(parse_peer_address(&format!("{ID}@{bad}")), Err(NodeError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn an_untried_address_never_replaces_one_that_worked() {
        let rec = PeerAddress::default().worked("127.0.0.1:9735").heard("127.0.0.1:1");
        assert_eq!(rec.address, "127.0.0.1:9735");
        assert_eq!(rec.all(), vec!["127.0.0.1:9735", "127.0.0.1:1"]);
        let rec = rec.worked("10.0.0.1:9735");
        assert_eq!(rec.all()[0], "10.0.0.1:9735");
        // An old record (one address) reads as a list of one; announced ones come after, without repeats.
        let old: PeerAddress = serde_json::from_str(r#"{"node_id":"x","address":"127.0.0.1:5"}"#).unwrap();
        let got = candidates(Some(&old), &["127.0.0.1:5".into(), "127.0.0.1:6".into(), "256.1.1.1:7".into()]);
        assert_eq!(got, vec!["127.0.0.1:5", "127.0.0.1:6"]);
        assert_eq!(candidates(None, &["127.0.0.1:6".into()]), vec!["127.0.0.1:6"]);
    }
}
