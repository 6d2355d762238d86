//! lanesd's configuration: command-line flags over an optional TOML file over defaults.
//!
//! Owns: parsing and validating settings, and the defaults an operator of LND would expect (gRPC on
//! 127.0.0.1:10009, P2P on 9735, bitcoind's default RPC port for the network). Must never: read
//! anything but the config file, nor start anything.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bitcoin::Network;
use clap::Parser;
use serde::Deserialize;

use crate::NodeError;

/// lanesd command-line flags. Every flag can also be set in the config file under the same name
/// with `_` for `-` (e.g. `bitcoind_rpc_url = "http://127.0.0.1:8332"`); flags win.
#[derive(Parser, Debug, Default, Deserialize)]
#[command(name = "lanesd", version, about = "lanes Lightning node daemon")]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Config file (TOML). Default: <data-dir>/lanesd.toml when it exists.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// bitcoin, testnet, testnet4, signet or regtest. Default: regtest.
    #[arg(long)]
    pub network: Option<String>,
    /// Where the seed, database and logs live. Default: ~/.lanes/<network>.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// bitcoind JSON-RPC url, http://host:port. Default: 127.0.0.1 on the network's RPC port.
    #[arg(long)]
    pub bitcoind_rpc_url: Option<String>,
    #[arg(long)]
    pub bitcoind_rpc_user: Option<String>,
    #[arg(long, env = "LANES_BITCOIND_RPC_PASSWORD", hide_env_values = true)]
    pub bitcoind_rpc_password: Option<String>,
    /// A file holding bitcoind's RPC password (first line), so it never appears in argv.
    #[arg(long)]
    pub bitcoind_rpc_password_file: Option<PathBuf>,
    /// bitcoind's .cookie file, used when no user/password is given.
    #[arg(long)]
    pub bitcoind_rpc_cookie: Option<PathBuf>,
    /// Lightning peer-to-peer listen address. Default: 0.0.0.0:9735.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// gRPC control API listen address. Default: 127.0.0.1:10009.
    #[arg(long)]
    pub grpc_listen: Option<SocketAddr>,
    /// Node alias announced to the network (at most 32 bytes).
    #[arg(long)]
    pub alias: Option<String>,
    /// Forward payments into private (unannounced) channels, as LND and CLN do. Default: true.
    #[arg(long)]
    pub forward_to_private_channels: Option<bool>,
    /// The highest fee rate (sat/vB) we expect an honest peer to use, when bitcoind has no estimate yet
    /// (a fresh regtest or signet chain). Default: 250.
    #[arg(long)]
    pub max_fee_rate_fallback: Option<u64>,
    /// The fee rate (sat/vB) for urgent on-chain claims when bitcoind has no estimate. Default: 20.
    #[arg(long)]
    pub urgent_fee_rate_fallback: Option<u64>,
    /// Dust exposure cap as a multiple of the highest fee rate we expect (sat per 1000 weight), LDK's
    /// FeeRateMultiplier. Default: 10000.
    #[arg(long)]
    pub dust_exposure_multiplier: Option<u64>,
    /// A fixed dust exposure cap in msat (CLN's max-dust-htlc-exposure-msat), instead of the multiplier.
    #[arg(long)]
    pub max_dust_htlc_exposure_msat: Option<u64>,
    /// How many HTLCs a peer may have in flight towards us on one channel (set when a channel opens).
    /// Default: 483, the protocol's maximum, as LND. Fewer keep a force close's transactions smaller;
    /// more let more payments be in flight at once (LDK's own default, 50, made 64 concurrent payments
    /// fail).
    #[arg(long)]
    pub max_accepted_htlcs: Option<u16>,
    /// How long an HTLC committed to us waits before it is forwarded or received, in ms (0..=1000).
    /// Default: 0, at once, as CLN and Eclair. LDK's own background processor waits a random ~50 ms
    /// to blur the timing of forwards; a delay here does the same for every HTLC, at that cost in
    /// latency per hop.
    #[arg(long)]
    pub htlc_delay_ms: Option<u64>,
    /// Serve the gRPC API without TLS. For local development only: refused unless the API listens on
    /// a loopback address.
    #[arg(long)]
    #[serde(default)]
    pub no_tls: bool,
    /// Serve the gRPC API without macaroons: anyone who can reach it can drive the node. For local
    /// development only.
    #[arg(long)]
    #[serde(default)]
    pub no_macaroons: bool,
    /// An extra IP address the API's TLS certificate is valid for (repeatable), as LND's tlsextraip.
    #[arg(long)]
    #[serde(default)]
    pub tls_extra_ip: Vec<std::net::IpAddr>,
    /// An extra domain name the API's TLS certificate is valid for (repeatable), as LND's tlsextradomain.
    #[arg(long)]
    #[serde(default)]
    pub tls_extra_domain: Vec<String>,
    /// Where the node's state lives: `sled` (the default: an embedded database in <data-dir>/db, no setup),
    /// or a PostgreSQL connection string (`postgres://user@host:5432/lanes`, `?sslmode=require` for TLS
    /// with the server's certificate checked), for operators whose state must live in a replicated
    /// database. Keep the password out of the string: use --db-password-file.
    #[arg(long, env = "LANES_DB", hide_env_values = true)]
    pub db: Option<String>,
    /// A file holding the PostgreSQL password (first line), so it never appears in argv or the config.
    #[arg(long)]
    pub db_password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the PostgreSQL server's TLS certificate, besides the
    /// system's.
    #[arg(long)]
    pub db_ca_file: Option<PathBuf>,
    /// A peer (node id, hex) whose inbound channels are accepted as zero-conf: usable at once, before the
    /// funding transaction confirms (repeatable; ldk-node's trusted_peers_0conf). Only for peers you trust
    /// not to double-spend the funding: until it confirms, what they pay you over the channel is only as
    /// good as their word. Channels we fund are usable at zero conf whenever the peer allows it (we trust
    /// our own funding).
    #[arg(long = "trusted-peer-0conf")]
    #[serde(default, rename = "trusted_peer_0conf")]
    pub trusted_peer_0conf: Vec<String>,
    /// Refuse splices our peers propose (ours are still made). By default they are accepted, as CLN and
    /// Eclair do (LDK's own default refuses them, for peers running LDK before 0.2).
    #[arg(long)]
    #[serde(default)]
    pub reject_inbound_splices: bool,
    /// Make a new macaroon root key at start: every macaroon made before stops working, and new
    /// admin, readonly and invoice macaroons are written.
    #[arg(long)]
    #[serde(default)]
    pub rotate_macaroon_root_key: bool,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub network: Network,
    pub data_dir: PathBuf,
    pub bitcoind_rpc_url: String,
    pub bitcoind_rpc_user: String,
    pub bitcoind_rpc_password: String,
    pub listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub alias: String,
    pub forward_to_private_channels: bool,
    pub fees: FeePolicy,
    pub api: ApiSecurity,
    /// HTLCs a peer may have in flight towards us per channel (see [`Args::max_accepted_htlcs`]).
    pub max_accepted_htlcs: u16,
    /// How long committed HTLCs wait before they are forwarded or received (see [`Args::htlc_delay_ms`]).
    pub htlc_delay: std::time::Duration,
    /// Which store holds the node's state (see [`Args::db`]).
    pub store: StoreChoice,
    /// Peers whose inbound channels we accept as zero-conf (see [`Args::trusted_peer_0conf`]).
    pub trusted_peers_0conf: Vec<bitcoin::secp256k1::PublicKey>,
    /// Refuse splices peers propose (see [`Args::reject_inbound_splices`]).
    pub reject_inbound_splices: bool,
}

