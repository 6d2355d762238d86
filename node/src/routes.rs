//! Routes: what the node's router answers, and what it learns from payments.
//!
//! Owns: checking route queries (QueryRoutes, BatchQueryRoutes), asking lanes' router the way payments
//! ask it (leaving through our usable channels, our HTLCs in flight taken off), the hop-by-hop view of a
//! path (amounts, fees, CLTV deltas) shared by route answers and payment records; with [`Learning`],
//! feeding payment outcomes to the router's liquidity scorer and keeping that scorer across restarts.
//! Must never: send a payment, pick routes outside lanes' router (LDK's router only backs it up for
//! payments), or write the scorer on a payment's event (the event processor writes it on a timer).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use lightning::ln::channelmanager::RecipientOnionFields;
use lightning::routing::router::{Path, PaymentParameters, RouteParameters, DEFAULT_MAX_TOTAL_CLTV_EXPIRY_DELTA};
use lightning::types::payment::PaymentSecret;

use lanes_channel::router::lanes_router::RouteEstimate;
use lanes_channel::types::{ChannelManager, Router};
use lanes_store::{layout, DynStore};

use crate::error::PaymentError;
use crate::NodeError;

/// The final CLTV delta a route query assumes when none is given (what our keysend asks for).
pub const DEFAULT_QUERY_FINAL_CLTV: u32 = 40;

/// One hop of a path: the node reached, the channel into it, what that channel carries.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HopView {
    pub node_id: PublicKey,
    pub short_channel_id: u64,
    /// What the channel into this hop carries: this hop's fee (or, last, the amount delivered) and all later.
    pub amount_msat: u64,
    /// What this hop charges to forward (0 for the last hop).
    pub fee_msat: u64,
    pub cltv_expiry_delta: u32,
}

/// The hops of `path`, as payment records and route answers show them.
pub fn hops(path: &Path) -> Vec<HopView> {
    path.hops
        .iter()
        .enumerate()
        .map(|(i, h)| HopView {
            node_id: h.pubkey,
            short_channel_id: h.short_channel_id,
            // A hop's fee_msat is what the next node charges; the last hop's is the amount delivered.
            amount_msat: path.hops[i..].iter().map(|x| x.fee_msat).fold(0u64, u64::saturating_add),
            fee_msat: if i + 1 < path.hops.len() { h.fee_msat } else { 0 },
            cltv_expiry_delta: h.cltv_expiry_delta,
        })
        .collect()
}

/// One path of a found route.
#[derive(Clone, Debug)]
pub struct RoutePathView {
    pub hops: Vec<HopView>,
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub total_cltv_delta: u32,
    /// The block height at which the first hop's HTLC would time out, sent now.
    pub total_time_lock: u32,
    pub success_probability: f64,
}

/// A found route (every path of a multi-part payment).
#[derive(Clone, Debug)]
pub struct RouteView {
    pub paths: Vec<RoutePathView>,
    pub success_probability: f64,
}

impl RouteView {
    /// `est` as sent from height `height`.
    fn new(est: &RouteEstimate, height: u32) -> Self {
        let paths = est
            .route
            .paths
            .iter()
            .zip(est.path_probabilities.iter().copied().chain(std::iter::repeat(0.0)))
            .map(|(p, success_probability)| {
                let total_cltv_delta = p.hops.iter().map(|h| h.cltv_expiry_delta).fold(0u32, u32::saturating_add);
                RoutePathView {
                    hops: hops(p),
                    amount_msat: p.final_value_msat(),
                    fee_msat: p.fee_msat(),
                    total_cltv_delta,
                    total_time_lock: height.saturating_add(1).saturating_add(total_cltv_delta),
                    success_probability,
                }
            })
            .collect();
        RouteView { paths, success_probability: est.probability }
    }
}

/// A route query, checked: the route a payment of `amount_msat` to `dest` would take.
#[derive(Clone, Debug)]
pub struct RouteQuery {
    pub dest: PublicKey,
    pub amount_msat: u64,
    pub final_cltv_delta: u32,
    pub fee_limit_msat: Option<u64>,
    pub max_parts: u8,
}

impl RouteQuery {
    /// LDK's parameters for this query, as for paying an invoice of the destination's: LDK's default
    /// limits, and the path length that fits the onion of such a payment at `height`.
    fn params(&self, height: u32) -> RouteParameters {
        let pp = PaymentParameters::from_node_id(self.dest, self.final_cltv_delta).with_max_path_count(self.max_parts);
        let mut params = RouteParameters::from_payment_params_and_value(pp, self.amount_msat);
        if self.fee_limit_msat.is_some() {
            params.max_total_routing_fee_msat = self.fee_limit_msat;
        }
        // Cannot fail for a payee without blinded paths and an onion without custom data.
        let _ = params.set_max_path_length(&RecipientOnionFields::secret_only(PaymentSecret([0; 32])), false, height);
        params
    }
}

