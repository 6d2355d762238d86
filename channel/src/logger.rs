//! LDK's log records, forwarded to `tracing` with the channel and peer ids LDK attaches.
//!
//! Owns: the mapping of LDK levels to tracing levels. Must never: decide what an operator sees about
//! state changes; those one-line events are logged by the node where the change happens.
use lightning::util::logger::{Level, Logger, Record};

/// Forwards LDK records to tracing under the target `ldk`.
#[derive(Default)]
pub struct LdkTracing;

impl Logger for LdkTracing {
    fn log(&self, r: Record) {
        let peer = r.peer_id.map(|p| p.to_string()).unwrap_or_default();
        let chan = r.channel_id.map(|c| c.to_string()).unwrap_or_default();
        match r.level {
            Level::Gossip | Level::Trace => {
                tracing::trace!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args)
            }
            Level::Debug => tracing::debug!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Info => tracing::info!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Warn => tracing::warn!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Error => tracing::error!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
        }
    }
}
