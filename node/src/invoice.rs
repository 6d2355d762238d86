//! BOLT11 invoices: creating them, decoding them, and their state (open, settled, expired).
//!
//! Owns: the record of every invoice we issued and every payment we received (keysend included), and
//! parsing invoices given to the API. Must never: hold the preimages' source of truth (LDK derives
//! them and hands them to us when a payment arrives) or claim a payment itself.
use std::str::FromStr;
use std::time::Duration;

use bitcoin::hashes::Hash;
use lightning::ln::channelmanager::Bolt11InvoiceParameters;
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use lanes_channel::types::ChannelManager;

use crate::ids::{hex, parse_hex32};
use crate::store::Records;
use lanes_common::now_secs;
use crate::error::InvoiceError;
use crate::NodeError;

const DEFAULT_EXPIRY_SECS: u32 = 3600;

/// `msat`, if it is an amount that can exist (the one check, in lanes-common).
pub fn check_msat(msat: u64) -> Result<u64, NodeError> {
    lanes_common::check_msat(msat).map_err(NodeError::Invalid)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceState {
    Open,
    Settled,
    Expired,
    /// A hold invoice's payment is held, waiting for settle or cancel.
    Accepted,
    Canceled,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// Empty for keysend payments received.
    pub bolt11: String,
    #[serde(with = "crate::record::hex32")]
    pub payment_hash: [u8; 32],
    pub amount_msat: u64,
    pub description: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub settled: bool,
    pub amount_received_msat: u64,
    pub settled_at: u64,
    /// Known once settled.
    #[serde(with = "crate::record::hex32::option")]
    pub preimage: Option<[u8; 32]>,
    /// The caller keeps the preimage: a payment is held until settled or canceled.
    #[serde(default)]
    pub hold: bool,
    #[serde(default)]
    pub accepted: bool,
    #[serde(default)]
    pub canceled: bool,
}

impl crate::record::Record for InvoiceRecord {
    const KIND: &'static str = "invoice";
}

impl InvoiceRecord {
    pub fn state(&self) -> InvoiceState {
        if self.settled {
            InvoiceState::Settled
        } else if self.canceled {
            InvoiceState::Canceled
        } else if self.accepted {
            InvoiceState::Accepted
        } else if now_secs() >= self.expires_at {
            InvoiceState::Expired
        } else {
            InvoiceState::Open
        }
    }
}

/// The invoices service.
pub struct Invoices {
    records: Records<InvoiceRecord>,
    channel_manager: Arc<ChannelManager>,
    network: bitcoin::Network,
}

/// A decoded BOLT11 invoice, as DecodeInvoice shows it.
#[derive(Clone, Debug)]
pub struct DecodedInvoice {
    pub destination: bitcoin::secp256k1::PublicKey,
    pub payment_hash: [u8; 32],
    pub amount_msat: Option<u64>,
    pub description: String,
    pub timestamp: u64,
    pub expiry_secs: u64,
    pub expired: bool,
    pub min_final_cltv_expiry_delta: u64,
    pub network: bitcoin::Network,
    /// Private channels into the payee, each hint a path of hops.
    pub route_hints: Vec<Vec<HintHop>>,
}

/// One hop of a route hint.
#[derive(Clone, Debug)]
pub struct HintHop {
    pub node_id: bitcoin::secp256k1::PublicKey,
    pub short_channel_id: u64,
    pub fee_base_msat: u32,
    pub fee_rate_ppm: u32,
    pub cltv_expiry_delta: u32,
}

/// Parses a BOLT11 invoice and checks it is for our network.
pub fn decode(s: &str, network: bitcoin::Network) -> Result<Bolt11Invoice, NodeError> {
    let inv = Bolt11Invoice::from_str(s.trim()).map_err(|e| NodeError::Invalid(format!("malformed invoice: {e}")))?;
    if inv.network() != network {
        return Err(NodeError::Invalid(format!("the invoice is for {}, this node runs on {network}", inv.network())));
    }
    Ok(inv)
}

pub fn parse_payment_hash(s: &str) -> Result<PaymentHash, NodeError> {
    Ok(PaymentHash(parse_hex32(s, "payment hash")?))
}

impl Invoices {
    pub fn open(store: &lanes_store::DynStore, channel_manager: Arc<ChannelManager>, network: bitcoin::Network) -> Result<Self, NodeError> {
        Ok(Self { records: Records::open(store, lanes_store::layout::INVOICES)?, channel_manager, network })
    }

    /// What a BOLT11 invoice for this node's network asks.
    pub fn describe(&self, s: &str) -> Result<DecodedInvoice, NodeError> {
        let inv = decode(s, self.network)?;
        let description = match inv.description() {
            lightning_invoice::Bolt11InvoiceDescriptionRef::Direct(d) => d.to_string(),
            lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) => format!("hash:{}", h.0),
        };
        Ok(DecodedInvoice {
            destination: inv.get_payee_pub_key(),
            payment_hash: inv.payment_hash().to_byte_array(),
            amount_msat: inv.amount_milli_satoshis(),
            description,
            timestamp: inv.duration_since_epoch().as_secs(),
            expiry_secs: inv.expiry_time().as_secs(),
            expired: is_expired(&inv),
            min_final_cltv_expiry_delta: inv.min_final_cltv_expiry_delta(),
            network: inv.network(),
            route_hints: inv
                .route_hints()
                .into_iter()
                .map(|h| {
                    h.0.iter()
                        .map(|x| HintHop {
                            node_id: x.src_node_id,
                            short_channel_id: x.short_channel_id,
                            fee_base_msat: x.fees.base_msat,
                            fee_rate_ppm: x.fees.proportional_millionths,
                            cltv_expiry_delta: x.cltv_expiry_delta as u32,
                        })
                        .collect()
                })
                .collect(),
        })
    }

    /// Creates an invoice (amount 0: any amount). LDK derives its preimage from the node's keys, unless
    /// `hold_hash` is given: then the caller keeps the preimage and a payment is held until settled.
    pub fn add(&self, amount_msat: u64, description: &str, expiry_secs: u32, hold_hash: Option<PaymentHash>) -> Result<InvoiceRecord, NodeError> {
        if let Some(h) = hold_hash {
            if self.records.get(&h.0)?.is_some() {
                return Err(InvoiceError::Exists(hex(&h.0)).into());
            }
        }
        check_msat(amount_msat)?;
        let desc = Description::new(description.to_string()).map_err(|e| NodeError::Invalid(format!("description: {e}")))?;
        let expiry = if expiry_secs == 0 { DEFAULT_EXPIRY_SECS } else { expiry_secs };
        let params = Bolt11InvoiceParameters {
            amount_msats: (amount_msat > 0).then_some(amount_msat),
            description: Bolt11InvoiceDescription::Direct(desc),
            invoice_expiry_delta_secs: Some(expiry),
            payment_hash: hold_hash,
            ..Default::default()
        };
        let inv = self.channel_manager.create_bolt11_invoice(params).map_err(|e| NodeError::Invalid(format!("cannot create the invoice: {e:?}")))?;
        let created_at = inv.duration_since_epoch().as_secs();
        let rec = InvoiceRecord {
            bolt11: inv.to_string(),
            payment_hash: inv.payment_hash().to_byte_array(),
            amount_msat,
            description: description.to_string(),
            created_at,
            expires_at: created_at + inv.expiry_time().as_secs(),
            settled: false,
            amount_received_msat: 0,
            settled_at: 0,
            preimage: None,
            hold: hold_hash.is_some(),
            accepted: false,
            canceled: false,
        };
        self.records.put(&inv.payment_hash().to_byte_array(), &rec)?;
        tracing::info!(payment_hash = %hex(&rec.payment_hash), amount_msat, expires = %crate::store::utc(rec.expires_at), "invoice created");
        Ok(rec)
    }

    /// A payment to us was claimed: settle its invoice (or record the keysend).
    pub fn settled(&self, hash: PaymentHash, amount_msat: u64, preimage: Option<PaymentPreimage>) -> Result<(), NodeError> {
        self.records.update_replayed(&hash.0, |rec| Some(settle(rec, hash, amount_msat, preimage, now_secs())))?;
        Ok(())
    }

    /// Decides what to do with a payment that arrived for `hash` whose preimage LDK does not know:
    /// hold it (true) if it pays an open hold invoice, which is then ACCEPTED.
    pub fn hold_payment(&self, hash: PaymentHash, amount_msat: u64) -> Result<bool, NodeError> {
        let mut held = false;
        self.records.update_replayed(&hash.0, |rec| {
            let mut rec = rec?;
            if rec.hold && !rec.canceled && !rec.settled {
                rec.accepted = true;
                rec.amount_received_msat = amount_msat;
                held = true;
            }
            Some(rec)
        })?;
        Ok(held)
    }

    /// True when the invoice for `hash` was canceled: its payments are failed back, never claimed.
    pub fn is_canceled(&self, hash: PaymentHash) -> Result<bool, NodeError> {
        Ok(self.records.get(&hash.0)?.is_some_and(|r| r.canceled))
    }

    /// Claims the payment held by a hold invoice.
    pub fn settle(&self, preimage: &str) -> Result<(), NodeError> {
        let preimage = PaymentPreimage(parse_hex32(preimage, "preimage")?);
        let hash = PaymentHash(bitcoin::hashes::sha256::Hash::hash(&preimage.0).to_byte_array());
        let rec = self.records.get(&hash.0)?.ok_or_else(|| NodeError::NotFound(format!("no invoice with payment hash {}", hex(&hash.0))))?;
        match rec.state() {
            _ if !rec.hold => Err(InvoiceError::NotHold.into()),
            InvoiceState::Accepted => {
                self.channel_manager.claim_funds(preimage);
                tracing::info!(payment_hash = %hex(&rec.payment_hash), "hold invoice settled");
                Ok(())
            }
            state => Err(InvoiceError::NotHolding(format!("{state:?}")).into()),
        }
    }

    /// Cancels an invoice: a held payment fails back to the payer, later ones are refused.
    pub fn cancel(&self, hash: &str) -> Result<(), NodeError> {
        let h = parse_payment_hash(hash)?;
        let mut refused = None;
        self.records.update(&h.0, |rec| {
            let Some(mut rec) = rec else {
                refused = Some(NodeError::NotFound(format!("no invoice with payment hash {hash}")));
                return None;
            };
            if rec.settled {
                refused = Some(InvoiceError::AlreadySettled.into());
                return None;
            }
            rec.canceled = true;
            Some(rec)
        })?;
        if let Some(e) = refused {
            return Err(e);
        }
        self.channel_manager.fail_htlc_backwards(&h);
        tracing::info!(payment_hash = %hash, "invoice canceled");
        Ok(())
    }

    pub fn lookup(&self, hash: &str) -> Result<InvoiceRecord, NodeError> {
        let h = parse_payment_hash(hash)?;
        self.records.get(&h.0)?.ok_or_else(|| NodeError::NotFound(format!("no invoice with payment hash {hash}")))
    }

    /// Every invoice, oldest first.
    pub fn list(&self) -> Result<Vec<InvoiceRecord>, NodeError> {
        let mut all = self.records.all()?;
        all.sort_by_key(|r| r.created_at);
        Ok(all)
    }
}

