//! Splicing: adding wallet coins to a channel (splice in) or moving channel funds to an address (splice out)
//! without closing it. LDK negotiates the new funding transaction with the peer (quiescence, interactive
//! construction, signatures), keeps the channel forwarding on the old funding until the new one has locked,
//! and broadcasts it; lanes picks the wallet coins, signs them when LDK asks, and tells the caller.
//!
//! Owns: the splices under way on our channels (requested, then pending with their new funding output, until
//! the channel locks on it or the splice fails; agreed ones are recorded, so a restart keeps showing them),
//! choosing and signing the wallet's inputs, and the fee rate.
//! Must never: build or sign the channel's side of a splice (LDK does), keep a wallet coin spent by a splice
//! that failed, or splice a channel whose peer is not connected (the call says so instead).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint, TxOut};
use lightning::ln::funding::{FundingTxInput, SpliceContribution};
use lightning::ln::types::ChannelId;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use lanes_channel::types::{ChannelManager, PeerManager};
use lanes_wallet::OnchainWallet;

use crate::error::PeerError;
use crate::record::{hex32, Record};
use crate::store::Records;
use crate::NodeError;

/// How long SpliceIn / SpliceOut wait for the peer to agree on the splice transaction.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a splice call waiting for the peer checks that it is still connected.
const PEER_CHECK: Duration = Duration::from_millis(200);

/// A splice under way on one of our channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingSplice {
    /// What the channel gains (splice in) or loses (splice out, the fee included once known), in sat.
    pub delta_sat: i64,
    /// The new funding output, once the splice transaction is agreed.
    pub funding_txo: Option<OutPoint>,
}

/// An agreed splice, as recorded until its channel locks on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SpliceRecord {
    #[serde(with = "hex32")]
    channel_id: [u8; 32],
    splice: PendingSplice,
}

impl Record for SpliceRecord {
    const KIND: &'static str = "splice";
}

struct Waiting {
    splice: PendingSplice,
    done: Option<oneshot::Sender<Result<OutPoint, String>>>,
}

/// The splicing service.
pub struct Splices {
    under_way: Mutex<HashMap<ChannelId, Waiting>>,
    records: Records<SpliceRecord>,
    channel_manager: Arc<ChannelManager>,
    peer_manager: Arc<PeerManager>,
    wallet: Arc<OnchainWallet>,
    network: bitcoin::Network,
}

impl Splices {
    /// The service, with the agreed splices recorded before a restart under way again.
    pub fn open(store: &lanes_store::DynStore, channel_manager: Arc<ChannelManager>, peer_manager: Arc<PeerManager>, wallet: Arc<OnchainWallet>, network: bitcoin::Network) -> Result<Self, NodeError> {
        let records = Records::open(store, lanes_store::layout::SPLICES)?;
        let under_way = records.all()?.into_iter().map(|r: SpliceRecord| (ChannelId(r.channel_id), Waiting { splice: r.splice, done: None })).collect();
        Ok(Self { under_way: Mutex::new(under_way), records, channel_manager, peer_manager, wallet, network })
    }

