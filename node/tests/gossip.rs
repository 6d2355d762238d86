//! Our channels reach the rest of the network: a peer that asks for them by query (as CLN does) gets every
//! channel with both directions and both nodes, and a channel whose announcement_signatures were lost
//! still ends announced.
use std::time::Duration;

use lanes_channel::test_knobs::DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV;
use lanes_regtest::gossip_peer::GossipPeer;
use lanes_regtest::proto::v1::DescribeGraphRequest;
use lanes_regtest::{wait_until_logged, Net, Node, SYNC_TIMEOUT};
use lightning::routing::gossip::NodeId;

/// lanesd announces its node once a minute; a channel past its depth but unannounced is recovered after
/// a 20 s grace period. Waits on these get this long.
const SLOW_GOSSIP_TIMEOUT: Duration = Duration::from_secs(120);

async fn graph(node: &Node) -> lanes_regtest::proto::v1::DescribeGraphResponse {
    node.client().describe_graph(DescribeGraphRequest {}).await.expect("DescribeGraph").into_inner()
}

/// alice — bob — carol, announced; then a peer that syncs by query_channel_range and
/// query_short_channel_ids (and a gossip_timestamp_filter of "now", so lanesd dumps nothing to it
/// unasked) connects to alice only. It learns both channels, each with both directions, and the three
/// nodes' announcements, within a bounded time. LDK alone answers such a query with "Not implemented".
#[tokio::test]
async fn a_peer_that_queries_after_the_channels_were_announced_learns_both_directions_of_every_channel() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let line = net.line(2_000_000, 500_000).await;
    let alice = &line.alice;
    let names = [("alice", &line.alice), ("bob", &line.bob), ("carol", &line.carol)];
    wait_until_logged(SLOW_GOSSIP_TIMEOUT, "alice: every node's announcement in the graph", &[alice.log_path()], || async {
        let g = graph(alice).await;
        let aliases: Vec<_> = g.nodes.iter().map(|n| n.alias.clone()).filter(|a| !a.is_empty()).collect();
        match names.iter().all(|(name, _)| aliases.iter().any(|a| a == name)) {
            true => Ok(()),
            false => Err(format!("aliases {aliases:?}")),
        }
    })
    .await;
    let scids: Vec<u64> = graph(alice)
        .await
        .channels
        .iter()
        .map(|c| lanes_node::graph::parse_scid(&c.short_channel_id).expect("a short channel id"))
        .collect();
    assert_eq!(scids.len(), 2, "alice's graph has both channels");

    let dave = GossipPeer::new();
    dave.connect(alice).await;
    wait_until_logged(SYNC_TIMEOUT, "dave: both channels, both directions, three nodes", &[alice.log_path()], || async {
        let g = dave.graph().read_only();
        let mut missing = Vec::new();
        for scid in &scids {
            match g.channel(*scid) {
                None => missing.push(format!("channel {scid}")),
                Some(c) if c.one_to_two.is_none() || c.two_to_one.is_none() => missing.push(format!("a direction of {scid}")),
                Some(_) => {}
            }
        }
        for (name, node) in &names {
            let id = NodeId::from_slice(&hex(&node.node_id())).expect("a node id");
            if g.node(&id).and_then(|n| n.announcement_info.as_ref()).is_none() {
                missing.push(format!("{name}'s announcement"));
            }
        }
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("missing {missing:?}; reply_short_channel_ids_end seen: {:?}", dave.replies_ended())),
        }
    })
    .await;
    let ends = dave.replies_ended();
    assert_eq!(ends.len(), 1, "one query, one end");
    assert!(ends[0].full_information);
}

/// bob drops the first announcement_signatures he receives (a test-only knob: LDK drops one that
/// arrives before its channel_ready, as CLN can send it). alice's own announcement then never reaches
/// bob (LDK does not send a channel's announcement to its own counterparties), and bob cannot announce
/// it himself. lanesd notices a public channel past its depth that is still unannounced, reconnects, and
/// the signatures are exchanged again: the channel ends announced, with both directions, in both graphs.
#[tokio::test]
async fn a_channel_whose_announcement_signatures_were_dropped_ends_announced() {
    let net = Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await;
    let alice = net.node("alice").await;
    let bob = net.node_with_env("bob", &[(DROP_FIRST_ANNOUNCEMENT_SIGNATURES_ENV, "1")]).await;
    net.fund_and_open(&alice, &bob, 1_000_000, 500_000).await;
    // The knob did act: without recovery bob would never see the channel announced.
    bob.wait_until("the test knob to drop alice's announcement_signatures", || async {
        std::fs::read_to_string(bob.log_path()).unwrap_or_default().contains("TEST KNOB: dropped an announcement_signatures")
    })
    .await;

    for node in [&bob, &alice] {
        wait_until_logged(SLOW_GOSSIP_TIMEOUT, format!("{}: the channel announced, both directions", node.name()), &[node.log_path()], || async {
            let g = graph(node).await;
            let complete = g.channels.iter().filter(|c| c.node1_policy.is_some() && c.node2_policy.is_some()).count();
            match complete {
                1 => Ok(()),
                n => Err(format!("{n} complete of {} channels", g.channels.len())),
            }
        })
        .await;
    }
    bob.wait_until("bob to log the channel announced", || async {
        std::fs::read_to_string(bob.log_path()).unwrap_or_default().contains("channel announced")
    })
    .await;
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}
