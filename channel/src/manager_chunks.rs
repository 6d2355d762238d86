//! The ChannelManager on disk in content-defined chunks, so a flush writes what changed instead of all of it.
//!
//! Owns: the manager's format on disk. Under LDK's manager key a manifest lists chunk ids and lengths; the
//! chunks are stored under `lanes/manager_chunks/<id>`. An encoded manager is split where a rolling hash of its
//! content says so (a gear hash, as in FastCDC), and every chunk whose bytes were already on disk is reused.
//! Also reading it back, and reading the plain format earlier lanes wrote (the first flush converts it; an
//! earlier lanes cannot read a manifest, and refuses to start with a decode error, changing nothing).
//!
//! Why: LDK encodes the manager as one blob of about 3.5 KB per channel, and lanes writes it with every flush
//! (the manager on disk must never be behind a monitor: see `crate::persist`). With 1,000 channels that was
//! 3.1 MB per flush, several flushes per payment on each node. A payment changes one channel and a few fields
//! near the end. Since the cut points depend on the bytes around them, not on offsets, a change moves only the
//! chunks around it, even when it shifts everything after it.
//!
//! Must never: list a chunk that is neither on disk nor in the same batch; remove a chunk the manifest on disk
//! lists; believe a batch is on disk before the store said so ([`ManagerChunks::committed`]).
use std::ops::Range;
use std::sync::OnceLock;

use lightning::io;
use lightning::util::persist::{CHANNEL_MANAGER_PERSISTENCE_KEY, CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE};

use lanes_store::layout::MANAGER_CHUNKS;
use lanes_store::{hex_key, DynStore, Op};
/// A manifest's first bytes. An LDK manager starts with its version bytes (1, 1), never these.
const MAGIC: &[u8; 8] = b"lanesCM1";
/// Chunk sizes: no cut before `MIN_CHUNK` bytes, always one at `MAX_CHUNK`, and one in `1 << CUT_BITS`
/// positions in between: ~3 KB on average, about one channel. `MAX_CHUNK` is the sled store's piece size, so
/// each chunk is one entry of its tree (a longer one would be stored as pieces and a length entry, three
/// times the changes for sled to log and rewrite).
const MIN_CHUNK: usize = 1024;
const MAX_CHUNK: usize = lanes_store::SLED_PIECE;
const CUT_BITS: u32 = 11;

/// The manager as the last durable batch left it on disk.
#[derive(Clone, Default)]
pub struct OnDisk {
    /// The encoded manager.
    bytes: Vec<u8>,
    /// Its chunks in order: id, and where in `bytes`.
    chunks: Vec<(u64, Range<usize>)>,
    /// The next unused chunk id.
    next_id: u64,
}

/// The manager's chunks on disk, and how to write the next manager.
#[derive(Default)]
pub struct ManagerChunks {
    on_disk: OnDisk,
}

/// A flush's plan: the store operations, and what is on disk once they are.
pub struct Plan {
    pub ops: Vec<Op>,
    pub written_bytes: usize,
    after: OnDisk,
}

fn gear() -> &'static [u64; 256] {
    static GEAR: OnceLock<[u64; 256]> = OnceLock::new();
    GEAR.get_or_init(|| {
        // Fixed pseudo-random values (splitmix64), so cut points are the same in every run and chunks written
        // before a restart are reused after it.
        let mut s = 0x6c61_6e65_735f_636du64;
        std::array::from_fn(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    })
}

/// Where the chunk starting at `start` ends: where the gear hash says, at `MAX_CHUNK` at the latest, or where
/// `data` does. Depends only on the bytes from `start` on.
fn next_cut(data: &[u8], start: usize) -> usize {
    let gear = gear();
    let end = (start + MAX_CHUNK).min(data.len());
    let mut h = 0u64;
    // A gear hash depends on the last 64 bytes only (older ones are shifted out): a cut depends on nearby
    // content only, and hashing may start 64 bytes before the first place a cut is allowed.
    let from = (start + MIN_CHUNK - 64).min(end);
    for (i, b) in data[from..end].iter().enumerate() {
        h = (h << 1).wrapping_add(gear[*b as usize]);
        if from + i + 1 >= start + MIN_CHUNK && h >> (64 - CUT_BITS) == 0 {
            return from + i + 1;
        }
    }
    end
}

