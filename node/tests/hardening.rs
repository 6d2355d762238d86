//! Hostile or careless input, as an adversarial probe sends it: each refused with a clear status, nothing
//! changed, and the node's files and secrets private to its user.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lanes_regtest::proto::v1::*;
use lanes_channel::test_knobs::{PANIC_ON_PAYMENT_CLAIMABLE_ENV, SEND_CHANNEL_REESTABLISH_TWICE_ENV};
use lanes_regtest::{raw, Net, Node, Pair, RPC_PASSWORD};
use tonic::Code;

/// Sends `body` as is to `method` of `node`, over TLS with its admin macaroon.
async fn raw_call(node: &Node, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let s = raw::call(&raw::tls_channel(node).await, method, body, Some(&raw::macaroon_hex(node, "admin.macaroon"))).await;
    assert_ne!(s.code(), Code::Ok, "malformed input must be refused");
    s
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn hostile_api_input_is_refused_clearly_and_files_are_private() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Pair { alice, bob, channel } = net.pair(1_000_000, 500_000).await;

    // A body that is not protobuf: INVALID_ARGUMENT, as for any malformed input.
    let s = raw_call(&alice, "/lanes.v1.Lanes/GetNodeInfo", vec![0x0a, 0x05, b'a']).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("malformed"), "{s:?}");

    // A 16 KB id is refused without echoing it whole into the status (clients fail on large metadata).
    let huge = "ab".repeat(8 * 1024);
    let s = alice.client().get_node_info(GetNodeInfoRequest { node_id: huge.clone() }).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().len() <= 512, "{} bytes echoed", s.message().len());
    let s = alice.client().close_channel(CloseChannelRequest { channel_id: huge, ..Default::default() }).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().len() <= 512, "{} bytes echoed", s.message().len());

    // Forwarding policies within LND's bounds; a refused update changes nothing.
    let before = alice.channel(&channel).await.expect("open");
    for (base, ppm, cltv, what) in [(1_000, 1, 65_535, "CLTV delta 65535"), (1_000, u32::MAX, 80, "fee rate u32::MAX"), (u32::MAX, 1, 80, "base fee u32::MAX"), (1_000, 1, 3, "CLTV delta 3")] {
        let req = UpdateChannelPolicyRequest { channel_id: channel.clone(), fee_base_msat: base, fee_rate_ppm: ppm, cltv_expiry_delta: cltv };
        let s = alice.client().update_channel_policy(req).await.expect_err(what);
        assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
    }
    let after = alice.channel(&channel).await.expect("open");
    assert_eq!((after.fee_base_msat, after.fee_rate_ppm, after.cltv_expiry_delta), (before.fee_base_msat, before.fee_rate_ppm, before.cltv_expiry_delta));
    let ok = UpdateChannelPolicyRequest { channel_id: channel.clone(), fee_base_msat: 2_000, fee_rate_ppm: 10, cltv_expiry_delta: 144 };
    assert_eq!(alice.client().update_channel_policy(ok).await.expect("within bounds").into_inner().updated, 1);

    // A channel to ourselves is refused for what it is.
    let s = alice
        .client()
        .open_channel(OpenChannelRequest { node_id: alice.node_id(), local_funding_sat: 100_000, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("ourselves"), "{s:?}");

    // ConnectPeer: addresses that cannot be dialed are refused, and an address given for a peer we are already
    // connected to (so not dialed) never replaces the stored one that works: after a restart alice still
    // reconnects to bob.
    let bob_id = bob.node_id();
    for bad in ["256.256.256.256:1", "127.0.0.1:0", "127.0.0.1"] {
        let s = alice.client().connect_peer(ConnectPeerRequest { address: format!("{bob_id}@{bad}"), persist: true }).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{bad}: {s:?}");
    }
    alice.client().connect_peer(ConnectPeerRequest { address: format!("{bob_id}@127.0.0.1:1"), persist: true }).await.expect("already connected");
    alice.restart().await;
    alice.wait_channel_active(&channel).await;

    // The node's files are its user's alone, and bitcoind's password is not in its command line.
    for n in [&alice, &bob] {
        let dir = n.data_dir();
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert_eq!(mode(&dir.join("db")), 0o700);
        assert_eq!(mode(&dir.join("seed")), 0o600);
        for f in std::fs::read_dir(dir.join("db")).unwrap().flatten().filter(|f| f.path().is_file()) {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
        }
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", n.pid())).expect("lanesd's command line");
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        assert!(!args.iter().any(|a| a.ends_with(RPC_PASSWORD.as_bytes()) && !a.starts_with(b"/")), "the RPC password is visible in argv: {args:?}");
        assert!(args.iter().any(|a| *a == b"--bitcoind-rpc-password-file"), "{args:?}");
    }
}

