//! BOLT12 offers this node makes, and reading offers and refunds.
//!
//! An offer (`lno1…`) is made by LDK (its metadata derived from our keys, its blinded paths through our
//! peers) and answered by LDK: invoice requests arrive as onion messages and LDK replies with invoices on
//! its own. What lanes adds is the offer's record and its policy, applied when a payment for it arrives:
//! a disabled offer, or a single-use offer already paid, has its payment failed back to the payer.
//!
//! Owns: offer records (description, price, expiry, single use, times paid, amount received), the decision
//! to claim or refuse an arriving offer payment, and describing offers, refunds and invoices (their strings
//! are read by [`crate::bolt12`]). Must never: build invoices, answer invoice requests or route onion messages (LDK
//! does), or claim a payment itself (the event handler does, after asking [`Offers::may_claim`]).
use std::sync::Arc;
use std::time::Duration;

use bitcoin::constants::ChainHash;
use lightning::offers::offer::Quantity;
use serde::{Deserialize, Serialize};

use lanes_channel::types::ChannelManager;
use lanes_common::now_secs;

use crate::bolt12::{chain_name, introduction_node, parse_invoice, parse_offer, parse_refund, price_msat, quantity_max, semantic_error};
use crate::ids::hex;
use crate::invoice::check_msat;
use crate::record::{hex32, Record};
use crate::store::Records;
use crate::payments::Payments;
use crate::NodeError;

/// One offer of ours, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferRecord {
    /// LDK's OfferId.
    #[serde(with = "hex32")]
    pub id: [u8; 32],
    /// The offer as handed to payers (`lno1…`).
    pub offer: String,
    pub description: String,
    pub issuer: String,
    /// Price of one item; None: any amount.
    pub amount_msat: Option<u64>,
    pub expires_at: Option<u64>,
    /// Items per payment: 1, up to N, or 0 for any number.
    pub quantity_max: u64,
    pub single_use: bool,
    pub disabled: bool,
    /// Single use: the payment hash of the one payment taken (set when it arrives, before it is claimed).
    #[serde(with = "hex32::option")]
    pub used_by: Option<[u8; 32]>,
    pub created_at: u64,
    /// How many payments for it were received, and how much: counted from the payment records when the offer
    /// is read (never stored, so an event LDK hands over twice cannot count twice).
    #[serde(skip)]
    pub times_paid: u64,
    #[serde(skip)]
    pub received_msat: u64,
}

impl Record for OfferRecord {
    const KIND: &'static str = "offer";
}

impl OfferRecord {
    /// Takes payments now: not disabled, not expired, and (single use) not paid yet.
    pub fn active(&self) -> bool {
        !self.disabled && self.used_by.is_none() && self.expires_at.is_none_or(|t| t > now_secs())
    }
}

/// What an offer or a refund says, for DecodeOffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferView {
    /// "offer", "refund" or "invoice".
    pub kind: &'static str,
    /// Invoices: the payment hash.
    pub payment_hash: Option<[u8; 32]>,
    pub offer_id: Option<[u8; 32]>,
    pub description: String,
    pub amount_msat: u64,
    pub expires_at: Option<u64>,
    pub expired: bool,
    pub issuer: String,
    pub signing_pubkey: String,
    pub introduction_nodes: Vec<String>,
    pub quantity_max: u64,
    pub payer_note: String,
    pub network: String,
    pub our_network: bool,
}

/// The offers service.
pub struct Offers {
    records: Records<OfferRecord>,
    /// What was received for each offer.
    payments: Arc<Payments>,
    channel_manager: Arc<ChannelManager>,
    network: bitcoin::Network,
}

/// What [`Offers::create`] is asked for.
#[derive(Clone, Debug, Default)]
pub struct NewOffer {
    /// Price of one item; 0: any amount.
    pub amount_msat: u64,
    pub description: String,
    /// 0: never expires.
    pub expiry_secs: u64,
    /// 0 or 1: one item per payment; N: up to N.
    pub quantity_max: u64,
    pub quantity_unbounded: bool,
    pub single_use: bool,
    pub issuer: String,
}

impl Offers {
    pub fn open(store: &lanes_store::DynStore, payments: Arc<Payments>, channel_manager: Arc<ChannelManager>, network: bitcoin::Network) -> Result<Self, NodeError> {
        Ok(Self { records: Records::open(store, lanes_store::layout::OFFERS)?, payments, channel_manager, network })
    }

    /// `records` with what each was paid.
    fn with_totals(&self, mut records: Vec<OfferRecord>) -> Result<Vec<OfferRecord>, NodeError> {
        let totals = self.payments.offer_totals()?;
        for r in &mut records {
            (r.times_paid, r.received_msat) = totals.get(&r.id).copied().unwrap_or_default();
        }
        Ok(records)
    }

