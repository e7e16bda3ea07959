//! PostgreSQL `KvStore`: the same tables and semantics as SQLite (`plugin_kv` keyed by
//! (vhost, plugin, key), one `plugin_kv_usage` counter per (vhost, plugin)), in a database that
//! several Lilt processes may share.
//!
//! Shell (network IO). The trait is called from blocking threads (and, at start-up, from
//! async code), so the store owns one thread running a small tokio runtime with its pool of
//! connections; a call hands its work to that runtime and waits on a std channel, which
//! neither panics in nor needs a caller's runtime. Invariants: every write and delete runs in
//! one transaction that first takes the namespace's counter row lock (an upsert of
//! `plugin_kv_usage`), so writers of one namespace are serialized across processes and
//! `set_within_quota` checks and writes atomically; a refused write rolls back; each operation
//! is bounded by the query timeout, and a connection whose operation failed or timed out is
//! closed, never reused mid-transaction; no database error panics; keys sort bytewise
//! (`COLLATE "C"`, as SQLite and Rust do); the schema version lives in `schema_version` and is
//! created or checked under an advisory lock, so two processes starting together create it
//! once; every connection goes through the store's TLS connector (postgres_tls.rs), which
//! encrypts as `sslmode` says and never downgrades `require` to plain text. Tests:
//! storage/mod.rs (the shared `mod tests` against a real server); TLS and the SQLite import
//! (migrate_sqlite.rs) end to end in tests/all/postgres.rs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Statement};

use super::postgres_tls::PgTls;
use super::{KvStore, StorageError, entry_bytes};

/// The schema this code reads and writes (the same shape as SQLite's version 2).
pub(super) const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key held while the schema is created or checked ("lilt" in ASCII).
const SCHEMA_LOCK: i64 = 0x6c69_6c74;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS plugin_kv (
    vhost TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (vhost, plugin, key)
);
CREATE TABLE IF NOT EXISTS plugin_kv_usage (
    vhost TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    bytes BIGINT NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (vhost, plugin)
);
"#;

pub(super) fn pg(e: tokio_postgres::Error) -> StorageError {
    // The database's own message (`ERROR: ...`) when there is one: more useful than "db error".
    match e.as_db_error() {
        Some(db) => StorageError::Postgres(format!("{}: {}", db.severity(), db.message())),
        // tokio-postgres's own text is the kind only ("error performing TLS handshake"); the
        // why is in its sources.
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            StorageError::Postgres(text)
        }
    }
}

/// Open one connection with `tls`, its IO driven by a task of the current runtime (it ends
/// when the client is dropped).
pub(super) async fn connect(
    config: &tokio_postgres::Config,
    tls: &PgTls,
) -> Result<(Client, tokio::task::JoinHandle<()>), StorageError> {
    let (client, connection) = config.connect(tls.clone()).await.map_err(pg)?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres: connection closed");
        }
    });
    Ok((client, task))
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

struct Statements {
    get: Statement,
    lock_usage: Statement,
    old_len: Statement,
    upsert: Statement,
    set_usage: Statement,
    delete: Statement,
    sub_usage: Statement,
    list: Statement,
    usage: Statement,
}

impl Statements {
    async fn prepare(c: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            get: c
                .prepare(
                    "SELECT value FROM plugin_kv WHERE vhost = $1 AND plugin = $2 AND key = $3",
                )
                .await?,
            // Creates the counter row if needed and takes its lock either way: every writer of
            // the namespace, in any process, queues here until the holder commits.
            lock_usage: c
                .prepare(
                    "INSERT INTO plugin_kv_usage (vhost, plugin, bytes) VALUES ($1, $2, 0)
                     ON CONFLICT (vhost, plugin) DO UPDATE SET bytes = plugin_kv_usage.bytes
                     RETURNING bytes",
                )
                .await?,
            old_len: c
                .prepare(
                    "SELECT octet_length(value)::BIGINT FROM plugin_kv
                     WHERE vhost = $1 AND plugin = $2 AND key = $3",
                )
                .await?,
            upsert: c
                .prepare(
                    "INSERT INTO plugin_kv (vhost, plugin, key, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (vhost, plugin, key) DO UPDATE SET value = excluded.value",
                )
                .await?,
            set_usage: c
                .prepare("UPDATE plugin_kv_usage SET bytes = $3 WHERE vhost = $1 AND plugin = $2")
                .await?,
            delete: c
                .prepare(
                    "DELETE FROM plugin_kv WHERE vhost = $1 AND plugin = $2 AND key = $3
                     RETURNING octet_length(value)::BIGINT",
                )
                .await?,
            sub_usage: c
                .prepare(
                    "UPDATE plugin_kv_usage SET bytes = GREATEST(bytes - $3, 0)
                     WHERE vhost = $1 AND plugin = $2",
                )
                .await?,
            list: c
                .prepare(
                    "SELECT key FROM plugin_kv WHERE vhost = $1 AND plugin = $2
                     AND key >= $3 AND ($4::TEXT IS NULL OR key < $4) ORDER BY key",
                )
                .await?,
            usage: c
                .prepare("SELECT bytes FROM plugin_kv_usage WHERE vhost = $1 AND plugin = $2")
                .await?,
        })
    }
}

