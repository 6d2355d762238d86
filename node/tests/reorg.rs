//! A reorg undoes what the node saw, in its wallet and in its channels: lanesd follows bitcoind's best
//! chain, handing LDK and the wallet the blocks a reorg disconnects as well as the ones it connects.
use lanes_regtest::Net;

const CAPACITY: u64 = 1_000_000;

/// A payment confirmed in a block that a longer chain then replaces (a chain without the payment) is
/// unconfirmed again on the node, and it confirms again when a later block includes it.
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
    net.reorg(old_block, 2).await;
    assert_eq!(net.tx_confirmations(txid).await, 0, "the payment is back in bitcoind's mempool");
    let (b, i) = (alice.balance().await, alice.info().await);
    assert_eq!((b.confirmed_sat, b.unconfirmed_sat), (0, 500_000), "the payment is unconfirmed again: {b:?}");
    assert_eq!(i.block_height, height + 1);

    // The next block includes it: confirmed again.
    net.mine(1).await;
    alice.wait_confirmed_at_least(500_000).await;
    assert_eq!(alice.info().await.block_height, height + 2);
    assert_eq!(net.tx_confirmations(txid).await, 1);
}

/// A channel whose funding transaction a reorg takes out of the chain before the channel is ready counts
/// its confirmations again on the new chain: it opens once the funding is 6 blocks deep there, not 6
/// blocks after the replaced block, and nothing is closed on the way.
#[tokio::test]
async fn a_channel_whose_funding_is_reorged_out_counts_its_confirmations_on_the_new_chain() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    alice.fund(2 * CAPACITY).await;
    alice.connect(&bob).await;
    let channel_id = alice.open_channel(&bob, CAPACITY).await;
    let funding_block = net.mine(3).await[0];
    let before = alice.channel(&channel_id).await.expect("the pending channel");
    assert_eq!((before.pending, before.confirmations, before.confirmations_required), (true, 3, 6), "{before:?}");

    // Four empty blocks replace the three: the funding transaction is unconfirmed again.
    net.reorg(funding_block, 4).await;
    assert_eq!(net.tx_confirmations(before.funding_txid.parse().unwrap()).await, 0, "the funding is back in the mempool");
    for n in [&alice, &bob] {
        let c = n.channel(&channel_id).await.expect("still there, pending");
        assert_eq!((c.pending, c.active, c.confirmations), (true, false, 0), "{}: {c:?}", n.name());
    }

    // Confirmed again, two blocks deep. Had the nodes missed the disconnected blocks they would count
    // from the replaced one, six deep by now, and open the channel.
    net.mine(2).await;
    for n in [&alice, &bob] {
        let c = n.channel(&channel_id).await.expect("the pending channel");
        assert_eq!((c.pending, c.active, c.confirmations), (true, false, 2), "{}: {c:?}", n.name());
    }

    // Four blocks more: six deep on the new chain, and the channel opens with its whole capacity.
    net.mine(4).await;
    let opened = alice.wait_channel_active(&channel_id).await;
    bob.wait_channel_active(&channel_id).await;
    assert_eq!(opened.funding_txid, before.funding_txid);
    assert_eq!(opened.local_balance_msat + opened.remote_balance_msat, CAPACITY * 1000);
    for n in [&alice, &bob] {
        assert!(n.closed_channels().await.is_empty(), "{}: nothing closed", n.name());
    }
}
