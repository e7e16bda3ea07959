//! Hook and component plugins (`hooks`, `component` worlds) and `PluginExtensions`, the
//! router's `Extensions` backed by them: only subscribed plugins are called, in priority
//! order; stanzas they send and timers they set are collected and handed back to the router.
//!
//! Shell (wasmtime calls made from the router's owner task, each bounded by the plugin call
//! deadline). A hook or component plugin keeps one live instance per vhost (sandbox.rs).
//! Invariants: a hook that traps, times out or is disabled fails open (`Pass`),
//! logged with the plugin's name; a component plugin that traps drops that one stanza; a
//! plugin's sends are confined to its vhost, MUC and component domains (host_api.rs); at most
//! `MAX_PENDING_TIMERS` timers per plugin. Tests: tests/all/hooks.rs with real plugins.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;

use super::bindings::component_world::{Component, ComponentPre};
use super::bindings::hooks_world::lilt::plugin::hook_types as wit;
use super::bindings::hooks_world::{Hooks, HooksPre};
use super::host_api::{Effects, State, parse_plugin_stanza};
use super::sandbox::{InstancePool, Sandbox};
use super::{PluginEngine, PluginError};
use crate::config::PluginConfig;
use crate::hooks::{ComponentIdentity, Extensions, MucEvent, OccupantInfo, RoomInfo, Verdict};
use crate::stanza::{Kind, StanzaError};
use crate::storage::KvStore;
use crate::xml::Element;

/// Timers one plugin may have pending.
const MAX_PENDING_TIMERS: usize = 1024;

/// A loaded hook and/or component plugin of one vhost.
pub struct HookPlugin {
    sandbox: Sandbox,
    settings_json: String,
    hooks: Option<HooksPre<State>>,
    component: Option<(ComponentPre<State>, String)>,
    subscriptions: Vec<(wit::EventKind, i32)>,
    identity: Option<(String, String)>,
    live_hooks: InstancePool<Hooks>,
    live_component: InstancePool<Component>,
}

impl std::fmt::Debug for HookPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookPlugin")
            .field("name", &self.sandbox.name)
            .field("vhost", &self.sandbox.vhost)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// Load a hook/component plugin for `vhost`: it must export the hook handler, the
    /// component handler or both, with `component` configured exactly when it exports the
    /// latter; its settings are checked by calling `configure`.
    ///
    /// # Errors
    /// `Load` for a missing file, a non-component, missing exports or a mismatch with the
    /// configuration; `Config` when the plugin refuses its settings; `Trap` when it traps.
    pub fn load_hook_plugin(
        &self,
        vhost: &str,
        muc_domain: Option<&str>,
        config: &PluginConfig,
        kv: Arc<dyn KvStore>,
    ) -> Result<HookPlugin, PluginError> {
        let name = config.plugin.as_str();
        let load = |msg: String| PluginError::Load {
            plugin: name.to_owned(),
            source: anyhow::anyhow!(msg),
        };
        let pre = self.instantiate_pre(name, &config.path)?;
        let hooks = HooksPre::new(pre.clone()).ok();
        let component = ComponentPre::new(pre).ok();
        let component = match (component, &config.component) {
            (Some(c), Some(domain)) => Some((c, domain.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(load(
                    "it exports a component handler: set `component = \"DOMAIN\"` for it".into(),
                ));
            }
            (None, Some(d)) => {
                return Err(load(format!(
                    "`component = {d:?}` is set but it does not export lilt:plugin/component-handler"
                )));
            }
        };
        if hooks.is_none() && component.is_none() {
            return Err(load(
                "it exports neither lilt:plugin/hook-handler nor lilt:plugin/component-handler"
                    .into(),
            ));
        }
        let mut send_domains: Vec<String> = muc_domain.map(str::to_owned).into_iter().collect();
        send_domains.push(vhost.to_owned());
        send_domains.extend(config.component.clone());
        let mut plugin = HookPlugin {
            sandbox: Sandbox::new(self.clone(), vhost, name, kv, send_domains),
            settings_json: config.settings.to_string(),
            hooks,
            component,
            subscriptions: Vec::new(),
            identity: None,
            // Called from the router's one task: one live instance each is enough.
            live_hooks: InstancePool::new(1),
            live_component: InstancePool::new(1),
        };
        if plugin.hooks.is_some() {
            let (subs, _) =
                plugin.call_hooks(|h, s| h.lilt_plugin_hook_handler().call_subscriptions(s))?;
            plugin.subscriptions = subs.into_iter().map(|s| (s.kind, s.priority)).collect();
        }
        if plugin.component.is_some() {
            let (id, _) =
                plugin.call_component(|c, s| c.lilt_plugin_component_handler().call_identity(s))?;
            plugin.identity = id.map(|i| (i.category, i.kind));
        }
        Ok(plugin)
    }
}

