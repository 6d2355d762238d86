//! The node's own records in the store: invoices, payments, forwards, closed channels, peer addresses.
//!
//! Owns: typed, durable key → record maps (JSON values), one store namespace each (named in
//! `lanes_store::layout`), keyed by the hex of the record's id. Must never: hold anything LDK needs to
//! keep channels safe (that is LDK's state, written through `lanes_channel::persist`); losing these
//! records loses history, never money.
use std::marker::PhantomData;
use std::sync::Mutex;

use lanes_store::{hex_key, DynStore, Namespace};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::NodeError;

/// A durable map of records of type `T`.
pub struct Records<T> {
    store: DynStore,
    ns: Namespace,
    /// Serialises read-modify-write updates.
    lock: Mutex<()>,
    _t: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> Records<T> {
    pub fn open(store: &DynStore, ns: Namespace) -> Result<Self, NodeError> {
        Ok(Self { store: DynStore::clone(store), ns, lock: Mutex::new(()), _t: PhantomData })
    }

    /// Writes the record at `key`; on disk when this returns.
    pub fn put(&self, key: &[u8], value: &T) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec(value).map_err(|e| NodeError::Internal(e.to_string()))?;
        self.store.write(self.ns.primary, self.ns.secondary, &hex_key(key), bytes).map_err(store_err)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<T>, NodeError> {
        self.read(&hex_key(key))
    }

    fn read(&self, key: &str) -> Result<Option<T>, NodeError> {
        match self.store.read(self.ns.primary, self.ns.secondary, key) {
            Ok(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| NodeError::Internal(e.to_string()))?)),
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

    pub fn remove(&self, key: &[u8]) -> Result<(), NodeError> {
        self.store.remove(self.ns.primary, self.ns.secondary, &hex_key(key), false).map_err(store_err)
    }
}

fn store_err(e: lanes_store::io::Error) -> NodeError {
    NodeError::Store(e.into())
}

/// Seconds since the Unix epoch as a date an operator reads, `2023-11-14 22:13:20 UTC` ("-" for 0).
pub fn utc(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let days = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
