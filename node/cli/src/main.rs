//! lanes-cli: drive a running lanesd from the command line, over its gRPC API (like lncli for lnd).
//!
//! ```text
//! lanes-cli [--rpcserver 127.0.0.1:10009] [--json] <command> [args]
//!   node:      getinfo, stop
//!   wallet:    newaddress, walletbalance, listunspent, sendcoins
//!   peers:     connect, listpeers, disconnect
//!   channels:  openchannel, listchannels, pendingchannels, closechannel, closedchannels, updatechanpolicy,
//!              splicein, spliceout
//!   gossip:    describegraph, getnodeinfo, getchaninfo
//!   invoices:  addinvoice, decodepayreq, listinvoices, lookupinvoice, settleinvoice, cancelinvoice
//!   payments:  payinvoice, sendkeysend, queryroutes, listpayments, fwdinghistory
//!   bolt12:    createoffer, listoffers, disableoffer, decodeoffer, payoffer, createrefund, requestrefund
//!   events:    subscribe
//! ```
//!
//! Human output is short aligned `key: value` lines with units; `--json` prints one JSON object whose field
//! names are the proto's (`subscribe --json`: one object per line). Errors go to stderr as
//! `error: <status code>: <message>` with exit code 1; a payment that failed exits 1 too, one still in
//! flight 2. This binary only translates between the command line and the API: it must never hold wallet
//! or node logic (amounts, fee rates, ids and addresses are checked by lanesd, the one place that knows the
//! rules).
//!
//! Modules: `args` (the command line), `human` (text and `--json` output). Connecting is lanes-client's.
mod args;
mod human;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
// `::` because the glob below brings in the generated `v1::lanes_client` module too.
use ::lanes_client::{Client, ConnectError, Server};
use lanes_proto::v1::*;

use crate::args::{msat_from, open_target, route_target, Cli, Command};
use crate::human::{Output, Verdict};

/// Exit code of a payment still in flight when the call returned: neither paid nor failed yet.
const EXIT_IN_FLIGHT: u8 = 2;
/// Exit code of a command line that does not make sense (clap uses the same).
const EXIT_USAGE: u8 = 2;

/// What went wrong, already worded for the user.
enum Failure {
    /// The command line is incomplete or contradicts itself (found before calling lanesd).
    Usage(String),
    /// No connection to lanesd (a bad address, nothing listening, ...).
    Connect(ConnectError),
    Status(tonic::Status),
    /// lanesd ended the event stream (it is stopping).
    StreamEnded { rpcserver: String },
}

impl From<ConnectError> for Failure {
    fn from(error: ConnectError) -> Self {
        Failure::Connect(error)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure::Status(status)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("cannot start tokio");
    let result = match cli.command {
        Command::Subscribe => runtime.block_on(subscribe(&Target::of(&cli), cli.json)).map(|()| None),
        _ => runtime.block_on(run(&cli)).map(Some),
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(out)) => {
            human::print(&out, cli.json);
            match out.verdict {
                Verdict::Done => ExitCode::SUCCESS,
                Verdict::Failed(why) => {
                    eprintln!("error: {why}");
                    ExitCode::FAILURE
                }
                Verdict::Pending(why) => {
                    eprintln!("warning: {why}");
                    ExitCode::from(EXIT_IN_FLIGHT)
                }
            }
        }
        Err(Failure::Usage(why)) => {
            eprintln!("error: {why}\n\nFor more information, try '--help'.");
            ExitCode::from(EXIT_USAGE)
        }
        Err(failure) => {
            eprintln!("error: {}", describe(&failure));
            ExitCode::FAILURE
        }
    }
}

