//! Router tests on small hand-built graphs loaded through LDK's public gossip API, and a fee
//! cross-check against LDK's own `find_route`.
//!
//! Owns: the router's behavioural tests. Must never: be compiled outside `cfg(test)`.
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use lightning::routing::gossip::{NetworkGraph, NodeId};
use lightning::routing::router::{PaymentParameters, RouteHint, RouteHintHop, RouteParameters};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::types::features::Bolt11InvoiceFeatures;
use lightning::types::routing::RoutingFees;

use super::graph::RoutingGraph;
use super::lanes_router::{route_on, to_ldk_route};
use super::pathfind::{find_route, find_routes_batch, FirstHop, HintHop, Query};
use super::scorer::{LiquidityScorer, ScoreView, ScoredHop, ScorerParams};
use super::synth::{self, build_ldk_graph, ChannelSpec, GenParams, GraphSpec, NoFallback, NoLog, Policy, Rng};

fn pol(base: u32, ppm: u32, cltv: u16, max_sat: u64) -> Policy {
    Policy { fee_base_msat: base, fee_ppm: ppm, cltv_delta: cltv, htlc_min_msat: 1000, htlc_max_msat: max_sat * 1000, enabled: true }
}

/// Nodes 0..n; channels (a, b, capacity sat, policy both ways).
fn spec(n: usize, chans: &[(u32, u32, u64, Policy)]) -> GraphSpec {
    let (secret_keys, nodes) = synth::node_keys(n, 7);
    let channels = chans
        .iter()
        .enumerate()
        .map(|(i, (a, b, cap, p))| ChannelSpec {
            a: *a,
            b: *b,
            scid: ((700_000 + i as u64) << 40) | 1,
            capacity_sat: *cap,
            policies: [*p, *p],
        })
        .collect();
    GraphSpec { secret_keys, nodes, channels }
}

fn load(s: &GraphSpec) -> (NetworkGraph<Arc<NoLog>>, RoutingGraph) {
    let ng = build_ldk_graph(s, Arc::new(NoLog));
    let g = RoutingGraph::from_ldk(&ng.read_only());
    (ng, g)
}

fn id(s: &GraphSpec, i: u32) -> NodeId {
    NodeId::from_pubkey(&s.nodes[i as usize])
}

fn scids(s: &GraphSpec, r: &super::pathfind::FoundRoute) -> Vec<Vec<usize>> {
    r.paths
        .iter()
        .map(|p| p.hops.iter().map(|h| s.channels.iter().position(|c| c.scid == h.edge.scid).unwrap_or(999)).collect())
        .collect()
}

/// 0 -> 1 -> 3 (cheap) and 0 -> 2 -> 3 (expensive); all 1M sat.
fn diamond(cheap_max_sat: u64, cheap_cltv: u16) -> GraphSpec {
    spec(
        4,
        &[
            (0, 1, 1_000_000, pol(0, 10, cheap_cltv, cheap_max_sat)),
            (1, 3, 1_000_000, pol(0, 10, cheap_cltv, cheap_max_sat)),
            (0, 2, 1_000_000, pol(1000, 500, 40, 990_000)),
            (2, 3, 1_000_000, pol(1000, 500, 40, 990_000)),
        ],
    )
}

fn view(g: &RoutingGraph) -> ScoreView {
    ScoreView::empty(g, ScorerParams::default())
}

#[test]
fn picks_the_cheaper_path() {
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let r = find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 3), 10_000_000)).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![0, 1]]);
    // Fee: node 1 forwards 10k sat at 10 ppm = 100 msat.
    assert_eq!(r.fee_msat(), 100);
}

#[test]
fn respects_htlc_max() {
    let s = diamond(5_000, 40);
    let (_, g) = load(&s);
    let r = find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 3), 10_000_000)).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![2, 3]]);
}

#[test]
fn respects_capacity() {
    let mut s = diamond(990_000, 40);
    s.channels[1].capacity_sat = 5_000;
    let (_, g) = load(&s);
    let r = find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 3), 10_000_000)).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![2, 3]]);
}

#[test]
fn respects_cltv_limit() {
    let s = diamond(990_000, 500);
    let (_, g) = load(&s);
    let mut q = Query::new(id(&s, 0), id(&s, 3), 10_000_000);
    q.max_total_cltv = 400;
    let r = find_route(&g, &view(&g), &q).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![2, 3]]);
    assert!(r.paths[0].cltv_total <= 400);
    q.max_total_cltv = 150; // 144 final + 40 > 150: nothing fits
    assert!(find_route(&g, &view(&g), &q).is_err());
}

#[test]
fn respects_max_path_length() {
    let chans: Vec<_> = (0..24u32).map(|i| (i, i + 1, 1_000_000, pol(0, 1, 10, 990_000))).collect();
    let s = spec(25, &chans);
    let (_, g) = load(&s);
    let mut q = Query::new(id(&s, 0), id(&s, 24), 1_000_000);
    q.max_total_cltv = 2016;
    assert!(find_route(&g, &view(&g), &q).is_err(), "24 hops cannot fit the onion");
    let q = Query::new(id(&s, 0), id(&s, 19), 1_000_000);
    assert_eq!(find_route(&g, &view(&g), &q).unwrap().paths[0].hops.len(), 19);
    let q = Query::new(id(&s, 0), id(&s, 20), 1_000_000);
    assert!(find_route(&g, &view(&g), &q).is_err());
}

