//! A peer that publishes a revoked channel state loses everything in the channel.
//!
//! bob (the cheater) keeps a copy of his data dir from a state where he held more, moves the channel on,
//! then broadcasts the old commitment from the copy straight to bitcoind. alice's chain watcher (LDK's
//! ChainMonitor) sees it and claims every output with a justice transaction, whether she was watching at
//! that moment or comes back within the CSV delay.
use lanes_regtest::bitcoin::Network;
use lanes_regtest::cheat::{broadcast_stale_commitments, snapshot};
use lanes_regtest::proto::v1::*;
use lanes_regtest::{wait_until_logged, Net, Node, Pair, RpcApi, SYNC_TIMEOUT};

const CAPACITY: u64 = 1_000_000;
/// Upper bound on what alice pays in on-chain fees: funding, justice and sweep transactions.
const FEES: u64 = 20_000;
/// The value of an anchor output (BOLT 3).
const ANCHOR_SAT: u64 = 330;

async fn pay(from: &Node, to: &Node, msat: u64) {
    let inv = to.add_invoice(msat, "state").await;
    let p = from.pay_invoice(&inv.bolt11).await.expect("pay");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "{p:?}");
}

async fn cheat_and_get_punished(honest_offline: bool, htlcs_in_flight: bool) {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Pair { alice, bob, channel: channel_id } = net.pair(2 * CAPACITY, CAPACITY).await;

    // State N: bob holds 600k sat (and, in one story, an HTLC each way is in flight). He keeps a copy.
    pay(&alice, &bob, 600_000_000).await;
    let held = match htlcs_in_flight {
        true => Some((bob.held_payment_from(&alice, 100_000_000, [1; 32]).await, alice.held_payment_from(&bob, 50_000_000, [2; 32]).await)),
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
    if let Some((to_bob, to_alice)) = held {
        bob.client().cancel_invoice(CancelInvoiceRequest { payment_hash: to_bob.payment_hash }).await.expect("cancel");
        alice.client().settle_invoice(SettleInvoiceRequest { preimage: to_alice.preimage }).await.expect("settle");
        let refused = to_bob.payer_call.await.unwrap().expect("alice's call outlives bob's restart");
        assert_eq!(refused.status, PaymentStatus::Failed as i32, "bob refused alice's payment: {refused:?}");
        // bob restarted since he paid, so his call broke; his payment list tells the outcome.
        let _ = to_alice.payer_call.await;
        let alice_hash = to_alice.payment_hash;
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
    // bob's stale commitment is confirmed and every output of it that holds value is spent (nothing
    // left for bob). The two 330-sat anchor outputs are not value: spending one costs more than it holds.
    for txid in &breach {
        let tx = net.rpc().get_raw_transaction(txid, None).expect("the breach tx");
        let anchors = tx.output.iter().filter(|o| o.value.to_sat() == ANCHOR_SAT).count();
        assert!(anchors >= 1, "an anchor channel's commitment has anchor outputs: {tx:?}");
        for (vout, out) in tx.output.iter().enumerate().filter(|(_, o)| o.value.to_sat() != ANCHOR_SAT) {
            let unspent = net.rpc().get_tx_out(txid, vout as u32, Some(false)).unwrap();
            assert!(unspent.is_none(), "output {vout} ({} sat) of the breach is spent", out.value.to_sat());
        }
    }
    // The operator's lines name the breach and each justice transaction, which bitcoind has confirmed
    // spending the breach.
    let log = std::fs::read_to_string(alice.log_path()).unwrap();
    let line = |what: &str| log.lines().filter(|l| l.contains(what)).map(String::from).collect::<Vec<_>>();
    let breach_txid = breach[0].to_string();
    let breach_lines = line("breach detected");
    assert_eq!(breach_lines.len(), 1, "one breach line: {breach_lines:?}");
    assert!(breach_lines[0].contains(&format!("breach_txid={breach_txid}")), "{breach_lines:?}");
    // (A justice transaction LDK re-signed at a higher fee is logged again under its new txid; the
    // replaced one is then unknown to bitcoind.)
    let justice_lines = line("justice transaction broadcast");
    let mut confirmed = 0;
    for l in &justice_lines {
        assert!(l.contains(&format!("breach_txid={breach_txid}")), "{l}");
        let justice_txid: lanes_regtest::bitcoin::Txid = field(l, "justice_txid").parse().unwrap();
        if let Ok(info) = net.rpc().get_raw_transaction_info(&justice_txid, None) {
            if info.confirmations.unwrap_or(0) > 0 {
                assert!(info.vin.iter().any(|i| i.txid == Some(breach[0])), "the justice transaction spends the breach: {info:?}");
                confirmed += 1;
            }
        }
    }
    assert!(confirmed >= 1, "a logged justice transaction confirmed: {justice_lines:?}");
    let closed = alice.closed_channels().await;
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

/// The value of `name=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("{name}=")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 1;
    line[start..].split_whitespace().next().unwrap_or_default()
}
