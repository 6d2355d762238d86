//! Route quality in a simulated network: success rate, attempts and fees, lanes' router against
//! LDK's default `find_route` + `ProbabilisticScorer`, side by side.
//!
//! `cargo bench -p lanes-router --bench route_quality`
//!
//! Every channel gets a hidden balance (seeded: a third of channels roughly balanced, the rest
//! mostly on one side, as on the real network). Each router pays the same seeded sequence of
//! payments (10k / 100k / 1M sat, payee supporting MPP) in its own copy of that world: a path
//! succeeds only if every channel on it has the liquidity; a successful part moves the liquidity
//! (as a settled HTLC does); the failing channel is reported to the router's own scorer and added
//! to `previously_failed_channels` (as LDK's ChannelManager does on retry), and what is still unpaid
//! is routed again, up to 10 attempts. A payment that ends unpaid releases its delivered parts.
//!
//! Graph: the real one when a snapshot is found (`$LANES_GRAPH_SNAPSHOT`, else `shared/data/` next to the
//! repository), as `routing` does; otherwise (or with `LANES_BENCH_SYNTH=1`) a seeded synthetic one.
//! `LANES_SIM_PAYMENTS` (default 300), `LANES_BENCH_NODES` (14000), `LANES_BENCH_CHANNELS` (45000),
//! `LANES_BENCH_SEED` (42).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::PublicKey;
use lanes_router::synth::{self, GenParams, NoFallback, NoLog, Rng};
use lanes_router::{LanesRouter, LiquidityScorer, ScorerParams};
use lightning::routing::gossip::{ChannelUpdateInfo, NetworkGraph, NodeId};
use lightning::routing::router::{
    find_route, InFlightHtlcs, Path, PaymentParameters, Route, RouteParameters, Router,
};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters, ScoreUpdate,
};
use lightning::types::features::Bolt11InvoiceFeatures;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Hidden liquidity per (scid, one_to_two), msat.
type World = HashMap<(u64, bool), u64>;

/// The hops of `path` as (scid, one_to_two, amount carried).
fn hops_of(payer: &PublicKey, path: &Path) -> Vec<(u64, bool, u64)> {
    let mut amounts = vec![0u64; path.hops.len()];
    let mut acc = 0u64;
    for (i, h) in path.hops.iter().enumerate().rev() {
        acc += h.fee_msat;
        amounts[i] = acc;
    }
    let mut prev = NodeId::from_pubkey(payer);
    let mut out = Vec::new();
    for (h, amt) in path.hops.iter().zip(amounts) {
        let next = NodeId::from_pubkey(&h.pubkey);
        out.push((h.short_channel_id, prev < next, amt));
        prev = next;
    }
    out
}

/// Index of the first hop without the liquidity, or None if the whole path can carry it.
fn try_path(world: &World, hops: &[(u64, bool, u64)]) -> Option<usize> {
    hops.iter().position(|(scid, d, amt)| world.get(&(*scid, *d)).is_none_or(|liq| liq < amt))
}

fn settle(world: &mut World, hops: &[(u64, bool, u64)], sign: i64) {
    for (scid, d, amt) in hops {
        let (fwd, back) = ((*scid, *d), (*scid, !*d));
        if sign > 0 {
            world.entry(fwd).and_modify(|l| *l = l.saturating_sub(*amt));
            world.entry(back).and_modify(|l| *l = l.saturating_add(*amt));
        } else {
            world.entry(fwd).and_modify(|l| *l = l.saturating_add(*amt));
            world.entry(back).and_modify(|l| *l = l.saturating_sub(*amt));
        }
    }
}

#[derive(Default, Clone)]
struct Stats {
    payments: usize,
    succeeded: usize,
    attempts: usize,
    fees_msat: u64,
    paid_msat: u64,
    route_time: Duration,
    by_size: [(usize, usize); 3],
}

trait SimRouter {
    fn route(&self, payer: &PublicKey, params: &RouteParameters) -> Result<Route, &'static str>;
    fn failed(&mut self, payer: &PublicKey, path: &Path, scid: u64);
    fn succeeded(&mut self, payer: &PublicKey, path: &Path);
}

struct Ldk<'a> {
    graph: Arc<NetworkGraph<Arc<NoLog>>>,
    scorer: ProbabilisticScorer<Arc<NetworkGraph<Arc<NoLog>>>, Arc<NoLog>>,
    fee_params: &'a ProbabilisticScoringFeeParameters,
}