#[test]
fn route_hint_reaches_private_payee() {
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let (_, extra) = synth::node_keys(20, 99);
    let payee = NodeId::from_pubkey(&extra[19]);
    let mut q = Query::new(id(&s, 0), payee, 10_000_000);
    assert!(find_route(&g, &view(&g), &q).is_err());
    q.hints = vec![vec![HintHop {
        src: id(&s, 3),
        scid: 42,
        fee_base_msat: 1000,
        fee_ppm: 100,
        cltv_delta: 40,
        htlc_min_msat: None,
        htlc_max_msat: None,
    }]];
    let r = find_route(&g, &view(&g), &q).unwrap();
    let p = &r.paths[0];
    assert_eq!(p.hops.len(), 3);
    assert_eq!(p.hops[2].edge.scid, 42);
    assert_eq!(p.hops[2].dst, payee);
    // 3 charges 1000 + 10k sat * 100ppm = 2000 msat; 1 charges 10ppm of (10_000_000 + 2000).
    assert_eq!(p.fee_msat, 2000 + 100);
}

#[test]
fn first_hops_replace_public_channels_of_the_payer() {
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let mut q = Query::new(id(&s, 0), id(&s, 3), 10_000_000);
    // Only our channel to node 2 is usable (e.g. the one to node 1 is offline).
    q.first_hops = Some(vec![FirstHop {
        counterparty: id(&s, 2),
        scid: s.channels[2].scid,
        outbound_msat: 500_000_000,
        htlc_min_msat: 1,
        announced: true,
        features: lightning::types::features::ChannelFeatures::empty(),
    }]);
    let r = find_route(&g, &view(&g), &q).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![2, 3]]);
    // Too little outbound: no route.
    if let Some(f) = q.first_hops.as_mut() {
        f[0].outbound_msat = 1_000_000;
    }
    assert!(find_route(&g, &view(&g), &q).is_err());
}

#[test]
fn splits_mpp_when_one_path_cannot_carry_it() {
    // Two disjoint paths of 60k sat each; send 100k sat.
    let s = spec(
        4,
        &[
            (0, 1, 60_000, pol(0, 10, 40, 60_000)),
            (1, 3, 60_000, pol(0, 10, 40, 60_000)),
            (0, 2, 60_000, pol(0, 20, 40, 60_000)),
            (2, 3, 60_000, pol(0, 20, 40, 60_000)),
        ],
    );
    let (_, g) = load(&s);
    let mut q = Query::new(id(&s, 0), id(&s, 3), 100_000_000);
    assert!(find_route(&g, &view(&g), &q).is_err(), "no MPP: no single path carries it");
    q.allow_mpp = true;
    let r = find_route(&g, &view(&g), &q).unwrap();
    assert!(r.paths.len() >= 2);
    assert_eq!(r.paths.iter().map(|p| p.amount_msat).sum::<u64>(), 100_000_000);
    for ch in 0..4 {
        let used: u64 = r
            .paths
            .iter()
            .flat_map(|p| p.hops.iter())
            .filter(|h| h.edge.scid == s.channels[ch].scid)
            .map(|h| h.amount_msat)
            .sum();
        assert!(used <= 60_000_000);
    }
    q.max_path_count = 1;
    assert!(find_route(&g, &view(&g), &q).is_err());
}

#[test]
fn no_route_is_a_clean_error() {
    let s = spec(4, &[(0, 1, 1_000_000, pol(0, 1, 40, 990_000)), (2, 3, 1_000_000, pol(0, 1, 40, 990_000))]);
    let (_, g) = load(&s);
    assert!(find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 3), 1000)).is_err());
    assert!(find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 0), 1000)).is_err());
    assert!(find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 1), 0)).is_err());
    assert!(find_route(&g, &view(&g), &Query::new(id(&s, 0), id(&s, 1), u64::MAX)).is_err());
    let empty = RoutingGraph::default();
    assert!(find_route(&empty, &view(&empty), &Query::new(id(&s, 0), id(&s, 1), 1000)).is_err());
}

#[test]
fn ldk_route_shape() {
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let payee = s.nodes[3];
    let params = RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(payee, 144), 10_000_000);
    let est = route_on(&g, &view(&g), &s.nodes[0], &params, None).unwrap();
    let route = est.route;
    assert_eq!(route.paths.len(), 1);
    let p = &route.paths[0];
    assert_eq!(p.hops.len(), 2);
    assert_eq!(p.hops[1].pubkey, payee);
    assert_eq!(p.hops[1].fee_msat, 10_000_000);
    assert_eq!(p.hops[1].cltv_expiry_delta, 144);
    assert_eq!(p.hops[0].pubkey, s.nodes[1]);
    assert_eq!(p.hops[0].fee_msat, 100);
    assert_eq!(p.hops[0].cltv_expiry_delta, 40);
    assert_eq!(route.get_total_amount(), 10_000_000);
    assert_eq!(route.route_params.as_ref(), Some(&params));
    assert!(est.probability > 0.9);
}

