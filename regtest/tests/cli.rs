//! lanes-cli as a user types it: the real binary against real lanesd nodes on a real regtest chain.
//!
//! One network of two nodes carries the whole story, to keep CI time down: the wallet commands, then a peer,
//! a channel, invoices, payments, events and a close, with bad input checked along the way. The harness
//! (gRPC) is used only to set up and to check what the CLI claims.
//!
//! It lives with the harness because lanes-cli's own package must not depend on it (the harness builds LDK);
//! it runs the lanesd and lanes-cli that `cargo test --workspace` builds next to it. What lanes-cli does with
//! nothing to talk to is tested in its package (node/cli/tests/cli.rs).
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::str::FromStr;
use std::time::Duration;

use lanes_regtest::bitcoin::{Address, Network, Txid};
use lanes_regtest::{Net, Node, STOP_TIMEOUT, SYNC_TIMEOUT};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

const FUND: u64 = 2_000_000;
const CHANNEL_SAT: u64 = 500_000;
const INVOICE_SAT: u64 = 10_000;
const KEYSEND_MSAT: u64 = 5_000;

#[tokio::test]
async fn lanes_cli_drives_two_nodes() {
    let net = Net::start_with(sibling_exe("lanesd")).await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    alice.fund(FUND).await;

    // ---- node and on-chain wallet ----
    let info = json(&cli_ok(&alice, &["getinfo", "--json"]).await);
    assert_eq!(info["node_id"], alice.node_id().as_str(), "{info}");
    assert_eq!((info["network"].as_str(), info["synced_to_chain"].as_bool()), (Some("regtest"), Some(true)), "{info}");
    let keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys[..3], ["node_id", "network", "block_height"], "--json keeps the proto's field order");

    let text = cli_ok(&alice, &["walletbalance"]).await;
    assert!(text.contains(&format!("{FUND} sat")), "walletbalance printed:\n{text}");
    assert_eq!(json(&cli_ok(&alice, &["walletbalance", "--json"]).await)["confirmed_sat"], FUND);
    let utxos = json(&cli_ok(&alice, &["listunspent", "--json", "--min_confs", "1"]).await);
    assert_eq!(utxos["utxos"][0]["amount_sat"], FUND, "{utxos}");
    let address = json(&cli_ok(&alice, &["newaddress", "--json"]).await)["address"].as_str().unwrap().to_string();
    assert!(Address::from_str(&address).is_ok_and(|a| a.is_valid_for_network(Network::Regtest)), "{address}");

    let bad = cli(&alice, &["sendcoins", "--addr", "bogus", "--amt", "1000"]).await;
    assert_failed(&bad, "invalid argument");
    let payee = net.new_address().await.to_string();
    // The kebab-case spelling of a flag works too (it was the only one before lncli's names).
    let sent = json(&cli_ok(&alice, &["sendcoins", "--addr", &payee, "--amt", "10000", "--sat-per-vbyte", "2", "--json"]).await);
    assert_eq!(sent["amount_sat"], 10_000, "{sent}");
    net.mine(1).await;
    assert_eq!(net.get_received(&payee).await, 10_000);

    // The address can come from the environment, like lncli's.
    let via_env = run_cli(&["getinfo"], Some(&alice)).await;
    assert!(via_env.status.success() && stdout(&via_env).contains(&alice.node_id()), "{}", describe(&via_env));

    // Another node's certificate, or a macaroon that does not allow the command: refused, saying what to fix.
    let bobs_cert = bob.data_dir().join("tls.cert").display().to_string();
    let wrong = cli(&alice, &["--tlscertpath", &bobs_cert, "getinfo"]).await;
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    assert!(stderr(&wrong).contains(&format!("did not show the TLS certificate in {bobs_cert}")), "{}", describe(&wrong));
    let readonly = alice.data_dir().join("readonly.macaroon").display().to_string();
    let denied = cli(&alice, &["--macaroonpath", &readonly, "newaddress"]).await;
    assert_failed(&denied, "permission denied");
    assert!(stderr(&denied).contains("the macaroon does not allow NewAddress (it needs address:write)"), "{}", describe(&denied));

    // ---- a peer and a channel ----
    let connected = cli_ok(&alice, &["connect", &bob.peer_address()]).await;
    assert!(connected.contains(&bob.node_id()), "connect printed:\n{connected}");
    let peers = json(&cli_ok(&alice, &["listpeers", "--json"]).await);
    assert_eq!(peers["peers"][0]["node_id"], bob.node_id().as_str(), "{peers}");

    let amount = CHANNEL_SAT.to_string();
    let opened = json(&cli_ok(&alice, &["openchannel", "--node_key", &bob.node_id(), "--local_amt", &amount, "--json"]).await);
    let channel_id = opened["channel_id"].as_str().expect("openchannel --json has channel_id").to_string();
    let funding: Txid = opened["funding_txid"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("funding_txid in {opened}"));
    alice.wait_until("the funding transaction in the mempool", || async { net.mempool().await.contains(&funding) }).await;
    let pending = json(&cli_ok(&alice, &["pendingchannels", "--json"]).await);
    assert_eq!(pending["pending_open"][0]["channel_id"], channel_id.as_str(), "{pending}");

    net.mine(6).await;
    let channel = alice
        .wait_until("listchannels --json to show the channel active", || async {
            let channels = json(&cli_ok(&alice, &["listchannels", "--json"]).await);
            match &channels["channels"][0] {
                c if c["channel_id"] == channel_id.as_str() && c["active"] == true => Ok(c.clone()),
                _ => Err(channels.to_string()),
            }
        })
        .await;
    assert_eq!((channel["capacity_sat"].as_u64(), channel["initiator"].as_bool()), (Some(CHANNEL_SAT), Some(true)), "{channel}");
    let text = cli_ok(&alice, &["listchannels", "--active_only"]).await;
    assert!(text.contains(&channel_id) && text.contains("state:") && text.contains("active"), "listchannels printed:\n{text}");

    // ---- an invoice of bob's, decoded and paid by alice ----
    let invoice = json(&cli_ok(&bob, &["addinvoice", "--amt", &INVOICE_SAT.to_string(), "--memo", "coffee", "--json"]).await);
    let bolt11 = invoice["bolt11"].as_str().expect("addinvoice --json has bolt11").to_string();
    let decoded = cli_ok(&alice, &["decodepayreq", &bolt11]).await;
    let amount_line = format!("{} msat ({INVOICE_SAT} sat)", INVOICE_SAT * 1000);
    assert!(decoded.contains(&amount_line) && decoded.contains("coffee") && decoded.contains(&bob.node_id()), "decodepayreq printed:\n{decoded}");

    let paid = cli(&alice, &["payinvoice", &bolt11]).await;
    assert!(paid.status.success(), "payinvoice: {}", describe(&paid));
    assert!(stdout(&paid).contains("succeeded"), "payinvoice: {}", describe(&paid));
    let settled = json(&cli_ok(&bob, &["lookupinvoice", invoice["payment_hash"].as_str().unwrap(), "--json"]).await);
    assert_eq!((settled["state"].as_str(), settled["amount_received_msat"].as_u64()), (Some("settled"), Some(INVOICE_SAT * 1000)), "{settled}");

    // ---- refusals: exit code 1, the status in words on stderr, nothing recorded ----
    assert_failed(&cli(&alice, &["payinvoice", "lnbcrt1notaninvoice"]).await, "invalid argument");
    assert_failed(&cli(&alice, &["closechannel", &"ab".repeat(32)]).await, "not found");
    assert_failed(&cli(&alice, &["payinvoice", &bolt11]).await, "already exists");
    let usage = cli(&alice, &["openchannel", &bob.node_id()]).await;
    assert_eq!(usage.status.code(), Some(2), "a capacity is missing: {}", describe(&usage));

    let payments = json(&cli_ok(&alice, &["listpayments", "--json"]).await);
    let payments = payments["payments"].as_array().unwrap_or_else(|| panic!("{payments}"));
    assert_eq!(payments.len(), 1, "one payment, the refused ones left no record: {payments:?}");
    assert_eq!((payments[0]["status"].as_str(), payments[0]["amount_msat"].as_u64()), (Some("succeeded"), Some(INVOICE_SAT * 1000)));
    assert_eq!(payments[0]["payment_hash"], invoice["payment_hash"]);

    // ---- events: bob's subscriber prints alice's keysend as it arrives ----
    let mut events = Subscriber::start(&bob).await;
    let keysend = cli_ok(&alice, &["sendkeysend", "--dest", &bob.node_id(), "--amt_msat", &KEYSEND_MSAT.to_string(), "--json"]).await;
    assert_eq!(json(&keysend)["status"], "succeeded", "{keysend}");
    let event = events.next_where("invoice_settled", |e| e["amount_msat"] == KEYSEND_MSAT).await;
    assert_eq!(event["detail"], "keysend", "{event}");
    events.stop().await;
    // bob's record of it is an invoice marked as keysend, as LND's.
    let invoices = json(&cli_ok(&bob, &["listinvoices", "--json"]).await);
    let receipt = invoices["invoices"].as_array().unwrap().iter().find(|i| i["is_keysend"] == true).cloned().unwrap_or_else(|| panic!("{invoices}"));
    assert_eq!((receipt["amount_received_msat"].as_u64(), receipt["state"].as_str()), (Some(KEYSEND_MSAT), Some("settled")), "{receipt}");

    // ---- a BOLT12 offer of bob's, decoded and paid by alice ----
    let offer = json(&cli_ok(&bob, &["createoffer", "--amt", "2000", "--memo", "stickers", "--json"]).await);
    let lno = offer["offer"].as_str().unwrap_or_else(|| panic!("{offer}")).to_string();
    let decoded = cli_ok(&alice, &["decodeoffer", &lno]).await;
    assert!(has_line(&decoded, "kind", "offer") && has_line(&decoded, "amount", "2000000 msat (2000 sat)"), "decodeoffer printed:\n{decoded}");
    let paid = json(&cli_ok(&alice, &["payoffer", &lno, "--payer_note", "thanks", "--json"]).await);
    assert_eq!((paid["status"].as_str(), paid["kind"].as_str(), paid["amount_msat"].as_u64()), (Some("succeeded"), Some("bolt12_offer"), Some(2_000_000)), "{paid}");
    let listed = cli_ok(&bob, &["listoffers"]).await;
    assert!(has_line(&listed, "paid", "1 payment, 2000000 msat (2000 sat)") && has_line(&listed, "state", "active"), "listoffers printed:\n{listed}");
    let disabled = cli_ok(&bob, &["disableoffer", offer["offer_id"].as_str().unwrap()]).await;
    assert!(has_line(&disabled, "state", "disabled"), "disableoffer printed:\n{disabled}");
    assert_failed(&cli(&alice, &["payoffer", "lno1notanoffer"]).await, "invalid argument");

    // ---- queryroutes: the route to bob is our channel, no fee; one line per hop ----
    let route = json(&cli_ok(&alice, &["queryroutes", &bob.node_id(), "1000", "--json"]).await);
    let scid = channel["short_channel_id"].as_str().expect("the channel's short channel id");
    assert_eq!((route["paths"][0]["hops"][0]["node_id"].as_str(), route["paths"][0]["hops"][0]["short_channel_id"].as_str()), (Some(bob.node_id().as_str()), Some(scid)), "{route}");
    assert_eq!((route["amount_msat"].as_u64(), route["total_fees_msat"].as_u64()), (Some(1_000_000), Some(0)), "{route}");
    let text = cli_ok(&alice, &["queryroutes", "--dest", &bob.node_id(), "--amt", "1000"]).await;
    assert!(text.contains("hop  channel") && text.contains(&format!("1    {scid}")) && text.contains("success:"), "queryroutes printed:\n{text}");
    assert_failed(&cli(&alice, &["queryroutes", "nobody", "1000"]).await, "invalid argument");

    // ---- every listing answers in both forms ----
    let bob_id = bob.node_id();
    let listings: [&[&str]; 10] = [
        &["listpeers"], &["listchannels"], &["pendingchannels"], &["closedchannels"], &["describegraph"],
        &["listinvoices"], &["listpayments"], &["fwdinghistory"], &["getnodeinfo", &bob_id], &["listoffers"],
    ];
    for args in listings {
        cli_ok(&alice, args).await;
        json(&cli_ok(&alice, &[args, &["--json"]].concat()).await);
    }

    // ---- fees, then a cooperative close ----
    let policy = cli_ok(&alice, &["updatechanpolicy", "--chan_id", &channel_id, "--base_fee_msat", "2000", "--fee_rate_ppm", "10"]).await;
    assert!(policy.contains("1 channel"), "updatechanpolicy printed:\n{policy}");
    let channel = alice.channel(&channel_id).await.expect("the channel is still open");
    assert_eq!((channel.fee_base_msat, channel.fee_rate_ppm), (2000, 10), "{channel:?}");

    cli_ok(&alice, &["closechannel", &channel_id]).await;
    alice.wait_until("the closed channel in closedchannels --json", || async {
        let closed = json(&cli_ok(&alice, &["closedchannels", "--json"]).await);
        closed["channels"].as_array().is_some_and(|c| c.iter().any(|c| c["channel_id"] == channel_id.as_str()))
    })
    .await;
    assert!(alice.channel(&channel_id).await.is_none(), "a closed channel leaves listchannels");

    cli_ok(&alice, &["stop"]).await;
    let status = alice.wait_for_exit(STOP_TIMEOUT).await;
    assert!(status.success(), "lanesd exited with {status} after `lanes-cli stop`");
}

