//! A cheating node, for tests only: publish a channel state that was since revoked.
//!
//! Owns: snapshotting a stopped node's data dir (its state N) and later broadcasting, straight to
//! bitcoind, the commitment transactions that snapshot holds, after the real node has moved the channel on
//! to state N+k. Must never: be used on anything but a regtest node a test owns; it exists to prove that
//! the honest peer's chain watcher punishes the breach.
use std::path::Path;
use std::sync::Mutex;

use bitcoin::{Network, Transaction, Txid};
use bitcoincore_rpc::{Client, RpcApi};
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::MAX_PENDING_UPDATES;
use lanes_store::{layout, SledStore};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::events::bump_transaction::BumpTransactionEvent;
use lightning::events::Event;
use lightning::sign::KeysManager;
use lightning::util::persist::MonitorUpdatingPersister;

use crate::Node;

/// Copies a stopped node's data dir to `to` (the state a cheater keeps).
pub fn snapshot(node: &Node, to: &Path) {
    assert!(!node.is_running(), "{}: snapshot a stopped node only (its store must be closed)", node.name());
    copy_dir(node.data_dir(), to).unwrap_or_else(|e| panic!("copying {}'s data dir: {e}", node.name()));
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Collects what a monitor wants broadcast instead of sending it.
#[derive(Default)]
struct Collect(Mutex<Vec<Transaction>>);

impl BroadcasterInterface for Collect {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        self.0.lock().unwrap().extend(txs.iter().map(|t| (*t).clone()));
    }
}

struct FixedFee;

impl FeeEstimator for FixedFee {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        1000
    }
}

/// Broadcasts to bitcoind the latest commitment transaction of every channel in the snapshot at `dir`
/// (taken with [`snapshot`]). Returns the commitment txids that bitcoind accepted.
pub fn broadcast_stale_commitments(dir: &Path, network: Network, rpc: &Client) -> Vec<Txid> {
    let (seed, _) = lanes_wallet::Seed::load_or_create(&layout::seed_path(dir)).expect("the snapshot has a seed");
    let keys = std::sync::Arc::new(KeysManager::new(&seed.ldk_seed(network), 1, 0, true));
    let store: lanes_store::DynStore = std::sync::Arc::new(SledStore::open(layout::db_path(dir)).expect("open the snapshot's store"));
    // As lanesd stores them (lanes_channel::persist): the last full monitor, the updates since applied.
    let reader = MonitorUpdatingPersister::new(
        store,
        std::sync::Arc::new(LdkTracing::default()),
        MAX_PENDING_UPDATES,
        std::sync::Arc::clone(&keys),
        std::sync::Arc::clone(&keys),
        std::sync::Arc::new(Collect::default()),
        std::sync::Arc::new(FixedFee),
    );
    let monitors = reader.read_all_channel_monitors_with_updates().expect("read the snapshot's monitors");
    assert!(!monitors.is_empty(), "the snapshot at {} has no channel", dir.display());
    let collect = Collect::default();
    let logger = LdkTracing::default();
    for (_, monitor) in &monitors {
        monitor.broadcast_latest_holder_commitment_txn(&&collect, &&FixedFee, &&logger);
        // An anchor channel's commitment is not broadcast as is: LDK hands it, signed, to the fee bumper
        // in a BumpTransaction event. Its own (low) fee is enough for regtest's mempool.
        let take_commitment = |event: Event| {
            if let Event::BumpTransaction(BumpTransactionEvent::ChannelClose { commitment_tx, .. }) = event {
                collect.0.lock().unwrap().push(commitment_tx);
            }
            Ok(())
        };
        monitor.process_pending_events(&&take_commitment, &&logger).expect("read the snapshot's monitor events");
    }
    let txs = collect.0.into_inner().unwrap();
    // Commitments spend the funding output; HTLC transactions (if any) would spend the commitment: send
    // only what spends a funding output, the breach itself.
    let fundings: Vec<_> = monitors.iter().map(|(_, m)| m.get_funding_txo()).collect();
    txs.iter()
        .filter(|tx| tx.input.iter().any(|i| fundings.iter().any(|f| i.previous_output == f.into_bitcoin_outpoint())))
        .map(|tx| rpc.send_raw_transaction(tx).unwrap_or_else(|e| panic!("bitcoind refused the stale commitment {}: {e}", tx.compute_txid())))
        .collect()
}
