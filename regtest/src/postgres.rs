//! One throw-away PostgreSQL server, for nodes on the PostgreSQL store and for the store's own tests.
//!
//! Owns: finding PostgreSQL's programs (through `regtest/scripts/postgres.sh`, once per process), a cluster
//! made with initdb in a temporary directory, the server on a free 127.0.0.1 port (no Unix socket), its
//! databases and their connection strings, and stopping it. A password is required over TCP
//! (scram-sha-256), so the nodes' `--db-password-file` path is the one tested. Run as root, the server runs
//! as `nobody` (PostgreSQL refuses root), in a directory only that user can read.
//!
//! Must never: touch a PostgreSQL it did not start (a machine's own cluster and port 5432 are left alone),
//! listen anywhere but 127.0.0.1, or let missing programs pass as a skipped test: it panics instead.
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::process::{free_port, signal, signal_group, spawn_logged};
use crate::wait::{log_tail, POLL_INTERVAL, START_TIMEOUT};

/// The role every harness database belongs to, and its password (the server listens on 127.0.0.1 only).
pub const POSTGRES_USER: &str = "lanes";
pub const POSTGRES_PASSWORD: &str = "lanes-regtest-pg";
/// How long the server gets for a fast shutdown (SIGINT) before SIGKILL.
const POSTGRES_GRACE: Duration = Duration::from_secs(10);
/// The uid and gid of `nobody`, which runs the server when the harness runs as root.
const NOBODY: u32 = 65534;

/// The directory holding `initdb` and `postgres`, provisioned the first time it is asked for in this
/// process. Panics with the script's output if it fails: lanes' tests never skip for want of PostgreSQL.
pub fn postgres_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let provisioned = BIN.get_or_init(|| {
        let lines = crate::process::run_provisioning_script("postgres.sh")?;
        let dir = PathBuf::from(lines.last().expect("not empty"));
        match dir.join("postgres").is_file() {
            true => Ok(dir),
            false => Err(format!("regtest/scripts/postgres.sh printed {lines:?}, which holds no postgres")),
        }
    });
    match provisioned {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("cannot provision PostgreSQL: {e}"),
    }
}

/// A running PostgreSQL server. Dropping it stops the server and removes its cluster.
pub struct Postgres {
    port: u16,
    log: PathBuf,
    /// The cluster (data) directory's parent, owned by the server's user. Removed on drop.
    cluster: tempfile::TempDir,
    password_file: PathBuf,
    /// With TLS: the CA certificate (PEM) that signed the server's.
    ca_file: Option<PathBuf>,
    child: Mutex<Option<Child>>,
}

fn as_server_user(cmd: &mut Command, cluster: &Path) {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.current_dir(cluster).env("HOME", cluster).env("LC_ALL", "C");
}

impl Postgres {
    /// Makes a cluster with initdb and starts the server; its log is `log_dir/postgres.log`. Returns once it
    /// accepts connections.
    pub async fn start(log_dir: &Path) -> Postgres {
        Postgres::start_with(log_dir, false).await
    }

