//! The one storage trait under everything lanes keeps, and its implementations.
//!
//! Owns: the trait every durable owner writes through, [`Store`]: LDK's [`KVStoreSync`] (as ldk-node
//! does) plus [`Store::write_batch`], several changes made durable together with one sync (the ordered
//! flush of channel state is one such batch), behind [`DynStore`]; the key rules every implementation enforces ([`check`]); where things live ([`layout`]);
//! the sled implementation ([`SledStore`], the embedded default) and the PostgreSQL one ([`PgStore`]);
//! the builder chooses one, no owner knows which; and what every implementation must do ([`contract`]).
//!
//! Every implementation must make [`KVStoreSync::write`] and a non-lazy [`KVStoreSync::remove`] durable
//! before returning. LDK's ChainMonitor writes a ChannelMonitor update and only afterwards lets the
//! ChannelManager send the matching `commitment_signed`/`revoke_and_ack` to the peer; a store that
//! returned before the bytes were on disk could lose, in a crash, a state the peer already holds our
//! signature for, and the peer could then broadcast a state we can no longer punish. The wallet (a
//! revealed address index lost hands out the same address twice) and the broadcast journal rely on the
//! same promise.
//!
//! Must never: know what the bytes mean (owners encode and decode their own values), nor let a key
//! outside LDK's rules in: every backend must be able to hold every key.
use std::sync::Arc;

pub use lightning::io;
pub use lightning::util::persist::KVStoreSync;

pub mod contract;
pub mod layout;
mod postgres_store;
mod sled_pieces;
mod sled_store;

pub use layout::Namespace;
pub use postgres_store::{check_dsn as check_postgres_dsn, describe as describe_postgres, schema_version as postgres_schema_version, LeaseInfo, PgOptions, PgStore, MIGRATIONS as POSTGRES_MIGRATIONS};
pub use sled_pieces::PIECE as SLED_PIECE;
pub use sled_store::{dir_size, SledStore};

/// One change of a [`Store::write_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Write { primary: String, secondary: String, key: String, value: Vec<u8> },
    Remove { primary: String, secondary: String, key: String },
}

impl Op {
    pub fn write(primary: &str, secondary: &str, key: &str, value: Vec<u8>) -> Op {
        Op::Write { primary: primary.into(), secondary: secondary.into(), key: key.into(), value }
    }
    pub fn remove(primary: &str, secondary: &str, key: &str) -> Op {
        Op::Remove { primary: primary.into(), secondary: secondary.into(), key: key.into() }
    }
    /// The bytes a write stores (0 for a remove).
    pub fn len(&self) -> usize {
        match self {
            Op::Write { value, .. } => value.len(),
            Op::Remove { .. } => 0,
        }
    }
}

/// The storage trait: LDK's [`KVStoreSync`] and a batch.
pub trait Store: KVStoreSync + Send + Sync {
    /// Applies `ops` in order and returns once all of them are durable, paying for one sync rather than
    /// one per change (group commit). A backend that can (sled: one batch of one tree) applies them
    /// atomically: after a crash, all or none are there. Checks every key before changing anything.
    fn write_batch(&self, ops: Vec<Op>) -> io::Result<()>;

    /// Writes without waiting for the disk: durable once any later synced write or batch of this store
    /// returns (sled syncs everything written before it), or lost in a crash before that. Only for what is
    /// rewritten if lost: the records the node writes while handling one of LDK's events, which LDK hands
    /// over again after a restart unless a ChannelManager written after the handling (every manager write
    /// is a synced batch) says it was handled. A backend without a cheaper write makes it durable at once.
    fn write_unsynced(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        self.write(primary, secondary, key, buf)
    }
}

/// The store every owner holds: any durable [`Store`], shared.
pub type DynStore = Arc<dyn Store>;

/// Longest namespace or key ([`lightning::util::persist::KVSTORE_NAMESPACE_KEY_MAX_LEN`]).
pub const MAX_LEN: usize = lightning::util::persist::KVSTORE_NAMESPACE_KEY_MAX_LEN;

/// Checks namespaces and key against LDK's rules: `[A-Za-z0-9_-]`, at most [`MAX_LEN`] characters, a
/// secondary namespace only under a primary one, keys not empty. `key` is `None` for `list`.
pub fn check(primary: &str, secondary: &str, key: Option<&str>) -> io::Result<()> {
    let valid = |s: &str| s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok = valid(primary)
        && valid(secondary)
        && (!primary.is_empty() || secondary.is_empty())
        && key.map_or(true, |k| !k.is_empty() && valid(k));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid namespace/key: {primary:?}/{secondary:?}/{key:?}")))
    }
}

/// `bytes` as a store key: lowercase hex, which keeps the bytes' order (for keys of one length, and for
/// a key and its prefixes).
pub fn hex_key(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_ldk_rules() {
        assert!(check("monitors", "", Some("abc_1-2")).is_ok());
        assert!(check("", "", None).is_ok());
        assert_eq!(check("a/b", "", Some("k")).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(check("", "x", Some("k")).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(check("a", "", Some("")).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(check("a", "", Some(&"k".repeat(MAX_LEN))).is_ok());
        assert!(check("a", "", Some(&"k".repeat(MAX_LEN + 1))).is_err());
    }

    #[test]
    fn hex_keys_keep_byte_order() {
        assert_eq!(hex_key(&[0x00, 0x0a, 0xff]), "000aff");
        let mut raw: Vec<Vec<u8>> = vec![vec![0x9f], vec![0xa0], vec![0x0a, 0x01], vec![0x0a], vec![0xff, 0x00]];
        let mut hexed: Vec<String> = raw.iter().map(|k| hex_key(k)).collect();
        raw.sort();
        hexed.sort();
        assert_eq!(hexed, raw.iter().map(|k| hex_key(k)).collect::<Vec<_>>());
    }
}
