//! The BDK wallet of a node, kept in step with bitcoind.
//!
//! Owns: the BIP84 (native segwit) wallet, its sync from bitcoind's blocks and mempool through
//! `bdk_bitcoind_rpc`'s emitter (reorg-safe: the emitter reports where each block connects and BDK
//! replaces what a reorg removed), and on-chain sends. Must never: broadcast something it could not
//! persist first, or change any state when a send is refused.
//!
//! Every method here blocks (bitcoind's RPC client is synchronous): async callers use `spawn_blocking`.
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bdk_bitcoind_rpc::bitcoincore_rpc::{Auth, Client, RpcApi};
use bdk_bitcoind_rpc::Emitter;
use bdk_wallet::error::CreateTxError;
use bdk_wallet::template::Bip84;
use bdk_wallet::{KeychainKind, PersistedWallet, SignOptions, Wallet};
use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount, FeeRate, Network, ScriptBuf, Transaction, Txid};
use lanes_common::now_secs;

use crate::seed::Seed;
use crate::store::WalletStore;
use crate::WalletError;

/// Fee rate used when bitcoind has no estimate yet (a fresh regtest chain): 2 sat/vB.
const FALLBACK_FEE_RATE: FeeRate = FeeRate::from_sat_per_kwu(500);
/// Fee rates users may ask for, in sat/vB: bitcoind's minimum relay fee up to an obvious typo guard.
const MIN_SAT_PER_VB: f64 = 1.0;
const MAX_SAT_PER_VB: f64 = 10_000.0;

/// Balance in satoshis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Confirmed, plus our own unconfirmed change (safe to spend).
    pub confirmed: u64,
    /// Unconfirmed outputs received from others.
    pub unconfirmed: u64,
}

/// One unspent output of the wallet.
#[derive(Clone, Debug)]
pub struct Unspent {
    pub outpoint: bitcoin::OutPoint,
    pub amount_sat: u64,
    pub address: String,
    pub confirmations: u32,
    pub is_change: bool,
}

/// An on-chain payment request, as the API receives it (strings are parsed and checked here).
#[derive(Clone, Debug, Default)]
pub struct SendRequest {
    pub address: String,
    pub amount_sat: u64,
    pub send_all: bool,
    /// sat/vB as a decimal string; `None` to estimate.
    pub sat_per_vbyte: Option<String>,
    /// What must stay in the wallet afterwards (the fee-bumping reserve of anchor channels). With
    /// `send_all`, everything but this is sent and this goes back to a change output.
    pub reserve_sat: u64,
}

/// A payment that was broadcast.
#[derive(Clone, Debug)]
pub struct Sent {
    pub txid: Txid,
    pub amount_sat: u64,
    pub fee_sat: u64,
}

/// The node's on-chain wallet.
pub struct OnchainWallet {
    wallet: Mutex<PersistedWallet<WalletStore>>,
    store: Mutex<WalletStore>,
    emitter: Mutex<Emitter<Arc<Client>>>,
    rpc: Arc<Client>,
    network: Network,
    synced_height: AtomicU32,
    /// Our unconfirmed transactions that must stay canonical even while bitcoind's mempool lacks them (a
    /// channel funding being re-broadcast): their inputs stay spent, so no other payment can take them.
    kept: Mutex<HashSet<Txid>>,
}

/// How the wallet is loaded: BIP84 from the seed, and with the cache of derived scripts BDK keeps in the store.
/// Without the cache BDK derives every address it ever revealed (and 25 more) at each load: with 1,000
/// channels, 12% of a start-up's CPU (each channel reveals addresses).
fn load_params(seed: &Seed, network: Network) -> bdk_wallet::LoadParams {
    let xprv = seed.master_xprv(network);
    Wallet::load()
        .descriptor(KeychainKind::External, Some(Bip84(xprv, KeychainKind::External)))
        .descriptor(KeychainKind::Internal, Some(Bip84(xprv, KeychainKind::Internal)))
        .extract_keys()
        .check_network(network)
        .use_spk_cache(true)
}

