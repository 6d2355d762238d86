//! How node records are encoded on disk: versioned JSON.
//!
//! A record is written as `{"v": VERSION, "r": {...}}`. Records written before versions existed are the
//! bare JSON object; they read as version 1. A record type whose layout changes raises its
//! [`Record::VERSION`] and says in [`Record::upgrade`] how an older version reads, so every record ever
//! written stays readable.
//!
//! Owns: the encoding and the version check. Must never: write a record in an older version, or drop a
//! record it cannot read silently (an unreadable record is an error naming its kind and version).
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::NodeError;

/// A record kind kept by [`crate::store::Records`].
pub trait Record: Serialize + DeserializeOwned {
    /// What the record is, for errors.
    const KIND: &'static str;
    /// The version written now (1 for kinds whose layout never changed).
    const VERSION: u32 = 1;
    /// Reads a record written in an older `version` (1 = written before versions existed).
    fn upgrade(version: u32, value: serde_json::Value) -> Result<Self, String> {
        if version == Self::VERSION {
            return serde_json::from_value(value).map_err(|e| e.to_string());
        }
        Err(format!("no reader for version {version}"))
    }
}

#[derive(Serialize)]
struct Out<'a, T> {
    v: u32,
    r: &'a T,
}

#[derive(Deserialize)]
struct In {
    v: u32,
    r: serde_json::Value,
}

pub fn encode<T: Record>(record: &T) -> Result<Vec<u8>, NodeError> {
    serde_json::to_vec(&Out { v: T::VERSION, r: record }).map_err(|e| NodeError::Internal(format!("encoding a {} record: {e}", T::KIND)))
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, NodeError> {
    let bad = |v: u32, e: String| NodeError::Internal(format!("reading a {} record (version {v}): {e}", T::KIND));
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(0, e.to_string()))?;
    let is_envelope = value.as_object().is_some_and(|o| o.len() == 2 && o.contains_key("v") && o.contains_key("r"));
    let (version, value) = if is_envelope {
        let In { v, r } = serde_json::from_value(value).map_err(|e| bad(0, e.to_string()))?;
        (v, r)
    } else {
        (1, value)
    };
    if version > T::VERSION {
        return Err(bad(version, format!("written by a newer lanes (this one reads up to version {})", T::VERSION)));
    }
    if version == T::VERSION {
        return serde_json::from_value(value).map_err(|e| bad(version, e.to_string()));
    }
    T::upgrade(version, value).map_err(|e| bad(version, e))
}

/// Serde for 32-byte ids as hex strings (payment ids, hashes, preimages).
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::ids::hex(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::ids::parse_hex32(&s, "32-byte id").map_err(serde::de::Error::custom)
    }

    /// The same for an optional id ("" or absent: none).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&b.map(|b| crate::ids::hex(&b)).unwrap_or_default())
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
            let s = Option::<String>::deserialize(d)?.unwrap_or_default();
            if s.is_empty() {
                return Ok(None);
            }
            crate::ids::parse_hex32(&s, "32-byte id").map(Some).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Two {
        a: u64,
        b: String,
    }

    impl Record for Two {
        const KIND: &'static str = "test";
        const VERSION: u32 = 2;
        fn upgrade(version: u32, value: serde_json::Value) -> Result<Self, String> {
            match version {
                1 => Ok(Two { a: value["a"].as_u64().ok_or("no a")?, b: "from v1".into() }),
                v => Err(format!("no reader for version {v}")),
            }
        }
    }

    #[test]
    fn bare_records_read_as_version_1_and_new_ones_carry_their_version() {
        assert_eq!(decode::<Two>(br#"{"a":7}"#).unwrap(), Two { a: 7, b: "from v1".into() });
        let bytes = encode(&Two { a: 1, b: "x".into() }).unwrap();
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), r#"{"v":2,"r":{"a":1,"b":"x"}}"#);
        assert_eq!(decode::<Two>(&bytes).unwrap(), Two { a: 1, b: "x".into() });
        let newer = decode::<Two>(br#"{"v":3,"r":{"a":1}}"#).unwrap_err().to_string();
        assert!(newer.contains("newer lanes"), "{newer}");
    }
}
