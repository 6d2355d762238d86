//! BOLT12 in a story's words: `carol.create_offer(50_000, "coffee")`, `alice.pay_offer(&offer.offer, 0)`,
//! `alice.create_refund(30_000)`, `carol.request_refund_payment(&refund)`.
//!
//! Owns thin calls over the gRPC API. As for invoices, calls a story expects to succeed panic with the node's
//! log tail when refused; payments return the status, since refusals are part of what tests check. Must
//! never decide anything about offers itself.
use lanes_proto::v1::{
    CreateOfferRequest, CreateRefundRequest, CreateRefundResponse, DecodeOfferRequest, DecodeOfferResponse, ListOffersRequest, ListPaymentsRequest, Offer,
    PayOfferRequest, Payment, RequestRefundPaymentRequest, RequestRefundPaymentResponse,
};

use crate::Node;

impl Node {
    /// CreateOffer for `amount_msat` per item (0: any amount) with `description`; panics if refused.
    pub async fn create_offer(&self, amount_msat: u64, description: &str) -> Offer {
        self.create_offer_with(CreateOfferRequest { amount_msat, description: description.into(), ..Default::default() }).await
    }

    /// CreateOffer with the whole request (expiry, quantity, single use); panics if refused.
    pub async fn create_offer_with(&self, req: CreateOfferRequest) -> Offer {
        let res = self.client().create_offer(req).await;
        self.ok("CreateOffer", res)
    }

    /// ListOffers.
    pub async fn offers(&self) -> Vec<Offer> {
        let res = self.client().list_offers(ListOffersRequest {}).await;
        self.ok("ListOffers", res).offers
    }

    /// The offer with this id, as ListOffers shows it now.
    pub async fn offer(&self, offer_id: &str) -> Offer {
        self.offers().await.into_iter().find(|o| o.offer_id == offer_id).unwrap_or_else(|| panic!("{} lists no offer {offer_id}", self.name()))
    }

    /// DecodeOffer of an offer or a refund: `Err` is the refusal.
    pub async fn decode_offer(&self, offer: &str) -> Result<DecodeOfferResponse, tonic::Status> {
        self.client().decode_offer(DecodeOfferRequest { offer: offer.into() }).await.map(tonic::Response::into_inner)
    }

    /// PayOffer with lanesd's defaults (amount from the offer when 0). `Ok` is the payment whatever its status
    /// (check it); `Err` is a refusal before anything was sent.
    pub async fn pay_offer(&self, offer: &str, amount_msat: u64) -> Result<Payment, tonic::Status> {
        self.pay_offer_with(PayOfferRequest { offer: offer.into(), amount_msat, ..Default::default() }).await
    }

    /// PayOffer with the whole request (quantity, payer note, timeout).
    pub async fn pay_offer_with(&self, req: PayOfferRequest) -> Result<Payment, tonic::Status> {
        self.client().pay_offer(req).await.map(tonic::Response::into_inner)
    }

    /// CreateRefund of `amount_msat`; panics if refused.
    pub async fn create_refund(&self, amount_msat: u64, description: &str) -> CreateRefundResponse {
        let req = CreateRefundRequest { amount_msat, description: description.into(), ..Default::default() };
        let res = self.client().create_refund(req).await;
        self.ok("CreateRefund", res)
    }

    /// RequestRefundPayment: `Err` is the refusal.
    pub async fn request_refund_payment(&self, refund: &str) -> Result<RequestRefundPaymentResponse, tonic::Status> {
        self.client().request_refund_payment(RequestRefundPaymentRequest { refund: refund.into() }).await.map(tonic::Response::into_inner)
    }

    /// ListPayments: outbound payments, and inbound BOLT12 ones.
    pub async fn payments(&self) -> Vec<Payment> {
        let res = self.client().list_payments(ListPaymentsRequest {}).await;
        self.ok("ListPayments", res).payments
    }

    /// The payment with this id, as ListPayments shows it now.
    pub async fn payment(&self, payment_id: &str) -> Option<Payment> {
        self.payments().await.into_iter().find(|p| p.payment_id == payment_id)
    }
}
