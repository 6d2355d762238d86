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
//! Large values, past sled: sled rewrites a whole leaf (up to 16 entries, values and all) after every 10
//! changes to it, so a large value would be rewritten whenever its neighbours change; values longer than
//! 6 KiB are stored in pieces instead ([`crate::sled_pieces`] has the layout and why).
//!
//! Compaction, past sled: sled 0.34 does not give back the space of values it replaced. Replaying a
//! sender's writes (`cargo bench -p lanes-store --bench growth`), its directory grew by ~48 KB per payment
//! and reached 62 times the live data after 10,000 payments (issue 17 saw 1.1 GB for 3.3 MB live). So
//! every [`COMPACTION_CHECK_EVERY`] changes the store compares its directory (as `du` counts it) with the
//! live data it held at its last compaction and, past [`COMPACTION_RATIO`] times that (live counted as at
//! least [`COMPACTION_MIN_LIVE`]; and never before it grew by the live data since the last compaction, as
//! a fresh sled database takes about twice its data), rewrites itself with only the live data ([`SledStore::compact`]), every other
//! use waiting meanwhile: (1) the live entries into `<db>.compacting`, synced, closed; (2) rename `<db>`
//! to `<db>.old`, then `<db>.compacting` to `<db>`, the parent directory synced after each; (3) open
//! `<db>`, remove `<db>.old`. A crash in (1) leaves `<db>` whole and a partial copy, which the next open
//! drops; between the renames, only the complete copy and the old one, and the next open puts the copy
//! in place; after them, a leftover `<db>.old`, removed. sled lets go of a database's file lock only once
//! its background threads have, a little after its handle is dropped, so (3) waits for the lock (bounded).
//! A compaction that fails in (1) changes nothing: the write that set it off still succeeds, a WARN says
//! why, and a later write tries again. One that fails from the first rename on leaves the open handle on
//! the moved files, so the store refuses every later use (the node stops) and the next open repairs it.
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
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use lightning::io;

use crate::layout::{self, Namespace};
use crate::sled_pieces::{self, Changes};
use crate::{KVStoreSync, Op, Store};

/// The tree holding every namespace.
const TREE: &str = "ldk";

/// Separates the three parts of a key. Keys and namespaces are restricted to `[A-Za-z0-9_-]`, so the
/// byte 0x00 never appears inside them.
pub(crate) const SEP: u8 = 0;

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
    /// The open database: replaced whole by a compaction, so every use holds the lock (reads and writes
    /// share it; only a compaction takes it alone).
    inner: Arc<RwLock<Inner>>,
    path: Arc<PathBuf>,
    /// Sync calls made, across compactions (for tests and benchmarks).
    syncs: Arc<AtomicU64>,
    compaction: Arc<Compaction>,
    /// Set when a compaction failed past its first rename: every later use fails with this.
    broken: Arc<std::sync::OnceLock<String>>,
    /// Held while a change is planned and applied, and while a large value or a list is read (see
    /// [`crate::sled_pieces`]): taken after `inner`'s lock, never before.
    writes: Arc<Mutex<()>>,
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    sync: Syncer,
}

/// When to compact (see the module doc).
struct Compaction {
    /// Changes since the directory's size was last looked at.
    changes: AtomicU64,
    /// Bytes of keys and values the store held at its last compaction (or open).
    live: AtomicU64,
    /// The directory's size right after the last compaction (0 before the first).
    after: AtomicU64,
    done: AtomicU64,
    /// [`COMPACTION_MIN_LIVE`], smaller in tests.
    min_live: u64,
}

