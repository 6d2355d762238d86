//! The on-chain wallet as a user sees it: a real bitcoind, a real lanesd, spoken to over gRPC (lanes-cli's
//! wallet commands are in cli.rs).
//!
//! Each test starts its own regtest network (see lanes-regtest). Related checks share one story to keep the
//! number of bitcoind instances small; bad input has a test of its own.
use std::str::FromStr;

use lanes_regtest::bitcoin::{Address, Network, Txid};
use lanes_regtest::proto::v1::{SendCoinsRequest, Utxo, WalletBalanceResponse};
use lanes_regtest::{Net, Node};
use tonic::Code;

const FUND: u64 = 1_000_000;
const PAY: u64 = 200_000;
/// A valid mainnet address (the wrong network for a regtest node).
const MAINNET_ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

async fn start_net() -> Net {
    Net::start_with(env!("CARGO_BIN_EXE_lanesd")).await
}

#[tokio::test]
async fn wallet_is_funded_pays_out_survives_a_restart_and_sweeps() {
    let net = start_net().await;
    let alice = net.node("alice").await;
    assert_eq!(alice.balance().await, balance(0, 0), "a new wallet is empty");

    // Funded from bitcoind: unconfirmed until a block is mined, then confirmed.
    let address = alice.new_address().await;
    let funding = net.send_to_address(&address, FUND).await;
    wait_for_balance(&alice, balance(0, FUND)).await;
    let pending = alice.list_unspent(0).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_utxo(&pending[0], funding, FUND, &address, 0);
    assert!(alice.list_unspent(1).await.is_empty(), "min_confs 1 leaves out the unconfirmed output");
    // What an operator greps for: the coins as they arrive, then their confirmation.
    alice.wait_log_line(&["wallet received coins (unconfirmed)", &format!("amount_sat={FUND} txid={funding}")]).await;

    net.mine(1).await;
    wait_for_balance(&alice, balance(FUND, 0)).await;
    let height = net.height().await;
    alice.wait_log_line(&["wallet transaction confirmed", &format!("txid={funding}"), &format!("height={height}")]).await;
    let utxos = alice.list_unspent(1).await;
    assert_eq!(utxos.len(), 1, "{utxos:?}");
    assert_utxo(&utxos[0], funding, FUND, &address, 1);
    net.mine(1).await;
    assert_eq!(alice.list_unspent(2).await[0].confirmations, 2, "confirmations follow the chain");

    // Paying back to bitcoind: it sees exactly the amount, and the balance drops by amount + fee.
    let payee = net.new_address().await;
    let sent = alice.send_coins(&payee, PAY, "2").await;
    let txid = Txid::from_str(&sent.txid).unwrap_or_else(|e| panic!("SendCoins returned txid {:?}: {e}", sent.txid));
    assert_eq!(sent.amount_sat, PAY);
    assert!((100..5_000).contains(&sent.fee_sat), "a one-input payment at 2 sat/vB paid a fee of {} sat", sent.fee_sat);
    assert!(net.mempool().await.contains(&txid), "SendCoins broadcast through bitcoind");
    net.mine(1).await;
    assert_eq!(net.tx_confirmations(txid).await, 1);
    assert_eq!(net.get_received(&payee).await, PAY, "bitcoind received exactly the amount sent");
    let change = FUND - PAY - sent.fee_sat;
    wait_for_balance(&alice, balance(change, 0)).await;
    let utxos = alice.list_unspent(1).await;
    assert_eq!(utxos.len(), 1, "only the change is left: {utxos:?}");
    assert!(utxos[0].is_change && utxos[0].amount_sat == change && utxos[0].outpoint.starts_with(&sent.txid), "{utxos:?}");

    // A restart keeps the identity, the seed, the money and the address index.
    let handed_out = [address, alice.new_address().await, alice.new_address().await];
    let node_id = alice.info().await.node_id;
    let seed = read_seed(&alice);
    alice.restart().await;
    assert_eq!(alice.info().await.node_id, node_id, "the node id comes from the seed");
    assert_eq!(read_seed(&alice), seed, "the seed file is never rewritten");
    assert_eq!(alice.balance().await, balance(change, 0), "the balance survives a restart");
    assert_eq!(alice.list_unspent(0).await, utxos, "the outputs survive a restart");
    let fresh = alice.new_address().await;
    assert!(!handed_out.contains(&fresh), "{fresh} was handed out before the restart: {handed_out:?}");

    // Sweeping: everything minus the fee goes out, nothing is left.
    let sweep_to = net.new_address().await;
    let request = SendCoinsRequest { address: sweep_to.to_string(), amount_sat: 0, send_all: true, sat_per_vbyte: "2".into() };
    let swept = alice.client().send_coins(request).await.expect("SendCoins send_all").into_inner();
    assert_eq!(swept.amount_sat + swept.fee_sat, change, "send_all spends the whole balance: {swept:?}");
    net.mine(1).await;
    assert_eq!(net.get_received(&sweep_to).await, change - swept.fee_sat);
    wait_for_balance(&alice, balance(0, 0)).await;
    assert!(alice.list_unspent(0).await.is_empty());
}

