//! An Electrum wallet on a [`Net`], for interop stories: Electrum 4.8 (Debian sid's package) in regtest
//! gossip mode, with its own ElectrumX 1.20 server on the net's bitcoind.
//!
//! ```no_run
//! # async fn story() {
//! # use lanes_regtest::Net;
//! let net = Net::start().await;
//! let alice = net.node("alice").await;
//! let eve = net.electrum("eve").await;                  // ElectrumX + Electrum daemon, wallet loaded, synced
//! eve.fund(1_000_000).await;                             // from the miner, one block, confirmed in eve's balance
//! let point = eve.open_channel(&alice, 400_000).await;   // "txid:vout", once the funding tx is in the mempool
//! net.mine(6).await;
//! let channel = eve.wait_channel_open(&point).await;     // Electrum's list_channels entry, state OPEN
//! let bolt11 = eve.add_invoice(10_000, "coffee").await.bolt11;   // sat
//! # }
//! ```
//!
//! Owns provisioning (`regtest/scripts/electrum.sh`, once per process; a failure panics: never a skip), the
//! ElectrumX and Electrum processes (each in its own process group, stopped with the group on drop), their
//! directories under the net's, Electrum's JSON-RPC (on 127.0.0.1, a free port), and waits on what Electrum
//! reports. It must never decide anything for Electrum or reach into its wallet file: all it knows comes
//! from Electrum's answers and bitcoind's.
//!
//! Configuration, as a user would set it (written into Electrum's config file before its first start):
//! regtest, one server (ours), gossip on (`use_gossip`: Electrum finds routes itself instead of using
//! trampoline), listening for Lightning peers on 127.0.0.1, `lightning_to_self_delay` 144 as Electrum's own
//! regtest scripts do. Fee estimates are pinned (`test_disable_automatic_fee_eta_update`, then
//! `test_inject_fee_etas`, as Electrum's regtest scripts do), at mainnet-like values: see
//! [`ELECTRUM_FEE_ETAS`].
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bitcoincore_rpc::jsonrpc;
use bitcoin::Txid;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bitcoind::{RPC_PASSWORD, RPC_USER};
use crate::net::{Net, Shared};
use crate::process::{free_port, panic_exited, signal_group, spawn_logged, terminate_group_blocking, wait_exit};
use crate::wait::{log_tail, wait_until_logged, START_TIMEOUT, STOP_TIMEOUT, SYNC_TIMEOUT};
use crate::Node;

/// Electrum's fee estimates, pinned: blocks to confirm -> sat per 1000 vbytes, in the form Electrum's
/// `test_inject_fee_etas` takes. Mainnet-like: 20 sat/vB to confirm within 2 blocks (cooperative closes and
/// on-chain sends), 5 within 25, 2 within a day, 1 within a week. Electrum sets anchor channels' commitment
/// fee rate from the week's estimate with a floor of 5 sat/vB and half again on top (1875 sat/kw here), so
/// Electrum's `update_fee` is what a mainnet peer would send; left unpinned on regtest, Electrum falls back
/// to 150 sat/vB for everything.
pub const ELECTRUM_FEE_ETAS: &str = "{2: 20000, 25: 5000, 144: 2000, 1008: 1000}";
/// The RPC credentials of every harness Electrum daemon (it listens on 127.0.0.1 only).
const ELECTRUM_RPC_USER: &str = "lanes";
const ELECTRUM_RPC_PASSWORD: &str = "lanes-electrum";
/// How long one JSON-RPC call may take: `lnpay` blocks until the payment ends.
const RPC_TIMEOUT: Duration = Duration::from_secs(180);
/// How long ElectrumX and Electrum get between SIGTERM and SIGKILL when dropped.
const GRACE: Duration = Duration::from_secs(5);
/// Electrum's payment request status for a paid request (`PR_PAID` in electrum/invoices.py).
const PR_PAID: i64 = 3;

/// The `electrum` and `electrumx_server` wrappers, provisioned by `regtest/scripts/electrum.sh` the first
/// time they are asked for in this process. Panics with the script's stderr if it fails.
pub fn electrum_exes() -> (PathBuf, PathBuf) {
    static EXES: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    match EXES.get_or_init(provision) {
        Ok(paths) => paths.clone(),
        Err(e) => panic!("cannot provision Electrum and ElectrumX: {e}"),
    }
}

