//! Where channel funds land on-chain: LDK's channel keys, with the node's wallet as destination.
//!
//! Owns: the [`SignerProvider`] given to the ChannelManager. Channel signing keys come from LDK's
//! `KeysManager` (derived from the node seed); the scripts LDK pays us to when a channel closes
//! (cooperative close outputs, justice and HTLC claims) are fresh addresses of the on-chain wallet,
//! so those funds appear in the wallet without an extra sweep transaction. Must never: hand out a
//! script the wallet does not watch, or change how channel keys are derived (that would orphan
//! existing channels).
use std::sync::Arc;

use bitcoin::ScriptBuf;
use lightning::ln::script::ShutdownScript;
use lightning::sign::{ChangeDestinationSourceSync, InMemorySigner, KeysManager, SignerProvider};

/// LDK's channel keys with wallet destination scripts.
pub struct WalletSignerProvider {
    keys: Arc<KeysManager>,
    wallet: Arc<dyn ChangeDestinationSourceSync + Send + Sync>,
}

impl WalletSignerProvider {
    pub fn new(keys: Arc<KeysManager>, wallet: Arc<dyn ChangeDestinationSourceSync + Send + Sync>) -> Self {
        Self { keys, wallet }
    }
}

impl SignerProvider for WalletSignerProvider {
    type EcdsaSigner = InMemorySigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.keys.generate_channel_keys_id(inbound, user_channel_id)
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> InMemorySigner {
        self.keys.derive_channel_signer(channel_keys_id)
    }

    fn get_destination_script(&self, _channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.wallet.get_change_destination_script()
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        let script = self.wallet.get_change_destination_script()?;
        ShutdownScript::try_from(script).map_err(|e| tracing::error!(error = ?e, "the wallet's script is not a valid shutdown script"))
    }
}
