//! The chain watcher: follows bitcoind and feeds every block to LDK and to the wallet.
//!
//! Owns: the polling loops (LDK's ChainMonitor and ChannelManager through lightning-block-sync's SPV
//! client, which connects and disconnects blocks across reorgs; the BDK wallet through its emitter;
//! fee estimates), and the sync status GetInfo reports. Broadcasting what LDK asks is done by the
//! bitcoind client LDK holds. Must never: decide anything about channels; LDK's ChainMonitor reacts to
//! what it sees in blocks (including breaches, with a justice transaction).
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::Txid;
use lightning::chain::channelmonitor::Balance;
use lightning::ln::types::ChannelId;
use lightning_block_sync::poll::{ChainPoller, ValidatedBlockHeader};
use lightning_block_sync::{SpvClient, UnboundedCache};
use tokio::sync::watch;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::types::{ChainMonitor, ChannelManager};
use lanes_wallet::OnchainWallet;

use crate::sweep::{self, Sweeper};

/// Whether the Lightning state and the wallet have caught up with bitcoind.
#[derive(Default)]
pub struct SyncStatus {
    lightning: AtomicBool,
    wallet: AtomicBool,
}

impl SyncStatus {
    pub fn lightning_synced(&self) -> bool {
        self.lightning.load(Ordering::Acquire)
    }
    pub fn wallet_synced(&self) -> bool {
        self.wallet.load(Ordering::Acquire)
    }
}

/// Polls bitcoind for new blocks and hands them to the ChainMonitor and ChannelManager, until shutdown.
pub async fn follow_chain(
    bitcoind: Arc<BitcoindClient>,
    chain_monitor: Arc<ChainMonitor>,
    channel_manager: Arc<ChannelManager>,
    sweeper: Arc<Sweeper>,
    tip: ValidatedBlockHeader,
    mut cache: UnboundedCache,
    status: Arc<SyncStatus>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = bitcoind.block_source();
    let poller = ChainPoller::new(&*source, bitcoind.network());
    // Monitors first: they must see a block (and any breach in it) no later than the manager does.
    let rest = (Arc::clone(&channel_manager), sweeper);
    let listener = (Arc::clone(&chain_monitor), &rest);
    let mut spv = SpvClient::new(tip, poller, &mut cache, &listener);
    let mut last_logged = None;
    let mut reported = Reported::default();
    let mut first = true;
    loop {
        match spv.poll_best_tip().await {
            Ok((_, connected)) => {
                status.lightning.store(true, Ordering::Release);
                // Also on the first poll: a breach may have been mined while we were offline.
                if connected || std::mem::take(&mut first) {
                    report_breaches(&bitcoind, &chain_monitor, &mut reported);
                    sweep::sweep_now(&rest.1);
                }
                // The sweeper broadcasts on its own timer too: look every poll (a list copy).
                sweep::report_sweeps(&rest.1, &mut reported.txids);
                let best = channel_manager.current_best_block();
                if last_logged != Some(best.block_hash) {
                    tracing::debug!(height = best.height, hash = %best.block_hash, "lightning state at block");
                    last_logged = Some(best.block_hash);
                }
            }
            Err(e) => {
                status.lightning.store(false, Ordering::Release);
                tracing::warn!(error = ?e.into_inner(), "polling bitcoind for blocks failed; retrying");
            }
        }
        if wait(&mut shutdown, interval).await {
            return;
        }
    }
}

/// How often journaled transactions are re-sent when no block arrives.
const REBROADCAST_EVERY: Duration = Duration::from_secs(60);

/// Until shutdown: re-sends the journaled transactions that are not buried yet at start-up, on every new
/// block, and every minute (bitcoind may have been down when a block did not come).
pub async fn rebroadcast(bitcoind: Arc<BitcoindClient>, channel_manager: Arc<ChannelManager>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<(bitcoin::BlockHash, std::time::Instant)> = None;
    let every = lanes_channel::test_knobs::rebroadcast_every(REBROADCAST_EVERY);
    loop {
        let best = channel_manager.current_best_block();
        let due = match last {
            None => true,
            Some((hash, at)) => hash != best.block_hash || at.elapsed() >= every,
        };
        if due {
            bitcoind.rebroadcast(best.height, &shutdown).await;
            last = Some((best.block_hash, std::time::Instant::now()));
        }
        if wait(&mut shutdown, interval).await {
            return;
        }
    }
}

