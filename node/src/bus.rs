//! The node's event bus: what SubscribeEvents streams.
//!
//! Owns: fanning out one [`NodeEvent`] per state change to every subscriber. Must never: block the
//! publisher (a slow subscriber misses events instead) or carry anything a subscriber could act on to
//! move money: these are notifications, the services hold the state.
use tokio::sync::broadcast;

use lanes_common::now_secs;

/// What subscribers of SubscribeEvents receive.
#[derive(Clone, Debug, Default)]
pub struct NodeEvent {
    pub kind: &'static str,
    pub timestamp: u64,
    pub node_id: String,
    pub channel_id: String,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub detail: String,
}

/// The node's event bus. Slow subscribers miss events rather than slow the node down.
pub struct EventBus {
    tx: broadcast::Sender<NodeEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self { tx: broadcast::channel(1024).0 }
    }
}

impl EventBus {
    pub fn publish(&self, mut e: NodeEvent) {
        e.timestamp = now_secs();
        let _ = self.tx.send(e);
    }
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.tx.subscribe()
    }
}
