//! Who may call what: the API's permission table, and the one layer that checks every call against it.
//!
//! Every gRPC method (reflection included) needs one permission (`entity:action`, as LND's); a caller shows a
//! macaroon (hex, in the `macaroon` request metadata) whose caveats must allow it (see
//! `lanes_proto::macaroon`). The check is a tower layer in front of every service the server has, so no
//! handler can be reached without it. A missing, malformed, tampered, unknown-key or expired macaroon is
//! `UNAUTHENTICATED`; a valid one that does not allow the method is `PERMISSION_DENIED`; both say why.
//!
//! Owns: the table, the root keys in use and the layer. Must never: let a method through that the table
//! does not list, log a macaroon, or panic on any header.
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use lanes_proto::macaroon::{Invalid, Macaroon};
use tonic::Status;

/// The request metadata a macaroon travels in (hex), as LND's.
pub const MACAROON_HEADER: &str = "macaroon";

/// The gRPC path prefix of lanes' own service.
pub const SERVICE_PATH: &str = "/lanes.v1.Lanes/";
/// gRPC reflection's one method (v1 and v1alpha): listing the API needs `info:read`.
pub const REFLECTION_PATHS: [&str; 2] =
    ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"];

/// Every method of `lanes.v1.Lanes` and the permission it needs.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("GetInfo", "info:read"),
    ("Stop", "info:write"),
    ("NewAddress", "address:write"),
    ("WalletBalance", "onchain:read"),
    ("ListUnspent", "onchain:read"),
    ("SendCoins", "onchain:write"),
    ("ConnectPeer", "peers:write"),
    ("ListPeers", "peers:read"),
    ("DisconnectPeer", "peers:write"),
    ("OpenChannel", "offchain:write"),
    ("BatchOpenChannel", "offchain:write"),
    ("ListChannels", "offchain:read"),
    ("PendingChannels", "offchain:read"),
    ("CloseChannel", "offchain:write"),
    ("ClosedChannels", "offchain:read"),
    ("UpdateChannelPolicy", "offchain:write"),
    // A splice moves on-chain coins into a channel or out of it.
    ("SpliceIn", "onchain:write"),
    ("SpliceOut", "onchain:write"),
    ("DescribeGraph", "info:read"),
    ("GetNodeInfo", "info:read"),
    ("GetChanInfo", "info:read"),
    ("AddInvoice", "invoices:write"),
    ("DecodeInvoice", "offchain:read"),
    ("ListInvoices", "invoices:read"),
    ("LookupInvoice", "invoices:read"),
    ("SettleInvoice", "invoices:write"),
    ("CancelInvoice", "invoices:write"),
    ("PayInvoice", "offchain:write"),
    ("SendKeysend", "offchain:write"),
    ("ListPayments", "offchain:read"),
    // Making offers and being paid refunds is receiving money, as AddInvoice is; paying offers and making
    // refunds spends it.
    ("CreateOffer", "invoices:write"),
    ("ListOffers", "invoices:read"),
    ("DisableOffer", "invoices:write"),
    ("DecodeOffer", "offchain:read"),
    ("PayOffer", "offchain:write"),
    ("CreateRefund", "offchain:write"),
    ("RequestRefundPayment", "invoices:write"),
    ("QueryRoutes", "info:read"),
    ("BatchQueryRoutes", "info:read"),
    ("ForwardingHistory", "offchain:read"),
    ("SubscribeEvents", "info:read"),
    ("BakeMacaroon", "macaroon:generate"),
];

/// Every permission there is: what the admin macaroon holds.
pub fn all_permissions() -> Vec<&'static str> {
    let mut all: Vec<&str> = PERMISSIONS.iter().map(|(_, p)| *p).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The `:read` permissions: what the readonly macaroon holds.
pub fn read_permissions() -> Vec<&'static str> {
    all_permissions().into_iter().filter(|p| p.ends_with(":read")).collect()
}

/// What the invoice macaroon holds: making invoices and reading them, nothing else.
pub const INVOICE_PERMISSIONS: [&str; 2] = ["invoices:read", "invoices:write"];

/// The method name and permission of a gRPC path, if the table lists it.
pub fn permission(path: &str) -> Option<(&'static str, &'static str)> {
    if REFLECTION_PATHS.contains(&path) {
        return Some(("ServerReflectionInfo", "info:read"));
    }
    let name = path.strip_prefix(SERVICE_PATH)?;
    PERMISSIONS.iter().find(|(m, _)| *m == name).copied()
}

/// Checks macaroons against the node's root keys.
pub struct Authenticator {
    /// None: macaroons are off (`--no-macaroons`); every listed method is allowed.
    root_keys: Option<HashMap<[u8; 8], [u8; 32]>>,
}

