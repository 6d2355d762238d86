//! A running lanes node: a facade over the services the builder wired, and their background tasks.
//!
//! Owns: starting and stopping the background tasks in a safe order, handing out the services
//! (`node.payments()`, `node.channels()`, …) and the GetInfo snapshot that spans them. Must never: parse
//! API input (the API does), hold policy (the services do) or build components (the builder does).
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use lightning_block_sync::poll::ValidatedBlockHeader;
use lightning_block_sync::UnboundedCache;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::{OrderedPersister, ProcessorStore};
use lanes_channel::types::{ChainMonitor, ChannelManager, GossipSync, OnionMessenger, PeerManager, Scorer};
use lanes_wallet::OnchainWallet;

use crate::announce::Announcer;
use crate::bus::EventBus;
use crate::channels::Channels;
use crate::config::{CHAIN_POLL, FEE_REFRESH};
use crate::events::EventHandler;
use crate::forwards::Forwards;
use crate::graph::Graph;
use crate::lease::{Lease, RoleInfo, RoleState};
use crate::health::Health;
use crate::invoice::Invoices;
use crate::onchain::Onchain;
use crate::payments::Payments;
use crate::peers::Peers;
use crate::routes::Routes;
use crate::sweep::Sweeper;
use crate::watcher::{self, SyncStatus};
use crate::{Config, NodeError};

/// The services, each with the handles it needs (built by [`crate::Builder`]).
pub struct Services {
    pub onchain: Arc<Onchain>,
    pub peers: Arc<Peers>,
    pub channels: Arc<Channels>,
    pub invoices: Arc<Invoices>,
    pub offers: Arc<crate::offers::Offers>,
    pub splices: Arc<crate::splice::Splices>,
    pub payments: Arc<Payments>,
    pub routes: Arc<Routes>,
    pub graph: Arc<Graph>,
    pub forwards: Arc<Forwards>,
    pub announcer: Arc<Announcer>,
    pub bus: Arc<EventBus>,
    pub events: Arc<EventHandler>,
    pub funding_watch: Arc<crate::funding_watch::FundingWatch>,
}

/// What the background tasks run on: LDK's objects the services do not expose.
pub struct Runtime {
    /// Woken when committed HTLCs wait to be forwarded or received (see `lanes_channel::handler`).
    pub htlcs_pending: Arc<tokio::sync::Notify>,
    pub bitcoind: Arc<BitcoindClient>,
    pub wallet: Arc<OnchainWallet>,
    pub chain_monitor: Arc<ChainMonitor>,
    pub channel_manager: Arc<ChannelManager>,
    pub peer_manager: Arc<PeerManager>,
    pub onion_messenger: Arc<OnionMessenger>,
    pub gossip_sync: Arc<GossipSync>,
    pub scorer: Arc<RwLock<Scorer>>,
    pub logger: Arc<LdkTracing>,
    pub sweeper: Arc<Sweeper>,
    pub persister: Arc<OrderedPersister>,
    /// What the event processor (graph, scorer) and LDK's sweeper persist through (manager writes are ordered).
    pub processor_store: Arc<ProcessorStore>,
    pub sync: Arc<SyncStatus>,
}

/// A running node. Built by [`crate::Builder`].
pub struct Node {
    config: Config,
    node_id: PublicKey,
    services: Services,
    rt: Runtime,
    health: Health,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
    /// This instance's role, and the database lease it holds (PostgreSQL store), released at a clean stop.
    role: Arc<RoleState>,
    lease: Mutex<Option<Lease>>,
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
    pub routes_by_lanes: u64,
    pub routes_by_ldk_fallback: u64,
    pub role: RoleInfo,
}