impl HookPlugin {
    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.sandbox.name
    }

    /// Calls made and calls that trapped since load.
    pub fn call_counts(&self) -> (u64, u64) {
        self.sandbox.call_counts()
    }

    /// True while repeated traps keep it disabled.
    pub fn is_disabled(&self) -> bool {
        self.sandbox.is_disabled()
    }

    fn subscribed(&self, kind: wit::EventKind) -> Option<i32> {
        self.subscriptions
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
    }

    fn call_hooks<T>(
        &self,
        f: impl FnOnce(&Hooks, &mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<(T, Effects), PluginError> {
        let Some(pre) = &self.hooks else {
            return Err(PluginError::Load {
                plugin: self.name().to_owned(),
                source: anyhow::anyhow!("not a hook plugin"),
            });
        };
        let vhost = self.sandbox.vhost.clone();
        let component = self.component.as_ref().map(|(_, d)| d.clone());
        let settings = self.settings_json.clone();
        self.sandbox.with_instance(
            &self.live_hooks,
            move |store| {
                let hooks = pre.instantiate(&mut *store)?;
                Ok(hooks
                    .lilt_plugin_hook_handler()
                    .call_configure(&mut *store, &vhost, component.as_deref(), &settings)?
                    .map(|()| hooks))
            },
            f,
        )
    }

    fn call_component<T>(
        &self,
        f: impl FnOnce(&Component, &mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<(T, Effects), PluginError> {
        let Some((pre, domain)) = &self.component else {
            return Err(PluginError::Load {
                plugin: self.name().to_owned(),
                source: anyhow::anyhow!("not a component plugin"),
            });
        };
        let settings = self.settings_json.clone();
        self.sandbox.with_instance(
            &self.live_component,
            move |store| {
                let c = pre.instantiate(&mut *store)?;
                Ok(c.lilt_plugin_component_handler()
                    .call_configure(&mut *store, domain, &settings)?
                    .map(|()| c))
            },
            f,
        )
    }
}

fn room(r: &RoomInfo) -> wit::Room {
    wit::Room {
        jid: r.jid.to_string(),
        meeting_id: r.meeting_id.clone(),
        created_millis: r.created_ms,
        occupants: r.occupants,
    }
}

fn occupant_event(r: &RoomInfo, o: &OccupantInfo, presence: &Element) -> wit::OccupantEvent {
    wit::OccupantEvent {
        room: room(r),
        occupant: wit::Occupant {
            nick: o.nick.clone(),
            jid: o.jid.to_string(),
            role: o.role.to_owned(),
            affiliation: o.affiliation.to_owned(),
        },
        presence: presence.to_string(),
    }
}

/// Every event kind, in declaration order (so `kind as usize` indexes it).
const ALL_KINDS: [wit::EventKind; 9] = [
    wit::EventKind::Message,
    wit::EventKind::Presence,
    wit::EventKind::Iq,
    wit::EventKind::RoomPreCreate,
    wit::EventKind::RoomCreated,
    wit::EventKind::RoomDestroyed,
    wit::EventKind::OccupantPreJoin,
    wit::EventKind::OccupantJoined,
    wit::EventKind::OccupantLeft,
];

/// The router's extensions, backed by the loaded hook and component plugins.
#[derive(Default)]
pub struct PluginExtensions {
    plugins: Vec<Arc<HookPlugin>>,
    by_vhost: HashMap<String, Vec<usize>>,
    components: HashMap<String, usize>,
    sent: Vec<Element>,
    timers: BinaryHeap<Reverse<(Instant, u64, usize, String)>>,
    pending: Vec<usize>,
    seq: u64,
    /// Subscribers by vhost, then by event kind (`EventKind as usize`), highest priority
    /// first; rebuilt by `add`.
    subscribers: HashMap<String, Vec<Arc<[usize]>>>,
    /// Whether any plugin hooks message, presence or iq stanzas.
    stanza_hooks: bool,
}

impl std::fmt::Debug for PluginExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginExtensions")
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl PluginExtensions {
    /// Add a loaded plugin of `vhost`.
    pub fn add(&mut self, vhost: &str, plugin: Arc<HookPlugin>) {
        let i = self.plugins.len();
        if let Some((_, domain)) = &plugin.component {
            self.components.insert(domain.clone(), i);
        }
        self.by_vhost.entry(vhost.to_owned()).or_default().push(i);
        self.stanza_hooks |= [
            wit::EventKind::Message,
            wit::EventKind::Presence,
            wit::EventKind::Iq,
        ]
        .into_iter()
        .any(|k| plugin.subscribed(k).is_some());
        self.plugins.push(plugin);
        self.pending.push(0);
        let by_kind = ALL_KINDS
            .into_iter()
            .map(|kind| {
                let mut subs: Vec<(i32, usize)> = self.by_vhost[vhost]
                    .iter()
                    .filter_map(|&i| self.plugins[i].subscribed(kind).map(|p| (p, i)))
                    .collect();
                subs.sort_by_key(|(p, i)| (Reverse(*p), *i));
                subs.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        self.subscribers.insert(vhost.to_owned(), by_kind);
    }

    /// Every loaded plugin (for metrics).
    pub fn plugins(&self) -> Vec<Arc<HookPlugin>> {
        self.plugins.clone()
    }

    /// The vhost's plugins subscribed to `kind`, highest priority first.
    fn subscribers(&self, vhost: &str, kind: wit::EventKind) -> Option<Arc<[usize]>> {
        self.subscribers
            .get(vhost)
            .and_then(|by_kind| by_kind.get(kind as usize))
            .filter(|s| !s.is_empty())
            .cloned()
    }

    fn absorb(&mut self, i: usize, effects: Effects) {
        self.sent.extend(effects.sent);
        let now = Instant::now();
        for (delay, tag) in effects.timers {
            if self.pending[i] >= MAX_PENDING_TIMERS {
                tracing::warn!(
                    message = "Plugin timer refused: too many pending.",
                    plugin = self.plugins[i].name()
                );
                continue;
            }
            self.pending[i] += 1;
            self.seq += 1;
            self.timers.push(Reverse((now + delay, self.seq, i, tag)));
        }
    }

    /// Call the subscribers of `kind` in order with the event `make` builds from the current
    /// stanza; stops at the first `Handled` or `Reject`. Traps and disabled plugins pass.
    fn dispatch(
        &mut self,
        vhost: &str,
        kind: wit::EventKind,
        stanza: Option<&Element>,
        make: impl Fn(Option<&Element>) -> wit::Event,
    ) -> Verdict {
        let Some(subs) = self.subscribers(vhost, kind) else {
            return Verdict::Pass;
        };
        let mut replaced: Option<Element> = None;
        for &i in subs.iter() {
            let plugin = self.plugins[i].clone();
            let event = make(replaced.as_ref().or(stanza));
            let answer =
                plugin.call_hooks(|h, s| h.lilt_plugin_hook_handler().call_handle(s, &event));
            let verdict = match answer {
                Ok((v, effects)) => {
                    self.absorb(i, effects);
                    v
                }
                // Fail open: logged and counted by the sandbox.
                Err(_) => continue,
            };
            match verdict {
                wit::Verdict::Pass => {}
                wit::Verdict::Handled => return Verdict::Handled,
                wit::Verdict::Reject(r) => {
                    let mut e = StanzaError::from_condition(&r.condition);
                    if let Some(text) = r.text {
                        e = e.with_text(text);
                    }
                    return Verdict::Reject(e);
                }
                wit::Verdict::Replace(xml) => match parse_plugin_stanza(&xml) {
                    Ok(el) => replaced = Some(el),
                    Err(error) => tracing::warn!(
                        message = "Plugin's replacement stanza ignored.",
                        plugin = plugin.name(),
                        error
                    ),
                },
            }
        }
        replaced.map_or(Verdict::Pass, Verdict::Replace)
    }
}

impl Extensions for PluginExtensions {
    fn hooks_stanzas(&self) -> bool {
        self.stanza_hooks
    }

    fn stanza(&mut self, vhost: &str, kind: Kind, stanza: &Element) -> Verdict {
        let (ek, wrap): (wit::EventKind, fn(String) -> wit::Event) = match kind {
            Kind::Message => (wit::EventKind::Message, wit::Event::Message),
            Kind::Presence => (wit::EventKind::Presence, wit::Event::Presence),
            Kind::Iq => (wit::EventKind::Iq, wit::Event::Iq),
        };
        self.dispatch(vhost, ek, Some(stanza), |s| {
            wrap(s.map(Element::to_string).unwrap_or_default())
        })
    }

    fn muc(&mut self, vhost: &str, event: &MucEvent<'_>) -> Verdict {
        let (kind, presence) = match event {
            MucEvent::RoomPreCreate { .. } => (wit::EventKind::RoomPreCreate, None),
            MucEvent::RoomCreated(_) => (wit::EventKind::RoomCreated, None),
            MucEvent::RoomDestroyed(_) => (wit::EventKind::RoomDestroyed, None),
            MucEvent::OccupantPreJoin { presence, .. } => {
                (wit::EventKind::OccupantPreJoin, Some(*presence))
            }
            MucEvent::OccupantJoined { presence, .. } => {
                (wit::EventKind::OccupantJoined, Some(*presence))
            }
            MucEvent::OccupantLeft { presence, .. } => {
                (wit::EventKind::OccupantLeft, Some(*presence))
            }
        };
        let event = *event;
        self.dispatch(vhost, kind, presence, move |p| match event {
            MucEvent::RoomPreCreate { room: r, creator } => {
                wit::Event::RoomPreCreate(wit::RoomCreation {
                    room: room(r),
                    creator: creator.to_string(),
                })
            }
            MucEvent::RoomCreated(r) => wit::Event::RoomCreated(room(r)),
            MucEvent::RoomDestroyed(r) => wit::Event::RoomDestroyed(room(r)),
            MucEvent::OccupantPreJoin {
                room: r,
                occupant,
                presence,
            } => wit::Event::OccupantPreJoin(occupant_event(r, occupant, p.unwrap_or(presence))),
            MucEvent::OccupantJoined {
                room: r,
                occupant,
                presence,
            } => wit::Event::OccupantJoined(occupant_event(r, occupant, p.unwrap_or(presence))),
            MucEvent::OccupantLeft {
                room: r,
                occupant,
                presence,
            } => wit::Event::OccupantLeft(occupant_event(r, occupant, p.unwrap_or(presence))),
        })
    }

    fn owns_component(&self, domain: &str) -> bool {
        self.components.contains_key(domain)
    }

    fn component(&mut self, domain: &str, stanza: &Element) {
        let Some(&i) = self.components.get(domain) else {
            return;
        };
        let plugin = self.plugins[i].clone();
        let xml = stanza.to_string();
        if let Ok(((), effects)) = plugin.call_component(|c, s| {
            c.lilt_plugin_component_handler()
                .call_handle_stanza(s, &xml)
        }) {
            self.absorb(i, effects);
        }
    }

    fn identities(&self, vhost: &str) -> Vec<ComponentIdentity> {
        self.by_vhost
            .get(vhost)
            .into_iter()
            .flatten()
            .filter_map(|&i| {
                let p = &self.plugins[i];
                let (category, kind) = p.identity.clone()?;
                let (_, domain) = p.component.as_ref()?;
                Some(ComponentIdentity {
                    category,
                    kind,
                    domain: domain.clone(),
                })
            })
            .collect()
    }

    fn take_sent(&mut self) -> Vec<Element> {
        std::mem::take(&mut self.sent)
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, ..))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, i, tag))) = self.timers.pop() else {
                break;
            };
            self.pending[i] = self.pending[i].saturating_sub(1);
            let plugin = self.plugins[i].clone();
            if let Ok(((), effects)) =
                plugin.call_hooks(|h, s| h.lilt_plugin_hook_handler().call_on_timer(s, &tag))
            {
                self.absorb(i, effects);
            }
        }
    }
}
