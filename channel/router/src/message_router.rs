//! Onion-message routing: the path a BOLT12 invoice request, invoice or refund invoice takes through the
//! gossip graph to the introduction node of the recipient's blinded path.
//!
//! LDK's `DefaultMessageRouter` reaches only nodes we are connected to: for any other it asks for a direct
//! connection to the node's announced address (and without one, the message waits for a connection that
//! never comes). CLN and Eclair route onion messages over the graph instead, so a payer reaches an offer's
//! introduction node through its channels, as a payment would. lanes does the same: the shortest path, at
//! most [`MAX_INTERMEDIATE_HOPS`] nodes, starting at a connected peer that speaks onion messages and going
//! only through nodes whose node_announcement says they do; when there is none, LDK's direct connection.
//!
//! Owns: choosing the intermediate nodes. Must never: build, blind, encrypt or send messages, or make
//! blinded paths (LDK's `DefaultMessageRouter` makes ours, unchanged); nor modify the graph.
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;

use bitcoin::secp256k1::{self, PublicKey, Secp256k1};
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::onion_message::messenger::{DefaultMessageRouter, Destination, MessageRouter, OnionMessagePath};
use lightning::routing::gossip::{NetworkGraph, NodeId, ReadOnlyNetworkGraph};
use lightning::sign::{EntropySource, ReceiveAuthKey};
use lightning::util::logger::Logger;

/// Most nodes between us and the introduction node (an onion message carries at most a few dozen hops;
/// real paths are short).
pub const MAX_INTERMEDIATE_HOPS: usize = 6;

/// LDK's message router, with paths through the graph to nodes we are not connected to.
pub struct LanesMessageRouter<G: Deref<Target = NetworkGraph<L>> + Clone, L: Deref, ES: Deref>
where
    L::Target: Logger,
    ES::Target: EntropySource,
{
    graph: G,
    ldk: DefaultMessageRouter<G, L, ES>,
}

impl<G: Deref<Target = NetworkGraph<L>> + Clone, L: Deref, ES: Deref> LanesMessageRouter<G, L, ES>
where
    L::Target: Logger,
    ES::Target: EntropySource,
{
    pub fn new(graph: G, entropy_source: ES) -> Self {
        Self { ldk: DefaultMessageRouter::new(graph.clone(), entropy_source), graph }
    }
}

impl<G: Deref<Target = NetworkGraph<L>> + Clone, L: Deref, ES: Deref> MessageRouter for LanesMessageRouter<G, L, ES>
where
    L::Target: Logger,
    ES::Target: EntropySource,
{
    fn find_path(&self, sender: PublicKey, peers: Vec<PublicKey>, mut destination: Destination) -> Result<OnionMessagePath, ()> {
        let hops = {
            let graph = self.graph.read_only();
            destination.resolve(&graph);
            let first = match &destination {
                Destination::Node(n) => Some(*n),
                Destination::BlindedPath(p) => match p.introduction_node() {
                    lightning::blinded_path::IntroductionNode::NodeId(n) => Some(*n),
                    // Not resolved: an scid not in our graph.
                    lightning::blinded_path::IntroductionNode::DirectedShortChannelId(..) => None,
                },
            };
            match first {
                Some(first) if first != sender && !peers.contains(&first) => shortest_path(&graph, &peers, first),
                _ => None,
            }
        };
        match hops {
            Some(intermediate_nodes) => {
                tracing::debug!(hops = intermediate_nodes.len(), "onion message routed through the graph");
                Ok(OnionMessagePath { intermediate_nodes, destination, first_node_addresses: Vec::new() })
            }
            None => self.ldk.find_path(sender, peers, destination),
        }
    }

    fn create_blinded_paths<T: secp256k1::Signing + secp256k1::Verification>(
        &self, recipient: PublicKey, local_node_receive_key: ReceiveAuthKey, context: MessageContext, peers: Vec<MessageForwardNode>,
        secp_ctx: &Secp256k1<T>,
    ) -> Result<Vec<BlindedMessagePath>, ()> {
        self.ldk.create_blinded_paths(recipient, local_node_receive_key, context, peers, secp_ctx)
    }
}

fn speaks_onion_messages(graph: &ReadOnlyNetworkGraph, node: &NodeId) -> bool {
    graph.node(node).and_then(|n| n.announcement_info.as_ref()).is_some_and(|a| a.features().supports_onion_messages())
}

