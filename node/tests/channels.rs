//! Channels and payments as a user sees them: three real lanesd nodes on a real regtest chain.
//!
//! alice — bob — carol, plus a direct alice — carol channel for multi-part payments.
use lanes_regtest::bitcoin::{OutPoint, Transaction, Txid};
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Line, Net, Node, Pair};
use lanes_regtest::RpcApi;
use tonic::Code;

const CHANNEL: u64 = 1_000_000;

async fn start_net() -> Net {
    Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await
}

#[tokio::test]
async fn payments_across_a_three_node_network() {
    let net = start_net().await;
    // alice keeps enough on-chain for a second channel, to carol, later.
    let Line { alice, bob, carol, alice_bob: ab, bob_carol: bc } = net.line(3_000_000, CHANNEL).await;
    // Anchor channels on both ends, and balances that add up to the capacity.
    for (n, id) in [(&alice, &ab), (&bob, &ab), (&bob, &bc), (&carol, &bc)] {
        let c = n.channel(id).await.expect("open");
        assert_eq!(c.commitment_type, CommitmentType::Anchors as i32, "{}: {c:?}", n.name());
        assert_eq!(c.local_balance_msat + c.remote_balance_msat, CHANNEL * 1000, "{}: {c:?}", n.name());
    }
    assert_eq!(alice.local_msat(&ab).await, CHANNEL * 1000, "the funder holds it all before any payment");

    // carol's event stream, subscribed before anything happens to her.
    let mut carol_events = carol.client().subscribe_events(SubscribeEventsRequest {}).await.unwrap().into_inner();

    // carol invoices, alice pays through bob.
    let (a0, b_ab0, b_bc0, c0) = (alice.local_msat(&ab).await, bob.local_msat(&ab).await, bob.local_msat(&bc).await, carol.local_msat(&bc).await);
    let inv = carol.add_invoice(100_000_000, "test").await;
    let p = alice.pay_invoice(&inv.bolt11).await.expect("pay");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "{p:?}");
    assert!(p.fee_msat > 0, "bob charges a forwarding fee: {p:?}");
    assert_eq!(alice.payment_paths(&p.payment_hash).await.len(), 1);
    assert_eq!(alice.local_msat(&ab).await, a0 - 100_000_000 - p.fee_msat);
    assert_eq!(bob.local_msat(&ab).await, b_ab0 + 100_000_000 + p.fee_msat);
    assert_eq!(bob.local_msat(&bc).await, b_bc0 - 100_000_000);
    assert_eq!(carol.local_msat(&bc).await, c0 + 100_000_000);
    carol.wait_invoice_state(&inv.payment_hash, InvoiceState::Settled).await;
    bob.wait_forwarding_fees(p.fee_msat).await;
    let settled_event = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let e = carol_events.message().await.expect("stream").expect("event");
            if e.kind == "invoice_settled" {
                return e;
            }
        }
    })
    .await
    .expect("carol's stream reports the settled invoice");
    assert_eq!((settled_event.payment_hash.as_str(), settled_event.amount_msat), (inv.payment_hash.as_str(), 100_000_000));

    // The graph as others see it: bob-carol by its short channel id, and carol as a node.
    let scid = bob.channel(&bc).await.unwrap().short_channel_id;
    let info = alice.client().get_chan_info(GetChanInfoRequest { short_channel_id: scid.clone() }).await.unwrap().into_inner();
    assert_eq!(info.capacity_sat, CHANNEL);
    let bob_id = bob.info().await.node_id;
    assert!(info.node1 == bob_id || info.node2 == bob_id, "{info:?}");
    let carol_id = carol.info().await.node_id;
    let node = alice.client().get_node_info(GetNodeInfoRequest { node_id: carol_id.clone() }).await.unwrap().into_inner();
    assert!(node.num_channels >= 1);
    let missing = alice.client().get_chan_info(GetChanInfoRequest { short_channel_id: "999x9x9".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Paying it again is refused and changes nothing.
    let again = alice.pay_invoice(&inv.bolt11).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    // Keysend alice -> carol.
    let carol_id = carol.info().await.node_id;
    let k = alice.client().send_keysend(SendKeysendRequest { node_id: carol_id.clone(), amount_msat: 5_000_000, timeout_secs: 60 }).await.unwrap().into_inner();
    assert_eq!(k.status, PaymentStatus::Succeeded as i32, "{k:?}");

    // bob raises his fee on bob-carol: the next payment pays it.
    bob.set_channel_fee(&bc, 5_000, 1_000).await;
    assert_eq!(bob.channel(&bc).await.unwrap().fee_rate_ppm, 1_000);
    alice.wait_graph_fee(&bob, &scid, 5_000, 1_000).await;
    let dear = alice.pay_invoice(&carol.add_invoice(10_000_000, "test").await.bolt11).await.expect("pay at the new fee");
    assert_eq!(dear.fee_msat, 5_000 + 10_000, "base 5000 msat + 1000 ppm of 10,000,000 msat: {dear:?}");

    // A second route, alice-carol, then more than any single path can carry: LDK splits it.
    alice.connect(&carol).await;
    let ac = alice.open_channel(&carol, CHANNEL / 2).await;
    net.mine(6).await;
    alice.wait_channel_active(&ac).await;
    alice.wait_graph_channels(3).await;
    let c_before = carol.local_msat(&bc).await + carol.local_msat(&ac).await;
    let big = carol.add_invoice(1_000_000_000, "test").await;
    let mpp = alice.pay_invoice(&big.bolt11).await.expect("multi-part payment");
    assert_eq!(mpp.status, PaymentStatus::Succeeded as i32, "{mpp:?}");
    let mpp_paths = alice.payment_paths(&mpp.payment_hash).await;
    assert!(mpp_paths.len() >= 2, "paid over several paths: {mpp_paths:?}");
    // The parts need not be whole sats and each channel's balance is reported in whole sats: the sum
    // over two channels may be up to 1 sat short.
    let c_after = carol.local_msat(&bc).await + carol.local_msat(&ac).await;
    assert!((c_before + 1_000_000_000).abs_diff(c_after) < 2_000, "carol received 1,000,000 sat: {c_before} -> {c_after}");

    // An expired invoice is refused before anything is sent.
    let short = carol.client().add_invoice(AddInvoiceRequest { amount_msat: 1000, description: "soon gone".into(), expiry_secs: 1, ..Default::default() }).await.unwrap().into_inner();
    alice
        .wait_until("the 1 s invoice to be expired", || async {
            alice.client().decode_invoice(DecodeInvoiceRequest { bolt11: short.bolt11.clone() }).await.unwrap().into_inner().expired
        })
        .await;
    let expired = alice.pay_invoice(&short.bolt11).await.unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    assert!(expired.message().contains("expired"), "{expired:?}");

    // Bad input.
    let bad = alice.pay_invoice("lnbcrt1notaninvoice").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    let too_big = carol.add_invoice(5_000_000_000, "test").await;
    let none = alice.pay_invoice(&too_big.bolt11).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
    let list = alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments;
    assert_eq!(list.len(), 4, "refused payments leave no record: {list:?}");
    let unknown = alice.client().close_channel(CloseChannelRequest { channel_id: "00".repeat(32), force: false, sat_per_vbyte: String::new() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // bob restarts: channels come back and payments flow again.
    bob.restart().await;
    alice.wait_channel_active(&ab).await;
    carol.wait_channel_active(&bc).await;
    let inv2 = carol.add_invoice(1_000_000, "test").await;
    let p2 = alice.pay_invoice(&inv2.bolt11).await.expect("pay after restart");
    assert_eq!(p2.status, PaymentStatus::Succeeded as i32, "{p2:?}");
}

/// Opening with bad input changes nothing: no channel, the same wallet balance.
async fn assert_open_refused(a: &Node, node_id: &str, sat: u64, push_msat: u64, code: Code, what: &str) {
    let (chans, bal) = (a.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels.len(), a.balance().await);
    let e = a
        .client()
        .open_channel(OpenChannelRequest { node_id: node_id.into(), local_funding_sat: sat, push_msat, private: false, sat_per_vbyte: String::new(), zero_conf: false })
        .await
        .unwrap_err();
    assert_eq!(e.code(), code, "{what}: {e:?}");
    assert_eq!(a.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels.len(), chans, "{what}");
    assert_eq!(a.balance().await, bal, "{what}");
}

#[tokio::test]
async fn channels_survive_restarts_close_and_sweep_back_to_the_wallet() {
    let net = start_net().await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    alice.fund(2_000_000).await;
    bob.fund(2_000_000).await;
    let bob_id = bob.info().await.node_id;

    // Bad opens, before and after connecting.
    assert_open_refused(&alice, &bob_id, 500_000, 0, Code::FailedPrecondition, "peer not connected").await;
    assert_open_refused(&alice, "02abc", 500_000, 0, Code::InvalidArgument, "malformed node id").await;
    alice.connect(&bob).await;
    assert_open_refused(&alice, &bob_id, 0, 0, Code::InvalidArgument, "zero capacity").await;
    assert_open_refused(&alice, &bob_id, 500_000, 500_000_000, Code::InvalidArgument, "push above capacity").await;
    assert_open_refused(&alice, &bob_id, 5_000_000, 0, Code::FailedPrecondition, "above the wallet balance").await;

    let coop = alice.open_channel(&bob, CHANNEL).await;
    let forced = bob.open_channel_with(&alice, OpenChannelRequest { node_id: alice.node_id(), local_funding_sat: CHANNEL, push_msat: 300_000_000, ..Default::default() }).await;
    net.mine(6).await;
    alice.wait_channel_active(&coop).await;
    alice.wait_channel_active(&forced).await;
    let inv = bob.add_invoice(200_000_000, "test").await;
    assert_eq!(alice.pay_invoice(&inv.bolt11).await.unwrap().status, PaymentStatus::Succeeded as i32);

    // Both restart: same channels, same balances, usable again.
    let ids = |n: &Node| {
        let n = n.clone();
        async move {
            let mut v: Vec<(String, u64)> = n.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels.into_iter().map(|c| (c.channel_id, c.local_balance_msat)).collect();
            v.sort();
            v
        }
    };
    let (a_before, b_before) = (ids(&alice).await, ids(&bob).await);
    alice.restart().await;
    bob.restart().await;
    assert_eq!(ids(&alice).await, a_before);
    assert_eq!(ids(&bob).await, b_before);
    alice.wait_channel_active(&coop).await;

    // Cooperative close: alice's share comes back to her wallet after one block.
    let a_local_sat = alice.local_msat(&coop).await / 1000;
    let a_wallet = alice.balance().await.confirmed_sat;
    let closed = alice.client().close_channel(CloseChannelRequest { channel_id: coop.clone(), force: false, sat_per_vbyte: String::new() }).await.unwrap().into_inner();
    let closing: Txid = closed.closing_txid.parse().expect("CloseChannel returns the closing txid");
    alice.wait_until("the cooperative close to leave the channel list", || async { alice.channel(&coop).await.is_none() }).await;
    alice.wait_until("the closing transaction in the mempool", || async { net.mempool().await.contains(&closing) }).await;
    for n in [&alice, &bob] {
        // Recorded by each node's handler of LDK's ChannelClosed event, which may come a moment after the
        // closing transaction reached the mempool.
        let listed = n.wait_closed(&coop).await;
        assert_eq!(listed.closing_txid, closing.to_string(), "{}: {listed:?}", n.name());
        let log = std::fs::read_to_string(n.log_path()).unwrap();
        assert!(!log.lines().any(|l| l.contains("ERROR") && l.contains("Coop Closed")), "{}: a cooperative close logged at ERROR", n.name());
    }
    net.mine(1).await;
    let after = alice.wait_confirmed_at_least(a_wallet + a_local_sat - 5_000).await;
    assert!(after.confirmed_sat <= a_wallet + a_local_sat, "{after:?}");

    // Force close by bob: his funds wait for the CSV delay, then the sweeper brings them to his wallet.
    let b_local_sat = bob.local_msat(&forced).await / 1000;
    let b_wallet = bob.balance().await.confirmed_sat;
    let funding = funding_outpoint(&bob, &forced).await;
    let bob_coins = coins(&bob).await;
    // alice is offline, the usual reason to force-close. Were she connected, bob's error message would make
    // her LDK broadcast her own commitment too, and whichever reached bitcoind first would be the one
    // mined (seen in CI: hers was, so the CSV delay below was not bob's).
    alice.stop().await;
    let closed = bob.client().close_channel(CloseChannelRequest { channel_id: forced.clone(), force: true, sat_per_vbyte: String::new() }).await.unwrap().into_inner();
    // An anchor channel's commitment carries almost no fee: bob's wallet pays for its confirmation with
    // a child (CPFP) that spends bob's anchor output and one of his wallet's coins.
    let ClosePackage { commitment, child } = ClosePackage::wait_in_mempool(&net, &bob, &funding, None).await;
    assert_eq!(closed.closing_txid, commitment.compute_txid().to_string(), "CloseChannel returns our commitment's txid");
    let coin = wallet_coin_of(&commitment, &child, &bob_coins);
    let (c_fee, c_vsize) = (net.fee_sat(&commitment).await, commitment.vsize() as u64);
    let (k_fee, k_vsize) = (net.fee_sat(&child).await, child.vsize() as u64);
    // The package pays LDK's target for the close: 20 sat/vB on a fresh regtest chain when an HTLC of
    // the last states may still be claimable, else 4 sat/vB (the commitment alone pays about 2).
    assert!(
        (c_fee + k_fee) * c_vsize > c_fee * (c_vsize + k_vsize),
        "the child raises the package's fee rate: commitment {c_fee} sat / {c_vsize} vB, child {k_fee} sat / {k_vsize} vB (pays with {coin})"
    );
    net.mine(1).await;
    assert_eq!(net.tx_confirmations(commitment.compute_txid()).await, 1, "the commitment confirmed with its child");
    alice.start().await;
    let pending = bob
        .wait_until("the closed channel to show what is still to be claimed", || async {
            let c = bob.closed_channels().await;
            c.into_iter().find(|c| c.channel_id == forced && c.claimable_sat > 0 && c.claimable_at_height > 0).ok_or("not yet")
        })
        .await;
    assert!(pending.claimable_sat <= b_local_sat, "{pending:?}");
    assert_eq!(pending.closing_txid, commitment.compute_txid().to_string(), "{pending:?}");
    let alice_view = alice.wait_closed(&forced).await;
    assert_eq!(alice_view.closing_txid, commitment.compute_txid().to_string(), "alice found bob's commitment on-chain: {alice_view:?}");
    // GetInfo sums what ClosedChannels lists (the cooperative close's output counts too until it is
    // 6 blocks deep).
    let closing: Vec<ClosedChannel> = bob.closed_channels().await.into_iter().filter(|c| c.claimable_sat > 0).collect();
    let info = bob.info().await;
    assert!(closing.iter().any(|c| c.channel_id == forced));
    assert_eq!(info.num_closing_channels as usize, closing.len(), "GetInfo shows the money on its way back");
    assert_eq!(info.claimable_sat, closing.iter().map(|c| c.claimable_sat).sum::<u64>());
    let height = net.height().await as u32;
    assert!(pending.claimable_at_height > height, "claimable later than now: {pending:?}");
    net.mine((pending.claimable_at_height - height) as u64 + 1).await;
    bob.wait_until("the sweep in the mempool", || async { !net.mempool().await.is_empty() }).await;
    net.mine(1).await;
    // The wallet paid for the commitment's confirmation too (the child above: at most about 9k sat, at
    // LDK's urgent rate), on top of the sweep's own fee.
    let swept = bob.wait_confirmed_at_least(b_wallet + pending.claimable_sat - 15_000).await;
    assert!(swept.confirmed_sat <= b_wallet + b_local_sat, "{swept:?}");
    bob.wait_until("bob's log to name the sweep of the forced channel", || async {
        let log = std::fs::read_to_string(bob.log_path()).unwrap_or_default();
        log.lines().any(|l| l.contains("sweep broadcast") && l.contains(&format!("channel_id={forced}")) && l.contains("txid="))
    })
    .await;
    // alice's side of the forced close was hers at once (no delay for the non-broadcaster).
    alice
        .wait_until("alice to receive her share of the forced channel", || async {
            let b = alice.balance().await;
            match b.total_sat > after.confirmed_sat {
                true => Ok(()),
                false => Err(format!("{b:?}, was {after:?}")),
            }
        })
        .await;
}

/// An anchor channel's closing transactions get their fees from the wallet when they are broadcast,
/// so the wallet keeps a reserve (10,000 sat per anchor channel, as LND does) that sends and channel
/// opens cannot spend. Refusals change nothing.
#[tokio::test]
async fn the_wallet_keeps_a_reserve_to_bump_anchor_channel_closes() {
    const RESERVE: u64 = 10_000;
    let net = start_net().await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    alice.fund(1_000_000).await;
    alice.connect(&bob).await;
    let bob_id = bob.node_id();
    // Funds for the channel, but not for the channel and its reserve.
    assert_open_refused(&alice, &bob_id, 1_000_000 - RESERVE / 2, 0, Code::FailedPrecondition, "no room for the reserve").await;

    let channel = alice.open_channel(&bob, 500_000).await;
    net.mine(6).await;
    alice.wait_channel_active(&channel).await;
    let before = alice.wait_confirmed_at_least(1).await;
    let to = bob.new_address().await;

    // A payment that would dip into the reserve is refused.
    let send = |amount_sat: u64, send_all: bool| SendCoinsRequest { address: to.clone(), amount_sat, send_all, sat_per_vbyte: String::new() };
    let e = alice.client().send_coins(send(before.confirmed_sat - RESERVE / 2, false)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("anchor"), "the refusal says why: {e:?}");
    assert_eq!(alice.balance().await, before, "a refused payment changes nothing");
    assert!(net.mempool().await.is_empty(), "nothing was broadcast");

    // Sending everything sends everything but the reserve, which comes back as change.
    let sent = alice.client().send_coins(send(0, true)).await.unwrap().into_inner();
    assert_eq!(sent.amount_sat + sent.fee_sat + RESERVE, before.confirmed_sat, "{sent:?}");
    net.mine(1).await;
    let kept = alice
        .wait_until("only the reserve left in a confirmed output", || async {
            let utxos = alice.list_unspent(1).await;
            match utxos.iter().map(|u| u.amount_sat).collect::<Vec<_>>()[..] {
                [RESERVE] => Ok(utxos),
                _ => Err(format!("{utxos:?}")),
            }
        })
        .await;
    assert_eq!(kept.len(), 1);
    // Sending everything again: nothing is left to send.
    let e = alice.client().send_coins(send(0, true)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("anchor"), "the refusal says why: {e:?}");
    assert_eq!(bob.wait_confirmed_at_least(sent.amount_sat).await.confirmed_sat, sent.amount_sat, "bob received the rest");
}

/// A closing anchor channel whose commitment does not confirm (blocks leave it out, as they would a fee
/// too low) gets a higher fee: LDK bumps it again and the wallet's child is replaced (RBF) by one that
/// spends the same coin and pays more; that one confirms, with the commitment.
///
/// An HTLC is in flight, which is what makes the close urgent to LDK (with none, the commitment's own
/// fee is enough and no child is built).
#[tokio::test]
async fn an_urgent_anchor_close_left_out_of_blocks_is_bumped_again_with_the_same_coin() {
    let net = start_net().await;
    let Pair { alice, bob, channel } = net.pair(2 * CHANNEL, CHANNEL).await;
    let _in_flight = bob.held_payment_from(&alice, 50_000_000, [5; 32]).await;
    let funding = funding_outpoint(&alice, &channel).await;
    let alice_coins = coins(&alice).await;
    // bob is gone (the usual reason to force-close), so only alice's commitment is broadcast.
    bob.stop().await;
    alice.client().close_channel(CloseChannelRequest { channel_id: channel.clone(), force: true, sat_per_vbyte: String::new() }).await.unwrap();
    let first = ClosePackage::wait_in_mempool(&net, &alice, &funding, None).await;
    let coin = wallet_coin_of(&first.commitment, &first.child, &alice_coins);

    net.mine_empty(15).await;
    let second = ClosePackage::wait_in_mempool(&net, &alice, &funding, Some(first.child.compute_txid())).await;
    assert_eq!(second.commitment, first.commitment, "the same commitment");
    assert_eq!(wallet_coin_of(&second.commitment, &second.child, &alice_coins), coin, "the replacement spends the same wallet coin");
    let (first_fee, second_fee) = (net.fee_sat(&first.child).await, net.fee_sat(&second.child).await);
    let (first_vsize, second_vsize) = (first.child.vsize() as u64, second.child.vsize() as u64);
    assert!(second_fee * first_vsize > first_fee * second_vsize, "a higher fee rate: {second_fee} sat / {second_vsize} vB, was {first_fee} sat / {first_vsize} vB");
    assert!(!net.mempool().await.contains(&first.child.compute_txid()), "the first child was replaced");

    // The node may bump once more before the block (blocks it saw during mine_empty still trigger
    // rebroadcasts): whichever child is the latest, it confirms with the commitment and spends that coin.
    let block = net.mine(1).await[0];
    let txs = net.rpc().get_block(&block).expect("the mined block").txdata;
    let commitment = second.commitment.compute_txid();
    assert!(txs.iter().any(|t| t.compute_txid() == commitment), "the commitment confirmed");
    let child = txs.iter().find(|t| t.input.iter().any(|i| i.previous_output.txid == commitment)).expect("a child of the commitment confirmed with it");
    assert_eq!(wallet_coin_of(&second.commitment, child, &alice_coins), coin, "the child that confirmed spends the same wallet coin");
}

/// The funding outpoint of a channel, as "txid:vout".
async fn funding_outpoint(n: &Node, channel_id: &str) -> String {
    let c = n.channel(channel_id).await.expect("the channel");
    format!("{}:{}", c.funding_txid, c.funding_output_index)
}

/// The node's confirmed wallet coins, as "txid:vout".
async fn coins(n: &Node) -> Vec<String> {
    n.list_unspent(1).await.into_iter().map(|u| u.outpoint).collect()
}

/// The one coin of `coins` that `child` spends besides an anchor output of `commitment`; panics unless
/// the child is that: a CPFP of the commitment paid by the wallet.
fn wallet_coin_of(commitment: &Transaction, child: &Transaction, coins: &[String]) -> OutPoint {
    let anchor = child.input.iter().find(|i| i.previous_output.txid == commitment.compute_txid()).expect("a child of the commitment").previous_output;
    assert_eq!(commitment.output[anchor.vout as usize].value.to_sat(), 330, "the child spends an anchor output: {child:?}");
    let paid: Vec<OutPoint> = child.input.iter().map(|i| i.previous_output).filter(|p| coins.contains(&p.to_string())).collect();
    assert_eq!(paid.len(), 1, "the child spends one coin of the wallet {coins:?}: {child:?}");
    paid[0]
}

/// A force-closed channel's commitment and the child that pays its fee, as bitcoind's mempool holds them.
struct ClosePackage {
    commitment: Transaction,
    child: Transaction,
}

impl ClosePackage {
    /// Waits until the mempool holds the commitment spending `funding` ("txid:vout") and a child of it
    /// other than `replaced`.
    async fn wait_in_mempool(net: &Net, closer: &Node, funding: &str, replaced: Option<Txid>) -> ClosePackage {
        closer
            .wait_until("the commitment and the wallet's fee-paying child in the mempool", || async {
                let mut txs = Vec::new();
                for txid in net.mempool().await {
                    txs.push(net.transaction(txid).await);
                }
                let spends = |tx: &Transaction, outpoint: &str| tx.input.iter().any(|i| i.previous_output.to_string() == outpoint);
                let commitment = txs.iter().find(|tx| spends(tx, funding)).ok_or(format!("{} transactions, none spends the funding", txs.len()))?;
                let outputs: Vec<String> = (0..commitment.output.len()).map(|v| format!("{}:{v}", commitment.compute_txid())).collect();
                match txs.iter().find(|tx| outputs.iter().any(|o| spends(tx, o)) && Some(tx.compute_txid()) != replaced) {
                    Some(child) => Ok(ClosePackage { commitment: commitment.clone(), child: child.clone() }),
                    None => Err(format!("no child of the commitment {} (other than {replaced:?})", commitment.compute_txid())),
                }
            })
            .await
    }
}

/// alice — bob public, and carol, a wallet behind bob on a private channel that bob opened (pushing carol 200k
/// sat so she can pay too), as every Electrum wallet is. bob runs with `bob_args`.
async fn wallet_behind_a_private_channel(net: &Net, bob_args: &[&str]) -> (Node, Node, Node, String, String) {
    let (alice, bob, carol) = (net.node("alice").await, net.node_with("bob", bob_args).await, net.node("carol").await);
    alice.fund(2_000_000).await;
    bob.fund(2_000_000).await;
    alice.connect(&bob).await;
    bob.connect(&carol).await;
    let ab = alice.open_channel(&bob, CHANNEL).await;
    let req = OpenChannelRequest { local_funding_sat: CHANNEL, private: true, push_msat: 200_000_000, ..Default::default() };
    let bc = bob.open_channel_with(&carol, req).await;
    net.mine(6).await;
    for (n, id) in [(&alice, &ab), (&bob, &ab), (&bob, &bc)] {
        n.wait_channel_active(id).await;
    }
    let c = carol.wait_channel_active(&bc).await;
    assert!(!c.public, "{c:?}");
    alice.wait_graph_channels(1).await;
    carol.wait_graph_channels(1).await;
    (alice, bob, carol, ab, bc)
}

/// A wallet (carol) behind a routing node (bob) on a private channel: alice pays carol's invoice through bob
/// (found through the invoice's route hint), and carol pays alice back.
#[tokio::test]
async fn a_wallet_behind_a_private_channel_is_paid_through_its_node_and_pays_back() {
    let net = start_net().await;
    let (alice, _bob, carol, ab, bc) = wallet_behind_a_private_channel(&net, &[]).await;

    // alice -> bob -> carol: bob forwards into the private channel.
    let carol_before = carol.local_msat(&bc).await;
    let inv = carol.add_invoice(50_000_000, "to a wallet").await;
    let decoded = alice.client().decode_invoice(DecodeInvoiceRequest { bolt11: inv.bolt11.clone() }).await.unwrap().into_inner();
    assert!(!decoded.route_hints.is_empty(), "the invoice carries a hint to carol's private channel: {decoded:?}");
    let paid = alice.pay_invoice(&inv.bolt11).await.expect("not refused");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    assert_eq!(carol.local_msat(&bc).await, carol_before + 50_000_000);

    // carol -> bob -> alice, out through her private channel.
    let alice_before = alice.local_msat(&ab).await;
    let inv = alice.add_invoice(20_000_000, "from a wallet").await;
    let paid = carol.pay_invoice(&inv.bolt11).await.expect("not refused");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    assert_eq!(alice.local_msat(&ab).await, alice_before + 20_000_000);
    assert_eq!(carol.local_msat(&bc).await, carol_before + 50_000_000 - 20_000_000 - paid.fee_msat);
}

/// When a hop refuses a payment, the payer says which hop, with its BOLT 4 code and in words, in the API and in
/// one INFO line, instead of only "no route". bob is set not to forward into private channels.
#[tokio::test]
async fn a_failed_payment_names_the_hop_that_refused_it_and_why() {
    let net = start_net().await;
    let (alice, bob, carol, ab, _bc) = wallet_behind_a_private_channel(&net, &["--forward-to-private-channels", "false"]).await;
    let before = alice.local_msat(&ab).await;
    let inv = carol.add_invoice(50_000_000, "refused").await;
    let failed = alice.pay_invoice(&inv.bolt11).await.expect("an answer, not a refusal");
    assert_eq!(failed.status, PaymentStatus::Failed as i32, "{failed:?}");
    let why = &failed.failure_reason;
    assert!(why.contains(&bob.node_id()) && why.contains("UnknownNextPeer (0x400a)"), "the reason names bob and his answer: {why}");
    let line = alice.wait_log_line(&["payment failed", &inv.payment_hash, "failure_code"]).await;
    assert!(line.contains("INFO") && line.contains(&bob.node_id()) && line.contains("0x400a"), "{line}");
    assert_eq!(alice.local_msat(&ab).await, before, "nothing left alice's channel");
    // bob's own log says why he refused.
    bob.wait_log_line(&["HTLC failed back", &carol.node_id(), "PrivateChannelForward"]).await;
}

/// bob funds an anchor channel to alice while bitcoind has no fee estimate (his commitment pays his fallback,
/// 2 sat/vB), goes offline, and blocks fill with 20 sat/vB payments: every estimate rises far above his rate
/// and he cannot update it. A day of blocks later the channel is still open and pays, since an anchor
/// commitment only has to enter the mempool (its anchor pays the rest when it must confirm). With the 1008-block
/// estimate as the lowest rate alice accepts, LDK force-closed it ("PeerFeerateTooLow"): the fate of any wallet
/// offline while fees rose, and of any LND funder (LND caps anchor commitments at 10 sat/vB by default).
#[tokio::test]
async fn a_peers_anchor_channel_stays_open_when_fees_rise_while_the_peer_is_offline() {
    let net = start_net().await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    let channel = net.fund_and_open(&bob, &alice, 2_000_000, CHANNEL).await;
    let c = alice.channel(&channel).await.expect("alice has the channel");
    assert_eq!((c.commitment_type, c.initiator), (CommitmentType::Anchors as i32, false), "{c:?}");

    bob.stop().await;
    for _ in 0..10 {
        for _ in 0..3 {
            net.send_to_address(net.new_address().await, 100_000).await;
        }
        net.mine(1).await;
    }
    let estimate = net.rpc().estimate_smart_fee(1008, Some(lanes_regtest::bitcoincore_rpc::json::EstimateMode::Economical)).unwrap();
    let per_kvb = estimate.fee_rate.map(|a| a.to_sat()).unwrap_or(0);
    assert!(per_kvb >= 10_000, "bitcoind's 1008-block estimate is {per_kvb} sat/kvB; the story needs it above bob's 2 sat/vB: {estimate:?}");
    // alice reads the new estimates at start; LDK then checks every inbound channel at each block against the
    // lowest floor of the last 144 blocks, once it has seen 144.
    alice.restart().await;
    net.mine(150).await;
    // LDK drops a channel from the list the moment it closes it.
    assert!(alice.channel(&channel).await.is_some(), "alice closed the channel: {:?}", alice.closed_channels().await);

    bob.start().await;
    alice.wait_channel_active(&channel).await;
    let paid = bob.keysend(&alice, 50_000_000).await.expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    alice.wait_local_msat(&channel, 50_000_000).await;
    assert!(alice.closed_channels().await.is_empty(), "alice closed: {:?}", alice.closed_channels().await);
    assert!(bob.closed_channels().await.is_empty(), "bob closed: {:?}", bob.closed_channels().await);
}
