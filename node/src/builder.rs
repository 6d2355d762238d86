//! Wires a lanes node, in order: config → stores → chain source → wallet → channel manager → router →
//! watcher → (the API is served by the binary over the built [`Node`]).
//!
//! Owns: the construction and restart path of every component, and reading persisted Lightning state
//! back (ChannelMonitors before the ChannelManager, both synced to bitcoind's tip before anything can
//! talk to a peer). Must never: run protocol logic, or start talking to peers before the monitors are
//! watched by the ChainMonitor: a peer must not see us before we can see a breach.
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::BlockHash;
use lightning::chain::{self, BestBlock, ChannelMonitorUpdateStatus};
use lightning::ln::channelmanager::{ChainParameters, ChannelManagerReadArgs};
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler};
use lightning::routing::gossip::P2PGossipSync;
use lightning::routing::scoring::{ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters};
use lightning::sign::{EntropySource, KeysManager, NodeSigner};
use lightning::util::config::UserConfig;
use lightning::util::persist::{
    KVStoreSync, MonitorUpdatingPersister, NETWORK_GRAPH_PERSISTENCE_KEY, NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE,
    NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE, SCORER_PERSISTENCE_KEY, SCORER_PERSISTENCE_PRIMARY_NAMESPACE,
    SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::ReadableArgs;
use lightning_block_sync::{init, UnboundedCache};

use lanes_channel::bitcoind::{BitcoindClient, FeeFallbacks, RpcConfig};
use lanes_channel::broadcast::BroadcastJournal;
use lanes_channel::handler::ChannelHandler;
use lanes_channel::keys::WalletSignerProvider;
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::{OrderedPersister, ProcessorStore, MAX_PENDING_UPDATES};
use lanes_channel::types::{
    ChainMonitor, ChannelManager, GossipHandler, GossipSync, GossipVerifier, LdkRouter, MessageRouter, MonitorStore, NetworkGraph, OnionMessenger, PeerManager, Router, Scorer,
    TokioSpawner,
};
use lanes_channel::router::{LiquidityScorer, ScorerParams};
use lanes_channel::ChannelError;
use lanes_store::{layout, DynStore, PgStore, SledStore};
use lanes_wallet::{OnchainWallet, Seed};

use crate::announce::Announcer;
use crate::bus::EventBus;
use crate::channels::{Channels, ChannelsDeps};
use crate::events::EventHandler;
use crate::forwards::Forwards;
use crate::graph::Graph;
use crate::health::Health;
use crate::invoice::Invoices;
use crate::node::{Node, Runtime, Services};
use crate::onchain::Onchain;
use crate::payments::Payments;
use crate::peers::Peers;
use crate::routes::{Learning, Routes};
use crate::sweep::{Sweeper, WalletChange};
use crate::watcher::SyncStatus;
use crate::config::StoreChoice;
use crate::lease::{self, Role, RoleInfo, RoleState};
use crate::{Config, NodeError};

/// At most this many threads read the ChannelMonitors at start-up (LDK suggests reading them in parallel, and
/// to bound the readers).
const MONITOR_READERS: usize = 4;

/// Builds a [`Node`] from a [`Config`].
pub struct Builder {
    config: Config,
    role: Arc<RoleState>,
}

impl Builder {
    pub fn new(config: Config) -> Self {
        Self { config, role: Arc::default() }
    }

    /// Reports this instance's role (standby while it waits for the database lease, then active) through
    /// `role`, which the API reads while the node is not built yet.
    pub fn with_role(mut self, role: Arc<RoleState>) -> Self {
        self.role = role;
        self
    }

    /// Builds the node and starts its background tasks (chain sync, peer listener, event processing).
    pub async fn build(self) -> Result<Arc<Node>, NodeError> {
        let config = self.config;
        let network = config.network;
        make_private(&config.data_dir)?;

        // The store: every owner gets a handle on it and keeps to its own namespaces (lanes_store::layout),
        // and none knows which implementation it is.
        let mut lease = None;
        let store: DynStore = match &config.store {
            StoreChoice::Sled => {
                let opened = match lanes_channel::test_knobs::store_compact_min_live() {
                    Some(bytes) => SledStore::open_with(config.db_path(), bytes),
                    None => SledStore::open(config.db_path()),
                };
                Arc::new(opened.map_err(|e| NodeError::Store(e.into()))?)
            }
            StoreChoice::Postgres(options) => {
                // Connects and migrates (blocking, bounded by the driver's connect timeout): a bad or
                // unreachable database stops the start here, before anything else runs.
                let options = options.clone();
                let opened = tokio::task::spawn_blocking(move || PgStore::open(&options))
                    .await
                    .map_err(|e| NodeError::Store(std::io::Error::other(format!("the store's open panicked: {e}"))))?;
                let pg = Arc::new(opened.map_err(|e| NodeError::Store(e.into()))?);
                // Nothing is read or written before this instance holds the lease: a standby waits here.
                // From here on every write is fenced with the lease's epoch.
                lease = Some(lease::acquire(Arc::clone(&pg), lease::instance_name(config.grpc_listen), Arc::clone(&self.role)).await);
                pg
            }
        };
        if lease.is_none() {
            self.role.set(RoleInfo { role: Role::Active, epoch: 0, holder: String::new() });
        }

        // Chain source.
        let rpc = RpcConfig {
            url: config.bitcoind_rpc_url.clone(),
            user: config.bitcoind_rpc_user.clone(),
            password: config.bitcoind_rpc_password.clone(),
        };
        let fallbacks = FeeFallbacks {
            maximum_sat_per_kw: sat_per_vb_to_kw(config.fees.max_fee_rate_fallback),
            urgent_sat_per_kw: sat_per_vb_to_kw(config.fees.urgent_fee_rate_fallback),
        };
        let bitcoind = Arc::new(BitcoindClient::connect(&rpc, network, fallbacks).await?);
        bitcoind.refresh_fees().await?;

        // Wallet: the seed first, every key comes from it.
        let (seed, created) = Seed::load_or_create(&config.seed_path())?;
        if created {
            tracing::info!(path = %config.seed_path().display(), "new seed created: back it up");
        }
        // The store and the seed must be one node's: on PostgreSQL they live apart, and a standby started with
        // another seed would load channels it cannot sign for. The store records its node id once.
        if let Err(e) = check_store_owner(&store, &seed, network) {
            if let Some(lease) = lease.take() {
                lease.release();
            }
            return Err(e);
        }
        let wallet = {
            let (url, user, pass) = (rpc.url.clone(), rpc.user.clone(), rpc.password.clone());
            let (seed, store) = (seed.clone(), DynStore::clone(&store));
            tokio::task::spawn_blocking(move || OnchainWallet::load_or_create(&seed, network, store, &url, &user, &pass))
                .await
                .map_err(|e| NodeError::Internal(e.to_string()))??
        };
        let wallet = Arc::new(wallet);

        // Every transaction LDK hands over is journaled before its first broadcast and re-sent until it is
        // buried; the wallet keeps the inputs of journaled transactions spent meanwhile, across restarts.
        let journal = Arc::new(
            BroadcastJournal::load(DynStore::clone(&store)).map_err(|e| ChannelError::Store(e.into()))?,
        );
        {
            let wallet = Arc::clone(&wallet);
            journal.set_hook(Box::new(move |txid, keep| wallet.keep_unconfirmed(txid, keep)));
        }
        bitcoind.keep_journal(journal);

        // Channel manager and everything it needs.
        let logger = Arc::new(LdkTracing::default());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| NodeError::Internal(e.to_string()))?;
        let keys = Arc::new(KeysManager::new(&seed.ldk_seed(network), now.as_secs(), now.subsec_nanos(), true));
        let network_graph = Arc::new(read_network_graph(&store, network, &logger)?);
        let scorer = Arc::new(RwLock::new(read_scorer(&store, &network_graph, &logger)?));
        // Every monitor and manager write goes through one ordered path (see lanes_channel::persist).
        let persister = Arc::new(OrderedPersister::new(Arc::clone(&store)));
        let processor_store = Arc::new(ProcessorStore { store: Arc::clone(&store), persister: Arc::clone(&persister) });
        let chain_monitor: Arc<ChainMonitor> = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&bitcoind),
            Arc::clone(&logger),
            Arc::clone(&bitcoind),
            Arc::clone(&persister),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));

        // Router: lanes' parallel router with its liquidity scorer (kept in the store), over the gossip graph;
        // LDK's default router behind it for blinded payees.
        let node_id = keys.get_node_id(lightning::sign::Recipient::Node).map_err(|_| NodeError::Internal("no node id".into()))?;
        let fallback = LdkRouter::new(
            Arc::clone(&network_graph),
            Arc::clone(&logger),
            Arc::clone(&keys),
            Arc::clone(&scorer),
            ProbabilisticScoringFeeParameters::default(),
        );
        let liquidity = match store.read(layout::ROUTER.primary, layout::ROUTER.secondary, layout::ROUTER_SCORER_KEY) {
            Ok(bytes) => LiquidityScorer::from_bytes(&bytes).unwrap_or_else(|| {
                tracing::warn!("the stored router scorer is unreadable: starting a fresh one");
                LiquidityScorer::new(ScorerParams::default())
            }),
            Err(_) => LiquidityScorer::new(ScorerParams::default()),
        };
        let router = Arc::new(Router::new(Arc::clone(&network_graph), node_id, liquidity, fallback));
        let message_router = Arc::new(MessageRouter::new(Arc::clone(&network_graph), Arc::clone(&keys)));

        // Channel keys from the seed; close outputs, justice and HTLC claims pay the wallet directly.
        let signer = Arc::new(WalletSignerProvider::new(Arc::clone(&keys), Arc::new(WalletChange(Arc::clone(&wallet)))));
        // Monitors as the ordered persister stores them: the last full one with the updates since applied.
        let monitor_store: Arc<MonitorStore> = Arc::new(MonitorUpdatingPersister::new(
            Arc::clone(&store),
            Arc::clone(&logger),
            MAX_PENDING_UPDATES,
            Arc::clone(&keys),
            Arc::clone(&signer),
            Arc::clone(&bitcoind),
            Arc::clone(&bitcoind),
        ));
        // In parallel: with 1,000 channels, reading them one after the other was a third of the start-up.
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MONITOR_READERS);
        let mut monitors = lanes_channel::persist::read_monitors(
            &store,
            threads,
            |key| monitor_store.read_channel_monitor_with_updates(key),
            || monitor_store.read_all_channel_monitors_with_updates(),
        )
        .map_err(|e| ChannelError::Decode { what: "channel monitors", reason: e.to_string() })?;
        let monitors_read = started.elapsed();
        let user_config = user_config(&config);
        let tip = bitcoind.tip().await?;
        // A manifest that lists a chunk not there, or of another length, is corrupt data, not a store failure.
        let read = persister.read_manager().map_err(|e| match e.kind() {
            lightning::io::ErrorKind::InvalidData => ChannelError::Decode { what: "channel manager", reason: e.to_string() },
            _ => ChannelError::Store(e.into()),
        });
        let started = std::time::Instant::now();
        let (manager_hash, channel_manager) =
            match read? {
                Some(bytes) => {
                    let args = ChannelManagerReadArgs::new(
                        Arc::clone(&keys),
                        Arc::clone(&keys),
                        Arc::clone(&signer),
                        Arc::clone(&bitcoind),
                        Arc::clone(&chain_monitor),
                        Arc::clone(&bitcoind),
                        Arc::clone(&router),
                        Arc::clone(&message_router),
                        Arc::clone(&logger),
                        user_config.clone(),
                        monitors.iter().map(|(_, m)| m).collect(),
                    );
                    let (hash, cm) = <(BlockHash, ChannelManager)>::read(&mut lightning::io::Cursor::new(bytes), args)
                        .map_err(|e| ChannelError::Decode { what: "channel manager", reason: format!("{e:?}") })?;
                    (Some(hash), cm)
                }
                None => {
                    if !monitors.is_empty() {
                        return Err(ChannelError::Mismatch("channel monitors exist but the channel manager is missing".into()).into());
                    }
                    let params = ChainParameters { network, best_block: BestBlock::new(tip.hash, tip.height) };
                    let cm = ChannelManager::new(
                        Arc::clone(&bitcoind),
                        Arc::clone(&chain_monitor),
                        Arc::clone(&bitcoind),
                        Arc::clone(&router),
                        Arc::clone(&message_router),
                        Arc::clone(&logger),
                        Arc::clone(&keys),
                        Arc::clone(&keys),
                        Arc::clone(&signer),
                        user_config.clone(),
                        params,
                        now.as_secs() as u32,
                    );
                    (None, cm)
                }
            };
        let manager_read = started.elapsed();
        let channel_manager = Arc::new(channel_manager);
        persister.attach(&chain_monitor, &channel_manager, monitor_store);
        apply_dust_policy(&channel_manager, &user_config);

        // The sweeper claims what closed channels leave us into the wallet; it follows the chain too.
        let (sweeper_hash, sweeper) = read_sweeper(&processor_store, &bitcoind, &keys, &wallet, &logger, tip)?;
        let sweeper = Arc::new(sweeper);

        // Bring the manager and every monitor to bitcoind's tip before anything else runs (reorg-safe:
        // block sync walks back to the fork point of each listener), then hand the monitors to the
        // ChainMonitor, which watches the chain for them from now on.
        let started = std::time::Instant::now();
        let mut cache = UnboundedCache::new();
        let block_source = bitcoind.block_source();
        let chain_tip = {
            let mut listeners: Vec<(BlockHash, MonitorListener)> = monitors
                .drain(..)
                .map(|(hash, m)| (hash, (m, Arc::clone(&bitcoind), Arc::clone(&bitcoind), Arc::clone(&logger))))
                .collect();
            let tip = match manager_hash {
                Some(manager_hash) => {
                    let mut all: Vec<(BlockHash, &(dyn chain::Listen + Send + Sync))> = vec![
                        (manager_hash, &*channel_manager as &(dyn chain::Listen + Send + Sync)),
                        (sweeper_hash, &*sweeper as &(dyn chain::Listen + Send + Sync)),
                    ];
                    // Monitors at the same block are one listener: block sync fetches a listener's header and
                    // walks back to its fork point one listener at a time (a bitcoind call each, not cached), which
                    // took 4 s of a start-up with 1,000 channels; the monitors of a node sit on a few blocks.
                    let mut at: Vec<(BlockHash, SameBlock<'_>)> = Vec::new();
                    for (hash, l) in listeners.iter() {
                        match at.iter_mut().find(|(h, _)| h == hash) {
                            Some((_, same)) => same.0.push(l),
                            None => at.push((*hash, SameBlock(vec![l]))),
                        }
                    }
                    for (hash, same) in at.iter() {
                        all.push((*hash, same as &(dyn chain::Listen + Send + Sync)));
                    }
                    let hashes: Vec<BlockHash> = all.iter().map(|(h, _)| *h).collect();
                    // Each listener's walk back from the tip then finds its headers in the cache (see header_cache).
                    crate::header_cache::warm(&*block_source, network, &mut cache, &hashes).await;
                    init::synchronize_listeners(&*block_source, network, &mut cache, all)
                        .await
                        .map_err(|e| ChannelError::Bitcoind(format!("initial chain sync: {:?}", e.into_inner())))?
                }
                None => init::validate_best_block_header(&*block_source)
                    .await
                    .map_err(|e| ChannelError::Bitcoind(format!("best block: {:?}", e.into_inner())))?,
            };
            for (_, (monitor, ..)) in listeners.drain(..) {
                let id = monitor.channel_id();
                let on_disk = monitor.get_latest_update_id();
                // Already on disk: loaded, not written again.
                match chain_monitor.load_existing_monitor(id, monitor) {
                    Ok(ChannelMonitorUpdateStatus::Completed) => {}
                    other => return Err(NodeError::Internal(format!("could not watch channel {id}: {other:?}"))),
                }
                // Tell the ChannelManager this monitor is durable up to its latest update. A crash after a new
                // channel's first monitor reached the disk but before its persistence was reported complete left
                // the manager waiting for that completion forever: LDK tracks no in-flight update for a new
                // monitor, so nothing replays it ("Not producing channel_ready: a monitor update is in progress",
                // the funding never broadcast or the channel pending at any depth). Safe: the monitor was just
                // read from disk; updates the manager still lists beyond it keep the channel waiting until
                // they are replayed and persisted.
                if let Err(e) = chain_monitor.channel_monitor_updated(id, on_disk) {
                    return Err(NodeError::Internal(format!("could not resume channel {id}: {e:?}")));
                }
            }
            tip
        };
        let chain_synced = started.elapsed();

        // Gossip and peers.
        let gossip_sync: Arc<GossipSync> = Arc::new(P2PGossipSync::new(Arc::clone(&network_graph), None, Arc::clone(&logger)));
        let offers_gate = Arc::new(lanes_channel::offers_gate::OffersGate::new(Arc::clone(&channel_manager)));
        let onion_messenger: Arc<OnionMessenger> = Arc::new(OnionMessenger::new(
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&logger),
            Arc::clone(&channel_manager),
            Arc::clone(&message_router),
            Arc::clone(&offers_gate),
            Arc::clone(&channel_manager),
            IgnoringMessageHandler {},
            IgnoringMessageHandler {},
        ));
        // Early channel updates are kept until their announcement is in, and queries by short channel id
        // are answered (through the custom-message slot): see lanes_channel::gossip.
        let gossip_handler = Arc::new(GossipHandler::new(Arc::clone(&gossip_sync), Arc::clone(&network_graph)));
        let chan_handler = Arc::new(ChannelHandler::new(Arc::clone(&channel_manager), Arc::clone(&persister)));
        let htlcs_pending = chan_handler.htlcs_pending();
        let handlers = MessageHandler {
            chan_handler,
            route_handler: Arc::clone(&gossip_handler),
            onion_message_handler: Arc::clone(&onion_messenger),
            custom_message_handler: Arc::clone(&gossip_handler),
            send_only_message_handler: Arc::clone(&chain_monitor),
        };
        let peer_manager: Arc<PeerManager> =
            Arc::new(PeerManager::new(handlers, now.as_secs() as u32, &keys.get_secure_random_bytes(), Arc::clone(&logger), Arc::clone(&keys)));
        // Announced channels are checked against the chain (and get their capacity) from now on.
        let verifier = GossipVerifier::new(
            bitcoind.block_source(),
            TokioSpawner(tokio::runtime::Handle::current()),
            Arc::clone(&gossip_sync),
            Arc::clone(&peer_manager),
        );
        gossip_sync.add_utxo_lookup(Some(Arc::new(verifier)));
        tracing::info!(
            %node_id,
            network = %network,
            height = chain_tip.height,
            channels = channel_manager.list_channels().len(),
            monitors_ms = monitors_read.as_millis() as u64,
            manager_ms = manager_read.as_millis() as u64,
            chain_sync_ms = chain_synced.as_millis() as u64,
            "lightning state loaded"
        );

        // Services: each gets the handles it needs, nothing more.
        let bus = Arc::new(EventBus::default());
        let health = Health::default();
        let announcer = Arc::new(Announcer::new(
            node_id,
            config.alias.clone(),
            config.listen,
            Arc::clone(&channel_manager),
            Arc::clone(&peer_manager),
            Arc::clone(&network_graph),
            Arc::clone(&gossip_handler),
        ));
        let peers = Arc::new(Peers::open(&store, node_id, Arc::clone(&peer_manager), Arc::clone(&channel_manager), Arc::clone(&network_graph), Arc::clone(&bus))?);
        let splices = Arc::new(crate::splice::Splices::open(&store, Arc::clone(&channel_manager), Arc::clone(&peer_manager), Arc::clone(&wallet), network)?);
        let channels = Arc::new(Channels::open(
            &store,
            ChannelsDeps {
                splices: Arc::clone(&splices),
                node_id,
                channel_manager: Arc::clone(&channel_manager),
                chain_monitor: Arc::clone(&chain_monitor),
                peer_manager: Arc::clone(&peer_manager),
                wallet: Arc::clone(&wallet),
                keys: Arc::clone(&keys),
                bitcoind: Arc::clone(&bitcoind),
                user_config: user_config.clone(),
            },
        )?);
        let invoices = Arc::new(Invoices::open(&store, Arc::clone(&channel_manager), network)?);
        let payments = Arc::new(Payments::open(&store, Arc::clone(&channel_manager), persister.changes(), Arc::clone(&keys), node_id, network)?);
        let offers = Arc::new(crate::offers::Offers::open(&store, Arc::clone(&payments), Arc::clone(&channel_manager), network)?);
        // Invoice requests for offers we no longer take are refused before LDK answers them.
        let judge = Arc::clone(&offers);
        offers_gate.set_judge(Box::new(move |request| judge.refuse_invoice_request(request)));
        let observer = Arc::clone(&payments);
        offers_gate.set_invoice_observer(Box::new(move |invoice| observer.invoice_sent(invoice)));
        let routes = Arc::new(Routes::new(Arc::clone(&router), Arc::clone(&channel_manager), node_id));
        let learning = Arc::new(Learning::new(Arc::clone(&router), lanes_store::DynStore::clone(&store)));
        let forwards = Arc::new(Forwards::open(&store)?);
        let bumper = Arc::new(crate::anchors::bumper(Arc::clone(&bitcoind), Arc::clone(&wallet), Arc::clone(&signer), Arc::clone(&logger)));
        let funding_watch = Arc::new(crate::funding_watch::FundingWatch::open(
            &store,
            Arc::clone(&channel_manager),
            Arc::clone(&chain_monitor),
            Arc::clone(&bitcoind),
            Arc::clone(&wallet),
            Arc::clone(&channels),
        )?);
        let events = Arc::new(EventHandler {
            channels: Arc::clone(&channels),
            invoices: Arc::clone(&invoices),
            offers: Arc::clone(&offers),
            payments: Arc::clone(&payments),
            splices: Arc::clone(&splices),
            forwards: Arc::clone(&forwards),
            peers: Arc::clone(&peers),
            learning,
            announcer: Arc::clone(&announcer),
            bus: Arc::clone(&bus),
            health: health.clone(),
            channel_manager: Arc::clone(&channel_manager),
            bitcoind: Arc::clone(&bitcoind),
            wallet: Arc::clone(&wallet),
            sweeper: Arc::clone(&sweeper),
            bumper,
            funding_watch: Arc::clone(&funding_watch),
            logger: Arc::clone(&logger),
            user_config,
            trusted_0conf: config.trusted_peers_0conf.clone(),
        });
        let services = Services {
            onchain: Arc::new(Onchain::new(Arc::clone(&wallet), Arc::clone(&channel_manager))),
            graph: Arc::new(Graph::new(Arc::clone(&network_graph))),
            peers,
            channels,
            invoices,
            offers,
            splices,
            payments,
            routes,
            forwards,
            announcer,
            bus,
            events,
            funding_watch,
        };
        let known: Vec<_> = channel_manager.list_recent_payments().iter().filter_map(recent_payment_id).collect();
        services.payments.reconcile(&known)?;
        let runtime = Runtime {
            bitcoind,
            wallet,
            chain_monitor,
            channel_manager,
            peer_manager,
            onion_messenger,
            gossip_sync,
            scorer,
            logger,
            sweeper,
            persister,
            processor_store,
            sync: Arc::new(SyncStatus::default()),
            htlcs_pending,
        };
        let node = Arc::new(Node::new(config, node_id, services, runtime, health, self.role, lease));
        node.start(chain_tip, cache).await?;
        Ok(node)
    }
}

