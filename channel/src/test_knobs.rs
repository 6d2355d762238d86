//! Test-only knobs: misbehaviours other implementations cause, which integration tests need to produce
//! with real lanesd processes. Each is off unless its environment variable is set, and says so in the
//! log when it acts. Like the cheat tool in `regtest/src/cheat.rs`, they exist only to prove that lanes
//! recovers; never set them on a real node.
//!
//! [`DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV`] set to `1` makes [`crate::handler::ChannelHandler`] drop the
//! first announcement_signatures received, as LDK drops one that arrives before its channel_ready (which
//! CLN can send on a different path). The channel then stays unannounced until lanes recovers it
//! (`node/src/announce.rs`).
//!
//! Owns: the knobs. Must never: change any message when its knob is off.
/// Set to `1`: [`crate::handler::ChannelHandler`] sends every channel_reestablish twice, as some peers do on a
/// live connection (CLN's channeld ignores such a repeat, "a mitigation for a known bug in some peer software";
/// Electrum re-sends one after a crossed dial). The peer must not close the channel for it.
pub const SEND_CHANNEL_REESTABLISH_TWICE_ENV: &str = "LANES_TEST_SEND_CHANNEL_REESTABLISH_TWICE";

/// Set to a path: the first time a new channel's first ChannelMonitor is on disk but its persistence not yet
/// reported to LDK, lanesd writes that file and aborts, as a kill -9 at that moment would (tests only). It
/// does not act again while the file exists, so the restarted node runs normally.
pub const CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV: &str = "LANES_TEST_CRASH_BEFORE_COMPLETING_A_NEW_MONITOR";

/// See [`CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV`].
pub fn crash_before_completing_a_new_monitor() {
    crash_once(CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV, "TEST KNOB: crashing with a new channel's monitor on disk, its persistence not reported");
}

/// When the knob `env` is set to a path that does not exist yet: logs `what`, writes the file and aborts.
fn crash_once(env: &str, what: &str) {
    if fires_once(env, what) {
        std::process::abort();
    }
}

/// Whether the knob `env` acts now: it is set to a path that does not exist yet. If so, logs `what` and
/// writes the file, so that it does not act again.
fn fires_once(env: &str, what: &str) -> bool {
    let Some(marker) = std::env::var_os(env) else { return false };
    let marker = std::path::PathBuf::from(marker);
    if marker.exists() {
        return false;
    }
    tracing::warn!(knob = env, "{what}");
    let _ = std::fs::write(&marker, b"fired");
    true
}

/// Set to a path: the first time a flush that consolidated a monitor (wrote it whole for an update and
/// removed the updates stored alone before it, in one batch with the manager) is on disk, before LDK hears
/// that the update is durable, lanesd writes that file and aborts, as a kill -9 at that moment would (tests
/// only). It does not act again while the file exists.
pub const CRASH_AFTER_CONSOLIDATING_ENV: &str = "LANES_TEST_CRASH_AFTER_CONSOLIDATING";

/// See [`CRASH_AFTER_CONSOLIDATING_ENV`].
pub fn crash_after_consolidating() {
    crash_once(CRASH_AFTER_CONSOLIDATING_ENV, "TEST KNOB: crashing right after consolidating a monitor, the update not reported durable");
}

/// Set to `MESSAGE[,MESSAGE…]:PATH` (messages by their BOLT name: `tx_complete`, `tx_signatures`): the first
/// time lanesd receives each named message, it writes `PATH.MESSAGE` and aborts before handling it, as a kill
/// -9 at that moment would (tests only). A message whose file exists is handled normally, so a restarted node
/// runs on until the next message named.
pub const CRASH_ON_RECEIVING_ENV: &str = "LANES_TEST_CRASH_ON_RECEIVING";