#[test]
fn scorer_learns_and_decays() {
    let mut sc = LiquidityScorer::new(ScorerParams::default());
    let hops = [
        ScoredHop { scid: 1, one_to_two: true, amount_msat: 5_000_000 },
        ScoredHop { scid: 2, one_to_two: false, amount_msat: 5_000_000 },
    ];
    sc.payment_path_failed(&hops, 1, 1000);
    assert_eq!(sc.bounds(1, true).map(|b| b.min_msat), Some(5_000_000));
    assert_eq!(sc.bounds(2, false).map(|b| b.max_msat), Some(4_999_999));
    let back = LiquidityScorer::from_bytes(&sc.to_bytes()).unwrap();
    assert_eq!(back.bounds(2, false), sc.bounds(2, false));
    assert_eq!(back.known(), 2);
    sc.payment_path_successful(&hops[..1], 1000);
    assert_eq!(sc.bounds(1, true).map(|b| b.min_msat), Some(0));

    // The view on a graph: a failed channel gets expensive, then recovers with time.
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let cheap = s.channels[1].scid;
    let one_to_two = id(&s, 1) < id(&s, 3);
    let mut sc = LiquidityScorer::new(ScorerParams::default());
    sc.payment_path_failed(&[ScoredHop { scid: cheap, one_to_two, amount_msat: 10_000_000 }], 0, 1000);
    let q = Query::new(id(&s, 0), id(&s, 3), 10_000_000);
    let r = find_route(&g, &sc.view(&g, 1000), &q).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![2, 3]], "avoids the channel that just failed");
    let r = find_route(&g, &sc.view(&g, 1000 + 30 * 24 * 3600), &q).unwrap();
    assert_eq!(scids(&s, &r), vec![vec![0, 1]], "forgets after many half-lives");
}

#[test]
fn batch_matches_single_queries() {
    let s = synth::generate(GenParams { nodes: 300, channels: 900, seed: 3 });
    let (_, g) = load(&s);
    let v = view(&g);
    let mut rng = Rng::new(5);
    let qs: Vec<Query> = (0..64)
        .map(|_| {
            let a = rng.below(300) as u32;
            let b = rng.below(300) as u32;
            Query::new(id(&s, a), id(&s, b), 1_000 * (1 + rng.below(1_000_000)))
        })
        .collect();
    let batch = find_routes_batch(&g, &v, &qs);
    for (q, b) in qs.iter().zip(batch) {
        assert_eq!(find_route(&g, &v, q).ok(), b.ok());
    }
}

#[test]
fn never_panics_on_odd_queries() {
    let s = synth::generate(GenParams { nodes: 200, channels: 500, seed: 9 });
    let (_, g) = load(&s);
    let v = view(&g);
    let mut rng = Rng::new(11);
    let (_, strangers) = synth::node_keys(5, 1234);
    for i in 0..600 {
        let pick = |rng: &mut Rng| -> NodeId {
            if rng.below(10) == 0 {
                NodeId::from_pubkey(&strangers[rng.below(5) as usize])
            } else {
                id(&s, rng.below(200) as u32)
            }
        };
        let mut q = Query::new(pick(&mut rng), pick(&mut rng), [0, 1, 1000, u64::MAX, 1 << 40][i % 5].wrapping_add(rng.below(1 << 30)));
        q.final_cltv_delta = rng.below(2000) as u32;
        q.max_total_cltv = rng.below(3000) as u32;
        q.max_path_len = rng.below(30) as u8;
        q.max_path_count = rng.below(12) as u8;
        q.allow_mpp = rng.below(2) == 0;
        q.max_fee_msat = if rng.below(2) == 0 { Some(rng.below(100_000)) } else { None };
        if rng.below(3) == 0 {
            q.hints = vec![vec![HintHop {
                src: pick(&mut rng),
                scid: rng.next_u64(),
                fee_base_msat: u32::MAX,
                fee_ppm: u32::MAX,
                cltv_delta: u16::MAX,
                htlc_min_msat: Some(rng.next_u64()),
                htlc_max_msat: Some(rng.next_u64()),
            }]];
        }
        if rng.below(3) == 0 {
            q.first_hops = Some(
                (0..rng.below(4))
                    .map(|_| FirstHop {
                        counterparty: pick(&mut rng),
                        scid: rng.next_u64(),
                        outbound_msat: rng.next_u64() >> rng.below(64),
                        htlc_min_msat: rng.below(1 << 20),
                        announced: rng.below(2) == 0,
                        features: lightning::types::features::ChannelFeatures::empty(),
                    })
                    .collect(),
            );
        }
        if rng.below(4) == 0 {
            q.excluded_scids = s.channels.iter().take(rng.below(50) as usize).map(|c| c.scid).collect();
            q.in_flight = s.channels.iter().take(20).map(|c| (c.scid, rng.below(2) == 0, rng.next_u64() >> 20)).collect();
        }
        if let Ok(r) = find_route(&g, &v, &q) {
            let params = RouteParameters::from_payment_params_and_value(
                PaymentParameters::from_node_id(q.payee.as_pubkey().unwrap(), 144),
                q.amount_msat,
            );
            let _ = to_ldk_route(&g, &r, &params);
            assert_eq!(r.paths.iter().map(|p| p.amount_msat).sum::<u64>(), q.amount_msat);
        }
    }
}

