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
    pub fn fail(&self, reason: String) {
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::error!(reason = %reason, "fatal: the node cannot persist its state; stopping");
            *current = Some(reason);
            true
        });
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