/// See [`CRASH_ON_RECEIVING_ENV`]: called with each received message's name.
pub fn crash_on_receiving(message: &str) {
    let Ok(knob) = std::env::var(CRASH_ON_RECEIVING_ENV) else { return };
    let Some((names, path)) = knob.split_once(':') else { return };
    if !names.split(',').any(|n| n == message) {
        return;
    }
    let marker = std::path::PathBuf::from(format!("{path}.{message}"));
    if marker.exists() {
        return;
    }
    tracing::warn!(knob = CRASH_ON_RECEIVING_ENV, message, "TEST KNOB: crashing on receiving this message, before handling it");
    let _ = std::fs::write(&marker, b"fired");
    std::process::abort();
}

/// Set to a number of milliseconds: before writing a flush that holds a new channel's first ChannelMonitor,
/// lanesd logs "TEST KNOB: pausing before writing a new channel" and waits that long, so a test can kill it
/// while the new channel is not yet on disk (tests only).
pub const PAUSE_BEFORE_WRITING_A_NEW_MONITOR_ENV: &str = "LANES_TEST_PAUSE_BEFORE_WRITING_A_NEW_MONITOR";

/// See [`PAUSE_BEFORE_WRITING_A_NEW_MONITOR_ENV`].
pub fn pause_before_writing_a_new_monitor() {
    let Some(ms) = std::env::var(PAUSE_BEFORE_WRITING_A_NEW_MONITOR_ENV).ok().and_then(|v| v.parse::<u64>().ok()) else { return };
    tracing::warn!(knob = PAUSE_BEFORE_WRITING_A_NEW_MONITOR_ENV, ms, "TEST KNOB: pausing before writing a new channel");
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Set to a number of bytes: the store counts its live data as at least that much when deciding to compact
/// (4 MB otherwise), so a small test node compacts its store every few MB written (tests only).
pub const STORE_COMPACT_MIN_LIVE_ENV: &str = "LANES_TEST_STORE_COMPACT_MIN_LIVE";

/// See [`STORE_COMPACT_MIN_LIVE_ENV`].
pub fn store_compact_min_live() -> Option<u64> {
    let bytes = std::env::var(STORE_COMPACT_MIN_LIVE_ENV).ok()?.parse().ok()?;
    tracing::warn!(knob = STORE_COMPACT_MIN_LIVE_ENV, bytes, "TEST KNOB ON: the store compacts above this much live data");
    Some(bytes)
}

/// Set to `1`: lanesd drops the first announcement_signatures it receives (tests only).
pub const DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV: &str = "LANES_TEST_DROP_FIRST_ANNOUNCEMENT_SIGNATURES";

/// Set to a number of seconds: journaled transactions are re-sent that often without a new block, instead of
/// every minute (tests only: a test with bitcoind down sees a round without waiting a minute).
pub const REBROADCAST_EVERY_SECS_ENV: &str = "LANES_TEST_REBROADCAST_EVERY_SECS";

/// How often journaled transactions are re-sent without a new block: `default`, or the knob's value.
pub fn rebroadcast_every(default: std::time::Duration) -> std::time::Duration {
    static EVERY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let knob = *EVERY.get_or_init(|| {
        let secs = std::env::var(REBROADCAST_EVERY_SECS_ENV).ok()?.parse().ok()?;
        tracing::warn!(knob = REBROADCAST_EVERY_SECS_ENV, secs, "TEST KNOB: re-broadcasting journaled transactions more often");
        Some(secs)
    });
    knob.map_or(default, std::time::Duration::from_secs)
}

/// Set to a path: the first time lanesd is told a payment to it can be claimed, it writes that file and
/// panics, as a bug in that code would (tests only). It does not act again while the file exists, so the
/// restarted node claims the payment.
pub const PANIC_ON_PAYMENT_CLAIMABLE_ENV: &str = "LANES_TEST_PANIC_ON_PAYMENT_CLAIMABLE";

/// See [`PANIC_ON_PAYMENT_CLAIMABLE_ENV`].
pub fn panic_on_payment_claimable() {
    if fires_once(PANIC_ON_PAYMENT_CLAIMABLE_ENV, "TEST KNOB: panicking on a claimable payment") {
        panic!("TEST KNOB: a bug while handling a claimable payment");
    }
}