/// Total fee over queries both routers answer: ours must stay within 15% of LDK's.
pub const FEE_CROSS_CHECK_TOLERANCE: f64 = 0.15;

#[test]
fn fees_close_to_ldk_find_route() {
    let mut ours_total = 0u64;
    let mut ldk_total = 0u64;
    let mut both = 0;
    let mut only_ldk = 0;
    for seed in 0..4u64 {
        let s = synth::generate(GenParams { nodes: 250, channels: 800, seed });
        let (ng, g) = load(&s);
        let v = view(&g);
        let ng = Arc::new(ng);
        let scorer = ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), ng.clone(), Arc::new(NoLog));
        let mut rng = Rng::new(seed + 100);
        for _ in 0..40 {
            let a = rng.below(250) as usize;
            let b = rng.below(250) as usize;
            if a == b {
                continue;
            }
            let amt = [10_000_000, 100_000_000, 1_000_000_000][rng.below(3) as usize];
            let pp = PaymentParameters::from_node_id(s.nodes[b], 144)
                .with_bolt11_features(Bolt11InvoiceFeatures::for_keysend(true))
                .unwrap();
            let params = RouteParameters::from_payment_params_and_value(pp, amt);
            let ldk = lightning::routing::router::find_route(
                &s.nodes[a],
                &params,
                &ng,
                None,
                Arc::new(NoLog),
                &scorer,
                &ProbabilisticScoringFeeParameters::default(),
                &[7u8; 32],
            );
            let ours = route_on(&g, &v, &s.nodes[a], &params, None);
            match (ldk, ours) {
                (Ok(l), Ok(o)) => {
                    both += 1;
                    ldk_total += l.get_total_fees();
                    ours_total += o.route.get_total_fees();
                    assert_eq!(o.route.get_total_amount(), amt);
                }
                (Ok(_), Err(_)) => only_ldk += 1,
                _ => {}
            }
        }
    }
    let ratio = ours_total as f64 / ldk_total.max(1) as f64;
    eprintln!("fee cross-check: {both} routes, ours/LDK total fee = {ratio:.3}, LDK-only routes: {only_ldk}");
    assert!(both > 50);
    assert!(ratio <= 1.0 + FEE_CROSS_CHECK_TOLERANCE, "ours/LDK fee ratio {ratio}");
    assert!(only_ldk * 20 <= both, "we fail too often where LDK finds a route: {only_ldk}");
}


type TestRouter = super::LanesRouter<Arc<NoLog>, NoFallback>;

fn lanes_router(s: &GraphSpec) -> (Arc<NetworkGraph<Arc<NoLog>>>, TestRouter) {
    let ng = Arc::new(build_ldk_graph(s, Arc::new(NoLog)));
    let r = super::LanesRouter::new(ng.clone(), s.nodes[0], LiquidityScorer::new(ScorerParams::default()), NoFallback);
    (ng, r)
}

fn first_scids(r: &lightning::routing::router::Route) -> Vec<u64> {
    r.paths[0].hops.iter().map(|h| h.short_channel_id).collect()
}

#[test]
fn router_trait_learns_from_failures_and_sees_in_flight_htlcs() {
    use lightning::routing::router::{InFlightHtlcs, Router};
    let s = diamond(990_000, 40);
    let (_, router) = lanes_router(&s);
    let params = RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(s.nodes[3], 144), 10_000_000);
    let cheap = vec![s.channels[0].scid, s.channels[1].scid];
    let dear = vec![s.channels[2].scid, s.channels[3].scid];
    let r = router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap();
    assert_eq!(first_scids(&r), cheap);

    // 995k sat of HTLCs in flight over 1 -> 3 leave no room for 10k sat more.
    let mut inflight = InFlightHtlcs::new();
    inflight.add_inflight_htlc(&id(&s, 1), &id(&s, 3), s.channels[1].scid, 995_000_000);
    let r = router.find_route(&s.nodes[0], &params, None, inflight).unwrap();
    assert_eq!(first_scids(&r), dear);

    // A failure at 1 -> 3 is learned: the next route avoids it.
    let failed = router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap();
    router.payment_path_failed(&failed.paths[0], s.channels[1].scid);
    let r = router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap();
    assert_eq!(first_scids(&r), dear);
    let back = LiquidityScorer::from_bytes(&router.scorer_bytes()).unwrap();
    assert_eq!(back.known(), 2);
}

/// What gossip would bring: the channels of `s` that LDK's graph `ng` lacks, with both directions'
/// updates, added to it.
fn gossip_in(ng: &NetworkGraph<Arc<NoLog>>, s: &GraphSpec) {
    gossip_directions(ng, s, &[0, 1]);
}