    /// Makes an offer (LDK builds it, with blinded paths through our peers) and records it.
    pub fn create(&self, o: NewOffer) -> Result<OfferRecord, NodeError> {
        if o.amount_msat > 0 {
            check_msat(o.amount_msat)?;
        }
        if o.quantity_unbounded && o.quantity_max > 0 {
            return Err(NodeError::Invalid("give quantity_max or quantity_unbounded, not both".into()));
        }
        if o.description.len() > 640 || o.issuer.len() > 640 {
            return Err(NodeError::Invalid("the description and the issuer are at most 640 bytes".into()));
        }
        let now = now_secs();
        let expires_at = match o.expiry_secs {
            0 => None,
            s if s > 100 * 365 * 86_400 => return Err(NodeError::Invalid(format!("expiry_secs {s} is more than a century"))),
            s => Some(now + s),
        };
        let quantity = match (o.quantity_unbounded, o.quantity_max) {
            (true, _) => Quantity::Unbounded,
            (false, 0 | 1) => Quantity::One,
            (false, n) => std::num::NonZeroU64::new(n).map_or(Quantity::One, Quantity::Bounded),
        };
        let mut builder = self.channel_manager.create_offer_builder().map_err(semantic_error)?.description(o.description.clone()).supported_quantity(quantity);
        if o.amount_msat > 0 {
            builder = builder.amount_msats(o.amount_msat);
        }
        if let Some(t) = expires_at {
            builder = builder.absolute_expiry(Duration::from_secs(t));
        }
        if !o.issuer.is_empty() {
            builder = builder.issuer(o.issuer.clone());
        }
        let offer = builder.build().map_err(semantic_error)?;
        let rec = OfferRecord {
            id: offer.id().0,
            offer: offer.to_string(),
            description: o.description,
            issuer: o.issuer,
            amount_msat: (o.amount_msat > 0).then_some(o.amount_msat),
            expires_at,
            quantity_max: quantity_max(quantity),
            single_use: o.single_use,
            disabled: false,
            used_by: None,
            created_at: now,
            times_paid: 0,
            received_msat: 0,
        };
        self.records.put(&rec.id, &rec)?;
        tracing::info!(offer_id = %hex(&rec.id), amount_msat = rec.amount_msat.unwrap_or(0), single_use = rec.single_use, expires_at = rec.expires_at.unwrap_or(0), paths = offer.paths().len(), "offer created");
        Ok(rec)
    }

    /// Every offer, oldest first.
    pub fn list(&self) -> Result<Vec<OfferRecord>, NodeError> {
        let mut all = self.records.all()?;
        all.sort_by_key(|r| r.created_at);
        self.with_totals(all)
    }

    /// Stops taking payments for the offer with this id (hex).
    pub fn disable(&self, offer_id: &str) -> Result<OfferRecord, NodeError> {
        let id = crate::ids::parse_hex32(offer_id, "offer id")?;
        let rec = self
            .records
            .update(&id, |r| {
                let mut r = r?;
                r.disabled = true;
                Some(r)
            })?
            .ok_or_else(|| NodeError::NotFound(format!("no offer {offer_id}")))?;
        tracing::info!(offer_id = %offer_id, "offer disabled");
        Ok(self.with_totals(vec![rec])?.remove(0))
    }

    /// The offer string of ours with this id, if we recorded it.
    pub fn offer_string(&self, id: &[u8; 32]) -> Option<String> {
        self.records.get(id).ok().flatten().map(|r| r.offer)
    }

    /// At a payment's arrival (PaymentClaimable): whether the payment with `hash` for our offer `id` may be
    /// claimed (`Ok(None)`), or why it is refused. A single-use offer is taken by its first payment here, before
    /// the claim, so two payments arriving together cannot both be claimed; the same payment seen again (the
    /// event replayed after a restart) is still allowed. An offer we have no record of (made by an older data
    /// directory with the same seed) is paid: LDK recognised it as ours.
    pub fn may_claim(&self, id: &[u8; 32], hash: &[u8; 32]) -> Result<Option<String>, NodeError> {
        let mut refused = None;
        self.records.update(id, |r| {
            let mut r = r?;
            if r.disabled {
                refused = Some("the offer is disabled".to_string());
                return None;
            }
            if r.single_use {
                match r.used_by {
                    Some(h) if h != *hash => {
                        refused = Some("the single-use offer was paid already".to_string());
                        return None;
                    }
                    Some(_) => return None,
                    None => r.used_by = Some(*hash),
                }
            }
            Some(r)
        })?;
        Ok(refused)
    }