/// How many payment routes lanes' router found, and how many fell back to LDK's.
pub use lanes_channel::router::lanes_router::PaymentRouteCounts;

/// The routes service.
pub struct Routes {
    router: Arc<Router>,
    channel_manager: Arc<ChannelManager>,
    node_id: PublicKey,
}

impl Routes {
    pub fn new(router: Arc<Router>, channel_manager: Arc<ChannelManager>, node_id: PublicKey) -> Self {
        Self { router, channel_manager, node_id }
    }

    /// Checks a query: one non-zero amount (msat or sat) within 21 million bitcoin, a final CLTV delta
    /// below LDK's limit for a whole path, a destination other than us. Zero means default for the other
    /// fields.
    pub fn query(&self, dest: PublicKey, amount_msat: u64, amount_sat: u64, final_cltv_delta: u32, fee_limit_msat: u64, max_parts: u32) -> Result<RouteQuery, NodeError> {
        let amount_msat = match (amount_msat, amount_sat) {
            (0, 0) => return Err(NodeError::Invalid("amount must be greater than 0 (amount_msat or amount_sat)".into())),
            (m, 0) => m,
            (0, s) => s.checked_mul(1000).ok_or_else(|| NodeError::Invalid(format!("{s} sat is more than 21 million bitcoin")))?,
            (_, _) => return Err(NodeError::Invalid("give amount_msat or amount_sat, not both".into())),
        };
        crate::invoice::check_msat(amount_msat)?;
        if dest == self.node_id {
            return Err(NodeError::Invalid("cannot route to ourselves".into()));
        }
        let final_cltv_delta = if final_cltv_delta == 0 { DEFAULT_QUERY_FINAL_CLTV } else { final_cltv_delta };
        if final_cltv_delta >= DEFAULT_MAX_TOTAL_CLTV_EXPIRY_DELTA {
            return Err(NodeError::Invalid(format!(
                "final_cltv_delta {final_cltv_delta} leaves no room for hops: a path may lock funds for at most {DEFAULT_MAX_TOTAL_CLTV_EXPIRY_DELTA} blocks"
            )));
        }
        let max_parts = u8::try_from(max_parts.max(1)).map_err(|_| NodeError::Invalid(format!("max_parts {max_parts} is more than 255")))?;
        Ok(RouteQuery { dest, amount_msat, final_cltv_delta, fee_limit_msat: (fee_limit_msat > 0).then_some(fee_limit_msat), max_parts })
    }

    /// Answers route queries the way lanesd routes its payments: lanes' router, leaving through our
    /// usable channels, with our HTLCs in flight taken off the channels they use; all queries at once on
    /// all cores, answers in order. No route is an error naming the reason, as for a payment. Blocking:
    /// call it off the async threads.
    pub fn find(&self, queries: &[RouteQuery]) -> Vec<Result<RouteView, NodeError>> {
        let height = self.channel_manager.current_best_block().height;
        let first_hops = self.channel_manager.list_usable_channels();
        let first_hops: Vec<_> = first_hops.iter().collect();
        let in_flight = self.channel_manager.compute_inflight_htlcs();
        let asked: Vec<_> = queries.iter().map(|q| (self.node_id, q.params(height))).collect();
        self.router
            .find_routes_batch(&asked, Some(&first_hops), Some(&in_flight))
            .into_iter()
            .zip(queries)
            .map(|(r, q)| {
                r.map(|est| RouteView::new(&est, height))
                    .map_err(|why| PaymentError::NoRoute(format!("no route to {} for {} msat: {why}", q.dest, q.amount_msat)).into())
            })
            .collect()
    }

    /// How many payment routes lanes' router found, and how many LDK's router had to.
    pub fn counts(&self) -> PaymentRouteCounts {
        self.router.payment_route_counts()
    }

}

/// What payments teach lanes' router, kept across restarts. Payment events feed it; the event processor
/// writes it on its timer and at shutdown (`crate::processor`), as it does LDK's scorer. Writing the whole
/// scorer, synced, on every path's outcome made the event task wait for a disk sync per payment (1.4% of
/// a 1,000-channel node's CPU under load, on the task that hands LDK's events on). A crash loses at most
/// one timer's worth of what was learned: no money, only route preferences.
pub struct Learning {
    router: Arc<Router>,
    store: DynStore,
    /// Set after the router learned something the store does not have yet.
    unsaved: AtomicBool,
}