/// The connections of one store: at most `size` open, idle ones kept for reuse.
struct Pool {
    config: tokio_postgres::Config,
    tls: PgTls,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

/// A connection lent by the pool. It goes back only when `keep` was called after its
/// operation succeeded; otherwise (an error, a timeout dropping the operation midway) it is
/// closed.
struct Lent {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    keep: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lent {
    fn conn(&mut self) -> Result<&mut Conn, StorageError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StorageError::Postgres("connection already returned".into()))
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep
            && !conn.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl Pool {
    /// A connection: an idle one, else a new one. Runs on the store's runtime.
    async fn get(self: &Arc<Self>) -> Result<Lent, StorageError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Postgres("the connection pool is closed".into()))?;
        let idle = {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.client.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Lent {
            conn: Some(conn),
            pool: self.clone(),
            keep: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Conn, StorageError> {
        let (client, _task) = connect(&self.config, &self.tls).await?;
        let st = Statements::prepare(&client).await.map_err(pg)?;
        Ok(Conn { client, st })
    }
}

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// One operation on a lent connection.
type Op<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// The store: a handle on its runtime thread and the pool that lives there.
pub(super) struct PostgresStore {
    handle: tokio::runtime::Handle,
    pool: Arc<Pool>,
    query_timeout: Duration,
    /// Dropped with the store: the runtime thread then ends, closing every connection.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `tokio_postgres::Config`'s Debug redacts the password.
        f.debug_struct("PostgresStore")
            .field("config", &self.pool.config)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Start the runtime thread, connect once, and create or check the schema.
    pub(super) fn open(
        config: tokio_postgres::Config,
        tls: PgTls,
        pool_size: usize,
        query_timeout: Duration,
    ) -> Result<Self, StorageError> {
        let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("lilt-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                // Runs the pool's connections until the store is dropped.
                rt.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| StorageError::Postgres(format!("cannot start its thread: {e}")))?;
        let handle = handle_rx
            .recv()
            .map_err(|_| StorageError::Postgres("its thread ended at start".into()))?
            .map_err(|e| StorageError::Postgres(format!("cannot start its runtime: {e}")))?;
        let store = PostgresStore {
            handle,
            pool: Arc::new(Pool {
                config,
                tls,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(pool_size)),
            }),
            query_timeout,
            _stop: stop,
        };
        // The first connection is opened before the schema exists, so it prepares nothing.
        let (config, tls) = (store.pool.config.clone(), store.pool.tls.clone());
        store.run(async move { migrate(&config, &tls).await })?;
        Ok(store)
    }

    /// Run `op` on the store's runtime, bounded by the query timeout, and wait for it.
    fn run<T, F>(&self, op: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let limit = self.query_timeout;
        self.handle.spawn(async move {
            let out = match tokio::time::timeout(limit, op).await {
                Ok(r) => r,
                Err(_) => Err(StorageError::Postgres(format!(
                    "no answer within {} s (storage.query_timeout_seconds)",
                    limit.as_secs()
                ))),
            };
            let _ = tx.send(out);
        });
        rx.recv()
            .map_err(|_| StorageError::Postgres("the store's runtime has stopped".into()))?
    }

    /// Run `op` with a pooled connection; the connection is reused only if `op` succeeded.
    fn with_conn<T, F>(&self, op: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Conn) -> Op<'a, T> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.run(async move {
            let mut lent = pool.get().await?;
            let out = op(lent.conn()?).await;
            lent.keep = out.is_ok();
            out
        })
    }

    /// A fresh SUM over the namespace's rows (the tests' oracle for the counter).
    #[cfg(test)]
    pub(super) fn summed_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
        let (v, p) = (vhost.to_owned(), plugin.to_owned());
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                let n: i64 = c
                    .client
                    .query_one(
                        "SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::BIGINT
                     FROM plugin_kv WHERE vhost = $1 AND plugin = $2",
                        &[&v, &p],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
    }
}

/// Create the schema if it is missing, or check its version, under an advisory lock.
async fn migrate(config: &tokio_postgres::Config, tls: &PgTls) -> Result<(), StorageError> {
    let (mut client, conn_task) = connect(config, tls).await?;
    let out = ensure_schema(&mut client).await;
    drop(client);
    let _ = conn_task.await;
    out
}

