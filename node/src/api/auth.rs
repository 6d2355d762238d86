//! Who may call what: one table of the API's methods and the permission each needs.
//!
//! Today the API has no caller identity (it listens on 127.0.0.1 only), so every call is allowed; this is
//! the slot where authentication (TLS client identity, macaroons) plugs in: [`authorize`] is called
//! before every handler with the method's name and the request's metadata. Owns: the table. Must never:
//! let a method through that the table does not list.
use tonic::metadata::MetadataMap;
use tonic::Status;

/// What a method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Reads state: balances, lists, graph, routes.
    Read,
    /// Creates invoices and addresses: receives, never spends.
    Receive,
    /// Moves money or changes channels and peers.
    Write,
    /// Stops the node.
    Admin,
}

/// Every method of `lanes.v1.Lanes` and the permission it needs.
pub const PERMISSIONS: &[(&str, Permission)] = &[
    ("GetInfo", Permission::Read),
    ("Stop", Permission::Admin),
    ("NewAddress", Permission::Receive),
    ("WalletBalance", Permission::Read),
    ("ListUnspent", Permission::Read),
    ("SendCoins", Permission::Write),
    ("ConnectPeer", Permission::Write),
    ("ListPeers", Permission::Read),
    ("DisconnectPeer", Permission::Write),
    ("OpenChannel", Permission::Write),
    ("ListChannels", Permission::Read),
    ("PendingChannels", Permission::Read),
    ("CloseChannel", Permission::Write),
    ("ClosedChannels", Permission::Read),
    ("UpdateChannelPolicy", Permission::Write),
    ("DescribeGraph", Permission::Read),
    ("GetNodeInfo", Permission::Read),
    ("GetChanInfo", Permission::Read),
    ("AddInvoice", Permission::Receive),
    ("DecodeInvoice", Permission::Read),
    ("ListInvoices", Permission::Read),
    ("LookupInvoice", Permission::Read),
    ("SettleInvoice", Permission::Write),
    ("CancelInvoice", Permission::Write),
    ("PayInvoice", Permission::Write),
    ("SendKeysend", Permission::Write),
    ("ListPayments", Permission::Read),
    ("QueryRoutes", Permission::Read),
    ("BatchQueryRoutes", Permission::Read),
    ("ForwardingHistory", Permission::Read),
    ("SubscribeEvents", Permission::Read),
];

/// The permission `method` needs, if the table lists it.
pub fn permission(method: &str) -> Option<Permission> {
    PERMISSIONS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// Checks that the caller may call `method`. Without authentication every listed method is allowed.
pub fn authorize(method: &str, _metadata: &MetadataMap) -> Result<(), Status> {
    match permission(method) {
        Some(_) => Ok(()),
        None => Err(Status::permission_denied(format!("{method} is not in the API's permission table"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method the service offers is in the table, once: none can be added without a permission.
    #[test]
    fn every_method_has_one_permission() {
        use prost::Message;
        let fds = prost_types::FileDescriptorSet::decode(lanes_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service = fds.file.iter().flat_map(|f| f.service.iter()).find(|s| s.name() == "Lanes").unwrap();
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        for m in &methods {
            assert_eq!(PERMISSIONS.iter().filter(|(n, _)| n == m).count(), 1, "{m}");
        }
        assert_eq!(PERMISSIONS.len(), methods.len(), "the table lists methods the service does not have");
        assert_eq!(permission("Stop"), Some(Permission::Admin));
        assert!(authorize("Nope", &MetadataMap::new()).is_err());
    }
}
