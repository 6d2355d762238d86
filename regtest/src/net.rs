//! A regtest network: one bitcoind and the lanesd nodes started on it, in one temporary directory.
//!
//! Owns the temporary directory (kept with `LANES_KEEP_TMP=1` or when a test panics), finding the lanesd
//! executable, naming and starting nodes, and the bitcoind helpers tests use (mine, pay, look up). Mining
//! waits until every running node has seen the new blocks. It must never start anything outside its
//! directory or on anything but 127.0.0.1, and never outlive its processes: dropping the last `Net`/`Node`
//! handle stops nodes first, then bitcoind.
use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};

use bitcoin::{Address, Amount, BlockHash, Network, Transaction, Txid};
use bitcoincore_rpc::{Client, RpcApi};

use crate::bitcoind::Bitcoind;
use crate::node::{Node, NodeInner, NodeOptions};
use crate::postgres::Postgres;
use crate::process::free_port;

/// Environment variable naming the lanesd executable, for [`Net::start`].
pub const LANESD_EXE_ENV: &str = "LANESD_EXE";
/// Environment variable that keeps the temporary directory when set to `1`.
pub const KEEP_TMP_ENV: &str = "LANES_KEEP_TMP";
/// Environment variable that, set to `postgres`, puts every node a story starts with [`Net::node`] (and
/// the other constructors that do not choose a store) on the net's PostgreSQL server instead of sled: any
/// story can then be run against PostgreSQL, e.g. `LANES_TEST_STORE=postgres cargo test -p lanes-node
/// --test channels`.
pub const TEST_STORE_ENV: &str = "LANES_TEST_STORE";
/// A test binary whose name starts with this runs its stories on PostgreSQL as [`TEST_STORE_ENV`] does:
/// `node/tests/on_postgres.rs` includes representative stories of other files, so `cargo test --workspace`
/// runs them on both stores.
pub const ON_POSTGRES_TEST_BINARY: &str = "on_postgres-";

/// Whether this story's nodes go on PostgreSQL (see [`TEST_STORE_ENV`] and [`ON_POSTGRES_TEST_BINARY`]).
fn stories_on_postgres() -> bool {
    let binary = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    std::env::var(TEST_STORE_ENV).is_ok_and(|v| v == "postgres") || binary.is_some_and(|n| n.starts_with(ON_POSTGRES_TEST_BINARY))
}

/// A running regtest network. See the crate docs for a walk through.
pub struct Net {
    pub(crate) shared: Arc<Shared>,
}

/// What a `Net` and its nodes share. Fields drop in order: bitcoind stops before the directory goes.
pub(crate) struct Shared {
    pub(crate) bitcoind: Bitcoind,
    /// A PostgreSQL server, started the first time a story asks for it ([`Net::postgres`]).
    postgres: tokio::sync::OnceCell<Postgres>,
    lanesd_exe: Option<PathBuf>,
    nodes: Mutex<Vec<Weak<NodeInner>>>,
    root: PathBuf,
    tmp: tempfile::TempDir,
}

impl Net {
    /// Starts bitcoind (mining 101 blocks to its miner wallet). Nodes run the lanesd named by `LANESD_EXE`, or
    /// else the `lanesd` next to the running executable (`target/debug/lanesd` for `target/debug/lanes-regtest`
    /// and for test binaries in `target/debug/deps/`).
    pub async fn start() -> Net {
        Net::start_inner(None).await
    }

    /// Starts bitcoind; nodes run the given lanesd (tests pass `env!("CARGO_BIN_EXE_lanesd")`).
    pub async fn start_with(lanesd_exe: impl Into<PathBuf>) -> Net {
        Net::start_inner(Some(lanesd_exe.into())).await
    }

    async fn start_inner(lanesd_exe: Option<PathBuf>) -> Net {
        let tmp = tempfile::Builder::new().prefix("lanes-regtest-").tempdir().expect("cannot create a temporary directory");
        let root = tmp.path().to_path_buf();
        let bitcoind = Bitcoind::start(root.join("bitcoind")).await;
        Net { shared: Arc::new(Shared { bitcoind, postgres: tokio::sync::OnceCell::new(), lanesd_exe, nodes: Mutex::new(Vec::new()), root, tmp }) }
    }

    /// Starts a lanesd node called `name` (its data dir is `<net dir>/<name>`), and waits until it answers and
    /// has synced to the chain.
    pub async fn node(&self, name: &str) -> Node {
        self.node_inner(name, &NodeOptions::default()).await
    }

