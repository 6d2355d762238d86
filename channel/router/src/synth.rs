//! Seeded synthetic channel graphs shaped like the public Lightning network, for tests and benches.
//!
//! [`generate`] draws a graph with preferential attachment (heavy-tailed degrees: a few hubs with
//! hundreds of channels, most nodes with one to three), log-normal capacities (20k sat to 5 BTC), fees
//! skewed low (base 0..1000 msat, most often 0 or 1000; ppm 1..2000, most under 200) and CLTV deltas
//! 40..144. [`build_ldk_graph`] loads a [`GraphSpec`] into an LDK `NetworkGraph` (unsigned gossip), so
//! LDK's router and ours see exactly the same channels. Deterministic for a given seed.
//!
//! Test support only, behind the `synth` feature: must never be compiled into lanesd or used on
//! real gossip.
use std::ops::Deref;

use bitcoin::constants::ChainHash;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::Network;
use lightning::ln::msgs::UnsignedChannelUpdate;
use lightning::routing::gossip::{NetworkGraph, NodeId};
use lightning::types::features::ChannelFeatures;
use lightning::util::logger::Logger;

/// A small, fast, seeded PRNG (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n) (0 when n == 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// One direction's gossip policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub fee_base_msat: u32,
    pub fee_ppm: u32,
    pub cltv_delta: u16,
    pub htlc_min_msat: u64,
    pub htlc_max_msat: u64,
    pub enabled: bool,
}

/// A channel between nodes `a` and `b` (indices into [`GraphSpec::nodes`]); `policies[0]` is
/// `a`'s direction (a to b), `policies[1]` is `b`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    pub a: u32,
    pub b: u32,
    pub scid: u64,
    pub capacity_sat: u64,
    pub policies: [Policy; 2],
}

#[derive(Clone, Debug)]
pub struct GraphSpec {
    pub secret_keys: Vec<SecretKey>,
    pub nodes: Vec<PublicKey>,
    pub channels: Vec<ChannelSpec>,
}

/// Size and seed of a generated graph.
#[derive(Clone, Copy, Debug)]
pub struct GenParams {
    pub nodes: usize,
    pub channels: usize,
    pub seed: u64,
}

impl Default for GenParams {
    /// About today's public network: 14k nodes, 45k channels.
    fn default() -> Self {
        GenParams { nodes: 14_000, channels: 45_000, seed: 42 }
    }
}

impl GenParams {
    /// The defaults, overridden by the benches' knobs `LANES_BENCH_NODES`, `LANES_BENCH_CHANNELS` and
    /// `LANES_BENCH_SEED`.
    pub fn from_env() -> Self {
        let d = GenParams::default();
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        GenParams {
            nodes: var("LANES_BENCH_NODES").map_or(d.nodes, |v| v as usize),
            channels: var("LANES_BENCH_CHANNELS").map_or(d.channels, |v| v as usize),
            seed: var("LANES_BENCH_SEED").unwrap_or(d.seed),
        }
    }
}

/// `n` deterministic node keys.
pub fn node_keys(n: usize, seed: u64) -> (Vec<SecretKey>, Vec<PublicKey>) {
    let secp = Secp256k1::signing_only();
    let mut sks = Vec::with_capacity(n);
    let mut pks = Vec::with_capacity(n);
    let mut i = 0u64;
    while sks.len() < n {
        let mut pre = seed.to_le_bytes().to_vec();
        pre.extend_from_slice(&i.to_le_bytes());
        i += 1;
        let h = sha256::Hash::hash(&pre);
        if let Ok(sk) = SecretKey::from_slice(h.as_byte_array()) {
            pks.push(PublicKey::from_secret_key(&secp, &sk));
            sks.push(sk);
        }
    }
    (sks, pks)
}

