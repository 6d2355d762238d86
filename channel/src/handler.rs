//! The ChannelManager as the peer manager sees it: every channel message goes in and out through here.
//!
//! Owns: one ordering rule LDK leaves to the persister, one answer to a peer's repeated channel_reestablish,
//! and the test knobs that drop an announcement_signatures
//! ([`crate::test_knobs::DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV`]), send each channel_reestablish twice
//! ([`crate::test_knobs::SEND_CHANNEL_REESTABLISH_TWICE_ENV`]) or crash on a splice message
//! ([`crate::test_knobs::CRASH_ON_RECEIVING_ENV`]).
//!
//! The rule: a fundee's funding_signed waits until the new channel is durable. LDK sends funding_signed as
//! soon as it has handed the channel's first ChannelMonitor to the persister ("we can't lose money on a
//! transaction that we haven't accepted payment from yet"), while [`crate::persist::OrderedPersister`]
//! writes that monitor, and the ChannelManager listing the channel, a moment later. A kill -9 in between
//! left the funder with a broadcast funding transaction for a channel we no longer knew: on reconnecting we
//! answered its channel_reestablish with "no such channel", and the funder had to force-close, its money
//! locked behind the delay and paying the fees (and any amount it pushed to us lost to us, our keys for it
//! being in the monitor we never wrote). LND and CLN also store the channel before they send funding_signed.
//! So funding_signed for a channel whose first monitor is not yet on disk is held back and handed to the
//! peer manager on the first call after the flush that wrote it. A crash before then loses both the
//! channel and the signature: the funder never broadcasts and forgets the channel, nothing at stake.
//!
//! The answer: a channel_reestablish for a channel whose reestablish already came on the same connection is
//! logged (WARN) and dropped. LDK force-closes the channel on it ("Peer sent a loose channel_reestablish not
//! after reconnect"), and some peers send one: Electrum 4.8 after a crossed dial (its superseded connection,
//! when it ends, marks the channel disconnected, and it reestablishes again on the live one; it then goes on
//! from the answer it already has), and peers with the "known bug in some peer software" that CLN's channeld
//! ignores such a repeat for, as lanes now does. Our channel state is unchanged by it; if the peer were really
//! out of step, its next update would fail LDK's checks and LDK would close with that reason. The first
//! reestablish of each channel after a (re)connection still goes to LDK, as does one for a channel LDK does not
//! have with this peer.
//!
//! Must never: hold, reorder or change any other message (the knobs aside, off unless set), or send a held
//! funding_signed to a peer that disconnected meanwhile (the funder dropped that channel).
use std::collections::HashSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::*;
use lightning::ln::types::ChannelId;
use lightning::types::features::{InitFeatures, NodeFeatures};

use crate::persist::OrderedPersister;
use crate::test_knobs::{DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV, SEND_CHANNEL_REESTABLISH_TWICE_ENV};
use crate::types::ChannelManager;

/// The ChannelManager as the peer manager's channel handler (see the module doc).
pub struct ChannelHandler {
    inner: Arc<ChannelManager>,
    persister: Arc<OrderedPersister>,
    /// funding_signed messages waiting for their channel's first monitor to be durable.
    held: Mutex<Vec<MessageSendEvent>>,
    drop_announcement_signatures: AtomicBool,
    /// Channels whose channel_reestablish came on their peer's current connection (see the module doc). Only
    /// channels LDK has with that peer, so a peer cannot grow it.
    reestablished: Mutex<HashSet<(PublicKey, ChannelId)>>,
    send_reestablish_twice: bool,
    /// Woken when HTLCs wait to be forwarded or received (see [`ChannelHandler::htlcs_pending`]).
    htlcs: Arc<tokio::sync::Notify>,
}

impl ChannelHandler {
    /// Reads the test knob from the environment.
    pub fn new(inner: Arc<ChannelManager>, persister: Arc<OrderedPersister>) -> Self {
        let drop = std::env::var(DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV).is_ok_and(|v| v == "1");
        if drop {
            tracing::warn!(knob = DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV, "TEST KNOB ON: the first announcement_signatures received will be dropped");
        }
        let twice = std::env::var(SEND_CHANNEL_REESTABLISH_TWICE_ENV).is_ok_and(|v| v == "1");
        if twice {
            tracing::warn!(knob = SEND_CHANNEL_REESTABLISH_TWICE_ENV, "TEST KNOB ON: every channel_reestablish will be sent twice");
        }
        ChannelHandler {
            inner,
            persister,
            held: Mutex::new(Vec::new()),
            drop_announcement_signatures: AtomicBool::new(drop),
            reestablished: Mutex::default(),
            send_reestablish_twice: twice,
            htlcs: Arc::default(),
        }
    }

