//! lanesd: a Lightning node on LDK, BDK and bitcoind, driven through gRPC.
//!
//! Start reading at [`builder`]: it wires every component in order (config → stores → chain source →
//! wallet → channel manager → router → watcher → API) and is the one place that knows them all.

pub mod anchors;
pub mod announce;
pub mod api;
pub mod builder;
pub mod channels;
pub mod config;
pub mod error;
pub mod events;
pub mod forwards;
pub mod graph;
pub mod ids;
pub mod invoice;
pub mod listener;
pub mod node;
pub mod payments;
pub mod peers;
pub mod store;
pub mod watcher;

pub use builder::Builder;
pub use config::Config;
pub use error::NodeError;
pub use node::Node;
