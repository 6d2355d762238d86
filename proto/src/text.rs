//! How the API's values read to people and scripts: an enum value as a word (`PAYMENT_STATUS_IN_FLIGHT` is
//! `in_flight`), a timestamp as a UTC date, and (feature `serde`) the enum fields of the derived JSON form.
//!
//! Owns: those renderings, the same in lanes-cli's text and `--json` output. Must never: parse or check
//! values (lanesd does), or change a message: this is a view of the wire contract, not part of it.
use crate::v1::{CommitmentType, InvoiceState, PaymentStatus};

/// An API enum's value as a word, the enum's prefix left out and lower case: `in_flight`, `settled`; a value
/// this build does not know is `unknown (N)`.
pub trait Word {
    fn word(value: i32) -> String;
}

macro_rules! enum_word {
    ($($ty:ident => $prefix:literal),*) => {
        $(impl Word for $ty {
            fn word(value: i32) -> String {
                match $ty::try_from(value) {
                    Ok(v) => v.as_str_name().trim_start_matches($prefix).to_ascii_lowercase(),
                    Err(_) => format!("unknown ({value})"),
                }
            }
        })*
    };
}
enum_word!(PaymentStatus => "PAYMENT_STATUS_", InvoiceState => "INVOICE_STATE_", CommitmentType => "COMMITMENT_TYPE_");

/// An enum field (an `i32` in prost) as its word; build.rs puts it on every enum field.
#[cfg(feature = "serde")]
pub fn serialize_word<E: Word, S: serde::Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&E::word(*value))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_words() {
        assert_eq!(PaymentStatus::word(PaymentStatus::InFlight as i32), "in_flight");
        assert_eq!(InvoiceState::word(InvoiceState::Settled as i32), "settled");
        assert_eq!(PaymentStatus::word(42), "unknown (42)");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1), "1970-01-01 00:00:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