/// How a new wallet is made (see [`load_params`]).
fn create_params(seed: &Seed, network: Network) -> bdk_wallet::CreateParams {
    let xprv = seed.master_xprv(network);
    Wallet::create(Bip84(xprv, KeychainKind::External), Bip84(xprv, KeychainKind::Internal)).network(network).use_spk_cache(true)
}

impl OnchainWallet {
    /// Loads the wallet kept in `store`, or creates it from the seed, and connects to bitcoind at
    /// `rpc_url`. A new wallet starts scanning at bitcoind's current tip: its seed was just made, so
    /// nothing before that can pay it.
    pub fn load_or_create(
        seed: &Seed,
        network: Network,
        store: lanes_store::DynStore,
        rpc_url: &str,
        rpc_user: &str,
        rpc_password: &str,
    ) -> Result<Self, WalletError> {
        let rpc = Arc::new(
            Client::new(rpc_url, Auth::UserPass(rpc_user.into(), rpc_password.into()))
                .map_err(|e| WalletError::Bitcoind(e.to_string()))?,
        );
        let mut store = WalletStore::new(store);
        let loaded = load_params(seed, network)
            .load_wallet(&mut store)
            .map_err(|e| WalletError::Store(format!("loading the wallet: {e}")))?;
        let (wallet, start_height) = match loaded {
            Some(mut w) => {
                // A wallet of an earlier lanes kept no script cache: the scripts just derived are kept now, so
                // the next load reads them instead. BDK hands them over with the next change of its index;
                // revealing up to the index already revealed changes nothing else.
                for keychain in [KeychainKind::External, KeychainKind::Internal] {
                    if let Some(revealed) = w.derivation_index(keychain) {
                        let _ = w.reveal_addresses_to(keychain, revealed).count();
                    }
                }
                w.persist(&mut store)?;
                (w, 0)
            }
            None => {
                let tip = rpc.get_block_count().map_err(|e| WalletError::Bitcoind(e.to_string()))?;
                let w = create_params(seed, network)
                    .create_wallet(&mut store)
                    .map_err(|e| WalletError::Store(format!("creating the wallet: {e}")))?;
                (w, tip as u32)
            }
        };
        let unconfirmed: Vec<Arc<Transaction>> = wallet
            .transactions()
            .filter(|t| !t.chain_position.is_confirmed())
            .map(|t| t.tx_node.tx.clone())
            .collect();
        let emitter = Emitter::new(Arc::clone(&rpc), wallet.latest_checkpoint(), start_height, unconfirmed);
        let height = wallet.latest_checkpoint().height();
        Ok(Self {
            wallet: Mutex::new(wallet),
            store: Mutex::new(store),
            emitter: Mutex::new(emitter),
            rpc,
            network,
            synced_height: AtomicU32::new(height),
            kept: Mutex::new(HashSet::new()),
        })
    }

