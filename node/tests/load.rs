//! Many payments at once over one channel: load alone must not make a payment fail.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node, Pair};

const CAPACITY: u64 = 2_000_000;
const IN_FLIGHT: usize = 64;
const AMOUNT_MSAT: u64 = 1_000_000;

/// Starts `n` keysends of AMOUNT_MSAT from `alice` to `bob` at once; panics unless every one succeeds.
async fn keysends_all_succeed(alice: &Node, bob: &Node, n: usize) {
    let payments: Vec<_> = (0..n)
        .map(|_| {
            let (alice, bob) = (alice.clone(), bob.clone());
            tokio::spawn(async move { alice.keysend(&bob, AMOUNT_MSAT).await })
        })
        .collect();
    let mut failed = Vec::new();
    for p in payments {
        match p.await.expect("the payment task") {
            Ok(p) if p.status == PaymentStatus::Succeeded as i32 => {}
            other => failed.push(format!("{other:?}")),
        }
    }
    assert!(failed.is_empty(), "{} of {n} payments did not succeed; first: {}", failed.len(), failed[0]);
}

/// 64 keysends started together over one channel all succeed, and bob gets every msat. With LDK's default of
/// 50 HTLCs a peer may have in flight towards us, most of them failed at once ("no route"); lanes now accepts
/// the protocol's 483, as LND does.
#[tokio::test]
async fn sixty_four_payments_in_flight_over_one_channel_all_succeed() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Pair { alice, bob, channel } = net.pair(CAPACITY + 200_000, CAPACITY).await;
    let local = |node: &Node| {
        let (node, channel) = (node.clone(), channel.clone());
        async move {
            let list = node.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels;
            list.into_iter().find(|c| c.channel_id == channel).map(|c| c.local_balance_msat).unwrap()
        }
    };
    let bob_before = local(&bob).await;

    keysends_all_succeed(&alice, &bob, IN_FLIGHT).await;
    assert_eq!(local(&bob).await, bob_before + IN_FLIGHT as u64 * AMOUNT_MSAT, "bob received every payment, to the msat");
}

/// When our channel's HTLC slots are all taken (bob accepts only 8 in flight), a payment waits for one to
/// free instead of failing at once with "no route to the destination with enough capacity": 40 keysends
/// started together all succeed, to the msat, and alice's log says that payments waited.
#[tokio::test]
async fn payments_wait_for_a_free_htlc_slot_instead_of_failing() {
    const SLOTS: &str = "8";
    const PAYMENTS: usize = 40;
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--max-accepted-htlcs", SLOTS]).await;
    let channel = net.fund_and_open(&alice, &bob, CAPACITY + 200_000, CAPACITY).await;
    bob.wait_channel_active(&channel).await;
    let before = bob.channel(&channel).await.unwrap().local_balance_msat;

    keysends_all_succeed(&alice, &bob, PAYMENTS).await;
    assert_eq!(bob.channel(&channel).await.unwrap().local_balance_msat, before + PAYMENTS as u64 * AMOUNT_MSAT, "bob received every payment, to the msat");
    alice.wait_log_line(&["payment waits for channel capacity", "htlcs_in_flight="]).await;
}

/// The wait is bounded by the payment's own timeout and says why it ended: with both of bob's 2 slots held
/// by hold-invoice payments, a keysend with a 3 s timeout ends with DEADLINE_EXCEEDED and words an
/// operator can act on, and leaves nothing behind; once a held payment settles, the next keysend goes through.
#[tokio::test]
async fn a_payment_waiting_for_a_slot_gives_up_at_its_timeout_and_says_why() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--max-accepted-htlcs", "2"]).await;
    let channel = net.fund_and_open(&alice, &bob, CAPACITY + 200_000, CAPACITY).await;
    bob.wait_channel_active(&channel).await;
    let held = [bob.held_payment_from(&alice, AMOUNT_MSAT, [1; 32]).await, bob.held_payment_from(&alice, AMOUNT_MSAT, [2; 32]).await];
    let recorded = alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments.len();

    let req = SendKeysendRequest { node_id: bob.node_id(), amount_msat: AMOUNT_MSAT, timeout_secs: 3, ..Default::default() };
    let status = alice.client().send_keysend(req.clone()).await.expect_err("no slot frees up within 3 s");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "no channel capacity freed up before the payment's timeout: 2 HTLCs of ours still in flight");
    assert_eq!(alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments.len(), recorded, "the payment that never started is not recorded");

    let settle = SettleInvoiceRequest { preimage: held[0].preimage.clone() };
    bob.client().settle_invoice(settle).await.expect("settle the first held payment");
    let paid = alice.client().send_keysend(req).await.expect("a slot is free again").into_inner();
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
}
