//! The bitcoind half of the harness, for real: no lanesd involved.
use lanes_regtest::{Net, RpcApi};

#[tokio::test]
async fn bitcoind_mines_pays_and_confirms() {
    let net = Net::start().await;
    assert_eq!(net.height().await, 101, "the miner wallet starts with 101 blocks");

    let to = net.new_address().await;
    let txid = net.send_to_address(&to, 50_000).await;
    assert_eq!(net.tx_confirmations(txid).await, 0, "a payment waits in the mempool until a block is mined");
    assert!(net.mempool().await.contains(&txid));
    assert_eq!(net.get_received(&to).await, 0, "unconfirmed receipts are not counted");

    net.mine(3).await;
    assert_eq!(net.height().await, 104);
    assert_eq!(net.tx_confirmations(txid).await, 3);
    assert_eq!(net.get_received(&to).await, 50_000);
    assert!(net.mempool().await.is_empty());

    // The raw client is there for anything else, on the miner wallet's endpoint.
    let wallets = net.rpc().list_wallets().expect("listwallets");
    assert_eq!(wallets, vec![lanes_regtest::MINER_WALLET.to_string()]);
    assert!(net.bitcoind().cli_command().contains(&format!("-rpcport={}", net.bitcoind().rpc_port())));
}

#[tokio::test]
async fn two_nets_run_side_by_side_and_clean_up() {
    let (a, b) = tokio::join!(Net::start(), Net::start());
    assert_ne!(a.bitcoind().rpc_port(), b.bitcoind().rpc_port());
    a.mine(1).await;
    assert_eq!((a.height().await, b.height().await), (102, 101), "each net has its own chain");

    let dir = a.dir().to_path_buf();
    drop(a);
    assert!(!dir.exists() || std::env::var("LANES_KEEP_TMP").is_ok_and(|v| v == "1"), "dropping a net removes its directory");
}

/// The harness's bitcoind relays and mines every valid transaction. Knots' parasite filter refused any with
/// nLockTime 21 (CAT-21), and the miner wallet's anti-fee-sniping gives about one payment in a thousand that
/// lock time at height 101: a test then waited for coins that never came (stop 24's CI).
#[tokio::test]
async fn a_transaction_with_lock_time_21_is_relayed_and_mined() {
    let net = Net::start().await;
    let to = net.new_address().await.to_string();
    let rpc = net.rpc();
    let outputs = serde_json::json!([{ to: 0.001 }]);
    let raw: String = rpc.call("createrawtransaction", &[serde_json::json!([]), outputs, 21.into()]).expect("createrawtransaction");
    let funded: serde_json::Value = rpc.call("fundrawtransaction", &[raw.into()]).expect("fundrawtransaction");
    let signed: serde_json::Value = rpc.call("signrawtransactionwithwallet", &[funded["hex"].clone()]).expect("signrawtransactionwithwallet");
    let decoded: serde_json::Value = rpc.call("decoderawtransaction", &[signed["hex"].clone()]).expect("decoderawtransaction");
    assert_eq!(decoded["locktime"], 21, "the transaction under test: {decoded}");
    let sent: Result<lanes_regtest::bitcoin::Txid, _> = rpc.call("sendrawtransaction", &[signed["hex"].clone()]);
    let txid = sent.unwrap_or_else(|e| panic!("bitcoind refused a valid transaction with nLockTime 21: {e}"));
    net.mine(1).await;
    assert_eq!(net.tx_confirmations(txid).await, 1, "mined in the next block");
}
