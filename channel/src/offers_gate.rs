//! The BOLT12 messages of onion messages, handed to LDK after one check of ours: an invoice request for
//! an offer the node no longer takes (disabled, or single-use and paid) is answered with an invoice error,
//! as CLN does, instead of an invoice whose payment would then be failed back.
//!
//! It also tells the node of every invoice LDK sends, so a payment received for it keeps the invoice.
//!
//! Owns: that check's place in the message flow. Must never: decide which offers are taken (the node's
//! offers service does, through [`OffersGate::set_judge`]), or handle any other message than LDK would.
use std::sync::{Arc, OnceLock};

use lightning::blinded_path::message::OffersContext;
use lightning::offers::invoice::Bolt12Invoice;
use lightning::offers::invoice_error::InvoiceError;
use lightning::offers::invoice_request::InvoiceRequest;
use lightning::onion_message::messenger::{MessageSendInstructions, Responder, ResponseInstruction};
use lightning::onion_message::offers::{OffersMessage, OffersMessageHandler};

use crate::types::ChannelManager;

/// Says why an invoice request must be refused (None: LDK answers it).
pub type Judge = Box<dyn Fn(&InvoiceRequest) -> Option<String> + Send + Sync>;
/// Told of every invoice LDK sends in answer to an invoice request.
pub type InvoiceObserver = Box<dyn Fn(&Bolt12Invoice) + Send + Sync>;

/// LDK's ChannelManager as the onion messenger's BOLT12 handler, behind the node's judge.
pub struct OffersGate {
    channel_manager: Arc<ChannelManager>,
    judge: OnceLock<Judge>,
    observer: OnceLock<InvoiceObserver>,
}

impl OffersGate {
    pub fn new(channel_manager: Arc<ChannelManager>) -> Self {
        Self { channel_manager, judge: OnceLock::new(), observer: OnceLock::new() }
    }

    /// Sets who judges invoice requests (once; until then LDK answers them all).
    pub fn set_judge(&self, judge: Judge) {
        let _ = self.judge.set(judge);
    }

    /// Sets who is told of the invoices LDK sends (once): the node records them with the payments they bring.
    pub fn set_invoice_observer(&self, observer: InvoiceObserver) {
        let _ = self.observer.set(observer);
    }
}

impl OffersMessageHandler for OffersGate {
    fn handle_message(&self, message: OffersMessage, context: Option<OffersContext>, responder: Option<Responder>) -> Option<(OffersMessage, ResponseInstruction)> {
        if let OffersMessage::InvoiceRequest(request) = &message {
            if let Some(why) = self.judge.get().and_then(|judge| judge(request)) {
                tracing::info!(reason = %why, payer = %request.payer_signing_pubkey(), "invoice request refused");
                return responder.map(|r| (OffersMessage::InvoiceError(InvoiceError::from_string(why)), r.respond()));
            }
        }
        let answer = self.channel_manager.handle_message(message, context, responder);
        if let (Some((OffersMessage::Invoice(invoice), _)), Some(observer)) = (&answer, self.observer.get()) {
            observer(invoice);
        }
        answer
    }

    fn release_pending_messages(&self) -> Vec<(OffersMessage, MessageSendInstructions)> {
        self.channel_manager.release_pending_messages()
    }
}
