//! The node's connection to bitcoind for the Lightning side: blocks, fee estimates, broadcasts.
//!
//! Owns: the JSON-RPC client LDK's block sync polls, the cache of fee estimates LDK reads (refreshed by
//! [`BitcoindClient::refresh_fees`] from `estimatesmartfee`, with fixed regtest fallbacks when bitcoind has no
//! estimate yet), and broadcasting the transactions LDK hands over.
//!
//! Must never: block an LDK callback on the network. `FeeEstimator` answers from the cache and
//! `BroadcasterInterface` hands the send to a tokio task.
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use base64::Engine;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{BlockHash, Network, Transaction, Txid};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning_block_sync::http::HttpEndpoint;
use lightning_block_sync::rpc::RpcClient;
use serde_json::{json, Value};

use crate::broadcast::{BroadcastJournal, Outcome};
use crate::ChannelError;

/// LDK's floor for fee rates: 253 sat per 1000 weight units (just above 1 sat/vB).
pub const MIN_FEERATE_SAT_PER_KW: u32 = 253;

/// Every fee target LDK asks for, with the `estimatesmartfee` parameters we answer it with and the
/// fallback (sat per 1000 weight) used while bitcoind has no estimate, as on a fresh regtest chain.
const TARGETS: [(ConfirmationTarget, u16, &str, u32); 8] = [
    // These two fallbacks are the operator's (FeeFallbacks); the numbers here are unused.
    (ConfirmationTarget::MaximumFeeEstimate, 1, "CONSERVATIVE", 0),
    (ConfirmationTarget::UrgentOnChainSweep, 6, "CONSERVATIVE", 0),
    // Not an estimate: bitcoind's mempool minimum (see `refresh_fees`); the numbers here are unused.
    (ConfirmationTarget::MinAllowedAnchorChannelRemoteFee, 1008, "ECONOMICAL", MIN_FEERATE_SAT_PER_KW),
    (ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee, 1008, "ECONOMICAL", MIN_FEERATE_SAT_PER_KW),
    (ConfirmationTarget::AnchorChannelFee, 1008, "ECONOMICAL", 500),
    (ConfirmationTarget::NonAnchorChannelFee, 12, "ECONOMICAL", 1_000),
    (ConfirmationTarget::ChannelCloseMinimum, 144, "ECONOMICAL", MIN_FEERATE_SAT_PER_KW),
    (ConfirmationTarget::OutputSpendingFee, 12, "ECONOMICAL", 1_000),
];

/// Fee rates (sat per 1000 weight) used while bitcoind has no estimate for the target, set by the operator.
#[derive(Clone, Copy, Debug)]
pub struct FeeFallbacks {
    /// [`ConfirmationTarget::MaximumFeeEstimate`]: the highest rate we expect an honest peer to use.
    pub maximum_sat_per_kw: u32,
    /// [`ConfirmationTarget::UrgentOnChainSweep`].
    pub urgent_sat_per_kw: u32,
}

impl Default for FeeFallbacks {
    fn default() -> Self {
        FeeFallbacks { maximum_sat_per_kw: 62_500, urgent_sat_per_kw: 5_000 }
    }
}

/// Headroom added to twice bitcoind's next-block estimate for [`ConfirmationTarget::MaximumFeeEstimate`]
/// (10 sat/vB): LDK asks for a value above any honest peer's estimate, since it judges peers' fee rates
/// (through the dust exposure cap) against it.
const MAXIMUM_HEADROOM_SAT_PER_KW: u32 = 2_500;

/// Where bitcoind's JSON-RPC interface is and how to log in.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `http://host:port`.
    pub url: String,
    pub user: String,
    pub password: String,
}

