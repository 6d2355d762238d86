//! What the node benches share: driving keysends with N in flight, and reading a lanesd process's CPU time,
//! disk writes and memory from `/proc`. Bench support only: never part of lanesd.
#![allow(dead_code)]
use std::time::{Duration, Instant};

use lanes_regtest::proto::v1::PaymentStatus;
use lanes_regtest::Node;

/// CPU time (user + system) the process has used so far (`/proc/<pid>/stat`, in clock ticks of 10 ms).
pub fn cpu_time(node: &Node) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", node.pid())).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime and stime are the
    // 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Bytes the process has caused to be written to disk so far (`/proc/<pid>/io`).
pub fn write_bytes(node: &Node) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{}/io", node.pid())).unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// The process's resident memory now, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap_or_default();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0);
    kb * 1024
}

/// What [`drive`] saw.
pub struct Driven {
    /// Every call's latency, sorted.
    pub took: Vec<Duration>,
    /// Calls that did not end in a succeeded payment, and the first such answer.
    pub failed: (usize, Option<String>),
    /// Wall time of the whole run.
    pub total: Duration,
}

impl Driven {
    pub fn p50(&self) -> Duration {
        self.took.get(self.took.len() / 2).copied().unwrap_or_default()
    }
    pub fn p99(&self) -> Duration {
        self.took.get(self.took.len() * 99 / 100).copied().unwrap_or_default()
    }
    pub fn succeeded(&self) -> usize {
        self.took.len() - self.failed.0
    }
    /// Succeeded payments per second.
    pub fn rate(&self) -> f64 {
        self.succeeded() as f64 / self.total.as_secs_f64().max(1e-9)
    }
}

/// `n` keysends of 1,000 sat from `payer` to `payee`, `in_flight` at a time over gRPC.
pub async fn drive(payer: &Node, payee: &Node, n: usize, in_flight: usize) -> Driven {
    let start = Instant::now();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let mut calls = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = std::sync::Arc::clone(&slots).acquire_owned().await.expect("the semaphore is never closed");
        let (payer, payee) = (payer.clone(), payee.clone());
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            let answer = payer.keysend(&payee, 1_000_000).await;
            drop(permit);
            (t.elapsed(), answer)
        }));
    }
    let (mut took, mut failed) = (Vec::with_capacity(n), (0, None));
    for call in calls {
        let (t, answer) = call.await.expect("the keysend task");
        took.push(t);
        match answer {
            Ok(p) if p.status == PaymentStatus::Succeeded as i32 => {}
            other => {
                failed.0 += 1;
                failed.1.get_or_insert_with(|| format!("{other:?}"));
            }
        }
    }
    let total = start.elapsed();
    took.sort();
    Driven { took, failed, total }
}
