//! Payments: paying BOLT11 invoices, keysend, BOLT12 offers and refunds, and the record of every payment's
//! outcome, including what BOLT12 offers and refunds of ours were paid (inbound).
//!
//! Owns: checks before a payment starts (a malformed, foreign, expired or already-paid invoice or offer, a
//! zero or impossible amount never reaches LDK), the payment records and waiting for outcomes. Must never:
//! pick routes or retry by itself (LDK does both, through the node's router), fetch offer invoices itself
//! (LDK does, over onion messages), or mark a payment succeeded without LDK's PaymentSent.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use lightning::ln::channelmanager::{Bolt11PaymentError, OptionalOfferPaymentParams, PaymentId, RecipientOnionFields, Retry, RetryableSendFailure};
use lightning::routing::router::{Path, PaymentParameters, RouteParameters, RouteParametersConfig};
use lightning::sign::KeysManager;
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use lanes_channel::persist::ChannelStateChanges;
use lanes_channel::types::ChannelManager;

use crate::ids::hex;
use crate::invoice::{check_msat, decode};
use crate::record::{hex32, Record};
use crate::routes::HopView;
use crate::store::Records;
use lanes_common::now_secs;
use crate::error::PaymentError;
use crate::NodeError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How many invoices sent for our offers are kept for their payments' receipts.
const INVOICES_KEPT: usize = 10_000;
const DEFAULT_RETRY: Duration = Duration::from_secs(30);
/// How many times a payment LDK found no route for, with nothing of ours in flight, is handed to LDK again
/// at once because channel state changed during the attempt (see [`Payments::start_when_free`]).
const MAX_LOOKS_AGAIN: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    InFlight,
    Succeeded,
    Failed,
}

/// What a payment pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentKind {
    Bolt11 { invoice: String },
    /// A spontaneous payment: the preimage is the payer's and travels in the onion.
    Keysend,
    /// The invoice of a BOLT12 offer (`offer` is "" for an inbound payment of an offer we have no record of).
    Bolt12Offer {
        offer: String,
        #[serde(with = "hex32")]
        offer_id: [u8; 32],
        payer_note: Option<String>,
        quantity: Option<u64>,
    },
    /// The invoice answering a BOLT12 refund (`lnr1…`): outbound on the refund's maker, inbound on its claimer.
    Bolt12Refund { refund: String, payer_note: Option<String> },
}

impl PaymentKind {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentKind::Bolt11 { .. } => "bolt11",
            PaymentKind::Keysend => "keysend",
            PaymentKind::Bolt12Offer { .. } => "bolt12_offer",
            PaymentKind::Bolt12Refund { .. } => "bolt12_refund",
        }
    }
}

/// Which way the money went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
}

/// One payment, as recorded (version 2: typed ids, a kind and a direction).
///
/// The id is LDK's PaymentId, distinct from the payment hash: for BOLT11 and keysend it is the payment
/// hash (as in ldk-node, so LDK itself refuses paying one hash twice); offers will use ids of their own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(with = "hex32")]
    pub id: [u8; 32],
    pub kind: PaymentKind,
    pub direction: Direction,
    /// Unknown until an offer's invoice arrives; always known for BOLT11 and keysend.
    #[serde(with = "hex32::option")]
    pub payment_hash: Option<[u8; 32]>,
    /// Who is paid (outbound) or paid us (inbound), when known.
    pub counterparty: Option<PublicKey>,
    /// What the destination receives, fees excluded.
    pub amount_msat: u64,
    pub fee_msat: u64,
    pub status: PaymentStatus,
    #[serde(with = "hex32::option")]
    pub preimage: Option<[u8; 32]>,
    pub failure_reason: String,
    pub created_at: u64,
    /// The paths the succeeded parts took.
    pub paths: Vec<Vec<HopView>>,
    /// BOLT12, outbound: the invoice paid (`lni1…`, the payer's proof of payment with the preimage) and
    /// the blinded paths it offered (records before these fields read as empty).
    #[serde(default)]
    pub bolt12_invoice: String,
    #[serde(default)]
    pub blinded_paths: Vec<crate::bolt12::BlindedPayPath>,
}

