//! BOLT12 strings and LDK's BOLT12 refusals: reading offers (`lno1…`), refunds (`lnr1…`) and invoices
//! (`lni1…`, the string form CLN shows; LDK sends invoices only as onion messages), writing invoices, and
//! the errors a caller can act on.
//!
//! Owns: parsing and printing those strings, the chain check, and the wording of LDK's semantic errors.
//! Must never: build, sign or answer offers, invoice requests or invoices (LDK does), or keep state.
use bitcoin::constants::ChainHash;
use lightning::blinded_path::IntroductionNode;
use lightning::offers::offer::{Amount, Offer, Quantity};
use lightning::offers::parse::Bolt12SemanticError;
use lightning::offers::refund::Refund;

use crate::error::PaymentError;
use crate::NodeError;

/// Items per payment as recorded and shown: 1, N, or 0 for any number.
pub fn quantity_max(q: Quantity) -> u64 {
    match q {
        Quantity::One => 1,
        Quantity::Bounded(n) => n.get(),
        Quantity::Unbounded => 0,
    }
}

pub fn chain_name(chain: ChainHash) -> String {
    use bitcoin::Network as N;
    [N::Bitcoin, N::Testnet, N::Signet, N::Regtest]
        .into_iter()
        .find(|n| ChainHash::using_genesis_block(*n) == chain)
        .map(|n| n.to_string())
        .unwrap_or_else(|| chain.to_string())
}

/// A blinded path's introduction node as shown: its node id, or its channel and direction.
pub fn introduction_node(n: &IntroductionNode) -> String {
    match n {
        IntroductionNode::NodeId(n) => n.to_string(),
        IntroductionNode::DirectedShortChannelId(d, scid) => format!("{} ({d:?})", crate::graph::format_scid(*scid)),
    }
}

/// One blinded path of a BOLT12 invoice, as recorded with the payment that paid it: where it starts,
/// how many hops are hidden behind that node, and what the path as a whole charges.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlindedPayPath {
    pub introduction_node: String,
    pub blinded_hops: u32,
    pub fee_base_msat: u32,
    pub fee_ppm: u32,
    pub cltv_expiry_delta: u16,
}

/// The blinded paths an invoice offers to pay it through.
pub fn payment_paths(invoice: &lightning::offers::invoice::Bolt12Invoice) -> Vec<BlindedPayPath> {
    invoice
        .payment_paths()
        .iter()
        .map(|p| BlindedPayPath {
            introduction_node: introduction_node(p.introduction_node()),
            blinded_hops: p.blinded_hops().len() as u32,
            fee_base_msat: p.payinfo.fee_base_msat,
            fee_ppm: p.payinfo.fee_proportional_millionths,
            cltv_expiry_delta: p.payinfo.cltv_expiry_delta,
        })
        .collect()
}

/// An offer's price per item in msat, None for any amount; an offer priced in a fiat currency is refused.
pub fn price_msat(offer: &Offer) -> Result<Option<u64>, NodeError> {
    match offer.amount() {
        None => Ok(None),
        Some(Amount::Bitcoin { amount_msats }) => Ok(Some(amount_msats)),
        Some(Amount::Currency { .. }) => Err(NodeError::Invalid(FIAT_PRICE.into())),
    }
}

const FIAT_PRICE: &str = "the offer is priced in a fiat currency; lanes handles offers priced in bitcoin only";

/// An offer string (`lno1…`), read; a malformed one is refused with the parser's words.
pub fn parse_offer(s: &str) -> Result<Offer, NodeError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NodeError::Invalid("give an offer (lno1...)".into()));
    }
    s.parse::<Offer>().map_err(|e| NodeError::Invalid(format!("not a BOLT12 offer: {e:?}")))
}

/// A refund string (`lnr1…`), read.
pub fn parse_refund(s: &str) -> Result<Refund, NodeError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NodeError::Invalid("give a refund (lnr1...)".into()));
    }
    s.parse::<Refund>().map_err(|e| NodeError::Invalid(format!("not a BOLT12 refund: {e:?}")))
}