/// Runs one request/response command: builds the request (refusing a self-contradicting command line
/// before connecting), calls lanesd, and formats the answer.
async fn run(cli: &Cli) -> Result<Output, Failure> {
    let rpc = &Target::of(cli);
    let out = match &cli.command {
        Command::Getinfo => human::getinfo(connect(rpc).await?.get_info(GetInfoRequest {}).await?.into_inner()),
        Command::Newaddress => human::newaddress(connect(rpc).await?.new_address(NewAddressRequest {}).await?.into_inner()),
        Command::Walletbalance => {
            human::walletbalance(connect(rpc).await?.wallet_balance(WalletBalanceRequest {}).await?.into_inner())
        }
        Command::Listunspent { min_confs } => {
            let req = ListUnspentRequest { min_confs: *min_confs };
            human::listunspent(connect(rpc).await?.list_unspent(req).await?.into_inner())
        }
        Command::Sendcoins { addr, amt, sweepall, sat_per_vbyte } => {
            let req = SendCoinsRequest {
                address: addr.clone(),
                amount_sat: amt.unwrap_or(0),
                send_all: *sweepall,
                sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default(),
            };
            human::sendcoins(connect(rpc).await?.send_coins(req).await?.into_inner())
        }
        Command::Stop => {
            let r = connect(rpc).await?.stop(StopRequest {}).await?.into_inner();
            human::done(human::json(&r), "lanesd", "stopping")
        }

        Command::Connect { address, perm } => {
            let req = ConnectPeerRequest { address: address.clone(), persist: *perm };
            let r = connect(rpc).await?.connect_peer(req).await?.into_inner();
            human::done(human::json(&r), "connected to", address.clone())
        }
        Command::Listpeers => human::listpeers(connect(rpc).await?.list_peers(ListPeersRequest {}).await?.into_inner()),
        Command::Disconnect { node_id } => {
            let req = DisconnectPeerRequest { node_id: node_id.clone() };
            let r = connect(rpc).await?.disconnect_peer(req).await?.into_inner();
            human::done(human::json(&r), "disconnected from", node_id.clone())
        }

        Command::Openchannel { node_key, local_amt, push_amt, private, sat_per_vbyte, zero_conf, positional } => {
            let (node_id, local_funding_sat) = open_target(node_key.as_deref(), *local_amt, positional).map_err(Failure::Usage)?;
            let req = OpenChannelRequest {
                node_id,
                local_funding_sat,
                push_msat: *push_amt,
                private: *private,
                sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default(),
                zero_conf: *zero_conf,
            };
            human::openchannel(connect(rpc).await?.open_channel(req).await?.into_inner())
        }
        Command::Batchopenchannel { channels, private, sat_per_vbyte } => {
            let channels = channels
                .iter()
                .map(|c| match c.split_once(':').map(|(id, sat)| (id, sat.parse::<u64>())) {
                    Some((id, Ok(sat))) => Ok(BatchOpenChannel { node_id: id.to_string(), local_funding_sat: sat, push_msat: 0, private: *private }),
                    _ => Err(Failure::Usage(format!("{c:?}: give each channel as NODE_ID:SAT"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let req = BatchOpenChannelRequest { channels, sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default() };
            human::batchopenchannel(connect(rpc).await?.batch_open_channel(req).await?.into_inner())
        }
        Command::Listchannels { active_only, peer } => {
            let req = ListChannelsRequest { active_only: *active_only, peer: peer.clone().unwrap_or_default() };
            human::listchannels(connect(rpc).await?.list_channels(req).await?.into_inner())
        }
        Command::Pendingchannels => {
            human::pendingchannels(connect(rpc).await?.pending_channels(PendingChannelsRequest {}).await?.into_inner())
        }
        Command::Closechannel { channel_id, force, sat_per_vbyte } => {
            let req = CloseChannelRequest {
                channel_id: channel_id.clone(),
                force: *force,
                sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default(),
            };
            human::closechannel(connect(rpc).await?.close_channel(req).await?.into_inner(), channel_id, *force)
        }
        Command::Closedchannels => {
            human::closedchannels(connect(rpc).await?.closed_channels(ClosedChannelsRequest {}).await?.into_inner())
        }
        Command::Splicein { chan_id, amt, sat_per_vbyte } => {
            let req = SpliceInRequest { channel_id: chan_id.clone(), amount_sat: *amt, sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default() };
            human::splice(connect(rpc).await?.splice_in(req).await?.into_inner())
        }
        Command::Spliceout { chan_id, amt, addr, sat_per_vbyte } => {
            let req = SpliceOutRequest { channel_id: chan_id.clone(), amount_sat: *amt, address: addr.clone(), sat_per_vbyte: sat_per_vbyte.clone().unwrap_or_default() };
            human::splice(connect(rpc).await?.splice_out(req).await?.into_inner())
        }
        Command::Updatechanpolicy { chan_id, base_fee_msat, fee_rate_ppm, time_lock_delta } => {
            let req = UpdateChannelPolicyRequest {
                channel_id: chan_id.clone().unwrap_or_default(),
                fee_base_msat: *base_fee_msat,
                fee_rate_ppm: *fee_rate_ppm,
                cltv_expiry_delta: *time_lock_delta,
            };
            human::updatechanpolicy(connect(rpc).await?.update_channel_policy(req).await?.into_inner())
        }

        Command::Describegraph => {
            human::describegraph(connect(rpc).await?.describe_graph(DescribeGraphRequest {}).await?.into_inner())
        }
        Command::Getnodeinfo { node_id } => {
            let req = GetNodeInfoRequest { node_id: node_id.clone() };
            human::getnodeinfo(connect(rpc).await?.get_node_info(req).await?.into_inner())
        }
        Command::Getchaninfo { short_channel_id } => {
            let req = GetChanInfoRequest { short_channel_id: short_channel_id.clone() };
            human::getchaninfo(connect(rpc).await?.get_chan_info(req).await?.into_inner())
        }

        Command::Addinvoice { amt, amt_msat, memo, expiry, hash } => {
            let req = AddInvoiceRequest {
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                description: memo.clone(),
                expiry_secs: *expiry,
                payment_hash: hash.clone().unwrap_or_default(),
            };
            human::addinvoice(connect(rpc).await?.add_invoice(req).await?.into_inner())
        }
        Command::Decodepayreq { bolt11 } => {
            let req = DecodeInvoiceRequest { bolt11: bolt11.clone() };
            human::decodepayreq(connect(rpc).await?.decode_invoice(req).await?.into_inner())
        }
        Command::Listinvoices => human::listinvoices(connect(rpc).await?.list_invoices(ListInvoicesRequest {}).await?.into_inner()),
        Command::Lookupinvoice { payment_hash } => {
            let req = LookupInvoiceRequest { payment_hash: payment_hash.clone() };
            human::lookupinvoice(connect(rpc).await?.lookup_invoice(req).await?.into_inner())
        }
        Command::Settleinvoice { preimage } => {
            let r = connect(rpc).await?.settle_invoice(SettleInvoiceRequest { preimage: preimage.clone() }).await?.into_inner();
            human::done(human::json(&r), "invoice", "settled")
        }
        Command::Cancelinvoice { payment_hash } => {
            let req = CancelInvoiceRequest { payment_hash: payment_hash.clone() };
            let r = connect(rpc).await?.cancel_invoice(req).await?.into_inner();
            human::done(human::json(&r), "invoice", "canceled")
        }

        Command::Payinvoice { bolt11, amt_msat, amt, timeout } => {
            let req = PayInvoiceRequest {
                bolt11: bolt11.clone(),
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                timeout_secs: *timeout,
                retry_secs: 0,
            };
            human::payment(connect(rpc).await?.pay_invoice(req).await?.into_inner())
        }
        Command::Sendkeysend { dest, amt_msat, amt, timeout } => {
            let req = SendKeysendRequest {
                node_id: dest.clone(),
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                timeout_secs: *timeout,
            };
            human::payment(connect(rpc).await?.send_keysend(req).await?.into_inner())
        }
        Command::Queryroutes { dest, amt, amt_msat, final_cltv_delta, fee_limit, max_parts, positional } => {
            let (node_id, amount_msat) = route_target(dest.as_deref(), *amt, *amt_msat, positional).map_err(Failure::Usage)?;
            let fee_limit_msat = msat_from(*fee_limit, None).map_err(Failure::Usage)?.unwrap_or(0);
            let req = QueryRoutesRequest {
                node_id,
                amount_msat,
                amount_sat: 0,
                final_cltv_delta: *final_cltv_delta,
                fee_limit_msat,
                max_parts: *max_parts,
            };
            human::queryroutes(connect(rpc).await?.query_routes(req).await?.into_inner())
        }
        Command::Listpayments => human::listpayments(connect(rpc).await?.list_payments(ListPaymentsRequest {}).await?.into_inner()),
        Command::Createoffer { amt, amt_msat, memo, expiry, quantity_max, quantity_unbounded, single_use, issuer } => {
            let req = CreateOfferRequest {
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                description: memo.clone(),
                expiry_secs: *expiry,
                quantity_max: *quantity_max,
                quantity_unbounded: *quantity_unbounded,
                single_use: *single_use,
                issuer: issuer.clone(),
            };
            human::offer(connect(rpc).await?.create_offer(req).await?.into_inner())
        }
        Command::Listoffers => human::listoffers(connect(rpc).await?.list_offers(ListOffersRequest {}).await?.into_inner()),
        Command::Disableoffer { offer_id } => {
            human::offer(connect(rpc).await?.disable_offer(DisableOfferRequest { offer_id: offer_id.clone() }).await?.into_inner())
        }
        Command::Decodeoffer { offer } => human::decodeoffer(connect(rpc).await?.decode_offer(DecodeOfferRequest { offer: offer.clone() }).await?.into_inner()),
        Command::Payoffer { offer, amt, amt_msat, quantity, payer_note, timeout } => {
            let req = PayOfferRequest {
                offer: offer.clone(),
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                quantity: *quantity,
                payer_note: payer_note.clone(),
                timeout_secs: *timeout,
                retry_secs: 0,
            };
            human::payment(connect(rpc).await?.pay_offer(req).await?.into_inner())
        }
        Command::Createrefund { amt, amt_msat, memo, expiry, payer_note } => {
            let req = CreateRefundRequest {
                amount_msat: msat_from(*amt, *amt_msat).map_err(Failure::Usage)?.unwrap_or(0),
                description: memo.clone(),
                expiry_secs: *expiry,
                payer_note: payer_note.clone(),
            };
            human::createrefund(connect(rpc).await?.create_refund(req).await?.into_inner())
        }
        Command::Requestrefund { refund } => {
            human::requestrefund(connect(rpc).await?.request_refund_payment(RequestRefundPaymentRequest { refund: refund.clone() }).await?.into_inner())
        }
        Command::Fwdinghistory => {
            human::fwdinghistory(connect(rpc).await?.forwarding_history(ForwardingHistoryRequest {}).await?.into_inner())
        }

        Command::Subscribe => unreachable!("subscribe streams; main runs it apart"),
    };
    Ok(out)
}

/// Prints events as they come, one per line, until Ctrl-C (exit 0) or until lanesd ends the stream.
///
/// A note on stderr says when the subscription is in place: events from then on are printed.
async fn subscribe(target: &Target, as_json: bool) -> Result<(), Failure> {
    let rpcserver = target.rpcserver.as_str();
    let mut events = connect(target).await?.subscribe_events(SubscribeEventsRequest {}).await?.into_inner();
    eprintln!("lanes-cli: subscribed to the events of lanesd at {rpcserver} (Ctrl-C to stop)");
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stdout = std::io::stdout();
    loop {
        let event = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            next = events.message() => match next? {
                Some(event) => event,
                None => return Err(Failure::StreamEnded { rpcserver: rpcserver.to_string() }),
            },
        };
        let line = if as_json { human::json(&event).to_string() } else { human::event_line(&event) };
        // Whoever reads our output went away (`| head -1`): that is the end, not an error.
        if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
    }
}

/// Connects now, so that a lanesd that is not there is said before anything else.
/// Where lanesd is, and the credentials to present there.
struct Target {
    rpcserver: String,
    tls_cert: Option<std::path::PathBuf>,
    macaroon: Option<std::path::PathBuf>,
}

impl Target {
    fn of(cli: &Cli) -> Target {
        let dir = cli.lanesdir.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".lanes").join(&cli.network)
        });
        Target {
            rpcserver: cli.rpcserver.clone(),
            tls_cert: (!cli.no_tls).then(|| cli.tlscertpath.clone().unwrap_or_else(|| dir.join(lanes_proto::macaroon::TLS_CERT))),
            macaroon: (!cli.no_macaroons).then(|| cli.macaroonpath.clone().unwrap_or_else(|| dir.join(lanes_proto::macaroon::ADMIN_MACAROON))),
        }
    }
}

async fn connect(target: &Target) -> Result<Client, Failure> {
    let mut server = Server::parse(&target.rpcserver)?;
    if let Some(macaroon) = &target.macaroon {
        server = server.with_macaroon(macaroon)?;
    }
    if let Some(cert) = &target.tls_cert {
        server = server.with_tls_cert(cert)?;
    }
    Ok(server.connect().await?)
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Usage(why) => why.clone(),
        Failure::Connect(ConnectError::BadAddress { rpcserver, cause }) => {
            format!("--rpcserver {rpcserver:?} is not a host:port address: {cause}")
        }
        Failure::Connect(ConnectError::Refused { rpcserver }) => format!(
            "cannot connect to lanesd at {rpcserver}: connection refused, so lanesd is not running there \
             (start lanesd, or point --rpcserver / LANES_RPCSERVER at its --grpc-listen address)"
        ),
        Failure::Connect(ConnectError::Unreachable { rpcserver, cause }) => {
            format!("cannot connect to lanesd at {rpcserver}: {cause} (is lanesd running there?)")
        }
        Failure::Connect(e @ (ConnectError::WrongCertificate { .. } | ConnectError::Credential { .. })) => e.to_string(),
        Failure::Status(status) => format!("{}: {}", code_name(status.code()), status.message()),
        Failure::StreamEnded { rpcserver } => format!("lanesd at {rpcserver} ended the event stream (is it stopping?)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_read_as_words() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "invalid argument");
        assert_eq!(code_name(tonic::Code::FailedPrecondition), "failed precondition");
        assert_eq!(code_name(tonic::Code::Unavailable), "unavailable");
        assert_eq!(code_name(tonic::Code::NotFound), "not found");
    }

    #[test]
    fn errors_print_as_one_line() {
        let status = tonic::Status::invalid_argument("invalid address \"bogus\"");
        assert_eq!(describe(&Failure::Status(status)), "invalid argument: invalid address \"bogus\"");
    }
}
