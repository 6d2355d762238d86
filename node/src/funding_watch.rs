//! Unconfirmed channel fundings: finds one that can never confirm (its inputs were spent by another
//! transaction that confirmed, or are gone with a replaced parent) and closes its channel, claiming
//! nothing.
//!
//! Why: LDK closes a channel whose funding confirmed and was reorged out, and an inbound one whose
//! funding did not confirm within two weeks, but a zero-conf channel (usable before its funding
//! confirms) or an outbound one waiting for its confirmations stays open for ever if the funding is
//! double-spent. Eclair closes such channels the same way ("funding tx double-spent").
//!
//! Owns: the record of fundings found double-spent (with our balance in the channel when it closed,
//! which nobody can claim: the channel never existed on-chain), the inputs of the unconfirmed fundings
//! it has seen, and telling the broadcaster never to send what spends a dead funding. Must never: judge
//! a funding that bitcoind's mempool or chain holds, or act on one block's view (a double spend is acted
//! on once it is [`DOUBLE_SPEND_DEPTH`] blocks old, so a short reorg that brings the funding back does
//! not close a good channel).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Txid};
use lightning::ln::types::ChannelId;
use lightning::ln::channel_state::ChannelDetails;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::types::{ChainMonitor, ChannelManager};
use lanes_store::DynStore;
use lanes_wallet::OnchainWallet;

use crate::channels::Channels;
use crate::store::Records;
use crate::NodeError;

/// Blocks a funding must have been found double-spent for before its channel is closed.
pub const DOUBLE_SPEND_DEPTH: u32 = 3;

/// How often, and how long, a new channel's funding is looked for in the mempool ([`FundingWatch::learn_soon`]).
const LEARN_POLL: Duration = Duration::from_millis(50);
const LEARN_FOR: Duration = Duration::from_secs(10);

/// The message LDK sends the peer (and records as the reason) when we close such a channel.
pub const CLOSE_MESSAGE: &str = "funding transaction double-spent";

/// A channel funding found double-spent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadFunding {
    pub channel_id: String,
    pub peer: String,
    pub funding_txo: String,
    /// The funding's input found spent elsewhere (or whose parent is gone).
    pub spent_input: String,
    /// Our balance in the channel when it was closed, in msat: lost, since the channel never existed
    /// on-chain.
    pub local_balance_msat: u64,
    /// Whether we funded the channel.
    pub funder: bool,
    pub height: u32,
}

impl crate::record::Record for DeadFunding {
    const KIND: &'static str = "double-spent funding";
}

/// What bitcoind says about an unconfirmed funding.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// In the mempool or the chain, or its inputs could still be spent by it.
    Alive,
    /// It can never confirm: this input is spent in the chain, or its parent is nowhere.
    Dead(OutPoint),
    /// We cannot tell (bitcoind unreachable, or we never saw the transaction).
    Unknown,
}

/// The watch over unconfirmed channel fundings.
pub struct FundingWatch {
    channel_manager: Arc<ChannelManager>,
    chain_monitor: Arc<ChainMonitor>,
    bitcoind: Arc<BitcoindClient>,
    wallet: Arc<OnchainWallet>,
    dead: Records<DeadFunding>,
    /// Inputs of the unconfirmed fundings seen so far (we keep them: once double-spent, bitcoind no longer
    /// has the funding to show).
    inputs: Mutex<HashMap<Txid, Vec<OutPoint>>>,
    /// Fundings found dead, with the height they were first found so.
    suspects: Mutex<HashMap<OutPoint, u32>>,
    /// The unconfirmed fundings watched, as of the last check.
    watched: Mutex<HashMap<OutPoint, Watched>>,
    channels: Arc<Channels>,
}

/// A channel with an unconfirmed funding, as last seen.
#[derive(Clone, Debug)]
struct Watched {
    channel_id: ChannelId,
    peer: PublicKey,
    /// Our balance, in msat.
    balance_msat: u64,
    funder: bool,
    /// Still open (else it closed before its funding confirmed).
    open: bool,
}