    /// Like [`Net::node`], with extra lanesd flags (kept across restarts), e.g. `&["--forward-to-private-channels", "false"]`.
    pub async fn node_with(&self, name: &str, args: &[&str]) -> Node {
        self.node_inner(name, &NodeOptions { args: args.iter().map(|a| a.to_string()).collect(), ..Default::default() }).await
    }

    /// [`node`](Net::node), with extra environment variables for lanesd, kept across restarts: the
    /// test-only knobs of `lanes_channel::test_knobs` (e.g. dropping an announcement_signatures).
    pub async fn node_with_env(&self, name: &str, env: &[(&str, &str)]) -> Node {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.node_inner(name, &NodeOptions { env, ..Default::default() }).await
    }

    /// The net's PostgreSQL server (Debian's, on a free 127.0.0.1 port, log in the net's dir), started on
    /// first use and stopped with the net.
    pub async fn postgres(&self) -> &Postgres {
        self.shared.postgres.get_or_init(|| Postgres::start(&self.shared.root)).await
    }

    /// Like [`Net::node`], on the PostgreSQL store: a database of the net's server named for the node, the
    /// password from a file (`--db <dsn> --db-password-file <file>`, kept across restarts), plus `args`.
    pub async fn node_on_postgres(&self, name: &str, args: &[&str]) -> Node {
        let pg = self.postgres().await;
        let dsn = pg.create_database(name).await;
        let mut all = vec!["--db".to_string(), dsn, "--db-password-file".into(), pg.password_file().display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        self.node_inner(name, &NodeOptions { args: all, ..Default::default() }).await
    }

    /// Like [`Net::node_on_postgres`], with the database reached through `proxy` (see [`Net::postgres_proxy`]),
    /// which a story can cut to isolate this node from its database.
    pub async fn node_on_postgres_through(&self, name: &str, proxy: &crate::Proxy) -> Node {
        let pg = self.postgres().await;
        pg.create_database(name).await;
        let dsn = format!("postgres://{}@127.0.0.1:{}/{name}", crate::POSTGRES_USER, proxy.port());
        let args = vec!["--db".to_string(), dsn, "--db-password-file".into(), pg.password_file().display().to_string()];
        self.node_inner(name, &NodeOptions { args, ..Default::default() }).await
    }

    /// A proxy to the net's PostgreSQL server (started if need be), for partition stories.
    pub async fn postgres_proxy(&self) -> crate::Proxy {
        crate::Proxy::start(self.postgres().await.port()).await
    }

    /// Like [`Net::node_with`], for a node expected to refuse to start (a bad setting, a store that is not
    /// its own): starts it, waits for it to exit, and returns it with how it exited.
    pub async fn node_refusing_to_start(&self, name: &str, args: &[&str]) -> (Node, std::process::ExitStatus) {
        let dir = self.shared.root.join(name);
        assert!(!dir.exists(), "a node called {name} already exists in this net");
        std::fs::create_dir_all(&dir).expect("cannot create the node's data dir");
        let opts = NodeOptions { args: args.iter().map(|a| a.to_string()).collect(), ..Default::default() };
        let node = Node::new(self.shared.clone(), name, dir, self.shared.lanesd_exe(), free_port(), free_port(), opts);
        self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).push(node.downgrade());
        let status = node.start_expecting_exit(crate::START_TIMEOUT).await;
        (node, status)
    }

