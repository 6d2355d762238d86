//! Gossip graph calls: DescribeGraph, GetNodeInfo, GetChanInfo.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;

use super::convert;
use crate::graph::parse_scid;
use crate::peers::parse_node_id;
use crate::{Node, NodeError};

pub async fn describe(node: Arc<Node>, _: DescribeGraphRequest) -> Result<DescribeGraphResponse, NodeError> {
    let (nodes, channels) = node.graph().describe();
    Ok(convert::graph(nodes, channels))
}

pub async fn node_info(node: Arc<Node>, r: GetNodeInfoRequest) -> Result<GetNodeInfoResponse, NodeError> {
    let v = node.graph().node_info(parse_node_id(&r.node_id)?)?;
    let (num_channels, total_capacity_sat) = (v.num_channels, v.total_capacity_sat);
    Ok(GetNodeInfoResponse { node: Some(convert::graph_node(v)), num_channels, total_capacity_sat })
}

pub async fn chan_info(node: Arc<Node>, r: GetChanInfoRequest) -> Result<GraphChannel, NodeError> {
    Ok(convert::graph_channel(node.graph().chan_info(parse_scid(&r.short_channel_id)?)?))
}
