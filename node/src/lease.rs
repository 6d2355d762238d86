//! This instance's claim on a database several lanesd instances share (the PostgreSQL store): the lease,
//! and the role it gives.
//!
//! Several instances with the same seed run on one database; exactly one holds the lease and is active:
//! only it builds the node (connects to peers, signs, broadcasts, serves the API). The others are
//! standbys: they wait, and take the lease over once it expired (the active died) or was released (it
//! stopped cleanly). The store fences every write with the holder's epoch, so a deposed instance writes
//! nothing even before it notices; and an active instance that cannot renew its lease stops itself
//! before the lease can expire, so it has stopped signing before anyone can take over.
//!
//! Timings (database clock for expiry, this process's monotonic clock for stopping): the lease lasts
//! [`LEASE_TTL`] from each renewal, renewed every [`RENEW_EVERY`]; without a successful renewal for
//! [`STOP_AFTER`] (counted from when that renewal was sent, so never later than the database's own count)
//! the process exits, `LEASE_TTL - STOP_AFTER` before the lease can expire. A standby polls every
//! [`STANDBY_POLL`], so it takes over at most `LEASE_TTL + STANDBY_POLL` after the active's last renewal.
//!
//! Owns: the role ([`RoleState`], what GetInfo reports), waiting as a standby ([`acquire`]), keeping the
//! lease on a thread of its own, stopping the process when it cannot, releasing it at a clean stop. Must
//! never: write anything but the lease row, let the node be built before the lease is held, or keep
//! running once it cannot prove it still holds the lease.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lanes_store::PgStore;

/// How long a lease lasts after each renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the active instance renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long the active instance goes on without a successful renewal before it stops itself.
pub const STOP_AFTER: Duration = Duration::from_secs(3);
/// How often a standby asks whether the lease is free.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);
/// How long one renewal may take before it counts as failed.
const RENEW_TIMEOUT: Duration = Duration::from_secs(1);

/// What this instance is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Opening its store, or building the node.
    #[default]
    Starting,
    /// Waiting for the lease another instance holds.
    Standby,
    /// Running the node: on sled always; on PostgreSQL while it holds the lease.
    Active,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Standby => "standby",
            Role::Active => "active",
        }
    }
}

/// The role, the lease's epoch and its holder, as last known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleInfo {
    pub role: Role,
    pub epoch: u64,
    pub holder: String,
}

/// The role, shared by the builder (which sets it) and the API (which reports it).
#[derive(Default)]
pub struct RoleState(RwLock<RoleInfo>);

impl RoleState {
    pub fn get(&self) -> RoleInfo {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the role; true if it changed.
    pub fn set(&self, info: RoleInfo) -> bool {
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = *current != info;
        *current = info;
        changed
    }
}

/// This instance's name in the lease: host, process and API address, so an operator (and a standby's
/// answers) can tell where the active instance runs.
pub fn instance_name(grpc_listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    format!("{host}:{} api {grpc_listen}", std::process::id())
}

/// The lease this instance holds. Dropping it stops renewing (the lease then expires); [`Lease::release`]
/// ends it at once.
pub struct Lease {
    store: Arc<PgStore>,
    holder: String,
    epoch: i64,
    stop: Arc<AtomicBool>,
    keeper: Option<std::thread::JoinHandle<()>>,
}

/// Waits until this instance holds the lease, as a standby meanwhile (reported through `state`), then
/// fences the store with it and starts keeping it. Database errors while waiting are logged and retried:
/// waiting is a standby's job.
pub async fn acquire(store: Arc<PgStore>, holder: String, state: Arc<RoleState>) -> Lease {
    let mut last_error: Option<String> = None;
    loop {
        let sent = Instant::now();
        let (s, h) = (Arc::clone(&store), holder.clone());
        let answer = tokio::task::spawn_blocking(move || s.acquire_lease(&h, LEASE_TTL)).await;
        let wait = match answer {
            Ok(Ok(Ok(epoch))) => {
                store.fence(&holder, epoch);
                state.set(RoleInfo { role: Role::Active, epoch: epoch as u64, holder: holder.clone() });
                tracing::info!(holder = %holder, epoch, "database lease acquired: this instance is active");
                return Lease::keep(store, holder, epoch, sent);
            }
            Ok(Ok(Err(held))) => {
                let info = RoleInfo { role: Role::Standby, epoch: held.epoch.max(0) as u64, holder: held.holder.clone() };
                if state.set(info) {
                    tracing::info!(active = %held.holder, epoch = held.epoch, expires_in_ms = held.expires_in_ms, "standby: another instance holds the database lease; taking over once it expires or is released");
                }
                let until_expiry = Duration::from_millis(held.expires_in_ms.max(0) as u64);
                until_expiry.clamp(Duration::from_millis(100), STANDBY_POLL)
            }
            Ok(Err(e)) => {
                let e = e.to_string();
                if last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "cannot ask the database for its lease; retrying");
                    last_error = Some(e);
                }
                STANDBY_POLL
            }
            Err(e) => {
                tracing::warn!(error = %e, "the lease task failed; retrying");
                STANDBY_POLL
            }
        };
        tokio::time::sleep(wait).await;
    }
}

