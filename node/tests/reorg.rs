//! A reorg undoes what the node saw. A payment confirmed in a block that a longer chain then replaces
//! (a chain without the payment) is unconfirmed again on the node, which follows the new best chain, and
//! it confirms again when a later block includes it.
use lanes_regtest::{Net, RpcApi};
use serde_json::{json, Value};

#[tokio::test]
async fn a_reorg_unconfirms_and_the_new_chain_confirms_again() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let address = alice.new_address().await;
    let txid = net.send_to_address(&address, 500_000).await;
    let old_block = net.mine(1).await[0];
    alice.wait_confirmed_at_least(500_000).await;
    let height = alice.info().await.block_height;

    // Replace that block with a longer chain of two blocks that leave the payment out.
    net.rpc().invalidate_block(&old_block).expect("invalidateblock");
    let miner = net.new_address().await.to_string();
    let mut new_tip = String::new();
    for _ in 0..2 {
        let b: Value = net.rpc().call("generateblock", &[json!(miner), json!([])]).expect("generateblock");
        new_tip = b["hash"].as_str().unwrap().to_string();
    }
    assert_eq!(net.tx_confirmations(txid).await, 0, "the payment is back in bitcoind's mempool");
    alice
        .wait_until("the node on the new chain, the payment unconfirmed again", || async {
            let (b, i) = (alice.balance().await, alice.info().await);
            match (b.confirmed_sat, b.unconfirmed_sat, i.block_height, i.block_hash == new_tip) {
                (0, 500_000, h, true) if h == height + 1 => Ok(()),
                seen => Err(format!("confirmed, unconfirmed, height, on the new tip = {seen:?}")),
            }
        })
        .await;

    // The next block includes it: confirmed again.
    net.mine(1).await;
    alice.wait_confirmed_at_least(500_000).await;
    assert_eq!(alice.info().await.block_height, height + 2);
    assert_eq!(net.tx_confirmations(txid).await, 1);
}
