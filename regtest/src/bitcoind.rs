//! One bitcoind on regtest, private to a [`Net`](crate::Net).
//!
//! Owns finding the bitcoind executable (through `regtest/scripts/bitcoind.sh`, once per process), running
//! bitcoind in a temporary directory on free loopback ports, its "miner" wallet with the first 101 blocks,
//! and the RPC client. It must never touch a bitcoind it did not start, never listen anywhere but 127.0.0.1,
//! and never let a missing bitcoind pass as a skipped test: if the executable cannot be had, it panics.
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, OnceLock};

use bitcoin::{Address, BlockHash, Network};
use bitcoincore_rpc::json::AddressType;
use bitcoincore_rpc::{Auth, Client, RpcApi};

use crate::process::{free_port, panic_exited, spawn_logged, terminate_blocking};
use crate::wait::{wait_until_logged, START_TIMEOUT};

/// The RPC credentials of every harness bitcoind (it listens on 127.0.0.1 only).
pub const RPC_USER: &str = "lanes";
pub const RPC_PASSWORD: &str = "lanes-regtest";
/// The name of the bitcoind wallet that mines and pays.
pub const MINER_WALLET: &str = "miner";
/// Blocks mined at start: coinbase outputs mature after 100 blocks, so 101 leaves one spendable.
const INITIAL_BLOCKS: u64 = 101;
/// How long bitcoind gets to exit on SIGTERM before SIGKILL.
const BITCOIND_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The bitcoind executable, provisioned by `regtest/scripts/bitcoind.sh` the first time it is asked for in
/// this process (the script itself is idempotent across processes).
///
/// Panics with the script's stderr if it fails: lanes' tests never skip for want of a bitcoind.
pub fn bitcoind_exe() -> PathBuf {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match EXE.get_or_init(provision) {
        Ok(path) => path.clone(),
        Err(e) => panic!("cannot provision bitcoind: {e}"),
    }
}

fn provision() -> Result<PathBuf, String> {
    let lines = crate::process::run_provisioning_script("bitcoind.sh")?;
    let path = PathBuf::from(lines.last().expect("not empty"));
    match path.is_file() {
        true => Ok(path),
        false => Err(format!("regtest/scripts/bitcoind.sh printed {lines:?}, which is not an executable")),
    }
}

/// A running bitcoind with a funded "miner" wallet. Dropping it stops the process.
pub struct Bitcoind {
    exe: PathBuf,
    dir: PathBuf,
    rpc_port: u16,
    p2p_port: u16,
    child: Mutex<Child>,
    rpc: Arc<Client>,
}

impl Bitcoind {
    /// Starts bitcoind in `dir`, waits until its RPC answers, creates the miner wallet and mines 101 blocks.
    pub async fn start(dir: PathBuf) -> Bitcoind {
        let exe = tokio::task::spawn_blocking(bitcoind_exe).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        std::fs::create_dir_all(&dir).expect("cannot create the bitcoind directory");
        let (rpc_port, p2p_port) = (free_port(), free_port());
        let child = spawn_logged(&mut bitcoind_command(&exe, &dir, rpc_port, p2p_port), &dir.join("bitcoind.log"));
        let url = format!("http://127.0.0.1:{rpc_port}/wallet/{MINER_WALLET}");
        let rpc = Client::new(&url, Auth::UserPass(RPC_USER.into(), RPC_PASSWORD.into())).expect("cannot build an RPC client");
        let bitcoind = Bitcoind { exe, dir, rpc_port, p2p_port, child: Mutex::new(child), rpc: Arc::new(rpc) };
        bitcoind.wait_for_rpc().await;
        bitcoind.call("createwallet miner", |rpc| rpc.create_wallet(MINER_WALLET, None, None, None, None)).await;
        bitcoind.mine(INITIAL_BLOCKS).await;
        bitcoind
    }

    /// Stops bitcoind (SIGTERM, as an operator's restart or an outage would), keeping its data and ports; nodes
    /// see "connection refused" until [`Bitcoind::resume`].
    pub async fn pause(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let status = terminate_blocking(&mut child, BITCOIND_GRACE);
        assert!(status.success(), "bitcoind did not stop cleanly: {status}");
    }

    /// Starts bitcoind again on the same data and ports after [`Bitcoind::pause`], with the miner wallet loaded.
    pub async fn resume(&self) {
        {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            assert!(!matches!(child.try_wait(), Ok(None)), "bitcoind is still running");
            *child = spawn_logged(&mut bitcoind_command(&self.exe, &self.dir, self.rpc_port, self.p2p_port), &self.dir.join("bitcoind.log"));
        }
        self.wait_for_rpc().await;
        let loaded: Vec<String> = self.call("listwallets", |rpc| rpc.list_wallets()).await;
        if !loaded.iter().any(|w| w == MINER_WALLET) {
            self.call("loadwallet miner", |rpc| rpc.load_wallet(MINER_WALLET)).await;
        }
    }

    /// The RPC client, on the miner wallet's endpoint (non-wallet calls work there too). It blocks: from async
    /// code prefer [`Bitcoind::call`].
    pub fn rpc(&self) -> &Client {
        &self.rpc
    }

