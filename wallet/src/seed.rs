//! The node's seed: a BIP39 mnemonic created on first start and kept in the data dir.
//!
//! Owns: creating, reading and deriving from the seed. Every key of the node comes from here: the BIP84
//! on-chain wallet at the BIP32 master, and LDK's 32-byte seed at the hardened child `m/535'` (so the
//! Lightning keys never overlap with the wallet's). Must never: write the seed anywhere but its file,
//! nor log it.
use std::fs;
use std::io::Write;
use std::path::Path;

use bip39::Mnemonic;
use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::Network;

use crate::WalletError;

/// The node's seed.
#[derive(Clone)]
pub struct Seed {
    mnemonic: Mnemonic,
}

impl Seed {
    /// Reads the mnemonic at `path`, or creates a fresh 24-word one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), WalletError> {
        if path.exists() {
            let words = fs::read_to_string(path).map_err(|e| WalletError::Seed(format!("reading {}: {e}", path.display())))?;
            let mnemonic = Mnemonic::parse(words.trim()).map_err(|e| WalletError::Seed(format!("{}: {e}", path.display())))?;
            return Ok((Self { mnemonic }, false));
        }
        let mnemonic = Mnemonic::generate(24).map_err(|e| WalletError::Seed(e.to_string()))?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(|e| WalletError::Seed(format!("creating {}: {e}", path.display())))?;
        // Durable before any key derived from it is used.
        f.write_all(format!("{mnemonic}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| WalletError::Seed(format!("writing {}: {e}", path.display())))?;
        Ok((Self { mnemonic }, true))
    }

    /// The BIP32 master key of the on-chain wallet.
    pub fn master_xprv(&self, network: Network) -> Xpriv {
        let seed = self.mnemonic.to_seed("");
        Xpriv::new_master(network, &seed).expect("a 64-byte seed is always a valid BIP32 seed")
    }

    /// LDK's 32-byte seed: the private key at `m/535'`.
    pub fn ldk_seed(&self, network: Network) -> [u8; 32] {
        let secp = Secp256k1::new();
        let child = [ChildNumber::from_hardened_idx(535).expect("535 < 2^31")];
        self.master_xprv(network)
            .derive_priv(&secp, &child)
            .expect("hardened derivation from a valid key cannot fail")
            .private_key
            .secret_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        let (a, created) = Seed::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Seed::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.ldk_seed(Network::Regtest), b.ldk_seed(Network::Regtest));
        assert_eq!(fs::read_to_string(&path).unwrap().split_whitespace().count(), 24);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_ne!(a.ldk_seed(Network::Regtest), a.master_xprv(Network::Regtest).private_key.secret_bytes());
    }

    #[test]
    fn corrupt_seed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        fs::write(&path, "not a mnemonic").unwrap();
        assert!(matches!(Seed::load_or_create(&path), Err(WalletError::Seed(_))));
    }
}