/// Refuses a store that another seed's node wrote; records this node's id in a store that has none yet.
fn check_store_owner(store: &DynStore, seed: &Seed, network: bitcoin::Network) -> Result<(), NodeError> {
    let keys = KeysManager::new(&seed.ldk_seed(network), 0, 0, false);
    let ours = keys.get_node_id(lightning::sign::Recipient::Node).map_err(|_| NodeError::Internal("no node id".into()))?;
    let (ns, key) = (layout::NODE_ID, layout::NODE_ID_KEY);
    match store.read(ns.primary, ns.secondary, key) {
        Ok(stored) if stored == ours.serialize() => Ok(()),
        Ok(stored) => Err(NodeError::Config(format!(
            "the store holds node {}'s state, but this seed is node {ours}: refusing to start (a standby needs the active node's seed)",
            crate::ids::hex(&stored)
        ))),
        Err(e) if e.kind() == lanes_store::io::ErrorKind::NotFound => {
            store.write(ns.primary, ns.secondary, key, ours.serialize().to_vec()).map_err(|e| NodeError::Store(e.into()))
        }
        Err(e) => Err(NodeError::Store(e.into())),
    }
}

fn recent_payment_id(p: &lightning::ln::channelmanager::RecentPaymentDetails) -> Option<lightning::ln::channelmanager::PaymentId> {
    use lightning::ln::channelmanager::RecentPaymentDetails as R;
    match p {
        R::AwaitingInvoice { payment_id } | R::Pending { payment_id, .. } | R::Fulfilled { payment_id, .. } | R::Abandoned { payment_id, .. } => Some(*payment_id),
    }
}

