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


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
