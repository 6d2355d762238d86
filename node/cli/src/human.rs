//! What each command prints: the JSON form, and the human form as aligned `key: value` lines.
//!
//! Human output says units (`1000 sat`, `50000000 msat`), enums as words (`succeeded`, `in_flight`), times
//! as UTC dates, and leaves out what is empty. Records of a list are separated by a blank line and the list
//! ends with a count. This module only formats; it never calls lanesd and never decides anything about money
//! beyond reading a payment's status to choose the exit code.
//!
//! Owns: the output formats. Must never: change what a field means between the human and the JSON form.
use lanes_proto::text::Word;
use lanes_proto::v1::*;
use serde_json::Value;

/// One command's result: the JSON form, the human form, and whether what it reports is a success.
pub struct Output {
    pub json: Value,
    pub human: Vec<Line>,
    pub verdict: Verdict,
}

/// One line of human output.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// `key: value`, values aligned across the whole output.
    Pair(String, String),
    /// A value continuing the pair above it, aligned with its value.
    More(String),
    /// A line on its own.
    Text(String),
}

/// How a call that went through ended, for the exit code.
pub enum Verdict {
    Done,
    /// It reports a failure (a payment that failed): exit code 1, the message on stderr.
    Failed(String),
    /// No outcome yet (a payment still in flight at the timeout): exit code 2, the message on stderr.
    Pending(String),
}

impl Output {
    fn new(json: Value, lines: Lines) -> Output {
        Output { json, human: lines.0, verdict: Verdict::Done }
    }
}

/// Human lines being built.
#[derive(Default)]
struct Lines(Vec<Line>);

impl Lines {
    fn kv(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.0.push(Line::Pair(key.to_string(), value.into()));
        self
    }

    fn more(&mut self, value: impl Into<String>) -> &mut Self {
        self.0.push(Line::More(value.into()));
        self
    }

    /// A pair only when the value is not empty.
    fn kv_some(&mut self, key: &str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.kv(key, value);
        }
        self
    }

    fn text(&mut self, line: impl Into<String>) -> &mut Self {
        self.0.push(Line::Text(line.into()));
        self
    }

    fn blank(&mut self) -> &mut Self {
        self.text("")
    }
}

/// A message's JSON form: the proto's field names in the proto's order, numbers as numbers (64-bit amounts
/// included), enums as words (`"in_flight"`), an unset sub-message `null`. Derived in lanes-proto (feature
/// `serde`), so every field of every message is in it.
pub fn json(message: &impl serde::Serialize) -> Value {
    serde_json::to_value(message).expect("API messages always serialize")
}

/// Prints the JSON form (pretty) or the human form.
pub fn print(out: &Output, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out.json).expect("JSON values always serialize"));
        return;
    }
    let width = out.human.iter().filter_map(|l| if let Line::Pair(k, _) = l { Some(k.len()) } else { None }).max().unwrap_or(0) + 1;
    for line in &out.human {
        match line {
            Line::Pair(key, value) => println!("{:<width$} {value}", format!("{key}:")),
            Line::More(value) => println!("{:<width$} {value}", ""),
            Line::Text(text) => println!("{text}"),
        }
    }
}

// ---- units, times, counts ----

pub fn sat(amount: u64) -> String {
    format!("{amount} sat")
}

/// Millisatoshis, with the satoshi value when it is whole: `50000000 msat (50000 sat)`.
pub fn msat(amount: u64) -> String {
    match amount {
        0 => "0 msat".into(),
        a if a % 1000 == 0 => format!("{a} msat ({} sat)", a / 1000),
        a => format!("{a} msat"),
    }
}

/// Seconds since the Unix epoch as a UTC date and time; `-` for 0 (not set).
pub use lanes_proto::text::utc;

