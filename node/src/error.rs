//! Typed errors of the node, transport-neutral: the API maps them to gRPC statuses in one place
//! (`api::error`).
//!
//! Owns: the node's error types. Must never: depend on tonic or name a gRPC code (api/error.rs does, once).
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
    Store(std::io::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// Malformed input: nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// Unknown id.
    #[error("{0}")]
    NotFound(String),
    /// Well-formed input the node's state does not allow now (a channel that cannot close now, …).
    #[error("{0}")]
    Refused(String),
    /// The node is busy with what the call needs (a channel's state being persisted): try again.
    #[error("{0}")]
    Busy(String),
    /// A peer did not answer in time.
    #[error("{0}")]
    Timeout(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// Why a payment could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the invoice expired at {0} (unix time)")]
    InvoiceExpired(u64),
    /// LDK found the invoice expired when it tried.
    #[error("the invoice has expired")]
    Expired,
    #[error("already paid (payment hash {0})")]
    AlreadyPaid(String),
    #[error("a payment for hash {0} is already in flight")]
    InFlight(String),
    /// LDK refused a payment id it already knows.
    #[error("this payment was already made or is in flight")]
    Duplicate,
    /// No route with enough capacity; the words say where the search ended.
    #[error("{0}")]
    NoRoute(String),
    #[error("the payment's onion would be too large (too many hints or custom data)")]
    OnionTooLarge,
    /// A BOLT12 offer (or refund) past its expiry.
    #[error("the offer has expired")]
    OfferExpired,
}

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The call needs the peer connected; `hint` says what to do.
    #[error("peer {peer} is not connected: {hint}")]
    NotConnected { peer: bitcoin::secp256k1::PublicKey, hint: &'static str },
    /// Dialing or the handshake failed.
    #[error("{0}")]
    Unreachable(String),
}

/// Why an invoice call was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("an invoice with payment hash {0} exists")]
    Exists(String),
    #[error("not a hold invoice: it settles by itself")]
    NotHold,
    #[error("the invoice is {0}, not holding a payment")]
    NotHolding(String),
    #[error("the invoice is already settled")]
    AlreadySettled,
}
