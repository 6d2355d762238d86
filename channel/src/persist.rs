//! The order in which channel state reaches the disk: ChannelManager and ChannelMonitors together, the
//! manager never behind a monitor.
//!
//! Owns: every ChannelMonitor write and every ChannelManager write, in one ordered path, and the format of
//! monitors on disk (LDK's `MonitorUpdatingPersister` format: a full monitor now and then, the updates
//! since as small entries).
//!
//! Why: LDK force-closes a channel whose ChannelMonitor on disk is ahead of the ChannelManager on disk.
//! With plain synchronous writes, a crash between a monitor update and the next (lazy) manager write
//! leaves exactly that, and a kill -9 during payments force-closed channels. So monitor updates return
//! `InProgress`: LDK then holds the messages that depend on them (our commitment_signed or
//! revoke_and_ack) and records the update as in flight in the ChannelManager. [`OrderedPersister::flush`]
//! then (1) encodes the ChannelManager, which lists every queued update as in flight, (2) writes it and
//! every queued monitor change as one atomic batch of the store, with one sync for all of them (group
//! commit: one manager write covers every update queued meanwhile), (3) tells the ChainMonitor they
//! completed, which releases the messages. A crash before (2) leaves a manager and monitors as they were
//! before; after it, both in step. No monitor is ever ahead of the manager, and the peer never sees a
//! signature whose monitor state is not on disk.
//!
//! Incremental monitors: rewriting a whole ChannelMonitor for every update costs its full size (hundreds
//! of KB on a busy channel) several times per payment. Like LDK's `MonitorUpdatingPersister` (same keys
//! and format, so its reader loads them: see [`read_monitors`]), an update is stored alone under
//! `monitor_updates/<monitor>/<update id>`, and every [`MAX_PENDING_UPDATES`]th update, a chain-sync
//! write or a closing update writes the full monitor instead, dropping the updates it contains in the
//! same batch.
//!
//! Chain sync (a block touching a monitor) also rewrites whole monitors, and LDK asks for that even while
//! an update of the same monitor is queued: the monitor it hands over already holds that update. So those
//! writes join the same queue instead of going straight to disk (returning `InProgress`, which for a
//! chain-sync write needs no completion call); otherwise a block arriving mid-payment would put a monitor
//! on disk ahead of the manager.
//!
//! Must never: report an update completed before its monitor is on disk, write a ChannelManager that
//! was encoded before a monitor update it does not list, or write any monitor outside [`OrderedPersister::flush`].
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use lightning::chain::chainmonitor::Persist;
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::ChannelMonitorUpdateStatus;
use lightning::io;
use lightning::ln::types::ChannelId;
use lightning::sign::InMemorySigner;
use lightning::util::persist::{
    KVStoreSync, MonitorName, UpdateName, CHANNEL_MANAGER_PERSISTENCE_KEY, CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE,
    MONITOR_UPDATING_PERSISTER_PREPEND_SENTINEL,
};
use lightning::util::ser::Writeable;

use lanes_store::{DynStore, Op};

use crate::manager_chunks::ManagerChunks;
use crate::types::{ChainMonitor, ChannelManager, MonitorStore};

/// Updates stored alone before the next full monitor write (LDK's `maximum_pending_updates`), for a monitor
/// no larger than those updates together; a payment makes about four per channel. A larger monitor waits
/// until its updates add up to its size, up to [`MAX_UPDATES_ALONE`]: a monitor grows with every commitment
/// (LDK keeps each revoked one's txid and HTLCs; 2 MB after 11,000 payments in the `scale` bench), and
/// rewriting it every 100 updates would make the bytes written per payment grow with the channel's history.
pub const MAX_PENDING_UPDATES: u64 = 100;

/// The most updates stored alone, whatever the monitor's size: what a restart replays at most per channel.
pub const MAX_UPDATES_ALONE: u64 = 2_000;

/// How long a ChannelManager change that no monitor update goes with may wait to be written (see
/// [`ProcessorStore`]): under load LDK asks for a manager write after nearly
/// every event, three flushes in four wrote only the manager (over 100 KB with 64 payments in flight).
/// A large manager waits longer: see [`OrderedPersister::manager_write_interval`].
pub const MANAGER_WRITE_INTERVAL: Duration = Duration::from_millis(50);

/// A manager-only flush waits at least this many times as long as the last flush took, so such writes
/// take at most a fifth of the time: with 1,000 channels the manager is 3.5 MB and a flush about 20 ms, and
/// every flush on a payment's path waited behind these.
const MANAGER_WRITE_SHARE: u32 = 4;

/// LDK's update id for a channel closed by versions before 0.1: always a full write.
const LEGACY_CLOSED_CHANNEL_UPDATE_ID: u64 = u64::MAX;

/// Per monitor: what was stored alone since its last full write, as far as this process has seen.
#[derive(Default)]
struct Alone {
    /// Updates queued alone, and their bytes.
    count: u64,
    bytes: u64,
    /// The last full monitor's size (0 until this process writes one).
    full: u64,
    /// The first update queued alone since the last full write.
    first: Option<u64>,
}

