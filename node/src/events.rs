//! Reacts to LDK's events, and tells subscribers what happened.
//!
//! Owns: one log line per state change an operator cares about, the actions LDK asks of us (fund a
//! channel, claim a payment, sweep outputs), updating the services' records, and what the event bus
//! carries. Must never: block for long, or drop an event it could not handle: it returns
//! `ReplayEvent` so LDK hands the event over again (LDK persists events until they are handled).
use std::sync::Arc;

use lightning::events::{Event, PaymentPurpose, ReplayEvent};
use lightning::util::config::UserConfig;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::logger::LdkTracing;
use lanes_channel::types::ChannelManager;
use lanes_wallet::OnchainWallet;

use crate::announce::Announcer;
use crate::bus::{EventBus, NodeEvent};
use crate::channels::Channels;
use crate::forwards::Forwards;
use crate::health::Health;
use crate::invoice::Invoices;
use crate::offers::Offers;
use crate::payments::{PaymentKind, Payments};
use crate::peers::Peers;
use crate::routes::Learning;
use crate::sweep::{output_value, Sweeper};

/// Handles LDK's events with the services they concern.
pub struct EventHandler {
    pub channels: Arc<Channels>,
    pub invoices: Arc<Invoices>,
    pub offers: Arc<Offers>,
    pub payments: Arc<Payments>,
    pub splices: Arc<crate::splice::Splices>,
    pub forwards: Arc<Forwards>,
    pub peers: Arc<Peers>,
    pub learning: Arc<Learning>,
    pub announcer: Arc<Announcer>,
    pub bus: Arc<EventBus>,
    pub health: Health,
    pub channel_manager: Arc<ChannelManager>,
    pub bitcoind: Arc<BitcoindClient>,
    pub wallet: Arc<OnchainWallet>,
    pub sweeper: Arc<Sweeper>,
    pub bumper: Arc<crate::anchors::Bumper>,
    pub funding_watch: Arc<crate::funding_watch::FundingWatch>,
    pub logger: Arc<LdkTracing>,
    pub user_config: UserConfig,
    /// Peers whose inbound channels are accepted as zero-conf (`--trusted-peer-0conf`).
    pub trusted_0conf: Vec<bitcoin::secp256k1::PublicKey>,
}