impl Lease {
    fn keep(store: Arc<PgStore>, holder: String, epoch: i64, acquired_at: Instant) -> Lease {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, h, st) = (Arc::clone(&store), holder.clone(), Arc::clone(&stop));
        // A thread, not a task: it must run (and stop the process) even when every async worker is blocked
        // on a database that does not answer.
        let keeper = std::thread::Builder::new().name("lanes-lease".into()).spawn(move || keep_renewing(&s, &h, epoch, acquired_at, &st));
        let keeper = match keeper {
            Ok(k) => Some(k),
            Err(e) => stop_process(&format!("cannot start the lease keeper thread: {e}")),
        };
        Lease { store, holder, epoch, stop, keeper }
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Stops renewing and ends the lease now, so a standby takes over at once. Call only once the node
    /// stopped: nothing may be written or sent after this.
    pub fn release(mut self) {
        self.stop_keeper();
        match self.store.release_lease(&self.holder, self.epoch) {
            Ok(()) => tracing::info!(epoch = self.epoch, "database lease released"),
            Err(e) => tracing::warn!(error = %e, "cannot release the database lease: a standby takes over once it expires"),
        }
    }

    fn stop_keeper(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop_keeper();
    }
}

fn keep_renewing(store: &PgStore, holder: &str, epoch: i64, acquired_at: Instant, stop: &AtomicBool) {
    let mut last_ok = acquired_at;
    let mut last_error = String::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        match store.renew_lease(holder, epoch, LEASE_TTL, RENEW_TIMEOUT) {
            Ok(true) => last_ok = sent,
            Ok(false) => stop_process(&format!("the database lease (epoch {epoch}) was taken over by another instance")),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::warn!(error = %e, epoch, "cannot renew the database lease");
                    last_error = e;
                }
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if last_ok.elapsed() >= STOP_AFTER {
            stop_process(&format!(
                "could not renew the database lease (epoch {epoch}) for {STOP_AFTER:?} ({last_error}): stopping before it can expire ({LEASE_TTL:?} after the last renewal), so a standby can take over safely"
            ));
        }
        let deadline = last_ok + STOP_AFTER;
        let next = (sent + RENEW_EVERY).min(deadline);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Ends the process at once: no clean stop, which would write and send. Everything acknowledged is in the
/// database already; what is not was never acknowledged.
fn stop_process(reason: &str) -> ! {
    tracing::error!(reason = %reason, "fatal: lost the database lease; stopping");
    crate::health::exit_now(3, &format!("lanesd: fatal: lost the database lease: {reason}"))
}
