//! SQLite `KvStore`: one table keyed by (vhost, plugin, key), WAL journal, one connection
//! behind a mutex (calls come from blocking threads, never from async tasks).
//!
//! Shell (file IO). Invariant: prefix listing uses a range scan, so `%` and `_` in prefixes
//! are literal. Tests: storage/mod.rs.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::{KvStore, StorageError};

/// The store.
#[derive(Debug)]
pub(super) struct SqliteStore(Mutex<Connection>);

impl SqliteStore {
    pub(super) fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Io(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS plugin_kv (
                vhost TEXT NOT NULL, plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (vhost, plugin, key)) WITHOUT ROWID;",
        )?;
        Ok(SqliteStore(Mutex::new(conn)))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // The connection stays usable after a panic elsewhere; SQLite keeps it consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KvStore for SqliteStore {
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

    fn set(&self, vhost: &str, plugin: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO plugin_kv (vhost, plugin, key, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (vhost, plugin, key) DO UPDATE SET value = excluded.value",
            params![vhost, plugin, key, value],
        )?;
        Ok(())
    }

    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError> {
        self.conn().execute(
            "DELETE FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2 AND key = ?3",
            params![vhost, plugin, key],
        )?;
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
        let n: i64 = self.conn().query_row(
            "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) FROM plugin_kv WHERE vhost = ?1 AND plugin = ?2",
            params![vhost, plugin],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