impl Alone {
    /// Whether the next full write is due: enough updates, together as large as the monitor, or the cap.
    fn due(&self) -> bool {
        (self.count >= MAX_PENDING_UPDATES && self.bytes >= self.full) || self.count >= MAX_UPDATES_ALONE
    }
}

/// A monitor change waiting for the next flush.
struct Queued {
    /// The monitor's key.
    key: String,
    /// A full monitor or one update, and the stale updates a full monitor replaces.
    ops: Vec<Op>,
    channel_id: ChannelId,
    /// The update LDK waits on; `None` for a chain-sync write, which LDK does not wait on.
    update_id: Option<u64>,
    /// A new channel's first monitor.
    new_channel: bool,
    /// A full monitor written for an update, replacing the updates stored alone before it.
    consolidation: bool,
}

/// Counts changes of channel state: every monitor change LDK hands the persister. LDK makes one, under the
/// channel's lock, with every change of a channel's HTLCs (an HTLC added, or removed once revoked), so an
/// unchanged count means no HTLC of any channel came or went meanwhile. Cheap to read, unlike a walk over
/// every channel's details (with 1,000 channels, LDK's `list_usable_channels` takes about 2 ms).
#[derive(Clone, Default)]
pub struct ChannelStateChanges(Arc<std::sync::atomic::AtomicU64>);