impl Record for PaymentRecord {
    const KIND: &'static str = "payment";
    const VERSION: u32 = 2;

    fn upgrade(version: u32, value: serde_json::Value) -> Result<Self, String> {
        match version {
            1 => serde_json::from_value::<PaymentRecordV1>(value).map_err(|e| e.to_string())?.upgrade(),
            v => Err(format!("no reader for version {v}")),
        }
    }
}

/// A payment as lanes recorded it before record versions (ids as hex strings, the invoice or "" for keysend).
#[derive(Deserialize)]
struct PaymentRecordV1 {
    payment_id: String,
    payment_hash: String,
    destination: String,
    amount_msat: u64,
    fee_msat: u64,
    status: PaymentStatus,
    preimage: String,
    failure_reason: String,
    created_at: u64,
    paths: Vec<Vec<HopView>>,
    bolt11: String,
}

impl PaymentRecordV1 {
    fn upgrade(self) -> Result<PaymentRecord, String> {
        let id32 = |s: &str, what| crate::ids::parse_hex32(s, what).map_err(|e| e.to_string());
        let opt32 = |s: &str, what| if s.is_empty() { Ok(None) } else { id32(s, what).map(Some) };
        Ok(PaymentRecord {
            id: id32(&self.payment_id, "payment id")?,
            kind: if self.bolt11.is_empty() { PaymentKind::Keysend } else { PaymentKind::Bolt11 { invoice: self.bolt11 } },
            direction: Direction::Outbound,
            payment_hash: opt32(&self.payment_hash, "payment hash")?,
            counterparty: self.destination.parse().ok(),
            amount_msat: self.amount_msat,
            fee_msat: self.fee_msat,
            status: self.status,
            preimage: opt32(&self.preimage, "preimage")?,
            failure_reason: self.failure_reason,
            created_at: self.created_at,
            paths: self.paths,
            bolt12_invoice: String::new(),
            blinded_paths: Vec::new(),
        })
    }
}

impl PaymentRecord {
    /// A payment just begun (or expected): in flight, nothing paid or learned yet.
    fn new(id: [u8; 32], kind: PaymentKind, direction: Direction, payment_hash: Option<[u8; 32]>, counterparty: Option<PublicKey>, amount_msat: u64) -> Self {
        PaymentRecord {
            id,
            kind,
            direction,
            payment_hash,
            counterparty,
            amount_msat,
            fee_msat: 0,
            status: PaymentStatus::InFlight,
            preimage: None,
            failure_reason: String::new(),
            created_at: now_secs(),
            paths: Vec::new(),
            bolt12_invoice: String::new(),
            blinded_paths: Vec::new(),
        }
    }

    fn hash_hex(&self) -> String {
        self.payment_hash.map(|h| hex(&h)).unwrap_or_default()
    }
}

/// The payments service.
pub struct Payments {
    records: Records<PaymentRecord>,
    waiters: Mutex<HashMap<[u8; 32], Vec<oneshot::Sender<()>>>>,
    /// Woken whenever a payment of ours ends: a payment waiting for channel capacity tries again.
    ended: tokio::sync::Notify,
    channel_manager: Arc<ChannelManager>,
    keys: Arc<KeysManager>,
    node_id: PublicKey,
    network: bitcoin::Network,
    /// Held while a payment is handed to LDK (see [`Payments::start_when_free`]).
    send_lock: Mutex<()>,
    /// Counts monitor changes: whether any HTLC came or went during an attempt.
    changes: ChannelStateChanges,
    /// Invoices LDK sent for our offers, oldest first: payment hash, `lni1…` string, blinded paths.
    invoices_sent: Mutex<std::collections::VecDeque<([u8; 32], String, Vec<crate::bolt12::BlindedPayPath>)>>,
}

fn send_failure(e: RetryableSendFailure) -> NodeError {
    match e {
        RetryableSendFailure::PaymentExpired => PaymentError::Expired.into(),
        RetryableSendFailure::RouteNotFound => PaymentError::NoRoute("no route to the destination with enough capacity".into()).into(),
        RetryableSendFailure::DuplicatePayment => PaymentError::Duplicate.into(),
        RetryableSendFailure::OnionPacketSizeExceeded => PaymentError::OnionTooLarge.into(),
    }
}