fn count(n: usize, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

fn fees(base_msat: u32, rate_ppm: u32, cltv_delta: u32) -> String {
    format!("{base_msat} msat + {rate_ppm} ppm, cltv delta {cltv_delta}")
}

// ---- node and on-chain wallet ----

pub fn getinfo(r: GetInfoResponse) -> Output {
    let mut l = Lines::default();
    if r.role == "standby" {
        l.kv("role", format!("standby: {} is active (lease epoch {})", r.lease_holder, r.lease_epoch));
        return Output::new(json(&r), l);
    }
    l.kv("node id", &r.node_id)
        .kv("network", &r.network)
        .kv("block height", r.block_height.to_string())
        .kv("block hash", &r.block_hash)
        .kv("synced to chain", r.synced_to_chain.to_string())
        .kv("peers", r.num_peers.to_string())
        .kv("active channels", r.num_active_channels.to_string())
        .kv("pending channels", r.num_pending_channels.to_string())
        .kv("closing channels", format!("{}, {} still to claim", r.num_closing_channels, sat(r.claimable_sat)))
        .kv("listening on", &r.listen_addr)
        .kv("payment routes", format!("{} by lanes' router, {} by LDK's (fallback)", r.routes_by_lanes, r.routes_by_ldk_fallback))
        .kv("version", &r.version);
    if r.lease_epoch > 0 {
        l.kv("role", format!("{} (lease epoch {})", r.role, r.lease_epoch));
    }
    Output::new(json(&r), l)
}

pub fn newaddress(r: NewAddressResponse) -> Output {
    let mut l = Lines::default();
    l.kv("address", &r.address);
    Output::new(json(&r), l)
}

pub fn walletbalance(r: WalletBalanceResponse) -> Output {
    let mut l = Lines::default();
    l.kv("confirmed", sat(r.confirmed_sat)).kv("unconfirmed", sat(r.unconfirmed_sat)).kv("total", sat(r.total_sat));
    Output::new(json(&r), l)
}

pub fn listunspent(r: ListUnspentResponse) -> Output {
    let mut l = Lines::default();
    for u in &r.utxos {
        let change = if u.is_change { " (change)" } else { "" };
        l.kv("outpoint", &u.outpoint)
            .kv("amount", sat(u.amount_sat))
            .kv("address", format!("{}{change}", u.address))
            .kv("confirmations", u.confirmations.to_string())
            .blank();
    }
    let total: u64 = r.utxos.iter().map(|u| u.amount_sat).sum();
    l.text(format!("{} unspent, {} in total", count(r.utxos.len(), "output"), sat(total)));
    Output::new(json(&r), l)
}

pub fn sendcoins(r: SendCoinsResponse) -> Output {
    let mut l = Lines::default();
    l.kv("txid", &r.txid).kv("amount", sat(r.amount_sat)).kv("fee", sat(r.fee_sat));
    Output::new(json(&r), l)
}

/// For calls whose answer is empty: the JSON is `{}`, the text says what happened.
pub fn done(json: Value, key: &str, value: impl Into<String>) -> Output {
    let mut l = Lines::default();
    l.kv(key, value);
    Output::new(json, l)
}

// ---- peers ----

pub fn listpeers(r: ListPeersResponse) -> Output {
    let mut l = Lines::default();
    for p in &r.peers {
        let direction = if p.inbound { "inbound" } else { "outbound" };
        l.text(format!("{}@{} ({direction})", p.node_id, p.address));
    }
    l.text(count(r.peers.len(), "peer"));
    Output::new(json(&r), l)
}

// ---- channels ----

pub fn batchopenchannel(r: BatchOpenChannelResponse) -> Output {
    let mut l = Lines::default();
    l.kv("funding txid", &r.funding_txid);
    for c in &r.channels {
        l.kv("channel id", format!("{} (output {})", c.channel_id, c.funding_output_index));
    }
    l.text("One transaction funds them all; the channels are usable once it confirms (see pendingchannels).");
    Output::new(json(&r), l)
}

pub fn openchannel(r: OpenChannelResponse) -> Output {
    let mut l = Lines::default();
    l.kv("channel id", &r.channel_id)
        .kv("funding", format!("{}:{}", r.funding_txid, r.funding_output_index))
        .text("The channel is usable once its funding transaction confirms (see pendingchannels).");
    Output::new(json(&r), l)
}

fn channel_state(c: &Channel) -> String {
    match (c.pending, c.active) {
        (true, _) => format!("pending ({} of {} confirmations)", c.confirmations, c.confirmations_required),
        (false, true) => "active".into(),
        (false, false) => "inactive".into(),
    }
}

fn channel_lines(l: &mut Lines, c: &Channel) {
    let scid = if c.short_channel_id.is_empty() { "none yet" } else { &c.short_channel_id };
    l.kv("channel id", &c.channel_id)
        .kv("short channel id", scid)
        .kv("peer", &c.remote_node_id)
        .kv("state", channel_state(c))
        .kv("capacity", sat(c.capacity_sat))
        .kv("local balance", msat(c.local_balance_msat))
        .kv("remote balance", msat(c.remote_balance_msat))
        .kv("can send", msat(c.outbound_capacity_msat))
        .kv("can receive", msat(c.inbound_capacity_msat))
        .kv("opened by", if c.initiator { "us" } else { "the peer" })
        .kv("announced", if c.public { "yes (public)" } else { "no (private)" })
        .kv("commitment", CommitmentType::word(c.commitment_type));
    if !c.funding_txid.is_empty() {
        l.kv("funding", format!("{}:{}", c.funding_txid, c.funding_output_index));
    }
    if c.splice_pending {
        let onto = if c.splice_funding_outpoint.is_empty() { "being agreed with the peer".to_string() } else { format!("onto {}", c.splice_funding_outpoint) };
        l.kv("splice", format!("{:+} sat, {onto}", c.splice_delta_sat));
    }
    l.kv("our fees", fees(c.fee_base_msat, c.fee_rate_ppm, c.cltv_expiry_delta));
}

pub fn listchannels(r: ListChannelsResponse) -> Output {
    let mut l = Lines::default();
    for c in &r.channels {
        channel_lines(&mut l, c);
        l.blank();
    }
    let active = r.channels.iter().filter(|c| c.active).count();
    let pending = r.channels.iter().filter(|c| c.pending).count();
    l.text(format!("{} ({active} active, {pending} pending)", count(r.channels.len(), "channel")));
    Output::new(json(&r), l)
}

pub fn closechannel(r: CloseChannelResponse, channel_id: &str, force: bool) -> Output {
    let mut l = Lines::default();
    let how = if force { "force-closing: our commitment is broadcast" } else { "closing cooperatively" };
    l.kv("channel id", channel_id).kv("state", how).kv_some("closing txid", &r.closing_txid).text("pendingchannels shows the funds on their way back.");
    Output::new(json(&r), l)
}

fn closed_lines(l: &mut Lines, c: &ClosedChannel) {
    l.kv("channel id", &c.channel_id)
        .kv("peer", &c.remote_node_id)
        .kv("capacity", sat(c.capacity_sat))
        .kv("reason", &c.reason)
        .kv_some("closing txid", &c.closing_txid);
    let left = match (c.claimable_sat, c.claimable_at_height) {
        (0, _) => "nothing".to_string(),
        (sat_left, 0) => sat(sat_left),
        (sat_left, height) => format!("{}, claimable from height {height}", sat(sat_left)),
    };
    l.kv("still to claim", left);
    if c.funding_double_spent {
        l.kv("lost", format!("{} (the funding was double-spent: the channel never existed on-chain)", msat(c.unclaimable_msat)));
    }
}

pub fn pendingchannels(r: PendingChannelsResponse) -> Output {
    let mut l = Lines::default();
    l.text(format!("opening: {}", count(r.pending_open.len(), "channel"))).blank();
    for c in &r.pending_open {
        channel_lines(&mut l, c);
        l.blank();
    }
    l.text(format!("closing, funds still to claim: {}", count(r.pending_close.len(), "channel")));
    for c in &r.pending_close {
        l.blank();
        closed_lines(&mut l, c);
    }
    Output::new(json(&r), l)
}

pub fn closedchannels(r: ClosedChannelsResponse) -> Output {
    let mut l = Lines::default();
    for c in &r.channels {
        closed_lines(&mut l, c);
        l.blank();
    }
    l.text(format!("{} closed", count(r.channels.len(), "channel")));
    Output::new(json(&r), l)
}

pub fn updatechanpolicy(r: UpdateChannelPolicyResponse) -> Output {
    let mut l = Lines::default();
    l.kv("updated", count(r.updated as usize, "channel"));
    Output::new(json(&r), l)
}

// ---- gossip ----

fn policy(p: &Option<RoutingPolicy>) -> String {
    match p {
        None => "unknown (no update seen yet)".into(),
        Some(p) => {
            let disabled = if p.disabled { ", disabled" } else { "" };
            format!(
                "{}, htlc {} to {} msat{disabled}",
                fees(p.fee_base_msat, p.fee_rate_ppm, p.cltv_expiry_delta),
                p.htlc_minimum_msat,
                p.htlc_maximum_msat
            )
        }
    }
}

fn graph_channel_lines(l: &mut Lines, c: &GraphChannel) {
    l.kv("short channel id", &c.short_channel_id)
        .kv("node1", &c.node1)
        .kv("node2", &c.node2)
        .kv("capacity", sat(c.capacity_sat))
        .kv("node1 policy", policy(&c.node1_policy))
        .kv("node2 policy", policy(&c.node2_policy));
}

fn graph_node_line(n: &GraphNode) -> String {
    let alias = if n.alias.is_empty() { "(no alias)" } else { &n.alias };
    let addresses = if n.addresses.is_empty() { "no address".to_string() } else { n.addresses.join(", ") };
    format!("{} {alias}: {addresses}", n.node_id)
}

pub fn describegraph(r: DescribeGraphResponse) -> Output {
    let mut l = Lines::default();
    l.text(format!("{}:", count(r.nodes.len(), "node")));
    for n in &r.nodes {
        l.text(format!("  {}", graph_node_line(n)));
    }
    l.blank().text(format!("{}:", count(r.channels.len(), "channel")));
    for c in &r.channels {
        l.blank();
        graph_channel_lines(&mut l, c);
    }
    Output::new(json(&r), l)
}

pub fn getnodeinfo(r: GetNodeInfoResponse) -> Output {
    let mut l = Lines::default();
    if let Some(n) = &r.node {
        let alias = if n.alias.is_empty() { "(none announced)" } else { &n.alias };
        let addresses = if n.addresses.is_empty() { "(none announced)".to_string() } else { n.addresses.join(", ") };
        l.kv("node id", &n.node_id).kv("alias", alias).kv("addresses", addresses).kv("last update", utc(u64::from(n.last_update)));
    }
    l.kv("channels", r.num_channels.to_string()).kv("total capacity", sat(r.total_capacity_sat));
    Output::new(json(&r), l)
}

pub fn getchaninfo(r: GraphChannel) -> Output {
    let mut l = Lines::default();
    graph_channel_lines(&mut l, &r);
    Output::new(json(&r), l)
}

// ---- invoices ----

fn amount_or_any(amount_msat: u64) -> String {
    if amount_msat == 0 {
        "any (the payer chooses)".into()
    } else {
        msat(amount_msat)
    }
}

pub fn addinvoice(r: AddInvoiceResponse) -> Output {
    let mut l = Lines::default();
    l.kv("payment hash", &r.payment_hash).kv("bolt11", &r.bolt11);
    Output::new(json(&r), l)
}

pub fn decodepayreq(r: DecodeInvoiceResponse) -> Output {
    let mut l = Lines::default();
    let expired = if r.expired { " (expired)" } else { "" };
    l.kv("destination", &r.destination)
        .kv("payment hash", &r.payment_hash)
        .kv("amount", amount_or_any(r.amount_msat))
        .kv("description", &r.description)
        .kv("created", utc(r.timestamp))
        .kv("expires", format!("{}{expired}", utc(r.timestamp.saturating_add(r.expiry_secs))))
        .kv("min final cltv delta", r.min_final_cltv_expiry_delta.to_string())
        .kv("network", &r.network);
    for (i, hint) in r.route_hints.iter().enumerate() {
        for h in &hint.hops {
            let hop = format!("{} via {}: {}", h.node_id, h.short_channel_id, fees(h.fee_base_msat, h.fee_rate_ppm, h.cltv_expiry_delta));
            l.kv(&format!("route hint {}", i + 1), hop);
        }
    }
    Output::new(json(&r), l)
}

fn invoice_lines(l: &mut Lines, i: &Invoice) {
    l.kv("payment hash", &i.payment_hash)
        .kv("state", InvoiceState::word(i.state))
        .kv("amount", amount_or_any(i.amount_msat))
        .kv_some("description", &i.description)
        .kv("created", utc(i.created_at))
        .kv("expires", utc(i.expires_at));
    if i.amount_received_msat > 0 {
        l.kv("received", msat(i.amount_received_msat));
    }
    if i.settled_at > 0 {
        l.kv("settled", utc(i.settled_at));
    }
    l.kv_some("preimage", &i.preimage);
    if i.hold {
        l.kv("hold invoice", "yes (settleinvoice or cancelinvoice decides)");
    }
    l.kv("bolt11", &i.bolt11);
}

pub fn listinvoices(r: ListInvoicesResponse) -> Output {
    let mut l = Lines::default();
    for i in &r.invoices {
        invoice_lines(&mut l, i);
        l.blank();
    }
    l.text(count(r.invoices.len(), "invoice"));
    Output::new(json(&r), l)
}

pub fn lookupinvoice(r: Invoice) -> Output {
    let mut l = Lines::default();
    invoice_lines(&mut l, &r);
    Output::new(json(&r), l)
}

// ---- payments ----

fn payment_lines(l: &mut Lines, p: &Payment) {
    if p.payment_id != p.payment_hash {
        l.kv("payment id", &p.payment_id);
    }
    if p.direction == "inbound" {
        l.kv("direction", "received");
    }
    l.kv("payment hash", &p.payment_hash)
        .kv_some("kind", &p.kind)
        .kv_some("offer id", &p.offer_id)
        .kv_some("payer note", &p.payer_note);
    if p.quantity > 0 {
        l.kv("quantity", p.quantity.to_string());
    }
    l
        .kv("status", PaymentStatus::word(p.status))
        .kv("destination", &p.destination)
        .kv("amount", msat(p.amount_msat))
        .kv("fee", msat(p.fee_msat))
        .kv_some("preimage", &p.preimage)
        .kv_some("failure", &p.failure_reason)
        .kv("created", utc(p.created_at));
    for b in &p.blinded_paths {
        let path = format!(
            "from {} over {} hidden hops: {} msat + {} ppm, cltv delta {}",
            b.introduction_node, b.blinded_hops, b.fee_base_msat, b.fee_rate_ppm, b.cltv_expiry_delta
        );
        l.kv("blinded path", path);
    }
    l.kv_some("bolt12 invoice", &p.bolt12_invoice);
    for (i, path) in p.paths.iter().enumerate() {
        let name = if p.paths.len() == 1 { "route".to_string() } else { format!("route {}", i + 1) };
        if path.hops.is_empty() {
            l.kv(&name, "(no hops recorded)");
        }
        for (j, h) in path.hops.iter().enumerate() {
            let hop = format!(
                "{}. {} via {}: {} msat, fee {} msat, cltv delta {}",
                j + 1,
                h.node_id,
                h.short_channel_id,
                h.amount_msat,
                h.fee_msat,
                h.cltv_expiry_delta
            );
            if j == 0 {
                l.kv(&name, hop);
            } else {
                l.more(hop);
            }
        }
    }
}

/// payinvoice and sendkeysend: the payment, and an exit code that says whether it was paid.
pub fn payment(p: Payment) -> Output {
    let mut l = Lines::default();
    payment_lines(&mut l, &p);
    let verdict = match PaymentStatus::try_from(p.status) {
        Ok(PaymentStatus::Succeeded) => Verdict::Done,
        Ok(PaymentStatus::Failed) => {
            let reason = if p.failure_reason.is_empty() { "no reason given" } else { &p.failure_reason };
            Verdict::Failed(format!("payment failed: {reason}"))
        }
        _ => Verdict::Pending(format!(
            "payment {} is still in flight: lanes-cli listpayments shows how it ends",
            p.payment_id
        )),
    };
    Output { json: json(&p), human: l.0, verdict }
}

/// A node id shortened for a table: `0379bad0..7927`.
fn short_id(node_id: &str) -> String {
    match (node_id.get(..8), node_id.get(node_id.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) if node_id.len() > 14 => format!("{head}..{tail}"),
        _ => node_id.to_string(),
    }
}

/// A probability as a percentage: `98.4%`.
fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// Rows of text in columns, left-aligned, two spaces apart.
fn table(l: &mut Lines, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|v| v.chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        l.text(cells.join("  ").trim_end());
    }
}

