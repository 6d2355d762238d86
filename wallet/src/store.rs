//! Durable state of the BDK wallet in sled.
//!
//! Owns: the wallet's change sets, appended under increasing keys and merged on load (and compacted
//! then into one). Must never: drop a change set BDK handed over, or return before it is on disk: a
//! revealed address index that is lost would hand out the same address twice.
use bdk_wallet::chain::Merge;
use bdk_wallet::{ChangeSet, WalletPersister};

use crate::WalletError;

/// BDK [`WalletPersister`] over a sled tree.
pub struct SledWalletStore {
    tree: sled::Tree,
}

impl SledWalletStore {
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    fn next_key(&self) -> Result<[u8; 8], WalletError> {
        let last = self.tree.last().map_err(store_err)?;
        let next = match last {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().map_err(|_| WalletError::Store("bad key".into()))?) + 1,
            None => 0,
        };
        Ok(next.to_be_bytes())
    }
}

fn store_err(e: impl std::fmt::Display) -> WalletError {
    WalletError::Store(e.to_string())
}

impl WalletPersister for SledWalletStore {
    type Error = WalletError;

    fn initialize(p: &mut Self) -> Result<ChangeSet, WalletError> {
        let mut all = ChangeSet::default();
        let mut count = 0;
        for item in p.tree.iter() {
            let (_, v) = item.map_err(store_err)?;
            let cs: ChangeSet = serde_json::from_slice(&v).map_err(store_err)?;
            all.merge(cs);
            count += 1;
        }
        if count > 1 {
            // Compact: one merged entry replaces the history, atomically.
            let mut batch = sled::Batch::default();
            for item in p.tree.iter() {
                batch.remove(item.map_err(store_err)?.0);
            }
            batch.insert(&0u64.to_be_bytes(), serde_json::to_vec(&all).map_err(store_err)?);
            p.tree.apply_batch(batch).map_err(store_err)?;
            p.tree.flush().map_err(store_err)?;
        }
        Ok(all)
    }

    fn persist(p: &mut Self, changeset: &ChangeSet) -> Result<(), WalletError> {
        if changeset.is_empty() {
            return Ok(());
        }
        let key = p.next_key()?;
        p.tree.insert(key, serde_json::to_vec(changeset).map_err(store_err)?).map_err(store_err)?;
        p.tree.flush().map_err(store_err)?;
        Ok(())
    }
}
