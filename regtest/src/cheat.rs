//! A cheating node, for tests only: publish a channel state that was since revoked.
//!
//! Owns: snapshotting a stopped node's state N (its data dir; for a node on PostgreSQL also its database,
//! copied as a new database made from it as a template) and later broadcasting, straight to
//! bitcoind, the commitment transactions that snapshot holds, after the real node has moved the channel on
//! to state N+k. Must never: be used on anything but a regtest node a test owns; it exists to prove that
//! the honest peer's chain watcher punishes the breach.
use std::path::Path;
use std::sync::Mutex;

use bitcoin::{Network, Transaction, Txid};
use bitcoincore_rpc::{Client, RpcApi};
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::MAX_PENDING_UPDATES;
use lanes_store::{layout, PgOptions, PgStore, SledStore};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::events::bump_transaction::BumpTransactionEvent;
use lightning::events::Event;
use lightning::sign::KeysManager;
use lightning::util::persist::MonitorUpdatingPersister;

use crate::Node;

/// The file in a snapshot dir naming the snapshot's database (a node on PostgreSQL), then its password file.
const SNAPSHOT_DB: &str = "snapshot.db";

/// Copies a stopped node's data dir to `to` (the state a cheater keeps); for a node on PostgreSQL, its
/// database too, as a new database of the net's server.
pub fn snapshot(node: &Node, to: &Path) {
    assert!(!node.is_running(), "{}: snapshot a stopped node only (its store must be closed)", node.name());
    copy_dir(node.data_dir(), to).unwrap_or_else(|e| panic!("copying {}'s data dir: {e}", node.name()));
    if let Some((dsn, password_file)) = node.postgres_args() {
        let pg = node.net_postgres().expect("a node on PostgreSQL runs on the net's server");
        let db = dsn.rsplit('/').next().expect("a database name").to_string();
        static SNAPSHOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let copy = format!("{db}_snapshot_{}", SNAPSHOTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        // A sync caller inside a test's runtime: the SQL runs on a runtime of its own, on its own thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                rt.block_on(pg.execute("postgres", &format!("CREATE DATABASE {copy} TEMPLATE {db}")));
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        std::fs::write(to.join(SNAPSHOT_DB), format!("{}\n{password_file}\n", pg.dsn(&copy))).expect("write the snapshot's database name");
    }
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
    let store: lanes_store::DynStore = match std::fs::read_to_string(dir.join(SNAPSHOT_DB)) {
        Ok(named) => {
            let mut lines = named.lines();
            let dsn = lines.next().expect("a connection string").to_string();
            let password = std::fs::read_to_string(lines.next().expect("a password file")).expect("read the password file").trim().to_string();
            std::sync::Arc::new(PgStore::open(&PgOptions { dsn, password: Some(password), ca_file: None }).expect("open the snapshot's database"))
        }
        Err(_) => std::sync::Arc::new(SledStore::open(layout::db_path(dir)).expect("open the snapshot's store")),
    };
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