/// A compaction is considered every this many changes (a `stat` and a directory listing).
const COMPACTION_CHECK_EVERY: u64 = 64;
/// The directory may grow to this many times the live data before it is compacted (and always by the live
/// data past its size right after the last compaction: a fresh sled database takes about twice its data).
const COMPACTION_RATIO: u64 = 4;
/// Entries per batch when copying the live data: sled lays out a copy made in smaller batches, each flushed,
/// more tightly (2.0 times its data against 2.8 for one batch, measured with 8 MB).
const COMPACTION_CHUNK: usize = 500;
/// Live data counted as at least this much, so a small store is not compacted over and over: its directory may
/// reach 128 MB. Under load sled grows fast: a node paying 200 keysends/s over one channel grew ~9 MB a second,
/// and with 4 MB here its 3 MB of live data was compacted every 0.6-0.9 s, ~50 ms each with every store use
/// waiting (issue 14, 2026-12-07); now about every 12 s, at the same cost each.
const COMPACTION_MIN_LIVE: u64 = 32_000_000;
/// How long opening a database waits for its lock: sled lets go of it only once the background threads of the
/// handle last dropped have (a compaction reopens the copy it just closed).
const RELOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What makes sled's writes survive a power loss (see the module doc).
struct Syncer {
    /// sled's log file, `<path>/db`.
    log: File,
    blobs: PathBuf,
    /// Blob files already fsynced (sled never rewrites one; names of removed ones are forgotten).
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    syncs: Arc<AtomicU64>,
}

impl Syncer {
    fn open(path: &Path, syncs: Arc<AtomicU64>) -> io::Result<Self> {
        let log = File::open(path.join("db"))?;
        let blobs = path.join("blobs");
        // The directory entries of the database itself: once, as sled created them.
        for dir in [Some(blobs.as_path()), Some(path), path.parent()].into_iter().flatten() {
            if dir.as_os_str().is_empty() {
                continue;
            }
            File::open(dir)?.sync_all()?;
        }
        let syncer = Syncer { log, blobs, synced_blobs: Mutex::new(HashSet::new()), syncs };
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

impl Inner {
    /// Opens (or creates) the sled database at `path` and makes what is in it durable.
    fn open(path: &Path, syncs: Arc<AtomicU64>) -> io::Result<Self> {
        let db = sled::open(path).map_err(to_io)?;
        let tree = db.open_tree(TREE).map_err(to_io)?;
        db.flush().map_err(to_io)?;
        let inner = Inner { db, tree, sync: Syncer::open(path, syncs)? };
        // Blobs written before this open (by an earlier process) may never have been synced.
        inner.durable()?;
        Ok(inner)
    }

    /// [`Inner::open`] of a database this process may just have closed: sled's background threads may still
    /// hold its lock for a moment, so a lock error is retried until [`RELOCK_WAIT`].
    fn reopen(path: &Path, syncs: &Arc<AtomicU64>) -> io::Result<Self> {
        let deadline = std::time::Instant::now() + RELOCK_WAIT;
        loop {
            match Self::open(path, Arc::clone(syncs)) {
                Err(e) if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                opened => return opened,
            }
        }
    }

    /// Waits until everything written so far would survive a power loss (see the module doc).
    fn durable(&self) -> io::Result<()> {
        self.db.flush().map_err(to_io)?;
        self.sync.sync()
    }

    /// Bytes of keys and values in the store's tree.
    fn live_bytes(&self) -> io::Result<u64> {
        let mut live = 0u64;
        for item in self.tree.iter() {
            let (k, v) = item.map_err(to_io)?;
            live += (k.len() + v.len()) as u64;
        }
        Ok(live)
    }
}

/// `<data-dir>/db.compacting`, `<data-dir>/db.old`: where a compaction builds the new database and puts the
/// old one aside.
fn compaction_paths(path: &Path) -> (PathBuf, PathBuf) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "db".into());
    (path.with_file_name(format!("{name}.compacting")), path.with_file_name(format!("{name}.old")))
}

/// fsyncs a directory, so the renames and creations in it survive a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all().map_err(Into::into)
}

