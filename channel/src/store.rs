//! The durable key-value store LDK persists into, on sled.
//!
//! Owns: one sled tree holding every LDK object (ChannelManager, ChannelMonitors and their updates,
//! network graph, scorer, output sweeper) under `primary/secondary/key`.
//!
//! Must never: return from [`KVStoreSync::write`] or [`KVStoreSync::remove`] before the change is on
//! disk. LDK's ChainMonitor calls `write` for a ChannelMonitor update and only afterwards lets the
//! ChannelManager send the matching `commitment_signed`/`revoke_and_ack` to the peer; if we returned
//! before sled's `flush` (fsync), a crash could lose a state the peer already holds our signature for,
//! and the peer could then broadcast a state we can no longer punish. So every write flushes.
use lightning::io;
use lightning::util::persist::KVStoreSync;

/// Separates the three parts of a key. LDK keys and namespaces are restricted to
/// `[A-Za-z0-9_-]`, so the byte 0x00 never appears inside them.
const SEP: u8 = 0;

/// sled-backed [`KVStoreSync`] for LDK.
#[derive(Clone)]
pub struct SledStore {
    tree: sled::Tree,
}

impl SledStore {
    /// A store over `tree` (the node opens one sled database and hands each owner its own tree).
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    fn full_key(primary: &str, secondary: &str, key: &str) -> Vec<u8> {
        let mut k = Self::prefix(primary, secondary);
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn prefix(primary: &str, secondary: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(primary.len() + secondary.len() + 2);
        k.extend_from_slice(primary.as_bytes());
        k.push(SEP);
        k.extend_from_slice(secondary.as_bytes());
        k.push(SEP);
        k
    }

    fn check(primary: &str, secondary: &str, key: Option<&str>) -> io::Result<()> {
        let valid = |s: &str| s.len() <= 120 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let ok = valid(primary)
            && valid(secondary)
            && (!primary.is_empty() || secondary.is_empty())
            && key.map_or(true, |k| !k.is_empty() && valid(k));
        if ok {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid namespace/key: {primary:?}/{secondary:?}/{key:?}"),
            ))
        }
    }

    /// Wait until everything written so far is on disk.
    fn durable(&self) -> io::Result<()> {
        self.tree.flush().map(|_| ()).map_err(to_io)
    }
}

fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e.into(),
        other => io::Error::new(io::ErrorKind::Other, other.to_string()),
    }
}

impl KVStoreSync for SledStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        Self::check(primary, secondary, Some(key))?;
        match self.tree.get(Self::full_key(primary, secondary, key)).map_err(to_io)? {
            Some(v) => Ok(v.to_vec()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("{primary}/{secondary}/{key} not found"))),
        }
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        Self::check(primary, secondary, Some(key))?;
        self.tree.insert(Self::full_key(primary, secondary, key), buf).map_err(to_io)?;
        // Durable before returning: see the module doc. LDK treats Ok as "persisted".
        self.durable()
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, lazy: bool) -> io::Result<()> {
        Self::check(primary, secondary, Some(key))?;
        self.tree.remove(Self::full_key(primary, secondary, key)).map_err(to_io)?;
        // A lazy remove may be lost on crash (LDK replays it); a non-lazy one must not be.
        if lazy {
            Ok(())
        } else {
            self.durable()
        }
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        Self::check(primary, secondary, None)?;
        let prefix = Self::prefix(primary, secondary);
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item.map_err(to_io)?;
            let rest = &k[prefix.len()..];
            // Keys of deeper namespaces never match: the prefix ends in a separator and keys have none.
            if !rest.contains(&SEP) {
                keys.push(String::from_utf8_lossy(rest).into_owned());
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, SledStore::new(db.open_tree("ldk").unwrap()))
    }

    #[test]
    fn write_read_list_remove() {
        let (_d, s) = store();
        s.write("monitors", "", "abc", vec![1, 2, 3]).unwrap();
        s.write("monitors", "", "def", vec![4]).unwrap();
        s.write("monitor_updates", "abc", "1", vec![9]).unwrap();
        s.write("", "", "manager", vec![7]).unwrap();
        assert_eq!(s.read("monitors", "", "abc").unwrap(), vec![1, 2, 3]);
        let mut keys = s.list("monitors", "").unwrap();
        keys.sort();
        assert_eq!(keys, vec!["abc", "def"]);
        assert_eq!(s.list("monitor_updates", "abc").unwrap(), vec!["1"]);
        assert_eq!(s.list("", "").unwrap(), vec!["manager"]);
        s.remove("monitors", "", "abc", false).unwrap();
        assert_eq!(s.read("monitors", "", "abc").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(s.list("monitors", "").unwrap(), vec!["def"]);
        // Removing what is not there succeeds.
        s.remove("monitors", "", "nothing", true).unwrap();
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            SledStore::new(db.open_tree("ldk").unwrap()).write("a", "b", "c", vec![5; 100]).unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        assert_eq!(SledStore::new(db.open_tree("ldk").unwrap()).read("a", "b", "c").unwrap(), vec![5; 100]);
    }

    #[test]
    fn rejects_bad_keys() {
        let (_d, s) = store();
        assert_eq!(s.write("a/b", "", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(s.write("", "x", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(s.read("a", "", "").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
