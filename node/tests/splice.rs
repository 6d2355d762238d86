//! Splicing: wallet coins spliced into a channel and channel funds spliced out to an address, while payments
//! flow, without closing the channel. Every satoshi is accounted for: the channel's capacity and both sides'
//! balances, the payer's wallet, the address paid, and the splice transactions' fees read from the chain.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};
use tonic::Code;

async fn channel(n: &Node, id: &str) -> Channel {
    n.channel(id).await.unwrap_or_else(|| panic!("{} has no channel {id}", n.name()))
}

/// Waits until the channel, on `n`, stands on `funding` with `capacity` sat and no splice under way.
async fn wait_spliced(n: &Node, id: &str, funding: &str, capacity: u64) -> Channel {
    n.wait_until(format!("channel {id} on its new funding {funding}"), || async {
        let c = channel(n, id).await;
        match c.funding_txid == funding && c.capacity_sat == capacity && !c.splice_pending && c.active {
            true => Ok(c),
            false => Err(format!("{c:?}")),
        }
    })
    .await
}

fn paid(p: Result<Payment, tonic::Status>) {
    let p = p.expect("keysend");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "{p:?}");
}

#[tokio::test]
async fn a_channel_is_spliced_in_and_out_while_payments_flow_and_every_satoshi_is_accounted_for() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let pair = net.pair(3_000_000, 1_000_000).await;
    let (alice, bob, id) = (&pair.alice, &pair.bob, pair.channel.as_str());
    paid(alice.keysend(bob, 100_000_000).await);
    let before = channel(alice, id).await;
    let wallet_before = alice.balance().await.confirmed_sat;

    // ---- splice in: 200,000 sat of alice's coins join the channel ----
    let (txid, _) = alice.splice_in(id, 200_000).await.expect("SpliceIn");
    let c = channel(alice, id).await;
    assert!(c.splice_pending && c.splice_delta_sat == 200_000 && c.splice_funding_outpoint.starts_with(&txid.to_string()), "{c:?}");
    assert_eq!(c.capacity_sat, 1_000_000, "the capacity is the old one until the splice locks");
    alice.wait_until("the splice transaction in the mempool", || async { net.mempool().await.contains(&txid) }).await;
    let b = bob
        .wait_until("bob to show the splice alice started", || async {
            let b = channel(bob, id).await;
            if b.splice_pending { Ok(b) } else { Err("not yet") }
        })
        .await;
    assert_eq!((b.splice_delta_sat, b.capacity_sat), (200_000, 1_000_000), "bob shows what the channel gains: {b:?}");
    // The channel keeps carrying payments while the splice waits for its confirmations.
    paid(alice.keysend(bob, 1_000_000).await);
    net.mine(6).await;
    let c = wait_spliced(alice, id, &txid.to_string(), 1_200_000).await;
    wait_spliced(bob, id, &txid.to_string(), 1_200_000).await;
    let splice_in_fee = net.fee_sat(&net.transaction(txid).await).await;
    assert_eq!(c.local_balance_msat, before.local_balance_msat - 1_000_000 + 200_000_000, "alice's side grew by the coins, to the msat");
    alice
        .wait_until("alice's wallet to have paid the splice in and its fee", || async {
            let now = alice.balance().await.confirmed_sat;
            if now == wallet_before - 200_000 - splice_in_fee { Ok(()) } else { Err(format!("{now} sat, fee {splice_in_fee}")) }
        })
        .await;

    // ---- splice out: 150,000 sat leave the channel to an address; the channel pays the fee ----
    let address = net.new_address().await.to_string();
    let before_out = channel(alice, id).await;
    let (txid, _) = alice.splice_out(id, 150_000, &address).await.expect("SpliceOut");
    alice.wait_until("the splice-out transaction in the mempool", || async { net.mempool().await.contains(&txid) }).await;
    paid(alice.keysend(bob, 2_000_000).await);
    net.mine(6).await;
    let splice_out_fee = net.fee_sat(&net.transaction(txid).await).await;
    let c = wait_spliced(alice, id, &txid.to_string(), 1_200_000 - 150_000 - splice_out_fee).await;
    wait_spliced(bob, id, &txid.to_string(), 1_200_000 - 150_000 - splice_out_fee).await;
    assert_eq!(net.get_received(&address).await, 150_000);
    assert_eq!(c.local_balance_msat, before_out.local_balance_msat - 2_000_000 - (150_000 + splice_out_fee) * 1000, "the amount and the fee left alice's side");
    assert_eq!(channel(bob, id).await.local_balance_msat, 103_000_000, "bob's side is what he was paid, to the msat");

    // Still one channel, still paying; nothing closed.
    paid(alice.keysend(bob, 1_000).await);
    assert!(alice.closed_channels().await.is_empty() && bob.closed_channels().await.is_empty());

    // ---- bad input changes nothing ----
    for (what, err) in [
        ("no amount", alice.splice_in(id, 0).await.unwrap_err()),
        ("a bad channel id", alice.splice_in("xyz", 1_000).await.unwrap_err()),
        ("a bad address", alice.splice_out(id, 1_000, "bogus").await.unwrap_err()),
    ] {
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    }
    assert_eq!(alice.splice_in(&"ab".repeat(32), 1_000).await.unwrap_err().code(), Code::NotFound);
    let too_much = alice.splice_out(id, 2_000_000, &address).await.unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition, "{too_much:?}");
    assert!(!channel(alice, id).await.splice_pending);
}