/// The nodes between us and `target`, first hop first: a breadth-first search from our onion-message peers,
/// through announced onion-message nodes, over at most [`MAX_INTERMEDIATE_HOPS`]. None when there is no such
/// path (or `target` is not in the graph).
pub fn shortest_path(graph: &ReadOnlyNetworkGraph, peers: &[PublicKey], target: PublicKey) -> Option<Vec<PublicKey>> {
    let target = NodeId::from_pubkey(&target);
    graph.node(&target)?;
    let mut came_from: HashMap<NodeId, Option<NodeId>> = HashMap::new();
    let mut queue = VecDeque::new();
    for p in peers {
        let id = NodeId::from_pubkey(p);
        if came_from.insert(id, None).is_none() {
            queue.push_back((id, 1usize));
        }
    }
    let mut seen_target_from = None;
    'search: while let Some((node, depth)) = queue.pop_front() {
        let Some(info) = graph.node(&node) else { continue };
        // Two channels to the same neighbour lead there once: `came_from` remembers it.
        for next in info.channels.iter().filter_map(|scid| graph.channel(*scid)).map(|c| if c.node_one == node { c.node_two } else { c.node_one }) {
            if next == target {
                seen_target_from = Some(node);
                break 'search;
            }
            if depth < MAX_INTERMEDIATE_HOPS && !came_from.contains_key(&next) && speaks_onion_messages(graph, &next) {
                came_from.insert(next, Some(node));
                queue.push_back((next, depth + 1));
            }
        }
    }
    let mut path = vec![seen_target_from?];
    while let Some(Some(prev)) = came_from.get(path.last()?) {
        path.push(*prev);
    }
    path.reverse();
    path.iter().map(|n| n.as_pubkey().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{build_ldk_graph, node_keys, random_policy, ChannelSpec, GraphSpec, Rng};
    use lightning::ln::msgs::UnsignedNodeAnnouncement;
    use lightning::types::features::NodeFeatures;

    struct NoLog;
    impl Logger for NoLog {
        fn log(&self, _: lightning::util::logger::Record) {}
    }

    /// Nodes 0..n and the channels between the pairs given; the nodes in `om` announce onion messages.
    fn graph(n: usize, pairs: &[(u32, u32)], om: &[usize]) -> (Vec<PublicKey>, NetworkGraph<&'static NoLog>) {
        static LOG: NoLog = NoLog;
        let (secret_keys, nodes) = node_keys(n, 7);
        let mut rng = Rng::new(1);
        let channels = pairs
            .iter()
            .enumerate()
            .map(|(i, (a, b))| ChannelSpec { a: *a, b: *b, scid: 1000 + i as u64, capacity_sat: 1_000_000, policies: [random_policy(&mut rng, 1_000_000), random_policy(&mut rng, 1_000_000)] })
            .collect();
        let g = build_ldk_graph(&GraphSpec { secret_keys, nodes: nodes.clone(), channels }, &LOG);
        for i in om {
            let mut features = NodeFeatures::empty();
            features.set_onion_messages_optional();
            let ann = UnsignedNodeAnnouncement {
                features,
                timestamp: 1,
                node_id: NodeId::from_pubkey(&nodes[*i]),
                rgb: [0; 3],
                alias: lightning::routing::gossip::NodeAlias([0; 32]),
                addresses: Vec::new(),
                excess_address_data: Vec::new(),
                excess_data: Vec::new(),
            };
            g.update_node_from_unsigned_announcement(&ann).unwrap();
        }
        (nodes, g)
    }

    #[test]
    fn a_message_goes_through_the_graph_only_over_nodes_that_speak_onion_messages() {
        // 0 is us, connected to 1 and 4. 0-1-2-3 is the short way to 3; 0-4-5-6-3 the long one.
        let pairs = [(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (6, 3)];
        let (n, g) = graph(7, &pairs, &[1, 2, 4, 5, 6]);
        let ro = g.read_only();
        assert_eq!(shortest_path(&ro, &[n[1], n[4]], n[3]), Some(vec![n[1], n[2]]));
        // The target's neighbour is the peer itself: one intermediate hop.
        assert_eq!(shortest_path(&ro, &[n[1], n[4]], n[2]), Some(vec![n[1]]));
        drop(ro);

        // 2 does not announce onion messages: the long way round.
        let (n, g) = graph(7, &pairs, &[1, 4, 5, 6]);
        assert_eq!(shortest_path(&g.read_only(), &[n[1], n[4]], n[3]), Some(vec![n[4], n[5], n[6]]));
        // Nor does 6: no path at all (LDK's direct connection is tried instead).
        let (n, g) = graph(7, &pairs, &[1, 4, 5]);
        assert_eq!(shortest_path(&g.read_only(), &[n[1], n[4]], n[3]), None);
        // Without peers, or to a node the graph does not know, there is none either.
        assert_eq!(shortest_path(&g.read_only(), &[], n[3]), None);
        let (_, strangers) = node_keys(1, 99);
        assert_eq!(shortest_path(&g.read_only(), &[n[1]], strangers[0]), None);
    }

    #[test]
    fn paths_longer_than_the_limit_are_not_taken() {
        // A line 0-1-2-...-9: from peer 1, node 9 is 8 intermediate hops away.
        let pairs: Vec<(u32, u32)> = (0..9).map(|i| (i, i + 1)).collect();
        let (n, g) = graph(10, &pairs, &(0..10).collect::<Vec<_>>());
        let ro = g.read_only();
        assert_eq!(shortest_path(&ro, &[n[1]], n[7]).map(|p| p.len()), Some(MAX_INTERMEDIATE_HOPS));
        assert_eq!(shortest_path(&ro, &[n[1]], n[8]), None);
    }
}