/// Finishes or undoes a compaction a crash cut short (see the module doc), before the database is opened.
fn recover_compaction(path: &Path) -> io::Result<()> {
    let (new, old) = compaction_paths(path);
    let parent = path.parent().unwrap_or(Path::new(""));
    match (path.exists(), new.exists(), old.exists()) {
        // Between the two renames: the new database is complete (synced before the first rename).
        (false, true, true) => {
            std::fs::rename(&new, path)?;
            sync_dir(parent)?;
            tracing::info!(path = %path.display(), "finished a store compaction cut short by a crash");
        }
        // Before the renames: the copy may be incomplete; the database in place is whole.
        (true, true, _) => {
            std::fs::remove_dir_all(&new)?;
            tracing::info!(path = %path.display(), "dropped a store compaction cut short by a crash");
        }
        _ => {}
    }
    if path.exists() && old.exists() {
        // After both renames: the old database is no longer needed.
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// What a directory and everything under it takes on disk, as `du` counts it (a sled database: its log and
/// its blob files). Benchmarks report data dirs with it too.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            // What the files take on disk, as du says (sled's log file is sparse where it preallocates).
            Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512,
            Err(_) => 0,
        })
        .sum()
}

impl SledStore {
    /// Opens (or creates) the database at `path`, finishing or undoing a compaction a crash cut short and
    /// migrating an earlier layout first.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_with(path, COMPACTION_MIN_LIVE)
    }

    /// [`SledStore::open`], counting live data as at least `min_live` bytes when deciding to compact
    /// ([`COMPACTION_MIN_LIVE`] by default): tests use a small one, to compact often.
    ///
    /// A database still locked is waited for, up to [`RELOCK_WAIT`]: a store this process just dropped keeps
    /// its lock until sled's background threads let go (the store's own reopen-after-drop test failed once in
    /// CI on exactly that). Another process holding it makes this fail after the wait.
    pub fn open_with(path: impl AsRef<Path>, min_live: u64) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        recover_compaction(&path)?;
        let syncs = Arc::new(AtomicU64::new(0));
        let inner = Inner::reopen(&path, &syncs)?;
        let store = Self {
            inner: Arc::new(RwLock::new(inner)),
            path: Arc::new(path),
            syncs,
            compaction: Arc::new(Compaction { changes: AtomicU64::new(0), live: AtomicU64::new(0), after: AtomicU64::new(0), done: AtomicU64::new(0), min_live }),
            broken: Arc::new(std::sync::OnceLock::new()),
            writes: Arc::new(Mutex::new(())),
        };
        store.migrate()?;
        store.compaction.live.store(store.inner()?.live_bytes()?, Ordering::Relaxed);
        store.compact_if_grown()?;
        Ok(store)
    }

    /// The open database, unless a failed compaction left the store unusable.
    fn inner(&self) -> io::Result<RwLockReadGuard<'_, Inner>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        self.usable()?;
        Ok(inner)
    }

    /// Err once a failed compaction left the store unusable (see the module doc).
    fn usable(&self) -> io::Result<()> {
        match self.broken.get() {
            None => Ok(()),
            Some(why) => Err(io::Error::new(io::ErrorKind::Other, format!("the store is unusable until lanesd restarts: {why}"))),
        }
    }

    /// How many fdatasync/fsync calls this store has made since it was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// How many times this store has compacted itself since it was opened.
    pub fn compactions(&self) -> u64 {
        self.compaction.done.load(Ordering::Relaxed)
    }

    /// After `n` changes: compacts when the directory has grown past [`COMPACTION_RATIO`] times the live data.
    fn changed(&self, n: u64) -> io::Result<()> {
        let before = self.compaction.changes.fetch_add(n, Ordering::Relaxed);
        if (before + n) / COMPACTION_CHECK_EVERY == before / COMPACTION_CHECK_EVERY {
            return Ok(());
        }
        self.compact_if_grown()
    }

    /// [`SledStore::maybe_compact`]; a failure that left the store intact is only logged (the changes that
    /// set it off are durable already; a later change tries again).
    fn compact_if_grown(&self) -> io::Result<()> {
        match self.maybe_compact() {
            Err(e) if self.broken.get().is_none() => {
                tracing::warn!(path = %self.path.display(), error = %e, "store compaction failed; the store is unchanged and will try again");
                Ok(())
            }
            done => done,
        }
    }

    fn maybe_compact(&self) -> io::Result<()> {
        let live = self.compaction.live.load(Ordering::Relaxed).max(self.compaction.min_live);
        let threshold = (COMPACTION_RATIO * live).max(self.compaction.after.load(Ordering::Relaxed) + live);
        if dir_size(&self.path) <= threshold {
            return Ok(());
        }
        self.compact()
    }

    /// Rewrites the database with only its live data (sled never gives back the space of values it
    /// replaced: issue 17 measured it growing without bound). Every other use of the store waits meanwhile.
    /// Crash-safe in every step: see the module doc.
    pub fn compact(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        self.usable()?;
        let before = dir_size(&self.path);
        let (new_path, old_path) = compaction_paths(&self.path);
        let parent = self.path.parent().unwrap_or(Path::new("")).to_path_buf();
        if new_path.exists() {
            std::fs::remove_dir_all(&new_path)?;
        }
        // (1) The live data into a new database beside the old one, made durable, then closed. A failure
        // here changes nothing (the partial copy is dropped now or at the next open).
        let copied = (|| {
            let new = Inner::reopen(&new_path, &self.syncs)?;
            let (mut live, mut batch, mut n) = (0u64, sled::Batch::default(), 0usize);
            for item in inner.tree.iter() {
                let (k, v) = item.map_err(to_io)?;
                live += (k.len() + v.len()) as u64;
                batch.insert(k, v);
                n += 1;
                if n % COMPACTION_CHUNK == 0 {
                    new.tree.apply_batch(std::mem::take(&mut batch)).map_err(to_io)?;
                    new.db.flush().map_err(to_io)?;
                }
            }
            new.tree.apply_batch(batch).map_err(to_io)?;
            new.durable()?;
            sync_dir(&parent)?;
            Ok::<_, io::Error>(live)
        })();
        let live = match copied {
            Ok(live) => live,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&new_path);
                return Err(e);
            }
        };
        // (2) The old database aside, the new one in its place: each rename durable before the next step.
        // (3) Open the new one in place (the old handle, now under db.old, is dropped). From the first
        // rename on, the open handle points at moved files: a failure makes the store refuse every use
        // until a restart, whose open finishes the compaction (see the module doc).
        let swapped = (|| {
            std::fs::rename(&*self.path, &old_path)?;
            sync_dir(&parent)?;
            std::fs::rename(&new_path, &*self.path)?;
            sync_dir(&parent)?;
            Inner::reopen(&self.path, &self.syncs)
        })();
        match swapped {
            Ok(new) => *inner = new,
            Err(e) => {
                let _ = self.broken.set(format!("a compaction failed after moving the database: {e}"));
                tracing::error!(path = %self.path.display(), error = %e, "store compaction failed after moving the database; the store refuses every use until lanesd restarts");
                return Err(e);
            }
        }
        // Still under the lock: a next compaction moves the database to the same `<db>.old`.
        if let Err(e) = std::fs::remove_dir_all(&old_path) {
            tracing::warn!(path = %old_path.display(), error = %e, "could not remove the database a compaction replaced; the next start removes it");
        }
        drop(inner);
        let after = dir_size(&self.path);
        self.compaction.live.store(live, Ordering::Relaxed);
        self.compaction.after.store(after, Ordering::Relaxed);
        self.compaction.done.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            before_mb = before / 1_000_000,
            after_mb = after / 1_000_000,
            live_mb = live / 1_000_000,
            ms = started.elapsed().as_millis() as u64,
            "store compacted"
        );
        Ok(())
    }

    /// Moves every legacy tree into the store's tree (see the module doc).
    fn migrate(&self) -> io::Result<()> {
        let inner = self.inner()?;
        let present = inner.db.tree_names();
        for (name, ns, key_of) in LEGACY_TREES {
            if !present.iter().any(|n| n.as_ref() == name.as_bytes()) {
                continue;
            }
            let legacy = inner.db.open_tree(name).map_err(to_io)?;
            let mut batch = sled::Batch::default();
            let mut count = 0usize;
            for item in legacy.iter() {
                let (k, v) = item.map_err(to_io)?;
                let key = key_of(&k)?;
                crate::check(ns.primary, ns.secondary, Some(&key))?;
                batch.insert(Self::full_key(ns.primary, ns.secondary, &key), v);
                count += 1;
            }
            inner.tree.apply_batch(batch).map_err(to_io)?;
            inner.durable()?;
            // Only now that every entry is on disk in the store's tree.
            inner.db.drop_tree(name).map_err(to_io)?;
            inner.durable()?;
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

}

pub(crate) fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e.into(),
        other => io::Error::new(io::ErrorKind::Other, other.to_string()),
    }
}

