//! A compact, read-only view of the channel graph, laid out for path search.
//!
//! Built from LDK's [`ReadOnlyNetworkGraph`] in one pass: nodes get dense `u32` indices and every
//! usable channel direction becomes one [`Edge`] in an array sorted by *target* node, with a CSR
//! offset array (`in_start`) so a search walking backwards from the payee reads the incoming
//! edges of a node as one contiguous slice. No hashing happens during a search.
//!
//! Which directions are kept follows LDK's router: both directions of the channel must have a
//! channel update (LDK's `as_directed_to` requires it), and the direction must be enabled.
//! Disabled directions are left out of the view (they are counted in [`GraphStats`]).
//!
//! Owns: the snapshot's layout (nodes and edges by index). Must never: change after it is built (a new graph is
//! a new snapshot), or hold liquidity knowledge (that is the scorer's).
use std::collections::HashMap;

use lightning::routing::gossip::{NodeId, ReadOnlyNetworkGraph};
use lightning::types::features::{ChannelFeatures, NodeFeatures};

/// One usable direction of a channel: `src` forwards to `dst` under `src`'s channel update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub src: u32,
    pub dst: u32,
    pub scid: u64,
    pub htlc_min_msat: u64,
    /// `min(htlc_maximum_msat, capacity)`.
    pub htlc_max_msat: u64,
    /// On-chain capacity in msat, or the advertised htlc maximum when the capacity is unknown.
    pub capacity_msat: u64,
    pub fee_base_msat: u32,
    pub fee_ppm: u32,
    pub cltv_delta: u16,
    /// `src < dst` by node id (LDK's direction convention for in-flight HTLCs: node_one to node_two).
    pub one_to_two: bool,
    pub kind: EdgeKind,
    /// Index into [`RoutingGraph::channel_features`] (graph edges only).
    pub chan: u32,
}

/// Where an edge came from: the public graph, one of our own channels, or an invoice's route hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    Graph,
    FirstHop,
    Hint,
}

impl Edge {
    /// The fee `src` charges to forward `amt_msat` over this edge; `None` on overflow.
    #[inline]
    pub fn fee_msat(&self, amt_msat: u64) -> Option<u64> {
        let prop = (amt_msat as u128 * self.fee_ppm as u128) / 1_000_000;
        let fee = prop.checked_add(self.fee_base_msat as u128)?;
        u64::try_from(fee).ok()
    }
}

/// A digest of everything in LDK's graph that a [`RoutingGraph`] is built from: which channels and
/// nodes exist, capacities, each direction's update (its timestamp, which every new update raises,
/// and its fields) and each node announcement's timestamp. Two graphs with the same digest build the
/// same view (barring a 64-bit collision). Order-independent; one pass, no allocation: much cheaper
/// than a rebuild, so it can be checked often.
pub fn fingerprint(graph: &ReadOnlyNetworkGraph<'_>) -> u64 {
    // splitmix64's finalizer: spreads every input bit over the output.
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let channels = graph.channels();
    let nodes = graph.nodes();
    let mut acc = mix(channels.len() as u64) ^ mix((nodes.len() as u64) << 32 | 1);
    for (scid, c) in channels.unordered_iter() {
        let mut h = mix(*scid ^ c.capacity_sats.map_or(u64::MAX, |s| s.rotate_left(23)));
        for (dir, u) in [(1u64, c.one_to_two.as_ref()), (2, c.two_to_one.as_ref())] {
            let Some(u) = u else { continue };
            let flags = (u.enabled as u64) << 32 | u.cltv_expiry_delta as u64 | dir << 40;
            h = mix(h ^ (u.last_update as u64) ^ flags.rotate_left(7));
            h = mix(h ^ u.htlc_minimum_msat ^ u.htlc_maximum_msat.rotate_left(29));
            h = mix(h ^ (u.fees.base_msat as u64) << 32 ^ u.fees.proportional_millionths as u64);
        }
        let features = c.features.le_flags().iter().fold(0u64, |k, b| k.rotate_left(8) ^ *b as u64);
        acc = acc.wrapping_add(mix(h ^ features));
    }
    for (id, n) in nodes.unordered_iter() {
        let key = id.as_slice().iter().skip(1).take(8).fold(0u64, |k, b| k << 8 | *b as u64);
        let announced = n.announcement_info.as_ref().map_or(0, |a| a.last_update() as u64 | 1 << 40);
        acc = acc.wrapping_add(mix(key ^ mix(announced)));
    }
    acc
}

