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

use crate::events::NodeEvent;
use crate::node::Node;
use crate::store::Records;
use crate::{watcher, NodeError};

#[derive(Clone, Serialize, Deserialize)]
struct PeerAddress {
    node_id: String,
    address: String,
}

/// A connected peer.
pub struct PeerInfo {
    pub node_id: PublicKey,
    pub address: String,
    pub inbound: bool,
}

pub struct Peers {
    addresses: Records<PeerAddress>,
    connected: Mutex<HashSet<PublicKey>>,
}

/// Parses `node_id@host:port`.
pub fn parse_peer_address(s: &str) -> Result<(PublicKey, String), NodeError> {
    let (id, addr) = s.trim().split_once('@').ok_or_else(|| NodeError::Invalid(format!("peer address {s:?} is not node_id@host:port")))?;
    let node_id = parse_node_id(id)?;
    if addr.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
        return Err(NodeError::Invalid(format!("peer address {s:?}: {addr:?} is not host:port")));
    }
    Ok((node_id, addr.to_string()))
}

pub fn parse_node_id(s: &str) -> Result<PublicKey, NodeError> {
    PublicKey::from_str(s.trim()).map_err(|_| NodeError::Invalid(format!("{s:?} is not a node id (33-byte public key in hex)")))
}

impl Peers {
    pub fn open(db: &sled::Db) -> Result<Self, NodeError> {
        Ok(Self { addresses: Records::open(db, "peer_addresses")?, connected: Mutex::new(HashSet::new()) })
    }

    /// Connects to `node_id` at `addr` and waits for the handshake (10 s at most).
    pub async fn connect(&self, node: &Node, node_id: PublicKey, addr: &str, persist: bool) -> Result<(), NodeError> {
        if node_id == node.node_id {
            return Err(NodeError::Invalid("cannot connect to ourselves".into()));
        }
        let pm = Arc::clone(&node.peer_manager);
        if pm.peer_by_node_id(&node_id).is_none() {
            let sock: SocketAddr = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| NodeError::Invalid(format!("cannot resolve {addr}: {e}")))?
                .next()
                .ok_or_else(|| NodeError::Invalid(format!("{addr} resolves to no address")))?;
            let conn = tokio::time::timeout(Duration::from_secs(10), lightning_net_tokio::connect_outbound(Arc::clone(&pm), node_id, sock))
                .await
                .map_err(|_| NodeError::Unavailable(format!("connecting to {sock} timed out")))?
                .ok_or_else(|| NodeError::Unavailable(format!("could not connect to {sock}")))?;
            let mut conn = Box::pin(conn);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                if pm.peer_by_node_id(&node_id).is_some() {
                    break;
                }
                tokio::select! {
                    _ = &mut conn => return Err(NodeError::Unavailable(format!("{node_id}@{sock} closed the connection during the handshake (wrong node id?)"))),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(NodeError::Unavailable(format!("handshake with {node_id}@{sock} timed out")));
                }
            }
            // The connection future drives the socket; keep it running.
            tokio::spawn(conn);
        }
        if persist || self.addresses.get(&node_id.serialize())?.is_none() {
            self.addresses.put(&node_id.serialize(), &PeerAddress { node_id: node_id.to_string(), address: addr.to_string() })?;
        }
        Ok(())
    }

    pub fn list(&self, node: &Node) -> Vec<PeerInfo> {
        node.peer_manager
            .list_peers()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.counterparty_node_id,
                address: p.socket_address.map(|a| a.to_string()).unwrap_or_default(),
                inbound: p.is_inbound_connection,
            })
            .collect()
    }

    pub fn disconnect(&self, node: &Node, node_id: PublicKey) -> Result<(), NodeError> {
        if node.peer_manager.peer_by_node_id(&node_id).is_none() {
            return Err(NodeError::NotFound(format!("peer {node_id} is not connected")));
        }
        node.peer_manager.disconnect_by_node_id(node_id);
        Ok(())
    }

    /// Until shutdown: reports peers coming and going, and reconnects to channel peers we know an
    /// address for.
    pub async fn maintain(node: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = 0u64;
        loop {
            node.peers.report_changes(&node);
            if tick.is_multiple_of(10) {
                node.peers.reconnect_channel_peers(&node).await;
            }
            if tick.is_multiple_of(120) {
                node.announce();
            }
            tick += 1;
            if watcher::wait(&mut shutdown, Duration::from_millis(500)).await {
                return;
            }
        }
    }

    fn report_changes(&self, node: &Node) {
        let now: HashSet<PublicKey> = node.peer_manager.list_peers().into_iter().map(|p| p.counterparty_node_id).collect();
        let mut known = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        for p in now.difference(&known) {
            tracing::info!(peer = %p, "peer connected");
            node.bus.publish(NodeEvent { kind: "peer_connected", node_id: p.to_string(), ..Default::default() });
        }
        for p in known.difference(&now) {
            tracing::info!(peer = %p, "peer disconnected");
            node.bus.publish(NodeEvent { kind: "peer_disconnected", node_id: p.to_string(), ..Default::default() });
        }
        *known = now;
    }

    async fn reconnect_channel_peers(&self, node: &Node) {
        let wanted: HashSet<PublicKey> = node.channel_manager.list_channels().into_iter().map(|c| c.counterparty.node_id).collect();
        for peer in wanted {
            if node.peer_manager.peer_by_node_id(&peer).is_some() {
                continue;
            }
            let Ok(Some(rec)) = self.addresses.get(&peer.serialize()) else { continue };
            match self.connect(node, peer, &rec.address, false).await {
                Ok(()) => tracing::info!(peer = %peer, address = %rec.address, "reconnected to channel peer"),
                Err(e) => tracing::debug!(peer = %peer, error = %e, "reconnect failed; will retry"),
            }
        }
    }
}
