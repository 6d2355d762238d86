//! The order in which channel state reaches the disk: ChannelManager first, then ChannelMonitors.
//!
//! Owns: every ChannelMonitor write and every ChannelManager write, in one ordered path.
//!
//! Why: LDK force-closes a channel whose ChannelMonitor on disk is ahead of the ChannelManager on disk.
//! With plain synchronous writes, a crash between a monitor update and the next (lazy) manager write
//! leaves exactly that, and a kill -9 during payments force-closed channels. So monitor updates return
//! `InProgress`: LDK then holds the messages that depend on them (our commitment_signed or
//! revoke_and_ack) and records the update as in flight in the ChannelManager. [`OrderedPersister::flush`]
//! then (1) encodes and durably writes the ChannelManager, which lists every queued update as in flight,
//! (2) durably writes the queued monitors, (3) tells the ChainMonitor they completed, which releases the
//! messages. A crash before (2) leaves a manager that replays the in-flight updates into the older
//! monitors on restart; a crash after it leaves both in step. Either way no monitor is ahead of the
//! manager, and the peer never sees a signature whose monitor state is not on disk.
//!
//! Must never: report an update completed before its monitor is on disk, or write a ChannelManager that
//! was encoded before a monitor update it does not list.
use std::sync::{Arc, Mutex, OnceLock, Weak};

use lightning::chain::chainmonitor::Persist;
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::ChannelMonitorUpdateStatus;
use lightning::io;
use lightning::ln::types::ChannelId;
use lightning::sign::InMemorySigner;
use lightning::util::persist::{
    KVStoreSync, MonitorName, CHANNEL_MANAGER_PERSISTENCE_KEY, CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::Writeable;

use crate::store::SledStore;
use crate::types::{ChainMonitor, ChannelManager};

/// A monitor write waiting for the next flush.
struct Queued {
    key: String,
    bytes: Vec<u8>,
    channel_id: ChannelId,
    update_id: u64,
}

/// Orders ChannelManager and ChannelMonitor writes (see the module doc).
pub struct OrderedPersister {
    store: Arc<SledStore>,
    queue: Mutex<Vec<Queued>>,
    /// Held for a whole flush: flushes (and so manager writes) never interleave.
    flushing: Mutex<()>,
    manager: OnceLock<Weak<ChannelManager>>,
    chain_monitor: OnceLock<Weak<ChainMonitor>>,
    wake: tokio::sync::Notify,
}

impl OrderedPersister {
    pub fn new(store: Arc<SledStore>) -> Self {
        Self {
            store,
            queue: Mutex::new(Vec::new()),
            flushing: Mutex::new(()),
            manager: OnceLock::new(),
            chain_monitor: OnceLock::new(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Completes the wiring once the ChainMonitor and ChannelManager exist (they hold this persister).
    pub fn attach(&self, chain_monitor: &Arc<ChainMonitor>, manager: &Arc<ChannelManager>) {
        let _ = self.chain_monitor.set(Arc::downgrade(chain_monitor));
        let _ = self.manager.set(Arc::downgrade(manager));
    }

    /// Resolves when there is something to flush.
    pub async fn wanted(&self) {
        self.wake.notified().await
    }

    fn queue(&self, name: MonitorName, monitor: &ChannelMonitor<InMemorySigner>, update_id: u64) -> ChannelMonitorUpdateStatus {
        let q = Queued { key: name.to_string(), bytes: monitor.encode(), channel_id: monitor.channel_id(), update_id };
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(q);
        self.wake.notify_one();
        ChannelMonitorUpdateStatus::InProgress
    }

    /// Writes the ChannelManager, then the queued monitors, then reports them completed.
    pub fn flush(&self) -> io::Result<()> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        // Take the batch before encoding the manager, so the manager lists every update in it.
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(manager) = self.manager.get().and_then(Weak::upgrade) else {
            // Not wired yet (start-up): keep the batch for the first real flush.
            self.queue.lock().unwrap_or_else(|p| p.into_inner()).splice(0..0, batch);
            return Ok(());
        };
        self.store.write(
            CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
            CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
            CHANNEL_MANAGER_PERSISTENCE_KEY,
            manager.encode(),
        )?;
        for q in &batch {
            self.store.write(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE, &q.key, q.bytes.clone())?;
        }
        // Only now, with both on disk, may LDK send what depends on these updates.
        if let Some(cm) = self.chain_monitor.get().and_then(Weak::upgrade) {
            for q in batch {
                if let Err(e) = cm.channel_monitor_updated(q.channel_id, q.update_id) {
                    tracing::warn!(channel_id = %q.channel_id, update_id = q.update_id, error = ?e, "completing a monitor update");
                }
            }
        }
        Ok(())
    }
}

impl Persist<InMemorySigner> for OrderedPersister {
    fn persist_new_channel(&self, name: MonitorName, monitor: &ChannelMonitor<InMemorySigner>) -> ChannelMonitorUpdateStatus {
        // A new monitor without its channel in the manager on disk would be force-closed on restart too.
        self.queue(name, monitor, monitor.get_latest_update_id())
    }

    fn update_persisted_channel(
        &self,
        name: MonitorName,
        update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        match update {
            Some(u) => self.queue(name, monitor, u.update_id),
            // Chain sync: no new update id, so the monitor cannot get ahead of the manager. Write now.
            None => match self.store.write(CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE, &name.to_string(), monitor.encode()) {
                Ok(()) => ChannelMonitorUpdateStatus::Completed,
                Err(e) => {
                    tracing::error!(error = %e, "persisting a channel monitor failed");
                    ChannelMonitorUpdateStatus::UnrecoverableError
                }
            },
        }
    }

    fn archive_persisted_channel(&self, name: MonitorName) {
        <SledStore as Persist<InMemorySigner>>::archive_persisted_channel(&self.store, name)
    }
}

/// The key-value store LDK's background processor writes through: every write of the ChannelManager
/// becomes an ordered [`OrderedPersister::flush`] (the bytes it was handed, encoded earlier, are not
/// used); everything else goes straight to the store.
pub struct ProcessorStore {
    pub store: Arc<SledStore>,
    pub persister: Arc<OrderedPersister>,
}

impl KVStoreSync for ProcessorStore {
    fn read(&self, p: &str, s: &str, k: &str) -> io::Result<Vec<u8>> {
        self.store.read(p, s, k)
    }
    fn write(&self, p: &str, s: &str, k: &str, buf: Vec<u8>) -> io::Result<()> {
        if (p, s, k) == (CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_KEY) {
            return self.persister.flush();
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