/// The store the builder opens.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChoice {
    /// sled in <data-dir>/db: the embedded default.
    Sled,
    /// A PostgreSQL database (its Debug never shows the connection string: it may hold a password).
    Postgres(lanes_store::PgOptions),
}

impl StoreChoice {
    fn from_setting(db: Option<String>, password_file: Option<PathBuf>, ca_file: Option<PathBuf>) -> Result<Self, NodeError> {
        let db = db.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        match db.as_deref() {
            None | Some("sled") => {
                if password_file.is_some() || ca_file.is_some() {
                    return Err(NodeError::Config("--db-password-file and --db-ca-file are for a PostgreSQL --db".into()));
                }
                Ok(StoreChoice::Sled)
            }
            Some(dsn) if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") || dsn.contains("host=") => {
                if let Err(e) = lanes_store::check_postgres_dsn(dsn) {
                    return Err(NodeError::Config(format!("--db is not a PostgreSQL connection string: {e}")));
                }
                let password = password_file.map(|p| read_password_file(&p)).transpose()?;
                Ok(StoreChoice::Postgres(lanes_store::PgOptions { dsn: dsn.to_string(), password, ca_file }))
            }
            Some(_) => Err(NodeError::Config("--db must be `sled` or a PostgreSQL connection string (postgres://user@host:5432/db)".into())),
        }
    }
}

