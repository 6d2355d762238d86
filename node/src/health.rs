//! Whether the node can go on: the one fatal condition is that it can no longer persist its state.
//!
//! Owns: recording that condition once, with an ERROR line, and letting the daemon wait for it. Must
//! never: try to recover by itself: a node that cannot write must stop acknowledging anything (LDK holds
//! the messages that depend on unwritten state), and a supervisor restarts it.
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
