//! The shared wasmtime engine: Cranelift, component model, epoch interruption with a 10 ms
//! ticker thread, and the linkers plugins are instantiated against, one per grant set.
//!
//! Shell. Invariants: one engine per server; the ticker thread stops when the last engine
//! handle is dropped; plugins are linked only against the WASI p2 interfaces (with an empty
//! context), the always-granted `lilt:plugin` imports (`host`, `clock`) and the ones their
//! config grants (`kv`, `stanzas`, `timers`): an ungranted interface is not in the plugin's
//! linker at all, and a component importing one is refused at load with an error naming the
//! grant it needs. Tests: plugin/auth.rs, tests/all/grants.rs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::bindings::{hooks_world, identity_world, lilt};
use super::host_api::State;
use super::{AuthPlugin, PluginError, PluginLimits, wasm_err};
use crate::config::{ALWAYS_GRANTED, AuthPluginConfig, Capability, Grants, Sources};
use crate::storage::KvStore;

/// One epoch tick.
pub(super) const TICK: Duration = Duration::from_millis(10);

struct Inner {
    engine: Engine,
    /// One linker per grant set in use, made on first use.
    linkers: Mutex<HashMap<Grants, Arc<Linker<State>>>>,
    /// Compiled components by content hash: vhosts running the same file share its code.
    components: Mutex<ComponentCache>,
    limits: PluginLimits,
    stop: Arc<AtomicBool>,
    /// Key fetchers and directory pools, shared by the plugins granted them.
    sources: super::sources::Registry,
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
        PluginEngine::build(limits, None)
    }

    /// The engine with an on-disk cache of compiled artifacts in `dir` (keyed by the
    /// component's content and the engine's settings), so that a restart, or a reload of a
    /// build seen before, does not compile again.
    ///
    /// # Errors
    /// When wasmtime cannot be configured or the cache folder cannot be made.
    pub fn with_artifact_cache(
        limits: PluginLimits,
        dir: &Path,
    ) -> Result<PluginEngine, PluginError> {
        PluginEngine::build(limits, Some(dir))
    }

    fn build(limits: PluginLimits, cache_dir: Option<&Path>) -> Result<PluginEngine, PluginError> {
        let load = |source: wasmtime::Error| PluginError::Load {
            plugin: "(engine)".into(),
            source: wasm_err(source),
        };
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        if let Some(dir) = cache_dir {
            let engine_err = |what: &str, e: std::io::Error| PluginError::Load {
                plugin: "(engine)".into(),
                source: anyhow::anyhow!("cannot {what} the artifact cache {}: {e}", dir.display()),
            };
            std::fs::create_dir_all(dir).map_err(|e| engine_err("create", e))?;
            // wasmtime wants an absolute path; `data_dir` may be relative (`./lilt-data`).
            let dir = std::path::absolute(dir).map_err(|e| engine_err("locate", e))?;
            let mut cache = CacheConfig::new();
            cache.with_directory(&dir);
            config.cache(Some(Cache::new(cache).map_err(load)?));
        }
        let engine = Engine::new(&config).map_err(load)?;
        // The defaults are what nearly every config uses: link them now, so that a linker
        // problem shows when the engine starts.
        let mut linkers = HashMap::new();
        for grants in [Grants::AUTH_DEFAULT, Grants::HOOKS_DEFAULT] {
            linkers.insert(
                grants,
                Arc::new(build_linker(&engine, grants).map_err(load)?),
            );
        }
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
            linkers: Mutex::new(linkers),
            components: Mutex::new(ComponentCache::default()),
            limits,
            stop,
            sources: super::sources::Registry::default(),
        })))
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub(super) fn limits(&self) -> &PluginLimits {
        &self.0.limits
    }

    /// Load an auth plugin for `vhost` with the default grants (`kv`): compile, link, and
    /// check it accepts `settings`.
    ///
    /// # Errors
    /// As [`PluginEngine::load_auth_plugin`].
    pub fn load_auth(
        &self,
        vhost: &str,
        name: &str,
        wasm_path: &Path,
        settings: &serde_json::Value,
        kv: Arc<dyn KvStore>,
    ) -> Result<AuthPlugin, PluginError> {
        let config = AuthPluginConfig {
            plugin: name.to_owned(),
            path: wasm_path.to_owned(),
            grants: Grants::AUTH_DEFAULT,
            sources: Sources::default(),
            settings: settings.clone(),
        };
        self.load_auth_plugin(vhost, &config, kv)
    }

    /// Load the auth plugin `config` describes for `vhost`: compile, check its imports
    /// against its grants, link (with the key server and directory its grants name), and
    /// check it accepts its settings. A component that also exports `identity-provider`
    /// (world `auth-identity`) is asked who each session is after its login.
    ///
    /// # Errors
    /// `Load` when the file is missing or not an `auth` component, `NotGranted` when it
    /// imports an interface it is not granted, `Config` when the plugin refuses the settings,
    /// `Trap` when it traps while doing so.
    pub fn load_auth_plugin(
        &self,
        vhost: &str,
        config: &AuthPluginConfig,
        kv: Arc<dyn KvStore>,
    ) -> Result<AuthPlugin, PluginError> {
        let name = &config.plugin;
        let (pre, hash) = self.instantiate_pre(name, &config.path, config.grants)?;
        let identity = identity_world::IdentityIndices::new(&pre).ok();
        let pre = super::bindings::AuthPre::new(pre).map_err(|e| PluginError::Load {
            plugin: name.to_owned(),
            source: wasm_err(e.context("it does not export lilt:plugin/auth-provider")),
        })?;
        let connected = self.0.sources.connect(&config.sources);
        AuthPlugin::new(
            self.clone(),
            vhost,
            name,
            (pre, identity, connected),
            hash,
            &config.settings,
            kv,
        )
    }

    /// The linker offering exactly `grants` (and what is always granted).
    fn linker(&self, grants: Grants) -> wasmtime::Result<Arc<Linker<State>>> {
        let mut linkers = self
            .0
            .linkers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = linkers.get(&grants) {
            return Ok(l.clone());
        }
        let linker = Arc::new(build_linker(&self.0.engine, grants)?);
        linkers.insert(grants, linker.clone());
        Ok(linker)
    }

    /// Compile a plugin file, check that it imports only what `grants` allows, and link it
    /// against exactly that; with the SHA-256 (hex) of the bytes that were compiled.
    pub(super) fn instantiate_pre(
        &self,
        name: &str,
        wasm_path: &Path,
        grants: Grants,
    ) -> Result<(InstancePre<State>, String), PluginError> {
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
        let (component, hash) = self.compile(wasm_path).map_err(|e| {
            load(e.context(format!(
                "{} is not a loadable component",
                wasm_path.display()
            )))
        })?;
        let mut interfaces = Vec::new();
        let mut missing = Vec::new();
        for (import, _) in component.component_type().imports(&self.0.engine) {
            if let Some(c) = ungranted(import, grants) {
                interfaces.push(unversioned(import).to_owned());
                if !missing.contains(&c.grant_form()) {
                    missing.push(c.grant_form());
                }
            }
        }
        if !interfaces.is_empty() {
            return Err(PluginError::NotGranted {
                plugin: name.to_owned(),
                interfaces,
                missing,
            });
        }
        let pre = self
            .linker(grants)
            .map_err(&load)?
            .instantiate_pre(&component)
            .map_err(|e| load(e.context("it imports something Lilt does not provide")))?;
        Ok((pre, hash.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// Compiled components kept in memory, by content hash, oldest first out.
#[derive(Default)]
struct ComponentCache {
    by_hash: HashMap<[u8; 32], Component>,
    order: std::collections::VecDeque<[u8; 32]>,
}

/// Distinct builds kept compiled in memory (every vhost's current ones fit many times over;
/// older builds left behind by reloads fall out).
const MAX_CACHED_COMPONENTS: usize = 256;

impl PluginEngine {
    /// The compiled component for a file: from memory when a vhost already loaded the same
    /// bytes, else compiled (or read from the on-disk artifact cache).
    fn compile(&self, path: &Path) -> wasmtime::Result<(Component, [u8; 32])> {
        let bytes = std::fs::read(path)?;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(c) = self
            .0
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_hash
            .get(&hash)
        {
            return Ok((c.clone(), hash));
        }
        let component = Component::new(&self.0.engine, &bytes)?;
        let mut cache = self
            .0
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.by_hash.insert(hash, component.clone()).is_none() {
            cache.order.push_back(hash);
        }
        while cache.order.len() > MAX_CACHED_COMPONENTS {
            if let Some(old) = cache.order.pop_front() {
                cache.by_hash.remove(&old);
            }
        }
        Ok((component, hash))
    }
}

/// `lilt:plugin/kv@0.1.0` without `@0.1.0`.
fn unversioned(import: &str) -> &str {
    import.split_once('@').map_or(import, |(name, _)| name)
}

/// The capability an import needs and `grants` lacks, if any. Imports outside `lilt:plugin`,
/// the always-granted ones and names Lilt does not know are left to the linker, which refuses
/// what it does not have.
fn ungranted(import: &str, grants: Grants) -> Option<Capability> {
    let interface = unversioned(import).strip_prefix("lilt:plugin/")?;
    if ALWAYS_GRANTED.contains(&interface) {
        return None;
    }
    // `keys` is always there to call: without a `keys:<name>` grant it answers every call
    // `unavailable` (nothing to reach), so a plugin whose HS256 path never fetches a key loads
    // on a vhost with no key server.
    Capability::from_name(interface)
        .filter(|c| *c != Capability::Keys)
        .filter(|c| !grants.contains(*c))
}

/// A linker with WASI p2 (empty context), the always-granted `lilt:plugin` imports and the
/// granted ones, nothing else.
pub(super) fn build_linker(engine: &Engine, grants: Grants) -> wasmtime::Result<Linker<State>> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // `types` and `hook-types` hold only types: nothing to link.
    lilt::plugin::host::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    lilt::plugin::clock::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    identity_world::lilt::plugin::keys::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    for c in grants.iter() {
        match c {
            Capability::Kv => {
                lilt::plugin::kv::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
            }
            Capability::Stanzas => {
                hooks_world::lilt::plugin::stanzas::add_to_linker::<State, HasSelf<State>>(
                    &mut linker,
                    |s| s,
                )?;
            }
            Capability::Timers => {
                hooks_world::lilt::plugin::timers::add_to_linker::<State, HasSelf<State>>(
                    &mut linker,
                    |s| s,
                )?;
            }
            // Always linked (above); the grant names the key server it reaches.
            Capability::Keys => {}
            Capability::Ldap => {
                identity_world::lilt::plugin::ldap::add_to_linker::<State, HasSelf<State>>(
                    &mut linker,
                    |s| s,
                )?;
            }
        }
    }
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_cache_takes_a_relative_data_dir() {
        let rel =
            std::path::PathBuf::from(format!("target/lilt-cache-test-{}", std::process::id()));
        let engine = PluginEngine::with_artifact_cache(PluginLimits::default(), &rel);
        assert!(engine.is_ok(), "{engine:?}");
        let _ = std::fs::remove_dir_all(&rel);
    }

    #[test]
    fn imports_that_need_a_grant() {
        let kv = Grants::NONE.with(Capability::Kv);
        assert_eq!(ungranted("lilt:plugin/kv@0.1.0", kv), None);
        assert_eq!(
            ungranted("lilt:plugin/stanzas@0.1.0", kv),
            Some(Capability::Stanzas)
        );
        assert_eq!(
            ungranted("lilt:plugin/timers", Grants::NONE),
            Some(Capability::Timers)
        );
        for always in ["host", "clock", "types", "hook-types"] {
            assert_eq!(
                ungranted(&format!("lilt:plugin/{always}@0.1.0"), Grants::NONE),
                None
            );
        }
        // Left to the linker.
        assert_eq!(ungranted("wasi:io/streams@0.2.6", Grants::NONE), None);
        assert_eq!(
            ungranted("lilt:plugin/ldap@0.1.0", Grants::NONE),
            Some(Capability::Ldap)
        );
        assert_eq!(ungranted("lilt:plugin/http@0.1.0", Grants::NONE), None);
        // `keys` links without a grant (it reaches nothing then).
        assert_eq!(ungranted("lilt:plugin/keys@0.1.0", Grants::NONE), None);
        assert_eq!(ungranted("other:pkg/kv@1.0.0", Grants::NONE), None);
        assert_eq!(unversioned("lilt:plugin/kv@0.1.0"), "lilt:plugin/kv");
        assert_eq!(unversioned("lilt:plugin/kv"), "lilt:plugin/kv");
    }
}
