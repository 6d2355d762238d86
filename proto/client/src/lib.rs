//! lanes-client: how a program reaches lanesd's gRPC API, for lanes-cli and the regtest harness.
//!
//! Owns: reading a `--rpcserver` address (`host:port`, or a URL), the connect timeout, connecting now
//! ([`Server::connect`], with the reason when nothing answers) or on first use with reconnects after a restart
//! ([`Server::connect_lazy`]), and the message-size limits both ways ([`lanes_proto::MAX_MESSAGE_BYTES`], as
//! the server's). Must never: know a message or a method (that is lanes-proto's), retry a call, or depend on
//! anything heavier than lanes-proto and tonic: it is what makes a small client possible.
//!
//! Credentials: lanesd serves TLS with a self-signed certificate and checks a macaroon on every call. Both
//! live in [`Server`] and nowhere else: the certificate to pin ([`Server::with_tls_cert`]: the connection is
//! then `https://`, trusting that certificate only) and the macaroon ([`Server::with_macaroon`]), sent as
//! hex in the `macaroon` metadata of every request by the [`Credential`] interceptor.
use std::fmt;
use std::path::Path;
use std::time::Duration;

use lanes_proto::LanesClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The gRPC client of lanesd's API, as this crate builds it.
pub type Client = LanesClient<InterceptedService<Channel, Credential>>;

/// Adds the macaroon (if any) to every request.
#[derive(Clone, Default)]
pub struct Credential(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Credential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(m) = &self.0 {
            req.metadata_mut().insert("macaroon", m.clone());
        }
        Ok(req)
    }
}

/// How long connecting may take before it is an error: lanesd on the same machine or LAN answers at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where lanesd's API is, and the credentials to present there.
#[derive(Clone, Debug)]
pub struct Server {
    /// The address as given, for messages.
    rpcserver: String,
    endpoint: Endpoint,
    credential: Option<String>,
    /// Where the pinned certificate came from, for messages.
    cert_path: Option<String>,
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
    /// The server's TLS certificate is not the pinned one.
    WrongCertificate { rpcserver: String, cert_path: String, cause: String },
    /// A certificate or macaroon file could not be used.
    Credential { path: String, why: String },
}

impl Server {
    /// Reads `host:port` (plain HTTP/2, as lanesd serves today) or a full URL such as `http://host:port`.
    pub fn parse(rpcserver: &str) -> Result<Server, ConnectError> {
        let url = if rpcserver.contains("://") { rpcserver.to_string() } else { format!("http://{rpcserver}") };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|e| ConnectError::BadAddress { rpcserver: rpcserver.to_string(), cause: e.to_string() })?
            .connect_timeout(CONNECT_TIMEOUT);
        Ok(Server { rpcserver: rpcserver.to_string(), endpoint, credential: None, cert_path: None })
    }

    /// Pins the certificate in `path` (PEM, lanesd's `tls.cert`): the connection is TLS and trusts it alone.
    pub fn with_tls_cert(mut self, path: &Path) -> Result<Server, ConnectError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| ConnectError::Credential {
            path: shown.clone(),
            why: format!("cannot read the TLS certificate ({e}): give --tlscertpath, or --lanesdir with lanesd's data dir"),
        })?;
        if !pem.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Err(ConnectError::Credential { path: shown, why: "not a PEM certificate (lanesd's is tls.cert in its data dir)".into() });
        }
        let uri = self.endpoint.uri().clone();
        let https = format!("https://{}", uri.authority().map(|a| a.as_str()).unwrap_or_default());
        self.endpoint = Endpoint::from_shared(https)
            .map_err(|e| ConnectError::BadAddress { rpcserver: self.rpcserver.clone(), cause: e.to_string() })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| ConnectError::Credential { path: shown.clone(), why: e.to_string() })?;
        self.cert_path = Some(shown);
        Ok(self)
    }

    /// Presents the macaroon in `path` (lanesd's binary macaroon files, or their hex) on every call.
    pub fn with_macaroon(mut self, path: &Path) -> Result<Server, ConnectError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConnectError::Credential {
            path: shown.clone(),
            why: format!("cannot read the macaroon ({e}): give --macaroonpath, or --lanesdir with lanesd's data dir"),
        })?;
        use lanes_proto::macaroon::Macaroon;
        let text = std::str::from_utf8(&bytes).ok().map(str::trim).filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()));
        let macaroon = match text {
            Some(hex) => Macaroon::from_hex(hex),
            None => Macaroon::decode(&bytes),
        };
        let macaroon = macaroon.map_err(|e| ConnectError::Credential { path: shown, why: e.to_string() })?;
        self.credential = Some(macaroon.to_hex());
        Ok(self)
    }

    /// The TLS certificate and admin macaroon lanesd keeps in its data dir `dir`.
    pub fn with_credentials_in(self, dir: &Path) -> Result<Server, ConnectError> {
        self.with_tls_cert(&dir.join(lanes_proto::macaroon::TLS_CERT))?.with_macaroon(&dir.join(lanes_proto::macaroon::ADMIN_MACAROON))
    }

    /// The address as given.
    pub fn rpcserver(&self) -> &str {
        &self.rpcserver
    }

    /// Connects now, so that a lanesd that is not there is reported before any call.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        match self.endpoint.connect().await {
            Ok(channel) => Ok(self.client(channel)),
            Err(e) if io_error_kind(&e) == Some(std::io::ErrorKind::ConnectionRefused) => {
                Err(ConnectError::Refused { rpcserver: self.rpcserver.clone() })
            }
            Err(e) => {
                let cause = error_chain(&e);
                match &self.cert_path {
                    Some(cert_path) if cause.contains("certificate") => {
                        Err(ConnectError::WrongCertificate { rpcserver: self.rpcserver.clone(), cert_path: cert_path.clone(), cause })
                    }
                    _ => Err(ConnectError::Unreachable { rpcserver: self.rpcserver.clone(), cause }),
                }
            }
        }
    }

    /// A client that connects on its first call and again after the connection drops (lanesd restarted);
    /// a call while nothing listens fails with `UNAVAILABLE`.
    pub fn connect_lazy(&self) -> Client {
        self.client(self.endpoint.connect_lazy())
    }

    /// The client over `channel`, with the API's message limits and the macaroon.
    fn client(&self, channel: Channel) -> Client {
        let credential = Credential(self.credential.as_deref().and_then(|m| m.parse().ok()));
        LanesClient::with_interceptor(channel, credential)
            .max_decoding_message_size(lanes_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(lanes_proto::MAX_MESSAGE_BYTES)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::BadAddress { rpcserver, cause } => write!(f, "{rpcserver:?} is not a host:port address: {cause}"),
            ConnectError::Refused { rpcserver } => write!(f, "cannot connect to lanesd at {rpcserver}: connection refused"),
            ConnectError::Unreachable { rpcserver, cause } => write!(f, "cannot connect to lanesd at {rpcserver}: {cause}"),
            ConnectError::WrongCertificate { rpcserver, cert_path, cause } => write!(
                f,
                "lanesd at {rpcserver} did not show the TLS certificate in {cert_path}: copy the node's current tls.cert (it makes a new one when its names change or it expires) ({cause})"
            ),
            ConnectError::Credential { path, why } => write!(f, "{path}: {why}"),
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