/// [`gossip_in`] with only the updates of the directions in `dirs` (0: node_one to node_two) that
/// `ng` does not have yet.
fn gossip_directions(ng: &NetworkGraph<Arc<NoLog>>, s: &GraphSpec, dirs: &[u8]) {
    let later = build_ldk_graph(s, Arc::new(NoLog));
    for scid in later.read_only().channels().unordered_keys() {
        let c = later.read_only().channel(*scid).cloned().unwrap();
        if ng.read_only().channel(*scid).is_none() {
            ng.add_channel_from_partial_announcement(*scid, c.capacity_sats, 0, c.features.clone(), c.node_one, c.node_two)
                .unwrap();
        }
        let have = ng.read_only().channel(*scid).cloned().unwrap();
        for (dir, u, had) in [(0u8, c.one_to_two.as_ref(), have.one_to_two.is_some()), (1u8, c.two_to_one.as_ref(), have.two_to_one.is_some())] {
            if had || !dirs.contains(&dir) {
                continue;
            }
            let u = u.unwrap();
            ng.update_channel_unsigned(&lightning::ln::msgs::UnsignedChannelUpdate {
                chain_hash: bitcoin::constants::ChainHash::using_genesis_block(bitcoin::Network::Bitcoin),
                short_channel_id: *scid,
                timestamp: u.last_update,
                message_flags: 1,
                channel_flags: dir,
                cltv_expiry_delta: u.cltv_expiry_delta,
                htlc_minimum_msat: u.htlc_minimum_msat,
                htlc_maximum_msat: u.htlc_maximum_msat,
                fee_base_msat: u.fees.base_msat,
                fee_proportional_millionths: u.fees.proportional_millionths,
                excess_data: Vec::new(),
            })
            .unwrap();
        }
    }
}

#[test]
fn router_trait_refreshes_graph_and_delegates_blinded() {
    use lightning::routing::router::{InFlightHtlcs, Router};
    // Only 0 -> 1 exists at first; then 1 -> 2 is announced.
    let s = spec(3, &[(0, 1, 1_000_000, pol(0, 1, 40, 990_000)), (1, 2, 1_000_000, pol(0, 1, 40, 990_000))]);
    let first = GraphSpec { channels: s.channels[..1].to_vec(), ..s.clone() };
    let (ng, router) = lanes_router(&first);
    let params = RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(s.nodes[2], 144), 1_000_000);
    assert!(router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).is_err());
    gossip_in(&ng, &s);
    router.refresh_graph();
    let r = router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap();
    assert_eq!(r.paths[0].hops.len(), 2);

    let mut blinded = params.clone();
    blinded.payment_params.payee =
        lightning::routing::router::Payee::Blinded { route_hints: Vec::new(), features: None };
    assert_eq!(router.find_route(&s.nodes[0], &blinded, None, InFlightHtlcs::new()), Err("fallback"));
}

/// Every route we return, checked hop by hop against LDK's own graph (not our view of it) and
/// against the checks LDK's ChannelManager applies before sending.
#[test]
fn routes_satisfy_ldk_invariants() {
    let s = synth::generate(GenParams { nodes: 400, channels: 1400, seed: 21 });
    let (ng, g) = load(&s);
    let ro = ng.read_only();
    let mut sc = LiquidityScorer::new(ScorerParams::default());
    let mut rng = Rng::new(77);
    let mut checked = 0;
    let mut multi = 0;
    for round in 0..300 {
        let a = rng.below(400) as usize;
        let b = rng.below(400) as usize;
        if a == b {
            continue;
        }
        let amt = [5_000_000, 50_000_000, 500_000_000, 2_000_000_000][round % 4];
        let final_cltv = 40 + rng.below(100) as u32;
        let pp = PaymentParameters::from_node_id(s.nodes[b], final_cltv)
            .with_bolt11_features(Bolt11InvoiceFeatures::for_keysend(round % 2 == 0))
            .unwrap()
            .with_max_total_cltv_expiry_delta(400 + rng.below(1000) as u32);
        let params = RouteParameters::from_payment_params_and_value(pp.clone(), amt);
        let Ok(est) = route_on(&g, &sc.view(&g, 1000), &s.nodes[a], &params, None) else { continue };
        let route = est.route;
        checked += 1;
        assert_eq!(route.get_total_amount(), amt);
        assert!(route.get_total_fees() <= params.max_total_routing_fee_msat.unwrap());
        assert!(route.paths.len() <= pp.max_path_count as usize);
        if route.paths.len() > 1 {
            assert!(round % 2 == 0, "MPP only when the payee supports it");
            multi += 1;
        }
        for path in &route.paths {
            assert!(!path.hops.is_empty() && path.hops.len() <= 19);
            let last = path.hops.last().unwrap();
            assert_eq!(last.pubkey, s.nodes[b]);
            assert_eq!(last.cltv_expiry_delta, final_cltv);
            let total_cltv: u32 = path.hops.iter().map(|h| h.cltv_expiry_delta).sum();
            assert!(total_cltv <= pp.max_total_cltv_expiry_delta);
            // Amount carried over hop i: what its node receives.
            let mut carried = vec![0u64; path.hops.len()];
            let mut acc = 0;
            for (i, h) in path.hops.iter().enumerate().rev() {
                acc += h.fee_msat;
                carried[i] = acc;
            }
            let mut prev = s.nodes[a];
            for (i, h) in path.hops.iter().enumerate() {
                assert_ne!(h.pubkey, s.nodes[a], "path goes through the payer");
                assert!(path.hops[i + 1..].iter().all(|o| o.short_channel_id != h.short_channel_id));
                let chan = ro.channel(h.short_channel_id).expect("public channel");
                let from = NodeId::from_pubkey(&prev);
                let to = NodeId::from_pubkey(&h.pubkey);
                let upd = if chan.node_one == from && chan.node_two == to {
                    chan.one_to_two.as_ref()
                } else if chan.node_two == from && chan.node_one == to {
                    chan.two_to_one.as_ref()
                } else {
                    panic!("channel does not join the hop's nodes")
                }
                .expect("direction has an update");
                assert!(upd.enabled);
                assert!(carried[i] >= upd.htlc_minimum_msat && carried[i] <= upd.htlc_maximum_msat);
                assert!(carried[i] <= chan.capacity_sats.unwrap() * 1000);
                if i > 0 {
                    // The previous hop's node charges for forwarding over this channel.
                    let want = upd.fees.base_msat as u64 + carried[i] * upd.fees.proportional_millionths as u64 / 1_000_000;
                    assert_eq!(path.hops[i - 1].fee_msat, want);
                    assert_eq!(path.hops[i - 1].cltv_expiry_delta, upd.cltv_expiry_delta as u32);
                }
                prev = h.pubkey;
            }
        }
        // Feed an outcome back so later queries run with learned bounds.
        let p = &route.paths[0];
        let hops: Vec<ScoredHop> = p
            .hops
            .iter()
            .map(|h| ScoredHop { scid: h.short_channel_id, one_to_two: rng.below(2) == 0, amount_msat: amt })
            .collect();
        sc.payment_path_failed(&hops, rng.below(hops.len() as u64 + 1) as usize, 1000);
    }
    assert!(checked > 150, "only {checked} routes found");
    assert!(multi > 5, "only {multi} multi-path routes");
}

