//! Service views and records into API messages.
//!
//! Owns: every conversion from what the services return to `lanes.v1` messages (hex ids, LND-style short
//! channel ids, enum values). Must never: compute anything a user could get differently elsewhere (hop
//! amounts and fees come from the routes service), or read node state.
use lanes_proto::v1::*;

use crate::bus::NodeEvent as BusEvent;
use crate::channels::{ChannelView, ClosedView, Commitment};
use crate::forwards::ForwardRecord;
use crate::graph::{format_scid, ChannelView as GraphChannelView, NodeView, PolicyView};
use crate::ids::hex;
use crate::invoice::{DecodedInvoice, InvoiceRecord, InvoiceState as State};
use crate::node::Info;
use crate::lease::RoleInfo;
use crate::offers::{OfferRecord, OfferView};
use crate::payments::{Direction, PaymentKind, PaymentRecord, PaymentStatus as PStatus};
use crate::routes::{HopView, RouteView};

pub fn info(i: Info) -> GetInfoResponse {
    GetInfoResponse {
        node_id: i.node_id.to_string(),
        network: i.network.to_string(),
        block_height: i.block_height,
        block_hash: i.block_hash.to_string(),
        synced_to_chain: i.synced_to_chain,
        num_peers: i.num_peers,
        num_active_channels: i.num_active_channels,
        num_pending_channels: i.num_pending_channels,
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen_addr: i.listen_addr.to_string(),
        num_closing_channels: i.num_closing_channels,
        claimable_sat: i.claimable_sat,
        routes_by_lanes: i.routes_by_lanes,
        routes_by_ldk_fallback: i.routes_by_ldk_fallback,
        role: i.role.role.name().to_string(),
        lease_epoch: i.role.epoch,
        lease_holder: i.role.holder,
    }
}

/// GetInfo of a standby: its role and who holds the lease; no chain or channel state (it loaded none).
pub fn standby_info(role: RoleInfo) -> GetInfoResponse {
    GetInfoResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        role: role.role.name().to_string(),
        lease_epoch: role.epoch,
        lease_holder: role.holder,
        ..Default::default()
    }
}

pub fn utxo(u: lanes_wallet::Unspent) -> Utxo {
    Utxo { outpoint: u.outpoint.to_string(), amount_sat: u.amount_sat, address: u.address, confirmations: u.confirmations, is_change: u.is_change }
}

pub fn channel(c: ChannelView) -> Channel {
    Channel {
        channel_id: hex(&c.channel_id),
        short_channel_id: c.short_channel_id.map(format_scid).unwrap_or_default(),
        remote_node_id: c.remote_node_id.to_string(),
        capacity_sat: c.capacity_sat,
        local_balance_msat: c.local_balance_msat,
        remote_balance_msat: c.remote_balance_msat,
        outbound_capacity_msat: c.outbound_capacity_msat,
        inbound_capacity_msat: c.inbound_capacity_msat,
        active: c.active,
        public: c.public,
        pending: c.pending,
        initiator: c.initiator,
        funding_txid: c.funding_txo.map(|o| o.txid.to_string()).unwrap_or_default(),
        funding_output_index: c.funding_txo.map(|o| o.vout).unwrap_or(0),
        confirmations: c.confirmations,
        confirmations_required: c.confirmations_required,
        fee_base_msat: c.fee_base_msat,
        fee_rate_ppm: c.fee_rate_ppm,
        cltv_expiry_delta: c.cltv_expiry_delta,
        commitment_type: match c.commitment {
            Commitment::Anchors => CommitmentType::Anchors,
            Commitment::StaticRemoteKey => CommitmentType::StaticRemoteKey,
            Commitment::Unknown => CommitmentType::Unknown,
        } as i32,
        splice_pending: c.splice.is_some(),
        splice_delta_sat: c.splice.as_ref().map_or(0, |s| s.delta_sat),
        splice_funding_outpoint: c.splice.and_then(|s| s.funding_txo).map(|o| o.to_string()).unwrap_or_default(),
    }
}

pub fn closed(v: ClosedView) -> ClosedChannel {
    ClosedChannel {
        channel_id: v.record.channel_id,
        remote_node_id: v.record.remote_node_id,
        capacity_sat: v.record.capacity_sat,
        reason: v.record.reason,
        closing_txid: v.record.closing_txid,
        claimable_sat: v.claimable_sat,
        claimable_at_height: v.claimable_at_height,
        funding_double_spent: v.record.funding_double_spent,
        unclaimable_msat: v.record.unclaimable_msat,
    }
}

pub fn forward(f: ForwardRecord) -> Forward {
    Forward {
        timestamp: f.timestamp,
        channel_in: f.channel_in,
        channel_out: f.channel_out,
        amount_in_msat: f.amount_in_msat,
        amount_out_msat: f.amount_out_msat,
        fee_msat: f.fee_msat,
    }
}

pub fn graph_node(n: NodeView) -> GraphNode {
    GraphNode { node_id: n.node_id, alias: n.alias, addresses: n.addresses, last_update: n.last_update }
}

