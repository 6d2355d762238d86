//! The few facts every lanes crate must agree on, in one place: what time it is (seconds since the
//! Unix epoch, [`now_secs`], shown as [`utc`]) and how much money can exist ([`MAX_MSAT`], [`check_msat`]).
//!
//! Must never: depend on another crate (not LDK, not bitcoin, not another lanes crate), hold state,
//! do I/O beyond reading the clock, or panic.

/// The largest amount that can exist: 21 million bitcoin, in msat.
pub const MAX_MSAT: u64 = 21_000_000 * 100_000_000 * 1000;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Seconds since the Unix epoch as a date an operator reads, `2023-11-14 22:13:20 UTC` ("-" for 0).
pub fn utc(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let days = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
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
    fn dates_are_utc() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

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