#[tokio::test]
async fn bad_send_requests_are_rejected_and_change_nothing() {
    let net = start_net().await;
    let alice = net.node("alice").await;
    alice.fund(FUND).await;
    let balance_before = alice.balance().await;
    let utxos_before = alice.list_unspent(0).await;
    let payee = net.new_address().await.to_string();
    assert!(
        Address::from_str(MAINNET_ADDRESS).unwrap().is_valid_for_network(Network::Bitcoin),
        "the test's mainnet address is a real one"
    );

    // (what, request, expected code, words the message must contain; "a|b" means either)
    let cases = [
        ("an invalid address", send("bogus", 10_000, false, "2"), Code::InvalidArgument, &["address", "bogus"][..]),
        ("a mainnet address", send(MAINNET_ADDRESS, 10_000, false, "2"), Code::InvalidArgument, &["address", "regtest|network"]),
        ("more than the balance", send(&payee, 2 * FUND, false, "2"), Code::FailedPrecondition, &["insufficient|balance|funds"]),
        ("a zero amount", send(&payee, 0, false, "2"), Code::InvalidArgument, &["amount"]),
        ("a fee rate of \"abc\"", send(&payee, 10_000, false, "abc"), Code::InvalidArgument, &["fee", "abc"]),
        ("a fee rate of \"-1\"", send(&payee, 10_000, false, "-1"), Code::InvalidArgument, &["fee", "-1"]),
        ("send_all with an amount", send(&payee, 10_000, true, "2"), Code::InvalidArgument, &["send_all"]),
    ];
    for (what, request, code, words) in cases {
        let status = match alice.client().send_coins(request).await {
            Ok(resp) => panic!("SendCoins with {what} succeeded: {:?}", resp.into_inner()),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "SendCoins with {what}: {status:?}");
        assert_mentions(status.message(), words, what);
        assert_eq!(alice.balance().await, balance_before, "SendCoins with {what} changed the balance");
        assert_eq!(alice.list_unspent(0).await, utxos_before, "SendCoins with {what} changed the outputs");
        assert!(net.mempool().await.is_empty(), "SendCoins with {what} broadcast something");
    }
}

// ---- helpers ----

fn balance(confirmed_sat: u64, unconfirmed_sat: u64) -> WalletBalanceResponse {
    WalletBalanceResponse { confirmed_sat, unconfirmed_sat, total_sat: confirmed_sat + unconfirmed_sat }
}

async fn wait_for_balance(node: &Node, want: WalletBalanceResponse) {
    node.wait_until(format!("balance {want:?}"), || async {
        let got = node.balance().await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

fn assert_utxo(utxo: &Utxo, txid: Txid, amount_sat: u64, address: &str, confirmations: u32) {
    assert!(utxo.outpoint.starts_with(&format!("{txid}:")), "outpoint of {utxo:?} is not in {txid}");
    assert_eq!((utxo.amount_sat, utxo.address.as_str(), utxo.confirmations, utxo.is_change), (amount_sat, address, confirmations, false), "{utxo:?}");
}

fn read_seed(node: &Node) -> Vec<u8> {
    std::fs::read(node.seed_path()).unwrap_or_else(|e| panic!("cannot read {}: {e}", node.seed_path().display()))
}

fn send(address: &str, amount_sat: u64, send_all: bool, sat_per_vbyte: &str) -> SendCoinsRequest {
    SendCoinsRequest { address: address.into(), amount_sat, send_all, sat_per_vbyte: sat_per_vbyte.into() }
}

/// Asserts that `message` contains each word (case-insensitively); "a|b" accepts either.
fn assert_mentions(message: &str, words: &[&str], what: &str) {
    let lower = message.to_lowercase();
    for word in words {
        assert!(
            word.split('|').any(|w| lower.contains(&w.to_lowercase())),
            "the error for {what} should mention {word:?}, but says: {message:?}"
        );
    }
}