impl SimRouter for Ldk<'_> {
    fn route(&self, payer: &PublicKey, params: &RouteParameters) -> Result<Route, &'static str> {
        find_route(payer, params, &self.graph, None, Arc::new(NoLog), &self.scorer, self.fee_params, &[7u8; 32])
    }
    fn failed(&mut self, _: &PublicKey, path: &Path, scid: u64) {
        self.scorer.payment_path_failed(path, scid, now());
    }
    fn succeeded(&mut self, _: &PublicKey, path: &Path) {
        self.scorer.payment_path_successful(path, now());
    }
}

struct Ours {
    router: LanesRouter<Arc<NoLog>, NoFallback>,
}

impl SimRouter for Ours {
    fn route(&self, payer: &PublicKey, params: &RouteParameters) -> Result<Route, &'static str> {
        self.router.find_route(payer, params, None, InFlightHtlcs::new())
    }
    fn failed(&mut self, payer: &PublicKey, path: &Path, scid: u64) {
        self.router.record_failure(payer, path, scid);
    }
    fn succeeded(&mut self, payer: &PublicKey, path: &Path) {
        self.router.record_success(payer, path);
    }
}

const SIZES: [u64; 3] = [10_000_000, 100_000_000, 1_000_000_000];
const MAX_ATTEMPTS: usize = 10;

fn simulate(r: &mut dyn SimRouter, world0: &World, payments: &[(PublicKey, PublicKey, usize)]) -> Stats {
    let mut world = world0.clone();
    let mut st = Stats::default();
    for (payer, payee, size) in payments {
        let amount = SIZES[*size];
        st.payments += 1;
        st.by_size[*size].0 += 1;
        let mut pp = PaymentParameters::from_node_id(*payee, 144)
            .with_bolt11_features(Bolt11InvoiceFeatures::for_keysend(true))
            .expect("clear payee");
        let mut remaining = amount;
        let mut delivered: Vec<Vec<(u64, bool, u64)>> = Vec::new();
        let mut fees = 0u64;
        let mut attempts = 0;
        while remaining > 0 && attempts < MAX_ATTEMPTS {
            attempts += 1;
            let params = RouteParameters::from_payment_params_and_value(pp.clone(), remaining);
            let t = Instant::now();
            let route = r.route(payer, &params);
            st.route_time += t.elapsed();
            let Ok(route) = route else { break };
            for path in &route.paths {
                let hops = hops_of(payer, path);
                match try_path(&world, &hops) {
                    None => {
                        settle(&mut world, &hops, 1);
                        remaining = remaining.saturating_sub(path.final_value_msat());
                        fees += path.fee_msat();
                        r.succeeded(payer, path);
                        delivered.push(hops);
                    }
                    Some(i) => {
                        let scid = hops[i].0;
                        r.failed(payer, path, scid);
                        pp.previously_failed_channels.push(scid);
                    }
                }
            }
        }
        st.attempts += attempts;
        if remaining == 0 {
            st.succeeded += 1;
            st.by_size[*size].1 += 1;
            st.fees_msat += fees;
            st.paid_msat += amount;
        } else {
            for hops in &delivered {
                settle(&mut world, hops, -1);
            }
        }
    }
    st
}

