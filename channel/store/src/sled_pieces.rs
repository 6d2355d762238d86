//! Large values on sled, in pieces: how a value longer than [`PIECE`] bytes is laid out in the store's tree.
//!
//! Owns: the raw keys and values of large entries, building a batch's sled changes from the store's
//! operations, and reading values and listing keys across both layouts. Must never: leave a piece or a
//! length entry of a key behind once the key is written small or removed; let a reader see part of a value
//! as it was and part as it is (callers hold the store's write lock around reads of large values and lists,
//! see [`crate::SledStore`]).
//!
//! Why: sled keeps up to 16 entries in a leaf and rewrites the whole leaf, values and all, after every 10
//! changes to any entry in it (and when it splits). A large value therefore costs its full size again,
//! synced as a blob file when over 128 KiB, whenever entries that sort next to it change. The full
//! ChannelMonitor of a busy channel (5.5 MB after 30,000 payments) sorts right after the small monitor
//! updates that every flush writes and removes: after 30,000 payments, one flush in ten on each node spent
//! 7-8 ms rewriting that leaf (a 5.5 MB blob file, synced), and the sequential p50 grew from 17.8 ms to
//! 24.9 ms (the history benchmark of issue 14). In pieces of [`PIECE`] bytes, no leaf holds more than about
//! 100 KB, so a leaf rewrite costs little, stays in sled's log (no blob file, no extra sync) and never
//! depends on how large any value has grown.
//!
//! Layout: a value of at most [`PIECE`] bytes is stored as it is, under its key (as every value was before
//! this layout: data dirs need no migration). A longer one is stored as a length entry under
//! `LARGE ++ key` (its length and the piece size, 12 bytes) and its pieces under
//! `PIECES ++ key ++ SEP ++ index` (u32 big-endian, so a value's pieces sort together and in order). Keys
//! of the store start with a namespace character or with `SEP`, never with `LARGE` or `PIECES`, and hold
//! exactly two `SEP`s, so the pieces of two keys never collide.
use std::collections::HashMap;

use lightning::io;

// A piece's index follows the key after the store's namespace separator.
use crate::sled_store::{to_io, SEP};

/// Values longer than this are stored in pieces of this size. Small enough that a full leaf (17 entries at
/// most, before sled splits it) stays under sled's 128 KiB blob threshold.
pub const PIECE: usize = 6 * 1024;
/// First byte of a large value's length entry.
const LARGE: u8 = 1;
/// First byte of a large value's pieces.
const PIECES: u8 = 2;

fn large_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(LARGE);
    k.extend_from_slice(key);
    k
}

fn piece_key(key: &[u8], index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 6);
    k.push(PIECES);
    k.extend_from_slice(key);
    k.push(SEP);
    // At most u32::MAX pieces of 6 KiB: 24 TiB, far past anything a store holds.
    k.extend_from_slice(&(index as u32).to_be_bytes());
    k
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn shown(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

/// A length entry: the value's length and the piece size it was cut with (so a later version may change
/// [`PIECE`] and still read what an earlier one wrote).
fn length_entry(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&(len as u64).to_be_bytes());
    v.extend_from_slice(&(PIECE as u32).to_be_bytes());
    v
}

/// (length, piece size, number of pieces) of a length entry.
fn parse_length(key: &[u8], v: &[u8]) -> io::Result<(usize, usize, u64)> {
    let bad = || corrupt(format!("the length entry of {} is malformed ({} bytes)", shown(key), v.len()));
    let len = u64::from_be_bytes(v.get(..8).ok_or_else(bad)?.try_into().expect("8 bytes")) as usize;
    let piece = u32::from_be_bytes(v.get(8..12).ok_or_else(bad)?.try_into().expect("4 bytes")) as usize;
    if v.len() != 12 || piece == 0 {
        return Err(bad());
    }
    Ok((len, piece, len.div_ceil(piece) as u64))
}

/// The sled changes of one batch of the store's writes and removes, in order. Knows how many pieces each
/// key it touched has once the changes so far are applied, so a key written large twice in one batch, or
/// large and then small, leaves no piece behind.
pub(crate) struct Changes<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pieces: HashMap<Vec<u8>, u64>,
}

