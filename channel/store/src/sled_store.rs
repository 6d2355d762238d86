//! The store on sled: one database at `<data-dir>/db`, every namespace in one tree.
//!
//! Owns: the sled database (opened once, by [`SledStore::open`]), the mapping of LDK's
//! `primary/secondary/key` onto sled keys, making a write or a non-lazy remove durable before it returns
//! (see the crate doc for why), and migrating data dirs written before the one store existed. Must never:
//! return from a write before its bytes survive a power loss, nor drop a legacy tree before its entries are
//! on disk in the store's tree.
//!
//! Durability, past sled: sled's `flush` ends its log writes with `sync_file_range`, which neither
//! flushes the drive's write cache nor the file's size, and writes a value larger than a quarter segment
//! (128 KiB: the ChannelManager and a busy channel's ChannelMonitor) to its own file under `blobs/` with
//! no sync at all. That survives a killed process (the page cache holds it) but not a power loss. So
//! after sled's flush, [`SledStore`] `fdatasync`s the log file, `fsync`s every blob file it has not
//! synced yet and then the `blobs` directory (a new file's name must survive too): one log sync per write,
//! plus one per new blob. The directories themselves are synced once, at open.
//!
//! The tree is named `ldk` because it first held only LDK's state; its keys are unchanged since, so LDK's
//! state needs no migration. Earlier versions also kept a tree `wallet` (BDK change sets under u64
//! big-endian keys) and one tree per node record type (JSON values under raw byte keys); [`SledStore::open`]
//! moves those into their [`layout`] namespaces, one tree at a time: the tree's entries are written to the
//! store's tree in one batch and flushed, then the legacy tree is dropped. A crash in between leaves the
//! legacy tree in place, and the next open copies the same entries again (nothing else writes to the
//! store before the migration has finished), so the migration is idempotent.
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lightning::io;

use crate::layout::{self, Namespace};
use crate::{KVStoreSync, Op, Store};

/// The tree holding every namespace.
const TREE: &str = "ldk";

/// Separates the three parts of a key. Keys and namespaces are restricted to `[A-Za-z0-9_-]`, so the
/// byte 0x00 never appears inside them.
const SEP: u8 = 0;

/// Trees of earlier versions, where they go now, and how their keys become store keys.
const LEGACY_TREES: [(&str, Namespace, fn(&[u8]) -> io::Result<String>); 6] = [
    ("wallet", layout::WALLET, wallet_key),
    ("payments", layout::PAYMENTS, record_key),
    ("invoices", layout::INVOICES, record_key),
    ("forwards", layout::FORWARDS, record_key),
    ("closed_channels", layout::CLOSED_CHANNELS, record_key),
    ("peer_addresses", layout::PEER_ADDRESSES, record_key),
];

/// A wallet change set's u64 big-endian sequence number, as the wallet keys it now.
fn wallet_key(raw: &[u8]) -> io::Result<String> {
    let seq: [u8; 8] = raw.try_into().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("legacy wallet key of {} bytes", raw.len())))?;
    Ok(layout::sequence_key(u64::from_be_bytes(seq)))
}

/// A record's raw id, as the node's records key it now.
fn record_key(raw: &[u8]) -> io::Result<String> {
    Ok(crate::hex_key(raw))
}

/// sled-backed [`KVStoreSync`].
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    sync: Arc<Syncer>,
}

/// What makes sled's writes survive a power loss (see the module doc).
struct Syncer {
    /// sled's log file, `<path>/db`.
    log: File,
    blobs: PathBuf,
    /// Blob files already fsynced (sled never rewrites one; names of removed ones are forgotten).
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    /// fdatasync/fsync calls made, for tests and benchmarks.
    syncs: AtomicU64,
}

