//! The node's own records in the store: invoices, payments, forwards, closed channels, peer addresses.
//!
//! Owns: typed, durable key → record maps (versioned JSON values, see [`crate::record`]), one store namespace each (named in
//! `lanes_store::layout`), keyed by the hex of the record's id. Must never: hold anything LDK needs to
//! keep channels safe (that is LDK's state, written through `lanes_channel::persist`); losing these
//! records loses history, never money.
use std::marker::PhantomData;
use std::sync::Mutex;

use lanes_store::{hex_key, DynStore, Namespace, Op};

use crate::record::{self, Record};
use crate::NodeError;

/// A durable map of records of type `T`.
pub struct Records<T> {
    store: DynStore,
    ns: Namespace,
    /// Serialises read-modify-write updates.
    lock: Mutex<()>,
    /// The keys of the records that are still open, when the map keeps them (see [`Records::open_indexed`]).
    index: Option<OpenIndex<T>>,
    _t: PhantomData<T>,
}

/// The keys of a map's open records (a payment in flight, say), in a namespace of their own, so that finding
/// them costs what they are, not what the history is: the node's start-up looked through every payment ever
/// made for the few in flight (24 µs each: 2.4 s with 100,000 payments).
///
/// Ordering: a key is in the index before its record is open on disk, and leaves it only after its record is
/// closed on disk, so after any crash the index holds every open record (and maybe a closed one, dropped the
/// next time [`Records::open_ones`] reads it).
struct OpenIndex<T> {
    ns: Namespace,
    is_open: fn(&T) -> bool,
}

/// The index's key that says it lists every open record (written once the index of an earlier store was built).
const INDEX_BUILT: &str = "index-built";

impl<T: Record> Records<T> {
    pub fn open(store: &DynStore, ns: Namespace) -> Result<Self, NodeError> {
        Ok(Self { store: DynStore::clone(store), ns, lock: Mutex::new(()), index: None, _t: PhantomData })
    }

    /// [`Records::open`], keeping the keys of the records for which `is_open` holds in `index` (see
    /// [`OpenIndex`]). A store without the index (kept by an earlier lanes) gets it built from every record,
    /// once.
    pub fn open_indexed(store: &DynStore, ns: Namespace, index: Namespace, is_open: fn(&T) -> bool) -> Result<Self, NodeError> {
        let records = Self { index: Some(OpenIndex { ns: index, is_open }), ..Self::open(store, ns)? };
        match store.read(index.primary, index.secondary, INDEX_BUILT) {
            Ok(_) => {}
            Err(e) if e.kind() == lanes_store::io::ErrorKind::NotFound => {
                let mut ops: Vec<Op> = Vec::new();
                for key in records.store.list(ns.primary, ns.secondary).map_err(store_err)? {
                    if records.read(&key)?.is_some_and(|r| is_open(&r)) {
                        ops.push(Op::write(index.primary, index.secondary, &key, Vec::new()));
                    }
                }
                // Last: a crash before it builds the index again at the next start.
                ops.push(Op::write(index.primary, index.secondary, INDEX_BUILT, Vec::new()));
                store.write_batch(ops).map_err(store_err)?;
            }
            Err(e) => return Err(store_err(e)),
        }
        Ok(records)
    }

    /// The open records (see [`Records::open_indexed`]), in key order; an index entry whose record is closed
    /// or gone is dropped. Panics on a map opened without an index.
    pub fn open_ones(&self) -> Result<Vec<T>, NodeError> {
        let index = self.index.as_ref().expect("open_ones needs a map opened with open_indexed");
        let mut keys = self.store.list(index.ns.primary, index.ns.secondary).map_err(store_err)?;
        keys.sort_unstable();
        let mut open = Vec::new();
        for key in keys.into_iter().filter(|k| k != INDEX_BUILT) {
            match self.read(&key)? {
                Some(r) if (index.is_open)(&r) => open.push(r),
                _ => self.store.remove(index.ns.primary, index.ns.secondary, &key, true).map_err(store_err)?,
            }
        }
        Ok(open)
    }

    /// The index's namespace when a record about to be written needs its entry there (to go with, or before,
    /// the record's write): it is open now and was not (or may not have been) before.
    fn entry_needed(&self, old_open: Option<bool>, new: &T) -> Option<Namespace> {
        let index = self.index.as_ref()?;
        ((index.is_open)(new) && old_open != Some(true)).then_some(index.ns)
    }

    /// After a record was written closed that was (or may have been) open: its index entry goes (lazily: a
    /// stale entry is dropped when read).
    fn unindex(&self, key: &str, old_open: Option<bool>, new: &T) -> Result<(), NodeError> {
        let Some(index) = &self.index else { return Ok(()) };
        if (index.is_open)(new) || old_open == Some(false) {
            return Ok(());
        }
        self.store.remove(index.ns.primary, index.ns.secondary, key, true).map_err(store_err)
    }

    fn was_open(&self, old: &Option<T>) -> Option<bool> {
        self.index.as_ref().map(|i| old.as_ref().is_some_and(|r| (i.is_open)(r)))
    }

    /// Writes the record at `key`; on disk when this returns.
    pub fn put(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        self.write_synced(&hex_key(key), None, value)
    }

