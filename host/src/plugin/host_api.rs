//! The host side of the plugin imports (`log`, `kv`, `clock`) and the per-call store state.
//!
//! Shell. Invariants: `kv` is scoped to this store's (vhost, plugin) and enforces the quota
//! before writing; time spent in imports is credited back to the call's epoch deadline
//! (`import_time`), so slow storage does not make a plugin time out; the WASI context is empty
//! (no files, sockets, environment or arguments). Tests: plugin/auth.rs, tests/all/.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::lilt::plugin::{clock, host, kv, types};
use crate::storage::KvStore;

/// Data of one store (one call).
pub(super) struct State {
    pub(super) vhost: Arc<str>,
    pub(super) plugin: Arc<str>,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) kv_quota: u64,
    pub(super) limits: StoreLimits,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// Time spent inside host imports and not yet credited to the deadline.
    pub(super) import_time: Duration,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl State {
    fn timed<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let start = Instant::now();
        let r = f(self);
        self.import_time += start.elapsed();
        r
    }
}

fn storage_error(e: crate::storage::StorageError) -> kv::KvError {
    kv::KvError::Storage(e.to_string())
}

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let message: String = message.chars().take(4096).collect();
        let (vhost, plugin) = (&*self.vhost, &*self.plugin);
        match level {
            host::LogLevel::Debug => {
                tracing::debug!(message = %message, plugin, vhost, "Plugin log.")
            }
            host::LogLevel::Info => {
                tracing::info!(message = %message, plugin, vhost, "Plugin log.")
            }
            host::LogLevel::Warn => {
                tracing::warn!(message = %message, plugin, vhost, "Plugin log.")
            }
            host::LogLevel::Error => {
                tracing::error!(message = %message, plugin, vhost, "Plugin log.")
            }
        }
    }
}

impl kv::Host for State {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.timed(|s| s.kv.get(&s.vhost, &s.plugin, &key).map_err(storage_error))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        self.timed(|s| {
            let used =
                s.kv.usage_bytes(&s.vhost, &s.plugin)
                    .map_err(storage_error)?;
            let old =
                s.kv.get(&s.vhost, &s.plugin, &key)
                    .map_err(storage_error)?
                    .map_or(0, |v| key.len() + v.len());
            let new_total = used.saturating_sub(old as u64) + (key.len() + value.len()) as u64;
            if new_total > s.kv_quota {
                return Err(kv::KvError::QuotaExceeded);
            }
            s.kv.set(&s.vhost, &s.plugin, &key, &value)
                .map_err(storage_error)
        })
    }

    fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        self.timed(|s| {
            s.kv.delete(&s.vhost, &s.plugin, &key)
                .map_err(storage_error)
        })
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, kv::KvError> {
        self.timed(|s| {
            s.kv.list_keys(&s.vhost, &s.plugin, &prefix)
                .map_err(storage_error)
        })
    }
}

impl clock::Host for State {
    fn now_unix_millis(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
