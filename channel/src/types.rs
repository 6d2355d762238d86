//! The concrete LDK types a lanes node is made of, in one place so every module names them the same.
//!
//! Owns: the type aliases. Must never: hold logic, or let two modules spell the same LDK type differently.
use std::sync::{Arc, RwLock};

use lightning::chain::Filter;
use lightning::routing::gossip;
use lightning::routing::scoring::ProbabilisticScorer;
use lightning::sign::InMemorySigner;
use lightning::sign::KeysManager;

use lightning::ln::peer_handler::IgnoringMessageHandler;

use crate::bitcoind::BitcoindClient;
use crate::keys::WalletSignerProvider;
use crate::logger::LdkTracing;
use crate::persist::OrderedPersister;

pub type Logger = LdkTracing;
pub type NetworkGraph = gossip::NetworkGraph<Arc<Logger>>;
pub type Scorer = ProbabilisticScorer<Arc<NetworkGraph>, Arc<Logger>>;
/// We see every block in full, so LDK needs no transaction filter.
pub type ChainFilter = dyn Filter + Send + Sync;
/// Checks every announced channel against bitcoind: its funding output must exist, and its value is the
/// channel's capacity in the graph.
pub type GossipVerifier = lightning_block_sync::gossip::GossipVerifier<
    TokioSpawner,
    Arc<lightning_block_sync::rpc::RpcClient>,
    Arc<Logger>,
>;

/// Runs LDK's background futures (gossip verification lookups) on the tokio runtime.
pub struct TokioSpawner(pub tokio::runtime::Handle);

impl lightning::util::native_async::FutureSpawner for TokioSpawner {
    fn spawn<T: std::future::Future<Output = ()> + Send + 'static>(&self, future: T) {
        self.0.spawn(future);
    }
}

pub type ChainMonitor = lightning::chain::chainmonitor::ChainMonitor<
    InMemorySigner,
    Arc<ChainFilter>,
    Arc<BitcoindClient>,
    Arc<BitcoindClient>,
    Arc<Logger>,
    Arc<OrderedPersister>,
    Arc<KeysManager>,
>;

/// LDK's reader of ChannelMonitors stored as [`crate::persist::OrderedPersister`] stores them (a full
/// monitor and the updates since), and the archiver of resolved ones. It writes nothing else: every
/// other monitor write goes through the ordered persister.
pub type MonitorStore = lightning::util::persist::MonitorUpdatingPersister<
    lanes_store::DynStore,
    Arc<Logger>,
    Arc<KeysManager>,
    Arc<WalletSignerProvider>,
    Arc<BitcoindClient>,
    Arc<BitcoindClient>,
>;

/// Entropy and node signing from LDK's KeysManager; channel keys and destination scripts from
/// [`WalletSignerProvider`].
pub type ChannelManager = lightning::ln::channelmanager::ChannelManager<
    Arc<ChainMonitor>,
    Arc<BitcoindClient>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<WalletSignerProvider>,
    Arc<BitcoindClient>,
    Arc<Router>,
    Arc<MessageRouter>,
    Arc<Logger>,
>;

/// lanes' own parallel router (see [`crate::router`]); LDK's default router serves as its fallback for
/// what ours does not route itself (blinded payees).
pub type Router = crate::router::LanesRouter<Arc<Logger>, LdkRouter>;

/// LDK's default router.
pub type LdkRouter = lightning::routing::router::DefaultRouter<
    Arc<NetworkGraph>,
    Arc<Logger>,
    Arc<KeysManager>,
    Arc<RwLock<Scorer>>,
    lightning::routing::scoring::ProbabilisticScoringFeeParameters,
    Scorer,
>;

/// LDK's message router, with onion-message paths through the graph (see `lanes_router::message_router`).
pub type MessageRouter = lanes_router::LanesMessageRouter<Arc<NetworkGraph>, Arc<Logger>, Arc<KeysManager>>;

pub type OnionMessenger = lightning::onion_message::messenger::OnionMessenger<
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<Logger>,
    Arc<ChannelManager>,
    Arc<MessageRouter>,
    // BOLT12 messages: LDK's, after the node's check of invoice requests (see crate::offers_gate).
    Arc<crate::offers_gate::OffersGate>,
    Arc<ChannelManager>,
    IgnoringMessageHandler,
    IgnoringMessageHandler,
>;

pub type GossipSync = gossip::P2PGossipSync<Arc<NetworkGraph>, Arc<GossipVerifier>, Arc<Logger>>;
/// What the peer manager hands gossip to: LDK's [`GossipSync`], keeping channel updates that came before
/// their announcement (see [`crate::gossip`]).
pub type GossipHandler = crate::gossip::GossipHandler<Arc<NetworkGraph>, Arc<GossipVerifier>, Arc<Logger>>;

pub type PeerManager = lightning::ln::peer_handler::PeerManager<
    lightning_net_tokio::SocketDescriptor,
    // The ChannelManager, behind a test-only knob that is off on real nodes (see crate::test_knobs).
    Arc<crate::handler::ChannelHandler>,
    Arc<GossipHandler>,
    Arc<OnionMessenger>,
    Arc<Logger>,
    // Custom-message slot: the gossip handler's answers to query_short_channel_ids (see crate::gossip).
    Arc<GossipHandler>,
    Arc<KeysManager>,
    Arc<ChainMonitor>,
>;