/// bitcoind, as LDK's block source, fee estimator and broadcaster.
pub struct BitcoindClient {
    rpc: Arc<RpcClient>,
    network: Network,
    /// sat per 1000 weight, per target.
    fees: RwLock<HashMap<ConfirmationTarget, u32>>,
    fallbacks: FeeFallbacks,
    runtime: tokio::runtime::Handle,
    /// The last transactions LDK asked us to broadcast, oldest first, so the watcher can tell an operator
    /// what they were (a justice transaction, say). Recorded before the network call, in LDK's call.
    recent: Mutex<VecDeque<Transaction>>,
    /// Every transaction handed to us is journaled here before its first broadcast (set once by the builder).
    journal: OnceLock<Arc<BroadcastJournal>>,
    /// Outputs that can never exist (channel fundings that were double-spent): what spends them is never
    /// sent, since bitcoind could only refuse it, and would be re-sent for ever.
    dead: Mutex<HashSet<bitcoin::OutPoint>>,
}

/// How many broadcasts [`BitcoindClient::recent_spenders_of`] remembers.
const RECENT_BROADCASTS: usize = 256;

/// The best block bitcoind knows.
#[derive(Clone, Copy, Debug)]
pub struct Tip {
    pub height: u32,
    pub hash: BlockHash,
}

impl BitcoindClient {
    /// Connects and checks that bitcoind runs the chain we expect.
    pub async fn connect(cfg: &RpcConfig, network: Network, fallbacks: FeeFallbacks) -> Result<Self, ChannelError> {
        let endpoint = endpoint(&cfg.url)?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", cfg.user, cfg.password));
        let client = Self {
            rpc: Arc::new(RpcClient::new(&credentials, endpoint)),
            network,
            fees: RwLock::new(TARGETS.iter().map(|(t, _, _, fallback)| (*t, fallback_for(*t, *fallback, &fallbacks))).collect()),
            fallbacks,
            runtime: tokio::runtime::Handle::current(),
            recent: Mutex::new(VecDeque::new()),
            journal: OnceLock::new(),
            dead: Mutex::new(HashSet::new()),
        };
        let info = client.call("getblockchaininfo", &[]).await?;
        let chain = info["chain"].as_str().unwrap_or_default();
        let expected = match network {
            Network::Bitcoin => "main",
            Network::Testnet => "test",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        };
        if chain != expected {
            return Err(ChannelError::Mismatch(format!("bitcoind runs chain {chain:?}, lanesd is configured for {expected:?}")));
        }
        Ok(client)
    }

    /// The JSON-RPC client, as LDK's [`lightning_block_sync::BlockSource`].
    pub fn block_source(&self) -> Arc<RpcClient> {
        Arc::clone(&self.rpc)
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// Calls any RPC method and returns its JSON result.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, ChannelError> {
        self.rpc
            .call_method::<Value>(method, params)
            .await
            .map_err(|e| ChannelError::Bitcoind(format!("{method}: {e}")))
    }

    /// bitcoind's best block.
    pub async fn tip(&self) -> Result<Tip, ChannelError> {
        let info = self.call("getblockchaininfo", &[]).await?;
        let height = info["blocks"].as_u64().ok_or_else(|| ChannelError::Bitcoind("getblockchaininfo: no blocks".into()))?;
        let hash = info["bestblockhash"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| ChannelError::Bitcoind("getblockchaininfo: no bestblockhash".into()))?;
        Ok(Tip { height: height as u32, hash })
    }

