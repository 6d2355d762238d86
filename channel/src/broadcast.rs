//! Transactions the node depends on, kept and re-broadcast until they confirm.
//!
//! Owns: the durable journal of every transaction LDK hands us to broadcast (channel fundings,
//! cooperative closes, commitments, justice transactions, HTLC claims, sweeps, fee bumps), written
//! before the first broadcast attempt; re-broadcasting the unconfirmed ones at start-up, on every new
//! block and every minute; and forgetting them once they are buried (6 blocks) or can never confirm
//! (their inputs are spent by something else). Must never: broadcast anything LDK did not hand over, nor
//! decide what a transaction spends.
//!
//! Why: LDK re-broadcasts a close's transactions on new blocks, but not a channel's funding transaction;
//! a funding whose only broadcast failed (bitcoind down, or a crash between LDK's call and the RPC) was
//! otherwise never sent again, while LDK waited for it forever and the wallet, after a restart, counted
//! its inputs as spendable again. Ordering: [`BroadcastJournal::record`] returns only once the
//! transaction is on disk (the store flushes), and LDK calls the broadcaster before it persists the
//! state that says the transaction was sent, so no state on disk assumes a broadcast the journal lacks.
use std::collections::BTreeMap;
use std::sync::Mutex;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Transaction, Txid};
use lanes_store::layout::BROADCAST_JOURNAL as JOURNAL;
use lanes_store::DynStore;

/// Blocks after which a confirmed transaction is forgotten (a deeper reorg is not expected).
pub const BURIED_DEPTH: u32 = 6;

/// What happened to one broadcast attempt, as bitcoind answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// In the mempool now (accepted, or already there).
    InMempool,
    /// Already confirmed.
    Confirmed,
    /// Its inputs are missing or spent: replaced, or confirmed with every output spent. Never again.
    InputsSpent,
    /// Refused for another reason (fee, a mempool conflict, bitcoind unreachable): try again later.
    Refused(String),
}

impl Outcome {
    /// Reads bitcoind's `sendrawtransaction` answer.
    pub fn of(result: Result<(), String>) -> Outcome {
        match result {
            Ok(()) => Outcome::InMempool,
            Err(e) if e.contains("already in utxo set") || e.contains("already in block chain") => Outcome::Confirmed,
            Err(e) if e.contains("txn-already-in-mempool") || e.contains("txn-already-known") => Outcome::InMempool,
            Err(e) if e.contains("missingorspent") || e.contains("missing-inputs") || e.contains("Missing inputs") => Outcome::InputsSpent,
            Err(e) => Outcome::Refused(e),
        }
    }
}

/// Told when a transaction enters the journal (`true`) and when it leaves it (`false`): the wallet keeps
/// the inputs of journaled transactions spent, across restarts.
pub type PendingHook = Box<dyn Fn(Txid, bool) + Send + Sync>;

struct Entry {
    tx: Transaction,
    /// `tx`'s id, computed once (every lookup is by id).
    txid: Txid,
    /// Height at which bitcoind first said it was confirmed.
    confirmed_at: Option<u32>,
    last: Option<Outcome>,
}

/// The durable journal of transactions to broadcast until they confirm.
pub struct BroadcastJournal {
    store: DynStore,
    /// By sequence number: re-broadcast in the order LDK handed them over (parents before children).
    entries: Mutex<BTreeMap<u64, Entry>>,
    hook: Mutex<Option<PendingHook>>,
}

impl BroadcastJournal {
    /// Reads the journal back from `store`.
    pub fn load(store: DynStore) -> lightning::io::Result<Self> {
        let mut entries = BTreeMap::new();
        for key in store.list(JOURNAL.primary, JOURNAL.secondary)? {
            let bytes = store.read(JOURNAL.primary, JOURNAL.secondary, &key)?;
            match decode(&bytes) {
                Some((seq, tx)) => {
                    entries.insert(seq, Entry { txid: tx.compute_txid(), tx, confirmed_at: None, last: None });
                }
                None => tracing::warn!(key = %key, "unreadable entry in the broadcast journal: ignored"),
            }
        }
        Ok(Self { store, entries: Mutex::new(entries), hook: Mutex::new(None) })
    }