#[tokio::test]
async fn a_splice_with_an_htlc_in_flight_survives_restarts_of_both_nodes() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let pair = net.pair(3_000_000, 1_000_000).await;
    let (alice, bob, id) = (&pair.alice, &pair.bob, pair.channel.as_str());
    let before = channel(alice, id).await;

    // A payment of alice's is held by bob's hold invoice: its HTLC stays in flight through the splice.
    let held = bob.held_payment_from(alice, 5_000_000, [7; 32]).await;
    let (txid, _) = alice.splice_in(id, 100_000).await.expect("SpliceIn with an HTLC in flight");
    alice.wait_until("the splice transaction in the mempool", || async { net.mempool().await.contains(&txid) }).await;

    // Both restart before it confirms: the splice is still under way, and the HTLC still held.
    alice.restart().await;
    bob.restart().await;
    alice.wait_channel_active(id).await;
    bob.wait_channel_active(id).await;
    let c = channel(alice, id).await;
    assert!(c.splice_pending && c.splice_funding_outpoint.starts_with(&txid.to_string()) && c.capacity_sat == 1_000_000, "{c:?}");
    assert!(channel(bob, id).await.splice_pending, "bob, who did not ask for it, shows it too");

    // bob takes the payment while the splice waits; then it confirms and both move onto it.
    bob.client().settle_invoice(SettleInvoiceRequest { preimage: held.preimage.clone() }).await.expect("SettleInvoice");
    alice
        .wait_until("alice's held payment to succeed", || async {
            match alice.payments().await.into_iter().find(|p| p.payment_hash == held.payment_hash) {
                Some(p) if p.status == PaymentStatus::Succeeded as i32 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    net.mine(6).await;
    let c = wait_spliced(alice, id, &txid.to_string(), 1_100_000).await;
    wait_spliced(bob, id, &txid.to_string(), 1_100_000).await;
    assert_eq!(c.local_balance_msat, before.local_balance_msat - 5_000_000 + 100_000_000);
    bob.wait_until("bob to hold the payment on the spliced channel", || async {
        let held = channel(bob, id).await.local_balance_msat;
        if held == 5_000_000 { Ok(()) } else { Err(format!("{held} msat")) }
    })
    .await;
    paid(alice.keysend(bob, 1_000_000).await);
    assert!(alice.closed_channels().await.is_empty() && bob.closed_channels().await.is_empty());
}

#[tokio::test]
async fn a_peer_that_refuses_splices_gets_none_and_the_wallet_keeps_its_coins() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--reject-inbound-splices"]).await;
    let id = net.fund_and_open(&alice, &bob, 3_000_000, 1_000_000).await;
    let wallet = alice.balance().await;

    let refused = alice.splice_in(&id, 100_000).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("splice"), "{refused:?}");
    // (LDK drops the connection over the refusal; the peers reconnect.)
    let c = alice.wait_channel_active(&id).await;
    assert!(!c.splice_pending && c.capacity_sat == 1_000_000, "{c:?}");
    assert_eq!(alice.balance().await, wallet, "the wallet kept its coins");
    paid(alice.keysend(&bob, 1_000_000).await);
}

