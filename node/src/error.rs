//! Typed errors of the node, and the one mapping of every error of lanes to a gRPC status.
use lanes_channel::ChannelError;
use lanes_wallet::WalletError;
use tonic::{Code, Status};

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

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let code = match &e {
            NodeError::Wallet(w) => match w {
                WalletError::InvalidAddress { .. }
                | WalletError::WrongNetwork { .. }
                | WalletError::InvalidAmount(_)
                | WalletError::InvalidFeeRate { .. } => Code::InvalidArgument,
                WalletError::InsufficientFunds(_) => Code::FailedPrecondition,
                WalletError::Bitcoind(_) => Code::Unavailable,
                WalletError::Build(_) | WalletError::Store(_) | WalletError::Seed(_) => Code::Internal,
            },
            NodeError::Channel(ChannelError::Bitcoind(_)) => Code::Unavailable,
            NodeError::NotReady(_) | NodeError::Unavailable(_) => Code::Unavailable,
            NodeError::Invalid(_) => Code::InvalidArgument,
            NodeError::NotFound(_) => Code::NotFound,
            NodeError::Precondition(_) => Code::FailedPrecondition,
            NodeError::AlreadyExists(_) => Code::AlreadyExists,
            NodeError::Timeout(_) => Code::DeadlineExceeded,
            NodeError::Config(_) => Code::InvalidArgument,
            NodeError::Channel(_) | NodeError::Store(_) | NodeError::Io(_) | NodeError::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}
