//! The PostgreSQL implementation of [`Store`], for operators whose node state must live in a replicated
//! database rather than on one disk.
//!
//! Owns: the connection to one PostgreSQL database (the DSN, an optional password kept out of argv, TLS),
//! the schema and its versioned migrations ([`MIGRATIONS`], applied by [`PgStore::open`] under a lock so
//! two nodes starting at once do not race), and the mapping of every store call onto SQL: one row per key
//! in `lanes_kv`, one transaction per [`Store::write_batch`] (the ordered flush of channel state is then
//! atomic: manager and monitors together or not at all).
//!
//! Durability: a call returns once PostgreSQL committed it, and every session runs with
//! `synchronous_commit` at least `on` (a commit waits for its WAL to be flushed, and for synchronous
//! standbys if the operator configured any), so the crate's promise holds: no write is acknowledged
//! before it is durable.
//!
//! How a sync trait drives an async driver: [`KVStoreSync`] is called from LDK's threads and from tokio
//! tasks alike. The store owns one thread with its own single-threaded tokio runtime, which holds the
//! connections; each call sends its work there and blocks on a plain channel for the answer. Blocking
//! inside a tokio task is what a synchronous store does anyway (sled blocks on fsync), and never deadlocks
//! here because nothing but the store's own work runs on its runtime.
//!
//! Must never: put the password in an error or log line (errors name host, port, database and user), nor
//! let a key outside LDK's rules reach SQL (every key is checked first, and every value goes as a bound
//! parameter, never into the statement text).
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, Statement};

use crate::{io, KVStoreSync, Op, Store};

/// How long opening a connection may take before the store reports the database unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version, applied in order and never edited once released: a database
/// at version N gets migrations N+1.. and nothing else. `lanes_schema_version` records what was applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: every key of every namespace, one row each. "C" collation: keys sort by their bytes, as sled's do.
    "CREATE TABLE lanes_kv (
        primary_namespace TEXT COLLATE \"C\" NOT NULL,
        secondary_namespace TEXT COLLATE \"C\" NOT NULL,
        key TEXT COLLATE \"C\" NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (primary_namespace, secondary_namespace, key)
    )",
    // 2: the lease: which instance may write (and so sign), since when (epoch) and until when. One row.
    "CREATE TABLE lanes_lease (
        id SMALLINT PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )",
];

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub fn schema_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// How long the server lets a transaction of ours sit idle before it ends it (see `Conns::connect`).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(3);
/// How long a lease call waits for the lease row's lock before it fails (and is retried).
const LEASE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// An advisory lock key only lanes' migrations take ("lanes" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c_61_6e_65_73;

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// A libpq-style connection string: `postgres://user@host:port/db?sslmode=require` or
    /// `host=… user=… dbname=…`.
    pub dsn: String,
    /// The password, when it is not in the DSN (read from a file, so it stays out of argv).
    pub password: Option<String>,
    /// A PEM file of CA certificates to trust for TLS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the DSN itself: it may hold a password.
        f.debug_struct("PgOptions").field("ca_file", &self.ca_file).finish_non_exhaustive()
    }
}

/// Checks that `dsn` is a connection string the driver understands (for config validation), saying why
/// not, without echoing it.
pub fn check_dsn(dsn: &str) -> Result<(), String> {
    dsn.parse::<Config>().map(|_| ()).map_err(|e| e.to_string())
}

/// What a DSN names, without its password: for messages and logs.
pub fn describe(dsn: &str) -> String {
    match dsn.parse::<Config>() {
        Ok(c) => describe_config(&c),
        Err(_) => "an unparsable PostgreSQL connection string".into(),
    }
}

fn describe_config(c: &Config) -> String {
    use tokio_postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or(c.get_user().unwrap_or("?"))
    )
}

/// Who holds the lease, as the database sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds until it expires (by the database's clock); zero or less: expired.
    pub expires_in_ms: i64,
}

/// The instance whose writes the store accepts, once [`PgStore::fence`] set it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fence {
    holder: String,
    epoch: i64,
}

