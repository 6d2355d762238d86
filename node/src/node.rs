//! A running lanes node: the components the builder wired, their background tasks, and the queries
//! and commands the API calls.
//!
//! Owns: starting and stopping the background tasks in a safe order. Must never: parse API input
//! (the API module does) or build components (the builder does).
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bitcoin::secp256k1::PublicKey;
use lightning_background_processor::{process_events_async_with_kv_store_sync, GossipSync as BpGossipSync, NO_LIQUIDITY_MANAGER};
use lightning_block_sync::poll::ValidatedBlockHeader;
use lightning_block_sync::UnboundedCache;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::{OrderedPersister, ProcessorStore};
use lanes_channel::types::{ChainMonitor, ChannelManager, GossipHandler, GossipSync, NetworkGraph, OnionMessenger, PeerManager, Scorer};
use lanes_wallet::OnchainWallet;

use crate::builder::CHAIN_POLL;
use crate::channels::Channels;
use crate::events::EventBus;
use crate::forwards::Forwards;
use crate::invoice::Invoices;
use crate::payments::Payments;
use crate::peers::Peers;
use crate::watcher::{self, SyncStatus};
use crate::{Config, NodeError};

/// How often fee estimates are refreshed from bitcoind.
const FEE_REFRESH: Duration = Duration::from_secs(30);

/// A running node. Built by [`crate::Builder`].
pub struct Node {
    pub(crate) config: Config,
    pub(crate) node_id: PublicKey,
    /// The store every owner writes through (each write durable before it returns).
    pub(crate) store: lanes_store::DynStore,
    pub(crate) bitcoind: Arc<BitcoindClient>,
    pub(crate) wallet: Arc<OnchainWallet>,
    pub(crate) keys: Arc<lightning::sign::KeysManager>,
    pub(crate) chain_monitor: Arc<ChainMonitor>,
    pub(crate) channel_manager: Arc<ChannelManager>,
    pub(crate) peer_manager: Arc<PeerManager>,
    pub(crate) onion_messenger: Arc<OnionMessenger>,
    pub(crate) gossip_sync: Arc<GossipSync>,
    /// What the peer manager hands gossip to, and sends our own gossip through.
    pub(crate) gossip_handler: Arc<GossipHandler>,
    pub(crate) network_graph: Arc<NetworkGraph>,
    pub(crate) scorer: Arc<RwLock<Scorer>>,
    pub(crate) logger: Arc<LdkTracing>,
    pub(crate) sweeper: Arc<Sweeper>,
    pub(crate) router: Arc<lanes_channel::types::Router>,
    pub(crate) bumper: crate::anchors::Bumper,
    pub(crate) persister: Arc<OrderedPersister>,
    /// What LDK's background processor and sweeper persist through (manager writes are ordered).
    pub(crate) processor_store: Arc<ProcessorStore>,
    pub(crate) user_config: lightning::util::config::UserConfig,
    pub(crate) sync: Arc<SyncStatus>,
    pub(crate) peers: Peers,
    pub(crate) channels: Channels,
    pub(crate) invoices: Invoices,
    pub(crate) payments: Payments,
    pub(crate) forwards: Forwards,
    pub(crate) bus: EventBus,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Set once, when the node can no longer persist: the daemon then exits at once with an error.
    pub(crate) fatal: watch::Sender<Option<String>>,
    pub(crate) tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

/// What GetInfo reports.
#[derive(Clone, Debug)]
pub struct Info {
    pub node_id: PublicKey,
    pub network: bitcoin::Network,
    pub block_height: u32,
    pub block_hash: bitcoin::BlockHash,
    pub synced_to_chain: bool,
    pub num_peers: u32,
    pub num_active_channels: u32,
    pub num_pending_channels: u32,
    pub listen_addr: std::net::SocketAddr,
    pub num_closing_channels: u32,
    pub claimable_sat: u64,
}

impl Node {
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn wallet(&self) -> &Arc<OnchainWallet> {
        &self.wallet
    }

    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// Starts the background tasks: chain, wallet and fee following, the peer listener, and LDK's
    /// event processing (which also persists the ChannelManager, graph and scorer when they change).
    pub(crate) async fn start(self: &Arc<Self>, tip: ValidatedBlockHeader, cache: UnboundedCache) -> Result<(), NodeError> {
        let mut tasks = Vec::new();
        let rx = || self.shutdown.subscribe();

        tasks.push((
            "chain",
            tokio::spawn(watcher::follow_chain(
                Arc::clone(&self.bitcoind),
                Arc::clone(&self.chain_monitor),
                Arc::clone(&self.channel_manager),
                Arc::clone(&self.sweeper),
                tip,
                cache,
                Arc::clone(&self.sync),
                CHAIN_POLL,
                rx(),
            )),
        ));
        tasks.push(("wallet", tokio::spawn(watcher::follow_wallet(Arc::clone(&self.wallet), Arc::clone(&self.sync), CHAIN_POLL, rx()))));
        tasks.push(("fees", tokio::spawn(watcher::follow_fees(Arc::clone(&self.bitcoind), FEE_REFRESH, rx()))));
        tasks.push((
            "rebroadcast",
            tokio::spawn(watcher::rebroadcast(Arc::clone(&self.bitcoind), Arc::clone(&self.channel_manager), CHAIN_POLL, rx())),
        ));

        let fd_limit = crate::listener::raise_fd_limit();
        let listener = tokio::net::TcpListener::bind(self.config.listen).await?;
        tracing::info!(addr = %self.config.listen, open_file_limit = fd_limit, "listening for Lightning peers");
        tasks.push(("p2p", tokio::spawn(crate::listener::accept_peers(listener, Arc::clone(&self.peer_manager), fd_limit, rx()))));

        tasks.push(("peers", tokio::spawn(Peers::maintain(Arc::clone(self), rx()))));
        tasks.push(("announce", tokio::spawn(crate::announce::maintain(Arc::clone(self), rx()))));
        tasks.push(("persist", tokio::spawn(flush_on_demand(Arc::clone(&self.persister), self.fatal.clone(), rx()))));

        let handler_node = Arc::clone(self);
        let fatal_tx = self.fatal.clone();
        let stop = rx();
        let sleeper = move |d: Duration| {
            let mut stop = stop.clone();
            Box::pin(async move { watcher::wait(&mut stop, d).await })
        };
        let bp = process_events_async_with_kv_store_sync(
            Arc::clone(&self.processor_store),
            move |e| {
                let node = Arc::clone(&handler_node);
                async move { crate::events::handle(&node, e).await }
            },
            Arc::clone(&self.chain_monitor),
            Arc::clone(&self.channel_manager),
            Some(Arc::clone(&self.onion_messenger)),
            BpGossipSync::p2p(Arc::clone(&self.gossip_sync)),
            Arc::clone(&self.peer_manager),
            NO_LIQUIDITY_MANAGER,
            Some(Arc::clone(&self.sweeper)),
            Arc::clone(&self.logger),
            Some(Arc::clone(&self.scorer)),
            sleeper,
            false,
            || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok(),
        );
        tasks.push((
            "events",
            tokio::spawn(async move {
                if let Err(e) = bp.await {
                    // Persisting failed: the node must not go on acknowledging state it cannot store.
                    fatal(&fatal_tx, format!("persisting the channel state failed: {e}"));
                }
            }),
        ));
        *self.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(())
    }

