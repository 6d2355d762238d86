//! Channels: opening (funded from the wallet), listing, closing, forwarding policy, closed history.
//!
//! Owns: the policy around LDK's channel calls (checks before anything changes, funding from the
//! BDK wallet when LDK asks for it) and the record of closed channels with what is still being
//! claimed on-chain. Must never: build commitment or closing transactions (LDK does), nor sign the
//! funding with anything but the node's wallet.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Txid};
use lightning::chain::channelmonitor::Balance;
use lightning::chain::transaction::OutPoint;
use lightning::events::ClosureReason;
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::types::ChannelId;
use lightning::util::config::ChannelConfigUpdate;
use lightning::util::errors::APIError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::types::{ChainMonitor, ChannelManager, PeerManager};
use lanes_wallet::OnchainWallet;
use lightning::sign::KeysManager;
use lightning::util::config::UserConfig;

use crate::store::Records;
use lanes_common::now_secs;
use crate::error::PeerError;
use crate::NodeError;

/// How long OpenChannel waits for the peer to accept and the funding to be built.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long CloseChannel waits for the closing transaction to be broadcast (a cooperative close negotiates
/// its fee with the peer first).
const CLOSE_TXID_WAIT: Duration = Duration::from_secs(30);

/// A channel that closed, as recorded when LDK told us.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosedRecord {
    pub channel_id: String,
    pub remote_node_id: String,
    pub capacity_sat: u64,
    pub reason: String,
    pub funding_txo: String,
    pub closed_at: u64,
    /// The transaction that spent the funding output, once known (records before this field read as empty).
    #[serde(default)]
    pub closing_txid: String,
    /// The funding was double-spent: the channel never existed on-chain and nothing can be claimed.
    #[serde(default)]
    pub funding_double_spent: bool,
    /// Our balance when such a channel closed, lost with it, in msat.
    #[serde(default)]
    pub unclaimable_msat: u64,
}

impl crate::record::Record for ClosedRecord {
    const KIND: &'static str = "closed channel";
}

/// The reason shown for a channel whose funding was double-spent.
const DOUBLE_SPENT_REASON: &str = "funding transaction double-spent: the channel never existed on-chain, nothing to claim";

/// The commitment format of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commitment {
    Anchors,
    StaticRemoteKey,
    Unknown,
}

/// An open (or opening) channel, as the API shows it.
#[derive(Clone, Debug)]
pub struct ChannelView {
    /// The channel id (LDK's, as bytes: views carry no LDK types).
    pub channel_id: [u8; 32],
    pub short_channel_id: Option<u64>,
    pub remote_node_id: PublicKey,
    pub capacity_sat: u64,
    /// Ours and the peer's settled balance (see [`balances`]).
    pub local_balance_msat: u64,
    pub remote_balance_msat: u64,
    pub outbound_capacity_msat: u64,
    pub inbound_capacity_msat: u64,
    pub active: bool,
    pub public: bool,
    pub pending: bool,
    pub initiator: bool,
    pub funding_txo: Option<bitcoin::OutPoint>,
    pub confirmations: u32,
    pub confirmations_required: u32,
    pub fee_base_msat: u32,
    pub fee_rate_ppm: u32,
    pub cltv_expiry_delta: u32,
    pub commitment: Commitment,
    /// A splice under way.
    pub splice: Option<crate::splice::PendingSplice>,
}

/// A closed channel with what is still to be claimed on-chain.
pub struct ClosedView {
    pub record: ClosedRecord,
    pub claimable_sat: u64,
    pub claimable_at_height: u32,
}

struct PendingOpen {
    sat_per_vbyte: Option<String>,
    /// The caller asked for a zero-conf channel: fund it only if the peer accepted it so.
    zero_conf: bool,
    /// The caller of a single open; None for a member of a batch (its batch answers).
    done: Option<oneshot::Sender<Result<OutPoint, String>>>,
    /// The batch this open is part of.
    batch: Option<u64>,
}

/// A batch open under way: channels to several peers funded by one transaction, all or none.
struct Batch {
    /// Every member's user_channel_id, in the caller's order.
    members: Vec<u128>,
    /// Members whose funding output LDK has asked for, by user_channel_id.
    ready: HashMap<u128, ReadyToFund>,
    sat_per_vbyte: Option<String>,
    done: Option<oneshot::Sender<Result<(Txid, Vec<OutPoint>), String>>>,
}

struct ReadyToFund {
    temp_id: ChannelId,
    peer: PublicKey,
    value_sat: u64,
    script: ScriptBuf,
}

/// One channel of a batch open.
#[derive(Clone, Debug)]
pub struct BatchMember {
    pub peer: PublicKey,
    pub amount_sat: u64,
    pub push_msat: u64,
    pub private: bool,
}