/// Fills `dir`'s file system with a file of zeros until it is full; returns the file.
fn fill_disk(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

/// Fills what is left of the page at the end of `log` with blank lines, so that no line more fits: the
/// node's log on its full disk, as when an operator keeps it in the data directory.
fn fill_log(log: &Path) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(log).expect("the node's log");
    while f.write_all(b"\n").is_ok() {}
}

/// A full disk stops the node with exit code 2, so a supervisor restarts it, instead of leaving a zombie that
/// refuses every write; once space is back, nothing it acknowledged is lost. Its log is on the full disk too,
/// with not a line of room (before: logging the fatal error panicked, the latch was never set, and bob ran on;
/// a CI run caught it when the log's last page happened to be nearly full). The fatal line itself is asserted
/// where the log has room: `postgres.rs`, the database gone.
#[tokio::test]
async fn a_full_disk_stops_the_node_and_nothing_acknowledged_is_lost() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_on_small_disk("bob", 32 << 20).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;
    let paid = alice.keysend(&bob, 1_000_000).await.expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");

    // bob's disk fills up; the next payment needs a write bob cannot make.
    let filler = fill_disk(bob.data_dir());
    fill_log(&bob.log_path());
    let payer = alice.clone();
    let bob_for_task = bob.clone();
    let in_flight = tokio::spawn(async move { payer.keysend(&bob_for_task, 2_000_000).await });
    let status = bob.wait_for_exit(lanes_regtest::SYNC_TIMEOUT).await;
    assert_eq!(status.code(), Some(2), "bob must exit with the fatal error's code: {status:?}");

    // Space is back: bob starts, the channel is whole, and the first payment is still bob's.
    std::fs::remove_file(filler).unwrap();
    bob.start().await;
    bob.wait_channel_active(&channel).await;
    alice.wait_channel_active(&channel).await;
    let second = in_flight.await.expect("task");
    let second_paid = matches!(&second, Ok(p) if p.status == PaymentStatus::Succeeded as i32);
    let expected_bob = 1_000_000 + if second_paid { 2_000_000 } else { 0 };
    let b = bob.channel(&channel).await.expect("still open");
    let a = alice.channel(&channel).await.expect("still open");
    assert_eq!(b.local_balance_msat, expected_bob, "bob: {b:?} (second payment: {second:?})");
    assert_eq!(a.remote_balance_msat, expected_bob, "alice sees the same: {a:?}");
    assert!(bob.closed_channels().await.is_empty() && alice.closed_channels().await.is_empty(), "no channel closed");
    let again = alice.keysend(&bob, 3_000_000).await.expect("keysend after restart");
    assert_eq!(again.status, PaymentStatus::Succeeded as i32, "{again:?}");
}

/// A bug that panics, in whichever task, stops lanesd: the panic's message and place, a fatal line, then an
/// abort, so a supervisor restarts it (before: tokio ended only that task, and bob, his event loop dead, went
/// on serving the API and holding the channel while he claimed nothing). Restarted, bob claims the payment
/// that was under way: nothing acknowledged was lost.
#[tokio::test]
async fn a_panic_stops_the_node_and_the_payment_under_way_completes_after_a_restart() {
    use std::os::unix::process::ExitStatusExt;
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let marker = net.dir().join("bob-panicked");
    let bob = net.node_with_env("bob", &[(PANIC_ON_PAYMENT_CLAIMABLE_ENV, marker.to_str().unwrap())]).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;

    let (payer, payee) = (alice.clone(), bob.clone());
    let in_flight = tokio::spawn(async move { payer.keysend(&payee, 2_000_000).await });
    let status = bob.wait_for_exit(lanes_regtest::SYNC_TIMEOUT).await;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "bob must stop at once, with no clean stop: {status:?}");
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    assert!(log.contains("panicked at") && log.contains("TEST KNOB: a bug while handling a claimable payment"), "the panic and where");
    assert!(log.contains("lanesd: fatal: a panic (a bug in lanes"), "no fatal line in bob's log");

    bob.start().await;
    let paid = in_flight.await.expect("task").expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    bob.wait_local_msat(&channel, 2_000_000).await;
    assert_eq!(alice.channel(&channel).await.expect("open").remote_balance_msat, 2_000_000);
    assert!(bob.closed_channels().await.is_empty() && alice.closed_channels().await.is_empty(), "no channel closed");
}

