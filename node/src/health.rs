//! Whether the node can go on: the fatal conditions are that it can no longer persist its state, and a panic
//! (a bug) anywhere in the process.
//!
//! Owns: recording the first condition once, with an ERROR line, and letting the daemon wait for it; stopping
//! the process on a panic. Must never: try to recover by itself: a node that cannot write must stop
//! acknowledging anything (LDK holds the messages that depend on unwritten state), and a supervisor restarts
//! it.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// The fatal-error latch, shared by every service that persists.
#[derive(Clone)]
pub struct Health {
    claimed: Arc<AtomicBool>,
    tx: watch::Sender<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Self { claimed: Arc::new(AtomicBool::new(false)), tx: watch::channel(None).0 }
    }
}

impl Health {
    /// Records that the node cannot go on, once, with an ERROR line; the daemon exits with an error at
    /// once. Nothing acknowledged to a peer or a caller is lost: what could not be written was never
    /// acknowledged.
    ///
    /// Ordering: claim, log, then wake the daemon. Woken first, the daemon exits at once and the process can
    /// end before the ERROR line is written (seen: `postgres.rs` found no fatal line). The line cannot stop
    /// the daemon from learning it has to stop: stderr is unbuffered, a line tracing cannot write (the log on
    /// the disk that just filled up) is dropped rather than reported with a panicking `eprintln!`
    /// (`log_internal_errors(false)` in lanesd), and any panic stops the process anyway (`stop_on_panic`).
    pub fn fail(&self, reason: String) {
        if self.claimed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!(reason = %reason, "fatal: the node cannot persist its state; stopping");
        self.tx.send_replace(Some(reason));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::Write;
    use std::sync::{mpsc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// A log writer that holds every write until the test lets it go, as a slow disk would.
    #[derive(Clone)]
    struct HeldLog {
        written: Arc<Mutex<Vec<u8>>>,
        entered: Arc<Mutex<mpsc::Sender<()>>>,
        release: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl Write for HeldLog {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The daemon exits the moment it learns of the failure, so it must not learn before the fatal line is
    /// in the log: an operator greps for it.
    #[test]
    fn the_fatal_line_is_written_before_the_daemon_learns_it_must_stop() {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let log = HeldLog {
            written: Arc::default(),
            entered: Arc::new(Mutex::new(entered_tx)),
            release: Arc::new(Mutex::new(release_rx)),
        };
        let health = Health::default();
        let failing = health.clone();
        let writer = log.clone();
        let thread = std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
            tracing::subscriber::with_default(subscriber, || failing.fail("writing channel state failed".into()));
        });

        let mut failed = Box::pin(health.failed());
        let mut cx = Context::from_waker(Waker::noop());
        entered_rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the fatal line is being written");
        assert!(failed.as_mut().poll(&mut cx).is_pending(), "the daemon learnt of the failure before its line was written");

        drop(release_tx);
        thread.join().unwrap();
        let written = String::from_utf8(log.written.lock().unwrap().clone()).unwrap();
        assert!(written.contains("fatal: the node cannot persist its state") && written.contains("writing channel state failed"), "{written}");
        assert_eq!(failed.as_mut().poll(&mut cx), Poll::Ready("writing channel state failed".to_string()));
    }
}