    /// A second instance of `active` (a node on PostgreSQL): the same seed and the same database (reached
    /// directly), its own data dir and API port, and `active`'s P2P port (which it only binds once it has
    /// taken over, as a standby behind one public address would). Started, and answering as a standby.
    pub async fn standby_of(&self, active: &Node, name: &str) -> Node {
        let dir = self.shared.root.join(name);
        assert!(!dir.exists(), "a node called {name} already exists in this net");
        std::fs::create_dir_all(&dir).expect("cannot create the node's data dir");
        let seed = lanes_store::layout::seed_path(&dir);
        std::fs::copy(active.seed_path(), &seed).expect("cannot copy the active instance's seed");
        let pg = self.postgres().await;
        let args = vec!["--db".to_string(), pg.dsn(active.name()), "--db-password-file".into(), pg.password_file().display().to_string()];
        let node = Node::new(self.shared.clone(), name, dir, self.shared.lanesd_exe(), active.p2p_addr().port(), free_port(), NodeOptions { args, ..Default::default() });
        self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).push(node.downgrade());
        node.start_standby().await;
        node
    }

    /// Like [`Net::node`], with lanesd's open-file limit (soft and hard) set to `limit`.
    pub async fn node_with_fd_limit(&self, name: &str, limit: u64) -> Node {
        self.node_inner(name, &NodeOptions { fd_limit: Some(limit), ..Default::default() }).await
    }

    /// Like [`Net::node`], with the data dir on a tmpfs of `bytes` (mounted by the harness, which must run as
    /// root; unmounted when the node goes): a small disk that a story can fill.
    pub async fn node_on_small_disk(&self, name: &str, bytes: u64) -> Node {
        self.node_inner(name, &NodeOptions { tmpfs_bytes: Some(bytes), ..Default::default() }).await
    }

    async fn node_inner(&self, name: &str, opts: &NodeOptions) -> Node {
        let mut opts = opts.clone();
        if stories_on_postgres() && !opts.args.iter().any(|a| a == "--db") && opts.tmpfs_bytes.is_none() {
            let pg = self.postgres().await;
            opts.args.extend(["--db".to_string(), pg.create_database(name).await, "--db-password-file".into(), pg.password_file().display().to_string()]);
        }
        let opts = &opts;
        let dir = self.shared.root.join(name);
        assert!(!dir.exists(), "a node called {name} already exists in this net");
        std::fs::create_dir_all(&dir).expect("cannot create the node's data dir");
        if let Some(bytes) = opts.tmpfs_bytes {
            let out = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0700"), "tmpfs"])
                .arg(&dir)
                .output()
                .expect("cannot run mount");
            assert!(out.status.success(), "cannot mount a tmpfs at {} (the harness must run as root): {}", dir.display(), String::from_utf8_lossy(&out.stderr));
        }
        let node = Node::new(self.shared.clone(), name, dir, self.shared.lanesd_exe(), free_port(), free_port(), opts.clone());
        self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner()).push(node.downgrade());
        node.start().await;
        node
    }

    /// Every node of this net that still has a handle somewhere (running or not).
    pub fn nodes(&self) -> Vec<Node> {
        self.shared.nodes()
    }

    /// Mines `n` blocks and waits until every running node reports the new height and `synced_to_chain`.
    pub async fn mine(&self, n: u64) -> Vec<BlockHash> {
        self.shared.mine(n).await
    }

    /// Mines `n` blocks that include no transaction (what is in the mempool stays there: a fee too low
    /// to get in, as far as the nodes can tell) and waits until every running node has seen them.
    pub async fn mine_empty(&self, n: u64) -> Vec<BlockHash> {
        let hashes = self.shared.mine_empty(n).await;
        self.shared.wait_synced().await;
        hashes
    }

    /// Mines `n` blocks and returns at once, without waiting for the nodes: for stories that kill or
    /// restart a node meanwhile (a node catches up with the chain when it starts).
    pub async fn mine_without_waiting(&self, n: u64) -> Vec<BlockHash> {
        self.shared.bitcoind.mine(n).await
    }

    /// A reorg: replaces `block` and every block after it with `n` empty blocks (`n` more than were
    /// replaced makes the new chain the longer one), then waits until every running node reports the new
    /// tip and `synced_to_chain`. The replaced blocks' transactions go back to bitcoind's mempool, so the
    /// next [`mine`](Net::mine) confirms them again. Returns the new tip.
    pub async fn reorg(&self, block: BlockHash, n: u64) -> BlockHash {
        self.shared.bitcoind.call(&format!("invalidateblock {block}"), move |rpc| rpc.invalidate_block(&block)).await;
        let tip = self.shared.mine_empty(n).await.pop().unwrap_or(block);
        for node in self.nodes().iter().filter(|node| node.is_running() && !node.is_standby()) {
            node.wait_until(format!("the node on the new tip {tip}"), || async {
                let info = node.info().await;
                match info.synced_to_chain && info.block_hash == tip.to_string() {
                    true => Ok(()),
                    false => Err(format!("at height {} ({}), synced_to_chain={}", info.block_height, info.block_hash, info.synced_to_chain)),
                }
            })
            .await;
        }
        tip
    }

    /// The miner wallet takes back its payment `txid`, confirmed in `block`: a reorg returns it to the
    /// mempool, a transaction spending the same coins to the miner wallet (with a higher fee) replaces it
    /// and everything spending it, and `n` blocks (more than were replaced) confirm the replacement. Waits
    /// until every running node is synced to the new tip; returns the replacement's txid.
    pub async fn take_back(&self, txid: Txid, block: BlockHash, n: u64) -> Txid {
        let paid = self.transaction(txid).await;
        let spent = self.spent_sat(&paid).await;
        self.shared.bitcoind.call(&format!("invalidateblock {block}"), move |rpc| rpc.invalidate_block(&block)).await;
        let to = self.new_address().await;
        let replacement = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: paid
                .input
                .iter()
                .map(|i| bitcoin::TxIn { previous_output: i.previous_output, sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME, ..Default::default() })
                .collect(),
            // 50,000 sat of fee: well above what the payment and its children paid together.
            output: vec![bitcoin::TxOut { value: Amount::from_sat(spent - 50_000), script_pubkey: to.script_pubkey() }],
        };
        let signed = self
            .shared
            .bitcoind
            .call("signrawtransactionwithwallet", move |rpc| rpc.sign_raw_transaction_with_wallet(&replacement, None, None))
            .await;
        assert!(signed.complete, "the miner wallet signs its own coins: {:?}", signed.errors);
        let hex = signed.hex;
        let replaced = self.shared.bitcoind.call("sendrawtransaction (the replacement)", move |rpc| rpc.send_raw_transaction(&hex[..])).await;
        self.mine(n).await;
        assert!(self.tx_confirmations(replaced).await >= 1, "the replacement confirmed");
        replaced
    }

    /// The height of bitcoind's best block.
    pub async fn height(&self) -> u64 {
        self.shared.bitcoind.height().await
    }

    /// Pays `sat` from the miner wallet to `address` (a regtest address); returns the txid. Mines nothing.
    pub async fn send_to_address(&self, address: impl Display, sat: u64) -> Txid {
        self.shared.send_to_address(address, sat).await
    }

    /// A fresh native segwit address of the miner wallet.
    pub async fn new_address(&self) -> Address {
        self.shared.bitcoind.new_address().await
    }

    /// What the miner wallet has received on `address` in transactions with at least one confirmation, in sat.
    pub async fn get_received(&self, address: impl Display) -> u64 {
        let address = regtest_address(address);
        let amount = self.shared.bitcoind.call("getreceivedbyaddress", move |rpc| rpc.get_received_by_address(&address, Some(1))).await;
        amount.to_sat()
    }

    /// How many confirmations a transaction has (0 while in the mempool). bitcoind runs with `-txindex`, so
    /// this works for any transaction; panics if bitcoind does not know it at all.
    pub async fn tx_confirmations(&self, txid: Txid) -> u32 {
        self.shared.tx_confirmations(txid).await
    }

    /// Whether bitcoind has `txid`, in its mempool or (with `-txindex`) in a block.
    pub async fn knows_transaction(&self, txid: Txid) -> bool {
        let rpc = self.shared.bitcoind.rpc_handle();
        tokio::task::spawn_blocking(move || rpc.get_raw_transaction_info(&txid, None).is_ok()).await.unwrap_or(false)
    }

    /// A transaction bitcoind knows (in the mempool or, with `-txindex`, in any block); panics if it does not.
    pub async fn transaction(&self, txid: Txid) -> Transaction {
        self.shared.bitcoind.call(&format!("getrawtransaction {txid}"), move |rpc| rpc.get_raw_transaction(&txid, None)).await
    }

    /// The fee `tx` pays: what its inputs spend minus what its outputs pay, in sat.
    pub async fn fee_sat(&self, tx: &Transaction) -> u64 {
        self.spent_sat(tx).await - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
    }

    /// What `tx`'s inputs spend, in sat.
    async fn spent_sat(&self, tx: &Transaction) -> u64 {
        let mut spent = 0;
        for input in &tx.input {
            let prev = self.transaction(input.previous_output.txid).await;
            spent += prev.output[input.previous_output.vout as usize].value.to_sat();
        }
        spent
    }

    /// The transactions in bitcoind's mempool.
    pub async fn mempool(&self) -> Vec<Txid> {
        self.shared.mempool().await
    }

    /// The blocking RPC client (miner wallet endpoint), for anything the helpers do not cover.
    pub fn rpc(&self) -> &Client {
        self.shared.bitcoind.rpc()
    }

    /// The bitcoind of this net (ports, logs, a bitcoin-cli command line).
    pub fn bitcoind(&self) -> &Bitcoind {
        &self.shared.bitcoind
    }

    /// The temporary directory holding bitcoind's and every node's data.
    pub fn dir(&self) -> &Path {
        &self.shared.root
    }
}

