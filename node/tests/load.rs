//! Many payments at once over one channel: load alone must not make a payment fail.
use lanes_regtest::proto::v1::*;
use lanes_regtest::{Net, Pair};

const CAPACITY: u64 = 2_000_000;
const IN_FLIGHT: usize = 64;
const AMOUNT_MSAT: u64 = 1_000_000;

/// 64 keysends started together over one channel all succeed, and bob gets every msat. With LDK's default of
/// 50 HTLCs a peer may have in flight towards us, most of them failed at once ("no route"); lanes now accepts
/// the protocol's 483, as LND does.
#[tokio::test]
async fn sixty_four_payments_in_flight_over_one_channel_all_succeed() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let Pair { alice, bob, channel } = net.pair(CAPACITY + 200_000, CAPACITY).await;
    let local = |node: &lanes_regtest::Node| {
        let (node, channel) = (node.clone(), channel.clone());
        async move {
            let list = node.client().list_channels(ListChannelsRequest::default()).await.unwrap().into_inner().channels;
            list.into_iter().find(|c| c.channel_id == channel).map(|c| c.local_balance_msat).unwrap()
        }
    };
    let bob_before = local(&bob).await;

    let payments: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (alice, bob) = (alice.clone(), bob.clone());
            tokio::spawn(async move { alice.keysend(&bob, AMOUNT_MSAT).await })
        })
        .collect();
    let mut failed = Vec::new();
    for p in payments {
        match p.await.expect("the payment task") {
            Ok(p) if p.status == PaymentStatus::Succeeded as i32 => {}
            other => failed.push(format!("{other:?}")),
        }
    }
    assert!(failed.is_empty(), "{} of {IN_FLIGHT} payments did not succeed; first: {}", failed.len(), failed[0]);
    assert_eq!(local(&bob).await, bob_before + IN_FLIGHT as u64 * AMOUNT_MSAT, "bob received every payment, to the msat");
}
