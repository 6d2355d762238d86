//! The node's own records in sled: invoices, payments, forwards, closed channels, peer addresses.
//!
//! Owns: typed, durable key → record maps (versioned JSON values, see [`crate::record`]), one sled tree each. Must never: hold
//! anything LDK needs to keep channels safe (that is LDK's state, in `lanes_channel::store`); losing
//! these records loses history, never money.
use std::marker::PhantomData;
use std::sync::Mutex;

use crate::record::{self, Record};
use crate::NodeError;

/// A durable map of records of type `T`.
pub struct Records<T> {
    tree: sled::Tree,
    /// Serialises read-modify-write updates.
    lock: Mutex<()>,
    _t: PhantomData<T>,
}

impl<T: Record> Records<T> {
    pub fn open(db: &sled::Db, name: &str) -> Result<Self, NodeError> {
        Ok(Self { tree: db.open_tree(name)?, lock: Mutex::new(()), _t: PhantomData })
    }

    pub fn put(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        let bytes = record::encode(value)?;
        self.tree.insert(key, bytes)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<T>, NodeError> {
        match self.tree.get(key)? {
            Some(v) => Ok(Some(record::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Every record, in key order.
    pub fn all(&self) -> Result<Vec<T>, NodeError> {
        self.tree
            .iter()
            .values()
            .map(|v| record::decode(&v?))
            .collect()
    }

    /// Reads the record at `key`, lets `f` change it (or create it), writes it back; returns it.
    pub fn update(&self, key: &[u8], f: impl FnOnce(Option<T>) -> Option<T>) -> Result<Option<T>, NodeError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let next = f(self.get(key)?);
        if let Some(v) = &next {
            self.put(key, v)?;
        }
        Ok(next)
    }

    pub fn remove(&self, key: &[u8]) -> Result<(), NodeError> {
        self.tree.remove(key)?;
        Ok(())
    }
}

pub use lanes_common::utc;