impl Syncer {
    fn open(path: &Path) -> io::Result<Self> {
        let log = File::open(path.join("db"))?;
        let blobs = path.join("blobs");
        // The directory entries of the database itself: once, as sled created them.
        for dir in [Some(blobs.as_path()), Some(path), path.parent()].into_iter().flatten() {
            if dir.as_os_str().is_empty() {
                continue;
            }
            File::open(dir)?.sync_all()?;
        }
        let syncer = Syncer { log, blobs, synced_blobs: Mutex::new(HashSet::new()), syncs: AtomicU64::new(0) };
        Ok(syncer)
    }

    /// After sled's flush: the log's bytes and size, then any new blob file and its name.
    fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::new();
        let mut new = false;
        for entry in std::fs::read_dir(&self.blobs)? {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                match File::open(self.blobs.join(&name)) {
                    Ok(f) => f.sync_all()?,
                    // Removed by sled's collector since it was listed: nothing to keep.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                }
                self.syncs.fetch_add(1, Ordering::Relaxed);
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)?.sync_all()?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        *synced = present;
        Ok(())
    }
}

impl SledStore {
    /// Opens (or creates) the database at `path`, migrating an earlier layout first.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let db = sled::open(path.as_ref()).map_err(to_io)?;
        let tree = db.open_tree(TREE).map_err(to_io)?;
        db.flush().map_err(to_io)?;
        let sync = Arc::new(Syncer::open(path.as_ref())?);
        let store = Self { db, tree, sync };
        // Blobs written before this open (by an earlier process) may never have been synced.
        store.durable()?;
        store.migrate()?;
        Ok(store)
    }

    /// How many fdatasync/fsync calls this store has made since it was opened.
    pub fn syncs(&self) -> u64 {
        self.sync.syncs.load(Ordering::Relaxed)
    }

    /// Moves every legacy tree into the store's tree (see the module doc).
    fn migrate(&self) -> io::Result<()> {
        let present = self.db.tree_names();
        for (name, ns, key_of) in LEGACY_TREES {
            if !present.iter().any(|n| n.as_ref() == name.as_bytes()) {
                continue;
            }
            let legacy = self.db.open_tree(name).map_err(to_io)?;
            let mut batch = sled::Batch::default();
            let mut count = 0usize;
            for item in legacy.iter() {
                let (k, v) = item.map_err(to_io)?;
                let key = key_of(&k)?;
                crate::check(ns.primary, ns.secondary, Some(&key))?;
                batch.insert(Self::full_key(ns.primary, ns.secondary, &key), v);
                count += 1;
            }
            self.tree.apply_batch(batch).map_err(to_io)?;
            self.durable()?;
            // Only now that every entry is on disk in the store's tree.
            self.db.drop_tree(name).map_err(to_io)?;
            self.durable()?;
            tracing::info!(tree = name, namespace = %format!("{}/{}", ns.primary, ns.secondary), entries = count, "moved a legacy sled tree into the store");
        }
        Ok(())
    }

    fn full_key(primary: &str, secondary: &str, key: &str) -> Vec<u8> {
        let mut k = Self::prefix(primary, secondary);
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn prefix(primary: &str, secondary: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(primary.len() + secondary.len() + 2);
        k.extend_from_slice(primary.as_bytes());
        k.push(SEP);
        k.extend_from_slice(secondary.as_bytes());
        k.push(SEP);
        k
    }

    /// Waits until everything written so far would survive a power loss (see the module doc).
    fn durable(&self) -> io::Result<()> {
        self.db.flush().map_err(to_io)?;
        self.sync.sync()
    }
}

fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e.into(),
        other => io::Error::new(io::ErrorKind::Other, other.to_string()),
    }
}