/// A random policy with the network's skew.
pub fn random_policy(rng: &mut Rng, capacity_sat: u64) -> Policy {
    let r = rng.f64();
    let fee_base_msat = if r < 0.55 {
        1000
    } else if r < 0.85 {
        0
    } else {
        rng.below(1001) as u32
    };
    let ppm = 1.0 + (-(rng.f64().max(1e-12)).ln()) * 120.0;
    let fee_ppm = (ppm as u32).min(2000);
    let cltv_delta = match rng.below(10) {
        0..=3 => 40,
        4..=5 => 80,
        6..=7 => 144,
        _ => 40 + rng.below(105) as u16,
    };
    let cap_msat = capacity_sat.saturating_mul(1000);
    let htlc_max_msat = if rng.f64() < 0.7 { cap_msat / 100 * 99 } else { cap_msat / 2 };
    Policy { fee_base_msat, fee_ppm, cltv_delta, htlc_min_msat: 1000, htlc_max_msat, enabled: rng.f64() > 0.02 }
}

fn capacity(rng: &mut Rng) -> u64 {
    // Log-normal around ~2M sat, clamped to 20k sat .. 5 BTC.
    let c = ((2_000_000f64).ln() + 1.4 * rng.normal()).exp();
    (c as u64).clamp(20_000, 500_000_000)
}

/// A seeded graph with a heavy-tailed degree distribution.
pub fn generate(p: GenParams) -> GraphSpec {
    let mut rng = Rng::new(p.seed);
    let n = p.nodes.max(2);
    let (secret_keys, nodes) = node_keys(n, p.seed);
    // Every channel end, so picking a uniform entry picks a node proportionally to its degree.
    let mut ends: Vec<u32> = Vec::with_capacity(p.channels * 2);
    let mut channels: Vec<ChannelSpec> = Vec::with_capacity(p.channels);
    let mut seen = std::collections::HashSet::new();
    let mut add = |a: u32, b: u32, rng: &mut Rng, ends: &mut Vec<u32>, channels: &mut Vec<ChannelSpec>| {
        if a == b || !seen.insert((a.min(b), a.max(b))) {
            return;
        }
        let capacity_sat = capacity(rng);
        let block = 500_000 + channels.len() as u64 / 4;
        let scid = (block << 40) | ((channels.len() as u64 % 4000) << 16) | 1;
        let policies = [random_policy(rng, capacity_sat), random_policy(rng, capacity_sat)];
        channels.push(ChannelSpec { a, b, scid, capacity_sat, policies });
        ends.push(a);
        ends.push(b);
    };
    // Preferential attachment: each new node opens 1..3 channels, mostly to well-connected nodes.
    for i in 1..n as u32 {
        let m = 1 + (rng.f64() * rng.f64() * 3.0) as u32;
        for _ in 0..m {
            let target = if ends.is_empty() || rng.f64() < 0.15 {
                rng.below(i as u64) as u32
            } else {
                ends[rng.below(ends.len() as u64) as usize]
            };
            add(i, target, &mut rng, &mut ends, &mut channels);
        }
    }
    // The rest between existing nodes, both ends by degree (hubs connect to hubs).
    let mut guard = 0;
    while channels.len() < p.channels && guard < p.channels * 10 {
        guard += 1;
        let a = if rng.f64() < 0.3 { rng.below(n as u64) as u32 } else { ends[rng.below(ends.len() as u64) as usize] };
        let b = ends[rng.below(ends.len() as u64) as usize];
        add(a, b, &mut rng, &mut ends, &mut channels);
    }
    GraphSpec { secret_keys, nodes, channels }
}

