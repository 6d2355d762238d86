//! The one mapping of every error of lanes to a gRPC status.
//!
//! Owns: which status code each error is, and bounding status messages. Must never: lose the error's
//! words (they are what the caller reads), or echo unbounded input back.
use lanes_channel::ChannelError;
use lanes_wallet::WalletError;
use tonic::{Code, Status};

use crate::error::{InvoiceError, PaymentError, PeerError};
use crate::NodeError;

/// The status for `e`.
pub fn status(e: NodeError) -> Status {
    Status::from(e)
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
            NodeError::Payment(p) => match p {
                PaymentError::InvoiceExpired(_) | PaymentError::Expired | PaymentError::OfferExpired | PaymentError::NoRoute(_) => Code::FailedPrecondition,
                PaymentError::AlreadyPaid(_) | PaymentError::InFlight(_) | PaymentError::Duplicate => Code::AlreadyExists,
                PaymentError::OnionTooLarge => Code::InvalidArgument,
            },
            NodeError::Peer(PeerError::NotConnected { .. }) => Code::FailedPrecondition,
            NodeError::Peer(PeerError::Unreachable(_)) | NodeError::Busy(_) => Code::Unavailable,
            NodeError::Invoice(i) => match i {
                InvoiceError::Exists(_) => Code::AlreadyExists,
                InvoiceError::NotHold | InvoiceError::NotHolding(_) | InvoiceError::AlreadySettled => Code::FailedPrecondition,
            },
            NodeError::Invalid(_) => Code::InvalidArgument,
            NodeError::NotFound(_) => Code::NotFound,
            NodeError::Refused(_) => Code::FailedPrecondition,
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
