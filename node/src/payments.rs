//! Outgoing payments: paying BOLT11 invoices and keysend, the record of every payment's outcome, and
//! route queries (the route a payment would take, asked of the node's router without paying).
//!
//! Owns: checks before a payment starts (a malformed, foreign, expired or already-paid invoice, a zero
//! or impossible amount never reaches LDK), the payment records and waiting for outcomes. Must never:
//! pick routes or retry by itself (LDK does both, through the node's router), or mark a payment
//! succeeded without LDK's PaymentSent.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use lightning::ln::channelmanager::{Bolt11PaymentError, PaymentId, RecipientOnionFields, Retry, RetryableSendFailure};
use lanes_channel::router::lanes_router::RouteEstimate;
use lightning::routing::router::{
    Path, PaymentParameters, RouteParameters, RouteParametersConfig, DEFAULT_MAX_TOTAL_CLTV_EXPIRY_DELTA,
};
use lightning::types::payment::{PaymentHash, PaymentPreimage, PaymentSecret};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::ids::hex;
use crate::invoice::{decode, MAX_MSAT};
use crate::node::Node;
use crate::store::{now_secs, Records};
use crate::NodeError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_RETRY: Duration = Duration::from_secs(30);
/// How long a succeeded payment waits for LDK's per-path events before it is returned without them.
const PATHS_WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    InFlight,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HopRecord {
    pub node_id: String,
    pub short_channel_id: u64,
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub cltv_expiry_delta: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub payment_hash: String,
    pub destination: String,
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub status: PaymentStatus,
    pub preimage: String,
    pub failure_reason: String,
    pub created_at: u64,
    pub paths: Vec<Vec<HopRecord>>,
    pub bolt11: String,
}

impl PaymentRecord {
    /// True when the recorded paths deliver the whole amount (each path's last hop is its part).
    fn all_paths_recorded(&self) -> bool {
        let delivered: u64 = self.paths.iter().filter_map(|p| p.last()).map(|h| h.amount_msat).sum();
        !self.paths.is_empty() && delivered >= self.amount_msat
    }
}

pub struct Payments {
    records: Records<PaymentRecord>,
    waiters: Mutex<HashMap<[u8; 32], Vec<oneshot::Sender<()>>>>,
}

fn send_failure(e: RetryableSendFailure) -> NodeError {
    match e {
        RetryableSendFailure::PaymentExpired => NodeError::Precondition("the invoice has expired".into()),
        RetryableSendFailure::RouteNotFound => NodeError::Precondition("no route to the destination with enough capacity".into()),
        RetryableSendFailure::DuplicatePayment => NodeError::AlreadyExists("this payment was already made or is in flight".into()),
        RetryableSendFailure::OnionPacketSizeExceeded => NodeError::Invalid("the payment's onion would be too large (too many hints or custom data)".into()),
    }
}

impl Payments {
    pub fn open(store: &lanes_store::DynStore) -> Result<Self, NodeError> {
        Ok(Self { records: Records::open(store, lanes_store::layout::PAYMENTS)?, waiters: Mutex::new(HashMap::new()) })
    }

    /// Pays a BOLT11 invoice and waits for the outcome (IN_FLIGHT if it takes longer than `timeout`).
    pub async fn pay_invoice(&self, node: &Node, bolt11: &str, amount_msat: u64, timeout: Option<Duration>, retry: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        let inv = decode(bolt11, node.config.network)?;
        let amount = match (inv.amount_milli_satoshis(), amount_msat) {
            (Some(a), 0) => a,
            (Some(a), x) if x == a => a,
            (Some(a), x) => return Err(NodeError::Invalid(format!("the invoice asks for {a} msat; do not give a different amount ({x} msat)"))),
            (None, 0) => return Err(NodeError::Invalid("the invoice has no amount: give amount_msat".into())),
            (None, x) if x > MAX_MSAT => return Err(NodeError::Invalid(format!("{x} msat is more than 21 million bitcoin"))),
            (None, x) => x,
        };
        if crate::invoice::is_expired(&inv) {
            return Err(NodeError::Precondition(format!("the invoice expired at {} (unix time)", (inv.duration_since_epoch() + inv.expiry_time()).as_secs())));
        }
        let hash = PaymentHash(inv.payment_hash().to_byte_array());
        let destination = inv.get_payee_pub_key();
        if destination == node.node_id {
            return Err(NodeError::Invalid("this invoice is our own".into()));
        }
        let id = PaymentId(hash.0);
        self.begin(id, hash, destination, amount, inv.to_string())?;
        let rx = self.wait_for(id);
        let retry = Retry::Timeout(retry.unwrap_or(DEFAULT_RETRY));
        let explicit = inv.amount_milli_satoshis().is_none().then_some(amount);
        if let Err(e) = node.channel_manager.pay_for_bolt11_invoice(&inv, id, explicit, RouteParametersConfig::default(), retry) {
            // Nothing left LDK: the payment does not exist.
            self.abort(id)?;
            return Err(match e {
                Bolt11PaymentError::InvalidAmount => NodeError::Invalid("the amount does not fit the invoice".into()),
                Bolt11PaymentError::SendingFailed(f) => send_failure(f),
            });
        }
        tracing::info!(payment_hash = %hex(&hash.0), amount_msat = amount, destination = %destination, "payment started");
        self.finish(id, rx, timeout).await
    }

