//! What the control API's security costs per call: GetInfo on a lanesd with TLS and macaroons (the
//! default) against GetInfo on a lanesd started with `--no-tls --no-macaroons`, both real processes on one
//! regtest bitcoind, in one run, one call at a time over one connection each. Prints calls/s, the mean
//! per call and the ratio.
//!
//! `cargo bench -p lanes-node --bench api_auth` (knob: `LANES_BENCH_CALLS`, default 3000).
use std::time::{Duration, Instant};

use lanes_regtest::proto::v1::GetInfoRequest;
use lanes_regtest::{Net, Node};

async fn measure(node: &Node, calls: usize) -> Duration {
    let mut client = node.client();
    for _ in 0..200 {
        client.get_info(GetInfoRequest {}).await.expect("GetInfo (warm-up)");
    }
    let start = Instant::now();
    for _ in 0..calls {
        client.get_info(GetInfoRequest {}).await.expect("GetInfo");
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::var("LANES_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let lanesd = std::env::var("LANESD_EXE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lanesd").to_string());
    let net = Net::start_with(lanesd).await;
    let secured = net.node("secured").await;
    let open = net.node_with("open", &["--no-tls", "--no-macaroons"]).await;
    // Interleaved rounds, so drift on the machine hits both alike.
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        without += measure(&open, calls).await;
        with += measure(&secured, calls).await;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (3 * calls) as f64;
    println!("GetInfo, {} calls each, one at a time", 3 * calls);
    println!("{:<28} {:>10} {:>12}", "", "calls/s", "us per call");
    println!("{:<28} {:>10.0} {:>12.1}", "--no-tls --no-macaroons", 1e6 / per(without), per(without));
    println!("{:<28} {:>10.0} {:>12.1}", "TLS + macaroon (default)", 1e6 / per(with), per(with));
    println!("cost of security: {:+.1}% per call (ratio {:.3})", (per(with) / per(without) - 1.0) * 100.0, per(with) / per(without));
}
