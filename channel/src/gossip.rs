//! Gossip in, as the peer manager hands it over: LDK's `P2PGossipSync`, plus a cache of channel updates
//! that arrived before their channel's announcement; and gossip out to a peer that asks for it by short
//! channel id.
//!
//! Gossip has no ordering guarantee: the update of a channel's non-announcing side often travels faster
//! than the announcement (which waits for its funding output to be checked against bitcoind). LDK drops
//! such an update, and nothing asks for it again, so that direction of the channel stays unusable for
//! routing until its next update, possibly days later. Like LND's premature-update cache, [`GossipHandler`]
//! keeps these updates for a while and hands them to LDK again once the announcement is in the graph;
//! replayed updates that LDK accepts are forwarded to our peers, as they would have been.
//!
//! LDK answers `query_channel_range` itself but refuses `query_short_channel_ids` ("Not implemented"),
//! which is how CLN (and LND, when it syncs by queries) asks for channels it misses. [`GossipHandler`]
//! answers it from the graph, as LND and CLN do: for each requested channel its `channel_announcement`,
//! the latest `channel_update` of each direction and the `node_announcement` of each end (each node
//! once per query), then `reply_short_channel_ids_end`. The answer goes out in rounds of
//! [`REPLY_CHANNELS_PER_ROUND`] channels each time the peer manager collects messages, so a large query
//! never blocks it nor fills a peer's buffer at once; a query holds at most [`MAX_QUERY_SCIDS`] ids. LDK
//! has no message event for these replies, so they go out through the peer manager's custom-message
//! slot ([`GossipReply`], encoded exactly as the BOLT 7 messages).
//!
//! Owns: that cache (bounded in size and age), the queries being answered (one per peer, bounded), and
//! our own gossip the node asks to send ([`GossipHandler::send`]). Must never: check or accept gossip
//! itself, nor sign any: every message in goes through LDK's `P2PGossipSync`, which verifies signatures
//! and keeps the graph, and every message out is one LDK signed and keeps in that graph.
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelAnnouncement, ChannelUpdate, DecodeError, ErrorAction, Init, LightningError, MessageSendEvent,
    NodeAnnouncement, QueryChannelRange, QueryShortChannelIds, ReplyChannelRange, ReplyShortChannelIdsEnd, RoutingMessageHandler,
};
use lightning::ln::peer_handler::CustomMessageHandler;
use lightning::ln::wire::{CustomMessageReader, Type};
use lightning::routing::gossip::{NetworkGraph, NodeAnnouncementInfo, NodeId, P2PGossipSync};
use lightning::routing::utxo::UtxoLookup;
use lightning::types::features::{InitFeatures, NodeFeatures};
use lightning::util::logger::{Level, Logger};
use lightning::util::ser::{LengthLimitedRead, Writeable, Writer};
use std::ops::Deref;

/// How long an update waits for its channel's announcement.
pub const PREMATURE_UPDATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Kept updates are looked at again when the graph gained or lost channels, when one was just kept, and
/// at least this often otherwise (for expiry, and a channel added as another was pruned).
pub const REPLAY_RESCAN: Duration = Duration::from_secs(1);
/// How many early updates are kept at most (the oldest are dropped first).
pub const MAX_PREMATURE_UPDATES: usize = 10_000;
/// How many short channel ids of one `query_short_channel_ids` are answered at most. A query is one
/// message of at most 65,535 bytes, i.e. about 8,190 ids in the uncompressed encoding LDK reads.
pub const MAX_QUERY_SCIDS: usize = 8_192;
/// How many requested channels are answered per round (each time the peer manager collects messages).
pub const REPLY_CHANNELS_PER_ROUND: usize = 200;

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
    /// Per peer, the `query_short_channel_ids` being answered.
    queries: Mutex<HashMap<PublicKey, Query>>,
    /// Messages the node asked to send (our own channel updates).
    outbox: Mutex<Vec<MessageSendEvent>>,
}

/// A `query_short_channel_ids` being answered.
struct Query {
    scids: VecDeque<u64>,
    /// Nodes whose announcement this answer already carries.
    nodes_sent: HashSet<NodeId>,
    chain_hash: bitcoin::constants::ChainHash,
    full_information: bool,
}

