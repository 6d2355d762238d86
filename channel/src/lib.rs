//! The Lightning side of lanes: everything LDK needs from us to keep channel state safe.
//!
//! This crate owns the glue between LDK and the outside world: the order in which channel state reaches
//! the durable store (any `lanes_store::DynStore`) ([`persist`]), the journal of transactions to
//! broadcast ([`broadcast`]), the bitcoind client that feeds it blocks, fee estimates
//! and broadcasts ([`bitcoind`]), the tracing adapter for LDK's logs ([`logger`]) and the concrete LDK
//! types the node is made of ([`types`]), lanes' router among them (crate `lanes-router`, re-exported
//! as [`router`]). Protocol logic stays in LDK: nothing here builds commitment transactions or decides
//! channel state, and nothing here talks to the API.
//!
//! Owns: the crate's module list and re-exports. Must never: hold logic of its own.

pub mod bitcoind;
pub mod broadcast;
pub mod error;
pub mod gossip;
pub mod handler;
pub mod keys;
pub mod logger;
pub mod manager_chunks;
pub mod offers_gate;
pub mod persist;
pub mod test_knobs;
pub mod types;

/// lanes' own router lives in its own crate, `lanes-router`; re-exported so `lanes_channel::router::...`
/// paths (and [`types::Router`]) keep naming it.
pub use lanes_router as router;

pub use error::ChannelError;