fn provision() -> Result<(PathBuf, PathBuf), String> {
    let lines = crate::process::run_provisioning_script("electrum.sh")?;
    match &lines[..] {
        [.., electrum, electrumx] if Path::new(electrum).is_file() && Path::new(electrumx).is_file() => {
            Ok((PathBuf::from(electrum), PathBuf::from(electrumx)))
        }
        _ => Err(format!("regtest/scripts/electrum.sh printed {lines:?}, not two executables")),
    }
}

/// A channel as Electrum's `list_channels` shows it (amounts in sat; Electrum rounds msat down).
#[derive(Clone, Debug, Deserialize)]
pub struct ElectrumChannel {
    /// The funding outpoint, "txid:vout": how Electrum's commands name a channel.
    pub channel_point: String,
    /// The 32-byte channel id in hex, as lanes' ListChannels shows it.
    pub channel_id: String,
    pub short_channel_id: Option<String>,
    /// PREOPENING, OPENING, FUNDED, OPEN, SHUTDOWN, CLOSING, FORCE_CLOSING, CLOSED, REDEEMED...
    pub state: String,
    /// GOOD when the peer is connected and the channel reestablished, DISCONNECTED, BAD...
    pub peer_state: String,
    pub remote_pubkey: String,
    pub capacity: u64,
    pub local_balance: u64,
    pub remote_balance: u64,
    pub closing_txid: Option<String>,
    pub local_unsettled_sent: u64,
    pub remote_unsettled_sent: u64,
}

/// Electrum's `getbalance`, in sat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectrumBalance {
    pub confirmed_sat: i64,
    /// Unconfirmed incoming minus unconfirmed outgoing (may be negative).
    pub unconfirmed_sat: i64,
    pub unmatured_sat: i64,
    /// Lightning: the sum of our channel balances.
    pub lightning_sat: i64,
}

/// A Lightning payment request of Electrum's (`add_request --lightning`).
#[derive(Clone, Debug)]
pub struct ElectrumInvoice {
    pub bolt11: String,
    /// Electrum's key for it (`get_request`).
    pub request_id: String,
    pub payment_hash: String,
}

/// What Electrum's `lnpay` answered.
#[derive(Clone, Debug, Deserialize)]
pub struct ElectrumPayment {
    pub payment_hash: String,
    pub success: bool,
    pub preimage: Option<String>,
    /// Electrum's attempt log (routes tried, failures), shown in assertion messages.
    #[serde(default)]
    pub log: Value,
}

struct ElectrumX {
    child: Mutex<Option<Child>>,
    port: u16,
    log: PathBuf,
}

/// An Electrum daemon with one Lightning wallet, and the ElectrumX server it uses. Dropping it stops both.
pub struct Electrum {
    name: String,
    dir: PathBuf,
    data_dir: PathBuf,
    exe: PathBuf,
    ln_port: u16,
    rpc_port: u16,
    daemon: Mutex<Option<Child>>,
    rpc: Arc<jsonrpc::Client>,
    node_id: OnceLock<String>,
    // Dropped after the daemon (fields drop in order; `Drop` stops the daemon first anyway).
    electrumx: ElectrumX,
    net: Arc<Shared>,
}

impl Net {
    /// Starts ElectrumX on this net's bitcoind and an Electrum daemon called `name` (its directory is
    /// `<net dir>/<name>`) with a new Lightning wallet, fee estimates pinned, and waits until Electrum is
    /// synced to bitcoind's tip.
    pub async fn electrum(&self, name: &str) -> Electrum {
        Electrum::start(self.shared.clone(), name).await
    }
}

