//! The shared wasmtime engine: Cranelift, component model, epoch interruption with a 10 ms
//! ticker thread, the linkers plugins are instantiated against (one per grant set), compiled
//! components by content hash (in memory, and on disk through wasmtime's artifact cache), and
//! the sweeper thread that drops instances idle for `sandbox::IDLE_RELEASE`.
//!
//! Shell. Invariants: one engine per server; the ticker thread stops when the last engine
//! handle is dropped; plugins are linked only against the WASI p2 interfaces (with an empty
//! context), the always-granted `lilt:plugin` imports (`host`, `clock`) and the ones their
//! config grants (`kv`, `stanzas`, `timers`): an ungranted interface is not in the plugin's
//! linker at all, and a component importing one is refused at load with an error naming the
//! grant it needs. A file's content hash is computed once per (file, change): it is kept with
//! the file's identity (device, inode, size, mtime, ctime) and trusted only when the file had
//! not changed for `RACY` before it was read (git's "racily clean" rule), so that N vhosts
//! loading one 20 MB component read and hash it once, and a file rewritten in place is never
//! taken for its old content. Tests: `mod tests` here, plugin/auth.rs, tests/all/grants.rs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::bindings::{hooks_world, identity_world, lilt};
use super::host_api::State;
use super::sandbox::{IDLE_RELEASE, IdlePool};
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
    /// Content hashes of plugin files, by path, while the file stays the same.
    hashes: Mutex<HashMemo>,
    /// Every instance pool, for the sweeper.
    pools: Mutex<Vec<Weak<dyn IdlePool>>>,
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
        let inner = Arc::new(Inner {
            engine,
            linkers: Mutex::new(linkers),
            components: Mutex::new(ComponentCache::default()),
            hashes: Mutex::new(HashMemo::default()),
            pools: Mutex::new(Vec::new()),
            limits,
            stop,
            sources: super::sources::Registry::default(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("lilt-plugin-idle".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(SWEEP_EVERY);
                    match weak.upgrade() {
                        Some(inner) => {
                            PluginEngine(inner).sweep_idle(Instant::now(), IDLE_RELEASE);
                        }
                        None => break,
                    }
                }
            })
            .map_err(|e| PluginError::Load {
                plugin: "(engine)".into(),
                source: e.into(),
            })?;
        Ok(PluginEngine(inner))
    }

    /// Have the sweeper drop `pool`'s instances once idle for `IDLE_RELEASE`.
    pub(super) fn watch_idle(&self, pool: Weak<dyn IdlePool>) {
        self.0
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pool);
    }

    /// Drop the instances idle since `idle_for` before `now` in every live pool, forget the
    /// pools that are gone; how many instances were dropped.
    pub(super) fn sweep_idle(&self, now: Instant, idle_for: Duration) -> usize {
        let live: Vec<Arc<dyn IdlePool>> = {
            let mut pools = self.0.pools.lock().unwrap_or_else(PoisonError::into_inner);
            pools.retain(|p| p.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        live.iter().map(|p| p.release_idle(now, idle_for)).sum()
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

/// How often the sweeper looks for idle instances.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// A file's identity and version as the file system reports it: equal stamps with an old
/// enough `ctime` mean the same bytes (unix only; elsewhere nothing is remembered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<FileStamp> {
        None
    }
}

/// A file must have been unchanged this long before it was read for its hash to be reused:
/// file systems stamp times coarsely, so a write in the same tick as the read would leave the
/// stamp unchanged.
const RACY: Duration = Duration::from_secs(2);

/// Content hashes of plugin files by path (see the module docs).
#[derive(Default)]
struct HashMemo {
    by_path: HashMap<std::path::PathBuf, (FileStamp, [u8; 32])>,
}

impl HashMemo {
    /// The remembered hash of `path` if its stamp is still `stamp`.
    fn get(&self, path: &Path, stamp: FileStamp) -> Option<[u8; 32]> {
        self.by_path
            .get(path)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, h)| *h)
    }

    /// Remember `hash` for `path` at `stamp`, taken at `read_at` (before the bytes were read),
    /// unless the file changed within `RACY` of that.
    fn put(&mut self, path: &Path, stamp: FileStamp, read_at: SystemTime, hash: [u8; 32]) {
        let read_ns = read_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let settled = read_ns - RACY.as_nanos() as i128;
        if stamp.mtime_ns < settled && stamp.ctime_ns < settled {
            self.by_path.insert(path.to_owned(), (stamp, hash));
        } else {
            self.by_path.remove(path);
        }
    }
}