fn our_channel(counterparty: PublicKey, scid: u64, outbound_msat: u64) -> lightning::ln::channel_state::ChannelDetails {
    use lightning::ln::channel_state::{ChannelCounterparty, ChannelDetails};
    ChannelDetails {
        channel_id: lightning::ln::types::ChannelId::from_bytes([scid as u8; 32]),
        counterparty: ChannelCounterparty {
            node_id: counterparty,
            features: lightning::types::features::InitFeatures::empty(),
            unspendable_punishment_reserve: 0,
            forwarding_info: None,
            outbound_htlc_minimum_msat: None,
            outbound_htlc_maximum_msat: None,
        },
        funding_txo: None,
        channel_type: None,
        short_channel_id: Some(scid),
        outbound_scid_alias: None,
        inbound_scid_alias: None,
        channel_value_satoshis: outbound_msat / 1000 * 2,
        unspendable_punishment_reserve: None,
        user_channel_id: 0,
        outbound_capacity_msat: outbound_msat,
        next_outbound_htlc_limit_msat: outbound_msat,
        next_outbound_htlc_minimum_msat: 1,
        inbound_capacity_msat: 0,
        confirmations_required: None,
        confirmations: None,
        force_close_spend_delay: None,
        is_outbound: true,
        is_channel_ready: true,
        channel_shutdown_state: None,
        is_usable: true,
        is_announced: false,
        inbound_htlc_minimum_msat: None,
        inbound_htlc_maximum_msat: None,
        config: None,
        pending_inbound_htlcs: Vec::new(),
        pending_outbound_htlcs: Vec::new(),
        funding_redeem_script: None,
        feerate_sat_per_1000_weight: None,
    }
}

