//! Active/standby on one PostgreSQL database: two lanesd instances with one seed; the one holding the lease
//! runs the node, the other waits. Killed, the active is replaced within seconds and no payment is lost or
//! doubled; cut off from the database, it stops itself before the standby may take over, so two instances
//! never sign for the same channels; restarted, the old active becomes the standby.
use std::time::{Duration, Instant};

use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node, SYNC_TIMEOUT};
use tonic::Code;

const CAPACITY: u64 = 1_000_000;
/// The bar: a standby takes over within 10 s of the active instance dying.
const TAKEOVER: Duration = Duration::from_secs(10);

async fn channel(n: &Node) -> Option<Channel> {
    n.client().list_channels(ListChannelsRequest::default()).await.ok()?.into_inner().channels.into_iter().next()
}

/// Every payment bob made has ended; returns the msat his succeeded ones sent.
async fn bob_settled(bob: &Node) -> u64 {
    let payments = bob
        .wait_until("every payment of bob's to end", || async {
            let p = bob.client().list_payments(ListPaymentsRequest {}).await.map_err(|e| e.to_string())?.into_inner().payments;
            match p.iter().filter(|p| p.status == PaymentStatus::InFlight as i32).count() {
                0 => Ok(p),
                n => Err(format!("{n} of {} still in flight", p.len())),
            }
        })
        .await;
    payments.iter().filter(|p| p.status == PaymentStatus::Succeeded as i32).map(|p| p.amount_msat).sum()
}

/// The channel is the one bob opened, active on both ends, and its balances account for every msat
/// bob's succeeded payments sent; nothing was closed.
async fn check_channel(bob: &Node, alice: &Node, channel_id: &str, sent: u64) {
    for n in [bob, alice] {
        n.wait_until("the channel to be usable", || async { channel(n).await.map_or(false, |c| c.active) }).await;
    }
    let (b, a) = (channel(bob).await.unwrap(), channel(alice).await.unwrap());
    assert_eq!((b.channel_id.as_str(), a.channel_id.as_str()), (channel_id, channel_id));
    assert_eq!(a.local_balance_msat, sent, "{}: received exactly what bob sent", alice.name());
    assert_eq!(b.local_balance_msat, CAPACITY * 1000 - sent, "bob: {b:?}");
    assert!(bob.closed_channels().await.is_empty(), "bob closed nothing");
    assert!(alice.closed_channels().await.is_empty(), "{} closed nothing", alice.name());
}

