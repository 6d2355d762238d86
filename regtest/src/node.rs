//! One lanesd daemon of a [`Net`](crate::Net), driven as a user would: a real process, spoken to over gRPC.
//!
//! Owns the lanesd process (start, graceful stop, kill, restart on the same data dir and ports), its log file,
//! the gRPC client, and small waits on what the node reports (started, synced, balance). It must never reach
//! into lanesd's data directory behind the daemon's back (reading the seed file to compare it is the one
//! exception), never leave its process running after the `Node` is gone, and never decide by sleeping.
use std::fmt::Display;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bitcoin::Txid;
use lanes_proto::v1::{
    GetInfoRequest, GetInfoResponse, ListUnspentRequest, NewAddressRequest, SendCoinsRequest, SendCoinsResponse,
    Utxo, WalletBalanceRequest, WalletBalanceResponse,
};
use lanes_client::{Client, Server};

use crate::bitcoind::{RPC_PASSWORD, RPC_USER};
use crate::net::Shared;
use crate::process::{describe_exit, panic_exited, signal, spawn_logged, terminate_blocking, wait_exit, KILL_GRACE};
use crate::wait::{log_tail, wait_until_logged, START_TIMEOUT, STOP_TIMEOUT, SYNC_TIMEOUT};

/// What a story may ask of a node beyond the defaults (see the `Net::node_*` constructors).
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeOptions {
    /// Extra lanesd flags, e.g. `--forward-to-private-channels false`.
    pub args: Vec<String>,
    /// Extra environment (test-only knobs, see `lanes_channel::test_knobs`).
    pub env: Vec<(String, String)>,
    /// The data dir on a tmpfs of this size, mounted by the harness (unmounted once the process is gone).
    pub tmpfs_bytes: Option<u64>,
    /// Soft and hard limit on lanesd's open files.
    pub fd_limit: Option<u64>,
}

/// A lanesd node. Cheap to clone (a handle); the process is stopped when the last handle is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    name: String,
    dir: PathBuf,
    p2p_port: u16,
    grpc_port: u16,
    lanesd_exe: PathBuf,
    /// What the story asked of this node beyond the defaults, on every start.
    opts: NodeOptions,
    child: Mutex<Option<Child>>,
    /// The node id, from the first GetInfo that answered (it comes from the seed, so restarts keep it).
    node_id: OnceLock<String>,
    /// Started as a standby and not yet seen active: it follows no chain, so waits for blocks skip it.
    standby: std::sync::atomic::AtomicBool,
    net: Arc<Shared>,
}

impl Node {
    pub(crate) fn new(net: Arc<Shared>, name: &str, dir: PathBuf, lanesd_exe: PathBuf, p2p_port: u16, grpc_port: u16, opts: NodeOptions) -> Node {
        let inner = NodeInner {
            name: name.into(),
            dir,
            p2p_port,
            grpc_port,
            lanesd_exe,
            opts,
            child: Mutex::new(None),
            node_id: OnceLock::new(),
            standby: std::sync::atomic::AtomicBool::new(false),
            net,
        };
        Node { inner: Arc::new(inner) }
    }

    pub(crate) fn from_inner(inner: Arc<NodeInner>) -> Node {
        Node { inner }
    }

