//! Typed errors of the node, transport-neutral: the API maps them to gRPC statuses in one place
//! (`api::error`).
use lanes_channel::ChannelError;
use lanes_wallet::WalletError;

/// What can go wrong in the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The node is still starting or already stopping.
    #[error("not ready: {0}")]
    NotReady(String),
    /// Malformed input: nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// Unknown id.
    #[error("{0}")]
    NotFound(String),
    /// Well-formed input the node's state does not allow now.
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A peer or bitcoind could not be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("internal: {0}")]
    Internal(String),
}