/// queryroutes: one line per hop (channel, node, amount, fee, CLTV delta), then the totals and the
/// router's success estimate.
pub fn queryroutes(r: QueryRoutesResponse) -> Output {
    let mut l = Lines::default();
    for (i, p) in r.paths.iter().enumerate() {
        if r.paths.len() > 1 {
            l.text(format!(
                "path {} of {}: {}, fee {}, success {}",
                i + 1,
                r.paths.len(),
                msat(p.amount_msat),
                msat(p.fee_msat),
                percent(p.success_probability)
            ));
        }
        let mut rows = vec![["hop", "channel", "node", "amount", "fee", "cltv delta"].map(String::from).to_vec()];
        for (j, h) in p.hops.iter().enumerate() {
            rows.push(vec![
                (j + 1).to_string(),
                h.short_channel_id.clone(),
                short_id(&h.node_id),
                format!("{} msat", h.amount_msat),
                format!("{} msat", h.fee_msat),
                h.cltv_expiry_delta.to_string(),
            ]);
        }
        table(&mut l, &rows);
        l.blank();
    }
    let max_delta = r.paths.iter().map(|p| p.total_cltv_delta).max().unwrap_or(0);
    l.kv("amount", msat(r.amount_msat))
        .kv("fees", msat(r.total_fees_msat))
        .kv("total", msat(r.total_amount_msat))
        .kv("time lock", format!("block {} ({max_delta} blocks)", r.total_time_lock))
        .kv("success", format!("{} (estimated)", percent(r.success_probability)));
    Output::new(json(&r), l)
}

