//! The ldk-node side of issue 14's comparison: two ldk-node 0.7 nodes (crates.io, default SQLite store,
//! bitcoind RPC chain source, INFO log to a file as lanesd logs) in this one process on a regtest bitcoind,
//! a channel from alice to bob, and keysends of 1,000 sat from alice to bob with N in flight, measured the
//! way `node/benches/payments.rs` measures two lanesd processes. With 2 hops, a 3-node line instead: alice to
//! bob to carol, two announced channels of the same size (alice routes over bob from the gossip she got from
//! him), keysends from alice to carol. Bench support only: never part of lanes.
//!
//! Run by `payments.rs` with `LANES_BENCH_LDK_NODE=1` (it builds this crate, outside the workspace, and
//! hands it a fresh regtest bitcoind): `ldk-node-peer <dir> <rpc host:port> <payments> <in flight>
//! <channel sat> [hops]`, the RPC password in `LDK_NODE_PEER_RPC_PASSWORD` (never in argv). It prints one line,
//! `result {json}`, with p50/p99 in ms, payments/s, failures, and the process's CPU time and disk writes per
//! succeeded payment (both nodes: they share the process).
//!
//! ldk-node is driven through its Rust API, not over a network API as lanesd is (ldk-node has none): its
//! latencies carry no gRPC or TLS, so the comparison flatters it a little.
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoincore_rpc::{Auth, Client, RpcApi};
use ldk_node::bitcoin::{Address, Amount, Network};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::logger::LogLevel;
use ldk_node::{Builder, Event, Node};

const RPC_USER: &str = "lanes";
const MINER_WALLET: &str = "miner";
/// Every wait here: setup steps that take longer mean something is broken.
const DEADLINE: Duration = Duration::from_secs(120);