impl KVStoreSync for SledStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        crate::check(primary, secondary, Some(key))?;
        match self.tree.get(Self::full_key(primary, secondary, key)).map_err(to_io)? {
            Some(v) => Ok(v.to_vec()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("{primary}/{secondary}/{key} not found"))),
        }
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        crate::check(primary, secondary, Some(key))?;
        self.tree.insert(Self::full_key(primary, secondary, key), buf).map_err(to_io)?;
        // Durable before returning: see the crate doc. LDK treats Ok as "persisted".
        self.durable()
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> io::Result<()> {
        crate::check(primary, secondary, Some(key))?;
        self.tree.remove(Self::full_key(primary, secondary, key)).map_err(to_io)?;
        // A lazy remove may be lost on crash (LDK replays it); a non-lazy one must not be.
        if lazy {
            Ok(())
        } else {
            self.durable()
        }
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        crate::check(primary, secondary, None)?;
        let prefix = Self::prefix(primary, secondary);
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item.map_err(to_io)?;
            let rest = &k[prefix.len()..];
            // Keys of deeper namespaces never match: the prefix ends in a separator and keys have none.
            if !rest.contains(&SEP) {
                keys.push(String::from_utf8_lossy(rest).into_owned());
            }
        }
        Ok(keys)
    }
}

