//! lanes-router: lanes' own payment router, which finds payment paths over the channel graph, fast
//! and in parallel, behind LDK's `Router` trait.
//!
//! Owns: a compact view of the channel graph built from LDK's `NetworkGraph` ([`graph`]), what we
//! have learned about channel liquidity from payment outcomes ([`scorer`]), the path search itself
//! with every constraint an LDK route must satisfy and MPP splitting ([`pathfind`]), and the
//! adapter that answers LDK through its `Router` trait ([`lanes_router`]); and onion-message paths through
//! the graph, for BOLT12 ([`message_router`]).
//!
//! Must never: send, retry or abandon payments (LDK's ChannelManager does), modify LDK's network
//! graph (gossip owns it), return a route LDK would reject (wrong final amount or CLTV, a path longer
//! than fits the onion, a channel outside its htlc limits), or panic on any graph or query input:
//! every failure is an `Err` with LDK's kind of message. Nor may it depend on the rest of lanes beyond
//! lanes-common (stores, bitcoind, the node): it sees only LDK's graph, the query and what it learned, so it can be tested and
//! benched alone.
//!
//! Speed comes from the graph layout (dense node indices, edges grouped by target in one array, no
//! hashing in the search loop), per-thread reusable search state, and rayon: MPP splits are searched
//! concurrently and [`pathfind::find_routes_batch`] / [`lanes_router::LanesRouter::find_routes_batch`]
//! answer many queries on all cores.
//!
//! `synth`, seeded synthetic graphs for tests and benches, exists only with the `synth` feature (and
//! in this crate's own tests): production builds do not contain it.

pub mod graph;
pub mod lanes_router;
pub mod message_router;
pub mod pathfind;
pub mod scorer;
#[cfg(any(test, feature = "synth"))]
pub mod synth;

#[cfg(test)]
mod tests;

pub use graph::RoutingGraph;
pub use lanes_router::LanesRouter;
pub use message_router::LanesMessageRouter;
pub use pathfind::{find_route, find_routes_batch, Query};
pub use scorer::{LiquidityScorer, ScoreView, ScorerParams};
