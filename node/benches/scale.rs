//! Scale: does a payment cost the same when the node has many channels, or a long history? Two real lanesd
//! processes (alice pays bob) on one regtest bitcoind; each row is compared with the same pair before it grew,
//! in the same run, and the ratio is printed (issue 14: within 20%; start-up under 2 s with 1,000 channels).
//!
//! `cargo bench -p lanes-node --bench scale`
//!
//! Channels (`LANES_BENCH_CHANNELS`, default 1000; 0 skips): alice opens one 16,000,000 sat channel to bob and
//! measures; then opens the rest (100,000 sat each, zero-conf: bob trusts alice, since LDK refuses more than 4
//! unconfirmed inbound channels per peer otherwise; a block every 20 opens keeps bitcoind's unconfirmed chains
//! short), confirms them all and measures again. Those channels are to bob too, so both nodes hold them all;
//! with `LANES_BENCH_ELSEWHERE=1` they are to a third node, carol, and only alice holds them. Each
//! measurement: `LANES_BENCH_PAYMENTS` (default 300) keysends of 1,000 sat one at a time (p50;
//! `LANES_BENCH_SEQ_PAYMENTS` sets this count alone), as many with `LANES_BENCH_IN_FLIGHT` (default 64) in
//! flight (payments/s, and alice's and bob's CPU and alice's bytes written per payment meanwhile), then a
//! graceful restart of alice timed from process start to GetInfo `synced_to_chain` at the tip, her resident
//! memory after it and her data dir's size. Then rounds (`LANES_BENCH_ROUNDS`, default 5; 0 skips): dave pays
//! erin over their one channel (of the same size, opened at the start) and alice pays bob with all her
//! channels, `LANES_BENCH_PAYMENTS` each with `LANES_BENCH_IN_FLIGHT` in flight, in turn (ABBA: dave first in
//! even rounds), and the median of the rounds' ratios is printed. The two rows above are measured minutes
//! apart, and single runs of one build gave ratios from 0.43 to 0.68; each round's pair is seconds apart.
//!
//! History (`LANES_BENCH_HISTORY`, default 0; issue 14 names 100000): on a fresh pair with one 10,000,000 sat
//! channel, measures the sequential p50 over the first payments, sends that many payments back and forth at
//! `LANES_BENCH_IN_FLIGHT` (so the balance stays put), and measures again, with bytes written per payment and
//! the data dir's size at each end; with `LANES_BENCH_FORGET=1`, once more 8 minutes later, when LDK has dropped
//! the burst's payments from the ChannelManager (it keeps 7 minutes of them, for idempotency).
use std::time::{Duration, Instant};

use lanes_regtest::proto::v1::OpenChannelRequest;
use lanes_regtest::{Net, Node};

mod support;
use support::{cpu_time, drive, rss_bytes, write_bytes};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One row: payments over a node at some size.
struct Row {
    what: String,
    p50: Duration,
    rate: f64,
    /// alice's and bob's CPU per payment while `in_flight` were under way.
    cpu: [Duration; 2],
    /// Bytes alice wrote to disk per payment meanwhile.
    written: f64,
    failed: usize,
    startup: Duration,
    rss: u64,
    data: u64,
}

/// Sequential p50, rate at `in_flight`, then a timed restart of `alice`.
async fn measure(what: String, alice: &Node, bob: &Node, n: usize, in_flight: usize) -> Row {
    let seq = drive(alice, bob, env("LANES_BENCH_SEQ_PAYMENTS", n), 1).await;
    let cpu_before = [cpu_time(alice), cpu_time(bob)];
    let written_before = write_bytes(alice);
    let par = drive(alice, bob, n, in_flight).await;
    let paid = par.succeeded().max(1);
    let written = write_bytes(alice).saturating_sub(written_before) as f64 / paid as f64;
    let per_payment = |now: Duration, before: Duration| now.saturating_sub(before) / paid as u32;
    let cpu = [per_payment(cpu_time(alice), cpu_before[0]), per_payment(cpu_time(bob), cpu_before[1])];
    for (how, d) in [("one at a time", &seq), (&*format!("{in_flight} in flight"), &par)] {
        if let Some(first) = &d.failed.1 {
            println!("{what}, {how}: {} of {} failed; the first: {first}", d.failed.0, d.took.len());
        }
    }
    alice.stop().await;
    let t = Instant::now();
    // start() returns once GetInfo says synced_to_chain at bitcoind's tip.
    alice.start().await;
    let startup = t.elapsed();
    let rss = rss_bytes(alice);
    Row { what, p50: seq.p50(), rate: par.rate(), cpu, written, failed: seq.failed.0 + par.failed.0, startup, rss, data: lanes_store::dir_size(alice.data_dir()) }
}

