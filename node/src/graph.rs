//! Read-only views of the gossip network graph for the API.
//!
//! Owns: turning LDK's NetworkGraph into node and channel views. Must never: change the graph (gossip
//! is LDK's P2PGossipSync's job) or hold its read lock across an await.
use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use lightning::routing::gossip::{ChannelInfo, ChannelUpdateInfo, NodeId, NodeInfo};

use lanes_channel::types::NetworkGraph;

use crate::NodeError;

/// The graph service: queries of the gossip graph.
pub struct Graph {
    graph: Arc<NetworkGraph>,
}

pub struct NodeView {
    pub node_id: String,
    pub alias: String,
    pub addresses: Vec<String>,
    pub last_update: u32,
    pub num_channels: u32,
    pub total_capacity_sat: u64,
}

pub struct PolicyView {
    pub fee_base_msat: u32,
    pub fee_rate_ppm: u32,
    pub cltv_expiry_delta: u32,
    pub htlc_minimum_msat: u64,
    pub htlc_maximum_msat: u64,
    pub disabled: bool,
}

pub struct ChannelView {
    pub short_channel_id: u64,
    pub node1: String,
    pub node2: String,
    pub capacity_sat: u64,
    pub node1_policy: Option<PolicyView>,
    pub node2_policy: Option<PolicyView>,
}

/// "block x tx x output", as LND prints short channel ids.
pub fn format_scid(scid: u64) -> String {
    format!("{}x{}x{}", scid >> 40, (scid >> 16) & 0xff_ffff, scid & 0xffff)
}

/// Accepts "800000x1x0" or the integer form.
pub fn parse_scid(s: &str) -> Result<u64, NodeError> {
    let bad = || NodeError::Invalid(format!("{s:?} is not a short channel id (BLOCKxTXxOUTPUT)"));
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let parts: Vec<u64> = s.split('x').map(|p| p.parse::<u64>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    match parts[..] {
        [b, t, o] if b < (1 << 24) && t < (1 << 24) && o < (1 << 16) => Ok((b << 40) | (t << 16) | o),
        _ => Err(bad()),
    }
}

fn node_view(id: &NodeId, info: &NodeInfo) -> NodeView {
    let ann = info.announcement_info.as_ref();
    NodeView {
        node_id: id.to_string(),
        alias: ann.map(|a| a.alias().to_string()).unwrap_or_default(),
        addresses: ann.map(|a| a.addresses().iter().map(|x| x.to_string()).collect()).unwrap_or_default(),
        last_update: ann.map(|a| a.last_update()).unwrap_or(0),
        num_channels: info.channels.len() as u32,
        total_capacity_sat: 0,
    }
}

fn policy(u: Option<&ChannelUpdateInfo>) -> Option<PolicyView> {
    let u = u?;
    Some(PolicyView {
        fee_base_msat: u.fees.base_msat,
        fee_rate_ppm: u.fees.proportional_millionths,
        cltv_expiry_delta: u.cltv_expiry_delta as u32,
        htlc_minimum_msat: u.htlc_minimum_msat,
        htlc_maximum_msat: u.htlc_maximum_msat,
        disabled: !u.enabled,
    })
}

fn channel_view(scid: u64, c: &ChannelInfo) -> ChannelView {
    ChannelView {
        short_channel_id: scid,
        node1: c.node_one.to_string(),
        node2: c.node_two.to_string(),
        capacity_sat: c.capacity_sats.unwrap_or(0),
        node1_policy: policy(c.one_to_two.as_ref()),
        node2_policy: policy(c.two_to_one.as_ref()),
    }
}

impl Graph {
    pub fn new(graph: Arc<NetworkGraph>) -> Self {
        Self { graph }
    }

    /// Every node and channel we know.
    pub fn describe(&self) -> (Vec<NodeView>, Vec<ChannelView>) {
        describe_graph(&self.graph)
    }

    pub fn node_info(&self, id: PublicKey) -> Result<NodeView, NodeError> {
        let g = self.graph.read_only();
        let nid = NodeId::from_pubkey(&id);
        let info = g.node(&nid).ok_or_else(|| NodeError::NotFound(format!("node {id} is not in the graph")))?;
        let mut v = node_view(&nid, info);
        v.total_capacity_sat = info.channels.iter().filter_map(|scid| g.channel(*scid)).filter_map(|c| c.capacity_sats).sum();
        Ok(v)
    }

    pub fn chan_info(&self, scid: u64) -> Result<ChannelView, NodeError> {
        let g = self.graph.read_only();
        let c = g.channel(scid).ok_or_else(|| NodeError::NotFound(format!("channel {} is not in the graph", format_scid(scid))))?;
        Ok(channel_view(scid, c))
    }
}

/// Every node and channel of `graph`.
pub fn describe_graph<L: std::ops::Deref>(graph: &lightning::routing::gossip::NetworkGraph<L>) -> (Vec<NodeView>, Vec<ChannelView>)
where
    L::Target: lightning::util::logger::Logger,
{
    let g = graph.read_only();
    let nodes = g.nodes().unordered_iter().map(|(id, info)| node_view(id, info)).collect();
    let channels = g.channels().unordered_iter().map(|(scid, c)| channel_view(*scid, c)).collect();
    (nodes, channels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanes_channel::logger::LdkTracing;
    use lanes_channel::router::synth::{self, GenParams};

    /// A service stands alone: the graph service is built from a graph, with no node around it.
    #[test]
    fn the_graph_service_answers_from_its_graph_alone() {
        let spec = synth::generate(GenParams { nodes: 30, channels: 60, seed: 7 });
        let graph = Graph::new(Arc::new(synth::build_ldk_graph(&spec, Arc::new(LdkTracing::default()))));
        let (nodes, channels) = graph.describe();
        assert_eq!((nodes.len(), channels.len()), (spec.nodes.len(), spec.channels.len()));
        let c = &spec.channels[0];
        let v = graph.chan_info(c.scid).unwrap();
        assert_eq!((v.capacity_sat, v.node1_policy.is_some()), (c.capacity_sat, true));
        let first = spec.nodes[0];
        let theirs: Vec<_> = spec.channels.iter().filter(|c| spec.nodes[c.a as usize] == first || spec.nodes[c.b as usize] == first).collect();
        let n = graph.node_info(first).unwrap();
        assert_eq!((n.num_channels as usize, n.total_capacity_sat), (theirs.len(), theirs.iter().map(|c| c.capacity_sat).sum()));
        assert!(matches!(graph.chan_info(1), Err(NodeError::NotFound(m)) if m == "channel 0x0x1 is not in the graph"));
    }

    #[test]
    fn short_channel_ids() {
        let scid = parse_scid("103x1x0").unwrap();
        assert_eq!(format_scid(scid), "103x1x0");
        assert_eq!(parse_scid(&scid.to_string()).unwrap(), scid);
        for bad in ["", "1x2", "ax1x0", "1x1x70000", "1x2x3x4"] {
            assert!(parse_scid(bad).is_err(), "{bad}");
        }
    }
}