impl Node {
    pub(crate) fn new(config: Config, node_id: PublicKey, services: Services, rt: Runtime, health: Health, role: Arc<RoleState>, lease: Option<Lease>) -> Self {
        Self { config, node_id, services, rt, health, shutdown: watch::channel(false).0, tasks: Default::default(), role, lease: Mutex::new(lease) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    pub fn onchain(&self) -> &Arc<Onchain> {
        &self.services.onchain
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.services.peers
    }

    pub fn channels(&self) -> &Arc<Channels> {
        &self.services.channels
    }

    pub fn invoices(&self) -> &Arc<Invoices> {
        &self.services.invoices
    }

    pub fn splices(&self) -> &Arc<crate::splice::Splices> {
        &self.services.splices
    }

    pub fn offers(&self) -> &Arc<crate::offers::Offers> {
        &self.services.offers
    }

    pub fn payments(&self) -> &Arc<Payments> {
        &self.services.payments
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.services.routes
    }

    pub fn graph(&self) -> &Arc<Graph> {
        &self.services.graph
    }

    pub fn forwards(&self) -> &Arc<Forwards> {
        &self.services.forwards
    }

    pub fn events(&self) -> &Arc<EventBus> {
        &self.services.bus
    }

    /// Starts the background tasks: chain, wallet and fee following, the peer listener, and LDK's
    /// event processing (`crate::processor`), and the flush that writes the ChannelManager with its monitors.
    pub(crate) async fn start(&self, tip: ValidatedBlockHeader, cache: UnboundedCache) -> Result<(), NodeError> {
        let rt = &self.rt;
        let mut tasks = Vec::new();
        let rx = || self.shutdown.subscribe();

        tasks.push((
            "chain",
            tokio::spawn(watcher::follow_chain(
                Arc::clone(&rt.bitcoind),
                Arc::clone(&rt.chain_monitor),
                Arc::clone(&rt.channel_manager),
                Arc::clone(&rt.sweeper),
                tip,
                cache,
                Arc::clone(&rt.sync),
                CHAIN_POLL,
                rx(),
            )),
        ));
        tasks.push(("wallet", tokio::spawn(watcher::follow_wallet(Arc::clone(&rt.wallet), Arc::clone(&rt.sync), CHAIN_POLL, rx()))));
        tasks.push(("fees", tokio::spawn(watcher::follow_fees(Arc::clone(&rt.bitcoind), FEE_REFRESH, rx()))));
        tasks.push(("rebroadcast", tokio::spawn(watcher::rebroadcast(Arc::clone(&rt.bitcoind), Arc::clone(&rt.channel_manager), CHAIN_POLL, rx()))));
        let fundings = Arc::clone(&self.services.funding_watch);
        tasks.push(("fundings", tokio::spawn(crate::funding_watch::follow(fundings, Arc::clone(&rt.channel_manager), CHAIN_POLL, rx()))));

        let fd_limit = crate::listener::raise_fd_limit();
        let listener = tokio::net::TcpListener::bind(self.config.listen).await?;
        tracing::info!(addr = %self.config.listen, open_file_limit = fd_limit, "listening for Lightning peers");
        tasks.push(("p2p", tokio::spawn(crate::listener::accept_peers(listener, Arc::clone(&rt.peer_manager), fd_limit, rx()))));

        tasks.push(("peers", tokio::spawn(Arc::clone(&self.services.peers).maintain(rx()))));
        tasks.push(("announce", tokio::spawn(Arc::clone(&self.services.announcer).maintain(rx()))));
        tasks.push(("persist", tokio::spawn(flush_on_demand(Arc::clone(&rt.persister), Arc::clone(&rt.peer_manager), self.health.clone(), rx()))));

        let htlcs = process_htlcs(Arc::clone(&rt.channel_manager), Arc::clone(&rt.htlcs_pending), self.config.htlc_delay, rx());
        tasks.push(("htlcs", tokio::spawn(htlcs)));

        let processor = crate::processor::Processor {
            channel_manager: Arc::clone(&rt.channel_manager),
            chain_monitor: Arc::clone(&rt.chain_monitor),
            onion_messenger: Arc::clone(&rt.onion_messenger),
            peer_manager: Arc::clone(&rt.peer_manager),
            gossip_sync: Arc::clone(&rt.gossip_sync),
            scorer: Arc::clone(&rt.scorer),
            sweeper: Arc::clone(&rt.sweeper),
            persister: Arc::clone(&rt.persister),
            store: Arc::clone(&rt.processor_store),
            learning: Arc::clone(&self.services.events.learning),
            handler: Arc::clone(&self.services.events),
        };
        tasks.push(("events", tokio::spawn(processor.run(rx()))));
        *self.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(())
    }

    /// A snapshot of identity, chain position and counts.
    pub fn info(&self) -> Info {
        let rt = &self.rt;
        let best = rt.channel_manager.current_best_block();
        let wallet_height = rt.wallet.synced_height();
        let channels = rt.channel_manager.list_channels();
        let closing: Vec<u64> =
            self.services.channels.closed_list().unwrap_or_default().iter().map(|c| c.claimable_sat).filter(|sat| *sat > 0).collect();
        let routed = self.services.routes.counts();
        Info {
            num_closing_channels: closing.len() as u32,
            claimable_sat: closing.iter().sum::<u64>() + crate::sweep::awaiting_first_sweep_sat(&rt.sweeper),
            node_id: self.node_id,
            network: self.config.network,
            block_height: best.height.min(wallet_height),
            block_hash: best.block_hash,
            synced_to_chain: rt.sync.lightning_synced() && rt.sync.wallet_synced() && wallet_height == best.height,
            num_peers: rt.peer_manager.list_peers().len() as u32,
            num_active_channels: channels.iter().filter(|c| c.is_usable).count() as u32,
            num_pending_channels: channels.iter().filter(|c| !c.is_channel_ready).count() as u32,
            listen_addr: self.config.listen,
            routes_by_lanes: routed.found,
            routes_by_ldk_fallback: routed.fell_back,
            role: self.role.get(),
        }
    }

    /// Asks every task to stop, waits for them (the event processor writes the graph and scorer on its way
    /// out), then writes the ChannelManager (and any queued monitors) last. The
    /// store needs no flush: every write and non-lazy remove is on disk before it returns (lazy removes LDK
    /// replays).
    pub async fn stop(&self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for (name, task) in tasks {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(_) => tracing::debug!(task = name, "stopped"),
                Err(_) => tracing::warn!(task = name, "did not stop within 20 s"),
            }
        }
        self.rt.peer_manager.disconnect_all_peers();
        self.rt.persister.flush().map_err(|e| NodeError::Internal(format!("persisting the channel state: {e}")))?;
        // Nothing else to flush: every store write is durable before it returns. Only now may a standby
        // take over: everything this instance acknowledged is in the database.
        if let Some(lease) = self.lease.lock().unwrap_or_else(|p| p.into_inner()).take() {
            lease.release();
        }
        tracing::info!(node_id = %self.node_id, "stopped");
        Ok(())
    }

    /// Waits until the node hits a fatal error; returns why.
    pub async fn fatal_error(&self) -> String {
        self.health.failed().await
    }
}

/// How long HTLCs LDK could not process at once (a payment waiting to retry) wait before the next try, so a
/// pending retry cannot make this task spin; the event processor (`crate::processor`) asks again meanwhile too.
const HTLC_BACKOFF: Duration = Duration::from_millis(50);

/// Until shutdown: forwards and receives committed HTLCs as soon as they are pending (after `delay`),
/// instead of on the random ~50 ms timer of LDK's background processor, which every payment waited for at every
/// hop. Ordering: LDK only queues an HTLC here once the revoke_and_ack that commits it, and its monitor
/// update, are durable.
async fn process_htlcs(channel_manager: Arc<ChannelManager>, pending: Arc<tokio::sync::Notify>, delay: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = pending.notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if !delay.is_zero() && watcher::wait(&mut shutdown, delay).await {
            return;
        }
        channel_manager.process_pending_htlc_forwards();
        if channel_manager.needs_pending_htlc_processing() && watcher::wait(&mut shutdown, HTLC_BACKOFF).await {
            return;
        }
    }
}