/// How many first bytes of a chunk find the old chunks that may equal it (each candidate is then compared
/// whole). Fewer would not do: many chunks start inside the long zero runs of channels' unused slots.
const HEAD: usize = 32;

/// The first [`HEAD`] bytes mixed into one number (a multiply-rotate hash: cheap, and a collision only costs
/// a comparison).
fn head(bytes: &[u8]) -> u64 {
    bytes[..HEAD].chunks_exact(8).fold(0u64, |h, w| {
        (h.rotate_left(23) ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    })
}

fn manager_key() -> (&'static str, &'static str, &'static str) {
    (CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE, CHANNEL_MANAGER_PERSISTENCE_KEY)
}

fn chunk_key(id: u64) -> String {
    hex_key(&id.to_be_bytes())
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl ManagerChunks {
    /// The store operations that put `encoded` on disk: the chunks not already there, the manifest, and the
    /// removal of chunks no longer listed, for one atomic batch.
    ///
    /// Where an old chunk (not the last: it ended where the data did) starts a chunk boundary of the new
    /// manager with the same bytes, it is reused without hashing it: cutting from a boundary depends only on
    /// the bytes from there, so hashing would cut it where it was cut before. Only changed parts are hashed;
    /// the rest costs a comparison. (How a manager is cut never changes what is read back: the manifest
    /// lists each chunk's length.)
    pub fn plan(&self, encoded: Vec<u8>) -> Plan {
        let old = &self.on_disk;
        let reusable = old.chunks.len().saturating_sub(1);
        // The old chunks by their first bytes, sorted: built every flush over about one chunk per channel, so
        // one allocation and no hashing (a map of small lists took half of this function's time).
        let mut by_head: Vec<(u64, usize)> = old.chunks[..reusable]
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| r.len() >= HEAD)
            .map(|(i, (_, r))| (head(&old.bytes[r.start..]), i))
            .collect();
        by_head.sort_unstable();
        let last = old.chunks.last().map(|(id, r)| (*id, &old.bytes[r.clone()]));
        let mut ops = Vec::new();
        let mut written_bytes = 0;
        let mut kept = vec![false; old.chunks.len()];
        let mut chunks = Vec::with_capacity(old.chunks.len() + 16);
        let mut next_id = old.next_id;
        let mut start = 0;
        while start < encoded.len() {
            let rest = &encoded[start..];
            let same = (rest.len() >= HEAD).then(|| head(rest)).and_then(|h| {
                let from = by_head.partition_point(|&(k, _)| k < h);
                by_head[from..].iter().take_while(|&&(k, _)| k == h).map(|&(_, i)| i).find(|&i| {
                    let r = &old.chunks[i].1;
                    rest.get(..r.len()) == Some(&old.bytes[r.clone()])
                })
            });
            let (id, end) = match same {
                Some(i) => {
                    kept[i] = true;
                    (old.chunks[i].0, start + old.chunks[i].1.len())
                }
                None => {
                    let end = next_cut(&encoded, start);
                    let piece = &encoded[start..end];
                    match last {
                        Some((id, bytes)) if bytes == piece => {
                            kept[old.chunks.len() - 1] = true;
                            (id, end)
                        }
                        _ => {
                            let id = next_id;
                            next_id += 1;
                            ops.push(Op::write(MANAGER_CHUNKS.primary, MANAGER_CHUNKS.secondary, &chunk_key(id), piece.to_vec()));
                            written_bytes += piece.len();
                            (id, end)
                        }
                    }
                }
            };
            chunks.push((id, start..end));
            start = end;
        }
        let mut manifest = Vec::with_capacity(MAGIC.len() + 12 + chunks.len() * 12);
        manifest.extend_from_slice(MAGIC);
        manifest.extend_from_slice(&(encoded.len() as u64).to_be_bytes());
        manifest.extend_from_slice(&(chunks.len() as u32).to_be_bytes());
        for (id, r) in &chunks {
            manifest.extend_from_slice(&id.to_be_bytes());
            manifest.extend_from_slice(&(r.len() as u32).to_be_bytes());
        }
        written_bytes += manifest.len();
        let (p, s, k) = manager_key();
        ops.push(Op::write(p, s, k, manifest));
        // Only chunks no longer listed: an id listed twice, once kept, stays. A new manifest lists old ids only
        // where it kept them, so a dropped id is still listed only if it was also kept elsewhere.
        let mut kept_ids: Vec<u64> = old.chunks.iter().zip(&kept).filter(|(_, k)| **k).map(|((id, _), _)| *id).collect();
        kept_ids.sort_unstable();
        for ((id, _), _) in old.chunks.iter().zip(&kept).filter(|(_, k)| !**k) {
            if kept_ids.binary_search(id).is_err() {
                ops.push(Op::remove(MANAGER_CHUNKS.primary, MANAGER_CHUNKS.secondary, &chunk_key(*id)));
            }
        }
        Plan { ops, written_bytes, after: OnDisk { bytes: encoded, chunks, next_id } }
    }

    /// The plan's batch is durable: later plans build on it.
    pub fn committed(&mut self, plan: Plan) {
        self.on_disk = plan.after;
    }

    /// Reads the manager back (either format); `None` if there is none. Remembers its chunks for the next plan.
    pub fn read(&mut self, store: &DynStore) -> io::Result<Option<Vec<u8>>> {
        let (p, s, k) = manager_key();
        let raw = match store.read(p, s, k) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // The plain format: the first flush replaces it with a manifest (nothing to reuse yet).
        let Some(rest) = raw.strip_prefix(MAGIC.as_slice()) else { return Ok(Some(raw)) };
        let field = |at: usize, n: usize| rest.get(at..at + n).ok_or_else(|| corrupt("the channel manager's manifest is cut short".into()));
        let total = u64::from_be_bytes(field(0, 8)?.try_into().expect("8 bytes")) as usize;
        let count = u32::from_be_bytes(field(8, 4)?.try_into().expect("4 bytes")) as usize;
        let mut bytes = Vec::with_capacity(total);
        let mut chunks = Vec::with_capacity(count);
        let mut next_id = 0;
        for i in 0..count {
            let id = u64::from_be_bytes(field(12 + i * 12, 8)?.try_into().expect("8 bytes"));
            let len = u32::from_be_bytes(field(20 + i * 12, 4)?.try_into().expect("4 bytes")) as usize;
            let chunk = store.read(MANAGER_CHUNKS.primary, MANAGER_CHUNKS.secondary, &chunk_key(id)).map_err(|e| corrupt(format!("the channel manager's chunk {id} is unreadable: {e}")))?;
            if chunk.len() != len {
                return Err(corrupt(format!("the channel manager's chunk {id} has {} bytes, its manifest says {len}", chunk.len())));
            }
            chunks.push((id, bytes.len()..bytes.len() + len));
            bytes.extend_from_slice(&chunk);
            next_id = next_id.max(id + 1);
        }
        if bytes.len() != total {
            return Err(corrupt(format!("the channel manager has {} bytes, its manifest says {total}", bytes.len())));
        }
        self.on_disk = OnDisk { bytes: bytes.clone(), chunks, next_id };
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn store() -> (tempfile::TempDir, DynStore) {
        let dir = tempfile::tempdir().unwrap();
        let s: DynStore = Arc::new(lanes_store::SledStore::open(dir.path().join("db")).unwrap());
        (dir, s)
    }

    /// Pseudo-random bytes standing in for an encoded manager of many channels.
    fn manager(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 33) as u8
            })
            .collect()
    }

    fn write(chunks: &mut ManagerChunks, store: &DynStore, encoded: Vec<u8>) -> usize {
        let plan = chunks.plan(encoded);
        let written = plan.written_bytes;
        store.write_batch(plan.ops.clone()).unwrap();
        chunks.committed(plan);
        written
    }

    fn read_back(store: &DynStore) -> Vec<u8> {
        ManagerChunks::default().read(store).unwrap().unwrap()
    }

    /// The chunks on disk are exactly those the manifest lists, and the manager reads back whole.
    fn assert_on_disk(chunks: &ManagerChunks, store: &DynStore, m: &[u8]) {
        let listed = chunks.on_disk.chunks.iter().map(|(id, _)| chunk_key(*id)).collect::<std::collections::BTreeSet<_>>();
        let stored = store.list(MANAGER_CHUNKS.primary, MANAGER_CHUNKS.secondary).unwrap().into_iter().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(stored, listed);
        assert_eq!(read_back(store), m);
    }

    /// A chunk listed twice stays while either place keeps it, whether a rewrite drops a few chunks (as a
    /// payment does) or most of them.
    #[test]
    fn a_chunk_listed_twice_stays_while_listed_and_dropped_chunks_go() {
        let (_d, store) = store();
        let mut chunks = ManagerChunks::default();
        let a = manager(400_000, 5);
        write(&mut chunks, &store, a.clone());
        // Its first 100 KB again at the end: both copies reuse the chunks on disk, so their ids are listed twice.
        let mut m = [&a[..], &a[..100_000]].concat();
        write(&mut chunks, &store, m.clone());
        let ids: Vec<u64> = chunks.on_disk.chunks.iter().map(|(id, _)| *id).collect();
        assert!(ids.len() > ids.iter().collect::<std::collections::HashSet<_>>().len(), "some chunk is listed twice");
        assert_on_disk(&chunks, &store, &m);

        // The first copy changes: its chunks are dropped there but still listed by the second copy.
        m[..100_000].copy_from_slice(&manager(100_000, 6));
        write(&mut chunks, &store, m.clone());
        assert_on_disk(&chunks, &store, &m);

        // Its first 250 KB again at the end, then changed at the start: many chunks dropped at once, each still
        // listed by the copy at the end.
        let copy = m[..250_000].to_vec();
        m.extend_from_slice(&copy);
        write(&mut chunks, &store, m.clone());
        let next = chunks.on_disk.next_id;
        m[..300_000].copy_from_slice(&manager(300_000, 7));
        write(&mut chunks, &store, m.clone());
        let cut_anew = chunks.on_disk.chunks.iter().filter(|(id, _)| *id >= next).count();
        assert!(cut_anew > 64, "only {cut_anew} chunks replaced");
        assert_on_disk(&chunks, &store, &m);

        // And a small change after that.
        m[10..20].copy_from_slice(&[9; 10]);
        write(&mut chunks, &store, m.clone());
        assert_on_disk(&chunks, &store, &m);
    }

    #[test]
    fn a_small_change_writes_a_few_chunks_even_when_it_shifts_the_rest() {
        let (_d, store) = store();
        let mut chunks = ManagerChunks::default();
        let mut m = manager(3_000_000, 1);
        assert!(write(&mut chunks, &store, m.clone()) >= m.len(), "the first write is all of it");
        assert_eq!(read_back(&store), m);

        // One channel's bytes change in place, one grows by 40 bytes (an HTLC), and the end changes.
        m[1_000_000..1_000_100].copy_from_slice(&manager(100, 2));
        m.splice(2_000_000..2_000_000, manager(40, 3));
        let end = m.len() - 50;
        m[end..].copy_from_slice(&manager(50, 4));
        let written = write(&mut chunks, &store, m.clone());
        assert!(written < 200_000, "{written} bytes written for three small changes in 3 MB");
        // What is no longer listed is removed.
        assert_on_disk(&chunks, &store, &m);
    }

    /// Unchanged parts are reused however the manager was cut: an unchanged manager writes its manifest
    /// only, and a change cuts the same chunks a fresh cut of the whole would (checked on the bytes written).
    #[test]
    fn unchanged_parts_are_reused_without_rewriting_them() {
        let (_d, store) = store();
        let mut chunks = ManagerChunks::default();
        let m = manager(1_000_000, 10);
        write(&mut chunks, &store, m.clone());
        let plan = chunks.plan(m.clone());
        assert_eq!(plan.ops.len(), 1, "the manifest only");
        let mut changed = m.clone();
        changed[400_000] ^= 1;
        changed.extend_from_slice(&manager(3_000, 11));
        let incremental = chunks.plan(changed.clone());
        let fresh = ManagerChunks::default().plan(changed.clone());
        let ends = |p: &Plan| p.after.chunks.iter().map(|(_, r)| r.end).collect::<Vec<_>>();
        assert_eq!(ends(&incremental), ends(&fresh), "the same cuts as cutting all of it");
        assert!(incremental.written_bytes < 100_000, "{} bytes written", incremental.written_bytes);
        // Each chunk is one entry of the sled store's tree, never pieces of one.
        for op in &fresh.ops {
            if let Op::Write { secondary, value, .. } = op {
                assert!(secondary != MANAGER_CHUNKS.secondary || value.len() <= lanes_store::SLED_PIECE, "a chunk of {} bytes", value.len());
            }
        }
    }

    #[test]
    fn chunks_written_before_a_restart_are_reused_after_it() {
        let (_d, store) = store();
        let m = manager(500_000, 5);
        write(&mut ManagerChunks::default(), &store, m.clone());
        let mut after_restart = ManagerChunks::default();
        assert_eq!(after_restart.read(&store).unwrap().unwrap(), m);
        let mut changed = m.clone();
        changed[250_000] ^= 1;
        let written = write(&mut after_restart, &store, changed.clone());
        assert!(written < 100_000, "{written} bytes written for one changed byte");
        assert_eq!(read_back(&store), changed);
    }

    #[test]
    fn the_plain_format_is_read_and_replaced() {
        let (_d, db) = store();
        let (p, s, k) = manager_key();
        let plain = vec![1u8, 1, 7, 7, 7];
        db.write(p, s, k, plain.clone()).unwrap();
        let mut chunks = ManagerChunks::default();
        assert_eq!(chunks.read(&db).unwrap().unwrap(), plain);
        let m = manager(100_000, 6);
        write(&mut chunks, &db, m.clone());
        assert!(db.read(p, s, k).unwrap().starts_with(MAGIC));
        assert_eq!(read_back(&db), m);
        assert_eq!(ManagerChunks::default().read(&store().1).unwrap(), None, "no manager at all");
    }

    #[test]
    fn a_plan_not_committed_changes_nothing() {
        let (_d, store) = store();
        let mut chunks = ManagerChunks::default();
        let m = manager(200_000, 7);
        write(&mut chunks, &store, m.clone());
        // The batch failed: the next plan still builds on what is on disk.
        drop(chunks.plan(manager(200_000, 8)));
        let mut again = m.clone();
        again[10] ^= 1;
        write(&mut chunks, &store, again.clone());
        assert_eq!(read_back(&store), again);
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_a_short_manager() {
        let (_d, store) = store();
        let mut chunks = ManagerChunks::default();
        write(&mut chunks, &store, manager(100_000, 9));
        let (id, _) = chunks.on_disk.chunks[1].clone();
        store.remove(MANAGER_CHUNKS.primary, MANAGER_CHUNKS.secondary, &chunk_key(id), false).unwrap();
        let e = ManagerChunks::default().read(&store).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains(&format!("chunk {id}")), "{e}");
    }
}