    /// Announces the node (alias, listen address) to the network; LDK only sends it once we have a
    /// public channel, and peers only accept it then.
    pub(crate) fn announce(&self) {
        if !self.channel_manager.list_channels().iter().any(|c| c.is_announced) {
            return;
        }
        let mut alias = [0u8; 32];
        let a = self.config.alias.as_bytes();
        alias[..a.len()].copy_from_slice(a);
        let addrs = match self.config.listen {
            std::net::SocketAddr::V4(v4) if !v4.ip().is_unspecified() => {
                vec![lightning::ln::msgs::SocketAddress::TcpIpV4 { addr: v4.ip().octets(), port: v4.port() }]
            }
            _ => vec![],
        };
        self.peer_manager.broadcast_node_announcement([0, 0, 0], alias, addrs);
    }

    /// Keeps what the router learned across restarts (best effort: losing it only costs retries).
    pub(crate) fn save_router_scorer(&self) {
        let bytes = self.router.scorer_bytes();
        if let Err(e) = self.store.write(crate::builder::ROUTER_NAMESPACE, "", crate::builder::ROUTER_SCORER_KEY, bytes) {
            tracing::warn!(error = %e, "saving the router's scorer failed");
        }
    }

    /// A snapshot of identity, chain position and counts.
    pub fn info(&self) -> Info {
        let best = self.channel_manager.current_best_block();
        let wallet_height = self.wallet.synced_height();
        let channels = self.channel_manager.list_channels();
        let closing: Vec<u64> = self
            .channels
            .closed_list(self)
            .unwrap_or_default()
            .iter()
            .map(|c| c.claimable_sat)
            .filter(|sat| *sat > 0)
            .collect();
        // Outputs the monitors handed to the sweeper leave their claimable balances but reach the wallet only
        // once a sweep is broadcast (then the wallet counts them): until then they are still on their way back.
        let to_sweep: u64 = self
            .sweeper
            .tracked_spendable_outputs()
            .iter()
            .filter(|o| matches!(o.status, lightning::util::sweep::OutputSpendStatus::PendingInitialBroadcast { .. }))
            .map(|o| crate::events::output_value(&o.descriptor))
            .sum();
        Info {
            num_closing_channels: closing.len() as u32,
            claimable_sat: closing.iter().sum::<u64>() + to_sweep,
            node_id: self.node_id,
            network: self.config.network,
            block_height: best.height.min(wallet_height),
            block_hash: best.block_hash,
            synced_to_chain: self.sync.lightning_synced() && self.sync.wallet_synced() && wallet_height == best.height,
            num_peers: self.peer_manager.list_peers().len() as u32,
            num_active_channels: channels.iter().filter(|c| c.is_usable).count() as u32,
            num_pending_channels: channels.iter().filter(|c| !c.is_channel_ready).count() as u32,
            listen_addr: self.config.listen,
        }
    }