/// A private payer (only first hops) paying a private payee (only a route hint), through the
/// Router trait: the LDK types are translated both ways.
#[test]
fn router_trait_private_payer_to_private_payee() {
    use lightning::routing::router::{InFlightHtlcs, Router};
    let s = diamond(990_000, 40);
    let (_, router) = lanes_router(&s);
    let (_, extra) = synth::node_keys(2, 4242);
    let (us, payee) = (extra[0], extra[1]);
    let hint = RouteHint(vec![RouteHintHop {
        src_node_id: s.nodes[3],
        short_channel_id: 77,
        fees: RoutingFees { base_msat: 1000, proportional_millionths: 100 },
        cltv_expiry_delta: 40,
        htlc_minimum_msat: None,
        htlc_maximum_msat: None,
    }]);
    let pp = PaymentParameters::from_node_id(payee, 144).with_route_hints(vec![hint]).unwrap();
    let params = RouteParameters::from_payment_params_and_value(pp, 10_000_000);
    let unusable = {
        let mut c = our_channel(s.nodes[2], 55, 500_000_000);
        c.is_usable = false;
        c
    };
    let ours = our_channel(s.nodes[1], 66, 500_000_000);
    let first_hops = [&unusable, &ours];
    let r = router.find_route(&us, &params, Some(&first_hops[..]), InFlightHtlcs::new()).unwrap();
    assert_eq!(router.payment_route_counts(), super::lanes_router::PaymentRouteCounts { found: 1, fell_back: 0 });
    assert_eq!(r.paths.len(), 1);
    let hops = &r.paths[0].hops;
    let got: Vec<_> = hops.iter().map(|h| (h.short_channel_id, h.pubkey, h.maybe_announced_channel)).collect();
    assert_eq!(
        got,
        vec![(66, s.nodes[1], false), (s.channels[1].scid, s.nodes[3], true), (77, payee, false)]
    );
    // Node 1 forwards 10k sat + node 3's fee (1000 + 1000) at 10 ppm; node 3 charges the hint's fee.
    assert_eq!(hops[0].fee_msat, 100);
    assert_eq!(hops[1].fee_msat, 2000);
    assert_eq!(hops[2].fee_msat, 10_000_000);
    assert_eq!((hops[0].cltv_expiry_delta, hops[1].cltv_expiry_delta), (40, 40));
    // The final delta gets a random shadow offset of at most 120 blocks, as with LDK's router.
    assert!((144..=144 + 120).contains(&hops[2].cltv_expiry_delta));
    // Without our channels we cannot leave: the inner router is asked (and counted).
    assert!(router.find_route(&us, &params, Some(&[&unusable][..]), InFlightHtlcs::new()).is_err());
    assert!(router.find_route(&us, &params, None, InFlightHtlcs::new()).is_err());
    assert_eq!(router.payment_route_counts(), super::lanes_router::PaymentRouteCounts { found: 1, fell_back: 2 });
}

#[test]
fn shadow_cltv_stays_within_the_limit() {
    let s = diamond(990_000, 40);
    let (_, g) = load(&s);
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(s.nodes[3], 144).with_max_total_cltv_expiry_delta(200),
        10_000_000,
    );
    let base = route_on(&g, &view(&g), &s.nodes[0], &params, None).unwrap().route;
    for random in [0u64, 7, 119, 120, 121, u64::MAX] {
        let mut r = base.clone();
        super::lanes_router::add_shadow_cltv(&mut r, 200, random);
        let total: u32 = r.paths[0].hops.iter().map(|h| h.cltv_expiry_delta).sum();
        assert!(total <= 200 && r.paths[0].hops[1].cltv_expiry_delta >= 144);
    }
    let mut r = base.clone();
    super::lanes_router::add_shadow_cltv(&mut r, 200, 10);
    assert_eq!(r.paths[0].hops[1].cltv_expiry_delta, 154);
}

/// The batch answers in order, each query on its own: one that cannot be routed does not fail the
/// others, and queries from our node leave through our channels (first hops) only.
#[test]
fn batch_uses_our_first_hops_and_answers_each_query() {
    let s = diamond(990_000, 40);
    let (_, router) = lanes_router(&s);
    let us = s.nodes[0];
    let to3 = |amt| RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(s.nodes[3], 144), amt);
    // Our channel to node 2 has 50k sat outbound; the one to node 1 is not usable now.
    let via2 = our_channel(s.nodes[2], s.channels[2].scid, 50_000_000);
    let first_hops = [&via2];
    let queries = vec![(us, to3(10_000_000)), (us, to3(60_000_000)), (us, to3(20_000_000)), (s.nodes[1], to3(1_000_000))];
    let answers = router.find_routes_batch(&queries, Some(&first_hops[..]), None);
    assert_eq!(answers.len(), 4);
    let dear = vec![s.channels[2].scid, s.channels[3].scid];
    assert_eq!(first_scids(&answers[0].as_ref().unwrap().route), dear);
    assert!(answers[1].is_err(), "more than our channel can send");
    assert_eq!(first_scids(&answers[2].as_ref().unwrap().route), dear);
    assert_eq!(answers[2].as_ref().unwrap().route.get_total_amount(), 20_000_000);
    // Another payer's query ignores our channels.
    assert_eq!(first_scids(&answers[3].as_ref().unwrap().route), vec![s.channels[1].scid]);
    // Without first hops our public channels are used, the cheap way.
    let free = router.find_routes_batch(&queries[..1], None, None);
    assert_eq!(first_scids(&free[0].as_ref().unwrap().route), vec![s.channels[0].scid, s.channels[1].scid]);
    for (a, q) in answers.iter().zip(&queries) {
        if let Ok(a) = a {
            assert!(a.probability > 0.0 && a.probability <= 1.0);
            assert_eq!(a.route.route_params.as_ref(), Some(&q.1));
        }
    }
}

