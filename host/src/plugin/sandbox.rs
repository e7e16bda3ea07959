//! One plugin's sandbox on one vhost: stores with the memory cap and epoch deadline,
//! the host-import state they carry, and the trap accounting that disables a plugin that keeps
//! trapping. Every role (auth, hooks, component) calls through here.
//!
//! Shell (blocking: callers run it on the blocking pool, never on an async worker).
//! Invariants: a trap, timeout or out-of-memory is counted, logged with plugin, vhost and the
//! guest's last stderr lines (a Rust panic's message), and returned as `PluginError::Trap`,
//! never a host panic (a panic inside a host import is caught and counted as a trap too); a
//! call's CPU time is bounded by `call_timeout` (time in host imports credited back) and its
//! wall time, imports included, by `call_wall_timeout`; a store is capped in memory (one linear
//! memory), tables, table elements, instances and resource-table entries, and a failed grow
//! traps; after `max_traps` in `trap_window` calls are refused with `Disabled` until the
//! window passes.
//! Live instances are pooled per (vhost, plugin) (`InstancePool`): instantiating a component
//! costs ~50x a call, so a call takes a configured instance from the pool and returns it
//! afterwards; an instance that trapped is dropped, and one that served `RECYCLE_AFTER` calls
//! is replaced, which bounds what a leaking guest accumulates (the memory cap bounds it in
//! between). Tenants never share an instance. An idle tenant holds no instance: the one a load
//! made (to ask `subscriptions`, `mechanisms`, …) is dropped once the load is done, and a pooled
//! instance unused for `IDLE_RELEASE` is dropped by the engine's sweeper (engine.rs), so the
//! memory an instance dirtied is paid only by tenants with traffic.
//! Tests: `mod tests` here, plugin/auth.rs, plugin/hooks.rs, tests/all/hooks.rs.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::engine::TICK;
use super::host_api::{Effects, State};
use super::output::{GuestLog, GuestOutput, Stream};
use super::{PluginEngine, PluginError};
use crate::metrics::{CALL_BUCKETS, CallTimes};
use crate::storage::{KvRole, KvStore, kv_namespace};

/// Calls after which a live instance is replaced by a fresh one.
const RECYCLE_AFTER: u32 = 10_000;
/// Core instances one component may create (a Rust component has a handful).
const MAX_INSTANCES: usize = 32;
/// Tables one store may hold.
const MAX_TABLES: usize = 32;
/// Elements one table may grow to (indirect-call tables of interpreters run to tens of
/// thousands).
const MAX_TABLE_ELEMENTS: usize = 200_000;
/// Host resources (WASI streams, pollables) one store may hold at once.
const MAX_RESOURCES: usize = 1024;

/// How long a pooled instance may sit unused before the engine's sweeper drops it.
pub(super) const IDLE_RELEASE: Duration = Duration::from_secs(60);

/// A live instance and its store.
struct Live<I> {
    store: Store<State>,
    inst: I,
    calls: u32,
}

/// Configured instances of one plugin on one vhost, ready for calls.
pub(super) struct InstancePool<I> {
    /// Idle instances, each with when it was given back.
    idle: Mutex<Vec<(Live<I>, Instant)>>,
    max_idle: usize,
}

/// What the engine's sweeper sees of a pool: it can drop its long-idle instances.
pub(super) trait IdlePool: Send + Sync {
    /// Drop the instances idle since `idle_for` before `now` or longer; how many were dropped.
    fn release_idle(&self, now: Instant, idle_for: Duration) -> usize;
}

impl<I: Send + 'static> InstancePool<I> {
    /// A pool keeping at most `max_idle` instances between calls, registered with `engine`'s
    /// sweeper, which drops instances idle for `IDLE_RELEASE`.
    pub(super) fn new(engine: &PluginEngine, max_idle: usize) -> Arc<Self> {
        let pool = Arc::new(InstancePool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        });
        let weak: std::sync::Weak<dyn IdlePool> = Arc::downgrade(&pool) as _;
        engine.watch_idle(weak);
        pool
    }
}

impl<I> InstancePool<I> {
    fn take(&self) -> Option<Live<I>> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .map(|(live, _)| live)
    }

    fn give_back(&self, live: Live<I>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push((live, Instant::now()));
        }
    }

    /// Drop every idle instance (a load is done with the one it made).
    pub(super) fn clear(&self) {
        let dropped =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(dropped);
    }

    /// Idle instances held now.
    #[cfg(test)]
    pub(super) fn idle_len(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<I: Send> IdlePool for InstancePool<I> {
    fn release_idle(&self, now: Instant, idle_for: Duration) -> usize {
        let dropped: Vec<_> = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let (old, keep) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|(_, since)| now.saturating_duration_since(*since) >= idle_for);
            *idle = keep;
            old
        };
        // Stores are dropped (their memory unmapped) outside the lock.
        dropped.len()
    }
}

/// A plugin's sandbox on one vhost.
pub(super) struct Sandbox {
    pub(super) engine: PluginEngine,
    pub(super) vhost: Arc<str>,
    pub(super) name: Arc<str>,
    /// SHA-256 (hex) of the component file it was compiled from.
    pub(super) hash: String,
    /// The kv namespace, `kv_namespace(role, name)`.
    kv_ns: Arc<str>,
    kv: Arc<dyn KvStore>,
    /// Domains a `stanzas.send` may use as `from` (empty: the plugin may not send).
    send_domains: Arc<[String]>,
    /// The key server and directory its grants name (auth plugins).
    pub(super) sources: super::sources::Connected,
    log: Arc<GuestLog>,
    traps: Mutex<VecDeque<Instant>>,
    /// Calls per `CALL_BUCKETS` bucket (then above the last), and their total in µs.
    times: [AtomicU64; CALL_BUCKETS.len() + 1],
    time_us: AtomicU64,
    calls_total: AtomicU64,
    traps_total: AtomicU64,
}