    fn wallet(&self) -> MutexGuard<'_, PersistedWallet<WalletStore>> {
        self.wallet.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, wallet: &mut PersistedWallet<WalletStore>) -> Result<(), WalletError> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        wallet.persist(&mut store).map(|_| ())
    }

    /// Applies every block bitcoind has that the wallet has not seen (and undoes reorged ones), then the
    /// mempool. Returns the height synced to.
    pub fn sync(&self) -> Result<u32, WalletError> {
        let mut emitter = self.emitter.lock().unwrap_or_else(|p| p.into_inner());
        let btc = |e: bdk_bitcoind_rpc::bitcoincore_rpc::Error| WalletError::Bitcoind(e.to_string());
        while let Some(ev) = emitter.next_block().map_err(btc)? {
            let height = ev.block_height();
            let mut w = self.wallet();
            w.apply_block_connected_to(&ev.block, height, ev.connected_to())
                .map_err(|e| WalletError::Store(format!("applying block {height}: {e}")))?;
            log_news(&w);
            self.persist(&mut w)?;
            self.synced_height.store(height, Ordering::Release);
        }
        let mempool = emitter.mempool().map_err(btc)?;
        let mut w = self.wallet();
        w.apply_unconfirmed_txs(mempool.update);
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).clone();
        w.apply_evicted_txs(mempool.evicted.into_iter().filter(|(txid, _)| !kept.contains(txid)));
        log_news(&w);
        self.persist(&mut w)?;
        let height = w.latest_checkpoint().height();
        self.synced_height.store(height, Ordering::Release);
        Ok(height)
    }

    /// Height of the last block the wallet applied.
    pub fn synced_height(&self) -> u32 {
        self.synced_height.load(Ordering::Acquire)
    }

    /// A fresh receive address; the index is persisted before it is handed out.
    pub fn new_address(&self) -> Result<Address, WalletError> {
        let mut w = self.wallet();
        let info = w.reveal_next_address(KeychainKind::External);
        self.persist(&mut w)?;
        Ok(info.address)
    }

    pub fn balance(&self) -> Balance {
        let b = self.wallet().balance();
        Balance { confirmed: (b.confirmed + b.trusted_pending).to_sat(), unconfirmed: b.untrusted_pending.to_sat() }
    }

    /// Unspent outputs with at least `min_confs` confirmations, largest first.
    pub fn list_unspent(&self, min_confs: u32) -> Vec<Unspent> {
        let w = self.wallet();
        let tip = w.latest_checkpoint().height();
        let mut out: Vec<Unspent> = w
            .list_unspent()
            .filter_map(|u| {
                let confirmations = match u.chain_position.confirmation_height_upper_bound() {
                    Some(h) if u.chain_position.is_confirmed() => tip.saturating_sub(h) + 1,
                    _ => 0,
                };
                (confirmations >= min_confs).then(|| Unspent {
                    outpoint: u.outpoint,
                    amount_sat: u.txout.value.to_sat(),
                    address: Address::from_script(&u.txout.script_pubkey, self.network)
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    confirmations,
                    is_change: u.keychain == KeychainKind::Internal,
                })
            })
            .collect();
        out.sort_by(|a, b| b.amount_sat.cmp(&a.amount_sat));
        out
    }

    /// Checks the request, builds, signs and broadcasts the payment through bitcoind. A refused request
    /// changes nothing.
    pub fn send(&self, req: &SendRequest) -> Result<Sent, WalletError> {
        let address = parse_address(&req.address, self.network)?;
        match (req.send_all, req.amount_sat) {
            (true, 0) | (false, 1..) => {}
            (true, _) => return Err(WalletError::InvalidAmount("give either an amount or send_all, not both".into())),
            (false, 0) => return Err(WalletError::InvalidAmount("amount must be greater than 0 (or use send_all)".into())),
        }
        let fee_rate = self.fee_rate(req.sat_per_vbyte.as_deref())?;
        let script = address.script_pubkey();
        let one = [(script.clone(), req.amount_sat)];
        let target = if req.send_all { Target::All(&script) } else { Target::Pay(&one) };
        let mut w = self.wallet();
        let (tx, fee) = self.build_signed(&mut w, target, fee_rate, req.reserve_sat)?;
        let sent = tx.output.iter().filter(|o| o.script_pubkey == address.script_pubkey()).map(|o| o.value.to_sat()).sum();
        let txid = self.rpc.send_raw_transaction(&tx).map_err(|e| WalletError::Bitcoind(format!("broadcast: {e}")))?;
        self.track_unconfirmed(&mut w, tx)?;
        tracing::info!(%txid, amount_sat = sent, fee_sat = fee, %address, "on-chain payment sent");
        Ok(Sent { txid, amount_sat: sent, fee_sat: fee })
    }

    /// Builds and signs a channel funding transaction paying `amount_sat` to `script`, without
    /// broadcasting it (LDK does, once the peer has signed). Its inputs are marked spent in the wallet
    /// at once, so no other payment picks them meanwhile.
    pub fn build_funding_tx(
        &self, script: ScriptBuf, amount_sat: u64, sat_per_vbyte: Option<&str>, reserve_sat: u64,
    ) -> Result<Transaction, WalletError> {
        let fee_rate = self.fee_rate(sat_per_vbyte)?;
        let mut w = self.wallet();
        let (tx, fee) = self.build_signed(&mut w, Target::Pay(&[(script, amount_sat)]), fee_rate, reserve_sat)?;
        tracing::info!(txid = %tx.compute_txid(), amount_sat, fee_sat = fee, "channel funding transaction built");
        self.track_unconfirmed(&mut w, tx.clone())?;
        Ok(tx)
    }

    /// One transaction funding several channels (a batch open): one output per `(script, amount)`, one
    /// fee, keeping `reserve_sat` in the wallet. Built, signed and recorded as ours, not broadcast.
    pub fn build_batch_funding_tx(&self, outputs: &[(ScriptBuf, u64)], sat_per_vbyte: Option<&str>, reserve_sat: u64) -> Result<Transaction, WalletError> {
        let fee_rate = self.fee_rate(sat_per_vbyte)?;
        let mut w = self.wallet();
        let (tx, fee) = self.build_signed(&mut w, Target::Pay(outputs), fee_rate, reserve_sat)?;
        let amount_sat: u64 = outputs.iter().map(|(_, a)| a).sum();
        tracing::info!(txid = %tx.compute_txid(), channels = outputs.len(), amount_sat, fee_sat = fee, "batch funding transaction built");
        self.track_unconfirmed(&mut w, tx.clone())?;
        Ok(tx)
    }

    /// Checks that a funding of `amount_sat` could be paid now, keeping `reserve_sat` in the wallet,
    /// without building anything.
    pub fn check_funds(&self, amount_sat: u64, reserve_sat: u64) -> Result<(), WalletError> {
        let available = self.balance().confirmed;
        if amount_sat.saturating_add(reserve_sat) > available {
            return Err(WalletError::InsufficientFunds(match reserve_sat {
                0 => format!("need {amount_sat} sat plus fees, the wallet has {available} sat confirmed"),
                r => format!("need {amount_sat} sat plus fees plus the {r} sat kept to bump anchor channels' fees, the wallet has {available} sat confirmed"),
            }));
        }
        Ok(())
    }

    /// Keeps (`true`) or stops keeping (`false`) our unconfirmed transaction `txid` spending its inputs while
    /// bitcoind's mempool lacks it: it is being re-broadcast until it confirms or is replaced.
    pub fn keep_unconfirmed(&self, txid: Txid, keep: bool) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if keep {
            kept.insert(txid);
        } else {
            kept.remove(&txid);
        }
    }

    /// Forgets a transaction we built that will never be broadcast (a funding LDK discarded), so its
    /// inputs are spendable again.
    pub fn forget_tx(&self, txid: Txid) -> Result<(), WalletError> {
        let mut w = self.wallet();
        w.apply_evicted_txs([(txid, now_secs())]);
        self.persist(&mut w)
    }

    /// Confirmed outputs the wallet can spend on fee bumps (a CPFP child of a closing channel's anchor,
    /// inputs added to its HTLC transactions). All wallet outputs are P2WPKH (BIP84).
    ///
    /// Besides unspent ones, this offers confirmed outputs that only an unconfirmed fee bump spends: LDK
    /// bumps a close that has not confirmed again by replacing its own earlier bump (RBF) with the same
    /// coins, and without them it has nothing to pay with. A fee bump is told apart from other spends by
    /// also spending an output that is not the wallet's (the anchor or HTLC it pays for); payments and
    /// channel fundings spend only the wallet's own coins, so theirs are never offered.
    pub fn fee_bump_outputs(&self) -> Vec<(bitcoin::OutPoint, bitcoin::TxOut)> {
        let w = self.wallet();
        let outputs: Vec<_> = w.list_output().collect();
        let ours: HashSet<bitcoin::OutPoint> = outputs.iter().map(|o| o.outpoint).collect();
        let pending_bumps: HashSet<bitcoin::OutPoint> = w
            .transactions()
            .filter(|t| !t.chain_position.is_confirmed())
            .map(|t| Arc::clone(&t.tx_node.tx))
            .filter(|tx| tx.input.iter().any(|i| !ours.contains(&i.previous_output)))
            .flat_map(|tx| tx.input.iter().map(|i| i.previous_output).filter(|p| ours.contains(p)).collect::<Vec<_>>())
            .collect();
        outputs
            .into_iter()
            .filter(|o| o.chain_position.is_confirmed() && (!o.is_spent || pending_bumps.contains(&o.outpoint)))
            .map(|o| (o.outpoint, o.txout))
            .collect()
    }

    /// The change script for a fee bump: the first change address no transaction has used yet. LDK asks
    /// for one at every attempt to bump a close, and an attempt bitcoind refuses (an RBF that does not
    /// pay more) leaves it unused, so retries reuse it instead of revealing a new address each time.
    pub fn fee_bump_change_script(&self) -> Result<ScriptBuf, WalletError> {
        let mut w = self.wallet();
        let info = w.next_unused_address(KeychainKind::Internal);
        self.persist(&mut w)?;
        Ok(info.address.script_pubkey())
    }

    /// Signs the inputs of `psbt` that spend wallet outputs and returns the transaction; inputs that
    /// are not ours (a channel anchor, an HTLC) are left for their owner to sign.
    pub fn sign_own_inputs(&self, mut psbt: bitcoin::Psbt) -> Result<Transaction, WalletError> {
        let w = self.wallet();
        let opts = SignOptions { trust_witness_utxo: true, ..Default::default() };
        w.sign(&mut psbt, opts).map_err(|e| WalletError::Build(format!("signing: {e}")))?;
        Ok(psbt.extract_tx_unchecked_fee_rate())
    }

    /// Coins for a splice-in of `amount_sat` at `sat_per_vbyte` (or the estimate): the wallet's coin selection
    /// for a payment of that amount, keeping `reserve_sat`, as (previous transaction, output index) pairs,
    /// and the fee rate used. Nothing is signed, recorded or broadcast: LDK builds the splice transaction
    /// with the peer and asks [`OnchainWallet::sign_splice`] to sign these inputs.
    pub fn splice_inputs(&self, amount_sat: u64, sat_per_vbyte: Option<&str>, reserve_sat: u64) -> Result<(Vec<(Transaction, u32)>, FeeRate), WalletError> {
        let fee_rate = self.fee_rate(sat_per_vbyte)?;
        self.check_funds(amount_sat, reserve_sat)?;
        let mut w = self.wallet();
        // A P2WSH output stands for the channel's new funding output, of the size it will have.
        let placeholder = ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::from_raw_hash(bitcoin::hashes::Hash::all_zeros()));
        let mut builder = w.build_tx();
        builder.add_recipient(placeholder.clone(), Amount::from_sat(amount_sat)).fee_rate(fee_rate);
        let psbt = builder.finish().map_err(|e| build_error(e, Target::Pay(&[(placeholder, amount_sat)])))?;
        let mut inputs = Vec::new();
        for i in &psbt.unsigned_tx.input {
            let prev = w
                .get_tx(i.previous_output.txid)
                .map(|t| (*t.tx_node.tx).clone())
                .ok_or_else(|| WalletError::Build(format!("the wallet lacks the transaction of its coin {}", i.previous_output)))?;
            inputs.push((prev, i.previous_output.vout));
        }
        // The change address BDK revealed for the placeholder is not used: nothing to persist but the index.
        self.persist(&mut w)?;
        Ok((inputs, fee_rate))
    }

    /// Signs the inputs of a splice transaction that spend wallet coins (the channel's own input is LDK's to
    /// sign) and records the transaction as ours, unconfirmed, so its coins are not spent again meanwhile.
    pub fn sign_splice(&self, tx: Transaction) -> Result<Transaction, WalletError> {
        let mut psbt = bitcoin::Psbt::from_unsigned_tx(tx).map_err(|e| WalletError::Build(format!("splice transaction: {e}")))?;
        {
            let w = self.wallet();
            for (i, input) in psbt.unsigned_tx.input.iter().enumerate() {
                if let Some(utxo) = w.get_utxo(input.previous_output) {
                    psbt.inputs[i].witness_utxo = Some(utxo.txout);
                }
            }
        }
        let tx = self.sign_own_inputs(psbt)?;
        self.track_unconfirmed(&mut self.wallet(), tx.clone())?;
        Ok(tx)
    }

    /// A fresh change script (where LDK's sweeper sends funds claimed from channels).
    pub fn new_change_script(&self) -> Result<ScriptBuf, WalletError> {
        let mut w = self.wallet();
        let info = w.reveal_next_address(KeychainKind::Internal);
        self.persist(&mut w)?;
        Ok(info.address.script_pubkey())
    }

    /// The fee rate given in sat/vB, or bitcoind's estimate (the fallback while it has none).
    pub fn fee_rate(&self, sat_per_vbyte: Option<&str>) -> Result<FeeRate, WalletError> {
        match sat_per_vbyte.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_fee_rate(s),
            None => Ok(self.estimate_fee_rate()),
        }
    }

    /// Builds and signs a transaction to `script`; returns it with its fee in sat. The change address
    /// BDK revealed is persisted before the transaction leaves this function.
    fn build_signed(
        &self,
        w: &mut PersistedWallet<WalletStore>,
        target: Target<'_>,
        fee_rate: FeeRate,
        reserve_sat: u64,
    ) -> Result<(Transaction, u64), WalletError> {
        if let Target::Pay(outputs) = target {
            if let Some((_, sat)) = outputs.iter().find(|(_, sat)| *sat > lanes_common::MAX_MSAT / 1000) {
                return Err(WalletError::InvalidAmount(format!("{sat} sat is more than 21 million bitcoin")));
            }
        }
        // What the wallet holds before, to check the reserve is left (our unconfirmed change counts, as
        // coin selection spends it too).
        let before = { let b = w.balance(); (b.confirmed + b.trusted_pending).to_sat() };
        if reserve_sat > 0 && before <= reserve_sat {
            return Err(WalletError::InsufficientFunds(format!(
                "the wallet's {before} sat are all kept to bump anchor channels' fees (reserve: {reserve_sat} sat)"
            )));
        }
        let reserve_script = match (target, reserve_sat) {
            (Target::All(_), 1..) => Some(w.reveal_next_address(KeychainKind::Internal).address.script_pubkey()),
            _ => None,
        };
        let mut builder = w.build_tx();
        match target {
            Target::All(script) => {
                builder.drain_wallet().drain_to(script.clone());
                if let Some(reserve) = reserve_script {
                    builder.add_recipient(reserve, Amount::from_sat(reserve_sat));
                }
            }
            Target::Pay(outputs) => {
                for (script, sat) in outputs {
                    builder.add_recipient(script.clone(), Amount::from_sat(*sat));
                }
            }
        }
        builder.fee_rate(fee_rate);
        let mut psbt = builder.finish().map_err(|e| build_error(e, target))?;
        let finalized = w.sign(&mut psbt, SignOptions::default()).map_err(|e| WalletError::Build(format!("signing: {e}")))?;
        if !finalized {
            return Err(WalletError::Build("the wallet could not sign every input".into()));
        }
        let fee = psbt.fee().map_err(|e| WalletError::Build(e.to_string()))?;
        let tx = psbt.extract_tx().map_err(|e| WalletError::Build(e.to_string()))?;
        let paid: u64 = match target {
            Target::All(script) => tx.output.iter().filter(|o| &o.script_pubkey == script).map(|o| o.value.to_sat()).sum(),
            Target::Pay(outputs) => outputs.iter().map(|(_, sat)| sat).sum(),
        };
        let left = before.saturating_sub(paid).saturating_sub(fee.to_sat());
        if left < reserve_sat {
            // Nothing was persisted or broadcast: the refused payment changes nothing.
            return Err(WalletError::InsufficientFunds(format!(
                "this would leave {left} sat in the wallet, below the {reserve_sat} sat kept to bump anchor channels' fees"
            )));
        }
        self.persist(w)?;
        Ok((tx, fee.to_sat()))
    }

    /// Records a transaction of ours as unconfirmed, so balances and coin selection see it at once.
    fn track_unconfirmed(&self, w: &mut PersistedWallet<WalletStore>, tx: Transaction) -> Result<(), WalletError> {
        w.apply_unconfirmed_txs([(tx, now_secs())]);
        self.persist(w)
    }

    /// bitcoind's 6-block estimate, or the fallback while there is none.
    fn estimate_fee_rate(&self) -> FeeRate {
        self.rpc
            .estimate_smart_fee(6, None)
            .ok()
            .and_then(|r| r.fee_rate)
            .map(|per_kvb| FeeRate::from_sat_per_kwu(per_kvb.to_sat() / 4))
            .filter(|r| *r >= FeeRate::BROADCAST_MIN)
            .unwrap_or(FALLBACK_FEE_RATE)
    }
}