impl FundingWatch {
    /// Reads the fundings already found dead and tells the broadcaster never to send what spends them.
    pub fn open(
        store: &DynStore,
        channel_manager: Arc<ChannelManager>,
        chain_monitor: Arc<ChainMonitor>,
        bitcoind: Arc<BitcoindClient>,
        wallet: Arc<OnchainWallet>,
        channels: Arc<Channels>,
    ) -> Result<Self, NodeError> {
        let dead = Records::open(store, lanes_store::layout::DEAD_FUNDINGS)?;
        let (inputs, suspects, watched) = Default::default();
        let watch = Self { channel_manager, chain_monitor, bitcoind, wallet, dead, inputs, suspects, watched, channels };
        for d in watch.dead.all()? {
            if let Ok(outpoint) = d.funding_txo.parse() {
                watch.bitcoind.never_broadcast_spenders_of(outpoint);
            }
        }
        Ok(watch)
    }

    /// The record of `funding`, if it was found double-spent.
    pub fn dead(&self, funding: OutPoint) -> Option<DeadFunding> {
        let all = self.dead.all().unwrap_or_default();
        all.into_iter().find(|d| d.funding_txo == funding.to_string())
    }

    /// Looks at every channel whose funding has not confirmed (and those that closed before it did), at
    /// chain height `height`; acts on those whose funding has been dead for [`DOUBLE_SPEND_DEPTH`] blocks.
    pub async fn check(&self, height: u32) {
        let watched = self.refresh();
        self.suspects.lock().unwrap_or_else(|p| p.into_inner()).retain(|o, _| watched.iter().any(|(f, _)| f == o));
        self.inputs.lock().unwrap_or_else(|p| p.into_inner()).retain(|t, _| watched.iter().any(|(f, _)| f.txid == *t));
        for (funding, w) in watched {
            if let Some(d) = self.dead(funding) {
                // Closed before (a crash between the record and LDK's close): close it again.
                if w.open {
                    self.close(&w, &d);
                } else {
                    self.channels.funding_double_spent(w.channel_id, d.local_balance_msat);
                    self.forget(funding);
                }
                continue;
            }
            if !w.open && self.funding_spend_confirmed(&w) {
                // It confirmed after all, and the close spent it: an ordinary closed channel.
                self.forget(funding);
                continue;
            }
            let spent = match self.fate(funding).await {
                Fate::Dead(input) => input,
                Fate::Alive if !w.open => {
                    // A closed channel whose funding can still confirm: LDK's monitor takes it from here.
                    self.forget(funding);
                    continue;
                }
                Fate::Alive | Fate::Unknown => {
                    self.suspects.lock().unwrap_or_else(|p| p.into_inner()).remove(&funding);
                    continue;
                }
            };
            let first = *self.suspects.lock().unwrap_or_else(|p| p.into_inner()).entry(funding).or_insert(height);
            if height == first {
                tracing::warn!(channel_id = %w.channel_id, peer = %w.peer, %funding, %spent, "channel funding looks double-spent: closing the channel if it still is in {} blocks", DOUBLE_SPEND_DEPTH - 1);
            }
            if height + 1 < first + DOUBLE_SPEND_DEPTH {
                continue;
            }
            let record = DeadFunding {
                channel_id: w.channel_id.to_string(),
                peer: w.peer.to_string(),
                funding_txo: funding.to_string(),
                spent_input: spent.to_string(),
                local_balance_msat: w.balance_msat,
                funder: w.funder,
                height,
            };
            // Recorded before LDK closes the channel: the ChannelClosed event reads it, and a crash in
            // between closes it again at the next check.
            if let Err(e) = self.dead.put(&w.channel_id.0, &record) {
                tracing::error!(channel_id = %w.channel_id, error = %e, "could not record a double-spent funding; will try again");
                continue;
            }
            tracing::warn!(channel_id = %w.channel_id, peer = %record.peer, %funding, %spent, lost_msat = record.local_balance_msat, "channel funding double-spent: closing the channel; nothing can be claimed on-chain");
            if w.open {
                self.close(&w, &record);
            } else {
                // The peer closed it first: LDK's monitor waits for a commitment that can never confirm.
                self.stop_spending(&w, funding);
                self.channels.funding_double_spent(w.channel_id, record.local_balance_msat);
                self.forget(funding);
            }
        }
    }