/// lanesd's keysend alice -> bob -> carol, as LDK's ChannelManager asks for it (keysend parameters:
/// final CLTV delta 40, no MPP; the onion-size path limit LDK sets for a keysend; alice's channel to
/// bob as the only first hop), seconds after bob -- carol was gossiped. The router is built at
/// start-up, before that gossip. In regtest our router answered "no route" here and LDK's routed it:
/// invoices still went through ours (their route hint names bob -- carol), keysend has no hint.
#[test]
fn keysend_sees_channels_gossiped_after_start() {
    use lightning::ln::channelmanager::RecipientOnionFields;
    use lightning::routing::router::{InFlightHtlcs, Router};
    // alice (0) - bob (1) - carol (2), LDK's default forwarding policy (1000 msat base, cltv 72).
    let s = spec(3, &[(0, 1, 1_000_000, pol(1000, 0, 72, 990_000)), (1, 2, 1_000_000, pol(1000, 0, 72, 990_000))]);
    let at_start = GraphSpec { channels: s.channels[..1].to_vec(), ..s.clone() };
    let (ng, router) = lanes_router(&at_start);
    gossip_in(&ng, &s);

    let mut params =
        RouteParameters::from_payment_params_and_value(PaymentParameters::for_keysend(s.nodes[2], 40, false), 5_000_000);
    params.set_max_path_length(&RecipientOnionFields::spontaneous_empty(), true, 150).unwrap();
    let mut alice_bob = our_channel(s.nodes[1], s.channels[0].scid, 500_000_000);
    alice_bob.is_announced = true;
    let r = router
        .find_route(&s.nodes[0], &params, Some(&[&alice_bob][..]), InFlightHtlcs::new())
        .expect("our router routes the keysend over the channel gossiped after it started");
    assert_eq!(first_scids(&r), vec![s.channels[0].scid, s.channels[1].scid]);
    assert_eq!(r.paths[0].hops[0].fee_msat, 1000);
    assert_eq!(r.get_total_amount(), 5_000_000);
    // QueryRoutes' way (a batch) sees it too.
    let batch = router.find_routes_batch(&[(s.nodes[0], params.clone())], Some(&[&alice_bob][..]), None);
    assert!(batch[0].is_ok(), "{:?}", batch[0]);

    // Same, when bob -- carol was known at start-up with one direction's update only (no route
    // through it yet) and the other direction's update arrives later: no channel or node is new.
    let (ng, router) = lanes_router(&at_start);
    gossip_directions(&ng, &s, &[if id(&s, 1) < id(&s, 2) { 1 } else { 0 }]);
    let (chans, nodes) = (ng.read_only().channels().len(), ng.read_only().nodes().len());
    router.refresh_graph();
    assert!(router.find_route(&s.nodes[0], &params, Some(&[&alice_bob][..]), InFlightHtlcs::new()).is_err());
    gossip_in(&ng, &s);
    assert_eq!((ng.read_only().channels().len(), ng.read_only().nodes().len()), (chans, nodes));
    let r = router.find_route(&s.nodes[0], &params, Some(&[&alice_bob][..]), InFlightHtlcs::new()).expect("routed");
    assert_eq!(first_scids(&r), vec![s.channels[0].scid, s.channels[1].scid]);
}

/// A policy change gossiped after the view was built (same channels, new fee) is used by the very
/// next query that routes over that channel, long before the refresh interval; an unchanged graph
/// is never rebuilt.
#[test]
fn graph_view_follows_policy_updates() {
    use lightning::routing::router::{InFlightHtlcs, Router};
    let s = spec(3, &[(0, 1, 1_000_000, pol(1000, 0, 72, 990_000)), (1, 2, 1_000_000, pol(1000, 0, 72, 990_000))]);
    let (ng, router) = lanes_router(&s);
    let router = router.with_refresh_interval(std::time::Duration::from_secs(3600));
    let fp = super::graph::fingerprint(&ng.read_only());
    assert_eq!(fp, super::graph::fingerprint(&build_ldk_graph(&s, Arc::new(NoLog)).read_only()), "same graph, same digest");
    assert!(!router.refresh_graph_if_changed(), "nothing changed");
    let params = RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(s.nodes[2], 144), 1_000_000);
    let fee = |r: &lightning::routing::router::Route| r.paths[0].hops[0].fee_msat;
    assert_eq!(fee(&router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap()), 1000);

    // Node 1 raises its fee on 1 -> 2.
    let scid = s.channels[1].scid;
    let c = ng.read_only().channel(scid).cloned().unwrap();
    let from_1 = if c.node_one == id(&s, 1) { c.one_to_two.clone().map(|u| (0u8, u)) } else { c.two_to_one.clone().map(|u| (1u8, u)) };
    let (dir, u) = from_1.unwrap();
    ng.update_channel_unsigned(&lightning::ln::msgs::UnsignedChannelUpdate {
        chain_hash: bitcoin::constants::ChainHash::using_genesis_block(bitcoin::Network::Bitcoin),
        short_channel_id: scid,
        timestamp: u.last_update + 1,
        message_flags: 1,
        channel_flags: dir,
        cltv_expiry_delta: u.cltv_expiry_delta,
        htlc_minimum_msat: u.htlc_minimum_msat,
        htlc_maximum_msat: u.htlc_maximum_msat,
        fee_base_msat: 5000,
        fee_proportional_millionths: 1000,
        excess_data: Vec::new(),
    })
    .unwrap();
    assert_ne!(super::graph::fingerprint(&ng.read_only()), fp);
    // 5000 msat base + 1000 ppm of 1,000,000 msat.
    assert_eq!(fee(&router.find_route(&s.nodes[0], &params, None, InFlightHtlcs::new()).unwrap()), 6000);
    assert!(!router.refresh_graph_if_changed(), "the view already has it");
}
