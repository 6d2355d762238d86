//! lanes with Electrum, as their users see them: an Electrum 4.8 wallet (Debian sid's package, gossip
//! mode, its own ElectrumX) and two real lanesd nodes on a real regtest chain.
//!
//! eve (Electrum) opens private channels to alice (lanes); alice has a public channel to bob (lanes).
//! Payments go both ways between eve and alice, eve pays bob through alice (routed by Electrum over the
//! gossip it got from alice), bob pays eve through alice over eve's private channel (the route hint in
//! eve's invoice), alice restarts and payments flow again, then every way to close: cooperatively and by
//! force, from each side, with the money back in both wallets.
//!
//! Provisioning (`regtest/scripts/electrum.sh`) runs on first use; if Electrum cannot be had, the test fails.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Electrum, ElectrumChannel, Net, Node};

/// eve's main channel to alice, and the three she opens to close in the other ways.
const MAIN: u64 = 1_000_000;
const SMALL: u64 = 200_000;
/// What eve gives alice at once on each small channel, so both sides have money to get back.
const PUSH: u64 = 50_000;
/// The highest fee rate anyone here pays on-chain, sat/vB (Electrum's pinned 2-block estimate is 20).
const MAX_SAT_PER_VB: u64 = 25;

async fn local_msat(n: &Node, id: &str) -> u64 {
    n.channel(id).await.map(|c| c.local_balance_msat).unwrap_or(0)
}

/// Waits until a lanes node's side of a channel shows `msat`: a payment's outcome reaches the payer
/// before the last commitment update with Electrum settles the balance.
async fn wait_local(n: &Node, id: &str, msat: u64) {
    n.wait_until(format!("local balance {msat} msat on {id}"), || async {
        let seen = local_msat(n, id).await;
        match seen == msat {
            true => Ok(()),
            false => Err(format!("{seen} msat")),
        }
    })
    .await
}

/// Waits until eve's side of a channel shows `sat` (Electrum updates it after the commitment dance).
async fn wait_eve_local(eve: &Electrum, point: &str, sat: u64) -> ElectrumChannel {
    eve.wait_until(format!("local balance {sat} sat on {point}"), || async {
        let c = eve.channel(point).await.expect("in list_channels");
        match c.local_balance == sat && c.local_unsettled_sent == 0 && c.remote_unsettled_sent == 0 {
            true => Ok(c),
            false => Err(format!("{c:?}")),
        }
    })
    .await
}

async fn close_of(n: &Node, id: &str) -> ClosedChannel {
    n.wait_until(format!("channel {id} in ClosedChannels"), || async { n.closed_channels().await.into_iter().find(|c| c.channel_id == id) }).await
}

