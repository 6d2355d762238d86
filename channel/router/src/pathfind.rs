//! The path search: amount-aware Dijkstra from the payee back to the payer over [`RoutingGraph`].
//!
//! Walking backwards means the amount each node must receive is known when its incoming channels
//! are relaxed (the payee receives the payment; every earlier node receives what it forwards plus its
//! fee), so every channel is checked against the exact amount it would carry: htlc minimum and
//! maximum, capacity (minus what other parts of the same payment already use), the fee budget, the
//! CLTV budget (`max_total_cltv_expiry_delta`, final delta included) and the path length limit. The
//! cost minimised is fees plus the scorer's penalty ([`ScoreView`]).
//!
//! Per query, an overlay adds the payer's own channels (first hops, which then replace the payer's
//! public channels, as in LDK) and the invoice's route hints (private channels), with nodes the
//! public graph does not know. MPP: when the payee supports it and one path cannot carry the amount
//! (or carries it with a success probability below [`MPP_PROBABILITY_FLOOR`]), splits into 2..=N equal
//! parts are searched concurrently with rayon and the cheapest complete split wins.
//!
//! LDK's `max_channel_saturation_power_of_half` is not applied as a hard limit: the scorer's penalty,
//! which grows with the share of a channel's possible liquidity a payment needs, discourages it.
//!
//! Nothing here panics on any input: arithmetic saturates or rejects, indices are checked.
//!
//! Owns: the search and its rules (fees, CLTV, htlc limits, path length). Must never: do I/O, take locks, or
//! return a route LDK's own rules would refuse.
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use lightning::routing::gossip::NodeId;
use lightning::types::features::ChannelFeatures;
use rayon::prelude::*;

use super::graph::{Edge, EdgeKind, RoutingGraph};
use super::scorer::ScoreView;

/// All bitcoin that can exist, in msat (the one definition, lanes-common's).
pub const MAX_VALUE_MSAT: u64 = lanes_common::MAX_MSAT;
/// LDK's `MAX_PATH_LENGTH_ESTIMATE`: hops that fit a 1300-byte onion.
pub const MAX_PATH_LENGTH: u8 = 19;
/// Below this single-path success probability, MPP splits are also tried (when allowed).
pub const MPP_PROBABILITY_FLOOR: f64 = 0.5;

/// One of our own channels, usable as the first hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstHop {
    pub counterparty: NodeId,
    pub scid: u64,
    pub outbound_msat: u64,
    pub htlc_min_msat: u64,
    pub announced: bool,
    pub features: ChannelFeatures,
}

/// One hop of an invoice route hint: the channel from `src` to the next hint hop (or the payee).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintHop {
    pub src: NodeId,
    pub scid: u64,
    pub fee_base_msat: u32,
    pub fee_ppm: u32,
    pub cltv_delta: u16,
    pub htlc_min_msat: Option<u64>,
    pub htlc_max_msat: Option<u64>,
}

/// A route request, independent of LDK's types.
#[derive(Clone, Debug)]
pub struct Query {
    pub payer: NodeId,
    pub payee: NodeId,
    pub amount_msat: u64,
    pub final_cltv_delta: u32,
    pub max_total_cltv: u32,
    pub max_path_len: u8,
    pub max_path_count: u8,
    pub allow_mpp: bool,
    pub max_fee_msat: Option<u64>,
    pub first_hops: Option<Vec<FirstHop>>,
    pub hints: Vec<Vec<HintHop>>,
    pub excluded_scids: Vec<u64>,
    /// HTLCs already in flight: (scid, one_to_two, msat). Their liquidity is not available.
    pub in_flight: Vec<(u64, bool, u64)>,
}

impl Query {
    /// A plain query with LDK's default limits.
    pub fn new(payer: NodeId, payee: NodeId, amount_msat: u64) -> Self {
        Query {
            payer,
            payee,
            amount_msat,
            final_cltv_delta: 144,
            max_total_cltv: 1008,
            max_path_len: MAX_PATH_LENGTH,
            max_path_count: 10,
            allow_mpp: false,
            max_fee_msat: None,
            first_hops: None,
            hints: Vec::new(),
            excluded_scids: Vec::new(),
            in_flight: Vec::new(),
        }
    }
}

