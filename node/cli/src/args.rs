//! The command line: every command and flag lanes-cli takes, named like lncli's.
//!
//! Multi-word flags are spelled with underscores as in lncli (`--sat_per_vbyte`); the kebab-case spelling
//! (`--sat-per-vbyte`) is accepted too. Amount flags say their unit in their name or help: `--amt` and
//! `--local_amt` are satoshis, `--amt_msat` and `--push_amt` millisatoshis. Nothing here checks amounts or
//! ids against the node's rules: lanesd does, and its errors are shown as they come.
//!
//! Owns: the flags, their defaults and their help. Must never: talk to lanesd or print (main and human do).
use clap::{ArgGroup, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lanes-cli", version, about = "Control a running lanesd over gRPC")]
pub struct Cli {
    /// lanesd's gRPC address, host:port (an http:// prefix is accepted).
    #[arg(long, global = true, env = "LANES_RPCSERVER", default_value = "127.0.0.1:10009")]
    pub rpcserver: String,
    /// lanesd's data dir, where its TLS certificate and macaroons are. Default: ~/.lanes/<network>.
    #[arg(long, global = true, env = "LANES_DIR")]
    pub lanesdir: Option<std::path::PathBuf>,
    /// The network, for the default --lanesdir.
    #[arg(long, global = true, default_value = "regtest")]
    pub network: String,
    /// lanesd's TLS certificate to pin. Default: <lanesdir>/tls.cert.
    #[arg(long, global = true)]
    pub tlscertpath: Option<std::path::PathBuf>,
    /// The macaroon to present. Default: <lanesdir>/admin.macaroon.
    #[arg(long, global = true)]
    pub macaroonpath: Option<std::path::PathBuf>,
    /// Connect without TLS (only to a lanesd started with --no-tls).
    #[arg(long, global = true)]
    pub no_tls: bool,
    /// Present no macaroon (only for a lanesd started with --no-macaroons).
    #[arg(long, global = true)]
    pub no_macaroons: bool,
    /// Print machine-readable JSON (field names as in the API) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    // ---- node and on-chain wallet ----
    /// Node identity, chain position and counts.
    Getinfo,
    /// A fresh receive address of the on-chain wallet.
    Newaddress,
    /// Confirmed and unconfirmed on-chain balance.
    Walletbalance,
    /// The on-chain wallet's unspent outputs.
    Listunspent {
        /// Only outputs with at least this many confirmations (0 includes unconfirmed ones).
        #[arg(long = "min_confs", alias = "min-confs", default_value_t = 0)]
        min_confs: u32,
    },
    /// Send on-chain coins to an address.
    #[command(group(ArgGroup::new("how_much").required(true).args(["amt", "sweepall"])))]
    Sendcoins {
        /// Destination address.
        #[arg(long)]
        addr: String,
        /// Amount to send, in satoshis.
        #[arg(long, value_name = "SAT")]
        amt: Option<u64>,
        /// Send the whole wallet balance minus the fee, leaving no change.
        #[arg(long)]
        sweepall: bool,
        /// Fee rate in sat/vbyte, e.g. 2 or 1.5 (default: estimated by lanesd).
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
    },
    /// Stop lanesd gracefully.
    Stop,

    // ---- peers ----
    /// Connect to a Lightning peer.
    Connect {
        /// The peer as node_id@host:port.
        #[arg(value_name = "NODE_ID@HOST:PORT")]
        address: String,
        /// Reconnect to it automatically after restarts.
        #[arg(long)]
        perm: bool,
    },
    /// The connected peers.
    Listpeers,
    /// Disconnect from a peer.
    Disconnect {
        #[arg(value_name = "NODE_ID")]
        node_id: String,
    },

    // ---- channels ----
    /// Open a channel to a connected peer, funded from the on-chain wallet.
    ///
    /// The peer and capacity are given as flags (`--node_key K --local_amt SAT`) or positionally
    /// (`openchannel K SAT`), or mixed (`openchannel --node_key K SAT`).
    Openchannel {
        /// The peer's node id.
        #[arg(long = "node_key", alias = "node-key", value_name = "NODE_ID")]
        node_key: Option<String>,
        /// Channel capacity, in satoshis.
        #[arg(long = "local_amt", alias = "local-amt", value_name = "SAT")]
        local_amt: Option<u64>,
        /// Given to the peer at open, in millisatoshis.
        #[arg(long = "push_amt", alias = "push-amt", visible_alias = "push_msat", value_name = "MSAT", default_value_t = 0)]
        push_amt: u64,
        /// Do not announce the channel to the network.
        #[arg(long)]
        private: bool,
        /// Fee rate of the funding transaction in sat/vbyte (default: estimated by lanesd).
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
        /// A zero-conf channel: fails unless the peer accepts it so (it must trust us).
        #[arg(long = "zero_conf", alias = "zero-conf")]
        zero_conf: bool,
        /// NODE_ID and SAT, when not given as flags.
        #[arg(value_name = "NODE_ID SAT", num_args = 0..=2)]
        positional: Vec<String>,
    },
    /// Open channels to several connected peers with one funding transaction, all or none (LND's
    /// batchopenchannel): `lanes-cli batchopenchannel NODE_ID:SAT NODE_ID:SAT ...`.
    Batchopenchannel {
        /// One per channel: the peer's node id and the capacity in satoshis, as NODE_ID:SAT.
        #[arg(value_name = "NODE_ID:SAT", num_args = 2.., required = true)]
        channels: Vec<String>,
        /// Do not announce the channels to the network.
        #[arg(long)]
        private: bool,
        /// Fee rate of the funding transaction in sat/vbyte (default: estimated by lanesd).
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
    },
    /// Channels that are not closed (pending ones included).
    Listchannels {
        /// Only channels usable right now.
        #[arg(long = "active_only", alias = "active-only")]
        active_only: bool,
        /// Only channels with this peer (node id).
        #[arg(long, value_name = "NODE_ID")]
        peer: Option<String>,
    },
    /// Channels still opening (funding not confirmed deeply enough) or closing (funds still to claim).
    Pendingchannels,
    /// Close a channel cooperatively, or force-close it.
    Closechannel {
        /// The channel id (64 hex characters, as listchannels shows it).
        #[arg(value_name = "CHANNEL_ID")]
        channel_id: String,
        /// Broadcast our latest commitment now instead of negotiating with the peer.
        #[arg(long)]
        force: bool,
        /// Fee rate of the cooperative close in sat/vbyte (default: estimated by lanesd).
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
    },
    /// Channels that closed, with the funds still on their way back.
    Closedchannels,
    /// Add wallet coins to a channel without closing it (splice in).
    Splicein {
        #[arg(long = "chan_id", alias = "chan-id", value_name = "CHANNEL_ID")]
        chan_id: String,
        /// Satoshis to add (the wallet pays the fee on top).
        #[arg(long, value_name = "SAT")]
        amt: u64,
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
    },
    /// Move channel funds to an address without closing the channel (splice out).
    Spliceout {
        #[arg(long = "chan_id", alias = "chan-id", value_name = "CHANNEL_ID")]
        chan_id: String,
        /// Satoshis to send (the channel pays the fee on top).
        #[arg(long, value_name = "SAT")]
        amt: u64,
        #[arg(long, value_name = "ADDRESS")]
        addr: String,
        #[arg(long = "sat_per_vbyte", alias = "sat-per-vbyte", value_name = "RATE")]
        sat_per_vbyte: Option<String>,
    },
    /// Set the forwarding fees and CLTV delta of one channel, or of all of them.
    Updatechanpolicy {
        /// The channel id (default: all channels).
        #[arg(long = "chan_id", alias = "chan-id", value_name = "CHANNEL_ID")]
        chan_id: Option<String>,
        /// Base fee per forwarded payment, in millisatoshis.
        #[arg(long = "base_fee_msat", alias = "base-fee-msat", value_name = "MSAT")]
        base_fee_msat: u32,
        /// Proportional fee, in millionths of the amount forwarded.
        #[arg(long = "fee_rate_ppm", alias = "fee-rate-ppm", value_name = "PPM")]
        fee_rate_ppm: u32,
        /// CLTV expiry delta in blocks (default: unchanged).
        #[arg(long = "time_lock_delta", alias = "time-lock-delta", value_name = "BLOCKS", default_value_t = 0)]
        time_lock_delta: u32,
    },

    // ---- gossip ----
    /// The network graph as this node knows it.
    Describegraph,
    /// One node of the graph.
    Getnodeinfo {
        #[arg(value_name = "NODE_ID")]
        node_id: String,
    },
    /// One channel of the graph.
    Getchaninfo {
        /// Short channel id, BLOCKxTXxOUTPUT (or its integer form).
        #[arg(value_name = "SCID")]
        short_channel_id: String,
    },

    // ---- invoices ----
    /// Create a BOLT11 invoice (no amount: the payer chooses).
    Addinvoice {
        /// Amount in satoshis.
        #[arg(long, value_name = "SAT", conflicts_with = "amt_msat")]
        amt: Option<u64>,
        /// Amount in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        /// Description shown to the payer.
        #[arg(long, default_value = "")]
        memo: String,
        /// Seconds until the invoice expires (default: one hour).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        expiry: u32,
        /// Make a hold invoice for this payment hash (hex): the payment waits for settleinvoice/cancelinvoice.
        #[arg(long, value_name = "PAYMENT_HASH")]
        hash: Option<String>,
    },
    /// Decode a BOLT11 invoice.
    Decodepayreq {
        #[arg(value_name = "BOLT11")]
        bolt11: String,
    },
    /// All invoices of this node.
    Listinvoices,
    /// One invoice, by payment hash.
    Lookupinvoice {
        #[arg(value_name = "PAYMENT_HASH")]
        payment_hash: String,
    },
    /// Claim the payment held by a hold invoice, giving its preimage.
    Settleinvoice {
        #[arg(value_name = "PREIMAGE")]
        preimage: String,
    },
    /// Refuse a hold invoice's payment (or cancel an open invoice).
    Cancelinvoice {
        #[arg(value_name = "PAYMENT_HASH")]
        payment_hash: String,
    },

    // ---- payments ----
    /// Pay a BOLT11 invoice and wait for the outcome.
    ///
    /// Exit code 0: paid. 1: the payment failed (the reason is on stderr) or was refused. 2: still in flight
    /// when the timeout ran out (see listpayments later).
    Payinvoice {
        #[arg(value_name = "BOLT11")]
        bolt11: String,
        /// Amount in millisatoshis, for an invoice without an amount.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT", conflicts_with = "amt")]
        amt_msat: Option<u64>,
        /// Amount in satoshis, for an invoice without an amount.
        #[arg(long, value_name = "SAT")]
        amt: Option<u64>,
        /// How long to wait for the outcome, in seconds (default: 60).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        timeout: u32,
    },
    /// Pay a node directly, without an invoice (keysend). Exit codes as for payinvoice.
    #[command(group(ArgGroup::new("how_much").required(true).args(["amt", "amt_msat"])))]
    Sendkeysend {
        /// The destination's node id.
        #[arg(long, value_name = "NODE_ID")]
        dest: String,
        /// Amount in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        /// Amount in satoshis.
        #[arg(long, value_name = "SAT")]
        amt: Option<u64>,
        /// How long to wait for the outcome, in seconds (default: 60).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        timeout: u32,
    },
    /// The route a payment would take now, without paying: each hop, the fees, the time lock and the
    /// router's success estimate.
    ///
    /// The destination and amount are given as flags (`--dest K --amt SAT`) or positionally
    /// (`queryroutes K SAT`), as with lncli.
    Queryroutes {
        /// The destination's node id.
        #[arg(long, value_name = "NODE_ID")]
        dest: Option<String>,
        /// Amount to deliver, in satoshis.
        #[arg(long, value_name = "SAT", conflicts_with = "amt_msat")]
        amt: Option<u64>,
        /// Amount to deliver, in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        /// CLTV delta the destination wants for the last hop (default: 40).
        #[arg(long = "final_cltv_delta", alias = "final-cltv-delta", value_name = "BLOCKS", default_value_t = 0)]
        final_cltv_delta: u32,
        /// Most the routing fees may total, in satoshis (default: 1% + 50 sat).
        #[arg(long = "fee_limit", alias = "fee-limit", value_name = "SAT")]
        fee_limit: Option<u64>,
        /// Most paths the amount may be split into (default: 1).
        #[arg(long = "max_parts", alias = "max-parts", value_name = "N", default_value_t = 0)]
        max_parts: u32,
        /// NODE_ID and SAT, when not given as flags.
        #[arg(value_name = "NODE_ID SAT", num_args = 0..=2)]
        positional: Vec<String>,
    },
    /// Payments sent by this node, and BOLT12 payments it received.
    Listpayments,
    /// Payments this node forwarded, and the fees it earned.
    Fwdinghistory,

    // ---- BOLT12 offers and refunds ----
    /// Make a BOLT12 offer (lno1...) to be paid over blinded paths, again and again unless --single_use.
    Createoffer {
        /// Price of one item in satoshis; none: any amount.
        #[arg(long, value_name = "SAT", conflicts_with = "amt_msat")]
        amt: Option<u64>,
        /// Price of one item in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        /// What is sold.
        #[arg(long, default_value = "")]
        memo: String,
        /// Seconds until the offer expires (default: never).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        expiry: u64,
        /// Items one payment may buy (default: 1).
        #[arg(long = "quantity_max", alias = "quantity-max", value_name = "N", default_value_t = 0)]
        quantity_max: u64,
        /// Any number of items per payment.
        #[arg(long = "quantity_unbounded", alias = "quantity-unbounded", conflicts_with = "quantity_max")]
        quantity_unbounded: bool,
        /// Take one payment only: later ones are failed back.
        #[arg(long = "single_use", alias = "single-use")]
        single_use: bool,
        /// Who is paid, as the payer's wallet shows it.
        #[arg(long, default_value = "")]
        issuer: String,
    },
    /// All offers of this node.
    Listoffers,
    /// Stop taking payments for an offer.
    Disableoffer {
        #[arg(value_name = "OFFER_ID")]
        offer_id: String,
    },
    /// Decode a BOLT12 offer (lno1...) or refund (lnr1...).
    Decodeoffer {
        #[arg(value_name = "OFFER")]
        offer: String,
    },
    /// Pay a BOLT12 offer and wait for the outcome. Exit codes as for payinvoice.
    Payoffer {
        #[arg(value_name = "OFFER")]
        offer: String,
        /// Amount in satoshis, for an offer without an amount (or to pay more).
        #[arg(long, value_name = "SAT", conflicts_with = "amt_msat")]
        amt: Option<u64>,
        /// Amount in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        /// Items to buy (for offers that sell several).
        #[arg(long, value_name = "N", default_value_t = 0)]
        quantity: u64,
        /// A note the recipient sees.
        #[arg(long = "payer_note", alias = "payer-note", default_value = "")]
        payer_note: String,
        /// How long to wait for the outcome, in seconds (default: 60).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        timeout: u32,
    },
    /// Make a BOLT12 refund (lnr1...): this node pays it to whoever claims it with requestrefund.
    #[command(group(ArgGroup::new("how_much").required(true).args(["amt", "amt_msat"])))]
    Createrefund {
        /// Amount in satoshis.
        #[arg(long, value_name = "SAT")]
        amt: Option<u64>,
        /// Amount in millisatoshis.
        #[arg(long = "amt_msat", alias = "amt-msat", value_name = "MSAT")]
        amt_msat: Option<u64>,
        #[arg(long, default_value = "")]
        memo: String,
        /// Seconds it can be claimed for (default: one hour).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        expiry: u64,
        #[arg(long = "payer_note", alias = "payer-note", default_value = "")]
        payer_note: String,
    },
    /// Be paid a BOLT12 refund another node made: send it this node's invoice.
    Requestrefund {
        #[arg(value_name = "REFUND")]
        refund: String,
    },

    // ---- events ----
    /// Print node events as they happen, one per line, until Ctrl-C.
    Subscribe,
}

/// A millisatoshi amount from a pair of flags (`--amt` in sat, `--amt_msat`); `None` when neither is set.
/// clap already refuses both at once.
pub fn msat_from(amt_sat: Option<u64>, amt_msat: Option<u64>) -> Result<Option<u64>, String> {
    match (amt_sat, amt_msat) {
        (Some(sat), _) => sat.checked_mul(1000).map(Some).ok_or_else(|| format!("--amt {sat} sat is too large")),
        (None, msat) => Ok(msat),
    }
}

/// openchannel's peer and capacity, from flags or positional arguments: `--node_key K --local_amt SAT`,
/// `K SAT`, `--node_key K SAT`, or `--local_amt SAT K`.
pub fn open_target(node_key: Option<&str>, local_amt: Option<u64>, positional: &[String]) -> Result<(String, u64), String> {
    let mut rest = positional.iter();
    let node_id = match node_key {
        Some(k) => k.to_string(),
        None => rest.next().cloned().ok_or("give the peer: --node_key NODE_ID (or NODE_ID as the first argument)")?,
    };
    let sat = match local_amt {
        Some(sat) => sat,
        None => {
            let text = rest.next().ok_or("give the capacity: --local_amt SAT (or SAT after the node id)")?;
            text.parse::<u64>().map_err(|_| format!("the capacity {text:?} is not a whole number of satoshis"))?
        }
    };
    if let Some(extra) = rest.next() {
        return Err(format!("unexpected argument {extra:?}: the peer and the capacity are already given"));
    }
    Ok((node_id, sat))
}

/// queryroutes' destination and amount (msat), from flags or positional arguments: `--dest K --amt SAT`,
/// `K SAT`, `--dest K SAT`, `--amt SAT K` (the positional amount is in satoshis, as lncli's).
pub fn route_target(dest: Option<&str>, amt: Option<u64>, amt_msat: Option<u64>, positional: &[String]) -> Result<(String, u64), String> {
    let mut rest = positional.iter();
    let node_id = match dest {
        Some(k) => k.to_string(),
        None => rest.next().cloned().ok_or("give the destination: --dest NODE_ID (or NODE_ID as the first argument)")?,
    };
    let msat = match msat_from(amt, amt_msat)? {
        Some(msat) => msat,
        None => {
            let text = rest.next().ok_or("give the amount: --amt SAT, --amt_msat MSAT (or SAT after the node id)")?;
            let sat = text.parse::<u64>().map_err(|_| format!("the amount {text:?} is not a whole number of satoshis"))?;
            msat_from(Some(sat), None)?.unwrap_or(0)
        }
    };
    if let Some(extra) = rest.next() {
        return Err(format!("unexpected argument {extra:?}: the destination and the amount are already given"));
    }
    Ok((node_id, msat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lanes-cli").chain(args.iter().copied()))
    }

    #[test]
    fn sendcoins_needs_exactly_one_of_amt_and_sweepall() {
        assert!(parse(&["sendcoins", "--addr", "a"]).is_err());
        assert!(parse(&["sendcoins", "--addr", "a", "--amt", "1", "--sweepall"]).is_err());
        assert!(parse(&["sendcoins", "--addr", "a", "--sweepall"]).is_ok());
    }

    #[test]
    fn multi_word_flags_take_underscores_and_dashes() {
        for flag in ["--sat_per_vbyte", "--sat-per-vbyte"] {
            let cli = parse(&["sendcoins", "--addr", "a", "--amt", "1", flag, "2"]).unwrap();
            assert!(matches!(cli.command, Command::Sendcoins { sat_per_vbyte: Some(ref r), .. } if r == "2"), "{flag}");
        }
        for flag in ["--min_confs", "--min-confs"] {
            assert!(matches!(parse(&["listunspent", flag, "3"]).unwrap().command, Command::Listunspent { min_confs: 3 }), "{flag}");
        }
    }

    #[test]
    fn openchannel_takes_flags_positionals_or_both() {
        let target = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Openchannel { node_key, local_amt, positional, .. }) => open_target(node_key.as_deref(), local_amt, &positional),
            Ok(_) => unreachable!(),
            Err(e) => Err(e.to_string()),
        };
        let want = Ok(("K".to_string(), 500_000));
        assert_eq!(target(&["openchannel", "--node_key", "K", "--local_amt", "500000"]), want);
        assert_eq!(target(&["openchannel", "K", "500000"]), want);
        assert_eq!(target(&["openchannel", "--node_key", "K", "500000"]), want);
        assert_eq!(target(&["openchannel", "--local_amt", "500000", "K"]), want);
        assert!(target(&["openchannel", "K"]).unwrap_err().contains("capacity"));
        assert!(target(&["openchannel", "--local_amt", "5"]).unwrap_err().contains("peer"));
        assert!(target(&["openchannel", "K", "lots"]).unwrap_err().contains("\"lots\""));
        assert!(target(&["openchannel", "--node_key", "K", "--local_amt", "5", "X"]).unwrap_err().contains("\"X\""));
    }

    #[test]
    fn amounts_in_sat_or_msat_but_not_both() {
        assert!(parse(&["addinvoice", "--amt", "1", "--amt_msat", "1000"]).is_err());
        assert!(parse(&["payinvoice", "lnbcrt1", "--amt", "1", "--amt_msat", "1000"]).is_err());
        assert!(parse(&["sendkeysend", "--dest", "K"]).is_err(), "keysend needs an amount");
        assert!(parse(&["sendkeysend", "--dest", "K", "--amt", "1", "--amt_msat", "1000"]).is_err());
        assert_eq!(msat_from(Some(5), None), Ok(Some(5_000)));
        assert_eq!(msat_from(None, Some(5)), Ok(Some(5)));
        assert_eq!(msat_from(None, None), Ok(None));
        assert!(msat_from(Some(u64::MAX), None).is_err());
    }

    #[test]
    fn queryroutes_takes_flags_positionals_or_both() {
        let target = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Queryroutes { dest, amt, amt_msat, positional, .. }) => route_target(dest.as_deref(), amt, amt_msat, &positional),
            Ok(_) => unreachable!(),
            Err(e) => Err(e.to_string()),
        };
        let want = Ok(("K".to_string(), 5_000_000));
        assert_eq!(target(&["queryroutes", "K", "5000"]), want);
        assert_eq!(target(&["queryroutes", "--dest", "K", "--amt", "5000"]), want);
        assert_eq!(target(&["queryroutes", "--dest", "K", "5000"]), want);
        assert_eq!(target(&["queryroutes", "--amt", "5000", "K"]), want);
        assert_eq!(target(&["queryroutes", "K", "--amt_msat", "5000000"]), want);
        assert!(target(&["queryroutes", "K"]).unwrap_err().contains("amount"));
        assert!(target(&["queryroutes"]).unwrap_err().contains("destination"));
        assert!(target(&["queryroutes", "K", "lots"]).unwrap_err().contains("\"lots\""));
        assert!(target(&["queryroutes", "--dest", "K", "--amt", "5", "X"]).unwrap_err().contains("\"X\""));
        assert!(target(&["queryroutes", "K", "5", "X"]).is_err());
        assert!(target(&["queryroutes", "K", "--amt", "1", "--amt_msat", "1000"]).is_err());
    }

    #[test]
    fn json_and_rpcserver_go_anywhere() {
        let cli = parse(&["listchannels", "--json", "--rpcserver", "127.0.0.1:1"]).unwrap();
        assert!(cli.json && cli.rpcserver == "127.0.0.1:1");
    }
}
