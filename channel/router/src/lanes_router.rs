//! [`LanesRouter`]: our path search behind LDK's [`Router`] trait.
//!
//! It keeps a [`RoutingGraph`] built from LDK's `NetworkGraph` and a [`LiquidityScorer`] fed by
//! [`LanesRouter::payment_path_failed`] / [`LanesRouter::payment_path_successful`]. Queries go through
//! [`pathfind`](super::pathfind) and come back as LDK [`Route`]s built the way LDK's own router builds
//! them: the last hop carries the amount and the final CLTV delta, every other hop the fee and CLTV
//! delta of the next channel, and `route_params` echoes the request. Routes handed to LDK through the
//! trait get a random shadow CLTV offset on the final hop ([`add_shadow_cltv`]), as LDK's own do.
//!
//! The graph view follows gossip without rebuilding at every query: it is rebuilt when LDK's graph
//! gained or lost channels or nodes (compared at every query, free), when a route it gave uses a
//! channel whose policy LDK's graph has changed since (checked on every answer, a lookup per hop),
//! when it found no route and LDK's graph changed ([`graph::fingerprint`], a pass over the graph),
//! and otherwise when the fingerprint changed, compared once per refresh interval (10 s). (What LDK
//! itself takes out of its graph after a payment failure is a channel or a node: counted.) The
//! affected queries are asked again on the new view. So a route is never computed from a policy LDK
//! no longer has, and a channel gossiped a moment ago is used at once.
//!
//! Payments to blinded paths (BOLT12) and the creation of blinded receive paths are delegated to an
//! inner router (LDK's `DefaultRouter` in lanesd): this router only finds clear paths.
//! In-flight HTLCs (LDK's `InFlightHtlcs`) are taken off the liquidity of the channels they use.
//!
//! Owns: turning LDK's route requests into queries and results into LDK routes, and when the graph snapshot is
//! rebuilt. Must never: search paths itself (pathfind does) or write to the network graph.
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use lanes_common::now_secs;
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::ln::channel_state::ChannelDetails;
use lightning::routing::gossip::{NetworkGraph, NodeId, ReadOnlyNetworkGraph};
use lightning::routing::router::{InFlightHtlcs, Path, Payee, Route, RouteHop, RouteParameters, Router};
use lightning::types::features::NodeFeatures;
use lightning::util::logger::Logger;
use lightning::util::ser::{Readable, Writeable};
use rayon::prelude::*;

use super::graph::{self, RoutingGraph};
use super::pathfind::{self, FirstHop, FoundRoute, HintHop, Query};
use super::scorer::{LiquidityScorer, ScoreView, ScoredHop};

/// How often LDK's whole graph is compared with the view (a pass over every channel: about 10 ms on
/// a graph of the public network's size); the view is rebuilt only when it changed.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);
/// How long a scorer view (decayed bounds) may serve before it is recomputed.
const VIEW_MAX_AGE: Duration = Duration::from_secs(30);

struct Views {
    graph: Arc<RoutingGraph>,
    /// [`graph::fingerprint`] of LDK's graph `graph` was built from, and when it was last compared.
    fingerprint: u64,
    /// How many channels and nodes LDK's graph had then (compared at every query: it costs nothing).
    counts: (usize, usize),
    graph_checked: Instant,
    score: Arc<ScoreView>,
    score_built: Instant,
    score_version: u64,
}

pub struct LanesRouter<L: Deref, R: Router>
where
    L::Target: Logger,
{
    network_graph: Arc<NetworkGraph<L>>,
    our_node_id: PublicKey,
    scorer: RwLock<(LiquidityScorer, u64)>,
    views: RwLock<Views>,
    refresh: Duration,
    fallback: R,
    /// Routes asked through the `Router` trait (payments) that we found, and that we did not find
    /// and passed to the inner router (see [`LanesRouter::payment_route_counts`]).
    found: AtomicU64,
    fell_back: AtomicU64,
}

/// Who routed the payments asked through the `Router` trait, since the router was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaymentRouteCounts {
    /// Routes lanes' router found.
    pub found: u64,
    /// Times it found none and the inner router (LDK's) was asked instead. Blinded payees, which
    /// only the inner router serves, are not counted.
    pub fell_back: u64,
}