    /// The net this node runs on (bitcoind and the other nodes).
    pub(crate) fn net(&self) -> &Shared {
        &self.inner.net
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<NodeInner> {
        Arc::downgrade(&self.inner)
    }

    // ---- identity and places ----

    /// The name given to `Net::node`, also passed to lanesd as `--alias`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// lanesd's `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where lanesd's stdout and stderr go (appended across restarts, one header line per start).
    pub fn log_path(&self) -> PathBuf {
        self.inner.dir.join("lanesd.log")
    }

    /// The seed file lanesd writes on its first start.
    pub fn seed_path(&self) -> PathBuf {
        lanes_store::layout::seed_path(&self.inner.dir)
    }

    /// The gRPC address, as `lanes-cli --rpcserver` takes it: `127.0.0.1:PORT`.
    pub fn rpcserver(&self) -> String {
        format!("127.0.0.1:{}", self.inner.grpc_port)
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.inner.grpc_port))
    }

    /// The Lightning peer-to-peer address lanesd listens on.
    pub fn p2p_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.inner.p2p_port))
    }

    /// The node's public key, hex, as GetInfo reported it when the node first started (cached).
    pub fn node_id(&self) -> String {
        let id = self.inner.node_id.get();
        id.unwrap_or_else(|| panic!("{} has not answered GetInfo yet, so its node id is not known", self.name())).clone()
    }

    /// How peers reach this node, as ConnectPeer and `lanes-cli connect` take it: `node_id@127.0.0.1:PORT`.
    pub fn peer_address(&self) -> String {
        format!("{}@{}", self.node_id(), self.p2p_addr())
    }

    /// True while the lanesd process runs (it may not answer yet).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        matches!(child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    // ---- process lifecycle ----

    /// Starts lanesd and waits (up to [`START_TIMEOUT`]) until GetInfo answers, reports `synced_to_chain` and
    /// bitcoind's current height. Panics, with the tail of the log, if lanesd exits or never gets there.
    pub async fn start(&self) {
        if self.is_running() {
            panic!("{} is already running", self.name());
        }
        let child = spawn_logged(&mut self.lanesd_command(), &self.log_path());
        *self.lock_child() = Some(child);
        self.inner.standby.store(false, std::sync::atomic::Ordering::SeqCst);
        let tip = self.inner.net.bitcoind.height().await;
        self.wait_synced_to(tip, START_TIMEOUT).await;
    }

    /// The connection string and password file this node's `--db` and `--db-password-file` name, when it is
    /// on PostgreSQL.
    pub fn postgres_args(&self) -> Option<(String, String)> {
        let args = &self.inner.opts.args;
        let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        Some((after("--db")?, after("--db-password-file")?))
    }

    /// The net's PostgreSQL server, if a story started it.
    pub fn net_postgres(&self) -> Option<&crate::Postgres> {
        self.inner.net.postgres()
    }

    /// Whether this instance was started as a standby and has not been seen active since.
    pub fn is_standby(&self) -> bool {
        self.inner.standby.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts lanesd as a standby of an instance that holds the database lease, and waits until it answers
    /// GetInfo with the role "standby".
    pub async fn start_standby(&self) {
        if self.is_running() {
            panic!("{} is already running", self.name());
        }
        let child = spawn_logged(&mut self.lanesd_command(), &self.log_path());
        *self.lock_child() = Some(child);
        self.inner.standby.store(true, std::sync::atomic::Ordering::SeqCst);
        let what = format!("{} to answer GetInfo as a standby", self.name());
        wait_until_logged(START_TIMEOUT, what, &[self.log_path()], || async {
            self.panic_if_exited();
            let info = self.client().get_info(GetInfoRequest {}).await.map_err(|s| format!("GetInfo: {:?}: {}", s.code(), s.message()))?.into_inner();
            match info.role.as_str() {
                "standby" => Ok(()),
                other => Err(format!("role {other:?}")),
            }
        })
        .await
    }

    /// Waits up to `timeout` until this instance is active (it holds the database lease and its node is
    /// built) and synced to bitcoind's tip; returns its GetInfo.
    pub async fn wait_active(&self, timeout: Duration) -> GetInfoResponse {
        let tip = self.inner.net.bitcoind.height().await;
        let what = format!("{} to be active and synced at height {tip}", self.name());
        wait_until_logged(timeout, what, &[self.log_path()], || async {
            self.panic_if_exited();
            let info = self.client().get_info(GetInfoRequest {}).await.map_err(|s| format!("GetInfo: {:?}: {}", s.code(), s.message()))?.into_inner();
            if !info.node_id.is_empty() {
                let _ = self.inner.node_id.set(info.node_id.clone());
            }
            match info.role == "active" && info.synced_to_chain && u64::from(info.block_height) >= tip {
                true => {
                    self.inner.standby.store(false, std::sync::atomic::Ordering::SeqCst);
                    Ok(info)
                }
                false => Err(format!("role {:?}, synced_to_chain={} block_height={}", info.role, info.synced_to_chain, info.block_height)),
            }
        })
        .await
    }

    /// Starts lanesd when it is expected to refuse to start (a bad setting, an unreachable database) and
    /// waits for it to exit; panics, and kills it, if it is still running after `timeout`.
    pub async fn start_expecting_exit(&self, timeout: Duration) -> ExitStatus {
        if self.is_running() {
            panic!("{} is already running", self.name());
        }
        let mut child = spawn_logged(&mut self.lanesd_command(), &self.log_path());
        self.reap(&mut child, timeout, "exit (it was expected to refuse to start)").await
    }

    /// Stops lanesd gracefully (SIGTERM) and waits for it to exit; panics unless it exits with code 0 within
    /// [`STOP_TIMEOUT`] (then it is killed).
    pub async fn stop(&self) {
        let mut child = self.take_child("stop");
        signal(&mut child, libc::SIGTERM);
        let status = self.reap(&mut child, STOP_TIMEOUT, "exit after SIGTERM").await;
        if !status.success() {
            panic!("{} did not stop cleanly: {}\n{}", self.name(), describe_exit(status), log_tail(&self.log_path()));
        }
    }

    /// Kills lanesd with SIGKILL, as a crash would, and reaps it.
    pub async fn kill(&self) {
        let mut child = self.take_child("kill");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Graceful stop, then start again on the same data dir and ports.
    pub async fn restart(&self) {
        self.stop().await;
        self.start().await;
    }

    /// Waits for lanesd to exit by itself (e.g. after the Stop RPC) and returns how it ended. Panics, and kills
    /// it, if it is still running after `timeout`.
    pub async fn wait_for_exit(&self, timeout: Duration) -> ExitStatus {
        let mut child = self.take_child("wait for the exit of");
        self.reap(&mut child, timeout, "exit").await
    }

    fn take_child(&self, action: &str) -> Child {
        let child = self.lock_child().take();
        child.unwrap_or_else(|| panic!("cannot {action} {}: it is not running", self.name()))
    }

    async fn reap(&self, child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
        match wait_exit(child, timeout).await {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not {what} within {timeout:?}; killed it\n{}", self.name(), log_tail(&self.log_path()))
            }
        }
    }

    /// The file holding bitcoind's RPC password for lanesd, written (0600) next to the data dir.
    fn password_file(&self) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.inner.dir.with_file_name(format!("{}.rpcpassword", self.inner.name));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        std::io::Write::write_all(&mut f, RPC_PASSWORD.as_bytes()).expect("cannot write the password file");
        path
    }

    /// The running lanesd's process id.
    pub fn pid(&self) -> u32 {
        self.lock_child().as_ref().map(|c| c.id()).unwrap_or_else(|| panic!("{} is not running", self.name()))
    }

    fn lanesd_command(&self) -> Command {
        let bitcoind = &self.inner.net.bitcoind;
        let mut cmd = Command::new(&self.inner.lanesd_exe);
        cmd.arg("--network").arg("regtest")
            .arg("--data-dir").arg(&self.inner.dir)
            .arg("--bitcoind-rpc-url").arg(bitcoind.rpc_url())
            .arg("--bitcoind-rpc-user").arg(RPC_USER)
            // The password from a file, never in argv (where any local user could read it).
            .arg("--bitcoind-rpc-password-file").arg(self.password_file())
            .arg("--listen").arg(self.p2p_addr().to_string())
            .arg("--grpc-listen").arg(self.grpc_addr().to_string())
            .arg("--alias").arg(&self.inner.name)
            .args(&self.inner.opts.args)
            .env("RUST_BACKTRACE", "1")
            .envs(self.inner.opts.env.iter().map(|(k, v)| (k, v)));
        if let Some(limit) = self.inner.opts.fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec, setrlimit(2) only, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd
    }

    // ---- gRPC ----

    /// A gRPC client for this node, over TLS with its admin macaroon (read from its data dir each time: a
    /// restart may make new ones). It connects on first use and reconnects after a restart. Before lanesd
    /// made its credentials, the client has none and its calls fail (waits poll on).
    pub fn client(&self) -> Client {
        let server = Server::parse(&self.rpcserver()).expect("a node's rpcserver is host:port");
        match server.clone().with_credentials_in(self.data_dir()) {
            Ok(with) => with.connect_lazy(),
            Err(_) => server.connect_lazy(),
        }
    }

    /// lanes-cli's flags that reach this node: its address and the data dir holding its credentials.
    pub fn cli_args(&self) -> Vec<String> {
        vec!["--rpcserver".into(), self.rpcserver(), "--lanesdir".into(), self.data_dir().display().to_string()]
    }

    /// GetInfo; panics (with the log tail) on an error.
    pub async fn info(&self) -> GetInfoResponse {
        let res = self.client().get_info(GetInfoRequest {}).await;
        self.ok("GetInfo", res)
    }

    /// WalletBalance; panics on an error.
    pub async fn balance(&self) -> WalletBalanceResponse {
        let res = self.client().wallet_balance(WalletBalanceRequest {}).await;
        self.ok("WalletBalance", res)
    }

    /// NewAddress; panics on an error.
    pub async fn new_address(&self) -> String {
        let res = self.client().new_address(NewAddressRequest {}).await;
        self.ok("NewAddress", res).address
    }

    /// ListUnspent with at least `min_confs` confirmations; panics on an error.
    pub async fn list_unspent(&self, min_confs: u32) -> Vec<Utxo> {
        let res = self.client().list_unspent(ListUnspentRequest { min_confs }).await;
        self.ok("ListUnspent", res).utxos
    }

    /// SendCoins of `amount_sat` to `address` at `sat_per_vbyte` ("" lets lanesd estimate); panics on an error.
    pub async fn send_coins(&self, address: impl Display, amount_sat: u64, sat_per_vbyte: &str) -> SendCoinsResponse {
        let req = SendCoinsRequest { address: address.to_string(), amount_sat, send_all: false, sat_per_vbyte: sat_per_vbyte.into() };
        let res = self.client().send_coins(req).await;
        self.ok("SendCoins", res)
    }

    pub(crate) fn ok<T>(&self, what: &str, res: Result<tonic::Response<T>, tonic::Status>) -> T {
        match res {
            Ok(resp) => resp.into_inner(),
            Err(status) => panic!(
                "{what} on {} failed: {:?}: {}\n{}",
                self.name(),
                status.code(),
                status.message(),
                log_tail(&self.log_path())
            ),
        }
    }

    // ---- waiting on the node ----

    /// Polls `check` until it is ready (see [`Outcome`](crate::Outcome)), up to [`SYNC_TIMEOUT`]; on a timeout
    /// panics naming `what` and showing the tail of this node's log.
    pub async fn wait_until<O, F, Fut>(&self, what: impl Display, check: F) -> O::Value
    where
        O: crate::Outcome,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = O>,
    {
        wait_until_logged(SYNC_TIMEOUT, format!("{}: {what}", self.name()), &[self.log_path()], check).await
    }

    /// Waits until a line of the node's log contains every one of `parts` (what an operator would grep for),
    /// and returns that line.
    pub async fn wait_log_line(&self, parts: &[&str]) -> String {
        let path = self.log_path();
        self.wait_until(format!("a log line with {parts:?}"), || {
            let path = path.clone();
            async move {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                log.lines().find(|l| parts.iter().all(|p| l.contains(p))).map(str::to_string).ok_or("not logged yet")
            }
        })
        .await
    }

    /// Waits until the node reports `synced_to_chain` at bitcoind's current height.
    pub async fn wait_synced(&self) {
        let tip = self.inner.net.bitcoind.height().await;
        self.wait_synced_to(tip, SYNC_TIMEOUT).await;
    }

    async fn wait_synced_to(&self, tip: u64, timeout: Duration) {
        let what = format!("{} to answer GetInfo, synced to chain at height {tip}", self.name());
        wait_until_logged(timeout, what, &[self.log_path()], || async {
            self.panic_if_exited();
            let info = self.client().get_info(GetInfoRequest {}).await.map_err(|s| format!("GetInfo: {:?}: {}", s.code(), s.message()))?;
            let info = info.into_inner();
            if !info.node_id.is_empty() {
                let _ = self.inner.node_id.set(info.node_id.clone());
            }
            match info.role == "active" && info.synced_to_chain && u64::from(info.block_height) >= tip {
                true => Ok(()),
                false => Err(format!("synced_to_chain={} block_height={}", info.synced_to_chain, info.block_height)),
            }
        })
        .await
    }

    /// Waits until the confirmed balance is at least `sat`, and returns the balance then.
    pub async fn wait_confirmed_at_least(&self, sat: u64) -> WalletBalanceResponse {
        self.wait_until(format!("a confirmed balance of at least {sat} sat"), || async {
            let b = self.balance().await;
            match b.confirmed_sat >= sat {
                true => Ok(b),
                false => Err(format!("confirmed {} sat, unconfirmed {} sat", b.confirmed_sat, b.unconfirmed_sat)),
            }
        })
        .await
    }

    fn panic_if_exited(&self) {
        let exited = {
            let mut child = self.lock_child();
            match child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => child.take().map(|_| status),
                _ => None,
            }
        };
        if let Some(status) = exited {
            panic_exited(&format!("{} (lanesd)", self.name()), status, &self.log_path());
        }
    }

    /// The process slot; a panic elsewhere while it was held does not make it unusable.
    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.inner.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- money ----

    /// Sends `sat` from bitcoind's miner wallet to a fresh address of this node, mines one block, and waits
    /// until the node's confirmed balance includes it. Returns the funding txid.
    pub async fn fund(&self, sat: u64) -> Txid {
        let before = self.balance().await.confirmed_sat;
        let address = self.new_address().await;
        let net = &self.inner.net;
        let txid = net.send_to_address(&address, sat).await;
        net.mine(1).await;
        let want = before + sat;
        // On a timeout, say whether the coins are in the chain and how far the node has synced, so a wallet
        // that missed them can be told from a chain or a node that is behind.
        self.wait_until(format!("a confirmed balance of at least {want} sat (funded by {txid})"), || async {
            let b = self.balance().await;
            if b.confirmed_sat >= want {
                return Ok(());
            }
            let (info, height, confs) = (self.info().await, net.bitcoind.height().await, net.tx_confirmations(txid).await);
            Err(format!(
                "confirmed {} sat, unconfirmed {} sat; the funding has {confs} confirmations at bitcoind's height {height}; the node is at {} (synced: {})",
                b.confirmed_sat, b.unconfirmed_sat, info.block_height, info.synced_to_chain
            ))
        })
        .await;
        txid
    }
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = child.take() {
            terminate_blocking(&mut child, KILL_GRACE);
        }
        if self.opts.tmpfs_bytes.is_some() {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        if std::thread::panicking() {
            // CI keeps only the test's output: show the end of the log, not just where it was.
            let log = self.dir.join("lanesd.log");
            // Never panics: printing to a closed stderr while unwinding would abort and orphan bitcoind.
            let _ = writeln!(std::io::stderr(), "lanes-regtest: {}'s lanesd log: {}\n{}", self.name, log.display(), log_tail(&log));
        }
    }
}
