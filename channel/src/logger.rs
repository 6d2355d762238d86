//! LDK's log records, forwarded to `tracing` with the channel and peer ids LDK attaches.
//!
//! Owns: the mapping of LDK levels to tracing levels, and keeping the onion errors LDK decodes for our
//! payments (which node failed, with which BOLT 4 code), which LDK only reports in a log record: the node
//! reads them back to tell an operator why a payment failed. Must never: decide what an operator sees
//! about state changes; those one-line events are logged by the node where the change happens.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use lightning::types::payment::PaymentHash;
use lightning::util::logger::{Level, Logger, Record};

/// How many payments' onion errors are kept (the oldest payment's are dropped first).
const KEPT_PAYMENTS: usize = 1024;
/// How many onion errors are kept per payment (the latest).
const KEPT_PER_PAYMENT: usize = 8;

/// A hop's answer to one of our payment attempts, as LDK decoded it from the onion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnionFailure {
    /// The node that failed the HTLC, hex.
    pub node_id: String,
    /// LDK's name for the BOLT 4 failure, e.g. `PrivateChannelForward`, `TemporaryChannelFailure`.
    pub name: String,
    /// The BOLT 4 failure code, e.g. 0x100c.
    pub code: u16,
}

impl OnionFailure {
    /// Parses LDK's `Onion Error[from NODE: Name(0xCODE)...]` log text.
    fn parse(text: &str) -> Option<OnionFailure> {
        let rest = text.strip_prefix("Onion Error[from ")?;
        let (node_id, rest) = rest.split_once(": ")?;
        let (name, rest) = rest.split_once('(')?;
        let code = rest.strip_prefix("0x")?.split(')').next()?;
        Some(OnionFailure { node_id: node_id.to_string(), name: name.to_string(), code: u16::from_str_radix(code, 16).ok()? })
    }

    /// The failure in words an operator can act on.
    pub fn words(&self) -> String {
        let what = match self.name.as_str() {
            "PrivateChannelForward" => "it does not forward into private channels",
            "UnknownNextPeer" => "it does not know the next channel (closed, or a private channel it will not use)",
            "TemporaryChannelFailure" => "the next channel lacks liquidity or is busy",
            "PermanentChannelFailure" => "the next channel is closed",
            "FeeInsufficient" => "our fee for it was too low (its policy changed)",
            "IncorrectCLTVExpiry" | "ExpiryTooSoon" => "the time lock did not suit its policy",
            "AmountBelowMinimum" => "the amount is below its channel minimum",
            "ChannelDisabled" => "the next channel is disabled",
            "IncorrectPaymentDetails" => "the recipient does not know this payment (unknown or paid invoice, wrong amount)",
            "InvalidOnionPayload" => "it could not read what we sent (e.g. a keysend or TLV it does not accept)",
            "RequiredNodeFeature" | "RequiredChannelFeature" => "it needs a feature we did not use",
            "MPPTimeout" => "the recipient did not get every part in time",
            _ => "",
        };
        match what {
            "" => format!("node {} failed it: {} ({:#06x})", self.node_id, self.name, self.code),
            w => format!("node {} failed it: {} ({:#06x}): {w}", self.node_id, self.name, self.code),
        }
    }
}

/// Forwards LDK records to tracing under the target `ldk`.
#[derive(Default)]
pub struct LdkTracing {
    onion_errors: Mutex<(HashMap<PaymentHash, Vec<OnionFailure>>, VecDeque<PaymentHash>)>,
}

impl LdkTracing {
    /// The onion errors our attempts of the payment `hash` got, oldest first; forgets them.
    pub fn take_onion_failures(&self, hash: &PaymentHash) -> Vec<OnionFailure> {
        let mut kept = self.onion_errors.lock().unwrap_or_else(|p| p.into_inner());
        kept.1.retain(|h| h != hash);
        kept.0.remove(hash).unwrap_or_default()
    }

    fn keep(&self, hash: PaymentHash, failure: OnionFailure) {
        let mut kept = self.onion_errors.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *kept;
        let list = map.entry(hash).or_insert_with(|| {
            order.push_back(hash);
            Vec::new()
        });
        if list.len() == KEPT_PER_PAYMENT {
            list.remove(0);
        }
        list.push(failure);
        while order.len() > KEPT_PAYMENTS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

impl Logger for LdkTracing {
    fn log(&self, r: Record) {
        let peer = r.peer_id.map(|p| p.to_string()).unwrap_or_default();
        let chan = r.channel_id.map(|c| c.to_string()).unwrap_or_default();
        if let Some(hash) = r.payment_hash {
            if let Some(f) = OnionFailure::parse(&r.args.to_string()) {
                self.keep(hash, f);
            }
        }
        // LDK logs a cooperative close, a normal end of a channel, at ERROR ("Closing channel: Coop Closed"):
        // an operator's alerting must not fire on it.
        let level = match r.level {
            Level::Error if r.args.to_string().contains("Coop Closed") => Level::Info,
            other => other,
        };
        match level {
            Level::Gossip | Level::Trace => {
                tracing::trace!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args)
            }
            Level::Debug => tracing::debug!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Info => tracing::info!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Warn => tracing::warn!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
            Level::Error => tracing::error!(target: "ldk", module = r.module_path, peer, chan, "{}", r.args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onion_errors_are_read_from_ldk_records() {
        let f = OnionFailure::parse("Onion Error[from 02aa: PrivateChannelForward(0x401d) chan_id(...)]").unwrap();
        assert_eq!(f, OnionFailure { node_id: "02aa".into(), name: "PrivateChannelForward".into(), code: 0x401d });
        assert_eq!(f.words(), "node 02aa failed it: PrivateChannelForward (0x401d): it does not forward into private channels");
        assert!(OnionFailure::parse("Onion Error[from 03bb: IncorrectPaymentDetails(0x400f)]").is_some());
        assert!(OnionFailure::parse("something else").is_none());
    }

    #[test]
    fn kept_per_payment_and_bounded() {
        let log = LdkTracing::default();
        let f = |n: &str| OnionFailure { node_id: n.into(), name: "X".into(), code: 1 };
        for i in 0..(KEPT_PAYMENTS + 10) {
            log.keep(PaymentHash([(i % 256) as u8, (i / 256) as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), f("a"));
        }
        assert_eq!(log.onion_errors.lock().unwrap().0.len(), KEPT_PAYMENTS);
        let h = PaymentHash([9; 32]);
        for _ in 0..20 {
            log.keep(h, f("b"));
        }
        assert_eq!(log.take_onion_failures(&h).len(), KEPT_PER_PAYMENT);
        assert!(log.take_onion_failures(&h).is_empty());
    }
}
