//! Zero-conf channels: a node accepts channels from the peers it lists as trusted
//! (`--trusted-peer-0conf`) as usable at once, before the funding transaction confirms; from anyone else a
//! channel waits for its confirmations as before. The funder trusts its own funding.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};

async fn channel(n: &Node, id: &str) -> Channel {
    n.channel(id).await.unwrap_or_else(|| panic!("{} has no channel {id}", n.name()))
}

#[tokio::test]
async fn a_trusted_peers_channel_carries_payments_before_its_funding_confirms() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--trusted-peer-0conf", &alice.node_id()]).await;
    let carol = net.node("carol").await;
    alice.fund(600_000).await;
    alice.fund(600_000).await;
    alice.connect(&bob).await;
    alice.connect(&carol).await;
    let height = net.height().await;

    let trusted = alice.open_channel(&bob, 500_000).await;
    let untrusted = alice.open_channel(&carol, 500_000).await;
    let funding = channel(&alice, &trusted).await.funding_txid;

    // No block yet: bob's channel is usable on both sides and carries payments both ways.
    alice.wait_channel_active(&trusted).await;
    bob.wait_channel_active(&trusted).await;
    let paid = alice.keysend(&bob, 100_000_000).await.expect("keysend over the zero-conf channel");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    let back = bob.keysend(&alice, 40_000_000).await.expect("and back");
    assert_eq!(back.status, PaymentStatus::Succeeded as i32, "{back:?}");
    assert_eq!(channel(&bob, &trusted).await.local_balance_msat, 60_000_000, "bob holds what he was paid, to the msat");
    assert_eq!(net.height().await, height, "no block was mined");
    assert_eq!(net.tx_confirmations(funding.parse().unwrap()).await, 0, "the funding is still unconfirmed");
    // carol does not trust alice: her channel waits for its confirmations.
    assert!(!channel(&alice, &untrusted).await.active, "an untrusted peer's channel is not usable unconfirmed");
    assert!(!channel(&carol, &untrusted).await.active);
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    assert!(log.lines().any(|l| l.contains("inbound channel accepted") && l.contains("zero_conf=true")), "bob logs the zero-conf accept");

    // Once confirmed, both channels are ordinary channels; the zero-conf one kept its balances.
    net.mine(6).await;
    alice.wait_channel_active(&untrusted).await;
    carol.wait_channel_active(&untrusted).await;
    let again = alice.keysend(&bob, 1_000_000).await.expect("keysend after confirmation");
    assert_eq!(again.status, PaymentStatus::Succeeded as i32, "{again:?}");
    assert_eq!(channel(&bob, &trusted).await.local_balance_msat, 61_000_000);
    assert!(alice.closed_channels().await.is_empty() && bob.closed_channels().await.is_empty());

    // A funder may ask for zero-conf (OpenChannel.zero_conf, as LND's): carol, who does not trust alice, asks for
    // confirmations, and the open fails before anything is funded.
    let (wallet, mempool) = (alice.balance().await, net.mempool().await);
    let req = OpenChannelRequest { node_id: carol.node_id(), local_funding_sat: 50_000, zero_conf: true, ..Default::default() };
    let refused = alice.client().open_channel(req).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("not as zero-conf"), "{refused:?}");
    assert_eq!((alice.balance().await, net.mempool().await), (wallet, mempool), "nothing was funded or broadcast");
    assert_eq!(alice.channels().await.len(), 2, "no third channel is left behind");
    // bob trusts alice: the zero-conf channel is usable at once.
    let zero_conf = alice.open_channel_with(&bob, OpenChannelRequest { local_funding_sat: 50_000, zero_conf: true, ..Default::default() }).await;
    alice.wait_channel_active(&zero_conf).await;
    assert_eq!(channel(&alice, &zero_conf).await.confirmations, 0);
}