/// The protocol's limit on HTLCs in flight in one direction of a channel (BOLT 2).
pub const MAX_ACCEPTED_HTLCS: u16 = 483;

/// How the gRPC API is protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiSecurity {
    pub tls: bool,
    pub macaroons: bool,
    /// Names the TLS certificate is valid for besides localhost, 127.0.0.1 and ::1.
    pub tls_extra_ips: Vec<std::net::IpAddr>,
    pub tls_extra_domains: Vec<String>,
    pub rotate_root_key: bool,
}

/// How fee estimates and peers' fee rates are judged. See [`FeePolicy::default`] for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// sat/vB: our "highest plausible fee rate" while bitcoind has no estimate.
    pub max_fee_rate_fallback: u64,
    /// sat/vB: urgent claims while bitcoind has no estimate.
    pub urgent_fee_rate_fallback: u64,
    pub dust_exposure: DustExposure,
}

/// The cap on what dust HTLCs and excess commitment fees may put at risk in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DustExposure {
    /// Times the highest plausible fee rate in sat per 1000 weight, in msat (LDK's FeeRateMultiplier).
    Multiplier(u64),
    FixedMsat(u64),
}

impl Default for FeePolicy {
    /// The rule: a peer's `update_fee` is only refused when the commitment fee above our "highest plausible
    /// fee rate" plus its dust HTLCs would put more than the cap at risk. LDK caps that at 10,000 x that rate
    /// (in sat/kW, as msat), so an empty anchor channel accepts a peer rate up to about 10x ours. Our
    /// highest plausible rate is twice bitcoind's next-block conservative estimate plus 10 sat/vB (LDK
    /// asks for headroom over the estimate); with no estimate (fresh regtest, signet) it is 250 sat/vB, so
    /// wallets that use a static high fallback there (Electrum: 56,250 sat/kW) are not force-closed.
    fn default() -> Self {
        FeePolicy { max_fee_rate_fallback: 250, urgent_fee_rate_fallback: 20, dust_exposure: DustExposure::Multiplier(10_000) }
    }
}

