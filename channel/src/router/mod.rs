//! lanes' own payment router: finds payment paths over the channel graph, fast and in parallel.
//!
//! Owns: a compact view of the channel graph built from LDK's `NetworkGraph` ([`graph`]), what we
//! have learned about channel liquidity from payment outcomes ([`scorer`]), the path search itself
//! with every constraint an LDK route must satisfy and MPP splitting ([`pathfind`]), and the
//! adapter that answers LDK through its `Router` trait ([`lanes_router`]).
//!
//! Must never: send, retry or abandon payments (LDK's ChannelManager does), modify LDK's network
//! graph (gossip owns it), return a route LDK would reject (wrong final amount or CLTV, a path longer
//! than fits the onion, a channel outside its htlc limits), or panic on any graph or query input:
//! every failure is an `Err` with LDK's kind of message.
//!
//! Speed comes from the graph layout (dense node indices, edges grouped by target in one array, no
//! hashing in the search loop), per-thread reusable search state, and rayon: MPP splits are searched
//! concurrently and [`pathfind::find_routes_batch`] / [`lanes_router::LanesRouter::find_routes_batch`]
//! answer many queries on all cores.

pub mod graph;
pub mod lanes_router;
pub mod pathfind;
pub mod scorer;
pub mod synth;

#[cfg(test)]
mod tests;

pub use graph::RoutingGraph;
pub use lanes_router::LanesRouter;
pub use pathfind::{find_route, find_routes_batch, Query};
pub use scorer::{LiquidityScorer, ScoreView, ScorerParams};