impl Payments {
    pub fn open(
        store: &lanes_store::DynStore, channel_manager: Arc<ChannelManager>, changes: ChannelStateChanges, keys: Arc<KeysManager>, node_id: PublicKey,
        network: bitcoin::Network,
    ) -> Result<Self, NodeError> {
        Ok(Self {
            records: Records::open_indexed(store, lanes_store::layout::PAYMENTS, lanes_store::layout::PAYMENTS_IN_FLIGHT, |r: &PaymentRecord| {
                r.status == PaymentStatus::InFlight
            })?,
            waiters: Mutex::new(HashMap::new()),
            ended: tokio::sync::Notify::new(),
            channel_manager,
            keys,
            node_id,
            network,
            invoices_sent: Mutex::default(),
            send_lock: Mutex::new(()),
            changes,
        })
    }

    /// HTLCs under way on usable channels that hold capacity we are about to have: ours (each holds an HTLC
    /// slot and some capacity until it ends), and those we were paid or refused whose removal is not yet
    /// irrevocable (what we were just paid becomes spendable only then: paying it on at once found "no
    /// route" on a zero-conf channel in zero_conf.rs). HTLCs merely held (hold invoices) do not count:
    /// they may stay for hours.
    fn htlcs_in_flight(&self) -> usize {
        use lightning::ln::channel_state::InboundHTLCStateDetails as In;
        let settling = |s: &Option<In>| matches!(s, Some(In::AwaitingRemoteRevokeToRemoveFulfill | In::AwaitingRemoteRevokeToRemoveFail));
        self.channel_manager
            .list_usable_channels()
            .iter()
            .map(|c| c.pending_outbound_htlcs.len() + c.pending_inbound_htlcs.iter().filter(|h| settling(&h.state)).count())
            .sum()
    }

