//! Invoice calls: AddInvoice, DecodeInvoice, ListInvoices, LookupInvoice, SettleInvoice, CancelInvoice.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;

use super::{convert, opt};
use crate::invoice::parse_payment_hash;
use crate::{Node, NodeError};

pub async fn add(node: Arc<Node>, r: AddInvoiceRequest) -> Result<AddInvoiceResponse, NodeError> {
    let hold = opt(r.payment_hash).map(|h| parse_payment_hash(&h)).transpose()?;
    let rec = node.invoices().add(r.amount_msat, &r.description, r.expiry_secs, hold)?;
    Ok(AddInvoiceResponse { bolt11: rec.bolt11, payment_hash: crate::ids::hex(&rec.payment_hash) })
}

pub async fn decode(node: Arc<Node>, r: DecodeInvoiceRequest) -> Result<DecodeInvoiceResponse, NodeError> {
    Ok(convert::decoded(node.invoices().describe(&r.bolt11)?))
}

pub async fn list(node: Arc<Node>, _: ListInvoicesRequest) -> Result<ListInvoicesResponse, NodeError> {
    Ok(ListInvoicesResponse { invoices: node.invoices().list()?.into_iter().map(convert::invoice).collect() })
}

pub async fn lookup(node: Arc<Node>, r: LookupInvoiceRequest) -> Result<Invoice, NodeError> {
    Ok(convert::invoice(node.invoices().lookup(&r.payment_hash)?))
}

pub async fn settle(node: Arc<Node>, r: SettleInvoiceRequest) -> Result<SettleInvoiceResponse, NodeError> {
    node.invoices().settle(&r.preimage)?;
    Ok(SettleInvoiceResponse {})
}

pub async fn cancel(node: Arc<Node>, r: CancelInvoiceRequest) -> Result<CancelInvoiceResponse, NodeError> {
    node.invoices().cancel(&r.payment_hash)?;
    Ok(CancelInvoiceResponse {})
}
