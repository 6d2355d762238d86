//! The API's credentials on disk: the macaroon root key, the three macaroons baked from it (admin,
//! readonly, invoice, as LND's), and baking more.
//!
//! Files, all 0600 in the data dir: `macaroon_root_key` (the key's id and the key, hex), `admin.macaroon`,
//! `readonly.macaroon`, `invoice.macaroon` (binary, as LND's: `xxd -p -c 1000 admin.macaroon` gives the hex
//! a generic gRPC tool sends). The three are written when missing and when the root key is rotated
//! (`--rotate-macaroon-root-key`), which makes every macaroon baked before it invalid.
//!
//! Owns: those files and the current root key. Must never: log a key or a macaroon, or write either
//! readable by anyone but the node's user.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use lanes_proto::macaroon::{Macaroon, ADMIN_MACAROON, INVOICE_MACAROON, READONLY_MACAROON};

use super::auth::{all_permissions, read_permissions, INVOICE_PERMISSIONS, PERMISSIONS};
use crate::ids::hex;
use crate::NodeError;

/// Where the root key is kept, in the data dir.
pub const ROOT_KEY_FILE: &str = "macaroon_root_key";

/// The current root key and what it bakes.
pub struct Baker {
    key_id: [u8; 8],
    key: [u8; 32],
}

/// `N` bytes from the OS's random source.
fn random<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Writes `bytes` to `path` readable by the node's user only, replacing it atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Baker {
    /// Reads the root key in `dir`, making one (and the three macaroons) when there is none or `rotate`.
    /// The three macaroons are written again when one is missing.
    pub fn load_or_create(dir: &Path, rotate: bool) -> Result<Baker, NodeError> {
        let key_path = dir.join(ROOT_KEY_FILE);
        let existing = if rotate { None } else { read_root_key(&key_path)? };
        let (baker, fresh) = match existing {
            Some((key_id, key)) => (Baker { key_id, key }, false),
            None => {
                let baker = Baker { key_id: random(), key: random() };
                write_private(&key_path, format!("{} {}\n", hex(&baker.key_id), hex(&baker.key)).as_bytes())?;
                tracing::info!(root_key_id = %hex(&baker.key_id), rotated = rotate, "new macaroon root key: macaroons made before it no longer work");
                (baker, true)
            }
        };
        for (file, perms) in baker.standard() {
            let path = dir.join(file);
            if fresh || !path.exists() {
                write_private(&path, &baker.bake(&perms, &[], None).encode())?;
                tracing::info!(path = %path.display(), "macaroon written");
            }
        }
        Ok(baker)
    }

    /// The admin, readonly and invoice macaroons' files and permissions.
    fn standard(&self) -> [(&'static str, Vec<&'static str>); 3] {
        [(ADMIN_MACAROON, all_permissions()), (READONLY_MACAROON, read_permissions()), (INVOICE_MACAROON, INVOICE_PERMISSIONS.to_vec())]
    }

    /// The root keys the API accepts (today: the current one).
    pub fn root_keys(&self) -> HashMap<[u8; 8], [u8; 32]> {
        HashMap::from([(self.key_id, self.key)])
    }

    /// A macaroon for `permissions`, optionally only for `methods`, optionally expiring at `expires_at`.
    pub fn bake(&self, permissions: &[&str], methods: &[&str], expires_at: Option<u64>) -> Macaroon {
        let mut caveats = vec![format!("perms={}", permissions.join(","))];
        if !methods.is_empty() {
            caveats.push(format!("methods={}", methods.join(",")));
        }
        if let Some(at) = expires_at {
            caveats.push(format!("expires={at}"));
        }
        Macaroon::bake(&self.key, self.key_id, random(), caveats)
    }

    /// Checks a BakeMacaroon request: known permissions and methods, at least one permission.
    pub fn check_request(permissions: &[String], methods: &[String]) -> Result<(), NodeError> {
        if permissions.is_empty() {
            return Err(NodeError::Invalid("give at least one permission (entity:action, e.g. info:read)".into()));
        }
        let known = all_permissions();
        for p in permissions {
            if !known.contains(&p.as_str()) {
                return Err(NodeError::Invalid(format!("{p:?} is not a permission; the permissions are {}", known.join(", "))));
            }
        }
        for m in methods {
            if !PERMISSIONS.iter().any(|(name, _)| name == m) {
                return Err(NodeError::Invalid(format!("{m:?} is not a method of the API (give names such as GetInfo)")));
            }
        }
        Ok(())
    }
}

fn read_root_key(path: &PathBuf) -> Result<Option<([u8; 8], [u8; 32])>, NodeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = || NodeError::Config(format!("{} is not a macaroon root key (remove it, or start with --rotate-macaroon-root-key)", path.display()));
    let (id, key) = text.trim().split_once(' ').ok_or_else(bad)?;
    let unhex = |s: &str| -> Option<Vec<u8>> { (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect() };
    let id: [u8; 8] = unhex(id).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
    let key: [u8; 32] = unhex(key).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
    Ok(Some((id, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_three_macaroons_are_made_once_private_and_rotation_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = Baker::load_or_create(dir.path(), false).unwrap();
        let admin = std::fs::read(dir.path().join(ADMIN_MACAROON)).unwrap();
        for f in [ROOT_KEY_FILE, ADMIN_MACAROON, READONLY_MACAROON, INVOICE_MACAROON] {
            assert_eq!(std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
        }
        let again = Baker::load_or_create(dir.path(), false).unwrap();
        assert_eq!(again.root_keys(), first.root_keys());
        assert_eq!(std::fs::read(dir.path().join(ADMIN_MACAROON)).unwrap(), admin, "kept across restarts");
        let m = Macaroon::decode(&admin).unwrap();
        assert!(m.verify_signature(&first.key).is_ok() && m.allows("Stop", "info:write", 0) == Ok(true));
        let invoice = Macaroon::decode(&std::fs::read(dir.path().join(INVOICE_MACAROON)).unwrap()).unwrap();
        assert_eq!((invoice.allows("AddInvoice", "invoices:write", 0), invoice.allows("GetInfo", "info:read", 0)), (Ok(true), Ok(false)));
        let rotated = Baker::load_or_create(dir.path(), true).unwrap();
        assert_ne!(rotated.root_keys(), first.root_keys());
        assert_ne!(std::fs::read(dir.path().join(ADMIN_MACAROON)).unwrap(), admin);
        assert!(m.verify_signature(&rotated.key).is_err(), "old macaroons no longer verify");
    }
}
