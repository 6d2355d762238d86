//! A gossip-only peer that syncs by queries, as CLN does, for tests.
//!
//! It runs in the test process on LDK's peer manager (no channels). When it connects it sends a
//! `gossip_timestamp_filter` starting now, so an LDK node does not dump its whole graph to it, then
//! `query_channel_range` over every block, and `query_short_channel_ids` for the ids the answer lists: what
//! it learns is only what the node answers to those queries. Its graph is LDK's `NetworkGraph` (signatures
//! checked, funding outputs not looked up).
//!
//! Owns: its peer manager, connections and graph. Must never: open channels or forward anything.
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::PublicKey;
use bitcoin::Network;
use lanes_channel::logger::LdkTracing;
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelAnnouncement, ChannelUpdate, GossipTimestampFilter, Init, LightningError, MessageSendEvent, NodeAnnouncement,
    QueryChannelRange, QueryShortChannelIds, ReplyChannelRange, ReplyShortChannelIdsEnd, RoutingMessageHandler,
};
use lightning::ln::peer_handler::{ErroringMessageHandler, IgnoringMessageHandler, PeerManager};
use lightning::routing::gossip::{NetworkGraph, NodeId, P2PGossipSync};
use lightning::routing::utxo::{UtxoLookup, UtxoLookupError, UtxoResult};
use lightning::sign::KeysManager;
use lightning::types::features::{InitFeatures, NodeFeatures};

use crate::Node;

type Graph = NetworkGraph<Arc<LdkTracing>>;
type Sync = P2PGossipSync<Arc<Graph>, Arc<NoLookup>, Arc<LdkTracing>>;
type Manager = PeerManager<
    lightning_net_tokio::SocketDescriptor,
    ErroringMessageHandler,
    Arc<Querier>,
    IgnoringMessageHandler,
    Arc<LdkTracing>,
    IgnoringMessageHandler,
    Arc<KeysManager>,
    IgnoringMessageHandler,
>;

/// Never asked: the graph is built without UTXO lookups.
pub struct NoLookup;
impl UtxoLookup for NoLookup {
    fn get_utxo(&self, _: &bitcoin::constants::ChainHash, _: u64) -> UtxoResult {
        UtxoResult::Sync(Err(UtxoLookupError::UnknownTx))
    }
}

/// The routing handler: LDK's for what comes in, our own queries for what goes out.
pub struct Querier {
    sync: Sync,
    chain_hash: bitcoin::constants::ChainHash,
    events: Mutex<Vec<MessageSendEvent>>,
    range: Mutex<Vec<u64>>,
    ends: Mutex<Vec<ReplyShortChannelIdsEnd>>,
}

/// A running gossip-querying peer. Dropping it disconnects it.
pub struct GossipPeer {
    manager: Arc<Manager>,
    querier: Arc<Querier>,
    graph: Arc<Graph>,
    driver: tokio::task::JoinHandle<()>,
}

impl GossipPeer {
    /// A new peer with a random identity.
    pub fn new() -> GossipPeer {
        let logger = Arc::new(LdkTracing::default());
        let graph = Arc::new(NetworkGraph::new(Network::Regtest, Arc::clone(&logger)));
        let querier = Arc::new(Querier {
            sync: P2PGossipSync::new(Arc::clone(&graph), None, Arc::clone(&logger)),
            chain_hash: graph.get_chain_hash(),
            events: Mutex::new(Vec::new()),
            range: Mutex::new(Vec::new()),
            ends: Mutex::new(Vec::new()),
        });
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&now.as_nanos().to_be_bytes());
        let keys = Arc::new(KeysManager::new(&seed, now.as_secs(), now.subsec_nanos(), true));
        let manager = Arc::new(Manager::new_routing_only(Arc::clone(&querier), now.as_secs() as u32, &seed, logger, keys));
        // LDK's peer manager sends what its handlers queue when asked to: ask regularly, as a node's
        // background processor does.
        let m = Arc::clone(&manager);
        let driver = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                m.process_events();
                m.timer_tick_occurred();
            }
        });
        GossipPeer { manager, querier, graph, driver }
    }

    /// Connects to `node` and waits for the handshake; the queries start at once.
    pub async fn connect(&self, node: &Node) {
        let id: PublicKey = node.node_id().parse().expect("a node id");
        let conn = lightning_net_tokio::connect_outbound(Arc::clone(&self.manager), id, node.p2p_addr())
            .await
            .unwrap_or_else(|| panic!("the gossip peer could not connect to {}", node.name()));
        tokio::spawn(conn);
        let m = Arc::clone(&self.manager);
        node.wait_until("the gossip peer's handshake", || async { m.peer_by_node_id(&id).is_some() }).await;
    }

    /// The graph it has learned.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The `reply_short_channel_ids_end` messages received so far.
    pub fn replies_ended(&self) -> Vec<ReplyShortChannelIdsEnd> {
        self.querier.ends.lock().unwrap().clone()
    }
}