type Waiters = Arc<Mutex<HashMap<PaymentId, mpsc::Sender<Result<(), String>>>>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, rpc, n, in_flight, channel_sat, hops) = match args.as_slice() {
        [_, dir, rpc, n, in_flight, channel_sat] => (dir, rpc, n, in_flight, channel_sat, 1u32),
        [_, dir, rpc, n, in_flight, channel_sat, hops] => (dir, rpc, n, in_flight, channel_sat, hops.parse().expect("hops")),
        _ => {
            eprintln!("usage: ldk-node-peer <dir> <rpc host:port> <payments> <in flight> <channel sat> [hops: 1 or 2]");
            std::process::exit(2);
        }
    };
    assert!(hops == 1 || hops == 2, "hops: 1 or 2");
    let line = hops == 2;
    let password = std::env::var("LDK_NODE_PEER_RPC_PASSWORD").expect("LDK_NODE_PEER_RPC_PASSWORD");
    let (n, in_flight, channel_sat): (usize, usize, u64) =
        (n.parse().expect("payments"), in_flight.parse().expect("in flight"), channel_sat.parse().expect("channel sat"));
    let (host, port) = rpc.rsplit_once(':').expect("rpc host:port");
    let port: u16 = port.parse().expect("rpc port");
    let miner = Client::new(&format!("http://{rpc}/wallet/{MINER_WALLET}"), Auth::UserPass(RPC_USER.into(), password.clone()))
        .expect("bitcoind RPC client");

    let p2p_port = free_port();
    // On a line every node announces its channels: ldk-node wants an alias and a listening address for that.
    let node = |name: &str, listen: Option<u16>| -> Node {
        let mut b = Builder::new();
        b.set_network(Network::Regtest);
        b.set_storage_dir_path(format!("{dir}/{name}"));
        b.set_filesystem_logger(Some(format!("{dir}/{name}/ldk_node.log")), Some(LogLevel::Info));
        b.set_chain_source_bitcoind_rpc(host.to_string(), port, RPC_USER.into(), password.clone());
        if let Some(p) = listen {
            b.set_listening_addresses(vec![SocketAddress::from_str(&format!("127.0.0.1:{p}")).expect("address")]).expect("listen");
        }
        if line {
            b.set_node_alias(name.to_string()).expect("alias");
        }
        let node = b.build().unwrap_or_else(|e| panic!("building {name}: {e:?}"));
        node.start().unwrap_or_else(|e| panic!("starting {name}: {e:?}"));
        node
    };
    let carol_port = free_port();
    let alice = Arc::new(node("alice", line.then(free_port)));
    let bob = Arc::new(node("bob", Some(p2p_port)));
    let carol = line.then(|| Arc::new(node("carol", Some(carol_port))));

    // Every node funds its wallet: ldk-node keeps an on-chain reserve for anchor channels on both ends.
    let mut funded = vec![(&alice, channel_sat + 500_000), (&bob, if line { channel_sat + 500_000 } else { 100_000 })];
    if let Some(c) = &carol {
        funded.push((c, 100_000));
    }
    for (who, sat) in funded.iter().copied() {
        let address = who.onchain_payment().new_address().expect("new address");
        let address = Address::from_str(&address.to_string()).expect("address").assume_checked();
        miner.send_to_address(&address, Amount::from_sat(sat), None, None, None, None, None, None).expect("sendtoaddress");
    }
    mine(&miner, 1);
    for (who, _) in funded.iter().copied() {
        wait("the funding to confirm", || {
            who.sync_wallets().ok()?;
            (who.list_balances().spendable_onchain_balance_sats > 0).then_some(())
        });
    }

    // Bob's and carol's events: drained (payments received or forwarded, channels ready), so their queues
    // do not grow.
    let bob_ready = Arc::new(Mutex::new(false));
    for who in std::iter::once(&bob).chain(carol.as_ref()) {
        let (who, ready) = (Arc::clone(who), Arc::clone(&bob_ready));
        std::thread::spawn(move || loop {
            if let Event::ChannelReady { .. } = who.wait_next_event() {
                *ready.lock().unwrap() = true;
            }
            let _ = who.event_handled();
        });
    }
    // Alice's events: each payment's outcome goes to the call waiting for it.
    let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));
    let early: Arc<Mutex<HashMap<PaymentId, Result<(), String>>>> = Arc::new(Mutex::new(HashMap::new()));
    let alice_ready = Arc::new(Mutex::new(false));
    {
        let (alice, waiters, early, ready) = (Arc::clone(&alice), Arc::clone(&waiters), Arc::clone(&early), Arc::clone(&alice_ready));
        std::thread::spawn(move || loop {
            let outcome = match alice.wait_next_event() {
                Event::PaymentSuccessful { payment_id: Some(id), .. } => Some((id, Ok(()))),
                Event::PaymentFailed { payment_id: Some(id), reason, .. } => Some((id, Err(format!("{reason:?}")))),
                Event::ChannelReady { .. } => {
                    *ready.lock().unwrap() = true;
                    None
                }
                _ => None,
            };
            if let Some((id, outcome)) = outcome {
                // The waiters' lock is held through the whole match (see `pay`).
                match waiters.lock().unwrap().remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(outcome);
                    }
                    // The outcome came before the sender registered: kept for it.
                    None => {
                        early.lock().unwrap().insert(id, outcome);
                    }
                }
            }
            let _ = alice.event_handled();
        });
    }

    let bob_addr = SocketAddress::from_str(&format!("127.0.0.1:{p2p_port}")).expect("address");
    match &carol {
        None => {
            alice.open_channel(bob.node_id(), bob_addr, channel_sat, None, None).expect("open channel");
        }
        Some(carol) => {
            alice.open_announced_channel(bob.node_id(), bob_addr, channel_sat, None, None).expect("open channel to bob");
            let carol_addr = SocketAddress::from_str(&format!("127.0.0.1:{carol_port}")).expect("address");
            bob.open_announced_channel(carol.node_id(), carol_addr, channel_sat, None, None).expect("open channel to carol");
        }
    }
    let fundings = if line { 2 } else { 1 };
    wait("the funding transactions in the mempool", || (miner.get_raw_mempool().ok()?.len() >= fundings).then_some(()));
    mine(&miner, 6);
    let everyone: Vec<&Arc<Node>> = [&alice, &bob].into_iter().chain(carol.as_ref()).collect();
    wait("the channels to be usable on both ends", || {
        for who in &everyone {
            let _ = who.sync_wallets();
        }
        let ready = *alice_ready.lock().unwrap() && *bob_ready.lock().unwrap();
        let usable = |who: &Node| who.list_channels().iter().filter(|c| c.is_usable).count();
        (ready && usable(&alice) >= 1 && usable(&bob) >= fundings).then_some(())
    });
    if line {
        // alice routes to carol from the gossip bob relays: both channels announced, with both directions'
        // updates. LDK announces a channel 6 blocks deep; a few more blocks in case one was missed.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let graph = alice.network_graph();
            let known = graph.list_channels().iter().filter_map(|scid| graph.channel(*scid)).filter(|c| c.one_to_two.is_some() && c.two_to_one.is_some()).count();
            if known >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "ldk-node-peer: timed out waiting for alice to learn both channels ({known} known)");
            for who in &everyone {
                let _ = who.sync_wallets();
            }
            if deadline.duration_since(Instant::now()).as_secs() % 15 == 0 {
                mine(&miner, 1);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let dest = carol.as_ref().map_or_else(|| bob.node_id(), |c| c.node_id());

    let pay = |alice: &Node| -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        let id = alice.spontaneous_payment().send(1_000_000, dest, None).map_err(|e| format!("send: {e:?}"))?;
        // The event thread delivers under the waiters' lock too: an outcome is either already kept in
        // `early` or is sent to us.
        {
            let mut w = waiters.lock().unwrap();
            if let Some(outcome) = early.lock().unwrap().remove(&id) {
                return outcome;
            }
            w.insert(id, tx);
        }
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| Err(format!("no outcome for {id:?} in 60 s")))
    };
    // Warm-up, as payments.rs does for lanesd.
    for _ in 0..20 {
        pay(&alice).expect("warm-up keysend");
    }

    // With LDK_NODE_PEER_STRACE=<file>, the measured part runs under `strace -c` for the calls that make
    // storage durable, as payments.rs's LANES_BENCH_STRACE does for lanesd; strace slows the process.
    let tracer = std::env::var("LDK_NODE_PEER_STRACE").ok().map(|out| {
        let child = std::process::Command::new("strace")
            .args(["-f", "-c", "-e", "trace=fsync,fdatasync,sync_file_range", "-o", &out, "-p", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("strace");
        // strace attaches asynchronously: let it take hold of every thread first.
        std::thread::sleep(Duration::from_secs(1));
        (child, out)
    });
    let (cpu0, written0) = (cpu_time(), write_bytes());
    let start = Instant::now();
    let next = Arc::new(Mutex::new(0usize));
    let results = Arc::new(Mutex::new(Vec::with_capacity(n)));
    std::thread::scope(|s| {
        for _ in 0..in_flight.max(1) {
            s.spawn(|| loop {
                {
                    let mut k = next.lock().unwrap();
                    if *k >= n {
                        return;
                    }
                    *k += 1;
                }
                let t = Instant::now();
                let outcome = pay(&alice);
                results.lock().unwrap().push((t.elapsed(), outcome));
            });
        }
    });
    let total = start.elapsed();
    let (cpu, written) = (cpu_time() - cpu0, write_bytes() - written0);
    let syncs = tracer.map(|(mut child, out)| {
        // SIGINT detaches strace, which then writes its summary.
        let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let _ = child.wait();
        std::fs::read_to_string(out).unwrap_or_default()
    });
    let results = std::mem::take(&mut *results.lock().unwrap());
    let mut took: Vec<Duration> = results.iter().map(|(t, _)| *t).collect();
    took.sort();
    let failures: Vec<&String> = results.iter().filter_map(|(_, o)| o.as_ref().err()).collect();
    let succeeded = (n - failures.len()).max(1);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let result = serde_json::json!({
        "p50_ms": ms(took[n / 2]),
        "p99_ms": ms(took[n * 99 / 100]),
        "rate": (n - failures.len()) as f64 / total.as_secs_f64(),
        "failed": failures.len(),
        "first_failure": failures.first(),
        "cpu_ms_per_payment": ms(cpu) / succeeded as f64,
        "written_bytes_per_payment": written as f64 / n as f64,
        "strace_summary": syncs,
    });
    println!("result {result}");
    for who in everyone {
        let _ = who.stop();
    }
}

fn mine(miner: &Client, n: u64) {
    let to = miner.get_new_address(None, None).expect("getnewaddress").assume_checked();
    miner.generate_to_address(n, &to).expect("generatetoaddress");
}

/// Polls `check` every 100 ms until it gives a value; panics after [`DEADLINE`].
fn wait<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "ldk-node-peer: timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// This process's CPU time (user + system), from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    Duration::from_millis((f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10)
}

/// Bytes this process has caused to be written to disk (`/proc/self/io`).
fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}
