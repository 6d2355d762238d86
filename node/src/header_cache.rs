//! The block headers the start-up sync walks, fetched once.
//!
//! Owns: filling the header cache that LDK's `synchronize_listeners` reads, before it runs.
//! Must never: decide what a listener connects or disconnects (LDK's sync does, from the cache or from
//! bitcoind), or fail a start-up (a failure stops the filling: what is in the cache by then are checked
//! best-chain headers, and the sync asks bitcoind for the rest).
//!
//! Why: `synchronize_listeners` walks back from bitcoind's tip for each listener, one bitcoind call per
//! header, and keeps nothing of one walk for the next. LDK writes a monitor on a new block only now and
//! then, so after a restart with 1,000 channels the monitors sat on ~60 different blocks: ~1,800 calls, 0.4-0.6 s
//! of the start-up. With the best chain's headers down to the lowest listener in the cache, each walk finds
//! them there. A listener off the best chain (a reorg while stopped) is walked from bitcoind as before.
use bitcoin::{BlockHash, Network};
use lightning_block_sync::poll::{ChainPoller, Poll};
use lightning_block_sync::{init, BlockSource, BlockSourceError, Cache};

/// Fills `cache` with the best chain's headers from `source`'s tip down to the lowest block of `hashes` (the
/// blocks the listeners were last synced to): one call per header of `hashes` and one per header walked.
pub async fn warm<S: BlockSource + ?Sized, C: Cache>(source: &S, network: Network, cache: &mut C, hashes: &[BlockHash]) {
    if let Err(e) = fill(source, network, cache, hashes).await {
        tracing::debug!(error = ?e.into_inner(), "could not fill the header cache before the start-up sync; the sync asks bitcoind");
    }
}

