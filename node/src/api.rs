//! The gRPC control API: turns requests into node calls and node errors into statuses.
//!
//! Owns: the `lanes.v1.Lanes` service, request checking that needs no node state, and the server
//! with reflection. Must never: hold protocol or wallet logic, or panic on any request: every bad
//! input becomes a status with a message, before anything changes.
use std::net::SocketAddr;
use std::sync::Arc;

use std::pin::Pin;
use std::time::Duration;

use lanes_proto::v1::*;
use lanes_proto::{Lanes, LanesServer};
use lanes_wallet::SendRequest;
use lightning::ln::channel_state::ChannelDetails;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::graph::{format_scid, parse_scid, ChannelView, NodeView, PolicyView};
use crate::ids::hex;
use crate::invoice::{self, InvoiceRecord, InvoiceState as State};
use crate::payments::{PaymentRecord, PaymentStatus as PStatus, RouteQuery};
use crate::peers::{parse_node_id, parse_peer_address};
use crate::{Node, NodeError};

fn opt(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s as u64))
}

fn channel(node: &Node, c: &ChannelDetails) -> Channel {
    let cfg = c.config.unwrap_or_default();
    let (local_balance_msat, remote_balance_msat) = crate::channels::balances(node, c);
    Channel {
        channel_id: c.channel_id.to_string(),
        short_channel_id: c.short_channel_id.map(format_scid).unwrap_or_default(),
        remote_node_id: c.counterparty.node_id.to_string(),
        capacity_sat: c.channel_value_satoshis,
        local_balance_msat,
        remote_balance_msat,
        outbound_capacity_msat: c.outbound_capacity_msat,
        inbound_capacity_msat: c.inbound_capacity_msat,
        active: c.is_usable,
        public: c.is_announced,
        pending: !c.is_channel_ready,
        initiator: c.is_outbound,
        funding_txid: c.funding_txo.map(|o| o.txid.to_string()).unwrap_or_default(),
        funding_output_index: c.funding_txo.map(|o| o.index as u32).unwrap_or(0),
        confirmations: c.confirmations.unwrap_or(0),
        confirmations_required: c.confirmations_required.unwrap_or(0),
        fee_base_msat: cfg.forwarding_fee_base_msat,
        fee_rate_ppm: cfg.forwarding_fee_proportional_millionths,
        cltv_expiry_delta: cfg.cltv_expiry_delta as u32,
        commitment_type: match &c.channel_type {
            Some(t) if t.supports_anchors_zero_fee_htlc_tx() => CommitmentType::Anchors,
            Some(t) if t.supports_static_remote_key() => CommitmentType::StaticRemoteKey,
            _ => CommitmentType::Unknown,
        } as i32,
    }
}

fn closed(v: crate::channels::ClosedView) -> ClosedChannel {
    ClosedChannel {
        channel_id: v.record.channel_id,
        remote_node_id: v.record.remote_node_id,
        capacity_sat: v.record.capacity_sat,
        reason: v.record.reason,
        closing_txid: v.record.closing_txid,
        claimable_sat: v.claimable_sat,
        claimable_at_height: v.claimable_at_height,
    }
}