pub fn listpayments(r: ListPaymentsResponse) -> Output {
    let mut l = Lines::default();
    for p in &r.payments {
        payment_lines(&mut l, p);
        l.kv_some("bolt11", &p.bolt11).blank();
    }
    l.text(count(r.payments.len(), "payment"));
    Output::new(json(&r), l)
}

/// splicein and spliceout: the channel's new funding output.
pub fn splice(r: SpliceResponse) -> Output {
    let mut l = Lines::default();
    l.kv("new funding", format!("{}:{}", r.funding_txid, r.funding_output_index)).text("the channel moves onto it once it confirms: lanes-cli listchannels shows the splice meanwhile");
    Output::new(json(&r), l)
}

// ---- BOLT12 ----

fn offer_lines(l: &mut Lines, o: &Offer) {
    let state = match (o.active, o.disabled) {
        (true, _) => "active",
        (false, true) => "disabled",
        (false, false) if o.single_use && o.times_paid > 0 => "used",
        (false, false) => "expired",
    };
    l.kv("offer id", &o.offer_id)
        .kv("state", state)
        .kv("amount", amount_or_any(o.amount_msat))
        .kv_some("description", &o.description)
        .kv_some("issuer", &o.issuer)
        .kv("expires", if o.expires_at == 0 { "never".to_string() } else { utc(o.expires_at) })
        .kv("items per payment", if o.quantity_max == 0 { "any number".to_string() } else { o.quantity_max.to_string() })
        .kv("single use", if o.single_use { "yes" } else { "no" })
        .kv("paid", format!("{}, {}", count(o.times_paid as usize, "payment"), msat(o.received_msat)))
        .kv("offer", &o.offer);
}