impl Config {
    /// Flags, then the config file, then defaults.
    pub fn from_args(args: Args) -> Result<Self, NodeError> {
        let network_name = args.network.clone();
        let network = parse_network(network_name.as_deref().unwrap_or("regtest"))?;
        let data_dir_guess = args.data_dir.clone().unwrap_or_else(|| default_data_dir(network));
        let file_path = args.config.clone().or_else(|| {
            let p = data_dir_guess.join("lanesd.toml");
            p.exists().then_some(p)
        });
        let file = match &file_path {
            Some(p) => read_file(p)?,
            None => Args::default(),
        };
        let pick = |flag: Option<String>, file: Option<String>| flag.or(file);
        let network = match (&network_name, &file.network) {
            (None, Some(n)) => parse_network(n)?,
            _ => network,
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| default_data_dir(network));
        let bitcoind_rpc_url = pick(args.bitcoind_rpc_url, file.bitcoind_rpc_url)
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", default_rpc_port(network)));
        let user = pick(args.bitcoind_rpc_user, file.bitcoind_rpc_user);
        let password = match (pick(args.bitcoind_rpc_password, file.bitcoind_rpc_password), args.bitcoind_rpc_password_file.or(file.bitcoind_rpc_password_file)) {
            (Some(_), Some(_)) => return Err(NodeError::Config("give --bitcoind-rpc-password or --bitcoind-rpc-password-file, not both".into())),
            (Some(p), None) => Some(p),
            (None, Some(path)) => Some(read_password_file(&path)?),
            (None, None) => None,
        };
        let (bitcoind_rpc_user, bitcoind_rpc_password) = match (user, password) {
            (Some(u), Some(p)) => (u, p),
            (None, None) => {
                let cookie = args.bitcoind_rpc_cookie.or(file.bitcoind_rpc_cookie).ok_or_else(|| {
                    NodeError::Config("give --bitcoind-rpc-user and --bitcoind-rpc-password, or --bitcoind-rpc-cookie".into())
                })?;
                read_cookie(&cookie)?
            }
            _ => return Err(NodeError::Config("--bitcoind-rpc-user and --bitcoind-rpc-password go together".into())),
        };
        let alias = args.alias.or(file.alias).unwrap_or_else(|| "lanes".into());
        if alias.len() > 32 {
            return Err(NodeError::Config(format!("alias {alias:?} is longer than 32 bytes")));
        }
        let defaults = FeePolicy::default();
        let dust_exposure = match (
            args.dust_exposure_multiplier.or(file.dust_exposure_multiplier),
            args.max_dust_htlc_exposure_msat.or(file.max_dust_htlc_exposure_msat),
        ) {
            (Some(_), Some(_)) => {
                return Err(NodeError::Config("give --dust-exposure-multiplier or --max-dust-htlc-exposure-msat, not both".into()))
            }
            (Some(m), None) => DustExposure::Multiplier(m),
            (None, Some(msat)) => DustExposure::FixedMsat(msat),
            (None, None) => defaults.dust_exposure,
        };
        let fees = FeePolicy {
            max_fee_rate_fallback: args.max_fee_rate_fallback.or(file.max_fee_rate_fallback).unwrap_or(defaults.max_fee_rate_fallback),
            urgent_fee_rate_fallback: args.urgent_fee_rate_fallback.or(file.urgent_fee_rate_fallback).unwrap_or(defaults.urgent_fee_rate_fallback),
            dust_exposure,
        };
        for (name, rate) in [("max-fee-rate-fallback", fees.max_fee_rate_fallback), ("urgent-fee-rate-fallback", fees.urgent_fee_rate_fallback)] {
            if !(1..=10_000).contains(&rate) {
                return Err(NodeError::Config(format!("--{name} {rate} sat/vB is outside 1..=10000")));
            }
        }
        let grpc_listen: SocketAddr = args.grpc_listen.or(file.grpc_listen).unwrap_or_else(|| "127.0.0.1:10009".parse().expect("valid literal"));
        let api = ApiSecurity {
            tls: !(args.no_tls || file.no_tls),
            macaroons: !(args.no_macaroons || file.no_macaroons),
            tls_extra_ips: if args.tls_extra_ip.is_empty() { file.tls_extra_ip } else { args.tls_extra_ip },
            tls_extra_domains: if args.tls_extra_domain.is_empty() { file.tls_extra_domain } else { args.tls_extra_domain },
            rotate_root_key: args.rotate_macaroon_root_key,
        };
        // Without TLS, macaroons and everything else cross the network in clear: only on this machine.
        if !api.tls && !grpc_listen.ip().is_loopback() {
            return Err(NodeError::Config(format!(
                "--no-tls with the API on {grpc_listen}: without TLS the API may only listen on a loopback address (127.0.0.1 or ::1)"
            )));
        }
        let max_accepted_htlcs = args.max_accepted_htlcs.or(file.max_accepted_htlcs).unwrap_or(MAX_ACCEPTED_HTLCS);
        if !(1..=MAX_ACCEPTED_HTLCS).contains(&max_accepted_htlcs) {
            return Err(NodeError::Config(format!("--max-accepted-htlcs {max_accepted_htlcs} is outside 1..={MAX_ACCEPTED_HTLCS}")));
        }
        let htlc_delay_ms = args.htlc_delay_ms.or(file.htlc_delay_ms).unwrap_or(0);
        if htlc_delay_ms > 1000 {
            return Err(NodeError::Config(format!("--htlc-delay-ms {htlc_delay_ms} is above 1000")));
        }
        let trusted = if args.trusted_peer_0conf.is_empty() { file.trusted_peer_0conf } else { args.trusted_peer_0conf };
        let trusted_peers_0conf = trusted
            .iter()
            .map(|id| id.trim().parse().map_err(|_| NodeError::Config(format!("--trusted-peer-0conf {id:?} is not a node id (66 hex characters)"))))
            .collect::<Result<Vec<_>, _>>()?;
        let store = StoreChoice::from_setting(args.db.or(file.db), args.db_password_file.or(file.db_password_file), args.db_ca_file.or(file.db_ca_file))?;
        Ok(Self {
            api,
            max_accepted_htlcs,
            htlc_delay: std::time::Duration::from_millis(htlc_delay_ms),
            store,
            trusted_peers_0conf,
            reject_inbound_splices: args.reject_inbound_splices || file.reject_inbound_splices,
            forward_to_private_channels: args.forward_to_private_channels.or(file.forward_to_private_channels).unwrap_or(true),
            fees,
            network,
            data_dir,
            bitcoind_rpc_url,
            bitcoind_rpc_user,
            bitcoind_rpc_password,
            listen: args.listen.or(file.listen).unwrap_or_else(|| "0.0.0.0:9735".parse().expect("valid literal")),
            grpc_listen,
            alias,
        })
    }

