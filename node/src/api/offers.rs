//! BOLT12 calls: CreateOffer, ListOffers, DisableOffer, DecodeOffer, PayOffer, CreateRefund, RequestRefundPayment.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;
use std::time::Duration;

use lanes_proto::v1::*;

use super::{convert, opt};
use crate::offers::NewOffer;
use crate::{Node, NodeError};

fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s as u64))
}

pub async fn create(node: Arc<Node>, r: CreateOfferRequest) -> Result<Offer, NodeError> {
    let new = NewOffer {
        amount_msat: r.amount_msat,
        description: r.description,
        expiry_secs: r.expiry_secs,
        quantity_max: r.quantity_max,
        quantity_unbounded: r.quantity_unbounded,
        single_use: r.single_use,
        issuer: r.issuer,
    };
    Ok(convert::offer(node.offers().create(new)?))
}

pub async fn list(node: Arc<Node>, _: ListOffersRequest) -> Result<ListOffersResponse, NodeError> {
    Ok(ListOffersResponse { offers: node.offers().list()?.into_iter().map(convert::offer).collect() })
}

pub async fn disable(node: Arc<Node>, r: DisableOfferRequest) -> Result<Offer, NodeError> {
    Ok(convert::offer(node.offers().disable(&r.offer_id)?))
}

pub async fn decode(node: Arc<Node>, r: DecodeOfferRequest) -> Result<DecodeOfferResponse, NodeError> {
    Ok(convert::decoded_offer(node.offers().describe(&r.offer)?))
}

pub async fn pay(node: Arc<Node>, r: PayOfferRequest) -> Result<Payment, NodeError> {
    let rec = node.offers().pay(&r.offer, r.amount_msat, r.quantity, opt(r.payer_note), secs(r.timeout_secs), secs(r.retry_secs)).await?;
    Ok(convert::payment(rec))
}

pub async fn create_refund(node: Arc<Node>, r: CreateRefundRequest) -> Result<CreateRefundResponse, NodeError> {
    let (rec, expires_at) = node.payments().create_refund(r.amount_msat, &r.description, r.expiry_secs, opt(r.payer_note))?;
    let payment = convert::payment(rec);
    Ok(CreateRefundResponse { refund: payment.offer, payment_id: payment.payment_id, expires_at })
}

pub async fn request_refund_payment(node: Arc<Node>, r: RequestRefundPaymentRequest) -> Result<RequestRefundPaymentResponse, NodeError> {
    let (rec, invoice) = node.payments().request_refund_payment(&r.refund)?;
    Ok(RequestRefundPaymentResponse { payment_hash: crate::ids::hex(&rec.id), amount_msat: rec.amount_msat, invoice })
}
