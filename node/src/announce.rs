//! Our own public channels in the gossip network: that each one gets announced, and that our side's
//! channel_update reaches our counterparty and the network.
//!
//! LDK announces a public channel once both sides have exchanged announcement_signatures, and then
//! re-broadcasts the announcement with a fresh update every 6 blocks. What it leaves out, and this module
//! adds as policy around LDK's messages:
//! - LDK sends its update to the counterparty before the counterparty has the announcement (with
//!   channel_ready), and its broadcasts skip peers that did not send a gossip_timestamp_filter. Other
//!   implementations keep such an early update as private and never relay it. So when the channel is
//!   announced in our graph, and whenever our update there changes, we send it to the counterparty again.
//! - Like LND and CLN, our updates are re-broadcast once a day ([`REBROADCAST_EVERY`]) even when nothing
//!   changed, so a peer that missed them gets them.
//! - An announcement_signatures that arrives before its channel_ready (CLN sends them on different
//!   paths) is dropped by LDK, and the channel is never announced. A public channel that is past its
//!   announcement depth, with its peer connected, but still not announced after [`ANNOUNCE_GRACE`] is
//!   recovered by disconnecting the peer: on reconnection LDK asks for announcement_signatures again
//!   and sends ours again (channel_reestablish). Retried with a doubling back-off.
//!
//! Owns: the per-channel record of what was announced and sent, and those decisions ([`OwnGossip::step`],
//! pure, so tests drive it with a clock). Must never: build or sign gossip (every message sent is the one
//! LDK signed and keeps in our graph), nor touch a channel's state: the only lever is a reconnection.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::{ChannelUpdate, MessageSendEvent};
use lightning::routing::gossip::NodeId;
use tokio::sync::watch;

use lanes_channel::types::{ChannelManager, GossipHandler, NetworkGraph, PeerManager};

use crate::graph::format_scid;
use crate::watcher;

/// Confirmations after which a public channel is announced (BOLT 7).
pub const ANNOUNCEMENT_DEPTH: u32 = 6;
/// How long a public channel may stay unannounced past its depth, with its peer connected, before we
/// reconnect to that peer.
pub const ANNOUNCE_GRACE: Duration = Duration::from_secs(20);
/// The first wait between two reconnections for the same channel; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10 * 60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// How often our own channel updates are broadcast again, changed or not.
pub const REBROADCAST_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How often the checks run.
const TICK: Duration = Duration::from_millis(500);

/// One of our public channels, as the node sees it now.
#[derive(Clone, Debug)]
pub struct Seen {
    pub scid: u64,
    /// Hex, for the log.
    pub channel_id: String,
    pub peer: PublicKey,
    pub peer_connected: bool,
    /// Ready, and at least [`ANNOUNCEMENT_DEPTH`] confirmations.
    pub past_depth: bool,
    /// In our graph with its channel_announcement.
    pub announced: bool,
    /// The timestamp of our side's channel_update in our graph.
    pub our_update: Option<u32>,
}

/// What the node should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send our side's channel_update of `scid` to the counterparty.
    SendUpdate { peer: PublicKey, scid: u64 },
    /// Broadcast our side's channel_update of `scid` to every peer (and send it to the counterparty).
    Broadcast { peer: PublicKey, scid: u64 },
    /// Disconnect the peer, so that reconnecting exchanges announcement_signatures again.
    Reconnect { peer: PublicKey, scid: u64 },
}

#[derive(Default)]
struct Tracked {
    announced: bool,
    /// Our update's timestamp the counterparty was last sent.
    sent: Option<u32>,
    last_broadcast: Option<Instant>,
    unannounced_since: Option<Instant>,
    next_reconnect: Option<Instant>,
    backoff: Option<Duration>,
}

/// The decisions about our own gossip (see the module docs).
#[derive(Default)]
pub struct OwnGossip {
    channels: HashMap<u64, Tracked>,
}

