//! lanes-regtest: a local regtest network to try lanes by hand (run it through `regtest/run.sh`).
//!
//! Starts bitcoind and three funded lanesd nodes (alice, bob, carol), prints how to drive each of them with
//! lanes-cli and how to mine with bitcoin-cli, then waits for Ctrl-C (or SIGTERM) and stops everything:
//! nodes first, then bitcoind. `--exit-after-setup` stops right after printing, for a CI smoke run.
//! lanesd and lanes-cli are taken from next to this executable (`target/debug/`), or `LANESD_EXE`.
use std::path::PathBuf;

use clap::Parser;
use lanes_regtest::{Net, Node};

#[derive(Parser)]
#[command(name = "lanes-regtest", about = "A local regtest network: bitcoind and three funded lanesd nodes")]
struct Args {
    /// Exit (stopping everything) right after the network is set up and described.
    #[arg(long)]
    exit_after_setup: bool,
    /// What each node is funded with, in satoshis.
    #[arg(long, default_value_t = 10_000_000)]
    fund_sat: u64,
}

const NODES: [&str; 3] = ["alice", "bob", "carol"];

#[tokio::main]
async fn main() {
    let args = Args::parse();
    eprintln!("lanes-regtest: starting bitcoind...");
    let net = Net::start().await;
    let mut nodes = Vec::new();
    for name in NODES {
        eprintln!("lanes-regtest: starting {name} and funding it with {} sat...", args.fund_sat);
        let node = net.node(name).await;
        node.fund(args.fund_sat).await;
        nodes.push(node);
    }
    // Channels: added with issue 3 (connect the nodes as peers, open alice -> bob -> carol, wait until usable).

    describe_bitcoind(&net);
    for node in &nodes {
        describe_node(node).await;
    }

    if !args.exit_after_setup {
        println!("Press Ctrl-C to stop everything.");
        wait_for_shutdown_signal().await;
        eprintln!("lanes-regtest: stopping...");
    }
    for node in &nodes {
        node.stop().await;
    }
    drop(nodes);
    drop(net);
    eprintln!("lanes-regtest: stopped");
}

fn describe_bitcoind(net: &Net) {
    let bitcoind = net.bitcoind();
    let cli = bitcoind.cli_command();
    println!("lanes regtest network in {}", net.dir().display());
    println!();
    println!("bitcoind");
    println!("  rpc:     {}  (bitcoind: {})", bitcoind.rpc_url(), bitcoind.exe().display());
    println!("  log:     {}", bitcoind.dir().join("regtest/debug.log").display());
    println!("  mine:    {cli} -generate 1");
    println!("  pay:     {cli} sendtoaddress <address> <btc>");
    println!();
    if let Some(dir) = sibling_dir() {
        println!("lanes-cli is in {}: export PATH=\"{}:$PATH\"", dir.display(), dir.display());
        println!();
    }
}

async fn describe_node(node: &Node) {
    let info = node.info().await;
    let balance = node.balance().await;
    let cli = format!("lanes-cli --rpcserver {}", node.rpcserver());
    println!("{}", node.name());
    println!("  node id: {}", info.node_id);
    println!("  p2p:     {}@{}", info.node_id, node.p2p_addr());
    println!("  grpc:    {}", node.rpcserver());
    println!("  balance: {} sat confirmed", balance.confirmed_sat);
    println!("  log:     {}", node.log_path().display());
    println!("  {cli} getinfo");
    println!("  {cli} walletbalance");
    println!("  {cli} newaddress");
    println!("  {cli} sendcoins --addr <address> --amt <sat>");
    println!();
}

/// The directory this executable (and, after `cargo build --workspace --bins`, lanes-cli) is in.
fn sibling_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    dir.join("lanes-cli").is_file().then_some(dir)
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
