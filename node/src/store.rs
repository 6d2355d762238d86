//! The node's own records in the store: invoices, payments, forwards, closed channels, peer addresses.
//!
//! Owns: typed, durable key → record maps (versioned JSON values, see [`crate::record`]), one store namespace each (named in
//! `lanes_store::layout`), keyed by the hex of the record's id. Must never: hold anything LDK needs to
//! keep channels safe (that is LDK's state, written through `lanes_channel::persist`); losing these
//! records loses history, never money.
use std::marker::PhantomData;
use std::sync::Mutex;

use lanes_store::{hex_key, DynStore, Namespace};

use crate::record::{self, Record};
use crate::NodeError;

/// A durable map of records of type `T`.
pub struct Records<T> {
    store: DynStore,
    ns: Namespace,
    /// Serialises read-modify-write updates.
    lock: Mutex<()>,
    _t: PhantomData<T>,
}

impl<T: Record> Records<T> {
    pub fn open(store: &DynStore, ns: Namespace) -> Result<Self, NodeError> {
        Ok(Self { store: DynStore::clone(store), ns, lock: Mutex::new(()), _t: PhantomData })
    }

    /// Writes the record at `key`; on disk when this returns.
    pub fn put(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        let bytes = record::encode(value)?;
        self.store.write(self.ns.primary, self.ns.secondary, &hex_key(key), bytes).map_err(store_err)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<T>, NodeError> {
        self.read(&hex_key(key))
    }

    fn read(&self, key: &str) -> Result<Option<T>, NodeError> {
        match self.store.read(self.ns.primary, self.ns.secondary, key) {
            Ok(v) => Ok(Some(record::decode(&v)?)),
            Err(e) if e.kind() == lanes_store::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Every record, in key order (hex keys sort as the raw keys do).
    pub fn all(&self) -> Result<Vec<T>, NodeError> {
        let mut keys = self.store.list(self.ns.primary, self.ns.secondary).map_err(store_err)?;
        keys.sort_unstable();
        // A record removed between the listing and its read is skipped.
        Ok(keys.iter().map(|k| self.read(k)).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
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

    /// Like [`Records::put`], for a record written while handling one of LDK's events (see
    /// [`Records::update_replayed`]).
    pub fn put_replayed(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        let bytes = record::encode(value)?;
        self.store.write_unsynced(self.ns.primary, self.ns.secondary, &hex_key(key), bytes).map_err(store_err)
    }

    /// Like [`Records::update`], for a record written while handling one of LDK's events: not synced on its
    /// own (see `lanes_store::Store::write_unsynced`). Durable before LDK can forget the event: LDK
    /// keeps an event in the ChannelManager until its handler returned, and every manager write after that
    /// syncs the store, this write included. Under load that saves a sync per payment event (two per
    /// payment on each side), which the event loop otherwise waited for.
    pub fn update_replayed(&self, key: &[u8], f: impl FnOnce(Option<T>) -> Option<T>) -> Result<Option<T>, NodeError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let next = f(self.get(key)?);
        if let Some(v) = &next {
            let bytes = record::encode(v)?;
            self.store.write_unsynced(self.ns.primary, self.ns.secondary, &hex_key(key), bytes).map_err(store_err)?;
        }
        Ok(next)
    }

    pub fn remove(&self, key: &[u8]) -> Result<(), NodeError> {
        self.store.remove(self.ns.primary, self.ns.secondary, &hex_key(key), false).map_err(store_err)
    }
}

fn store_err(e: lanes_store::io::Error) -> NodeError {
    NodeError::Store(e.into())
}

pub use lanes_common::utc;

#[cfg(test)]
mod tests {
    use super::*;

    impl Record for String {
        const KIND: &'static str = "test";
    }

    #[test]
    fn records_keep_raw_key_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let store: DynStore = std::sync::Arc::new(lanes_store::SledStore::open(dir.path()).unwrap());
            Records::<String>::open(&store, lanes_store::layout::FORWARDS).unwrap()
        };
        let r = open();
        for key in [&[0xff, 0x00][..], &[0x0a], &[0x0a, 0x01], &[0x9f; 32]] {
            r.put(key, &hex_key(key)).unwrap();
        }
        assert_eq!(r.update(&[0x0a], |old| old.map(|v| v + "!")).unwrap().as_deref(), Some("0a!"));
        r.remove(&[0xff, 0x00]).unwrap();
        drop(r);
        let r = open();
        assert_eq!(r.all().unwrap(), ["0a!".to_string(), "0a01".into(), "9f".repeat(32)]);
        assert_eq!(r.get(&[0xff, 0x00]).unwrap(), None);
    }

}