/// createoffer and disableoffer: the offer.
pub fn offer(o: Offer) -> Output {
    let mut l = Lines::default();
    offer_lines(&mut l, &o);
    Output::new(json(&o), l)
}

pub fn listoffers(r: ListOffersResponse) -> Output {
    let mut l = Lines::default();
    for o in &r.offers {
        offer_lines(&mut l, o);
        l.blank();
    }
    l.text(count(r.offers.len(), "offer"));
    Output::new(json(&r), l)
}

pub fn decodeoffer(r: DecodeOfferResponse) -> Output {
    let mut l = Lines::default();
    let expired = if r.expired { " (expired)" } else { "" };
    l.kv("kind", &r.kind)
        .kv_some("offer id", &r.offer_id)
        .kv_some("payment hash", &r.payment_hash)
        .kv("amount", amount_or_any(r.amount_msat))
        .kv_some("description", &r.description)
        .kv_some("issuer", &r.issuer)
        .kv("expires", if r.expires_at == 0 { "never".to_string() } else { format!("{}{expired}", utc(r.expires_at)) })
        .kv_some("signing key", &r.signing_pubkey)
        .kv_some("payer note", &r.payer_note)
        .kv("network", format!("{}{}", r.network, if r.our_network { "" } else { " (not this node's)" }));
    for (i, n) in r.introduction_nodes.iter().enumerate() {
        l.kv(&format!("blinded path {}", i + 1), format!("introduced by {n}"));
    }
    Output::new(json(&r), l)
}