/// The channels service.
/// How long a cooperative close waits for the channel's monitor update under way to be persisted.
const CLOSE_BUSY_WAIT: Duration = Duration::from_secs(10);

pub struct Channels {
    splices: Arc<crate::splice::Splices>,
    pending_opens: Mutex<HashMap<u128, PendingOpen>>,
    batches: Mutex<HashMap<u64, Batch>>,
    closed: Records<ClosedRecord>,
    node_id: PublicKey,
    channel_manager: Arc<ChannelManager>,
    chain_monitor: Arc<ChainMonitor>,
    peer_manager: Arc<PeerManager>,
    wallet: Arc<OnchainWallet>,
    keys: Arc<KeysManager>,
    bitcoind: Arc<BitcoindClient>,
    user_config: UserConfig,
}

/// What the channels service is built from.
pub struct ChannelsDeps {
    /// Splices under way, shown with their channels.
    pub splices: Arc<crate::splice::Splices>,
    pub node_id: PublicKey,
    pub channel_manager: Arc<ChannelManager>,
    pub chain_monitor: Arc<ChainMonitor>,
    pub peer_manager: Arc<PeerManager>,
    pub wallet: Arc<OnchainWallet>,
    pub keys: Arc<KeysManager>,
    pub bitcoind: Arc<BitcoindClient>,
    pub user_config: UserConfig,
}

pub use crate::ids::parse_channel_id;

fn api_error(e: APIError) -> NodeError {
    match e {
        APIError::APIMisuseError { err } | APIError::FeeRateTooHigh { err, .. } => NodeError::Invalid(err),
        APIError::ChannelUnavailable { err } => NodeError::Refused(err),
        APIError::MonitorUpdateInProgress => NodeError::Busy("channel state is being persisted; try again".into()),
        APIError::IncompatibleShutdownScript { script } => NodeError::Invalid(format!("incompatible shutdown script {script}")),
        APIError::InvalidRoute { err } => NodeError::Invalid(err),
    }
}

impl Channels {
    pub fn open(store: &lanes_store::DynStore, d: ChannelsDeps) -> Result<Self, NodeError> {
        Ok(Self {
            splices: d.splices,
            pending_opens: Mutex::new(HashMap::new()),
            batches: Mutex::new(HashMap::new()),
            closed: Records::open(store, lanes_store::layout::CLOSED_CHANNELS)?,
            node_id: d.node_id,
            channel_manager: d.channel_manager,
            chain_monitor: d.chain_monitor,
            peer_manager: d.peer_manager,
            wallet: d.wallet,
            keys: d.keys,
            bitcoind: d.bitcoind,
            user_config: d.user_config,
        })
    }

    /// What the wallet must keep to bump our anchor channels' closing fees, counting `extra` channels about
    /// to open (see [`anchor_reserve_sat`]).
    pub fn anchor_reserve_sat(&self, extra: usize) -> u64 {
        anchor_reserve_sat(&self.channel_manager, extra)
    }