    /// Sets who is told about transactions entering and leaving; told at once about those already in.
    pub fn set_hook(&self, hook: PendingHook) {
        for txid in self.txids() {
            hook(txid, true);
        }
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Every journaled transaction id, in broadcast order.
    pub fn txids(&self) -> Vec<Txid> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).values().map(|e| e.txid).collect()
    }

    /// Writes `tx` to the journal and returns once it is on disk. Already journaled: nothing to do.
    pub fn record(&self, tx: &Transaction) -> lightning::io::Result<()> {
        let txid = tx.compute_txid();
        let seq = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.values().any(|e| e.txid == txid) {
                return Ok(());
            }
            let seq = entries.keys().next_back().map_or(0, |s| s + 1);
            entries.insert(seq, Entry { tx: tx.clone(), txid, confirmed_at: None, last: None });
            seq
        };
        let mut bytes = seq.to_be_bytes().to_vec();
        bytes.extend(serialize(tx));
        if let Err(e) = self.store.write(JOURNAL.primary, JOURNAL.secondary, &txid.to_string(), bytes) {
            self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&seq);
            return Err(e);
        }
        if let Some(hook) = &*self.hook.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(txid, true);
        }
        Ok(())
    }

    /// A journaled transaction that spends `outpoint` (a channel's closing transaction spends its funding).
    pub fn spender_of(&self, outpoint: bitcoin::OutPoint) -> Option<Txid> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.values().find(|e| e.tx.input.iter().any(|i| i.previous_output == outpoint)).map(|e| e.txid)
    }

    /// The journaled transaction `txid`, if it is in the journal.
    pub fn get(&self, txid: Txid) -> Option<Transaction> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).values().find(|e| e.txid == txid).map(|e| e.tx.clone())
    }

    /// Forgets every journaled transaction spending `outpoint` (an output that can never exist: a channel
    /// funding that was double-spent); returns their ids.
    pub fn forget_spenders_of(&self, outpoint: bitcoin::OutPoint) -> Vec<Txid> {
        let spenders: Vec<(u64, Txid)> = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.iter().filter(|(_, e)| e.tx.input.iter().any(|i| i.previous_output == outpoint)).map(|(s, e)| (*s, e.txid)).collect()
        };
        for (seq, txid) in &spenders {
            self.forget(*seq, *txid);
        }
        spenders.into_iter().map(|(_, txid)| txid).collect()
    }

    /// Removes entry `seq` from memory and disk, and tells the hook.
    fn forget(&self, seq: u64, txid: Txid) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&seq);
        if let Err(e) = self.store.remove(JOURNAL.primary, JOURNAL.secondary, &txid.to_string(), false) {
            tracing::warn!(%txid, error = %e, "could not remove a settled transaction from the broadcast journal");
        }
        if let Some(hook) = &*self.hook.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(txid, false);
        }
    }

    /// The transactions to send now, in order (everything not yet buried).
    pub fn due(&self) -> Vec<Transaction> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).values().map(|e| e.tx.clone()).collect()
    }

    /// Notes the outcome of the first broadcast of `txid`, without acting on it: the next re-broadcast then
    /// only reports a change.
    pub fn note(&self, txid: Txid, outcome: Outcome) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.values_mut().find(|e| e.txid == txid) {
            if e.last.is_none() {
                e.last = Some(outcome);
            }
        }
    }

    /// Takes bitcoind's answer to a broadcast of `txid` at chain height `height`; returns the outcome if it
    /// differs from the previous attempt's (what an operator should be told), and forgets the transaction
    /// once it is buried or can never confirm.
    pub fn settle(&self, txid: Txid, outcome: Outcome, height: u32) -> Option<Outcome> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (&seq, entry) = entries.iter_mut().find(|(_, e)| e.txid == txid)?;
        let changed = entry.last.as_ref() != Some(&outcome);
        let forget = match &outcome {
            Outcome::Confirmed => {
                let at = *entry.confirmed_at.get_or_insert(height);
                height >= at + BURIED_DEPTH - 1
            }
            Outcome::InputsSpent => true,
            Outcome::InMempool | Outcome::Refused(_) => {
                // Back from a block (a reorg) or never confirmed.
                entry.confirmed_at = None;
                false
            }
        };
        entry.last = Some(outcome.clone());
        if forget {
            drop(entries);
            self.forget(seq, txid);
        }
        changed.then_some(outcome)
    }
}