/// Distinct builds kept compiled in memory (every vhost's current ones fit many times over;
/// older builds left behind by reloads fall out).
const MAX_CACHED_COMPONENTS: usize = 256;

impl PluginEngine {
    /// The compiled component for a file: from memory when a vhost already loaded the same
    /// bytes, else compiled (or read from the on-disk artifact cache).
    fn compile(&self, path: &Path) -> wasmtime::Result<(Component, [u8; 32])> {
        let read_at = SystemTime::now();
        let mut file = std::fs::File::open(path)?;
        let stamp = FileStamp::of(&file.metadata()?);
        let known = stamp.and_then(|s| {
            self.0
                .hashes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(path, s)
        });
        if let Some(hash) = known
            && let Some(c) = self
                .0
                .components
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_hash
                .get(&hash)
        {
            return Ok((c.clone(), hash));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(stamp) = stamp {
            self.0
                .hashes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(path, stamp, read_at, hash);
        }
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

    fn stamp(mtime_s: i128, ctime_s: i128) -> FileStamp {
        FileStamp {
            dev: 1,
            ino: 2,
            len: 3,
            mtime_ns: mtime_s * 1_000_000_000,
            ctime_ns: ctime_s * 1_000_000_000,
        }
    }

    #[test]
    fn a_content_hash_is_reused_only_for_a_settled_unchanged_file() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let path = Path::new("/plugins/p.wasm");
        let mut memo = HashMemo::default();
        // Changed 10 s before it was read: remembered, for that stamp only.
        memo.put(path, stamp(1000, 1000), at(1010), [1; 32]);
        assert_eq!(memo.get(path, stamp(1000, 1000)), Some([1; 32]));
        assert_eq!(memo.get(path, stamp(1000, 1001)), None);
        assert_eq!(
            memo.get(
                path,
                FileStamp {
                    len: 4,
                    ..stamp(1000, 1000)
                }
            ),
            None
        );
        assert_eq!(
            memo.get(
                path,
                FileStamp {
                    ino: 9,
                    ..stamp(1000, 1000)
                }
            ),
            None
        );
        assert_eq!(
            memo.get(Path::new("/plugins/q.wasm"), stamp(1000, 1000)),
            None
        );
        // Changed within RACY of the read (a write in the same tick would keep the stamp):
        // not remembered, and the older entry is forgotten.
        memo.put(path, stamp(2000, 2001), at(2002), [2; 32]);
        assert_eq!(memo.get(path, stamp(2000, 2001)), None);
        assert_eq!(memo.get(path, stamp(1000, 1000)), None);
        memo.put(path, stamp(2000, 2001), at(2001), [2; 32]);
        assert_eq!(memo.get(path, stamp(2000, 2001)), None);
    }

    #[test]
    fn a_file_rewritten_in_place_is_compiled_as_its_new_content() {
        let dir = std::path::PathBuf::from(format!("target/lilt-hash-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("p.wasm");
        let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
        let mut hashes = Vec::new();
        for build in [
            "auth_anonymous.wasm",
            "auth_internal.wasm",
            "auth_anonymous.wasm",
        ] {
            let bytes = std::fs::read(super::super::auth::tests::wasm(build)).expect("read");
            // Same path, same inode: only the content (and the file's times) change.
            std::fs::write(&path, &bytes).expect("write");
            let (_, hash) = engine
                .instantiate_pre("p", &path, Grants::AUTH_DEFAULT)
                .expect("load");
            let expected: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hash, expected, "{build}");
            hashes.push(hash);
        }
        assert_ne!(hashes[0], hashes[1]);
        assert_eq!(hashes[0], hashes[2]);
        let _ = std::fs::remove_dir_all(&dir);
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
