//! lanes-regtest: a local regtest network to try lanes by hand (run it through `regtest/run.sh`).
//!
//! Starts bitcoind and three funded lanesd nodes (alice, bob, carol), connects them and opens alice→bob and
//! bob→carol channels, has alice pay an invoice of carol's through bob, and prints that payment, how to drive
//! each node with lanes-cli and how to mine with bitcoin-cli. Then it waits for Ctrl-C (or SIGTERM, SIGHUP) and stops
//! everything: nodes first, then bitcoind. `--exit-after-setup` stops right after printing, for a CI smoke run.
//! A step that fails ends the run with exit code 1, saying which step, after the harness's own message (what
//! it waited for, the tail of the node's log); the data directory is kept then.
//! lanesd and lanes-cli are taken from next to this executable (`target/debug/`), or `LANESD_EXE`.
//!
//! Owns: the main job's command line and what it prints. Must never: leave a process behind, whatever ends it.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;

// Printing never panics here: when the terminal or a `| tee` goes away (Ctrl-C), a panic while printing, and
// a second one while unwinding, aborted the harness and orphaned bitcoind and the nodes. What cannot be
// printed is dropped; stopping everything matters more.
macro_rules! println {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stdout(), $($t)*); }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stderr(), $($t)*); }};
}
use lanes_regtest::proto::v1::{Payment, PaymentStatus};
use lanes_regtest::{Net, Node};

#[derive(Parser, Clone)]
#[command(name = "lanes-regtest", about = "A local regtest network: bitcoind, three funded lanesd nodes, two channels")]
struct Args {
    /// Exit (stopping everything) right after the network is set up and described.
    #[arg(long)]
    exit_after_setup: bool,
    /// What each node is funded with, in satoshis.
    #[arg(long, default_value_t = 10_000_000)]
    fund_sat: u64,
}

/// Capacity of the alice→bob and bob→carol channels.
const CHANNEL_SAT: u64 = 1_000_000;
/// What alice pays carol through bob.
const PAYMENT_SAT: u64 = 50_000;
/// The amount of the ready-made invoices printed for each node's payinvoice line.
const EXAMPLE_INVOICE_SAT: u64 = 1_000;

/// The network once set up: the nodes, their channels, and the payment that proved the route.
struct Network {
    net: Net,
    alice: Node,
    bob: Node,
    carol: Node,
    alice_bob: String,
    bob_carol: String,
    payment: Payment,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start tokio");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    // Each phase runs in a task of its own: a failing step panics there (the harness says what it waited for
    // and shows the log), the task's drop stops what it started, and we only have to say which step it was.
    let exit_after_setup = args.exit_after_setup;
    // Listen before anything is started or printed, and keep listening: a signal that came between two
    // listeners was lost (tokio only tells a listener of signals after it exists), and a SIGHUP sent right
    // after "Press Ctrl-C" left the harness waiting for ever with everything running.
    let mut stop = StopSignals::listen();
    let mut setup = tokio::spawn(async move {
        let network = set_up(&args).await;
        describe(&network).await;
        network
    });
    let network = tokio::select! {
        joined = &mut setup => match joined {
            Ok(network) => network,
            Err(e) => return failed(e),
        },
        _ = stop.recv() => {
            eprintln!("lanes-regtest: interrupted while {}: stopping what was started...", current_step());
            setup.abort();
            let _ = setup.await;
            return ExitCode::FAILURE;
        }
    };

