//! The regtest harness never leaves processes behind: `regtest/run.sh | tee log` then Ctrl-C (the pipe closes
//! as the harness gets SIGINT), SIGTERM, SIGHUP, or the harness killed outright.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts lanes-regtest with its stdout piped to us, and waits until the network is up. Returns the harness,
/// its stdout reader, the data directory and the pids of the processes it started.
fn start_harness() -> (Child, BufReader<std::io::PipeReader>, PathBuf, Vec<u32>) {
    let lanesd = PathBuf::from(env!("CARGO_BIN_EXE_lanes-regtest")).with_file_name("lanesd");
    assert!(lanesd.is_file(), "lanesd is not built next to lanes-regtest: run cargo test --workspace");
    // stdout and stderr into one pipe, as `2>&1 | tee log` does.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let harness = Command::new(env!("CARGO_BIN_EXE_lanes-regtest"))
        .stdout(writer.try_clone().expect("dup the pipe"))
        .stderr(writer)
        .stdin(Stdio::null())
        .spawn()
        .expect("start lanes-regtest");
    let mut out = BufReader::new(reader);
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut dir, mut line) = (None, String::new());
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read the harness's output");
        assert!(n > 0 && Instant::now() < deadline, "lanes-regtest ended or took too long before the network was up");
        if let Some(d) = line.trim().strip_prefix("lanes regtest network in ") {
            dir = Some(PathBuf::from(d));
        }
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    let children = children_of(harness.id());
    assert_eq!(children.len(), 4, "bitcoind and three lanesd: {children:?}");
    (harness, out, dir.expect("the harness names its directory"), children)
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

fn wait_all_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "still running after {within:?}: {:?}", pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) of a child we spawned and have not reaped.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// The reported case: `regtest/run.sh 2>&1 | tee log`, then Ctrl-C. tee dies with the SIGINT, so the harness
/// writes to a closed pipe while it stops. It must stop everything, remove its directory and exit cleanly
/// (before: abort, bitcoind and a lanesd left running with parent 1, the directory left behind).
#[test]
fn ctrl_c_with_the_output_pipe_closed_stops_everything() {
    let (mut harness, out, dir, children) = start_harness();
    drop(out);
    signal(harness.id(), libc::SIGINT);
    let status = harness.wait().expect("reap the harness");
    assert!(status.code().is_some(), "the harness died of a signal (abort?): {status:?}");
    wait_all_gone(&children, Duration::from_secs(30));
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

/// SIGHUP (the terminal closed) stops everything as Ctrl-C does; a harness killed outright (SIGKILL: no
/// chance to clean up) still leaves nothing running, since its children get SIGTERM when it dies.
#[test]
fn sighup_and_even_sigkill_of_the_harness_leave_nothing_running() {
    let (mut harness, _out, dir, children) = start_harness();
    signal(harness.id(), libc::SIGHUP);
    let status = harness.wait().expect("reap the harness");
    assert_eq!(status.code(), Some(0), "{status:?}");
    wait_all_gone(&children, Duration::from_secs(30));
    assert!(!dir.exists(), "{} was left behind", dir.display());

    let (mut harness, _out, dir, children) = start_harness();
    signal(harness.id(), libc::SIGKILL);
    let _ = harness.wait();
    wait_all_gone(&children, Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(dir);
}