/// One channel of a found path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathHop {
    pub edge: Edge,
    pub src: NodeId,
    pub dst: NodeId,
    /// Amount the HTLC carries over this channel.
    pub amount_msat: u64,
    pub announced: bool,
    pub features: ChannelFeatures,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FoundPath {
    pub hops: Vec<PathHop>,
    /// Amount delivered to the payee by this path.
    pub amount_msat: u64,
    pub fee_msat: u64,
    /// Total CLTV delta of the path, final delta included.
    pub cltv_total: u32,
    pub probability: f64,
    pub cost_msat: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FoundRoute {
    pub paths: Vec<FoundPath>,
}

impl FoundRoute {
    pub fn fee_msat(&self) -> u64 {
        self.paths.iter().map(|p| p.fee_msat).fold(0u64, |a, b| a.saturating_add(b))
    }
    pub fn probability(&self) -> f64 {
        self.paths.iter().map(|p| p.probability).product()
    }
    pub fn cost_msat(&self) -> u64 {
        self.paths.iter().map(|p| p.cost_msat).fold(0u64, |a, b| a.saturating_add(b))
    }
}

pub const ERR_NO_ROUTE: &str = "Failed to find a path to the given destination";

/// Per-query additions to the graph: first hops, hint channels, and nodes the graph lacks.
struct Overlay {
    base_nodes: u32,
    extra_ids: Vec<NodeId>,
    extra_index: HashMap<NodeId, u32>,
    edges: Vec<Edge>,
    announced: Vec<bool>,
    features: Vec<ChannelFeatures>,
    /// Whether the payer's public channels are replaced by first hops.
    first_hops_given: bool,
}

impl Overlay {
    fn node(&mut self, g: &RoutingGraph, id: &NodeId) -> u32 {
        if let Some(i) = g.node_index(id) {
            return i;
        }
        if let Some(i) = self.extra_index.get(id) {
            return *i;
        }
        let i = self.base_nodes + self.extra_ids.len() as u32;
        self.extra_ids.push(*id);
        self.extra_index.insert(*id, i);
        i
    }
    fn node_id<'a>(&'a self, g: &'a RoutingGraph, idx: u32) -> Option<&'a NodeId> {
        if idx < self.base_nodes {
            g.node_id(idx)
        } else {
            self.extra_ids.get((idx - self.base_nodes) as usize)
        }
    }
    fn node_count(&self) -> usize {
        self.base_nodes as usize + self.extra_ids.len()
    }

    fn build(g: &RoutingGraph, q: &Query) -> (Self, u32, u32) {
        let mut ov = Overlay {
            base_nodes: g.node_count() as u32,
            extra_ids: Vec::new(),
            extra_index: HashMap::new(),
            edges: Vec::new(),
            announced: Vec::new(),
            features: Vec::new(),
            first_hops_given: q.first_hops.is_some(),
        };
        let payer = ov.node(g, &q.payer);
        let payee = ov.node(g, &q.payee);
        if let Some(fh) = &q.first_hops {
            for h in fh {
                let dst = ov.node(g, &h.counterparty);
                if dst == payer {
                    continue;
                }
                ov.push(
                    Edge {
                        src: payer,
                        dst,
                        scid: h.scid,
                        htlc_min_msat: h.htlc_min_msat,
                        htlc_max_msat: h.outbound_msat,
                        capacity_msat: h.outbound_msat,
                        fee_base_msat: 0,
                        fee_ppm: 0,
                        cltv_delta: 0,
                        one_to_two: q.payer < h.counterparty,
                        kind: EdgeKind::FirstHop,
                        chan: u32::MAX,
                    },
                    h.announced,
                    h.features.clone(),
                );
            }
        }
        for hint in &q.hints {
            // Hops of a hint lead from each `src` to the next hop's `src`, the last one to the payee.
            for (i, h) in hint.iter().enumerate() {
                let src = ov.node(g, &h.src);
                let (dst, dst_id) = match hint.get(i + 1) {
                    Some(next) => (ov.node(g, &next.src), next.src),
                    None => (payee, q.payee),
                };
                if src == dst {
                    continue;
                }
                let max = h.htlc_max_msat.unwrap_or(MAX_VALUE_MSAT);
                ov.push(
                    Edge {
                        src,
                        dst,
                        scid: h.scid,
                        htlc_min_msat: h.htlc_min_msat.unwrap_or(0),
                        htlc_max_msat: max,
                        capacity_msat: max,
                        fee_base_msat: h.fee_base_msat,
                        fee_ppm: h.fee_ppm,
                        cltv_delta: h.cltv_delta,
                        one_to_two: h.src < dst_id,
                        kind: EdgeKind::Hint,
                        chan: u32::MAX,
                    },
                    g.has_scid(h.scid),
                    ChannelFeatures::empty(),
                );
            }
        }
        (ov, payer, payee)
    }

    fn push(&mut self, e: Edge, announced: bool, f: ChannelFeatures) {
        self.edges.push(e);
        self.announced.push(announced);
        self.features.push(f);
    }
}

/// Reused search state, one per thread, stamped by generation so nothing is cleared per query.
#[derive(Default)]
struct Scratch {
    gen: u32,
    stamp: Vec<u32>,
    done: Vec<u32>,
    cost: Vec<u64>,
    recv: Vec<u64>,
    cltv: Vec<u32>,
    hops: Vec<u8>,
    pred: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Scratch {
    fn prepare(&mut self, n: usize) {
        if self.stamp.len() < n {
            self.stamp.resize(n, 0);
            self.done.resize(n, 0);
            self.cost.resize(n, 0);
            self.recv.resize(n, 0);
            self.cltv.resize(n, 0);
            self.hops.resize(n, 0);
            self.pred.resize(n, 0);
        }
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.done.iter_mut().for_each(|s| *s = 0);
            self.gen = 1;
        }
        self.heap.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static USED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Ctx<'a> {
    g: &'a RoutingGraph,
    view: &'a ScoreView,
    q: &'a Query,
    ov: &'a Overlay,
    payer: u32,
    payee: u32,
    /// Liquidity used by in-flight HTLCs per edge index, if any.
    base_used: Option<Vec<u64>>,
}

impl Ctx<'_> {
    #[inline]
    fn edge(&self, idx: u32) -> Option<&Edge> {
        let e = self.g.edges().len();
        let i = idx as usize;
        if i < e {
            self.g.edges().get(i)
        } else {
            self.ov.edges.get(i - e)
        }
    }

    /// One search for a path delivering `amount` to the payee. `used`: msat already allotted per
    /// edge index (graph edges, then overlay edges) by other parts of the same payment.
    fn search(&self, amount: u64, used: Option<&[u64]>, fee_budget: u64) -> Option<Vec<u32>> {
        SCRATCH.with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            self.search_in(&mut s, amount, used, fee_budget)
        })
    }

    fn search_in(&self, s: &mut Scratch, amount: u64, used: Option<&[u64]>, fee_budget: u64) -> Option<Vec<u32>> {
        let n = self.ov.node_count();
        s.prepare(n);
        let gen = s.gen;
        let q = self.q;
        let max_len = q.max_path_len.min(MAX_PATH_LENGTH);
        let e_base = self.g.edges().len();
        let t = self.payee as usize;
        s.stamp[t] = gen;
        s.cost[t] = 0;
        s.recv[t] = amount;
        s.cltv[t] = q.final_cltv_delta;
        s.hops[t] = 0;
        s.pred[t] = u32::MAX;
        s.heap.push(Reverse((0, self.payee)));
        let has_overlay = !self.ov.edges.is_empty();
        let has_excl = !q.excluded_scids.is_empty();
        while let Some(Reverse((c, v))) = s.heap.pop() {
            let vi = v as usize;
            if s.done[vi] == gen || c > s.cost[vi] {
                continue;
            }
            s.done[vi] = gen;
            if v == self.payer {
                break;
            }
            let amt = s.recv[vi];
            let cltv_v = s.cltv[vi];
            let hops_u = s.hops[vi].saturating_add(1);
            if hops_u > max_len {
                continue;
            }
            let (start, graph_in) = self.g.incoming(v);
            let overlay_in = if has_overlay { &self.ov.edges[..] } else { &[][..] };
            let graph_iter = graph_in.iter().enumerate().map(|(k, e)| ((start + k) as u32, e));
            let overlay_iter = overlay_in
                .iter()
                .enumerate()
                .filter(|(_, e)| e.dst == v)
                .map(|(k, e)| ((e_base + k) as u32, e));
            for (idx, e) in graph_iter.chain(overlay_iter) {
                let u = e.src;
                let ui = u as usize;
                if ui >= n || s.done[ui] == gen {
                    continue;
                }
                // With first hops given, they are the only way out of the payer (a hint from us
                // names a channel that, if usable, is among them).
                if u == self.payer && self.ov.first_hops_given && e.kind != EdgeKind::FirstHop {
                    continue;
                }
                if amt < e.htlc_min_msat || amt > e.htlc_max_msat {
                    continue;
                }
                let already = used.and_then(|x| x.get(idx as usize)).copied().unwrap_or(0);
                let load = amt.saturating_add(already);
                if load > e.capacity_msat {
                    continue;
                }
                if has_excl && q.excluded_scids.contains(&e.scid) {
                    continue;
                }
                let (fee, cltv_u) = if u == self.payer {
                    (0, cltv_v)
                } else {
                    match e.fee_msat(amt) {
                        Some(f) => (f, cltv_v.saturating_add(e.cltv_delta as u32)),
                        None => continue,
                    }
                };
                if cltv_u > q.max_total_cltv {
                    continue;
                }
                let Some(recv_u) = amt.checked_add(fee) else { continue };
                if recv_u - amount > fee_budget {
                    continue;
                }
                let pen = match e.kind {
                    EdgeKind::Graph => self.view.penalty_msat(idx as usize, load),
                    EdgeKind::Hint => self.view.params.base_penalty_msat,
                    EdgeKind::FirstHop => 0,
                };
                let cost_u = c.saturating_add(fee).saturating_add(pen);
                if s.stamp[ui] != gen || cost_u < s.cost[ui] {
                    s.stamp[ui] = gen;
                    s.cost[ui] = cost_u;
                    s.recv[ui] = recv_u;
                    s.cltv[ui] = cltv_u;
                    s.hops[ui] = hops_u;
                    s.pred[ui] = idx;
                    s.heap.push(Reverse((cost_u, u)));
                }
            }
        }
        let p = self.payer as usize;
        if p >= n || s.done[p] != gen {
            return None;
        }
        let mut out = Vec::new();
        let mut at = self.payer;
        while at != self.payee {
            let idx = *s.pred.get(at as usize)?;
            let e = self.edge(idx)?;
            out.push(idx);
            at = e.dst;
            if out.len() > MAX_PATH_LENGTH as usize {
                return None;
            }
        }
        Some(out)
    }

    /// Turns edge indices (payer to payee) into a path delivering `amount`, re-checking limits.
    fn materialize(&self, edges: &[u32], amount: u64) -> Option<FoundPath> {
        let e_base = self.g.edges().len();
        let es: Vec<(u32, Edge)> = edges.iter().map(|i| self.edge(*i).map(|e| (*i, *e))).collect::<Option<_>>()?;
        let mut amts = vec![0u64; es.len()];
        let mut amt = amount;
        let mut cltv = self.q.final_cltv_delta;
        let mut fee_total = 0u64;
        let mut prob = 1.0;
        let mut cost = 0u64;
        for k in (0..es.len()).rev() {
            let (idx, e) = es[k];
            if amt < e.htlc_min_msat || amt > e.htlc_max_msat {
                return None;
            }
            amts[k] = amt;
            let pen = match e.kind {
                EdgeKind::Graph => {
                    prob *= self.view.probability(idx as usize, amt);
                    self.view.penalty_msat(idx as usize, amt)
                }
                EdgeKind::Hint => self.view.params.base_penalty_msat,
                EdgeKind::FirstHop => 0,
            };
            cost = cost.saturating_add(pen);
            if k > 0 {
                let fee = e.fee_msat(amt)?;
                fee_total = fee_total.checked_add(fee)?;
                amt = amt.checked_add(fee)?;
                cltv = cltv.checked_add(e.cltv_delta as u32)?;
            }
        }
        if cltv > self.q.max_total_cltv {
            return None;
        }
        // LDK refuses a path that uses the same channel twice (a hint may repeat a public scid).
        if es.iter().enumerate().any(|(i, (_, a))| es[i + 1..].iter().any(|(_, b)| a.scid == b.scid)) {
            return None;
        }
        let mut hops = Vec::with_capacity(es.len());
        for (k, (idx, e)) in es.iter().enumerate() {
            let (announced, features) = if (*idx as usize) < e_base {
                (true, self.g.channel_features(e.chan).cloned().unwrap_or_else(ChannelFeatures::empty))
            } else {
                let j = *idx as usize - e_base;
                (*self.ov.announced.get(j)?, self.ov.features.get(j)?.clone())
            };
            hops.push(PathHop {
                edge: *e,
                src: *self.ov.node_id(self.g, e.src)?,
                dst: *self.ov.node_id(self.g, e.dst)?,
                amount_msat: amts[k],
                announced,
                features,
            });
        }
        Some(FoundPath {
            hops,
            amount_msat: amount,
            fee_msat: fee_total,
            cltv_total: cltv,
            probability: prob,
            cost_msat: cost.saturating_add(fee_total),
        })
    }

    /// Splits `amount` in `parts` equal parts, searched one after the other with liquidity used by
    /// earlier parts taken off.
    fn split(&self, parts: u64) -> Option<FoundRoute> {
        if let Some(base) = &self.base_used {
            return self.split_in(parts, &mut base.clone(), &mut Vec::new());
        }
        // A per-thread zeroed buffer, reset through the touched indices: allocating (and page
        // faulting) a fresh graph-sized vector per split would serialize threads in the kernel.
        let total_edges = self.g.edges().len() + self.ov.edges.len();
        USED.with(|cell| {
            let mut used = std::mem::take(&mut *cell.borrow_mut());
            if used.len() < total_edges {
                used.resize(total_edges, 0);
            }
            let mut touched = Vec::new();
            let r = self.split_in(parts, &mut used, &mut touched);
            for i in touched {
                if let Some(u) = used.get_mut(i) {
                    *u = 0;
                }
            }
            *cell.borrow_mut() = used;
            r
        })
    }

    fn split_in(&self, parts: u64, used: &mut [u64], touched: &mut Vec<usize>) -> Option<FoundRoute> {
        let amount = self.q.amount_msat;
        let budget = self.q.max_fee_msat.unwrap_or(u64::MAX);
        let mut paths: Vec<FoundPath> = Vec::new();
        let mut fee_left = budget;
        let base = amount / parts;
        if base == 0 {
            return None;
        }
        for i in 0..parts {
            let part = if i == parts - 1 { amount - base * (parts - 1) } else { base };
            let edges = self.search(part, Some(used), fee_left)?;
            let path = self.materialize(&edges, part)?;
            fee_left = fee_left.checked_sub(path.fee_msat)?;
            for (idx, h) in edges.iter().zip(path.hops.iter()) {
                if let Some(u) = used.get_mut(*idx as usize) {
                    *u = u.saturating_add(h.amount_msat);
                    touched.push(*idx as usize);
                }
            }
            // Two parts over exactly the same channels are one HTLC: merge them.
            if let Some(same) = paths.iter_mut().find(|p| {
                p.hops.len() == path.hops.len() && p.hops.iter().zip(&path.hops).all(|(a, b)| a.edge.scid == b.edge.scid)
            }) {
                let merged = self.materialize(
                    &same.hops.iter().map(|h| self.index_of(&h.edge)).collect::<Option<Vec<_>>>()?,
                    same.amount_msat + path.amount_msat,
                );
                match merged {
                    Some(m) => *same = m,
                    None => paths.push(path),
                }
            } else {
                paths.push(path);
            }
        }
        if paths.len() > self.q.max_path_count as usize {
            return None;
        }
        Some(FoundRoute { paths })
    }

    fn index_of(&self, e: &Edge) -> Option<u32> {
        if e.kind == EdgeKind::Graph {
            return self.g.edge_index(e.scid, e.one_to_two);
        }
        self.ov.edges.iter().position(|x| x == e).map(|j| (self.g.edges().len() + j) as u32)
    }
}