    if !exit_after_setup {
        println!("Press Ctrl-C to stop everything.");
        // Test knob (orphans.rs): a harness slow to get from the prompt to its wait, as on a loaded machine.
        if let Some(ms) = std::env::var("LANES_REGTEST_TEST_PAUSE_AFTER_PROMPT_MS").ok().and_then(|v| v.parse().ok()) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        stop.recv().await;
    }
    let teardown = tokio::spawn(async move {
        step("stopping the nodes, then bitcoind");
        for node in [&network.alice, &network.bob, &network.carol] {
            node.stop().await;
        }
        drop(network);
    });
    match teardown.await {
        Ok(()) => {
            eprintln!("lanes-regtest: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

async fn set_up(args: &Args) -> Network {
    step("starting bitcoind");
    let net = Net::start().await;
    let mut nodes = Vec::new();
    for name in ["alice", "bob", "carol"] {
        step(format!("starting {name} and funding it with {} sat", args.fund_sat));
        let node = net.node(name).await;
        node.fund(args.fund_sat).await;
        nodes.push(node);
    }
    let [alice, bob, carol] = <[Node; 3]>::try_from(nodes).unwrap_or_else(|_| unreachable!("three nodes were started"));

    step("connecting alice to bob and bob to carol");
    alice.connect(&bob).await;
    bob.connect(&carol).await;

    step(format!("opening alice→bob and bob→carol channels of {CHANNEL_SAT} sat"));
    let alice_bob = alice.open_channel(&bob, CHANNEL_SAT).await;
    let bob_carol = bob.open_channel(&carol, CHANNEL_SAT).await;
    step("mining 6 blocks and waiting until both channels are active and alice's graph has both");
    net.mine(6).await;
    for (node, channel) in [(&alice, &alice_bob), (&bob, &alice_bob), (&bob, &bob_carol), (&carol, &bob_carol)] {
        node.wait_channel_active(channel).await;
    }
    alice.wait_graph_channels(2).await;

    step(format!("carol invoices {PAYMENT_SAT} sat, alice pays it through bob"));
    let invoice = carol.add_invoice(PAYMENT_SAT * 1000, "lanes-regtest: alice pays carol through bob").await;
    let mut payment = match alice.pay_invoice(&invoice.bolt11).await {
        Ok(payment) => payment,
        Err(status) => panic!("alice's PayInvoice of carol's invoice was refused: {:?}: {}", status.code(), status.message()),
    };
    if payment.status != PaymentStatus::Succeeded as i32 {
        panic!("alice's payment of carol's invoice did not succeed: {payment:?}");
    }
    // PayInvoice answers at success; the route it took is recorded just after.
    payment.paths = alice.payment_paths(&payment.payment_hash).await;
    Network { net, alice, bob, carol, alice_bob, bob_carol, payment }
}

/// "step" lines go to stderr as the run goes; the last one names what failed.
static STEP: Mutex<String> = Mutex::new(String::new());

fn step(what: impl Into<String>) {
    let what = what.into();
    eprintln!("lanes-regtest: {what}...");
    *STEP.lock().unwrap_or_else(|e| e.into_inner()) = what;
}

fn current_step() -> String {
    STEP.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn failed(e: tokio::task::JoinError) -> ExitCode {
    let why = if e.is_panic() { "see the message above" } else { "the task was cancelled" };
    eprintln!("lanes-regtest: FAILED while {} ({why}); everything it started is stopped", current_step());
    ExitCode::FAILURE
}

fn print_payment(n: &Network) {
    let p = &n.payment;
    let status = PaymentStatus::try_from(p.status).map_or("unknown", |s| s.as_str_name());
    let names: HashMap<String, &str> = [&n.alice, &n.bob, &n.carol].iter().map(|node| (node.node_id(), node.name())).collect();
    let name = |id: &str| names.get(id).map_or_else(|| id.to_string(), |s| s.to_string());
    println!("alice paid carol's invoice of {PAYMENT_SAT} sat through bob:");
    println!("  status:   {}", status.trim_start_matches("PAYMENT_STATUS_").to_lowercase());
    println!("  amount:   {} msat", p.amount_msat);
    println!("  fee:      {} msat (bob's forwarding fee)", p.fee_msat);
    for path in &p.paths {
        let hops: Vec<String> = path.hops.iter().map(|h| format!("{} ({}, {} msat)", name(&h.node_id), h.short_channel_id, h.amount_msat)).collect();
        println!("  route:    alice -> {}", hops.join(" -> "));
    }
    println!("  hash:     {}", p.payment_hash);
    println!("  preimage: {}", p.preimage);
    println!();
}

async fn describe(n: &Network) {
    step("describing the network");
    let bitcoind = n.net.bitcoind();
    let cli = bitcoind.cli_command();
    println!("lanes regtest network in {}", n.net.dir().display());
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
    // Each node gets a ready-made invoice to pay, keysend target and channel to close along its channels.
    describe_node(&n.alice, &n.carol, &n.alice_bob).await;
    describe_node(&n.bob, &n.carol, &n.bob_carol).await;
    describe_node(&n.carol, &n.alice, &n.bob_carol).await;
    print_payment(n);
    let aliases: Vec<String> = [&n.alice, &n.bob, &n.carol].iter().map(|node| format!("{}='lanes-cli {}'", node.name(), node.cli_args().join(" "))).collect();
    println!("Shortcuts for your shell (then: alice getinfo, bob listchannels...):");
    println!("  alias {}", aliases.join(" "));
    println!();
}

/// How to drive `node`: its places and balances, then lanes-cli lines, concrete where they can be: an
/// invoice of `payee`'s to pay, `payee` to keysend to, `channel` to close.
async fn describe_node(node: &Node, payee: &Node, channel: &str) {
    let balance = node.balance().await;
    let channels = node.channels().await;
    let invoice = payee.add_invoice(EXAMPLE_INVOICE_SAT * 1000, &format!("from {}", node.name())).await;
    let cli = format!("lanes-cli {}", node.cli_args().join(" "));
    println!("{}", node.name());
    println!("  node id:  {}", node.node_id());
    println!("  p2p:      {}", node.peer_address());
    println!("  grpc:     {}", node.rpcserver());
    println!("  on-chain: {} sat confirmed", balance.confirmed_sat);
    for c in &channels {
        let state = if c.active { "active" } else { "not active" };
        println!(
            "  channel:  {} ({}, {state}) with {}: {} sat capacity, {} msat ours",
            c.channel_id, c.short_channel_id, c.remote_node_id, c.capacity_sat, c.local_balance_msat
        );
    }
    println!("  log:      {}", node.log_path().display());
    println!("  {cli} getinfo");
    println!("  {cli} walletbalance");
    println!("  {cli} listchannels");
    println!("  {cli} addinvoice --amt {EXAMPLE_INVOICE_SAT} --memo \"for {}\"", node.name());
    println!("  {cli} payinvoice {}    # {EXAMPLE_INVOICE_SAT} sat to {}", invoice.bolt11, payee.name());
    println!("  {cli} queryroutes {} {EXAMPLE_INVOICE_SAT}    # the route, fees and success estimate, without paying", payee.node_id());
    println!("  {cli} sendkeysend --dest {} --amt_msat 10000", payee.node_id());
    println!("  {cli} listpayments");
    println!("  {cli} fwdinghistory");
    println!("  {cli} describegraph");
    println!("  {cli} subscribe");
    println!("  {cli} closechannel {channel}");
    println!();
}

/// The directory this executable (and, after `cargo build --workspace --bins`, lanes-cli) is in.
fn sibling_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    dir.join("lanes-cli").is_file().then_some(dir)
}

/// Ctrl-C, SIGTERM or SIGHUP (the terminal closed): what stops the harness. Made once, so that no signal
/// falls between two listeners.
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &str| signal(kind).unwrap_or_else(|e| panic!("cannot listen for {name}: {e}"));
        StopSignals {
            int: listen(SignalKind::interrupt(), "SIGINT"),
            term: listen(SignalKind::terminate(), "SIGTERM"),
            hup: listen(SignalKind::hangup(), "SIGHUP"),
        }
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}
