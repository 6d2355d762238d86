//! Hex ids at the API boundary (channel ids, payment hashes, preimages): one parser, one printer.
//!
//! Owns: the hex forms of ids. Must never: accept an id of the wrong length, or print one any other way.
use lightning::ln::types::ChannelId;

use crate::NodeError;

/// A channel id as the API gives it (64 hex characters).
pub fn parse_channel_id(s: &str) -> Result<ChannelId, NodeError> {
    Ok(ChannelId(parse_hex32(s, "channel id")?))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex characters; `what` names the id in the error.
pub fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32], NodeError> {
    let s = s.trim();
    let bad = || NodeError::Invalid(format!("{s:?} is not a {what} (64 hex characters)"));
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let h = "0a".repeat(32);
        assert_eq!(parse_hex32(&h, "x").unwrap(), [10; 32]);
        assert_eq!(hex(&[10; 32]), h);
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33), "é"] {
            assert!(matches!(parse_hex32(bad, "x"), Err(NodeError::Invalid(_))), "{bad}");
        }
    }
}