impl Default for GossipPeer {
    fn default() -> Self {
        GossipPeer::new()
    }
}

impl Drop for GossipPeer {
    fn drop(&mut self) {
        self.driver.abort();
        self.manager.disconnect_all_peers();
    }
}

impl Querier {
    fn queue(&self, e: MessageSendEvent) {
        self.events.lock().unwrap().push(e);
    }
}

impl BaseMessageHandler for Querier {
    fn get_and_clear_pending_msg_events(&self) -> Vec<MessageSendEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    fn peer_disconnected(&self, _: PublicKey) {}

    fn provided_node_features(&self) -> NodeFeatures {
        let mut f = NodeFeatures::empty();
        f.set_gossip_queries_optional();
        f
    }

    fn provided_init_features(&self, _: PublicKey) -> InitFeatures {
        let mut f = InitFeatures::empty();
        f.set_gossip_queries_optional();
        f
    }

    fn peer_connected(&self, their_node_id: PublicKey, init: &Init, _inbound: bool) -> Result<(), ()> {
        if !init.features.supports_gossip_queries() {
            return Ok(());
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as u32;
        // New gossip only: no dump of the whole graph (LDK dumps it for a filter older than 6 hours).
        let filter = GossipTimestampFilter { chain_hash: self.chain_hash, first_timestamp: now, timestamp_range: u32::MAX };
        self.queue(MessageSendEvent::SendGossipTimestampFilter { node_id: their_node_id, msg: filter });
        let range = QueryChannelRange { chain_hash: self.chain_hash, first_blocknum: 0, number_of_blocks: u32::MAX };
        self.queue(MessageSendEvent::SendChannelRangeQuery { node_id: their_node_id, msg: range });
        Ok(())
    }
}

impl RoutingMessageHandler for Querier {
    fn handle_node_announcement(&self, from: Option<PublicKey>, msg: &NodeAnnouncement) -> Result<bool, LightningError> {
        self.sync.handle_node_announcement(from, msg)
    }

    fn handle_channel_announcement(&self, from: Option<PublicKey>, msg: &ChannelAnnouncement) -> Result<bool, LightningError> {
        self.sync.handle_channel_announcement(from, msg)
    }

    fn handle_channel_update(&self, from: Option<PublicKey>, msg: &ChannelUpdate) -> Result<bool, LightningError> {
        self.sync.handle_channel_update(from, msg)
    }

    fn get_next_channel_announcement(&self, _: u64) -> Option<(ChannelAnnouncement, Option<ChannelUpdate>, Option<ChannelUpdate>)> {
        None
    }

    fn get_next_node_announcement(&self, _: Option<&NodeId>) -> Option<NodeAnnouncement> {
        None
    }

    fn handle_reply_channel_range(&self, their_node_id: PublicKey, msg: ReplyChannelRange) -> Result<(), LightningError> {
        let mut range = self.range.lock().unwrap();
        range.extend(msg.short_channel_ids);
        if msg.sync_complete {
            let ids = std::mem::take(&mut *range);
            let query = QueryShortChannelIds { chain_hash: self.chain_hash, short_channel_ids: ids };
            self.queue(MessageSendEvent::SendShortIdsQuery { node_id: their_node_id, msg: query });
        }
        Ok(())
    }

    fn handle_reply_short_channel_ids_end(&self, _: PublicKey, msg: ReplyShortChannelIdsEnd) -> Result<(), LightningError> {
        self.ends.lock().unwrap().push(msg);
        Ok(())
    }

    fn handle_query_channel_range(&self, their_node_id: PublicKey, msg: QueryChannelRange) -> Result<(), LightningError> {
        self.sync.handle_query_channel_range(their_node_id, msg)
    }

    fn handle_query_short_channel_ids(&self, their_node_id: PublicKey, msg: QueryShortChannelIds) -> Result<(), LightningError> {
        self.sync.handle_query_short_channel_ids(their_node_id, msg)
    }

    fn processing_queue_high(&self) -> bool {
        false
    }
}