// ---- helpers ----

/// Whether the human output has a `key: value` line (keys are padded to align the values).
fn has_line(text: &str, key: &str, value: &str) -> bool {
    text.lines().any(|l| l.split_once(':').is_some_and(|(k, v)| k.trim() == key && v.trim() == value))
}

/// A binary of the workspace, built next to lanes-regtest by `cargo test --workspace` (or `cargo build
/// --workspace --bins`).
fn sibling_exe(name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_lanes-regtest")).with_file_name(name);
    assert!(exe.is_file(), "{name} is not built next to lanes-regtest: run cargo test --workspace");
    exe
}

/// A running `lanes-cli subscribe --json`, killed when stopped or dropped.
struct Subscriber {
    child: tokio::process::Child,
    lines: Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Subscriber {
    /// Starts it against `node` and waits for its note that the subscription is in place.
    async fn start(node: &Node) -> Subscriber {
        let mut child = tokio::process::Command::new(sibling_exe("lanes-cli"))
            .args(node.cli_args())
            .args(["subscribe", "--json"])
            .env_remove("LANES_RPCSERVER")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot run lanes-cli subscribe");
        let mut errors = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let note = tokio::time::timeout(SYNC_TIMEOUT, errors.next_line()).await;
        match note {
            Ok(Ok(Some(line))) if line.contains("subscribed") => {}
            other => panic!("lanes-cli subscribe did not say it subscribed: {other:?}"),
        }
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Subscriber { child, lines }
    }

    /// The next event of `kind` that `matches`, skipping others; panics after SYNC_TIMEOUT.
    async fn next_where(&mut self, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(SYNC_TIMEOUT, async {
            while let Some(line) = self.lines.next_line().await.expect("reading lanes-cli subscribe") {
                let event = json(&line);
                if event["kind"] == kind && matches(&event) {
                    return Some(event);
                }
                seen.push(line);
            }
            None
        })
        .await;
        match found {
            Ok(Some(event)) => event,
            Ok(None) => panic!("lanes-cli subscribe ended before a {kind} event; it printed {seen:?}"),
            Err(_) => panic!("no matching {kind} event within {SYNC_TIMEOUT:?}; lanes-cli subscribe printed {seen:?}"),
        }
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("cannot stop lanes-cli subscribe");
    }
}

fn assert_failed(out: &Output, words: &str) {
    assert_eq!(out.status.code(), Some(1), "expected exit code 1 with {words:?}: {}", describe(out));
    let err = stderr(out);
    assert!(err.starts_with(&format!("error: {words}: ")), "expected `error: {words}: ...` on stderr: {}", describe(out));
}

/// Runs lanes-cli with `args`, with `LANES_RPCSERVER` set to `env_rpcserver` or removed.
async fn run_cli(args: &[&str], env_node: Option<&Node>) -> Output {
    let mut cmd = tokio::process::Command::new(sibling_exe("lanes-cli"));
    cmd.args(args).env_remove("LANES_RPCSERVER").env_remove("LANES_DIR").kill_on_drop(true);
    if let Some(node) = env_node {
        cmd.env("LANES_RPCSERVER", node.rpcserver()).env("LANES_DIR", node.data_dir());
    }
    // payinvoice waits up to lanesd's 60 s default for an outcome; anything longer is a hang.
    match tokio::time::timeout(Duration::from_secs(90), cmd.output()).await {
        Ok(out) => out.expect("cannot run lanes-cli"),
        Err(_) => panic!("lanes-cli {args:?} did not finish within 90 s"),
    }
}

async fn cli(node: &Node, args: &[&str]) -> Output {
    let reach = node.cli_args();
    let mut all: Vec<&str> = reach.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    run_cli(&all, None).await
}

/// Runs lanes-cli against `node`, asserts it succeeded, and returns its stdout.
async fn cli_ok(node: &Node, args: &[&str]) -> String {
    let out = cli(node, args).await;
    assert!(out.status.success(), "lanes-cli {args:?}: {}", describe(&out));
    stdout(&out)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("lanes-cli printed invalid JSON ({e}):\n{text}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn describe(out: &Output) -> String {
    format!("{}\n--- stdout ---\n{}--- stderr ---\n{}", out.status, stdout(out), stderr(out))
}
