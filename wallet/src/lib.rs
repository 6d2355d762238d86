//! The on-chain wallet of a lanes node, on BDK.
//!
//! Owns: the node's BIP39 seed ([`seed`]), the keys derived from it for the on-chain wallet and for LDK,
//! the BDK wallet and its durable state in the node's store ([`store`]), following bitcoind's chain and mempool, and
//! building, signing and broadcasting on-chain payments ([`wallet`]).
//!
//! Must never: hand-roll coin selection, signing or chain tracking (BDK does those), nor know about
//! Lightning channels or the API (the node wires those).

pub mod error;
pub mod seed;
pub mod store;
pub mod wallet;

pub use error::WalletError;
pub use seed::Seed;
pub use wallet::{Balance, OnchainWallet, SendRequest, Sent, Unspent};