/// Sizes of a built view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    pub nodes: usize,
    pub channels: usize,
    pub directed_edges: usize,
    pub skipped_directions: usize,
}

/// The compact graph. Immutable once built; rebuild it (cheap: one pass) when gossip changes.
#[derive(Clone, Debug, Default)]
pub struct RoutingGraph {
    node_ids: Vec<NodeId>,
    node_index: HashMap<NodeId, u32>,
    node_features: Vec<NodeFeatures>,
    in_start: Vec<u32>,
    edges: Vec<Edge>,
    channel_features: Vec<ChannelFeatures>,
    /// (scid, one_to_two) -> edge index
    edge_index: HashMap<(u64, bool), u32>,
    stats: GraphStats,
}

impl RoutingGraph {
    /// Builds the view from LDK's graph. Never fails: anything unusable is left out.
    pub fn from_ldk(graph: &ReadOnlyNetworkGraph<'_>) -> Self {
        let nodes = graph.nodes();
        let mut node_ids: Vec<NodeId> = nodes.unordered_keys().copied().collect();
        node_ids.sort_unstable();
        let node_index: HashMap<NodeId, u32> =
            node_ids.iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();
        let node_features: Vec<NodeFeatures> = node_ids
            .iter()
            .map(|id| {
                nodes
                    .get(id)
                    .and_then(|n| n.announcement_info.as_ref())
                    .map(|a| a.features().clone())
                    .unwrap_or_else(NodeFeatures::empty)
            })
            .collect();

        let mut edges = Vec::new();
        let mut channel_features = Vec::new();
        let mut stats = GraphStats { nodes: node_ids.len(), ..Default::default() };
        for (scid, info) in graph.channels().unordered_iter() {
            let (Some(&a), Some(&b)) = (node_index.get(&info.node_one), node_index.get(&info.node_two))
            else {
                continue;
            };
            let (Some(one), Some(two)) = (info.one_to_two.as_ref(), info.two_to_one.as_ref()) else {
                stats.skipped_directions += 2;
                continue;
            };
            if a == b || info.features.requires_unknown_bits() {
                continue;
            }
            stats.channels += 1;
            let chan = channel_features.len() as u32;
            channel_features.push(info.features.clone());
            for (upd, src, dst, one_to_two) in [(one, a, b, true), (two, b, a, false)] {
                // LDK never routes through a node that requires features it does not know.
                let src_bad = node_features.get(src as usize).is_none_or(|f: &NodeFeatures| f.requires_unknown_bits());
                if !upd.enabled || src_bad {
                    stats.skipped_directions += 1;
                    continue;
                }
                let capacity_msat = info
                    .capacity_sats
                    .and_then(|s| s.checked_mul(1000))
                    .unwrap_or(upd.htlc_maximum_msat);
                edges.push(Edge {
                    src,
                    dst,
                    scid: *scid,
                    htlc_min_msat: upd.htlc_minimum_msat,
                    htlc_max_msat: upd.htlc_maximum_msat.min(capacity_msat),
                    capacity_msat,
                    fee_base_msat: upd.fees.base_msat,
                    fee_ppm: upd.fees.proportional_millionths,
                    cltv_delta: upd.cltv_expiry_delta,
                    one_to_two,
                    kind: EdgeKind::Graph,
                    chan,
                });
            }
        }
        Self::from_parts(node_ids, node_index, node_features, edges, channel_features, stats)
    }

