//! Route-finding speed: lanes' router against LDK's default `find_route` + `ProbabilisticScorer`,
//! on the same graph and the same queries, in one run.
//!
//! `cargo bench -p lanes-router --bench routing`
//!
//! Graph: an LDK `NetworkGraph` snapshot if one is found (`$LANES_GRAPH_SNAPSHOT`, else the first
//! readable file in `shared/data/` next to the repository), otherwise a seeded synthetic graph shaped
//! like today's public network (`LANES_BENCH_NODES`, default 14000; `LANES_BENCH_CHANNELS`, default
//! 45000; `LANES_BENCH_SEED`, default 42). Queries: `LANES_BENCH_QUERIES` (default 400) seeded random
//! payer/payee pairs, amounts cycling 10k / 100k / 1M sat, payee supporting MPP (like an invoice).
//! `LANES_BENCH_SYNTH=1` uses the synthetic graph even when a snapshot is there.
//! `LANES_WRITE_SNAPSHOT=path` writes the generated graph in LDK's format (to replay it as a snapshot).
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use lanes_router::synth::{self, GenParams, NoFallback, NoLog, Rng};
use lanes_router::graph::fingerprint;
use lanes_router::{LanesRouter, LiquidityScorer, RoutingGraph, ScorerParams};
use lightning::routing::router::{find_route, PaymentParameters, RouteParameters};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::types::features::Bolt11InvoiceFeatures;
use lightning::util::ser::Writeable;
use rayon::prelude::*;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Run {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    single_rps: f64,
    parallel_rps: f64,
    found: usize,
    fee_msat: u64,
    /// The fee of each query's route (None: no route).
    fees: Vec<Option<u64>>,
}

