//! The few facts every lanes crate must agree on, in one place: what time it is (seconds since the
//! Unix epoch, [`now_secs`]) and how much money can exist ([`MAX_MSAT`], [`check_msat`]).
//!
//! Must never: depend on another crate (not LDK, not bitcoin, not another lanes crate), hold state,
//! do I/O beyond reading the clock, or panic.

/// The largest amount that can exist: 21 million bitcoin, in msat.
pub const MAX_MSAT: u64 = 21_000_000 * 100_000_000 * 1000;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `msat` itself if it is at most [`MAX_MSAT`], otherwise the message an API caller gets.
pub fn check_msat(msat: u64) -> Result<u64, String> {
    if msat > MAX_MSAT {
        Err(format!("{msat} msat is more than 21 million bitcoin"))
    } else {
        Ok(msat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_msat_is_21_million_bitcoin() {
        assert_eq!(MAX_MSAT, 2_100_000_000_000_000_000);
    }

    #[test]
    fn check_msat_accepts_up_to_the_limit() {
        assert_eq!(check_msat(0), Ok(0));
        assert_eq!(check_msat(1), Ok(1));
        assert_eq!(check_msat(MAX_MSAT), Ok(MAX_MSAT));
    }

    #[test]
    fn check_msat_refuses_more_with_the_api_message() {
        assert_eq!(
            check_msat(MAX_MSAT + 1),
            Err("2100000000000000001 msat is more than 21 million bitcoin".to_string())
        );
        assert_eq!(check_msat(u64::MAX), Err(format!("{} msat is more than 21 million bitcoin", u64::MAX)));
    }

    #[test]
    fn now_secs_is_after_2024_and_does_not_go_back() {
        let a = now_secs();
        assert!(a > 1_700_000_000, "{a}");
        assert!(now_secs() >= a);
    }
}
