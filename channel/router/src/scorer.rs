//! A probabilistic liquidity scorer: what we have learned about each channel direction's liquidity.
//!
//! For every directed channel `(scid, one_to_two)` we keep bounds `[min, max]` on the liquidity
//! available to forward, learned from payment outcomes: an HTLC that passed a channel proves at least
//! that much liquidity, one that failed at a channel proves less. Bounds decay back towards
//! "nothing known" (`[0, capacity]`) with a half-life, so old knowledge fades.
//!
//! The success probability of sending `amt` assumes liquidity uniform within the bounds, and the
//! router minimises `fee + penalty`, where the penalty grows with `-log2(probability)`.
//! [`LiquidityScorer::view`] flattens the bounds (decayed to a given time) into arrays aligned with a
//! [`RoutingGraph`]'s edges, so searches never touch the map. The state is plain data, serializable
//! with serde ([`LiquidityScorer::to_bytes`]) so it can be kept in the store.
//!
//! Owns: the per-direction liquidity bounds and how they decay. Must never: block a path search for long
//! (readers take a snapshot), or forget what it learned without the decay saying so.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::graph::RoutingGraph;

/// Tunables of the penalty and decay.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScorerParams {
    /// Flat penalty per hop (msat); prefers shorter paths at equal fees.
    pub base_penalty_msat: u64,
    /// Penalty per bit of failure risk (msat per `-log2(p)`).
    pub liquidity_penalty_msat: u64,
    /// Additional penalty per bit of failure risk, proportional to the amount (parts per million).
    pub liquidity_penalty_amount_ppm: u64,
    /// Liquidity knowledge halves towards "nothing known" every this many seconds.
    pub half_life_secs: u64,
}

impl Default for ScorerParams {
    fn default() -> Self {
        ScorerParams {
            base_penalty_msat: 500,
            liquidity_penalty_msat: 20_000,
            liquidity_penalty_amount_ppm: 300,
            half_life_secs: 6 * 3600,
        }
    }
}

/// What we know about one channel direction. `max_msat == u64::MAX` means "capacity".
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiquidityBounds {
    pub min_msat: u64,
    pub max_msat: u64,
    pub updated_secs: u64,
}

/// One hop of an attempted path, as the scorer needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoredHop {
    pub scid: u64,
    pub one_to_two: bool,
    /// Amount the HTLC carried over this channel.
    pub amount_msat: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LiquidityScorer {
    pub params: ScorerParams,
    bounds: HashMap<u64, [Option<LiquidityBounds>; 2]>,
}

/// Bounds of every graph edge at one moment, decayed, aligned with [`RoutingGraph::edges`].
#[derive(Clone, Debug, Default)]
pub struct ScoreView {
    pub params: ScorerParams,
    pub min_msat: Vec<u64>,
    pub max_msat: Vec<u64>,
}

impl ScoreView {
    /// A view with no knowledge (prior: liquidity uniform in `[0, capacity]`).
    pub fn empty(graph: &RoutingGraph, params: ScorerParams) -> Self {
        let max_msat = graph.edges().iter().map(|e| e.capacity_msat).collect();
        ScoreView { params, min_msat: vec![0; graph.edges().len()], max_msat }
    }

    /// Penalty in msat for sending `amt` over graph edge `idx`.
    #[inline]
    pub fn penalty_msat(&self, idx: usize, amt: u64) -> u64 {
        let (min, max) = match (self.min_msat.get(idx), self.max_msat.get(idx)) {
            (Some(a), Some(b)) => (*a, *b),
            _ => (0, u64::MAX),
        };
        penalty(&self.params, amt, min, max)
    }

    /// Success probability of sending `amt` over graph edge `idx`.
    pub fn probability(&self, idx: usize, amt: u64) -> f64 {
        match (self.min_msat.get(idx), self.max_msat.get(idx)) {
            (Some(a), Some(b)) => probability(amt, *a, *b),
            _ => 1.0,
        }
    }
}

/// Probability that liquidity uniform in `[min, max]` is at least `amt`.
#[inline]
pub fn probability(amt: u64, min: u64, max: u64) -> f64 {
    if amt <= min {
        1.0
    } else if amt > max || max <= min {
        0.0
    } else {
        (max - amt + 1) as f64 / (max - min + 1) as f64
    }
}

/// `base + (liq + amt * ppm) * -log2(p)`, with `p` floored so the penalty stays finite.
#[inline]
pub fn penalty(params: &ScorerParams, amt: u64, min: u64, max: u64) -> u64 {
    let base = params.base_penalty_msat;
    if amt <= min {
        return base;
    }
    let p = probability(amt, min, max).max(1.0 / 65536.0);
    let bits = -(p as f32).log2();
    let per_bit = params.liquidity_penalty_msat as f32
        + (amt as f32) * (params.liquidity_penalty_amount_ppm as f32) / 1_000_000.0;
    base.saturating_add((per_bit * bits) as u64)
}

