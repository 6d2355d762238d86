//! Sequential payment latency over one channel: keysends of 1,000 sat from alice to bob, one at a time, on
//! two real lanesd processes over one regtest bitcoind. With `LANES_BASELINE_LANESD` set to another lanesd
//! binary (an older build, say), the same run measures it too, on its own pair, and prints the ratio.
//!
//! `cargo bench -p lanes-node --bench payments` (knobs: `LANES_BENCH_PAYMENTS`, default 300; `LANES_BENCH_IN_FLIGHT`).
//!
//! With `LANES_BENCH_IN_FLIGHT=N` (default 1) the client keeps N keysends in flight instead of one, as issue 14
//! measures (16, 64, 256): latencies are then per call under load, and the table also counts the calls that
//! did not end in success (the baseline may refuse at once what this build waits for).
//!
//! With `LANES_BENCH_HOPS=2` the keysends go from alice to carol over bob (a 3-node line, two 2,000,000 sat
//! channels), as issue 14's "3-node line" row; CPU and bytes are then alice's and bob's (the forwarder).
//!
//! With `LANES_BENCH_POSTGRES=1` the same run also measures this build with both nodes on the PostgreSQL
//! store (a throw-away PostgreSQL server from Debian's package, on 127.0.0.1, as the tests use) and prints
//! its ratio to sled. Bytes written and CPU are then lanesd's own; PostgreSQL's server does the disk writes.
//!
//! With `LANES_BENCH_LDK_NODE=1` the same run also measures ldk-node 0.7 (crates.io, its default SQLite store)
//! the same way: two ldk-node nodes on a fresh regtest bitcoind, one channel of the same size, the same
//! keysends with the same number in flight, driven by `node/benches/ldk-node-peer` (a crate outside the
//! workspace, built here on first use, about 6 minutes), and prints the ratio for each figure. ldk-node runs both
//! nodes in one process, so its CPU and bytes are per payment for both nodes together. With `LANES_BENCH_HOPS=2`
//! it runs the 3-node line too (three ldk-node nodes, two announced channels; CPU and bytes for all three).
//!
//! With `LANES_BENCH_STRACE=1` (and `strace` installed) it also counts, on each node during the measured
//! payments, the calls that make storage durable (`fsync`, `fdatasync`, `sync_file_range`) and prints them
//! per payment, with each node's data dir size at the end. strace slows the nodes: read latency from a run
//! without it. Every run prints the bytes each node's process wrote to disk per payment (`write_bytes` of
//! `/proc/<pid>/io`).
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanes_regtest::{Net, Node, Pair};

mod support;
use support::{cpu_time, drive, write_bytes};

/// What one run measured.
struct Run {
    p50: Duration,
    p99: Duration,
    rate: f64,
    /// Per node (alice, bob): the sync calls strace counted, and the data dir's size in bytes.
    storage: Option<[(String, u64); 2]>,
    /// Per node (alice, bob): bytes written to disk per payment.
    written: [f64; 2],
    /// Calls that did not end in a succeeded payment, and the first such answer.
    failed: (usize, Option<String>),
    /// Per node (alice, bob): CPU time (user + system) per succeeded payment.
    cpu: [Duration; 2],
}

