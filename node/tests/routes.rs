//! Route queries and who routes lanesd's payments, as a user sees them: alice — bob — carol, real lanesd
//! nodes on a real regtest chain.
//!
//! QueryRoutes answers with the route a payment would take (hops, bob's fee, time lock, success estimate);
//! BatchQueryRoutes answers many at once, each query on its own; and alice's payments, by invoice and by
//! keysend, are routed by lanes' own router, LDK's never being asked (GetInfo counts both).
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Line, Net, Node};
use tonic::Code;

const CHANNEL: u64 = 1_000_000;

/// What bob charges to forward `amount_msat` over bob -> carol, from his own view of that channel.
async fn bob_fee(bob: &Node, bc: &str, amount_msat: u64) -> (u64, u32) {
    let c = bob.channel(bc).await.expect("bob's channel to carol");
    (c.fee_base_msat as u64 + amount_msat * c.fee_rate_ppm as u64 / 1_000_000, c.cltv_expiry_delta)
}

async fn query(from: &Node, to: &Node, amount_sat: u64) -> Result<QueryRoutesResponse, tonic::Status> {
    let req = QueryRoutesRequest { node_id: to.node_id(), amount_sat, ..Default::default() };
    from.client().query_routes(req).await.map(tonic::Response::into_inner)
}

/// The "fell back to LDK's router" lines of a node's log.
fn fallback_lines(n: &Node) -> Vec<String> {
    let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
    log.lines().filter(|l| l.contains("lanes router found no route")).map(String::from).collect()
}

