//! Reacts to LDK's events: the node's side of what LDK decides.
//!
//! Owns: one log line per state change an operator cares about, and the actions LDK asks of us.
//! Must never: block on the network for long, or drop an event it could not handle: it returns
//! `ReplayEvent` so LDK hands the event over again (events are persisted by LDK until handled).
use std::sync::Arc;

use lightning::events::{Event, ReplayEvent};

use lanes_channel::types::ChannelManager;

/// The LDK event handler of a node.
pub struct EventHandler {
    pub(crate) channel_manager: Arc<ChannelManager>,
}

impl EventHandler {
    pub async fn handle(&self, event: Event) -> Result<(), ReplayEvent> {
        match event {
            Event::ChannelReady { channel_id, counterparty_node_id, .. } => {
                tracing::info!(%channel_id, peer = %counterparty_node_id, "channel ready");
            }
            Event::ChannelClosed { channel_id, reason, counterparty_node_id, .. } => {
                tracing::info!(%channel_id, peer = ?counterparty_node_id, %reason, "channel closed");
            }
            Event::OpenChannelRequest { temporary_channel_id, counterparty_node_id, .. } => {
                // Only reached if manual acceptance is on; accept like LND does by default.
                let _ = self.channel_manager.accept_inbound_channel(&temporary_channel_id, &counterparty_node_id, 0, None);
            }
            other => tracing::debug!(event = ?other, "lightning event"),
        }
        Ok(())
    }
}