    /// Opens a channel with a connected peer and waits until its funding transaction is built.
    pub async fn open_channel(
        &self,
        peer: PublicKey,
        amount_sat: u64,
        push_msat: u64,
        private: bool,
        sat_per_vbyte: Option<String>,
        zero_conf: bool,
    ) -> Result<([u8; 32], bitcoin::OutPoint), NodeError> {
        if amount_sat == 0 {
            return Err(NodeError::Invalid("channel capacity must be greater than 0".into()));
        }
        let capacity_msat = amount_sat.checked_mul(1000).ok_or_else(|| NodeError::Invalid(format!("{amount_sat} sat is too large")))?;
        if push_msat >= capacity_msat {
            return Err(NodeError::Invalid(format!("push amount {push_msat} msat must be below the capacity {capacity_msat} msat")));
        }
        if let Some(rate) = &sat_per_vbyte {
            lanes_wallet::wallet::parse_fee_rate(rate)?;
        }
        if peer == self.node_id {
            return Err(NodeError::Invalid("cannot open a channel to ourselves: give another node's id".into()));
        }
        if self.peer_manager.peer_by_node_id(&peer).is_none() {
            return Err(PeerError::NotConnected { peer, hint: "ConnectPeer first" }.into());
        }
        // The new channel will be an anchor channel if the peer agrees: keep its fee-bumping reserve too.
        self.wallet.check_funds(amount_sat, self.anchor_reserve_sat(1))?;

        let user_channel_id = u128::from_be_bytes(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys)[..16].try_into().expect("16 bytes"));
        let (tx, rx) = oneshot::channel();
        self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).insert(user_channel_id, PendingOpen { sat_per_vbyte, zero_conf, done: Some(tx), batch: None });
        let mut config = self.user_config.clone();
        config.channel_handshake_config.announce_for_forwarding = !private;
        if let Err(e) = self.channel_manager.create_channel(peer, amount_sat, push_msat, user_channel_id, None, Some(config)) {
            self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).remove(&user_channel_id);
            return Err(api_error(e));
        }
        tracing::info!(peer = %peer, capacity_sat = amount_sat, push_msat, private, zero_conf, "channel open requested");
        match tokio::time::timeout(OPEN_TIMEOUT, rx).await {
            Ok(Ok(Ok(outpoint))) => Ok((ChannelId::v1_from_funding_outpoint(outpoint).0, outpoint.into_bitcoin_outpoint())),
            Ok(Ok(Err(why))) => Err(NodeError::Refused(why)),
            Ok(Err(_)) => Err(NodeError::Internal("the channel open was dropped".into())),
            Err(_) => {
                self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).remove(&user_channel_id);
                Err(NodeError::Timeout(format!("peer {peer} did not accept the channel within {} s", OPEN_TIMEOUT.as_secs())))
            }
        }
    }

    /// Opens channels to several connected peers funded by one transaction (LND's BatchOpenChannel, CLN's
    /// multifundchannel): one fee, all or none. Answers with the funding txid and each channel's funding
    /// outpoint, in the order given, once the transaction is built; LDK broadcasts it only when every peer
    /// has signed its part, and if any peer refuses or fails, no channel of the batch opens and the wallet
    /// keeps its coins.
    pub async fn batch_open(&self, members: Vec<BatchMember>, sat_per_vbyte: Option<String>) -> Result<(Txid, Vec<([u8; 32], bitcoin::OutPoint)>), NodeError> {
        if members.len() < 2 {
            return Err(NodeError::Invalid("a batch opens at least 2 channels (use OpenChannel for one)".into()));
        }
        let mut peers = std::collections::HashSet::new();
        let mut total: u64 = 0;
        for m in &members {
            if m.amount_sat == 0 {
                return Err(NodeError::Invalid(format!("channel capacity to {} must be greater than 0", m.peer)));
            }
            let capacity_msat = m.amount_sat.checked_mul(1000).ok_or_else(|| NodeError::Invalid(format!("{} sat is too large", m.amount_sat)))?;
            if m.push_msat >= capacity_msat {
                return Err(NodeError::Invalid(format!("push amount {} msat to {} must be below the capacity {capacity_msat} msat", m.push_msat, m.peer)));
            }
            if m.peer == self.node_id {
                return Err(NodeError::Invalid("cannot open a channel to ourselves: give another node's id".into()));
            }
            if !peers.insert(m.peer) {
                return Err(NodeError::Invalid(format!("{} appears twice in the batch", m.peer)));
            }
            if self.peer_manager.peer_by_node_id(&m.peer).is_none() {
                return Err(PeerError::NotConnected { peer: m.peer, hint: "ConnectPeer first" }.into());
            }
            total = total.checked_add(m.amount_sat).ok_or_else(|| NodeError::Invalid("the batch's total is too large".into()))?;
        }
        if let Some(rate) = &sat_per_vbyte {
            lanes_wallet::wallet::parse_fee_rate(rate)?;
        }
        self.wallet.check_funds(total, self.anchor_reserve_sat(members.len()))?;

        let batch_id = u64::from_be_bytes(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys)[..8].try_into().expect("8 bytes"));
        let (tx, rx) = oneshot::channel();
        let ids: Vec<u128> = members
            .iter()
            .map(|_| u128::from_be_bytes(lightning::sign::EntropySource::get_secure_random_bytes(&*self.keys)[..16].try_into().expect("16 bytes")))
            .collect();
        self.batches.lock().unwrap_or_else(|p| p.into_inner()).insert(
            batch_id,
            Batch { members: ids.clone(), ready: HashMap::new(), sat_per_vbyte: sat_per_vbyte.clone(), done: Some(tx) },
        );
        for (m, id) in members.iter().zip(&ids) {
            self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).insert(*id, PendingOpen { sat_per_vbyte: None, zero_conf: false, done: None, batch: Some(batch_id) });
            let mut config = self.user_config.clone();
            config.channel_handshake_config.announce_for_forwarding = !m.private;
            if let Err(e) = self.channel_manager.create_channel(m.peer, m.amount_sat, m.push_msat, *id, None, Some(config)) {
                let e = api_error(e);
                self.abort_batch(batch_id, format!("opening the channel to {} failed: {e}", m.peer));
                return Err(e);
            }
        }
        tracing::info!(batch = %format!("{batch_id:016x}"), channels = members.len(), capacity_sat = total, "batch channel open requested");
        match tokio::time::timeout(OPEN_TIMEOUT, rx).await {
            Ok(Ok(Ok((txid, outpoints)))) => Ok((txid, outpoints.into_iter().map(|o| (ChannelId::v1_from_funding_outpoint(o).0, o.into_bitcoin_outpoint())).collect())),
            Ok(Ok(Err(why))) => Err(NodeError::Refused(why)),
            Ok(Err(_)) => Err(NodeError::Internal("the batch open was dropped".into())),
            Err(_) => {
                let why = format!("not every peer accepted its channel within {} s: no channel of the batch opens", OPEN_TIMEOUT.as_secs());
                self.abort_batch(batch_id, why.clone());
                Err(NodeError::Timeout(why))
            }
        }
    }

    /// Ends a batch that cannot complete: every channel of it is closed before any funding exists (nothing
    /// is broadcast), and its caller gets `why`.
    fn abort_batch(&self, batch_id: u64, why: String) {
        let Some(mut batch) = self.batches.lock().unwrap_or_else(|p| p.into_inner()).remove(&batch_id) else { return };
        {
            let mut pending = self.pending_opens.lock().unwrap_or_else(|p| p.into_inner());
            for id in &batch.members {
                pending.remove(id);
            }
        }
        for c in self.channel_manager.list_channels().into_iter().filter(|c| batch.members.contains(&c.user_channel_id)) {
            let _ = self.channel_manager.force_close_broadcasting_latest_txn(&c.channel_id, &c.counterparty.node_id, format!("batch open aborted: {why}"));
        }
        tracing::warn!(batch = %format!("{batch_id:016x}"), reason = %why, "batch channel open aborted: no channel of it opens");
        if let Some(done) = batch.done.take() {
            let _ = done.send(Err(why));
        }
    }

    /// A channel closed before it was funded (the peer refused it, or it timed out): the open waiting for it
    /// fails now with the reason, and a batch it was part of is aborted.
    pub fn unfunded_channel_closed(&self, user_channel_id: u128, reason: &ClosureReason) {
        let batch = {
            let pending = self.pending_opens.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get(&user_channel_id) {
                Some(p) => p.batch,
                None => None,
            }
        };
        let batch = batch.or_else(|| {
            self.batches.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(_, b)| b.members.contains(&user_channel_id)).map(|(id, _)| *id)
        });
        match batch {
            Some(b) => self.abort_batch(b, format!("a peer refused its channel: {reason}")),
            None => {
                if let Some(p) = self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).remove(&user_channel_id) {
                    if let Some(done) = p.done {
                        let _ = done.send(Err(format!("the peer refused the channel: {reason}")));
                    }
                }
            }
        }
    }

    /// A batch member is ready to be funded; once all are, one transaction funds them all.
    async fn fund_in_batch(&self, batch_id: u64, user_channel_id: u128, ready: ReadyToFund) {
        let complete = {
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            let Some(batch) = batches.get_mut(&batch_id) else {
                // Aborted meanwhile: this channel must not stay half-open.
                let _ = self.channel_manager.force_close_broadcasting_latest_txn(&ready.temp_id, &ready.peer, "batch open aborted".into());
                return;
            };
            batch.ready.insert(user_channel_id, ready);
            if batch.ready.len() < batch.members.len() {
                return;
            }
            batches.remove(&batch_id).expect("present")
        };
        let Batch { members, mut ready, sat_per_vbyte, done } = complete;
        let order: Vec<ReadyToFund> = members.iter().filter_map(|id| ready.remove(id)).collect();
        let outputs: Vec<(ScriptBuf, u64)> = order.iter().map(|r| (r.script.clone(), r.value_sat)).collect();
        let wallet = Arc::clone(&self.wallet);
        // These channels are already in the list: the reserve counts them.
        let reserve = self.anchor_reserve_sat(0);
        let built = tokio::task::spawn_blocking(move || wallet.build_batch_funding_tx(&outputs, sat_per_vbyte.as_deref(), reserve))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let built_txid = built.as_ref().ok().map(|tx| tx.compute_txid());
        let result = built.and_then(|tx| {
            let txid = tx.compute_txid();
            let mut outpoints = Vec::with_capacity(order.len());
            for r in &order {
                let vout = tx.output.iter().position(|o| o.script_pubkey == r.script).ok_or("funding output missing")? as u16;
                outpoints.push(OutPoint { txid, index: vout });
            }
            let channels: Vec<(&ChannelId, &PublicKey)> = order.iter().map(|r| (&r.temp_id, &r.peer)).collect();
            // LDK holds the transaction until every peer has sent funding_signed, then broadcasts it; if any
            // channel of the batch closes before that, it closes them all and discards the funding.
            self.channel_manager.batch_funding_transaction_generated(&channels, tx).map_err(|e| format!("{e:?}"))?;
            Ok((txid, outpoints))
        });
        if let Err(why) = &result {
            tracing::warn!(batch = %format!("{batch_id:016x}"), error = %why, "funding the batch failed: abandoning it");
            if let Some(txid) = built_txid {
                if let Err(e) = self.wallet.forget_tx(txid) {
                    tracing::error!(%txid, error = %e, "could not release the abandoned batch funding's inputs");
                }
            }
            for r in &order {
                let _ = self.channel_manager.force_close_broadcasting_latest_txn(&r.temp_id, &r.peer, format!("batch funding failed: {why}"));
            }
        } else if let Some(txid) = built_txid {
            tracing::info!(batch = %format!("{batch_id:016x}"), %txid, channels = order.len(), "batch funding handed to LDK: broadcast once every peer signed");
        }
        if let Some(done) = done {
            let _ = done.send(result.map_err(|e| e.to_string()));
        }
    }

    /// LDK asks for the funding transaction: build it from the wallet and hand it over.
    pub async fn fund(&self, temp_id: ChannelId, peer: PublicKey, value_sat: u64, script: ScriptBuf, user_channel_id: u128) {
        let pending = self.pending_opens.lock().unwrap_or_else(|p| p.into_inner()).remove(&user_channel_id);
        if let Some(batch) = pending.as_ref().and_then(|p| p.batch) {
            return self.fund_in_batch(batch, user_channel_id, ReadyToFund { temp_id, peer, value_sat, script }).await;
        }
        // A zero-conf open the peer accepted with confirmations: nothing is funded, the caller hears why.
        if pending.as_ref().is_some_and(|p| p.zero_conf) {
            let depth = self.channel_manager.list_channels().into_iter().find(|c| c.channel_id == temp_id).and_then(|c| c.confirmations_required);
            if depth != Some(0) {
                let why = format!(
                    "peer {peer} accepted the channel only with {} confirmations, not as zero-conf (it must list us as a trusted peer)",
                    depth.map(|d| d.to_string()).unwrap_or_else(|| "unknown".into())
                );
                tracing::warn!(channel_id = %temp_id, peer = %peer, "zero-conf open refused by the peer: abandoning it unfunded");
                let _ = self.channel_manager.force_close_broadcasting_latest_txn(&temp_id, &peer, "the peer would not take it as zero-conf".into());
                if let Some(done) = pending.and_then(|p| p.done) {
                    let _ = done.send(Err(why));
                }
                return;
            }
        }
        let rate = pending.as_ref().and_then(|p| p.sat_per_vbyte.clone());
        let wallet = Arc::clone(&self.wallet);
        // This channel is already in the list: the reserve counts it.
        let reserve = self.anchor_reserve_sat(0);
        let built = tokio::task::spawn_blocking(move || wallet.build_funding_tx(script.clone(), value_sat, rate.as_deref(), reserve).map(|tx| (tx, script)))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let built_txid = built.as_ref().ok().map(|(tx, _)| tx.compute_txid());
        let result = built.and_then(|(tx, script)| {
            let vout = tx.output.iter().position(|o| o.script_pubkey == script).ok_or("funding output missing")? as u16;
            let outpoint = OutPoint { txid: tx.compute_txid(), index: vout };
            self.channel_manager.funding_transaction_generated(temp_id, peer, tx).map_err(|e| format!("{e:?}"))?;
            Ok(outpoint)
        });
        if let Err(why) = &result {
            tracing::warn!(channel_id = %temp_id, peer = %peer, error = %why, "funding the channel failed: abandoning it");
            // LDK never took the transaction (so it will send no DiscardFunding for it): the wallet must forget
            // it, or its inputs stay spent and its change, which will never exist, funds the next payment.
            if let Some(txid) = built_txid {
                if let Err(e) = self.wallet.forget_tx(txid) {
                    tracing::error!(%txid, error = %e, "could not release the abandoned funding's inputs");
                }
            }
            let _ = self.channel_manager.force_close_broadcasting_latest_txn(&temp_id, &peer, format!("funding failed: {why}"));
        }
        if let Some(done) = pending.and_then(|p| p.done) {
            let _ = done.send(result);
        }
    }

    /// Open channels (pending ones included), optionally only active ones or one peer's.
    pub fn list(&self, active_only: bool, peer: Option<PublicKey>) -> Vec<ChannelView> {
        self.channel_manager
            .list_channels()
            .into_iter()
            .filter(|c| !active_only || c.is_usable)
            .filter(|c| peer.is_none_or(|p| c.counterparty.node_id == p))
            .map(|c| self.view(&c))
            .collect()
    }

    fn view(&self, c: &ChannelDetails) -> ChannelView {
        let cfg = c.config.unwrap_or_default();
        let (local_balance_msat, remote_balance_msat) = balances(&self.chain_monitor, c);
        ChannelView {
            channel_id: c.channel_id.0,
            short_channel_id: c.short_channel_id,
            remote_node_id: c.counterparty.node_id,
            capacity_sat: c.channel_value_satoshis,
            local_balance_msat,
            remote_balance_msat,
            outbound_capacity_msat: c.outbound_capacity_msat,
            inbound_capacity_msat: c.inbound_capacity_msat,
            active: c.is_usable,
            public: c.is_announced,
            pending: !c.is_channel_ready,
            initiator: c.is_outbound,
            funding_txo: c.funding_txo.map(|o| o.into_bitcoin_outpoint()),
            confirmations: c.confirmations.unwrap_or(0),
            confirmations_required: c.confirmations_required.unwrap_or(0),
            fee_base_msat: cfg.forwarding_fee_base_msat,
            fee_rate_ppm: cfg.forwarding_fee_proportional_millionths,
            cltv_expiry_delta: cfg.cltv_expiry_delta as u32,
            commitment: match &c.channel_type {
                Some(t) if t.supports_anchors_zero_fee_htlc_tx() => Commitment::Anchors,
                Some(t) if t.supports_static_remote_key() => Commitment::StaticRemoteKey,
                _ => Commitment::Unknown,
            },
            splice: self.splices.pending(&c.channel_id),
        }
    }

    fn find(&self, id: &str) -> Result<ChannelDetails, NodeError> {
        let id = parse_channel_id(id)?;
        self.channel_manager
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == id)
            .ok_or_else(|| NodeError::NotFound(format!("no open channel {id}")))
    }

    /// Closes a channel: cooperatively (the peer must be connected), or by force. Returns the closing
    /// transaction's id once it is broadcast (None if that takes longer than [`CLOSE_TXID_WAIT`]).
    pub async fn close(&self, id: &str, force: bool, sat_per_vbyte: Option<&str>) -> Result<Option<bitcoin::Txid>, NodeError> {
        let c = self.find(id)?;
        let peer = c.counterparty.node_id;
        if force {
            tracing::info!(channel_id = %c.channel_id, peer = %peer, "force-closing channel");
            self.channel_manager.force_close_broadcasting_latest_txn(&c.channel_id, &peer, "force-closed by the operator".into()).map_err(api_error)?;
        } else {
            let feerate = match sat_per_vbyte {
                Some(r) => Some((lanes_wallet::wallet::parse_fee_rate(r)?.to_sat_per_kwu()) as u32),
                None => None,
            };
            if self.peer_manager.peer_by_node_id(&peer).is_none() {
                return Err(PeerError::NotConnected { peer, hint: "a cooperative close needs it (or use force)" }.into());
            }
            tracing::info!(channel_id = %c.channel_id, peer = %peer, "closing channel cooperatively");
            // Right after a payment the channel's last monitor update may still be on its way to disk, and LDK
            // refuses to begin the shutdown until it is: wait for it (bounded), as LND queues the shutdown,
            // instead of failing a close asked at that moment (seen in postgres.rs, where writes take longer).
            let busy_until = tokio::time::Instant::now() + CLOSE_BUSY_WAIT;
            loop {
                match self.channel_manager.close_channel_with_feerate_and_script(&c.channel_id, &peer, feerate, None) {
                    Ok(()) => break,
                    Err(APIError::ChannelUnavailable { err }) if err.contains("waiting on a monitor update") && tokio::time::Instant::now() < busy_until => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(api_error(e)),
                }
            }
        }
        let Some(funding) = c.funding_txo.map(|f| f.into_bitcoin_outpoint()) else { return Ok(None) };
        let deadline = tokio::time::Instant::now() + CLOSE_TXID_WAIT;
        loop {
            if let Some(txid) = self.bitcoind.broadcast_spender_of(funding) {
                return Ok(Some(txid));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records a closed channel (from LDK's ChannelClosed event). `double_spent` is our balance in it when
    /// its funding was found double-spent (the funding watch closed it).
    pub fn closed(
        &self,
        id: ChannelId,
        reason: &ClosureReason,
        peer: Option<PublicKey>,
        capacity: Option<u64>,
        funding: Option<bitcoin::OutPoint>,
        double_spent: Option<u64>,
    ) {
        let reason = match double_spent {
            Some(_) => DOUBLE_SPENT_REASON.to_string(),
            None => reason.to_string(),
        };
        let rec = ClosedRecord {
            channel_id: id.to_string(),
            remote_node_id: peer.map(|p| p.to_string()).unwrap_or_default(),
            capacity_sat: capacity.unwrap_or(0),
            reason,
            funding_txo: funding.map(|f| f.to_string()).unwrap_or_default(),
            closed_at: now_secs(),
            closing_txid: String::new(),
            funding_double_spent: double_spent.is_some(),
            unclaimable_msat: double_spent.unwrap_or(0),
        };
        if let Err(e) = self.closed.put(&id.0, &rec) {
            tracing::error!(channel_id = %id, error = %e, "recording the closed channel failed");
        }
    }

    /// Marks a closed channel as one whose funding was double-spent (found after the peer closed it):
    /// `lost_msat` was our balance in it.
    pub fn funding_double_spent(&self, id: ChannelId, lost_msat: u64) {
        let marked = self.closed.update(&id.0, |r| {
            r.map(|mut r| {
                r.reason = DOUBLE_SPENT_REASON.to_string();
                r.funding_double_spent = true;
                r.unclaimable_msat = lost_msat;
                r
            })
        });
        if let Err(e) = marked {
            tracing::error!(channel_id = %id, error = %e, "recording the double-spent funding of a closed channel failed");
        }
    }

    /// Closed channels, newest first, with what their ChannelMonitor still has to claim.
    pub fn closed_list(&self) -> Result<Vec<ClosedView>, NodeError> {
        let mut out: Vec<ClosedView> = self
            .closed
            .all()?
            .into_iter()
            .map(|mut record| {
                if record.funding_double_spent {
                    // LDK's monitor still expects its commitment to confirm; it never can.
                    return ClosedView { record, claimable_sat: 0, claimable_at_height: 0 };
                }
                let monitor = parse_channel_id(&record.channel_id).ok().and_then(|id| self.chain_monitor.get_monitor(id).ok());
                let (claimable_sat, claimable_at_height) = monitor.as_ref().map(|m| claimable(&m.get_claimable_balances())).unwrap_or((0, 0));
                if let Some(txid) = closing_txid(&self.bitcoind, &record, monitor.as_deref()).map(|t| t.to_string()) {
                    if txid != record.closing_txid {
                        record.closing_txid = txid;
                        let key = parse_channel_id(&record.channel_id).map(|id| id.0).unwrap_or_default();
                        if let Err(e) = self.closed.put(&key, &record) {
                            tracing::warn!(channel_id = %record.channel_id, error = %e, "recording the closing txid failed");
                        }
                    }
                }
                ClosedView { record, claimable_sat, claimable_at_height }
            })
            .collect();
        out.sort_by(|a, b| b.record.closed_at.cmp(&a.record.closed_at));
        Ok(out)
    }

    /// Sets the forwarding policy of one channel, or of all when `id` is empty. Returns how many.
    pub fn update_policy(&self, id: &str, base_msat: u32, ppm: u32, cltv_delta: u32) -> Result<u32, NodeError> {
        // LND's bounds: a CLTV delta from LDK's minimum to 2016 blocks (two weeks), fees that cannot exceed
        // the amount forwarded (1,000,000 ppm), a base fee of at most 1,000,000 sat. 0 keeps the current CLTV delta.
        let min_cltv = lightning::ln::channelmanager::MIN_CLTV_EXPIRY_DELTA as u32;
        if cltv_delta != 0 && !(min_cltv..=MAX_CLTV_EXPIRY_DELTA).contains(&cltv_delta) {
            return Err(NodeError::Invalid(format!("cltv_expiry_delta {cltv_delta} is outside {min_cltv}..={MAX_CLTV_EXPIRY_DELTA} blocks")));
        }
        if ppm > MAX_FEE_RATE_PPM {
            return Err(NodeError::Invalid(format!("fee_rate_ppm {ppm} is above {MAX_FEE_RATE_PPM} (100% of the amount)")));
        }
        if base_msat > MAX_BASE_FEE_MSAT {
            return Err(NodeError::Invalid(format!("fee_base_msat {base_msat} is above {MAX_BASE_FEE_MSAT} msat (1,000,000 sat)")));
        }
        let chans = if id.trim().is_empty() { self.channel_manager.list_channels() } else { vec![self.find(id)?] };
        let update = ChannelConfigUpdate {
            forwarding_fee_base_msat: Some(base_msat),
            forwarding_fee_proportional_millionths: Some(ppm),
            cltv_expiry_delta: (cltv_delta > 0).then_some(cltv_delta as u16),
            ..Default::default()
        };
        update_configs(&self.channel_manager, &chans, &update).map_err(api_error)?;
        tracing::info!(channels = chans.len(), base_msat, ppm, cltv_delta, "channel policy updated");
        Ok(chans.len() as u32)
    }
}

/// Applies `update` to the forwarding config of `chans` (LDK takes one call per peer).
pub(crate) fn update_configs(cm: &ChannelManager, chans: &[ChannelDetails], update: &ChannelConfigUpdate) -> Result<(), APIError> {
    let mut by_peer: HashMap<PublicKey, Vec<ChannelId>> = HashMap::new();
    for c in chans {
        by_peer.entry(c.counterparty.node_id).or_default().push(c.channel_id);
    }
    for (peer, ids) in by_peer {
        cm.update_partial_channel_config(&peer, &ids, update)?;
    }
    Ok(())
}

/// The transaction that spent a closed channel's funding: the commitment the ChannelMonitor saw confirmed
/// (it then watches that transaction's outputs), else the one already recorded, else one we broadcast (a
/// cooperative close, or our commitment, which may still lose the race to the peer's).
fn closing_txid(
    bitcoind: &BitcoindClient,
    record: &ClosedRecord,
    monitor: Option<&lightning::chain::channelmonitor::ChannelMonitor<lightning::sign::InMemorySigner>>,
) -> Option<bitcoin::Txid> {
    let funding: bitcoin::OutPoint = record.funding_txo.parse().ok()?;
    let confirmed = monitor.and_then(|m| m.get_outputs_to_watch().into_iter().map(|(txid, _)| txid).find(|txid| *txid != funding.txid));
    confirmed.or_else(|| record.closing_txid.parse().ok()).or_else(|| bitcoind.broadcast_spender_of(funding))
}

/// Our and the peer's settled balance in a channel, in msat: what we would get if the channel closed
/// cooperatively at zero fee, and the rest of the capacity. HTLCs in flight count on the peer's side
/// until they settle.
///
/// LDK's monitor gives our output of the current commitment (`amount_satoshis`) and, when we are the
/// funder, what we pay for that commitment on top (`transaction_fee_satoshis`: its fee plus trimmed
/// outputs and *elided* anchors). An anchor channel's funder also pays the two 330-sat anchor outputs;
/// a cooperative close has none, so they are ours too. When one side has no output its anchor is
/// elided and already counted in the fee, hence the cap at the capacity.
pub fn balances(chain_monitor: &ChainMonitor, c: &ChannelDetails) -> (u64, u64) {
    let capacity_msat = c.channel_value_satoshis * 1000;
    let anchors = c.channel_type.as_ref().is_some_and(|t| t.supports_anchors_zero_fee_htlc_tx());
    let funder_anchors_sat = if anchors && c.is_outbound { 2 * ANCHOR_OUTPUT_VALUE_SATOSHI } else { 0 };
    let local_sat = chain_monitor
        .get_monitor(c.channel_id)
        .ok()
        .and_then(|m| {
            m.get_claimable_balances().into_iter().find_map(|b| match b {
                Balance::ClaimableOnChannelClose { balance_candidates, confirmed_balance_candidate_index, .. } => balance_candidates
                    .get(confirmed_balance_candidate_index)
                    .or(balance_candidates.last())
                    .map(|h| h.amount_satoshis + h.transaction_fee_satoshis + funder_anchors_sat),
                _ => None,
            })
        })
        .unwrap_or(0);
    let local_msat = (local_sat * 1000).min(capacity_msat);
    (local_msat, capacity_msat - local_msat)
}

/// The largest CLTV delta a channel policy may ask (LND's limit: two weeks of blocks).
pub const MAX_CLTV_EXPIRY_DELTA: u32 = 2016;
/// The largest proportional forwarding fee: all of the amount.
pub const MAX_FEE_RATE_PPM: u32 = 1_000_000;
/// The largest base forwarding fee: 1,000,000 sat (0.01 BTC), far above any fee on the network.
pub const MAX_BASE_FEE_MSAT: u32 = 1_000_000_000;

pub use crate::anchors::{anchor_reserve_sat, ANCHOR_RESERVE_MAX_SAT, ANCHOR_RESERVE_PER_CHANNEL_SAT};

/// The value of one anchor output (BOLT 3; LDK keeps its constant private).
const ANCHOR_OUTPUT_VALUE_SATOSHI: u64 = 330;

/// Sum of what is still ours to claim, and the last height at which part of it becomes claimable.
fn claimable(balances: &[Balance]) -> (u64, u32) {
    let mut height = 0;
    for b in balances {
        let h = match b {
            Balance::ClaimableAwaitingConfirmations { confirmation_height, .. } => *confirmation_height,
            Balance::ContentiousClaimable { timeout_height, .. } => *timeout_height,
            Balance::MaybeTimeoutClaimableHTLC { claimable_height, .. } => *claimable_height,
            Balance::MaybePreimageClaimableHTLC { expiry_height, .. } => *expiry_height,
            _ => 0,
        };
        height = height.max(h);
    }
    (balances.iter().map(|b| b.claimable_amount_satoshis()).sum(), height)
}