impl Store for SledStore {
    fn write_batch(&self, ops: Vec<Op>) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                Op::Write { primary, secondary, key, value } => {
                    crate::check(&primary, &secondary, Some(&key))?;
                    batch.insert(Self::full_key(&primary, &secondary, &key), value);
                }
                Op::Remove { primary, secondary, key } => {
                    crate::check(&primary, &secondary, Some(&key))?;
                    batch.remove(Self::full_key(&primary, &secondary, &key));
                }
            }
        }
        // One tree, one batch: sled applies it atomically. Then one flush and one sync for all of it.
        self.tree.apply_batch(batch).map_err(to_io)?;
        self.durable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path().join("db")).unwrap();
        (dir, s)
    }

    #[test]
    fn write_read_list_remove() {
        let (_d, s) = store();
        s.write("monitors", "", "abc", vec![1, 2, 3]).unwrap();
        s.write("monitors", "", "def", vec![4]).unwrap();
        s.write("monitor_updates", "abc", "1", vec![9]).unwrap();
        s.write("", "", "manager", vec![7]).unwrap();
        assert_eq!(s.read("monitors", "", "abc").unwrap(), vec![1, 2, 3]);
        let mut keys = s.list("monitors", "").unwrap();
        keys.sort();
        assert_eq!(keys, vec!["abc", "def"]);
        assert_eq!(s.list("monitor_updates", "abc").unwrap(), vec!["1"]);
        assert_eq!(s.list("", "").unwrap(), vec!["manager"]);
        s.remove("monitors", "", "abc", false).unwrap();
        assert_eq!(s.read("monitors", "", "abc").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(s.list("monitors", "").unwrap(), vec!["def"]);
        // Removing what is not there succeeds.
        s.remove("monitors", "", "nothing", true).unwrap();
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        SledStore::open(dir.path()).unwrap().write("a", "b", "c", vec![5; 100]).unwrap();
        assert_eq!(SledStore::open(dir.path()).unwrap().read("a", "b", "c").unwrap(), vec![5; 100]);
    }

    /// sled's own flush ends in `sync_file_range`, which a power loss defeats: every write and non-lazy
    /// remove must also fdatasync the log before it returns; a lazy remove need not.
    #[test]
    fn every_write_and_non_lazy_remove_is_fdatasynced_before_it_returns() {
        let (_d, s) = store();
        let before = s.syncs();
        s.write("monitors", "", "abc", vec![1; 100]).unwrap();
        assert_eq!(s.syncs(), before + 1);
        s.remove("monitors", "", "abc", false).unwrap();
        assert_eq!(s.syncs(), before + 2);
        s.remove("monitors", "", "abc", true).unwrap();
        assert_eq!(s.syncs(), before + 2);
    }

    /// A value over a quarter segment (a busy channel's ChannelMonitor, the ChannelManager) is written by
    /// sled to its own file under `blobs/`, with no sync at all: the store fsyncs that file and the
    /// directory holding its name, once.
    #[test]
    fn a_large_value_in_its_own_blob_file_is_fsynced_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let before = s.syncs();
        s.write("monitors", "", "big", vec![7; 300_000]).unwrap();
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs >= 1, "sled wrote the value inline: this test no longer covers blobs");
        // The log, the new blob file(s), the blobs directory.
        assert_eq!(s.syncs(), before + 1 + blobs as u64 + 1);
        let before = s.syncs();
        s.write("monitors", "", "small", vec![1; 10]).unwrap();
        assert_eq!(s.syncs(), before + 1, "a blob synced once is not synced again");
        drop(s);
        assert_eq!(SledStore::open(dir.path()).unwrap().read("monitors", "", "big").unwrap(), vec![7; 300_000]);
    }

    /// Group commit: a batch costs one log sync however many changes it holds, applies them in order, and
    /// with a bad key changes nothing.
    #[test]
    fn a_batch_is_applied_in_order_with_one_sync_or_not_at_all() {
        let (_d, s) = store();
        s.write("monitor_updates", "m", "1", vec![1]).unwrap();
        let before = s.syncs();
        let ops = vec![
            Op::write("", "", "manager", vec![9; 50]),
            Op::write("monitors", "", "m", vec![8; 50]),
            Op::write("monitors", "", "m", vec![7; 50]),
            Op::remove("monitor_updates", "m", "1"),
        ];
        s.write_batch(ops).unwrap();
        assert_eq!(s.syncs(), before + 1);
        assert_eq!(s.read("monitors", "", "m").unwrap(), vec![7; 50], "the later write of a key wins");
        assert_eq!(s.read("", "", "manager").unwrap(), vec![9; 50]);
        assert!(s.list("monitor_updates", "m").unwrap().is_empty());

        let bad = vec![Op::write("monitors", "", "n", vec![1]), Op::write("a/b", "", "k", vec![])];
        assert_eq!(s.write_batch(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(s.read("monitors", "", "n").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn rejects_bad_keys() {
        let (_d, s) = store();
        assert_eq!(s.write("a/b", "", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(s.write("", "x", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(s.read("a", "", "").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    /// A data dir as lanes wrote it before the one store: LDK's state in tree `ldk`, BDK's change sets
    /// (JSON) under u64 big-endian keys in tree `wallet`, a node record (JSON) under its raw 32-byte id
    /// in tree `payments`, and the other record trees the node opened, empty or not.
    fn write_legacy_db(path: &Path) {
        let db = sled::open(path).unwrap();
        let ldk = db.open_tree("ldk").unwrap();
        ldk.insert(b"monitors\0\0abcd_1", &b"a monitor"[..]).unwrap();
        ldk.insert(b"\0\0manager", &b"the manager"[..]).unwrap();
        let wallet = db.open_tree("wallet").unwrap();
        wallet.insert(0u64.to_be_bytes(), &br#"{"network":"regtest"}"#[..]).unwrap();
        wallet.insert(1u64.to_be_bytes(), &br#"{"local_chain":{"blocks":{}}}"#[..]).unwrap();
        db.open_tree("payments").unwrap().insert([0xab; 32], &br#"{"amount_msat":1000}"#[..]).unwrap();
        let mut peer = vec![0x02];
        peer.extend([0x11; 32]);
        db.open_tree("peer_addresses").unwrap().insert(peer, &br#"["127.0.0.1:9735"]"#[..]).unwrap();
        for empty in ["invoices", "forwards", "closed_channels"] {
            db.open_tree(empty).unwrap();
        }
        db.flush().unwrap();
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn opening_a_legacy_data_dir_moves_every_tree_into_the_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        write_legacy_db(&path);

        let check_contents = |s: &SledStore| {
            assert_eq!(s.read("monitors", "", "abcd_1").unwrap(), b"a monitor");
            assert_eq!(s.read("", "", "manager").unwrap(), b"the manager");
            let w = layout::WALLET;
            assert_eq!(sorted(s.list(w.primary, w.secondary).unwrap()), [layout::sequence_key(0), layout::sequence_key(1)]);
            assert_eq!(s.read(w.primary, w.secondary, &layout::sequence_key(0)).unwrap(), br#"{"network":"regtest"}"#);
            assert_eq!(s.read(w.primary, w.secondary, &layout::sequence_key(1)).unwrap(), br#"{"local_chain":{"blocks":{}}}"#);
            let p = layout::PAYMENTS;
            assert_eq!(s.list(p.primary, p.secondary).unwrap(), ["ab".repeat(32)]);
            assert_eq!(s.read(p.primary, p.secondary, &"ab".repeat(32)).unwrap(), br#"{"amount_msat":1000}"#);
            let a = layout::PEER_ADDRESSES;
            assert_eq!(s.read(a.primary, a.secondary, &format!("02{}", "11".repeat(32))).unwrap(), br#"["127.0.0.1:9735"]"#);
            for ns in [layout::INVOICES, layout::FORWARDS, layout::CLOSED_CHANNELS] {
                assert!(s.list(ns.primary, ns.secondary).unwrap().is_empty());
            }
        };

        let s = SledStore::open(&path).unwrap();
        check_contents(&s);
        let mut trees: Vec<_> = s.db.tree_names().into_iter().map(|n| String::from_utf8_lossy(&n).into_owned()).collect();
        trees.sort();
        assert_eq!(trees, ["__sled__default", "ldk"], "legacy trees are dropped once moved");
        // Written after the migration: a second open must not bring back or overwrite anything.
        s.remove(layout::PAYMENTS.primary, layout::PAYMENTS.secondary, &"ab".repeat(32), false).unwrap();
        s.write(layout::WALLET.primary, layout::WALLET.secondary, &layout::sequence_key(1), b"newer".to_vec()).unwrap();
        drop(s);

        let s = SledStore::open(&path).unwrap();
        assert!(s.list(layout::PAYMENTS.primary, layout::PAYMENTS.secondary).unwrap().is_empty());
        assert_eq!(s.read(layout::WALLET.primary, layout::WALLET.secondary, &layout::sequence_key(1)).unwrap(), b"newer");
        assert_eq!(s.read("", "", "manager").unwrap(), b"the manager");
    }

    #[test]
    fn a_migration_cut_short_before_the_legacy_tree_was_dropped_is_redone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        write_legacy_db(&path);
        {
            // A crash after the batch reached the store's tree, before the legacy tree was dropped: the
            // entries are in both places.
            let db = sled::open(&path).unwrap();
            let tree = db.open_tree(TREE).unwrap();
            tree.insert(SledStore::full_key(layout::PAYMENTS.primary, layout::PAYMENTS.secondary, &"ab".repeat(32)), &br#"{"amount_msat":1000}"#[..]).unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(&path).unwrap();
        assert_eq!(s.list(layout::PAYMENTS.primary, layout::PAYMENTS.secondary).unwrap(), ["ab".repeat(32)]);
        assert_eq!(s.read(layout::PAYMENTS.primary, layout::PAYMENTS.secondary, &"ab".repeat(32)).unwrap(), br#"{"amount_msat":1000}"#);
        assert!(!s.db.tree_names().iter().any(|n| n.as_ref() == b"payments"));
    }

    #[test]
    fn a_legacy_wallet_key_that_is_not_a_sequence_number_stops_the_open_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = sled::open(&path).unwrap();
            db.open_tree("wallet").unwrap().insert(b"odd", &b"{}"[..]).unwrap();
            db.flush().unwrap();
        }
        assert_eq!(SledStore::open(&path).err().map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        let db = sled::open(&path).unwrap();
        assert_eq!(db.open_tree("wallet").unwrap().get(b"odd").unwrap().as_deref(), Some(&b"{}"[..]));
    }
}