impl EventHandler {
    /// Handles one LDK event.
    pub async fn handle(&self, event: Event) -> Result<(), ReplayEvent> {
        match event {
            Event::FundingGenerationReady { temporary_channel_id, counterparty_node_id, channel_value_satoshis, output_script, user_channel_id } => {
                self.channels.fund(temporary_channel_id, counterparty_node_id, channel_value_satoshis, output_script, user_channel_id).await;
            }
            Event::ChannelPending { channel_id, counterparty_node_id, funding_txo, .. } => {
                tracing::info!(%channel_id, peer = %counterparty_node_id, funding = %funding_txo, "channel pending");
                crate::funding_watch::FundingWatch::learn_soon(&self.funding_watch, funding_txo.txid);
                self.bus.publish(NodeEvent { kind: "channel_pending", node_id: counterparty_node_id.to_string(), channel_id: channel_id.to_string(), detail: funding_txo.to_string(), ..Default::default() });
            }
            Event::ChannelReady { channel_id, counterparty_node_id, funding_txo, .. }
                if self.splices.locked(channel_id, funding_txo) =>
            {
                tracing::info!(%channel_id, peer = %counterparty_node_id, funding = %shown(funding_txo), "splice locked: the channel moved onto its new funding");
                self.bus.publish(NodeEvent { kind: "splice_locked", node_id: counterparty_node_id.to_string(), channel_id: channel_id.to_string(), ..Default::default() });
            }
            Event::SplicePending { channel_id, counterparty_node_id, new_funding_txo, .. } => {
                tracing::info!(%channel_id, peer = %counterparty_node_id, funding = %new_funding_txo, "splice pending: the new funding waits for its confirmations");
                // The splice transaction was just handed to the broadcaster (or is in the mempool).
                let new_value = self.bitcoind.known_transaction(new_funding_txo.txid).await.and_then(|tx| tx.output.get(new_funding_txo.vout as usize).map(|o| o.value.to_sat()));
                if let Err(e) = self.splices.pending_on(channel_id, new_funding_txo, new_value) {
                    self.health.fail(format!("recording a pending splice failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "splice_pending", node_id: counterparty_node_id.to_string(), channel_id: channel_id.to_string(), detail: new_funding_txo.to_string(), ..Default::default() });
            }
            Event::SpliceFailed { channel_id, counterparty_node_id, abandoned_funding_txo, .. } => {
                tracing::warn!(%channel_id, peer = %counterparty_node_id, "splice failed: the channel stays on its funding");
                if let Some(txo) = abandoned_funding_txo {
                    // Coins of ours it would have spent are spendable again.
                    if let Err(e) = self.wallet.forget_tx(txo.txid) {
                        tracing::error!(%channel_id, error = %e, "could not release the failed splice's inputs");
                    }
                }
                self.splices.failed(channel_id, "the peer refused it or the negotiation broke off (see both nodes' logs)");
            }
            Event::FundingTransactionReadyForSigning { channel_id, counterparty_node_id, unsigned_transaction, .. } => {
                self.splices.sign(channel_id, counterparty_node_id, unsigned_transaction);
            }
            Event::ChannelReady { channel_id, counterparty_node_id, .. } => {
                tracing::info!(%channel_id, peer = %counterparty_node_id, "channel opened");
                // Let the network learn our alias and address as soon as we have a channel to show.
                self.announcer.announce_node();
                self.bus.publish(NodeEvent { kind: "channel_opened", node_id: counterparty_node_id.to_string(), channel_id: channel_id.to_string(), ..Default::default() });
            }
            Event::ChannelClosed { channel_id, reason, counterparty_node_id, channel_capacity_sats, channel_funding_txo, user_channel_id, .. } => {
                if channel_funding_txo.is_none() {
                    // Closed before it was funded: an open waiting for it (alone or in a batch) fails now.
                    self.channels.unfunded_channel_closed(user_channel_id, &reason);
                }
                let peer = counterparty_node_id.map(|p| p.to_string()).unwrap_or_default();
                if let Some(peer_rate) = refused_peer_fee(&reason) {
                    // The peer's fee rate was above what our dust exposure cap allows: say so with the numbers,
                    // so an operator can raise --max-fee-rate-fallback or the dust cap if the peer was honest.
                    let ours = lightning::chain::chaininterface::FeeEstimator::get_est_sat_per_1000_weight(
                        &*self.bitcoind,
                        lightning::chain::chaininterface::ConfirmationTarget::MaximumFeeEstimate,
                    );
                    tracing::warn!(%channel_id, peer = %peer, peer_sat_per_kw = peer_rate, our_max_sat_per_kw = ours, dust_policy = ?self.user_config.channel_config.max_dust_htlc_exposure, %reason, "peer's update_fee refused: it would over-expose the channel to dust");
                }
                let funding = channel_funding_txo.map(|o| o.into_bitcoin_outpoint());
                // The funding watch records a double spend before it has LDK close the channel.
                let double_spent = funding.and_then(|f| self.funding_watch.dead(f)).map(|d| d.local_balance_msat);
                tracing::info!(%channel_id, peer = %peer, %reason, funding_double_spent = double_spent.is_some(), "channel closed");
                self.channels.closed(channel_id, &reason, counterparty_node_id, channel_capacity_sats, funding, double_spent);
                // The watch may have recorded the double spend between the look above and this record's write
                // (the peer closed first): its mark then found no record to mark. Look again now that it exists;
                // if the watch records it later still, its mark finds this record.
                if double_spent.is_none() {
                    if let Some(d) = funding.and_then(|f| self.funding_watch.dead(f)) {
                        self.channels.funding_double_spent(channel_id, d.local_balance_msat);
                    }
                }
                self.bus.publish(NodeEvent {
                    kind: "channel_closed",
                    node_id: counterparty_node_id.map(|p| p.to_string()).unwrap_or_default(),
                    channel_id: channel_id.to_string(),
                    detail: reason.to_string(),
                    ..Default::default()
                });
            }
            Event::DiscardFunding { channel_id, funding_info } => {
                tracing::warn!(%channel_id, "channel funding discarded");
                if let lightning::events::FundingInfo::Tx { transaction } = funding_info {
                    if let Err(e) = self.wallet.forget_tx(transaction.compute_txid()) {
                        tracing::error!(%channel_id, error = %e, "could not release the discarded funding's inputs");
                    }
                }
            }
            Event::OpenChannelRequest { temporary_channel_id, counterparty_node_id, funding_satoshis, channel_type, .. } => {
                // Inbound channels are accepted by hand only because LDK requires it for anchor channels. Like
                // LND, we accept them even when the wallet cannot cover their fee-bumping reserve, and say so:
                // our side of such a channel could not be closed on-chain in time without wallet coins.
                if channel_type.supports_anchors_zero_fee_htlc_tx() {
                    let (need, have) = (self.channels.anchor_reserve_sat(1), self.wallet.balance().confirmed);
                    if have < need {
                        tracing::warn!(peer = %counterparty_node_id, reserve_sat = need, wallet_sat = have, "accepting an anchor channel while the wallet holds less than the reserve that bumps its closing fees: fund the wallet");
                    }
                }
                // A trusted peer's channel is usable at once, before its funding confirms: we take its word
                // that it will not double-spend the funding (`--trusted-peer-0conf`).
                let zero_conf = self.trusted_0conf.contains(&counterparty_node_id);
                let accepted = match zero_conf {
                    true => self.channel_manager.accept_inbound_channel_from_trusted_peer_0conf(&temporary_channel_id, &counterparty_node_id, 0, None),
                    false => self.channel_manager.accept_inbound_channel(&temporary_channel_id, &counterparty_node_id, 0, None),
                };
                match accepted {
                    Ok(()) => tracing::info!(peer = %counterparty_node_id, capacity_sat = funding_satoshis, anchors = channel_type.supports_anchors_zero_fee_htlc_tx(), zero_conf, "inbound channel accepted"),
                    Err(e) => tracing::warn!(peer = %counterparty_node_id, error = ?e, "inbound channel could not be accepted"),
                }
            }
            Event::PaymentClaimable { payment_hash, purpose, amount_msat, claim_deadline, .. } => {
                lanes_channel::test_knobs::panic_on_payment_claimable();
                // A payment for one of our BOLT12 offers: the offer's policy (disabled, single use) decides first.
                if let PaymentPurpose::Bolt12OfferPayment { payment_context, .. } = &purpose {
                    let offer_id = payment_context.offer_id.0;
                    if let Some(why) = self.offers.may_claim(&offer_id, &payment_hash.0).map_err(|_| ReplayEvent())? {
                        tracing::warn!(payment_hash = %payment_hash, offer_id = %crate::ids::hex(&offer_id), amount_msat, reason = %why, "offer payment refused: failing it back");
                        self.channel_manager.fail_htlc_backwards(&payment_hash);
                        return Ok(());
                    }
                }
                let canceled = self.invoices.is_canceled(payment_hash).map_err(|_| ReplayEvent())?;
                match purpose.preimage() {
                    // An invoice we made, or keysend: claiming is what settles it.
                    Some(preimage) if !canceled => self.channel_manager.claim_funds(preimage),
                    // A hold invoice: the caller has the preimage and settles or cancels later.
                    None if self.invoices.hold_payment(payment_hash, amount_msat).map_err(|_| ReplayEvent())? => {
                        tracing::info!(payment_hash = %payment_hash, amount_msat, claim_deadline_height = %shown(claim_deadline), "payment held for a hold invoice");
                        self.bus.publish(NodeEvent { kind: "invoice_accepted", payment_hash: payment_hash.to_string(), amount_msat, ..Default::default() });
                    }
                    _ => {
                        tracing::warn!(payment_hash = %payment_hash, amount_msat, canceled, "payment not ours to claim: failing it back");
                        self.channel_manager.fail_htlc_backwards(&payment_hash);
                    }
                }
            }
            Event::PaymentClaimed { payment_hash, amount_msat, purpose: PaymentPurpose::Bolt12OfferPayment { payment_context, payment_preimage, .. }, .. } => {
                let offer_id = payment_context.offer_id.0;
                let fields = &payment_context.invoice_request;
                let payer_note = fields.payer_note_truncated.as_ref().map(|n| n.0.clone());
                tracing::info!(payment_hash = %payment_hash, amount_msat, offer_id = %crate::ids::hex(&offer_id), quantity = fields.quantity.unwrap_or(1), "offer payment received");
                let kind = PaymentKind::Bolt12Offer { offer: self.offers.offer_string(&offer_id).unwrap_or_default(), offer_id, payer_note, quantity: fields.quantity };
                // Keyed by payment hash: the event handed over again (after a restart) records nothing twice.
                if let Err(e) = self.payments.received(payment_hash, kind, amount_msat, payment_preimage) {
                    self.health.fail(format!("recording a received offer payment failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "offer_paid", payment_hash: payment_hash.to_string(), amount_msat, detail: crate::ids::hex(&offer_id), ..Default::default() });
            }
            Event::PaymentClaimed { payment_hash, amount_msat, purpose: PaymentPurpose::Bolt12RefundPayment { payment_preimage, .. }, .. } => {
                tracing::info!(payment_hash = %payment_hash, amount_msat, "refund payment received");
                let kind = PaymentKind::Bolt12Refund { refund: String::new(), payer_note: None };
                if let Err(e) = self.payments.received(payment_hash, kind, amount_msat, payment_preimage) {
                    self.health.fail(format!("recording a received refund failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "refund_received", payment_hash: payment_hash.to_string(), amount_msat, ..Default::default() });
            }
            Event::PaymentClaimed { payment_hash, amount_msat, purpose, .. } => {
                let keysend = matches!(purpose, PaymentPurpose::SpontaneousPayment(_));
                tracing::info!(payment_hash = %payment_hash, amount_msat, keysend, "payment received");
                if let Err(e) = self.invoices.settled(payment_hash, amount_msat, purpose.preimage()) {
                    self.health.fail(format!("recording a settled invoice failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "invoice_settled", payment_hash: payment_hash.to_string(), amount_msat, detail: if keysend { "keysend".into() } else { String::new() }, ..Default::default() });
            }
            Event::PaymentSent { payment_id, payment_preimage, payment_hash, fee_paid_msat, amount_msat, bolt12_invoice, .. } => {
                tracing::info!(payment_hash = %payment_hash, fee_msat = fee_paid_msat.unwrap_or(0), "payment sent");
                let invoice = match &bolt12_invoice {
                    Some(lightning::events::PaidBolt12Invoice::Bolt12Invoice(i)) => Some(i),
                    _ => None,
                };
                if let Err(e) = self.payments.succeeded(payment_id, payment_hash, payment_preimage, amount_msat, fee_paid_msat, invoice) {
                    self.health.fail(format!("recording a sent payment failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "payment_sent", payment_hash: payment_hash.to_string(), amount_msat: amount_msat.unwrap_or(0), ..Default::default() });
            }
            Event::PaymentFailed { payment_id, payment_hash, reason } => {
                let mut why = reason.map(failure_words).unwrap_or_else(|| "unknown reason".into());
                // Which hop failed it and why, when a hop answered (LDK reports that only in its log).
                let hops = payment_hash.map(|h| self.logger.take_onion_failures(&h)).unwrap_or_default();
                if let Some(last) = hops.last() {
                    why = format!("{why}; last failure: {}", last.words());
                }
                let (failing_node, failure_code) = hops.last().map(|f| (f.node_id.clone(), format!("{:#06x} {}", f.code, f.name))).unwrap_or_default();
                tracing::info!(payment_id = %payment_id, payment_hash = %payment_hash.map(|h| h.to_string()).unwrap_or_default(), reason = %why, failing_node, failure_code, "payment failed");
                if let Err(e) = self.payments.failed(payment_id, &why) {
                    self.health.fail(format!("recording a failed payment failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "payment_failed", payment_hash: payment_hash.map(|h| h.to_string()).unwrap_or_default(), detail: why, ..Default::default() });
            }
            Event::PaymentPathFailed { path, short_channel_id, .. } => {
                // The router learns where liquidity was missing (LDK retries with the updated scores).
                if let Some(scid) = short_channel_id {
                    self.learning.path_failed(&path, scid);
                }
            }
            Event::PaymentPathSuccessful { payment_id, path, .. } => {
                self.learning.path_succeeded(&path);
                if let Err(e) = self.payments.path_succeeded(payment_id, &path) {
                    tracing::warn!(error = %e, "recording a payment path failed");
                }
            }
            Event::PaymentForwarded { prev_channel_id, next_channel_id, total_fee_earned_msat, outbound_amount_forwarded_msat, .. } => {
                let fee = total_fee_earned_msat.unwrap_or(0);
                let out = outbound_amount_forwarded_msat.unwrap_or(0);
                tracing::info!(from = %shown(prev_channel_id), to = %shown(next_channel_id), amount_msat = out, fee_msat = fee, "payment forwarded");
                if let Err(e) = self.forwards.record(prev_channel_id, next_channel_id, out, fee) {
                    self.health.fail(format!("recording a forward failed: {e}"));
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent {
                    kind: "payment_forwarded",
                    channel_id: next_channel_id.map(|c| c.to_string()).unwrap_or_default(),
                    amount_msat: out,
                    detail: format!("fee {fee} msat"),
                    ..Default::default()
                });
            }
            Event::SpendableOutputs { outputs, channel_id } => {
                let total: u64 = outputs.iter().map(output_value).sum();
                tracing::info!(channel_id = %shown(channel_id), outputs = outputs.len(), amount_sat = total, "sweeping channel outputs to the wallet");
                // Static outputs already pay a wallet script (see lanes_channel::keys): BDK sees them; the
                // sweeper only spends the ones that need channel keys (delayed to_local, HTLC outputs).
                if self.sweeper.track_spendable_outputs(outputs, channel_id, true, None).is_err() {
                    tracing::error!(channel_id = %shown(channel_id), "the sweeper could not persist the outputs; will retry");
                    return Err(ReplayEvent());
                }
                self.bus.publish(NodeEvent { kind: "onchain_sweep", channel_id: channel_id.map(|c| c.to_string()).unwrap_or_default(), amount_msat: total * 1000, ..Default::default() });
            }
            Event::ConnectionNeeded { node_id, addresses } => {
                if let Some(addr) = addresses.first() {
                    let peers = Arc::clone(&self.peers);
                    let addr = addr.to_string();
                    tokio::spawn(async move {
                        let _ = peers.connect(node_id, &addr, false).await;
                    });
                }
            }
            Event::BumpTransaction(lightning::events::bump_transaction::BumpTransactionEvent::ChannelClose { channel_id, commitment_tx, .. })
                if commitment_tx.input.first().is_some_and(|i| self.funding_watch.dead(i.previous_output).is_some()) =>
            {
                // Its funding was double-spent: the commitment can never confirm, so no wallet coin pays for it.
                tracing::debug!(%channel_id, "no fee bump for the commitment of a double-spent funding");
            }
            Event::BumpTransaction(bump) => {
                // A closing anchor channel needs its fee now: LDK builds the bump from wallet coins.
                tracing::info!(event = ?bump_kind(&bump), "paying a closing channel's fee from the wallet");
                self.bumper.handle_event(&bump);
            }
            Event::HTLCHandlingFailed { prev_channel_id, failure_type, failure_reason } => {
                use lightning::events::{HTLCHandlingFailureReason as Why, HTLCHandlingFailureType as What};
                let what = match failure_type {
                    What::Forward { node_id, channel_id } => {
                        format!("forward to {} over channel {channel_id}", node_id.map(|n| n.to_string()).unwrap_or_else(|| "an unknown peer".into()))
                    }
                    What::UnknownNextHop { requested_forward_scid } | What::InvalidForward { requested_forward_scid } => {
                        format!("forward over unknown channel {}", crate::graph::format_scid(requested_forward_scid))
                    }
                    What::InvalidOnion => "an onion we could not read".into(),
                    What::Receive { payment_hash } => format!("receive of payment {payment_hash}"),
                };
                let why = match failure_reason {
                    Some(Why::Local { reason }) => format!("{reason:?}"),
                    Some(Why::Downstream) => "failed by the next hop".into(),
                    None => "unknown".into(),
                };
                tracing::info!(channel_id = %prev_channel_id, htlc = %what, reason = %why, "HTLC failed back");
            }
            other => tracing::debug!(event = ?other, "lightning event"),
        }
        Ok(())
    }
}

/// An optional id for a log line: the id itself (hex), or "unknown".
fn shown<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into())
}

/// The fee rate (sat per 1000 weight) of a peer's update_fee that made LDK close the channel, if that was why.
fn refused_peer_fee(reason: &lightning::events::ClosureReason) -> Option<u64> {
    let text = reason.to_string();
    let rest = &text[text.find("update_fee with a feerate (")? + "update_fee with a feerate (".len()..];
    rest[..rest.find(')')?].parse().ok()
}

fn bump_kind(b: &lightning::events::bump_transaction::BumpTransactionEvent) -> String {
    use lightning::events::bump_transaction::BumpTransactionEvent as B;
    match b {
        B::ChannelClose { channel_id, commitment_tx, .. } => format!("commitment {} of channel {channel_id}", commitment_tx.compute_txid()),
        B::HTLCResolution { channel_id, htlc_descriptors, .. } => format!("{} HTLC claim(s) of channel {channel_id}", htlc_descriptors.len()),
    }
}

/// Why a payment failed, in words an operator can act on.
fn failure_words(r: lightning::events::PaymentFailureReason) -> String {
    use lightning::events::PaymentFailureReason as R;
    match r {
        R::RecipientRejected => "the recipient rejected it (unknown or already paid invoice, wrong amount)".into(),
        R::UserAbandoned => "abandoned".into(),
        R::RetriesExhausted => "no route succeeded before the retry limit".into(),
        R::PaymentExpired => "the invoice expired before a route succeeded".into(),
        R::RouteNotFound => "no route to the destination with enough capacity".into(),
        R::UnexpectedError => "unexpected error (see the node log)".into(),
        R::InvoiceRequestExpired => "no invoice came for the offer in time (the recipient did not answer our invoice request)".into(),
        R::InvoiceRequestRejected => "the recipient refused our invoice request".into(),
        R::BlindedPathCreationFailed => "no blinded reply path could be made (we need a peer with a public channel)".into(),
        R::UnknownRequiredFeatures => "the invoice requires features lanes does not know".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning::events::ClosureReason;

    #[test]
    fn a_refused_peer_fee_is_recognised_with_its_rate() {
        let err = "Peer sent update_fee with a feerate (56250) which may over-expose us to dust-in-flight on our own transactions (totaling 57605000 msat)".to_string();
        assert_eq!(refused_peer_fee(&ClosureReason::ProcessingError { err }), Some(56_250));
        assert_eq!(refused_peer_fee(&ClosureReason::LocallyInitiatedCooperativeClosure), None);
    }
}