#[tokio::test]
async fn electrum_opens_pays_routes_restarts_and_closes_with_lanes() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let (alice, bob) = (net.node("alice").await, net.node("bob").await);
    let eve = net.electrum("eve").await;
    alice.fund(2_000_000).await;
    eve.fund(2_000_000).await;

    // ---- alice — bob, public, with money on both sides; eve's channels to alice, private ----
    alice.connect(&bob).await;
    let ab = alice.open_channel_with(&bob, OpenChannelRequest { local_funding_sat: 1_000_000, push_msat: 300_000_000, ..Default::default() }).await;
    let main = eve.open_channel(&alice, MAIN).await;
    // Electrum opens one channel per peer per block (its funding spends its previous change).
    let mut small = Vec::new();
    for _ in 0..3 {
        net.mine(1).await;
        small.push(eve.open_channel_with_push(&alice, SMALL, PUSH).await);
    }
    net.mine(6).await;
    let e_main = eve.wait_channel_open(&main).await;
    let id = e_main.channel_id.clone();
    let a_main = alice.wait_channel_active(&id).await;
    assert_eq!(a_main.remote_node_id, eve.node_id(), "{a_main:?}");
    assert_eq!((a_main.capacity_sat, a_main.public, a_main.initiator), (MAIN, false, false), "{a_main:?}");
    assert_eq!(a_main.commitment_type, CommitmentType::Anchors as i32, "Electrum opens anchor channels and lanes accepts them: {a_main:?}");
    assert_eq!((a_main.local_balance_msat, a_main.remote_balance_msat), (0, MAIN * 1000), "{a_main:?}");
    assert_eq!((e_main.capacity, e_main.local_balance, e_main.remote_balance), (MAIN, MAIN, 0), "{e_main:?}");
    let mut small_ids = Vec::new();
    for point in &small {
        let c = eve.wait_channel_open(point).await;
        let a = alice.wait_channel_active(&c.channel_id).await;
        assert_eq!((a.capacity_sat, a.local_balance_msat), (SMALL, PUSH * 1000), "{a:?}");
        assert_eq!((c.local_balance, c.remote_balance), (SMALL - PUSH, PUSH), "{c:?}");
        small_ids.push(c.channel_id);
    }
    alice.wait_channel_active(&ab).await;
    bob.wait_channel_active(&ab).await;

    // ---- eve pays alice, alice pays eve ----
    let inv = alice.add_invoice(50_000_000, "from electrum").await;
    let paid = eve.pay_invoice(&inv.bolt11).await.expect("lnpay accepted");
    assert!(paid.success, "eve -> alice: {paid:?}");
    assert_eq!(paid.payment_hash, inv.payment_hash);
    wait_local(&alice, &id, 50_000_000).await;
    wait_eve_local(&eve, &main, MAIN - 50_000).await;

    let e_inv = eve.add_invoice(20_000, "from lanes").await;
    let p = alice.pay_invoice(&e_inv.bolt11).await.expect("PayInvoice accepted");
    assert_eq!((p.status, p.fee_msat), (PaymentStatus::Succeeded as i32, 0), "alice -> eve, direct: {p:?}");
    eve.wait_invoice_paid(&e_inv).await;
    wait_local(&alice, &id, 30_000_000).await;
    wait_eve_local(&eve, &main, MAIN - 30_000).await;

    // ---- eve pays bob through alice: Electrum routes over the gossip alice relays ----
    eve.connect(&alice, true).await;
    eve.wait_gossip_channels(1).await;
    let ab_policy = alice.channel(&ab).await.expect("alice — bob");
    let amount_msat = 10_000_000;
    let fee_msat = ab_policy.fee_base_msat as u64 + amount_msat * ab_policy.fee_rate_ppm as u64 / 1_000_000;
    let (a_main0, a_ab0, b_ab0) = (local_msat(&alice, &id).await, local_msat(&alice, &ab).await, local_msat(&bob, &ab).await);
    let inv = bob.add_invoice(amount_msat, "electrum through lanes").await;
    let paid = eve.pay_invoice(&inv.bolt11).await.expect("lnpay accepted");
    assert!(paid.success, "eve -> alice -> bob: {paid:?}");
    wait_local(&bob, &ab, b_ab0 + amount_msat).await;
    wait_local(&alice, &ab, a_ab0 - amount_msat).await;
    wait_local(&alice, &id, a_main0 + amount_msat + fee_msat).await; // alice earned her fee
    let fwd = alice.client().forwarding_history(ForwardingHistoryRequest {}).await.unwrap().into_inner();
    assert_eq!(fwd.total_fee_msat, fee_msat, "{fwd:?}");

    // ---- bob pays eve through alice, over eve's private channel (the route hint in eve's invoice) ----
    let e_inv = eve.add_invoice(5_000, "lanes through lanes").await;
    let (a_main0, e_main0) = (local_msat(&alice, &id).await, eve.channel(&main).await.unwrap().local_balance);
    let p = bob.pay_invoice(&e_inv.bolt11).await.expect("PayInvoice accepted");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "bob -> alice -> eve over the private channel: {p:?}");
    eve.wait_invoice_paid(&e_inv).await;
    wait_local(&alice, &id, a_main0 - 5_000_000).await;
    wait_eve_local(&eve, &main, e_main0 + 5_000).await;

    // ---- alice restarts: eve reconnects, the channels come back as they were, payments flow ----
    let before: Vec<(String, u64)> = alice.channels().await.into_iter().map(|c| (c.channel_id, c.local_balance_msat)).collect();
    alice.restart().await;
    for point in std::iter::once(&main).chain(&small) {
        eve.wait_channel_open(point).await;
    }
    alice.wait_channel_active(&id).await;
    let after: Vec<(String, u64)> = alice.channels().await.into_iter().map(|c| (c.channel_id, c.local_balance_msat)).collect();
    assert_eq!(after, before, "the same channels and balances after the restart");
    let inv = alice.add_invoice(7_000_000, "after restart").await;
    let paid = eve.pay_invoice(&inv.bolt11).await.expect("lnpay accepted");
    assert!(paid.success, "eve -> alice after alice's restart: {paid:?}");
    let e_inv = eve.add_invoice(3_000, "after restart").await;
    let p = alice.pay_invoice(&e_inv.bolt11).await.expect("PayInvoice accepted");
    assert_eq!(p.status, PaymentStatus::Succeeded as i32, "alice -> eve after alice's restart: {p:?}");
    eve.wait_invoice_paid(&e_inv).await;
    let inv = bob.add_invoice(2_000_000, "after restart").await;
    let paid = eve.pay_invoice(&inv.bolt11).await.expect("lnpay accepted");
    assert!(paid.success, "eve -> alice -> bob after alice's restart: {paid:?}");
    // Nothing closed on the way (see the channel_reestablish notes in the README).
    assert!(alice.closed_channels().await.is_empty(), "{:?}", alice.closed_channels().await);
    for point in std::iter::once(&main).chain(&small) {
        assert_eq!(eve.channel(point).await.unwrap().state, "OPEN");
    }

    // ---- cooperative close by eve (main) and by alice (first small one) ----
    let (a_wallet, e_wallet) = (alice.balance().await.confirmed_sat, eve.balance().await.confirmed_sat);
    let a_main_sat = local_msat(&alice, &id).await / 1000;
    let e_main_sat = eve.channel(&main).await.unwrap().local_balance;
    let eve_close = eve.close_channel(&main).await;
    eve.wait_channel_state(&main, "CLOSING").await;
    let a_small_sat = local_msat(&alice, &small_ids[0]).await / 1000;
    let e_small_sat = eve.channel(&small[0]).await.unwrap().local_balance;
    alice.client().close_channel(CloseChannelRequest { channel_id: small_ids[0].clone(), force: false, sat_per_vbyte: String::new() }).await.unwrap();
    let alice_close = eve
        .wait_until("alice's cooperative close to reach Electrum", || async {
            eve.channel(&small[0]).await.and_then(|c| c.closing_txid).and_then(|t| t.parse::<lanes_regtest::bitcoin::Txid>().ok())
        })
        .await;
    alice.wait_until("both closing transactions in the mempool", || async {
        let m = net.mempool().await;
        m.contains(&eve_close) && m.contains(&alice_close)
    })
    .await;
    net.mine(1).await;
    eve.wait_synced().await;
    assert_eq!(close_of(&alice, &id).await.closing_txid, eve_close.to_string(), "lanes names the close eve broadcast");
    assert_eq!(close_of(&alice, &small_ids[0]).await.closing_txid, alice_close.to_string(), "lanes names its own close");
    // eve funded both channels, so she pays both closing fees; alice gets exactly her share.
    let fees = net.fee_sat(&net.transaction(eve_close).await).await + net.fee_sat(&net.transaction(alice_close).await).await;
    let a_back = alice.wait_confirmed_at_least(a_wallet + a_main_sat + a_small_sat).await;
    assert_eq!(a_back.confirmed_sat, a_wallet + a_main_sat + a_small_sat, "alice's shares, to the sat");
    let e_back = eve.wait_confirmed_at_least(e_wallet + (e_main_sat + e_small_sat - fees) as i64).await;
    assert_eq!(e_back.confirmed_sat, e_wallet + (e_main_sat + e_small_sat - fees) as i64, "eve's shares minus the fees ({fees} sat)");
    assert!(fees <= 2 * 200 * MAX_SAT_PER_VB, "two cooperative closes cost {fees} sat");
    eve.wait_channel_state(&main, "CLOSED").await;

    // ---- force close by eve (second small one) and by alice (third) ----
    let (a_wallet, e_wallet) = (alice.balance().await.confirmed_sat, eve.balance().await.confirmed_sat);
    let (a1, e1) = (local_msat(&alice, &small_ids[1]).await / 1000, eve.channel(&small[1]).await.unwrap().local_balance);
    let (a2, e2) = (local_msat(&alice, &small_ids[2]).await / 1000, eve.channel(&small[2]).await.unwrap().local_balance);
    let eve_force = eve.force_close_channel(&small[1]).await;
    alice.client().close_channel(CloseChannelRequest { channel_id: small_ids[2].clone(), force: true, sat_per_vbyte: String::new() }).await.unwrap();
    let alice_force = eve
        .wait_until("alice's commitment to reach Electrum", || async {
            eve.channel(&small[2]).await.and_then(|c| c.closing_txid).and_then(|t| t.parse::<lanes_regtest::bitcoin::Txid>().ok())
        })
        .await;
    net.mine(1).await;
    assert_eq!(net.tx_confirmations(eve_force).await, 1, "eve's commitment confirmed");
    assert_eq!(net.tx_confirmations(alice_force).await, 1, "alice's commitment confirmed (with its fee-paying child)");
    assert_eq!(close_of(&alice, &small_ids[1]).await.closing_txid, eve_force.to_string());
    assert_eq!(close_of(&alice, &small_ids[2]).await.closing_txid, alice_force.to_string());
    // Each side's own output waits for the other's to_self_delay (144 blocks both ways); the other
    // side's is theirs after one block. Mine past the delays and let both sweep.
    net.mine(150).await;
    eve.wait_synced().await;
    alice.wait_until("alice's sweeps to settle", || async {
        let closing: u64 = alice.closed_channels().await.iter().map(|c| c.claimable_sat).sum();
        let pending = !net.mempool().await.is_empty();
        match (closing, pending) {
            (0, false) => Ok(()),
            _ => {
                net.mine_without_waiting(1).await;
                Err(format!("{closing} sat still claimable, mempool busy: {pending}"))
            }
        }
    })
    .await;
    net.mine(1).await;
    eve.wait_synced().await;
    // Each got their share back, less the fees of the commitments, children and sweeps they paid for.
    let slack = 3 * 700 * MAX_SAT_PER_VB / 1;
    let a_back = alice.wait_confirmed_at_least(a_wallet + a1 + a2 - slack).await;
    assert!(a_back.confirmed_sat <= a_wallet + a1 + a2, "{a_back:?}");
    let e_back = eve.wait_confirmed_at_least(e_wallet + (e1 + e2 - slack) as i64).await;
    assert!(e_back.confirmed_sat <= e_wallet + (e1 + e2) as i64, "{e_back:?}");
    for point in &small[1..] {
        let state = eve.channel(point).await.map(|c| c.state);
        assert!(matches!(state.as_deref(), Some("CLOSED" | "REDEEMED")), "{point}: {state:?}");
    }
}
