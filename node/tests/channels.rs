//! Channels and payments as a user sees them: three real lanesd nodes on a real regtest chain.
//!
//! alice — bob — carol, plus a direct alice — carol channel for multi-part payments.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};
use tonic::Code;

const CHANNEL: u64 = 1_000_000;

async fn start_net() -> Net {
    Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await
}

async fn connect(a: &Node, b: &Node) {
    let id = b.info().await.node_id;
    a.client()
        .connect_peer(ConnectPeerRequest { address: format!("{id}@{}", b.p2p_addr()), persist: true })
        .await
        .unwrap_or_else(|s| panic!("{} connect to {}: {s:?}", a.name(), b.name()));
}

/// Opens a channel and waits until its funding transaction is in bitcoind's mempool (LDK broadcasts it
/// once the peer has signed).
async fn open(net: &Net, a: &Node, b: &Node, sat: u64, push_msat: u64) -> String {
    let id = b.info().await.node_id;
    let r = a
        .client()
        .open_channel(OpenChannelRequest { node_id: id, local_funding_sat: sat, push_msat, private: false, sat_per_vbyte: String::new() })
        .await
        .unwrap_or_else(|s| panic!("{} open to {}: {s:?}", a.name(), b.name()))
        .into_inner();
    let txid: lanes_regtest::bitcoin::Txid = r.funding_txid.parse().unwrap();
    a.wait_until(format!("funding {txid} in the mempool"), || async { net.mempool().await.contains(&txid) }).await;
    r.channel_id
}

async fn channel(n: &Node, id: &str) -> Option<Channel> {
    let chans = n.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels;
    chans.into_iter().find(|c| c.channel_id == id)
}

async fn wait_active(n: &Node, id: &str) -> Channel {
    n.wait_until(format!("channel {id} active"), || async {
        match channel(n, id).await {
            Some(c) if c.active => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

async fn wait_graph(n: &Node, channels: usize) {
    n.wait_until(format!("{channels} channels with both policies in the graph"), || async {
        let g = n.client().describe_graph(DescribeGraphRequest {}).await.unwrap().into_inner();
        let complete = g.channels.iter().filter(|c| c.node1_policy.is_some() && c.node2_policy.is_some()).count();
        match complete >= channels {
            true => Ok(()),
            false => Err(format!("{complete} complete of {} channels", g.channels.len())),
        }
    })
    .await
}

async fn invoice(n: &Node, msat: u64) -> AddInvoiceResponse {
    n.client()
        .add_invoice(AddInvoiceRequest { amount_msat: msat, description: "test".into(), expiry_secs: 0 })
        .await
        .unwrap()
        .into_inner()
}

async fn pay(n: &Node, bolt11: &str) -> Result<Payment, tonic::Status> {
    n.client()
        .pay_invoice(PayInvoiceRequest { bolt11: bolt11.into(), amount_msat: 0, timeout_secs: 60, retry_secs: 0 })
        .await
        .map(|r| r.into_inner())
}

async fn local_msat(n: &Node, id: &str) -> u64 {
    channel(n, id).await.map(|c| c.local_balance_msat).unwrap_or(0)
}

#[tokio::test]
async fn payments_across_a_three_node_network() {
    let net = start_net().await;
    let (alice, bob, carol) = (net.node("alice").await, net.node("bob").await, net.node("carol").await);
    alice.fund(3_000_000).await;
    bob.fund(2_000_000).await;
    connect(&alice, &bob).await;
    connect(&bob, &carol).await;
    let ab = open(&net, &alice, &bob, CHANNEL, 0).await;
    let bc = open(&net, &bob, &carol, CHANNEL, 0).await;
    net.mine(6).await;
    wait_active(&alice, &ab).await;
    wait_active(&bob, &bc).await;
    wait_active(&carol, &bc).await;
    wait_graph(&alice, 2).await;

    // carol invoices, alice pays through bob.
    let (a0, b_ab0, b_bc0, c0) = (local_msat(&alice, &ab).await, local_msat(&bob, &ab).await, local_msat(&bob, &bc).await, local_msat(&carol, &bc).await);
    let inv = invoice(&carol, 100_000_000).await;
    let p = pay(&alice, &inv.bolt11).await.expect("pay");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "{p:?}");
    assert!(p.fee_msat > 0, "bob charges a forwarding fee: {p:?}");
    assert_eq!(p.paths.len(), 1);
    assert_eq!(local_msat(&alice, &ab).await, a0 - 100_000_000 - p.fee_msat);
    assert_eq!(local_msat(&bob, &ab).await, b_ab0 + 100_000_000 + p.fee_msat);
    assert_eq!(local_msat(&bob, &bc).await, b_bc0 - 100_000_000);
    assert_eq!(local_msat(&carol, &bc).await, c0 + 100_000_000);
    let settled = carol.client().lookup_invoice(LookupInvoiceRequest { payment_hash: inv.payment_hash.clone() }).await.unwrap().into_inner();
    assert_eq!(settled.state, InvoiceState::Settled as i32);
    let fwd = bob.client().forwarding_history(ForwardingHistoryRequest {}).await.unwrap().into_inner();
    assert_eq!(fwd.total_fee_msat, p.fee_msat);

    // Paying it again is refused and changes nothing.
    let again = pay(&alice, &inv.bolt11).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    // Keysend alice -> carol.
    let carol_id = carol.info().await.node_id;
    let k = alice.client().send_keysend(SendKeysendRequest { node_id: carol_id.clone(), amount_msat: 5_000_000, timeout_secs: 60 }).await.unwrap().into_inner();
    assert_eq!(k.status, PaymentStatus::Succeeded as i32, "{k:?}");

    // Bad input.
    let bad = pay(&alice, "lnbcrt1notaninvoice").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    let too_big = invoice(&carol, 5_000_000_000).await;
    let none = pay(&alice, &too_big.bolt11).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
    let list = alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments;
    assert_eq!(list.len(), 2, "failed starts leave no record: {list:?}");
    let unknown = alice.client().close_channel(CloseChannelRequest { channel_id: "00".repeat(32), force: false, sat_per_vbyte: String::new() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // bob restarts: channels come back and payments flow again.
    bob.restart().await;
    wait_active(&alice, &ab).await;
    wait_active(&carol, &bc).await;
    let inv2 = invoice(&carol, 1_000_000).await;
    let p2 = pay(&alice, &inv2.bolt11).await.expect("pay after restart");
    assert_eq!(p2.status, PaymentStatus::Succeeded as i32, "{p2:?}");
}
