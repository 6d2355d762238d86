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
        let password = pick(args.bitcoind_rpc_password, file.bitcoind_rpc_password);
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
        Ok(Self {
            network,
            data_dir,
            bitcoind_rpc_url,
            bitcoind_rpc_user,
            bitcoind_rpc_password,
            listen: args.listen.or(file.listen).unwrap_or_else(|| "0.0.0.0:9735".parse().expect("valid literal")),
            grpc_listen: args.grpc_listen.or(file.grpc_listen).unwrap_or_else(|| "127.0.0.1:10009".parse().expect("valid literal")),
            alias,
        })
    }

    pub fn seed_path(&self) -> PathBuf {
        self.data_dir.join("seed")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("db")
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
}
