//! The Lightning side of a [`Node`], in the words a test tells its story with:
//!
//! `alice.connect(&bob)`, `alice.open_channel(&bob, sat)`, `alice.pay_invoice(&bolt11)`... (the crate docs walk
//! through a whole story).
//!
//! Owns thin calls over the gRPC API and waits on what the node reports (a channel active, the graph
//! complete, a funding transaction broadcast). Calls that a story expects to succeed panic, with the node's
//! log tail, when the node refuses; payments return the status instead, since refusals are part of what tests
//! check. It must never decide anything about channels or payments itself: all it knows comes from the
//! node's answers and bitcoind's mempool.
use bitcoin::hashes::{sha256, Hash};
use bitcoin::Txid;
use lanes_proto::v1::{
    AddInvoiceRequest, AddInvoiceResponse, Channel, ClosedChannel, ClosedChannelsRequest, ConnectPeerRequest, DescribeGraphRequest, DescribeGraphResponse, ForwardingHistoryRequest, ForwardingHistoryResponse,
    GetChanInfoRequest, Invoice, InvoiceState, ListChannelsRequest, LookupInvoiceRequest, OpenChannelRequest, PayInvoiceRequest,
    Payment, SendKeysendRequest, UpdateChannelPolicyRequest,
};

use crate::{Net, Node};

impl Node {
    /// Connects to `peer` (ConnectPeer, persistent: lanesd reconnects after restarts); panics if refused.
    pub async fn connect(&self, peer: &Node) {
        let req = ConnectPeerRequest { address: peer.peer_address(), persist: true };
        let res = self.client().connect_peer(req).await;
        self.ok(&format!("ConnectPeer to {}", peer.name()), res);
    }

    /// Opens a public channel of `sat` to `peer` (already connected), funded by this node, and waits until
    /// the funding transaction is in bitcoind's mempool. Returns the channel id.
    pub async fn open_channel(&self, peer: &Node, sat: u64) -> String {
        self.open_channel_with(peer, OpenChannelRequest { local_funding_sat: sat, ..Default::default() }).await
    }

    /// [`open_channel`](Node::open_channel) with the whole request (push, private, fee rate); its `node_id`
    /// is replaced by `peer`'s.
    ///
    /// lanesd answers once the funding transaction is built, and LDK broadcasts it only after the peer has
    /// signed: waiting for the mempool here is what makes "open, then mine" confirm the channel.
    pub async fn open_channel_with(&self, peer: &Node, req: OpenChannelRequest) -> String {
        let req = OpenChannelRequest { node_id: peer.node_id(), ..req };
        let res = self.client().open_channel(req).await;
        let opened = self.ok(&format!("OpenChannel to {}", peer.name()), res);
        let txid: Txid = opened
            .funding_txid
            .parse()
            .unwrap_or_else(|e| panic!("OpenChannel on {} returned funding txid {:?}: {e}", self.name(), opened.funding_txid));
        let net = self.net();
        self.wait_until(format!("the funding transaction {txid} of channel {} in the mempool", opened.channel_id), || async {
            let mempool = net.mempool().await;
            match mempool.contains(&txid) {
                true => Ok(()),
                false => Err(format!("{} other transactions in the mempool", mempool.len())),
            }
        })
        .await;
        opened.channel_id
    }

    /// ListChannels: every channel that is not closed, pending ones included.
    pub async fn channels(&self) -> Vec<Channel> {
        let res = self.client().list_channels(ListChannelsRequest::default()).await;
        self.ok("ListChannels", res).channels
    }

    /// The channel with this id, if ListChannels has it.
    pub async fn channel(&self, channel_id: &str) -> Option<Channel> {
        self.channels().await.into_iter().find(|c| c.channel_id == channel_id)
    }

    /// ClosedChannels: every closed channel, with what is still being claimed on-chain.
    pub async fn closed_channels(&self) -> Vec<ClosedChannel> {
        let res = self.client().closed_channels(ClosedChannelsRequest {}).await;
        self.ok("ClosedChannels", res).channels
    }

    /// Waits until ClosedChannels lists `channel_id` (each node records a close in its handler of LDK's
    /// ChannelClosed event, which may run a moment after the close was asked or seen) and returns it.
    pub async fn wait_closed(&self, channel_id: &str) -> ClosedChannel {
        self.wait_until(format!("{}: channel {channel_id} in ClosedChannels", self.name()), || async {
            self.closed_channels().await.into_iter().find(|c| c.channel_id == channel_id)
        })
        .await
    }