impl OwnGossip {
    /// What to do now, given our public channels as they are. Logs the state changes.
    pub fn step(&mut self, now: Instant, seen: &[Seen]) -> Vec<Action> {
        self.channels.retain(|scid, _| seen.iter().any(|s| s.scid == *scid));
        let mut actions = Vec::new();
        for s in seen {
            let t = self.channels.entry(s.scid).or_default();
            if s.announced {
                if !t.announced {
                    tracing::info!(scid = %format_scid(s.scid), channel_id = %s.channel_id, peer = %s.peer, "channel announced");
                    t.announced = true;
                    t.unannounced_since = None;
                    t.backoff = None;
                    // LDK broadcast it with the announcement just now.
                    t.last_broadcast = Some(now);
                }
                if t.last_broadcast.is_some_and(|at| now.duration_since(at) >= REBROADCAST_EVERY) && s.our_update.is_some() {
                    t.last_broadcast = Some(now);
                    t.sent = s.our_update;
                    actions.push(Action::Broadcast { peer: s.peer, scid: s.scid });
                } else if s.peer_connected && s.our_update.is_some() && s.our_update != t.sent {
                    t.sent = s.our_update;
                    actions.push(Action::SendUpdate { peer: s.peer, scid: s.scid });
                }
                continue;
            }
            if !(s.past_depth && s.peer_connected) {
                t.unannounced_since = None;
                continue;
            }
            let since = *t.unannounced_since.get_or_insert(now);
            if now.duration_since(since) < ANNOUNCE_GRACE || t.next_reconnect.is_some_and(|at| now < at) {
                continue;
            }
            let backoff = t.backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
            t.backoff = Some(backoff);
            t.next_reconnect = Some(now + backoff);
            tracing::info!(
                scid = %format_scid(s.scid),
                channel_id = %s.channel_id,
                peer = %s.peer,
                next_try_secs = backoff.as_secs(),
                "public channel past its announcement depth but not announced: reconnecting to the peer to exchange announcement_signatures again"
            );
            actions.push(Action::Reconnect { peer: s.peer, scid: s.scid });
        }
        actions
    }
}

/// How often our node_announcement is sent again (LDK sends it only when asked).
const NODE_ANNOUNCE_EVERY: Duration = Duration::from_secs(60);

/// Our node and our channels in the gossip network: what [`maintain`](Announcer::maintain) drives.
pub struct Announcer {
    node_id: PublicKey,
    alias: String,
    listen: std::net::SocketAddr,
    channel_manager: Arc<ChannelManager>,
    peer_manager: Arc<PeerManager>,
    network_graph: Arc<NetworkGraph>,
    gossip_handler: Arc<GossipHandler>,
}

impl Announcer {
    pub fn new(
        node_id: PublicKey,
        alias: String,
        listen: std::net::SocketAddr,
        channel_manager: Arc<ChannelManager>,
        peer_manager: Arc<PeerManager>,
        network_graph: Arc<NetworkGraph>,
        gossip_handler: Arc<GossipHandler>,
    ) -> Self {
        Self { node_id, alias, listen, channel_manager, peer_manager, network_graph, gossip_handler }
    }

    /// Announces the node (alias, listen address) to the network; LDK only sends it once we have a
    /// public channel, and peers only accept it then.
    pub fn announce_node(&self) {
        if !self.channel_manager.list_channels().iter().any(|c| c.is_announced) {
            return;
        }
        let mut alias = [0u8; 32];
        let a = self.alias.as_bytes();
        alias[..a.len()].copy_from_slice(a);
        let addrs = match self.listen {
            std::net::SocketAddr::V4(v4) if !v4.ip().is_unspecified() => {
                vec![lightning::ln::msgs::SocketAddress::TcpIpV4 { addr: v4.ip().octets(), port: v4.port() }]
            }
            _ => vec![],
        };
        self.peer_manager.broadcast_node_announcement([0, 0, 0], alias, addrs);
    }

