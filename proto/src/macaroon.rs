//! The API's credential: a macaroon (HMAC-chained bearer token with caveats), as lanesd bakes and checks it
//! and as clients present it (hex, in the `macaroon` request metadata, as LND's).
//!
//! Format (version 1), all of it hex-encoded on the wire and in files:
//! `"LM" 0x01 | root key id (8 bytes) | nonce (16 bytes) | caveat count (1 byte) | each caveat: length
//! (2 bytes, big-endian) and UTF-8 text | signature (32 bytes)`. The signature is a chain:
//! `sig0 = HMAC-SHA256(root key, id | nonce)`, then `sig = HMAC-SHA256(sig, caveat)` for each caveat in order.
//! Whoever holds a macaroon can add a caveat ([`Macaroon::attenuate`]: the chain goes on from its signature),
//! which only narrows what it allows; nobody can remove one or forge a macaroon without the root key.
//!
//! Caveats lanesd understands (any other makes the macaroon invalid, so a check is never skipped):
//! - `perms=<entity:action>,...`: the call's permission must be among them;
//! - `methods=<Method>,...`: the call's method name must be among them (an allow-list);
//! - `expires=<unix seconds>`: invalid from then on.
//!
//! Owns: the encoding, the signature chain and the caveat grammar. Must never: hold or read a root key from
//! disk (lanesd does), or compare signatures in variable time.
use bitcoin_hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};

const MAGIC: &[u8] = b"LM\x01";

/// The macaroons lanesd writes in its data dir: every permission, every `:read` one, and invoices only.
pub const ADMIN_MACAROON: &str = "admin.macaroon";
pub const READONLY_MACAROON: &str = "readonly.macaroon";
pub const INVOICE_MACAROON: &str = "invoice.macaroon";
/// The API's TLS certificate (what clients pin) and key, in the data dir.
pub const TLS_CERT: &str = "tls.cert";
pub const TLS_KEY: &str = "tls.key";
/// Most caveats one macaroon may carry, and longest caveat: a credential is small.
pub const MAX_CAVEATS: usize = 32;
pub const MAX_CAVEAT_LEN: usize = 4096;

/// A macaroon, decoded (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macaroon {
    pub key_id: [u8; 8],
    pub nonce: [u8; 16],
    pub caveats: Vec<String>,
    pub signature: [u8; 32],
}

/// Why a macaroon is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not hex, or not a macaroon of this format.
    Malformed(String),
    /// Made with a root key this node no longer has (rotated) or never had.
    UnknownKey,
    /// The signature does not match: changed after it was baked.
    BadSignature,
    Expired { at: u64 },
    UnknownCaveat(String),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Malformed(why) => write!(f, "the macaroon is malformed: {why}"),
            Invalid::UnknownKey => write!(f, "the macaroon was not made by this node's current root key (rotated?): bake or copy a current one"),
            Invalid::BadSignature => write!(f, "the macaroon's signature does not match: it was changed after it was made"),
            Invalid::Expired { at } => write!(f, "the macaroon expired at {} ({at})", crate::text::utc(*at)),
            Invalid::UnknownCaveat(c) => write!(f, "the macaroon has a caveat this node does not understand: {c:?}"),
        }
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut e = HmacEngine::<sha256::Hash>::new(key);
    for p in parts {
        e.input(p);
    }
    Hmac::<sha256::Hash>::from_engine(e).to_byte_array()
}

