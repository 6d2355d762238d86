//! The gRPC control API: turns requests into node calls and node errors into statuses.
//!
//! Owns: the `lanes.v1.Lanes` service, request checking that needs no node state, and the server
//! with reflection. Must never: hold protocol or wallet logic, or panic on any request: every bad
//! input becomes a status with a message, before anything changes.
use std::net::SocketAddr;
use std::sync::Arc;

use lanes_proto::v1::*;
use lanes_proto::{Lanes, LanesServer};
use lanes_wallet::SendRequest;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::{Node, NodeError};

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
            .add_service(LanesServer::new(self))
            .add_service(reflection)
            .serve_with_shutdown(addr, shutdown)
            .await
            .map_err(|e| NodeError::Internal(format!("gRPC server: {e}")))
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
        };
        let sent = self.blocking(move |n| Ok(n.wallet().send(&send)?)).await?;
        Ok(Response::new(SendCoinsResponse { txid: sent.txid.to_string(), amount_sat: sent.amount_sat, fee_sat: sent.fee_sat }))
    }
}
