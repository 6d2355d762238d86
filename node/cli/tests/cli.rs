//! lanes-cli with nothing to talk to: the real binary, no lanesd. (The story against real nodes is
//! regtest/tests/cli.rs: it needs the harness, which this package must not depend on.)
use std::net::TcpListener;
use std::process::Command;

#[test]
fn lanes_cli_explains_that_nothing_listens() {
    // A port the OS handed us, released again: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("cannot bind 127.0.0.1:0").port();
    let rpcserver = format!("127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_lanes-cli"))
        .args(["--rpcserver", &rpcserver, "getinfo"])
        .env_remove("LANES_RPCSERVER")
        .output()
        .expect("cannot run lanes-cli");
    let err = String::from_utf8_lossy(&out.stderr);
    let describe = format!("{}\n--- stdout ---\n{}--- stderr ---\n{err}", out.status, String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{describe}");
    assert!(err.contains(&rpcserver) && err.contains("lanesd is not running"), "{describe}");
}