impl SledStore {
    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plans `ops` into one sled batch and applies it (atomically: one tree), without syncing.
    fn apply(&self, inner: &Inner, ops: Vec<Op>) -> io::Result<()> {
        for op in &ops {
            let (Op::Write { primary, secondary, key, .. } | Op::Remove { primary, secondary, key }) = op;
            crate::check(primary, secondary, Some(key))?;
        }
        let _writes = self.lock_writes();
        let mut changes = Changes::new(&inner.tree);
        for op in ops {
            match op {
                Op::Write { primary, secondary, key, value } => changes.write(Self::full_key(&primary, &secondary, &key), value)?,
                Op::Remove { primary, secondary, key } => changes.remove(Self::full_key(&primary, &secondary, &key))?,
            }
        }
        inner.tree.apply_batch(changes.into_batch()).map_err(to_io)
    }
}

impl KVStoreSync for SledStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        crate::check(primary, secondary, Some(key))?;
        let full = Self::full_key(primary, secondary, key);
        let inner = self.inner()?;
        // A small value needs one read and no lock; a large one (or none) is read again under the lock.
        let found = match sled_pieces::get_small(&inner.tree, &full)? {
            Some(v) => Some(v),
            None => {
                let _writes = self.lock_writes();
                sled_pieces::get(&inner.tree, &full)?
            }
        };
        found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{primary}/{secondary}/{key} not found")))
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        {
            let inner = self.inner()?;
            self.apply(&inner, vec![Op::write(primary, secondary, key, buf)])?;
            // Durable before returning: see the crate doc. LDK treats Ok as "persisted".
            inner.durable()?;
        }
        self.changed(1)
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> io::Result<()> {
        {
            let inner = self.inner()?;
            self.apply(&inner, vec![Op::remove(primary, secondary, key)])?;
            // A lazy remove may be lost on crash (LDK replays it); a non-lazy one must not be.
            if !lazy {
                inner.durable()?;
            }
        }
        self.changed(1)
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        crate::check(primary, secondary, None)?;
        let prefix = Self::prefix(primary, secondary);
        let inner = self.inner()?;
        let found = {
            let _writes = self.lock_writes();
            sled_pieces::list(&inner.tree, &prefix)?
        };
        // Keys of deeper namespaces never match: the prefix ends in a separator and keys have none.
        Ok(found.into_iter().filter(|rest| !rest.contains(&SEP)).map(|rest| String::from_utf8_lossy(&rest).into_owned()).collect())
    }
}