impl Electrum {
    async fn start(net: Arc<Shared>, name: &str) -> Electrum {
        let (exe, electrumx_exe) = tokio::task::spawn_blocking(electrum_exes).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let dir = net.root().join(name);
        assert!(!dir.exists(), "something called {name} already exists in this net");
        let data_dir = dir.join("electrum");
        std::fs::create_dir_all(data_dir.join("regtest")).expect("cannot create Electrum's directory");
        let electrumx = ElectrumX::start(&net, &electrumx_exe, &dir).await;

        let (ln_port, rpc_port) = (free_port(), free_port());
        let config = json!({
            "config_version": 3,
            "server": format!("127.0.0.1:{}:t", electrumx.port),
            "oneserver": true,
            "auto_connect": false,
            "use_gossip": true,
            "lightning_listen": format!("127.0.0.1:{ln_port}"),
            "lightning_to_self_delay": 144,
            "rpcsock": "tcp",
            "rpchost": "127.0.0.1",
            "rpcport": rpc_port,
            "rpcuser": ELECTRUM_RPC_USER,
            "rpcpassword": ELECTRUM_RPC_PASSWORD,
            "log_to_file": true,
            "test_disable_automatic_fee_eta_update": true,
        });
        let config_path = data_dir.join("regtest").join("config");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).expect("cannot write Electrum's config");

