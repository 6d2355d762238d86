//! Sweeping what closed channels leave us back into the on-chain wallet.
//!
//! Owns: the sweeper's type (LDK's `OutputSweeper`, which spends outputs that need channel keys: our
//! delayed to_local, HTLC claims), where swept funds go (a fresh wallet change address), the log line per
//! sweep broadcast, and how much is still waiting for its first sweep. Must never: build or sign a sweep
//! itself (LDK does), or count an output twice: once a sweep is broadcast the wallet sees it.
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bitcoin::Txid;
use lightning::ln::types::ChannelId;
use lightning::sign::SpendableOutputDescriptor;
use lightning::util::sweep::OutputSpendStatus;

use lanes_channel::bitcoind::BitcoindClient;
use lanes_channel::logger::LdkTracing;
use lanes_channel::persist::ProcessorStore;
use lanes_wallet::OnchainWallet;

/// LDK's sweeper: claims outputs of closed channels into the on-chain wallet.
pub type Sweeper = lightning::util::sweep::OutputSweeperSync<
    Arc<BitcoindClient>,
    Arc<WalletChange>,
    Arc<BitcoindClient>,
    Arc<lanes_channel::types::ChainFilter>,
    Arc<ProcessorStore>,
    Arc<LdkTracing>,
    Arc<lightning::sign::KeysManager>,
>;

/// Where swept funds go: a fresh change address of the on-chain wallet.
pub struct WalletChange(pub Arc<OnchainWallet>);

impl lightning::sign::ChangeDestinationSourceSync for WalletChange {
    fn get_change_destination_script(&self) -> Result<bitcoin::ScriptBuf, ()> {
        self.0.new_change_script().map_err(|e| tracing::error!(error = %e, "no change address for a sweep"))
    }
}

/// The value of an output LDK hands over, in sat.
pub fn output_value(d: &SpendableOutputDescriptor) -> u64 {
    use SpendableOutputDescriptor as D;
    match d {
        D::StaticOutput { output, .. } => output.value.to_sat(),
        D::DelayedPaymentOutput(o) => o.output.value.to_sat(),
        D::StaticPaymentOutput(o) => o.output.value.to_sat(),
    }
}

/// What the monitors handed the sweeper and no sweep spends yet: it has left the channels' claimable
/// balances but reaches the wallet only once a sweep is broadcast (then the wallet counts it).
pub fn awaiting_first_sweep_sat(sweeper: &Sweeper) -> u64 {
    sweeper
        .tracked_spendable_outputs()
        .iter()
        .filter(|o| matches!(o.status, OutputSpendStatus::PendingInitialBroadcast { .. }))
        .map(|o| output_value(&o.descriptor))
        .sum()
}

/// Logs, once per transaction, each sweep the sweeper broadcast, with what it sweeps. `reported` keeps the
/// txids already logged.
pub fn report_sweeps(sweeper: &Sweeper, reported: &mut HashSet<Txid>) {
    let mut sweeps: BTreeMap<Txid, (u64, usize, Option<ChannelId>)> = Default::default();
    for out in sweeper.tracked_spendable_outputs() {
        // A sweep may confirm before a poll sees it unconfirmed: both states name it.
        match &out.status {
            OutputSpendStatus::PendingFirstConfirmation { latest_spending_tx, .. }
            | OutputSpendStatus::PendingThresholdConfirmations { latest_spending_tx, .. } => {
                let e = sweeps.entry(latest_spending_tx.compute_txid()).or_insert((0, 0, out.channel_id));
                e.0 += output_value(&out.descriptor);
                e.1 += 1;
            }
            OutputSpendStatus::PendingInitialBroadcast { .. } => {}
        }
    }
    for (txid, (amount_sat, outputs, channel_id)) in sweeps {
        if reported.insert(txid) {
            let channel_id = channel_id.map(|c| c.to_string()).unwrap_or_default();
            tracing::info!(%txid, %channel_id, outputs, amount_sat, "sweep broadcast: channel outputs on their way to the wallet");
        }
    }
}

/// Sweeps what became spendable at once, as LND does, not only on the event processor's 30 s timer
/// (which every restart resets, so a node restarted often never swept).
pub fn sweep_now(sweeper: &Sweeper) {
    if sweeper.regenerate_and_broadcast_spend_if_necessary().is_err() {
        tracing::warn!("the sweeper could not build or persist a sweep; it retries on the next block");
    }
}
