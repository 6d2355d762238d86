//! lanes-cli: drive a running lanesd from the command line, over its gRPC API (like lncli for lnd).
//!
//! ```text
//! lanes-cli [--rpcserver 127.0.0.1:10009] [--json] <getinfo|newaddress|walletbalance|listunspent|sendcoins|stop>
//! ```
//!
//! Human output is short aligned `key: value` lines with units; `--json` prints one JSON object whose field
//! names are the proto's. Errors go to stderr as `error: <status code>: <message>` with exit code 1.
//! This file only translates between the command line and the API: it must never hold wallet or node logic
//! (amounts, fee rates and addresses are checked by lanesd, which is the one place that knows the rules).
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};
use lanes_proto::v1::{
    GetInfoRequest, GetInfoResponse, ListUnspentRequest, ListUnspentResponse, NewAddressRequest, NewAddressResponse,
    SendCoinsRequest, SendCoinsResponse, StopRequest, Utxo, WalletBalanceRequest, WalletBalanceResponse,
};
use lanes_proto::LanesClient;
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
#[command(name = "lanes-cli", version, about = "Control a running lanesd over gRPC")]
struct Cli {
    /// lanesd's gRPC address, host:port (an http:// prefix is accepted).
    #[arg(long, global = true, env = "LANES_RPCSERVER", default_value = "127.0.0.1:10009")]
    rpcserver: String,
    /// Print machine-readable JSON (field names as in the API) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Node identity, chain position and counts.
    Getinfo,
    /// A fresh receive address of the on-chain wallet.
    Newaddress,
    /// Confirmed and unconfirmed on-chain balance.
    Walletbalance,
    /// The on-chain wallet's unspent outputs.
    Listunspent {
        /// Only outputs with at least this many confirmations (0 includes unconfirmed ones).
        #[arg(long, default_value_t = 0)]
        min_confs: u32,
    },
    /// Send on-chain coins to an address.
    #[command(group(ArgGroup::new("how_much").required(true).args(["amt", "sweepall"])))]
    Sendcoins {
        /// Destination address.
        #[arg(long)]
        addr: String,
        /// Amount to send, in satoshis.
        #[arg(long)]
        amt: Option<u64>,
        /// Send the whole wallet balance minus the fee, leaving no change.
        #[arg(long)]
        sweepall: bool,
        /// Fee rate in sat/vbyte, e.g. 2 or 1.5 (default: estimated by lanesd).
        #[arg(long)]
        sat_per_vbyte: Option<String>,
    },
    /// Stop lanesd gracefully.
    Stop,
}

/// What went wrong, already worded for the user.
enum Failure {
    BadAddress { rpcserver: String, cause: String },
    /// Nothing listens at the address: lanesd is not running there.
    Refused { rpcserver: String },
    Connect { rpcserver: String, cause: String },
    Status(tonic::Status),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("cannot start tokio");
    match runtime.block_on(run(&cli)) {
        Ok(out) => {
            print(&out, cli.json);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {}", describe(&failure));
            ExitCode::FAILURE
        }
    }
}

/// One command's result: the JSON form, and the human form as `key: value` pairs.
struct Output {
    json: Value,
    human: Vec<(String, String)>,
}

async fn run(cli: &Cli) -> Result<Output, Failure> {
    let mut client = connect(&cli.rpcserver).await?;
    let out = match &cli.command {
        Command::Getinfo => getinfo(client.get_info(GetInfoRequest {}).await?.into_inner()),
        Command::Newaddress => newaddress(client.new_address(NewAddressRequest {}).await?.into_inner()),
        Command::Walletbalance => walletbalance(client.wallet_balance(WalletBalanceRequest {}).await?.into_inner()),
        Command::Listunspent { min_confs } => {
            listunspent(client.list_unspent(ListUnspentRequest { min_confs: *min_confs }).await?.into_inner())
        }
        Command::Sendcoins { addr, amt, sweepall, sat_per_vbyte } => {
            let req = SendCoinsRequest {
                address: addr.clone(),
                amount_sat: amt.unwrap_or(0),
                send_all: *sweepall,
                sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default(),
            };
            sendcoins(client.send_coins(req).await?.into_inner())
        }
        Command::Stop => {
            client.stop(StopRequest {}).await?;
            Output { json: json!({}), human: vec![("lanesd".into(), "stopping".into())] }
        }
    };
    Ok(out)
}

async fn connect(rpcserver: &str) -> Result<LanesClient<Channel>, Failure> {
    let url = if rpcserver.contains("://") { rpcserver.to_string() } else { format!("http://{rpcserver}") };
    let rpcserver = rpcserver.to_string();
    let endpoint = Endpoint::from_shared(url)
        .map_err(|e| Failure::BadAddress { rpcserver: rpcserver.clone(), cause: e.to_string() })?;
    match endpoint.connect_timeout(Duration::from_secs(5)).connect().await {
        Ok(channel) => Ok(LanesClient::new(channel)),
        Err(e) if io_error_kind(&e) == Some(std::io::ErrorKind::ConnectionRefused) => Err(Failure::Refused { rpcserver }),
        Err(e) => Err(Failure::Connect { rpcserver, cause: error_chain(&e) }),
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure::Status(status)
    }
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::BadAddress { rpcserver, cause } => format!("--rpcserver {rpcserver:?} is not a host:port address: {cause}"),
        Failure::Refused { rpcserver } => format!(
            "cannot connect to lanesd at {rpcserver}: connection refused, so lanesd is not running there \
             (start lanesd, or point --rpcserver / LANES_RPCSERVER at its --grpc-listen address)"
        ),
        Failure::Connect { rpcserver, cause } => {
            format!("cannot connect to lanesd at {rpcserver}: {cause} (is lanesd running there?)")
        }
        Failure::Status(status) => format!("{}: {}", code_name(status.code()), status.message()),
    }
}

