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
    Store(std::io::Error),
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
        Status::new(code, bounded(e.to_string()))
    }
}

/// Longest status message sent: messages echo the input they refuse, and a client would fail on a
/// 16 KB id echoed whole in a gRPC header.
pub const MAX_STATUS_MESSAGE: usize = 512;

/// `message`, cut to [`MAX_STATUS_MESSAGE`] bytes (at a character boundary) with a note of what was cut.
pub fn bounded(message: String) -> String {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message;
    }
    let mut end = MAX_STATUS_MESSAGE - 40;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes cut)", &message[..end], message.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_echoes_are_cut() {
        let id = "é".repeat(10_000);
        let s = Status::from(NodeError::Invalid(format!("{id:?} is not a node id")));
        assert!(s.message().len() <= MAX_STATUS_MESSAGE, "{}", s.message().len());
        assert!(s.message().ends_with("more bytes cut)"));
        assert_eq!(Status::from(NodeError::Invalid("short".into())).message(), "short");
    }
}