    /// Asks bitcoind for a fresh estimate for every target. Targets bitcoind cannot estimate keep their
    /// fallback. Fee rates are returned by bitcoind in BTC/kvB; LDK wants sat per 1000 weight (= /4).
    ///
    /// The lowest commitment fee rate we accept from a peer on an anchor channel
    /// ([`ConfirmationTarget::MinAllowedAnchorChannelRemoteFee`]) is bitcoind's mempool minimum, not an
    /// estimate. LDK force-closes a channel whose peer sends a lower rate, and, once a day of blocks has passed,
    /// an inbound channel whose rate stayed below the lowest of the day's values. An anchor commitment only has
    /// to enter the mempool, its anchor pays the rest when it must confirm (LDK's doc of the target says as
    /// much; Eclair relaxed its own check for anchor channels the same way). A 1008-block estimate there
    /// force-closed the channels of wallets that were offline while fees rose, and of LND funders, which cap
    /// anchor commitments at 10 sat/vB by default, whenever the estimate stayed above that for a day
    /// (`channels.rs` `a_peers_anchor_channel_stays_open_when_fees_rise_while_the_peer_is_offline`).
    pub async fn refresh_fees(&self) -> Result<(), ChannelError> {
        let mut fresh = HashMap::new();
        let pool = self.call("getmempoolinfo", &[]).await?;
        let mempool_min = pool["mempoolminfee"].as_f64().map(|btc_per_kvb| (btc_per_kvb * 100_000_000.0 / 4.0).ceil() as u32);
        fresh.insert(ConfirmationTarget::MinAllowedAnchorChannelRemoteFee, mempool_min.unwrap_or(0).max(MIN_FEERATE_SAT_PER_KW));
        for (target, blocks, mode, fallback) in TARGETS {
            if target == ConfirmationTarget::MinAllowedAnchorChannelRemoteFee {
                continue;
            }
            let res = self.call("estimatesmartfee", &[json!(blocks), json!(mode)]).await?;
            let estimate = res["feerate"].as_f64().map(|btc_per_kvb| (btc_per_kvb * 100_000_000.0 / 4.0).round() as u32);
            let rate = match (target, estimate) {
                (ConfirmationTarget::MaximumFeeEstimate, Some(e)) => e.saturating_mul(2).saturating_add(MAXIMUM_HEADROOM_SAT_PER_KW),
                (_, Some(e)) => e,
                (_, None) => fallback_for(target, fallback, &self.fallbacks),
            };
            fresh.insert(target, rate.max(MIN_FEERATE_SAT_PER_KW));
        }
        *self.fees.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl BitcoindClient {
    /// From now on, every transaction LDK hands over is journaled before it is sent, and re-sent by
    /// [`BitcoindClient::rebroadcast`] until it is buried.
    pub fn keep_journal(&self, journal: Arc<BroadcastJournal>) {
        let _ = self.journal.set(journal);
    }

    /// Sends every journaled transaction that is not buried yet again (in the order they were first handed
    /// over), at chain height `height`. Logs once per change of what bitcoind says about each.
    ///
    /// Stops at the first transaction bitcoind cannot be reached for (one WARN line for the round), and
    /// between transactions once `shutdown` is set: with bitcoind down, LDK's RPC client takes 100 ms to give
    /// up on each, and a SIGTERM waited 16 s for a round of 155 (each with its own WARN line). What is not
    /// sent stays journaled, for the next round or the next start.
    pub async fn rebroadcast(&self, height: u32, shutdown: &tokio::sync::watch::Receiver<bool>) {
        let Some(journal) = self.journal.get() else { return };
        let due = journal.due();
        for (i, tx) in due.iter().enumerate() {
            if *shutdown.borrow() {
                return;
            }
            let txid = tx.compute_txid();
            let sent = self.rpc.call_method::<Value>("sendrawtransaction", &[json!(serialize_hex(tx))]).await;
            if let Err(e) = &sent {
                if unreachable(e) {
                    tracing::warn!(error = %e, waiting = due.len() - i, "bitcoind unreachable: journaled transactions are re-sent at the next round");
                    return;
                }
            }
            let outcome = Outcome::of(sent.map(|_| ()).map_err(|e| format!("sendrawtransaction: {e}")));
            match journal.settle(txid, outcome, height) {
                Some(Outcome::InMempool) => tracing::info!(%txid, "transaction broadcast (re-sent until it confirms)"),
                Some(Outcome::Confirmed) => tracing::debug!(%txid, height, "journaled transaction confirmed"),
                Some(Outcome::InputsSpent) => tracing::info!(%txid, "transaction no longer re-broadcast: its inputs are spent (confirmed and spent, or replaced)"),
                Some(Outcome::Refused(why)) => tracing::warn!(%txid, error = %why, "broadcast not accepted; will retry on the next block"),
                None => {}
            }
        }
    }

    /// From now on, nothing spending `outpoint` is broadcast, and what the journal holds that spends it is
    /// forgotten: `outpoint` is a channel funding that was double-spent, so no such transaction can confirm
    /// (LDK still hands over the channel's commitment when it closes, and again on later blocks).
    pub fn never_broadcast_spenders_of(&self, outpoint: bitcoin::OutPoint) {
        self.dead.lock().unwrap_or_else(|p| p.into_inner()).insert(outpoint);
        for txid in self.journal.get().map(|j| j.forget_spenders_of(outpoint)).unwrap_or_default() {
            tracing::info!(%txid, funding = %outpoint, "transaction no longer re-broadcast: it spends a funding that was double-spent");
        }
    }

    /// Whether `tx` spends an output that can never exist (see [`Self::never_broadcast_spenders_of`]).
    fn spends_dead_output(&self, tx: &Transaction) -> bool {
        let dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        !dead.is_empty() && tx.input.iter().any(|i| dead.contains(&i.previous_output))
    }

    /// A transaction we broadcast (journaled or recent), else one in bitcoind's mempool (which needs no
    /// `-txindex`); None when neither has it.
    pub async fn known_transaction(&self, txid: Txid) -> Option<Transaction> {
        if let Some(tx) = self.journal.get().and_then(|j| j.get(txid)) {
            return Some(tx);
        }
        if let Some(tx) = self.recent.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|t| t.compute_txid() == txid) {
            return Some(tx.clone());
        }
        let hex = self.call("getrawtransaction", &[json!(txid.to_string())]).await.ok()?;
        bitcoin::consensus::encode::deserialize_hex(hex.as_str()?).ok()
    }

    /// Whether bitcoind's mempool holds `txid`.
    pub async fn in_mempool(&self, txid: Txid) -> Result<bool, ChannelError> {
        match self.rpc.call_method::<Value>("getmempoolentry", &[json!(txid.to_string())]).await {
            Ok(_) => Ok(true),
            // RPC_INVALID_ADDRESS_OR_KEY (-5): "Transaction not in mempool".
            Err(e) if e.to_string().contains("not in mempool") => Ok(false),
            Err(e) => Err(ChannelError::Bitcoind(format!("getmempoolentry: {e}"))),
        }
    }

    /// Whether `outpoint` is an unspent output of the chain (with `mempool`: and not spent, or created,
    /// by a mempool transaction).
    pub async fn is_unspent(&self, outpoint: bitcoin::OutPoint, mempool: bool) -> Result<bool, ChannelError> {
        let out = self.call("gettxout", &[json!(outpoint.txid.to_string()), json!(outpoint.vout), json!(mempool)]).await?;
        Ok(!out.is_null())
    }

    /// The transaction we broadcast (journaled, or among the recent broadcasts) that spends `outpoint`.
    pub fn broadcast_spender_of(&self, outpoint: bitcoin::OutPoint) -> Option<Txid> {
        if let Some(txid) = self.journal.get().and_then(|j| j.spender_of(outpoint)) {
            return Some(txid);
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|tx| tx.input.iter().any(|i| i.previous_output == outpoint)).map(|tx| tx.compute_txid())
    }

    /// Transactions among the recent broadcasts that spend an output of `txid`, oldest first.
    pub fn recent_spenders_of(&self, txid: &Txid) -> Vec<Txid> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().filter(|tx| tx.input.iter().any(|i| i.previous_output.txid == *txid)).map(|tx| tx.compute_txid()).collect()
    }
}

