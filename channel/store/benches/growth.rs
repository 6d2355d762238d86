//! Does the store stay near its live data as payments go by? (issue 17: the sender's sled directory reached
//! 46 MB to 1.1 GB after ~4,000 payments, for ~3.3 MB of live data.)
//!
//! Replays, on a [`SledStore`] in a temp dir, the writes a sending node makes per payment with lanes'
//! ordered flush (`lanes_channel::persist`): four flushes, each one atomic batch of the ChannelManager
//! (rewritten whole) and a ~1.5 KB ChannelMonitor update; a full ~700 KB monitor every 100 updates,
//! dropping the updates it holds; and a ~700 B payment record that stays. Prints, every tenth of the
//! run, the data dir's size against the live data (what the store holds now) and the ratio; the bar is
//! 4x. Stops early (and says so) if the directory passes 8 GB.
//!
//! `cargo bench -p lanes-store --bench growth` (knobs: `LANES_BENCH_GROWTH_PAYMENTS`, default 100,000;
//! `LANES_BENCH_GROWTH_MANAGER_KB`, the ChannelManager's size, default 100).
use std::time::Instant;

use lanes_store::{KVStoreSync, Op, SledStore, Store};

const UPDATES_PER_PAYMENT: u64 = 4;
const UPDATE_BYTES: usize = 1_500;
const MONITOR_BYTES: usize = 700_000;
const RECORD_BYTES: usize = 700;
const MAX_PENDING_UPDATES: u64 = 100;
const STOP_AT: u64 = 8_000_000_000;

struct Rng(u64);
impl Rng {
    fn fill(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            v.extend_from_slice(&self.0.to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn main() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let payments = env("LANES_BENCH_GROWTH_PAYMENTS", 100_000);
    let manager_bytes = env("LANES_BENCH_GROWTH_MANAGER_KB", 100) as usize * 1000;
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SledStore::open(dir.path()).expect("open the store");
    let mut rng = Rng(0x6c61_6e65_735f_6777);
    let monitor = "m";
    store.write("monitors", "", monitor, rng.fill(MONITOR_BYTES)).unwrap();
    let mut update_id = 0u64;
    let mut live_updates = 0u64;
    let start = Instant::now();
    println!(
        "{payments} payments on sled: per payment {UPDATES_PER_PAYMENT} batches of a {} KB ChannelManager and a {} KB monitor update, a {} KB monitor every {MAX_PENDING_UPDATES} updates, a {} B record kept",
        manager_bytes / 1000,
        UPDATE_BYTES / 1000,
        MONITOR_BYTES / 1000,
        RECORD_BYTES
    );
    println!("{:>9} {:>12} {:>12} {:>7} {:>10}", "payments", "dir MB", "live MB", "ratio", "seconds");
    let mut worst: f64 = 0.0;
    for p in 1..=payments {
        for _ in 0..UPDATES_PER_PAYMENT {
            update_id += 1;
            let mut ops = vec![Op::write("", "", "manager", rng.fill(manager_bytes))];
            if update_id % MAX_PENDING_UPDATES == 0 {
                ops.push(Op::write("monitors", "", monitor, rng.fill(MONITOR_BYTES)));
                for u in update_id.saturating_sub(MAX_PENDING_UPDATES)..=update_id {
                    ops.push(Op::remove("monitor_updates", monitor, &u.to_string()));
                }
                live_updates = 0;
            } else {
                ops.push(Op::write("monitor_updates", monitor, &update_id.to_string(), rng.fill(UPDATE_BYTES)));
                live_updates += 1;
            }
            store.write_batch(ops).unwrap();
        }
        store.write("payments", "", &format!("{p:016x}"), rng.fill(RECORD_BYTES)).unwrap();
        if p % (payments / 10).max(1) == 0 || p == payments {
            let size = lanes_store::dir_size(dir.path());
            let live = (manager_bytes + MONITOR_BYTES) as u64 + live_updates * UPDATE_BYTES as u64 + p * RECORD_BYTES as u64;
            let ratio = size as f64 / live as f64;
            worst = worst.max(ratio);
            println!("{p:>9} {:>12.1} {:>12.1} {ratio:>7.2} {:>10.0}", size as f64 / 1e6, live as f64 / 1e6, start.elapsed().as_secs_f64());
            if size > STOP_AT {
                println!("stopped: the directory passed {} GB", STOP_AT / 1_000_000_000);
                break;
            }
        }
    }
    println!("worst ratio of data dir to live data: {worst:.2} (bar: 4.00); {} syncs, {} compactions", store.syncs(), store.compactions());
}
