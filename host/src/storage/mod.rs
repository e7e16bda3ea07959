//! The key-value store behind the plugins' `kv` import: values namespaced by (vhost, plugin),
//! so a tenant's plugin can never read another tenant's data.
//!
//! A trait the plugin host calls from blocking threads, with SQLite (the embedded default) and
//! in-memory implementations. Invariant: every operation is scoped by (vhost, plugin); there is
//! no call that crosses namespaces. Tests: `mod tests` below run against both implementations.

mod memory;
mod sqlite;

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
}

/// A key-value store namespaced by vhost and plugin.
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// Read a value.
    fn get(&self, vhost: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Write a value.
    fn set(&self, vhost: &str, plugin: &str, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Remove a value.
    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError>;
    /// Keys starting with `prefix`, sorted.
    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError>;
    /// Bytes used (keys plus values) in this namespace.
    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError>;
}

/// Open (creating if needed) the SQLite store at `path`.
///
/// # Errors
/// When the file cannot be opened or its schema created.
pub fn open_sqlite(path: &Path) -> Result<Arc<dyn KvStore>, StorageError> {
    Ok(Arc::new(sqlite::SqliteStore::open(path)?))
}

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn KvStore> {
    Arc::new(memory::MemoryStore::default())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn memory_store() {
        exercise(memory().as_ref());
    }

    #[test]
    fn sqlite_store_persists() {
        let dir = std::env::temp_dir().join(format!("lilt-kv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("kv.sqlite3");
        exercise(open_sqlite(&path).expect("open").as_ref());
        let again = open_sqlite(&path).expect("reopen");
        assert_eq!(
            again.get("a", "p", "user/y").expect("get").as_deref(),
            Some(&b"22"[..])
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