    /// Stops watching `funding`.
    fn forget(&self, funding: OutPoint) {
        self.watched.lock().unwrap_or_else(|p| p.into_inner()).remove(&funding);
        self.suspects.lock().unwrap_or_else(|p| p.into_inner()).remove(&funding);
    }

    /// Whether the monitor of a closed channel has seen a transaction spending its funding confirm (so
    /// the funding confirmed too): its balances then wait on that spend's outputs.
    fn funding_spend_confirmed(&self, w: &Watched) -> bool {
        use lightning::chain::channelmonitor::Balance;
        let Ok(monitor) = self.chain_monitor.get_monitor(w.channel_id) else { return false };
        monitor.get_claimable_balances().iter().any(|b| {
            !matches!(b, Balance::ClaimableOnChannelClose { .. } | Balance::MaybeTimeoutClaimableHTLC { .. } | Balance::MaybePreimageClaimableHTLC { .. })
        })
    }

    /// Closes the channel of a dead funding, once nothing spending the funding can be sent any more (LDK
    /// hands over the commitment when it closes).
    fn close(&self, w: &Watched, d: &DeadFunding) {
        let Ok(funding) = d.funding_txo.parse::<OutPoint>() else { return };
        self.stop_spending(w, funding);
        if let Err(e) = self.channel_manager.force_close_broadcasting_latest_txn(&w.channel_id, &w.peer, CLOSE_MESSAGE.into()) {
            if self.channel_manager.list_channels().iter().any(|c| c.channel_id == w.channel_id) {
                tracing::warn!(channel_id = %w.channel_id, error = ?e, "closing the channel of a double-spent funding failed; will try again");
            } else {
                // The peer closed it meanwhile: its record (if LDK's event came first) says so now.
                self.channels.funding_double_spent(w.channel_id, d.local_balance_msat);
            }
        }
    }

    /// Nothing spending the dead `funding` is broadcast again; a funding we built leaves the wallet's
    /// pending transactions.
    fn stop_spending(&self, w: &Watched, funding: OutPoint) {
        self.bitcoind.never_broadcast_spenders_of(funding);
        if w.funder {
            if let Err(e) = self.wallet.forget_tx(funding.txid) {
                tracing::warn!(channel_id = %w.channel_id, error = %e, "could not release the double-spent funding from the wallet");
            }
        }
    }