impl FeeEstimator for BitcoindClient {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        let fees = self.fees.read().unwrap_or_else(|p| p.into_inner());
        fees.get(&target).copied().unwrap_or(MIN_FEERATE_SAT_PER_KW)
    }
}

impl BroadcasterInterface for BitcoindClient {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        // LDK calls this from inside its own locks: the journal write is local (and must be on disk before
        // LDK persists state that assumes the broadcast); the network call goes to a task. The journal
        // re-sends what bitcoind did not take on every block (see `rebroadcast`).
        let live: Vec<&Transaction> = txs.iter().copied().filter(|tx| !self.spends_dead_output(tx)).collect();
        if live.len() < txs.len() {
            tracing::debug!(skipped = txs.len() - live.len(), "not broadcasting transactions that spend a double-spent funding");
        }
        let txs = &live[..];
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            for tx in txs {
                if recent.len() == RECENT_BROADCASTS {
                    recent.pop_front();
                }
                recent.push_back((*tx).clone());
            }
        }
        if let Some(journal) = self.journal.get() {
            for tx in txs {
                if let Err(e) = journal.record(tx) {
                    tracing::error!(txid = %tx.compute_txid(), error = %e, "could not journal a transaction before broadcasting it");
                }
            }
        }
        for tx in txs {
            let tx = (*tx).clone();
            let rpc = Arc::clone(&self.rpc);
            let journal = self.journal.get().cloned();
            self.runtime.spawn(async move {
                let txid = tx.compute_txid();
                let sent = rpc.call_method::<Value>("sendrawtransaction", &[json!(serialize_hex(&tx))]).await;
                let outcome = Outcome::of(sent.map(|_| ()).map_err(|e| e.to_string()));
                if let Some(journal) = journal {
                    // What the re-broadcasts compare with, so they only speak of a change. The height is only
                    // used for a confirmed transaction, which the next re-broadcast places itself.
                    journal.note(txid, outcome.clone());
                }
                match outcome {
                    Outcome::InMempool => tracing::info!(%txid, "transaction broadcast"),
                    // Re-broadcasts of what already confirmed, or of what a later transaction replaced.
                    Outcome::Confirmed | Outcome::InputsSpent => tracing::debug!(%txid, "broadcast not needed"),
                    Outcome::Refused(why) => tracing::warn!(%txid, error = %why, "broadcast not accepted; will retry on the next block"),
                }
            });
        }
    }
}