    /// Pays `dest` `amount_msat` without an invoice; the preimage is ours and travels in the onion.
    pub async fn keysend(&self, node: &Node, dest: PublicKey, amount_msat: u64, timeout: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        if amount_msat == 0 {
            return Err(NodeError::Invalid("amount must be greater than 0".into()));
        }
        if amount_msat > MAX_MSAT {
            return Err(NodeError::Invalid(format!("{amount_msat} msat is more than 21 million bitcoin")));
        }
        if dest == node.node_id {
            return Err(NodeError::Invalid("cannot keysend to ourselves".into()));
        }
        let preimage = PaymentPreimage(lightning::sign::EntropySource::get_secure_random_bytes(&*node.keys));
        let hash = PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array());
        let id = PaymentId(hash.0);
        self.begin(id, hash, dest, amount_msat, String::new())?;
        let rx = self.wait_for(id);
        let params = RouteParameters::from_payment_params_and_value(PaymentParameters::for_keysend(dest, 40, false), amount_msat);
        if let Err(e) = node.channel_manager.send_spontaneous_payment(Some(preimage), RecipientOnionFields::spontaneous_empty(), id, params, Retry::Timeout(DEFAULT_RETRY)) {
            self.abort(id)?;
            return Err(send_failure(e));
        }
        tracing::info!(payment_hash = %hex(&hash.0), amount_msat, destination = %dest, "keysend started");
        self.finish(id, rx, timeout).await
    }

    /// Records a new in-flight payment; refuses one we already paid or are paying.
    fn begin(&self, id: PaymentId, hash: PaymentHash, dest: PublicKey, amount_msat: u64, bolt11: String) -> Result<(), NodeError> {
        let mut refused = None;
        self.records.update(&id.0, |old| match old {
            Some(r) if r.status == PaymentStatus::Succeeded => {
                refused = Some(NodeError::AlreadyExists(format!("already paid (payment hash {})", r.payment_hash)));
                None
            }
            Some(r) if r.status == PaymentStatus::InFlight => {
                refused = Some(NodeError::AlreadyExists(format!("a payment for hash {} is already in flight", r.payment_hash)));
                None
            }
            _ => Some(PaymentRecord {
                payment_id: hex(&id.0),
                payment_hash: hex(&hash.0),
                destination: dest.to_string(),
                amount_msat,
                fee_msat: 0,
                status: PaymentStatus::InFlight,
                preimage: String::new(),
                failure_reason: String::new(),
                created_at: now_secs(),
                paths: Vec::new(),
                bolt11,
            }),
        })?;
        refused.map_or(Ok(()), Err)
    }

    /// Undoes `begin` for a payment LDK refused to start.
    fn abort(&self, id: PaymentId) -> Result<(), NodeError> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.0);
        self.records.remove(&id.0)
    }

    fn wait_for(&self, id: PaymentId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).entry(id.0).or_default().push(tx);
        rx
    }

    /// Waits for the outcome. LDK reports the paths a payment took in events that follow PaymentSent
    /// (one per part of a multi-part payment), so a succeeded payment is returned once the recorded
    /// paths deliver its whole amount (or after a short bound).
    async fn finish(&self, id: PaymentId, rx: oneshot::Receiver<()>, timeout: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        let _ = tokio::time::timeout(timeout.unwrap_or(DEFAULT_TIMEOUT), rx).await;
        let deadline = tokio::time::Instant::now() + PATHS_WAIT;
        loop {
            let rec = self.records.get(&id.0)?.ok_or_else(|| NodeError::Internal("payment record vanished".into()))?;
            if rec.status != PaymentStatus::Succeeded || rec.all_paths_recorded() {
                return Ok(rec);
            }
            let rx = self.wait_for(id);
            // Re-read after registering, so a path recorded in between is not missed.
            if self.records.get(&id.0)?.is_some_and(|r| r.all_paths_recorded()) {
                continue;
            }
            if tokio::time::timeout_at(deadline, rx).await.is_err() {
                return self.records.get(&id.0)?.ok_or_else(|| NodeError::Internal("payment record vanished".into()));
            }
        }
    }

    fn notify(&self, id: &[u8; 32]) {
        if let Some(ws) = self.waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }

    pub fn succeeded(&self, id: Option<PaymentId>, hash: PaymentHash, preimage: PaymentPreimage, amount: Option<u64>, fee: Option<u64>) -> Result<(), NodeError> {
        let id = id.unwrap_or(PaymentId(hash.0));
        self.records.update(&id.0, |r| {
            let mut r = r?;
            r.status = PaymentStatus::Succeeded;
            r.preimage = hex(&preimage.0);
            r.fee_msat = fee.unwrap_or(0);
            if let Some(a) = amount {
                r.amount_msat = a;
            }
            Some(r)
        })?;
        self.notify(&id.0);
        Ok(())
    }

    pub fn failed(&self, id: PaymentId, reason: &str) -> Result<(), NodeError> {
        self.records.update(&id.0, |r| {
            let mut r = r?;
            r.status = PaymentStatus::Failed;
            r.failure_reason = reason.to_string();
            Some(r)
        })?;
        self.notify(&id.0);
        Ok(())
    }

    pub fn path_succeeded(&self, id: PaymentId, path: &Path) -> Result<(), NodeError> {
        let hops = path
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // A hop's fee_msat is what the next node charges; the last hop's is the amount delivered.
                let forwarded: u64 = path.hops[i..].iter().map(|x| x.fee_msat).sum();
                HopRecord {
                    node_id: h.pubkey.to_string(),
                    short_channel_id: h.short_channel_id,
                    amount_msat: forwarded,
                    fee_msat: if i + 1 < path.hops.len() { h.fee_msat } else { 0 },
                    cltv_expiry_delta: h.cltv_expiry_delta,
                }
            })
            .collect();
        self.records.update(&id.0, |r| {
            let mut r = r?;
            r.paths.push(hops);
            Some(r)
        })?;
        self.notify(&id.0);
        Ok(())
    }

    /// At start-up: a payment we recorded as in flight that LDK does not know never left this node
    /// (the node stopped between recording it and handing it to LDK; LDK rebuilds every payment that
    /// has an HTLC out from its monitors). Mark those failed so nothing waits on them forever.
    pub fn reconcile(&self, known: &[PaymentId]) -> Result<(), NodeError> {
        for rec in self.records.all()? {
            if rec.status != PaymentStatus::InFlight {
                continue;
            }
            let id = PaymentId(crate::ids::parse_hex32(&rec.payment_id, "payment id")?);
            if !known.contains(&id) {
                tracing::warn!(payment_hash = %rec.payment_hash, "payment never started before the node stopped: marked failed");
                self.failed(id, "the node stopped before the payment was sent")?;
            }
        }
        Ok(())
    }

    /// Every payment, oldest first.
    pub fn list(&self) -> Result<Vec<PaymentRecord>, NodeError> {
        let mut all = self.records.all()?;
        all.sort_by_key(|r| r.created_at);
        Ok(all)
    }
}