impl ChannelStateChanges {
    /// Monitor changes so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Orders ChannelManager and ChannelMonitor writes (see the module doc).
pub struct OrderedPersister {
    store: DynStore,
    queue: Mutex<Vec<Queued>>,
    /// Per monitor key: the updates stored alone since its last full write ([`MAX_PENDING_UPDATES`]).
    alone: Mutex<std::collections::HashMap<String, Alone>>,
    /// New channels whose first monitor is queued or being written, not yet on disk: their fundee's
    /// funding_signed waits for it ([`crate::handler`]).
    new_channels: Mutex<HashSet<ChannelId>>,
    /// Held for a whole flush: flushes (and so manager writes) never interleave.
    flushing: Mutex<()>,
    manager: OnceLock<Weak<ChannelManager>>,
    /// Moves a resolved monitor (with its updates applied) to the archive.
    archiver: OnceLock<Arc<MonitorStore>>,
    chain_monitor: OnceLock<Weak<ChainMonitor>>,
    wake: tokio::sync::Notify,
    /// The ChannelManager changed since it was last encoded for a flush.
    manager_dirty: AtomicBool,
    /// The last encoded manager's size: the next one's buffer.
    manager_len: AtomicUsize,
    /// The manager's chunks on disk: a flush writes only those that changed (see [`crate::manager_chunks`]).
    manager_chunks: Mutex<ManagerChunks>,
    /// Woken when only the manager is to be written ([`OrderedPersister::manager_changed`]).
    lazy: tokio::sync::Notify,
    /// When the last flush ended.
    last_flush: Mutex<Instant>,
    /// How long the last flush took (encoding and writing).
    last_flush_took: Mutex<Duration>,
    /// Bumped with every monitor change queued.
    changes: ChannelStateChanges,
}

impl OrderedPersister {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            queue: Mutex::new(Vec::new()),
            alone: Mutex::new(std::collections::HashMap::new()),
            new_channels: Mutex::new(HashSet::new()),
            flushing: Mutex::new(()),
            manager: OnceLock::new(),
            archiver: OnceLock::new(),
            chain_monitor: OnceLock::new(),
            wake: tokio::sync::Notify::new(),
            manager_dirty: AtomicBool::new(false),
            manager_len: AtomicUsize::new(0),
            manager_chunks: Mutex::new(ManagerChunks::default()),
            lazy: tokio::sync::Notify::new(),
            last_flush: Mutex::new(Instant::now()),
            last_flush_took: Mutex::new(Duration::ZERO),
            changes: ChannelStateChanges::default(),
        }
    }

    /// A handle counting changes of channel state (see [`ChannelStateChanges`]).
    pub fn changes(&self) -> ChannelStateChanges {
        self.changes.clone()
    }

    /// The ChannelManager changed without a monitor update: it is written by the next flush, which the flush
    /// task runs at most [`MANAGER_WRITE_INTERVAL`] after the previous one.
    pub fn manager_changed(&self) {
        self.manager_dirty.store(true, Ordering::Release);
        self.lazy.notify_one();
    }

    /// Resolves when only the manager changed (see [`OrderedPersister::manager_changed`]).
    pub async fn manager_wanted(&self) {
        self.lazy.notified().await
    }

    /// Whether a flush would write anything: a queued monitor change, or a manager change.
    pub fn has_work(&self) -> bool {
        self.manager_dirty.load(Ordering::Acquire) || !self.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Whether the flush task, woken by [`OrderedPersister::wanted`] (`for_monitors`) or by
    /// [`OrderedPersister::manager_wanted`], flushes at once: only for a queued monitor change, which LDK holds
    /// messages for. A wake-up for monitors may find none queued: the change that woke it was queued while a
    /// flush was starting, and that flush took it. What is left then is at most a manager change, which waits
    /// [`OrderedPersister::manager_write_interval`] like any other instead of a whole manager encoding at once
    /// (which holds off every channel message: with 1,000 channels about 10 ms; under load 10 flushes in 181 came
    /// that way before this check).
    pub fn flush_at_once(&self, for_monitors: bool) -> bool {
        for_monitors && !self.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// How long a manager-only change waits after the last flush: [`MANAGER_WRITE_INTERVAL`], or
    /// [`MANAGER_WRITE_SHARE`] times the last flush's duration when that is longer.
    pub fn manager_write_interval(&self) -> Duration {
        let took = *self.last_flush_took.lock().unwrap_or_else(|p| p.into_inner());
        MANAGER_WRITE_INTERVAL.max(took * MANAGER_WRITE_SHARE)
    }

    /// How long ago the last flush ended.
    pub fn since_last_flush(&self) -> Duration {
        self.last_flush.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// Completes the wiring once the ChainMonitor and ChannelManager exist (they hold this persister).
    pub fn attach(&self, chain_monitor: &Arc<ChainMonitor>, manager: &Arc<ChannelManager>, monitors: Arc<MonitorStore>) {
        let _ = self.chain_monitor.set(Arc::downgrade(chain_monitor));
        let _ = self.manager.set(Arc::downgrade(manager));
        let _ = self.archiver.set(monitors);
    }

    /// Resolves when there is something to flush.
    pub async fn wanted(&self) {
        self.wake.notified().await
    }

    /// Queues the full monitor (in LDK's `MonitorUpdatingPersister` format), dropping `stale` updates.
    fn queue_full(&self, name: MonitorName, monitor: &ChannelMonitor<InMemorySigner>, update_id: Option<u64>, new_channel: bool, stale: Vec<String>) -> ChannelMonitorUpdateStatus {
        let key = name.to_string();
        // Sized by the last full write, not by `serialized_length()`: that walks the whole monitor once more
        // (LDK's `encode()` does the same), and a busy channel's monitor is megabytes.
        let last = self.alone.lock().unwrap_or_else(|p| p.into_inner()).get(&key).map_or(0, |a| a.full) as usize;
        let mut bytes = Vec::with_capacity(MONITOR_UPDATING_PERSISTER_PREPEND_SENTINEL.len() + last + last / 8);
        bytes.extend_from_slice(MONITOR_UPDATING_PERSISTER_PREPEND_SENTINEL);
        monitor.write(&mut bytes).expect("writing to a Vec cannot fail");
        self.alone.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_default().full = bytes.len() as u64;
        let mut ops = vec![Op::write(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE, &key, bytes)];
        ops.extend(stale.iter().map(|u| Op::remove(CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE, &key, u)));
        let consolidation = update_id.is_some() && !new_channel && !stale.is_empty();
        self.queue(Queued { key, ops, channel_id: monitor.channel_id(), update_id, new_channel, consolidation })
    }

    fn queue(&self, q: Queued) -> ChannelMonitorUpdateStatus {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(q);
        self.changes.bump();
        self.wake.notify_one();
        ChannelMonitorUpdateStatus::InProgress
    }

    /// Reads back the ChannelManager the flushes wrote (see [`crate::manager_chunks`]); `None` for a new node.
    /// Before the first flush: the flushes that follow write only what changed since.
    pub fn read_manager(&self) -> io::Result<Option<Vec<u8>>> {
        self.manager_chunks.lock().unwrap_or_else(|p| p.into_inner()).read(&self.store)
    }

    /// Whether `channel_id` is a new channel whose first monitor (and the manager listing it) is not on disk yet.
    pub fn new_channel_pending(&self, channel_id: &ChannelId) -> bool {
        self.new_channels.lock().unwrap_or_else(|p| p.into_inner()).contains(channel_id)
    }

    /// Writes the ChannelManager, then the queued monitors, then reports them completed; how many monitor
    /// updates it completed (LDK may then send what waited on them).
    pub fn flush(&self) -> io::Result<usize> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        // Take the batch before encoding the manager, so the manager lists every update in it.
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        // Put a batch back in front of anything queued since, for the next flush to write in order:
        // nothing of it may be lost, nor reported completed.
        let keep = |batch: Vec<Queued>| {
            self.queue.lock().unwrap_or_else(|p| p.into_inner()).splice(0..0, batch);
        };
        let Some(manager) = self.manager.get().and_then(Weak::upgrade) else {
            // Not wired yet (start-up): keep the batch for the first real flush.
            keep(batch);
            return Ok(0);
        };
        if batch.iter().any(|q| q.new_channel) {
            crate::test_knobs::pause_before_writing_a_new_monitor();
        }
        // (1) The manager, encoded after the batch was taken, so it lists every update in the batch.
        let started = Instant::now();
        // Cleared before encoding: a change made meanwhile marks it again, for the next flush.
        self.manager_dirty.store(false, Ordering::Release);
        // Written once into a buffer sized by the last one: LDK's `encode()` would walk the whole manager twice
        // (once to size its buffer), and with 1,000 channels that walk took half of each flush's encoding.
        let hint = self.manager_len.load(Ordering::Relaxed);
        let mut encoded = Vec::with_capacity(hint + hint / 8);
        manager.write(&mut encoded).expect("writing to a Vec cannot fail");
        self.manager_len.store(encoded.len(), Ordering::Relaxed);
        let (manager_bytes, encoded_in) = (encoded.len(), started.elapsed());
        // Only the manager's chunks that changed, and its manifest, go in the batch.
        let mut plan = self.manager_chunks.lock().unwrap_or_else(|p| p.into_inner()).plan(encoded);
        let manager_written = plan.written_bytes;
        let mut ops = std::mem::take(&mut plan.ops);
        // (2) With the monitor changes, in the order LDK produced them (a later full monitor holds everything
        // an earlier change does, so the last write of each key wins), as one atomic batch, one sync.
        ops.extend(batch.iter().flat_map(|q| q.ops.iter().cloned()));
        let monitor_bytes: usize = batch.iter().flat_map(|q| q.ops.iter()).map(Op::len).sum();
        if let Err(e) = self.store.write_batch(ops) {
            // Not on disk: the next plan builds on the chunks that are.
            self.manager_dirty.store(true, Ordering::Release);
            keep(batch);
            return Err(e);
        }
        self.manager_chunks.lock().unwrap_or_else(|p| p.into_inner()).committed(plan);
        *self.last_flush.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        *self.last_flush_took.lock().unwrap_or_else(|p| p.into_inner()) = started.elapsed();
        tracing::debug!(updates = batch.len(), manager_bytes, manager_written, monitor_bytes, encode_us = encoded_in.as_micros() as u64, total_us = started.elapsed().as_micros() as u64, "channel state flushed");
        if batch.iter().any(|q| q.new_channel) {
            crate::test_knobs::crash_before_completing_a_new_monitor();
            // Both on disk: the held funding_signed of these channels may go out (see crate::handler).
            let mut new_channels = self.new_channels.lock().unwrap_or_else(|p| p.into_inner());
            for q in batch.iter().filter(|q| q.new_channel) {
                new_channels.remove(&q.channel_id);
            }
        }
        if batch.iter().any(|q| q.consolidation) {
            crate::test_knobs::crash_after_consolidating();
        }
        // (3) Only now, with both on disk, may LDK send what depends on these updates.
        let mut completed = 0;
        if let Some(cm) = self.chain_monitor.get().and_then(Weak::upgrade) {
            for q in batch {
                let Some(update_id) = q.update_id else { continue };
                match cm.channel_monitor_updated(q.channel_id, update_id) {
                    Ok(()) => completed += 1,
                    Err(e) => tracing::warn!(channel_id = %q.channel_id, update_id, error = ?e, "completing a monitor update"),
                }
            }
        }
        Ok(completed)
    }
}

impl Persist<InMemorySigner> for OrderedPersister {
    fn persist_new_channel(&self, name: MonitorName, monitor: &ChannelMonitor<InMemorySigner>) -> ChannelMonitorUpdateStatus {
        // A new monitor without its channel in the manager on disk would be force-closed on restart too.
        // Marked before it is queued, so no flush can finish with it before the mark exists.
        self.new_channels.lock().unwrap_or_else(|p| p.into_inner()).insert(monitor.channel_id());
        self.queue_full(name, monitor, Some(monitor.get_latest_update_id()), true, Vec::new())
    }

    fn update_persisted_channel(
        &self,
        name: MonitorName,
        update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        // Chain sync (`None`) too: the monitor LDK hands over may hold an update still queued, whose
        // manager is not on disk yet, so it must not be written before the next flush either.
        let Some(update) = update else { return self.queue_full(name, monitor, None, false, Vec::new()) };
        let id = update.update_id;
        if id == LEGACY_CLOSED_CHANNEL_UPDATE_ID {
            // Every stored update of this monitor goes with the full write.
            let stale = self.store.list(CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE, &name.to_string()).unwrap_or_default();
            return self.queue_full(name, monitor, Some(id), false, stale);
        }
        let key = name.to_string();
        let encoded = update.encode();
        let first = {
            let mut alone = self.alone.lock().unwrap_or_else(|p| p.into_inner());
            let a = alone.entry(key.clone()).or_default();
            a.count += 1;
            a.bytes += encoded.len() as u64;
            let first = *a.first.get_or_insert(id);
            match a.due() {
                true => {
                    (a.count, a.bytes, a.first) = (0, 0, None);
                    Some(first)
                }
                false => None,
            }
        };
        if let Some(first) = first {
            // Consolidate: the full monitor holds every update stored alone before it, so they go in the
            // same batch: those queued since the last full write (not on disk yet) and those the store
            // holds (from before a restart too).
            let latest = monitor.get_latest_update_id().max(id);
            let mut stale: std::collections::BTreeSet<String> = (first..=latest).map(|u| UpdateName::from(u).as_str().to_string()).collect();
            stale.extend(self.store.list(CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE, &key).unwrap_or_default());
            return self.queue_full(name, monitor, Some(id), false, stale.into_iter().collect());
        }
        let ops = vec![Op::write(CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE, &key, UpdateName::from(id).as_str(), encoded)];
        self.queue(Queued { key, ops, channel_id: monitor.channel_id(), update_id: Some(id), new_channel: false, consolidation: false })
    }

    fn archive_persisted_channel(&self, name: MonitorName) {
        // A queued chain-sync write of this (fully resolved) monitor would put it back after the archive
        // moved it away; LDK waits on none of those, so drop them.
        let key = name.to_string();
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).retain(|q| q.key != key || q.update_id.is_some());
        self.alone.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        match self.archiver.get() {
            Some(archiver) => <MonitorStore as Persist<InMemorySigner>>::archive_persisted_channel(archiver, name),
            None => tracing::warn!(monitor = %key, "no archiver wired: the resolved monitor stays in place"),
        }
    }
}