    /// A new channel's funding: its inputs are learned as soon as the funding reaches bitcoind's mempool
    /// (looked for every [`LEARN_POLL`] for up to [`LEARN_FOR`]), not at the next regular look: a funding
    /// double-spent within moments of its broadcast would otherwise never be seen by the fundee, who
    /// never holds the transaction itself.
    pub fn learn_soon(watch: &Arc<Self>, txid: Txid) {
        let watch = Arc::clone(watch);
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + LEARN_FOR;
            while tokio::time::Instant::now() < until {
                if watch.remember_inputs(txid).await {
                    return;
                }
                tokio::time::sleep(LEARN_POLL).await;
            }
        });
    }

    /// Notes our balance in every channel with an unconfirmed funding (what is lost if the peer closes it
    /// over a double spend before we see it) and remembers the inputs of the fundings not seen yet.
    pub async fn learn(&self) {
        for (funding, w) in self.refresh() {
            if w.open {
                self.remember_inputs(funding.txid).await;
            }
        }
    }

    /// Brings the watched fundings up to date with LDK's channels: adds the unconfirmed ones, drops those
    /// that confirmed, marks those that closed; returns them.
    fn refresh(&self) -> Vec<(OutPoint, Watched)> {
        let open: HashMap<OutPoint, ChannelDetails> = self
            .channel_manager
            .list_channels()
            .into_iter()
            .filter_map(|c| Some((c.funding_txo?.into_bitcoin_outpoint(), c)))
            .collect();
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        for (funding, c) in &open {
            if c.confirmations.unwrap_or(0) == 0 {
                let balance_msat = crate::channels::balances(&self.chain_monitor, c).0;
                watched.insert(*funding, Watched { channel_id: c.channel_id, peer: c.counterparty.node_id, balance_msat, funder: c.is_outbound, open: true });
            } else {
                watched.remove(funding);
            }
        }
        // Closed while its funding was unconfirmed (the peer may have found the double spend first).
        for (funding, w) in watched.iter_mut() {
            w.open = open.contains_key(funding);
        }
        watched.iter().map(|(f, w)| (*f, w.clone())).collect()
    }

    /// What bitcoind says about `funding`, a funding LDK has seen no confirmation of.
    async fn fate(&self, funding: OutPoint) -> Fate {
        match self.bitcoind.in_mempool(funding.txid).await {
            Ok(true) => {
                self.remember_inputs(funding.txid).await;
                return Fate::Alive;
            }
            Ok(false) => {}
            Err(_) => return Fate::Unknown,
        }
        // Confirmed meanwhile (LDK will see it), and not spent yet.
        match self.bitcoind.is_unspent(funding, false).await {
            Ok(true) => return Fate::Alive,
            Ok(false) => {}
            Err(_) => return Fate::Unknown,
        }
        self.remember_inputs(funding.txid).await;
        let Some(inputs) = self.inputs.lock().unwrap_or_else(|p| p.into_inner()).get(&funding.txid).cloned() else { return Fate::Unknown };
        for input in inputs {
            // Unspent in the chain: the funding could still spend it. Its parent in the mempool: could still
            // confirm with it.
            match (self.bitcoind.is_unspent(input, false).await, self.bitcoind.in_mempool(input.txid).await) {
                (Ok(false), Ok(false)) => return Fate::Dead(input),
                (Ok(_), Ok(_)) => {}
                _ => return Fate::Unknown,
            }
        }
        Fate::Alive
    }

    /// Keeps the inputs of `txid` once we can see it (journaled, or in bitcoind's mempool); whether they are
    /// known now.
    async fn remember_inputs(&self, txid: Txid) -> bool {
        if self.inputs.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&txid) {
            return true;
        }
        match self.bitcoind.known_transaction(txid).await {
            Some(tx) => {
                tracing::debug!(funding_txid = %txid, inputs = tx.input.len(), "watching an unconfirmed funding for a double spend");
                let inputs = tx.input.iter().map(|i| i.previous_output).collect();
                self.inputs.lock().unwrap_or_else(|p| p.into_inner()).insert(txid, inputs);
                true
            }
            None => {
                tracing::trace!(funding_txid = %txid, "unconfirmed funding not seen yet");
                false
            }
        }
    }
}

/// Until shutdown: learns the inputs of new unconfirmed fundings every `interval` (a double spend may
/// replace one before the next block), and checks them all on every new block the Lightning state has seen.
pub async fn follow(watch: Arc<FundingWatch>, channel_manager: Arc<ChannelManager>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut last = None;
    loop {
        let best = channel_manager.current_best_block();
        if last != Some(best.block_hash) {
            watch.check(best.height).await;
            last = Some(best.block_hash);
        } else {
            watch.learn().await;
        }
        if crate::watcher::wait(&mut shutdown, interval).await {
            return;
        }
    }
}