    /// Our side of a channel, in msat (0 when the channel is not listed).
    pub async fn local_msat(&self, channel_id: &str) -> u64 {
        self.channel(channel_id).await.map(|c| c.local_balance_msat).unwrap_or(0)
    }

    /// Waits until our side of a channel shows exactly `msat`: a payment's outcome reaches the payer before
    /// the last commitment update settles the balance on both sides.
    pub async fn wait_local_msat(&self, channel_id: &str, msat: u64) {
        self.wait_until(format!("{}: local balance {msat} msat on {channel_id}", self.name()), || async {
            let seen = self.local_msat(channel_id).await;
            (seen == msat).then_some(()).ok_or(format!("{seen} msat"))
        })
        .await
    }

    /// Waits until the channel is active (usable for payments) and returns it.
    pub async fn wait_channel_active(&self, channel_id: &str) -> Channel {
        self.wait_until(format!("channel {channel_id} to be active"), || async {
            match self.channel(channel_id).await {
                Some(c) if c.active => Ok(c),
                Some(c) => Err(format!(
                    "active=false pending={} confirmations={}/{}",
                    c.pending, c.confirmations, c.confirmations_required
                )),
                None => Err("not in ListChannels".to_string()),
            }
        })
        .await
    }

    /// Waits until DescribeGraph has at least `n` channels with the routing policies of both directions,
    /// and returns the graph. (A side's update that overtakes the channel's announcement is kept by
    /// lanesd until the announcement is in: see lanes_channel::gossip. So both arrive.)
    pub async fn wait_graph_channels(&self, n: usize) -> DescribeGraphResponse {
        self.wait_until(format!("{n} channels with both policies in the graph"), || async {
            let res = self.client().describe_graph(DescribeGraphRequest {}).await;
            let graph = self.ok("DescribeGraph", res);
            let known = graph.channels.iter().filter(|c| c.node1_policy.is_some() && c.node2_policy.is_some()).count();
            match known >= n {
                true => Ok(graph),
                false => Err(format!("{known} of {} channels with both policies", graph.channels.len())),
            }
        })
        .await
    }

    /// AddInvoice for `amount_msat` (0: any amount) with `memo` as its description; panics if refused.
    pub async fn add_invoice(&self, amount_msat: u64, memo: &str) -> AddInvoiceResponse {
        let req = AddInvoiceRequest { amount_msat, description: memo.into(), ..Default::default() };
        let res = self.client().add_invoice(req).await;
        self.ok("AddInvoice", res)
    }

    /// PayInvoice with lanesd's defaults (it waits up to 60 s for the outcome). `Ok` is the payment whatever
    /// its status (check it); `Err` is a refusal before anything was sent.
    pub async fn pay_invoice(&self, bolt11: &str) -> Result<Payment, tonic::Status> {
        let req = PayInvoiceRequest { bolt11: bolt11.into(), ..Default::default() };
        self.client().pay_invoice(req).await.map(tonic::Response::into_inner)
    }

    /// A payment of `payer`'s to a hold invoice of this node, held here (ACCEPTED): its HTLCs stay in flight
    /// until the test settles it with `preimage` (SettleInvoice) or cancels it. `payer_call` is the payer's
    /// PayInvoice, still waiting (up to 600 s) for the outcome; it breaks if the payer restarts meanwhile.
    pub async fn held_payment_from(&self, payer: &Node, amount_msat: u64, preimage: [u8; 32]) -> HeldPayment {
        let payment_hash = hex(&sha256::Hash::hash(&preimage).to_byte_array());
        let req = AddInvoiceRequest { amount_msat, description: "held".into(), payment_hash: payment_hash.clone(), ..Default::default() };
        let inv = self.ok("AddInvoice (hold)", self.client().add_invoice(req).await);
        let payer = payer.clone();
        let payer_call = tokio::spawn(async move {
            let req = PayInvoiceRequest { bolt11: inv.bolt11, timeout_secs: 600, ..Default::default() };
            payer.client().pay_invoice(req).await.map(tonic::Response::into_inner)
        });
        // Held: the invoice is ACCEPTED.
        self.wait_invoice_state(&payment_hash, InvoiceState::Accepted).await;
        HeldPayment { preimage: hex(&preimage), payment_hash, payer_call }
    }

