//! Hot reload of plugins by generations: the registry of what each vhost runs now, and the
//! watcher that notices a changed `.wasm` file and swaps in a new generation while sessions
//! and meetings carry on.
//!
//! Shell (tokio; compiling runs on the blocking pool). A generation is one load of a plugin's
//! file with its settings and grants. A reload compiles the new bytes, checks the grants and
//! runs `configure` on a canary instance (all inside the engine's load), and only then swaps:
//! auth plugins in the registry (new logins use the new generation; an exchange already under
//! way finishes on the one it started with), hook and component plugins by a `Swap` message
//! to the vhost's worker (calls queued before it finish on the old generation, everything
//! after runs on the new one) and new subscriptions to the router. A generation that fails to
//! load leaves the old one serving; the reason is logged and kept for `status`.
//! Invariants: one reload at a time; the watcher reloads a file only once it has stopped
//! changing for one poll (a half-written file is not loaded), and not again until it changes.
//! Tests: tests/all/reload.rs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, mpsc};

use super::plugin_worker::{WorkerMsg, Workers};
use super::router_task::RouterCmd;
use crate::config::Config;
use crate::metrics::{PluginStat, PluginStats};
use crate::plugin::{AuthPlugin, HookPlugin, PluginEngine, PluginSet, VhostHooks};
use crate::storage::KvStore;

/// How often plugin files are checked for changes.
const POLL: Duration = Duration::from_millis(500);

/// Which plugin of which vhost.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The vhost's auth plugin.
    Auth {
        /// Vhost domain.
        vhost: String,
    },
    /// The vhost's `[[vhosts.plugins]]` entry at this position.
    Hook {
        /// Vhost domain.
        vhost: String,
        /// Position in the vhost's `plugins` list.
        index: usize,
    },
}

/// What a configuration reload did.
#[derive(Debug, Clone, Default)]
pub struct ConfigChange {
    /// Vhosts now served.
    pub added: Vec<String>,
    /// Vhosts no longer served.
    pub removed: Vec<String>,
    /// Vhosts whose plugins changed (new generations; sessions kept).
    pub changed: Vec<String>,
    /// Keys that changed but take effect only at the next restart.
    pub restart_needed: Vec<String>,
}

/// What runs in a slot now.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Plugin name.
    pub plugin: String,
    /// 1 for the load at start, +1 per successful reload.
    pub number: u64,
    /// SHA-256 of the component file, hex.
    pub hash: String,
    /// Why the last reload attempt failed, if it did (the generation above still serves).
    pub last_error: Option<String>,
}

/// One slot's view for `status` and `stats`.
struct Row {
    stat: PluginStat,
    world: &'static str,
    grants: Vec<&'static str>,
    hash: String,
    last_error: Option<String>,
}

/// The plugins every vhost runs now.
pub struct PluginRegistry {
    engine: PluginEngine,
    /// The configuration in force (replaced by `apply`).
    config: RwLock<Config>,
    kv: Arc<dyn KvStore>,
    auth: RwLock<HashMap<String, AuthPlugin>>,
    hooks: RwLock<Arc<PluginSet>>,
    generations: RwLock<HashMap<Slot, Generation>>,
    workers: RwLock<HashMap<String, mpsc::Sender<WorkerMsg>>>,
    router: RwLock<Option<super::router_task::Routers>>,
    /// One reload at a time.
    busy: Mutex<()>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("generations", &self.generations)
            .finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Generation 1 of every slot of a vhost, with the hashes of what was loaded.
fn initial_generations(
    v: &crate::config::Vhost,
    auth: Option<&AuthPlugin>,
    hooks: Option<&Arc<VhostHooks>>,
) -> Vec<(Slot, Generation)> {
    let mut out = vec![(
        Slot::Auth {
            vhost: v.domain.clone(),
        },
        Generation {
            plugin: v.auth.plugin.clone(),
            number: 1,
            hash: auth
                .map(|a| a.content_hash().to_owned())
                .unwrap_or_default(),
            last_error: None,
        },
    )];
    for (index, p) in v.plugins.iter().enumerate() {
        let hash = hooks
            .and_then(|h| h.plugins().get(index))
            .map(|h| h.content_hash().to_owned())
            .unwrap_or_default();
        out.push((
            Slot::Hook {
                vhost: v.domain.clone(),
                index,
            },
            Generation {
                plugin: p.plugin.clone(),
                number: 1,
                hash,
                last_error: None,
            },
        ));
    }
    out
}

impl PluginRegistry {
    /// The registry of what `load_vhosts` loaded at start (generation 1 everywhere).
    pub fn new(
        engine: PluginEngine,
        config: Config,
        kv: Arc<dyn KvStore>,
        auth: HashMap<String, AuthPlugin>,
        hooks: Arc<PluginSet>,
    ) -> PluginRegistry {
        let mut generations = HashMap::new();
        for v in &config.vhosts {
            generations.extend(initial_generations(
                v,
                auth.get(&v.domain),
                hooks.get(&v.domain),
            ));
        }
        PluginRegistry {
            engine,
            config: RwLock::new(config),
            kv,
            auth: RwLock::new(auth),
            hooks: RwLock::new(hooks),
            generations: RwLock::new(generations),
            workers: RwLock::new(HashMap::new()),
            router: RwLock::new(None),
            busy: Mutex::new(()),
        }
    }