/// A ChannelMonitor as a chain listener during start-up sync.
type MonitorListener = (
    lightning::chain::channelmonitor::ChannelMonitor<lightning::sign::InMemorySigner>,
    Arc<BitcoindClient>,
    Arc<BitcoindClient>,
    Arc<LdkTracing>,
);

/// Chain listeners synced from the same block, as one (see the start-up sync in [`Builder::build`]).
struct SameBlock<'a>(Vec<&'a MonitorListener>);

impl chain::Listen for SameBlock<'_> {
    fn filtered_block_connected(&self, header: &bitcoin::block::Header, txdata: &chain::transaction::TransactionData, height: u32) {
        for l in &self.0 {
            l.filtered_block_connected(header, txdata, height);
        }
    }
    fn block_connected(&self, block: &bitcoin::Block, height: u32) {
        for l in &self.0 {
            l.block_connected(block, height);
        }
    }
    fn blocks_disconnected(&self, fork_point: BestBlock) {
        for l in &self.0 {
            l.blocks_disconnected(fork_point);
        }
    }
}

/// Everything lanesd writes is the node's user's alone: the data dir is 0700 and files made from now on are
/// 0600 (umask 077; the store and the seed create their files below it). A data dir or seed readable by others
/// (made by an older version, or by hand) is tightened, with a warning.
pub fn make_private(dir: &std::path::Path) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask(2) only sets this process's file mode mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    std::fs::create_dir_all(dir)?;
    let tighten = |path: &std::path::Path, mode: u32| -> Result<(), NodeError> {
        let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "readable by other users: making it private");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    };
    fn walk(path: &std::path::Path, tighten: &dyn Fn(&std::path::Path, u32) -> Result<(), NodeError>) -> Result<(), NodeError> {
        if !path.is_dir() {
            return tighten(path, 0o600);
        }
        tighten(path, 0o700)?;
        for entry in std::fs::read_dir(path)?.flatten() {
            walk(&entry.path(), tighten)?;
        }
        Ok(())
    }
    walk(dir, &tighten)
}

