//! The key-value store behind the plugins' `kv` import: values namespaced by (vhost, role,
//! plugin), so a tenant's plugin can never read another tenant's data, and a hook plugin can
//! never read the auth plugin's records even under the same name.
//!
//! A trait the plugin host calls from blocking threads, with SQLite (the embedded default),
//! PostgreSQL (`[storage] backend = "postgres"`, shared by several processes) and in-memory
//! implementations. Invariants: every operation is scoped by (vhost, namespace), and
//! the namespace is always built by `kv_namespace` ("{role}/{plugin}"); there is no call that
//! crosses namespaces. Each namespace keeps a running usage counter (keys plus values, in
//! bytes) updated atomically with every write and delete, so `usage_bytes` is O(1) and
//! `set_within_quota` checks and writes in one step. Tests: `mod tests` below run against every
//! implementation (PostgreSQL: a server of the test's own, or `LILT_TEST_POSTGRES_URL`).

mod memory;
pub mod migrate_sqlite;
mod postgres;
mod postgres_tls;
mod sqlite;
#[cfg(test)]
mod test_postgres;

use std::path::Path;
use std::sync::Arc;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be prepared.
    #[error("{0}")]
    Io(String),
    /// PostgreSQL failed, or did not answer in time.
    #[error("postgres: {0}")]
    Postgres(String),
}

/// Why `set_within_quota` did not write.
#[derive(Debug, thiserror::Error)]
pub enum KvSetError {
    /// The write would take the namespace past its quota; nothing was written.
    #[error("kv quota exceeded")]
    QuotaExceeded,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The role a plugin is loaded in; part of its kv namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvRole {
    /// The vhost's auth plugin.
    Auth,
    /// Hook and component plugins (they share one role).
    Hooks,
}

impl KvRole {
    /// The namespace prefix: `auth` or `hooks`.
    pub fn as_str(self) -> &'static str {
        match self {
            KvRole::Auth => "auth",
            KvRole::Hooks => "hooks",
        }
    }
}

/// The namespace a plugin's kv calls use as their `plugin` argument: `"{role}/{plugin}"`.
/// The one place it is built. Plugin names never contain '/' (config validation), so two
/// (role, plugin) pairs never share a namespace.
pub fn kv_namespace(role: KvRole, plugin: &str) -> String {
    format!("{}/{plugin}", role.as_str())
}

