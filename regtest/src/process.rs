//! Child processes and loopback ports.
//!
//! Owns spawning a daemon with its output in a log file, signalling it, and stopping it within a deadline;
//! and handing out free 127.0.0.1 ports. It only ever signals processes the harness spawned itself (by the
//! pid of a `Child` it holds), never anything found by name, and never binds anything but 127.0.0.1.
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::wait::{log_tail, POLL_INTERVAL};

/// How long a process gets between SIGTERM and SIGKILL when the harness cleans up after itself.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// A 127.0.0.1 port that was free a moment ago: bound on port 0, noted, released.
///
/// Another process may take it before the daemon binds it (an accepted race), but this process never hands
/// out the same port twice, so tests running in parallel threads do not collide with each other.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("cannot bind a free port on 127.0.0.1")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Spawns `cmd` with stdout and stderr appended to `log` (after a header line saying what was started).
///
/// The child gets its own process group, so a Ctrl-C in the terminal reaches only the harness, which then
/// stops its children in order (nodes before bitcoind). And it is asked to get SIGTERM when the harness dies
/// (Linux's PR_SET_PDEATHSIG), so even a harness killed with SIGKILL, or aborted, leaves nothing running.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open log {}: {e}", log.display()));
    let _ = writeln!(out, "=== lanes-regtest: starting {:?} ===", cmd);
    let err: File = out.try_clone().expect("cannot duplicate a log file handle");
    // SAFETY: between fork and exec, only prctl(2) and getppid(2), both async-signal-safe.
    let harness = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The harness may have died between fork and prctl: then nobody would send the signal.
            if libc::getppid() != harness {
                return Err(std::io::Error::other("the harness is gone"));
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err)).process_group(0);
    spawn_from_long_lived_thread(cmd).unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()))
}

/// Spawns `cmd` from one thread that lives as long as the process. PR_SET_PDEATHSIG fires when the thread that
/// forked the child ends, not the process: a child spawned from a short-lived thread (tokio's blocking pool
/// ends idle threads) would be killed too early.
fn spawn_from_long_lived_thread(cmd: &mut Command) -> std::io::Result<Child> {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lanes-regtest-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Never end while the process lives: children spawned here must outlive nothing but it.
                loop {
                    std::thread::park();
                }
            })
            .expect("cannot start the spawner thread");
        Mutex::new(tx)
    });
    // Command is not Clone: move it to the spawner and leave an equivalent one behind for the caller.
    let moved = std::mem::replace(cmd, Command::new(cmd.get_program()));
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    spawner.lock().unwrap_or_else(|e| e.into_inner()).send((moved, reply_tx)).map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Runs a provisioning script of `regtest/scripts/` (bash; idempotent) and returns the non-empty lines it
/// printed on stdout; an error with its stderr if it fails. Progress goes to its stderr.
pub fn run_provisioning_script(name: &str) -> Result<Vec<String>, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
    let out = Command::new("bash").arg(&script).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{} failed ({}):\n{stderr}", script.display(), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if lines.is_empty() {
        return Err(format!("{} printed nothing\n{stderr}", script.display()));
    }
    Ok(lines)
}

/// Sends `signal` (e.g. `libc::SIGTERM`) to a child the harness spawned, unless it has already exited.
pub fn signal(child: &mut Child, signal: libc::c_int) {
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: kill(2) with the pid of our own, not yet reaped child: the pid cannot have been reused.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }
}

/// Stops a child from synchronous code (Drop): SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn terminate_blocking(child: &mut Child, grace: Duration) -> ExitStatus {
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    // Called from Drop, possibly while unwinding: must not panic (that would abort and orphan the rest).
    child.wait().unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL))
}

/// Stops a child and everything in its process group (it leads one: see [`spawn_logged`]) from synchronous
/// code (Drop): SIGTERM to the group, up to `grace` for the child to exit, then SIGKILL to the group. For
/// daemons that may start helpers of their own (Python servers). The group is signalled only while the
/// child is not reaped, so its id cannot have been reused.
pub fn terminate_group_blocking(child: &mut Child, grace: Duration) -> ExitStatus {
    signal_group(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(child, libc::SIGKILL);
    // Called from Drop, possibly while unwinding: must not panic (that would abort and orphan the rest).
    child.wait().unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL))
}

/// Sends `signal` to the process group a child the harness spawned leads, unless the child has exited.
pub fn signal_group(child: &mut Child, signal: libc::c_int) {
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: kill(2) on the group of our own, not yet reaped child, which leads it (process_group(0)).
        unsafe { libc::kill(-(child.id() as libc::pid_t), signal) };
    }
}

/// Waits (polling, async) up to `timeout` for a child to exit; `None` if it is still running then.
pub async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL.min(Duration::from_millis(100))).await;
    }
}

/// A one-line description of how a process ended, for messages: "exit code 0", "killed by signal 9".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status}"),
    }
}

/// Panics because a daemon exited when it should not have, showing the tail of its log.
pub fn panic_exited(name: &str, status: ExitStatus, log: &Path) -> ! {
    panic!("{name} exited unexpectedly ({})\n{}", describe_exit(status), log_tail(log))
}