async fn fill<S: BlockSource + ?Sized, C: Cache>(source: &S, network: Network, cache: &mut C, hashes: &[BlockHash]) -> Result<(), BlockSourceError> {
    let mut lowest = u32::MAX;
    for hash in hashes {
        lowest = lowest.min(source.get_header(hash, None).await?.height);
    }
    let mut header = init::validate_best_block_header(source).await?;
    let poller = ChainPoller::new(source, network);
    loop {
        cache.block_connected(header.header.block_hash(), header);
        if header.height <= lowest || cache.look_up(&header.header.prev_blockhash).is_some() {
            return Ok(());
        }
        // Checks that it builds on the one after it (proof of work, height, chain work), as the sync does.
        header = poller.look_up_previous_header(&header).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::pow::CompactTarget;
    use bitcoin::{absolute, transaction, Amount, Block, ScriptBuf, Transaction, TxIn, TxMerkleNode, TxOut};
    use lightning::chain::{self, BestBlock};
    use lightning_block_sync::{AsyncBlockSourceResult, BlockData, BlockHeaderData, UnboundedCache};

    use super::*;

    /// An in-memory chain with regtest proof of work, counting header requests.
    #[derive(Default)]
    struct MemChain {
        blocks: HashMap<BlockHash, (BlockHeaderData, Block)>,
        best: Option<BlockHash>,
        header_calls: AtomicUsize,
    }

    impl MemChain {
        /// `count` blocks on top of `parent` (a new chain when `None`); `tag` makes a fork's blocks differ.
        fn extend(&mut self, parent: Option<BlockHash>, count: u32, tag: u8) -> Vec<BlockHash> {
            let mut prev = parent.map(|h| self.blocks[&h].0);
            let mut made = Vec::new();
            for _ in 0..count {
                let height = prev.map_or(0, |p| p.height + 1);
                let coinbase = Transaction {
                    version: transaction::Version::ONE,
                    lock_time: absolute::LockTime::ZERO,
                    input: vec![TxIn { script_sig: ScriptBuf::from_bytes(vec![tag, (height >> 8) as u8, height as u8]), ..TxIn::default() }],
                    output: vec![TxOut { value: Amount::from_sat(50), script_pubkey: ScriptBuf::new() }],
                };
                let mut header = Header {
                    version: Version::TWO,
                    prev_blockhash: prev.map_or(BlockHash::all_zeros(), |p| p.header.block_hash()),
                    merkle_root: TxMerkleNode::from_raw_hash(coinbase.compute_txid().to_raw_hash()),
                    time: 1_700_000_000 + height,
                    bits: CompactTarget::from_consensus(0x207f_ffff),
                    nonce: 0,
                };
                while header.validate_pow(header.target()).is_err() {
                    header.nonce += 1;
                }
                let chainwork = prev.map_or(header.work(), |p| p.chainwork + header.work());
                let data = BlockHeaderData { header, height, chainwork };
                self.blocks.insert(header.block_hash(), (data, Block { header, txdata: vec![coinbase] }));
                made.push(header.block_hash());
                prev = Some(data);
            }
            made
        }
    }

    impl BlockSource for MemChain {
        fn get_header<'a>(&'a self, hash: &'a BlockHash, _: Option<u32>) -> AsyncBlockSourceResult<'a, BlockHeaderData> {
            self.header_calls.fetch_add(1, Ordering::Relaxed);
            let found = self.blocks.get(hash).map(|(h, _)| *h).ok_or_else(|| BlockSourceError::persistent("unknown block"));
            Box::pin(async move { found })
        }
        fn get_block<'a>(&'a self, hash: &'a BlockHash) -> AsyncBlockSourceResult<'a, BlockData> {
            let found = self.blocks.get(hash).map(|(_, b)| BlockData::FullBlock(b.clone())).ok_or_else(|| BlockSourceError::persistent("unknown block"));
            Box::pin(async move { found })
        }
        fn get_best_block(&self) -> AsyncBlockSourceResult<'_, (BlockHash, Option<u32>)> {
            let best = self.best.unwrap();
            let height = self.blocks[&best].0.height;
            Box::pin(async move { Ok((best, Some(height))) })
        }
    }

    /// A listener that notes what it is told: its block, as height and hash.
    struct Listener(Mutex<(u32, BlockHash)>);

    impl chain::Listen for Listener {
        fn filtered_block_connected(&self, header: &Header, _: &chain::transaction::TransactionData, height: u32) {
            let mut at = self.0.lock().unwrap();
            assert_eq!((at.0 + 1, at.1), (height, header.prev_blockhash), "connected in order, on top of its block");
            *at = (height, header.block_hash());
        }
        fn blocks_disconnected(&self, fork_point: BestBlock) {
            *self.0.lock().unwrap() = (fork_point.height, fork_point.block_hash);
        }
    }

    /// 40 listeners at blocks spread over 80 (one on a stale fork): the sync, with the cache filled first,
    /// brings every one to the tip along the best chain, the forked one through its fork point, and asks
    /// for each header about once instead of once per listener below it.
    #[tokio::test]
    async fn the_start_up_sync_walks_cached_headers_and_still_follows_forks() {
        let mut chain = MemChain::default();
        let main = chain.extend(None, 101, 0);
        let fork = chain.extend(Some(main[50]), 3, 1);
        chain.best = Some(main[100]);
        let height = |h: &BlockHash| chain.blocks[h].0.height;
        let mut starts: Vec<BlockHash> = (0..39).map(|i| main[20 + 2 * i]).collect();
        starts.push(fork[2]);
        let listeners: Vec<Listener> = starts.iter().map(|h| Listener(Mutex::new((height(h), *h)))).collect();

        let mut cache = UnboundedCache::new();
        warm(&chain, Network::Regtest, &mut cache, &starts).await;
        let sync: Vec<(BlockHash, &dyn chain::Listen)> = starts.iter().zip(&listeners).map(|(h, l)| (*h, l as &dyn chain::Listen)).collect();
        let tip = init::synchronize_listeners(&chain, Network::Regtest, &mut cache, sync).await.unwrap();

        assert_eq!(tip.header.block_hash(), main[100]);
        for (start, l) in starts.iter().zip(&listeners) {
            assert_eq!(*l.0.lock().unwrap(), (100, main[100]), "the listener from height {} is at the tip", height(start));
        }
        // Filling: 40 listeners' headers, the tip twice (best block, then its header), 80 walked. The sync:
        // the tip, and the forked listener's 3 fork headers. Without the cache, each of the 40 walks asks
        // for every header from the tip down to its block: over 1,500 calls.
        let calls = chain.header_calls.load(Ordering::Relaxed);
        assert!(calls <= 40 + 2 + 80 + 1 + 3 + 2, "{calls} header calls");
    }

    /// An unknown block among the listeners' (bitcoind does not have it) leaves the cache as it was: the sync
    /// decides, as without the cache.
    #[tokio::test]
    async fn a_failure_leaves_the_cache_as_it_was() {
        let mut chain = MemChain::default();
        let main = chain.extend(None, 10, 0);
        chain.best = Some(main[9]);
        let mut cache = UnboundedCache::new();
        warm(&chain, Network::Regtest, &mut cache, &[main[3], BlockHash::all_zeros()]).await;
        assert!(cache.is_empty());
    }
}