impl Sandbox {
    pub(super) fn new(
        engine: PluginEngine,
        vhost: &str,
        name: &str,
        role: KvRole,
        kv: Arc<dyn KvStore>,
        send_domains: Vec<String>,
        hash: String,
    ) -> Sandbox {
        let (vhost, name): (Arc<str>, Arc<str>) = (vhost.into(), name.into());
        Sandbox {
            engine,
            log: GuestLog::new(vhost.clone(), name.clone()),
            kv_ns: kv_namespace(role, &name).into(),
            vhost,
            name,
            hash,
            kv,
            send_domains: send_domains.into(),
            sources: super::sources::Connected::default(),
            traps: Mutex::new(VecDeque::new()),
            times: std::array::from_fn(|_| AtomicU64::new(0)),
            time_us: AtomicU64::new(0),
            calls_total: AtomicU64::new(0),
            traps_total: AtomicU64::new(0),
        }
    }

    /// The call-time histogram since load.
    pub(super) fn call_times(&self) -> CallTimes {
        CallTimes {
            buckets: std::array::from_fn(|i| self.times[i].load(Ordering::Relaxed)),
            sum_seconds: self.time_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    fn record_time(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = CALL_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(CALL_BUCKETS.len());
        self.times[i].fetch_add(1, Ordering::Relaxed);
        self.time_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
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
        let mut traps = self.traps.lock().unwrap_or_else(PoisonError::into_inner);
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
        let started = Instant::now();
        let out = self.run_on_instance(pool, make, f);
        self.record_time(started.elapsed());
        out
    }

    fn run_on_instance<I, R>(
        &self,
        pool: &InstancePool<I>,
        make: impl FnOnce(&mut Store<State>) -> wasmtime::Result<Result<I, String>>,
        f: impl FnOnce(&I, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<(R, Effects), PluginError> {
        let mut live = match pool.take() {
            Some(live) => live,
            None => {
                let mut store = self.new_store();
                self.arm(&mut store);
                let made = guard(|| make(&mut store));
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
        let result = guard(|| f(&live.inst, &mut live.store));
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
        let stdout = GuestOutput::new(self.log.clone(), Stream::Stdout);
        let stderr = GuestOutput::new(self.log.clone(), Stream::Stderr);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = State {
            vhost: self.vhost.clone(),
            plugin: self.name.clone(),
            kv_ns: self.kv_ns.clone(),
            kv: self.kv.clone(),
            kv_quota: limits.kv_quota_bytes,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .memories(1)
                .instances(MAX_INSTANCES)
                .tables(MAX_TABLES)
                .table_elements(MAX_TABLE_ELEMENTS)
                .trap_on_grow_failure(true)
                .build(),
            wasi: WasiCtxBuilder::new()
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .build(),
            output: [stdout, stderr],
            table,
            import_time: Duration::ZERO,
            call_started: Instant::now(),
            wall_limit: limits.call_wall_timeout,
            send_domains: self.send_domains.clone(),
            effects: Effects::default(),
            sources: self.sources.clone(),
        };
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Time spent in host imports is given back, up to the wall-clock limit; anything else
        // past the deadline traps.
        store.epoch_deadline_callback(|mut ctx| {
            let data = ctx.data_mut();
            if data.call_started.elapsed() >= data.wall_limit {
                return Err(wasmtime::Error::msg(
                    "call exceeded its wall-clock limit (time in host calls included)",
                ));
            }
            let credit = std::mem::take(&mut data.import_time);
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
        store.data_mut().call_started = Instant::now();
        store.set_epoch_deadline(ticks);
    }

    /// The call's outcome: its value and effects, or a counted and logged trap.
    pub(super) fn settle<T>(
        &self,
        store: &mut Store<State>,
        result: wasmtime::Result<T>,
    ) -> Result<(T, Effects), PluginError> {
        for out in &store.data().output {
            out.flush_partial();
        }
        // What the guest wrote to stderr explains a trap; a successful call forgets it.
        let stderr = self.log.end_call();
        match result {
            Ok(v) => Ok((v, std::mem::take(&mut store.data_mut().effects))),
            Err(source) => {
                let source = super::wasm_err(source);
                tracing::warn!(
                    message = "Plugin trapped.",
                    plugin = %self.name,
                    vhost = %self.vhost,
                    error = %format!("{source:#}"),
                    guest_stderr = %stderr
                );
                // What the guest said last is the best explanation the caller can get.
                let source = if stderr.is_empty() {
                    source
                } else {
                    source.context(format!("guest stderr: {stderr}"))
                };
                self.traps_total.fetch_add(1, Ordering::Relaxed);
                self.traps
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_back(Instant::now());
                if self.recent_traps() == self.engine.limits().max_traps as usize {
                    tracing::warn!(
                        target: "audit",
                        event = "plugin_disabled",
                        plugin = %self.name,
                        vhost = %self.vhost,
                        window_seconds = self.engine.limits().trap_window.as_secs()
                    );
                }
                Err(PluginError::Trap {
                    plugin: self.name.to_string(),
                    source,
                })
            }
        }
    }
}

/// Run a plugin call, turning a host panic inside it (a bug in a host import, never a guest
/// failure: those are traps) into an error, so that it is counted like a trap and the
/// instance is dropped.
fn guard<T>(f: impl FnOnce() -> wasmtime::Result<T>) -> wasmtime::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(wasmtime::Error::msg(format!(
            "host panic during the call: {what}"
        )))
    })
}
