//! The regtest harness never leaves processes behind: `regtest/run.sh | tee log` then Ctrl-C (the pipe closes
//! as the harness gets SIGINT), SIGTERM, SIGHUP, or the harness killed outright.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running lanes-regtest whose stdout and stderr we read. Dropped before it was reaped (a failed
/// assertion), it is killed: its children get SIGTERM when it dies, so a failing test leaves nothing running.
struct Harness {
    child: Child,
    out: Option<BufReader<std::io::PipeReader>>,
    /// Its data directory.
    dir: PathBuf,
    /// bitcoind and the three lanesd it started.
    children: Vec<u32>,
    reaped: bool,
}

impl Harness {
    /// Starts lanes-regtest (with `env` added) and waits, at most 300 s, until the network is up.
    fn start(env: &[(&str, &str)]) -> Harness {
        let lanesd = PathBuf::from(env!("CARGO_BIN_EXE_lanes-regtest")).with_file_name("lanesd");
        assert!(lanesd.is_file(), "lanesd is not built next to lanes-regtest: run cargo test --workspace");
        // stdout and stderr into one pipe, as `2>&1 | tee log` does.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        let child = Command::new(env!("CARGO_BIN_EXE_lanes-regtest"))
            .envs(env.iter().copied())
            .stdout(writer.try_clone().expect("dup the pipe"))
            .stderr(writer)
            .stdin(Stdio::null())
            .spawn()
            .expect("start lanes-regtest");
        let mut h = Harness { child, out: Some(BufReader::new(reader)), dir: PathBuf::new(), children: Vec::new(), reaped: false };
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut line = String::new();
        loop {
            line.clear();
            let n = h.read_line(&mut line, deadline);
            assert!(n > 0, "lanes-regtest ended before the network was up");
            if let Some(d) = line.trim().strip_prefix("lanes regtest network in ") {
                h.dir = PathBuf::from(d);
            }
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        assert!(!h.dir.as_os_str().is_empty(), "the harness names its directory");
        h.children = children_of(h.child.id());
        assert_eq!(h.children.len(), 4, "bitcoind and three lanesd: {:?}", h.children);
        h
    }

    /// One line of the harness's output, waiting until `deadline` at most (the harness prints whole lines).
    fn read_line(&mut self, line: &mut String, deadline: Instant) -> usize {
        use std::os::fd::AsRawFd;
        let out = self.out.as_mut().expect("the output is still open");
        if out.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fd = libc::pollfd { fd: out.get_ref().as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the length of the call.
            let ready = unsafe { libc::poll(&mut fd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            assert!(ready > 0, "lanes-regtest printed nothing more within its deadline: {line:?}");
        }
        out.read_line(line).expect("read the harness's output")
    }

    /// Closes our end of its output, as tee does when Ctrl-C kills it.
    fn close_output(&mut self) {
        self.out = None;
    }

    fn signal(&self, sig: libc::c_int) {
        signal(self.child.id(), sig);
    }

    /// Waits, at most `within`, for the harness to exit.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the harness") {
                self.reaped = true;
                return status;
            }
            assert!(Instant::now() < deadline, "lanes-regtest did not exit within {within:?} of its signal");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            // No assertion here: a panic while the test's own panic unwinds would abort the test binary.
            // Its children got SIGTERM when it died; any still running after 30 s get SIGKILL.
            wait_gone(&self.children, Duration::from_secs(30)).into_iter().for_each(|p| signal(p, libc::SIGKILL));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
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

/// Waits, at most `within`, until none of `pids` runs; returns those still running then.
fn wait_gone(pids: &[u32], within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    pids.iter().copied().filter(|p| alive(*p)).collect()
}

fn wait_all_gone(pids: &[u32], within: Duration) {
    let left = wait_gone(pids, within);
    assert!(left.is_empty(), "still running after {within:?}: {left:?}");
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
    let mut harness = Harness::start(&[]);
    harness.close_output();
    harness.signal(libc::SIGINT);
    let status = harness.wait_exit(Duration::from_secs(60));
    assert!(status.code().is_some(), "the harness died of a signal (abort?): {status:?}");
    wait_all_gone(&harness.children, Duration::from_secs(30));
    assert!(!harness.dir.exists(), "{} was left behind", harness.dir.display());
}

/// SIGHUP (the terminal closed) stops everything as Ctrl-C does, even when it comes the moment the prompt is
/// printed and the harness is slow to get to its wait (before: that SIGHUP was lost, and the harness waited for
/// ever with everything running: a CI run hung here). A harness killed outright (SIGKILL: no chance to clean
/// up) still leaves nothing running, since its children get SIGTERM when it dies.
#[test]
fn sighup_and_even_sigkill_of_the_harness_leave_nothing_running() {
    let mut harness = Harness::start(&[("LANES_REGTEST_TEST_PAUSE_AFTER_PROMPT_MS", "1000")]);
    harness.signal(libc::SIGHUP);
    let status = harness.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{status:?}");
    wait_all_gone(&harness.children, Duration::from_secs(30));
    assert!(!harness.dir.exists(), "{} was left behind", harness.dir.display());

    let mut harness = Harness::start(&[]);
    harness.signal(libc::SIGKILL);
    harness.wait_exit(Duration::from_secs(30));
    wait_all_gone(&harness.children, Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&harness.dir);
}
