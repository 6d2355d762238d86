//! A peer that publishes a revoked channel state loses everything in the channel.
//!
//! bob (the cheater) keeps a copy of his data dir from a state where he held more, moves the channel on,
//! then broadcasts the old commitment from the copy straight to bitcoind. alice's chain watcher (LDK's
//! ChainMonitor) sees it and claims every output with a justice transaction, whether she was watching at
//! that moment or comes back within the CSV delay.
use lanes_regtest::bitcoin::Network;
use lanes_regtest::cheat::{broadcast_stale_commitments, snapshot};
use lanes_regtest::proto::v1::*;
use lanes_regtest::{wait_until_logged, Net, Node, RpcApi, SYNC_TIMEOUT};

const CAPACITY: u64 = 1_000_000;
/// Upper bound on what alice pays in on-chain fees: funding, justice and sweep transactions.
const FEES: u64 = 20_000;

async fn pay(from: &Node, to: &Node, msat: u64) {
    let inv = to.add_invoice(msat, "state").await;
    let p = from.pay_invoice(&inv.bolt11).await.expect("pay");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "{p:?}");
}

/// A hold invoice on `to` paid by `from`: returns once `to` holds the HTLC, with the preimage and the
/// payer's pending call (which breaks if the payer restarts meanwhile).
async fn held_payment(from: &Node, to: &Node, msat: u64, seed: u8) -> ([u8; 32], tokio::task::JoinHandle<Result<Payment, tonic::Status>>) {
    use lanes_regtest::bitcoin::hashes::{sha256, Hash};
    let preimage = [seed; 32];
    let hash = sha256::Hash::hash(&preimage).to_byte_array();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let inv = to
        .client()
        .add_invoice(AddInvoiceRequest { amount_msat: msat, description: "held".into(), expiry_secs: 0, payment_hash: hex(&hash) })
        .await
        .expect("hold invoice")
        .into_inner();
    let payer = from.clone();
    let bolt11 = inv.bolt11.clone();
    let pending = tokio::spawn(async move {
        payer.client().pay_invoice(PayInvoiceRequest { bolt11, amount_msat: 0, timeout_secs: 120, retry_secs: 0 }).await.map(|r| r.into_inner())
    });
    to.wait_until("the payment to be held", || async {
        let i = to.client().lookup_invoice(LookupInvoiceRequest { payment_hash: inv.payment_hash.clone() }).await.unwrap().into_inner();
        i.state == InvoiceState::Accepted as i32
    })
    .await;
    (preimage, pending)
}

async fn cheat_and_get_punished(honest_offline: bool, htlcs_in_flight: bool) {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    alice.fund(2 * CAPACITY).await;
    alice.connect(&bob).await;
    let channel_id = alice.open_channel(&bob, CAPACITY).await;
    net.mine(6).await;
    alice.wait_channel_active(&channel_id).await;

    // State N: bob holds 600k sat (and, in one story, an HTLC each way is in flight). He keeps a copy.
    pay(&alice, &bob, 600_000_000).await;
    let held = match htlcs_in_flight {
        true => Some((held_payment(&alice, &bob, 100_000_000, 1).await, held_payment(&bob, &alice, 50_000_000, 2).await)),
        false => None,
    };
    bob.stop().await;
    let copy = net.dir().join("bob-at-state-n");
    snapshot(&bob, &copy);
    bob.start().await;
    alice.wait_channel_active(&channel_id).await;
    bob.wait_channel_active(&channel_id).await;

    // State N+k: the HTLCs resolve (bob refuses alice's, alice takes bob's) and bob pays most of his
    // balance back, so the old state is worth far more to him.
    if let Some(((_, to_bob), (alice_preimage, to_alice))) = held {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        use lanes_regtest::bitcoin::hashes::{sha256, Hash};
        let bob_hash = sha256::Hash::hash(&[1u8; 32]).to_byte_array();
        bob.client().cancel_invoice(CancelInvoiceRequest { payment_hash: hex(&bob_hash) }).await.expect("cancel");
        alice.client().settle_invoice(SettleInvoiceRequest { preimage: hex(&alice_preimage) }).await.expect("settle");
        let refused = to_bob.await.unwrap().expect("alice's call outlives bob's restart");
        assert_eq!(refused.status, PaymentStatus::Failed as i32, "bob refused alice's payment: {refused:?}");
        // bob restarted since he paid, so his call broke; his payment list tells the outcome.
        let _ = to_alice.await;
        let alice_hash = hex(&sha256::Hash::hash(&alice_preimage).to_byte_array());
        bob.wait_until("bob's payment to alice to succeed", || async {
            let list = bob.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments;
            list.iter().any(|p| p.payment_hash == alice_hash && p.status == PaymentStatus::Succeeded as i32)
        })
        .await;
    }
    pay(&bob, &alice, 400_000_000).await;
    let wallet_before = alice.balance().await.confirmed_sat;
    bob.stop().await;

    if honest_offline {
        alice.stop().await;
    }
    let breach = broadcast_stale_commitments(&copy, Network::Regtest, net.rpc());
    assert_eq!(breach.len(), 1, "one stale commitment broadcast");
    net.mine(1).await;
    if honest_offline {
        // Well within the 144-block CSV delay bob's own output waits for.
        net.mine(10).await;
        alice.start().await;
    }

    // alice claims every output: mine a block per check so her justice and sweep transactions confirm.
    // Counted in outputs with a confirmation (the balance counts our unconfirmed change as spendable).
    let want = wallet_before + CAPACITY - FEES;
    let got = wait_until_logged(SYNC_TIMEOUT * 4, "alice to recover the whole channel", &[alice.log_path()], || async {
        net.mine(1).await;
        let confirmed: u64 = alice.list_unspent(1).await.iter().map(|u| u.amount_sat).sum();
        match confirmed >= want {
            true => Ok(confirmed),
            false => Err(format!("{confirmed} sat in confirmed outputs, want at least {want}")),
        }
    })
    .await;
    assert!(got <= wallet_before + CAPACITY, "alice cannot get more than the channel held: {got}");
    // bob's stale commitment is confirmed and every output of it is spent (nothing left for bob).
    for txid in breach {
        let tx = net.rpc().get_raw_transaction(&txid, None).expect("the breach tx");
        for vout in 0..tx.output.len() as u32 {
            assert!(net.rpc().get_tx_out(&txid, vout, Some(false)).unwrap().is_none(), "output {vout} of the breach is spent");
        }
    }
    let log = std::fs::read_to_string(alice.log_path()).unwrap();
    assert!(log.contains("breach detected"), "alice logs the breach");
    let closed = alice.client().closed_channels(ClosedChannelsRequest {}).await.unwrap().into_inner().channels;
    assert!(closed.iter().any(|c| c.channel_id == channel_id), "{closed:?}");
}

#[tokio::test]
async fn a_cheater_is_punished_while_the_honest_node_watches() {
    cheat_and_get_punished(false, false).await;
}

#[tokio::test]
async fn a_cheater_with_htlcs_in_flight_both_ways_loses_every_output() {
    cheat_and_get_punished(false, true).await;
}

#[tokio::test]
async fn a_cheater_is_punished_when_the_honest_node_comes_back_within_the_delay() {
    cheat_and_get_punished(true, false).await;
}
