//! LDK's event processing and periodic calls, without its ChannelManager writes.
//!
//! Owns: handing the events of the ChannelManager, the ChainMonitor and the OnionMessenger to the event
//! handler; feeding payment path outcomes to the network graph and the scorer; LDK's periodic calls (the
//! manager's and the peers' timer ticks, claim rebroadcasts, sweeps, graph pruning); writing the graph and
//! the scorers (LDK's, and lanes' router's through [`Learning`]). Telling the ordered persister when the
//! manager changed.
//!
//! Why not LDK's background processor: whenever the manager changed it encodes the whole manager to write
//! it. lanes writes the manager only in its ordered flush (`lanes_channel::persist`), with the monitors it
//! covers, so those bytes were thrown away. With 1,000 channels (a 3.1 MB manager, 13 ms to encode) that
//! encoding was 44% of the node's CPU during payments, and held the manager's locks meanwhile. The calls
//! below are the processor's, in its order; a changed manager only marks the persister.
//!
//! Must never: write the ChannelManager (only the ordered flush does), or keep a payment's event waiting on
//! a disk write (the scorers are written on a timer, not after every payment as LDK's processor does).
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use lightning::events::{Event, PathFailure};
use lightning::ln::msgs::OnionMessageHandler;
use lightning::routing::scoring::ScoreUpdate;
use lightning::util::persist::{
    KVStoreSync, NETWORK_GRAPH_PERSISTENCE_KEY, NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE,
    SCORER_PERSISTENCE_KEY, SCORER_PERSISTENCE_PRIMARY_NAMESPACE, SCORER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::Writeable;
use tokio::sync::watch;
use tokio::time::Instant;

use lanes_channel::persist::{OrderedPersister, ProcessorStore};
use lanes_channel::types::{ChainMonitor, ChannelManager, GossipSync, OnionMessenger, PeerManager, Scorer};

use crate::events::EventHandler;
use crate::routes::Learning;
use crate::sweep::Sweeper;

/// The manager's timer tick: payment retries and timeouts, idempotency expiry, channel update broadcasts.
const MANAGER_TICK: Duration = Duration::from_secs(60);
/// Peer pings and the onion messenger's tick.
const PEER_TICK: Duration = Duration::from_secs(10);
/// Pending on-chain claims re-broadcast (fee bumps), and sweeps regenerated.
const CLAIMS_TICK: Duration = Duration::from_secs(30);
/// The first graph prune (and write), then every [`PRUNE_EVERY`].
const FIRST_PRUNE: Duration = Duration::from_secs(60);
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// The scorers are written at most this often when they learned something, and at shutdown: a crash loses at
/// most this much of what payments taught them (no money, only route preferences).
const SCORER_WRITE_EVERY: Duration = Duration::from_secs(60);
/// While HTLCs wait to be processed, LDK is asked again at least this often (`process_htlcs` in
/// `crate::node` does it as soon as they are pending; this is the fallback LDK's processor had).
const HTLC_FALLBACK: Duration = Duration::from_millis(100);
/// The longest the loop sleeps with nothing to do.
const IDLE: Duration = Duration::from_secs(1);

/// What the processor drives: LDK's objects, the event handler, and where graph and scorer are written.
pub struct Processor {
    pub channel_manager: Arc<ChannelManager>,
    pub chain_monitor: Arc<ChainMonitor>,
    pub onion_messenger: Arc<OnionMessenger>,
    pub peer_manager: Arc<PeerManager>,
    pub gossip_sync: Arc<GossipSync>,
    pub scorer: Arc<RwLock<Scorer>>,
    pub sweeper: Arc<Sweeper>,
    pub persister: Arc<OrderedPersister>,
    pub store: Arc<ProcessorStore>,
    /// What payments taught lanes' router: fed by the handler, written here.
    pub learning: Arc<Learning>,
    pub handler: Arc<EventHandler>,
}

fn now() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

impl Processor {
    /// Until shutdown; then writes the graph and the scorer.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        self.channel_manager.timer_tick_occurred();
        self.chain_monitor.rebroadcast_pending_claims();
        self.scorer.write().unwrap_or_else(|p| p.into_inner()).time_passed(now());
        let start = Instant::now();
        let (mut manager_tick, mut peer_tick, mut claims_tick) = (start + MANAGER_TICK, start + PEER_TICK, start + CLAIMS_TICK);
        let (mut prune, mut scorer_write) = (start + FIRST_PRUNE, start + SCORER_WRITE_EVERY);
        let mut scorer_dirty = false;
        let mut htlcs_asked = start;
        loop {
            // Events first, as LDK's processor: a handler that fails asks LDK to replay the event later.
            let learned = std::sync::atomic::AtomicBool::new(false);
            let handle = |event: Event| {
                if self.learn(&event) {
                    learned.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let handler = Arc::clone(&self.handler);
                async move { handler.handle(event).await }
            };
            self.channel_manager.process_pending_events_async(&handle).await;
            self.chain_monitor.process_pending_events_async(&handle).await;
            self.onion_messenger.process_pending_events_async(|e| Box::pin(handle(e))).await;
            scorer_dirty |= learned.into_inner();
            // Last, as in LDK's processor: it may wait on the manager's locks.
            self.peer_manager.process_events();
            if self.channel_manager.needs_pending_htlc_processing() && htlcs_asked.elapsed() >= HTLC_FALLBACK {
                self.channel_manager.process_pending_htlc_forwards();
                htlcs_asked = Instant::now();
            }

            let idle = if self.channel_manager.needs_pending_htlc_processing() { HTLC_FALLBACK } else { IDLE };
            tokio::select! {
                _ = self.channel_manager.get_event_or_persistence_needed_future() => {}
                _ = self.chain_monitor.get_update_future() => {}
                _ = self.onion_messenger.get_update_future() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            // The manager changed: the ordered flush writes it, coalesced (`OrderedPersister::manager_changed`).
            if self.channel_manager.get_and_clear_needs_persistence() {
                self.persister.manager_changed();
            }

            let now_i = Instant::now();
            if now_i >= manager_tick {
                self.channel_manager.timer_tick_occurred();
                manager_tick = now_i + MANAGER_TICK;
            }
            if now_i >= peer_tick {
                self.onion_messenger.timer_tick_occurred();
                self.peer_manager.timer_tick_occurred();
                peer_tick = now_i + PEER_TICK;
            }
            if now_i >= claims_tick {
                self.chain_monitor.rebroadcast_pending_claims();
                let _ = self.sweeper.sweeper_async().regenerate_and_broadcast_spend_if_necessary().await;
                claims_tick = now_i + CLAIMS_TICK;
            }
            if now_i >= prune {
                self.gossip_sync.network_graph().remove_stale_channels_and_tracking_with_time(now().as_secs());
                self.write_graph();
                prune = now_i + PRUNE_EVERY;
            }
            if now_i >= scorer_write {
                // What the scorer learned fades with time (as LDK's processor had it, on a timer); it is written
                // only when payments taught it something since the last write.
                self.scorer.write().unwrap_or_else(|p| p.into_inner()).time_passed(now());
                if scorer_dirty {
                    self.write_scorer();
                    scorer_dirty = false;
                }
                self.learning.save();
                scorer_write = now_i + SCORER_WRITE_EVERY;
            }
        }
        // The manager is written by the node's last flush, after every task has stopped.
        self.write_scorer();
        self.learning.save();
        self.write_graph();
    }

    /// What a payment path's outcome teaches the graph and the scorer (as LDK's processor does); whether the
    /// scorer learned anything.
    fn learn(&self, event: &Event) -> bool {
        if let Event::PaymentPathFailed { failure: PathFailure::OnPath { network_update: Some(update) }, .. } = event {
            self.gossip_sync.network_graph().handle_network_update(update);
        }
        let scorer = || self.scorer.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::PaymentPathFailed { path, short_channel_id: Some(scid), .. } => scorer().payment_path_failed(path, *scid, now()),
            // The destination itself failed it: the path had the liquidity.
            Event::PaymentPathFailed { path, payment_failed_permanently: true, .. } => scorer().probe_successful(path, now()),
            Event::PaymentPathSuccessful { path, .. } => scorer().payment_path_successful(path, now()),
            Event::ProbeSuccessful { path, .. } => scorer().probe_successful(path, now()),
            Event::ProbeFailed { path, short_channel_id: Some(scid), .. } => scorer().probe_failed(path, *scid, now()),
            _ => return false,
        }
        true
    }

    /// Learned route preferences, no money: a failed write is logged, not fatal (LDK's processor did the same).
    fn write_scorer(&self) {
        let bytes = self.scorer.read().unwrap_or_else(|p| p.into_inner()).encode();
        if let Err(e) = self.store.write(SCORER_PERSISTENCE_PRIMARY_NAMESPACE, SCORER_PERSISTENCE_SECONDARY_NAMESPACE, SCORER_PERSISTENCE_KEY, bytes) {
            tracing::warn!(error = %e, "writing the scorer failed");
        }
    }

    /// The graph is only a cache of gossip: a failed write is logged, not fatal (LDK's processor did the same).
    fn write_graph(&self) {
        let bytes = self.gossip_sync.network_graph().encode();
        if let Err(e) = self.store.write(NETWORK_GRAPH_PERSISTENCE_PRIMARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_SECONDARY_NAMESPACE, NETWORK_GRAPH_PERSISTENCE_KEY, bytes) {
            tracing::warn!(error = %e, "writing the network graph failed");
        }
    }
}