/// A route with what the router thinks of it, for QueryRoutes.
#[derive(Clone, Debug)]
pub struct RouteEstimate {
    pub route: Route,
    /// Estimated probability that every path of the route has the liquidity.
    pub probability: f64,
    /// The same for each path, in the order of `route.paths` (their product is `probability`).
    pub path_probabilities: Vec<f64>,
}

impl<L: Deref, R: Router> LanesRouter<L, R>
where
    L::Target: Logger,
{
    pub fn new(network_graph: Arc<NetworkGraph<L>>, our_node_id: PublicKey, scorer: LiquidityScorer, fallback: R) -> Self {
        let (graph, fingerprint, counts) = {
            let ro = network_graph.read_only();
            (Arc::new(RoutingGraph::from_ldk(&ro)), graph::fingerprint(&ro), counts(&ro))
        };
        let score = Arc::new(scorer.view(&graph, now_secs()));
        let now = Instant::now();
        LanesRouter {
            network_graph,
            our_node_id,
            scorer: RwLock::new((scorer, 0)),
            views: RwLock::new(Views {
                graph,
                fingerprint,
                counts,
                graph_checked: now,
                score,
                score_built: now,
                score_version: 0,
            }),
            refresh: DEFAULT_REFRESH,
            fallback,
            found: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        }
    }

    /// How often LDK's graph is compared with the view (default [`DEFAULT_REFRESH`]).
    pub fn with_refresh_interval(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Rebuilds the graph view from LDK's graph now.
    pub fn refresh_graph(&self) {
        let (graph, fingerprint, counts) = {
            let ro = self.network_graph.read_only();
            (Arc::new(RoutingGraph::from_ldk(&ro)), graph::fingerprint(&ro), counts(&ro))
        };
        self.install(graph, fingerprint, counts);
    }

    fn install(&self, graph: Arc<RoutingGraph>, fingerprint: u64, counts: (usize, usize)) {
        let (score, version) = match self.scorer.read() {
            Ok(s) => (s.0.view(&graph, now_secs()), s.1),
            Err(_) => (ScoreView::empty(&graph, Default::default()), 0),
        };
        if let Ok(mut v) = self.views.write() {
            let now = Instant::now();
            *v = Views {
                graph,
                fingerprint,
                counts,
                graph_checked: now,
                score: Arc::new(score),
                score_built: now,
                score_version: version,
            };
        }
    }

    /// Compares LDK's graph with the view's and rebuilds the view if it changed. True if rebuilt.
    pub fn refresh_graph_if_changed(&self) -> bool {
        let known = match self.views.write() {
            Ok(mut v) => {
                v.graph_checked = Instant::now();
                v.fingerprint
            }
            Err(_) => return false,
        };
        let ro = self.network_graph.read_only();
        let now = graph::fingerprint(&ro);
        if now == known {
            return false;
        }
        let graph = Arc::new(RoutingGraph::from_ldk(&ro));
        let counts = counts(&ro);
        drop(ro);
        self.install(graph, now, counts);
        true
    }

    /// The current views, refreshed first if stale: the graph when LDK's changed (compared once per
    /// refresh interval, and at once when channels or nodes came or went), the scores when the scorer
    /// learned something.
    pub fn views(&self) -> (Arc<RoutingGraph>, Arc<ScoreView>) {
        let version = self.scorer.read().map(|s| s.1).unwrap_or(0);
        let ldk_counts = counts(&self.network_graph.read_only());
        let (check_graph, score_stale) = match self.views.read() {
            Ok(v) => {
                let check_graph = v.counts != ldk_counts || v.graph_checked.elapsed() >= self.refresh;
                let score_stale = v.score_version != version || v.score_built.elapsed() > VIEW_MAX_AGE;
                if !check_graph && !score_stale {
                    return (v.graph.clone(), v.score.clone());
                }
                (check_graph, score_stale)
            }
            Err(_) => (false, false),
        };
        // A rebuilt graph comes with fresh scores.
        let rebuilt = check_graph && self.refresh_graph_if_changed();
        if score_stale && !rebuilt {
            let graph = self.views.read().map(|v| v.graph.clone()).ok();
            if let (Some(graph), Ok(s)) = (graph, self.scorer.read()) {
                let score = Arc::new(s.0.view(&graph, now_secs()));
                let version = s.1;
                drop(s);
                if let Ok(mut v) = self.views.write() {
                    v.score = score;
                    v.score_built = Instant::now();
                    v.score_version = version;
                }
            }
        }
        match self.views.read() {
            Ok(v) => (v.graph.clone(), v.score.clone()),
            Err(_) => {
                let g = Arc::new(RoutingGraph::default());
                let s = Arc::new(ScoreView::empty(&g, Default::default()));
                (g, s)
            }
        }
    }

    /// Who routed the payments LDK asked us to route so far.
    pub fn payment_route_counts(&self) -> PaymentRouteCounts {
        PaymentRouteCounts { found: self.found.load(Ordering::Relaxed), fell_back: self.fell_back.load(Ordering::Relaxed) }
    }

    /// A copy of the scorer's state (for persisting it).
    pub fn scorer_bytes(&self) -> Vec<u8> {
        self.scorer.read().map(|s| s.0.to_bytes()).unwrap_or_default()
    }

    fn scored_hops(payer: &PublicKey, path: &Path) -> Vec<ScoredHop> {
        let mut prev = NodeId::from_pubkey(payer);
        let mut out = Vec::with_capacity(path.hops.len());
        // Amount over hop i = what hop i's node receives = final value + fees of later hops.
        let mut amounts = vec![0u64; path.hops.len()];
        let mut acc = 0u64;
        for (i, h) in path.hops.iter().enumerate().rev() {
            acc = acc.saturating_add(h.fee_msat);
            amounts[i] = acc;
        }
        for (h, amt) in path.hops.iter().zip(amounts) {
            let next = NodeId::from_pubkey(&h.pubkey);
            out.push(ScoredHop { scid: h.short_channel_id, one_to_two: prev < next, amount_msat: amt });
            prev = next;
        }
        out
    }

    /// A payment path of ours failed at channel `short_channel_id`.
    pub fn payment_path_failed(&self, path: &Path, short_channel_id: u64) {
        self.record_failure(&self.our_node_id.clone(), path, short_channel_id)
    }

    /// A payment path of ours succeeded.
    pub fn payment_path_successful(&self, path: &Path) {
        self.record_success(&self.our_node_id.clone(), path)
    }

    /// A path sent by `payer` failed at channel `short_channel_id` (simulations, probes of others).
    pub fn record_failure(&self, payer: &PublicKey, path: &Path, short_channel_id: u64) {
        let hops = Self::scored_hops(payer, path);
        let idx = hops.iter().position(|h| h.scid == short_channel_id).unwrap_or(hops.len());
        if let Ok(mut s) = self.scorer.write() {
            s.0.payment_path_failed(&hops, idx, now_secs());
            s.1 += 1;
        }
    }

    /// A path sent by `payer` succeeded.
    pub fn record_success(&self, payer: &PublicKey, path: &Path) {
        let hops = Self::scored_hops(payer, path);
        if let Ok(mut s) = self.scorer.write() {
            s.0.payment_path_successful(&hops, now_secs());
            s.1 += 1;
        }
    }

    /// Finds a route and its estimated success probability.
    pub fn route(
        &self, payer: &PublicKey, params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
    ) -> Result<RouteEstimate, &'static str> {
        let one = [(*payer, params.clone())];
        let mut answers = self.answer_all(&one, |graph, view, (payer, p)| route_on(graph, view, payer, p, first_hops));
        answers.pop().unwrap_or(Err(pathfind::ERR_NO_ROUTE))
    }

    /// [`Self::route`] with liquidity held by in-flight HTLCs taken off the channels they use.
    pub fn route_with_in_flight(
        &self, payer: &PublicKey, params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
        in_flight: &InFlightHtlcs,
    ) -> Result<RouteEstimate, &'static str> {
        let in_flight = in_flight_list(in_flight);
        let one = [(*payer, params.clone())];
        let mut answers = self.answer_all(&one, |graph, view, (payer, p)| {
            route_in(graph, view, payer, p, first_hops, in_flight.clone())
        });
        answers.pop().unwrap_or(Err(pathfind::ERR_NO_ROUTE))
    }

    /// Many route queries at once, on all cores.
    /// Each query is (payer, parameters); answers come back in the same order. All queries see the
    /// same graph and scorer view. `first_hops` (our channels, as LDK's `list_usable_channels` gives
    /// them) and `in_flight` (our HTLCs in flight) are this node's: they apply to the queries whose
    /// payer is this router's node, as they do in [`Router::find_route`], and to no other.
    pub fn find_routes_batch(
        &self, queries: &[(PublicKey, RouteParameters)], first_hops: Option<&[&ChannelDetails]>,
        in_flight: Option<&InFlightHtlcs>,
    ) -> Vec<Result<RouteEstimate, &'static str>> {
        let in_flight = in_flight.map(in_flight_list).unwrap_or_default();
        let us = self.our_node_id;
        self.answer_all(queries, |graph, view, (payer, p)| {
            if *payer == us {
                route_in(graph, view, payer, p, first_hops, in_flight.clone())
            } else {
                route_on(graph, view, payer, p, None)
            }
        })
    }

    /// Answers every query on the current views (in parallel when there are several), then makes sure
    /// no answer rests on a view LDK's graph has moved past: a route over a channel whose policy
    /// changed since the view was built, or no route while LDK's graph changed, is asked again once
    /// on a rebuilt view.
    fn answer_all<Q: Sync>(
        &self, queries: &[Q],
        answer: impl Fn(&RoutingGraph, &ScoreView, &Q) -> Result<RouteEstimate, &'static str> + Sync,
    ) -> Vec<Result<RouteEstimate, &'static str>> {
        let (graph, view) = self.views();
        let run = |graph: &RoutingGraph, view: &ScoreView, q: &Q| answer(graph, view, q);
        let mut answers: Vec<_> = if queries.len() == 1 {
            queries.iter().map(|q| run(&graph, &view, q)).collect()
        } else {
            queries.par_iter().map(|q| run(&graph, &view, q)).collect()
        };
        let outdated: Vec<bool> = {
            let ldk = self.network_graph.read_only();
            answers.iter().map(|a| a.as_ref().is_ok_and(|e| !route_is_current(&graph, &ldk, &e.route))).collect()
        };
        let any_outdated = outdated.iter().any(|o| *o);
        let any_failed = answers.iter().any(|a| a.is_err());
        if !any_outdated && !any_failed {
            return answers;
        }
        // A stale route means the view must go; a failure only if LDK's graph changed.
        let rebuilt = if any_outdated {
            self.refresh_graph();
            true
        } else {
            self.refresh_graph_if_changed()
        };
        if rebuilt {
            let (graph, view) = self.views();
            for ((a, q), stale) in answers.iter_mut().zip(queries).zip(outdated) {
                if stale || a.is_err() {
                    *a = run(&graph, &view, q);
                }
            }
        }
        answers
    }
}