async fn channels(lanesd: &str, count: usize, n: usize, in_flight: usize) {
    let net = Net::start_with(lanesd).await;
    let alice = net.node("alice").await;
    let bob = net.node_with("bob", &["--trusted-peer-0conf", &alice.node_id()]).await;
    // LANES_BENCH_ELSEWHERE=1: the other channels go to carol, so only alice holds them all and bob keeps one.
    let carol = match std::env::var("LANES_BENCH_ELSEWHERE").is_ok_and(|v| v == "1") {
        true => Some(net.node_with("carol", &["--trusted-peer-0conf", &alice.node_id()]).await),
        false => None,
    };
    let other = carol.as_ref().unwrap_or(&bob);
    let rounds = env("LANES_BENCH_ROUNDS", 5);
    // The rounds' baseline: dave pays erin over one channel, as alice does before she opens the others.
    let baseline = match rounds {
        0 => None,
        _ => Some((net.node("dave").await, net.node("erin").await)),
    };
    // Room for every payment of the run one way (alice: 2 rows and the rounds, each `n` and a few more;
    // LANES_BENCH_PAYMENTS=2000 with 5 rounds moves 14.1 M sat), below LDK's largest channel without wumbo.
    const FIRST: u64 = 16_000_000;
    // The first channel and 100,000 for each other one, with room for fees, in 10 coins.
    let total = FIRST + 110_000 * count as u64 + 1_000_000;
    for _ in 0..10 {
        net.send_to_address(alice.new_address().await, total / 10).await;
    }
    if let Some((dave, _)) = &baseline {
        for _ in 0..2 {
            net.send_to_address(dave.new_address().await, (FIRST + 1_000_000) / 2).await;
        }
    }
    net.mine(1).await;
    alice.wait_confirmed_at_least(total / 10 * 10).await;
    alice.connect(&bob).await;
    let first = alice.open_channel_with(&bob, OpenChannelRequest { local_funding_sat: FIRST, ..Default::default() }).await;
    let dave_erin = match &baseline {
        Some((dave, erin)) => {
            dave.wait_confirmed_at_least((FIRST + 1_000_000) / 2 * 2).await;
            dave.connect(erin).await;
            Some(dave.open_channel_with(erin, OpenChannelRequest { local_funding_sat: FIRST, ..Default::default() }).await)
        }
        None => None,
    };
    net.mine(6).await;
    alice.wait_channel_active(&first).await;
    if let (Some((dave, erin)), Some(id)) = (&baseline, &dave_erin) {
        dave.wait_channel_active(id).await;
        drive(dave, erin, 20, 1).await;
    }
    drive(&alice, &bob, 20, 1).await;
    let one = measure("1 channel".into(), &alice, &bob, n, in_flight).await;
    alice.connect(&bob).await;
    alice.wait_channel_active(&first).await;

    if carol.is_some() {
        alice.connect(other).await;
    }
    let t = Instant::now();
    for i in 1..count {
        alice.open_channel_with(other, OpenChannelRequest { local_funding_sat: 100_000, zero_conf: true, private: true, ..Default::default() }).await;
        if i % 20 == 0 {
            net.mine(1).await;
        }
    }
    let opened = t.elapsed();
    net.mine(6).await;
    alice
        .wait_until(format!("{count} active channels"), || async {
            let active = alice.channels().await.iter().filter(|c| c.active).count();
            (active == count).then_some(()).ok_or(format!("{active} active"))
        })
        .await;
    println!("opened {} more channels to {} in {:.1} s ({:.0} ms each), all active", count - 1, other.name(), opened.as_secs_f64(), ms(opened) / (count - 1).max(1) as f64);
    drive(&alice, &bob, 20, 1).await;
    let many = measure(format!("{count} channels"), &alice, &bob, n, in_flight).await;

    println!();
    println!("{n} keysends of 1,000 sat one at a time (p50), then {n} with {in_flight} in flight (payments/s); then alice restarts");
    println!("{:<14} {:>8} {:>11} {:>15} {:>10} {:>7} {:>12} {:>9} {:>9}", "alice has", "p50 ms", "payments/s", "CPU ms a+b", "a KB/pay", "failed", "start-up s", "RSS MB", "data MB");
    for r in [&one, &many] {
        println!(
            "{:<14} {:>8.1} {:>11.1} {:>15} {:>10.1} {:>7} {:>12.2} {:>9.1} {:>9.1}",
            r.what,
            ms(r.p50),
            r.rate,
            format!("{:.2} + {:.2}", ms(r.cpu[0]), ms(r.cpu[1])),
            r.written / 1e3,
            r.failed,
            r.startup.as_secs_f64(),
            r.rss as f64 / 1e6,
            r.data as f64 / 1e6
        );
    }
    println!(
        "ratio {count} channels / 1 channel: p50 {:.2}, payments/s {:.2}, start-up {:.2}",
        ms(many.p50) / ms(one.p50).max(1e-9),
        many.rate / one.rate.max(1e-9),
        many.startup.as_secs_f64() / one.startup.as_secs_f64().max(1e-9)
    );
    if let Some((dave, erin)) = &baseline {
        // alice restarted at the end of her row: back to bob, and warmed up as before each row.
        alice.connect(&bob).await;
        alice.wait_channel_active(&first).await;
        drive(&alice, &bob, 20, 1).await;
        in_turn(&alice, &bob, dave, erin, count, rounds, n, in_flight).await;
    }
}

