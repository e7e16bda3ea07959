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

use super::bindings::hooks_world::lilt::plugin::{stanzas, timers};
use super::bindings::lilt::plugin::{clock, host, kv, types};
use crate::stanza::{Jid, Kind};
use crate::storage::KvStore;
use crate::xml::{Element, Limits, ns, parse_element};

/// Data of one store (one call).
pub(super) struct State {
    pub(super) vhost: Arc<str>,
    pub(super) plugin: Arc<str>,
    /// This plugin's kv namespace, `crate::storage::kv_namespace(role, plugin)`.
    pub(super) kv_ns: Arc<str>,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) kv_quota: u64,
    pub(super) limits: StoreLimits,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// Guest stdout and stderr (their partial lines are logged when a call ends).
    pub(super) output: [super::output::GuestOutput; 2],
    /// Time spent inside host imports and not yet credited to the deadline.
    pub(super) import_time: Duration,
    /// When the current call started, for the wall-clock limit.
    pub(super) call_started: Instant,
    /// The wall-clock limit of one call, host imports included.
    pub(super) wall_limit: Duration,
    /// Domains `stanzas.send` may use as `from`.
    pub(super) send_domains: Arc<[String]>,
    /// What the call asked the host to do once it returns.
    pub(super) effects: Effects,
    /// The key server and directory its grants name.
    pub(super) sources: super::sources::Connected,
}

/// Stanzas and timers a call asked for, acted on by the caller after the call returns.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// Stanzas to route, checked and addressed.
    pub(super) sent: Vec<Element>,
    /// `(delay, tag)` timers to set.
    pub(super) timers: Vec<(Duration, String)>,
}

/// Timers one call may set.
const MAX_TIMERS_PER_CALL: usize = 1024;
/// Longest timer delay.
const MAX_TIMER_DELAY: Duration = Duration::from_secs(24 * 3600);
/// Stanzas one call may send.
const MAX_SENDS_PER_CALL: usize = 4096;

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl State {
    pub(super) fn timed<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let start = Instant::now();
        let r = f(self);
        self.import_time += start.elapsed();
        r
    }
}

/// A storage failure, or a refused `set_within_quota`, as the guest sees it.
fn storage_error(e: impl Into<crate::storage::KvSetError>) -> kv::KvError {
    match e.into() {
        crate::storage::KvSetError::QuotaExceeded => kv::KvError::QuotaExceeded,
        crate::storage::KvSetError::Storage(e) => kv::KvError::Storage(e.to_string()),
    }
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
        self.timed(|s| s.kv.get(&s.vhost, &s.kv_ns, &key).map_err(storage_error))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        // One atomic check-and-write against the namespace's running counter.
        self.timed(|s| {
            s.kv.set_within_quota(&s.vhost, &s.kv_ns, &key, &value, s.kv_quota)
                .map_err(storage_error)
        })
    }

    fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        self.timed(|s| s.kv.delete(&s.vhost, &s.kv_ns, &key).map_err(storage_error))
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, kv::KvError> {
        self.timed(|s| {
            s.kv.list_keys(&s.vhost, &s.kv_ns, &prefix)
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

/// Parse a stanza a plugin wrote: well-formed, within the default limits, and a
/// `jabber:client` stanza (a missing namespace means `jabber:client`).
pub(super) fn parse_plugin_stanza(xml: &str) -> Result<Element, String> {
    let mut el = parse_element(xml.as_bytes(), &Limits::default())
        .map_err(|e| format!("not well-formed XML: {e}"))?;
    if el.ns().is_empty() {
        el.set_ns_recursive("", ns::CLIENT);
    }
    match Kind::of(&el) {
        Some(_) => Ok(el),
        None => Err(format!("<{}/> is not a jabber:client stanza", el.name())),
    }
}

impl State {
    /// Check a plugin-written stanza: a stanza, `from` on one of the plugin's domains.
    fn accept_stanza(&self, xml: &str) -> Result<Element, String> {
        let mut el = parse_plugin_stanza(xml)?;
        let Some(default) = self.send_domains.last() else {
            return Err("this plugin may not send stanzas".to_owned());
        };
        let from = match el.attr("from") {
            Some(f) => Jid::parse(f).map_err(|e| format!("bad from {f:?}: {e}"))?,
            None => Jid::domain_jid(default),
        };
        if !self.send_domains.iter().any(|d| d == from.domain()) {
            return Err(format!(
                "from {from} is outside this plugin's domains ({})",
                self.send_domains.join(", ")
            ));
        }
        el.set_attr("from", from.to_string());
        match el.attr("to").map(Jid::parse) {
            Some(Ok(_)) => Ok(el),
            Some(Err(e)) => Err(format!("bad to: {e}")),
            None => Err("a stanza from a plugin needs a `to`".to_owned()),
        }
    }
}

impl stanzas::Host for State {
    fn send(&mut self, stanza: String) -> Result<(), String> {
        if self.effects.sent.len() >= MAX_SENDS_PER_CALL {
            return Err(format!("at most {MAX_SENDS_PER_CALL} stanzas per call"));
        }
        let el = self.accept_stanza(&stanza)?;
        self.effects.sent.push(el);
        Ok(())
    }
}

impl timers::Host for State {
    fn set_timer(&mut self, delay_ms: u64, tag: String) -> Result<(), String> {
        let delay = Duration::from_millis(delay_ms);
        if delay > MAX_TIMER_DELAY {
            return Err("a timer may be at most one day away".to_owned());
        }
        if self.effects.timers.len() >= MAX_TIMERS_PER_CALL {
            return Err(format!("at most {MAX_TIMERS_PER_CALL} timers per call"));
        }
        self.effects
            .timers
            .push((delay, tag.chars().take(1024).collect()));
        Ok(())
    }
}
