//! Sequential payment latency over one channel: keysends of 1,000 sat from alice to bob, one at a time, on
//! two real lanesd processes over one regtest bitcoind. With `LANES_BASELINE_LANESD` set to another lanesd
//! binary (an older build, say), the same run measures it too, on its own pair, and prints the ratio.
//!
//! `cargo bench -p lanes-node --bench payments` (knob: `LANES_BENCH_PAYMENTS`, default 300).
use std::time::{Duration, Instant};

use lanes_regtest::{Net, Pair};

/// p50, p99 and payments/s of `n` sequential keysends on a fresh pair run by `lanesd`.
async fn run(lanesd: &str, n: usize) -> (Duration, Duration, f64) {
    let net = Net::start_with(lanesd).await;
    let Pair { alice, bob, .. } = net.pair(2_200_000, 2_000_000).await;
    for _ in 0..20 {
        alice.keysend(&bob, 1_000_000).await.expect("warm-up keysend");
    }
    let mut took = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let p = alice.keysend(&bob, 1_000_000).await.expect("keysend");
        assert_eq!(p.status, lanes_regtest::proto::v1::PaymentStatus::Succeeded as i32, "{p:?}");
        took.push(t.elapsed());
    }
    let total = start.elapsed();
    took.sort();
    (took[n / 2], took[n * 99 / 100], n as f64 / total.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("LANES_BENCH_PAYMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let this = env!("CARGO_BIN_EXE_lanesd").to_string();
    let baseline = std::env::var("LANES_BASELINE_LANESD").ok();
    println!("{n} keysends of 1,000 sat, one at a time, over one 2,000,000 sat channel");
    println!("{:<12} {:>10} {:>10} {:>12}", "lanesd", "p50 ms", "p99 ms", "payments/s");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p99, rate) = run(&this, n).await;
    println!("{:<12} {:>10.1} {:>10.1} {:>12.1}", "this build", ms(p50), ms(p99), rate);
    if let Some(base) = baseline {
        let (b50, b99, brate) = run(&base, n).await;
        println!("{:<12} {:>10.1} {:>10.1} {:>12.1}", "baseline", ms(b50), ms(b99), brate);
        println!("p50 ratio this/baseline: {:.2}; payments/s ratio: {:.2}", ms(p50) / ms(b50), rate / brate);
    }
}
