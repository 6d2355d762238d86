//! Transactions the node depends on reach the chain even when their first broadcast did not: bitcoind
//! down while a channel is funded, and lanesd killed before it could try again.
use lanes_regtest::bitcoin::Txid;
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};

const WALLET: u64 = 1_000_000;
const CAPACITY: u64 = 400_000;

/// Opens a channel while bitcoind is down: OpenChannel answers, the broadcast is refused (a WARN line with
/// the funding txid), and the funding is not in any mempool. Returns the channel id and funding txid.
async fn open_while_bitcoind_is_down(net: &Net, funder: &Node, peer: &Node) -> (String, Txid) {
    net.bitcoind().pause().await;
    open_with_bitcoind_down(funder, peer).await
}

/// [`open_while_bitcoind_is_down`], with bitcoind already down.
async fn open_with_bitcoind_down(funder: &Node, peer: &Node) -> (String, Txid) {
    let opened = funder
        .client()
        .open_channel(OpenChannelRequest { node_id: peer.node_id(), local_funding_sat: CAPACITY, ..Default::default() })
        .await
        .expect("OpenChannel answers while bitcoind is down: the peer signs, the broadcast waits")
        .into_inner();
    let txid: Txid = opened.funding_txid.parse().expect("a funding txid");
    funder.wait_log_line(&["broadcast not accepted", &txid.to_string()]).await;
    (opened.channel_id, txid)
}

/// Waits until bitcoind has `txid`, in its mempool or already in a block (a re-broadcast may beat a block we mine).
async fn wait_sent(net: &Net, node: &Node, txid: Txid) {
    node.wait_until(format!("funding {txid} in bitcoind's mempool or a block"), || net.knows_transaction(txid)).await;
}

#[tokio::test]
async fn a_funding_whose_broadcast_failed_is_sent_again_and_its_coins_stay_spent() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node("bob").await;
    alice.fund(WALLET).await;
    bob.fund(WALLET).await;
    alice.connect(&bob).await;

    // bitcoind goes down while alice funds a channel, and alice is killed before it is back: the only
    // broadcast attempt failed, and the process that made it is gone.
    let (ab, ab_funding) = open_while_bitcoind_is_down(&net, &alice, &bob).await;
    alice.kill().await;
    net.bitcoind().resume().await;
    alice.start().await;

    // After the restart the wallet still counts the funding's coins as spent (they must never pay anything
    // else), and the funding is sent again without waiting for a block.
    let b = alice.balance().await;
    assert!(b.total_sat <= WALLET - CAPACITY, "alice's wallet counts the funding's inputs as spendable again: {b:?}");
    wait_sent(&net, &alice, ab_funding).await;
    alice.wait_log_line(&["transaction broadcast", &ab_funding.to_string()]).await;
    net.mine(6).await;
    alice.wait_channel_active(&ab).await;
    bob.wait_channel_active(&ab).await;
    assert_eq!(net.tx_confirmations(ab_funding).await, 6);

    // Without a restart: bob funds a channel while bitcoind is down; once it is back, the next block has
    // bob send the funding again, and the channel opens.
    let (ba, ba_funding) = open_while_bitcoind_is_down(&net, &bob, &alice).await;
    net.bitcoind().resume().await;
    net.mine(1).await;
    wait_sent(&net, &bob, ba_funding).await;
    net.mine(6).await;
    bob.wait_channel_active(&ba).await;
    alice.wait_channel_active(&ba).await;

    // Both channels carry payments, and each funder's wallet paid exactly one funding.
    let inv = bob.add_invoice(10_000_000, "after the outage").await;
    let paid = alice.pay_invoice(&inv.bolt11).await.expect("pay");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    for (n, funding) in [(&alice, ab_funding), (&bob, ba_funding)] {
        let fee = net.fee_sat(&net.transaction(funding).await).await;
        let b = n.balance().await;
        assert_eq!(b.total_sat, WALLET - CAPACITY - fee, "{}: {b:?}", n.name());
    }
}

/// With bitcoind down, a round of re-broadcasts gives up at the first transaction it cannot send, with one
/// WARN line saying how many wait: LDK's RPC client takes 100 ms to give up on each, and a round of 155 (a
/// node that had just funded many channels) made a SIGTERM wait 16 s, one WARN line per transaction. Once
/// bitcoind is back, the next round sends them all and the channels open.
#[tokio::test]
async fn with_bitcoind_down_a_round_of_rebroadcasts_gives_up_at_the_first_transaction() {
    const CHANNELS: usize = 3;
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    // Rounds every second instead of every minute without a block (bitcoind makes none while it is down).
    let alice = net.node_with_env("alice", &[("LANES_TEST_REBROADCAST_EVERY_SECS", "1")]).await;
    let bob = net.node("bob").await;
    for _ in 0..CHANNELS {
        alice.fund(WALLET).await;
    }
    alice.connect(&bob).await;

    net.bitcoind().pause().await;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(open_with_bitcoind_down(&alice, &bob).await);
    }
    alice.wait_log_line(&["bitcoind unreachable: journaled transactions are re-sent at the next round", &format!("waiting={CHANNELS}")]).await;
    let log = std::fs::read_to_string(alice.log_path()).expect("alice's log");
    for (_, txid) in &channels {
        let lines = log.lines().filter(|l| l.contains("broadcast not accepted") && l.contains(&txid.to_string())).count();
        assert_eq!(lines, 1, "{txid}: one WARN line, for its first broadcast; the rounds since stopped before it");
    }

    net.bitcoind().resume().await;
    for (_, txid) in &channels {
        wait_sent(&net, &alice, *txid).await;
    }
    net.mine(6).await;
    for (id, _) in &channels {
        alice.wait_channel_active(id).await;
    }
}