impl Shared {
    /// The net's temporary directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn nodes(&self) -> Vec<Node> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.iter().filter_map(Weak::upgrade).map(Node::from_inner).collect()
    }

    pub(crate) async fn mine(&self, n: u64) -> Vec<BlockHash> {
        let hashes = self.bitcoind.mine(n).await;
        self.wait_synced().await;
        hashes
    }

    /// The PostgreSQL server, if started.
    pub(crate) fn postgres(&self) -> Option<&Postgres> {
        self.postgres.get()
    }

    async fn wait_synced(&self) {
        for node in self.nodes().iter().filter(|node| node.is_running() && !node.is_standby()) {
            node.wait_synced().await;
        }
    }

    /// Mines `n` empty blocks (generateblock with no transaction); waits for no node.
    async fn mine_empty(&self, n: u64) -> Vec<BlockHash> {
        let miner = self.bitcoind.new_address().await.to_string();
        let mut hashes = Vec::new();
        for _ in 0..n {
            let miner = miner.clone();
            let made: serde_json::Value =
                self.bitcoind.call("generateblock (empty)", move |rpc| rpc.call("generateblock", &[miner.into(), serde_json::json!([])])).await;
            hashes.push(made["hash"].as_str().and_then(|h| h.parse().ok()).unwrap_or_else(|| panic!("generateblock returned {made}")));
        }
        hashes
    }

    pub(crate) async fn mempool(&self) -> Vec<Txid> {
        self.bitcoind.call("getrawmempool", |rpc| rpc.get_raw_mempool()).await
    }

    /// See [`Net::tx_confirmations`].
    pub(crate) async fn tx_confirmations(&self, txid: Txid) -> u32 {
        let tx: serde_json::Value =
            self.bitcoind.call(&format!("getrawtransaction {txid}"), move |rpc| rpc.call("getrawtransaction", &[txid.to_string().into(), true.into()])).await;
        tx.get("confirmations").and_then(|c| c.as_u64()).unwrap_or(0) as u32
    }

    pub(crate) async fn send_to_address(&self, address: impl Display, sat: u64) -> Txid {
        let address = regtest_address(address);
        let what = format!("sendtoaddress {address} {sat} sat");
        let txid = self
            .bitcoind
            .call(&what, move |rpc| rpc.send_to_address(&address, Amount::from_sat(sat), None, None, None, None, None, None))
            .await;
        // bitcoind's wallet keeps a payment its mempool refused and still answers with its txid (Knots says
        // why only in its debug.log): a payment that never gets mined must fail here, not as a node that
        // waits for coins.
        let in_mempool: bool = self.bitcoind.call("getmempoolentry", move |rpc| Ok(rpc.get_mempool_entry(&txid).is_ok())).await;
        assert!(in_mempool, "{what}: bitcoind's wallet made {txid} but its mempool does not have it (see {})", self.bitcoind.logs()[1].display());
        txid
    }

    fn lanesd_exe(&self) -> PathBuf {
        let exe = match &self.lanesd_exe {
            Some(exe) => exe.clone(),
            None => find_lanesd(),
        };
        assert!(exe.is_file(), "lanesd not found at {} (build it: cargo build -p lanes-node --bins)", exe.display());
        exe
    }
}

