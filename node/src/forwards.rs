//! Forwarding history of the node as a routing node.
//!
//! Owns: one record per HTLC we forwarded and were paid for. Must never: decide whether to forward
//! (LDK does, under the channel policy set through `channels`).
use std::sync::atomic::{AtomicU32, Ordering};

use lightning::ln::types::ChannelId;
use serde::{Deserialize, Serialize};

use crate::store::Records;
use lanes_common::now_secs;
use crate::NodeError;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardRecord {
    pub timestamp: u64,
    pub channel_in: String,
    pub channel_out: String,
    pub amount_in_msat: u64,
    pub amount_out_msat: u64,
    pub fee_msat: u64,
}

impl crate::record::Record for ForwardRecord {
    const KIND: &'static str = "forward";
}

pub struct Forwards {
    records: Records<ForwardRecord>,
    seq: AtomicU32,
}

impl Forwards {
    pub fn open(store: &lanes_store::DynStore) -> Result<Self, NodeError> {
        Ok(Self { records: Records::open(store, lanes_store::layout::FORWARDS)?, seq: AtomicU32::new(0) })
    }

    pub fn record(&self, from: Option<ChannelId>, to: Option<ChannelId>, out_msat: u64, fee_msat: u64) -> Result<(), NodeError> {
        let ts = now_secs();
        // Key: time, then a counter, so records sort by time and never collide.
        let mut key = ts.to_be_bytes().to_vec();
        key.extend_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        self.records.put_replayed(
            &key,
            &ForwardRecord {
                timestamp: ts,
                channel_in: from.map(|c| c.to_string()).unwrap_or_default(),
                channel_out: to.map(|c| c.to_string()).unwrap_or_default(),
                amount_in_msat: out_msat + fee_msat,
                amount_out_msat: out_msat,
                fee_msat,
            },
        )
    }

    pub fn list(&self) -> Result<Vec<ForwardRecord>, NodeError> {
        self.records.all()
    }
}