/// `f` answers one query (for latency); `batch` answers them all on all cores (for throughput).
fn measure<F, B>(name: &'static str, queries: &[(PublicKey, RouteParameters)], f: F, batch: B) -> Run
where
    F: Fn(&PublicKey, &RouteParameters) -> Option<u64> + Sync,
    B: Fn(&[(PublicKey, RouteParameters)]) -> usize,
{
    // Warm-up (caches, thread-local scratch).
    for (payer, params) in queries.iter().take(20) {
        let _ = f(payer, params);
    }
    let mut lat = Vec::with_capacity(queries.len());
    let mut found = 0;
    let mut fee_msat = 0u64;
    let mut fees = Vec::with_capacity(queries.len());
    let t0 = Instant::now();
    for (payer, params) in queries {
        let t = Instant::now();
        let r = f(payer, params);
        lat.push(t.elapsed());
        fees.push(r);
        if let Some(fee) = r {
            found += 1;
            fee_msat += fee;
        }
    }
    let single = t0.elapsed();
    let t1 = Instant::now();
    let par_found = batch(queries);
    let parallel = t1.elapsed();
    assert_eq!(par_found, found, "{name}: parallel run found a different number of routes");
    lat.sort();
    Run {
        name,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        single_rps: queries.len() as f64 / single.as_secs_f64(),
        parallel_rps: queries.len() as f64 / parallel.as_secs_f64(),
        found,
        fee_msat,
        fees,
    }
}

fn main() {
    let threads = rayon::current_num_threads();
    let n_queries = env("LANES_BENCH_QUERIES", 400) as usize;
    let t = Instant::now();
    let (source, ng) = match synth::load_snapshot() {
        Some((path, g)) => (format!("snapshot {path}"), g),
        None => {
            let p = GenParams::from_env();
            let spec = synth::generate(p);
            let mut deg = synth::degrees(&spec);
            deg.sort_unstable();
            let n = deg.len().max(1);
            println!(
                "synthetic graph (seed {}): degree median {}, p90 {}, p99 {}, max {}; nodes with 1 channel: {:.0}%",
                p.seed,
                deg[n / 2],
                deg[n * 9 / 10],
                deg[n * 99 / 100],
                deg[n - 1],
                100.0 * deg.iter().filter(|d| **d == 1).count() as f64 / n as f64
            );
            let g = synth::build_ldk_graph(&spec, Arc::new(NoLog));
            if let Ok(path) = std::env::var("LANES_WRITE_SNAPSHOT") {
                match std::fs::write(&path, g.encode()) {
                    Ok(()) => println!("wrote the generated graph to {path}"),
                    Err(e) => println!("could not write {path}: {e}"),
                }
            }
            (format!("synthetic, seed {}", p.seed), g)
        }
    };
    let ng = Arc::new(ng);
    let load_time = t.elapsed();
    let t = Instant::now();
    let graph = RoutingGraph::from_ldk(&ng.read_only());
    let build_time = t.elapsed();
    // What the router pays to notice gossip: a digest of LDK's graph (once per refresh interval).
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(fingerprint(&ng.read_only()));
    }
    let fingerprint_time = t.elapsed() / rounds;
    let st = graph.stats();
    println!(
        "graph: {source}: {} nodes, {} channels ({} usable directions); LDK graph built in {:.2?}, our view in {:.2?}, \
         change check (fingerprint) {:.2?}",
        st.nodes, st.channels, st.directed_edges, load_time, build_time, fingerprint_time
    );

    // Nodes with at least one usable channel, as payers and payees.
    let mut active: Vec<PublicKey> = Vec::new();
    for i in 0..graph.node_count() as u32 {
        if !graph.incoming(i).1.is_empty() {
            if let Some(pk) = graph.node_id(i).and_then(|id| id.as_pubkey().ok()) {
                active.push(pk);
            }
        }
    }
    let mut rng = Rng::new(env("LANES_BENCH_SEED", 42) ^ 0xbeef);
    let amounts = [10_000_000u64, 100_000_000, 1_000_000_000];
    let mut queries = Vec::with_capacity(n_queries);
    while queries.len() < n_queries && active.len() > 1 {
        let a = active[rng.below(active.len() as u64) as usize];
        let b = active[rng.below(active.len() as u64) as usize];
        if a == b {
            continue;
        }
        let pp = PaymentParameters::from_node_id(b, 144)
            .with_bolt11_features(Bolt11InvoiceFeatures::for_keysend(true))
            .expect("clear payee");
        let amt = amounts[queries.len() % amounts.len()];
        queries.push((a, RouteParameters::from_payment_params_and_value(pp, amt)));
    }
    println!("{} queries, amounts 10k/100k/1M sat, {} threads", queries.len(), threads);
    let Some(our_id) = queries.first().map(|q| q.0) else {
        println!("no two nodes with channels: nothing to route");
        return;
    };

    let scorer = ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), ng.clone(), Arc::new(NoLog));
    let fee_params = ProbabilisticScoringFeeParameters::default();
    let ldk_one = |payer: &PublicKey, params: &RouteParameters| {
        find_route(payer, params, &ng, None, Arc::new(NoLog), &scorer, &fee_params, &[7u8; 32])
            .ok()
            .map(|r| r.get_total_fees())
    };
    let ldk = measure("LDK find_route", &queries, ldk_one, |qs| {
        qs.par_iter().filter(|(payer, params)| ldk_one(payer, params).is_some()).count()
    });
    // Ours through the public API: `LanesRouter::route` per query, `find_routes_batch` for all.
    let router = LanesRouter::new(ng.clone(), our_id, LiquidityScorer::new(ScorerParams::default()), NoFallback);
    let ours = measure(
        "lanes router",
        &queries,
        |payer, params| router.route(payer, params, None).ok().map(|r| r.route.get_total_fees()),
        |qs| router.find_routes_batch(qs, None, None).iter().filter(|r| r.is_ok()).count(),
    );

    println!();
    println!("seq: one query at a time (latencies too); ours still searches MPP splits of one query in parallel");
    println!("(RAYON_NUM_THREADS=1 makes everything single-threaded)");
    println!(
        "{:<16} {:>9} {:>9} {:>12} {:>14} {:>9} {:>12}",
        "router", "p50", "p99", "routes/s seq", format!("routes/s {threads}t"), "found", "avg fee sat"
    );
    for r in [&ldk, &ours] {
        println!(
            "{:<16} {:>9.2?} {:>9.2?} {:>12.1} {:>14.1} {:>9} {:>12.1}",
            r.name,
            r.p50,
            r.p99,
            r.single_rps,
            r.parallel_rps,
            format!("{}/{}", r.found, queries.len()),
            r.fee_msat as f64 / r.found.max(1) as f64 / 1000.0
        );
    }
    // Fees compared where both found a route (each router's average above is over its own routes).
    let both: Vec<(u64, u64)> = ldk.fees.iter().zip(&ours.fees).filter_map(|(l, o)| Some(((*l)?, (*o)?))).collect();
    let (ldk_fees, our_fees) = both.iter().fold((0u64, 0u64), |(l, o), (a, b)| (l + a, o + b));
    let cheaper = both.iter().filter(|(l, o)| o < l).count();
    let dearer = both.iter().filter(|(l, o)| o > l).count();
    println!(
        "fees where both found a route ({} queries): LDK {:.1} sat, ours {:.1} sat on average, ours/LDK {:.2}; ours cheaper on {cheaper}, dearer on {dearer}",
        both.len(),
        ldk_fees as f64 / both.len().max(1) as f64 / 1000.0,
        our_fees as f64 / both.len().max(1) as f64 / 1000.0,
        our_fees as f64 / ldk_fees.max(1) as f64
    );
    println!();
    println!(
        "ratio ours/LDK: routes/s on {threads} threads {:.2}x (both parallel), one query at a time {:.2}x, p50 latency {:.2}x lower, p99 {:.2}x lower",
        ours.parallel_rps / ldk.parallel_rps,
        ours.single_rps / ldk.single_rps,
        ldk.p50.as_secs_f64() / ours.p50.as_secs_f64().max(1e-9),
        ldk.p99.as_secs_f64() / ours.p99.as_secs_f64().max(1e-9)
    );
    println!(
        "ours on {threads} threads vs LDK one query at a time (how LDK's default router runs per payment): {:.2}x",
        ours.parallel_rps / ldk.single_rps
    );
}