        let transport = jsonrpc::simple_http::SimpleHttpTransport::builder()
            .url(&format!("127.0.0.1:{rpc_port}"))
            .expect("a valid Electrum RPC address")
            .auth(ELECTRUM_RPC_USER, Some(ELECTRUM_RPC_PASSWORD))
            .timeout(RPC_TIMEOUT)
            .build();
        let electrum = Electrum {
            name: name.into(),
            dir,
            data_dir,
            exe,
            ln_port,
            rpc_port,
            daemon: Mutex::new(None),
            rpc: Arc::new(jsonrpc::Client::with_transport(transport)),
            node_id: OnceLock::new(),
            electrumx,
            net,
        };
        electrum.start_daemon().await;
        electrum.call("create", json!({})).await;
        electrum.call("load_wallet", json!({})).await;
        electrum.pin_fees().await;
        let id = electrum.call("nodeid", json!({})).await;
        let id = id.as_str().and_then(|s| s.split('@').next()).unwrap_or_else(|| panic!("nodeid answered {id}")).to_string();
        let _ = electrum.node_id.set(id);
        electrum.wait_synced().await;
        electrum
    }

    /// Starts the daemon (foreground, our child) and waits until its JSON-RPC answers.
    async fn start_daemon(&self) {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--regtest").arg("-D").arg(&self.data_dir).arg("daemon");
        let child = spawn_logged(&mut cmd, &self.console_log());
        *self.lock_daemon() = Some(child);
        wait_until_logged(START_TIMEOUT, format!("{} (Electrum) to answer JSON-RPC", self.name), &self.logs(), || async {
            self.panic_if_exited();
            self.rpc("getinfo", json!({})).await
        })
        .await;
    }

    async fn pin_fees(&self) {
        self.call("test_inject_fee_etas", json!({ "fee_est": ELECTRUM_FEE_ETAS })).await;
    }

    /// Stops the daemon gracefully (the `stop` command) and waits for it to exit; ElectrumX keeps running.
    pub async fn stop(&self) {
        let _ = self.rpc("stop", json!({})).await;
        let mut child = self.lock_daemon().take().unwrap_or_else(|| panic!("cannot stop {}: it is not running", self.name));
        match wait_exit(&mut child, STOP_TIMEOUT).await {
            Some(status) if status.success() => {}
            Some(status) => panic_exited(&format!("{} (Electrum) on stop", self.name), status, &self.console_log()),
            None => {
                signal_group(&mut child, libc::SIGKILL);
                let _ = child.wait();
                panic!("{} (Electrum) did not stop within {STOP_TIMEOUT:?}; killed it\n{}", self.name, self.log_tails());
            }
        }
    }

    /// Graceful stop, then the daemon again on the same directory and ports, the wallet loaded, fee
    /// estimates pinned again (they are not kept), synced.
    pub async fn restart(&self) {
        self.stop().await;
        self.start_daemon().await;
        self.call("load_wallet", json!({})).await;
        self.pin_fees().await;
        self.wait_synced().await;
    }

    // ---- identity and places ----

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Electrum's Lightning node id (hex).
    pub fn node_id(&self) -> String {
        self.node_id.get().expect("Electrum's node id is known once started").clone()
    }

    /// How lanes reaches Electrum's Lightning listener: `node_id@127.0.0.1:PORT`.
    pub fn peer_address(&self) -> String {
        format!("{}@127.0.0.1:{}", self.node_id(), self.ln_port)
    }

    /// Electrum's `-D` directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The daemon's console (stdout and stderr).
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("electrum.log")
    }

    /// Electrum's own log file (`log_to_file`: every Lightning message it sends and receives), the newest
    /// one if the daemon was restarted.
    pub fn log_path(&self) -> Option<PathBuf> {
        let logs = std::fs::read_dir(self.data_dir.join("regtest").join("logs")).ok()?;
        let mut files: Vec<PathBuf> = logs.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.pop()
    }

    /// Every log of this Electrum and its ElectrumX, for failure messages.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs = vec![self.console_log()];
        logs.extend(self.log_path());
        logs.push(self.electrumx.log.clone());
        logs
    }

    /// The text of every Electrum log file (all daemon runs), for stories that look for a line.
    pub fn log_text(&self) -> String {
        let dir = self.data_dir.join("regtest").join("logs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        files.sort();
        files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect::<Vec<_>>().join("\n")
    }

    fn log_tails(&self) -> String {
        self.logs().iter().map(|l| log_tail(l)).collect::<Vec<_>>().join("\n")
    }

    // ---- JSON-RPC ----

    /// One JSON-RPC call with named parameters; `Err` is Electrum's error message (or the transport's).
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let rpc = self.rpc.clone();
        let method = method.to_string();
        let res = tokio::task::spawn_blocking(move || {
            let params = jsonrpc::arg(params);
            let req = rpc.build_request(&method, Some(&*params));
            rpc.send_request(req).and_then(|r| r.result::<Value>())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        res.map_err(|e| match e {
            jsonrpc::Error::Rpc(e) => format!("Electrum error {}: {}", e.code, e.message),
            e => e.to_string(),
        })
    }

    /// A JSON-RPC call that the story expects to succeed; panics with the logs' tails otherwise.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        match self.rpc(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{} (Electrum): {method} {params} failed: {e}\n{}", self.name, self.log_tails()),
        }
    }

    // ---- waiting ----

    /// Polls `check` until it is ready, up to [`SYNC_TIMEOUT`]; on a timeout panics naming `what`, with the
    /// tails of Electrum's logs.
    pub async fn wait_until<O, F, Fut>(&self, what: impl std::fmt::Display, check: F) -> O::Value
    where
        O: crate::Outcome,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = O>,
    {
        self.wait_until_for(SYNC_TIMEOUT, what, check).await
    }

    /// [`wait_until`](Electrum::wait_until) with its own deadline.
    pub async fn wait_until_for<O, F, Fut>(&self, timeout: Duration, what: impl std::fmt::Display, check: F) -> O::Value
    where
        O: crate::Outcome,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = O>,
    {
        wait_until_logged(timeout, format!("{} (Electrum): {what}", self.name), &self.logs(), check).await
    }

    /// Waits until Electrum's headers reach bitcoind's tip and its wallet is synchronized. Electrum takes
    /// headers about five blocks a second from ElectrumX when far behind, so the deadline grows with the gap.
    pub async fn wait_synced(&self) {
        let tip = self.net.bitcoind.height().await;
        let seen = self.rpc("getinfo", json!({})).await.ok().and_then(|i| i["blockchain_height"].as_u64()).unwrap_or(0);
        let timeout = SYNC_TIMEOUT + Duration::from_millis(400 * tip.saturating_sub(seen));
        self.wait_until_for(timeout, format!("synced at height {tip}"), || async {
            self.panic_if_exited();
            let info = self.rpc("getinfo", json!({})).await?;
            let height = info["blockchain_height"].as_u64().unwrap_or(0);
            let synced = self.rpc("is_synchronized", json!({})).await? == json!(true);
            match (info["connected"] == json!(true), height >= tip, synced) {
                (true, true, true) => Ok(()),
                _ => Err(format!("connected={} height={height} synchronized={synced}", info["connected"])),
            }
        })
        .await
    }

    // ---- on-chain ----

    /// `getbalance`, in sat.
    pub async fn balance(&self) -> ElectrumBalance {
        let b = self.call("getbalance", json!({})).await;
        let sat = |k: &str| b.get(k).and_then(Value::as_str).map(btc_to_sat).unwrap_or(0);
        ElectrumBalance { confirmed_sat: sat("confirmed"), unconfirmed_sat: sat("unconfirmed"), unmatured_sat: sat("unmatured"), lightning_sat: sat("lightning") }
    }

    /// An unused receiving address of the wallet.
    pub async fn new_address(&self) -> String {
        let a = self.call("getunusedaddress", json!({})).await;
        a.as_str().unwrap_or_else(|| panic!("getunusedaddress answered {a}")).to_string()
    }

    /// Pays `sat` from the miner to a fresh address of Electrum's, mines one block, and waits until
    /// Electrum's confirmed balance includes it. Returns the txid.
    pub async fn fund(&self, sat: u64) -> Txid {
        let before = self.balance().await.confirmed_sat;
        let address = self.new_address().await;
        let txid = self.net.send_to_address(&address, sat).await;
        self.net.mine(1).await;
        self.wait_confirmed_at_least(before + sat as i64).await;
        txid
    }

    /// Waits until the confirmed on-chain balance is at least `sat` and returns the balance then.
    pub async fn wait_confirmed_at_least(&self, sat: i64) -> ElectrumBalance {
        self.wait_until(format!("a confirmed balance of at least {sat} sat"), || async {
            let b = self.balance().await;
            match b.confirmed_sat >= sat {
                true => Ok(b),
                false => Err(format!("{b:?}")),
            }
        })
        .await
    }

    // ---- Lightning ----

    /// Connects Electrum's wallet node to `node` (`add_peer`), and its gossip node too when `gossip`.
    pub async fn connect(&self, node: &Node, gossip: bool) {
        self.call("add_peer", json!({ "connection_string": node.peer_address(), "gossip": gossip })).await;
    }

    /// `list_peers` of the wallet node: the node ids of the connected peers that finished `init`.
    pub async fn peers(&self) -> Vec<String> {
        let peers = self.call("list_peers", json!({})).await;
        let peers = peers.as_array().cloned().unwrap_or_default();
        peers.iter().filter(|p| p["initialized"] == json!(true)).filter_map(|p| p["node_id"].as_str().map(String::from)).collect()
    }

    /// `gossip_info`: how many channels and policies Electrum's gossip database holds.
    pub async fn gossip_channels(&self) -> (u64, u64) {
        let g = self.call("gossip_info", json!({})).await;
        (g["database"]["channels"].as_u64().unwrap_or(0), g["database"]["channel_policies"].as_u64().unwrap_or(0))
    }

    /// Waits until Electrum's gossip database has at least `channels` channels with both policies (what
    /// its path finding needs to route through them).
    pub async fn wait_gossip_channels(&self, channels: u64) {
        self.wait_until(format!("{channels} channels with both policies in the gossip database"), || async {
            let (c, p) = self.gossip_channels().await;
            match c >= channels && p >= 2 * channels {
                true => Ok(()),
                false => Err(format!("{c} channels, {p} policies")),
            }
        })
        .await
    }

    /// Opens a channel of `sat` to `node` (connecting first), funded by Electrum's wallet, and waits until
    /// the funding transaction is in bitcoind's mempool. Returns the channel point ("txid:vout").
    pub async fn open_channel(&self, node: &Node, sat: u64) -> String {
        self.open_channel_with_push(node, sat, 0).await
    }

    /// [`open_channel`](Electrum::open_channel), giving `push_sat` of it to `node` at once.
    /// Electrum first catches up with bitcoind's tip: it derives a channel's funding key from the height, and
    /// refuses a second channel to the same peer at the height of the first.
    pub async fn open_channel_with_push(&self, node: &Node, sat: u64, push_sat: u64) -> String {
        self.wait_synced().await;
        let params = json!({ "connection_string": node.peer_address(), "amount": sat_to_btc(sat), "push_amount": sat_to_btc(push_sat) });
        let point = self.call("open_channel", params).await;
        let point = point.as_str().unwrap_or_else(|| panic!("open_channel answered {point}")).to_string();
        let txid: Txid = point.split(':').next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("channel point {point:?}"));
        let net = self.net.clone();
        self.wait_until(format!("the funding transaction {txid} in the mempool"), || async {
            net.mempool().await.contains(&txid)
        })
        .await;
        point
    }

    /// `list_channels`: every channel Electrum keeps, closed ones included until they are forgotten.
    pub async fn channels(&self) -> Vec<ElectrumChannel> {
        let v = self.call("list_channels", json!({})).await;
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("list_channels answered {v}: {e}"))
    }

    /// The channel with this channel point, if `list_channels` has it.
    pub async fn channel(&self, point: &str) -> Option<ElectrumChannel> {
        self.channels().await.into_iter().find(|c| c.channel_point == point)
    }

    /// Waits until the channel is in `state` and returns it.
    pub async fn wait_channel_state(&self, point: &str, state: &str) -> ElectrumChannel {
        self.wait_until(format!("channel {point} to be {state}"), || async {
            match self.channel(point).await {
                Some(c) if c.state == state => Ok(c),
                Some(c) => Err(format!("state {} peer_state {}", c.state, c.peer_state)),
                None => Err("not in list_channels".to_string()),
            }
        })
        .await
    }

    /// Waits until the channel is OPEN with its peer connected and reestablished (usable), and returns it.
    pub async fn wait_channel_open(&self, point: &str) -> ElectrumChannel {
        self.wait_until(format!("channel {point} to be OPEN with the peer connected"), || async {
            match self.channel(point).await {
                Some(c) if c.state == "OPEN" && c.peer_state == "GOOD" => Ok(c),
                Some(c) => Err(format!("state {} peer_state {}", c.state, c.peer_state)),
                None => Err("not in list_channels".to_string()),
            }
        })
        .await
    }

    /// A Lightning payment request for `sat` (`add_request --lightning`); Electrum adds route hints for
    /// its private channels.
    pub async fn add_invoice(&self, sat: u64, memo: &str) -> ElectrumInvoice {
        let r = self.call("add_request", json!({ "amount": sat_to_btc(sat), "memo": memo, "lightning": true })).await;
        let field = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("add_request answered no {k}: {r}")).to_string();
        ElectrumInvoice { bolt11: field("lightning_invoice"), request_id: field("request_id"), payment_hash: field("rhash") }
    }

    /// Waits until Electrum reports the request paid.
    pub async fn wait_invoice_paid(&self, invoice: &ElectrumInvoice) {
        self.wait_until(format!("request {} to be paid", invoice.request_id), || async {
            let r = self.call("get_request", json!({ "request_id": invoice.request_id })).await;
            match r["status"].as_i64() == Some(PR_PAID) {
                true => Ok(()),
                false => Err(format!("status {} ({})", r["status"], r["status_str"])),
            }
        })
        .await
    }

    /// `lnpay`: Electrum finds a route in its gossip database and pays; it answers when the payment ends.
    /// `Err` is a refusal before anything was sent (Electrum's message).
    pub async fn pay_invoice(&self, bolt11: &str) -> Result<ElectrumPayment, String> {
        let v = self.rpc("lnpay", json!({ "invoice": bolt11 })).await?;
        Ok(serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("lnpay answered {v}: {e}")))
    }

    /// Cooperative close (`close_channel`); returns the closing txid once Electrum has it.
    pub async fn close_channel(&self, point: &str) -> Txid {
        let txid = self.call("close_channel", json!({ "channel_point": point })).await;
        parse_txid("close_channel", &txid)
    }

    /// Force close (`close_channel --force`): Electrum broadcasts its latest commitment; returns its txid.
    pub async fn force_close_channel(&self, point: &str) -> Txid {
        let txid = self.call("close_channel", json!({ "channel_point": point, "force": true })).await;
        parse_txid("close_channel --force", &txid)
    }

    // ---- process ----

    fn lock_daemon(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.daemon.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn panic_if_exited(&self) {
        let exited = {
            let mut child = self.lock_daemon();
            match child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => child.take().map(|_| status),
                _ => None,
            }
        };
        if let Some(status) = exited {
            panic_exited(&format!("{} (Electrum)", self.name), status, &self.console_log());
        }
        self.electrumx.panic_if_exited();
    }

    /// Electrum's JSON-RPC port (127.0.0.1).
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }
}