fn decayed(b: &LiquidityBounds, capacity: u64, now_secs: u64, half_life: u64) -> (u64, u64) {
    let max = b.max_msat.min(capacity);
    let min = b.min_msat.min(max);
    let elapsed = now_secs.saturating_sub(b.updated_secs);
    if half_life == 0 || elapsed == 0 {
        return (min, max);
    }
    let f = 0.5f64.powf(elapsed as f64 / half_life as f64);
    let min_d = (min as f64 * f) as u64;
    let max_d = capacity - ((capacity - max) as f64 * f) as u64;
    (min_d.min(max_d), max_d)
}

impl LiquidityScorer {
    pub fn new(params: ScorerParams) -> Self {
        LiquidityScorer { params, bounds: HashMap::new() }
    }

    /// Number of channel directions we know something about.
    pub fn known(&self) -> usize {
        self.bounds.values().map(|b| b.iter().filter(|x| x.is_some()).count()).sum()
    }

    pub fn bounds(&self, scid: u64, one_to_two: bool) -> Option<LiquidityBounds> {
        self.bounds.get(&scid).and_then(|b| b[one_to_two as usize])
    }

    fn entry(&mut self, scid: u64, one_to_two: bool, now: u64) -> &mut LiquidityBounds {
        let slot = &mut self.bounds.entry(scid).or_insert([None, None])[one_to_two as usize];
        slot.get_or_insert(LiquidityBounds { min_msat: 0, max_msat: u64::MAX, updated_secs: now })
    }

    /// Decays a stored lower bound to `now` before the bounds are refined.
    fn refresh(&mut self, scid: u64, one_to_two: bool, now: u64) -> &mut LiquidityBounds {
        let hl = self.params.half_life_secs;
        let b = self.entry(scid, one_to_two, now);
        let elapsed = now.saturating_sub(b.updated_secs);
        if hl > 0 && elapsed > 0 {
            let f = 0.5f64.powf(elapsed as f64 / hl as f64);
            b.min_msat = (b.min_msat as f64 * f) as u64;
            // The upper bound is kept: without the capacity at hand it cannot be widened exactly,
            // and a contradicting observation resets it below.
        }
        b.updated_secs = now;
        b
    }

    /// A payment along `hops` failed at hop `failed_idx`: the hops before it carried their amount,
    /// the failing one could not.
    pub fn payment_path_failed(&mut self, hops: &[ScoredHop], failed_idx: usize, now_secs: u64) {
        for (i, h) in hops.iter().enumerate() {
            if i < failed_idx {
                let b = self.refresh(h.scid, h.one_to_two, now_secs);
                b.min_msat = b.min_msat.max(h.amount_msat);
                if b.max_msat < b.min_msat {
                    b.max_msat = u64::MAX;
                }
            } else if i == failed_idx {
                let b = self.refresh(h.scid, h.one_to_two, now_secs);
                let new_max = h.amount_msat.saturating_sub(1);
                b.max_msat = b.max_msat.min(new_max);
                if b.min_msat > b.max_msat {
                    b.min_msat = 0;
                }
                break;
            }
        }
    }

    /// A payment along `hops` succeeded: each channel had the amount, and now has that much less.
    pub fn payment_path_successful(&mut self, hops: &[ScoredHop], now_secs: u64) {
        for h in hops {
            let b = self.refresh(h.scid, h.one_to_two, now_secs);
            b.min_msat = b.min_msat.max(h.amount_msat) - h.amount_msat;
            if b.max_msat != u64::MAX {
                b.max_msat = b.max_msat.saturating_sub(h.amount_msat).max(b.min_msat);
            }
        }
    }

    /// The bounds of every edge of `graph`, decayed to `now_secs`.
    pub fn view(&self, graph: &RoutingGraph, now_secs: u64) -> ScoreView {
        let mut v = ScoreView::empty(graph, self.params);
        if self.bounds.is_empty() {
            return v;
        }
        for (i, e) in graph.edges().iter().enumerate() {
            if let Some(b) = self.bounds.get(&e.scid).and_then(|b| b[e.one_to_two as usize]) {
                let (lo, hi) = decayed(&b, e.capacity_msat, now_secs, self.params.half_life_secs);
                v.min_msat[i] = lo;
                v.max_msat[i] = hi;
            }
        }
        v
    }

    /// Serialized form for storage (the node keeps it in the store).
    pub fn to_bytes(&self) -> Vec<u8> {
        let flat: Vec<(u64, bool, LiquidityBounds)> = self
            .bounds
            .iter()
            .flat_map(|(scid, b)| {
                [(true, b[1]), (false, b[0])].into_iter().filter_map(move |(d, x)| x.map(|x| (*scid, d, x)))
            })
            .collect();
        serde_json::to_vec(&(self.params, flat)).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (params, flat): (ScorerParams, Vec<(u64, bool, LiquidityBounds)>) = serde_json::from_slice(bytes).ok()?;
        let mut s = LiquidityScorer::new(params);
        for (scid, d, b) in flat {
            s.bounds.entry(scid).or_insert([None, None])[d as usize] = Some(b);
        }
        Some(s)
    }
}
