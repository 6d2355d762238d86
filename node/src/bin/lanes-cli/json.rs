//! `--json`: every API message as a JSON object with the proto's field names, in the proto's order.
//!
//! Each message is listed once below with all its fields. The listing destructures the message without
//! `..`, so a field added to lanes.proto breaks the build here until it is printed too. Numbers stay numbers
//! (64-bit amounts included), enums are lower-case words without their prefix (`"succeeded"`, `"in_flight"`),
//! an unset sub-message is `null`.
use lanes_proto::v1::*;
use serde_json::{Map, Value};

pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::from(self.as_str())
    }
}

macro_rules! scalar_json {
    ($($ty:ty),*) => {
        $(impl ToJson for $ty {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        })*
    };
}
scalar_json!(bool, i32, u32, u64, f64);

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

/// An API enum's value as a word: `PAYMENT_STATUS_IN_FLIGHT` is `in_flight`.
pub trait Word {
    fn word(value: i32) -> String;
}

macro_rules! enum_word {
    ($($ty:ident => $prefix:literal),*) => {
        $(impl Word for $ty {
            fn word(value: i32) -> String {
                match $ty::try_from(value) {
                    Ok(v) => v.as_str_name().trim_start_matches($prefix).to_ascii_lowercase(),
                    Err(_) => format!("unknown ({value})"),
                }
            }
        })*
    };
}
enum_word!(PaymentStatus => "PAYMENT_STATUS_", InvoiceState => "INVOICE_STATE_", CommitmentType => "COMMITMENT_TYPE_");

/// `Message { field, enum_field: EnumType, ... }`: the message's fields in order, enum fields with their type.
macro_rules! message_json {
    ($($ty:ident { $($field:ident $(: $enum:ident)?),* $(,)? })*) => {
        $(impl ToJson for $ty {
            #[allow(unused_mut)]
            fn to_json(&self) -> Value {
                let $ty { $($field),* } = self;
                let mut map = Map::new();
                $(map.insert(stringify!($field).to_string(), message_json!(@value $field $(: $enum)?));)*
                Value::Object(map)
            }
        })*
    };
    (@value $field:ident) => { $field.to_json() };
    (@value $field:ident : $enum:ident) => { Value::from(<$enum as Word>::word(*$field)) };
}

message_json! {
    GetInfoResponse {
        node_id, network, block_height, block_hash, synced_to_chain, num_peers, num_active_channels,
        num_pending_channels, version, listen_addr, num_closing_channels, claimable_sat, routes_by_lanes,
        routes_by_ldk_fallback,
    }
    StopResponse {}
    NewAddressResponse { address }
    WalletBalanceResponse { confirmed_sat, unconfirmed_sat, total_sat }
    Utxo { outpoint, amount_sat, address, confirmations, is_change }
    ListUnspentResponse { utxos }
    SendCoinsResponse { txid, amount_sat, fee_sat }

    ConnectPeerResponse {}
    Peer { node_id, address, inbound }
    ListPeersResponse { peers }
    DisconnectPeerResponse {}

    OpenChannelResponse { channel_id, funding_txid, funding_output_index }
    Channel {
        channel_id, short_channel_id, remote_node_id, capacity_sat, local_balance_msat, remote_balance_msat,
        outbound_capacity_msat, inbound_capacity_msat, active, public, pending, initiator, funding_txid,
        funding_output_index, confirmations, confirmations_required, fee_base_msat, fee_rate_ppm, cltv_expiry_delta,
        commitment_type: CommitmentType,
    }
    ListChannelsResponse { channels }
    PendingChannelsResponse { pending_open, pending_close }
    CloseChannelResponse { closing_txid }
    ClosedChannel { channel_id, remote_node_id, capacity_sat, reason, closing_txid, claimable_sat, claimable_at_height }
    ClosedChannelsResponse { channels }
    UpdateChannelPolicyResponse { updated }

    GraphNode { node_id, alias, addresses, last_update }
    RoutingPolicy { fee_base_msat, fee_rate_ppm, cltv_expiry_delta, htlc_minimum_msat, htlc_maximum_msat, disabled }
    GraphChannel { short_channel_id, node1, node2, capacity_sat, node1_policy, node2_policy }
    DescribeGraphResponse { nodes, channels }
    GetNodeInfoResponse { node, num_channels, total_capacity_sat }

    AddInvoiceResponse { bolt11, payment_hash }
    RouteHintHop { node_id, short_channel_id, fee_base_msat, fee_rate_ppm, cltv_expiry_delta }
    RouteHint { hops }
    DecodeInvoiceResponse {
        destination, payment_hash, amount_msat, description, timestamp, expiry_secs, expired,
        min_final_cltv_expiry_delta, network, route_hints,
    }
    Invoice {
        bolt11, payment_hash, amount_msat, description, state: InvoiceState, created_at, expires_at,
        amount_received_msat, settled_at, preimage, hold,
    }
    ListInvoicesResponse { invoices }
    SettleInvoiceResponse {}
    CancelInvoiceResponse {}

    RouteHop { node_id, short_channel_id, amount_msat, fee_msat, cltv_expiry_delta }
    PaymentPath { hops }
    Payment {
        payment_id, payment_hash, destination, amount_msat, fee_msat, status: PaymentStatus, preimage,
        failure_reason, created_at, paths, bolt11,
    }
    ListPaymentsResponse { payments }
    RoutePath {
        hops, amount_msat, fee_msat, total_amount_msat, total_cltv_delta, total_time_lock, success_probability,
    }
    QueryRoutesResponse { paths, amount_msat, total_fees_msat, total_amount_msat, total_time_lock, success_probability }
    QueryRoutesResult { route, error_code, error }
    BatchQueryRoutesResponse { results }

    Forward { timestamp, channel_in, channel_out, amount_in_msat, amount_out_msat, fee_msat }
    ForwardingHistoryResponse { forwards, total_fee_msat }

    NodeEvent { kind, timestamp, node_id, channel_id, payment_hash, amount_msat, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_the_proto_order_and_names() {
        let b = WalletBalanceResponse { confirmed_sat: 3, unconfirmed_sat: 2, total_sat: 5 };
        assert_eq!(serde_json::to_string(&b.to_json()).unwrap(), r#"{"confirmed_sat":3,"unconfirmed_sat":2,"total_sat":5}"#);
    }

    #[test]
    fn enums_are_words_and_nested_messages_nest() {
        let p = Payment {
            status: PaymentStatus::InFlight as i32,
            paths: vec![PaymentPath { hops: vec![RouteHop { amount_msat: u64::MAX, ..Default::default() }] }],
            ..Default::default()
        };
        let j = p.to_json();
        assert_eq!(j["status"], "in_flight");
        assert_eq!(j["paths"][0]["hops"][0]["amount_msat"], u64::MAX, "64-bit amounts stay exact numbers");
        assert_eq!(Invoice { state: InvoiceState::Settled as i32, ..Default::default() }.to_json()["state"], "settled");
        assert_eq!(PaymentStatus::word(42), "unknown (42)");
        assert_eq!(GetNodeInfoResponse::default().to_json()["node"], Value::Null);
        assert_eq!(ConnectPeerResponse {}.to_json(), serde_json::json!({}));
    }
}
