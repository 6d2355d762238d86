//! Gossip in, as the peer manager hands it over: LDK's `P2PGossipSync`, plus a cache of channel updates
//! that arrived before their channel's announcement.
//!
//! Gossip has no ordering guarantee: the update of a channel's non-announcing side often travels faster
//! than the announcement (which waits for its funding output to be checked against bitcoind). LDK drops
//! such an update, and nothing asks for it again, so that direction of the channel stays unusable for
//! routing until its next update, possibly days later. Like LND's premature-update cache, [`GossipHandler`]
//! keeps these updates for a while and hands them to LDK again once the announcement is in the graph;
//! replayed updates that LDK accepts are forwarded to our peers, as they would have been.
//!
//! Owns: that cache (bounded in size and age). Must never: check or accept gossip itself. Every message
//! goes through LDK's `P2PGossipSync`, which verifies signatures and keeps the graph.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelAnnouncement, ChannelUpdate, Init, LightningError, MessageSendEvent, NodeAnnouncement,
    QueryChannelRange, QueryShortChannelIds, ReplyChannelRange, ReplyShortChannelIdsEnd, RoutingMessageHandler,
};
use lightning::routing::gossip::{NetworkGraph, NodeId, P2PGossipSync};
use lightning::routing::utxo::UtxoLookup;
use lightning::types::features::{InitFeatures, NodeFeatures};
use lightning::util::logger::Logger;
use std::ops::Deref;

/// How long an update waits for its channel's announcement.
pub const PREMATURE_UPDATE_TTL: Duration = Duration::from_secs(10 * 60);
/// How many early updates are kept at most (the oldest are dropped first).
pub const MAX_PREMATURE_UPDATES: usize = 10_000;

/// LDK's gossip handler, with early channel updates kept until their channel is announced.
pub struct GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    inner: Arc<P2PGossipSync<G, U, L>>,
    graph: G,
    early: Mutex<Early>,
}

#[derive(Default)]
struct Early {
    /// Per short channel id, the latest update of each direction that came before the announcement.
    updates: HashMap<u64, Vec<(Instant, ChannelUpdate)>>,
    count: usize,
    /// Replayed updates LDK accepted, to be forwarded to our peers.
    forward: Vec<ChannelUpdate>,
}

impl<G, U, L> GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    pub fn new(inner: Arc<P2PGossipSync<G, U, L>>, graph: G) -> Self {
        GossipHandler { inner, graph, early: Mutex::new(Early::default()) }
    }

    /// LDK's handler (for the background processor's graph pruning and the gossip verifier).
    pub fn inner(&self) -> &Arc<P2PGossipSync<G, U, L>> {
        &self.inner
    }

    /// How many early updates wait for their announcement.
    pub fn early_updates(&self) -> usize {
        self.early.lock().unwrap_or_else(|p| p.into_inner()).count
    }

    fn keep(&self, msg: &ChannelUpdate) {
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let direction = msg.contents.channel_flags & 1;
        let slot = early.updates.entry(msg.contents.short_channel_id).or_default();
        let before = slot.len();
        // One update per direction: the newest.
        slot.retain(|(_, u)| u.contents.channel_flags & 1 != direction || u.contents.timestamp > msg.contents.timestamp);
        if slot.iter().all(|(_, u)| u.contents.channel_flags & 1 != direction) {
            slot.push((now, msg.clone()));
        }
        let after = slot.len();
        early.count = early.count + after - before;
        if early.count > MAX_PREMATURE_UPDATES {
            Self::drop_oldest(&mut early);
        }
    }

    fn drop_oldest(early: &mut Early) {
        let oldest = early.updates.iter().flat_map(|(scid, v)| v.iter().map(move |(t, _)| (*t, *scid))).min();
        if let Some((t, scid)) = oldest {
            if let Some(v) = early.updates.get_mut(&scid) {
                v.retain(|(at, _)| *at != t);
                if v.is_empty() {
                    early.updates.remove(&scid);
                }
            }
            early.count = early.updates.values().map(Vec::len).sum();
        }
    }

    /// Hands LDK again the early updates whose channel is now in the graph; forgets expired ones.
    pub fn replay(&self) {
        let due: Vec<ChannelUpdate> = {
            let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
            if early.count == 0 {
                return;
            }
            let graph = self.graph.read_only();
            let known: Vec<u64> = early.updates.keys().copied().filter(|scid| graph.channel(*scid).is_some()).collect();
            drop(graph);
            let mut due = Vec::new();
            for scid in known {
                if let Some(v) = early.updates.remove(&scid) {
                    due.extend(v.into_iter().map(|(_, u)| u));
                }
            }
            for v in early.updates.values_mut() {
                v.retain(|(at, _)| at.elapsed() < PREMATURE_UPDATE_TTL);
            }
            early.updates.retain(|_, v| !v.is_empty());
            early.count = early.updates.values().map(Vec::len).sum();
            due
        };
        let mut accepted = Vec::new();
        for u in due {
            if let Ok(true) = self.inner.handle_channel_update(None, &u) {
                tracing::debug!(scid = u.contents.short_channel_id, direction = u.contents.channel_flags & 1, "early channel update applied after its announcement");
                accepted.push(u);
            }
        }
        if !accepted.is_empty() {
            self.early.lock().unwrap_or_else(|p| p.into_inner()).forward.extend(accepted);
        }
    }
}

