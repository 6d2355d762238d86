//! Test-only knobs: misbehaviours other implementations cause, which integration tests need to produce
//! with real lanesd processes. Each is off unless its environment variable is set, and says so in the
//! log when it acts. Like the cheat tool in `regtest/src/cheat.rs`, they exist only to prove that lanes
//! recovers; never set them on a real node.
//!
//! [`ChannelHandler`] is what the peer manager hands channel messages to: LDK's ChannelManager, unchanged
//! unless [`DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV`] is `1`, in which case the first
//! announcement_signatures received is dropped, as LDK drops one that arrives before its channel_ready
//! (which CLN can send on a different path). The channel then stays unannounced until lanes recovers it
//! (`node/src/announce.rs`).
//!
//! Owns: the knobs. Must never: change any message when its knob is off.
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::*;
use lightning::ln::types::ChannelId;
use lightning::types::features::{InitFeatures, NodeFeatures};

use crate::types::ChannelManager;

/// Set to a path: the first time a new channel's first ChannelMonitor is on disk but its persistence not yet
/// reported to LDK, lanesd writes that file and aborts, as a kill -9 at that moment would (tests only). It
/// does not act again while the file exists, so the restarted node runs normally.
pub const CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV: &str = "LANES_TEST_CRASH_BEFORE_COMPLETING_A_NEW_MONITOR";

/// See [`CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV`].
pub fn crash_before_completing_a_new_monitor() {
    let Some(marker) = std::env::var_os(CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV) else { return };
    let marker = std::path::PathBuf::from(marker);
    if marker.exists() {
        return;
    }
    tracing::warn!(knob = CRASH_BEFORE_COMPLETING_A_NEW_MONITOR_ENV, "TEST KNOB: crashing with a new channel's monitor on disk, its persistence not reported");
    let _ = std::fs::write(&marker, b"fired");
    std::process::abort();
}

/// Set to `1`: lanesd drops the first announcement_signatures it receives (tests only).
pub const DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV: &str = "LANES_TEST_DROP_FIRST_ANNOUNCEMENT_SIGNATURES";

/// The ChannelManager as the peer manager's channel handler, with the test-only knob above.
pub struct ChannelHandler {
    inner: Arc<ChannelManager>,
    drop_announcement_signatures: AtomicBool,
}

impl ChannelHandler {
    /// Reads the knob from the environment.
    pub fn new(inner: Arc<ChannelManager>) -> Self {
        let drop = std::env::var(DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV).is_ok_and(|v| v == "1");
        if drop {
            tracing::warn!(knob = DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV, "TEST KNOB ON: the first announcement_signatures received will be dropped");
        }
        ChannelHandler { inner, drop_announcement_signatures: AtomicBool::new(drop) }
    }
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
        handle_tx_complete(&TxComplete);
        handle_tx_signatures(&TxSignatures);
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
        handle_channel_reestablish(&ChannelReestablish);
        handle_channel_update(&ChannelUpdate);
        handle_error(&ErrorMessage);
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
        self.inner.get_and_clear_pending_msg_events()
    }

    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.inner.peer_disconnected(their_node_id)
    }

    fn provided_node_features(&self) -> NodeFeatures {
        self.inner.provided_node_features()
    }

    fn provided_init_features(&self, their_node_id: PublicKey) -> InitFeatures {
        self.inner.provided_init_features(their_node_id)
    }

    fn peer_connected(&self, their_node_id: PublicKey, msg: &Init, inbound: bool) -> Result<(), ()> {
        self.inner.peer_connected(their_node_id, msg, inbound)
    }
}