    /// Pays an offer (see [`Payments::pay_offer`]); one of our own offers is refused up front, as CLN refuses
    /// it: a node cannot pay itself.
    pub async fn pay(&self, offer: &str, amount_msat: u64, quantity: u64, payer_note: Option<String>, timeout: Option<Duration>, retry: Option<Duration>) -> Result<crate::payments::PaymentRecord, NodeError> {
        if let Ok(parsed) = parse_offer(offer) {
            if self.records.get(&parsed.id().0)?.is_some() {
                return Err(NodeError::Invalid(format!("offer {} is this node's own: a node cannot pay itself", hex(&parsed.id().0))));
            }
        }
        self.payments.pay_offer(offer, amount_msat, quantity, payer_note, timeout, retry).await
    }

    /// At an invoice request's arrival: why it is refused (an invoice error goes back to the payer, as CLN
    /// answers), or None to let LDK answer it with an invoice. Refused: requests for an offer of ours that is
    /// disabled or single-use and paid. The request repeats the offer's fields; an offer of ours is told by
    /// its blinded paths (each made with keys of its own), description, amount and expiry.
    pub fn refuse_invoice_request(&self, request: &lightning::offers::invoice_request::InvoiceRequest) -> Option<String> {
        let ours = self.records.all().ok()?.into_iter().find(|r| {
            parse_offer(&r.offer).is_ok_and(|o| {
                o.paths() == request.paths() && o.description() == request.description() && o.amount() == request.amount() && o.absolute_expiry() == request.absolute_expiry()
            })
        })?;
        if ours.disabled {
            return Some("the offer is disabled".into());
        }
        if ours.single_use && ours.used_by.is_some() {
            return Some("the single-use offer was paid already".into());
        }
        None
    }

    /// What an offer (`lno1…`), a refund (`lnr1…`) or a BOLT12 invoice (`lni1…`) says.
    pub fn describe(&self, s: &str) -> Result<OfferView, NodeError> {
        let ours = ChainHash::using_genesis_block(self.network);
        let s = s.trim();
        let intro = |paths: &[lightning::blinded_path::message::BlindedMessagePath]| paths.iter().map(|p| introduction_node(p.introduction_node())).collect();
        if s.to_ascii_lowercase().starts_with("lni1") {
            let i = parse_invoice(s)?;
            let intro_nodes = i.payment_paths().iter().map(|p| introduction_node(p.introduction_node())).collect();
            return Ok(OfferView {
                kind: "invoice",
                offer_id: i.offer_id().map(|o| o.0),
                payment_hash: Some(i.payment_hash().0),
                description: i.description().map(|d| d.to_string()).unwrap_or_default(),
                amount_msat: i.amount_msats(),
                expires_at: Some((i.created_at() + i.relative_expiry()).as_secs()),
                expired: i.is_expired(),
                issuer: i.issuer().map(|d| d.to_string()).unwrap_or_default(),
                signing_pubkey: i.signing_pubkey().to_string(),
                introduction_nodes: intro_nodes,
                quantity_max: i.quantity().unwrap_or(0),
                payer_note: i.payer_note().map(|n| n.to_string()).unwrap_or_default(),
                network: chain_name(i.chain()),
                our_network: i.chain() == ours,
            });
        }
        if s.to_ascii_lowercase().starts_with("lnr1") {
            let r = parse_refund(s)?;
            return Ok(OfferView {
                kind: "refund",
                offer_id: None,
                payment_hash: None,
                description: r.description().to_string(),
                amount_msat: r.amount_msats(),
                expires_at: r.absolute_expiry().map(|d| d.as_secs()),
                expired: r.is_expired(),
                issuer: r.issuer().map(|i| i.to_string()).unwrap_or_default(),
                signing_pubkey: r.payer_signing_pubkey().to_string(),
                introduction_nodes: intro(r.paths()),
                quantity_max: r.quantity().unwrap_or(0),
                payer_note: r.payer_note().map(|n| n.to_string()).unwrap_or_default(),
                network: chain_name(r.chain()),
                our_network: r.chain() == ours,
            });
        }
        let o = parse_offer(s)?;
        let amount_msat = price_msat(&o)?.unwrap_or(0);
        Ok(OfferView {
            kind: "offer",
            offer_id: Some(o.id().0),
            payment_hash: None,
            description: o.description().map(|d| d.to_string()).unwrap_or_default(),
            amount_msat,
            expires_at: o.absolute_expiry().map(|d| d.as_secs()),
            expired: o.is_expired(),
            issuer: o.issuer().map(|i| i.to_string()).unwrap_or_default(),
            signing_pubkey: o.issuer_signing_pubkey().map(|k| k.to_string()).unwrap_or_default(),
            introduction_nodes: intro(o.paths()),
            quantity_max: quantity_max(o.supported_quantity()),
            payer_note: String::new(),
            network: o.chains().into_iter().map(chain_name).collect::<Vec<_>>().join(","),
            our_network: o.supports_chain(ours),
        })
    }
}