pub fn createrefund(r: CreateRefundResponse) -> Output {
    let mut l = Lines::default();
    l.kv("payment id", &r.payment_id).kv("expires", utc(r.expires_at)).kv("refund", &r.refund);
    Output::new(json(&r), l)
}

pub fn requestrefund(r: RequestRefundPaymentResponse) -> Output {
    let mut l = Lines::default();
    l.kv("payment hash", &r.payment_hash).kv("amount", msat(r.amount_msat)).kv("invoice", &r.invoice).text("invoice sent: lanes-cli listpayments shows when it is paid");
    Output::new(json(&r), l)
}

pub fn fwdinghistory(r: ForwardingHistoryResponse) -> Output {
    let mut l = Lines::default();
    for f in &r.forwards {
        l.kv("time", utc(f.timestamp))
            .kv("in", &f.channel_in)
            .kv("out", &f.channel_out)
            .kv("amount in", msat(f.amount_in_msat))
            .kv("amount out", msat(f.amount_out_msat))
            .kv("fee", msat(f.fee_msat))
            .blank();
    }
    l.text(format!("{} forwarded, {} earned in fees", count(r.forwards.len(), "payment"), msat(r.total_fee_msat)));
    Output::new(json(&r), l)
}

// ---- events ----

/// One event on one line: `<time> <kind> key=value...`, leaving out what is empty.
pub fn event_line(e: &NodeEvent) -> String {
    let mut line = format!("{} {}", utc(e.timestamp), e.kind);
    for (key, value) in [("peer", &e.node_id), ("channel", &e.channel_id), ("payment_hash", &e.payment_hash)] {
        if !value.is_empty() {
            line += &format!(" {key}={value}");
        }
    }
    if e.amount_msat > 0 {
        line += &format!(" amount={}msat", e.amount_msat);
    }
    if !e.detail.is_empty() {
        line += &format!(" ({})", e.detail);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_keep_the_proto_order_and_names() {
        let b = WalletBalanceResponse { confirmed_sat: 3, unconfirmed_sat: 2, total_sat: 5 };
        assert_eq!(serde_json::to_string(&json(&b)).unwrap(), r#"{"confirmed_sat":3,"unconfirmed_sat":2,"total_sat":5}"#);
    }

    #[test]
    fn json_enums_are_words_and_nested_messages_nest() {
        let p = Payment {
            status: PaymentStatus::InFlight as i32,
            paths: vec![PaymentPath { hops: vec![RouteHop { amount_msat: u64::MAX, ..Default::default() }] }],
            ..Default::default()
        };
        let j = json(&p);
        assert_eq!(j["status"], "in_flight");
        assert_eq!(j["paths"][0]["hops"][0]["amount_msat"], u64::MAX, "64-bit amounts stay exact numbers");
        assert_eq!(json(&Invoice { state: InvoiceState::Settled as i32, ..Default::default() })["state"], "settled");
        assert_eq!(json(&Payment { status: 42, ..Default::default() })["status"], "unknown (42)");
        assert_eq!(json(&GetNodeInfoResponse::default())["node"], Value::Null);
        assert_eq!(json(&ConnectPeerResponse {}), serde_json::json!({}));
    }

    #[test]
    fn amounts_say_their_unit() {
        assert_eq!(sat(1_000), "1000 sat");
        assert_eq!(msat(50_000_000), "50000000 msat (50000 sat)");
        assert_eq!(msat(1_001), "1001 msat");
        assert_eq!(msat(0), "0 msat");
    }

    #[test]
    fn a_failed_payment_is_a_failure_with_its_reason() {
        let failed = Payment { status: PaymentStatus::Failed as i32, failure_reason: "no route".into(), ..Default::default() };
        let out = payment(failed);
        assert!(matches!(out.verdict, Verdict::Failed(ref m) if m == "payment failed: no route"));
        assert!(out.human.contains(&Line::Pair("status".into(), "failed".into())));
        let flying = Payment { status: PaymentStatus::InFlight as i32, ..Default::default() };
        assert!(matches!(payment(flying).verdict, Verdict::Pending(_)));
        let paid = Payment { status: PaymentStatus::Succeeded as i32, ..Default::default() };
        assert!(matches!(payment(paid).verdict, Verdict::Done));
    }

    #[test]
    fn routes_print_one_hop_per_line() {
        let hop = |n: &str| RouteHop { node_id: n.into(), short_channel_id: "101x1x0".into(), amount_msat: 1000, fee_msat: 1, cltv_expiry_delta: 40 };
        let p = Payment { status: 2, paths: vec![PaymentPath { hops: vec![hop("bob"), hop("carol")] }], ..Default::default() };
        let human = payment(p).human;
        let at = human.iter().position(|l| matches!(l, Line::Pair(k, _) if k == "route")).expect("a route line");
        assert!(matches!(&human[at], Line::Pair(_, v) if v.starts_with("1. bob via 101x1x0: 1000 msat, fee 1 msat")), "{human:?}");
        assert!(matches!(&human[at + 1], Line::More(v) if v.starts_with("2. carol via 101x1x0")), "{human:?}");
    }

    #[test]
    fn queryroutes_prints_a_hop_table_then_totals() {
        let bob = "0379bad075377b4d98b7d99890c4bf631197815b51b0875656f97719d4ec417927";
        let carol = "032df943c4533d964fbd2e0c925e315d5bd6bc56e577e6cdb5752a779af6e27563";
        let hop = |n: &str, amount_msat, fee_msat, cltv_expiry_delta| RouteHop {
            node_id: n.into(),
            short_channel_id: "103x1x0".into(),
            amount_msat,
            fee_msat,
            cltv_expiry_delta,
        };
        let path = RoutePath {
            hops: vec![hop(bob, 5_001_000, 1_000, 72), hop(carol, 5_000_000, 0, 40)],
            amount_msat: 5_000_000,
            fee_msat: 1_000,
            total_amount_msat: 5_001_000,
            total_cltv_delta: 112,
            total_time_lock: 223,
            success_probability: 0.984,
        };
        let r = QueryRoutesResponse {
            paths: vec![path],
            amount_msat: 5_000_000,
            total_fees_msat: 1_000,
            total_amount_msat: 5_001_000,
            total_time_lock: 223,
            success_probability: 0.984,
        };
        let out = queryroutes(r);
        let text: Vec<String> = out.human.iter().filter_map(|l| if let Line::Text(t) = l { Some(t.clone()) } else { None }).collect();
        assert_eq!(text[0], "hop  channel  node            amount        fee        cltv delta");
        assert_eq!(text[1], "1    103x1x0  0379bad0..7927  5001000 msat  1000 msat  72");
        assert_eq!(text[2], "2    103x1x0  032df943..7563  5000000 msat  0 msat     40");
        assert!(out.human.contains(&Line::Pair("fees".into(), "1000 msat (1 sat)".into())));
        assert!(out.human.contains(&Line::Pair("time lock".into(), "block 223 (112 blocks)".into())));
        assert!(out.human.contains(&Line::Pair("success".into(), "98.4% (estimated)".into())));
        assert_eq!(out.json["paths"][0]["hops"][1]["cltv_expiry_delta"], 40);
        assert_eq!(out.json["success_probability"], 0.984);
    }

    #[test]
    fn events_leave_out_empty_fields() {
        let e = NodeEvent { kind: "payment_sent".into(), timestamp: 1, payment_hash: "ab".into(), amount_msat: 5, ..Default::default() };
        assert_eq!(event_line(&e), "1970-01-01 00:00:01 UTC payment_sent payment_hash=ab amount=5msat");
    }
}