    /// Our public channels with a short channel id, as [`OwnGossip::step`] takes them.
    ///
    /// The channel manager and the peer manager are asked first, and the graph's read lock is held only
    /// while nothing else is called: LDK's peer manager takes the graph's write lock while holding its
    /// peer locks, so calling it under the graph lock could deadlock.
    fn seen(&self) -> Vec<Seen> {
        let channels: Vec<_> = self.channel_manager.list_channels().into_iter().filter(|c| c.is_announced).collect();
        let connected: HashSet<PublicKey> = self.peer_manager.list_peers().into_iter().map(|p| p.counterparty_node_id).collect();
        let us = NodeId::from_pubkey(&self.node_id);
        let graph = self.network_graph.read_only();
        channels
            .into_iter()
            .filter_map(|c| {
                let scid = c.short_channel_id?;
                let info = graph.channel(scid).filter(|i| i.announcement_message.is_some());
                let ours = info.and_then(|i| if i.node_one == us { i.one_to_two.as_ref() } else { i.two_to_one.as_ref() });
                Some(Seen {
                    scid,
                    channel_id: c.channel_id.to_string(),
                    peer: c.counterparty.node_id,
                    peer_connected: connected.contains(&c.counterparty.node_id),
                    past_depth: c.is_channel_ready && c.confirmations.unwrap_or(0) >= ANNOUNCEMENT_DEPTH,
                    announced: info.is_some(),
                    our_update: ours.and_then(|u| u.last_update_message.as_ref()).map(|m| m.contents.timestamp),
                })
            })
            .collect()
    }

    /// Our side's signed channel_update of `scid`, as LDK put it in our graph.
    fn our_update(&self, scid: u64) -> Option<ChannelUpdate> {
        let graph = self.network_graph.read_only();
        let info = graph.channel(scid)?;
        let ours = if info.node_one == NodeId::from_pubkey(&self.node_id) { info.one_to_two.as_ref() } else { info.two_to_one.as_ref() };
        ours?.last_update_message.clone()
    }

    fn act(&self, action: Action) {
        match action {
            Action::SendUpdate { peer, scid } => {
                if let Some(msg) = self.our_update(scid) {
                    tracing::debug!(scid = %format_scid(scid), %peer, timestamp = msg.contents.timestamp, "our channel_update sent to the counterparty");
                    self.gossip_handler.send(MessageSendEvent::SendChannelUpdate { node_id: peer, msg });
                }
            }
            Action::Broadcast { peer, scid } => {
                if let Some(msg) = self.our_update(scid) {
                    tracing::debug!(scid = %format_scid(scid), timestamp = msg.contents.timestamp, "our channel_update broadcast again");
                    self.gossip_handler.send(MessageSendEvent::SendChannelUpdate { node_id: peer, msg: msg.clone() });
                    self.gossip_handler.send(MessageSendEvent::BroadcastChannelUpdate { msg });
                }
            }
            Action::Reconnect { peer, .. } => self.peer_manager.disconnect_by_node_id(peer),
        }
    }