fn decode(bytes: &[u8]) -> Option<(u64, Transaction)> {
    let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    Some((seq, deserialize(&bytes[8..]).ok()?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use lanes_store::SledStore;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, TxOut};

    fn tx(n: u64) -> Transaction {
        Transaction { version: Version::TWO, lock_time: LockTime::ZERO, input: vec![], output: vec![TxOut { value: Amount::from_sat(n), script_pubkey: ScriptBuf::new() }] }
    }

    fn store() -> (tempfile::TempDir, DynStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        (dir, Arc::new(store))
    }

    #[test]
    fn recorded_transactions_survive_a_restart_in_order_until_buried_or_dead() {
        let (_dir, store) = store();
        let j = BroadcastJournal::load(Arc::clone(&store)).unwrap();
        let (a, b, c) = (tx(1), tx(2), tx(3));
        for t in [&a, &b, &c, &a] {
            j.record(t).unwrap();
        }
        // A restart reads them back, in the order they were handed over.
        let j = BroadcastJournal::load(Arc::clone(&store)).unwrap();
        assert_eq!(j.txids(), vec![a.compute_txid(), b.compute_txid(), c.compute_txid()]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        j.set_hook(Box::new(move |txid, pending| s.lock().unwrap().push((txid, pending))));
        assert_eq!(seen.lock().unwrap().len(), 3, "the wallet is told about what is pending at start-up");

        // a confirms at 100: kept until buried (6 blocks), b can never confirm, c is refused for now.
        assert_eq!(j.settle(a.compute_txid(), Outcome::Confirmed, 100), Some(Outcome::Confirmed));
        assert_eq!(j.settle(a.compute_txid(), Outcome::Confirmed, 104), None, "same outcome: nothing new to say");
        assert_eq!(j.settle(b.compute_txid(), Outcome::InputsSpent, 104), Some(Outcome::InputsSpent));
        let refused = Outcome::Refused("connection refused".into());
        assert_eq!(j.settle(c.compute_txid(), refused.clone(), 104), Some(refused));
        assert_eq!(j.txids(), vec![a.compute_txid(), c.compute_txid()]);
        j.settle(a.compute_txid(), Outcome::Confirmed, 105);
        assert_eq!(j.txids(), vec![c.compute_txid()]);
        assert!(seen.lock().unwrap().contains(&(a.compute_txid(), false)) && seen.lock().unwrap().contains(&(b.compute_txid(), false)));
        let j = BroadcastJournal::load(store).unwrap();
        assert_eq!(j.txids(), vec![c.compute_txid()], "settled transactions are gone from disk too");
    }

    #[test]
    fn spenders_of_a_dead_output_are_forgotten() {
        let (_dir, store) = store();
        let j = BroadcastJournal::load(Arc::clone(&store)).unwrap();
        let dead = bitcoin::OutPoint { txid: tx(9).compute_txid(), vout: 0 };
        let mut commitment = tx(1);
        commitment.input.push(bitcoin::TxIn { previous_output: dead, ..Default::default() });
        let other = tx(2);
        j.record(&commitment).unwrap();
        j.record(&other).unwrap();
        assert_eq!(j.get(commitment.compute_txid()), Some(commitment.clone()));
        assert_eq!(j.forget_spenders_of(dead), vec![commitment.compute_txid()]);
        assert_eq!(j.txids(), vec![other.compute_txid()]);
        assert_eq!(BroadcastJournal::load(store).unwrap().txids(), vec![other.compute_txid()], "gone from disk too");
    }

    #[test]
    fn bitcoind_answers_are_read() {
        assert_eq!(Outcome::of(Ok(())), Outcome::InMempool);
        assert_eq!(Outcome::of(Err("RPC error -27: Transaction outputs already in utxo set".into())), Outcome::Confirmed);
        assert_eq!(Outcome::of(Err("RPC error -25: bad-txns-inputs-missingorspent".into())), Outcome::InputsSpent);
        assert!(matches!(Outcome::of(Err("Connection refused (os error 111)".into())), Outcome::Refused(_)));
    }
}
