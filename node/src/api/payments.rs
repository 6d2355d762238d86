//! Payment calls: PayInvoice, SendKeysend, ListPayments.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;
use std::time::Duration;

use lanes_proto::v1::*;

use super::convert;
use crate::peers::parse_node_id;
use crate::{Node, NodeError};

/// Seconds as a wait, 0 meaning the default.
fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s as u64))
}

pub async fn pay_invoice(node: Arc<Node>, r: PayInvoiceRequest) -> Result<Payment, NodeError> {
    let rec = node.payments().pay_invoice(&r.bolt11, r.amount_msat, secs(r.timeout_secs), secs(r.retry_secs)).await?;
    Ok(convert::payment(rec))
}

pub async fn keysend(node: Arc<Node>, r: SendKeysendRequest) -> Result<Payment, NodeError> {
    let dest = parse_node_id(&r.node_id)?;
    Ok(convert::payment(node.payments().keysend(dest, r.amount_msat, secs(r.timeout_secs)).await?))
}

pub async fn list(node: Arc<Node>, _: ListPaymentsRequest) -> Result<ListPaymentsResponse, NodeError> {
    Ok(ListPaymentsResponse { payments: node.payments().list()?.into_iter().map(convert::payment).collect() })
}
