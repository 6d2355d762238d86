//! Calling lanesd's API below the generated client: any bytes to any path, with or without a macaroon, as a
//! broken or hostile client would (tests of the API's input checks and of its authentication).
//!
//! Owns: a codec that passes bytes through, a TLS channel pinning a node's certificate, and one call. Must
//! never: retry, or hide the status a call ended with.
use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::Node;

/// Raw bytes in, raw bytes out.
#[derive(Clone, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// A TLS channel to `node`, pinning its certificate.
pub async fn tls_channel(node: &Node) -> tonic::transport::Channel {
    let cert = std::fs::read(node.data_dir().join("tls.cert")).expect("the node's tls.cert");
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(cert));
    tonic::transport::Endpoint::from_shared(format!("https://{}", node.rpcserver()))
        .expect("an https address")
        .tls_config(tls)
        .expect("the node's certificate")
        .connect()
        .await
        .expect("TLS connect")
}

/// The macaroon in `file` of `node`'s data dir, as hex.
pub fn macaroon_hex(node: &Node, file: &str) -> String {
    std::fs::read(node.data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}")).iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `body` to `path` with `macaroon` (hex) if any; the status the call ended with (OK included).
pub async fn call(channel: &tonic::transport::Channel, path: &str, body: Vec<u8>, macaroon: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let mut req = tonic::Request::new(body);
    if let Some(m) = macaroon {
        req.metadata_mut().insert("macaroon", m.parse().expect("hex is valid metadata"));
    }
    let path: tonic::codegen::http::uri::PathAndQuery = path.parse().expect("a gRPC path");
    match grpc.unary(req, path, Raw).await {
        Ok(_) => tonic::Status::ok(""),
        Err(s) => s,
    }
}