/// `rounds` rounds of `n` keysends with `in_flight` in flight: dave (one channel) to erin, and alice (`count`
/// channels) to bob, in turn, dave first in even rounds so that a drift over the run counts against each
/// alike. Prints each round and the median ratio.
#[allow(clippy::too_many_arguments)]
async fn in_turn(alice: &Node, bob: &Node, dave: &Node, erin: &Node, count: usize, rounds: usize, n: usize, in_flight: usize) {
    // Payments/s, and the payer's CPU per payment.
    async fn one(payer: &Node, payee: &Node, n: usize, in_flight: usize) -> (f64, Duration) {
        let before = cpu_time(payer);
        let d = drive(payer, payee, n, in_flight).await;
        if let Some(first) = &d.failed.1 {
            println!("{} to {}: {} of {} failed; the first: {first}", payer.name(), payee.name(), d.failed.0, d.took.len());
        }
        (d.rate(), cpu_time(payer).saturating_sub(before) / d.succeeded().max(1) as u32)
    }
    println!();
    println!("{rounds} rounds of {n} keysends with {in_flight} in flight: dave (1 channel) and alice ({count} channels) in turn");
    println!("{:<7} {:>14} {:>15} {:>7} {:>24}", "round", "dave paym./s", "alice paym./s", "ratio", "CPU ms/payment d / a");
    let mut ratios = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let ((d, d_cpu), (a, a_cpu)) = match r % 2 {
            0 => {
                let d = one(dave, erin, n, in_flight).await;
                (d, one(alice, bob, n, in_flight).await)
            }
            _ => {
                let a = one(alice, bob, n, in_flight).await;
                (one(dave, erin, n, in_flight).await, a)
            }
        };
        let ratio = a / d.max(1e-9);
        ratios.push(ratio);
        println!("{:<7} {:>14.1} {:>15.1} {:>7.2} {:>24}", r + 1, d, a, ratio, format!("{:.2} / {:.2}", ms(d_cpu), ms(a_cpu)));
    }
    ratios.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
        println!("ratio {count} channels / 1 channel, payments/s in turn: median {:.2} of {rounds} rounds ({lo:.2}-{hi:.2})", ratios[ratios.len() / 2]);
    }
}