/// Whether an RPC error means bitcoind was not reached (connection refused, reset or timed out), rather than an
/// answer of bitcoind's: LDK's RPC client reports bitcoind's own errors, HTTP ones included, as `Other`, and a
/// malformed answer as `InvalidData`.
fn unreachable(e: &std::io::Error) -> bool {
    !matches!(e.kind(), std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData)
}

fn fallback_for(target: ConfirmationTarget, fixed: u32, f: &FeeFallbacks) -> u32 {
    match target {
        ConfirmationTarget::MaximumFeeEstimate => f.maximum_sat_per_kw,
        ConfirmationTarget::UrgentOnChainSweep => f.urgent_sat_per_kw,
        _ => fixed,
    }
}

/// Parses `http://host:port[/path]` into LDK's endpoint type.
fn endpoint(url: &str) -> Result<HttpEndpoint, ChannelError> {
    let bad = || ChannelError::Bitcoind(format!("bitcoind RPC url {url:?} is not http://host:port"));
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(HttpEndpoint::for_host(host.to_string()).with_port(port).with_path(path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpc_urls() {
        let e = endpoint("http://127.0.0.1:18443").unwrap();
        assert_eq!((e.host(), e.port(), e.path()), ("127.0.0.1", 18443, "/"));
        let e = endpoint("http://localhost:8332/wallet/x").unwrap();
        assert_eq!((e.host(), e.port(), e.path()), ("localhost", 8332, "/wallet/x"));
        assert!(endpoint("https://a:1").is_err());
        assert!(endpoint("http://nohost").is_err());
        assert!(endpoint("http://a:notaport").is_err());
    }
}