/// sat/vB to sat per 1000 weight units.
fn sat_per_vb_to_kw(sat_per_vb: u64) -> u32 {
    (sat_per_vb.saturating_mul(250)).min(u32::MAX as u64) as u32
}

/// The operator's dust exposure policy holds for channels opened before it was set too (LDK keeps a
/// per-channel copy of the policy it was opened with).
fn apply_dust_policy(cm: &ChannelManager, config: &UserConfig) {
    let wanted = config.channel_config.max_dust_htlc_exposure;
    let stale: Vec<_> = cm.list_channels().into_iter().filter(|c| c.config.is_some_and(|cfg| cfg.max_dust_htlc_exposure != wanted)).collect();
    let update = lightning::util::config::ChannelConfigUpdate { max_dust_htlc_exposure_msat: Some(wanted), ..Default::default() };
    if let Err(e) = crate::channels::update_configs(cm, &stale, &update) {
        tracing::warn!(error = ?e, "could not apply the dust exposure policy to existing channels");
    }
}

/// Channel policy defaults, as an LND or ldk-node user would expect them, with the operator's settings.
fn user_config(config: &Config) -> UserConfig {
    let mut c = UserConfig::default();
    // LND and CLN forward into private channels (wallets such as Electrum have only those).
    c.accept_forwards_to_priv_channels = config.forward_to_private_channels;
    c.channel_config.max_dust_htlc_exposure = match config.fees.dust_exposure {
        crate::config::DustExposure::Multiplier(m) => lightning::util::config::MaxDustHTLCExposure::FeeRateMultiplier(m),
        crate::config::DustExposure::FixedMsat(msat) => lightning::util::config::MaxDustHTLCExposure::FixedLimitMsat(msat),
    };
    c.accept_inbound_channels = true;
    c.channel_handshake_limits.force_announced_channel_preference = false;
    // Anchor outputs let a channel's closing transactions get their fee when they are needed (from
    // the wallet), instead of one guessed when the state was signed. LDK needs inbound anchor channels
    // accepted by hand: the event handler accepts them (node::events).
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = true;
    c.manually_accept_inbound_channels = true;
    // LDK's default lets only 10% of a channel be in flight at once; LND and CLN allow all of it, and a
    // user opening a 1 BTC channel expects to be able to send most of it in one payment.
    c.channel_handshake_config.max_inbound_htlc_value_in_flight_percent_of_channel = 100;
    // LND's default HTLC slots (the protocol's maximum), not LDK's 50: a peer sending many payments at once
    // should wait on liquidity, not on a slot count.
    c.channel_handshake_config.our_max_accepted_htlcs = config.max_accepted_htlcs;
    c.reject_inbound_splices = config.reject_inbound_splices;
    c
}