    /// Hands a payment to LDK with `start`. When LDK finds no route only because our channels are busy (every
    /// HTLC slot or the in-flight limit taken by payments under way, which free them as they end), the
    /// payment waits and tries again as payments end, until `deadline`, instead of failing at once with a
    /// misleading "no route": load alone must not fail a payment (issue 14). With nothing of ours in
    /// flight, "no route" is the truth and is returned at once. Dropping the call (the client gave up)
    /// stops the wait.
    async fn start_when_free(&self, deadline: tokio::time::Instant, hash: &PaymentHash, mut start: impl FnMut() -> Result<(), NodeError>) -> Result<(), NodeError> {
        let mut waited = false;
        let mut looked_again = 0;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            // Payments that ended between LDK's "no route" and a count of HTLCs in flight taken after it would
            // make a busy channel look idle, and fail a payment that load alone stopped (seen once in 40 in
            // load.rs). An HTLC comes or goes only with a monitor change, so a change counted meanwhile
            // means: look again. Counting HTLCs before each attempt instead walked every channel's details,
            // a tenth of a 1,000-channel node's CPU under load.
            let changes = self.changes.count();
            // One payment hands itself to LDK at a time: two that each saw the channel's last free HTLC slot
            // both got a route, and the second, refused by the channel, was retried by LDK at once, found no
            // route and failed (seen in load.rs once HTLCs were processed without LDK's random delay).
            // Serialized, the second sees the slot taken and waits here like any payment under load.
            let started = {
                let _one = self.send_lock.lock().unwrap_or_else(|p| p.into_inner());
                start()
            };
            let in_flight = match started {
                Err(NodeError::Payment(PaymentError::NoRoute(reason))) => match self.htlcs_in_flight() {
                    // Only "nothing in flight, and nothing changed since the attempt began" is the truth.
                    0 if self.changes.count() != changes && looked_again < MAX_LOOKS_AGAIN => {
                        looked_again += 1;
                        continue;
                    }
                    0 => return Err(PaymentError::NoRoute(reason).into()),
                    n => n,
                },
                other => return other,
            };
            if !waited {
                waited = true;
                tracing::info!(payment_hash = %hex(&hash.0), htlcs_in_flight = in_flight, "payment waits for channel capacity: our channels are busy");
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::Timeout(format!(
                    "no channel capacity freed up before the payment's timeout: {in_flight} HTLCs of ours still in flight"
                )));
            }
            // A payment ending frees its slot a moment after its outcome (once the commitment without its HTLC
            // is signed), and forwards free slots too: look again at least every POLL as well.
            const POLL: Duration = Duration::from_millis(50);
            let _ = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + POLL), ended).await;
        }
    }

    /// Pays a BOLT11 invoice and waits for the outcome (IN_FLIGHT if it takes longer than `timeout`).
    pub async fn pay_invoice(&self, bolt11: &str, amount_msat: u64, timeout: Option<Duration>, retry: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        let inv = decode(bolt11, self.network)?;
        let amount = match (inv.amount_milli_satoshis(), amount_msat) {
            (Some(a), 0) => a,
            (Some(a), x) if x == a => a,
            (Some(a), x) => return Err(NodeError::Invalid(format!("the invoice asks for {a} msat; do not give a different amount ({x} msat)"))),
            (None, 0) => return Err(NodeError::Invalid("the invoice has no amount: give amount_msat".into())),
            (None, x) => check_msat(x)?,
        };
        if crate::invoice::is_expired(&inv) {
            return Err(PaymentError::InvoiceExpired((inv.duration_since_epoch() + inv.expiry_time()).as_secs()).into());
        }
        let hash = PaymentHash(inv.payment_hash().to_byte_array());
        let destination = inv.get_payee_pub_key();
        if destination == self.node_id {
            return Err(NodeError::Invalid("this invoice is our own".into()));
        }
        let id = PaymentId(hash.0);
        self.begin(id, Some(hash), Some(destination), amount, PaymentKind::Bolt11 { invoice: inv.to_string() })?;
        let rx = self.wait_for(id);
        let retry = retry.unwrap_or(DEFAULT_RETRY);
        let explicit = inv.amount_milli_satoshis().is_none().then_some(amount);
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or(DEFAULT_TIMEOUT);
        let started = self
            .start_when_free(deadline, &hash, || {
                self.channel_manager.pay_for_bolt11_invoice(&inv, id, explicit, RouteParametersConfig::default(), Retry::Timeout(retry)).map_err(|e| match e {
                    Bolt11PaymentError::InvalidAmount => NodeError::Invalid("the amount does not fit the invoice".into()),
                    Bolt11PaymentError::SendingFailed(f) => send_failure(f),
                })
            })
            .await;
        if let Err(e) = started {
            // Nothing left LDK: the payment does not exist.
            self.abort(id)?;
            return Err(e);
        }
        tracing::info!(payment_hash = %hex(&hash.0), amount_msat = amount, destination = %destination, "payment started");
        self.finish(id, rx, deadline).await
    }

    /// Pays `dest` `amount_msat` without an invoice; the preimage is ours and travels in the onion.
    pub async fn keysend(&self, dest: PublicKey, amount_msat: u64, timeout: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        if amount_msat == 0 {
            return Err(NodeError::Invalid("amount must be greater than 0".into()));
        }
        check_msat(amount_msat)?;
        if dest == self.node_id {
            return Err(NodeError::Invalid("cannot keysend to ourselves".into()));
        }
        let preimage = PaymentPreimage(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys));
        let hash = PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array());
        let id = PaymentId(hash.0);
        self.begin(id, Some(hash), Some(dest), amount_msat, PaymentKind::Keysend)?;
        let rx = self.wait_for(id);
        let params = RouteParameters::from_payment_params_and_value(PaymentParameters::for_keysend(dest, 40, false), amount_msat);
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or(DEFAULT_TIMEOUT);
        let started = self
            .start_when_free(deadline, &hash, || {
                let onion = RecipientOnionFields::spontaneous_empty();
                self.channel_manager.send_spontaneous_payment(Some(preimage), onion, id, params.clone(), Retry::Timeout(DEFAULT_RETRY)).map(|_| ()).map_err(send_failure)
            })
            .await;
        if let Err(e) = started {
            self.abort(id)?;
            return Err(e);
        }
        tracing::info!(payment_hash = %hex(&hash.0), amount_msat, destination = %dest, "keysend started");
        self.finish(id, rx, deadline).await
    }

    /// Pays a BOLT12 offer: LDK requests its invoice over onion messages and pays it once it arrives; waits for
    /// the outcome as [`Payments::pay_invoice`] does. Every offer payment has an id of its own (a reusable
    /// offer is paid many times), random, not the payment hash (unknown until the invoice comes).
    pub async fn pay_offer(&self, offer: &str, amount_msat: u64, quantity: u64, payer_note: Option<String>, timeout: Option<Duration>, retry: Option<Duration>) -> Result<PaymentRecord, NodeError> {
        let offer = crate::bolt12::parse_offer(offer)?;
        crate::bolt12::check_offer_chain(&offer, self.network)?;
        if offer.is_expired() {
            return Err(PaymentError::OfferExpired.into());
        }
        let quantity = match (offer.expects_quantity(), quantity) {
            (false, 0 | 1) => None,
            (false, q) => return Err(NodeError::Invalid(format!("the offer sells one item per payment: quantity {q} is not possible"))),
            (true, 0) => Some(1),
            (true, q) if offer.is_valid_quantity(q) => Some(q),
            (true, q) => return Err(NodeError::Invalid(format!("quantity {q} is more than the offer allows"))),
        };
        let per_item = crate::bolt12::price_msat(&offer)?;
        let amount = match (per_item.map(|a| a.saturating_mul(quantity.unwrap_or(1))), amount_msat) {
            (Some(price), 0) => check_msat(price)?,
            (Some(price), x) if x >= price => check_msat(x)?,
            (Some(price), x) => return Err(NodeError::Invalid(format!("the offer asks for {price} msat; {x} msat is less"))),
            (None, 0) => return Err(NodeError::Invalid("the offer has no amount: give amount_msat".into())),
            (None, x) => check_msat(x)?,
        };
        if payer_note.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(NodeError::Invalid("the payer note is at most 512 bytes".into()));
        }
        let id = PaymentId(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys));
        let kind = PaymentKind::Bolt12Offer { offer: offer.to_string(), offer_id: offer.id().0, payer_note: payer_note.clone(), quantity };
        self.begin(id, None, offer.issuer_signing_pubkey(), amount, kind)?;
        let rx = self.wait_for(id);
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or(DEFAULT_TIMEOUT);
        let params = OptionalOfferPaymentParams { payer_note, route_params_config: RouteParametersConfig::default(), retry_strategy: Retry::Timeout(retry.unwrap_or(DEFAULT_RETRY)) };
        // The amount goes in the request only when the payer chose it (LDK asks for price times quantity otherwise).
        let explicit = (amount_msat > 0 || per_item.is_none()).then_some(amount);
        let sent = match quantity {
            Some(q) => self.channel_manager.pay_for_offer_with_quantity(&offer, explicit, id, params, q),
            None => self.channel_manager.pay_for_offer(&offer, explicit, id, params),
        };
        if let Err(e) = sent {
            self.abort(id)?;
            return Err(crate::bolt12::semantic_error(e));
        }
        tracing::info!(payment_id = %hex(&id.0), offer_id = %hex(&offer.id().0), amount_msat = amount, "offer payment started: invoice requested");
        self.finish(id, rx, deadline).await
    }

    /// Makes a BOLT12 refund (`lnr1…`) of `amount_msat`: LDK pays the first invoice sent for it before it
    /// expires (one hour when `expiry_secs` is 0). Recorded at once as an outbound payment in flight; returns
    /// the record and the refund string.
    pub fn create_refund(&self, amount_msat: u64, description: &str, expiry_secs: u64, payer_note: Option<String>) -> Result<(PaymentRecord, u64), NodeError> {
        if amount_msat == 0 {
            return Err(NodeError::Invalid("amount must be greater than 0".into()));
        }
        check_msat(amount_msat)?;
        if expiry_secs > 365 * 86_400 {
            return Err(NodeError::Invalid(format!("expiry_secs {expiry_secs} is more than a year")));
        }
        let expires_at = now_secs() + if expiry_secs == 0 { 3600 } else { expiry_secs };
        let id = PaymentId(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys));
        let builder = self
            .channel_manager
            .create_refund_builder(amount_msat, Duration::from_secs(expires_at), id, Retry::Timeout(DEFAULT_RETRY), RouteParametersConfig::default())
            .map_err(crate::bolt12::semantic_error)?;
        let mut builder = builder.description(description.to_string());
        if let Some(note) = &payer_note {
            builder = builder.payer_note(note.clone());
        }
        // LDK now waits for the refund's invoice: a refund we cannot record or build is abandoned at once.
        let built = builder.build().map_err(crate::bolt12::semantic_error).and_then(|refund| {
            let kind = PaymentKind::Bolt12Refund { refund: refund.to_string(), payer_note };
            self.begin(id, None, None, amount_msat, kind)?;
            Ok(refund)
        });
        let refund = match built {
            Ok(r) => r,
            Err(e) => {
                self.channel_manager.abandon_payment(id);
                return Err(e);
            }
        };
        tracing::info!(payment_id = %hex(&id.0), amount_msat, expires_at, paths = refund.paths().len(), "refund created: paid to the first invoice sent for it");
        let rec = self.records.get(&id.0)?.ok_or_else(|| NodeError::Internal("refund record vanished".into()))?;
        Ok((rec, expires_at))
    }

    /// Asks to be paid a refund another node made: LDK sends it our invoice over onion messages. The receipt is
    /// recorded now (inbound, in flight) and succeeds when the payment is claimed.
    pub fn request_refund_payment(&self, refund: &str) -> Result<(PaymentRecord, String), NodeError> {
        let r = crate::bolt12::parse_refund(refund)?;
        let ours = bitcoin::constants::ChainHash::using_genesis_block(self.network);
        if r.chain() != ours {
            return Err(NodeError::Invalid(format!("the refund is for chain {}, not for this node's {}", r.chain(), self.network)));
        }
        if r.is_expired() {
            return Err(PaymentError::OfferExpired.into());
        }
        let text = r.to_string();
        let own = self.records.all()?.into_iter().any(|p| p.direction == Direction::Outbound && matches!(&p.kind, PaymentKind::Bolt12Refund { refund, .. } if *refund == text));
        if own {
            return Err(NodeError::Invalid("the refund is this node's own: a node cannot pay itself".into()));
        }
        let invoice = self.channel_manager.request_refund_payment(&r).map_err(crate::bolt12::semantic_error)?;
        let hash = invoice.payment_hash().0;
        let kind = PaymentKind::Bolt12Refund { refund: r.to_string(), payer_note: r.payer_note().map(|n| n.to_string()) };
        let mut rec = PaymentRecord::new(hash, kind, Direction::Inbound, Some(hash), Some(r.payer_signing_pubkey()), r.amount_msats());
        rec.bolt12_invoice = crate::bolt12::invoice_string(&invoice).unwrap_or_default();
        rec.blinded_paths = crate::bolt12::payment_paths(&invoice);
        self.records.put(&hash, &rec)?;
        tracing::info!(payment_hash = %hex(&hash), amount_msat = rec.amount_msat, "refund invoice sent: waiting to be paid");
        // The invoice is on its way already: a string form we could not make is no reason to fail the call.
        Ok((rec, crate::bolt12::invoice_string(&invoice).unwrap_or_default()))
    }

    /// An inbound BOLT12 payment was claimed: its receipt (keyed by payment hash) is SUCCEEDED, made now for an
    /// offer's payment, or completing the one [`Payments::request_refund_payment`] made.
    /// LDK sent `invoice` for one of our offers: kept (in memory, the most recent [`INVOICES_KEPT`]) until
    /// its payment arrives, so the receipt shows the invoice and its blinded paths.
    pub fn invoice_sent(&self, invoice: &lightning::offers::invoice::Bolt12Invoice) {
        let Ok(text) = crate::bolt12::invoice_string(invoice) else { return };
        let mut sent = self.invoices_sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() >= INVOICES_KEPT {
            sent.pop_front();
        }
        sent.push_back((invoice.payment_hash().0, text, crate::bolt12::payment_paths(invoice)));
    }

    pub fn received(&self, hash: PaymentHash, kind: PaymentKind, amount_msat: u64, preimage: Option<PaymentPreimage>) -> Result<(), NodeError> {
        let sent = {
            let sent = self.invoices_sent.lock().unwrap_or_else(|p| p.into_inner());
            sent.iter().find(|(h, ..)| *h == hash.0).map(|(_, text, paths)| (text.clone(), paths.clone()))
        };
        self.records.update_replayed(&hash.0, |old| {
            let mut r = old.unwrap_or_else(|| PaymentRecord::new(hash.0, kind, Direction::Inbound, Some(hash.0), None, amount_msat));
            if let (true, Some((text, paths))) = (r.bolt12_invoice.is_empty(), sent) {
                r.bolt12_invoice = text;
                r.blinded_paths = paths;
            }
            r.status = PaymentStatus::Succeeded;
            r.amount_msat = amount_msat;
            r.preimage = preimage.map(|p| p.0);
            Some(r)
        })?;
        Ok(())
    }

    /// For each of our offers that was paid: how many payments were received for it, and how much in all.
    pub fn offer_totals(&self) -> Result<HashMap<[u8; 32], (u64, u64)>, NodeError> {
        let mut totals: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
        for r in self.records.all()? {
            if let (Direction::Inbound, PaymentStatus::Succeeded, PaymentKind::Bolt12Offer { offer_id, .. }) = (r.direction, r.status, &r.kind) {
                let t = totals.entry(*offer_id).or_default();
                t.0 += 1;
                t.1 += r.amount_msat;
            }
        }
        Ok(totals)
    }

    /// Records a new in-flight payment; refuses one we already paid or are paying.
    fn begin(&self, id: PaymentId, hash: Option<PaymentHash>, dest: Option<PublicKey>, amount_msat: u64, kind: PaymentKind) -> Result<(), NodeError> {
        let mut refused = None;
        self.records.update(&id.0, |old| match old {
            Some(r) if r.status == PaymentStatus::Succeeded => {
                refused = Some(PaymentError::AlreadyPaid(r.hash_hex()).into());
                None
            }
            Some(r) if r.status == PaymentStatus::InFlight => {
                refused = Some(PaymentError::InFlight(r.hash_hex()).into());
                None
            }
            _ => Some(PaymentRecord::new(id.0, kind, Direction::Outbound, hash.map(|h| h.0), dest, amount_msat)),
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

    /// Waits for the outcome (IN_FLIGHT after `deadline`: the call's timeout, counted from its start). A
    /// payment is final at LDK's PaymentSent, and it is returned then: the paths it took come in later events
    /// (one per part) and are added to its record as they do, for ListPayments; waiting for them cost about
    /// 40% of a payment's latency.
    async fn finish(&self, id: PaymentId, mut rx: oneshot::Receiver<()>, deadline: tokio::time::Instant) -> Result<PaymentRecord, NodeError> {
        loop {
            let timed_out = tokio::time::timeout_at(deadline, rx).await.is_err();
            let rec = self.records.get(&id.0)?.ok_or_else(|| NodeError::Internal("payment record vanished".into()))?;
            if rec.status != PaymentStatus::InFlight || timed_out {
                return Ok(rec);
            }
            // Woken by something else than the outcome: wait again, re-reading after registering so an
            // outcome recorded in between is not missed.
            rx = self.wait_for(id);
            if let Some(rec) = self.records.get(&id.0)?.filter(|r| r.status != PaymentStatus::InFlight) {
                return Ok(rec);
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

    /// Records a payment's success; `invoice` is the BOLT12 invoice it paid, if it paid one.
    pub fn succeeded(
        &self,
        id: Option<PaymentId>,
        hash: PaymentHash,
        preimage: PaymentPreimage,
        amount: Option<u64>,
        fee: Option<u64>,
        invoice: Option<&lightning::offers::invoice::Bolt12Invoice>,
    ) -> Result<(), NodeError> {
        let id = id.unwrap_or(PaymentId(hash.0));
        let paid = match invoice {
            Some(i) => Some((crate::bolt12::invoice_string(i)?, crate::bolt12::payment_paths(i))),
            None => None,
        };
        self.records.update_replayed(&id.0, |r| {
            let mut r = r?;
            r.status = PaymentStatus::Succeeded;
            // An offer's or refund's payment learns its hash from the invoice, known only now.
            r.payment_hash = Some(hash.0);
            r.preimage = Some(preimage.0);
            r.fee_msat = fee.unwrap_or(0);
            if let Some(a) = amount {
                r.amount_msat = a;
            }
            if let Some((invoice, paths)) = paid {
                r.bolt12_invoice = invoice;
                r.blinded_paths = paths;
            }
            Some(r)
        })?;
        self.notify(&id.0);
        self.ended.notify_waiters();
        Ok(())
    }

    pub fn failed(&self, id: PaymentId, reason: &str) -> Result<(), NodeError> {
        self.records.update_replayed(&id.0, |r| {
            let mut r = r?;
            r.status = PaymentStatus::Failed;
            r.failure_reason = reason.to_string();
            Some(r)
        })?;
        self.notify(&id.0);
        self.ended.notify_waiters();
        Ok(())
    }

    pub fn path_succeeded(&self, id: PaymentId, path: &Path) -> Result<(), NodeError> {
        let hops = crate::routes::hops(path);
        self.records.update_replayed(&id.0, |r| {
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
        // Only those in flight: not every payment ever made (see crate::store::OpenIndex).
        for rec in self.records.open_ones()? {
            if rec.direction == Direction::Inbound {
                continue;
            }
            let id = PaymentId(rec.id);
            if !known.contains(&id) {
                tracing::warn!(payment_hash = %rec.hash_hex(), "payment never started before the node stopped: marked failed");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Payment records as the lanes of before record versions wrote them (serde_json of its PaymentRecord):
    /// a two-hop BOLT11 payment that succeeded, and a keysend that failed.
    const V1_BOLT11: &str = r#"{"payment_id":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","payment_hash":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","destination":"02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619","amount_msat":1000000,"fee_msat":1001,"status":"Succeeded","preimage":"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b","failure_reason":"","created_at":1700000000,"paths":[[{"node_id":"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798","short_channel_id":113249697660928,"amount_msat":1001001,"fee_msat":1001,"cltv_expiry_delta":40},{"node_id":"02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619","short_channel_id":114349209288704,"amount_msat":1000000,"fee_msat":0,"cltv_expiry_delta":40}]],"bolt11":"lnbcrt10u1pexample"}"#;
    const V1_KEYSEND: &str = r#"{"payment_id":"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c","payment_hash":"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c","destination":"02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619","amount_msat":5000,"fee_msat":0,"status":"Failed","preimage":"","failure_reason":"no route to the destination with enough capacity","created_at":1700000001,"paths":[],"bolt11":""}"#;

    #[test]
    fn payment_records_written_before_versions_read_with_their_kind_and_typed_ids() {
        let paid: PaymentRecord = crate::record::decode(V1_BOLT11.as_bytes()).unwrap();
        assert_eq!(paid.id, [10; 32]);
        assert_eq!(paid.payment_hash, Some([10; 32]));
        assert_eq!(paid.preimage, Some([11; 32]));
        assert_eq!(paid.kind, PaymentKind::Bolt11 { invoice: "lnbcrt10u1pexample".into() });
        assert_eq!(paid.direction, Direction::Outbound);
        assert_eq!(paid.counterparty.unwrap().to_string(), "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619");
        assert_eq!((paid.amount_msat, paid.fee_msat, paid.status, paid.created_at), (1_000_000, 1001, PaymentStatus::Succeeded, 1_700_000_000));
        assert_eq!(paid.paths[0].iter().map(|h| (h.amount_msat, h.fee_msat)).collect::<Vec<_>>(), vec![(1_001_001, 1001), (1_000_000, 0)]);

        let failed: PaymentRecord = crate::record::decode(V1_KEYSEND.as_bytes()).unwrap();
        assert_eq!(failed.kind, PaymentKind::Keysend);
        assert_eq!((failed.preimage, failed.status), (None, PaymentStatus::Failed));
        assert_eq!(failed.failure_reason, "no route to the destination with enough capacity");

        // Written again, they are version 2 and read back the same.
        for rec in [paid, failed] {
            let bytes = crate::record::encode(&rec).unwrap();
            assert!(bytes.starts_with(br#"{"v":2,"#), "{}", String::from_utf8_lossy(&bytes));
            assert_eq!(crate::record::decode::<PaymentRecord>(&bytes).unwrap(), rec);
        }
    }
}
