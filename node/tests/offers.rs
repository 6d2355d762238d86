//! BOLT12: offers paid over onion messages and blinded paths, directly and over two hops; reusable offers
//! paid again, single-use ones once, disabled and expired ones never; amount-less offers and quantities;
//! refunds; malformed strings refused with INVALID_ARGUMENT. Every amount is checked to the msat on both
//! sides: in the payer's and the recipient's records and in the recipient's channel balance.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Node};
use tonic::Code;

fn succeeded(p: &Payment) -> bool {
    p.status == PaymentStatus::Succeeded as i32
}

/// Waits until carol holds `msat` on her channel with bob (she opened none: all of it was paid to her). A
/// payment is final for its payer at the preimage; the recipient's balance moves once the commitment without
/// the HTLC is signed, a moment later. Counted from her commitment's outputs, so in whole sats and above dust:
/// the amounts in these stories are.
async fn carol_holds(carol: &Node, channel: &str, msat: u64) {
    carol
        .wait_until(format!("carol to hold {msat} msat on her channel"), || async {
            let held = carol.channel(channel).await.expect("carol's channel").local_balance_msat;
            if held == msat { Ok(()) } else { Err(format!("{held} msat")) }
        })
        .await
}

#[tokio::test]
async fn offers_are_paid_over_two_hops_and_directly_again_and_again_but_single_use_ones_once() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let line = net.line(3_000_000, 1_000_000).await;
    let (alice, bob, carol) = (&line.alice, &line.bob, &line.carol);

    // carol sells coffee: a reusable offer, read back by the payer as she made it.
    let coffee = carol.create_offer(5_000_000, "coffee").await;
    assert!(coffee.offer.starts_with("lno1"), "{coffee:?}");
    assert!(coffee.active && !coffee.single_use && coffee.times_paid == 0, "{coffee:?}");
    let decoded = alice.decode_offer(&coffee.offer).await.expect("DecodeOffer");
    assert_eq!((decoded.kind.as_str(), decoded.offer_id.as_str(), decoded.amount_msat), ("offer", coffee.offer_id.as_str(), 5_000_000));
    assert_eq!((decoded.description.as_str(), decoded.expired, decoded.our_network), ("coffee", false, true));
    assert!(!decoded.introduction_nodes.is_empty(), "the offer has a blinded path: {decoded:?}");

    // carol cannot pay her own offer (nor could she pay herself): refused before anything is sent.
    let own = carol.pay_offer(&coffee.offer, 0).await.unwrap_err();
    assert_eq!(own.code(), Code::InvalidArgument, "{own:?}");
    assert!(own.message().contains("this node's own"), "{own:?}");
    assert!(carol.payments().await.is_empty(), "no payment was recorded");

    // alice pays it twice, over bob; bob pays it once, directly. Each payment has an id of its own.
    let mut ids = Vec::new();
    for (payer, note) in [(alice, "first"), (alice, "second"), (bob, "bob's")] {
        let req = PayOfferRequest { offer: coffee.offer.clone(), payer_note: note.into(), ..Default::default() };
        let paid = payer.pay_offer_with(req).await.expect("PayOffer");
        assert!(succeeded(&paid), "{} paying the coffee offer: {paid:?}", payer.name());
        assert_eq!((paid.kind.as_str(), paid.direction.as_str(), paid.offer_id.as_str()), ("bolt12_offer", "outbound", coffee.offer_id.as_str()));
        assert_eq!((paid.amount_msat, paid.payer_note.as_str()), (5_000_000, note));
        assert_eq!(paid.payment_hash.len(), 64, "the hash is known once the invoice came: {paid:?}");
        assert_ne!(paid.payment_id, paid.payment_hash, "an offer payment's id is its own");
        ids.push(paid.payment_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let alices: Vec<Payment> = alice.payments().await.into_iter().filter(|p| p.kind == "bolt12_offer").collect();
    assert_eq!(alices.len(), 2);
    assert!(alices.iter().all(|p| p.fee_msat > 0), "two hops cost bob's fee: {alices:?}");
    // The payer keeps the invoice it paid (with the preimage, its proof of payment) and the blinded paths it
    // offered: the same paths the invoice shows when decoded.
    for p in &alices {
        assert!(p.bolt12_invoice.starts_with("lni1"), "{p:?}");
        let invoice = alice.decode_offer(&p.bolt12_invoice).await.expect("DecodeOffer of the paid invoice");
        assert_eq!((invoice.kind.as_str(), invoice.payment_hash.as_str(), invoice.offer_id.as_str()), ("invoice", p.payment_hash.as_str(), coffee.offer_id.as_str()));
        assert!(!p.blinded_paths.is_empty(), "{p:?}");
        let starts: Vec<&str> = p.blinded_paths.iter().map(|b| b.introduction_node.as_str()).collect();
        assert_eq!(starts, invoice.introduction_nodes.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(starts.iter().all(|n| [bob.node_id(), carol.node_id()].iter().any(|id| id == n)), "paths start at carol or her peer: {starts:?}");
    }

    // carol was paid exactly three coffees: her records, her offer and her channel say so.
    let received: Vec<Payment> = carol.payments().await.into_iter().filter(|p| p.direction == "inbound").collect();
    assert_eq!(received.len(), 3, "{received:?}");
    assert!(received.iter().all(|p| succeeded(p) && p.kind == "bolt12_offer" && p.offer_id == coffee.offer_id && p.amount_msat == 5_000_000 && p.offer == coffee.offer));
    // Each receipt keeps the invoice carol sent for it: the very invoice its payer paid.
    for p in &alices {
        let receipt = received.iter().find(|r| r.payment_hash == p.payment_hash).expect("carol's receipt of alice's payment");
        assert_eq!((&receipt.bolt12_invoice, &receipt.blinded_paths), (&p.bolt12_invoice, &p.blinded_paths));
    }
    let mut notes: Vec<&str> = received.iter().map(|p| p.payer_note.as_str()).collect();
    notes.sort();
    assert_eq!(notes, ["bob's", "first", "second"]);
    let listed = carol.offer(&coffee.offer_id).await;
    assert_eq!((listed.times_paid, listed.received_msat, listed.active), (3, 15_000_000, true));
    carol_holds(carol, &line.bob_carol, 15_000_000).await;

    // A single-use offer is paid once; a second invoice request is refused (as CLN does), so no second invoice
    // or payment exists, and carol keeps only the first.
    let ticket = carol.create_offer_with(CreateOfferRequest { amount_msat: 2_000_000, description: "ticket".into(), single_use: true, ..Default::default() }).await;
    let first = alice.pay_offer(&ticket.offer, 0).await.expect("PayOffer");
    assert!(succeeded(&first), "{first:?}");
    let second = alice.pay_offer(&ticket.offer, 0).await.expect("PayOffer is sent; carol refuses it");
    assert_eq!(second.status, PaymentStatus::Failed as i32, "{second:?}");
    assert!(second.failure_reason.contains("refused our invoice request"), "{}", second.failure_reason);
    assert!(second.payment_hash.is_empty() && second.bolt12_invoice.is_empty(), "no invoice came: {second:?}");
    carol.wait_log_line(&["invoice request refused", "single-use offer was paid already"]).await;
    let ticket = carol.offer(&ticket.offer_id).await;
    assert_eq!((ticket.times_paid, ticket.received_msat, ticket.active), (1, 2_000_000, false));
    carol_holds(carol, &line.bob_carol, 17_000_000).await;

    // An amount-less offer takes what the payer gives, and refuses to guess.
    let tip = carol.create_offer(0, "tips").await;
    assert_eq!(alice.decode_offer(&tip.offer).await.expect("DecodeOffer").amount_msat, 0);
    let no_amount = alice.pay_offer(&tip.offer, 0).await.unwrap_err();
    assert_eq!(no_amount.code(), Code::InvalidArgument, "{no_amount:?}");
    let tipped = alice.pay_offer(&tip.offer, 1_234_000).await.expect("PayOffer");
    assert!(succeeded(&tipped) && tipped.amount_msat == 1_234_000, "{tipped:?}");
    carol_holds(carol, &line.bob_carol, 18_234_000).await;

    // Quantities: 3 of an offer that sells up to 5 cost 3 times its price; 9 are refused before anything is sent.
    let stickers = carol.create_offer_with(CreateOfferRequest { amount_msat: 100_000, description: "stickers".into(), quantity_max: 5, ..Default::default() }).await;
    let three = alice.pay_offer_with(PayOfferRequest { offer: stickers.offer.clone(), quantity: 3, ..Default::default() }).await.expect("PayOffer");
    assert!(succeeded(&three) && three.amount_msat == 300_000 && three.quantity == 3, "{three:?}");
    let nine = alice.pay_offer_with(PayOfferRequest { offer: stickers.offer.clone(), quantity: 9, ..Default::default() }).await.unwrap_err();
    assert_eq!(nine.code(), Code::InvalidArgument, "{nine:?}");
    carol_holds(carol, &line.bob_carol, 18_534_000).await;

    // A disabled offer takes no more payments.
    let disabled = carol.client().disable_offer(DisableOfferRequest { offer_id: coffee.offer_id.clone() }).await.expect("DisableOffer").into_inner();
    assert!(disabled.disabled && !disabled.active);
    let refused = alice.pay_offer(&coffee.offer, 0).await.expect("PayOffer is sent; carol refuses it");
    assert_eq!(refused.status, PaymentStatus::Failed as i32, "{refused:?}");
    assert!(refused.failure_reason.contains("refused our invoice request") && refused.payment_hash.is_empty(), "refused at the invoice request: {refused:?}");
    carol.wait_log_line(&["invoice request refused", "the offer is disabled"]).await;
    assert_eq!(carol.offer(&coffee.offer_id).await.times_paid, 3);

    // An expired offer is refused by the payer before anything is sent.
    let flash = carol.create_offer_with(CreateOfferRequest { amount_msat: 1_000, description: "flash sale".into(), expiry_secs: 1, ..Default::default() }).await;
    alice
        .wait_until("the flash-sale offer to expire", || async {
            let d = alice.decode_offer(&flash.offer).await.map_err(|s| s.to_string())?;
            if d.expired { Ok(()) } else { Err(format!("expires at {}", d.expires_at)) }
        })
        .await;
    let late = alice.pay_offer(&flash.offer, 0).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("expired"), "{late:?}");
    assert!(!carol.offer(&flash.offer_id).await.active);

    // Nothing else reached carol, and no channel closed.
    carol_holds(carol, &line.bob_carol, 18_534_000).await;
    assert_eq!(carol.payments().await.iter().filter(|p| p.direction == "inbound" && succeeded(p)).map(|p| p.amount_msat).sum::<u64>(), 18_534_000);
    for n in [alice, bob, carol] {
        assert!(n.closed_channels().await.is_empty(), "{} closed a channel", n.name());
    }
}

#[tokio::test]
async fn a_refund_is_paid_to_the_node_that_claims_it_and_bad_strings_change_nothing() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let line = net.line(3_000_000, 1_000_000).await;
    let (alice, carol) = (&line.alice, &line.carol);

    // alice owes carol 30,000 msat: she makes a refund, and it waits in her payments until claimed.
    let refund = alice.create_refund(3_000_000, "your refund").await;
    assert!(refund.refund.starts_with("lnr1"), "{refund:?}");
    let pending = alice.payment(&refund.payment_id).await.expect("the refund in ListPayments");
    assert_eq!((pending.kind.as_str(), pending.direction.as_str(), pending.status), ("bolt12_refund", "outbound", PaymentStatus::InFlight as i32));
    let decoded = carol.decode_offer(&refund.refund).await.expect("DecodeOffer of a refund");
    assert_eq!((decoded.kind.as_str(), decoded.amount_msat, decoded.description.as_str()), ("refund", 3_000_000, "your refund"));

    // alice cannot claim her own refund.
    let own = alice.request_refund_payment(&refund.refund).await.unwrap_err();
    assert_eq!(own.code(), Code::InvalidArgument, "{own:?}");
    assert!(own.message().contains("this node's own"), "{own:?}");

    // carol claims it: her invoice goes to alice over onion messages, and alice pays it over bob.
    let claimed = carol.request_refund_payment(&refund.refund).await.expect("RequestRefundPayment");
    assert_eq!(claimed.amount_msat, 3_000_000);
    // The invoice carol sent, as a string anyone can decode.
    let invoice = alice.decode_offer(&claimed.invoice).await.expect("DecodeOffer of the lni1 invoice");
    assert_eq!((invoice.kind.as_str(), invoice.amount_msat, invoice.payment_hash.as_str()), ("invoice", 3_000_000, claimed.payment_hash.as_str()));
    assert!(claimed.invoice.starts_with("lni1") && !invoice.introduction_nodes.is_empty() && invoice.our_network, "{invoice:?}");
    let paid = alice
        .wait_until("the refund to be paid", || async {
            match alice.payment(&refund.payment_id).await {
                Some(p) if succeeded(&p) => Ok(p),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    assert_eq!((paid.amount_msat, paid.payment_hash.as_str()), (3_000_000, claimed.payment_hash.as_str()));
    let receipt = carol
        .wait_until("carol's receipt of the refund", || async {
            match carol.payments().await.into_iter().find(|p| p.payment_hash == claimed.payment_hash) {
                Some(p) if succeeded(&p) => Ok(p),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    assert_eq!((receipt.kind.as_str(), receipt.direction.as_str(), receipt.amount_msat), ("bolt12_refund", "inbound", 3_000_000));
    assert_eq!((&receipt.bolt12_invoice, &paid.bolt12_invoice), (&claimed.invoice, &claimed.invoice), "both keep the refund's invoice");
    assert!(!receipt.blinded_paths.is_empty() && receipt.blinded_paths == paid.blinded_paths, "{receipt:?}");
    carol_holds(carol, &line.bob_carol, 3_000_000).await;

    // Malformed, foreign and unknown input: INVALID_ARGUMENT or NOT_FOUND, and nothing changes.
    let mainnet_offer = "lno1pgqpvggzfyqv8gg09k4q35tc5mkmzr7re2nm20gw5qp5d08r3w5s6zzu4t5q";
    for bad in ["", "lno1garbage", "lnr1qqqq", "lnbcrt1pvjluezpp5", "not an offer", mainnet_offer] {
        let e = alice.pay_offer(bad, 1_000).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "PayOffer {bad:?}: {e:?}");
        let e = carol.request_refund_payment(bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "RequestRefundPayment {bad:?}: {e:?}");
    }
    for bad in ["", "lno1garbage", "xyz", "lni1qqqq", "lni1"] {
        let e = alice.decode_offer(bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "DecodeOffer {bad:?}: {e:?}");
    }
    let e = carol.client().disable_offer(DisableOfferRequest { offer_id: "zz".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = carol.client().disable_offer(DisableOfferRequest { offer_id: "ab".repeat(32) }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    for bad in [
        CreateOfferRequest { amount_msat: 21_000_000 * 100_000_000 * 1000 + 1, ..Default::default() },
        CreateOfferRequest { quantity_max: 3, quantity_unbounded: true, ..Default::default() },
    ] {
        let e = carol.client().create_offer(bad.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "CreateOffer {bad:?}: {e:?}");
    }
    let e = alice.client().create_refund(CreateRefundRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(carol.offers().await.is_empty(), "no offer was made by refused calls");
    assert_eq!(alice.payments().await.len(), 1, "only the refund: {:?}", alice.payments().await);
    carol_holds(carol, &line.bob_carol, 3_000_000).await;
}

#[tokio::test]
async fn offers_and_what_they_were_paid_outlive_restarts() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let pair = net.pair(2_000_000, 1_000_000).await;
    let (alice, bob) = (&pair.alice, &pair.bob);
    let monthly = bob.create_offer(2_000_000, "subscription").await;
    let once = bob.create_offer_with(CreateOfferRequest { amount_msat: 1_000_000, description: "gift".into(), single_use: true, ..Default::default() }).await;
    for offer in [&monthly, &once] {
        let paid = alice.pay_offer(&offer.offer, 0).await.expect("PayOffer");
        assert!(succeeded(&paid), "{paid:?}");
    }

    // Both nodes restart: the offers LDK made from bob's keys are still his, and his records remember them.
    bob.restart().await;
    alice.restart().await;
    alice.wait_channel_active(&pair.channel).await;
    bob.wait_channel_active(&pair.channel).await;
    let again = alice.pay_offer(&monthly.offer, 0).await.expect("PayOffer after the restarts");
    assert!(succeeded(&again), "{again:?}");
    let refused = alice.pay_offer(&once.offer, 0).await.expect("PayOffer is sent; bob refuses it");
    assert_eq!(refused.status, PaymentStatus::Failed as i32, "the single-use offer stays used: {refused:?}");

    // Each payment counted once, though LDK may hand a payment's events over again after a restart.
    let (monthly, once) = (bob.offer(&monthly.offer_id).await, bob.offer(&once.offer_id).await);
    assert_eq!((monthly.times_paid, monthly.received_msat, monthly.active), (2, 4_000_000, true));
    assert_eq!((once.times_paid, once.received_msat, once.active), (1, 1_000_000, false));
    let received: u64 = bob.payments().await.iter().filter(|p| p.direction == "inbound" && succeeded(p)).map(|p| p.amount_msat).sum();
    assert_eq!(received, 5_000_000);
    let sent: Vec<(u64, i32)> = alice.payments().await.iter().map(|p| (p.amount_msat, p.status)).collect();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent.iter().filter(|(_, s)| *s == PaymentStatus::Succeeded as i32).map(|(a, _)| a).sum::<u64>(), 5_000_000);
    bob.wait_until("bob to hold what he was paid", || async {
        let held = bob.channel(&pair.channel).await.expect("bob's channel").local_balance_msat;
        if held == 5_000_000 { Ok(()) } else { Err(format!("{held} msat")) }
    })
    .await;
}
