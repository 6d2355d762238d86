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

pub use lanes_common::utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_words() {
        assert_eq!(PaymentStatus::word(PaymentStatus::InFlight as i32), "in_flight");
        assert_eq!(InvoiceState::word(InvoiceState::Settled as i32), "settled");
        assert_eq!(PaymentStatus::word(42), "unknown (42)");
    }

}