    /// [`Postgres::start`], with TLS on as well when `tls`: a server certificate for 127.0.0.1 signed by a
    /// throw-away CA, whose certificate is [`Postgres::ca_file`]. Plain connections still work.
    pub async fn start_with(log_dir: &Path, tls: bool) -> Postgres {
        let bin = tokio::task::spawn_blocking(postgres_bin).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let cluster = tempfile::Builder::new().prefix("lanes-postgres-").tempdir().expect("cannot create a temporary directory");
        // SAFETY: geteuid(2) cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(cluster.path(), Some(NOBODY), Some(NOBODY)).expect("cannot hand the cluster directory to nobody");
        }
        let pwfile = cluster.path().join("pwfile");
        std::fs::write(&pwfile, POSTGRES_PASSWORD).expect("cannot write the password file");
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&pwfile, Some(NOBODY), Some(NOBODY)).expect("cannot hand the password file to nobody");
        }
        let data = cluster.path().join("data");
        let log = log_dir.join("postgres.log");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", POSTGRES_USER, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        as_server_user(&mut initdb, cluster.path());
        let out = tokio::task::spawn_blocking(move || initdb.output()).await.expect("initdb thread").expect("cannot run initdb");
        assert!(out.status.success(), "initdb failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

        let port = free_port();
        let mut server = server_command(&bin, cluster.path(), port);
        let ca_file = tls.then(|| {
            let (ca, cert, key) = tls_files();
            let ca_file = log_dir.join("postgres-ca.pem");
            std::fs::write(&ca_file, ca).expect("cannot write the CA certificate");
            let (cert_path, key_path) = (cluster.path().join("server.crt"), cluster.path().join("server.key"));
            std::fs::write(&cert_path, cert).expect("cannot write the server certificate");
            std::fs::write(&key_path, key).expect("cannot write the server key");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod the server key");
            // SAFETY: geteuid(2) cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                for p in [&cert_path, &key_path] {
                    std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).expect("cannot hand the TLS files to nobody");
                }
            }
            server.args(["-c", "ssl=on", "-c"]).arg(format!("ssl_cert_file={}", cert_path.display())).arg("-c").arg(format!("ssl_key_file={}", key_path.display()));
            ca_file
        });
        let child = spawn_logged(&mut server, &log);
        let password_file = log_dir.join("postgres.password");
        std::fs::write(&password_file, POSTGRES_PASSWORD).expect("cannot write the password file");
        let pg = Postgres { port, log, cluster, password_file, ca_file, child: Mutex::new(Some(child)) };
        pg.wait_ready().await;
        pg
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.lock().unwrap().as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("postgres exited while starting ({status})\n{}", log_tail(&self.log));
            }
            if self.connect("postgres").await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not accept connections within {START_TIMEOUT:?}\n{}", log_tail(&self.log));
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn connect(&self, db: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port).user(POSTGRES_USER).password(POSTGRES_PASSWORD).dbname(db).connect_timeout(Duration::from_secs(5));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Creates the database `name` (letters, digits and `_`) and returns its connection string, without
    /// the password: that is in [`Postgres::password_file`].
    pub async fn create_database(&self, name: &str) -> String {
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "database name {name:?}");
        let client = self.connect("postgres").await.unwrap_or_else(|e| panic!("cannot connect to the harness postgres: {e}"));
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        self.dsn(name)
    }

    /// The connection string of database `name` (without the password).
    pub fn dsn(&self, name: &str) -> String {
        format!("postgres://{POSTGRES_USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A file holding the password (for `lanesd --db-password-file`).
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    /// With TLS ([`Postgres::start_with`]): the CA certificate clients must trust.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn password(&self) -> &str {
        POSTGRES_PASSWORD
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Runs one SQL statement (or several) as the superuser, in database `db`.
    pub async fn execute(&self, db: &str, sql: &str) {
        let client = self.connect(db).await.unwrap_or_else(|e| panic!("cannot connect to database {db}: {e}"));
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Stops the server (fast shutdown: sessions are cut, committed data stays) and waits for it.
    pub async fn stop(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut child) = child {
            tokio::task::spawn_blocking(move || stop_blocking(&mut child)).await.expect("stop thread");
        }
    }

    /// Starts the stopped server again on the same port and cluster.
    pub async fn restart(&self) {
        self.stop().await;
        let mut server = server_command(&postgres_bin(), self.cluster.path(), self.port);
        *self.child.lock().unwrap() = Some(spawn_logged(&mut server, &self.log));
        self.wait_ready().await;
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1 and localhost signed by it: (CA PEM, server
/// certificate PEM, server key PEM).
fn tls_files() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "lanes-regtest postgres CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let key = rcgen::KeyPair::generate().expect("a server key");
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("server params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("the server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The server of the cluster in `cluster`/data, on 127.0.0.1:`port` only.
fn server_command(bin: &Path, cluster: &Path, port: u16) -> Command {
    let mut server = Command::new(bin.join("postgres"));
    server.arg("-D").arg(cluster.join("data")).args([
        "-c", "listen_addresses=127.0.0.1",
        "-c", &format!("port={port}"),
        "-c", "unix_socket_directories=",
        // Durable commits, as an operator's server has them: the store's promise depends on it.
        "-c", "fsync=on",
        "-c", "synchronous_commit=on",
        "-c", "max_connections=200",
        "-c", "shared_buffers=32MB",
        "-c", "timezone=UTC",
        "-c", "log_timezone=UTC",
    ]);
    as_server_user(&mut server, cluster);
    server
}

fn stop_blocking(child: &mut Child) {
    // SIGINT is PostgreSQL's fast shutdown: it ends sessions and checkpoints. Then the whole group, in case
    // a backend outlived the postmaster.
    signal(child, libc::SIGINT);
    let deadline = Instant::now() + POSTGRES_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(child, libc::SIGKILL);
    let _ = child.wait();
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            stop_blocking(&mut child);
        }
    }
}
