//! Failover time on the PostgreSQL store: an active lanesd and its standby (same seed, same database), a
//! channel from bob (sled) to them; the active is killed with SIGKILL and the clock runs until bob's first
//! keysend to the node succeeds again, served by the standby that took over. Also: until the standby reports
//! itself active and synced. Several runs; min, median and max.
//!
//! `cargo bench -p lanes-node --bench failover` (knob: `LANES_BENCH_RUNS`, default 5). Real processes on
//! regtest with a throw-away PostgreSQL (Debian's package, as the tests use). The lease timings it measures
//! are in `node/src/lease.rs` (5 s lease, renewed every second, a standby polling every second), so the bar
//! it is compared against is the 10 s.
use std::time::{Duration, Instant};

use lanes_regtest::proto::v1::PaymentStatus;
use lanes_regtest::Net;

/// The takeover bar issue 15 sets.
const BAR: Duration = Duration::from_secs(10);

async fn one_run() -> (Duration, Duration) {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let bob = net.node("bob").await;
    let alice = net.node_on_postgres("alice", &[]).await;
    let standby = net.standby_of(&alice, "alice_standby").await;
    net.fund_and_open(&bob, &alice, 2_000_000, 1_000_000).await;
    let paid = bob.keysend(&alice, 1_000_000).await.expect("keysend");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32);

    alice.kill().await;
    let killed = Instant::now();
    // Poll both ways at once: the standby's GetInfo, and bob paying the node (one node id: whichever instance
    // serves it).
    let active = async {
        standby.wait_active(Duration::from_secs(60)).await;
        killed.elapsed()
    };
    let served = async {
        loop {
            if matches!(bob.keysend(&alice, 1_000_000).await, Ok(p) if p.status == PaymentStatus::Succeeded as i32) {
                return killed.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::join!(active, served)
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let s = |d: Duration| d.as_secs_f64();
    (s(v[0]), s(v[v.len() / 2]), s(v[v.len() - 1]))
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("LANES_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    println!("failover on PostgreSQL: kill -9 of the active instance, {runs} runs");
    let (mut active, mut served) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let (a, s) = one_run().await;
        println!("run {}: standby active and synced after {:.2} s, first payment served after {:.2} s", i + 1, a.as_secs_f64(), s.as_secs_f64());
        active.push(a);
        served.push(s);
    }
    let (a_min, a_med, a_max) = stats(active);
    let (s_min, s_med, s_max) = stats(served);
    println!("{:<34} {:>8} {:>8} {:>8}", "seconds after the kill", "min", "median", "max");
    println!("{:<34} {:>8.2} {:>8.2} {:>8.2}", "standby active and synced", a_min, a_med, a_max);
    println!("{:<34} {:>8.2} {:>8.2} {:>8.2}", "first payment served", s_min, s_med, s_max);
    println!("worst first payment / the {} s bar: {:.2}", BAR.as_secs(), s_max / BAR.as_secs_f64());
}