impl Store for SledStore {
    fn write_unsynced(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        // No sync: the next synced write or batch (sled flushes its whole log) makes it durable.
        self.apply(&*self.inner()?, vec![Op::write(primary, secondary, key, buf)])?;
        self.changed(1)
    }

    fn write_batch(&self, ops: Vec<Op>) -> io::Result<()> {
        let n = ops.len() as u64;
        {
            let inner = self.inner()?;
            // One tree, one batch: sled applies it atomically. Then one flush and one sync for all of it.
            self.apply(&inner, ops)?;
            inner.durable()?;
        }
        self.changed(n)
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
    fn keeps_the_store_contract() {
        let (_d, s) = store();
        crate::contract::check_all(&s);
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

    /// sled writes a fragment larger than 128 KiB to its own file under `blobs/`, with no sync at all: the
    /// store fsyncs that file and the directory holding its name, once. The store itself no longer writes
    /// such values (see [`crate::sled_pieces`]), but a data dir of an earlier lanes holds them (and sled
    /// could still write a large index node): the value is put in the tree the way an earlier lanes did.
    #[test]
    fn a_large_value_in_its_own_blob_file_is_fsynced_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let before = s.syncs();
        s.inner().unwrap().tree.insert(SledStore::full_key("monitors", "", "big"), vec![7; 300_000]).unwrap();
        s.write("monitors", "", "small", vec![1; 10]).unwrap();
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs >= 1, "sled wrote the value inline: this test no longer covers blobs");
        // The log, the new blob file(s), the blobs directory.
        assert_eq!(s.syncs(), before + 1 + blobs as u64 + 1);
        let before = s.syncs();
        s.write("monitors", "", "small", vec![2; 10]).unwrap();
        assert_eq!(s.syncs(), before + 1, "a blob synced once is not synced again");
        drop(s);
        assert_eq!(SledStore::open(dir.path()).unwrap().read("monitors", "", "big").unwrap(), vec![7; 300_000]);
    }