fn policy(p: PolicyView) -> RoutingPolicy {
    RoutingPolicy {
        fee_base_msat: p.fee_base_msat,
        fee_rate_ppm: p.fee_rate_ppm,
        cltv_expiry_delta: p.cltv_expiry_delta,
        htlc_minimum_msat: p.htlc_minimum_msat,
        htlc_maximum_msat: p.htlc_maximum_msat,
        disabled: p.disabled,
    }
}

pub fn graph_channel(c: GraphChannelView) -> GraphChannel {
    GraphChannel {
        short_channel_id: format_scid(c.short_channel_id),
        node1: c.node1,
        node2: c.node2,
        capacity_sat: c.capacity_sat,
        node1_policy: c.node1_policy.map(policy),
        node2_policy: c.node2_policy.map(policy),
    }
}

pub fn graph(nodes: Vec<NodeView>, channels: Vec<GraphChannelView>) -> DescribeGraphResponse {
    DescribeGraphResponse { nodes: nodes.into_iter().map(graph_node).collect(), channels: channels.into_iter().map(graph_channel).collect() }
}

pub fn invoice(r: InvoiceRecord) -> Invoice {
    let state = match r.state() {
        State::Open => InvoiceState::Open,
        State::Settled => InvoiceState::Settled,
        State::Expired => InvoiceState::Expired,
        State::Accepted => InvoiceState::Accepted,
        State::Canceled => InvoiceState::Canceled,
    };
    // Only keysend receipts are recorded without an invoice (see invoice::settle).
    let is_keysend = r.bolt11.is_empty();
    Invoice {
        bolt11: r.bolt11,
        payment_hash: hex(&r.payment_hash),
        amount_msat: r.amount_msat,
        description: r.description,
        state: state as i32,
        created_at: r.created_at,
        expires_at: r.expires_at,
        amount_received_msat: r.amount_received_msat,
        settled_at: r.settled_at,
        preimage: r.preimage.map(|p| hex(&p)).unwrap_or_default(),
        hold: r.hold,
        is_keysend,
    }
}