/// A key-value store namespaced by vhost and plugin namespace (see `kv_namespace`).
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// Read a value.
    fn get(&self, vhost: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// The one write every backend implements: store `value` with the counter update, unless
    /// `quota` is given and the namespace's usage afterwards (the new entry counted in place of
    /// the old one) would exceed it; check and write are one atomic step. Answers whether it
    /// wrote (a refused write leaves the old value in place).
    fn write(
        &self,
        vhost: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError>;
    /// Write a value, whatever the namespace's usage (the counter is still kept).
    fn set(&self, vhost: &str, plugin: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.write(vhost, plugin, key, value, None).map(|_| ())
    }
    /// Write a value unless it would take the namespace past `quota_bytes` (see `write`).
    fn set_within_quota(
        &self,
        vhost: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota_bytes: u64,
    ) -> Result<(), KvSetError> {
        if self.write(vhost, plugin, key, value, Some(quota_bytes))? {
            Ok(())
        } else {
            Err(KvSetError::QuotaExceeded)
        }
    }
    /// Remove a value.
    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError>;
    /// Keys starting with `prefix`, sorted.
    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError>;
    /// Bytes used (keys plus values) in this namespace: a read of the running counter.
    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError>;
}

/// Bytes an entry counts against its namespace's quota.
fn entry_bytes(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// Open (creating or migrating if needed) the SQLite store at `path`.
///
/// # Errors
/// When the file cannot be opened, its schema created or migrated, or it was written by a
/// newer schema version.
pub fn open_sqlite(path: &Path) -> Result<Arc<dyn KvStore>, StorageError> {
    Ok(Arc::new(sqlite::SqliteStore::open(path)?))
}

/// Connect to the PostgreSQL database of `config`, creating the schema if it is missing.
///
/// # Errors
/// When the database cannot be reached or logged into within the connect timeout, its schema
/// cannot be created, or it was written by a newer schema version.
pub fn open_postgres(
    config: &crate::config::PostgresStorage,
) -> Result<Arc<dyn KvStore>, StorageError> {
    Ok(Arc::new(postgres::PostgresStore::open(
        config.connect.clone(),
        postgres_tls::PgTls::new(&config.tls)?,
        config.pool_size,
        config.query_timeout,
    )?))
}

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn KvStore> {
    Arc::new(memory::MemoryStore::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent count of a namespace's bytes, for checking the running counter.
    type Oracle<'a> = &'a dyn Fn(&str, &str) -> u64;

    /// The oracle for any store: list every key and read it back.
    fn listed_sum(store: &dyn KvStore, vhost: &str, plugin: &str) -> u64 {
        store
            .list_keys(vhost, plugin, "")
            .expect("list")
            .iter()
            .map(|k| {
                entry_bytes(
                    k,
                    &store.get(vhost, plugin, k).expect("get").expect("value"),
                )
            })
            .sum()
    }

    /// The oracle for SQLite: a fresh SUM over the rows, on a second connection.
    fn sql_sum(path: &Path, vhost: &str, plugin: &str) -> u64 {
        let conn = rusqlite::Connection::open(path).expect("open");
        let n: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0)
                 FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2",
                rusqlite::params![vhost, plugin],
                |r| r.get(0),
            )
            .expect("sum");
        u64::try_from(n).expect("non-negative")
    }

    fn temp_db() -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("lilt-kv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("kv.sqlite3");
        (dir, path)
    }

    fn exercise(store: &dyn KvStore) {
        store.set("a", "p", "user/x", b"1").expect("set");
        store.set("a", "p", "user/y", b"22").expect("set");
        store.set("a", "p", "other", b"3").expect("set");
        store.set("b", "p", "user/x", b"other tenant").expect("set");
        store.set("a", "q", "user/x", b"other plugin").expect("set");
        assert_eq!(
            store.get("a", "p", "user/x").expect("get").as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            store.get("b", "p", "user/x").expect("get").as_deref(),
            Some(&b"other tenant"[..])
        );
        assert_eq!(
            store.list_keys("a", "p", "user/").expect("list"),
            ["user/x", "user/y"]
        );
        assert_eq!(
            store.usage_bytes("a", "p").expect("usage"),
            (6 + 1) + (6 + 2) + (5 + 1)
        );
        store.set("a", "p", "user/x", b"replaced").expect("set");
        assert_eq!(
            store.get("a", "p", "user/x").expect("get").as_deref(),
            Some(&b"replaced"[..])
        );
        store.delete("a", "p", "user/x").expect("delete");
        store.delete("a", "p", "absent").expect("delete absent");
        assert_eq!(store.get("a", "p", "user/x").expect("get"), None);
        assert_eq!(
            store.get("a", "q", "user/x").expect("get").as_deref(),
            Some(&b"other plugin"[..])
        );
        // LIKE wildcards in a prefix are literal.
        store.set("a", "p", "50%_off", b"").expect("set");
        assert_eq!(
            store.list_keys("a", "p", "5%").expect("list"),
            Vec::<String>::new()
        );
    }

    /// A refused write changes nothing; writes up to the quota, and shrinking overwrites, pass.
    fn quota(store: &dyn KvStore) {
        let (v, p) = ("q.example", "hooks/quota");
        // "k" + 9 bytes = 10.
        store
            .set_within_quota(v, p, "k", b"123456789", 20)
            .expect("fits");
        // Overwriting counts the new entry in place of the old one: 1 + 19 = 20 fits exactly.
        store
            .set_within_quota(v, p, "k", b"1234567890123456789", 20)
            .expect("fits exactly");
        assert_eq!(store.usage_bytes(v, p).expect("usage"), 20);
        // 1 + 20 = 21 > 20.
        let e = store
            .set_within_quota(v, p, "k", b"12345678901234567890", 20)
            .expect_err("over quota");
        assert!(matches!(e, KvSetError::QuotaExceeded), "{e:?}");
        assert_eq!(
            store.get(v, p, "k").expect("get").as_deref(),
            Some(&b"1234567890123456789"[..]),
            "a refused overwrite keeps the old value"
        );
        // A new key past the quota is refused and not created.
        let e = store
            .set_within_quota(v, p, "j", b"", 20)
            .expect_err("over quota");
        assert!(matches!(e, KvSetError::QuotaExceeded), "{e:?}");
        assert_eq!(store.get(v, p, "j").expect("get"), None);
        assert_eq!(store.usage_bytes(v, p).expect("usage"), 20);
        // Shrinking makes room again.
        store.set_within_quota(v, p, "k", b"1", 20).expect("shrink");
        store
            .set_within_quota(v, p, "j", b"12", 20)
            .expect("fits now");
        assert_eq!(store.usage_bytes(v, p).expect("usage"), 2 + 3);
        // Another namespace has its own budget.
        store
            .set_within_quota(v, "hooks/other", "k", b"1234567890123456789", 20)
            .expect("own quota");
    }

    /// The counter equals a fresh count after every kind of change.
    fn counter_exact(store: &dyn KvStore, oracle: Oracle<'_>) {
        let (v, p) = ("c.example", "auth/counter");
        let check = |step: &str| {
            for (vh, ns) in [(v, p), (v, "hooks/counter"), ("d.example", p)] {
                assert_eq!(
                    store.usage_bytes(vh, ns).expect("usage"),
                    oracle(vh, ns),
                    "{step}: {vh} {ns}"
                );
                assert_eq!(oracle(vh, ns), listed_sum(store, vh, ns), "{step}: oracle");
            }
        };
        check("empty");
        store.set(v, p, "a", b"12345").expect("set");
        store.set(v, p, "bb", b"").expect("set");
        store
            .set(v, "hooks/counter", "a", b"elsewhere")
            .expect("set");
        store.set("d.example", p, "a", b"other vhost").expect("set");
        check("first writes");
        store.set(v, p, "a", b"1234567890").expect("grow");
        check("grow");
        store.set(v, p, "a", b"1").expect("shrink");
        check("shrink");
        store
            .set_within_quota(v, p, "a", b"quota path", 1 << 20)
            .expect("set within");
        check("set within quota");
        store.delete(v, p, "a").expect("delete");
        check("delete");
        store.delete(v, p, "a").expect("delete again");
        store.delete(v, p, "never").expect("delete absent");
        check("delete absent");
        store.set(v, p, "a", b"back").expect("re-set");
        check("re-set");
        store.delete(v, p, "a").expect("delete");
        store.delete(v, p, "bb").expect("delete");
        check("all gone");
        assert_eq!(store.usage_bytes(v, p).expect("usage"), 0);
        // Multi-byte keys count bytes, not characters.
        store.set(v, p, "ключ", b"v").expect("set");
        assert_eq!(store.usage_bytes(v, p).expect("usage"), 8 + 1);
        check("utf-8 key");
    }

    /// The same plugin name in two roles is two namespaces.
    fn roles_separate(store: &dyn KvStore) {
        let auth = kv_namespace(KvRole::Auth, "auth-internal");
        let hooks = kv_namespace(KvRole::Hooks, "auth-internal");
        assert_eq!(auth, "auth/auth-internal");
        assert_eq!(hooks, "hooks/auth-internal");
        store
            .set("r.example", &auth, "account/alice", b"secret record")
            .expect("set");
        assert_eq!(
            store
                .get("r.example", &hooks, "account/alice")
                .expect("get"),
            None
        );
        assert!(
            store
                .list_keys("r.example", &hooks, "")
                .expect("list")
                .is_empty()
        );
        assert_eq!(store.usage_bytes("r.example", &hooks).expect("usage"), 0);
        store
            .set("r.example", &hooks, "account/alice", b"hook data")
            .expect("set");
        assert_eq!(
            store
                .get("r.example", &auth, "account/alice")
                .expect("get")
                .as_deref(),
            Some(&b"secret record"[..])
        );
        store
            .delete("r.example", &hooks, "account/alice")
            .expect("delete");
        assert!(
            store
                .get("r.example", &auth, "account/alice")
                .expect("get")
                .is_some()
        );
    }

    /// Writers racing on one namespace never take it past its quota, and the counter holds.
    fn concurrent_quota(store: &dyn KvStore, oracle: Oracle<'_>) {
        let (v, p) = ("t.example", "hooks/race");
        let quota = 100;
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..20 {
                        // Each entry is 3 + 7 = 10 bytes: at most 10 of the 80 fit.
                        match store.set_within_quota(v, p, &format!("{t}{i:02}"), &[0; 7], quota) {
                            Ok(()) | Err(KvSetError::QuotaExceeded) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
        assert_eq!(store.usage_bytes(v, p).expect("usage"), quota);
        assert_eq!(oracle(v, p), quota);
        assert_eq!(store.list_keys(v, p, "").expect("list").len(), 10);
    }

    fn all(store: &dyn KvStore, oracle: Oracle<'_>) {
        exercise(store);
        quota(store);
        counter_exact(store, oracle);
        roles_separate(store);
        concurrent_quota(store, oracle);
    }

    #[test]
    fn memory_store() {
        let store = memory();
        all(store.as_ref(), &|v, p| listed_sum(store.as_ref(), v, p));
    }

    #[test]
    fn sqlite_store_persists() {
        let (dir, path) = temp_db();
        let store = open_sqlite(&path).expect("open");
        all(store.as_ref(), &|v, p| sql_sum(&path, v, p));
        drop(store);
        let again = open_sqlite(&path).expect("reopen");
        assert_eq!(
            again.get("a", "p", "user/y").expect("get").as_deref(),
            Some(&b"22"[..])
        );
        // The counters survive a reopen and stay exact.
        for (v, p) in [
            ("a", "p"),
            ("q.example", "hooks/quota"),
            ("t.example", "hooks/race"),
        ] {
            assert_eq!(
                again.usage_bytes(v, p).expect("usage"),
                sql_sum(&path, v, p),
                "{v} {p}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sqlite_migrates_v1_files() {
        let (dir, path) = temp_db();
        {
            // The v1 schema, as lilt wrote it before roles and counters (user_version 0).
            let conn = rusqlite::Connection::open(&path).expect("create");
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE plugin_kv (
                    vhost TEXT NOT NULL, plugin TEXT NOT NULL, key TEXT NOT NULL,
                    value BLOB NOT NULL, PRIMARY KEY (vhost, plugin, key)) WITHOUT ROWID;",
            )
            .expect("schema");
            for (v, p, k, val) in [
                ("a.example", "auth-internal", "user/alice", &b"record-a"[..]),
                ("a.example", "auth-internal", "user/bob", b"record-bob"),
                ("b.example", "auth-internal", "user/alice", b"other tenant"),
                ("a.example", "auth-anonymous", "seen", b"1"),
                ("a.example", "speakerstats", "room/x", b"stats"),
                ("a.example", "conference-duration", "room/x", b"t0"),
                ("a.example", "branding", "k", b""),
            ] {
                conn.execute(
                    "INSERT INTO plugin_kv (vhost, plugin, key, value) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![v, p, k, val],
                )
                .expect("row");
            }
        }
        let auth = |p: &str| kv_namespace(KvRole::Auth, p);
        let hooks = |p: &str| kv_namespace(KvRole::Hooks, p);
        let expect = [
            ("a.example", auth("auth-internal"), 10 + 8 + 8 + 10),
            ("b.example", auth("auth-internal"), 10 + 12),
            ("a.example", auth("auth-anonymous"), 4 + 1),
            ("a.example", hooks("speakerstats"), 6 + 5),
            ("a.example", hooks("conference-duration"), 6 + 2),
            ("a.example", hooks("branding"), 1),
        ];
        for round in ["migrate", "reopen"] {
            let store = open_sqlite(&path).expect(round);
            assert_eq!(
                store
                    .get("a.example", &auth("auth-internal"), "user/alice")
                    .expect("get")
                    .as_deref(),
                Some(&b"record-a"[..]),
                "{round}"
            );
            assert_eq!(
                store
                    .get("a.example", &hooks("auth-internal"), "user/alice")
                    .expect("get"),
                None,
                "{round}"
            );
            assert_eq!(
                store
                    .get("a.example", "auth-internal", "user/alice")
                    .expect("get"),
                None,
                "{round}: no bare names left"
            );
            assert_eq!(
                store
                    .get("a.example", &hooks("speakerstats"), "room/x")
                    .expect("get")
                    .as_deref(),
                Some(&b"stats"[..]),
                "{round}"
            );
            for (v, ns, bytes) in &expect {
                assert_eq!(
                    store.usage_bytes(v, ns).expect("usage"),
                    *bytes,
                    "{round} {v} {ns}"
                );
                assert_eq!(sql_sum(&path, v, ns), *bytes, "{round} {v} {ns}");
            }
        }
        let conn = rusqlite::Connection::open(&path).expect("open");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, 2);
        let bare: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM plugin_kv WHERE instr(plugin, '/') = 0",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(bare, 0);

        // After migration the counters keep up with writes.
        let store = open_sqlite(&path).expect("open");
        let ns = auth("auth-internal");
        store.delete("a.example", &ns, "user/bob").expect("delete");
        store
            .set_within_quota("a.example", &ns, "user/carol", b"c", 1 << 20)
            .expect("set");
        assert_eq!(
            store.usage_bytes("a.example", &ns).expect("usage"),
            sql_sum(&path, "a.example", &ns)
        );

        // A file from a newer lilt is refused, not rewritten.
        drop(store);
        conn.pragma_update(None, "user_version", 3).expect("bump");
        drop(conn);
        let e = open_sqlite(&path).expect_err("newer schema");
        assert!(e.to_string().contains("newer"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A fresh database for one test on `LILT_TEST_POSTGRES_URL` (a user allowed to create
    /// databases), else on a PostgreSQL server of the test's own; `None` (the test is skipped,
    /// loudly) only when neither is there. Dropped with the server: the database goes too.
    struct PgDb {
        admin: tokio_postgres::Config,
        config: tokio_postgres::Config,
        name: String,
        _server: Option<test_postgres::PgServer>,
    }

    /// One SQL command on a one-off connection (the test's own, not the store's).
    fn pg_exec(config: &tokio_postgres::Config, sql: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(conn);
            client.batch_execute(sql).await.expect(sql);
            drop(client);
            let _ = task.await;
        });
    }

    impl PgDb {
        fn new() -> Option<PgDb> {
            let (server, admin) = match std::env::var("LILT_TEST_POSTGRES_URL") {
                Ok(url) => (None, url.parse().expect("LILT_TEST_POSTGRES_URL")),
                Err(_) => {
                    if test_postgres::bin_dir().is_none() {
                        eprintln!(
                            "SKIPPED: no PostgreSQL here (run scripts/postgres-deps.sh, or set \
                             LILT_TEST_POSTGRES_URL)"
                        );
                        return None;
                    }
                    let server = test_postgres::PgServer::start().expect("start PostgreSQL");
                    let mut admin: tokio_postgres::Config =
                        server.url("postgres").parse().expect("url");
                    admin.password(server.password());
                    (Some(server), admin)
                }
            };
            let name = format!("lilt_test_{}", uuid::Uuid::new_v4().simple());
            pg_exec(&admin, &format!("CREATE DATABASE {name}"));
            let mut config = admin.clone();
            config.dbname(&name);
            config.connect_timeout(std::time::Duration::from_secs(5));
            Some(PgDb {
                admin,
                config,
                name,
                _server: server,
            })
        }

        fn open(&self) -> Result<postgres::PostgresStore, StorageError> {
            postgres::PostgresStore::open(
                self.config.clone(),
                postgres_tls::PgTls::new(&crate::config::PostgresTls::Prefer)?,
                4,
                std::time::Duration::from_secs(10),
            )
        }
    }

    impl Drop for PgDb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                pg_exec(
                    &self.admin,
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                );
            }
        }
    }

    #[test]
    fn postgres_store() {
        let Some(db) = PgDb::new() else { return };
        let store = db.open().expect("open");
        all(&store, &|v, p| store.summed_bytes(v, p).expect("sum"));

        // A second store on the same database is a second process's: it sees the data, and
        // writers of both racing on one namespace still never pass its quota.
        let other = db.open().expect("second store");
        assert_eq!(
            other.get("a", "p", "user/y").expect("get").as_deref(),
            Some(&b"22"[..])
        );
        let (v, p) = ("two.example", "hooks/race");
        std::thread::scope(|s| {
            for t in 0..4 {
                let store: &dyn KvStore = if t % 2 == 0 { &store } else { &other };
                s.spawn(move || {
                    for i in 0..20 {
                        match store.set_within_quota(v, p, &format!("{t}{i:02}"), &[0; 7], 100) {
                            Ok(()) | Err(KvSetError::QuotaExceeded) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
        assert_eq!(other.usage_bytes(v, p).expect("usage"), 100);
        assert_eq!(store.summed_bytes(v, p).expect("sum"), 100);

        // Reopened, the counters are still exact.
        drop(store);
        let again = db.open().expect("reopen");
        for (v, p) in [
            ("a", "p"),
            ("q.example", "hooks/quota"),
            ("t.example", "hooks/race"),
        ] {
            assert_eq!(
                again.usage_bytes(v, p).expect("usage"),
                again.summed_bytes(v, p).expect("sum"),
                "{v} {p}"
            );
        }
        // A NUL cannot be stored in a PostgreSQL text key: an error, not a panic.
        let e = again
            .set("a", "p", "nul\0key", b"x")
            .expect_err("NUL in key");
        assert!(e.to_string().starts_with("postgres: "), "{e}");
        assert!(
            again
                .get("a", "p", "user/y")
                .expect("still usable")
                .is_some()
        );

        // A database from a newer lilt is refused, not rewritten.
        pg_exec(&db.config, "UPDATE schema_version SET version = 3");
        let e = db.open().expect_err("newer schema");
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn postgres_unreachable_is_an_error_in_time() {
        // A loopback port nobody listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut config: tokio_postgres::Config = format!("postgres://lilt@127.0.0.1:{port}/lilt")
            .parse()
            .expect("url");
        config.connect_timeout(std::time::Duration::from_secs(2));
        let t = std::time::Instant::now();
        let tls = postgres_tls::PgTls::new(&crate::config::PostgresTls::Prefer).expect("tls");
        let e = postgres::PostgresStore::open(config, tls, 2, std::time::Duration::from_secs(3))
            .expect_err("nothing listens");
        assert!(e.to_string().starts_with("postgres: "), "{e}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
