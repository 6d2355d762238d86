//! The PostgreSQL store on a real PostgreSQL server (Debian's package, started by the harness on 127.0.0.1):
//! the store contract sled is held to, the schema and its migrations, clear errors for a bad or unreachable
//! database, many writers at once, and a server restart.
use std::sync::Arc;

use lanes_regtest::Postgres;
use lanes_store::{contract, io, KVStoreSync, Op, PgOptions, PgStore, Store};

fn options(pg: &Postgres, dsn: String) -> PgOptions {
    PgOptions { dsn, password: Some(pg.password().to_string()), ca_file: None }
}

async fn fresh(pg: &Postgres, db: &str) -> (PgOptions, PgStore) {
    let opts = options(pg, pg.create_database(db).await);
    let store = PgStore::open(&opts).expect("open the PostgreSQL store");
    (opts, store)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_store_contract_and_its_data_across_a_reopen() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let (opts, store) = fresh(&pg, "contract").await;
    contract::check_all(&store);
    store.write("monitors", "", "abc_1", vec![1, 2, 3]).unwrap();
    drop(store);

    let again = PgStore::open(&opts).unwrap();
    assert_eq!(again.read("monitors", "", "abc_1").unwrap(), vec![1, 2, 3]);
    assert_eq!(again.list("contract", "").unwrap(), Vec::<String>::new());
    assert_eq!(again.list("contract_sort", "").unwrap(), vec!["0", "A", "B", "_", "a", "a-", "ab", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_made_from_an_empty_database_once_and_a_newer_one_is_refused() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let (opts, store) = fresh(&pg, "schema").await;
    drop(store);
    // A second node opening the same database migrates nothing again.
    let _again = PgStore::open(&opts).unwrap();
    let _third = PgStore::open(&opts).unwrap();
    let applied = versions(&pg, "schema").await;
    assert_eq!(applied, (1..=lanes_store::postgres_schema_version()).collect::<Vec<_>>());

    // A database a newer lanesd migrated further: refused at open, untouched.
    let newer = lanes_store::postgres_schema_version() + 1;
    pg.execute("schema", &format!("INSERT INTO lanes_schema_version (version) VALUES ({newer})")).await;
    let err = PgStore::open(&opts).err().expect("a newer schema must be refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("schema is at version {newer}, newer than this lanesd knows")), "{msg}");
    assert_eq!(versions(&pg, "schema").await.last(), Some(&newer));
}

async fn versions(pg: &Postgres, db: &str) -> Vec<i32> {
    let (client, connection) = tokio_postgres_config(pg, db).connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.query("SELECT version FROM lanes_schema_version ORDER BY version", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

fn tokio_postgres_config(pg: &Postgres, db: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1").port(pg.port()).user(lanes_regtest::POSTGRES_USER).password(pg.password()).dbname(db);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_unreachable_database_is_a_clear_error_that_never_shows_the_password() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    pg.create_database("exists").await;
    let secret = "not-the-password-7f3a";
    let open = |dsn: String, password: &str| {
        PgStore::open(&PgOptions { dsn, password: Some(password.into()), ca_file: None }).err().expect("must fail").to_string()
    };

    let unparsable = open("postgres://lanes@127.0.0.1:notaport/x".into(), secret);
    assert!(unparsable.contains("not a PostgreSQL connection string"), "{unparsable}");

    let wrong_password = open(pg.dsn("exists"), secret);
    assert!(wrong_password.contains("password authentication failed"), "{wrong_password}");
    assert!(wrong_password.contains(&format!("127.0.0.1:{}/exists", pg.port())), "names the database: {wrong_password}");

    let in_dsn = open(format!("postgres://lanes:{secret}@127.0.0.1:{}/exists", pg.port()), secret);
    let no_database = open(pg.dsn("missing"), pg.password());
    assert!(no_database.contains("missing") && no_database.contains("does not exist"), "{no_database}");

    let closed_port = lanes_regtest::free_port();
    let unreachable = open(format!("postgres://lanes@127.0.0.1:{closed_port}/exists"), pg.password());
    assert!(unreachable.contains(&format!("127.0.0.1:{closed_port}")), "{unreachable}");

    for msg in [&unparsable, &wrong_password, &in_dsn, &no_database, &unreachable] {
        assert!(!msg.contains(secret) && !msg.contains(pg.password()), "a password in an error: {msg}");
    }
}

/// Owners call the store from LDK's threads and from tokio tasks at once; every write is acknowledged
/// once committed, and all of them are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_threads_and_tasks_at_once_all_land() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let (_opts, store) = fresh(&pg, "busy").await;
    let store: Arc<dyn Store> = Arc::new(store);
    let mut threads = Vec::new();
    for t in 0..4 {
        let store = Arc::clone(&store);
        threads.push(std::thread::spawn(move || {
            for i in 0..50 {
                store.write("busy", &format!("t{t}"), &format!("{i:03}"), vec![t as u8; i]).unwrap();
            }
        }));
    }
    let mut tasks = Vec::new();
    for t in 4..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let ops = vec![Op::write("busy", &format!("t{t}"), &format!("{:03}", 2 * i), vec![1]), Op::write("busy", &format!("t{t}"), &format!("{:03}", 2 * i + 1), vec![2])];
                store.write_batch(ops).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    for t in 0..8 {
        let keys = store.list("busy", &format!("t{t}")).unwrap();
        assert_eq!(keys.len(), 50, "writer {t}");
        assert_eq!(keys.first().map(String::as_str), Some("000"));
    }
    assert_eq!(store.read("busy", "t3", "049").unwrap(), vec![3u8; 49]);
}

/// PostgreSQL restarted under a running node (an upgrade, a failover of the operator's database): calls
/// fail while it is down, with the reason, and work again once it is back, without reopening the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reconnects_after_postgres_restarts() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let (_opts, store) = fresh(&pg, "restarts").await;
    store.write("k", "", "before", vec![1]).unwrap();
    assert_eq!(store.list("k", "").unwrap(), vec!["before"]);

    pg.stop().await;
    let down = store.write("k", "", "during", vec![2]).unwrap_err();
    assert!(down.to_string().contains("PostgreSQL at"), "{down}");
    assert_ne!(down.kind(), io::ErrorKind::NotFound);

    pg.restart().await;
    store.write("k", "", "after", vec![3]).unwrap();
    assert_eq!(store.read("k", "", "before").unwrap(), vec![1]);
    assert_eq!(store.list("k", "").unwrap(), vec!["after", "before"]);
}

/// A database the previous lanesd made (schema version 1: the key-value table only) is brought to this
/// build's version at open, and keeps its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_the_previous_schema_version_is_migrated_and_keeps_its_data() {
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let dsn = pg.create_database("old").await;
    pg.execute("old", lanes_store::POSTGRES_MIGRATIONS[0]).await;
    pg.execute(
        "old",
        "CREATE TABLE lanes_schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
         INSERT INTO lanes_schema_version (version) VALUES (1);
         INSERT INTO lanes_kv VALUES ('monitors', '', 'abc_1', '\\x010203'::bytea);",
    )
    .await;
    let store = PgStore::open(&options(&pg, dsn)).expect("open a version 1 database");
    assert_eq!(versions(&pg, "old").await, (1..=lanes_store::postgres_schema_version()).collect::<Vec<_>>());
    assert!(lanes_store::postgres_schema_version() >= 2);
    assert_eq!(store.read("monitors", "", "abc_1").unwrap(), vec![1, 2, 3]);
    assert_eq!(store.lease().unwrap(), None, "no instance ever held the lease");
}

/// The lease and the fencing token: one instance holds the lease; another takes it only once it expired
/// or was released, with a higher epoch; from then on the deposed instance can write nothing, whether or
/// not it noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_holds_the_lease_and_a_deposed_one_can_write_nothing() {
    use std::time::Duration;
    let dir = tmp();
    let pg = Postgres::start(dir.path()).await;
    let (opts, a) = fresh(&pg, "lease").await;
    let b = PgStore::open(&opts).unwrap();
    let ttl = Duration::from_millis(1500);
    let wait = Duration::from_secs(5);

    assert_eq!(a.acquire_lease("a", ttl).unwrap(), Ok(1));
    let held = b.acquire_lease("b", ttl).unwrap().expect_err("a holds it");
    assert_eq!((held.holder.as_str(), held.epoch), ("a", 1));
    assert!(held.expires_in_ms > 0 && held.expires_in_ms <= 1500, "{held:?}");
    a.fence("a", 1);
    a.write("k", "", "v", vec![1]).unwrap();
    assert!(a.renew_lease("a", 1, ttl, wait).unwrap());

    // a stops renewing: once the lease expired (database clock), b takes it with the next epoch.
    let taken = lanes_regtest::wait_until(wait, "b to take the expired lease", || async {
        match b.acquire_lease("b", ttl).unwrap() {
            Ok(epoch) => Ok(epoch),
            Err(info) => Err(format!("still held: {info:?}")),
        }
    })
    .await;
    assert_eq!(taken, 2);
    b.fence("b", 2);
    b.write("k", "", "v", vec![2]).unwrap();

    // a has not noticed: its writes are refused and change nothing; its renewal fails.
    let refused = a.write("k", "", "v", vec![3]).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
    assert!(refused.to_string().contains("fenced") && refused.to_string().contains("epoch 2"), "{refused}");
    assert_eq!(a.write_batch(vec![Op::write("k", "", "w", vec![3]), Op::remove("k", "", "v")]).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(a.remove("k", "", "v", false).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(b.read("k", "", "v").unwrap(), vec![2]);
    assert_eq!(b.list("k", "").unwrap(), vec!["v"]);
    assert!(!a.renew_lease("a", 1, ttl, wait).unwrap());
    assert_eq!(a.acquire_lease("a", ttl).unwrap().expect_err("b holds it").holder, "b");

    // A clean stop releases the lease: the other takes it at once.
    b.release_lease("b", 2).unwrap();
    assert_eq!(a.acquire_lease("a", ttl).unwrap(), Ok(3));
    assert_eq!(a.lease().unwrap().map(|l| (l.holder, l.epoch)), Some(("a".to_string(), 3)));
}

/// A remote database over TLS (`sslmode=require`): the server's certificate is checked against the CA
/// given (`--db-ca-file`), the session is encrypted, and a server the store cannot verify is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_speaks_tls_and_checks_the_server_certificate() {
    let dir = tmp();
    let pg = Postgres::start_with(dir.path(), true).await;
    let dsn = format!("{}?sslmode=require", pg.create_database("tls").await);
    let ca = pg.ca_file().expect("a CA").to_path_buf();

    let store = PgStore::open(&PgOptions { dsn: dsn.clone(), password: Some(pg.password().into()), ca_file: Some(ca) }).expect("open over TLS");
    store.write("k", "", "v", vec![7]).unwrap();
    assert_eq!(store.read("k", "", "v").unwrap(), vec![7]);
    let (client, connection) = tokio_postgres_config(&pg, "postgres").connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'tls'", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.get::<_, bool>(0)), "every session of the store is encrypted");

    let unverified = PgStore::open(&PgOptions { dsn, password: Some(pg.password().into()), ca_file: None }).err().expect("an unknown CA must be refused").to_string();
    assert!(unverified.to_lowercase().contains("certificate"), "{unverified}");
}