/// Attaches `strace -c` to a node for the sync calls (see the module doc).
fn strace(node: &Node, out: &std::path::Path) -> Child {
    Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync,sync_file_range", "-o"])
        .arg(out)
        .args(["-p", &node.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (LANES_BENCH_STRACE=1 needs it installed)")
}

/// The sync calls of an `strace -c` summary, as "name count" pairs.
fn sync_calls(summary: &str, n: usize) -> String {
    let mut calls = Vec::new();
    for line in summary.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if let Some(name) = cols.last().filter(|c| ["fsync", "fdatasync", "sync_file_range"].contains(c)) {
            // Columns: % time, seconds, usecs/call, calls, [errors], syscall.
            if let Some(count) = cols.get(3).and_then(|c| c.parse::<f64>().ok()) {
                calls.push(format!("{name} {:.1}", count / n as f64));
            }
        }
    }
    if calls.is_empty() { "none".into() } else { calls.join(", ") }
}

/// p50, p99 and payments/s of `n` keysends, `in_flight` at a time, on a fresh pair run by `lanesd`.
async fn run(lanesd: &str, n: usize, in_flight: usize, trace: bool, on_postgres: bool) -> Run {
    let net = Net::start_with(lanesd).await;
    let two_hops = std::env::var("LANES_BENCH_HOPS").is_ok_and(|v| v == "2");
    // The payer, the node after it (the payee, or the forwarder on a line) and the payee.
    let (alice, bob, payee, _line) = match (on_postgres, two_hops) {
        (_, true) => {
            let line = net.line(2_200_000, 2_000_000).await;
            (line.alice.clone(), line.bob.clone(), line.carol.clone(), Some(line))
        }
        (false, false) => {
            let Pair { alice, bob, .. } = net.pair(2_200_000, 2_000_000).await;
            let payee = bob.clone();
            (alice, bob, payee, None)
        }
        (true, false) => {
            let (alice, bob) = (net.node_on_postgres("alice", &[]).await, net.node_on_postgres("bob", &[]).await);
            net.fund_and_open(&alice, &bob, 2_200_000, 2_000_000).await;
            let payee = bob.clone();
            (alice, bob, payee, None)
        }
    };
    for _ in 0..20 {
        alice.keysend(&payee, 1_000_000).await.expect("warm-up keysend");
    }
    let outs = [net.dir().join("alice.strace"), net.dir().join("bob.strace")];
    let mut tracers: Vec<Child> = match trace {
        true => vec![strace(&alice, &outs[0]), strace(&bob, &outs[1])],
        false => Vec::new(),
    };
    if trace {
        // strace attaches asynchronously: let it take hold of every thread before the measured part.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let written_before = [write_bytes(&alice), write_bytes(&bob)];
    let cpu_before = [cpu_time(&alice), cpu_time(&bob)];
    let support::Driven { took, failed, total } = drive(&alice, &payee, n, in_flight).await;
    if std::env::var("LANES_BENCH_DECILES").is_ok_and(|v| v == "1") {
        let d: Vec<String> = (1..10).map(|i| format!("{:.1}", took[n * i / 10].as_secs_f64() * 1e3)).collect();
        println!("deciles (ms): {}", d.join(" "));
    }
    let per_payment = |d: Duration| d / (n - failed.0).max(1) as u32;
    let cpu = [per_payment(cpu_time(&alice).saturating_sub(cpu_before[0])), per_payment(cpu_time(&bob).saturating_sub(cpu_before[1]))];
    let written = [(write_bytes(&alice) - written_before[0]) as f64 / n as f64, (write_bytes(&bob) - written_before[1]) as f64 / n as f64];
    let storage = match trace {
        false => None,
        true => {
            for t in tracers.iter_mut() {
                // SIGINT detaches strace, which then writes its summary.
                let _ = Command::new("kill").args(["-INT", &t.id().to_string()]).status();
                let _ = t.wait();
            }
            let summary = |i: usize| sync_calls(&std::fs::read_to_string(&outs[i]).unwrap_or_default(), n);
            Some([(summary(0), lanes_store::dir_size(alice.data_dir())), (summary(1), lanes_store::dir_size(bob.data_dir()))])
        }
    };
    let succeeded = n - failed.0;
    Run { p50: took[n / 2], p99: took[n * 99 / 100], rate: succeeded as f64 / total.as_secs_f64(), storage, written, failed, cpu }
}

/// What the ldk-node driver measured (see the module doc).
struct LdkNodeRun {
    p50_ms: f64,
    p99_ms: f64,
    rate: f64,
    failed: u64,
    first_failure: Option<String>,
    /// Both nodes together (one process).
    cpu_ms: f64,
    written: f64,
    /// With `LANES_BENCH_STRACE=1`: the sync calls per payment (both nodes).
    syncs: Option<String>,
}

/// Builds `node/benches/ldk-node-peer` (release, in `target/ldk-node-peer`) and runs it on a fresh regtest
/// bitcoind with a channel of `channel_sat`.
async fn run_ldk_node(n: usize, in_flight: usize, channel_sat: u64, hops: u32) -> LdkNodeRun {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let manifest = format!("{root}/node/benches/ldk-node-peer/Cargo.toml");
    let target = format!("{root}/target/ldk-node-peer");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--manifest-path", &manifest, "--target-dir", &target])
        .status()
        .expect("cargo, to build the ldk-node driver");
    assert!(built.success(), "building {manifest} failed");
    let net = Net::start().await;
    let rpc = net.bitcoind().rpc_url();
    let rpc = rpc.trim_start_matches("http://").trim_end_matches('/').to_string();
    let dir = net.dir().join("ldk-node");
    let exe = format!("{target}/release/ldk-node-peer");
    let args = [dir.display().to_string(), rpc, n.to_string(), in_flight.to_string(), channel_sat.to_string(), hops.to_string()];
    let trace = std::env::var("LANES_BENCH_STRACE").is_ok_and(|v| v == "1");
    let strace_out = net.dir().join("ldk-node.strace");
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(exe);
        cmd.args(args).env("LDK_NODE_PEER_RPC_PASSWORD", lanes_regtest::RPC_PASSWORD).stderr(Stdio::inherit());
        if trace {
            cmd.env("LDK_NODE_PEER_STRACE", strace_out);
        }
        cmd.output()
    })
    .await
    .expect("the driver task")
    .expect("running the ldk-node driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("result ")).unwrap_or_else(|| panic!("the ldk-node driver printed no result ({}): {stdout}", out.status));
    let v: serde_json::Value = serde_json::from_str(line).expect("the driver's result is JSON");
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    LdkNodeRun {
        p50_ms: f("p50_ms"),
        p99_ms: f("p99_ms"),
        rate: f("rate"),
        failed: v["failed"].as_u64().unwrap_or(0),
        first_failure: v["first_failure"].as_str().map(str::to_string),
        cpu_ms: f("cpu_ms_per_payment"),
        written: f("written_bytes_per_payment"),
        syncs: v["strace_summary"].as_str().map(|summary| sync_calls(summary, n)),
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("LANES_BENCH_PAYMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let this = env!("CARGO_BIN_EXE_lanesd").to_string();
    let baseline = std::env::var("LANES_BASELINE_LANESD").ok();
    let in_flight: usize = std::env::var("LANES_BENCH_IN_FLIGHT").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let over = match std::env::var("LANES_BENCH_HOPS").is_ok_and(|v| v == "2") {
        true => "alice -> bob -> carol (two 2,000,000 sat channels)",
        false => "one 2,000,000 sat channel",
    };
    match in_flight {
        1 => println!("{n} keysends of 1,000 sat, one at a time, over {over}"),
        k => println!("{n} keysends of 1,000 sat, {k} in flight, over {over}"),
    }
    println!("{:<12} {:>10} {:>10} {:>12} {:>8}", "lanesd", "p50 ms", "p99 ms", "payments/s", "failed");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let trace = std::env::var("LANES_BENCH_STRACE").is_ok_and(|v| v == "1");
    let report = |name: &str, r: &Run| {
        println!("{:<12} {:>10.1} {:>10.1} {:>12.1} {:>8}", name, ms(r.p50), ms(r.p99), r.rate, r.failed.0);
        if let Some(first) = &r.failed.1 {
            println!("{:<12} first failure: {}", "", first.chars().take(200).collect::<String>());
        }
        println!("{:<12} written to disk per payment: alice {:.0} KB, bob {:.0} KB", "", r.written[0] / 1e3, r.written[1] / 1e3);
        println!("{:<12} CPU per payment: alice {:.1} ms, bob {:.1} ms", "", ms(r.cpu[0]), ms(r.cpu[1]));
        if let Some([(a, a_size), (b, b_size)]) = &r.storage {
            println!("{:<12} syncs per payment: alice {a}; bob {b}", "");
            println!("{:<12} data dir: alice {:.1} MB, bob {:.1} MB", "", *a_size as f64 / 1e6, *b_size as f64 / 1e6);
        }
    };
    let this_run = run(&this, n, in_flight, trace, false).await;
    report("this build", &this_run);
    if std::env::var("LANES_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        let pg_run = run(&this, n, in_flight, trace, true).await;
        report("postgres", &pg_run);
        println!(
            "p50 ratio postgres/sled: {:.2}; payments/s ratio: {:.2}",
            ms(pg_run.p50) / ms(this_run.p50),
            pg_run.rate / this_run.rate
        );
    }
    if std::env::var("LANES_BENCH_LDK_NODE").is_ok_and(|v| v == "1") {
        let hops = if std::env::var("LANES_BENCH_HOPS").is_ok_and(|v| v == "2") { 2 } else { 1 };
        let l = run_ldk_node(n, in_flight, 2_000_000, hops).await;
        println!("{:<12} {:>10.1} {:>10.1} {:>12.1} {:>8}", "ldk-node 0.7", l.p50_ms, l.p99_ms, l.rate, l.failed);
        if let Some(first) = &l.first_failure {
            println!("{:<12} first failure: {}", "", first.chars().take(200).collect::<String>());
        }
        // One process: on a line its CPU and bytes are carol's too, where lanes' are alice's and bob's.
        let all = if hops == 2 { "all three nodes (not like for like: lanes counts alice and bob)" } else { "both nodes" };
        println!("{:<12} written to disk per payment: {all} {:.0} KB", "", l.written / 1e3);
        println!("{:<12} CPU per payment: {all} {:.1} ms", "", l.cpu_ms);
        if let Some(syncs) = &l.syncs {
            println!("{:<12} syncs per payment: both nodes {syncs}", "");
        }
        let ours_cpu = ms(this_run.cpu[0]) + ms(this_run.cpu[1]);
        let ours_written = this_run.written[0] + this_run.written[1];
        println!(
            "lanes/ldk-node: p50 {:.2}, p99 {:.2}, payments/s {:.2}, CPU per payment {:.2}, bytes written per payment {:.2}",
            ms(this_run.p50) / l.p50_ms,
            ms(this_run.p99) / l.p99_ms,
            this_run.rate / l.rate,
            ours_cpu / l.cpu_ms,
            ours_written / l.written.max(1.0)
        );
    }
    if let Some(base) = baseline {
        let base_run = run(&base, n, in_flight, trace, false).await;
        report("baseline", &base_run);
        println!(
            "p50 ratio this/baseline: {:.2}; payments/s ratio: {:.2}",
            ms(this_run.p50) / ms(base_run.p50),
            this_run.rate / base_run.rate
        );
    }
}
