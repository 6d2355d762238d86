//! lanes-client: how a program reaches lanesd's gRPC API, for lanes-cli and the regtest harness.
//!
//! Owns: reading a `--rpcserver` address (`host:port`, or a URL), the connect timeout, connecting now
//! ([`Server::connect`], with the reason when nothing answers) or on first use with reconnects after a restart
//! ([`Server::connect_lazy`]), and the message-size limits both ways ([`lanes_proto::MAX_MESSAGE_BYTES`], as
//! the server's). Must never: know a message or a method (that is lanes-proto's), retry a call, or depend on
//! anything heavier than lanes-proto and tonic: it is what makes a small client possible.
//!
//! Credentials (issue 13, not yet): lanesd will serve TLS and check a macaroon on every call. Both go in
//! [`Server`] and nowhere else: the certificate to trust beside the address (an `https://` endpoint with
//! `Endpoint::tls_config`, set in [`Server::parse`]'s endpoint), the macaroon as metadata added to every
//! request by an interceptor in [`client`]. The interceptor changes the client's type, which is why callers
//! name it [`Client`] rather than `LanesClient<Channel>`.
use std::fmt;
use std::time::Duration;

use lanes_proto::LanesClient;
use tonic::transport::{Channel, Endpoint};

/// The gRPC client of lanesd's API, as this crate builds it.
pub type Client = LanesClient<Channel>;

/// How long connecting may take before it is an error: lanesd on the same machine or LAN answers at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where lanesd's API is (and, with issue 13, the credentials to present there).
#[derive(Clone, Debug)]
pub struct Server {
    /// The address as given, for messages.
    rpcserver: String,
    endpoint: Endpoint,
}

/// Why there is no connection, with the address as given.
#[derive(Debug)]
pub enum ConnectError {
    /// The address is not `host:port` (nor a URL).
    BadAddress { rpcserver: String, cause: String },
    /// Nothing listens at the address: lanesd is not running there.
    Refused { rpcserver: String },
    /// Anything else (a timeout, a name that does not resolve...), with its causes.
    Unreachable { rpcserver: String, cause: String },
}

impl Server {
    /// Reads `host:port` (plain HTTP/2, as lanesd serves today) or a full URL such as `http://host:port`.
    pub fn parse(rpcserver: &str) -> Result<Server, ConnectError> {
        let url = if rpcserver.contains("://") { rpcserver.to_string() } else { format!("http://{rpcserver}") };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|e| ConnectError::BadAddress { rpcserver: rpcserver.to_string(), cause: e.to_string() })?
            .connect_timeout(CONNECT_TIMEOUT);
        Ok(Server { rpcserver: rpcserver.to_string(), endpoint })
    }

    /// The address as given.
    pub fn rpcserver(&self) -> &str {
        &self.rpcserver
    }

    /// Connects now, so that a lanesd that is not there is reported before any call.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        match self.endpoint.connect().await {
            Ok(channel) => Ok(client(channel)),
            Err(e) if io_error_kind(&e) == Some(std::io::ErrorKind::ConnectionRefused) => {
                Err(ConnectError::Refused { rpcserver: self.rpcserver.clone() })
            }
            Err(e) => Err(ConnectError::Unreachable { rpcserver: self.rpcserver.clone(), cause: error_chain(&e) }),
        }
    }

    /// A client that connects on its first call and again after the connection drops (lanesd restarted);
    /// a call while nothing listens fails with `UNAVAILABLE`.
    pub fn connect_lazy(&self) -> Client {
        client(self.endpoint.connect_lazy())
    }
}

/// The client over `channel`, with the API's message limits. (Issue 13: the macaroon interceptor goes here.)
fn client(channel: Channel) -> Client {
    LanesClient::new(channel)
        .max_decoding_message_size(lanes_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(lanes_proto::MAX_MESSAGE_BYTES)
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::BadAddress { rpcserver, cause } => write!(f, "{rpcserver:?} is not a host:port address: {cause}"),
            ConnectError::Refused { rpcserver } => write!(f, "cannot connect to lanesd at {rpcserver}: connection refused"),
            ConnectError::Unreachable { rpcserver, cause } => write!(f, "cannot connect to lanesd at {rpcserver}: {cause}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// An error with its causes, "outer: inner: innermost" (tonic's own Display stops at "transport error").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let part = e.to_string();
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The kind of the I/O error somewhere in an error's causes, if any.
fn io_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on: bound by the OS for us, then released.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("cannot bind 127.0.0.1:0").port()
    }

    #[test]
    fn addresses_are_host_port_or_urls() {
        assert_eq!(Server::parse("127.0.0.1:10009").unwrap().endpoint.uri().to_string(), "http://127.0.0.1:10009/");
        assert_eq!(Server::parse("http://localhost:1").unwrap().endpoint.uri().to_string(), "http://localhost:1/");
        assert_eq!(Server::parse("127.0.0.1:10009").unwrap().rpcserver(), "127.0.0.1:10009");
        let bad = Server::parse("not an address").unwrap_err();
        assert!(matches!(&bad, ConnectError::BadAddress { rpcserver, .. } if rpcserver == "not an address"), "{bad:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_refused_and_named() {
        let rpcserver = format!("127.0.0.1:{}", closed_port());
        let err = Server::parse(&rpcserver).unwrap().connect().await.unwrap_err();
        assert!(matches!(&err, ConnectError::Refused { rpcserver: r } if *r == rpcserver), "{err:?}");
        assert_eq!(err.to_string(), format!("cannot connect to lanesd at {rpcserver}: connection refused"));
    }

    #[tokio::test]
    async fn a_lazy_client_connects_at_its_first_call() {
        let rpcserver = format!("127.0.0.1:{}", closed_port());
        let mut client = Server::parse(&rpcserver).unwrap().connect_lazy();
        let status = client.get_info(lanes_proto::v1::GetInfoRequest {}).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }
}
