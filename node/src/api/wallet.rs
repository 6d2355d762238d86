//! Node info and the on-chain wallet calls: GetInfo, NewAddress, WalletBalance, ListUnspent, SendCoins.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;
use lanes_wallet::SendRequest;

use super::{blocking, convert, opt};
use crate::{Node, NodeError};

pub async fn get_info(node: Arc<Node>, _: GetInfoRequest) -> Result<GetInfoResponse, NodeError> {
    Ok(convert::info(node.info()))
}

pub async fn new_address(node: Arc<Node>, _: NewAddressRequest) -> Result<NewAddressResponse, NodeError> {
    let address = blocking(move || node.onchain().new_address()).await?;
    Ok(NewAddressResponse { address: address.to_string() })
}

pub async fn balance(node: Arc<Node>, _: WalletBalanceRequest) -> Result<WalletBalanceResponse, NodeError> {
    let b = node.onchain().balance();
    Ok(WalletBalanceResponse { confirmed_sat: b.confirmed, unconfirmed_sat: b.unconfirmed, total_sat: b.confirmed.saturating_add(b.unconfirmed) })
}

pub async fn list_unspent(node: Arc<Node>, r: ListUnspentRequest) -> Result<ListUnspentResponse, NodeError> {
    Ok(ListUnspentResponse { utxos: node.onchain().list_unspent(r.min_confs).into_iter().map(convert::utxo).collect() })
}

pub async fn send_coins(node: Arc<Node>, r: SendCoinsRequest) -> Result<SendCoinsResponse, NodeError> {
    let send = SendRequest { address: r.address, amount_sat: r.amount_sat, send_all: r.send_all, sat_per_vbyte: opt(r.sat_per_vbyte), reserve_sat: 0 };
    let sent = blocking(move || node.onchain().send(send)).await?;
    Ok(SendCoinsResponse { txid: sent.txid.to_string(), amount_sat: sent.amount_sat, fee_sat: sent.fee_sat })
}