fn main() {
    let n_payments = env("LANES_SIM_PAYMENTS", 300) as usize;
    let seed = env("LANES_BENCH_SEED", 42);
    let (source, ng) = match synth::load_snapshot() {
        Some((path, g)) => (format!("snapshot {path}"), g),
        None => {
            let p = GenParams::from_env();
            (format!("synthetic, seed {seed}"), synth::build_ldk_graph(&synth::generate(p), Arc::new(NoLog)))
        }
    };
    let ng = Arc::new(ng);
    let mut rng = Rng::new(seed ^ 0x51u64);

    // The channels in scid order (the same world for every run of a seed), with their ends, capacity and
    // which directions are enabled (a third of the real graph's nodes have none: they can neither pay nor
    // be paid, for either router).
    let enabled = |u: &Option<ChannelUpdateInfo>| u.as_ref().is_some_and(|u| u.enabled);
    let mut channels: Vec<(u64, NodeId, NodeId, u64, [bool; 2])> = ng
        .read_only()
        .channels()
        .unordered_iter()
        .filter_map(|(scid, c)| Some((*scid, c.node_one, c.node_two, c.capacity_sats?, [enabled(&c.one_to_two), enabled(&c.two_to_one)])))
        .collect();
    channels.sort_unstable_by_key(|c| c.0);

    // Hidden balances: a third roughly balanced, the rest mostly on one side. Per node: the enabled
    // directions out of it and into it.
    let mut world: World = HashMap::new();
    let mut degree: HashMap<NodeId, (u32, u32)> = HashMap::new();
    for (scid, one, two, capacity_sat, on) in &channels {
        let cap = capacity_sat * 1000;
        let u = rng.f64();
        let frac = match rng.below(3) {
            0 => 0.2 + 0.6 * u,
            1 => u * u * u,
            _ => 1.0 - u * u * u,
        };
        let one_side = (cap as f64 * frac) as u64;
        world.insert((*scid, true), one_side);
        world.insert((*scid, false), cap - one_side);
        for (from, to, on) in [(one, two, on[0]), (two, one, on[1])] {
            if on {
                degree.entry(*from).or_default().0 += 1;
                degree.entry(*to).or_default().1 += 1;
            }
        }
    }

    // Payers among nodes that can send; well-connected payees (3 enabled channels in), as merchants are.
    let mut nodes: Vec<(NodeId, (u32, u32))> = degree.into_iter().collect();
    nodes.sort_unstable();
    let key = |n: &NodeId| n.as_pubkey().ok();
    let payers: Vec<PublicKey> = nodes.iter().filter(|(_, (out, _))| *out >= 1).filter_map(|(n, _)| key(n)).collect();
    let merchants: Vec<PublicKey> = nodes.iter().filter(|(_, (_, into))| *into >= 3).filter_map(|(n, _)| key(n)).collect();
    let mut payments = Vec::with_capacity(n_payments);
    while payments.len() < n_payments && payers.len() > 1 && !merchants.is_empty() {
        let a = payers[rng.below(payers.len() as u64) as usize];
        let b = merchants[rng.below(merchants.len() as u64) as usize];
        if a != b {
            payments.push((a, b, payments.len() % 3));
        }
    }
    println!(
        "simulation: {source}: {} nodes that can pay, {} channels; {} payments of 10k/100k/1M sat, up to {} attempts each",
        payers.len(),
        channels.len(),
        payments.len(),
        MAX_ATTEMPTS
    );
    let Some(our_id) = payers.first().copied() else {
        println!("no nodes with channels: nothing to pay");
        return;
    };

    let fee_params = ProbabilisticScoringFeeParameters::default();
    let mut ldk = Ldk {
        graph: ng.clone(),
        scorer: ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), ng.clone(), Arc::new(NoLog)),
        fee_params: &fee_params,
    };
    let t = Instant::now();
    let ldk_stats = simulate(&mut ldk, &world, &payments);
    let ldk_wall = t.elapsed();

    let mut ours = Ours {
        router: LanesRouter::new(ng.clone(), our_id, LiquidityScorer::new(ScorerParams::default()), NoFallback),
    };
    let t = Instant::now();
    let ours_stats = simulate(&mut ours, &world, &payments);
    let ours_wall = t.elapsed();

    println!();
    println!(
        "{:<16} {:>9} {:>10} {:>9} {:>9} {:>9} {:>12} {:>10} {:>12} {:>10}",
        "router", "success", "attempts", "10k ok", "100k ok", "1M ok", "fees sat", "fee ppm", "route time", "wall"
    );
    for (name, s, wall) in [("LDK find_route", &ldk_stats, ldk_wall), ("lanes router", &ours_stats, ours_wall)] {
        println!(
            "{:<16} {:>8.1}% {:>10.2} {:>9} {:>9} {:>9} {:>12.1} {:>10.1} {:>12.2?} {:>10.2?}",
            name,
            100.0 * s.succeeded as f64 / s.payments.max(1) as f64,
            s.attempts as f64 / s.payments.max(1) as f64,
            format!("{}/{}", s.by_size[0].1, s.by_size[0].0),
            format!("{}/{}", s.by_size[1].1, s.by_size[1].0),
            format!("{}/{}", s.by_size[2].1, s.by_size[2].0),
            s.fees_msat as f64 / 1000.0,
            s.fees_msat as f64 * 1e6 / s.paid_msat.max(1) as f64,
            s.route_time,
            wall,
        );
    }
    println!("(attempts = route queries per payment; fees = total over successful payments; route time = time inside the router)");
}