/// One INFO line per transaction a sync brought that pays the wallet (coins received), and per wallet
/// transaction it saw confirmed, from the changes not yet persisted (so each is logged once).
fn log_news(w: &Wallet) {
    let Some(staged) = w.staged() else { return };
    let graph = &staged.tx_graph;
    let height = |txid: Txid| graph.anchors.iter().filter(|(_, t)| *t == txid).map(|(a, _)| a.block_id.height).max();
    for tx in &graph.txs {
        let txid = tx.compute_txid();
        let (sent, received) = w.sent_and_received(tx);
        if received > sent {
            let amount_sat = (received - sent).to_sat();
            match height(txid) {
                Some(height) => tracing::info!(amount_sat, %txid, height, "wallet received coins (confirmed)"),
                None => tracing::info!(amount_sat, %txid, "wallet received coins (unconfirmed)"),
            }
        }
    }
    let new: HashSet<Txid> = graph.txs.iter().map(|tx| tx.compute_txid()).collect();
    let confirmed: std::collections::BTreeMap<Txid, u32> =
        graph.anchors.iter().filter(|(_, txid)| !new.contains(txid)).map(|(a, txid)| (*txid, a.block_id.height)).collect();
    for (txid, height) in confirmed {
        tracing::info!(%txid, height, "wallet transaction confirmed");
    }
}

