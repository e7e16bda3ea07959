//! In-memory `KvStore` for tests and ephemeral setups. Shell-free; one mutex guards the map and
//! the per-namespace usage counters, so a quota check and its write are one step.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{KvStore, StorageError, entry_bytes};

type Key = (String, String, String);
type Ns = (String, String);

/// The entries and, per (vhost, namespace), the bytes they use.
#[derive(Debug, Default)]
struct Inner {
    map: BTreeMap<Key, Vec<u8>>,
    usage: HashMap<Ns, u64>,
}

impl Inner {
    /// Write without a quota check, keeping the counter exact.
    fn put(&mut self, vhost: &str, plugin: &str, key: &str, value: &[u8]) {
        let old = self
            .map
            .insert(k(vhost, plugin, key), value.to_vec())
            .map_or(0, |v| entry_bytes(key, &v));
        let used = self
            .usage
            .entry((vhost.to_owned(), plugin.to_owned()))
            .or_insert(0);
        *used = used.saturating_sub(old) + entry_bytes(key, value);
    }

    fn used(&self, vhost: &str, plugin: &str) -> u64 {
        self.usage
            .get(&(vhost.to_owned(), plugin.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

/// A map behind a mutex.
#[derive(Debug, Default)]
pub(super) struct MemoryStore(Mutex<Inner>);

impl MemoryStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-operation on a map that is
        // always left consistent (the counter is updated after the map, with no panic between);
        // keep serving.
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
        Ok(self.inner().map.get(&k(vhost, plugin, key)).cloned())
    }
    fn write(
        &self,
        vhost: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        let mut inner = self.inner();
        if let Some(quota) = quota {
            let old = inner
                .map
                .get(&k(vhost, plugin, key))
                .map_or(0, |v| entry_bytes(key, v));
            let new_total = inner.used(vhost, plugin).saturating_sub(old) + entry_bytes(key, value);
            if new_total > quota {
                return Ok(false);
            }
        }
        inner.put(vhost, plugin, key, value);
        Ok(true)
    }
    fn delete(&self, vhost: &str, plugin: &str, key: &str) -> Result<(), StorageError> {
        let mut inner = self.inner();
        if let Some(old) = inner.map.remove(&k(vhost, plugin, key)) {
            let ns = (vhost.to_owned(), plugin.to_owned());
            if let Some(used) = inner.usage.get_mut(&ns) {
                *used = used.saturating_sub(entry_bytes(key, &old));
                if *used == 0 {
                    inner.usage.remove(&ns);
                }
            }
        }
        Ok(())
    }
    fn list_keys(
        &self,
        vhost: &str,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self
            .inner()
            .map
            .keys()
            .filter(|(v, p, key)| v == vhost && p == plugin && key.starts_with(prefix))
            .map(|(_, _, key)| key.clone())
            .collect())
    }
    fn usage_bytes(&self, vhost: &str, plugin: &str) -> Result<u64, StorageError> {
        Ok(self.inner().used(vhost, plugin))
    }
}