/// A trusted funder's coins are taken back (its sender reorgs its payment out and double-spends it), so the
/// zero-conf channel's funding can never confirm. LDK keeps such a channel open for ever; lanes closes it once
/// the double spend is 3 blocks deep, broadcasts nothing for it, and says what each side lost.
#[tokio::test]
async fn a_zero_conf_channel_whose_funding_is_double_spent_is_closed_with_its_loss_counted() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--trusted-peer-0conf", &alice.node_id()]).await;
    // alice is paid 600,000 sat by someone who will take the payment back.
    let payment = net.send_to_address(alice.new_address().await, 600_000).await;
    let block = net.mine(1).await[0];
    alice.wait_until("the payment in alice's wallet", || async { (alice.balance().await.confirmed_sat == 600_000).then_some(()).ok_or("not yet") }).await;
    alice.connect(&bob).await;
    let id = alice.open_channel_with(&bob, OpenChannelRequest { local_funding_sat: 500_000, zero_conf: true, ..Default::default() }).await;
    alice.wait_channel_active(&id).await;
    bob.wait_channel_active(&id).await;
    let paid = alice.keysend(&bob, 100_000_000).await.expect("keysend over the zero-conf channel");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    let c = channel(&alice, &id).await;
    let funding = bitcoin::OutPoint { txid: c.funding_txid.parse().unwrap(), vout: c.funding_output_index };
    let alice_had = c.local_balance_msat;
    assert_eq!(channel(&bob, &id).await.local_balance_msat, 100_000_000);
    let bob_wallet = bob.balance().await;

    // The sender takes its payment back: alice's funding spends coins that no longer exist. Two blocks (one
    // more than the reorg replaced) leave the double spend 2 deep: whether a node looks at each block or only
    // at the tip, it has not yet seen it for the 3 blocks it waits for.
    let conflict = net.take_back(payment, block, 2).await;
    assert!(!net.knows_transaction(funding.txid).await, "bitcoind dropped the funding");
    for node in [&alice, &bob] {
        node.wait_log_line(&["channel funding looks double-spent", &funding.to_string()]).await;
        assert_eq!(node.channels().await.len(), 1, "{}: not closed while the double spend is under 3 blocks deep", node.name());
    }
    net.mine(2).await;
    for (node, lost) in [(&alice, alice_had), (&bob, 100_000_000)] {
        let closed = node
            // Whoever closes first, each side records the double spend once it has seen it for 3 blocks.
            .wait_until("the channel closed over its double-spent funding", || async {
                node.closed_channels().await.into_iter().find(|c| c.channel_id == id && c.funding_double_spent).ok_or("still open, or not known as double-spent")
            })
            .await;
        assert!(closed.funding_double_spent, "{}: {closed:?}", node.name());
        assert!(closed.reason.contains("double-spent"), "{}: {closed:?}", node.name());
        assert_eq!(closed.unclaimable_msat, lost, "{}: the balance lost with the channel, to the msat", node.name());
        assert_eq!((closed.claimable_sat, closed.closing_txid.as_str()), (0, ""), "{}: nothing to claim, nothing closes it on-chain", node.name());
        assert!(node.channels().await.is_empty());
        assert!(node.client().pending_channels(PendingChannelsRequest {}).await.unwrap().into_inner().pending_close.is_empty(), "{}: not shown as funds on their way back", node.name());
        let line = node.wait_log_line(&["channel funding double-spent", &funding.to_string()]).await;
        assert!(line.contains(&format!("lost_msat={lost}")), "{line}");
    }
    // alice's wallet holds nothing: the coins were taken back, and the funding's change went with them.
    let wallet = alice.balance().await;
    assert_eq!((wallet.confirmed_sat, wallet.unconfirmed_sat), (0, 0), "{wallet:?}");
    assert_eq!(bob.balance().await, bob_wallet, "bob's wallet is untouched");

    // Nothing spending the dead funding is sent, now or after a restart (LDK hands its commitment over again).
    bob.restart().await;
    alice.restart().await;
    net.mine(1).await;
    for txid in net.mempool().await {
        let tx = net.transaction(txid).await;
        assert!(tx.input.iter().all(|i| i.previous_output != funding), "{txid} spends the double-spent funding");
    }
    assert!(net.tx_confirmations(conflict).await >= 4);
    let closed = bob.closed_channels().await;
    assert_eq!((closed.len(), closed[0].unclaimable_msat), (1, 100_000_000), "the record outlives a restart: {closed:?}");
    assert!(bob.channels().await.is_empty() && alice.channels().await.is_empty());
}
