//! Whether the node can go on: the fatal conditions are that it can no longer persist its state, and a panic
//! (a bug) anywhere in the process.
//!
//! Owns: recording the first condition once, with an ERROR line, and letting the daemon wait for it; stopping
//! the process on a panic. Must never: try to recover by itself: a node that cannot write must stop
//! acknowledging anything (LDK holds the messages that depend on unwritten state), and a supervisor restarts
//! it.
use tokio::sync::watch;

/// The fatal-error latch, shared by every service that persists.
#[derive(Clone)]
pub struct Health {
    tx: watch::Sender<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Self { tx: watch::channel(None).0 }
    }
}

impl Health {
    /// Records that the node cannot go on, once, with an ERROR line; the daemon exits with an error at
    /// once. Nothing acknowledged to a peer or a caller is lost: what could not be written was never
    /// acknowledged.
    ///
    /// Ordering: the latch is set before the line is logged. The log may sit on the disk that just filled up:
    /// whatever happens to the line, the daemon must still learn it has to stop.
    pub fn fail(&self, reason: String) {
        let first = self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason.clone());
            true
        });
        if first {
            tracing::error!(reason = %reason, "fatal: the node cannot persist its state; stopping");
        }
    }

    /// Waits until the node hits a fatal error; returns why.
    pub async fn failed(&self) -> String {
        let mut rx = self.tx.subscribe();
        let reason = match rx.wait_for(|f| f.is_some()).await {
            Ok(f) => f.clone().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if reason.is_empty() {
            return std::future::pending().await;
        }
        reason
    }
}

/// Writes `line` to stderr, where lanesd's log goes, ignoring failure: on a full disk (the log on it) or a
/// closed stderr, `eprintln!` panics, and a panic on the way out left the process running.
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Ends the process at once with `code`, after one line on stderr (written if it can be): no clean stop,
/// which would write and send. Everything acknowledged is persisted already; what is not was never
/// acknowledged.
pub fn exit_now(code: i32, line: &str) -> ! {
    say(line);
    std::process::exit(code)
}

/// Makes any panic, on any thread, stop the process (as a panic does in LND and CLN). Left to tokio, a panic
/// ends only its task: a node whose flush, event loop or chain watcher died kept serving the API and
/// accepting peers while it could no longer move a payment, and no supervisor would restart it. Stopping is
/// safe at any instant: nothing reaches a peer or a caller before the state it depends on is on disk (the
/// same guarantee a kill -9 relies on, `crash.rs`). The panic's own message and place come first, from the
/// default hook; then one line an operator can grep, then abort (no clean stop: it would write and send).
pub fn stop_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        say("lanesd: fatal: a panic (a bug in lanes: please report it with the lines above); stopping, since a task that died would leave the node running without it");
        std::process::abort();
    }));
}