impl<'a> Changes<'a> {
    /// Changes against `tree`, whose large entries must not change until [`Changes::into_batch`]'s batch is
    /// applied (the caller holds the store's write lock).
    pub(crate) fn new(tree: &'a sled::Tree) -> Self {
        Changes { tree, batch: sled::Batch::default(), pieces: HashMap::new() }
    }

    /// How many pieces `key` has after the changes so far.
    fn pieces_of(&mut self, key: &[u8]) -> io::Result<u64> {
        if let Some(n) = self.pieces.get(key) {
            return Ok(*n);
        }
        let n = match self.tree.get(large_key(key)).map_err(to_io)? {
            Some(v) => parse_length(key, &v)?.2,
            None => 0,
        };
        self.pieces.insert(key.to_vec(), n);
        Ok(n)
    }

    /// Drops `key`'s length entry and its pieces from `keep` on.
    fn drop_pieces(&mut self, key: &[u8], keep: u64) -> io::Result<()> {
        let had = self.pieces_of(key)?;
        if keep == 0 && had > 0 {
            self.batch.remove(large_key(key));
        }
        for i in keep..had {
            self.batch.remove(piece_key(key, i));
        }
        self.pieces.insert(key.to_vec(), keep.min(had));
        Ok(())
    }

    pub(crate) fn write(&mut self, key: Vec<u8>, value: Vec<u8>) -> io::Result<()> {
        if value.len() <= PIECE {
            self.drop_pieces(&key, 0)?;
            self.batch.insert(key, value);
            return Ok(());
        }
        let n = value.len().div_ceil(PIECE) as u64;
        self.drop_pieces(&key, n)?;
        self.batch.remove(key.clone());
        self.batch.insert(large_key(&key), length_entry(value.len()));
        for (i, piece) in value.chunks(PIECE).enumerate() {
            self.batch.insert(piece_key(&key, i as u64), piece);
        }
        self.pieces.insert(key, n);
        Ok(())
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) -> io::Result<()> {
        self.drop_pieces(&key, 0)?;
        self.batch.remove(key);
        Ok(())
    }

    pub(crate) fn into_batch(self) -> sled::Batch {
        self.batch
    }
}

/// `key`'s value as stored small, without the lock: `None` if it is not stored small (it may be large).
pub(crate) fn get_small(tree: &sled::Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    Ok(tree.get(key).map_err(to_io)?.map(|v| v.to_vec()))
}

/// `key`'s value in either layout. The caller holds the store's write lock, so no batch applies between
/// the reads of one value's pieces.
pub(crate) fn get(tree: &sled::Tree, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    if let Some(v) = get_small(tree, key)? {
        return Ok(Some(v));
    }
    let Some(entry) = tree.get(large_key(key)).map_err(to_io)? else { return Ok(None) };
    let (len, piece, count) = parse_length(key, &entry)?;
    let mut value = Vec::with_capacity(len);
    for i in 0..count {
        let p = tree.get(piece_key(key, i)).map_err(to_io)?.ok_or_else(|| corrupt(format!("piece {i} of {} is missing", shown(key))))?;
        let want = piece.min(len - value.len());
        if p.len() != want {
            return Err(corrupt(format!("piece {i} of {} has {} bytes, not {want}", shown(key), p.len())));
        }
        value.extend_from_slice(&p);
    }
    Ok(Some(value))
}

/// The keys under `prefix` in either layout, in byte order, as the rest of the key after `prefix`. The
/// caller holds the store's write lock (a key changing layout meanwhile would otherwise be missed).
pub(crate) fn list(tree: &sled::Tree, prefix: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    for item in tree.scan_prefix(prefix) {
        keys.push(item.map_err(to_io)?.0[prefix.len()..].to_vec());
    }
    let large = large_key(prefix);
    let small = keys.len();
    for item in tree.scan_prefix(&large) {
        keys.push(item.map_err(to_io)?.0[large.len()..].to_vec());
    }
    if keys.len() > small {
        keys.sort();
        keys.dedup();
    }
    Ok(keys)
}
