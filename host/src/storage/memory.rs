//! In-memory `KvStore` for tests and ephemeral setups. Shell-free; a mutex guards one map.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{KvStore, StorageError};

type Key = (String, String, String);

/// A map behind a mutex.
#[derive(Debug, Default)]
pub(super) struct MemoryStore(Mutex<BTreeMap<Key, Vec<u8>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Vec<u8>>> {
        // A poisoned lock only means another thread panicked mid-operation on a map that is
        // always left consistent; keep serving.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn k(v: &str, p: &str, key: &str) -> Key {
    (v.to_owned(), p.to_owned(), key.to_owned())
}

impl KvStore for MemoryStore {
    fn get(&self, vhost: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map().get(&k(vhost, plugin, key)).cloned())
    }
    fn set(&self, vhost: &str, plugin: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.map().insert(k(vhost, plugin, key), value.to_vec());
        Ok(())
    }
    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError> {
        self.map().remove(&k(vhost, plugin, key));
        Ok(())
    }
    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self
            .map()
            .keys()
            .filter(|(v, p, key)| v == vhost && p == plugin && key.starts_with(prefix))
            .map(|(_, _, key)| key.clone())
            .collect())
    }
    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
        Ok(self
            .map()
            .iter()
            .filter(|((v, p, _), _)| v == vhost && p == plugin)
            .map(|((_, _, key), val)| (key.len() + val.len()) as u64)
            .sum())
    }
}
