//! Anchor-output channels: paying their fees at the moment they close, from the on-chain wallet.
//!
//! Owns: the on-chain reserve those bumps need ([`anchor_reserve_sat`]), and giving LDK's bump-transaction
//! handler the wallet's confirmed outputs, change scripts and
//! signatures, so it can attach fees (CPFP through the anchor, or inputs added to zero-fee HTLC
//! transactions) when a channel closes on-chain. Must never: pick coins or build the bump itself (LDK's
//! `Wallet` does, and keeps the coins it uses locked), or sign anything but the wallet's own inputs.
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{Psbt, ScriptBuf, Transaction, WPubkeyHash};
use lightning::events::bump_transaction::sync::{BumpTransactionEventHandlerSync, WalletSourceSync, WalletSync};
use lightning::events::bump_transaction::Utxo;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::keys::WalletSignerProvider;
use lanes_channel::logger::LdkTracing;
use lanes_wallet::OnchainWallet;

/// The handler of LDK's `Event::BumpTransaction`.
pub type Bumper = BumpTransactionEventHandlerSync<
    Arc<BitcoindClient>,
    Arc<WalletSync<Arc<WalletUtxos>, Arc<LdkTracing>>>,
    Arc<WalletSignerProvider>,
    Arc<LdkTracing>,
>;

pub fn bumper(bitcoind: Arc<BitcoindClient>, wallet: Arc<OnchainWallet>, signer: Arc<WalletSignerProvider>, logger: Arc<LdkTracing>) -> Bumper {
    let source = Arc::new(WalletSync::new(Arc::new(WalletUtxos(wallet)), Arc::clone(&logger)));
    BumpTransactionEventHandlerSync::new(bitcoind, source, signer, logger)
}

/// The on-chain wallet, as LDK's source of fee-paying coins.
pub struct WalletUtxos(pub Arc<OnchainWallet>);

impl WalletSourceSync for WalletUtxos {
    fn list_confirmed_utxos(&self) -> Result<Vec<Utxo>, ()> {
        Ok(self
            .0
            .fee_bump_outputs()
            .into_iter()
            .filter_map(|(outpoint, txout)| {
                // BIP84 outputs: OP_0 <20-byte key hash>.
                if !txout.script_pubkey.is_p2wpkh() {
                    return None;
                }
                let bytes: [u8; 20] = txout.script_pubkey.as_bytes()[2..22].try_into().ok()?;
                let hash = WPubkeyHash::from_byte_array(bytes);
                Some(Utxo::new_v0_p2wpkh(outpoint, txout.value, &hash))
            })
            .collect())
    }

    fn get_change_script(&self) -> Result<ScriptBuf, ()> {
        self.0.fee_bump_change_script().map_err(|e| tracing::error!(error = %e, "no change script for a fee bump"))
    }

    fn sign_psbt(&self, psbt: Psbt) -> Result<Transaction, ()> {
        self.0.sign_own_inputs(psbt).map_err(|e| tracing::error!(error = %e, "signing a fee bump"))
    }
}

/// On-chain funds kept per anchor channel so its closing transactions can be fee-bumped (LND's value).
pub const ANCHOR_RESERVE_PER_CHANNEL_SAT: u64 = 10_000;
/// The reserve stops growing here (LND's cap): bumps rarely happen for many channels at once.
pub const ANCHOR_RESERVE_MAX_SAT: u64 = 100_000;

/// What the wallet must keep to bump the fees of our anchor channels' closing transactions, counting
/// `extra` channels about to open. An anchor channel's commitment and HTLC transactions carry little or
/// no fee of their own: without wallet coins to attach, a force close could not confirm in time.
pub fn anchor_reserve_sat(channel_manager: &lanes_channel::types::ChannelManager, extra: usize) -> u64 {
    let anchors = channel_manager
        .list_channels()
        .iter()
        .filter(|c| c.channel_type.as_ref().is_some_and(|t| t.supports_anchors_zero_fee_htlc_tx()))
        .count();
    ((anchors + extra) as u64 * ANCHOR_RESERVE_PER_CHANNEL_SAT).min(ANCHOR_RESERVE_MAX_SAT)
}