/// A BOLT12 invoice as CLN shows it: `lni1…`, bech32 without checksum (LDK sends invoices only as onion
/// messages and has no string form for them).
pub fn invoice_string(invoice: &lightning::offers::invoice::Bolt12Invoice) -> Result<String, NodeError> {
    use bitcoin::bech32::{primitives::hrp::Hrp, NoChecksum};
    use lightning::util::ser::Writeable;
    let hrp = Hrp::parse("lni").map_err(|e| NodeError::Internal(format!("bech32 prefix: {e}")))?;
    bitcoin::bech32::encode::<NoChecksum>(hrp, &invoice.encode()).map_err(|e| NodeError::Internal(format!("encoding the invoice: {e}")))
}

/// A BOLT12 invoice string (`lni1…`, `+` continuations allowed), read.
pub fn parse_invoice(s: &str) -> Result<lightning::offers::invoice::Bolt12Invoice, NodeError> {
    use bitcoin::bech32::{primitives::decode::CheckedHrpstring, NoChecksum};
    let joined: String = s.chars().filter(|c| *c != '+' && !c.is_whitespace()).collect();
    let parsed = CheckedHrpstring::new::<NoChecksum>(&joined).map_err(|e| NodeError::Invalid(format!("not a BOLT12 invoice: {e}")))?;
    if !parsed.hrp().lowercase_char_iter().eq("lni".chars()) {
        return Err(NodeError::Invalid("not a BOLT12 invoice (lni1...)".into()));
    }
    lightning::offers::invoice::Bolt12Invoice::try_from(parsed.byte_iter().collect::<Vec<u8>>()).map_err(|e| NodeError::Invalid(format!("not a BOLT12 invoice: {e:?}")))
}

/// An offer or a refund for another chain than ours is refused before anything is sent.
pub fn check_offer_chain(offer: &Offer, network: bitcoin::Network) -> Result<(), NodeError> {
    let ours = ChainHash::using_genesis_block(network);
    match offer.supports_chain(ours) {
        true => Ok(()),
        false => Err(NodeError::Invalid(format!(
            "the offer is for {}, not for this node's {network}",
            offer.chains().into_iter().map(chain_name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// LDK's refusal of an offer, refund or invoice request, as the caller's error.
pub fn semantic_error(e: Bolt12SemanticError) -> NodeError {
    use Bolt12SemanticError as E;
    match e {
        E::AlreadyExpired => PaymentError::OfferExpired.into(),
        E::DuplicatePaymentId => PaymentError::Duplicate.into(),
        E::UnsupportedChain | E::UnexpectedChain => NodeError::Invalid("the offer is for another chain".into()),
        E::MissingAmount => NodeError::Invalid("the offer has no amount: give amount_msat".into()),
        E::InvalidAmount => NodeError::Invalid("the amount is not valid here (zero or over 21 million BTC)".into()),
        E::InsufficientAmount => NodeError::Invalid("the amount is less than the offer asks for".into()),
        E::UnsupportedCurrency | E::InvalidCurrencyCode => NodeError::Invalid(FIAT_PRICE.into()),
        E::InvalidQuantity | E::MissingQuantity | E::UnexpectedQuantity => NodeError::Invalid("the quantity does not fit the offer".into()),
        E::UnknownRequiredFeatures => NodeError::Invalid("the offer requires features lanes does not know".into()),
        E::MissingPaths => NodeError::Refused("no blinded path could be made: this node needs a peer with a public channel".into()),
        other => NodeError::Invalid(format!("LDK refused it: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_offers_and_refunds_are_refused_with_words() {
        for bad in ["", "lno1", "lno1qqqq", "lnbcrt1pexample", "not an offer"] {
            let e = parse_offer(bad).unwrap_err();
            assert!(matches!(e, NodeError::Invalid(_)), "{bad}: {e}");
        }
        for bad in ["", "lnr1", "lno1pgqpvggzfyqv8gg09k4q35tc5mkmzr7re2nm20gw5qp5d08r3w5s6zzu4t5q"] {
            assert!(matches!(parse_refund(bad), Err(NodeError::Invalid(_))), "{bad}");
        }
        // A well-formed mainnet offer (BOLT12's smallest example) reads, and is refused on regtest.
        let offer = parse_offer("lno1pgqpvggzfyqv8gg09k4q35tc5mkmzr7re2nm20gw5qp5d08r3w5s6zzu4t5q").unwrap();
        assert!(check_offer_chain(&offer, bitcoin::Network::Bitcoin).is_ok());
        let e = check_offer_chain(&offer, bitcoin::Network::Regtest).unwrap_err().to_string();
        assert!(e.contains("not for this node's regtest"), "{e}");
    }
}
