//! A force close with HTLCs pending: each resolves on-chain the right way, and the forwarding node
//! loses nothing but on-chain fees.
//!
//! alice pays carol twice through bob, each time to a hold invoice, so both HTLCs sit in bob—carol when
//! bob force-closes that channel. carol then settles the first: she claims it on-chain with the preimage,
//! bob learns the preimage from the chain and is paid by alice. The second is never settled: once it
//! expires bob takes it back on-chain with a timeout transaction and fails it back to alice.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{wait_until_logged, Line, Net, SYNC_TIMEOUT};

const CAPACITY: u64 = 1_000_000;
const SETTLED_MSAT: u64 = 70_000_000;
const EXPIRED_MSAT: u64 = 40_000_000;
/// Upper bound on bob's on-chain fees: commitment, timeout and sweep transactions.
const FEES: u64 = 30_000;
/// Blocks mined between two checks while waiting for timeouts and CSV delays.
const BLOCKS_PER_CHECK: u64 = 3;

#[tokio::test]
async fn htlcs_resolve_on_chain_after_a_force_close() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Line { alice, bob, carol, alice_bob: ab, bob_carol: bc } = net.line(2 * CAPACITY, CAPACITY).await;

    let to_settle = carol.held_payment_from(&alice, SETTLED_MSAT, [7; 32]).await;
    let to_expire = carol.held_payment_from(&alice, EXPIRED_MSAT, [9; 32]).await;

    // What bob has before: his side of both channels (HTLCs he forwards still count as his in bob—carol)
    // and his wallet.
    let bob_before = bob.channel(&ab).await.unwrap().local_balance_msat / 1000
        + bob.channel(&bc).await.unwrap().local_balance_msat / 1000
        + (SETTLED_MSAT + EXPIRED_MSAT) / 1000
        + bob.balance().await.confirmed_sat;
    let carol_wallet = carol.balance().await.confirmed_sat;

    bob.client().close_channel(CloseChannelRequest { channel_id: bc.clone(), force: true, ..Default::default() }).await.expect("force close");
    bob.wait_until("bob's commitment in the mempool", || async { !net.mempool().await.is_empty() }).await;
    net.mine(1).await;
    carol.client().settle_invoice(SettleInvoiceRequest { preimage: to_settle.preimage.clone() }).await.expect("settle");

    // Mine a few blocks per check (each node still processes them one by one) until both payments have
    // their outcome at alice.
    let logs = [alice.log_path(), bob.log_path(), carol.log_path()];
    wait_until_logged(SYNC_TIMEOUT * 8, "both HTLCs to resolve", &logs, || async {
        net.mine(BLOCKS_PER_CHECK).await;
        let p = alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments;
        let done = p.iter().filter(|p| p.status != PaymentStatus::InFlight as i32).count();
        match done == 2 {
            true => Ok(()),
            false => Err(format!("{done} of 2 payments resolved at height {}", net.height().await)),
        }
    })
    .await;
    let settled = to_settle.payer_call.await.unwrap().expect("pay");
    let expired = to_expire.payer_call.await.unwrap().expect("pay");
    assert_eq!(settled.status, PaymentStatus::Succeeded as i32, "claimed on-chain with the preimage: {settled:?}");
    assert_eq!(settled.preimage, to_settle.preimage);
    assert_eq!(expired.status, PaymentStatus::Failed as i32, "timed out on-chain and failed back: {expired:?}");

    // carol got the settled HTLC on-chain, and her invoice says so.
    let inv = carol.client().lookup_invoice(LookupInvoiceRequest { payment_hash: to_settle.payment_hash }).await.unwrap().into_inner();
    assert_eq!(inv.state, InvoiceState::Settled as i32);
    carol.wait_confirmed_at_least(carol_wallet + SETTLED_MSAT / 1000 - FEES).await;

    // bob, the forwarding node, ends with everything he had (plus his fee) minus on-chain fees, once
    // his delayed outputs are swept. Mine until they are.
    let bob_after = wait_until_logged(SYNC_TIMEOUT * 8, "bob to recover his side of the closed channel", &logs, || async {
        net.mine(BLOCKS_PER_CHECK).await;
        let closed = bob.closed_channels().await;
        let pending: u64 = closed.iter().map(|c| c.claimable_sat).sum();
        let have = bob.channel(&ab).await.unwrap().local_balance_msat / 1000 + bob.balance().await.confirmed_sat;
        match pending == 0 && have + FEES >= bob_before {
            true => Ok(have),
            false => Err(format!("bob has {have} sat, {pending} sat still claimable; had {bob_before}")),
        }
    })
    .await;
    assert!(bob_after <= bob_before + 1_000, "bob gained at most his forwarding fee: {bob_after} vs {bob_before}");
}