    fn usable(&self, id: &str) -> Result<(ChannelId, PublicKey, u64), NodeError> {
        let id = crate::ids::parse_channel_id(id)?;
        let c = self
            .channel_manager
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == id)
            .ok_or_else(|| NodeError::NotFound(format!("no open channel {id}")))?;
        let peer = c.counterparty.node_id;
        if self.peer_manager.peer_by_node_id(&peer).is_none() {
            return Err(PeerError::NotConnected { peer, hint: "a splice is agreed with it" }.into());
        }
        if !c.is_channel_ready {
            return Err(NodeError::Refused(format!("channel {id} is not open yet")));
        }
        if self.pending(&id).is_some() {
            return Err(NodeError::Refused(format!("channel {id} has a splice under way already")));
        }
        Ok((id, peer, c.outbound_capacity_msat / 1000))
    }

    /// Adds `amount_sat` of wallet coins to the channel; returns its new funding output once the peer agreed
    /// (it confirms, and the channel moves onto it, later).
    /// The wallet keeps the anchor channels' fee-bumping reserve, as for opens and sends.
    pub async fn splice_in(&self, id: &str, amount_sat: u64, sat_per_vbyte: Option<&str>) -> Result<OutPoint, NodeError> {
        if amount_sat == 0 {
            return Err(NodeError::Invalid("amount must be greater than 0".into()));
        }
        let (channel_id, peer, _) = self.usable(id)?;
        let reserve_sat = crate::anchors::anchor_reserve_sat(&self.channel_manager, 0);
        let wallet = Arc::clone(&self.wallet);
        let rate = sat_per_vbyte.map(str::to_string);
        let (coins, fee_rate) = tokio::task::spawn_blocking(move || wallet.splice_inputs(amount_sat, rate.as_deref(), reserve_sat))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))??;
        let inputs = coins
            .into_iter()
            .map(|(tx, vout)| FundingTxInput::new_p2wpkh(tx, vout).map_err(|()| NodeError::Internal("a wallet coin is not P2WPKH".into())))
            .collect::<Result<Vec<_>, _>>()?;
        let change_script = Some(self.wallet.new_change_script()?);
        let contribution = SpliceContribution::SpliceIn { value: Amount::from_sat(amount_sat), inputs, change_script };
        self.start(channel_id, peer, contribution, fee_rate, amount_sat as i64).await
    }

    /// Moves `amount_sat` of our channel balance to `address` (the fee comes out of the channel too).
    pub async fn splice_out(&self, id: &str, amount_sat: u64, address: &str, sat_per_vbyte: Option<&str>) -> Result<OutPoint, NodeError> {
        if amount_sat == 0 {
            return Err(NodeError::Invalid("amount must be greater than 0".into()));
        }
        let address = lanes_wallet::wallet::parse_address(address, self.network)?;
        let (channel_id, peer, spendable_sat) = self.usable(id)?;
        if amount_sat > spendable_sat {
            return Err(NodeError::Refused(format!("the channel can send {spendable_sat} sat now; {amount_sat} sat (plus the fee) cannot leave it")));
        }
        let fee_rate = self.wallet.fee_rate(sat_per_vbyte)?;
        let contribution = SpliceContribution::SpliceOut { outputs: vec![TxOut { value: Amount::from_sat(amount_sat), script_pubkey: address.script_pubkey() }] };
        self.start(channel_id, peer, contribution, fee_rate, -(amount_sat as i64)).await
    }

    async fn start(&self, channel_id: ChannelId, peer: PublicKey, contribution: SpliceContribution, fee_rate: bitcoin::FeeRate, delta_sat: i64) -> Result<OutPoint, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.under_way.lock().unwrap_or_else(|p| p.into_inner()).insert(channel_id, Waiting { splice: PendingSplice { delta_sat, funding_txo: None }, done: Some(tx) });
        let per_kw = u32::try_from(fee_rate.to_sat_per_kwu()).unwrap_or(u32::MAX).max(253);
        if let Err(e) = self.channel_manager.splice_channel(&channel_id, &peer, contribution, per_kw, None) {
            self.under_way.lock().unwrap_or_else(|p| p.into_inner()).remove(&channel_id);
            return Err(NodeError::Refused(format!("the splice could not start: {e:?}")));
        }
        tracing::info!(%channel_id, peer = %peer, delta_sat, sat_per_kw = per_kw, "splice requested");
        // LDK reports a splice cut short by a disconnection only when the peer is back: the call does not wait
        // for that, it looks at the connection while it waits.
        let deadline = tokio::time::Instant::now() + NEGOTIATION_TIMEOUT;
        let mut rx = rx;
        let outcome = loop {
            tokio::select! {
                done = &mut rx => break Some(done),
                _ = tokio::time::sleep(PEER_CHECK) => {}
            }
            if self.peer_manager.peer_by_node_id(&peer).is_none() {
                self.give_up(channel_id);
                return Err(PeerError::NotConnected {
                    peer,
                    hint: "it disconnected before the splice was agreed; a splice both sides had signed completes when it is back, any other is abandoned",
                }
                .into());
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
        };
        match outcome {
            Some(Ok(Ok(txo))) => Ok(txo),
            Some(Ok(Err(why))) => Err(NodeError::Refused(format!("the splice failed: {why}"))),
            Some(Err(_)) => Err(NodeError::Internal("the splice's outcome was lost".into())),
            None => {
                self.give_up(channel_id);
                Err(NodeError::Timeout(format!("the peer did not agree on the splice within {} s; it may still complete", NEGOTIATION_TIMEOUT.as_secs())))
            }
        }
    }

    /// The caller stopped waiting before the splice was agreed: it is no longer shown as under way, so the
    /// channel can be spliced again; if it is agreed after all, SplicePending records it then.
    fn give_up(&self, channel_id: ChannelId) {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        if under_way.get(&channel_id).is_some_and(|w| w.splice.funding_txo.is_none()) {
            under_way.remove(&channel_id);
        }
    }

    /// LDK asks us to sign our inputs of an agreed splice transaction (FundingTransactionReadyForSigning).
    pub fn sign(&self, channel_id: ChannelId, peer: PublicKey, unsigned: bitcoin::Transaction) {
        let signed = self.wallet.sign_splice(unsigned).map_err(|e| e.to_string()).and_then(|tx| {
            let txid = tx.compute_txid();
            self.channel_manager.funding_transaction_signed(&channel_id, &peer, tx).map_err(|e| format!("{e:?}")).map(|()| txid)
        });
        match signed {
            Ok(txid) => tracing::info!(%channel_id, %txid, "splice transaction signed"),
            Err(why) => {
                tracing::warn!(%channel_id, error = %why, "could not sign the splice transaction");
                self.failed(channel_id, &why);
            }
        }
    }

    /// The splice transaction is agreed (SplicePending): the channel will move onto `funding_txo`. Recorded
    /// before the caller hears of it (an error is for the event handler to retry).
    ///
    /// `new_value_sat` is the new funding output's value, when the transaction is at hand: a splice the peer
    /// started shows what it changes by (its capacity after, less before).
    pub fn pending_on(&self, channel_id: ChannelId, funding_txo: OutPoint, new_value_sat: Option<u64>) -> Result<(), NodeError> {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        // A splice the peer started is under way too.
        let w = under_way.entry(channel_id).or_insert_with(|| {
            let capacity = self.channel_manager.list_channels().into_iter().find(|c| c.channel_id == channel_id).map(|c| c.channel_value_satoshis);
            let delta_sat = match (new_value_sat, capacity) {
                (Some(new), Some(old)) => new as i64 - old as i64,
                _ => 0,
            };
            Waiting { splice: PendingSplice { delta_sat, funding_txo: None }, done: None }
        });
        w.splice.funding_txo = Some(funding_txo);
        self.records.put(&channel_id.0, &SpliceRecord { channel_id: channel_id.0, splice: w.splice.clone() })?;
        if let Some(done) = w.done.take() {
            let _ = done.send(Ok(funding_txo));
        }
        Ok(())
    }

    fn forget(&self, channel_id: &ChannelId) {
        if let Err(e) = self.records.remove(&channel_id.0) {
            tracing::warn!(%channel_id, error = %e, "could not forget a finished splice's record");
        }
    }

    /// The splice failed (SpliceFailed): the channel stays on its funding; coins we put in are ours again.
    pub fn failed(&self, channel_id: ChannelId, why: &str) {
        if let Some(mut w) = self.under_way.lock().unwrap_or_else(|p| p.into_inner()).remove(&channel_id) {
            if let Some(done) = w.done.take() {
                let _ = done.send(Err(why.to_string()));
            }
        }
        self.forget(&channel_id);
    }

    /// The channel is ready on `funding_txo` (ChannelReady): a splice onto it is done.
    pub fn locked(&self, channel_id: ChannelId, funding_txo: Option<OutPoint>) -> bool {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        match under_way.get(&channel_id) {
            Some(w) if w.splice.funding_txo.is_some() && w.splice.funding_txo == funding_txo => {
                under_way.remove(&channel_id);
                self.forget(&channel_id);
                true
            }
            _ => false,
        }
    }

    /// The splice under way on this channel, if any.
    pub fn pending(&self, channel_id: &ChannelId) -> Option<PendingSplice> {
        self.under_way.lock().unwrap_or_else(|p| p.into_inner()).get(channel_id).map(|w| w.splice.clone())
    }
}