/// Equal without revealing where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Macaroon {
    /// A new macaroon under `root_key` (named `key_id`) with `caveats`; `nonce` makes each one distinct.
    pub fn bake(root_key: &[u8; 32], key_id: [u8; 8], nonce: [u8; 16], caveats: Vec<String>) -> Macaroon {
        let signature = hmac(root_key, &[&key_id, &nonce]);
        let m = Macaroon { key_id, nonce, caveats: Vec::new(), signature };
        caveats.into_iter().fold(m, |m, c| m.attenuate(c))
    }

    /// The same macaroon with one more caveat (needs no root key).
    pub fn attenuate(mut self, caveat: String) -> Macaroon {
        self.signature = hmac(&self.signature, &[caveat.as_bytes()]);
        self.caveats.push(caveat);
        self
    }

    /// Checks the signature chain against `root_key`.
    pub fn verify_signature(&self, root_key: &[u8; 32]) -> Result<(), Invalid> {
        let mut sig = hmac(root_key, &[&self.key_id, &self.nonce]);
        for c in &self.caveats {
            sig = hmac(&sig, &[c.as_bytes()]);
        }
        if same(&sig, &self.signature) {
            Ok(())
        } else {
            Err(Invalid::BadSignature)
        }
    }

    /// Whether the caveats allow `method` (its name, e.g. `GetInfo`) needing `permission` at `now`.
    /// `Ok(false)` is a valid macaroon that does not allow the call.
    pub fn allows(&self, method: &str, permission: &str, now: u64) -> Result<bool, Invalid> {
        let mut allowed = true;
        for c in &self.caveats {
            let (k, v) = c.split_once('=').ok_or_else(|| Invalid::UnknownCaveat(c.clone()))?;
            let list = || v.split(',').map(str::trim);
            match k.trim() {
                "perms" => allowed &= list().any(|p| p == permission),
                "methods" => allowed &= list().any(|m| m == method),
                "expires" => {
                    let at: u64 = v.trim().parse().map_err(|_| Invalid::UnknownCaveat(c.clone()))?;
                    if now >= at {
                        return Err(Invalid::Expired { at });
                    }
                }
                _ => return Err(Invalid::UnknownCaveat(c.clone())),
            }
        }
        Ok(allowed)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.nonce);
        out.push(self.caveats.len() as u8);
        for c in &self.caveats {
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c.as_bytes());
        }
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn to_hex(&self) -> String {
        self.encode().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(bytes: &[u8]) -> Result<Macaroon, Invalid> {
        let bad = |why: &str| Invalid::Malformed(why.to_string());
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("not a lanes macaroon (wrong prefix or version)"))?;
        let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, Invalid> {
            if rest.len() < n {
                return Err(bad("cut short"));
            }
            let (a, b) = rest.split_at(n);
            *rest = b;
            Ok(a.to_vec())
        };
        let mut rest = rest;
        let key_id: [u8; 8] = take(&mut rest, 8)?.try_into().map_err(|_| bad("key id"))?;
        let nonce: [u8; 16] = take(&mut rest, 16)?.try_into().map_err(|_| bad("nonce"))?;
        let count = take(&mut rest, 1)?[0] as usize;
        if count > MAX_CAVEATS {
            return Err(bad("too many caveats"));
        }
        let mut caveats = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().map_err(|_| bad("caveat length"))?) as usize;
            if len > MAX_CAVEAT_LEN {
                return Err(bad("caveat too long"));
            }
            caveats.push(String::from_utf8(take(&mut rest, len)?).map_err(|_| bad("caveat is not UTF-8"))?);
        }
        let signature: [u8; 32] = take(&mut rest, 32)?.try_into().map_err(|_| bad("signature"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Macaroon { key_id, nonce, caveats, signature })
    }

    pub fn from_hex(s: &str) -> Result<Macaroon, Invalid> {
        let s = s.trim();
        if s.len() % 2 != 0 || s.len() > 2 * (64 + MAX_CAVEATS * (2 + MAX_CAVEAT_LEN)) {
            return Err(Invalid::Malformed("not hex of a macaroon".into()));
        }
        let bytes: Result<Vec<u8>, _> = (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).ok_or(())).collect();
        Macaroon::decode(&bytes.map_err(|_| Invalid::Malformed("not hex".into()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn readonly() -> Macaroon {
        Macaroon::bake(&KEY, [1; 8], [2; 16], vec!["perms=info:read,invoices:read".into()])
    }

    #[test]
    fn a_baked_macaroon_verifies_and_round_trips() {
        let m = readonly();
        assert_eq!(Macaroon::from_hex(&m.to_hex()).unwrap(), m);
        m.verify_signature(&KEY).unwrap();
        assert_eq!(m.allows("GetInfo", "info:read", 0), Ok(true));
        assert_eq!(m.allows("SendCoins", "onchain:write", 0), Ok(false));
    }

    #[test]
    fn attenuation_narrows_and_tampering_is_caught() {
        let m = readonly().attenuate("methods=GetInfo".into()).attenuate("expires=100".into());
        m.verify_signature(&KEY).unwrap();
        assert_eq!(m.allows("GetInfo", "info:read", 99), Ok(true));
        assert_eq!(m.allows("ListInvoices", "invoices:read", 99), Ok(false), "not in the allow-list");
        assert_eq!(m.allows("GetInfo", "info:read", 100), Err(Invalid::Expired { at: 100 }));
        // Dropping a caveat, or changing one, breaks the chain.
        let mut dropped = m.clone();
        dropped.caveats.pop();
        assert_eq!(dropped.verify_signature(&KEY), Err(Invalid::BadSignature));
        let mut widened = readonly();
        widened.caveats[0] = "perms=info:read,invoices:read,onchain:write".into();
        assert_eq!(widened.verify_signature(&KEY), Err(Invalid::BadSignature));
        assert_eq!(readonly().verify_signature(&[8; 32]), Err(Invalid::BadSignature));
        let mut bytes = readonly().encode();
        *bytes.last_mut().unwrap() ^= 1;
        assert_eq!(Macaroon::decode(&bytes).unwrap().verify_signature(&KEY), Err(Invalid::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_and_unknown_caveats_refuse() {
        for bad in ["", "zz", "00", &"ab".repeat(40), &readonly().to_hex()[..20]] {
            assert!(matches!(Macaroon::from_hex(bad), Err(Invalid::Malformed(_))), "{bad}");
        }
        let m = Macaroon::bake(&KEY, [1; 8], [2; 16], vec!["ip=1.2.3.4".into()]);
        assert!(matches!(m.allows("GetInfo", "info:read", 0), Err(Invalid::UnknownCaveat(_))));
    }
}