/// Parses an address and checks it belongs to `network`.
pub fn parse_address(s: &str, network: Network) -> Result<Address, WalletError> {
    let unchecked: Address<NetworkUnchecked> = Address::from_str(s.trim())
        .map_err(|e| WalletError::InvalidAddress { address: s.to_string(), reason: e.to_string() })?;
    if !unchecked.is_valid_for_network(network) {
        let found = unchecked.clone().assume_checked_ref().to_string();
        let kind = if found.starts_with("bc1") || found.starts_with('1') || found.starts_with('3') { "mainnet" } else { "another network" };
        return Err(WalletError::WrongNetwork { address: s.to_string(), found: kind.into(), expected: network.to_string() });
    }
    Ok(unchecked.assume_checked())
}

/// Parses a fee rate in sat/vB ("2", "1.5").
pub fn parse_fee_rate(s: &str) -> Result<FeeRate, WalletError> {
    let bad = |reason: &str| WalletError::InvalidFeeRate { rate: s.to_string(), reason: reason.to_string() };
    let v: f64 = s.trim().parse().map_err(|_| bad("not a number of sat/vbyte"))?;
    if !v.is_finite() || v < MIN_SAT_PER_VB {
        return Err(bad("must be at least 1 sat/vbyte"));
    }
    if v > MAX_SAT_PER_VB {
        return Err(bad("above 10000 sat/vbyte, surely a typo"));
    }
    Ok(FeeRate::from_sat_per_kwu((v * 250.0).round() as u64))
}