/// Checks a query against LDK's basic rules; returns the reason it cannot be routed.
pub fn validate(q: &Query) -> Result<(), &'static str> {
    if q.payer == q.payee {
        return Err("Cannot generate a route to ourselves");
    }
    if q.amount_msat > MAX_VALUE_MSAT {
        return Err("Cannot generate a route of more value than all existing satoshis");
    }
    if q.amount_msat == 0 {
        return Err("Cannot send a payment of 0 msat");
    }
    if q.max_total_cltv <= q.final_cltv_delta {
        return Err("Can't find a route where the maximum total CLTV expiry delta is below the final CLTV expiry.");
    }
    if q.max_path_count == 0 {
        return Err("Can't find a route with no paths allowed.");
    }
    Ok(())
}

/// Finds the cheapest (fee + penalty) route for `q`. MPP splits are searched in parallel.
pub fn find_route(g: &RoutingGraph, view: &ScoreView, q: &Query) -> Result<FoundRoute, &'static str> {
    validate(q)?;
    let (ov, payer, payee) = Overlay::build(g, q);
    let base_used = (!q.in_flight.is_empty()).then(|| {
        let mut used = vec![0u64; g.edges().len() + ov.edges.len()];
        for (scid, dir, amt) in &q.in_flight {
            if let Some(u) = g.edge_index(*scid, *dir).and_then(|i| used.get_mut(i as usize)) {
                *u = u.saturating_add(*amt);
            }
        }
        used
    });
    let ctx = Ctx { g, view, q, ov: &ov, payer, payee, base_used };
    let budget = q.max_fee_msat.unwrap_or(u64::MAX);
    let single = ctx
        .search(q.amount_msat, ctx.base_used.as_deref(), budget)
        .and_then(|edges| ctx.materialize(&edges, q.amount_msat))
        .map(|p| FoundRoute { paths: vec![p] });
    let mpp = q.allow_mpp && q.max_path_count > 1;
    let good_enough = single.as_ref().is_some_and(|r| r.probability() >= MPP_PROBABILITY_FLOOR);
    if !mpp || good_enough {
        return single.ok_or(ERR_NO_ROUTE);
    }
    // Splits are searched concurrently, fewest parts first: most payments that need splitting
    // fit in 2 to 4 parts, and every extra part is one more full search. The cheapest of the single
    // path and the splits (fees plus penalties, so likelier routes win) is returned.
    let mut best = single;
    for stage in [&[2u64, 3, 4][..], &[6, 8, 10, 16][..]] {
        let counts: Vec<u64> = stage.iter().copied().filter(|k| *k <= q.max_path_count as u64).collect();
        let found = counts.par_iter().filter_map(|k| ctx.split(*k)).min_by_key(|r| r.cost_msat());
        best = match (best, found) {
            (Some(a), Some(b)) => Some(if b.cost_msat() < a.cost_msat() { b } else { a }),
            (a, b) => a.or(b),
        };
        // More parts only when nothing fits in fewer.
        if best.is_some() {
            break;
        }
    }
    best.ok_or(ERR_NO_ROUTE)
}

/// Many queries at once, spread over all cores.
pub fn find_routes_batch(g: &RoutingGraph, view: &ScoreView, qs: &[Query]) -> Vec<Result<FoundRoute, &'static str>> {
    qs.par_iter().map(|q| find_route(g, view, q)).collect()
}