/// Loads `spec` into a new LDK `NetworkGraph` (mainnet chain hash) as unsigned gossip.
pub fn build_ldk_graph<L: Deref>(spec: &GraphSpec, logger: L) -> NetworkGraph<L>
where
    L::Target: Logger,
{
    let graph = NetworkGraph::new(Network::Bitcoin, logger);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for c in &spec.channels {
        let (Some(pa), Some(pb)) = (spec.nodes.get(c.a as usize), spec.nodes.get(c.b as usize)) else { continue };
        let (ida, idb) = (NodeId::from_pubkey(pa), NodeId::from_pubkey(pb));
        let a_is_one = ida < idb;
        let (one, two) = if a_is_one { (ida, idb) } else { (idb, ida) };
        if graph
            .add_channel_from_partial_announcement(c.scid, Some(c.capacity_sat), now, ChannelFeatures::empty(), one, two)
            .is_err()
        {
            continue;
        }
        for (k, pol) in c.policies.iter().enumerate() {
            // Direction bit 0: from node_one. policies[0] is a's direction.
            let from_a = k == 0;
            let dir = if from_a == a_is_one { 0u8 } else { 1u8 };
            let upd = UnsignedChannelUpdate {
                chain_hash: ChainHash::using_genesis_block(Network::Bitcoin),
                short_channel_id: c.scid,
                timestamp: now as u32,
                message_flags: 1,
                channel_flags: dir | if pol.enabled { 0 } else { 2 },
                cltv_expiry_delta: pol.cltv_delta,
                htlc_minimum_msat: pol.htlc_min_msat,
                htlc_maximum_msat: pol.htlc_max_msat,
                fee_base_msat: pol.fee_base_msat,
                fee_proportional_millionths: pol.fee_ppm,
                excess_data: Vec::new(),
            };
            let _ = graph.update_channel_unsigned(&upd);
        }
    }
    graph
}

/// Degree of every node in `spec`.
pub fn degrees(spec: &GraphSpec) -> Vec<u32> {
    let mut d = vec![0u32; spec.nodes.len()];
    for c in &spec.channels {
        if let Some(x) = d.get_mut(c.a as usize) {
            *x += 1;
        }
        if let Some(x) = d.get_mut(c.b as usize) {
            *x += 1;
        }
    }
    d
}

/// The real graph a bench should use when one is at hand: an LDK `NetworkGraph` snapshot from
/// `$LANES_GRAPH_SNAPSHOT`, else the first readable one in `shared/data/` next to the repository (or next
/// to its parent, as in a fresh clone beside `shared/`). Returns its path and the graph; None when there is
/// none (the caller generates one) or when `LANES_BENCH_SYNTH=1` asks for the synthetic graph.
pub fn load_snapshot() -> Option<(String, NetworkGraph<std::sync::Arc<NoLog>>)> {
    use lightning::util::ser::ReadableArgs;
    if std::env::var("LANES_BENCH_SYNTH").is_ok_and(|v| v == "1") {
        return None;
    }
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("LANES_GRAPH_SNAPSHOT") {
        candidates.push(std::path::PathBuf::from(p));
    }
    // Relative to the package (channel/router/): the repository's shared/data, then the one next to it.
    for dir in ["../../shared/data", "../../../shared/data"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            candidates.extend(files);
        }
    }
    for path in candidates {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let mut r = &bytes[..];
        if let Ok(g) = NetworkGraph::read(&mut r, std::sync::Arc::new(NoLog)) {
            if !g.read_only().channels().is_empty() {
                return Some((path.display().to_string(), g));
            }
        }
    }
    None
}

/// A logger that drops everything, for benches and tests that build LDK graphs and routers.
pub struct NoLog;

impl Logger for NoLog {
    fn log(&self, _record: lightning::util::logger::Record) {}
}

/// The inner router of a [`crate::LanesRouter`] where no payee is blinded: nothing to fall back to,
/// and a blinded payee gets `Err("fallback")`, recognisably from here.
pub struct NoFallback;

impl lightning::routing::router::Router for NoFallback {
    fn find_route(
        &self,
        _: &PublicKey,
        _: &lightning::routing::router::RouteParameters,
        _: Option<&[&lightning::ln::channel_state::ChannelDetails]>,
        _: lightning::routing::router::InFlightHtlcs,
    ) -> Result<lightning::routing::router::Route, &'static str> {
        Err("fallback")
    }

    fn create_blinded_payment_paths<T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification>(
        &self,
        _: PublicKey,
        _: Vec<lightning::ln::channel_state::ChannelDetails>,
        _: lightning::blinded_path::payment::ReceiveTlvs,
        _: Option<u64>,
        _: &Secp256k1<T>,
    ) -> Result<Vec<lightning::blinded_path::payment::BlindedPaymentPath>, ()> {
        Err(())
    }
}