/// Gossip sent to one peer in answer to its query, through the peer manager's custom-message slot: each
/// variant is written exactly as the BOLT 7 message of the same type.
#[derive(Clone, Debug)]
pub enum GossipReply {
    ChannelAnnouncement(ChannelAnnouncement),
    NodeAnnouncement(NodeAnnouncement),
    ChannelUpdate(ChannelUpdate),
    End(ReplyShortChannelIdsEnd),
}

impl Type for GossipReply {
    fn type_id(&self) -> u16 {
        // BOLT 7 message types.
        match self {
            GossipReply::ChannelAnnouncement(_) => 256,
            GossipReply::NodeAnnouncement(_) => 257,
            GossipReply::ChannelUpdate(_) => 258,
            GossipReply::End(_) => 262,
        }
    }
}

impl Writeable for GossipReply {
    fn write<W: Writer>(&self, w: &mut W) -> Result<(), lightning::io::Error> {
        match self {
            GossipReply::ChannelAnnouncement(m) => m.write(w),
            GossipReply::NodeAnnouncement(m) => m.write(w),
            GossipReply::ChannelUpdate(m) => m.write(w),
            GossipReply::End(m) => m.write(w),
        }
    }
}

#[derive(Default)]
struct Early {
    /// Per short channel id, the latest update of each direction that came before the announcement.
    updates: HashMap<u64, Vec<(Instant, ChannelUpdate)>>,
    count: usize,
    /// Replayed updates LDK accepted, to be forwarded to our peers.
    forward: Vec<ChannelUpdate>,
    /// The graph's channel count at the last look for kept updates whose channel is known, and when.
    scanned: Option<(usize, Instant)>,
    /// Such looks so far.
    scans: u64,
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
        GossipHandler {
            inner,
            graph,
            early: Mutex::new(Early::default()),
            queries: Mutex::new(HashMap::new()),
            outbox: Mutex::new(Vec::new()),
        }
    }

    /// Queues a message of the node's own (e.g. our channel update, to our counterparty) for the peer
    /// manager's next round. The caller should then call its `process_events`.
    pub fn send(&self, event: MessageSendEvent) {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }

    /// True while some peer's query is still being answered: the peer manager should collect messages
    /// again soon (see [`REPLY_CHANNELS_PER_ROUND`]).
    pub fn answering_queries(&self) -> bool {
        !self.queries.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// The next round of answers: up to [`REPLY_CHANNELS_PER_ROUND`] requested channels per peer, and the
    /// end marker once a peer's query is fully answered.
    fn next_replies(&self) -> Vec<(PublicKey, GossipReply)> {
        let mut queries = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        if queries.is_empty() {
            return Vec::new();
        }
        let graph = self.graph.read_only();
        let mut out = Vec::new();
        let mut done = Vec::new();
        for (peer, q) in queries.iter_mut() {
            for _ in 0..REPLY_CHANNELS_PER_ROUND {
                let Some(scid) = q.scids.pop_front() else { break };
                // Only announced channels: a private one (or one we only know from our own side) is
                // not gossip.
                let Some(chan) = graph.channel(scid) else { continue };
                let Some(ann) = chan.announcement_message.as_ref() else { continue };
                out.push((*peer, GossipReply::ChannelAnnouncement(ann.clone())));
                for dir in [chan.one_to_two.as_ref(), chan.two_to_one.as_ref()] {
                    if let Some(update) = dir.and_then(|d| d.last_update_message.as_ref()) {
                        out.push((*peer, GossipReply::ChannelUpdate(update.clone())));
                    }
                }
                for node in [chan.node_one, chan.node_two] {
                    if !q.nodes_sent.insert(node) {
                        continue;
                    }
                    if let Some(NodeAnnouncementInfo::Relayed(na)) = graph.node(&node).and_then(|n| n.announcement_info.as_ref()) {
                        out.push((*peer, GossipReply::NodeAnnouncement(na.clone())));
                    }
                }
            }
            if q.scids.is_empty() {
                let end = ReplyShortChannelIdsEnd { chain_hash: q.chain_hash, full_information: q.full_information };
                out.push((*peer, GossipReply::End(end)));
                done.push(*peer);
            }
        }
        for peer in done {
            queries.remove(&peer);
        }
        out
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
        // Its channel may be in the graph already (see `keep_refused_update`): the next replay looks.
        early.scanned = None;
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
            // The peer manager calls this for every batch of messages. A node with 1,000 private channels
            // keeps their updates here (they are never announced), and looking at all of them each time took
            // 8% of its CPU during payments (the `scale` bench): only when the graph changed, or now and then.
            let channels = graph.channels().len();
            if matches!(early.scanned, Some((n, at)) if n == channels && at.elapsed() < REPLAY_RESCAN) {
                return;
            }
            early.scanned = Some((channels, Instant::now()));
            early.scans += 1;
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

/// Whether an update LDK refused waits for its channel's announcement: refused because LDK did not know the
/// channel, even if the channel is in the graph by the time we look (`known_now`): LDK's check of a pending
/// announcement ends, and the announcement enters the graph, on the gossip verifier's thread, and an update
/// checked in between is refused as unknown and held nowhere. Seen as a channel direction missing for good
/// from a node's graph in one CI run of the main job. Any other refusal (a bad signature, a stale timestamp)
/// is final once the channel is known.
fn keep_refused_update(e: &LightningError, known_now: bool) -> bool {
    !known_now || e.err == "Couldn't find channel for update"
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
        events.append(&mut self.outbox.lock().unwrap_or_else(|p| p.into_inner()));
        events
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.queries.lock().unwrap_or_else(|p| p.into_inner()).remove(&their_node_id);
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
        if let Err(e) = &res {
            if keep_refused_update(e, self.graph.read_only().channel(msg.contents.short_channel_id).is_some()) {
                self.keep(msg);
            }
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

    /// LDK answers "Not implemented"; we answer from the graph, in rounds (see the module docs).
    fn handle_query_short_channel_ids(&self, their_node_id: PublicKey, msg: QueryShortChannelIds) -> Result<(), LightningError> {
        let mut queries = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        if queries.contains_key(&their_node_id) {
            // BOLT 7: a peer must wait for reply_short_channel_ids_end before querying again.
            return Err(LightningError {
                err: "query_short_channel_ids before the previous one was answered".into(),
                action: ErrorAction::IgnoreAndLog(Level::Debug),
            });
        }
        let ours = msg.chain_hash == self.graph.get_chain_hash();
        let mut scids: VecDeque<u64> = if ours { msg.short_channel_ids.into_iter().take(MAX_QUERY_SCIDS).collect() } else { VecDeque::new() };
        // Asked twice in one query: answered once.
        let mut seen = HashSet::new();
        scids.retain(|s| seen.insert(*s));
        tracing::debug!(peer = %their_node_id, channels = scids.len(), "answering query_short_channel_ids");
        let query = Query { scids, nodes_sent: HashSet::new(), chain_hash: msg.chain_hash, full_information: ours };
        queries.insert(their_node_id, query);
        Ok(())
    }

    fn processing_queue_high(&self) -> bool {
        self.inner.processing_queue_high()
    }
}

/// The peer manager's custom-message slot: used only to send [`GossipReply`]s. It reads no message type
/// (every unknown type stays unknown to the peer manager, as with LDK's `IgnoringMessageHandler`).
impl<G, U, L> CustomMessageReader for GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    type CustomMessage = GossipReply;

    fn read<R: LengthLimitedRead>(&self, _message_type: u16, _buffer: &mut R) -> Result<Option<GossipReply>, DecodeError> {
        Ok(None)
    }
}

impl<G, U, L> CustomMessageHandler for GossipHandler<G, U, L>
where
    G: Deref<Target = NetworkGraph<L>>,
    U: Deref,
    U::Target: UtxoLookup,
    L: Deref,
    L::Target: Logger,
{
    fn handle_custom_message(&self, _msg: GossipReply, _sender_node_id: PublicKey) -> Result<(), LightningError> {
        // Never read (see CustomMessageReader above), so never handed to us.
        Ok(())
    }

    fn get_and_clear_pending_msg(&self) -> Vec<(PublicKey, GossipReply)> {
        self.next_replies()
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.queries.lock().unwrap_or_else(|p| p.into_inner()).remove(&their_node_id);
    }

    fn peer_connected(&self, _their_node_id: PublicKey, _msg: &Init, _inbound: bool) -> Result<(), ()> {
        Ok(())
    }

    fn provided_node_features(&self) -> NodeFeatures {
        NodeFeatures::empty()
    }

    fn provided_init_features(&self, _their_node_id: PublicKey) -> InitFeatures {
        InitFeatures::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::constants::ChainHash;
    use bitcoin::hashes::{sha256d, Hash};
    use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
    use bitcoin::Network;
    use lightning::ln::msgs::{UnsignedChannelAnnouncement, UnsignedChannelUpdate, UnsignedNodeAnnouncement};
    use lightning::routing::gossip::NodeAlias;
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
        announcement_of(keys, SCID)
    }

    fn announcement_of(keys: &[SecretKey; 2], scid: u64) -> ChannelAnnouncement {
        let secp = Secp256k1::new();
        let ids = keys.map(|k| NodeId::from_pubkey(&PublicKey::from_secret_key(&secp, &k)));
        let contents = UnsignedChannelAnnouncement {
            features: ChannelFeatures::empty(),
            chain_hash: ChainHash::using_genesis_block(Network::Regtest),
            short_channel_id: scid,
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

    fn node_announcement(key: &SecretKey, name: &str) -> NodeAnnouncement {
        let mut alias = [0u8; 32];
        alias[..name.len()].copy_from_slice(name.as_bytes());
        let contents = UnsignedNodeAnnouncement {
            features: NodeFeatures::empty(),
            timestamp: ts(5),
            node_id: NodeId::from_pubkey(&PublicKey::from_secret_key(&Secp256k1::new(), key)),
            rgb: [0; 3],
            alias: NodeAlias(alias),
            addresses: Vec::new(),
            excess_address_data: Vec::new(),
            excess_data: Vec::new(),
        };
        NodeAnnouncement { signature: sign(contents.encode(), key), contents }
    }

    fn query(scids: Vec<u64>) -> QueryShortChannelIds {
        QueryShortChannelIds { chain_hash: ChainHash::using_genesis_block(Network::Regtest), short_channel_ids: scids }
    }

    fn peer() -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[9; 32]).unwrap())
    }

    /// What one round sends, as (type, short channel id or 0) pairs.
    fn round(handler: &Handler) -> Vec<(u16, u64)> {
        handler
            .get_and_clear_pending_msg()
            .into_iter()
            .map(|(to, m)| {
                assert_eq!(to, peer());
                let scid = match &m {
                    GossipReply::ChannelAnnouncement(a) => a.contents.short_channel_id,
                    GossipReply::ChannelUpdate(u) => u.contents.short_channel_id,
                    GossipReply::NodeAnnouncement(_) => 0,
                    GossipReply::End(e) => e.full_information as u64,
                };
                (m.type_id(), scid)
            })
            .collect()
    }

    #[test]
    fn a_query_by_short_channel_id_is_answered_with_the_channel_both_updates_and_both_nodes() {
        let (handler, _, keys) = setup();
        assert!(handler.handle_channel_announcement(None, &announcement(&keys)).unwrap());
        assert!(handler.handle_channel_update(None, &update(&keys, 0, 10, 5)).unwrap());
        assert!(handler.handle_channel_update(None, &update(&keys, 1, 10, 6)).unwrap());
        assert!(handler.handle_node_announcement(None, &node_announcement(&keys[0], "one")).unwrap());
        assert!(handler.handle_node_announcement(None, &node_announcement(&keys[1], "two")).unwrap());

        // LDK alone refuses the query.
        assert!(handler.inner().handle_query_short_channel_ids(peer(), query(vec![SCID])).is_err());

        // One channel we know, one we do not, and the known one again.
        handler.handle_query_short_channel_ids(peer(), query(vec![SCID, SCID + 1, SCID])).unwrap();
        assert!(handler.answering_queries());
        assert_eq!(
            round(&handler),
            vec![(256, SCID), (258, SCID), (258, SCID), (257, 0), (257, 0), (262, 1)],
            "announcement, both updates, both nodes, then the end (full information)"
        );
        assert!(!handler.answering_queries());
        assert!(round(&handler).is_empty(), "answered once");

        // On the wire each reply is the BOLT 7 message LDK would write.
        let end = ReplyShortChannelIdsEnd { chain_hash: ChainHash::using_genesis_block(Network::Regtest), full_information: true };
        assert_eq!(GossipReply::End(end.clone()).encode(), end.encode());
        let u = update(&keys, 0, 10, 5);
        assert_eq!(GossipReply::ChannelUpdate(u.clone()).encode(), u.encode());
    }

    #[test]
    fn a_large_query_is_answered_in_bounded_rounds_and_one_query_at_a_time() {
        let (handler, _, keys) = setup();
        let n = REPLY_CHANNELS_PER_ROUND as u64 * 2 + 10;
        for i in 0..n {
            assert!(handler.handle_channel_announcement(None, &announcement_of(&keys, SCID + i)).unwrap());
        }
        handler.handle_query_short_channel_ids(peer(), query((0..n).map(|i| SCID + i).collect())).unwrap();
        // A second query before the first is answered is refused (BOLT 7: one at a time).
        assert!(handler.handle_query_short_channel_ids(peer(), query(vec![SCID])).is_err());

        let mut announced = 0;
        let mut rounds = 0;
        loop {
            let msgs = round(&handler);
            rounds += 1;
            let anns = msgs.iter().filter(|(t, _)| *t == 256).count();
            assert!(anns <= REPLY_CHANNELS_PER_ROUND, "at most {REPLY_CHANNELS_PER_ROUND} channels per round, got {anns}");
            announced += anns;
            if msgs.last() == Some(&(262, 1)) {
                break;
            }
            assert!(rounds < 10, "the answer ends");
        }
        assert_eq!((announced as u64, rounds), (n, 3));

        // An oversized query is cut at MAX_QUERY_SCIDS; a disconnect forgets the query.
        handler.handle_query_short_channel_ids(peer(), query((0..MAX_QUERY_SCIDS as u64 + 100).map(|i| SCID + i).collect())).unwrap();
        assert_eq!(handler.queries.lock().unwrap()[&peer()].scids.len(), MAX_QUERY_SCIDS);
        CustomMessageHandler::peer_disconnected(&handler, peer());
        assert!(!handler.answering_queries());
    }

    #[test]
    fn a_query_for_another_chain_gets_an_empty_answer_without_full_information() {
        let (handler, _, keys) = setup();
        assert!(handler.handle_channel_announcement(None, &announcement(&keys)).unwrap());
        let q = QueryShortChannelIds { chain_hash: ChainHash::using_genesis_block(Network::Bitcoin), short_channel_ids: vec![SCID] };
        handler.handle_query_short_channel_ids(peer(), q).unwrap();
        assert_eq!(round(&handler), vec![(262, 0)]);
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
    fn an_update_refused_as_unknown_is_kept_even_when_its_channel_entered_the_graph_meanwhile() {
        let unknown = LightningError { err: "Couldn't find channel for update".into(), action: ErrorAction::IgnoreError };
        let stale = LightningError { err: "Update older than last processed update".into(), action: ErrorAction::IgnoreError };
        assert!(keep_refused_update(&unknown, true), "the verifier added the channel between LDK's check and ours");
        assert!(keep_refused_update(&unknown, false));
        assert!(!keep_refused_update(&stale, true));
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

    /// A node's private channels' updates wait here for good (they are never announced); the peer manager
    /// asks for messages after every batch it reads, and that must not look through all of them each time.
    #[test]
    fn kept_updates_are_looked_at_again_only_when_the_graph_changes() {
        let (handler, graph, keys) = setup();
        for i in 1..=1_000 {
            let mut u = update(&keys, 1, 10, 5);
            u.contents.short_channel_id = SCID + i;
            // Kept as `handle_channel_update` keeps an update whose channel the graph does not know.
            handler.keep(&u);
        }
        let scans = || handler.early.lock().unwrap().scans;
        for _ in 0..100 {
            handler.get_and_clear_pending_msg_events();
        }
        // One look, then none while the graph stays as it was (a second if this machine stalled a whole
        // REPLAY_RESCAN meanwhile).
        assert!(scans() <= 2, "{} looks for 100 calls", scans());
        // The channel of a kept update enters the graph: looked at again, and applied.
        assert!(handler.handle_channel_update(None, &update(&keys, 1, 11, 7)).is_err());
        assert!(handler.handle_channel_announcement(None, &announcement(&keys)).unwrap());
        handler.get_and_clear_pending_msg_events();
        assert_eq!(fee_ppm(&graph, 1), Some(7));
        assert!(scans() <= 4, "{} looks", scans());
        assert_eq!(handler.early_updates(), 1_000);
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