    /// Notified when, after the peer manager took the messages to send, LDK has HTLCs waiting for
    /// `process_pending_htlc_forwards`: committed HTLCs to forward or receive. LDK's background processor
    /// calls it only on a random timer (about 50 ms, to blur forwarding timing), which every payment waited
    /// for at every hop; the node's HTLC task (`node/src/node.rs`) calls it at once, or after the
    /// operator's `--htlc-delay-ms`.
    pub fn htlcs_pending(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.htlcs)
    }

    /// A connection to `node` began or ended: none of its channels has been reestablished on the next one.
    fn new_connection(&self, node: PublicKey) {
        self.reestablished.lock().unwrap_or_else(|p| p.into_inner()).retain(|(n, _)| *n != node);
    }
}

/// Splits `events` into what may go to peers now and the funding_signed messages whose channel is not yet
/// durable (`durable` says whether a channel's first monitor is on disk). Held messages come first, in the
/// order they were held; every other message keeps its place.
fn release(held: Vec<MessageSendEvent>, events: Vec<MessageSendEvent>, durable: impl Fn(&ChannelId) -> bool) -> (Vec<MessageSendEvent>, Vec<MessageSendEvent>) {
    let (mut send, mut keep) = (Vec::new(), Vec::new());
    for ev in held.into_iter().chain(events) {
        match &ev {
            MessageSendEvent::SendFundingSigned { msg, .. } if !durable(&msg.channel_id) => keep.push(ev),
            _ => send.push(ev),
        }
    }
    (send, keep)
}

/// The test knob [`SEND_CHANNEL_REESTABLISH_TWICE_ENV`]: each channel_reestablish right after itself.
fn twice(events: Vec<MessageSendEvent>) -> Vec<MessageSendEvent> {
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        if let MessageSendEvent::SendChannelReestablish { node_id, msg } = &ev {
            tracing::warn!(knob = SEND_CHANNEL_REESTABLISH_TWICE_ENV, peer = %node_id, channel_id = %msg.channel_id, "TEST KNOB: sending this channel_reestablish twice");
            out.push(ev.clone());
        }
        out.push(ev);
    }
    out
}

impl Deref for ChannelHandler {
    type Target = ChannelManager;
    fn deref(&self) -> &ChannelManager {
        &self.inner
    }
}

macro_rules! delegate {
    ($($name:ident($msg:ty);)*) => {
        $(fn $name(&self, their_node_id: PublicKey, msg: $msg) {
            self.inner.$name(their_node_id, msg)
        })*
    };
}