/// How many channels and nodes LDK's graph has.
fn counts(ldk: &ReadOnlyNetworkGraph<'_>) -> (usize, usize) {
    (ldk.channels().len(), ldk.nodes().len())
}

/// Whether every public channel `route` uses after the payer's own first hop still has, in LDK's
/// graph, the policy the route was computed with in `graph`.
fn route_is_current(graph: &RoutingGraph, ldk: &ReadOnlyNetworkGraph<'_>, route: &Route) -> bool {
    route.paths.iter().all(|p| {
        p.hops.windows(2).all(|w| {
            let (from, to) = (NodeId::from_pubkey(&w[0].pubkey), NodeId::from_pubkey(&w[1].pubkey));
            graph.edge_is_current(ldk, w[1].short_channel_id, from < to)
        })
    })
}

/// Translates LDK's request into a [`Query`] (None for blinded payees).
pub fn query_from_ldk(
    graph: &RoutingGraph, payer: &PublicKey, params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
) -> Result<Option<Query>, &'static str> {
    let pp = &params.payment_params;
    let (payee, hints, features, final_cltv) = match &pp.payee {
        Payee::Blinded { .. } => return Ok(None),
        Payee::Clear { node_id, route_hints, features, final_cltv_expiry_delta } => {
            (*node_id, route_hints, features, *final_cltv_expiry_delta)
        }
    };
    if features.as_ref().is_some_and(|f| f.requires_unknown_bits()) {
        return Err("Cannot route to a payee that requires unknown features");
    }
    let payee_id = NodeId::from_pubkey(&payee);
    let allow_mpp = pp.max_path_count > 1
        && match features {
            Some(f) => f.supports_basic_mpp(),
            None => graph
                .node_index(&payee_id)
                .and_then(|i| graph.node_features(i))
                .is_some_and(|f| f.supports_basic_mpp()),
        };
    let first_hops = first_hops.map(|chans| {
        chans
            .iter()
            .filter(|c| c.is_usable)
            .filter_map(|c| {
                Some(FirstHop {
                    counterparty: NodeId::from_pubkey(&c.counterparty.node_id),
                    scid: c.get_outbound_payment_scid()?,
                    outbound_msat: c.next_outbound_htlc_limit_msat,
                    htlc_min_msat: c.next_outbound_htlc_minimum_msat,
                    announced: c.is_announced,
                    features: c.counterparty.features.to_context(),
                })
            })
            .collect()
    });
    let hints = hints
        .iter()
        .map(|h| {
            h.0.iter()
                .map(|hop| HintHop {
                    src: NodeId::from_pubkey(&hop.src_node_id),
                    scid: hop.short_channel_id,
                    fee_base_msat: hop.fees.base_msat,
                    fee_ppm: hop.fees.proportional_millionths,
                    cltv_delta: hop.cltv_expiry_delta,
                    htlc_min_msat: hop.htlc_minimum_msat,
                    htlc_max_msat: hop.htlc_maximum_msat,
                })
                .collect()
        })
        .collect();
    Ok(Some(Query {
        payer: NodeId::from_pubkey(payer),
        payee: payee_id,
        amount_msat: params.final_value_msat,
        final_cltv_delta: final_cltv,
        max_total_cltv: pp.max_total_cltv_expiry_delta,
        max_path_len: pp.max_path_length,
        max_path_count: pp.max_path_count,
        allow_mpp,
        max_fee_msat: params.max_total_routing_fee_msat,
        first_hops,
        hints,
        excluded_scids: pp.previously_failed_channels.clone(),
        in_flight: Vec::new(),
    }))
}