fn read_network_graph(store: &DynStore, network: bitcoin::Network, logger: &Arc<LdkTracing>) -> Result<NetworkGraph, NodeError> {
    match store.read(NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_KEY) {
        Ok(bytes) => {
            let g = NetworkGraph::read(&mut lightning::io::Cursor::new(bytes), Arc::clone(logger))
                .map_err(|e| ChannelError::Decode { what: "network graph", reason: format!("{e:?}") })?;
            Ok(g)
        }
        Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => Ok(NetworkGraph::new(network, Arc::clone(logger))),
        Err(e) => Err(ChannelError::Store(e.into()).into()),
    }
}

fn read_scorer(store: &DynStore, graph: &Arc<NetworkGraph>, logger: &Arc<LdkTracing>) -> Result<Scorer, NodeError> {
    let params = ProbabilisticScoringDecayParameters::default();
    match store.read(SCORER_PERSISTENCE_PRIMARY_NAMESPACE, SCORER_PERSISTENCE_SECONDARY_NAMESPACE, SCORER_PERSISTENCE_KEY) {
        Ok(bytes) => Scorer::read(&mut lightning::io::Cursor::new(bytes), (params, Arc::clone(graph), Arc::clone(logger)))
            .map_err(|e| ChannelError::Decode { what: "scorer", reason: format!("{e:?}") }.into()),
        Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => Ok(Scorer::new(params, Arc::clone(graph), Arc::clone(logger))),
        Err(e) => Err(ChannelError::Store(e.into()).into()),
    }
}

