//! Peer calls: ConnectPeer, ListPeers, DisconnectPeer.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;

use crate::peers::{parse_node_id, parse_peer_address};
use crate::{Node, NodeError};

pub async fn connect(node: Arc<Node>, r: ConnectPeerRequest) -> Result<ConnectPeerResponse, NodeError> {
    let (id, addr) = parse_peer_address(&r.address)?;
    node.peers().connect(id, &addr, r.persist).await?;
    Ok(ConnectPeerResponse {})
}

pub async fn list(node: Arc<Node>, _: ListPeersRequest) -> Result<ListPeersResponse, NodeError> {
    let peers = node.peers().list().into_iter().map(|p| Peer { node_id: p.node_id.to_string(), address: p.address, inbound: p.inbound }).collect();
    Ok(ListPeersResponse { peers })
}

pub async fn disconnect(node: Arc<Node>, r: DisconnectPeerRequest) -> Result<DisconnectPeerResponse, NodeError> {
    node.peers().disconnect(parse_node_id(&r.node_id)?)?;
    Ok(DisconnectPeerResponse {})
}
