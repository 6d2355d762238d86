//! Typed errors of the Lightning side, mapped to gRPC statuses only at the API edge.
//!
//! Owns: the error types of lanes-channel. Must never: depend on tonic or name a gRPC code.

/// What can go wrong while building or driving the Lightning state.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The key-value store failed (disk, corruption).
    #[error("store: {0}")]
    Store(#[from] std::io::Error),
    /// bitcoind did not answer or answered something unexpected.
    #[error("bitcoind: {0}")]
    Bitcoind(String),
    /// Persisted Lightning state could not be decoded.
    #[error("corrupt persisted state ({what}): {reason}")]
    Decode { what: &'static str, reason: String },
    /// The persisted state belongs to another network or seed.
    #[error("persisted state mismatch: {0}")]
    Mismatch(String),
}
