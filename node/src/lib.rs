//! lanesd: a Lightning node on LDK, BDK and bitcoind, driven through gRPC.
//!
//! Start reading at [`builder`]: it wires every component in order (config → stores → chain source →
//! wallet → channel manager → router → watcher → services → API) and is the one place that knows them
//! all. [`Node`] is a facade over the services (`node.payments()`, `node.channels()`, …); each service
//! holds only the handles it needs and never the node. The gRPC API ([`api`]) parses, calls one service
//! method and converts.
//!
//! Layers (a module only uses modules of its own layer or below; no import circle):
//! 1. `config`, `error`, `ids`, `record`, `store`, `bus`, `health`: values, records, the event bus.
//! 2. Services: `onchain`, `peers`, `channels`, `invoice`, `payments`, `routes`, `graph`, `forwards`,
//!    `announce`, `sweep`, `anchors`, `listener`, `watcher`.
//! 3. `events`: LDK's events, handed to the services.
//! 4. `node` (the facade and its tasks), `builder` (the wiring), `api` (the transport).
//!
//! Owns: the crate's module list and what it exports. Must never: hold logic of its own.

pub mod anchors;
pub mod announce;
pub mod api;
pub mod builder;
pub mod bus;
pub mod channels;
pub mod config;
pub mod error;
pub mod events;
pub mod forwards;
pub mod graph;
pub mod health;
pub mod ids;
pub mod invoice;
pub mod lease;
pub mod listener;
pub mod node;
pub mod offers;
pub mod onchain;
pub mod payments;
pub mod peers;
pub mod record;
pub mod routes;
pub mod store;
pub mod splice;
pub mod sweep;
pub mod watcher;

pub use builder::Builder;
pub use config::Config;
pub use error::NodeError;
pub use node::Node;