/// Create the schema if it is missing, or check its version, in one transaction holding the
/// schema's advisory lock.
pub(super) async fn ensure_schema(client: &mut Client) -> Result<(), StorageError> {
    {
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(SCHEMA).await.map_err(pg)?;
        let version: Option<i32> = tx
            .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
            .await
            .map_err(pg)?
            .map(|r| r.get(0));
        match version {
            None => {
                tx.execute(
                    "INSERT INTO schema_version (id, version) VALUES (1, $1)",
                    &[&SCHEMA_VERSION],
                )
                .await
                .map_err(pg)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StorageError::Postgres(format!(
                    "the database has schema version {v}, newer than this lilt knows \
                     ({SCHEMA_VERSION}); use a newer lilt"
                )));
            }
            // Version 2 is the first PostgreSQL schema; later versions migrate here.
            Some(_) => {}
        }
        tx.commit().await.map_err(pg)
    }
}

/// The smallest string above every string starting with `prefix` (bytewise, i.e. by code
/// point), or `None` when there is none (the empty prefix, or one of only `char::MAX`).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl KvStore for PostgresStore {
    /// The write of `set` and `set_within_quota`: answers whether it wrote.
    fn write(
        &self,
        vhost: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        let (v, p, k, val) = (
            vhost.to_owned(),
            plugin.to_owned(),
            key.to_owned(),
            value.to_vec(),
        );
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                let st = &c.st;
                let tx = c.client.transaction().await.map_err(pg)?;
                // Pipelined: the server runs them in order, so the length is read under the
                // counter's lock.
                let (ns, entry): (Params<'_>, Params<'_>) = (&[&v, &p], &[&v, &p, &k]);
                let (usage, old) = futures_util::try_join!(
                    tx.query_one(&st.lock_usage, ns),
                    tx.query_opt(&st.old_len, entry),
                )
                .map_err(pg)?;
                let usage: i64 = usage.get(0);
                let old: Option<i64> = old.map(|r| r.get(0));
                let old = old.map_or(0, |n| k.len() as u64 + u64::try_from(n).unwrap_or(0));
                let new_total =
                    u64::try_from(usage).unwrap_or(0).saturating_sub(old) + entry_bytes(&k, &val);
                if quota.is_some_and(|q| new_total > q) {
                    tx.rollback().await.map_err(pg)?;
                    return Ok(false);
                }
                let new_total = i64::try_from(new_total).unwrap_or(i64::MAX);
                let (row, count): (Params<'_>, Params<'_>) =
                    (&[&v, &p, &k, &val], &[&v, &p, &new_total]);
                futures_util::try_join!(
                    tx.execute(&st.upsert, row),
                    tx.execute(&st.set_usage, count),
                )
                .map_err(pg)?;
                tx.commit().await.map_err(pg)?;
                Ok(true)
            })
        })
    }

    fn get(&self, vhost: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let (v, p, k) = (vhost.to_owned(), plugin.to_owned(), key.to_owned());
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                Ok(c.client
                    .query_opt(&c.st.get, &[&v, &p, &k])
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0)))
            })
        })
    }

    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError> {
        let (v, p, k) = (vhost.to_owned(), plugin.to_owned(), key.to_owned());
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                let st = &c.st;
                let tx = c.client.transaction().await.map_err(pg)?;
                // Pipelined, in order: the row is deleted under the counter's lock.
                let (ns, entry): (Params<'_>, Params<'_>) = (&[&v, &p], &[&v, &p, &k]);
                let (_, old) = futures_util::try_join!(
                    tx.query_one(&st.lock_usage, ns),
                    tx.query_opt(&st.delete, entry),
                )
                .map_err(pg)?;
                let old: Option<i64> = old.map(|r| r.get(0));
                if let Some(old) = old {
                    let freed = i64::try_from(k.len() as u64 + u64::try_from(old).unwrap_or(0))
                        .unwrap_or(i64::MAX);
                    tx.execute(&st.sub_usage, &[&v, &p, &freed])
                        .await
                        .map_err(pg)?;
                }
                tx.commit().await.map_err(pg)
            })
        })
    }

    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError> {
        let (v, p, from) = (vhost.to_owned(), plugin.to_owned(), prefix.to_owned());
        let to = prefix_end(prefix);
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                let rows = c
                    .client
                    .query(&c.st.list, &[&v, &p, &from, &to])
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .filter(|k| k.starts_with(&from))
                    .collect())
            })
        })
    }

    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
        let (v, p) = (vhost.to_owned(), plugin.to_owned());
        self.with_conn(move |c: &mut Conn| {
            Box::pin(async move {
                let n: Option<i64> = c
                    .client
                    .query_opt(&c.st.usage, &[&v, &p])
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0));
                Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_up() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("user/").as_deref(), Some("user0"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        for p in ["user/", "a\u{D7FF}", "ключ"] {
            let end = prefix_end(p).expect("end");
            assert!(format!("{p}\u{10FFFF}\u{10FFFF}") < end, "{p}");
            assert!(p < end.as_str());
        }
    }
}
