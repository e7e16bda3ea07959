//! The shared wasmtime engine: Cranelift, component model, epoch interruption with a 10 ms
//! ticker thread, and the linker every plugin is instantiated against.
//!
//! Shell. Invariants: one engine per server; the ticker thread stops when the last engine
//! handle is dropped; plugins are linked only against the WASI p2 interfaces (with an empty
//! context) and the `lilt:plugin` host imports. Tests: plugin/auth.rs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{Auth, hooks_world};
use super::host_api::State;
use super::{AuthPlugin, PluginError, PluginLimits, wasm_err};
use crate::storage::KvStore;

/// One epoch tick.
pub(super) const TICK: Duration = Duration::from_millis(10);

struct Inner {
    engine: Engine,
    linker: Linker<State>,
    limits: PluginLimits,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The plugin engine; cheap to clone.
#[derive(Clone)]
pub struct PluginEngine(Arc<Inner>);

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("limits", &self.0.limits)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// Build the engine and start the epoch ticker.
    ///
    /// # Errors
    /// When wasmtime cannot be configured on this machine.
    pub fn new(limits: PluginLimits) -> Result<PluginEngine, PluginError> {
        let load = |source: wasmtime::Error| PluginError::Load {
            plugin: "(engine)".into(),
            source: wasm_err(source),
        };
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(load)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(load)?;
        Auth::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).map_err(load)?;
        hooks_world::lilt::plugin::stanzas::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(load)?;
        hooks_world::lilt::plugin::timers::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(load)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("lilt-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match ticker_engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| PluginError::Load {
                plugin: "(engine)".into(),
                source: e.into(),
            })?;
        Ok(PluginEngine(Arc::new(Inner {
            engine,
            linker,
            limits,
            stop,
        })))
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub(super) fn limits(&self) -> &PluginLimits {
        &self.0.limits
    }

    /// Load an auth plugin for `vhost`: compile, link, and check it accepts `settings`.
    ///
    /// # Errors
    /// `Load` when the file is missing or not an `auth` component, `Config` when the plugin
    /// refuses the settings, `Trap` when it traps while doing so.
    pub fn load_auth(
        &self,
        vhost: &str,
        name: &str,
        wasm_path: &Path,
        settings: &serde_json::Value,
        kv: Arc<dyn KvStore>,
    ) -> Result<AuthPlugin, PluginError> {
        let pre = self.instantiate_pre(name, wasm_path)?;
        let pre = super::bindings::AuthPre::new(pre).map_err(|e| PluginError::Load {
            plugin: name.to_owned(),
            source: wasm_err(e.context("it does not export lilt:plugin/auth-provider")),
        })?;
        AuthPlugin::new(self.clone(), vhost, name, pre, settings, kv)
    }

    /// Compile a plugin file and link it against what Lilt grants.
    pub(super) fn instantiate_pre(
        &self,
        name: &str,
        wasm_path: &Path,
    ) -> Result<InstancePre<State>, PluginError> {
        let load = |source: wasmtime::Error| PluginError::Load {
            plugin: name.to_owned(),
            source: wasm_err(source),
        };
        if !wasm_path.is_file() {
            return Err(load(wasmtime::Error::msg(format!(
                "{} does not exist (build plugins with `cargo build --release --target wasm32-wasip2 -p {name}`)",
                wasm_path.display()
            ))));
        }
        let component = Component::from_file(&self.0.engine, wasm_path).map_err(|e| {
            load(e.context(format!(
                "{} is not a loadable component",
                wasm_path.display()
            )))
        })?;
        self.0
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load(e.context("it imports something Lilt does not grant")))
    }
}