/// What the operator has already been told about, so each line is logged once.
#[derive(Default)]
struct Reported {
    breaches: HashSet<ChannelId>,
    txids: HashSet<Txid>,
}

/// Logs, once each, that a peer published a revoked state (with the breach's txid) and every justice
/// transaction LDK broadcast against it. LDK's ChainMonitor has already seen the breach in the block and
/// broadcast the justice transaction itself (through the bitcoind client, which remembers recent
/// broadcasts); these are the operator's lines.
fn report_breaches(bitcoind: &BitcoindClient, chain_monitor: &ChainMonitor, reported: &mut Reported) {
    for id in chain_monitor.list_monitors() {
        let Ok(monitor) = chain_monitor.get_monitor(id) else { continue };
        let revoked: u64 = monitor
            .get_claimable_balances()
            .iter()
            .filter_map(|b| match b {
                Balance::CounterpartyRevokedOutputClaimable { amount_satoshis } => Some(*amount_satoshis),
                _ => None,
            })
            .sum();
        if revoked == 0 {
            continue;
        }
        // Once a commitment is on-chain the monitor watches its outputs: the revoked commitment is the
        // watched transaction, other than the funding, that our justice transactions spend.
        let funding = monitor.get_funding_txo().txid;
        let justice: Vec<(Txid, Txid)> = monitor
            .get_outputs_to_watch()
            .into_iter()
            .map(|(txid, _)| txid)
            .filter(|txid| *txid != funding)
            .flat_map(|breach| bitcoind.recent_spenders_of(&breach).into_iter().map(move |j| (breach, j)))
            .collect();
        let peer = monitor.get_counterparty_node_id();
        if reported.breaches.insert(id) {
            let breach_txid = justice.first().map(|(b, _)| b.to_string()).unwrap_or_default();
            tracing::warn!(channel_id = %id, peer = %peer, %breach_txid, claimable_sat = revoked, "breach detected: the peer published a revoked state; claiming it with a justice transaction");
        }
        for (breach_txid, justice_txid) in justice {
            if reported.txids.insert(justice_txid) {
                tracing::warn!(channel_id = %id, peer = %peer, %justice_txid, %breach_txid, "justice transaction broadcast");
            }
        }
    }
}

/// A wallet sync taking longer than this is logged (see [`follow_wallet`]).
const SLOW_WALLET_SYNC: Duration = Duration::from_secs(5);

/// Keeps the wallet in step with bitcoind's blocks and mempool, until shutdown.
pub async fn follow_wallet(wallet: Arc<OnchainWallet>, status: Arc<SyncStatus>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let w = Arc::clone(&wallet);
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || w.sync()).await;
        // A sync is a few RPC calls; one that takes this long means bitcoind is not answering in time
        // (its RPC client waits 15 s, then asks once more): the wallet's balance is that old.
        let took = started.elapsed();
        if took >= SLOW_WALLET_SYNC {
            tracing::warn!(took_ms = took.as_millis() as u64, "wallet sync slow: bitcoind took long to answer");
        }
        match result {
            Ok(Ok(_)) => status.wallet.store(true, Ordering::Release),
            Ok(Err(e)) => {
                status.wallet.store(false, Ordering::Release);
                tracing::warn!(error = %e, "wallet sync failed; retrying");
            }
            Err(e) => tracing::error!(error = %e, "wallet sync task failed"),
        }
        if wait(&mut shutdown, interval).await {
            return;
        }
    }
}

/// Refreshes LDK's fee estimates from bitcoind, until shutdown.
pub async fn follow_fees(bitcoind: Arc<BitcoindClient>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if wait(&mut shutdown, interval).await {
            return;
        }
        if let Err(e) = bitcoind.refresh_fees().await {
            tracing::warn!(error = %e, "fee estimate refresh failed; keeping the previous estimates");
        }
    }
}

/// Sleeps for `d`; true when shutdown was signalled meanwhile (or before).
pub(crate) async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        // An error means the node (the sender) is gone: stop as well.
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}
