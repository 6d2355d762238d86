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
        .args(["--rpcserver", &rpcserver, "--no-tls", "--no-macaroons", "getinfo"])
        .env_remove("LANES_RPCSERVER")
        .output()
        .expect("cannot run lanes-cli");
    let err = String::from_utf8_lossy(&out.stderr);
    let describe = format!("{}\n--- stdout ---\n{}--- stderr ---\n{err}", out.status, String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{describe}");
    assert!(err.contains(&rpcserver) && err.contains("lanesd is not running"), "{describe}");
}

/// Without lanesd's certificate (a data dir it never ran in), lanes-cli says which file it needs and how to
/// point at it, before trying to connect.
#[test]
fn lanes_cli_says_which_credential_is_missing() {
    let dir = tempfile_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_lanes-cli"))
        .args(["--rpcserver", "127.0.0.1:1", "--lanesdir", &dir.display().to_string(), "getinfo"])
        .env_remove("LANES_RPCSERVER")
        .env_remove("LANES_DIR")
        .output()
        .expect("cannot run lanes-cli");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let macaroon = dir.join("admin.macaroon").display().to_string();
    assert!(err.contains(&macaroon) && err.contains("--macaroonpath") && err.contains("--lanesdir"), "{err}");
    let baked = lanes_proto::macaroon::Macaroon::bake(&[1; 32], [2; 8], [3; 16], vec!["perms=info:read".into()]);
    std::fs::write(dir.join("admin.macaroon"), baked.encode()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lanes-cli"))
        .args(["--rpcserver", "127.0.0.1:1", "--lanesdir", &dir.display().to_string(), "getinfo"])
        .env_remove("LANES_RPCSERVER")
        .output()
        .expect("cannot run lanes-cli");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dir.join("tls.cert").display().to_string()) && err.contains("--tlscertpath"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh, empty directory under the system's temp dir.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lanes-cli-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