/// Reads every stored ChannelMonitor (a full monitor with the updates stored since applied) on up to `threads`
/// threads, in the store's key order: LDK's `read_all_channel_monitors_with_updates` reads them one after the
/// other, and its docs suggest reading in parallel. `one` reads a monitor by key (LDK's
/// `read_channel_monitor_with_updates`); `all` is LDK's whole read, used whenever `one` fails anywhere, so a
/// monitor LDK skips (stale since 0.0.118) or refuses is skipped or refused exactly as LDK does.
pub fn read_monitors<T: Send>(
    store: &DynStore, threads: usize, one: impl Fn(&str) -> io::Result<T> + Sync, all: impl FnOnce() -> io::Result<Vec<T>>,
) -> io::Result<Vec<T>> {
    let keys = store.list(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE)?;
    match in_parallel(&keys, threads, one) {
        Ok(read) => Ok(read),
        Err(_) => all(),
    }
}

/// `f` over every item on up to `threads` scoped threads (each takes the next item not taken yet), the
/// results in the items' order; the first error, if any.
fn in_parallel<T: Send>(items: &[String], threads: usize, f: impl Fn(&str) -> io::Result<T> + Sync) -> io::Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, items.len().max(1));
    let mut done: Vec<(usize, io::Result<T>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break mine };
                        let read = f(item);
                        let failed = read.is_err();
                        mine.push((i, read));
                        if failed {
                            // The others stop at their next item: the caller reads everything again anyway.
                            next.store(items.len(), Ordering::Relaxed);
                            break mine;
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The key-value store the node's event processor and LDK's sweeper write through: everything goes straight to
/// the store, except the ChannelManager, which is refused. A manager change only marks it changed
/// ([`OrderedPersister::manager_changed`], which the event processor calls), for the node's flush task to write
/// with the next flush. Refused rather than dropped: whoever hands a manager here encoded all of it first (LDK's
/// background processor did after nearly every event: 44% of the node's CPU with 1,000 channels).
///
/// Ordering: a manager write that no monitor update goes with may wait up to [`MANAGER_WRITE_INTERVAL`] (longer
/// for a large manager: [`OrderedPersister::manager_write_interval`]):
/// every flush that writes a monitor writes the manager with it, so the manager on disk is never behind a
/// monitor, and no message waits on these writes. What a crash in that window loses is what LDK replays
/// anyway when its events were handled and the manager not yet written (a replayed event is handled
/// again). The node's stop writes the manager last.
pub struct ProcessorStore {
    pub store: DynStore,
    pub persister: Arc<OrderedPersister>,
}

impl KVStoreSync for ProcessorStore {
    fn read(&self, p: &str, s: &str, k: &str) -> io::Result<Vec<u8>> {
        self.store.read(p, s, k)
    }
    fn write(&self, p: &str, s: &str, k: &str, buf: Vec<u8>) -> io::Result<()> {
        if (p, s, k) == (CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_KEY) {
            return Err(io::Error::new(io::ErrorKind::Other, "the ChannelManager is written only with its monitors, by the ordered flush: call manager_changed"));
        }
        self.store.write(p, s, k, buf)
    }
    fn remove(&self, p: &str, s: &str, k: &str, lazy: bool) -> io::Result<()> {
        self.store.remove(p, s, k, lazy)
    }
    fn list(&self, p: &str, s: &str) -> io::Result<Vec<String>> {
        self.store.list(p, s)
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::BlockHash;
    use lightning::sign::KeysManager;
    use lightning::util::ser::ReadableArgs;

    use super::*;

    /// A real anchor channel's ChannelMonitor and the 32-byte LDK seed of the node holding it: alice's
    /// side of a 1,000,000 sat regtest channel right after `net.pair()` opened it, read from her store
    /// (`monitors` namespace) once she had stopped.
    const MONITOR: &[u8] = include_bytes!("../tests/data/anchor_channel_monitor");
    const LDK_SEED: &[u8; 32] = include_bytes!("../tests/data/anchor_channel_ldk_seed");

    fn monitor() -> ChannelMonitor<InMemorySigner> {
        let keys = KeysManager::new(LDK_SEED, 1, 0, true);
        let (_, monitor) = <(BlockHash, ChannelMonitor<InMemorySigner>)>::read(&mut &MONITOR[..], (&keys, &keys)).expect("the fixture is a ChannelMonitor");
        monitor
    }

    fn persister() -> (tempfile::TempDir, DynStore, OrderedPersister) {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(lanes_store::SledStore::open(dir.path()).unwrap());
        let persister = OrderedPersister::new(Arc::clone(&store));
        (dir, store, persister)
    }

    fn monitors_on_disk(store: &DynStore) -> Vec<String> {
        store.list(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE).unwrap()
    }

    fn queued(p: &OrderedPersister) -> Vec<Option<u64>> {
        p.queue.lock().unwrap().iter().map(|q| q.update_id).collect()
    }

    #[test]
    fn no_monitor_reaches_the_disk_before_the_manager_that_lists_it() {
        let (_dir, store, p) = persister();
        let m = monitor();
        let id = m.get_latest_update_id();
        assert_eq!(p.persist_new_channel(m.persistence_key(), &m), ChannelMonitorUpdateStatus::InProgress);
        // A block touching the monitor (chain sync, no update) while that write is still queued: the
        // monitor LDK hands over holds everything queued, so it must wait for the flush as well.
        assert_eq!(p.update_persisted_channel(m.persistence_key(), None, &m), ChannelMonitorUpdateStatus::InProgress);
        assert!(monitors_on_disk(&store).is_empty(), "a monitor was written ahead of the ChannelManager");
        assert_eq!(queued(&p), [Some(id), None], "both writes wait, in order; only the first is owed a completion");

        // No ChannelManager wired yet (start-up): a flush writes nothing and loses nothing.
        p.flush().unwrap();
        assert!(monitors_on_disk(&store).is_empty());
        assert_eq!(queued(&p), [Some(id), None]);
    }

    /// The flush task flushes at once only for a queued monitor change. A wake-up for monitors that a flush
    /// already took (they were queued while it started) finds only a manager change, which waits its interval.
    #[test]
    fn a_wake_up_for_monitors_a_flush_already_took_does_not_flush_at_once() {
        let (_dir, _store, p) = persister();
        let m = monitor();
        p.manager_changed();
        assert!(!p.flush_at_once(false), "a manager change alone waits");
        p.update_persisted_channel(m.persistence_key(), Some(&update(1, m.channel_id())), &m);
        assert!(p.flush_at_once(true), "a queued monitor change is flushed at once");
        // A flush starting takes the batch (as `flush` does); the wake-up the update left behind comes after.
        let taken = std::mem::take(&mut *p.queue.lock().unwrap());
        assert_eq!(taken.len(), 1);
        assert!(p.has_work(), "the manager is still to be written");
        assert!(!p.flush_at_once(true), "nothing queued: the manager change waits like any other");
    }

    /// Payments look again at "no route" when channel state changed during their attempt (node's
    /// `payments.rs`), and that is safe only if every monitor change is counted: a new channel, each
    /// update (stored alone or consolidating), a chain-sync write. A flush counts nothing.
    #[test]
    fn every_monitor_change_is_counted_as_a_change_of_channel_state() {
        let (_dir, _store, p) = persister();
        let changes = p.changes();
        let m = monitor();
        p.persist_new_channel(m.persistence_key(), &m);
        assert_eq!(changes.count(), 1);
        for id in 1..=MAX_PENDING_UPDATES {
            p.update_persisted_channel(m.persistence_key(), Some(&update(id, m.channel_id())), &m);
        }
        assert_eq!(changes.count(), 1 + MAX_PENDING_UPDATES, "each update, the consolidating one too");
        p.update_persisted_channel(m.persistence_key(), None, &m);
        assert_eq!(changes.count(), 2 + MAX_PENDING_UPDATES, "a chain-sync write");
        p.flush().unwrap();
        assert_eq!(changes.count(), 2 + MAX_PENDING_UPDATES);
    }

    /// A ChannelMonitorUpdate with no steps (its fields are LDK's own; this is its encoding: version
    /// prefix, update id, step count, then the TLV stream with the channel id).
    fn update(id: u64, channel_id: ChannelId) -> ChannelMonitorUpdate {
        let mut bytes = vec![1, 1];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.extend_from_slice(&[34, 1, 32]);
        bytes.extend_from_slice(&channel_id.0);
        lightning::util::ser::Readable::read(&mut &bytes[..]).expect("a ChannelMonitorUpdate")
    }

    fn queued_ops(p: &OrderedPersister) -> Vec<Vec<(String, usize)>> {
        let describe = |op: &Op| match op {
            Op::Write { primary, secondary, key, value } => (format!("write {primary}/{secondary}/{key}"), value.len()),
            Op::Remove { primary, secondary, key } => (format!("remove {primary}/{secondary}/{key}"), 0),
        };
        p.queue.lock().unwrap().iter().map(|q| q.ops.iter().map(describe).collect()).collect()
    }

    /// An update is stored alone, in the format LDK's MonitorUpdatingPersister reads back; the
    /// MAX_PENDING_UPDATES-th one (for a monitor no larger than they are together) writes the full monitor
    /// instead and drops the updates it holds, in the same batch.
    #[test]
    fn updates_are_stored_alone_and_consolidated_into_the_full_monitor_every_so_often() {
        let (_dir, _store, p) = persister();
        let m = monitor();
        let (key, full_len) = (m.persistence_key().to_string(), m.serialized_length() + 2);
        for id in 1..=MAX_PENDING_UPDATES {
            p.update_persisted_channel(m.persistence_key(), Some(&update(id, m.channel_id())), &m);
        }
        let ops = queued_ops(&p);
        let small = update(7, m.channel_id()).encode().len();
        assert_eq!(ops[6], [(format!("write monitor_updates/{key}/7"), small)], "one small entry, not the {full_len}-byte monitor");
        let last = &ops[MAX_PENDING_UPDATES as usize - 1];
        assert_eq!(last[0], (format!("write monitors//{key}"), full_len));
        let removed: std::collections::BTreeSet<String> = last[1..].iter().map(|(op, _)| op.clone()).collect();
        let expected: std::collections::BTreeSet<String> =
            (1..=MAX_PENDING_UPDATES.max(m.get_latest_update_id())).map(|u| format!("remove monitor_updates/{key}/{u}")).collect();
        assert_eq!(removed, expected);
        assert_eq!(queued(&p).len() as u64, MAX_PENDING_UPDATES);
    }

    /// A monitor larger than its updates together is written whole only once they add up to its size: the
    /// cost per update stays flat as the monitor grows with the channel's history.
    #[test]
    fn a_large_monitor_is_written_whole_once_its_updates_add_up_to_its_size() {
        let (_dir, _store, p) = persister();
        let m = monitor();
        let key = m.persistence_key().to_string();
        // The monitor as written once (a chain sync), then updates far smaller than it.
        p.update_persisted_channel(m.persistence_key(), None, &m);
        let (full, small) = ((m.serialized_length() + 2) as u64, update(1, m.channel_id()).encode().len() as u64);
        let due = MAX_PENDING_UPDATES.max(full.div_ceil(small)).min(MAX_UPDATES_ALONE);
        assert!(due > MAX_PENDING_UPDATES, "the fixture is larger than {MAX_PENDING_UPDATES} small updates ({full} against {small} bytes)");
        let full_writes = |p: &OrderedPersister| queued_ops(p).iter().filter(|q| q[0].0 == format!("write monitors//{key}")).count();
        for id in 1..due {
            p.update_persisted_channel(m.persistence_key(), Some(&update(id, m.channel_id())), &m);
        }
        assert_eq!(full_writes(&p), 1, "only the chain sync's, after {} updates", due - 1);
        p.update_persisted_channel(m.persistence_key(), Some(&update(due, m.channel_id())), &m);
        assert_eq!(full_writes(&p), 2, "the {due}th update's updates add up to the monitor");
        let removed = queued_ops(&p).last().unwrap().len() - 1;
        assert_eq!(removed as u64, due.max(m.get_latest_update_id()), "every update stored alone goes with it");
    }

    /// LDK asks for a manager write after nearly every event: that write is left to the next flush (at most
    /// MANAGER_WRITE_INTERVAL later); a manager handed to the processor's store is refused, anything else it
    /// writes goes to disk at once.
    #[test]
    fn a_manager_write_without_monitor_updates_is_left_to_the_next_flush() {
        let (_dir, store, p) = persister();
        let p = Arc::new(p);
        let ps = ProcessorStore { store: Arc::clone(&store), persister: Arc::clone(&p) };
        let (mp, ms, mk) = (CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_KEY);
        assert!(!p.has_work());
        let refused = ps.write(mp, ms, mk, vec![1, 2, 3]).unwrap_err();
        assert!(refused.to_string().contains("only with its monitors"), "{refused}");
        assert!(store.read(mp, ms, mk).is_err(), "not written");
        assert!(!p.has_work(), "nothing marked by a refused write");
        p.manager_changed();
        assert!(p.has_work(), "marked for the next flush");
        ps.write("scorer_ns", "", "scorer", vec![9]).unwrap();
        assert_eq!(store.read("scorer_ns", "", "scorer").unwrap(), vec![9], "anything else is written at once");
        // No manager wired (start-up): the flush keeps the mark for the first real one.
        p.flush().unwrap();
        assert!(p.has_work());
    }

    struct NoBroadcast;
    impl lightning::chain::chaininterface::BroadcasterInterface for NoBroadcast {
        fn broadcast_transactions(&self, _: &[&bitcoin::Transaction]) {}
    }
    struct FixedFee;
    impl lightning::chain::chaininterface::FeeEstimator for FixedFee {
        fn get_est_sat_per_1000_weight(&self, _: lightning::chain::chaininterface::ConfirmationTarget) -> u32 {
            1000
        }
    }

    /// LDK's reader of monitors stored as the flush stores them, with the fixture's keys.
    fn ldk_reader(
        store: &DynStore,
    ) -> lightning::util::persist::MonitorUpdatingPersister<DynStore, Arc<crate::logger::LdkTracing>, Arc<KeysManager>, Arc<KeysManager>, Arc<NoBroadcast>, Arc<FixedFee>> {
        let keys = Arc::new(KeysManager::new(LDK_SEED, 1, 0, true));
        lightning::util::persist::MonitorUpdatingPersister::new(
            Arc::clone(store),
            Arc::new(crate::logger::LdkTracing::default()),
            MAX_PENDING_UPDATES,
            Arc::clone(&keys),
            keys,
            Arc::new(NoBroadcast),
            Arc::new(FixedFee),
        )
    }

    /// What the flush writes, LDK's own reader loads: a full monitor of an earlier lanes (no sentinel) as it
    /// is, and a full monitor in the new format with an update stored after it, that update applied.
    #[test]
    fn ldk_reads_back_monitors_as_stored_old_and_new() {
        let (_dir, store, p) = persister();
        let m = monitor();
        let key = m.persistence_key().to_string();
        let reader = ldk_reader(&store);
        store.write(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, "", &key, MONITOR.to_vec()).unwrap();
        let old = reader.read_all_channel_monitors_with_updates().unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].1.get_latest_update_id(), m.get_latest_update_id());

        let next = m.get_latest_update_id() + 1;
        p.persist_new_channel(m.persistence_key(), &m);
        p.update_persisted_channel(m.persistence_key(), Some(&update(next, m.channel_id())), &m);
        let ops: Vec<Op> = p.queue.lock().unwrap().drain(..).flat_map(|q| q.ops).collect();
        store.write_batch(ops).unwrap();
        let new = reader.read_all_channel_monitors_with_updates().unwrap();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].1.get_latest_update_id(), next, "the stored update was applied");
    }

    /// Read in parallel, every item is read once and the results keep the items' order; a failure anywhere
    /// is the result.
    #[test]
    fn reading_in_parallel_keeps_the_order_and_reads_each_once() {
        let items: Vec<String> = (0..1000).map(|i| format!("{i:04}")).collect();
        let reads = AtomicUsize::new(0);
        let threads_seen = Mutex::new(HashSet::new());
        let read = in_parallel(&items, 4, |k| {
            reads.fetch_add(1, Ordering::Relaxed);
            threads_seen.lock().unwrap().insert(std::thread::current().id());
            // Uneven work, so the threads finish their items out of order.
            std::thread::sleep(Duration::from_micros(k.parse::<u64>().unwrap() % 7 * 50));
            Ok(k.parse::<u32>().unwrap())
        })
        .unwrap();
        assert_eq!(read, (0..1000).collect::<Vec<u32>>());
        assert_eq!(reads.into_inner(), 1000);
        assert!(threads_seen.into_inner().unwrap().len() > 1, "read on more than one thread");

        let failed = in_parallel(&items, 4, |k| match k {
            "0500" => Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt 0500")),
            _ => Ok(()),
        });
        let failed = failed.unwrap_err();
        assert!(failed.kind() == io::ErrorKind::InvalidData && failed.to_string().contains("corrupt 0500"), "{failed}");
        assert!(in_parallel(&[], 4, |_| Ok(())).unwrap().is_empty());
    }

    /// The parallel read gives what LDK's whole read gives; when one monitor fails to read, LDK's whole read
    /// decides (here: it refuses the corrupt monitor too, with its own error).
    #[test]
    fn monitors_read_in_parallel_are_those_ldk_reads() {
        let (_dir, store, p) = persister();
        let m = monitor();
        let reader = ldk_reader(&store);
        let next = m.get_latest_update_id() + 1;
        p.persist_new_channel(m.persistence_key(), &m);
        p.update_persisted_channel(m.persistence_key(), Some(&update(next, m.channel_id())), &m);
        let ops: Vec<Op> = p.queue.lock().unwrap().drain(..).flat_map(|q| q.ops).collect();
        store.write_batch(ops).unwrap();
        let whole_calls = AtomicUsize::new(0);
        let read = |store: &DynStore| {
            read_monitors(store, 2, |k| reader.read_channel_monitor_with_updates(k), || {
                whole_calls.fetch_add(1, Ordering::Relaxed);
                reader.read_all_channel_monitors_with_updates()
            })
        };
        let parallel = read(&store).unwrap();
        assert_eq!(whole_calls.load(Ordering::Relaxed), 0, "no fallback when every monitor reads");
        let ldk = reader.read_all_channel_monitors_with_updates().unwrap();
        assert_eq!(parallel.len(), 1);
        assert_eq!((parallel[0].0, parallel[0].1.get_latest_update_id()), (ldk[0].0, ldk[0].1.get_latest_update_id()));
        assert_eq!(parallel[0].1.get_latest_update_id(), next, "the stored update was applied");

        store.write(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, "", &format!("{}_0", "00".repeat(32)), vec![1, 2, 3]).unwrap();
        let refused = read(&store).err().expect("a corrupt monitor is refused");
        assert_eq!(whole_calls.load(Ordering::Relaxed), 1, "LDK's whole read decided");
        let ldk = reader.read_all_channel_monitors_with_updates().err().expect("LDK refuses it too");
        assert_eq!((refused.kind(), refused.to_string()), (ldk.kind(), ldk.to_string()));
    }

    #[test]
    fn an_archived_monitor_is_not_written_back_by_a_queued_chain_sync_write() {
        let (_dir, _store, p) = persister();
        let m = monitor();
        p.update_persisted_channel(m.persistence_key(), None, &m);
        p.archive_persisted_channel(m.persistence_key());
        assert!(queued(&p).is_empty());
    }
}