/// The in-flight HTLC amounts LDK tracks, as (scid, one_to_two, msat). LDK exposes them only by
/// lookup or in serialized form; the serialized map is read back with LDK's own decoder.
pub fn in_flight_list(h: &InFlightHtlcs) -> Vec<(u64, bool, u64)> {
    let bytes = h.encode();
    let mut r = &bytes[..];
    match BTreeMap::<(u64, bool), u64>::read(&mut r) {
        Ok(m) => m.into_iter().map(|((scid, d), v)| (scid, d, v)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Builds LDK's [`Route`] from a found route.
pub fn to_ldk_route(
    graph: &RoutingGraph, found: &FoundRoute, params: &RouteParameters,
) -> Result<Route, &'static str> {
    let (final_cltv, payee_features) = match &params.payment_params.payee {
        Payee::Clear { final_cltv_expiry_delta, features, .. } => {
            (*final_cltv_expiry_delta, features.as_ref().map(|f| { let nf: NodeFeatures = f.to_context(); nf }))
        }
        Payee::Blinded { .. } => return Err("Blinded payees are routed by the inner router"),
    };
    let mut paths = Vec::with_capacity(found.paths.len());
    for p in &found.paths {
        let mut hops = Vec::with_capacity(p.hops.len());
        for (i, h) in p.hops.iter().enumerate() {
            let last = i + 1 == p.hops.len();
            let pubkey = h.dst.as_pubkey().map_err(|_| "Invalid node id in graph")?;
            let node_features = match (last, &payee_features) {
                (true, Some(f)) => f.clone(),
                _ => graph
                    .node_index(&h.dst)
                    .and_then(|n| graph.node_features(n))
                    .cloned()
                    .unwrap_or_else(NodeFeatures::empty),
            };
            let (fee_msat, cltv_expiry_delta) = if last {
                (p.amount_msat, final_cltv)
            } else {
                let next = &p.hops[i + 1];
                (h.amount_msat.saturating_sub(next.amount_msat), next.edge.cltv_delta as u32)
            };
            hops.push(RouteHop {
                pubkey,
                node_features,
                short_channel_id: h.edge.scid,
                channel_features: h.features.clone(),
                fee_msat,
                cltv_expiry_delta,
                maybe_announced_channel: h.announced,
            });
        }
        if hops.is_empty() {
            return Err(pathfind::ERR_NO_ROUTE);
        }
        paths.push(Path { hops, blinded_tail: None });
    }
    if paths.is_empty() {
        return Err(pathfind::ERR_NO_ROUTE);
    }
    Ok(Route { paths, route_params: Some(params.clone()) })
}

/// Like LDK's default router, adds a random extra CLTV delta to the final hop of every path, so the
/// HTLC's expiry does not reveal how close the last hop is to the recipient. At most three median hop
/// deltas (3 x 40 blocks), never past `max_total_cltv`.
pub fn add_shadow_cltv(route: &mut Route, max_total_cltv: u32, random: u64) {
    let room = route
        .paths
        .iter()
        .map(|p| max_total_cltv.saturating_sub(p.hops.iter().map(|h| h.cltv_expiry_delta).fold(0u32, u32::saturating_add)))
        .min()
        .unwrap_or(0);
    let offset = (random % (3 * 40 + 1)) as u32;
    let offset = offset.min(room);
    for p in &mut route.paths {
        if let Some(last) = p.hops.last_mut() {
            last.cltv_expiry_delta = last.cltv_expiry_delta.saturating_add(offset);
        }
    }
}

/// Non-cryptographic randomness (std's per-process hash keys, a counter and the clock): enough to
/// blur a CLTV delta.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// One query on given views, LDK types in and out (blinded payees are refused here).
pub fn route_on(
    graph: &RoutingGraph, view: &ScoreView, payer: &PublicKey, params: &RouteParameters,
    first_hops: Option<&[&ChannelDetails]>,
) -> Result<RouteEstimate, &'static str> {
    route_in(graph, view, payer, params, first_hops, Vec::new())
}

/// [`route_on`] with in-flight HTLCs as (scid, one_to_two, msat), see [`in_flight_list`].
fn route_in(
    graph: &RoutingGraph, view: &ScoreView, payer: &PublicKey, params: &RouteParameters,
    first_hops: Option<&[&ChannelDetails]>, in_flight: Vec<(u64, bool, u64)>,
) -> Result<RouteEstimate, &'static str> {
    let mut q =
        query_from_ldk(graph, payer, params, first_hops)?.ok_or("Blinded payees are routed by the inner router")?;
    q.in_flight = in_flight;
    let found = pathfind::find_route(graph, view, &q)?;
    let route = to_ldk_route(graph, &found, params)?;
    let path_probabilities = found.paths.iter().map(|p| p.probability).collect();
    Ok(RouteEstimate { route, probability: found.probability(), path_probabilities })
}