    /// issue 14: sled rewrites a whole leaf after every 10 changes to it. Stored whole, a large monitor was
    /// rewritten (a blob file, synced) whenever the monitor updates sorting right before it changed, which
    /// every flush does; its cost grew with the monitor. In pieces, a flush beside it costs one log sync.
    #[test]
    fn changes_next_to_a_large_value_do_not_rewrite_it() {
        let (dir, s) = store();
        let monitor: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        s.write("monitors", "", "chan", monitor.clone()).unwrap();
        let (before, blobs) = (s.syncs(), std::fs::read_dir(dir.path().join("db/blobs")).unwrap().count());
        for i in 1..=200u32 {
            let mut ops = vec![Op::write("monitor_updates", "chan", &i.to_string(), vec![9; 900])];
            if i > 3 {
                ops.push(Op::remove("monitor_updates", "chan", &(i - 3).to_string()));
            }
            s.write_batch(ops).unwrap();
        }
        assert_eq!(s.syncs() - before, 200, "one log sync per flush, no blob file synced");
        assert_eq!(std::fs::read_dir(dir.path().join("db/blobs")).unwrap().count(), blobs, "no blob file written");
        assert_eq!(s.read("monitors", "", "chan").unwrap(), monitor);
        assert_eq!(s.list("monitor_updates", "chan").unwrap(), vec!["198", "199", "200"]);
    }

    /// A key written small or removed leaves none of its pieces in the tree.
    #[test]
    fn no_piece_outlives_its_value() {
        let (_d, s) = store();
        s.write("monitors", "", "a", vec![3; 100_000]).unwrap();
        s.write("monitors", "", "b", vec![4; 50_000]).unwrap();
        s.write("monitors", "", "a", vec![5; 10_000]).unwrap();
        s.write("monitors", "", "a", vec![5; 10]).unwrap();
        s.remove("monitors", "", "b", false).unwrap();
        let raw: Vec<_> = s.inner().unwrap().tree.iter().keys().map(|k| k.unwrap()).collect();
        assert_eq!(raw, vec![SledStore::full_key("monitors", "", "a")], "only a's small value");
    }

    /// Group commit: a batch costs one log sync however many changes it holds, applies them in order, and
    /// with a bad key changes nothing.
    /// What a batch does is the contract's (`keeps_the_store_contract`); sled's part is that it costs one
    /// sync, and a refused one none.
    #[test]
    fn a_batch_costs_one_sync() {
        let (_d, s) = store();
        let before = s.syncs();
        s.write_batch(vec![Op::write("", "", "manager", vec![9; 50]), Op::write("monitors", "", "m", vec![8; 50]), Op::remove("monitor_updates", "m", "1")]).unwrap();
        assert_eq!(s.syncs(), before + 1);
        assert!(s.write_batch(vec![Op::write("monitors", "", "n", vec![1]), Op::write("a/b", "", "k", vec![])]).is_err());
        assert_eq!(s.syncs(), before + 1);
    }

    fn dir_of(store: &SledStore) -> u64 {
        super::dir_size(&store.path)
    }

