//! Route calls: QueryRoutes, BatchQueryRoutes.
//!
//! Owns: parsing this group's requests and converting the answers. Must never: hold policy or state, or reach
//! past the services into LDK, BDK or the store (policy lives in the services).
use std::sync::Arc;

use lanes_proto::v1::*;

use super::{blocking, convert, error};
use crate::peers::parse_node_id;
use crate::routes::RouteQuery;
use crate::{Node, NodeError};

/// Most queries one BatchQueryRoutes may carry.
const MAX_BATCH_QUERIES: usize = 10_000;

fn checked(node: &Node, r: QueryRoutesRequest) -> Result<RouteQuery, NodeError> {
    let dest = parse_node_id(&r.node_id)?;
    node.routes().query(dest, r.amount_msat, r.amount_sat, r.final_cltv_delta, r.fee_limit_msat, r.max_parts)
}

pub async fn query(node: Arc<Node>, r: QueryRoutesRequest) -> Result<QueryRoutesResponse, NodeError> {
    let q = checked(&node, r)?;
    let found = blocking(move || Ok(node.routes().find(std::slice::from_ref(&q)).pop())).await?;
    Ok(convert::route(found.unwrap_or_else(|| Err(NodeError::Internal("the router gave no answer".into())))?))
}

pub async fn batch_query(node: Arc<Node>, r: BatchQueryRoutesRequest) -> Result<BatchQueryRoutesResponse, NodeError> {
    if r.queries.len() > MAX_BATCH_QUERIES {
        return Err(NodeError::Invalid(format!("{} queries: at most {MAX_BATCH_QUERIES} in one batch", r.queries.len())));
    }
    // Each query is checked on its own: a malformed one gets its error, the others their routes.
    let checked: Vec<Result<RouteQuery, NodeError>> = r.queries.into_iter().map(|q| checked(&node, q)).collect();
    let results = blocking(move || {
        let valid: Vec<RouteQuery> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
        let mut found = node.routes().find(&valid).into_iter();
        Ok(checked
            .into_iter()
            .map(|c| {
                let answer = c.and_then(|_| found.next().unwrap_or_else(|| Err(NodeError::Internal("the router gave no answer".into()))));
                match answer {
                    Ok(route) => QueryRoutesResult { route: Some(convert::route(route)), ..Default::default() },
                    Err(e) => {
                        let s = error::status(e);
                        QueryRoutesResult { route: None, error_code: s.code() as i32, error: s.message().to_string() }
                    }
                }
            })
            .collect())
    })
    .await?;
    Ok(BatchQueryRoutesResponse { results })
}
