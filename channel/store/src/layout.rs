//! Where lanes keeps things: the entries of a node's data dir, and every store namespace lanes names
//! itself (LDK names its own: ChannelManager, monitors, graph, scorer, sweeper).
//!
//! Owns: these names, once. The builder, the config, the services and the regtest tools read them from
//! here. Must never: change a name that data dirs already hold without a migration in every store
//! implementation (see [`crate::SledStore::open`]); names here are on disk.
//!
//! Every lanes namespace is a secondary namespace under [`LANES`], apart from LDK's primaries. Keys
//! directly under [`LANES`] (the router scorer) must not collide with these secondary names (LDK's rule:
//! a key and a namespace at one level never share a name).
use std::path::{Path, PathBuf};

/// A primary and a secondary namespace of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub primary: &'static str,
    pub secondary: &'static str,
}

/// The data dir entry holding the seed (BIP39 words, mode 0600).
pub const SEED_FILE: &str = "seed";
/// The data dir entry holding the store (sled's directory).
pub const DB_DIR: &str = "db";

/// The seed file of the data dir at `data_dir`.
pub fn seed_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SEED_FILE)
}

/// The store of the data dir at `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_DIR)
}

/// The primary namespace of everything lanes itself keeps.
pub const LANES: &str = "lanes";

const fn lanes(secondary: &'static str) -> Namespace {
    Namespace { primary: LANES, secondary }
}

/// The router's liquidity scorer: one key, [`ROUTER_SCORER_KEY`], in [`ROUTER`].
pub const ROUTER: Namespace = Namespace { primary: LANES, secondary: "" };
pub const ROUTER_SCORER_KEY: &str = "router_scorer";

/// The node id (33 bytes) whose state the store holds: one key, [`NODE_ID_KEY`], in [`NODE_ID`]. A node
/// started with another seed refuses the store.
pub const NODE_ID: Namespace = Namespace { primary: LANES, secondary: "" };
pub const NODE_ID_KEY: &str = "node_id";

/// Transactions kept and re-broadcast until they are buried, by txid.
pub const BROADCAST_JOURNAL: Namespace = lanes("broadcasts");
/// The BDK wallet's change sets, under [`sequence_key`]s.
pub const WALLET: Namespace = lanes("wallet");

/// The key of the `n`th entry of an append-only namespace: zero-padded decimal, so keys sort as their
/// numbers do.
pub fn sequence_key(n: u64) -> String {
    format!("{n:020}")
}

/// The node's records, JSON values under the hex of their ids.
pub const PAYMENTS: Namespace = lanes("payments");
/// The keys of the payments in flight (an index of [`PAYMENTS`]: empty values).
pub const PAYMENTS_IN_FLIGHT: Namespace = lanes("payments_in_flight");
pub const INVOICES: Namespace = lanes("invoices");
pub const OFFERS: Namespace = lanes("offers");
pub const SPLICES: Namespace = lanes("splices");
pub const FORWARDS: Namespace = lanes("forwards");
pub const CLOSED_CHANNELS: Namespace = lanes("closed_channels");
pub const PEER_ADDRESSES: Namespace = lanes("peer_addresses");
/// Channel fundings found double-spent, by channel id.
pub const DEAD_FUNDINGS: Namespace = lanes("dead_fundings");
/// The ChannelManager's chunks, by id (hex); LDK's manager key holds the manifest that lists them.
pub const MANAGER_CHUNKS: Namespace = lanes("manager_chunks");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        let all = [BROADCAST_JOURNAL, WALLET, PAYMENTS, PAYMENTS_IN_FLIGHT, INVOICES, OFFERS, SPLICES, FORWARDS, CLOSED_CHANNELS, PEER_ADDRESSES, DEAD_FUNDINGS, MANAGER_CHUNKS];
        for ns in all {
            crate::check(ns.primary, ns.secondary, Some("k")).unwrap();
            assert_ne!(ns.secondary, ROUTER_SCORER_KEY, "a key and a namespace share a name");
            assert_ne!(ns.secondary, NODE_ID_KEY, "a key and a namespace share a name");
        }
        let mut secondaries: Vec<_> = all.iter().map(|n| n.secondary).collect();
        secondaries.sort();
        secondaries.dedup();
        assert_eq!(secondaries.len(), all.len());
        crate::check(ROUTER.primary, ROUTER.secondary, Some(ROUTER_SCORER_KEY)).unwrap();
    }

    #[test]
    fn sequence_keys_sort_as_their_numbers() {
        let mut keys: Vec<_> = [10u64, 9, u64::MAX, 0, 100].into_iter().map(sequence_key).collect();
        keys.sort();
        assert_eq!(keys, [0u64, 9, 10, 100, u64::MAX].map(sequence_key));
        crate::check(WALLET.primary, WALLET.secondary, Some(&sequence_key(u64::MAX))).unwrap();
    }
}