/// The record of `hash` once a payment for it was claimed at `now` (a keysend has no invoice: its record is
/// made here). Idempotent: LDK hands a claim over again when the node stopped before it was recorded as
/// handled, and a settled invoice keeps the time it settled.
fn settle(rec: Option<InvoiceRecord>, hash: PaymentHash, amount_msat: u64, preimage: Option<PaymentPreimage>, now: u64) -> InvoiceRecord {
    let mut rec = rec.unwrap_or_else(|| InvoiceRecord {
        bolt11: String::new(),
        payment_hash: hash.0,
        amount_msat,
        description: "keysend".into(),
        created_at: now,
        expires_at: now,
        settled: false,
        amount_received_msat: 0,
        settled_at: 0,
        preimage: None,
        hold: false,
        accepted: false,
        canceled: false,
    });
    if rec.settled {
        return rec;
    }
    rec.settled = true;
    rec.amount_received_msat = amount_msat;
    rec.settled_at = now;
    rec.preimage = preimage.map(|p| p.0);
    rec
}

/// Whether `inv` has expired by now.
pub fn is_expired(inv: &Bolt11Invoice) -> bool {
    inv.would_expire(Duration::from_secs(now_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invoice record as lanes wrote it before typed ids (hex strings, "" for no preimage) reads unchanged.
    #[test]
    fn invoice_records_written_before_typed_ids_read() {
        let old = r#"{"bolt11":"lnbcrt1x","payment_hash":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","amount_msat":5000,"description":"coffee","created_at":1700000000,"expires_at":1700003600,"settled":false,"amount_received_msat":0,"settled_at":0,"preimage":""}"#;
        let rec: InvoiceRecord = crate::record::decode(old.as_bytes()).unwrap();
        assert_eq!((rec.payment_hash, rec.preimage, rec.hold, rec.amount_msat), ([10; 32], None, false, 5000));
        let settled = old.replace(r#""preimage":"""#, &format!(r#""preimage":"{}""#, "0b".repeat(32)));
        assert_eq!(crate::record::decode::<InvoiceRecord>(settled.as_bytes()).unwrap().preimage, Some([11; 32]));
    }

    /// A claim LDK replays after a restart leaves a settled invoice as it was (it used to move settled_at to
    /// the restart).
    #[test]
    fn a_replayed_claim_keeps_the_time_the_invoice_settled() {
        let hash = PaymentHash([1; 32]);
        let first = settle(None, hash, 5_000, Some(PaymentPreimage([2; 32])), 1_000);
        assert_eq!((first.settled, first.settled_at, first.amount_received_msat, first.description.as_str()), (true, 1_000, 5_000, "keysend"));
        let replayed = settle(Some(first.clone()), hash, 5_000, Some(PaymentPreimage([2; 32])), 9_000);
        assert_eq!((replayed.settled_at, replayed.preimage), (1_000, Some([2; 32])));
    }

    #[test]
    fn malformed_invoices() {
        assert!(matches!(decode("lnbcrt1garbage", bitcoin::Network::Regtest), Err(NodeError::Invalid(m)) if m.contains("malformed")));
        assert!(matches!(decode("", bitcoin::Network::Regtest), Err(NodeError::Invalid(_))));
    }
}
