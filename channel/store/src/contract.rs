//! What every [`Store`] implementation must do, as checks any backend's tests run against a fresh store.
//!
//! Owns: the behaviour owners rely on, in one place, so sled and PostgreSQL are held to the same rules
//! (the sled unit tests and the PostgreSQL tests in `regtest/tests/postgres.rs` both call [`check_all`]).
//! Must never: depend on a backend, nor leave anything behind outside the namespaces it names
//! (`contract*`), so it can run against a store that holds other data.
use crate::{io, Op, Store};

/// Runs every check against `store`, which must hold nothing under the `contract*` namespaces.
pub fn check_all(store: &dyn Store) {
    write_read_list_remove(store);
    list_is_sorted_and_one_level_deep(store);
    a_batch_applies_in_order_and_checks_every_key_first(store);
    bad_keys_are_refused(store);
    empty_and_large_values_round_trip(store);
    a_value_changes_size_in_every_direction(store);
}

fn write_read_list_remove(s: &dyn Store) {
    s.write("contract", "", "abc", vec![1, 2, 3]).unwrap();
    s.write("contract", "", "def", vec![4]).unwrap();
    s.write("contract", "", "abc", vec![5, 6]).unwrap();
    assert_eq!(s.read("contract", "", "abc").unwrap(), vec![5, 6], "a write replaces the value");
    assert_eq!(s.list("contract", "").unwrap(), vec!["abc", "def"]);
    s.remove("contract", "", "abc", false).unwrap();
    assert_eq!(s.read("contract", "", "abc").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(s.list("contract", "").unwrap(), vec!["def"]);
    s.remove("contract", "", "nothing", true).unwrap();
    s.remove("contract", "", "def", true).unwrap();
    assert!(s.list("contract", "").unwrap().is_empty());
    assert!(s.list("contract_never_written", "").unwrap().is_empty());
}

/// Keys come back in byte order (owners rely on [`crate::layout::sequence_key`] and [`crate::hex_key`]
/// sorting as their numbers and bytes do), and a list holds one namespace's keys only.
fn list_is_sorted_and_one_level_deep(s: &dyn Store) {
    for key in ["b", "a", "B", "_", "0", "a-", "ab", "A"] {
        s.write("contract_sort", "", key, vec![]).unwrap();
    }
    s.write("contract_sort", "inner", "z", vec![1]).unwrap();
    s.write("contract_sortx", "", "y", vec![1]).unwrap();
    assert_eq!(s.list("contract_sort", "").unwrap(), vec!["0", "A", "B", "_", "a", "a-", "ab", "b"]);
    assert_eq!(s.list("contract_sort", "inner").unwrap(), vec!["z"]);
    assert_eq!(s.read("contract_sort", "inner", "z").unwrap(), vec![1]);
}

fn a_batch_applies_in_order_and_checks_every_key_first(s: &dyn Store) {
    s.write("contract_batch", "m", "1", vec![1]).unwrap();
    let ops = vec![
        Op::write("contract_batch", "", "manager", vec![9; 50]),
        Op::write("contract_batch", "", "m", vec![8; 50]),
        Op::write("contract_batch", "", "m", vec![7; 50]),
        Op::remove("contract_batch", "m", "1"),
    ];
    s.write_batch(ops).unwrap();
    assert_eq!(s.read("contract_batch", "", "m").unwrap(), vec![7; 50], "the later write of a key wins");
    assert_eq!(s.read("contract_batch", "", "manager").unwrap(), vec![9; 50]);
    assert!(s.list("contract_batch", "m").unwrap().is_empty());
    s.write_batch(Vec::new()).unwrap();

    let bad = vec![Op::write("contract_batch", "", "n", vec![1]), Op::write("a/b", "", "k", vec![])];
    assert_eq!(s.write_batch(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(s.read("contract_batch", "", "n").unwrap_err().kind(), io::ErrorKind::NotFound, "nothing of a refused batch is applied");
}

fn bad_keys_are_refused(s: &dyn Store) {
    assert_eq!(s.write("a/b", "", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(s.write("", "x", "k", vec![]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(s.read("a", "", "").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(s.list("a'; drop table x; --", "").unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

/// A ChannelMonitor of a busy channel is megabytes; an empty value is a valid value.
fn empty_and_large_values_round_trip(s: &dyn Store) {
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    s.write("contract_values", "", "large", large.clone()).unwrap();
    s.write("contract_values", "", "empty", Vec::new()).unwrap();
    assert_eq!(s.read("contract_values", "", "large").unwrap(), large);
    assert_eq!(s.read("contract_values", "", "empty").unwrap(), Vec::<u8>::new());
}

/// A value grown, shrunk, made small, made large again and removed, alone and within one batch, reads back
/// as last written and is listed once (sled stores large values in pieces: none may be left behind).
fn a_value_changes_size_in_every_direction(s: &dyn Store) {
    let value = |len: usize, seed: u8| -> Vec<u8> { (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect() };
    let ns = "contract_sizes";
    for (len, seed) in [(100_000, 1), (250_000, 2), (20_000, 3), (6_144, 4), (6_145, 5), (10, 6), (0, 7), (1_000_000, 8)] {
        s.write(ns, "", "v", value(len, seed)).unwrap();
        assert_eq!(s.read(ns, "", "v").unwrap(), value(len, seed), "{len} bytes after a write");
        assert_eq!(s.list(ns, "").unwrap(), vec!["v"]);
    }
    s.write_batch(vec![
        Op::write(ns, "", "v", value(300_000, 9)),
        Op::write(ns, "", "w", value(50_000, 10)),
        Op::write(ns, "", "v", value(7, 11)),
        Op::write(ns, "", "v", value(40_000, 12)),
        Op::remove(ns, "", "w"),
    ])
    .unwrap();
    assert_eq!(s.read(ns, "", "v").unwrap(), value(40_000, 12), "the batch's last write of v");
    assert_eq!(s.read(ns, "", "w").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(s.list(ns, "").unwrap(), vec!["v"]);
    s.write_batch(vec![Op::write(ns, "", "w", value(9_000, 13)), Op::remove(ns, "", "v"), Op::write(ns, "", "x", value(1, 14))]).unwrap();
    assert_eq!(s.read(ns, "", "v").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(s.read(ns, "", "w").unwrap(), value(9_000, 13));
    assert_eq!(s.list(ns, "").unwrap(), vec!["w", "x"]);
    s.remove(ns, "", "w", false).unwrap();
    s.remove(ns, "", "x", true).unwrap();
    assert!(s.list(ns, "").unwrap().is_empty());
}