impl ElectrumX {
    /// Starts ElectrumX on the net's bitcoind and waits until it serves clients (it does once it has
    /// caught up with bitcoind's chain).
    async fn start(net: &Shared, exe: &Path, dir: &Path) -> ElectrumX {
        let db = dir.join("electrumx-db");
        std::fs::create_dir_all(&db).expect("cannot create ElectrumX's database directory");
        let (port, rpc_port) = (free_port(), free_port());
        let mut cmd = Command::new(exe);
        cmd.env("COIN", "Bitcoin")
            .env("NET", "regtest")
            .env("DAEMON_URL", format!("http://{RPC_USER}:{RPC_PASSWORD}@127.0.0.1:{}/", net.bitcoind.rpc_port()))
            .env("DB_DIRECTORY", &db)
            .env("SERVICES", format!("tcp://127.0.0.1:{port},rpc://127.0.0.1:{rpc_port}"))
            .env("PEER_DISCOVERY", "off")
            .env("PEER_ANNOUNCE", "")
            .env("COST_SOFT_LIMIT", "0")
            .env("COST_HARD_LIMIT", "0")
            .env("CACHE_MB", "100")
            // Poll bitcoind every 100 ms (as Electrum's own regtest scripts do), so blocks reach Electrum at once.
            .env("DAEMON_POLL_INTERVAL_BLOCKS", "100")
            .env("DAEMON_POLL_INTERVAL_MEMPOOL", "100")
            // ElectrumX refuses to run as root unless told; the harness runs as whoever runs the tests.
            .env("ALLOW_ROOT", "1");
        let log = dir.join("electrumx.log");
        let child = spawn_logged(&mut cmd, &log);
        let x = ElectrumX { child: Mutex::new(Some(child)), port, log };
        wait_until_logged(START_TIMEOUT, "ElectrumX to accept connections", &[x.log.clone()], || async {
            x.panic_if_exited();
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map(|_| ())
        })
        .await;
        x
    }

