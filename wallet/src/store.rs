//! Durable state of the BDK wallet, in the node's store (any `lanes_store::DynStore`).
//!
//! Owns: the wallet's change sets, appended under increasing [`sequence_key`]s in the
//! [`layout::WALLET`] namespace and merged on load, and compacted then into one. Compaction is
//! crash-safe: the merged change set is written first, under a key after every older one, and only then
//! are the older ones removed; a crash in between leaves them in front of the merged one, and merging
//! them again before it changes nothing (the merged one holds all of them and is merged last).
//!
//! Must never: drop a change set BDK handed over, or return before it is on disk: a revealed address
//! index that is lost would hand out the same address twice.
use bdk_wallet::chain::Merge;
use bdk_wallet::{ChangeSet, WalletPersister};
use lanes_store::layout::{self, sequence_key};
use lanes_store::DynStore;

use crate::WalletError;

const NS: layout::Namespace = layout::WALLET;

/// BDK [`WalletPersister`] over the node's store.
pub struct WalletStore {
    store: DynStore,
    /// The sequence number of the next change set; known once loaded.
    next: Option<u64>,
}

impl WalletStore {
    pub fn new(store: DynStore) -> Self {
        Self { store, next: None }
    }

    /// The sequence numbers on disk, in order.
    fn sequence(&self) -> Result<Vec<u64>, WalletError> {
        let mut seqs = self
            .store
            .list(NS.primary, NS.secondary)
            .map_err(store_err)?
            .iter()
            .map(|k| k.parse::<u64>().map_err(|_| WalletError::Store(format!("unexpected wallet key {k:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn read(&self, seq: u64) -> Result<ChangeSet, WalletError> {
        let bytes = self.store.read(NS.primary, NS.secondary, &sequence_key(seq)).map_err(store_err)?;
        serde_json::from_slice(&bytes).map_err(store_err)
    }

    /// Writes `changeset` as number `seq`; on disk when this returns.
    fn write(&self, seq: u64, changeset: &ChangeSet) -> Result<(), WalletError> {
        let bytes = serde_json::to_vec(changeset).map_err(store_err)?;
        self.store.write(NS.primary, NS.secondary, &sequence_key(seq), bytes).map_err(store_err)
    }
}

fn store_err(e: impl std::fmt::Display) -> WalletError {
    WalletError::Store(e.to_string())
}

impl WalletPersister for WalletStore {
    type Error = WalletError;

    fn initialize(p: &mut Self) -> Result<ChangeSet, WalletError> {
        let seqs = p.sequence()?;
        let mut all = ChangeSet::default();
        for &seq in &seqs {
            all.merge(p.read(seq)?);
        }
        let mut next = seqs.last().map_or(0, |last| last + 1);
        if seqs.len() > 1 {
            // Compact: the merged change set first, after every older one; then the older ones go. A
            // lost removal only means merging it again on the next load (lazy removes are enough).
            p.write(next, &all)?;
            next += 1;
            for seq in seqs {
                p.store.remove(NS.primary, NS.secondary, &sequence_key(seq), true).map_err(store_err)?;
            }
        }
        p.next = Some(next);
        Ok(all)
    }

    fn persist(p: &mut Self, changeset: &ChangeSet) -> Result<(), WalletError> {
        if changeset.is_empty() {
            return Ok(());
        }
        let seq = match p.next {
            Some(seq) => seq,
            None => p.sequence()?.last().map_or(0, |last| last + 1),
        };
        p.write(seq, changeset)?;
        p.next = Some(seq + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bdk_wallet::chain::local_chain;
    use bitcoin::hashes::Hash;
    use bitcoin::{BlockHash, Network};
    use lanes_store::SledStore;

    use super::*;

    fn block(height: u32, byte: u8) -> ChangeSet {
        let blocks = [(height, Some(BlockHash::from_byte_array([byte; 32])))].into();
        ChangeSet { local_chain: local_chain::ChangeSet { blocks }, ..Default::default() }
    }

    fn keys(store: &DynStore) -> Vec<String> {
        let mut k = store.list(NS.primary, NS.secondary).unwrap();
        k.sort();
        k
    }

    #[test]
    fn change_sets_are_merged_on_load_and_compacted_into_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let mut w = WalletStore::new(Arc::clone(&store));
        assert!(WalletStore::initialize(&mut w).unwrap().is_empty());
        let first = ChangeSet { network: Some(Network::Regtest), ..Default::default() };
        for cs in [&first, &block(1, 1), &ChangeSet::default(), &block(2, 2)] {
            WalletStore::persist(&mut w, cs).unwrap();
        }
        assert_eq!(keys(&store), [0, 1, 2].map(sequence_key), "an empty change set is not written");

        let mut expected = first.clone();
        expected.merge(block(1, 1));
        expected.merge(block(2, 2));
        let mut w = WalletStore::new(Arc::clone(&store));
        assert_eq!(WalletStore::initialize(&mut w).unwrap(), expected);
        assert_eq!(keys(&store), [sequence_key(3)]);
        // Appends go after the compacted one.
        WalletStore::persist(&mut w, &block(3, 3)).unwrap();
        expected.merge(block(3, 3));
        assert_eq!(WalletStore::initialize(&mut WalletStore::new(Arc::clone(&store))).unwrap(), expected);
    }

    #[test]
    fn a_compaction_cut_short_before_the_removals_loads_the_same_wallet() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(SledStore::open(dir.path()).unwrap());
        let mut w = WalletStore::new(Arc::clone(&store));
        WalletStore::initialize(&mut w).unwrap();
        // Height 5 is reorged out (None) and replaced: merging order matters.
        let reorg = ChangeSet { local_chain: local_chain::ChangeSet { blocks: [(5, None)].into() }, ..Default::default() };
        for cs in [&block(5, 1), &reorg, &block(5, 2)] {
            WalletStore::persist(&mut w, cs).unwrap();
        }
        let mut merged = block(5, 1);
        merged.merge(reorg);
        merged.merge(block(5, 2));
        // The merged change set is on disk, the older ones still are too.
        w.write(3, &merged).unwrap();

        let mut w = WalletStore::new(Arc::clone(&store));
        assert_eq!(WalletStore::initialize(&mut w).unwrap(), merged);
        assert_eq!(keys(&store), [sequence_key(4)]);
    }
}
