//! The gRPC control API (`lanes.v1.Lanes`): a thin layer over the node's services.
//!
//! Each group of calls has its module (wallet, peers, channels, invoices, offers, payments, routes, graph,
//! events); a handler parses its request, calls one service method and converts the answer
//! ([`convert`]). Errors become statuses in one place ([`error`]); who may call what is one table
//! ([`auth`]), checked by one layer in front of every service (reflection included) against macaroons
//! ([`credentials`]); the server speaks TLS with a self-signed certificate clients pin ([`tls`]).
//! Owns: the service, the server with reflection and the message size limits. Must never:
//! hold policy or protocol logic (the services do), reach past the node's facade, or panic on any
//! request: every bad input becomes a status with a message, before anything changes.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use lanes_proto::v1::*;
use lanes_proto::{Lanes, LanesServer};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::lease::{Role, RoleState};
use crate::{Node, NodeError};

pub mod auth;
pub mod channels;
pub mod convert;
pub mod credentials;
pub mod error;
pub mod events;
pub mod graph;
pub mod invoices;
pub mod offers;
pub mod payments;
pub mod peers;
pub mod routes;
pub mod tls;
pub mod wallet;

/// The node the API drives, once it is built; until then (starting, or a standby waiting for the database
/// lease) every call but GetInfo answers UNAVAILABLE, saying why.
pub struct NodeSlot {
    node: std::sync::OnceLock<Arc<Node>>,
    role: Arc<RoleState>,
}

impl NodeSlot {
    pub fn new(role: Arc<RoleState>) -> Self {
        Self { node: std::sync::OnceLock::new(), role }
    }

    /// The node is built: every call goes to it from now on.
    pub fn set(&self, node: Arc<Node>) {
        let _ = self.node.set(node);
    }

    fn get(&self) -> Result<Arc<Node>, Status> {
        self.node.get().cloned().ok_or_else(|| {
            let r = self.role.get();
            match r.role {
                Role::Standby => Status::unavailable(format!(
                    "this instance is a standby: {} is active (lease epoch {}); send calls there",
                    r.holder, r.epoch
                )),
                _ => Status::unavailable("the node is starting"),
            }
        })
    }
}

/// The service over a node. `stop` asks the daemon to shut down.
pub struct Api {
    node: Arc<NodeSlot>,
    config: crate::Config,
    stop: mpsc::Sender<()>,
    /// Bakes macaroons under the current root key; None with `--no-macaroons`.
    baker: Option<Arc<credentials::Baker>>,
}

impl Api {
    /// The API of the node `slot` will hold, with its credentials read from (or made in) the data dir.
    pub fn new(config: &crate::Config, slot: Arc<NodeSlot>, stop: mpsc::Sender<()>) -> Result<Self, NodeError> {
        let api = &config.api;
        let baker = if api.macaroons { Some(Arc::new(credentials::Baker::load_or_create(&config.data_dir, api.rotate_root_key)?)) } else { None };
        Ok(Self { node: slot, config: config.clone(), stop, baker })
    }

    /// Serves the API (with gRPC reflection) on `addr` until `shutdown` resolves: TLS, and every call
    /// checked against the permission table, unless the operator turned them off.
    pub async fn serve(self, addr: SocketAddr, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), NodeError> {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lanes_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| NodeError::Internal(format!("reflection: {e}")))?;
        let config = self.config.clone();
        let security = &config.api;
        let mut server = tonic::transport::Server::builder();
        if security.tls {
            let (cert, key) = tls::load_or_create(&config.data_dir, security)?;
            let identity = tonic::transport::Identity::from_pem(cert, key);
            server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).map_err(|e| NodeError::Config(format!("TLS: {e}")))?;
        } else {
            tracing::warn!(%addr, "the API serves without TLS (--no-tls): requests and macaroons cross the connection in clear");
        }
        if !security.macaroons {
            tracing::warn!(%addr, "the API checks no macaroons (--no-macaroons): anyone who can reach it can drive the node and spend its funds");
        }
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the API listens beyond this machine: keep its macaroons secret and firewall the port");
        }
        let auth = Arc::new(auth::Authenticator::new(self.baker.as_ref().map(|b| b.root_keys())));
        tracing::info!(%addr, tls = security.tls, macaroons = security.macaroons, "gRPC API listening");
        server
            .layer(auth::AuthLayer(auth))
            .add_service(LanesServer::new(self).max_decoding_message_size(lanes_proto::MAX_MESSAGE_BYTES).max_encoding_message_size(lanes_proto::MAX_MESSAGE_BYTES))
            .add_service(reflection)
            .serve_with_shutdown(addr, shutdown)
            .await
            .map_err(|e| NodeError::Internal(format!("gRPC server: {e}")))
    }

    /// Runs one call's handler (the auth layer has let it through); its error becomes a status.
    async fn call<Q, R, F>(&self, req: Request<Q>, handler: impl FnOnce(Arc<Node>, Q) -> F) -> Result<Response<R>, Status>
    where
        F: std::future::Future<Output = Result<R, NodeError>>,
    {
        Ok(Response::new(handler(self.node.get()?, req.into_inner()).await?))
    }
}