/// The first log line holding `needle`, and its timestamp (tracing's RFC 3339, UTC: sorts as text).
fn logged_at(node: &Node, needle: &str) -> String {
    let log = std::fs::read_to_string(node.log_path()).unwrap();
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {}'s log", node.name()));
    line.split_whitespace().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_standby_takes_over_within_seconds_when_the_active_instance_is_killed_during_payments() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let bob = net.node("bob").await;
    let alice = net.node_on_postgres("alice", &[]).await;
    let standby = net.standby_of(&alice, "alice_standby").await;

    let active = alice.info().await;
    assert_eq!((active.role.as_str(), active.lease_epoch), ("active", 1));
    let waiting = standby.info().await;
    assert_eq!((waiting.role.as_str(), waiting.lease_epoch, waiting.lease_holder.as_str()), ("standby", 1, active.lease_holder.as_str()));
    assert!(waiting.node_id.is_empty(), "a standby has loaded no node state");
    let refused = standby.client().wallet_balance(WalletBalanceRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("standby") && refused.message().contains(&active.lease_holder), "{}", refused.message());

    let channel_id = net.fund_and_open(&bob, &alice, 2 * CAPACITY, CAPACITY).await;
    // A stream of keysends from bob to alice; alice is killed in the middle of it.
    let mut calls = Vec::new();
    for i in 0..40u64 {
        let (bob, alice) = (bob.clone(), alice.clone());
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            let _ = bob.keysend(&alice, (1_000 + i) * 1000).await;
        }));
    }
    // Killed once the first has succeeded (so the stream is under way, with the rest still to come), not
    // after a fixed time: on a slow machine that could come before any payment got through.
    bob.wait_until("a first keysend of the stream to succeed", || async {
        let p = bob.client().list_payments(ListPaymentsRequest {}).await.map_err(|e| e.to_string())?.into_inner().payments;
        match p.iter().any(|p| p.status == PaymentStatus::Succeeded as i32) {
            true => Ok(()),
            false => Err(format!("{} payments, none succeeded yet", p.len())),
        }
    })
    .await;
    alice.kill().await;
    let killed = Instant::now();
    let now_active = standby.wait_active(TAKEOVER).await;
    let took = killed.elapsed();
    eprintln!("failover: the standby was active and synced {:.1} s after the kill", took.as_secs_f64());
    assert_eq!((now_active.role.as_str(), now_active.lease_epoch), ("active", 2));
    assert_eq!(now_active.node_id, active.node_id, "the same node: one seed");
    for c in calls {
        let _ = c.await;
    }

    // The new active reconnects to bob; every payment ended; every msat accounted for on both sides.
    let sent = bob_settled(&bob).await;
    check_channel(&bob, &standby, &channel_id, sent).await;
    assert!(sent > 0, "some payments got through");
    let after = bob.keysend(&standby, 7_000_000).await.expect("keysend after the takeover");
    assert_eq!(after.status, PaymentStatus::Succeeded as i32, "{after:?}");
    check_channel(&bob, &standby, &channel_id, sent + 7_000_000).await;

    // The old active, started again, is now the standby.
    alice.start_standby().await;
    let info = alice.info().await;
    assert_eq!((info.role.as_str(), info.lease_epoch, info.lease_holder.as_str()), ("standby", 2, now_active.lease_holder.as_str()));
    assert_eq!(logged_at(&standby, "database lease acquired").is_empty(), false);
}

#[tokio::test]
async fn an_active_instance_cut_off_from_its_database_stops_before_the_standby_takes_over() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let proxy = net.postgres_proxy().await;
    let bob = net.node("bob").await;
    let alice = net.node_on_postgres_through("alice", &proxy).await;
    let standby = net.standby_of(&alice, "alice_standby").await;
    let channel_id = net.fund_and_open(&bob, &alice, 2 * CAPACITY, CAPACITY).await;
    let first = bob.keysend(&alice, 3_000_000).await.expect("keysend");
    assert_eq!(first.status, PaymentStatus::Succeeded as i32, "{first:?}");

    // The partition: alice still talks to bob but no longer reaches the database. A payment made now
    // needs a write alice cannot make: she must not answer it, and must stop in time.
    proxy.cut();
    let (payer, payee) = (bob.clone(), alice.clone());
    let during = tokio::spawn(async move { payer.keysend(&payee, 4_000_000).await });
    let status = alice.wait_for_exit(SYNC_TIMEOUT).await;
    assert_eq!(status.code(), Some(3), "alice stops herself: {status:?}");
    let stopped_at = logged_at(&alice, "fatal: lost the database lease");

    let now_active = standby.wait_active(SYNC_TIMEOUT).await;
    assert_eq!(now_active.lease_epoch, 2);
    let took_over_at = logged_at(&standby, "database lease acquired");
    assert!(stopped_at < took_over_at, "alice stopped ({stopped_at}) before the standby took over ({took_over_at})");
    let during = during.await.expect("task");
    eprintln!("the payment made during the partition: {during:?}");

    let sent = bob_settled(&bob).await;
    check_channel(&bob, &standby, &channel_id, sent).await;
    assert!(sent == 3_000_000 || sent == 7_000_000, "{sent}");
    let after = bob.keysend(&standby, 5_000_000).await.expect("keysend after the takeover");
    assert_eq!(after.status, PaymentStatus::Succeeded as i32, "{after:?}");
    check_channel(&bob, &standby, &channel_id, sent + 5_000_000).await;

    // The partition heals; alice, started again, waits as the standby.
    proxy.heal();
    alice.start_standby().await;
    assert_eq!(alice.info().await.lease_epoch, 2);
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    assert!(!log.contains("force-clos") && !log.contains("Force-clos"), "bob saw no force close");
}
