//! Channel calls: OpenChannel, BatchOpenChannel, ListChannels, PendingChannels, CloseChannel, ClosedChannels,
//! UpdateChannelPolicy, SpliceIn, SpliceOut, ForwardingHistory.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;

use super::{convert, opt};
use crate::channels::BatchMember;
use crate::peers::parse_node_id;
use crate::{Node, NodeError};

pub async fn open(node: Arc<Node>, r: OpenChannelRequest) -> Result<OpenChannelResponse, NodeError> {
    let peer = parse_node_id(&r.node_id)?;
    let (id, outpoint) = node.channels().open_channel(peer, r.local_funding_sat, r.push_msat, r.private, opt(r.sat_per_vbyte), r.zero_conf).await?;
    Ok(OpenChannelResponse { channel_id: crate::ids::hex(&id), funding_txid: outpoint.txid.to_string(), funding_output_index: outpoint.vout })
}

pub async fn batch_open(node: Arc<Node>, r: BatchOpenChannelRequest) -> Result<BatchOpenChannelResponse, NodeError> {
    let members = r
        .channels
        .into_iter()
        .map(|c| Ok(BatchMember { peer: parse_node_id(&c.node_id)?, amount_sat: c.local_funding_sat, push_msat: c.push_msat, private: c.private }))
        .collect::<Result<Vec<_>, NodeError>>()?;
    let (txid, outpoints) = node.channels().batch_open(members, opt(r.sat_per_vbyte)).await?;
    let channels = outpoints
        .into_iter()
        .map(|(id, o)| OpenChannelResponse {
            channel_id: crate::ids::hex(&id),
            funding_txid: o.txid.to_string(),
            funding_output_index: o.vout,
        })
        .collect();
    Ok(BatchOpenChannelResponse { funding_txid: txid.to_string(), channels })
}

pub async fn splice_in(node: Arc<Node>, r: SpliceInRequest) -> Result<SpliceResponse, NodeError> {
    let txo = node.splices().splice_in(&r.channel_id, r.amount_sat, opt(r.sat_per_vbyte).as_deref()).await?;
    Ok(SpliceResponse { funding_txid: txo.txid.to_string(), funding_output_index: txo.vout })
}

pub async fn splice_out(node: Arc<Node>, r: SpliceOutRequest) -> Result<SpliceResponse, NodeError> {
    let txo = node.splices().splice_out(&r.channel_id, r.amount_sat, &r.address, opt(r.sat_per_vbyte).as_deref()).await?;
    Ok(SpliceResponse { funding_txid: txo.txid.to_string(), funding_output_index: txo.vout })
}

pub async fn list(node: Arc<Node>, r: ListChannelsRequest) -> Result<ListChannelsResponse, NodeError> {
    let peer = opt(r.peer).map(|p| parse_node_id(&p)).transpose()?;
    Ok(ListChannelsResponse { channels: node.channels().list(r.active_only, peer).into_iter().map(convert::channel).collect() })
}

pub async fn pending(node: Arc<Node>, _: PendingChannelsRequest) -> Result<PendingChannelsResponse, NodeError> {
    let pending_open = node.channels().list(false, None).into_iter().filter(|c| c.pending).map(convert::channel).collect();
    let pending_close = node.channels().closed_list()?.into_iter().filter(|c| c.claimable_sat > 0).map(convert::closed).collect();
    Ok(PendingChannelsResponse { pending_open, pending_close })
}

pub async fn close(node: Arc<Node>, r: CloseChannelRequest) -> Result<CloseChannelResponse, NodeError> {
    let rate = opt(r.sat_per_vbyte);
    let txid = node.channels().close(&r.channel_id, r.force, rate.as_deref()).await?;
    Ok(CloseChannelResponse { closing_txid: txid.map(|t| t.to_string()).unwrap_or_default() })
}

pub async fn closed(node: Arc<Node>, _: ClosedChannelsRequest) -> Result<ClosedChannelsResponse, NodeError> {
    Ok(ClosedChannelsResponse { channels: node.channels().closed_list()?.into_iter().map(convert::closed).collect() })
}

pub async fn update_policy(node: Arc<Node>, r: UpdateChannelPolicyRequest) -> Result<UpdateChannelPolicyResponse, NodeError> {
    let updated = node.channels().update_policy(&r.channel_id, r.fee_base_msat, r.fee_rate_ppm, r.cltv_expiry_delta)?;
    Ok(UpdateChannelPolicyResponse { updated })
}

pub async fn forwarding_history(node: Arc<Node>, _: ForwardingHistoryRequest) -> Result<ForwardingHistoryResponse, NodeError> {
    let forwards: Vec<Forward> = node.forwards().list()?.into_iter().map(convert::forward).collect();
    let total_fee_msat = forwards.iter().map(|f| f.fee_msat).sum();
    Ok(ForwardingHistoryResponse { forwards, total_fee_msat })
}