#[tokio::test]
async fn query_routes_and_who_routes_payments() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Line { alice, bob, carol, alice_bob: ab, bob_carol: bc } = net.line(3_000_000, CHANNEL).await;
    // Routing over a channel needs both of its directions' policies (LDK's rule, which lanes' router
    // follows); net.line waited for both. carol now changes hers: queries right after alice has the
    // new one must see it (the router's view follows gossip at once).
    let (ab_scid, bc_scid) = (alice.channel(&ab).await.unwrap().short_channel_id, bob.channel(&bc).await.unwrap().short_channel_id);
    carol.set_channel_fee(&bc, 2_000, 1).await;
    alice.wait_graph_fee(&carol, &bc_scid, 2_000, 1).await;

    // ---- QueryRoutes alice -> carol, 5000 sat: through bob, at bob's fee ----
    let amount_msat = 5_000_000;
    let r = query(&alice, &carol, 5_000).await.expect("a route to carol");
    let (fee, bob_cltv) = bob_fee(&bob, &bc, amount_msat).await;
    assert!(fee > 0, "bob charges to forward");
    assert_eq!(r.paths.len(), 1, "{r:?}");
    let hops = &r.paths[0].hops;
    let got: Vec<_> = hops.iter().map(|h| (h.node_id.as_str(), h.short_channel_id.as_str())).collect();
    assert_eq!(got, vec![(bob.node_id().as_str(), ab_scid.as_str()), (carol.node_id().as_str(), bc_scid.as_str())], "{r:?}");
    assert_eq!((hops[0].amount_msat, hops[0].fee_msat, hops[0].cltv_expiry_delta), (amount_msat + fee, fee, bob_cltv), "{r:?}");
    assert_eq!((hops[1].amount_msat, hops[1].fee_msat, hops[1].cltv_expiry_delta), (amount_msat, 0, 40), "{r:?}");
    assert_eq!((r.amount_msat, r.total_fees_msat, r.total_amount_msat), (amount_msat, fee, amount_msat + fee), "{r:?}");
    let height = alice.info().await.block_height;
    assert_eq!(r.total_time_lock, height + 1 + bob_cltv + 40, "{r:?}");
    assert!(r.success_probability > 0.0 && r.success_probability <= 1.0, "{r:?}");
    assert_eq!(r.paths[0].success_probability, r.success_probability);

    // ---- refusals ----
    let code = |r: Result<QueryRoutesResponse, tonic::Status>| r.map(|_| Code::Ok).unwrap_or_else(|s| s.code());
    let ask = |req: QueryRoutesRequest| {
        let mut client = alice.client();
        async move { client.query_routes(req).await.map(tonic::Response::into_inner) }
    };
    let carol_id = carol.node_id();
    let bad_key = ask(QueryRoutesRequest { node_id: "02nothex".into(), amount_sat: 1, ..Default::default() }).await;
    assert_eq!(code(bad_key), Code::InvalidArgument);
    let zero = ask(QueryRoutesRequest { node_id: carol_id.clone(), ..Default::default() }).await;
    assert_eq!(code(zero), Code::InvalidArgument);
    let overflow = ask(QueryRoutesRequest { node_id: carol_id.clone(), amount_sat: u64::MAX, ..Default::default() }).await;
    assert_eq!(code(overflow), Code::InvalidArgument);
    let both = ask(QueryRoutesRequest { node_id: carol_id.clone(), amount_sat: 1, amount_msat: 1000, ..Default::default() }).await;
    assert_eq!(code(both), Code::InvalidArgument);
    assert_eq!(code(query(&alice, &alice, 1_000).await), Code::InvalidArgument, "a route to ourselves");
    let too_big = query(&alice, &carol, 2 * CHANNEL).await.unwrap_err();
    assert_eq!(too_big.code(), Code::FailedPrecondition, "no route, as for a payment: {too_big:?}");

    // ---- BatchQueryRoutes: in order, each answered on its own ----
    let q = |node_id: &str, amount_sat: u64| QueryRoutesRequest { node_id: node_id.into(), amount_sat, ..Default::default() };
    let queries = vec![q(&carol_id, 1_000), q("nope", 1_000), q(&carol_id, 2 * CHANNEL), q(&bob.node_id(), 20_000), q(&carol_id, 0), q(&carol_id, 50_000)];
    let batch = alice.client().batch_query_routes(BatchQueryRoutesRequest { queries }).await.unwrap().into_inner().results;
    let outcome: Vec<_> = batch.iter().map(|b| (b.route.as_ref().map(|r| r.amount_msat), Code::from(b.error_code))).collect();
    assert_eq!(
        outcome,
        vec![
            (Some(1_000_000), Code::Ok),
            (None, Code::InvalidArgument),
            (None, Code::FailedPrecondition),
            (Some(20_000_000), Code::Ok),
            (None, Code::InvalidArgument),
            (Some(50_000_000), Code::Ok),
        ],
        "{batch:?}"
    );
    assert!(batch[1].error.contains("\"nope\" is not a node id"), "{batch:?}");
    assert!(batch[2].error.starts_with("no route"), "{batch:?}");
    assert_eq!(batch[3].route.as_ref().unwrap().paths[0].hops.len(), 1, "bob is our peer: one hop");
    assert_eq!(batch[5].route.as_ref().unwrap().total_fees_msat, bob_fee(&bob, &bc, 50_000_000).await.0);

    // ---- payments go through our router: an invoice and a keysend, each at the fee QueryRoutes said ----
    let inv = carol.add_invoice(10_000_000, "routes").await;
    let quoted = query(&alice, &carol, 10_000).await.unwrap().total_fees_msat;
    let paid = alice.pay_invoice(&inv.bolt11).await.expect("pay");
    assert_eq!(paid.status, PaymentStatus::Succeeded as i32, "{paid:?}");
    assert_eq!(paid.fee_msat, quoted, "{paid:?}");
    let quoted = query(&alice, &carol, 5_000).await.unwrap().total_fees_msat;
    let k = alice.keysend(&carol, 5_000_000).await.expect("keysend");
    assert_eq!(k.status, PaymentStatus::Succeeded as i32, "{k:?}");
    assert_eq!(k.fee_msat, quoted, "{k:?}");

    // bob raises his fee: as soon as alice's graph has it, QueryRoutes and the next payment use it.
    bob.set_channel_fee(&bc, 5_000, 1_000).await;
    alice.wait_graph_fee(&bob, &bc_scid, 5_000, 1_000).await;
    let dear = query(&alice, &carol, 10_000).await.unwrap();
    assert_eq!(dear.total_fees_msat, 5_000 + 10_000, "base 5000 msat + 1000 ppm of 10,000,000 msat: {dear:?}");
    let k = alice.keysend(&carol, 10_000_000).await.expect("keysend");
    assert_eq!((k.status, k.fee_msat), (PaymentStatus::Succeeded as i32, 15_000), "{k:?}");

    let info = alice.info().await;
    assert!(info.routes_by_lanes >= 3, "three payments routed by lanes' router: {info:?}");
    assert_eq!(info.routes_by_ldk_fallback, 0, "LDK's router never asked: {info:?}, log: {:?}", fallback_lines(&alice));
    assert_eq!(fallback_lines(&alice), Vec::<String>::new());
}
