//! The BOLT12 messages of onion messages, handed to LDK after one check of ours: an invoice request for
//! an offer the node no longer takes (disabled, or single-use and paid) is answered with an invoice error,
//! as CLN does, instead of an invoice whose payment would then be failed back.
//!
//! Owns: that check's place in the message flow. Must never: decide which offers are taken (the node's
//! offers service does, through [`OffersGate::set_judge`]), or handle any other message than LDK would.
use std::sync::{Arc, OnceLock};

use lightning::blinded_path::message::OffersContext;
use lightning::offers::invoice_error::InvoiceError;
use lightning::offers::invoice_request::InvoiceRequest;
use lightning::onion_message::messenger::{MessageSendInstructions, Responder, ResponseInstruction};
use lightning::onion_message::offers::{OffersMessage, OffersMessageHandler};

use crate::types::ChannelManager;

/// Says why an invoice request must be refused (None: LDK answers it).
pub type Judge = Box<dyn Fn(&InvoiceRequest) -> Option<String> + Send + Sync>;

/// LDK's ChannelManager as the onion messenger's BOLT12 handler, behind the node's judge.
pub struct OffersGate {
    channel_manager: Arc<ChannelManager>,
    judge: OnceLock<Judge>,
}

impl OffersGate {
    pub fn new(channel_manager: Arc<ChannelManager>) -> Self {
        Self { channel_manager, judge: OnceLock::new() }
    }

    /// Sets who judges invoice requests (once; until then LDK answers them all).
    pub fn set_judge(&self, judge: Judge) {
        let _ = self.judge.set(judge);
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
        self.channel_manager.handle_message(message, context, responder)
    }

    fn release_pending_messages(&self) -> Vec<(OffersMessage, MessageSendInstructions)> {
        self.channel_manager.release_pending_messages()
    }
}
