//! SQLite `KvStore`: one table keyed by (vhost, plugin, key) and one running usage counter per
//! (vhost, plugin), WAL journal, one connection behind a mutex (calls come from blocking
//! threads, never from async tasks).
//!
//! Shell (file IO). Invariants: prefix listing uses a range scan, so `%` and `_` in prefixes
//! are literal; every write and delete updates `plugin_kv_usage` in the same IMMEDIATE
//! transaction (so the counter stays exact even with a second process, e.g. `lilt user`, on the
//! same file); the schema version lives in `PRAGMA user_version` and is migrated on open.
//! Tests: storage/mod.rs.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{KvStore, StorageError, entry_bytes};

/// The schema this code reads and writes, kept in `PRAGMA user_version`.
///
/// - 0 (files from before versioning, "v1"): `plugin_kv` only, its `plugin` column holding the
///   bare plugin name.
/// - 2: `plugin` holds the namespace `"{role}/{plugin}"` (`super::kv_namespace`), and
///   `plugin_kv_usage` holds each namespace's byte count.
const SCHEMA_VERSION: i64 = 2;

/// The store.
#[derive(Debug)]
pub(super) struct SqliteStore(Mutex<Connection>);

impl SqliteStore {
    pub(super) fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Io(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(SqliteStore(Mutex::new(conn)))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // The connection stays usable after a panic elsewhere; SQLite keeps it consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The namespace's counter, 0 when it has none.
fn usage(conn: &Connection, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
    let n: Option<i64> = conn
        .query_row(
            "SELECT bytes FROM plugin_kv_usage WHERE vhost = ?1 AND plugin = ?2",
            params![vhost, plugin],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Create the schema, or bring an older file up to `SCHEMA_VERSION`, in one IMMEDIATE
/// transaction (two processes opening the same old file migrate it once).
fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let tx: Transaction<'_> = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::Io(format!(
            "the database has schema version {version}, newer than this lilt knows \
             ({SCHEMA_VERSION}); use a newer lilt"
        )));
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS plugin_kv (
            vhost TEXT NOT NULL, plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
            PRIMARY KEY (vhost, plugin, key)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS plugin_kv_usage (
            vhost TEXT NOT NULL, plugin TEXT NOT NULL, bytes INTEGER NOT NULL,
            PRIMARY KEY (vhost, plugin)) WITHOUT ROWID;",
    )?;
    if version < 2 {
        // v1 -> v2: namespaces gain their role. A v1 file does not record which role a plugin
        // ran in, so the role is inferred from the name: a plugin whose name starts with
        // "auth" becomes "auth/NAME", any other "hooks/NAME". This matches every plugin
        // shipped (auth-anonymous, auth-internal -> auth; speakerstats, conference-duration,
        // branding -> hooks). Plugin names never contain '/', so rows that already have one
        // are left alone.
        tx.execute(
            "UPDATE plugin_kv
             SET plugin = (CASE WHEN substr(plugin, 1, 4) = 'auth' THEN 'auth/' ELSE 'hooks/' END)
                          || plugin
             WHERE instr(plugin, '/') = 0",
            [],
        )?;
        // The usage counters start from the data: one SUM per namespace that has rows but no
        // counter yet. From v2 on every write keeps them exact, so this runs only here.
        tx.execute(
            "INSERT OR IGNORE INTO plugin_kv_usage (vhost, plugin, bytes)
             SELECT vhost, plugin, SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB)))
             FROM plugin_kv GROUP BY vhost, plugin",
            [],
        )?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

impl KvStore for SqliteStore {
    /// Write `value` in one IMMEDIATE transaction with the counter update, unless `quota` is
    /// given and the namespace would exceed it; answers whether it wrote.
    fn write(
        &self,
        vhost: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = value_len(&tx, vhost, plugin, key)?;
        let old = old.map_or(0, |n| key.len() as u64 + n);
        let new_total = usage(&tx, vhost, plugin)?.saturating_sub(old) + entry_bytes(key, value);
        if quota.is_some_and(|q| new_total > q) {
            // Dropping `tx` rolls back; nothing was written.
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO plugin_kv (vhost, plugin, key, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (vhost, plugin, key) DO UPDATE SET value = excluded.value",
            params![vhost, plugin, key, value],
        )?;
        tx.execute(
            "INSERT INTO plugin_kv_usage (vhost, plugin, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (vhost, plugin) DO UPDATE SET bytes = excluded.bytes",
            params![vhost, plugin, i64::try_from(new_total).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn get(&self, vhost: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2 AND key = ?3",
                params![vhost, plugin, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = value_len(&tx, vhost, plugin, key)?;
        let Some(old) = old else {
            return Ok(());
        };
        let freed = i64::try_from(key.len() as u64 + old).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2 AND key = ?3",
            params![vhost, plugin, key],
        )?;
        tx.execute(
            "UPDATE plugin_kv_usage SET bytes = MAX(bytes - ?3, 0) WHERE vhost = ?1 AND plugin = ?2",
            params![vhost, plugin, freed],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2 AND key >= ?3 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![vhost, plugin, prefix], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for key in rows {
            let key = key?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push(key);
        }
        Ok(out)
    }

    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
        usage(&self.conn(), vhost, plugin)
    }
}

/// The byte length of the stored value of `key`, if there is one.
fn value_len(
    tx: &rusqlite::Transaction<'_>,
    vhost: &str,
    plugin: &str,
    key: &str,
) -> Result<Option<u64>, StorageError> {
    let n: Option<i64> = tx
        .query_row(
            "SELECT LENGTH(CAST(value AS BLOB)) FROM plugin_kv
             WHERE vhost = ?1 AND plugin = ?2 AND key = ?3",
            params![vhost, plugin, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.map(|n| u64::try_from(n).unwrap_or(0)))
}