impl Learning {
    pub fn new(router: Arc<Router>, store: DynStore) -> Self {
        Learning { router, store, unsaved: AtomicBool::new(false) }
    }

    /// A path of ours failed at `scid`: the router learns where liquidity was missing (LDK retries with
    /// the updated scores).
    pub fn path_failed(&self, path: &Path, scid: u64) {
        self.router.payment_path_failed(path, scid);
        self.unsaved.store(true, Ordering::Release);
    }

    pub fn path_succeeded(&self, path: &Path) {
        self.router.payment_path_successful(path);
        self.unsaved.store(true, Ordering::Release);
    }

    /// Writes the scorer if the router learned something since it was last written; whether it wrote. A
    /// failed write is tried again at the next call.
    pub fn save(&self) -> bool {
        // Cleared before the scorer is read: an outcome learned meanwhile marks it again, for the next call.
        if !self.unsaved.swap(false, Ordering::AcqRel) {
            return false;
        }
        if let Err(e) = self.store.write(layout::ROUTER.primary, layout::ROUTER.secondary, layout::ROUTER_SCORER_KEY, self.router.scorer_bytes()) {
            tracing::warn!(error = %e, "saving the router's scorer failed");
            self.unsaved.store(true, Ordering::Release);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning::routing::router::RouteHop;
    use lightning::routing::scoring::{ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters};
    use lightning::sign::KeysManager;
    use lightning::types::features::{ChannelFeatures, NodeFeatures};

    use lanes_channel::logger::LdkTracing;
    use lanes_channel::router::{LiquidityScorer, ScorerParams};
    use lanes_channel::types::{LdkRouter, NetworkGraph};

    use super::*;

    fn key(i: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[i; 32]).unwrap())
    }

    fn router() -> Arc<Router> {
        let logger = Arc::new(LdkTracing::default());
        let graph = Arc::new(NetworkGraph::new(bitcoin::Network::Regtest, Arc::clone(&logger)));
        let scorer = ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), Arc::clone(&graph), Arc::clone(&logger));
        let keys = Arc::new(KeysManager::new(&[7; 32], 1, 0, true));
        let fallback = LdkRouter::new(Arc::clone(&graph), logger, keys, Arc::new(RwLock::new(scorer)), ProbabilisticScoringFeeParameters::default());
        Arc::new(Router::new(graph, key(1), LiquidityScorer::new(ScorerParams::default()), fallback))
    }

    /// us → 2 over channel 21 → 3 over channel 32, 50,000 sat delivered.
    fn path() -> Path {
        let hop = |node: u8, scid: u64, fee_msat: u64| RouteHop {
            pubkey: key(node),
            node_features: NodeFeatures::empty(),
            short_channel_id: scid,
            channel_features: ChannelFeatures::empty(),
            fee_msat,
            cltv_expiry_delta: 40,
            maybe_announced_channel: true,
        };
        Path { hops: vec![hop(2, 21, 1_000), hop(3, 32, 50_000_000)], blinded_tail: None }
    }

    #[test]
    fn what_payments_teach_the_router_is_written_by_save_not_on_the_payments_event() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(lanes_store::SledStore::open(dir.path()).unwrap());
        let stored = || store.read(layout::ROUTER.primary, layout::ROUTER.secondary, layout::ROUTER_SCORER_KEY).ok();
        let router = router();
        let learning = Learning::new(Arc::clone(&router), DynStore::clone(&store));
        assert!(!learning.save(), "nothing learned: nothing written");
        assert_eq!(stored(), None);

        learning.path_succeeded(&path());
        assert_eq!(stored(), None, "a path's success alone writes nothing: the payment's event never waits for the disk");
        assert!(learning.save());
        let first = stored().expect("save wrote the scorer");
        assert_eq!(first, router.scorer_bytes(), "the scorer as the router has it");
        assert!(!learning.save(), "nothing new since: nothing written");

        learning.path_failed(&path(), 32);
        assert_eq!(stored().as_ref(), Some(&first), "a path's failure alone writes nothing either");
        assert!(learning.save());
        let second = stored().unwrap();
        assert_ne!(second, first, "what the failure taught was written");
        assert_eq!(second, router.scorer_bytes());
        assert!(LiquidityScorer::from_bytes(&second).is_some(), "and reads back, as the builder reads it at start-up");
    }
}
