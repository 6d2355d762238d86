//! Batch opens (BatchOpenChannel, LND's batchopenchannel, CLN's multifundchannel): channels to several peers
//! funded by one transaction with one fee; all or nothing when a peer refuses; bad batches refused before
//! anything changes.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};
use tonic::Code;

fn member(peer: &Node, sat: u64) -> BatchOpenChannel {
    BatchOpenChannel { node_id: peer.node_id(), local_funding_sat: sat, ..Default::default() }
}

async fn batch(alice: &Node, channels: Vec<BatchOpenChannel>) -> Result<BatchOpenChannelResponse, tonic::Status> {
    alice.client().batch_open_channel(BatchOpenChannelRequest { channels, sat_per_vbyte: String::new() }).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn one_transaction_opens_channels_to_three_peers() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let peers = [net.node("bob").await, net.node("carol").await, net.node("dave").await];
    alice.fund(2_000_000).await;
    for p in &peers {
        alice.connect(p).await;
    }
    let before = alice.balance().await.total_sat;
    let sizes = [300_000u64, 400_000, 500_000];

    let opened = batch(&alice, peers.iter().zip(sizes).map(|(p, sat)| member(p, sat)).collect()).await.expect("batch open");
    assert_eq!(opened.channels.len(), 3);
    let txid = opened.funding_txid.parse().unwrap();
    alice.wait_until("the batch funding in the mempool", || async { net.mempool().await.contains(&txid) }).await;
    let tx = net.transaction(txid).await;
    for (c, sat) in opened.channels.iter().zip(sizes) {
        assert_eq!(c.funding_txid, opened.funding_txid, "one transaction funds every channel");
        assert_eq!(tx.output[c.funding_output_index as usize].value.to_sat(), sat);
    }
    assert_eq!(tx.output.len(), 4, "three channel outputs and the change: {tx:?}");
    let fee = net.fee_sat(&tx).await;

    net.mine(6).await;
    for (p, (c, sat)) in peers.iter().zip(opened.channels.iter().zip(sizes)) {
        let theirs = p.wait_channel_active(&c.channel_id).await;
        let ours = alice.wait_channel_active(&c.channel_id).await;
        assert_eq!((ours.capacity_sat, theirs.capacity_sat), (sat, sat), "{}", p.name());
    }
    // The wallet paid the three capacities and one fee, to the sat.
    let after = alice.wait_until("the change to confirm", || async {
        let b = alice.balance().await;
        match b.unconfirmed_sat {
            0 => Ok(b.total_sat),
            n => Err(format!("{n} sat unconfirmed")),
        }
    })
    .await;
    assert_eq!(after, before - sizes.iter().sum::<u64>() - fee);
    let paid = alice.keysend(&peers[1], 5_000_000).await.expect("keysend over a batch channel");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
}

#[tokio::test]
async fn a_batch_with_a_refusing_peer_opens_nothing_and_bad_batches_change_nothing() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let (bob, dave, erin) = (net.node("bob").await, net.node("dave").await, net.node("erin").await);
    alice.fund(18_000_000).await;
    alice.connect(&bob).await;
    alice.connect(&dave).await;
    let wallet = alice.balance().await;

    // Refused before anything starts.
    let one = batch(&alice, vec![member(&bob, 300_000)]).await.unwrap_err();
    assert_eq!(one.code(), Code::InvalidArgument, "{one:?}");
    let twice = batch(&alice, vec![member(&bob, 300_000), member(&bob, 400_000)]).await.unwrap_err();
    assert_eq!(twice.code(), Code::InvalidArgument, "{twice:?}");
    assert!(twice.message().contains("twice"), "{}", twice.message());
    let stranger = batch(&alice, vec![member(&bob, 300_000), member(&erin, 300_000)]).await.unwrap_err();
    assert_eq!(stranger.code(), Code::FailedPrecondition, "{stranger:?}");
    let too_much = batch(&alice, vec![member(&bob, 10_000_000), member(&dave, 10_000_000)]).await.unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition, "{too_much:?}");

    // dave refuses his channel (above the 16,777,215 sat LDK accepts without a larger limit): bob's is
    // dropped too, nothing is broadcast, the wallet keeps every coin.
    let refused = batch(&alice, vec![member(&bob, 300_000), member(&dave, 17_000_000)]).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("refused"), "{}", refused.message());
    for n in [&alice, &bob, &dave] {
        n.wait_until("no channel left from the batch", || async {
            match n.channels().await.len() {
                0 => Ok(()),
                k => Err(format!("{k} channels")),
            }
        })
        .await;
    }
    assert!(net.mempool().await.is_empty(), "nothing broadcast");
    assert_eq!(alice.balance().await, wallet, "the wallet kept its coins");
    let log = std::fs::read_to_string(alice.log_path()).unwrap();
    assert!(log.contains("batch channel open aborted"), "alice logs the aborted batch");

    // The coins are free: a batch both peers accept goes through.
    let ok = batch(&alice, vec![member(&bob, 300_000), member(&dave, 400_000)]).await.expect("a good batch");
    assert_eq!(ok.channels.len(), 2);
}