    fn from_parts(
        node_ids: Vec<NodeId>, node_index: HashMap<NodeId, u32>, node_features: Vec<NodeFeatures>,
        mut edges: Vec<Edge>, channel_features: Vec<ChannelFeatures>, mut stats: GraphStats,
    ) -> Self {
        let n = node_ids.len();
        edges.sort_unstable_by_key(|e| (e.dst, e.scid, e.one_to_two));
        let mut in_start = vec![0u32; n + 1];
        for e in &edges {
            in_start[e.dst as usize + 1] += 1;
        }
        for i in 0..n {
            in_start[i + 1] += in_start[i];
        }
        let edge_index = edges.iter().enumerate().map(|(i, e)| ((e.scid, e.one_to_two), i as u32)).collect();
        stats.directed_edges = edges.len();
        RoutingGraph { node_ids, node_index, node_features, in_start, edges, channel_features, edge_index, stats }
    }

    pub fn stats(&self) -> GraphStats {
        self.stats
    }
    pub fn node_count(&self) -> usize {
        self.node_ids.len()
    }
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }
    pub fn node_index(&self, id: &NodeId) -> Option<u32> {
        self.node_index.get(id).copied()
    }
    pub fn node_id(&self, idx: u32) -> Option<&NodeId> {
        self.node_ids.get(idx as usize)
    }
    pub fn node_features(&self, idx: u32) -> Option<&NodeFeatures> {
        self.node_features.get(idx as usize)
    }
    pub fn channel_features(&self, chan: u32) -> Option<&ChannelFeatures> {
        self.channel_features.get(chan as usize)
    }
    /// Index of the directed edge `(scid, one_to_two)`.
    pub fn edge_index(&self, scid: u64, one_to_two: bool) -> Option<u32> {
        self.edge_index.get(&(scid, one_to_two)).copied()
    }
    /// Whether LDK's graph still has the policy this view has for the direction `(scid, one_to_two)`:
    /// enabled, same fees, CLTV delta and htlc limits. True when the view has no such edge (nothing
    /// to compare: a first hop or a route hint).
    pub fn edge_is_current(&self, ldk: &ReadOnlyNetworkGraph<'_>, scid: u64, one_to_two: bool) -> bool {
        let Some(e) = self.edge_index(scid, one_to_two).and_then(|i| self.edges.get(i as usize)) else {
            return true;
        };
        let Some(c) = ldk.channel(scid) else { return false };
        let Some(u) = (if one_to_two { c.one_to_two.as_ref() } else { c.two_to_one.as_ref() }) else {
            return false;
        };
        let capacity_msat = c.capacity_sats.and_then(|s| s.checked_mul(1000)).unwrap_or(u.htlc_maximum_msat);
        u.enabled
            && u.fees.base_msat == e.fee_base_msat
            && u.fees.proportional_millionths == e.fee_ppm
            && u.cltv_expiry_delta == e.cltv_delta
            && u.htlc_minimum_msat == e.htlc_min_msat
            && u.htlc_maximum_msat.min(capacity_msat) == e.htlc_max_msat
            && capacity_msat == e.capacity_msat
    }

    /// Whether the public graph has either direction of `scid`.
    pub fn has_scid(&self, scid: u64) -> bool {
        self.edge_index.contains_key(&(scid, true)) || self.edge_index.contains_key(&(scid, false))
    }
    /// Edges whose target is `node`, as (first edge index, slice).
    #[inline]
    pub fn incoming(&self, node: u32) -> (usize, &[Edge]) {
        let n = node as usize;
        if n + 1 >= self.in_start.len() {
            return (0, &[]);
        }
        let (s, e) = (self.in_start[n] as usize, self.in_start[n + 1] as usize);
        (s, &self.edges[s..e])
    }
}
