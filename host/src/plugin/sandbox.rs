//! One plugin's sandbox on one vhost: stores with the memory cap and epoch deadline,
//! the host-import state they carry, and the trap accounting that disables a plugin that keeps
//! trapping. Every role (auth, hooks, component) calls through here.
//!
//! Shell (blocking: callers run it on the blocking pool or accept the bounded wait).
//! Invariants: a store never outlives one call; a trap, timeout or out-of-memory is counted,
//! logged with plugin and vhost, and returned as `PluginError::Trap`, never a panic; after
//! `max_traps` in `trap_window` calls are refused with `Disabled` until the window passes.
//! Live instances are pooled per (vhost, plugin) (`InstancePool`): instantiating a component
//! costs ~50x a call, so a call takes a configured instance from the pool and returns it
//! afterwards; an instance that trapped is dropped, and one that served `RECYCLE_AFTER` calls
//! is replaced, which bounds what a leaking guest accumulates (the memory cap bounds it in
//! between). Tenants never share an instance.
//! Tests: plugin/auth.rs, plugin/hooks.rs, tests/all/hooks.rs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::engine::TICK;
use super::host_api::{Effects, State};
use super::{PluginEngine, PluginError};
use crate::storage::KvStore;

/// Calls after which a live instance is replaced by a fresh one.
const RECYCLE_AFTER: u32 = 10_000;

/// A live instance and its store.
struct Live<I> {
    store: Store<State>,
    inst: I,
    calls: u32,
}

/// Configured instances of one plugin on one vhost, ready for calls.
pub(super) struct InstancePool<I> {
    idle: Mutex<Vec<Live<I>>>,
    max_idle: usize,
}

impl<I> InstancePool<I> {
    /// A pool keeping at most `max_idle` instances between calls.
    pub(super) fn new(max_idle: usize) -> Self {
        InstancePool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn take(&self) -> Option<Live<I>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, live: Live<I>) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(live);
        }
    }
}

/// A plugin's sandbox on one vhost.
pub(super) struct Sandbox {
    pub(super) engine: PluginEngine,
    pub(super) vhost: Arc<str>,
    pub(super) name: Arc<str>,
    kv: Arc<dyn KvStore>,
    /// Domains a `stanzas.send` may use as `from` (empty: the plugin may not send).
    send_domains: Arc<[String]>,
    traps: Mutex<VecDeque<Instant>>,
    calls_total: AtomicU64,
    traps_total: AtomicU64,
}

impl Sandbox {
    pub(super) fn new(
        engine: PluginEngine,
        vhost: &str,
        name: &str,
        kv: Arc<dyn KvStore>,
        send_domains: Vec<String>,
    ) -> Sandbox {
        Sandbox {
            engine,
            vhost: vhost.into(),
            name: name.into(),
            kv,
            send_domains: send_domains.into(),
            traps: Mutex::new(VecDeque::new()),
            calls_total: AtomicU64::new(0),
            traps_total: AtomicU64::new(0),
        }
    }

    /// Calls made and calls that trapped since load.
    pub(super) fn call_counts(&self) -> (u64, u64) {
        (
            self.calls_total.load(Ordering::Relaxed),
            self.traps_total.load(Ordering::Relaxed),
        )
    }

    fn recent_traps(&self) -> usize {
        let window = self.engine.limits().trap_window;
        let mut traps = self
            .traps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        while traps
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            traps.pop_front();
        }
        traps.len()
    }

    /// True while too many recent traps keep the plugin disabled.
    pub(super) fn is_disabled(&self) -> bool {
        self.recent_traps() >= self.engine.limits().max_traps as usize
    }

    /// Run `f` on a live instance from `pool`, making (instantiating and configuring) one
    /// when none is idle; `make` answers `Err(message)` when the plugin refuses its settings.
    pub(super) fn with_instance<I, R>(
        &self,
        pool: &InstancePool<I>,
        make: impl FnOnce(&mut Store<State>) -> wasmtime::Result<Result<I, String>>,
        f: impl FnOnce(&I, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<(R, Effects), PluginError> {
        self.admit()?;
        let mut live = match pool.take() {
            Some(live) => live,
            None => {
                let mut store = self.new_store();
                self.arm(&mut store);
                let made = make(&mut store);
                match self.settle(&mut store, made)? {
                    (Ok(inst), _) => Live {
                        store,
                        inst,
                        calls: 0,
                    },
                    (Err(message), _) => {
                        return Err(PluginError::Config {
                            plugin: self.name.to_string(),
                            message,
                        });
                    }
                }
            }
        };
        self.arm(&mut live.store);
        let result = f(&live.inst, &mut live.store);
        let ok = result.is_ok();
        let out = self.settle(&mut live.store, result);
        if ok && live.calls < RECYCLE_AFTER {
            live.calls += 1;
            pool.give_back(live);
        }
        out
    }

    /// Refuse calls while disabled; count the call otherwise.
    pub(super) fn admit(&self) -> Result<(), PluginError> {
        if self.is_disabled() {
            return Err(PluginError::Disabled {
                plugin: self.name.to_string(),
            });
        }
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A fresh store with the memory cap and the import state.
    pub(super) fn new_store(&self) -> Store<State> {
        let limits = self.engine.limits().clone();
        let state = State {
            vhost: self.vhost.clone(),
            plugin: self.name.clone(),
            kv: self.kv.clone(),
            kv_quota: limits.kv_quota_bytes,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .tables(64)
                .memories(16)
                .build(),
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            import_time: Duration::ZERO,
            send_domains: self.send_domains.clone(),
            effects: Effects::default(),
        };
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Time spent in host imports is given back; anything else past the deadline traps.
        store.epoch_deadline_callback(|mut ctx| {
            let credit = std::mem::take(&mut ctx.data_mut().import_time);
            let extra = (credit.as_millis() / TICK.as_millis()) as u64;
            if extra > 0 {
                Ok(UpdateDeadline::Continue(extra))
            } else {
                Err(wasmtime::Error::msg("call exceeded its time limit"))
            }
        });
        store
    }

    /// Give the store a full call deadline.
    pub(super) fn arm(&self, store: &mut Store<State>) {
        let limits = self.engine.limits();
        let ticks = (limits.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.data_mut().import_time = Duration::ZERO;
        store.set_epoch_deadline(ticks);
    }

    /// The call's outcome: its value and effects, or a counted and logged trap.
    pub(super) fn settle<T>(
        &self,
        store: &mut Store<State>,
        result: wasmtime::Result<T>,
    ) -> Result<(T, Effects), PluginError> {
        match result {
            Ok(v) => Ok((v, std::mem::take(&mut store.data_mut().effects))),
            Err(source) => {
                let source = super::wasm_err(source);
                tracing::warn!(
                    message = "Plugin trapped.",
                    plugin = %self.name,
                    vhost = %self.vhost,
                    error = %format!("{source:#}")
                );
                self.traps_total.fetch_add(1, Ordering::Relaxed);
                self.traps
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_back(Instant::now());
                Err(PluginError::Trap {
                    plugin: self.name.to_string(),
                    source,
                })
            }
        }
    }
}
