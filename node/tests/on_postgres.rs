//! Representative stories of other files, run again with every node on PostgreSQL: the harness puts the nodes
//! of this test binary on its PostgreSQL server (`lanes_regtest::ON_POSTGRES_TEST_BINARY`), so
//! `cargo test --workspace` checks both stores on channels (open, close, anchors), punishing a revoked state,
//! payments over two hops with BOLT12, splicing, zero-conf and batch opens, and reorgs. Any other story runs on
//! PostgreSQL with `LANES_TEST_STORE=postgres cargo test -p lanes-node --test <file>`.
#![allow(dead_code)]

#[path = "batch_open.rs"]
mod batch_open;
#[path = "channels.rs"]
mod channels;
#[path = "justice.rs"]
mod justice;
#[path = "offers.rs"]
mod offers;
#[path = "reorg.rs"]
mod reorg;
#[path = "splice.rs"]
mod splice;
#[path = "zero_conf.rs"]
mod zero_conf;