    /// Writes `value` at `key` (hex) and its index entry in one synced batch, or the record alone.
    fn write_synced(&self, key: &str, old_open: Option<bool>, value: &T) -> Result<(), NodeError> {
        let bytes = record::encode(value)?;
        match self.entry_needed(old_open, value) {
            // One batch: one sync, as the record's write alone.
            Some(index) => {
                let entry = Op::write(index.primary, index.secondary, key, Vec::new());
                self.store.write_batch(vec![entry, Op::write(self.ns.primary, self.ns.secondary, key, bytes)]).map_err(store_err)?
            }
            None => self.store.write(self.ns.primary, self.ns.secondary, key, bytes).map_err(store_err)?,
        }
        self.unindex(key, old_open, value)
    }

    /// Writes `value` at `key` (hex) unsynced (see [`Records::update_replayed`]), its index entry first.
    fn write_unsynced(&self, key: &str, old_open: Option<bool>, value: &T) -> Result<(), NodeError> {
        let bytes = record::encode(value)?;
        if let Some(index) = self.entry_needed(old_open, value) {
            self.store.write_unsynced(index.primary, index.secondary, key, Vec::new()).map_err(store_err)?;
        }
        self.store.write_unsynced(self.ns.primary, self.ns.secondary, key, bytes).map_err(store_err)?;
        self.unindex(key, old_open, value)
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
        let old = self.get(key)?;
        let old_open = self.was_open(&old);
        let next = f(old);
        if let Some(v) = &next {
            self.write_synced(&hex_key(key), old_open, v)?;
        }
        Ok(next)
    }

    /// Like [`Records::put`], for a record written while handling one of LDK's events (see
    /// [`Records::update_replayed`]).
    pub fn put_replayed(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        self.write_unsynced(&hex_key(key), None, value)
    }

    /// Like [`Records::update`], for a record written while handling one of LDK's events: not synced on its
    /// own (see `lanes_store::Store::write_unsynced`). Durable before LDK can forget the event: LDK
    /// keeps an event in the ChannelManager until its handler returned, and every manager write after that
    /// syncs the store, this write included. Under load that saves a sync per payment event (two per
    /// payment on each side), which the event loop otherwise waited for.
    pub fn update_replayed(&self, key: &[u8], f: impl FnOnce(Option<T>) -> Option<T>) -> Result<Option<T>, NodeError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.get(key)?;
        let old_open = self.was_open(&old);
        let next = f(old);
        if let Some(v) = &next {
            self.write_unsynced(&hex_key(key), old_open, v)?;
        }
        Ok(next)
    }

    pub fn remove(&self, key: &[u8]) -> Result<(), NodeError> {
        self.store.remove(self.ns.primary, self.ns.secondary, &hex_key(key), false).map_err(store_err)?;
        if let Some(index) = &self.index {
            self.store.remove(index.ns.primary, index.ns.secondary, &hex_key(key), true).map_err(store_err)?;
        }
        Ok(())
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

    fn open_if_bang(v: &String) -> bool {
        v.ends_with('!')
    }

    /// Records opened with an index: open ones ("…!") are found through it, every way a record is written or
    /// removed keeps it right, and it is the index that is read, not every record.
    #[test]
    fn open_records_are_found_through_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = std::sync::Arc::new(lanes_store::SledStore::open(dir.path()).unwrap());
        let (ns, index) = (lanes_store::layout::PAYMENTS, lanes_store::layout::PAYMENTS_IN_FLIGHT);
        // An earlier lanes kept these without an index: it is built from them once.
        let plain = Records::<String>::open(&store, ns).unwrap();
        plain.put(&[1], &"one!".to_string()).unwrap();
        plain.put(&[2], &"two".to_string()).unwrap();
        let r = Records::<String>::open_indexed(&store, ns, index, open_if_bang).unwrap();
        assert_eq!(r.open_ones().unwrap(), ["one!"]);
        // Built once: a record the index never heard of is not found, so nothing else is read.
        plain.put(&[3], &"three!".to_string()).unwrap();
        let r = Records::<String>::open_indexed(&store, ns, index, open_if_bang).unwrap();
        assert_eq!(r.open_ones().unwrap(), ["one!"]);

        r.put(&[4], &"four!".to_string()).unwrap();
        r.update(&[5], |_| Some("five!".into())).unwrap();
        r.put_replayed(&[6], &"six!".to_string()).unwrap();
        assert_eq!(r.open_ones().unwrap(), ["one!", "four!", "five!", "six!"]);
        r.update_replayed(&[1], |v| v.map(|v| v.replace('!', ""))).unwrap();
        r.update(&[4], |v| v.map(|v| v.replace('!', "."))).unwrap();
        r.put_replayed(&[5], &"five".to_string()).unwrap();
        r.remove(&[6]).unwrap();
        assert_eq!(r.open_ones().unwrap(), Vec::<String>::new());
        r.update(&[2], |v| v.map(|v| v + "!")).unwrap();
        assert_eq!(r.open_ones().unwrap(), ["two!"]);
        assert_eq!(store.list(index.primary, index.secondary).unwrap().len(), 2, "the entry of two, and the built mark");

        // A crash after a record was closed but before its entry went: the stale entry is dropped when read.
        plain.put(&[2], &"two".to_string()).unwrap();
        assert_eq!(r.open_ones().unwrap(), Vec::<String>::new());
        assert_eq!(store.list(index.primary, index.secondary).unwrap(), [INDEX_BUILT]);
    }

}
