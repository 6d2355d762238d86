//! lanes' regtest harness: a real bitcoind and real lanesd processes, for integration tests and for trying
//! lanes by hand (`regtest/run.sh`).
//!
//! ```no_run
//! # async fn story() {
//! use lanes_regtest::Net;
//! // bitcoind on free ports, 101 blocks mined. Tests in node/ name their lanesd:
//! // Net::start_with(env!("CARGO_BIN_EXE_lanesd")); Net::start() takes $LANESD_EXE or target/debug/lanesd.
//! let net = Net::start().await;
//! let alice = net.node("alice").await;   // lanesd started, answering and synced to the chain
//! alice.fund(1_000_000).await;           // paid by bitcoind, one block mined, confirmed in alice's balance
//! net.mine(6).await;                     // every running node has seen the six blocks
//! alice.restart().await;                 // SIGTERM, clean exit, started again on the same data dir and ports
//! let info = alice.info().await;         // GetInfo
//! let mut client = alice.client();       // the raw gRPC client, for anything else
//!
//! // Lightning, as a story (regtest/src/lightning.rs). Common openings are one call:
//! // net.pair(wallet_sat, capacity) -> Pair { alice, bob, channel }, and
//! // net.line(wallet_sat, capacity) -> Line { alice, bob, carol, alice_bob, bob_carol }.
//! let bob = net.node("bob").await;
//! alice.connect(&bob).await;                                    // ConnectPeer to bob.peer_address()
//! let channel = alice.open_channel(&bob, 500_000).await;        // returns once the funding tx is in the mempool
//! net.mine(6).await;
//! alice.wait_channel_active(&channel).await;
//! alice.wait_graph_channels(1).await;                           // both directions' policies gossiped
//! let invoice = bob.add_invoice(10_000_000, "coffee").await;    // msat
//! let payment = alice.pay_invoice(&invoice.bolt11).await.expect("not refused");
//! let keysend = alice.keysend(&bob, 5_000).await;               // Result<Payment, tonic::Status>
//!
//! // Misbehaving peers, for recovery stories: test-only knobs (lanes_channel::test_knobs) by environment,
//! // net.node_with_env("bob", &[(KNOB, "1")]); and an in-process peer that syncs gossip by queries only,
//! // as CLN does: lanes_regtest::gossip_peer::GossipPeer::new().connect(&alice).
//! # }
//! ```
//!
//! Other implementations, for interop stories: `net.electrum("eve")` starts an Electrum wallet (with its own
//! ElectrumX) on the net (regtest/src/electrum.rs).
//!
//! Everything waits by polling with a deadline ([`wait_until`]); a wait that times out panics naming what
//! it waited for, with the tail of the relevant log. Everything runs on 127.0.0.1 in one temporary directory,
//! removed at the end unless `LANES_KEEP_TMP=1` is set or the test panicked (its path is printed then).
//!
//! This crate owns the harness only: it must never contain node logic, and never touch processes, ports or
//! directories it did not create itself.
//!
//! Owns: the harness's module list and exports. Must never: hold logic of its own.
mod bitcoind;
pub mod cheat;
mod electrum;
pub mod gossip_peer;
pub mod raw;
mod lightning;
mod net;
mod node;
mod offers;
mod postgres;
mod process;
mod proxy;
mod wait;

pub use electrum::{btc_to_sat, electrum_exes, sat_to_btc, Electrum, ElectrumBalance, ElectrumChannel, ElectrumInvoice, ElectrumPayment, ELECTRUM_FEE_ETAS};
pub use bitcoind::{bitcoind_exe, Bitcoind, MINER_WALLET, RPC_PASSWORD, RPC_USER};
pub use net::{Net, KEEP_TMP_ENV, LANESD_EXE_ENV, TEST_STORE_ENV};
pub use lightning::{HeldPayment, Line, Pair};
pub use node::Node;
pub use postgres::{postgres_bin, Postgres, POSTGRES_PASSWORD, POSTGRES_USER};
pub use process::free_port;
pub use proxy::Proxy;
pub use wait::{log_tail, wait_until, wait_until_logged, Outcome, POLL_INTERVAL, START_TIMEOUT, STOP_TIMEOUT, SYNC_TIMEOUT};

/// The crates the harness speaks in, so tests need not depend on them separately.
pub use bitcoin;
pub use bitcoincore_rpc::{self, RpcApi};
pub use lanes_proto as proto;