/// `LANESD_EXE`, else `lanesd` next to the running executable or one directory up (from `deps/`).
fn find_lanesd() -> PathBuf {
    if let Some(exe) = std::env::var_os(LANESD_EXE_ENV) {
        return PathBuf::from(exe);
    }
    let current = std::env::current_exe().expect("cannot find the running executable");
    let dir = current.parent().expect("the executable has a directory");
    let candidates = [dir.join("lanesd"), dir.join("../lanesd")];
    let found = candidates.iter().find(|c| c.is_file()).unwrap_or(&candidates[0]);
    found.canonicalize().unwrap_or_else(|_| found.clone())
}

fn regtest_address(address: impl Display) -> Address {
    let text = address.to_string();
    Address::from_str(&text)
        .unwrap_or_else(|e| panic!("not an address: {text:?}: {e}"))
        .require_network(Network::Regtest)
        .unwrap_or_else(|e| panic!("not a regtest address: {text:?}: {e}"))
}

impl Drop for Shared {
    fn drop(&mut self) {
        let keep = std::env::var(KEEP_TMP_ENV).is_ok_and(|v| v == "1");
        if keep || std::thread::panicking() {
            self.tmp.disable_cleanup(true);
            // Never panics (a closed stderr must not abort a harness that is cleaning up).
            let _ = writeln!(std::io::stderr(), "lanes-regtest: kept {} (bitcoind in bitcoind/, each node in <name>/, logs: lanesd.log)", self.root.display());
        }
    }
}