/// Flushes queued channel state (manager, then monitors) as soon as there is some, until shutdown. A flush
/// that fails is fatal: the store's errors may be sticky (sled's are: a full disk stays an error after space is freed), so
/// retrying would only keep a zombie that acknowledges nothing.
async fn flush_on_demand(persister: Arc<OrderedPersister>, peer_manager: Arc<PeerManager>, health: Health, mut shutdown: watch::Receiver<bool>) {
    loop {
        let for_monitors = tokio::select! {
            // Monitor updates: at once, LDK holds messages until they are on disk.
            _ = persister.wanted() => true,
            // Only the manager changed: coalesced, at most one flush per interval (see ProcessorStore).
            _ = persister.manager_wanted() => false,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        // A manager change waits out its interval, unless a monitor change is queued meanwhile. A wake-up for
        // monitor changes a flush already took (see `flush_at_once`) does not cut the wait short.
        if !persister.flush_at_once(for_monitors) {
            loop {
                let rest = persister.manager_write_interval().saturating_sub(persister.since_last_flush());
                if rest.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(rest) => break,
                    _ = persister.wanted() => {
                        if persister.flush_at_once(true) {
                            break;
                        }
                    }
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
        if !persister.has_work() {
            continue;
        }
        let (p, pm) = (Arc::clone(&persister), Arc::clone(&peer_manager));
        let flushed = move || {
            let completed = p.flush()?;
            // What waited on these updates (the next commitment_signed or revoke_and_ack, a held funding_signed)
            // goes to the peers now: the peer manager asks the ChannelManager, which takes the completions from
            // the ChainMonitor. Left to the event loop, it went out only after every event pending then was
            // handled (payments' records written, their waiters woken), at every step of the commitment dance.
            if completed > 0 {
                pm.process_events();
            }
            Ok::<_, std::io::Error>(())
        };
        match tokio::task::spawn_blocking(flushed).await {
            Ok(Ok(())) => {}
            // Updates stay queued and LDK keeps holding the messages that depend on them.
            Ok(Err(e)) => {
                health.fail(format!("writing channel state failed: {e}"));
                return;
            }
            Err(e) => tracing::error!(error = %e, "the persist task failed"),
        }
    }
}