    /// Until shutdown: keeps our public channels announced and our updates sent (see the module docs),
    /// announces the node every [`NODE_ANNOUNCE_EVERY`], and has the peer manager send the next round of
    /// answers to gossip queries while some are pending.
    pub async fn maintain(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut own = OwnGossip::default();
        let mut node_announced: Option<Instant> = None;
        loop {
            if node_announced.is_none_or(|at| at.elapsed() >= NODE_ANNOUNCE_EVERY) {
                self.announce_node();
                node_announced = Some(Instant::now());
            }
            let actions = own.step(Instant::now(), &self.seen());
            let send = !actions.is_empty() || self.gossip_handler.answering_queries();
            for a in actions {
                self.act(a);
            }
            if send {
                self.peer_manager.process_events();
            }
            if watcher::wait(&mut shutdown, TICK).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn peer() -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[3; 32]).unwrap())
    }

    fn chan(announced: bool, our_update: Option<u32>) -> Seen {
        Seen { scid: 42, channel_id: "00".into(), peer: peer(), peer_connected: true, past_depth: true, announced, our_update }
    }

    #[test]
    fn once_announced_our_update_goes_to_the_counterparty_again_and_on_every_change() {
        let mut own = OwnGossip::default();
        let t0 = Instant::now();
        assert_eq!(own.step(t0, &[chan(false, None)]), vec![]);
        let sent = vec![Action::SendUpdate { peer: peer(), scid: 42 }];
        assert_eq!(own.step(t0, &[chan(true, Some(100))]), sent, "announced: send it again");
        assert_eq!(own.step(t0, &[chan(true, Some(100))]), vec![], "once");
        assert_eq!(own.step(t0, &[chan(true, Some(101))]), sent, "changed: send it");
        // While the peer is away nothing is sent; LDK sends its update itself on reconnection.
        let away = Seen { peer_connected: false, ..chan(true, Some(102)) };
        assert_eq!(own.step(t0, &[away]), vec![]);
        assert_eq!(own.step(t0, &[chan(true, Some(102))]), sent);
    }

    #[test]
    fn our_updates_are_broadcast_again_daily() {
        let mut own = OwnGossip::default();
        let t0 = Instant::now();
        own.step(t0, &[chan(true, Some(100))]);
        assert_eq!(own.step(t0 + REBROADCAST_EVERY / 2, &[chan(true, Some(100))]), vec![]);
        let b = vec![Action::Broadcast { peer: peer(), scid: 42 }];
        assert_eq!(own.step(t0 + REBROADCAST_EVERY, &[chan(true, Some(100))]), b);
        assert_eq!(own.step(t0 + REBROADCAST_EVERY + TICK, &[chan(true, Some(100))]), vec![]);
        assert_eq!(own.step(t0 + REBROADCAST_EVERY * 2, &[chan(true, Some(100))]), b);
    }

    #[test]
    fn an_unannounced_public_channel_past_its_depth_reconnects_its_peer_with_back_off() {
        let mut own = OwnGossip::default();
        let t0 = Instant::now();
        let r = vec![Action::Reconnect { peer: peer(), scid: 42 }];
        // Not past its depth, or peer away: nothing to recover.
        assert_eq!(own.step(t0, &[Seen { past_depth: false, ..chan(false, None) }]), vec![]);
        assert_eq!(own.step(t0 + ANNOUNCE_GRACE * 2, &[Seen { peer_connected: false, ..chan(false, None) }]), vec![]);
        // Past its depth: a grace period first (the peer may be a block behind).
        let t1 = t0 + ANNOUNCE_GRACE * 3;
        assert_eq!(own.step(t1, &[chan(false, None)]), vec![]);
        assert_eq!(own.step(t1 + ANNOUNCE_GRACE, &[chan(false, None)]), r);
        assert_eq!(own.step(t1 + ANNOUNCE_GRACE + FIRST_BACKOFF / 2, &[chan(false, None)]), vec![], "backing off");
        assert_eq!(own.step(t1 + ANNOUNCE_GRACE + FIRST_BACKOFF, &[chan(false, None)]), r);
        let t2 = t1 + ANNOUNCE_GRACE + FIRST_BACKOFF;
        assert_eq!(own.step(t2 + FIRST_BACKOFF, &[chan(false, None)]), vec![], "the back-off doubled");
        assert_eq!(own.step(t2 + FIRST_BACKOFF * 2, &[chan(false, None)]), r);
        // Announced at last: nothing more to recover.
        assert_eq!(own.step(t2 + FIRST_BACKOFF * 2, &[chan(true, None)]), vec![]);
        assert_eq!(own.step(t2 + FIRST_BACKOFF * 9, &[chan(true, None)]), vec![]);
    }
}