impl<L: Deref, R: Router> Router for LanesRouter<L, R>
where
    L::Target: Logger,
{
    fn find_route(
        &self, payer: &PublicKey, route_params: &RouteParameters, first_hops: Option<&[&ChannelDetails]>,
        inflight_htlcs: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        if let Payee::Blinded { .. } = route_params.payment_params.payee {
            return self.fallback.find_route(payer, route_params, first_hops, inflight_htlcs);
        }
        match self.route_with_in_flight(payer, route_params, first_hops, &inflight_htlcs) {
            Ok(found) => {
                self.found.fetch_add(1, Ordering::Relaxed);
                let mut route = found.route;
                add_shadow_cltv(&mut route, route_params.payment_params.max_total_cltv_expiry_delta, random_u64());
                Ok(route)
            }
            // A payment must never route worse than with LDK's own router: when ours finds nothing, ask
            // it (the log line says when).
            Err(why) => {
                self.fell_back.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reason = why, amount_msat = route_params.final_value_msat, "lanes router found no route; trying LDK's");
                self.fallback.find_route(payer, route_params, first_hops, inflight_htlcs)
            }
        }
    }

    fn create_blinded_payment_paths<T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification>(
        &self, recipient: PublicKey, first_hops: Vec<ChannelDetails>, tlvs: ReceiveTlvs, amount_msats: Option<u64>,
        secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        self.fallback.create_blinded_payment_paths(recipient, first_hops, tlvs, amount_msats, secp_ctx)
    }
}
