//! Nodes on the PostgreSQL store (`--db postgres://…`), on a real PostgreSQL server (Debian's package, started
//! by the harness on 127.0.0.1): the everyday story works as on sled, nothing of a node's state is on its
//! local disk, and a database that goes away stops the node (it never runs on without persisting) until it
//! is back. The crash story on PostgreSQL is in crash.rs.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, SYNC_TIMEOUT};

#[tokio::test]
async fn a_pair_on_postgres_opens_pays_restarts_and_closes() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node_on_postgres("alice", &[]).await;
    let bob = net.node_on_postgres("bob", &[]).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;

    let invoice = bob.add_invoice(10_000_000, "coffee").await;
    let paid = alice.pay_invoice(&invoice.bolt11).await.expect("pay");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    let sent = alice.keysend(&bob, 5_000_000).await.expect("keysend");
    assert_eq!(sent.status, PaymentStatus::Succeeded as i32, "{sent:?}");
    let before = alice.channel(&channel).await.expect("open");
    let fees = paid.fee_msat + sent.fee_msat;
    assert_eq!(fees, 0, "a direct payment pays no routing fee");

    // Both restart: everything comes back from PostgreSQL.
    alice.restart().await;
    bob.restart().await;
    alice.wait_channel_active(&channel).await;
    bob.wait_channel_active(&channel).await;
    let after = alice.channel(&channel).await.expect("still open");
    assert_eq!(after.local_balance_msat, before.local_balance_msat);
    assert_eq!(bob.channel(&channel).await.unwrap().local_balance_msat, 15_000_000);
    let payments = alice.client().list_payments(ListPaymentsRequest {}).await.unwrap().into_inner().payments;
    assert_eq!(payments.iter().filter(|p| p.status == PaymentStatus::Succeeded as i32).map(|p| p.amount_msat).sum::<u64>(), 15_000_000);
    let invoices = bob.client().list_invoices(ListInvoicesRequest {}).await.unwrap().into_inner().invoices;
    assert!(invoices.iter().any(|i| i.bolt11 == invoice.bolt11 && i.state == InvoiceState::Settled as i32), "{invoices:?}");

    // Payments flow after the restart, and a cooperative close confirms.
    let again = bob.keysend(&alice, 2_000_000).await.expect("keysend back");
    assert_eq!(again.status, PaymentStatus::Succeeded as i32, "{again:?}");
    assert_eq!(alice.channel(&channel).await.unwrap().local_balance_msat, before.local_balance_msat + 2_000_000);
    let closed = alice.client().close_channel(CloseChannelRequest { channel_id: channel.clone(), force: false, sat_per_vbyte: String::new() }).await.unwrap().into_inner();
    alice.wait_until("the closing transaction in the mempool", || async { net.mempool().await.iter().any(|t| t.to_string() == closed.closing_txid) }).await;
    net.mine(1).await;
    for n in [&alice, &bob] {
        n.wait_until("the channel to be listed as closed", || async { n.closed_channels().await.iter().any(|c| c.channel_id == channel) }).await;
    }
    bob.wait_confirmed_at_least(13_000).await;

    for n in [&alice, &bob] {
        assert!(!n.data_dir().join("db").exists(), "{}: no local sled store", n.name());
        let log = std::fs::read_to_string(n.log_path()).unwrap();
        let opened = log.lines().find(|l| l.contains("store opened on PostgreSQL")).expect("the store line");
        assert!(opened.contains(&format!("postgres://lanes@127.0.0.1:{}/{}", net.postgres().await.port(), n.name())), "{opened}");
        assert!(!log.contains(lanes_regtest::POSTGRES_PASSWORD), "{}: the database password is in the log", n.name());
    }
}

/// PostgreSQL stops under a running node: the node cannot persist a channel update, so it stops itself
/// with a fatal line rather than run on (and sign) without its state being durable; started while the
/// database is away it refuses with the reason; once the database is back it starts, and nothing it
/// acknowledged is lost.
#[tokio::test]
async fn a_node_whose_database_goes_away_stops_and_starts_again_once_it_is_back() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_on_postgres("bob", &[]).await;
    let channel = net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;
    let paid = alice.keysend(&bob, 1_000_000).await.expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");

    let pg = net.postgres().await;
    pg.stop().await;
    let payer = alice.clone();
    let bob_for_task = bob.clone();
    let in_flight = tokio::spawn(async move { payer.keysend(&bob_for_task, 2_000_000).await });
    let status = bob.wait_for_exit(SYNC_TIMEOUT).await;
    assert!(!status.success(), "bob must exit with an error: {status:?}");
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    assert!(log.contains("fatal: the node cannot persist its state"), "no fatal line in bob's log");
    assert!(log.lines().filter(|l| l.contains("ERROR")).count() < 50, "bob spun instead of stopping");

    // Started while the database is away: a clear refusal, naming the database, and no half-started node.
    let status = bob.start_expecting_exit(SYNC_TIMEOUT).await;
    assert!(!status.success());
    let log = std::fs::read_to_string(bob.log_path()).unwrap();
    let last = log.lines().rev().find(|l| l.contains("lanesd: ")).expect("lanesd's exit line");
    assert!(last.contains(&format!("PostgreSQL at postgres://lanes@127.0.0.1:{}/bob", pg.port())), "{last}");

    pg.restart().await;
    bob.start().await;
    bob.wait_channel_active(&channel).await;
    alice.wait_channel_active(&channel).await;
    let second = in_flight.await.expect("task");
    let second_paid = matches!(&second, Ok(p) if p.status == PaymentStatus::Succeeded as i32);
    let expected_bob = 1_000_000 + if second_paid { 2_000_000 } else { 0 };
    assert_eq!(bob.channel(&channel).await.unwrap().local_balance_msat, expected_bob, "second payment: {second:?}");
    assert_eq!(alice.channel(&channel).await.unwrap().remote_balance_msat, expected_bob);
    assert!(bob.closed_channels().await.is_empty() && alice.closed_channels().await.is_empty(), "no channel closed");
    let third = alice.keysend(&bob, 3_000_000).await.expect("keysend after");
    assert_eq!(third.status, PaymentStatus::Succeeded as i32, "{third:?}");
}

/// On PostgreSQL the seed and the state live apart: an instance started with another seed on a node's
/// database refuses it (it could sign for none of its channels), says whose state it is, and leaves the
/// database to its node, which starts again at once.
#[tokio::test]
async fn an_instance_with_another_seed_refuses_a_database_holding_another_nodes_state() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node_on_postgres("alice", &[]).await;
    let id = alice.node_id();
    alice.stop().await;
    let pg = net.postgres().await;
    let password_file = pg.password_file().display().to_string();
    let (mallory, status) = net.node_refusing_to_start("mallory", &["--db", &pg.dsn("alice"), "--db-password-file", &password_file]).await;
    assert!(!status.success(), "{status:?}");
    let log = std::fs::read_to_string(mallory.log_path()).unwrap();
    assert!(log.contains(&format!("the store holds node {id}'s state, but this seed is node")), "mallory says why");
    assert!(log.contains("database lease released"), "mallory leaves the lease at once");

    alice.start().await;
    assert_eq!(alice.info().await.node_id, id);
}