async fn history(lanesd: &str, payments: usize, n: usize, in_flight: usize) {
    let net = Net::start_with(lanesd).await;
    let pair = net.pair(11_000_000, 10_000_000).await;
    let (alice, bob) = (pair.alice.clone(), pair.bob.clone());
    // bob needs a balance to pay back with.
    drive(&alice, &bob, 1_000, in_flight).await;
    let first = drive(&alice, &bob, n, 1).await;
    let (data_before, written_before, rss_before) = (lanes_store::dir_size(alice.data_dir()), write_bytes(&alice), rss_bytes(&alice));
    let t = Instant::now();
    let mut sent = 0;
    let mut failed = 0;
    while sent < payments {
        let chunk = (payments - sent).min(2_000);
        let (a, b) = tokio::join!(drive(&alice, &bob, chunk / 2, in_flight / 2), drive(&bob, &alice, chunk / 2, in_flight / 2));
        failed += a.failed.0 + b.failed.0;
        sent += chunk;
        if sent % 20_000 == 0 {
            println!("{sent} payments sent ({:.0}/s so far), {failed} failed", sent as f64 / t.elapsed().as_secs_f64());
        }
    }
    let written = (write_bytes(&alice) - written_before) as f64 / sent as f64;
    let after = drive(&alice, &bob, n, 1).await;
    let (data_after, rss_after) = (lanes_store::dir_size(alice.data_dir()), rss_bytes(&alice));
    // LDK keeps every payment of the last 7 timer ticks (7 minutes) in the ChannelManager, for idempotency,
    // and every flush writes the manager: right after a burst it is large. With LANES_BENCH_FORGET=1, measure
    // again once LDK has let go of them.
    let forgotten = match std::env::var("LANES_BENCH_FORGET").is_ok_and(|v| v == "1") {
        true => {
            println!("waiting 8 minutes for LDK to forget the burst's payments");
            tokio::time::sleep(Duration::from_secs(8 * 60)).await;
            Some((drive(&alice, &bob, n, 1).await, rss_bytes(&alice)))
        }
        false => None,
    };
    println!();
    println!("history: {sent} payments back and forth over one channel in {:.0} s, {failed} failed", t.elapsed().as_secs_f64());
    println!("{:<22} {:>8} {:>8} {:>9} {:>9}", "alice's channel", "p50 ms", "p99 ms", "data MB", "RSS MB");
    let mb = |b: u64| b as f64 / 1e6;
    println!("{:<22} {:>8.1} {:>8.1} {:>9.1} {:>9.1}", "first payments", ms(first.p50()), ms(first.p99()), mb(data_before), mb(rss_before));
    println!("{:<22} {:>8.1} {:>8.1} {:>9.1} {:>9.1}", format!("after {sent} more"), ms(after.p50()), ms(after.p99()), mb(data_after), mb(rss_after));
    if let Some((f, rss)) = &forgotten {
        println!("{:<22} {:>8.1} {:>8.1} {:>9.1} {:>9.1}", "8 minutes later", ms(f.p50()), ms(f.p99()), mb(lanes_store::dir_size(alice.data_dir())), mb(*rss));
        println!("ratio 8 minutes later/first: p50 {:.2}", ms(f.p50()) / ms(first.p50()).max(1e-9));
    }
    println!("ratio after/first: p50 {:.2}; alice wrote {:.1} KB per payment meanwhile", ms(after.p50()) / ms(first.p50()).max(1e-9), written / 1e3);
}

#[tokio::main]
async fn main() {
    // LANES_BENCH_LANESD: another lanesd binary to measure (an older build, say), instead of this build's.
    let this = std::env::var("LANES_BENCH_LANESD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lanesd").to_string());
    let lanesd = this.as_str();
    let n = env("LANES_BENCH_PAYMENTS", 300);
    let in_flight = env("LANES_BENCH_IN_FLIGHT", 64).max(2);
    let count = env("LANES_BENCH_CHANNELS", 1000);
    if count > 1 {
        channels(lanesd, count, n, in_flight).await;
    }
    let payments = env("LANES_BENCH_HISTORY", 0);
    if payments > 0 {
        history(lanesd, payments, n, in_flight).await;
    }
}
