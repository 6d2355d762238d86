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