/// bob is killed in the middle of splices alice asked for: once while the transaction is being built (at
/// the first tx_complete he receives), once after it was signed (at alice's tx_signatures). Whatever point a
/// node dies at, both sides come back on the same funding, nothing is lost and no coin stays locked: the
/// first splice is abandoned (alice's coins are hers again), the second completes after bob's restart.
#[tokio::test]
async fn a_node_killed_in_the_middle_of_a_splice_comes_back_on_a_funding_both_sides_agree_on() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let marker = net.dir().join("bob-crash");
    let knob = format!("tx_complete,tx_signatures:{}", marker.display());
    let bob = net.node_with_env("bob", &[("LANES_TEST_CRASH_ON_RECEIVING", &knob)]).await;
    let id = net.fund_and_open(&alice, &bob, 3_000_000, 1_000_000).await;
    paid(alice.keysend(&bob, 100_000_000).await);
    let (before, bob_before) = (channel(&alice, &id).await, channel(&bob, &id).await);
    let wallet = alice.balance().await;

    // ---- bob dies while the splice transaction is being built ----
    let refused = alice.splice_in(&id, 200_000).await.expect_err("the splice cannot complete without bob");
    // At once, not after the 30 s negotiation timeout: the call sees bob go.
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("disconnected before the splice was agreed"), "{refused:?}");
    assert!(!bob.wait_for_exit(std::time::Duration::from_secs(10)).await.success(), "bob crashed");
    assert!(std::fs::metadata(format!("{}.tx_complete", marker.display())).is_ok(), "at the knob, not elsewhere");
    bob.start().await;
    alice.wait_channel_active(&id).await;
    bob.wait_channel_active(&id).await;
    for (node, was) in [(&alice, &before), (&bob, &bob_before)] {
        let c = channel(node, &id).await;
        assert_eq!((c.funding_txid.as_str(), c.capacity_sat, c.local_balance_msat), (was.funding_txid.as_str(), 1_000_000, was.local_balance_msat), "{}: {c:?}", node.name());
        assert!(!c.splice_pending, "{}: no splice is left under way: {c:?}", node.name());
    }
    alice
        .wait_until("alice's coins to be hers again", || async {
            let now = alice.balance().await;
            if now == wallet { Ok(()) } else { Err(format!("{now:?}")) }
        })
        .await;
    assert!(net.mempool().await.is_empty(), "no splice transaction was broadcast");
    paid(alice.keysend(&bob, 1_000_000).await);

    // ---- bob dies once the splice is signed: it completes after his restart ----
    let (txid, _) = alice.splice_in(&id, 200_000).await.expect("SpliceIn: alice holds bob's signatures");
    assert!(!bob.wait_for_exit(std::time::Duration::from_secs(10)).await.success(), "bob crashed");
    assert!(std::fs::metadata(format!("{}.tx_signatures", marker.display())).is_ok());
    bob.start().await;
    alice.wait_until("the splice transaction in the mempool", || async { net.mempool().await.contains(&txid) }).await;
    bob.wait_until("bob to show the splice", || async { channel(&bob, &id).await.splice_pending.then_some(()).ok_or("not yet") }).await;
    net.mine(6).await;
    let a = wait_spliced(&alice, &id, &txid.to_string(), 1_200_000).await;
    let b = wait_spliced(&bob, &id, &txid.to_string(), 1_200_000).await;
    assert_eq!(a.local_balance_msat, before.local_balance_msat - 1_000_000 + 200_000_000, "alice's side, to the msat");
    assert_eq!(b.local_balance_msat, bob_before.local_balance_msat + 1_000_000, "bob's side, to the msat");
    let fee = net.fee_sat(&net.transaction(txid).await).await;
    alice
        .wait_until("alice's wallet to have paid the splice and its fee, once", || async {
            let now = alice.balance().await.confirmed_sat;
            if now == wallet.confirmed_sat - 200_000 - fee { Ok(()) } else { Err(format!("{now} sat, fee {fee}")) }
        })
        .await;
    paid(alice.keysend(&bob, 1_000_000).await);
    assert!(alice.closed_channels().await.is_empty() && bob.closed_channels().await.is_empty(), "no channel closed");
}