fn read_sweeper(
    store: &Arc<ProcessorStore>,
    bitcoind: &Arc<BitcoindClient>,
    keys: &Arc<KeysManager>,
    wallet: &Arc<OnchainWallet>,
    logger: &Arc<LdkTracing>,
    tip: lanes_channel::bitcoind::Tip,
) -> Result<(BlockHash, Sweeper), NodeError> {
    use lightning::util::persist::{OUTPUT_SWEEPER_PERSISTENCE_KEY, OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE};
    let change = Arc::new(WalletChange(Arc::clone(wallet)));
    match store.read(OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_KEY) {
        Ok(bytes) => {
            let args = (Arc::clone(bitcoind), Arc::clone(bitcoind), None, Arc::clone(keys), change, Arc::clone(store), Arc::clone(logger));
            let (best, sweeper) = <(BestBlock, Sweeper)>::read(&mut lightning::io::Cursor::new(bytes), args)
                .map_err(|e| ChannelError::Decode { what: "output sweeper", reason: format!("{e:?}") })?;
            Ok((best.block_hash, sweeper))
        }
        Err(e) if e.kind() == lightning::io::ErrorKind::NotFound => {
            let best = BestBlock::new(tip.hash, tip.height);
            let sweeper = Sweeper::new(best, Arc::clone(bitcoind), Arc::clone(bitcoind), None, Arc::clone(keys), change, Arc::clone(store), Arc::clone(logger));
            Ok((tip.hash, sweeper))
        }
        Err(e) => Err(ChannelError::Store(e.into()).into()),
    }
}
