//! On-chain payments from the node's wallet.
//!
//! Owns: the policy around the BDK wallet's calls that the node adds: an on-chain send never spends the
//! reserve that bumps our anchor channels' closing fees. Must never: pick coins or sign (the wallet
//! does), or let a caller spend the anchor reserve. Blocking: call it off the async threads.
use std::sync::Arc;

use lanes_channel::types::ChannelManager;
use lanes_wallet::wallet::{Balance, SendRequest, Sent, Unspent};
use lanes_wallet::OnchainWallet;

use crate::NodeError;

/// The on-chain service.
pub struct Onchain {
    wallet: Arc<OnchainWallet>,
    channel_manager: Arc<ChannelManager>,
}

impl Onchain {
    pub fn new(wallet: Arc<OnchainWallet>, channel_manager: Arc<ChannelManager>) -> Self {
        Self { wallet, channel_manager }
    }

    pub fn new_address(&self) -> Result<bitcoin::Address, NodeError> {
        Ok(self.wallet.new_address()?)
    }

    pub fn balance(&self) -> Balance {
        self.wallet.balance()
    }

    pub fn list_unspent(&self, min_confs: u32) -> Vec<Unspent> {
        self.wallet.list_unspent(min_confs)
    }

    /// Sends coins, keeping the anchor channels' fee-bumping reserve in the wallet.
    pub fn send(&self, req: SendRequest) -> Result<Sent, NodeError> {
        let send = SendRequest { reserve_sat: crate::channels::anchor_reserve_sat(&self.channel_manager, 0), ..req };
        Ok(self.wallet.send(&send)?)
    }
}