    /// A handle on the RPC client for the blocking pool.
    pub(crate) fn rpc_handle(&self) -> Arc<Client> {
        Arc::clone(&self.rpc)
    }

    /// Runs a blocking RPC call on the blocking pool; panics naming `what` if bitcoind returns an error.
    pub async fn call<T, F>(&self, what: &str, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&Client) -> bitcoincore_rpc::Result<T> + Send + 'static,
    {
        let rpc = self.rpc.clone();
        match tokio::task::spawn_blocking(move || f(&rpc)).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("bitcoind RPC failed: {what}: {e}"),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// Mines `n` blocks to a fresh address of the miner wallet and returns their hashes.
    pub async fn mine(&self, n: u64) -> Vec<BlockHash> {
        let to = self.new_address().await;
        self.call(&format!("generatetoaddress {n}"), move |rpc| rpc.generate_to_address(n, &to)).await
    }

    /// The height of bitcoind's best block.
    pub async fn height(&self) -> u64 {
        self.call("getblockcount", |rpc| rpc.get_block_count()).await
    }

    /// A fresh native segwit address of the miner wallet.
    pub async fn new_address(&self) -> Address {
        let addr = self.call("getnewaddress", |rpc| rpc.get_new_address(None, Some(AddressType::Bech32))).await;
        addr.require_network(Network::Regtest).expect("bitcoind handed out a non-regtest address")
    }

    /// The URL lanesd is given: the node-wide RPC endpoint (no wallet path).
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The directory bitcoind keeps its data, `bitcoind.log` (its console) and `regtest/debug.log` in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bitcoind executable in use.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// A bitcoin-cli command line that talks to this bitcoind's miner wallet; append an RPC, e.g. `-generate 1`.
    pub fn cli_command(&self) -> String {
        let sibling = self.exe.with_file_name("bitcoin-cli");
        let cli = if sibling.is_file() { sibling.display().to_string() } else { "bitcoin-cli".into() };
        format!(
            "{cli} -regtest -rpcconnect=127.0.0.1 -rpcport={} -rpcuser={RPC_USER} -rpcpassword={RPC_PASSWORD} -rpcwallet={MINER_WALLET}",
            self.rpc_port
        )
    }

    /// bitcoind's own logs, for failure messages.
    pub fn logs(&self) -> Vec<PathBuf> {
        vec![self.dir.join("bitcoind.log"), self.dir.join("regtest").join("debug.log")]
    }

    async fn wait_for_rpc(&self) {
        let logs = self.logs();
        wait_until_logged(START_TIMEOUT, "bitcoind to answer RPC", &logs, || async {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                panic_exited("bitcoind", status, &logs[0]);
            }
            let rpc = self.rpc.clone();
            tokio::task::spawn_blocking(move || rpc.get_block_count()).await.expect("RPC task panicked")
        })
        .await;
    }
}

fn bitcoind_command(exe: &Path, dir: &Path, rpc_port: u16, p2p_port: u16) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("-regtest")
        .arg(format!("-datadir={}", dir.display()))
        .arg(format!("-rpcport={rpc_port}"))
        .arg(format!("-port={p2p_port}"))
        .arg("-rpcbind=127.0.0.1")
        .arg("-rpcallowip=127.0.0.1")
        .arg(format!("-rpcuser={RPC_USER}"))
        .arg(format!("-rpcpassword={RPC_PASSWORD}"))
        .arg("-fallbackfee=0.0002")
        .arg("-server=1")
        .arg("-txindex=1")
        // No P2P at all: with -listen=0 bitcoind refuses -bind, and it needs no peers on regtest.
        .arg("-listen=0")
        .arg("-printtoconsole=0")
        .arg("-debug=0");
    if has_parasite_filter(exe) {
        // Knots refuses to relay or mine "parasitic overlay protocols", CAT-21 among them: any transaction
        // with nLockTime 21. The miner wallet's anti-fee-sniping picks a lock time up to 100 blocks back one
        // time in ten, so at height 101 about one payment in a thousand got lock time 21, was committed to
        // the wallet, never reached the mempool, and left a test waiting for coins that never came. Tests
        // need every valid transaction relayed and mined, as Bitcoin Core does.
        cmd.arg("-rejectparasites=0");
    }
    cmd
}

/// Whether `exe` (Bitcoin Knots) has the `-rejectparasites` filter; Bitcoin Core refuses the option, so it
/// is only passed when the binary lists it. Asked once per executable.
fn has_parasite_filter(exe: &Path) -> bool {
    static KNOWN: OnceLock<Mutex<std::collections::HashMap<PathBuf, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(has) = known.lock().unwrap_or_else(|e| e.into_inner()).get(exe) {
        return *has;
    }
    let help = Command::new(exe).arg("-help-debug").output().unwrap_or_else(|e| panic!("cannot run {} -help-debug: {e}", exe.display()));
    let has = String::from_utf8_lossy(&help.stdout).contains("-rejectparasites");
    known.lock().unwrap_or_else(|e| e.into_inner()).insert(exe.to_path_buf(), has);
    has
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        terminate_blocking(child, BITCOIND_GRACE);
    }
}