    /// A small store under load is not compacted every few MB it grows: each compaction stops every store use
    /// (~50 ms for 3 MB live), and with live data counted as at least 4 MB a node paying 200 keysends/s was
    /// compacted every 0.6-0.9 s. With the default floor it may grow to 4 x 32 MB first (with the old floor this
    /// test compacts at 20 MB).
    #[test]
    fn a_small_busy_store_is_not_compacted_every_few_megabytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path().join("db")).unwrap();
        // A payer's writes, as a flush makes them: a monitor update stored alone (the oldest removed), a chunk
        // of the manager rewritten, and a payment record kept, until sled's directory passes 20 MB.
        let mut i = 0u64;
        while dir_of(&s) < 20_000_000 {
            assert!(i < 200_000, "sled grew only to {} bytes", dir_of(&s));
            let mut ops = vec![Op::write("monitor_updates", "m", &format!("{i:010}"), vec![i as u8; 600])];
            if i >= 50 {
                ops.push(Op::remove("monitor_updates", "m", &format!("{:010}", i - 50)));
            }
            ops.push(Op::write("manager_chunks", "", &format!("{:04}", i % 7), vec![i as u8; 3_000]));
            ops.push(Op::write("payments", "", &format!("{i:010}"), vec![i as u8; 200]));
            s.write_batch(ops).unwrap();
            i += 1;
        }
        assert_eq!(s.compactions(), 0, "compacted at {} bytes, with {} KB of payment records", dir_of(&s), i * 200 / 1_000);
    }

    /// sled keeps every replaced value's space: the store compacts itself, bounded at COMPACTION_RATIO
    /// times its live data (at least COMPACTION_MIN_LIVE), and loses nothing, across a reopen too.
    #[test]
    fn the_store_compacts_itself_and_keeps_every_live_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // Live data counted as at least 200 KB, so a few MB of writes show it.
        const MIN_LIVE: u64 = 200_000;
        let s = SledStore::open_with(&path, MIN_LIVE).unwrap();
        for i in 0..100u64 {
            s.write("payments", "", &format!("{i:04}"), vec![i as u8; 700]).unwrap();
        }
        let mut biggest = 0;
        for round in 0..400u32 {
            // A ChannelManager-like value rewritten over and over: 40 MB written, 100 KB live.
            s.write("", "", "manager", round.to_be_bytes().repeat(25_000)).unwrap();
            biggest = biggest.max(dir_of(&s));
        }
        assert!(s.compactions() >= 1, "never compacted: the directory is {} bytes", dir_of(&s));
        // Checked every 64 changes: up to 64 more values of 100 KB past the threshold.
        let bound = COMPACTION_RATIO * MIN_LIVE + 64 * 100_000;
        assert!(bound < 10_000_000, "the bound must be below what sled grows to without compaction");
        assert!(biggest <= bound, "the directory reached {biggest} bytes (bound {bound})");
        let check = |s: &SledStore| {
            assert_eq!(s.read("", "", "manager").unwrap(), 399u32.to_be_bytes().repeat(25_000));
            for i in 0..100u64 {
                assert_eq!(s.read("payments", "", &format!("{i:04}")).unwrap(), vec![i as u8; 700]);
            }
            assert_eq!(s.list("payments", "").unwrap().len(), 100);
        };
        check(&s);
        drop(s);
        let (new, old) = compaction_paths(&path);
        assert!(!new.exists() && !old.exists(), "a compaction left a directory behind");
        check(&SledStore::open(&path).unwrap());
    }

    /// sled lets go of a database's lock only once its background threads have: a compaction reopening the
    /// copy it just closed must wait for that, not fail (the crash test saw "could not acquire lock" stop a
    /// node). Writers on other threads keep going meanwhile.
    #[test]
    fn compacting_again_and_again_under_writes_never_fails() {
        const COMPACTIONS: u64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path().join("db")).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (s, stop) = (s.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        s.write("w", "", &format!("{w}-{}", i % 50), i.to_be_bytes().repeat(2_000)).unwrap();
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        // Busy threads, so sled's background threads are often descheduled while they still hold the lock.
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for _ in 0..COMPACTIONS {
            s.compact().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let written: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        busy.into_iter().for_each(|b| b.join().unwrap());
        assert!(s.compactions() >= COMPACTIONS);
        // Every write that returned Ok is there, with its last value. How many a writer got in depends on
        // the scheduler (each compaction holds every writer off; CI once saw one writer get only 46 in), so
        // the expected keys come from what each writer did, not from a fixed count.
        let mut expected = 0;
        for (w, &n) in written.iter().enumerate() {
            assert!(n > 0, "writer {w} never got a write in between compactions");
            for last in n.saturating_sub(50)..n {
                assert_eq!(s.read("w", "", &format!("{w}-{}", last % 50)).unwrap(), last.to_be_bytes().repeat(2_000), "writer {w}, write {last}");
                expected += 1;
            }
        }
        assert_eq!(s.list("w", "").unwrap().len(), expected);
    }

    /// A compaction that cannot even start its copy (here: a file where the copy goes) changes nothing: the
    /// writes that set it off succeed, and once the way is clear a later one compacts.
    #[test]
    fn a_compaction_that_fails_before_moving_anything_only_delays_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (new, _) = compaction_paths(&path);
        let s = SledStore::open_with(&path, 100_000).unwrap();
        std::fs::write(&new, b"in the way").unwrap();
        for round in 0..200u32 {
            s.write("", "", "manager", round.to_be_bytes().repeat(25_000)).unwrap();
        }
        assert_eq!(s.compactions(), 0);
        std::fs::remove_file(&new).unwrap();
        for round in 200..400u32 {
            s.write("", "", "manager", round.to_be_bytes().repeat(25_000)).unwrap();
        }
        assert!(s.compactions() >= 1);
        assert_eq!(s.read("", "", "manager").unwrap(), 399u32.to_be_bytes().repeat(25_000));
    }

    /// A compaction that fails once it has started moving the database (here: the first rename, onto a file)
    /// leaves a store that refuses every use, saying why, rather than writing where the next start would not
    /// look; reopening finds every entry.
    #[test]
    fn a_compaction_that_fails_while_moving_the_database_stops_the_store_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (_, old) = compaction_paths(&path);
        let s = SledStore::open(&path).unwrap();
        s.write("a", "", "k", b"kept".to_vec()).unwrap();
        std::fs::write(&old, b"in the way").unwrap();
        s.compact().unwrap_err();
        for e in [s.write("a", "", "k2", b"x".to_vec()).unwrap_err(), s.read("a", "", "k").unwrap_err()] {
            assert!(e.to_string().contains("unusable until lanesd restarts"), "{e}");
        }
        drop(s);
        std::fs::remove_file(&old).unwrap();
        let s = SledStore::open(&path).unwrap();
        assert_eq!(s.read("a", "", "k").unwrap(), b"kept");
        assert_eq!(s.list("a", "").unwrap(), vec!["k".to_string()]);
    }

    fn store_with(path: &Path, value: &[u8]) {
        let s = SledStore::open(path).unwrap();
        s.write("a", "", "k", value.to_vec()).unwrap();
    }

    /// A compaction a crash cut short is finished or dropped at the next open, whatever the step.
    #[test]
    fn a_compaction_cut_short_is_finished_or_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (new, old) = compaction_paths(&path);

        // In step (1): the database in place is whole; the partial copy is dropped.
        store_with(&path, b"in place");
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("db"), b"half a copy").unwrap();
        assert_eq!(SledStore::open(&path).unwrap().read("a", "", "k").unwrap(), b"in place");
        assert!(!new.exists());

        // Between the renames: the complete copy is put in place, the old one removed.
        std::fs::rename(&path, &old).unwrap();
        store_with(&new, b"the copy");
        assert_eq!(SledStore::open(&path).unwrap().read("a", "", "k").unwrap(), b"the copy");
        assert!(!new.exists() && !old.exists());

        // After both renames: the leftover old database is removed.
        store_with(&old, b"old");
        assert_eq!(SledStore::open(&path).unwrap().read("a", "", "k").unwrap(), b"the copy");
        assert!(!old.exists());
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
        let mut trees: Vec<_> = s.inner().unwrap().db.tree_names().into_iter().map(|n| String::from_utf8_lossy(&n).into_owned()).collect();
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
        assert!(!s.inner().unwrap().db.tree_names().iter().any(|n| n.as_ref() == b"payments"));
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
