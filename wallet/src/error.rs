//! Typed errors of the on-chain wallet, mapped to gRPC statuses at the API edge.
//!
//! Owns: the wallet's error types. Must never: depend on tonic or name a gRPC code.

/// What can go wrong in the on-chain wallet. The `Invalid*` variants are the caller's mistake and
/// change nothing; `InsufficientFunds` is well-formed input the current balance cannot satisfy.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("address {address} is for {found}, this node runs on {expected}")]
    WrongNetwork { address: String, found: String, expected: String },
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("invalid fee rate {rate:?}: {reason}")]
    InvalidFeeRate { rate: String, reason: String },
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    #[error("could not build the transaction: {0}")]
    Build(String),
    #[error("bitcoind: {0}")]
    Bitcoind(String),
    #[error("wallet store: {0}")]
    Store(String),
    #[error("seed: {0}")]
    Seed(String),
}
