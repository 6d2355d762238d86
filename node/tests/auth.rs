//! The control API is TLS with macaroons, against a real lanesd: who may call what, and what a caller is
//! told when it may not.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ::lanes_client::{ConnectError, Server};
use lanes_proto::macaroon::Macaroon;
use lanes_regtest::proto::v1::*;
use lanes_regtest::raw::{macaroon_hex, tls_channel};
use lanes_regtest::{raw, Net};
use prost::Message;
use tonic::Code;

/// Calls `path` of the node behind `channel` with an empty request.
async fn call(channel: &tonic::transport::Channel, path: &str, macaroon: Option<&str>) -> tonic::Status {
    raw::call(channel, path, Vec::new(), macaroon).await
}

/// Every method of the service, as its descriptor lists them.
fn methods() -> Vec<String> {
    let fds = prost_types::FileDescriptorSet::decode(lanes_proto::FILE_DESCRIPTOR_SET).unwrap();
    let service = fds.file.iter().flat_map(|f| f.service.iter()).find(|s| s.name() == "Lanes").unwrap();
    service.method.iter().map(|m| format!("/lanes.v1.Lanes/{}", m.name())).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_api_needs_tls_and_a_macaroon_that_allows_the_call() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node("bob").await;
    let channel = tls_channel(&alice).await;

    // Credentials are the node user's alone.
    for f in ["tls.cert", "tls.key", "macaroon_root_key", "admin.macaroon", "readonly.macaroon", "invoice.macaroon"] {
        assert_eq!(mode(&alice.data_dir().join(f)), 0o600, "{f}");
    }

    // No macaroon: every method, reflection included, is UNAUTHENTICATED and says what to send.
    let mut all = methods();
    all.push("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into());
    for path in &all {
        let s = call(&channel, path, None).await;
        assert_eq!(s.code(), Code::Unauthenticated, "{path}: {s:?}");
        assert!(s.message().contains("no macaroon"), "{path}: {s:?}");
    }

    // readonly reads, and is refused everything that moves money or changes the node.
    let readonly = macaroon_hex(&alice, "readonly.macaroon");
    assert_eq!(call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&readonly)).await.code(), Code::Ok);
    assert_eq!(call(&channel, "/lanes.v1.Lanes/ListChannels", Some(&readonly)).await.code(), Code::Ok);
    for m in ["SendCoins", "PayInvoice", "OpenChannel", "CloseChannel", "Stop", "AddInvoice", "BakeMacaroon"] {
        let s = call(&channel, &format!("/lanes.v1.Lanes/{m}"), Some(&readonly)).await;
        assert_eq!(s.code(), Code::PermissionDenied, "{m}: {s:?}");
        assert!(s.message().starts_with(&format!("the macaroon does not allow {m}")), "{m}: {s:?}");
    }

    // invoice makes and reads invoices, nothing else.
    let invoice = macaroon_hex(&alice, "invoice.macaroon");
    assert_eq!(call(&channel, "/lanes.v1.Lanes/ListInvoices", Some(&invoice)).await.code(), Code::Ok);
    for m in ["GetInfo", "WalletBalance", "PayInvoice", "NewAddress"] {
        assert_eq!(call(&channel, &format!("/lanes.v1.Lanes/{m}"), Some(&invoice)).await.code(), Code::PermissionDenied, "{m}");
    }
    assert_eq!(call(&channel, "/lanes.v1.Lanes/AddInvoice", Some(&invoice)).await.code(), Code::Ok, "an any-amount invoice");
    let admin = macaroon_hex(&alice, "admin.macaroon");

    // A tampered macaroon, another node's, and an expired one are refused as such.
    let mut tampered = Macaroon::from_hex(&admin).unwrap();
    tampered.caveats[0] = tampered.caveats[0].replace("info:read,", "");
    let s = call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&tampered.to_hex())).await;
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("signature does not match"), "{s:?}");
    let s = call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&macaroon_hex(&bob, "admin.macaroon"))).await;
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("root key"), "{s:?}");
    let expired = Macaroon::from_hex(&admin).unwrap().attenuate("expires=1000".into()).to_hex();
    let s = call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&expired)).await;
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("expired"), "{s:?}");
    let s = call(&channel, "/lanes.v1.Lanes/GetInfo", Some("not hex")).await;
    assert_eq!((s.code(), s.message().contains("malformed")), (Code::Unauthenticated, true), "{s:?}");

    // A baked macaroon with a method allow-list works for exactly those methods.
    let baked = alice
        .client()
        .bake_macaroon(BakeMacaroonRequest { permissions: vec!["info:read".into()], methods: vec!["GetInfo".into()], expiry_secs: 3600 })
        .await
        .unwrap()
        .into_inner();
    assert!(baked.expires_at > 0);
    assert_eq!(call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&baked.macaroon)).await.code(), Code::Ok);
    let s = call(&channel, "/lanes.v1.Lanes/DescribeGraph", Some(&baked.macaroon)).await;
    assert_eq!(s.code(), Code::PermissionDenied, "same permission, not in the allow-list: {s:?}");
    let bad = alice.client().bake_macaroon(BakeMacaroonRequest { permissions: vec!["wallet:everything".into()], ..Default::default() }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");

    // Plaintext is refused; a client pinning another certificate says so.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", alice.rpcserver())).unwrap().connect().await;
    let refused = match plain {
        Err(_) => true,
        Ok(ch) => call(&ch, "/lanes.v1.Lanes/GetInfo", Some(&admin)).await.code() != Code::Ok,
    };
    assert!(refused, "a plaintext client must not reach the API");
    let wrong = Server::parse(&alice.rpcserver()).unwrap().with_tls_cert(&bob.data_dir().join("tls.cert")).unwrap().connect().await.unwrap_err();
    assert!(matches!(wrong, ConnectError::WrongCertificate { .. }), "{wrong:?}");
    assert!(wrong.to_string().contains("did not show the TLS certificate in"), "{wrong}");
}

/// Rotation as with LND's macaroons.db: without its root key file, lanesd makes a new key and new macaroons
/// at start (so does --rotate-macaroon-root-key), and every macaroon made before stops working.
#[tokio::test]
async fn rotating_the_root_key_retires_every_macaroon_made_before() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let old = macaroon_hex(&alice, "admin.macaroon");
    alice.stop().await;
    std::fs::remove_file(alice.data_dir().join("macaroon_root_key")).unwrap();
    alice.start().await;
    let channel = tls_channel(&alice).await;
    let s = call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&old)).await;
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert_ne!(macaroon_hex(&alice, "admin.macaroon"), old);
    assert_eq!(call(&channel, "/lanes.v1.Lanes/GetInfo", Some(&macaroon_hex(&alice, "admin.macaroon"))).await.code(), Code::Ok);
}