/// The final CLTV delta a route query assumes when none is given (what our keysend asks for).
pub const DEFAULT_QUERY_FINAL_CLTV: u32 = 40;

/// A route query (QueryRoutes), checked: the route a payment of `amount_msat` to `dest` would take.
#[derive(Clone, Debug)]
pub struct RouteQuery {
    pub dest: PublicKey,
    pub amount_msat: u64,
    pub final_cltv_delta: u32,
    pub fee_limit_msat: Option<u64>,
    pub max_parts: u8,
}

impl RouteQuery {
    /// Checks the request: one non-zero amount (msat or sat) within 21 million bitcoin, a final CLTV
    /// delta below LDK's limit for a whole path, a destination other than us. Zero means default for
    /// the other fields.
    pub fn new(node: &Node, dest: PublicKey, amount_msat: u64, amount_sat: u64, final_cltv_delta: u32, fee_limit_msat: u64, max_parts: u32) -> Result<Self, NodeError> {
        let amount_msat = match (amount_msat, amount_sat) {
            (0, 0) => return Err(NodeError::Invalid("amount must be greater than 0 (amount_msat or amount_sat)".into())),
            (m, 0) => m,
            (0, s) => s.checked_mul(1000).ok_or_else(|| NodeError::Invalid(format!("{s} sat is more than 21 million bitcoin")))?,
            (_, _) => return Err(NodeError::Invalid("give amount_msat or amount_sat, not both".into())),
        };
        if amount_msat > MAX_MSAT {
            return Err(NodeError::Invalid(format!("{amount_msat} msat is more than 21 million bitcoin")));
        }
        if dest == node.node_id {
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

/// Answers route queries the way lanesd routes its payments: lanes' router, leaving through our
/// usable channels, with our HTLCs in flight taken off the channels they use; all queries at once on
/// all cores, answers in order. LDK's router is not asked (it only backs payments up). No route is
/// FAILED_PRECONDITION, as for a payment.
pub fn query_routes(node: &Node, queries: &[RouteQuery]) -> Vec<Result<RouteEstimate, NodeError>> {
    let height = node.channel_manager.current_best_block().height;
    let first_hops = node.channel_manager.list_usable_channels();
    let first_hops: Vec<_> = first_hops.iter().collect();
    let in_flight = node.channel_manager.compute_inflight_htlcs();
    let asked: Vec<_> = queries.iter().map(|q| (node.node_id, q.params(height))).collect();
    node.router
        .find_routes_batch(&asked, Some(&first_hops), Some(&in_flight))
        .into_iter()
        .zip(queries)
        .map(|(r, q)| {
            r.map_err(|why| NodeError::Precondition(format!("no route to {} for {} msat: {why}", q.dest, q.amount_msat)))
        })
        .collect()
}