/// More idle connections to bob's P2P port than his open-file limit allows, from one address (127.0.0.2): bob
/// stays responsive (GetInfo under 100 ms), does not spin or flood his log, and alice can still reconnect from
/// her own address and pay.
#[tokio::test]
async fn a_connection_flood_beyond_the_fd_limit_does_not_take_the_node_down() {
    const LIMIT: u64 = 1024;
    const FLOOD: usize = 1_100;
    // This test process holds the flood's connections: its own soft limit goes up as lanesd's does.
    let own_limit = lanes_node::listener::raise_fd_limit();
    assert!(own_limit >= FLOOD as u64 + 512, "the test needs {} open files; its limit is {own_limit}", FLOOD + 512);
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with_fd_limit("bob", LIMIT).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;

    // The flood: idle TCP connections that never start the handshake, all held open.
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(Ok(stream)) = tokio::time::timeout(std::time::Duration::from_millis(200), socket.connect(bob.p2p_addr())).await {
            held.push(stream);
        }
    }
    assert!(held.len() > LIMIT as usize / 2, "only {} flood connections got through", held.len());

    // bob answers quickly while the flood is held.
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let info = bob.info().await;
        assert!(t.elapsed() < std::time::Duration::from_millis(100), "GetInfo took {:?}", t.elapsed());
        assert!(info.synced_to_chain);
    }
    // alice reconnects (from 127.0.0.1) and pays.
    alice.client().disconnect_peer(DisconnectPeerRequest { node_id: bob.node_id() }).await.expect("disconnect");
    alice.wait_until("bob to be gone from alice's peers", || async { alice.client().list_peers(ListPeersRequest {}).await.unwrap().into_inner().peers.is_empty() }).await;
    alice.connect(&bob).await;
    alice.wait_channel_active(&channel).await;
    let paid = alice.keysend(&bob, 1_000_000).await.expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");

    // bob said what he refused, without flooding his log.
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    assert!(log.contains("inbound connection refused"), "bob did not say he refused connections");
    let lines = log.lines().filter(|l| l.contains("inbound connection refused") || l.contains("accepting a peer connection failed")).count();
    assert!(lines < 20, "{lines} lines about refused connections");
    drop(held);
}

/// A peer that sends channel_reestablish twice on one connection, as Electrum does after a crossed dial and as
/// the peer software CLN ignores it for: the repeat is ignored with a WARN line naming the peer and the
/// channel, and the channel stays open and pays. LDK alone force-closed it ("Peer sent a loose
/// channel_reestablish not after reconnect").
#[tokio::test]
async fn a_peer_repeating_channel_reestablish_keeps_its_channel() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with_env("bob", &[(SEND_CHANNEL_REESTABLISH_TWICE_ENV, "1")]).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;

    // A reconnection: each side reestablishes the channel, bob twice.
    bob.restart().await;
    bob.wait_log_line(&["TEST KNOB: sending this channel_reestablish twice", &channel]).await;
    let warned = alice.wait_log_line(&["peer repeated channel_reestablish on a live connection", &bob.node_id()]).await;
    assert!(warned.contains("WARN") && warned.contains(&channel), "{warned}");

    // The channel is still there on both sides, and pays both ways to the msat.
    alice.wait_channel_active(&channel).await;
    bob.wait_channel_active(&channel).await;
    let paid = alice.keysend(&bob, 20_000_000).await.expect("keysend to bob");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    let back = bob.keysend(&alice, 5_000_000).await.expect("keysend to alice");
    assert_eq!(back.status, PaymentStatus::Succeeded as i32, "{back:?}");
    bob.wait_local_msat(&channel, 15_000_000).await;
    assert!(alice.closed_channels().await.is_empty(), "alice closed: {:?}", alice.closed_channels().await);
    assert!(bob.closed_channels().await.is_empty(), "bob closed: {:?}", bob.closed_channels().await);
}