    /// Connect the registry to the running router and workers (after they started).
    pub fn attach(&self, workers: &Workers, router: super::router_task::Routers) {
        let mut w = write(&self.workers);
        for v in &read(&self.config).vhosts {
            if let Some(tx) = workers.sender(&v.domain) {
                w.insert(v.domain.clone(), tx);
            }
        }
        *write(&self.router) = Some(router);
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        read(&self.config).clone()
    }

    /// The current auth plugin of `vhost`.
    pub fn auth(&self, vhost: &str) -> Option<AuthPlugin> {
        read(&self.auth).get(vhost).cloned()
    }

    /// Every current auth plugin.
    pub fn auth_plugins(&self) -> Vec<AuthPlugin> {
        read(&self.auth).values().cloned().collect()
    }

    /// Every current hook and component plugin, with its vhost.
    pub fn hook_plugins(&self) -> Vec<(String, Arc<HookPlugin>)> {
        read(&self.hooks)
            .vhosts()
            .flat_map(|v| {
                v.plugins()
                    .iter()
                    .map(|p| (v.vhost().to_owned(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What runs in each slot, and the last reload error.
    pub fn generations(&self) -> Vec<(Slot, Generation)> {
        let mut all: Vec<_> = read(&self.generations)
            .iter()
            .map(|(s, g)| (s.clone(), g.clone()))
            .collect();
        all.sort_by_key(|(s, _)| format!("{s:?}"));
        all
    }

    /// One row per slot: what serves it now, with its counters.
    fn rows(&self) -> Vec<Row> {
        let auth = read(&self.auth).clone();
        let hooks = read(&self.hooks).clone();
        let config = read(&self.config).clone();
        let mut rows = Vec::new();
        for (slot, g) in self.generations() {
            let (vhost, world, grants, counts) = match &slot {
                Slot::Auth { vhost } => {
                    let v = config.vhosts.iter().find(|v| &v.domain == vhost);
                    let p = auth.get(vhost);
                    (
                        vhost.clone(),
                        "auth",
                        v.map(|v| v.auth.grants),
                        p.map(|p| (p.call_counts(), p.is_disabled(), p.call_times())),
                    )
                }
                Slot::Hook { vhost, index } => {
                    let v = config.vhosts.iter().find(|v| &v.domain == vhost);
                    let p = hooks
                        .get(vhost)
                        .and_then(|h| h.plugins().get(*index).cloned());
                    (
                        vhost.clone(),
                        p.as_ref().map_or("hooks", |p| p.world()),
                        v.and_then(|v| v.plugins.get(*index)).map(|c| c.grants),
                        p.map(|p| (p.call_counts(), p.is_disabled(), p.call_times())),
                    )
                }
            };
            let ((calls, traps), disabled, times) = counts.unwrap_or_default();
            rows.push(Row {
                stat: PluginStat {
                    plugin: g.plugin.clone(),
                    vhost,
                    generation: g.number,
                    calls,
                    traps,
                    disabled,
                    times,
                },
                world,
                grants: grants
                    .map(|g| g.iter().map(|c| c.name()).collect())
                    .unwrap_or_default(),
                hash: g.hash,
                last_error: g.last_error,
            });
        }
        rows
    }

    /// Counters of every generation serving now, for `/metrics` and `/stats`.
    pub fn stats(&self) -> PluginStats {
        self.rows().into_iter().map(|r| r.stat).collect()
    }

    /// Every slot as JSON, for `lilt plugin list` and the admin endpoint: vhost, plugin,
    /// world, generation, content hash, grants, calls, traps, state and the last reload error.
    pub fn status(&self) -> serde_json::Value {
        self.rows()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "vhost": r.stat.vhost,
                    "plugin": r.stat.plugin,
                    "world": r.world,
                    "generation": r.stat.generation,
                    "hash": r.hash,
                    "grants": r.grants,
                    "calls": r.stat.calls,
                    "traps": r.stat.traps,
                    "state": if r.stat.disabled { "disabled" } else { "serving" },
                    "last_reload_error": r.last_error,
                })
            })
            .collect()
    }

    /// The slots a reload request names: all, a vhost's, a plugin's (by name), or both.
    pub fn select(&self, vhost: Option<&str>, plugin: Option<&str>) -> Vec<Slot> {
        self.generations()
            .into_iter()
            .filter(|(slot, g)| {
                let (Slot::Auth { vhost: v } | Slot::Hook { vhost: v, .. }) = slot;
                vhost.is_none_or(|want| want == v) && plugin.is_none_or(|want| want == g.plugin)
            })
            .map(|(slot, _)| slot)
            .collect()
    }

    /// The vhost and plugin name of a slot.
    pub fn describe(&self, slot: &Slot) -> (String, String) {
        let (Slot::Auth { vhost } | Slot::Hook { vhost, .. }) = slot;
        let name = read(&self.generations)
            .get(slot)
            .map(|g| g.plugin.clone())
            .unwrap_or_default();
        (vhost.clone(), name)
    }

    /// The file a slot loads from.
    fn path_of(&self, slot: &Slot) -> Option<PathBuf> {
        let (Slot::Auth { vhost } | Slot::Hook { vhost, .. }) = slot;
        let config = read(&self.config);
        let v = config.vhosts.iter().find(|v| &v.domain == vhost)?;
        match slot {
            Slot::Auth { .. } => Some(v.auth.path.clone()),
            Slot::Hook { index, .. } => v.plugins.get(*index).map(|p| p.path.clone()),
        }
    }

    /// Every slot with its file, for the watcher.
    fn watched(&self) -> Vec<(Slot, PathBuf)> {
        let mut out = Vec::new();
        for v in &read(&self.config).vhosts {
            out.push((
                Slot::Auth {
                    vhost: v.domain.clone(),
                },
                v.auth.path.clone(),
            ));
            for (index, p) in v.plugins.iter().enumerate() {
                out.push((
                    Slot::Hook {
                        vhost: v.domain.clone(),
                        index,
                    },
                    p.path.clone(),
                ));
            }
        }
        out
    }

    /// Load the slot's file again and swap the new generation in. On failure the old one
    /// keeps serving and the error is returned (and kept for `generations`).
    ///
    /// # Errors
    /// The reason the new generation was refused.
    pub async fn reload(self: &Arc<Self>, slot: &Slot) -> Result<Generation, String> {
        let _one = self.busy.lock().await;
        let started = Instant::now();
        let me = self.clone();
        let s = slot.clone();
        let loaded = tokio::task::spawn_blocking(move || me.load(&s))
            .await
            .map_err(|e| format!("the reload task failed: {e}"))
            .and_then(|r| r);
        let mut gens = write(&self.generations);
        let Some(g) = gens.get_mut(slot) else {
            return Err(format!("no such plugin slot: {slot:?}"));
        };
        match loaded {
            Ok(hash) => {
                g.number += 1;
                g.hash = hash;
                g.last_error = None;
                tracing::info!(
                    target: "audit",
                    event = "plugin_reloaded",
                    plugin = %g.plugin,
                    slot = ?slot,
                    generation = g.number,
                    hash = %g.hash
                );
                tracing::info!(
                    message = "Plugin reloaded.",
                    plugin = %g.plugin,
                    slot = ?slot,
                    generation = g.number,
                    hash = %g.hash,
                    ms = started.elapsed().as_millis() as u64
                );
                Ok(g.clone())
            }
            Err(e) => {
                tracing::info!(
                    target: "audit",
                    event = "plugin_reload_refused",
                    plugin = %g.plugin,
                    slot = ?slot,
                    generation = g.number,
                    error = %e
                );
                tracing::warn!(
                    message = "Plugin reload refused; the running generation keeps serving.",
                    plugin = %g.plugin,
                    slot = ?slot,
                    generation = g.number,
                    error = %e
                );
                g.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Load and swap (blocking: compiles). Returns the new file's hash.
    fn load(&self, slot: &Slot) -> Result<String, String> {
        let (Slot::Auth { vhost } | Slot::Hook { vhost, .. }) = slot;
        let config = read(&self.config).clone();
        let v = config
            .vhosts
            .iter()
            .find(|v| &v.domain == vhost)
            .ok_or_else(|| format!("no vhost {vhost}"))?;
        match slot {
            Slot::Auth { .. } => {
                let new = self
                    .engine
                    .load_auth_plugin(&v.domain, &v.auth, self.kv.clone())
                    .map_err(|e| e.to_string())?;
                let mut auth = write(&self.auth);
                if let Some(old) = auth.get(vhost)
                    && old.mechanisms() != new.mechanisms()
                {
                    return Err(format!(
                        "the new build offers SASL mechanisms {:?} instead of {:?}; changing \
                         the mechanisms a vhost offers needs a restart",
                        new.mechanisms(),
                        old.mechanisms()
                    ));
                }
                let hash = new.content_hash().to_owned();
                auth.insert(vhost.clone(), new);
                Ok(hash)
            }
            Slot::Hook { index, .. } => {
                let pc = v
                    .plugins
                    .get(*index)
                    .ok_or_else(|| format!("no plugin {index} on {vhost}"))?;
                let muc = v.muc.as_ref().map(|m| m.domain.as_str());
                let new = self
                    .engine
                    .load_hook_plugin(&v.domain, muc, pc, self.kv.clone())
                    .map_err(|e| e.to_string())?;
                let hash = new.content_hash().to_owned();
                let worker = read(&self.workers).get(vhost).cloned();
                let router = read(&self.router).clone();
                let (Some(worker), Some(router)) = (worker, router) else {
                    return Err("the server is not running".to_owned());
                };
                // Built from a snapshot: reloads run one at a time (`busy`), and no lock is
                // held while the router or the worker is waited for.
                let mut set = (**read(&self.hooks)).clone();
                let current = set
                    .get(vhost)
                    .ok_or_else(|| format!("{vhost} has no plugin worker"))?;
                let mut plugins = current.plugins().to_vec();
                let Some(place) = plugins.get_mut(*index) else {
                    return Err(format!("no plugin {index} on {vhost}"));
                };
                *place = Arc::new(new);
                let vhost_hooks = Arc::new(VhostHooks::new(vhost, plugins));
                set.insert_arc(vhost_hooks.clone());
                let set = Arc::new(set);
                // The worker first, then the router: a call the router hands out under the new
                // subscriptions reaches the worker after the swap.
                worker
                    .blocking_send(WorkerMsg::Swap(vhost_hooks))
                    .map_err(|_| "the vhost's plugin worker stopped".to_owned())?;
                router
                    .blocking_send(RouterCmd::SetExtensions(set.clone()))
                    .map_err(|_| "the router stopped".to_owned())?;
                *write(&self.hooks) = set;
                Ok(hash)
            }
        }
    }

    /// Apply a new configuration's vhosts (a configuration reload): added vhosts get their
    /// plugins, worker and routing; removed ones stop (their sessions are told `host-gone` by
    /// the router); changed ones get new generations of the plugins whose settings, grants,
    /// files or order changed, with their sessions kept. Every plugin is loaded before
    /// anything is swapped, so a configuration with one bad plugin changes nothing. Sections
    /// other than `vhosts`, and a vhost's MUC settings, take effect at the next restart; the
    /// report says which changed.
    ///
    /// # Errors
    /// The first plugin that does not load, naming its key; nothing was applied.
    pub async fn apply(self: &Arc<Self>, new: Config) -> Result<ConfigChange, String> {
        let _one = self.busy.lock().await;
        let old = read(&self.config).clone();
        let mut change = ConfigChange::default();
        let dbg = |x: &dyn std::fmt::Debug| format!("{x:?}");
        for (key, was, now) in [
            ("listeners", dbg(&old.listeners), dbg(&new.listeners)),
            ("tls", dbg(&old.tls), dbg(&new.tls)),
            ("limits", dbg(&old.limits), dbg(&new.limits)),
            (
                "stream_management",
                dbg(&old.stream_management),
                dbg(&new.stream_management),
            ),
            (
                "plugin_limits",
                dbg(&old.plugin_limits),
                dbg(&new.plugin_limits),
            ),
            ("components", dbg(&old.components), dbg(&new.components)),
            ("http", dbg(&old.http), dbg(&new.http)),
            ("data_dir", dbg(&old.data_dir), dbg(&new.data_dir)),
            ("log_level", dbg(&old.log_level), dbg(&new.log_level)),
            ("audit_log", dbg(&old.audit_log), dbg(&new.audit_log)),
            ("plugin_dir", dbg(&old.plugin_dir), dbg(&new.plugin_dir)),
            ("sfu", dbg(&old.sfu), dbg(&new.sfu)),
            ("key_servers", dbg(&old.key_servers), dbg(&new.key_servers)),
            ("ldap", dbg(&old.ldap), dbg(&new.ldap)),
            ("turn", dbg(&old.turn), dbg(&new.turn)),
            ("storage", dbg(&old.storage), dbg(&new.storage)),
        ] {
            if was != now {
                change.restart_needed.push(key.to_owned());
            }
        }
        let old_v: HashMap<&str, &crate::config::Vhost> =
            old.vhosts.iter().map(|v| (v.domain.as_str(), v)).collect();
        let mut plans = Vec::new();
        for (i, v) in new.vhosts.iter().enumerate() {
            match old_v.get(v.domain.as_str()) {
                None => {
                    change.added.push(v.domain.clone());
                    plans.push((i, true, true));
                }
                Some(was) => {
                    let auth = dbg(&was.auth) != dbg(&v.auth);
                    let hooks = dbg(&was.plugins) != dbg(&v.plugins);
                    if dbg(&was.muc) != dbg(&v.muc) {
                        change
                            .restart_needed
                            .push(format!("vhosts[{i}] ({}): muc", v.domain));
                    }
                    if auth || hooks {
                        change.changed.push(v.domain.clone());
                        plans.push((i, auth, hooks));
                    }
                }
            }
        }
        change.removed = old
            .vhosts
            .iter()
            .filter(|v| !new.vhosts.iter().any(|n| n.domain == v.domain))
            .map(|v| v.domain.clone())
            .collect();

        // Load everything first (blocking: compiles).
        let me = self.clone();
        let cfg = new.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (i, auth, hooks) in plans {
                let v = &cfg.vhosts[i];
                let a = if auth {
                    Some(
                        me.engine
                            .load_auth_plugin(&v.domain, &v.auth, me.kv.clone())
                            .map_err(|e| format!("vhosts[{i}].auth ({}): {e}", v.domain))?,
                    )
                } else {
                    None
                };
                let h = if hooks {
                    let muc = v.muc.as_ref().map(|m| m.domain.as_str());
                    let mut list = Vec::new();
                    for (j, p) in v.plugins.iter().enumerate() {
                        let plugin = me
                            .engine
                            .load_hook_plugin(&v.domain, muc, p, me.kv.clone())
                            .map_err(|e| format!("vhosts[{i}].plugins[{j}] ({}): {e}", v.domain))?;
                        list.push(Arc::new(plugin));
                    }
                    Some(list)
                } else {
                    None
                };
                out.push((i, a, h));
            }
            Ok::<_, String>(out)
        })
        .await
        .map_err(|e| format!("the reload task failed: {e}"))??;

        let Some(router) = read(&self.router).clone() else {
            return Err("the server is not running".to_owned());
        };
        let send = |cmd: RouterCmd| {
            let router = router.clone();
            async move {
                router
                    .send(cmd)
                    .await
                    .map_err(|_| "the router stopped".to_owned())
            }
        };
        // Removed vhosts: routing and sessions first, then their plugins.
        for d in &change.removed {
            send(RouterCmd::RemoveVhost { domain: d.clone() }).await?;
            send(RouterCmd::SetWorker {
                vhost: d.clone(),
                worker: None,
                components: Vec::new(),
            })
            .await?;
            write(&self.workers).remove(d);
            write(&self.auth).remove(d);
            write(&self.generations).retain(|slot, _| {
                let (Slot::Auth { vhost } | Slot::Hook { vhost, .. }) = slot;
                vhost != d
            });
        }
        let mut set = (**read(&self.hooks)).clone();
        for d in &change.removed {
            set.remove(d);
        }
        // Added and changed vhosts: new generations, workers and routing.
        for (i, auth, hooks) in loaded {
            let v = &new.vhosts[i];
            let d = v.domain.clone();
            let added = change.added.contains(&d);
            if let Some(a) = auth {
                write(&self.auth).insert(d.clone(), a.clone());
                let mut gens = write(&self.generations);
                let slot = Slot::Auth { vhost: d.clone() };
                let number = gens.get(&slot).map_or(1, |g| g.number + 1);
                gens.insert(
                    slot,
                    Generation {
                        plugin: v.auth.plugin.clone(),
                        number,
                        hash: a.content_hash().to_owned(),
                        last_error: None,
                    },
                );
            }
            if let Some(list) = hooks {
                let vh = Arc::new(VhostHooks::new(&d, list));
                let components: Vec<String> = v
                    .plugins
                    .iter()
                    .filter_map(|p| p.component.clone())
                    .collect();
                let existing = read(&self.workers).get(&d).cloned();
                let worker = match (existing, vh.plugins().is_empty()) {
                    (_, true) => None,
                    (Some(tx), false) => {
                        tx.send(WorkerMsg::Swap(vh.clone()))
                            .await
                            .map_err(|_| format!("the plugin worker of {d} stopped"))?;
                        Some(tx)
                    }
                    (None, false) => super::plugin_worker::spawn(&vh, &router),
                };
                match &worker {
                    Some(tx) => write(&self.workers).insert(d.clone(), tx.clone()),
                    None => write(&self.workers).remove(&d),
                };
                send(RouterCmd::SetWorker {
                    vhost: d.clone(),
                    worker,
                    components,
                })
                .await?;
                set.insert_arc(vh.clone());
                let mut gens = write(&self.generations);
                let old_hooks: HashMap<usize, Generation> = gens
                    .iter()
                    .filter_map(|(slot, g)| match slot {
                        Slot::Hook { vhost, index } if *vhost == d => Some((*index, g.clone())),
                        _ => None,
                    })
                    .collect();
                gens.retain(|slot, _| !matches!(slot, Slot::Hook { vhost, .. } if *vhost == d));
                for (index, p) in v.plugins.iter().enumerate() {
                    let number = old_hooks
                        .get(&index)
                        .filter(|g| g.plugin == p.plugin)
                        .map_or(1, |g| g.number + 1);
                    gens.insert(
                        Slot::Hook {
                            vhost: d.clone(),
                            index,
                        },
                        Generation {
                            plugin: p.plugin.clone(),
                            number,
                            hash: vh
                                .plugins()
                                .get(index)
                                .map(|h| h.content_hash().to_owned())
                                .unwrap_or_default(),
                            last_error: None,
                        },
                    );
                }
            }
            if added {
                send(RouterCmd::AddVhost {
                    domain: d.clone(),
                    muc: v.muc.clone().map(Box::new),
                    focus: v.focus.clone().map(Box::new),
                })
                .await?;
            }
        }
        let set = Arc::new(set);
        send(RouterCmd::SetExtensions(set.clone())).await?;
        *write(&self.hooks) = set;
        *write(&self.config) = new;
        tracing::info!(
            target: "audit",
            event = "config_reloaded",
            added = ?change.added,
            removed = ?change.removed,
            changed = ?change.changed,
            restart_needed = ?change.restart_needed
        );
        Ok(change)
    }

    /// Watch every plugin file and reload a slot when its file changed and then held still
    /// for one poll. Runs until the registry is dropped.
    pub async fn watch(self: Arc<Self>) {
        let sig = |p: &PathBuf| -> Option<(u64, SystemTime)> {
            let m = std::fs::metadata(p).ok()?;
            Some((m.len(), m.modified().ok()?))
        };
        type Sig = Option<(u64, SystemTime)>;
        // Keyed by slot and file: a slot that a configuration reload points at another file
        // starts from that file's state, as a new slot does.
        let mut seen: HashMap<(Slot, PathBuf), Sig> = self
            .watched()
            .into_iter()
            .map(|(s, p)| {
                let now = sig(&p);
                ((s, p), now)
            })
            .collect();
        let mut pending: HashMap<(Slot, PathBuf), Sig> = HashMap::new();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let watched = self.watched();
            seen.retain(|k, _| watched.contains(k));
            for key in &watched {
                let now = sig(&key.1);
                let Some(before) = seen.get(key) else {
                    seen.insert(key.clone(), now);
                    continue;
                };
                let (slot, _) = key;
                let slot_key = key;
                if now.is_none() || *before == now {
                    pending.remove(slot_key);
                    continue;
                }
                // Changed: reload once it has held still for one poll.
                if pending.get(slot_key) != Some(&now) {
                    pending.insert(slot_key.clone(), now);
                    continue;
                }
                pending.remove(slot_key);
                seen.insert(slot_key.clone(), now);
                if self.path_of(slot).is_some() {
                    let _ = self.reload(slot).await;
                }
            }
        }
    }
}