type Job = Box<dyn FnOnce(Arc<Conns>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

/// The store. Dropping it closes the connections and ends its thread.
pub struct PgStore {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    /// Set once this instance holds the lease: every write then checks, in its own transaction, that the
    /// lease is still this instance's at this epoch (the fencing token).
    fence: Arc<std::sync::RwLock<Option<Fence>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    target: String,
}

/// One session: a connection and its prepared statements.
struct Session {
    client: Client,
    read: Statement,
    write: Statement,
    remove: Statement,
    list: Statement,
}

/// Two sessions: reads go on one while the other commits; a batch holds the writer for its transaction.
struct Conns {
    config: Config,
    tls: Tls,
    reader: Mutex<Option<Session>>,
    writer: Mutex<Option<Session>>,
    /// The lease's own session: a renewal never waits behind a stuck write.
    lease: Mutex<Option<Session>>,
}

#[derive(Clone)]
enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

fn pg_err(target: &str, e: tokio_postgres::Error) -> io::Error {
    // A connection string's password never appears in tokio-postgres' errors; the message and the
    // server's detail are what an operator needs.
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            // The driver's own message is generic ("error performing TLS handshake"): the causes say why
            // (an untrusted certificate, a refused connection).
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                detail = format!("{detail}: {cause}");
                source = cause.source();
            }
            detail
        }
    };
    let kind = if e.is_closed() || e.as_db_error().is_none() { io::ErrorKind::ConnectionAborted } else { io::ErrorKind::Other };
    io::Error::new(kind, format!("PostgreSQL at {target}: {detail}"))
}