    /// Asks every task to stop, waits for them (LDK's processor persists the ChannelManager, graph and
    /// scorer on its way out), then writes the ChannelManager once more. The store needs no flush: every
    /// write and non-lazy remove is on disk before it returns (lazy removes LDK replays).
    pub async fn stop(&self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for (name, task) in tasks {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(_) => tracing::debug!(task = name, "stopped"),
                Err(_) => tracing::warn!(task = name, "did not stop within 20 s"),
            }
        }
        self.peer_manager.disconnect_all_peers();
        self.persister.flush().map_err(|e| NodeError::Internal(format!("persisting the channel state: {e}")))?;
        tracing::info!(node_id = %self.node_id, "stopped");
        Ok(())
    }
}

/// Records that the node cannot go on (it can no longer persist), once, with an ERROR line; the daemon exits
/// with an error at once, and a supervisor restarts it. Nothing acknowledged to a peer or a caller is lost:
/// what could not be written was never acknowledged (LDK holds the messages that depend on it).
pub(crate) fn fatal(tx: &watch::Sender<Option<String>>, reason: String) {
    tx.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        tracing::error!(reason = %reason, "fatal: the node cannot persist its state; stopping");
        *current = Some(reason);
        true
    });
}

impl Node {
    /// Stops the node as unable to go on (see [`fatal`]).
    pub(crate) fn fail(&self, reason: String) {
        fatal(&self.fatal, reason)
    }

    /// Waits until the node hits a fatal error; returns why.
    pub async fn fatal_error(&self) -> String {
        let mut rx = self.fatal.subscribe();
        let reason = match rx.wait_for(|f| f.is_some()).await {
            Ok(f) => f.clone().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if reason.is_empty() {
            return std::future::pending().await;
        }
        reason
    }
}

/// Flushes queued channel state (manager, then monitors) as soon as there is some, until shutdown. A flush
/// that fails is fatal: sled's errors are sticky (a full disk stays an error after space is freed), so
/// retrying would only keep a zombie that acknowledges nothing.
async fn flush_on_demand(persister: Arc<OrderedPersister>, fatal_tx: watch::Sender<Option<String>>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = persister.wanted() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let p = Arc::clone(&persister);
        match tokio::task::spawn_blocking(move || p.flush()).await {
            Ok(Ok(())) => {}
            // Updates stay queued and LDK keeps holding the messages that depend on them.
            Ok(Err(e)) => {
                fatal(&fatal_tx, format!("writing channel state failed: {e}"));
                return;
            }
            Err(e) => tracing::error!(error = %e, "the persist task failed"),
        }
    }
}

/// LDK's sweeper: claims outputs of closed channels into the on-chain wallet.
pub type Sweeper = lightning::util::sweep::OutputSweeperSync<
    Arc<BitcoindClient>,
    Arc<WalletChange>,
    Arc<BitcoindClient>,
    Arc<lanes_channel::types::ChainFilter>,
    Arc<ProcessorStore>,
    Arc<LdkTracing>,
    Arc<lightning::sign::KeysManager>,
>;

/// Where swept funds go: a fresh change address of the on-chain wallet.
pub struct WalletChange(pub Arc<OnchainWallet>);

impl lightning::sign::ChangeDestinationSourceSync for WalletChange {
    fn get_change_destination_script(&self) -> Result<bitcoin::ScriptBuf, ()> {
        self.0.new_change_script().map_err(|e| tracing::error!(error = %e, "no change address for a sweep"))
    }
}
