//! SubscribeEvents: the node's event bus as a stream.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use tokio_stream::StreamExt;

use super::convert;
use crate::{Node, NodeError};

pub async fn subscribe(node: Arc<Node>, _: lanes_proto::v1::SubscribeEventsRequest) -> Result<<super::Api as lanes_proto::Lanes>::SubscribeEventsStream, NodeError> {
    // A lagging subscriber skips what it missed rather than ending the stream.
    let stream = tokio_stream::wrappers::BroadcastStream::new(node.events().subscribe()).filter_map(|e| e.ok().map(|e| Ok(convert::event(e))));
    Ok(Box::pin(stream))
}
