//! Waiting for something to become true, with a deadline.
//!
//! Owns the polling loop every test and helper uses instead of sleeps, the harness's deadlines, and the
//! "tail of a log" shown when a wait times out. It must never wait without a deadline, and never return
//! quietly on a timeout: a wait that times out panics, naming what it waited for and what it saw last.
use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a process (bitcoind or lanesd) gets to start answering and catch up with the chain.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node gets to see a block, a payment or a balance change.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process gets to exit after being asked to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);
/// The least time one check gets, even when it starts just before the deadline.
const MIN_CHECK_BUDGET: Duration = Duration::from_secs(2);
/// How many lines of a log a timeout message shows.
const TAIL_LINES: usize = 40;

/// What a polled check returns: ready with a value, or not yet (optionally saying what it saw instead).
///
/// Implemented for `bool` (ready when true), `Option<T>` (ready when `Some`) and `Result<T, E>` (ready when
/// `Ok`; the `Err` is shown in the timeout message as the last thing seen, e.g. `"confirmed 0 sat"`).
pub trait Outcome {
    type Value;
    fn ready(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn ready(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// Polls `check` every [`POLL_INTERVAL`] until it is ready, and returns its value.
///
/// Panics after `timeout` with a message naming `what` and the last thing the check saw. A single check that
/// hangs is cut off at the deadline too.
pub async fn wait_until<O, F, Fut>(timeout: Duration, what: impl Display, check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    wait_until_logged(timeout, what, &[], check).await
}

/// Like [`wait_until`], and on a timeout also shows the tail of each of `logs`.
pub async fn wait_until_logged<O, F, Fut>(timeout: Duration, what: impl Display, logs: &[PathBuf], mut check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    let deadline = Instant::now() + timeout;
    let mut last_seen: Option<String> = None;
    loop {
        // A check started before the deadline may finish a little after it, so the last one is not cut short.
        let budget = deadline.saturating_duration_since(Instant::now()).max(MIN_CHECK_BUDGET);
        match tokio::time::timeout(budget, check()).await {
            Ok(outcome) => match outcome.ready() {
                Ok(value) => return value,
                Err(seen) => last_seen = seen.or(last_seen),
            },
            Err(_) => {
                let hung = format!("a check did not finish within {budget:?}");
                last_seen = Some(match last_seen {
                    Some(seen) => format!("{seen} (then {hung})"),
                    None => hung,
                });
            }
        }
        if Instant::now() >= deadline {
            panic!("{}", timeout_message(timeout, &what, last_seen.as_deref(), logs));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn timeout_message(timeout: Duration, what: &dyn Display, last_seen: Option<&str>, logs: &[PathBuf]) -> String {
    let mut msg = format!("timed out after {timeout:?} waiting for {what}");
    if let Some(seen) = last_seen {
        msg += &format!("\n  last seen: {seen}");
    }
    for log in logs {
        msg += &format!("\n{}", log_tail(log));
    }
    msg
}

/// The last lines of a log file, framed with its path, for a failure message.
pub fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            format!("--- last {} lines of {} ---\n{}\n--- end of {} ---", tail.len(), path.display(), tail.join("\n"), path.display())
        }
        Err(e) => format!("--- (cannot read {}: {e}) ---", path.display()),
    }
}