impl PgStore {
    /// Connects, creates or migrates the schema, and checks the database answers. Fails with a clear
    /// error (and leaves nothing running) if the DSN is bad, the database unreachable, or its schema newer
    /// than this build knows.
    pub fn open(options: &PgOptions) -> io::Result<PgStore> {
        let mut config: Config = options.dsn.parse().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("not a PostgreSQL connection string: {e}"))
        })?;
        if let Some(password) = &options.password {
            config.password(password.as_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe_config(&config);
        let tls = match config.get_ssl_mode() {
            // sslmode=require: TLS with the server's certificate checked against the system's CAs and
            // `ca_file` (what libpq calls verify-full). Anything else: plain TCP, for loopback and sockets.
            SslMode::Require => Tls::Rustls(rustls_connector(options.ca_file.as_ref())?),
            _ => Tls::None,
        };

        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<io::Result<()>>(1);
        let thread_target = target.clone();
        let thread = std::thread::Builder::new()
            .name("lanes-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let conns = Arc::new(Conns { config, tls, reader: Mutex::new(None), writer: Mutex::new(None), lease: Mutex::new(None) });
                    let opened = async {
                        let mut writer = conns.connect(&thread_target).await?;
                        migrate(&mut writer.client, &thread_target).await?;
                        writer.prepare(&thread_target).await?;
                        *conns.writer.lock().await = Some(writer);
                        Ok(())
                    }
                    .await;
                    let failed = opened.is_err();
                    let _ = ready_tx.send(opened);
                    if failed {
                        return;
                    }
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job(Arc::clone(&conns)));
                    }
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(other(format!("PostgreSQL at {target}: the store's thread ended while opening")));
            }
        }
        tracing::info!(database = %target, schema = schema_version(), "store opened on PostgreSQL");
        Ok(PgStore { jobs: Some(tx), fence: Arc::new(std::sync::RwLock::new(None)), thread: Some(thread), target })
    }

    /// The database, for messages: `postgres://user@host:port/db`, never the password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `work` on the store's runtime and blocks until it answers.
    fn run<T, F, Fut>(&self, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Conns>, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = io::Result<T>> + Send + 'static,
    {
        self.run_within(None, work)
    }

    /// [`PgStore::run`], giving up (with [`io::ErrorKind::TimedOut`]) after `timeout` if one is given; the
    /// work itself is not cancelled.
    fn run_within<T, F, Fut>(&self, timeout: Option<Duration>, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Conns>, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = io::Result<T>> + Send + 'static,
    {
        let (reply_tx, reply_rx) = std_mpsc::sync_channel(1);
        let target = self.target.clone();
        let job: Job = Box::new(move |conns| {
            Box::pin(async move {
                let _ = reply_tx.send(work(conns, target).await);
            })
        });
        let gone = || other(format!("PostgreSQL at {}: the store is closed", self.target));
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        match timeout {
            None => reply_rx.recv().map_err(|_| gone())?,
            Some(t) => match reply_rx.recv_timeout(t) {
                Ok(answer) => answer,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    Err(io::Error::new(io::ErrorKind::TimedOut, format!("PostgreSQL at {}: no answer within {t:?}", self.target)))
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
            },
        }
    }

    /// Takes the lease for `holder` if nobody holds it or it expired, with a new epoch, valid for `ttl` by
    /// the database's clock. `Ok(Err(info))`: another instance holds it.
    pub fn acquire_lease(&self, holder: &str, ttl: Duration) -> io::Result<Result<i64, LeaseInfo>> {
        let holder = holder.to_owned();
        let ttl_ms = ttl.as_millis() as i64;
        self.run(move |conns, target| async move {
            let mut guard = conns.session(&conns.lease, &target).await?;
            let client = &mut guard.as_mut().expect("connected by session()").client;
            let e = |e| pg_err(&target, e);
            let tx = client.transaction().await.map_err(e)?;
            // Never wait long for the row: a holder's transaction stuck behind a partition keeps it locked
            // until the server ends it (IDLE_IN_TRANSACTION); the caller retries.
            tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", LEASE_LOCK_TIMEOUT.as_millis())).await.map_err(e)?;
            // Locks the row against a racing acquirer (and waits for writes in flight under the old epoch,
            // which hold it FOR SHARE: see `fenced`).
            let row = tx
                .query_opt(
                    "SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::BIGINT FROM lanes_lease WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await
                .map_err(e)?;
            let epoch = match row {
                Some(row) => {
                    let info = LeaseInfo { holder: row.get(0), epoch: row.get(1), expires_in_ms: row.get(2) };
                    if info.expires_in_ms > 0 && info.holder != holder {
                        return Ok(Err(info));
                    }
                    let epoch = info.epoch + 1;
                    tx.execute(
                        "UPDATE lanes_lease SET holder = $1, epoch = $2, expires_at = now() + $3 * interval '1 millisecond' WHERE id = 1",
                        &[&holder, &epoch, &(ttl_ms as f64)],
                    )
                    .await
                    .map_err(e)?;
                    epoch
                }
                None => {
                    // Two first acquirers: one insert wins, the other fails on the key and retries later.
                    tx.execute(
                        "INSERT INTO lanes_lease (id, holder, epoch, expires_at) VALUES (1, $1, 1, now() + $2 * interval '1 millisecond')",
                        &[&holder, &(ttl_ms as f64)],
                    )
                    .await
                    .map_err(e)?;
                    1
                }
            };
            tx.commit().await.map_err(e)?;
            Ok(Ok(epoch))
        })
    }

    /// Extends `holder`'s lease at `epoch` to `ttl` from now (database clock). `Ok(false)`: the lease is no
    /// longer this holder's at this epoch. Gives up after `timeout` (a database that does not answer).
    pub fn renew_lease(&self, holder: &str, epoch: i64, ttl: Duration, timeout: Duration) -> io::Result<bool> {
        let holder = holder.to_owned();
        let ttl_ms = ttl.as_millis() as f64;
        self.run_within(Some(timeout), move |conns, target| async move {
            let guard = conns.session(&conns.lease, &target).await?;
            let client = &guard.as_ref().expect("connected by session()").client;
            let n = client
                .execute(
                    "UPDATE lanes_lease SET expires_at = now() + $3 * interval '1 millisecond' WHERE id = 1 AND holder = $1 AND epoch = $2",
                    &[&holder, &epoch, &ttl_ms],
                )
                .await
                .map_err(|e| pg_err(&target, e))?;
            Ok(n == 1)
        })
    }

    /// Ends `holder`'s lease at `epoch` now (a clean stop), so a standby need not wait for it to expire.
    pub fn release_lease(&self, holder: &str, epoch: i64) -> io::Result<()> {
        let holder = holder.to_owned();
        self.run_within(Some(Duration::from_secs(5)), move |conns, target| async move {
            let guard = conns.session(&conns.lease, &target).await?;
            let client = &guard.as_ref().expect("connected by session()").client;
            client
                .execute("UPDATE lanes_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND epoch = $2", &[&holder, &epoch])
                .await
                .map_err(|e| pg_err(&target, e))?;
            Ok(())
        })
    }

    /// Who holds the lease now, if anyone ever did.
    pub fn lease(&self) -> io::Result<Option<LeaseInfo>> {
        self.run(move |conns, target| async move {
            let guard = conns.session(&conns.lease, &target).await?;
            let client = &guard.as_ref().expect("connected by session()").client;
            let row = client
                .query_opt("SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::BIGINT FROM lanes_lease WHERE id = 1", &[])
                .await
                .map_err(|e| pg_err(&target, e))?;
            Ok(row.map(|row| LeaseInfo { holder: row.get(0), epoch: row.get(1), expires_in_ms: row.get(2) }))
        })
    }

    /// From now on, every write must hold `holder`'s lease at `epoch`: one that does not (another instance
    /// took over, even if this one has not noticed yet) fails with [`io::ErrorKind::PermissionDenied`] and
    /// changes nothing.
    pub fn fence(&self, holder: &str, epoch: i64) {
        *self.fence.write().unwrap_or_else(|e| e.into_inner()) = Some(Fence { holder: holder.to_owned(), epoch });
    }

    fn current_fence(&self) -> Option<Fence> {
        self.fence.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop; jobs already sent finish first.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Conns {
    async fn connect(&self, target: &str) -> io::Result<Session> {
        let client = match &self.tls {
            Tls::None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await.map_err(|e| pg_err(target, e))?;
                tokio::spawn(connection);
                client
            }
            Tls::Rustls(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(|e| pg_err(target, e))?;
                tokio::spawn(connection);
                client
            }
        };
        // Durable commits whatever the server's default (see the module doc): `off` would acknowledge a
        // write a crash of PostgreSQL can still lose. Stronger settings (remote_apply, …) are kept.
        let setting = client.query_one("SHOW synchronous_commit", &[]).await.map_err(|e| pg_err(target, e))?;
        let setting: String = setting.get(0);
        if setting == "off" {
            client.batch_execute("SET synchronous_commit TO on").await.map_err(|e| pg_err(target, e))?;
        }
        // A session cut off mid-transaction (a partition: the server still sees the connection open) would
        // hold its locks, the lease row's among them, until TCP gives up, hours later: the server ends any
        // transaction of ours left idle this long, so a takeover waits seconds, not hours. Ours never idle:
        // each sends its statements back to back.
        client
            .batch_execute(&format!("SET idle_in_transaction_session_timeout = {}", IDLE_IN_TRANSACTION.as_millis()))
            .await
            .map_err(|e| pg_err(target, e))?;
        let placeholder = client.prepare("SELECT 1").await.map_err(|e| pg_err(target, e))?;
        Ok(Session { client, read: placeholder.clone(), write: placeholder.clone(), remove: placeholder.clone(), list: placeholder })
    }

    /// The session behind `slot`, connected (again) if it has none or its connection closed.
    async fn session<'a>(&self, slot: &'a Mutex<Option<Session>>, target: &str) -> io::Result<tokio::sync::MutexGuard<'a, Option<Session>>> {
        let mut guard = slot.lock().await;
        if guard.as_ref().map_or(true, |s| s.client.is_closed()) {
            *guard = None;
            let mut session = self.connect(target).await?;
            session.prepare(target).await?;
            *guard = Some(session);
        }
        Ok(guard)
    }
}

impl Session {
    async fn prepare(&mut self, target: &str) -> io::Result<()> {
        let c = &self.client;
        let p = |sql: &'static str| async move { c.prepare(sql).await.map_err(|e| pg_err(target, e)) };
        let read = p("SELECT value FROM lanes_kv WHERE primary_namespace = $1 AND secondary_namespace = $2 AND key = $3").await?;
        let write = p("INSERT INTO lanes_kv (primary_namespace, secondary_namespace, key, value) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (primary_namespace, secondary_namespace, key) DO UPDATE SET value = EXCLUDED.value")
        .await?;
        let remove = p("DELETE FROM lanes_kv WHERE primary_namespace = $1 AND secondary_namespace = $2 AND key = $3").await?;
        let list = p("SELECT key FROM lanes_kv WHERE primary_namespace = $1 AND secondary_namespace = $2 ORDER BY key").await?;
        (self.read, self.write, self.remove, self.list) = (read, write, remove, list);
        Ok(())
    }
}

/// Brings the schema to [`schema_version`], in one transaction under an advisory lock: two nodes opening
/// one database at once migrate it once. Refuses a database a newer lanesd migrated further.
async fn migrate(client: &mut Client, target: &str) -> io::Result<()> {
    let e = |e| pg_err(target, e);
    let tx = client.transaction().await.map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(e)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lanes_schema_version (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(e)?;
    let row = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM lanes_schema_version", &[]).await.map_err(e)?;
    let at: i32 = row.get(0);
    if at > schema_version() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("PostgreSQL at {target}: the schema is at version {at}, newer than this lanesd knows ({}): run a newer lanesd", schema_version()),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(e)?;
        tx.execute("INSERT INTO lanes_schema_version (version) VALUES ($1)", &[&version]).await.map_err(e)?;
        tracing::info!(database = %target, version, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(e)
}

fn rustls_connector(ca_file: Option<&PathBuf>) -> io::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("cannot read CA certificates from {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no certificate in {}", path.display())));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad CA certificate in {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| other(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn other(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::Other, message)
}

fn owned(primary: &str, secondary: &str, key: &str) -> (String, String, String) {
    (primary.to_owned(), secondary.to_owned(), key.to_owned())
}

impl KVStoreSync for PgStore {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> io::Result<Vec<u8>> {
        crate::check(primary, secondary, Some(key))?;
        let (p, s, k) = owned(primary, secondary, key);
        self.run(move |conns, target| async move {
            let guard = conns.session(&conns.reader, &target).await?;
            let session = guard.as_ref().expect("connected by session()");
            let row = session.client.query_opt(&session.read, &[&p, &s, &k]).await.map_err(|e| pg_err(&target, e))?;
            match row {
                Some(row) => Ok(row.get::<_, Vec<u8>>(0)),
                None => Err(io::Error::new(io::ErrorKind::NotFound, format!("{p}/{s}/{k} not found"))),
            }
        })
    }

    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> io::Result<()> {
        crate::check(primary, secondary, Some(key))?;
        self.write_batch(vec![Op::Write { primary: primary.into(), secondary: secondary.into(), key: key.into(), value: buf }])
    }

    fn remove(&self, primary: &str, secondary: &str, key: &str, _lazy: bool) -> io::Result<()> {
        crate::check(primary, secondary, Some(key))?;
        self.write_batch(vec![Op::Remove { primary: primary.into(), secondary: secondary.into(), key: key.into() }])
    }

    fn list(&self, primary: &str, secondary: &str) -> io::Result<Vec<String>> {
        crate::check(primary, secondary, None)?;
        let (p, s) = (primary.to_owned(), secondary.to_owned());
        self.run(move |conns, target| async move {
            let guard = conns.session(&conns.reader, &target).await?;
            let session = guard.as_ref().expect("connected by session()");
            let rows = session.client.query(&session.list, &[&p, &s]).await.map_err(|e| pg_err(&target, e))?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }
}

impl Store for PgStore {
    fn write_batch(&self, ops: Vec<Op>) -> io::Result<()> {
        for op in &ops {
            match op {
                Op::Write { primary, secondary, key, .. } | Op::Remove { primary, secondary, key } => crate::check(primary, secondary, Some(key))?,
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        // One transaction: all of the batch is committed, or none of it (a crash of lanesd or of
        // PostgreSQL before the commit leaves the previous state). Returns once committed: durable.
        let fence = self.current_fence();
        self.run(move |conns, target| async move {
            let mut guard = conns.session(&conns.writer, &target).await?;
            let Session { client, write, remove, .. } = guard.as_mut().expect("connected by session()");
            let e = |e| pg_err(&target, e);
            let tx = client.transaction().await.map_err(e)?;
            if let Some(fence) = &fence {
                fenced(&tx, fence, &target).await?;
            }
            for op in &ops {
                match op {
                    Op::Write { primary, secondary, key, value } => tx.execute(&*write, &[primary, secondary, key, value]).await.map_err(e)?,
                    Op::Remove { primary, secondary, key } => tx.execute(&*remove, &[primary, secondary, key]).await.map_err(e)?,
                };
            }
            tx.commit().await.map_err(e)
        })
    }
}

/// The fencing check, first in every write transaction of a lease holder: the lease row must still name
/// this holder at this epoch. `FOR SHARE` keeps it so until the commit: a takeover's `FOR UPDATE` waits for
/// writes already checked, and a write checked after a takeover sees the new epoch and fails. So after a
/// takeover commits, no write of the old epoch can commit, and the new active reads everything the old one
/// committed. (Its expiry may pass meanwhile: expiry only says when a standby may take over.)
async fn fenced(tx: &tokio_postgres::Transaction<'_>, fence: &Fence, target: &str) -> io::Result<()> {
    let row = tx
        .query_opt("SELECT holder, epoch FROM lanes_lease WHERE id = 1 FOR SHARE", &[])
        .await
        .map_err(|e| pg_err(target, e))?;
    match row {
        Some(row) if row.get::<_, String>(0) == fence.holder && row.get::<_, i64>(1) == fence.epoch => Ok(()),
        Some(row) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "PostgreSQL at {target}: fenced: this instance's lease (epoch {}) was taken over by {} (epoch {}); nothing written",
                fence.epoch,
                row.get::<_, String>(0),
                row.get::<_, i64>(1)
            ),
        )),
        None => Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("PostgreSQL at {target}: fenced: no lease; nothing written"))),
    }
}