/// Runs blocking service work (the wallet, the router) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, NodeError> + Send + 'static) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| NodeError::Internal(format!("task failed: {e}")))?
}

/// A non-blank string, or None.
pub(crate) fn opt(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

#[tonic::async_trait]
impl Lanes for Api {
    async fn get_info(&self, r: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        // A standby answers who is active (and nothing about channels: it has none loaded).
        let role = self.node.role.get();
        if self.node.node.get().is_none() && role.role == Role::Standby {
            return Ok(Response::new(convert::standby_info(role)));
        }
        self.call(r, wallet::get_info).await
    }

    async fn stop(&self, _: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        tracing::info!("stop requested over the API");
        let _ = self.stop.try_send(());
        Ok(Response::new(StopResponse {}))
    }

    async fn new_address(&self, r: Request<NewAddressRequest>) -> Result<Response<NewAddressResponse>, Status> {
        self.call(r, wallet::new_address).await
    }

    async fn wallet_balance(&self, r: Request<WalletBalanceRequest>) -> Result<Response<WalletBalanceResponse>, Status> {
        self.call(r, wallet::balance).await
    }

    async fn list_unspent(&self, r: Request<ListUnspentRequest>) -> Result<Response<ListUnspentResponse>, Status> {
        self.call(r, wallet::list_unspent).await
    }

    async fn send_coins(&self, r: Request<SendCoinsRequest>) -> Result<Response<SendCoinsResponse>, Status> {
        self.call(r, wallet::send_coins).await
    }

    async fn connect_peer(&self, r: Request<ConnectPeerRequest>) -> Result<Response<ConnectPeerResponse>, Status> {
        self.call(r, peers::connect).await
    }

    async fn list_peers(&self, r: Request<ListPeersRequest>) -> Result<Response<ListPeersResponse>, Status> {
        self.call(r, peers::list).await
    }

    async fn disconnect_peer(&self, r: Request<DisconnectPeerRequest>) -> Result<Response<DisconnectPeerResponse>, Status> {
        self.call(r, peers::disconnect).await
    }

    async fn open_channel(&self, r: Request<OpenChannelRequest>) -> Result<Response<OpenChannelResponse>, Status> {
        self.call(r, channels::open).await
    }

    async fn batch_open_channel(&self, r: Request<BatchOpenChannelRequest>) -> Result<Response<BatchOpenChannelResponse>, Status> {
        self.call(r, channels::batch_open).await
    }

    async fn list_channels(&self, r: Request<ListChannelsRequest>) -> Result<Response<ListChannelsResponse>, Status> {
        self.call(r, channels::list).await
    }

    async fn pending_channels(&self, r: Request<PendingChannelsRequest>) -> Result<Response<PendingChannelsResponse>, Status> {
        self.call(r, channels::pending).await
    }

    async fn close_channel(&self, r: Request<CloseChannelRequest>) -> Result<Response<CloseChannelResponse>, Status> {
        self.call(r, channels::close).await
    }

    async fn closed_channels(&self, r: Request<ClosedChannelsRequest>) -> Result<Response<ClosedChannelsResponse>, Status> {
        self.call(r, channels::closed).await
    }

    async fn update_channel_policy(&self, r: Request<UpdateChannelPolicyRequest>) -> Result<Response<UpdateChannelPolicyResponse>, Status> {
        self.call(r, channels::update_policy).await
    }

    async fn splice_in(&self, r: Request<SpliceInRequest>) -> Result<Response<SpliceResponse>, Status> {
        self.call(r, channels::splice_in).await
    }

    async fn splice_out(&self, r: Request<SpliceOutRequest>) -> Result<Response<SpliceResponse>, Status> {
        self.call(r, channels::splice_out).await
    }

    async fn describe_graph(&self, r: Request<DescribeGraphRequest>) -> Result<Response<DescribeGraphResponse>, Status> {
        self.call(r, graph::describe).await
    }

    async fn get_node_info(&self, r: Request<GetNodeInfoRequest>) -> Result<Response<GetNodeInfoResponse>, Status> {
        self.call(r, graph::node_info).await
    }

    async fn get_chan_info(&self, r: Request<GetChanInfoRequest>) -> Result<Response<GraphChannel>, Status> {
        self.call(r, graph::chan_info).await
    }

    async fn add_invoice(&self, r: Request<AddInvoiceRequest>) -> Result<Response<AddInvoiceResponse>, Status> {
        self.call(r, invoices::add).await
    }

    async fn decode_invoice(&self, r: Request<DecodeInvoiceRequest>) -> Result<Response<DecodeInvoiceResponse>, Status> {
        self.call(r, invoices::decode).await
    }

    async fn list_invoices(&self, r: Request<ListInvoicesRequest>) -> Result<Response<ListInvoicesResponse>, Status> {
        self.call(r, invoices::list).await
    }

    async fn lookup_invoice(&self, r: Request<LookupInvoiceRequest>) -> Result<Response<Invoice>, Status> {
        self.call(r, invoices::lookup).await
    }

    async fn settle_invoice(&self, r: Request<SettleInvoiceRequest>) -> Result<Response<SettleInvoiceResponse>, Status> {
        self.call(r, invoices::settle).await
    }

    async fn cancel_invoice(&self, r: Request<CancelInvoiceRequest>) -> Result<Response<CancelInvoiceResponse>, Status> {
        self.call(r, invoices::cancel).await
    }

    async fn pay_invoice(&self, r: Request<PayInvoiceRequest>) -> Result<Response<Payment>, Status> {
        self.call(r, payments::pay_invoice).await
    }

    async fn send_keysend(&self, r: Request<SendKeysendRequest>) -> Result<Response<Payment>, Status> {
        self.call(r, payments::keysend).await
    }

    async fn list_payments(&self, r: Request<ListPaymentsRequest>) -> Result<Response<ListPaymentsResponse>, Status> {
        self.call(r, payments::list).await
    }

    async fn create_offer(&self, r: Request<CreateOfferRequest>) -> Result<Response<Offer>, Status> {
        self.call(r, offers::create).await
    }

    async fn list_offers(&self, r: Request<ListOffersRequest>) -> Result<Response<ListOffersResponse>, Status> {
        self.call(r, offers::list).await
    }

    async fn disable_offer(&self, r: Request<DisableOfferRequest>) -> Result<Response<Offer>, Status> {
        self.call(r, offers::disable).await
    }

    async fn decode_offer(&self, r: Request<DecodeOfferRequest>) -> Result<Response<DecodeOfferResponse>, Status> {
        self.call(r, offers::decode).await
    }

    async fn pay_offer(&self, r: Request<PayOfferRequest>) -> Result<Response<Payment>, Status> {
        self.call(r, offers::pay).await
    }

    async fn create_refund(&self, r: Request<CreateRefundRequest>) -> Result<Response<CreateRefundResponse>, Status> {
        self.call(r, offers::create_refund).await
    }

    async fn request_refund_payment(&self, r: Request<RequestRefundPaymentRequest>) -> Result<Response<RequestRefundPaymentResponse>, Status> {
        self.call(r, offers::request_refund_payment).await
    }

    async fn query_routes(&self, r: Request<QueryRoutesRequest>) -> Result<Response<QueryRoutesResponse>, Status> {
        self.call(r, routes::query).await
    }

    async fn batch_query_routes(&self, r: Request<BatchQueryRoutesRequest>) -> Result<Response<BatchQueryRoutesResponse>, Status> {
        self.call(r, routes::batch_query).await
    }

    async fn forwarding_history(&self, r: Request<ForwardingHistoryRequest>) -> Result<Response<ForwardingHistoryResponse>, Status> {
        self.call(r, channels::forwarding_history).await
    }

    async fn bake_macaroon(&self, r: Request<BakeMacaroonRequest>) -> Result<Response<BakeMacaroonResponse>, Status> {
        let r = r.into_inner();
        let baker = self.baker.as_ref().ok_or_else(|| error::status(NodeError::Refused("macaroons are off (--no-macaroons): there is nothing to bake".into())))?;
        credentials::Baker::check_request(&r.permissions, &r.methods).map_err(error::status)?;
        let expires_at = (r.expiry_secs > 0).then(|| lanes_common::now_secs().saturating_add(r.expiry_secs));
        let perms: Vec<&str> = r.permissions.iter().map(String::as_str).collect();
        let methods: Vec<&str> = r.methods.iter().map(String::as_str).collect();
        let m = baker.bake(&perms, &methods, expires_at);
        tracing::info!(permissions = %perms.join(","), methods = %methods.join(","), expires_at = expires_at.unwrap_or(0), "macaroon baked");
        Ok(Response::new(BakeMacaroonResponse { macaroon: m.to_hex(), expires_at: expires_at.unwrap_or(0) }))
    }

    type SubscribeEventsStream = Pin<Box<dyn Stream<Item = Result<NodeEvent, Status>> + Send>>;

    async fn subscribe_events(&self, r: Request<SubscribeEventsRequest>) -> Result<Response<Self::SubscribeEventsStream>, Status> {
        self.call(r, events::subscribe).await
    }
}
