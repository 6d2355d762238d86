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