    pub fn seed_path(&self) -> PathBuf {
        lanes_store::layout::seed_path(&self.data_dir)
    }

    pub fn db_path(&self) -> PathBuf {
        lanes_store::layout::db_path(&self.data_dir)
    }
}

pub fn parse_network(s: &str) -> Result<Network, NodeError> {
    match s {
        "bitcoin" | "mainnet" => Ok(Network::Bitcoin),
        "testnet" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(NodeError::Config(format!("unknown network {other:?}: use bitcoin, testnet, testnet4, signet or regtest"))),
    }
}

fn default_rpc_port(network: Network) -> u16 {
    match network {
        Network::Bitcoin => 8332,
        Network::Testnet => 18332,
        Network::Testnet4 => 48332,
        Network::Signet => 38332,
        Network::Regtest => 18443,
    }
}

fn default_data_dir(network: Network) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".lanes").join(network.to_string())
}

fn read_file(path: &Path) -> Result<Args, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("reading {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
}

fn read_password_file(path: &Path) -> Result<String, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("reading password file {}: {e}", path.display())))?;
    let password = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
    if password.is_empty() {
        return Err(NodeError::Config(format!("password file {} is empty", path.display())));
    }
    Ok(password)
}

fn read_cookie(path: &Path) -> Result<(String, String), NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("reading cookie {}: {e}", path.display())))?;
    let (u, p) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| NodeError::Config(format!("cookie {} is not user:password", path.display())))?;
    Ok((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("lanesd").chain(list.iter().copied()))
    }

    #[test]
    fn defaults_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let c = Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password", "p"])).unwrap();
        assert_eq!(c.network, Network::Regtest);
        assert_eq!(c.bitcoind_rpc_url, "http://127.0.0.1:18443");
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:10009");
        assert_eq!(c.listen.port(), 9735);
        assert!(c.forward_to_private_channels, "LND and CLN forward into private channels by default");
        assert_eq!(c.fees, FeePolicy::default());
    }

    /// A config from the command line: a data dir, bitcoind credentials, and `extra`.
    fn config_with(dir: &std::path::Path, extra: &[&str]) -> Result<Config, NodeError> {
        let base = ["--data-dir", dir.to_str().unwrap(), "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password", "p"];
        Config::from_args(args(&[&base[..], extra].concat()))
    }

    #[test]
    fn fee_policy_and_private_forwarding_can_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &[&str]| config_with(dir.path(), extra);
        let c = with(&["--forward-to-private-channels", "false", "--max-fee-rate-fallback", "50", "--max-dust-htlc-exposure-msat", "5000000"]).unwrap();
        assert!(!c.forward_to_private_channels);
        assert_eq!(c.fees.max_fee_rate_fallback, 50);
        assert_eq!(c.fees.dust_exposure, DustExposure::FixedMsat(5_000_000));
        assert_eq!(with(&["--dust-exposure-multiplier", "20000"]).unwrap().fees.dust_exposure, DustExposure::Multiplier(20_000));
        assert!(with(&["--dust-exposure-multiplier", "1", "--max-dust-htlc-exposure-msat", "1"]).is_err(), "one dust policy at a time");
        assert!(with(&["--max-fee-rate-fallback", "0"]).is_err());
    }

    #[test]
    fn the_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let file = dir.path().join("rpcpass");
        std::fs::write(&file, "s3cret\n").unwrap();
        let f = file.to_str().unwrap();
        let c = Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password-file", f])).unwrap();
        assert_eq!(c.bitcoind_rpc_password, "s3cret");
        assert!(Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password", "x", "--bitcoind-rpc-password-file", f])).is_err());
        std::fs::write(&file, "").unwrap();
        assert!(Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password-file", f])).is_err());
    }

    #[test]
    fn the_store_is_sled_unless_a_postgres_connection_string_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &[&str]| config_with(dir.path(), extra);
        assert_eq!(with(&[]).unwrap().store, StoreChoice::Sled);
        assert_eq!(with(&["--db", "sled"]).unwrap().store, StoreChoice::Sled);
        let pass = dir.path().join("dbpass");
        std::fs::write(&pass, "pg-s3cret\n").unwrap();
        let dsn = "postgres://lanes@db.example:5432/lanes?sslmode=require";
        let c = with(&["--db", dsn, "--db-password-file", pass.to_str().unwrap(), "--db-ca-file", "/etc/lanes/ca.pem"]).unwrap();
        let want = lanes_store::PgOptions { dsn: dsn.into(), password: Some("pg-s3cret".into()), ca_file: Some("/etc/lanes/ca.pem".into()) };
        assert_eq!(c.store, StoreChoice::Postgres(want));
        assert!(!format!("{c:?}").contains("pg-s3cret") && !format!("{c:?}").contains("db.example"), "the config's Debug shows no connection details");
        assert_eq!(with(&["--db", "host=127.0.0.1 user=lanes dbname=lanes"]).unwrap().store, StoreChoice::Postgres(lanes_store::PgOptions { dsn: "host=127.0.0.1 user=lanes dbname=lanes".into(), password: None, ca_file: None }));
        let err = |extra: &[&str]| with(extra).unwrap_err().to_string();
        assert!(err(&["--db", "mysql://x"]).contains("--db must be `sled` or a PostgreSQL connection string"));
        assert!(err(&["--db", "postgres://lanes@h:notaport/x"]).contains("--db is not a PostgreSQL connection string"));
        assert!(err(&["--db-password-file", pass.to_str().unwrap()]).contains("for a PostgreSQL --db"));
        std::fs::write(dir.path().join("lanesd.toml"), format!("db = \"{dsn}\"\n")).unwrap();
        assert!(matches!(with(&[]).unwrap().store, StoreChoice::Postgres(_)), "the config file can choose it");
    }

    #[test]
    fn htlcs_are_processed_at_once_unless_a_delay_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &[&str]| config_with(dir.path(), extra);
        assert_eq!(with(&[]).unwrap().htlc_delay, std::time::Duration::ZERO, "at once, as CLN and Eclair");
        assert_eq!(with(&["--htlc-delay-ms", "50"]).unwrap().htlc_delay, std::time::Duration::from_millis(50));
        assert!(with(&["--htlc-delay-ms", "1001"]).unwrap_err().to_string().contains("above 1000"));
    }

    #[test]
    fn trusted_zero_conf_peers_are_node_ids() {
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &[&str]| config_with(dir.path(), extra);
        assert!(with(&[]).unwrap().trusted_peers_0conf.is_empty(), "nobody is trusted by default");
        let id = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619";
        assert_eq!(with(&["--trusted-peer-0conf", id]).unwrap().trusted_peers_0conf, vec![id.parse().unwrap()]);
        let err = with(&["--trusted-peer-0conf", "02ee"]).unwrap_err().to_string();
        assert!(err.contains("is not a node id"), "{err}");
    }

    #[test]
    fn file_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lanesd.toml"), "alias = \"fromfile\"\nbitcoind_rpc_user = \"fu\"\nbitcoind_rpc_password = \"fp\"\ngrpc_listen = \"127.0.0.1:1\"\n").unwrap();
        let d = dir.path().to_str().unwrap();
        let c = Config::from_args(args(&["--data-dir", d, "--grpc-listen", "127.0.0.1:2"])).unwrap();
        assert_eq!(c.alias, "fromfile");
        assert_eq!(c.bitcoind_rpc_user, "fu");
        assert_eq!(c.grpc_listen.port(), 2);
    }

    #[test]
    fn bad_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(Config::from_args(args(&["--data-dir", d, "--network", "moon"])).is_err());
        assert!(Config::from_args(args(&["--data-dir", d])).is_err(), "no bitcoind credentials");
        assert!(Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u"])).is_err());
        std::fs::write(dir.path().join("lanesd.toml"), "nonsense = 1\n").unwrap();
        assert!(Config::from_args(args(&["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password", "p"])).is_err());
    }

    /// TLS and macaroons are on unless turned off, and the API never goes beyond loopback without TLS.
    #[test]
    fn the_api_is_secured_by_default_and_plaintext_stays_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let base = ["--data-dir", d, "--bitcoind-rpc-user", "u", "--bitcoind-rpc-password", "p"];
        let with = |more: &[&str]| Config::from_args(args(&[&base[..], more].concat()));
        let c = with(&["--grpc-listen", "0.0.0.0:10009"]).unwrap();
        assert!(c.api.tls && c.api.macaroons);
        let dev = with(&["--no-tls", "--no-macaroons"]).unwrap();
        assert!(!dev.api.tls && !dev.api.macaroons, "on the default 127.0.0.1");
        let refused = with(&["--no-tls", "--grpc-listen", "0.0.0.0:10009"]).unwrap_err().to_string();
        assert!(refused.contains("--no-tls") && refused.contains("loopback"), "{refused}");
        assert_eq!(c.max_accepted_htlcs, 483, "LND's default, the protocol's maximum");
        assert_eq!(with(&["--max-accepted-htlcs", "30"]).unwrap().max_accepted_htlcs, 30);
        assert!(with(&["--max-accepted-htlcs", "484"]).unwrap_err().to_string().contains("1..=483"));
        let names = with(&["--tls-extra-ip", "10.0.0.5", "--tls-extra-domain", "node.example.com"]).unwrap();
        assert_eq!((names.api.tls_extra_ips.len(), names.api.tls_extra_domains.as_slice()), (1, &["node.example.com".to_string()][..]));
    }
}

/// How often the chain and wallet are polled.
pub const CHAIN_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// How often fee estimates are refreshed from bitcoind.
pub const FEE_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);