fn graph_node(n: NodeView) -> GraphNode {
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

fn graph_channel(c: ChannelView) -> GraphChannel {
    GraphChannel {
        short_channel_id: format_scid(c.short_channel_id),
        node1: c.node1,
        node2: c.node2,
        capacity_sat: c.capacity_sat,
        node1_policy: c.node1_policy.map(policy),
        node2_policy: c.node2_policy.map(policy),
    }
}

fn invoice(r: InvoiceRecord) -> Invoice {
    let state = match r.state() {
        State::Open => InvoiceState::Open,
        State::Settled => InvoiceState::Settled,
        State::Expired => InvoiceState::Expired,
        State::Accepted => InvoiceState::Accepted,
        State::Canceled => InvoiceState::Canceled,
    };
    Invoice {
        bolt11: r.bolt11,
        payment_hash: r.payment_hash,
        amount_msat: r.amount_msat,
        description: r.description,
        state: state as i32,
        created_at: r.created_at,
        expires_at: r.expires_at,
        amount_received_msat: r.amount_received_msat,
        settled_at: r.settled_at,
        preimage: r.preimage,
        hold: r.hold,
    }
}

fn payment(r: PaymentRecord) -> Payment {
    let status = match r.status {
        PStatus::InFlight => PaymentStatus::InFlight,
        PStatus::Succeeded => PaymentStatus::Succeeded,
        PStatus::Failed => PaymentStatus::Failed,
    };
    Payment {
        payment_id: r.payment_id,
        payment_hash: r.payment_hash,
        destination: r.destination,
        amount_msat: r.amount_msat,
        fee_msat: r.fee_msat,
        status: status as i32,
        preimage: r.preimage,
        failure_reason: r.failure_reason,
        created_at: r.created_at,
        paths: r
            .paths
            .into_iter()
            .map(|hops| PaymentPath {
                hops: hops
                    .into_iter()
                    .map(|h| RouteHop {
                        node_id: h.node_id,
                        short_channel_id: format_scid(h.short_channel_id),
                        amount_msat: h.amount_msat,
                        fee_msat: h.fee_msat,
                        cltv_expiry_delta: h.cltv_expiry_delta,
                    })
                    .collect(),
            })
            .collect(),
        bolt11: r.bolt11,
    }
}

/// A found route as QueryRoutes answers it; `height` is the chain tip our HTLCs would start from.
fn route_answer(est: &lanes_channel::router::lanes_router::RouteEstimate, height: u32) -> QueryRoutesResponse {
    let paths: Vec<RoutePath> = est
        .route
        .paths
        .iter()
        .zip(est.path_probabilities.iter().copied().chain(std::iter::repeat(0.0)))
        .map(|(p, success_probability)| {
            let hops: Vec<RouteHop> = p
                .hops
                .iter()
                .enumerate()
                .map(|(i, h)| RouteHop {
                    node_id: h.pubkey.to_string(),
                    short_channel_id: format_scid(h.short_channel_id),
                    // What the channel into this hop carries: its fee (or, last, the amount) and all later.
                    amount_msat: p.hops[i..].iter().map(|x| x.fee_msat).fold(0u64, u64::saturating_add),
                    fee_msat: if i + 1 < p.hops.len() { h.fee_msat } else { 0 },
                    cltv_expiry_delta: h.cltv_expiry_delta,
                })
                .collect();
            let amount_msat = p.final_value_msat();
            let fee_msat = p.fee_msat();
            let total_cltv_delta = p.hops.iter().map(|h| h.cltv_expiry_delta).fold(0u32, u32::saturating_add);
            RoutePath {
                hops,
                amount_msat,
                fee_msat,
                total_amount_msat: amount_msat.saturating_add(fee_msat),
                total_cltv_delta,
                total_time_lock: height.saturating_add(1).saturating_add(total_cltv_delta),
                success_probability,
            }
        })
        .collect();
    QueryRoutesResponse {
        amount_msat: paths.iter().map(|p| p.amount_msat).sum(),
        total_fees_msat: paths.iter().map(|p| p.fee_msat).sum(),
        total_amount_msat: paths.iter().map(|p| p.total_amount_msat).sum(),
        total_time_lock: paths.iter().map(|p| p.total_time_lock).max().unwrap_or(0),
        success_probability: est.probability,
        paths,
    }
}

/// Most queries one BatchQueryRoutes may carry.
const MAX_BATCH_QUERIES: usize = 10_000;

/// The service over a running node. `stop` asks the daemon to shut down.
pub struct Api {
    node: Arc<Node>,
    stop: mpsc::Sender<()>,
}

impl Api {
    pub fn new(node: Arc<Node>, stop: mpsc::Sender<()>) -> Self {
        Self { node, stop }
    }

    /// Serves the API (with gRPC reflection) on `addr` until `shutdown` resolves.
    pub async fn serve(self, addr: SocketAddr, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), NodeError> {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lanes_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| NodeError::Internal(format!("reflection: {e}")))?;
        tracing::info!(%addr, "gRPC API listening");
        tonic::transport::Server::builder()
            .add_service(LanesServer::new(self).max_decoding_message_size(lanes_proto::MAX_MESSAGE_BYTES).max_encoding_message_size(lanes_proto::MAX_MESSAGE_BYTES))
            .add_service(reflection)
            .serve_with_shutdown(addr, shutdown)
            .await
            .map_err(|e| NodeError::Internal(format!("gRPC server: {e}")))
    }

    /// A QueryRoutes request, checked (nothing here needs the router).
    fn route_query(&self, r: QueryRoutesRequest) -> Result<RouteQuery, Status> {
        let dest = parse_node_id(&r.node_id)?;
        Ok(RouteQuery::new(&self.node, dest, r.amount_msat, r.amount_sat, r.final_cltv_delta, r.fee_limit_msat, r.max_parts)?)
    }

    /// Runs blocking wallet work off the async threads.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static) -> Result<T, Status> {
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || f(&node))
            .await
            .map_err(|e| Status::internal(format!("task failed: {e}")))?
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl Lanes for Api {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        let i = self.node.info();
        let routed = self.node.router.payment_route_counts();
        Ok(Response::new(GetInfoResponse {
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
            routes_by_lanes: routed.found,
            routes_by_ldk_fallback: routed.fell_back,
        }))
    }

    async fn stop(&self, _: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        tracing::info!("stop requested over the API");
        let _ = self.stop.try_send(());
        Ok(Response::new(StopResponse {}))
    }

    async fn new_address(&self, _: Request<NewAddressRequest>) -> Result<Response<NewAddressResponse>, Status> {
        let address = self.blocking(|n| Ok(n.wallet().new_address()?)).await?;
        Ok(Response::new(NewAddressResponse { address: address.to_string() }))
    }

    async fn wallet_balance(&self, _: Request<WalletBalanceRequest>) -> Result<Response<WalletBalanceResponse>, Status> {
        let b = self.node.wallet().balance();
        Ok(Response::new(WalletBalanceResponse {
            confirmed_sat: b.confirmed,
            unconfirmed_sat: b.unconfirmed,
            total_sat: b.confirmed.saturating_add(b.unconfirmed),
        }))
    }

    async fn list_unspent(&self, req: Request<ListUnspentRequest>) -> Result<Response<ListUnspentResponse>, Status> {
        let min_confs = req.into_inner().min_confs;
        let utxos = self
            .node
            .wallet()
            .list_unspent(min_confs)
            .into_iter()
            .map(|u| Utxo {
                outpoint: u.outpoint.to_string(),
                amount_sat: u.amount_sat,
                address: u.address,
                confirmations: u.confirmations,
                is_change: u.is_change,
            })
            .collect();
        Ok(Response::new(ListUnspentResponse { utxos }))
    }

    async fn send_coins(&self, req: Request<SendCoinsRequest>) -> Result<Response<SendCoinsResponse>, Status> {
        let r = req.into_inner();
        let send = SendRequest {
            address: r.address,
            amount_sat: r.amount_sat,
            send_all: r.send_all,
            sat_per_vbyte: (!r.sat_per_vbyte.trim().is_empty()).then_some(r.sat_per_vbyte),
            reserve_sat: 0,
        };
        let sent = self
            .blocking(move |n| {
                let send = SendRequest { reserve_sat: crate::channels::anchor_reserve_sat(n, 0), ..send };
                Ok(n.wallet().send(&send)?)
            })
            .await?;
        Ok(Response::new(SendCoinsResponse { txid: sent.txid.to_string(), amount_sat: sent.amount_sat, fee_sat: sent.fee_sat }))
    }

    async fn connect_peer(&self, req: Request<ConnectPeerRequest>) -> Result<Response<ConnectPeerResponse>, Status> {
        let r = req.into_inner();
        let (id, addr) = parse_peer_address(&r.address)?;
        self.node.peers.connect(&self.node, id, &addr, r.persist).await?;
        Ok(Response::new(ConnectPeerResponse {}))
    }

    async fn list_peers(&self, _: Request<ListPeersRequest>) -> Result<Response<ListPeersResponse>, Status> {
        let peers = self
            .node
            .peers
            .list(&self.node)
            .into_iter()
            .map(|p| Peer { node_id: p.node_id.to_string(), address: p.address, inbound: p.inbound })
            .collect();
        Ok(Response::new(ListPeersResponse { peers }))
    }

    async fn disconnect_peer(&self, req: Request<DisconnectPeerRequest>) -> Result<Response<DisconnectPeerResponse>, Status> {
        let id = parse_node_id(&req.into_inner().node_id)?;
        self.node.peers.disconnect(&self.node, id)?;
        Ok(Response::new(DisconnectPeerResponse {}))
    }

    async fn open_channel(&self, req: Request<OpenChannelRequest>) -> Result<Response<OpenChannelResponse>, Status> {
        let r = req.into_inner();
        let peer = parse_node_id(&r.node_id)?;
        let (id, outpoint) = self
            .node
            .channels
            .open_channel(&self.node, peer, r.local_funding_sat, r.push_msat, r.private, opt(r.sat_per_vbyte))
            .await?;
        Ok(Response::new(OpenChannelResponse {
            channel_id: id.to_string(),
            funding_txid: outpoint.txid.to_string(),
            funding_output_index: outpoint.index as u32,
        }))
    }

    async fn list_channels(&self, req: Request<ListChannelsRequest>) -> Result<Response<ListChannelsResponse>, Status> {
        let r = req.into_inner();
        let peer = match opt(r.peer) {
            Some(p) => Some(parse_node_id(&p)?),
            None => None,
        };
        let channels = self.node.channels.list(&self.node, r.active_only, peer).iter().map(|c| channel(&self.node, c)).collect();
        Ok(Response::new(ListChannelsResponse { channels }))
    }

    async fn pending_channels(&self, _: Request<PendingChannelsRequest>) -> Result<Response<PendingChannelsResponse>, Status> {
        let pending_open = self.node.channels.list(&self.node, false, None).iter().filter(|c| !c.is_channel_ready).map(|c| channel(&self.node, c)).collect();
        let pending_close = self.node.channels.closed_list(&self.node)?.into_iter().filter(|c| c.claimable_sat > 0).map(closed).collect();
        Ok(Response::new(PendingChannelsResponse { pending_open, pending_close }))
    }

    async fn close_channel(&self, req: Request<CloseChannelRequest>) -> Result<Response<CloseChannelResponse>, Status> {
        let r = req.into_inner();
        let rate = opt(r.sat_per_vbyte);
        let txid = self.node.channels.close(&self.node, &r.channel_id, r.force, rate.as_deref()).await?;
        Ok(Response::new(CloseChannelResponse { closing_txid: txid.map(|t| t.to_string()).unwrap_or_default() }))
    }

    async fn closed_channels(&self, _: Request<ClosedChannelsRequest>) -> Result<Response<ClosedChannelsResponse>, Status> {
        let channels = self.node.channels.closed_list(&self.node)?.into_iter().map(closed).collect();
        Ok(Response::new(ClosedChannelsResponse { channels }))
    }

    async fn update_channel_policy(&self, req: Request<UpdateChannelPolicyRequest>) -> Result<Response<UpdateChannelPolicyResponse>, Status> {
        let r = req.into_inner();
        let updated = self.node.channels.update_policy(&self.node, &r.channel_id, r.fee_base_msat, r.fee_rate_ppm, r.cltv_expiry_delta)?;
        Ok(Response::new(UpdateChannelPolicyResponse { updated }))
    }

    async fn describe_graph(&self, _: Request<DescribeGraphRequest>) -> Result<Response<DescribeGraphResponse>, Status> {
        let (nodes, channels) = crate::graph::describe(&self.node);
        Ok(Response::new(DescribeGraphResponse {
            nodes: nodes.into_iter().map(graph_node).collect(),
            channels: channels.into_iter().map(graph_channel).collect(),
        }))
    }

    async fn get_node_info(&self, req: Request<GetNodeInfoRequest>) -> Result<Response<GetNodeInfoResponse>, Status> {
        let id = parse_node_id(&req.into_inner().node_id)?;
        let v = crate::graph::node_info(&self.node, id)?;
        let (num_channels, total_capacity_sat) = (v.num_channels, v.total_capacity_sat);
        Ok(Response::new(GetNodeInfoResponse { node: Some(graph_node(v)), num_channels, total_capacity_sat }))
    }

    async fn get_chan_info(&self, req: Request<GetChanInfoRequest>) -> Result<Response<GraphChannel>, Status> {
        let scid = parse_scid(&req.into_inner().short_channel_id)?;
        Ok(Response::new(graph_channel(crate::graph::chan_info(&self.node, scid)?)))
    }

    async fn add_invoice(&self, req: Request<AddInvoiceRequest>) -> Result<Response<AddInvoiceResponse>, Status> {
        let r = req.into_inner();
        let hold = match opt(r.payment_hash) {
            Some(h) => Some(invoice::parse_payment_hash(&h)?),
            None => None,
        };
        let rec = self.node.invoices.add(&self.node, r.amount_msat, &r.description, r.expiry_secs, hold)?;
        Ok(Response::new(AddInvoiceResponse { bolt11: rec.bolt11, payment_hash: rec.payment_hash }))
    }

    async fn decode_invoice(&self, req: Request<DecodeInvoiceRequest>) -> Result<Response<DecodeInvoiceResponse>, Status> {
        let inv = invoice::decode(&req.into_inner().bolt11, self.node.config().network)?;
        let description = match inv.description() {
            lightning_invoice::Bolt11InvoiceDescriptionRef::Direct(d) => d.to_string(),
            lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) => format!("hash:{}", h.0),
        };
        let route_hints = inv
            .route_hints()
            .into_iter()
            .map(|h| RouteHint {
                hops: h
                    .0
                    .iter()
                    .map(|x| RouteHintHop {
                        node_id: x.src_node_id.to_string(),
                        short_channel_id: format_scid(x.short_channel_id),
                        fee_base_msat: x.fees.base_msat,
                        fee_rate_ppm: x.fees.proportional_millionths,
                        cltv_expiry_delta: x.cltv_expiry_delta as u32,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(DecodeInvoiceResponse {
            destination: inv.get_payee_pub_key().to_string(),
            payment_hash: hex(&bitcoin::hashes::Hash::to_byte_array(*inv.payment_hash())),
            amount_msat: inv.amount_milli_satoshis().unwrap_or(0),
            description,
            timestamp: inv.duration_since_epoch().as_secs(),
            expiry_secs: inv.expiry_time().as_secs(),
            expired: invoice::is_expired(&inv),
            min_final_cltv_expiry_delta: inv.min_final_cltv_expiry_delta(),
            network: inv.network().to_string(),
            route_hints,
        }))
    }

    async fn list_invoices(&self, _: Request<ListInvoicesRequest>) -> Result<Response<ListInvoicesResponse>, Status> {
        let invoices = self.node.invoices.list()?.into_iter().map(invoice).collect();
        Ok(Response::new(ListInvoicesResponse { invoices }))
    }

    async fn lookup_invoice(&self, req: Request<LookupInvoiceRequest>) -> Result<Response<Invoice>, Status> {
        Ok(Response::new(invoice(self.node.invoices.lookup(&req.into_inner().payment_hash)?)))
    }

    async fn settle_invoice(&self, req: Request<SettleInvoiceRequest>) -> Result<Response<SettleInvoiceResponse>, Status> {
        self.node.invoices.settle(&self.node, &req.into_inner().preimage)?;
        Ok(Response::new(SettleInvoiceResponse {}))
    }

    async fn cancel_invoice(&self, req: Request<CancelInvoiceRequest>) -> Result<Response<CancelInvoiceResponse>, Status> {
        self.node.invoices.cancel(&self.node, &req.into_inner().payment_hash)?;
        Ok(Response::new(CancelInvoiceResponse {}))
    }

    async fn pay_invoice(&self, req: Request<PayInvoiceRequest>) -> Result<Response<Payment>, Status> {
        let r = req.into_inner();
        let rec = self.node.payments.pay_invoice(&self.node, &r.bolt11, r.amount_msat, secs(r.timeout_secs), secs(r.retry_secs)).await?;
        Ok(Response::new(payment(rec)))
    }

    async fn send_keysend(&self, req: Request<SendKeysendRequest>) -> Result<Response<Payment>, Status> {
        let r = req.into_inner();
        let dest = parse_node_id(&r.node_id)?;
        let rec = self.node.payments.keysend(&self.node, dest, r.amount_msat, secs(r.timeout_secs)).await?;
        Ok(Response::new(payment(rec)))
    }

    async fn query_routes(&self, req: Request<QueryRoutesRequest>) -> Result<Response<QueryRoutesResponse>, Status> {
        let q = self.route_query(req.into_inner())?;
        let answer = self
            .blocking(move |n| {
                let height = n.channel_manager.current_best_block().height;
                let found = crate::payments::query_routes(n, std::slice::from_ref(&q)).pop();
                let est = found.unwrap_or_else(|| Err(NodeError::Internal("the router gave no answer".into())))?;
                Ok(route_answer(&est, height))
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn batch_query_routes(&self, req: Request<BatchQueryRoutesRequest>) -> Result<Response<BatchQueryRoutesResponse>, Status> {
        let queries = req.into_inner().queries;
        if queries.len() > MAX_BATCH_QUERIES {
            return Err(Status::invalid_argument(format!("{} queries: at most {MAX_BATCH_QUERIES} in one batch", queries.len())));
        }
        // Each query is checked on its own: a malformed one gets its error, the others their routes.
        let checked: Vec<Result<RouteQuery, Status>> = queries.into_iter().map(|r| self.route_query(r)).collect();
        let results = self
            .blocking(move |n| {
                let height = n.channel_manager.current_best_block().height;
                let valid: Vec<RouteQuery> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
                let mut found = crate::payments::query_routes(n, &valid).into_iter();
                Ok(checked
                    .into_iter()
                    .map(|c| {
                        let answer = c.and_then(|_| {
                            let est = found.next().unwrap_or_else(|| Err(NodeError::Internal("the router gave no answer".into())));
                            est.map_err(Status::from)
                        });
                        match answer {
                            Ok(est) => QueryRoutesResult { route: Some(route_answer(&est, height)), ..Default::default() },
                            Err(s) => QueryRoutesResult { route: None, error_code: s.code() as i32, error: s.message().to_string() },
                        }
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(BatchQueryRoutesResponse { results }))
    }

    async fn list_payments(&self, _: Request<ListPaymentsRequest>) -> Result<Response<ListPaymentsResponse>, Status> {
        let payments = self.node.payments.list()?.into_iter().map(payment).collect();
        Ok(Response::new(ListPaymentsResponse { payments }))
    }

    async fn forwarding_history(&self, _: Request<ForwardingHistoryRequest>) -> Result<Response<ForwardingHistoryResponse>, Status> {
        let forwards: Vec<Forward> = self
            .node
            .forwards
            .list()?
            .into_iter()
            .map(|f| Forward {
                timestamp: f.timestamp,
                channel_in: f.channel_in,
                channel_out: f.channel_out,
                amount_in_msat: f.amount_in_msat,
                amount_out_msat: f.amount_out_msat,
                fee_msat: f.fee_msat,
            })
            .collect();
        let total_fee_msat = forwards.iter().map(|f| f.fee_msat).sum();
        Ok(Response::new(ForwardingHistoryResponse { forwards, total_fee_msat }))
    }

    type SubscribeEventsStream = Pin<Box<dyn Stream<Item = Result<NodeEvent, Status>> + Send>>;

    async fn subscribe_events(&self, _: Request<SubscribeEventsRequest>) -> Result<Response<Self::SubscribeEventsStream>, Status> {
        let stream = tokio_stream::wrappers::BroadcastStream::new(self.node.bus.subscribe()).filter_map(|e| {
            // A lagging subscriber skips what it missed rather than ending the stream.
            e.ok().map(|e| {
                Ok(NodeEvent {
                    kind: e.kind.to_string(),
                    timestamp: e.timestamp,
                    node_id: e.node_id,
                    channel_id: e.channel_id,
                    payment_hash: e.payment_hash,
                    amount_msat: e.amount_msat,
                    detail: e.detail,
                })
            })
        });
        Ok(Response::new(Box::pin(stream)))
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
        let r = DescribeGraphResponse { nodes: nodes.into_iter().map(graph_node).collect(), channels: channels.into_iter().map(graph_channel).collect() };
        (n, c, r.encoded_len())
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