/// A gRPC code as words: `InvalidArgument` -> "invalid argument".
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut words = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// An error with its causes, "outer: inner: innermost" (tonic's own Display stops at "transport error").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let part = e.to_string();
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The kind of the I/O error somewhere in an error's causes, if any.
fn io_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

fn print(out: &Output, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out.json).expect("JSON values always serialize"));
        return;
    }
    let width = out.human.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (key, value) in &out.human {
        if key.is_empty() {
            println!("{value}");
        } else {
            println!("{:<width$} {value}", format!("{key}:"));
        }
    }
}

fn pairs<const N: usize>(items: [(&str, String); N]) -> Vec<(String, String)> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn sat(amount: u64) -> String {
    format!("{amount} sat")
}

// ---- one function per response: JSON (proto field names) and human lines ----

fn getinfo(r: GetInfoResponse) -> Output {
    let json = json!({
        "node_id": r.node_id, "network": r.network, "block_height": r.block_height, "block_hash": r.block_hash,
        "synced_to_chain": r.synced_to_chain, "num_peers": r.num_peers, "num_active_channels": r.num_active_channels,
        "num_pending_channels": r.num_pending_channels, "version": r.version, "listen_addr": r.listen_addr,
    });
    let human = pairs([
        ("node id", r.node_id),
        ("network", r.network),
        ("block height", r.block_height.to_string()),
        ("block hash", r.block_hash),
        ("synced to chain", r.synced_to_chain.to_string()),
        ("peers", r.num_peers.to_string()),
        ("active channels", r.num_active_channels.to_string()),
        ("pending channels", r.num_pending_channels.to_string()),
        ("listening on", r.listen_addr),
        ("version", r.version),
    ]);
    Output { json, human }
}

fn newaddress(r: NewAddressResponse) -> Output {
    Output { json: json!({ "address": r.address }), human: pairs([("address", r.address)]) }
}

fn walletbalance(r: WalletBalanceResponse) -> Output {
    let json = json!({ "confirmed_sat": r.confirmed_sat, "unconfirmed_sat": r.unconfirmed_sat, "total_sat": r.total_sat });
    let human = pairs([("confirmed", sat(r.confirmed_sat)), ("unconfirmed", sat(r.unconfirmed_sat)), ("total", sat(r.total_sat))]);
    Output { json, human }
}

fn utxo_json(u: &Utxo) -> Value {
    json!({
        "outpoint": u.outpoint, "amount_sat": u.amount_sat, "address": u.address,
        "confirmations": u.confirmations, "is_change": u.is_change,
    })
}

fn listunspent(r: ListUnspentResponse) -> Output {
    let json = json!({ "utxos": r.utxos.iter().map(utxo_json).collect::<Vec<_>>() });
    let total: u64 = r.utxos.iter().map(|u| u.amount_sat).sum();
    let mut human = Vec::new();
    for u in &r.utxos {
        let change = if u.is_change { " (change)" } else { "" };
        human.extend(pairs([
            ("outpoint", u.outpoint.clone()),
            ("amount", sat(u.amount_sat)),
            ("address", format!("{}{change}", u.address)),
            ("confirmations", u.confirmations.to_string()),
        ]));
        human.push((String::new(), String::new()));
    }
    let outputs = if r.utxos.len() == 1 { "output" } else { "outputs" };
    human.push((String::new(), format!("{} unspent {outputs}, {} in total", r.utxos.len(), sat(total))));
    Output { json, human }
}

fn sendcoins(r: SendCoinsResponse) -> Output {
    let json = json!({ "txid": r.txid, "amount_sat": r.amount_sat, "fee_sat": r.fee_sat });
    let human = pairs([("txid", r.txid), ("amount", sat(r.amount_sat)), ("fee", sat(r.fee_sat))]);
    Output { json, human }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_read_as_words() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "invalid argument");
        assert_eq!(code_name(tonic::Code::FailedPrecondition), "failed precondition");
        assert_eq!(code_name(tonic::Code::Unavailable), "unavailable");
    }

    #[test]
    fn errors_print_as_one_line() {
        let status = tonic::Status::invalid_argument("invalid address \"bogus\"");
        assert_eq!(describe(&Failure::Status(status)), "invalid argument: invalid address \"bogus\"");
    }

    #[test]
    fn sendcoins_needs_exactly_one_of_amt_and_sweepall() {
        assert!(Cli::try_parse_from(["lanes-cli", "sendcoins", "--addr", "a"]).is_err());
        assert!(Cli::try_parse_from(["lanes-cli", "sendcoins", "--addr", "a", "--amt", "1", "--sweepall"]).is_err());
        assert!(Cli::try_parse_from(["lanes-cli", "sendcoins", "--addr", "a", "--sweepall"]).is_ok());
    }
}