    /// Waits for the invoice with `payment_hash` to be in `state` (set by the node's handler of LDK's
    /// events, which may run a moment after the payer's call returned) and returns it.
    pub async fn wait_invoice_state(&self, payment_hash: &str, state: InvoiceState) -> Invoice {
        self.wait_until(format!("invoice {payment_hash} to be {state:?}"), || async {
            let req = LookupInvoiceRequest { payment_hash: payment_hash.to_string() };
            let inv = self.ok("LookupInvoice", self.client().lookup_invoice(req).await);
            match inv.state == state as i32 {
                true => Ok(inv),
                false => Err(format!("state {:?}", InvoiceState::try_from(inv.state))),
            }
        })
        .await
    }

    /// Waits for ForwardingHistory to total `fee_msat` in fees (each forward is recorded by the node's handler
    /// of LDK's PaymentForwarded event, which may run a moment after the payer's call returned) and returns it.
    pub async fn wait_forwarding_fees(&self, fee_msat: u64) -> ForwardingHistoryResponse {
        self.wait_until(format!("forwards totalling {fee_msat} msat in fees"), || async {
            let fwd = self.ok("ForwardingHistory", self.client().forwarding_history(ForwardingHistoryRequest {}).await);
            match fwd.total_fee_msat == fee_msat {
                true => Ok(fwd),
                false => Err(format!("{fwd:?}")),
            }
        })
        .await
    }