    fn panic_if_exited(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
            child.take();
            panic_exited("ElectrumX", status, &self.log);
        }
    }
}

impl Drop for Electrum {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            terminate_group_blocking(&mut child, GRACE);
        }
        if std::thread::panicking() {
            eprintln!("lanes-regtest: {} (Electrum) logs:\n{}", self.name, self.log_tails());
        }
    }
}

impl Drop for ElectrumX {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            terminate_group_blocking(&mut child, GRACE);
        }
    }
}

fn parse_txid(what: &str, v: &Value) -> Txid {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{what} answered {v}, not a txid"))
}

/// "0.00123456" (Electrum's amounts, in BTC) -> 123456 sat, exactly; "-0.5" -> -50_000_000.
pub fn btc_to_sat(btc: &str) -> i64 {
    let (neg, digits) = match btc.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, btc.trim()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(frac.len() <= 8, "more than 8 decimals in {btc:?}");
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().unwrap_or_else(|e| panic!("{btc:?}: {e}")) };
    let frac: i64 = format!("{frac:0<8}").parse().unwrap_or_else(|e| panic!("{btc:?}: {e}"));
    let sat = whole * 100_000_000 + frac;
    if neg {
        -sat
    } else {
        sat
    }
}

/// 123456 sat -> "0.00123456" BTC, as Electrum's commands take amounts.
pub fn sat_to_btc(sat: u64) -> String {
    format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_amounts_convert_exactly() {
        assert_eq!(btc_to_sat("0.00123456"), 123_456);
        assert_eq!(btc_to_sat("1"), 100_000_000);
        assert_eq!(btc_to_sat("1.5"), 150_000_000);
        assert_eq!(btc_to_sat("-0.0001"), -10_000);
        assert_eq!(sat_to_btc(123_456), "0.00123456");
        assert_eq!(sat_to_btc(250_000_000), "2.50000000");
    }
}