impl ChannelMessageHandler for ChannelHandler {
    fn handle_announcement_signatures(&self, their_node_id: PublicKey, msg: &AnnouncementSignatures) {
        if self.drop_announcement_signatures.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                knob = DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV,
                peer = %their_node_id,
                channel_id = %msg.channel_id,
                "TEST KNOB: dropped an announcement_signatures"
            );
            return;
        }
        self.inner.handle_announcement_signatures(their_node_id, msg)
    }

    delegate! {
        handle_open_channel(&OpenChannel);
        handle_open_channel_v2(&OpenChannelV2);
        handle_accept_channel(&AcceptChannel);
        handle_accept_channel_v2(&AcceptChannelV2);
        handle_funding_created(&FundingCreated);
        handle_funding_signed(&FundingSigned);
        handle_channel_ready(&ChannelReady);
        handle_peer_storage(PeerStorage);
        handle_peer_storage_retrieval(PeerStorageRetrieval);
        handle_shutdown(&Shutdown);
        handle_closing_signed(&ClosingSigned);
        handle_stfu(&Stfu);
        handle_splice_init(&SpliceInit);
        handle_splice_ack(&SpliceAck);
        handle_splice_locked(&SpliceLocked);
        handle_tx_add_input(&TxAddInput);
        handle_tx_add_output(&TxAddOutput);
        handle_tx_remove_input(&TxRemoveInput);
        handle_tx_remove_output(&TxRemoveOutput);
        handle_tx_init_rbf(&TxInitRbf);
        handle_tx_ack_rbf(&TxAckRbf);
        handle_tx_abort(&TxAbort);
        handle_update_add_htlc(&UpdateAddHTLC);
        handle_update_fulfill_htlc(UpdateFulfillHTLC);
        handle_update_fail_htlc(&UpdateFailHTLC);
        handle_update_fail_malformed_htlc(&UpdateFailMalformedHTLC);
        handle_commitment_signed(&CommitmentSigned);
        handle_revoke_and_ack(&RevokeAndACK);
        handle_update_fee(&UpdateFee);
        handle_channel_update(&ChannelUpdate);
        handle_error(&ErrorMessage);
    }

    fn handle_channel_reestablish(&self, their_node_id: PublicKey, msg: &ChannelReestablish) {
        let key = (their_node_id, msg.channel_id);
        if self.reestablished.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            tracing::warn!(
                peer = %their_node_id,
                channel_id = %msg.channel_id,
                "peer repeated channel_reestablish on a live connection: ignored (LDK would force-close the channel)"
            );
            return;
        }
        // Asked of LDK outside our lock, which LDK's own locks are never taken under.
        if self.inner.list_channels_with_counterparty(&their_node_id).iter().any(|c| c.channel_id == msg.channel_id) {
            self.reestablished.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
        }
        self.inner.handle_channel_reestablish(their_node_id, msg)
    }

    fn handle_tx_complete(&self, their_node_id: PublicKey, msg: &TxComplete) {
        crate::test_knobs::crash_on_receiving("tx_complete");
        self.inner.handle_tx_complete(their_node_id, msg)
    }

    fn handle_tx_signatures(&self, their_node_id: PublicKey, msg: &TxSignatures) {
        crate::test_knobs::crash_on_receiving("tx_signatures");
        self.inner.handle_tx_signatures(their_node_id, msg)
    }

    fn handle_commitment_signed_batch(&self, their_node_id: PublicKey, channel_id: ChannelId, batch: Vec<CommitmentSigned>) {
        self.inner.handle_commitment_signed_batch(their_node_id, channel_id, batch)
    }

    fn get_chain_hashes(&self) -> Option<Vec<ChainHash>> {
        self.inner.get_chain_hashes()
    }

    fn message_received(&self) {
        self.inner.message_received()
    }
}

impl BaseMessageHandler for ChannelHandler {
    fn get_and_clear_pending_msg_events(&self) -> Vec<MessageSendEvent> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let events = self.inner.get_and_clear_pending_msg_events();
        let (send, keep) = release(std::mem::take(&mut *held), events, |id| !self.persister.new_channel_pending(id));
        for ev in &keep {
            if let MessageSendEvent::SendFundingSigned { node_id, msg } = ev {
                tracing::debug!(peer = %node_id, channel_id = %msg.channel_id, "funding_signed waits for the new channel to reach the disk");
            }
        }
        *held = keep;
        drop(held);
        let send = match self.send_reestablish_twice {
            true => twice(send),
            false => send,
        };
        // The peer manager calls this after every message it read: HTLCs an incoming revoke_and_ack (or a
        // monitor write completing) made irrevocable are pending now.
        if self.inner.needs_pending_htlc_processing() {
            self.htlcs.notify_one();
        }
        send
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.new_connection(their_node_id);
        // The funder drops a channel it never got our funding_signed for when we disconnect.
        self.held.lock().unwrap_or_else(|p| p.into_inner()).retain(|ev| !matches!(ev, MessageSendEvent::SendFundingSigned { node_id, .. } if *node_id == their_node_id));
        self.inner.peer_disconnected(their_node_id)
    }

    fn provided_node_features(&self) -> NodeFeatures {
        self.inner.provided_node_features()
    }

    fn provided_init_features(&self, their_node_id: PublicKey) -> InitFeatures {
        self.inner.provided_init_features(their_node_id)
    }

    fn peer_connected(&self, their_node_id: PublicKey, msg: &Init, inbound: bool) -> Result<(), ()> {
        self.new_connection(their_node_id);
        self.inner.peer_connected(their_node_id, msg, inbound)
    }
}