pub fn decoded(d: DecodedInvoice) -> DecodeInvoiceResponse {
    DecodeInvoiceResponse {
        destination: d.destination.to_string(),
        payment_hash: hex(&d.payment_hash),
        amount_msat: d.amount_msat.unwrap_or(0),
        description: d.description,
        timestamp: d.timestamp,
        expiry_secs: d.expiry_secs,
        expired: d.expired,
        min_final_cltv_expiry_delta: d.min_final_cltv_expiry_delta,
        network: d.network.to_string(),
        route_hints: d
            .route_hints
            .into_iter()
            .map(|hops| RouteHint {
                hops: hops
                    .into_iter()
                    .map(|x| RouteHintHop {
                        node_id: x.node_id.to_string(),
                        short_channel_id: format_scid(x.short_channel_id),
                        fee_base_msat: x.fee_base_msat,
                        fee_rate_ppm: x.fee_rate_ppm,
                        cltv_expiry_delta: x.cltv_expiry_delta,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn hop(h: HopView) -> RouteHop {
    RouteHop {
        node_id: h.node_id.to_string(),
        short_channel_id: format_scid(h.short_channel_id),
        amount_msat: h.amount_msat,
        fee_msat: h.fee_msat,
        cltv_expiry_delta: h.cltv_expiry_delta,
    }
}

pub fn payment(r: PaymentRecord) -> Payment {
    let status = match r.status {
        PStatus::InFlight => PaymentStatus::InFlight,
        PStatus::Succeeded => PaymentStatus::Succeeded,
        PStatus::Failed => PaymentStatus::Failed,
    };
    Payment {
        payment_id: hex(&r.id),
        payment_hash: r.payment_hash.map(|h| hex(&h)).unwrap_or_default(),
        destination: r.counterparty.map(|p| p.to_string()).unwrap_or_default(),
        amount_msat: r.amount_msat,
        fee_msat: r.fee_msat,
        status: status as i32,
        preimage: r.preimage.map(|p| hex(&p)).unwrap_or_default(),
        failure_reason: r.failure_reason,
        created_at: r.created_at,
        paths: r.paths.into_iter().map(|hops| PaymentPath { hops: hops.into_iter().map(hop).collect() }).collect(),
        bolt12_invoice: r.bolt12_invoice,
        blinded_paths: r
            .blinded_paths
            .into_iter()
            .map(|p| BlindedPath {
                introduction_node: p.introduction_node,
                blinded_hops: p.blinded_hops,
                fee_base_msat: p.fee_base_msat,
                fee_rate_ppm: p.fee_ppm,
                cltv_expiry_delta: p.cltv_expiry_delta as u32,
            })
            .collect(),
        kind: r.kind.name().into(),
        direction: match r.direction {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
        .into(),
        ..match r.kind {
            PaymentKind::Bolt11 { invoice } => Payment { bolt11: invoice, ..Default::default() },
            PaymentKind::Keysend => Payment::default(),
            PaymentKind::Bolt12Offer { offer, offer_id, payer_note, quantity } => Payment {
                offer,
                offer_id: hex(&offer_id),
                payer_note: payer_note.unwrap_or_default(),
                quantity: quantity.unwrap_or(0),
                ..Default::default()
            },
            PaymentKind::Bolt12Refund { refund, payer_note } => Payment { offer: refund, payer_note: payer_note.unwrap_or_default(), ..Default::default() },
        }
    }
}

pub fn offer(r: OfferRecord) -> Offer {
    Offer {
        offer_id: hex(&r.id),
        active: r.active(),
        offer: r.offer,
        description: r.description,
        amount_msat: r.amount_msat.unwrap_or(0),
        expires_at: r.expires_at.unwrap_or(0),
        quantity_max: r.quantity_max,
        single_use: r.single_use,
        disabled: r.disabled,
        times_paid: r.times_paid,
        received_msat: r.received_msat,
        created_at: r.created_at,
        issuer: r.issuer,
    }
}

pub fn decoded_offer(v: OfferView) -> DecodeOfferResponse {
    DecodeOfferResponse {
        kind: v.kind.into(),
        offer_id: v.offer_id.map(|i| hex(&i)).unwrap_or_default(),
        payment_hash: v.payment_hash.map(|h| hex(&h)).unwrap_or_default(),
        description: v.description,
        amount_msat: v.amount_msat,
        expires_at: v.expires_at.unwrap_or(0),
        expired: v.expired,
        issuer: v.issuer,
        signing_pubkey: v.signing_pubkey,
        introduction_nodes: v.introduction_nodes,
        quantity_max: v.quantity_max,
        payer_note: v.payer_note,
        network: v.network,
        our_network: v.our_network,
    }
}

pub fn route(v: RouteView) -> QueryRoutesResponse {
    let paths: Vec<RoutePath> = v
        .paths
        .into_iter()
        .map(|p| RoutePath {
            total_amount_msat: p.amount_msat.saturating_add(p.fee_msat),
            hops: p.hops.into_iter().map(hop).collect(),
            amount_msat: p.amount_msat,
            fee_msat: p.fee_msat,
            total_cltv_delta: p.total_cltv_delta,
            total_time_lock: p.total_time_lock,
            success_probability: p.success_probability,
        })
        .collect();
    QueryRoutesResponse {
        amount_msat: paths.iter().map(|p| p.amount_msat).sum(),
        total_fees_msat: paths.iter().map(|p| p.fee_msat).sum(),
        total_amount_msat: paths.iter().map(|p| p.total_amount_msat).sum(),
        total_time_lock: paths.iter().map(|p| p.total_time_lock).max().unwrap_or(0),
        success_probability: v.success_probability,
        paths,
    }
}

pub fn event(e: BusEvent) -> NodeEvent {
    NodeEvent {
        kind: e.kind.to_string(),
        timestamp: e.timestamp,
        node_id: e.node_id,
        channel_id: e.channel_id,
        payment_hash: e.payment_hash,
        amount_msat: e.amount_msat,
        detail: e.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanes_channel::router::synth::{self, GenParams, NoLog};
    use lightning::routing::gossip::NetworkGraph;
    use lightning::util::ser::ReadableArgs;
    use prost::Message;

    fn describe_bytes<L: std::ops::Deref>(g: &NetworkGraph<L>) -> (usize, usize, usize)
    where
        L::Target: lightning::util::logger::Logger,
    {
        let (nodes, channels) = crate::graph::describe_graph(g);
        let (n, c) = (nodes.len(), channels.len());
        (n, c, graph(nodes, channels).encoded_len())
    }

    /// DescribeGraph of the public network fits the API's message limit with room to double: the real
    /// mainnet graph in shared/data when it is there, and always a synthetic graph of today's size (about
    /// 17,000 nodes and 51,000 channels). The old 4 MiB default failed at 24,000 channels.
    #[test]
    fn describe_graph_of_the_public_network_fits_the_message_limit_twice() {
        let mut sizes = Vec::new();
        for dir in ["../../shared/data", "../shared/data"] {
            if let Ok(bytes) = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join("mainnet-2021-04-16.ldkgraph")) {
                let g = NetworkGraph::read(&mut lightning::io::Cursor::new(bytes), std::sync::Arc::new(NoLog)).expect("the real graph reads");
                sizes.push(("mainnet 2021-04-16", describe_bytes(&g)));
                break;
            }
        }
        let spec = synth::generate(GenParams { nodes: 17_000, channels: 51_000, seed: 42 });
        let g = synth::build_ldk_graph(&spec, std::sync::Arc::new(NoLog));
        sizes.push(("synthetic, today's size", describe_bytes(&g)));
        for (what, (nodes, channels, bytes)) in sizes {
            eprintln!("DescribeGraph of {what}: {nodes} nodes, {channels} channels, {bytes} bytes");
            assert!(bytes > 4 << 20 || channels < 40_000, "{what}: the 4 MiB default would have held {bytes} bytes?");
            assert!(bytes * 2 <= lanes_proto::MAX_MESSAGE_BYTES, "{what}: {bytes} bytes leave no room to double under {}", lanes_proto::MAX_MESSAGE_BYTES);
        }
    }
}