impl<G, U, L> BaseMessageHandler for GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    fn get_and_clear_pending_msg_events(&self) -> Vec<MessageSendEvent> {
        // The peer manager calls this whenever it processes events, including right after the gossip
        // verifier has added a checked announcement: the moment its early updates can go in.
        self.replay();
        let mut events = self.inner.get_and_clear_pending_msg_events();
        let forward = std::mem::take(&mut self.early.lock().unwrap_or_else(|p| p.into_inner()).forward);
        events.extend(forward.into_iter().map(|msg| MessageSendEvent::BroadcastChannelUpdate { msg }));
        events
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.inner.peer_disconnected(their_node_id)
    }

    fn provided_node_features(&self) -> NodeFeatures {
        self.inner.provided_node_features()
    }

    fn provided_init_features(&self, their_node_id: PublicKey) -> InitFeatures {
        self.inner.provided_init_features(their_node_id)
    }

    fn peer_connected(&self, their_node_id: PublicKey, msg: &Init, inbound: bool) -> Result<(), ()> {
        self.inner.peer_connected(their_node_id, msg, inbound)
    }
}

impl<G, U, L> RoutingMessageHandler for GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    fn handle_node_announcement(&self, their_node_id: Option<PublicKey>, msg: &NodeAnnouncement) -> Result<bool, LightningError> {
        self.inner.handle_node_announcement(their_node_id, msg)
    }

    fn handle_channel_announcement(&self, their_node_id: Option<PublicKey>, msg: &ChannelAnnouncement) -> Result<bool, LightningError> {
        let res = self.inner.handle_channel_announcement(their_node_id, msg);
        self.replay();
        res
    }

    fn handle_channel_update(&self, their_node_id: Option<PublicKey>, msg: &ChannelUpdate) -> Result<bool, LightningError> {
        let res = self.inner.handle_channel_update(their_node_id, msg);
        // Refused because LDK does not know the channel (yet): keep it. Any other refusal (a bad
        // signature, a stale timestamp) is final.
        if res.is_err() && self.graph.read_only().channel(msg.contents.short_channel_id).is_none() {
            self.keep(msg);
        }
        res
    }

    fn get_next_channel_announcement(&self, starting_point: u64) -> Option<(ChannelAnnouncement, Option<ChannelUpdate>, Option<ChannelUpdate>)> {
        self.inner.get_next_channel_announcement(starting_point)
    }

    fn get_next_node_announcement(&self, starting_point: Option<&NodeId>) -> Option<NodeAnnouncement> {
        self.inner.get_next_node_announcement(starting_point)
    }

    fn handle_reply_channel_range(&self, their_node_id: PublicKey, msg: ReplyChannelRange) -> Result<(), LightningError> {
        self.inner.handle_reply_channel_range(their_node_id, msg)
    }

    fn handle_reply_short_channel_ids_end(&self, their_node_id: PublicKey, msg: ReplyShortChannelIdsEnd) -> Result<(), LightningError> {
        self.inner.handle_reply_short_channel_ids_end(their_node_id, msg)
    }

    fn handle_query_channel_range(&self, their_node_id: PublicKey, msg: QueryChannelRange) -> Result<(), LightningError> {
        self.inner.handle_query_channel_range(their_node_id, msg)
    }

    fn handle_query_short_channel_ids(&self, their_node_id: PublicKey, msg: QueryShortChannelIds) -> Result<(), LightningError> {
        self.inner.handle_query_short_channel_ids(their_node_id, msg)
    }

    fn processing_queue_high(&self) -> bool {
        self.inner.processing_queue_high()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::constants::ChainHash;
    use bitcoin::hashes::{sha256d, Hash};
    use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
    use bitcoin::Network;
    use lightning::ln::msgs::{UnsignedChannelAnnouncement, UnsignedChannelUpdate};
    use lightning::routing::utxo::{UtxoLookupError, UtxoResult};
    use lightning::types::features::ChannelFeatures;
    use lightning::util::ser::Writeable;

    use crate::router::synth::NoLog;

    /// Never asked: the tests' LDK handler has no UTXO lookup, so announcements are taken as they are.
    struct NoLookup;
    impl UtxoLookup for NoLookup {
        fn get_utxo(&self, _: &ChainHash, _: u64) -> UtxoResult {
            UtxoResult::Sync(Err(UtxoLookupError::UnknownTx))
        }
    }

    type Handler = GossipHandler<Arc<NetworkGraph<Arc<NoLog>>>, Arc<NoLookup>, Arc<NoLog>>;

    const SCID: u64 = (700_000 << 40) | (1 << 16);

    /// A gossip timestamp `t` seconds into a window that started a minute ago (LDK refuses old ones).
    fn ts(t: u32) -> u32 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32 - 60 + t
    }

    fn setup() -> (Handler, Arc<NetworkGraph<Arc<NoLog>>>, [SecretKey; 2]) {
        let graph = Arc::new(NetworkGraph::new(Network::Regtest, Arc::new(NoLog)));
        let sync = Arc::new(P2PGossipSync::new(Arc::clone(&graph), None::<Arc<NoLookup>>, Arc::new(NoLog)));
        let secp = Secp256k1::new();
        let mut keys = [SecretKey::from_slice(&[7; 32]).unwrap(), SecretKey::from_slice(&[8; 32]).unwrap()];
        keys.sort_by_key(|k| NodeId::from_pubkey(&PublicKey::from_secret_key(&secp, k)));
        (GossipHandler::new(sync, Arc::clone(&graph)), graph, keys)
    }

    fn sign(bytes: Vec<u8>, key: &SecretKey) -> bitcoin::secp256k1::ecdsa::Signature {
        Secp256k1::new().sign_ecdsa(&Message::from_digest(sha256d::Hash::hash(&bytes).to_byte_array()), key)
    }

    fn announcement(keys: &[SecretKey; 2]) -> ChannelAnnouncement {
        let secp = Secp256k1::new();
        let ids = keys.map(|k| NodeId::from_pubkey(&PublicKey::from_secret_key(&secp, &k)));
        let contents = UnsignedChannelAnnouncement {
            features: ChannelFeatures::empty(),
            chain_hash: ChainHash::using_genesis_block(Network::Regtest),
            short_channel_id: SCID,
            node_id_1: ids[0],
            node_id_2: ids[1],
            bitcoin_key_1: ids[0],
            bitcoin_key_2: ids[1],
            excess_data: Vec::new(),
        };
        let (s1, s2) = (sign(contents.encode(), &keys[0]), sign(contents.encode(), &keys[1]));
        ChannelAnnouncement { node_signature_1: s1, node_signature_2: s2, bitcoin_signature_1: s1, bitcoin_signature_2: s2, contents }
    }

    /// An update of direction `dir` (0: from node 1, 1: from node 2), signed by that side.
    fn update(keys: &[SecretKey; 2], dir: u8, t: u32, fee_ppm: u32) -> ChannelUpdate {
        let contents = UnsignedChannelUpdate {
            chain_hash: ChainHash::using_genesis_block(Network::Regtest),
            short_channel_id: SCID,
            timestamp: ts(t),
            message_flags: 1,
            channel_flags: dir,
            cltv_expiry_delta: 40,
            htlc_minimum_msat: 1,
            htlc_maximum_msat: 100_000_000,
            fee_base_msat: 1000,
            fee_proportional_millionths: fee_ppm,
            excess_data: Vec::new(),
        };
        ChannelUpdate { signature: sign(contents.encode(), &keys[dir as usize]), contents }
    }

    fn fee_ppm(graph: &NetworkGraph<Arc<NoLog>>, dir: u8) -> Option<u32> {
        let ro = graph.read_only();
        let c = ro.channel(SCID)?;
        let info = if dir == 0 { c.one_to_two.as_ref() } else { c.two_to_one.as_ref() };
        info.map(|i| i.fees.proportional_millionths)
    }

    #[test]
    fn an_update_before_its_announcement_is_applied_once_the_channel_is_known_and_forwarded() {
        let (handler, graph, keys) = setup();
        // The non-announcing side's update overtakes the announcement: LDK refuses it; we keep it.
        assert!(handler.handle_channel_update(None, &update(&keys, 1, 10, 5)).is_err());
        // A newer one of the same direction replaces it.
        assert!(handler.handle_channel_update(None, &update(&keys, 1, 11, 7)).is_err());
        assert_eq!(handler.early_updates(), 1);
        assert_eq!(fee_ppm(&graph, 1), None);

        assert!(handler.handle_channel_announcement(None, &announcement(&keys)).unwrap());
        assert_eq!(fee_ppm(&graph, 1), Some(7), "the kept update is in the graph as soon as the channel is");
        assert_eq!(handler.early_updates(), 0);
        let forwarded: Vec<_> = handler
            .get_and_clear_pending_msg_events()
            .into_iter()
            .filter_map(|e| match e {
                MessageSendEvent::BroadcastChannelUpdate { msg } => Some(msg.contents.fee_proportional_millionths),
                _ => None,
            })
            .collect();
        assert_eq!(forwarded, vec![7], "our peers get it too, as they would have");
    }

    #[test]
    fn updates_refused_for_other_reasons_are_not_kept() {
        let (handler, graph, keys) = setup();
        assert!(handler.handle_channel_announcement(None, &announcement(&keys)).unwrap());
        assert!(handler.handle_channel_update(None, &update(&keys, 0, 10, 5)).unwrap());
        // Stale, and signed by the wrong side: refused by LDK, and the channel is known: dropped.
        assert!(handler.handle_channel_update(None, &update(&keys, 0, 9, 6)).is_err());
        let mut forged = update(&keys, 0, 12, 6);
        forged.signature = update(&keys, 1, 12, 6).signature;
        assert!(handler.handle_channel_update(None, &forged).is_err());
        assert_eq!(handler.early_updates(), 0);
        assert_eq!(fee_ppm(&graph, 0), Some(5));
    }

    #[test]
    fn the_cache_is_bounded() {
        let (handler, _, keys) = setup();
        for i in 0..(MAX_PREMATURE_UPDATES as u64 + 5) {
            let mut u = update(&keys, 0, 10, 5);
            u.contents.short_channel_id = SCID + 1 + i;
            handler.keep(&u);
        }
        assert_eq!(handler.early_updates(), MAX_PREMATURE_UPDATES);
    }
}