/// What a transaction pays to its one recipient.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    /// These outputs (script, sat), the change back to the wallet.
    Pay(&'a [(ScriptBuf, u64)]),
    /// Everything the wallet has, less the fee, to this script.
    All(&'a ScriptBuf),
}

fn build_error(e: CreateTxError, target: Target<'_>) -> WalletError {
    match e {
        CreateTxError::CoinSelection(f) => WalletError::InsufficientFunds(format!(
            "need {} sat, the wallet has {} sat available",
            f.needed.to_sat(),
            f.available.to_sat()
        )),
        CreateTxError::NoUtxosSelected => WalletError::InsufficientFunds("the wallet has no spendable outputs".into()),
        CreateTxError::OutputBelowDustLimit(i) => match target {
            Target::Pay(outputs) => WalletError::InvalidAmount(format!("{} sat is below the dust limit", outputs.get(i).map_or(0, |(_, sat)| *sat))),
            Target::All(_) => WalletError::InsufficientFunds("what the wallet has does not cover the fee".into()),
        },
        other => WalletError::Build(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rates() {
        assert_eq!(parse_fee_rate("2").unwrap(), FeeRate::from_sat_per_vb_u32(2));
        assert_eq!(parse_fee_rate(" 1.5 ").unwrap().to_sat_per_kwu(), 375);
        for bad in ["abc", "-1", "0", "0.5", "NaN", "inf", "1e9", ""] {
            assert!(matches!(parse_fee_rate(bad), Err(WalletError::InvalidFeeRate { .. })), "{bad}");
        }
    }

    /// The scripts BDK derives are kept in the store, so a load reads them instead of deriving every revealed
    /// address again; a wallet of an earlier lanes (no cache) gets them kept at its first load. Its addresses
    /// stay the same.
    #[test]
    fn derived_scripts_are_kept_and_the_addresses_stay_the_same() {
        use bdk_wallet::WalletPersister;
        let dir = tempfile::tempdir().unwrap();
        let store: lanes_store::DynStore = Arc::new(lanes_store::SledStore::open(dir.path().join("db")).unwrap());
        let (seed, _) = Seed::load_or_create(&dir.path().join("seed")).unwrap();
        let cached = |store: &lanes_store::DynStore| {
            let merged = WalletStore::initialize(&mut WalletStore::new(Arc::clone(store))).unwrap();
            merged.indexer.spk_cache.values().map(|spks| spks.len()).sum::<usize>()
        };
        // As an earlier lanes made it: no cache.
        let xprv = seed.master_xprv(Network::Regtest);
        let mut earlier = WalletStore::new(Arc::clone(&store));
        let mut w = Wallet::create(Bip84(xprv, KeychainKind::External), Bip84(xprv, KeychainKind::Internal))
            .network(Network::Regtest)
            .create_wallet(&mut earlier)
            .unwrap();
        let revealed: Vec<Address> = w.reveal_addresses_to(KeychainKind::External, 299).map(|a| a.address).collect();
        w.persist(&mut earlier).unwrap();
        drop(w);
        assert_eq!(cached(&store), 0);

        // Loading never reaches bitcoind; nothing listens there.
        let load = || OnchainWallet::load_or_create(&seed, Network::Regtest, Arc::clone(&store), "http://127.0.0.1:9", "u", "p").unwrap();
        let first = load();
        // 300 revealed and 25 more on the external chain, 25 on the change chain.
        assert_eq!(cached(&store), 300 + 25 + 25);
        drop(first);
        let again = load();
        assert_eq!(cached(&store), 350, "nothing derived again");
        let w = again.wallet();
        let now: Vec<Address> = (0..300).map(|i| w.peek_address(KeychainKind::External, i).address).collect();
        assert_eq!(now, revealed);
        assert_eq!(w.derivation_index(KeychainKind::External), Some(299));
    }

    #[test]
    fn addresses() {
        let regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        assert!(parse_address(regtest, Network::Regtest).is_ok());
        let mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        assert!(matches!(parse_address(mainnet, Network::Regtest), Err(WalletError::WrongNetwork { .. })));
        assert!(matches!(parse_address("bogus", Network::Regtest), Err(WalletError::InvalidAddress { .. })));
    }
}