    /// The paths a payment took, as ListPayments shows them once LDK reported them all (shortly after the
    /// payment succeeded: PayInvoice and SendKeysend return at success, before them): their last hops
    /// deliver the payment's whole amount.
    pub async fn payment_paths(&self, payment_hash: &str) -> Vec<lanes_proto::v1::PaymentPath> {
        self.wait_until(format!("the paths of payment {payment_hash} in ListPayments"), || async {
            let listed = self.client().list_payments(lanes_proto::v1::ListPaymentsRequest {}).await.map_err(|s| format!("ListPayments: {s}"))?;
            match listed.into_inner().payments.into_iter().find(|p| p.payment_hash == payment_hash) {
                Some(p) if !p.paths.is_empty() && p.paths.iter().filter_map(|path| path.hops.last()).map(|h| h.amount_msat).sum::<u64>() >= p.amount_msat => Ok(p.paths),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// SendKeysend of `amount_msat` to `dest`, with lanesd's default timeout; as for
    /// [`pay_invoice`](Node::pay_invoice), `Ok` whatever the payment's status.
    pub async fn keysend(&self, dest: &Node, amount_msat: u64) -> Result<Payment, tonic::Status> {
        let req = SendKeysendRequest { node_id: dest.node_id(), amount_msat, ..Default::default() };
        self.client().send_keysend(req).await.map(tonic::Response::into_inner)
    }

    /// SpliceIn of `amount_sat` wallet coins into `channel_id` at 2 sat/vB: `Ok` is the new funding output
    /// ("txid", index) once the peer agreed; `Err` the refusal.
    pub async fn splice_in(&self, channel_id: &str, amount_sat: u64) -> Result<(Txid, u32), tonic::Status> {
        let req = lanes_proto::v1::SpliceInRequest { channel_id: channel_id.into(), amount_sat, sat_per_vbyte: "2".into() };
        let r = self.client().splice_in(req).await?.into_inner();
        Ok((r.funding_txid.parse().expect("a txid"), r.funding_output_index))
    }

    /// SpliceOut of `amount_sat` from `channel_id` to `address` at 2 sat/vB (as [`Node::splice_in`]).
    pub async fn splice_out(&self, channel_id: &str, amount_sat: u64, address: &str) -> Result<(Txid, u32), tonic::Status> {
        let req = lanes_proto::v1::SpliceOutRequest { channel_id: channel_id.into(), amount_sat, address: address.into(), sat_per_vbyte: "2".into() };
        let r = self.client().splice_out(req).await?.into_inner();
        Ok((r.funding_txid.parse().expect("a txid"), r.funding_output_index))
    }

    /// Sets this node's forwarding fees on one of its channels (UpdateChannelPolicy; the CLTV delta is
    /// kept); panics if refused or if it did not update exactly that channel.
    pub async fn set_channel_fee(&self, channel_id: &str, base_msat: u32, ppm: u32) {
        let req = UpdateChannelPolicyRequest { channel_id: channel_id.into(), fee_base_msat: base_msat, fee_rate_ppm: ppm, cltv_expiry_delta: 0 };
        let res = self.client().update_channel_policy(req).await;
        let updated = self.ok(&format!("UpdateChannelPolicy of {channel_id}"), res).updated;
        assert_eq!(updated, 1, "{}: UpdateChannelPolicy of {channel_id} updated {updated} channels", self.name());
    }

    /// Waits until this node's graph has `owner`'s policy on channel `scid` with these fees (gossip
    /// arrived).
    pub async fn wait_graph_fee(&self, owner: &Node, scid: &str, base_msat: u32, ppm: u32) {
        let owner_id = owner.node_id();
        self.wait_until(format!("{}'s fee {base_msat} msat + {ppm} ppm on {scid} in the graph", owner.name()), || async {
            let res = self.client().get_chan_info(GetChanInfoRequest { short_channel_id: scid.into() }).await;
            let c = self.ok("GetChanInfo", res);
            let policy = if c.node1 == owner_id { c.node1_policy } else { c.node2_policy };
            match policy {
                Some(p) if p.fee_base_msat == base_msat && p.fee_rate_ppm == ppm => Ok(()),
                seen => Err(format!("{seen:?}")),
            }
        })
        .await
    }
}

/// A payment held by a hold invoice (see [`Node::held_payment_from`]); ids in hex, as the API takes them.
pub struct HeldPayment {
    pub preimage: String,
    pub payment_hash: String,
    pub payer_call: tokio::task::JoinHandle<Result<Payment, tonic::Status>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two nodes and a channel between them, as [`Net::pair`] sets them up.
pub struct Pair {
    pub alice: Node,
    pub bob: Node,
    /// The channel alice opened to bob.
    pub channel: String,
}

/// Three nodes in a line, alice — bob — carol, as [`Net::line`] sets them up.
pub struct Line {
    pub alice: Node,
    pub bob: Node,
    pub carol: Node,
    /// The channel alice opened to bob, and the one bob opened to carol.
    pub alice_bob: String,
    pub bob_carol: String,
}

impl Net {
    /// alice and bob; alice's wallet funded with `wallet_sat` (bob has nothing on-chain); a public channel
    /// of `capacity` sat from alice to bob, confirmed (6 blocks) and active on both ends.
    pub async fn pair(&self, wallet_sat: u64, capacity: u64) -> Pair {
        let (alice, bob) = (self.node("alice").await, self.node("bob").await);
        let channel = self.fund_and_open(&alice, &bob, wallet_sat, capacity).await;
        Pair { alice, bob, channel }
    }

    /// `funder`'s wallet funded with `wallet_sat`, connected to `peer`, a public channel of `capacity` sat
    /// opened, confirmed (6 blocks) and active on both ends: [`Net::pair`] for nodes a story started itself
    /// (with options of their own). Returns the channel id.
    pub async fn fund_and_open(&self, funder: &Node, peer: &Node, wallet_sat: u64, capacity: u64) -> String {
        funder.fund(wallet_sat).await;
        funder.connect(peer).await;
        let channel = funder.open_channel(peer, capacity).await;
        self.mine(6).await;
        funder.wait_channel_active(&channel).await;
        peer.wait_channel_active(&channel).await;
        channel
    }

    /// alice — bob — carol; alice's and bob's wallets funded with `wallet_sat` each (carol has nothing
    /// on-chain); public channels of `capacity` sat from alice to bob and from bob to carol, confirmed,
    /// active on both ends, and both in alice's graph, so alice can pay carol.
    pub async fn line(&self, wallet_sat: u64, capacity: u64) -> Line {
        let (alice, bob, carol) = (self.node("alice").await, self.node("bob").await, self.node("carol").await);
        alice.fund(wallet_sat).await;
        bob.fund(wallet_sat).await;
        alice.connect(&bob).await;
        bob.connect(&carol).await;
        let alice_bob = alice.open_channel(&bob, capacity).await;
        let bob_carol = bob.open_channel(&carol, capacity).await;
        self.mine(6).await;
        for (n, id) in [(&alice, &alice_bob), (&bob, &alice_bob), (&bob, &bob_carol), (&carol, &bob_carol)] {
            n.wait_channel_active(id).await;
        }
        alice.wait_graph_channels(2).await;
        Line { alice, bob, carol, alice_bob, bob_carol }
    }
}