impl Authenticator {
    pub fn new(root_keys: Option<HashMap<[u8; 8], [u8; 32]>>) -> Self {
        Self { root_keys }
    }

    /// Whether the call to `path` with the `macaroon` header value may go on.
    pub fn check(&self, path: &str, macaroon: Option<&[u8]>, now: u64) -> Result<(), Status> {
        let Some((method, needed)) = permission(path) else {
            return Err(Status::permission_denied(format!("{path} is not in the API's permission table")));
        };
        let Some(keys) = &self.root_keys else { return Ok(()) };
        let unauthenticated = |why: String| Status::unauthenticated(crate::api::error::bounded(why));
        let Some(value) = macaroon else {
            return Err(unauthenticated(format!(
                "no macaroon: send one as hex in the {MACAROON_HEADER:?} metadata (lanes-cli: --macaroonpath; admin.macaroon is in the node's data dir)"
            )));
        };
        let text = std::str::from_utf8(value).map_err(|_| unauthenticated("the macaroon is malformed: not hex".into()))?;
        let m = Macaroon::from_hex(text).map_err(|e| unauthenticated(e.to_string()))?;
        let key = keys.get(&m.key_id).copied().ok_or_else(|| unauthenticated(Invalid::UnknownKey.to_string()))?;
        m.verify_signature(&key).map_err(|e| unauthenticated(e.to_string()))?;
        match m.allows(method, needed, now) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Status::permission_denied(format!("the macaroon does not allow {method} (it needs {needed})"))),
            Err(e) => Err(unauthenticated(e.to_string())),
        }
    }
}

/// The tower layer that runs [`Authenticator::check`] before every service.
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { auth: Arc::clone(&self.0), inner }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    auth: Arc<Authenticator>,
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verdict = self.auth.check(req.uri().path(), req.headers().get(MACAROON_HEADER).map(|v| v.as_bytes()), lanes_common::now_secs());
        match verdict {
            Ok(()) => {
                // The service that was made ready is the one that takes the call (tower's contract).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(req).await })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method the service offers is in the table, once: none can be added without a permission.
    #[test]
    fn every_method_has_one_permission() {
        use prost::Message;
        let fds = prost_types::FileDescriptorSet::decode(lanes_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service = fds.file.iter().flat_map(|f| f.service.iter()).find(|s| s.name() == "Lanes").unwrap();
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        for m in &methods {
            assert_eq!(PERMISSIONS.iter().filter(|(n, _)| n == m).count(), 1, "{m}");
        }
        assert_eq!(PERMISSIONS.len(), methods.len(), "the table lists methods the service does not have");
        assert_eq!(permission("/lanes.v1.Lanes/Stop"), Some(("Stop", "info:write")));
        assert_eq!(permission("/lanes.v1.Lanes/Nope"), None);
        assert!(read_permissions().iter().all(|p| p.ends_with(":read")) && read_permissions().contains(&"info:read"));
    }

    #[test]
    fn the_check_says_what_is_wrong() {
        let key = [9u8; 32];
        let auth = Authenticator::new(Some(HashMap::from([([1; 8], key)])));
        let ro = Macaroon::bake(&key, [1; 8], [0; 16], vec![format!("perms={}", read_permissions().join(","))]).to_hex();
        let path = |m: &str| format!("{SERVICE_PATH}{m}");
        assert!(auth.check(&path("GetInfo"), Some(ro.as_bytes()), 0).is_ok());
        let denied = auth.check(&path("SendCoins"), Some(ro.as_bytes()), 0).unwrap_err();
        assert_eq!((denied.code(), denied.message()), (tonic::Code::PermissionDenied, "the macaroon does not allow SendCoins (it needs onchain:write)"));
        for (header, words) in [(None, "no macaroon"), (Some("zz".as_bytes()), "malformed"), (Some(&[0xff, 0xfe][..]), "malformed")] {
            let s = auth.check(&path("GetInfo"), header, 0).unwrap_err();
            assert_eq!(s.code(), tonic::Code::Unauthenticated);
            assert!(s.message().contains(words), "{}", s.message());
        }
        let other_key = Macaroon::bake(&key, [2; 8], [0; 16], vec![]).to_hex();
        assert!(auth.check(&path("GetInfo"), Some(other_key.as_bytes()), 0).unwrap_err().message().contains("root key"));
        assert!(Authenticator::new(None).check(&path("Stop"), None, 0).is_ok(), "--no-macaroons");
        assert_eq!(Authenticator::new(None).check("/x.Y/Z", None, 0).unwrap_err().code(), tonic::Code::PermissionDenied);
    }
}
