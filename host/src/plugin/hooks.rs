//! Hook and component plugins (`hooks`, `component` worlds): `HookPlugin` (one loaded plugin
//! of one vhost), `VhostHooks` (a vhost's plugins in subscription order, with the blocking
//! calls its worker makes) and `PluginSet` (every vhost's, answering the cores' `Extensions`
//! queries).
//!
//! Shell (blocking: `VhostHooks::run_*` run on the blocking pool, one call at a time per vhost,
//! driven by runtime/plugin_worker.rs; never on the router's task). A hook or component plugin
//! keeps one live instance per vhost (sandbox.rs). Invariants: only subscribed plugins are
//! called, highest priority first, stopping at the first `Handled` or `Reject`; a hook that
//! traps, times out or is disabled fails open (`Pass`), logged with the plugin's name; a
//! component plugin that traps drops that one stanza; a plugin's sends are confined to its
//! vhost, MUC and component domains (host_api.rs). Tests: tests/all/hooks.rs and
//! tests/all/isolation.rs with real plugins.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::component_world::{Component, ComponentPre};
use super::bindings::hooks_world::lilt::plugin::hook_types as wit;
use super::bindings::hooks_world::{Hooks, HooksPre};
use super::host_api::{Effects, State, parse_plugin_stanza};
use super::sandbox::{InstancePool, Sandbox};
use super::{PluginEngine, PluginError};
use crate::config::PluginConfig;
use crate::hooks::{
    ComponentIdentity, Extensions, HookKind, MucEvent, OccupantInfo, RoomInfo, Verdict,
};
use crate::stanza::{Kind, StanzaError};
use crate::storage::{KvRole, KvStore};
use crate::xml::Element;

/// A loaded hook and/or component plugin of one vhost.
pub struct HookPlugin {
    sandbox: Sandbox,
    settings_json: String,
    hooks: Option<HooksPre<State>>,
    component: Option<(ComponentPre<State>, String)>,
    subscriptions: Vec<(wit::EventKind, i32)>,
    identity: Option<(String, String)>,
    live_hooks: Arc<InstancePool<Hooks>>,
    live_component: Arc<InstancePool<Component>>,
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
    /// configuration; `NotGranted` when it imports an interface `config.grants` lacks;
    /// `Config` when the plugin refuses its settings; `Trap` when it traps.
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
        let (pre, hash) = self.instantiate_pre(name, &config.path, config.grants)?;
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
            sandbox: Sandbox::new(
                self.clone(),
                vhost,
                name,
                KvRole::Hooks,
                kv,
                send_domains,
                hash,
            ),
            settings_json: config.settings.to_string(),
            hooks,
            component,
            subscriptions: Vec::new(),
            identity: None,
            // Called from the vhost's one worker, one call at a time: one live instance each.
            live_hooks: InstancePool::new(self, 1),
            live_component: InstancePool::new(self, 1),
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
        // An idle vhost holds no instance: the first event makes one.
        plugin.live_hooks.clear();
        plugin.live_component.clear();
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

    /// SHA-256 (hex) of the component file this generation was compiled from.
    pub fn content_hash(&self) -> &str {
        &self.sandbox.hash
    }

    /// The world it was loaded as: `hooks`, `component` or `hooks-and-component`.
    pub fn world(&self) -> &'static str {
        match (self.hooks.is_some(), self.component.is_some()) {
            (true, true) => "hooks-and-component",
            (false, true) => "component",
            _ => "hooks",
        }
    }

    /// Call times since load (for `/metrics`).
    pub fn call_times(&self) -> crate::metrics::CallTimes {
        self.sandbox.call_times()
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

fn wit_kind(kind: HookKind) -> wit::EventKind {
    match kind {
        HookKind::Message => wit::EventKind::Message,
        HookKind::Presence => wit::EventKind::Presence,
        HookKind::Iq => wit::EventKind::Iq,
        HookKind::RoomPreCreate => wit::EventKind::RoomPreCreate,
        HookKind::RoomCreated => wit::EventKind::RoomCreated,
        HookKind::RoomDestroyed => wit::EventKind::RoomDestroyed,
        HookKind::OccupantPreJoin => wit::EventKind::OccupantPreJoin,
        HookKind::OccupantJoined => wit::EventKind::OccupantJoined,
        HookKind::OccupantLeft => wit::EventKind::OccupantLeft,
    }
}

/// The WIT event for `event`, with `presence` standing for the one it carries (a replacement
/// an earlier hook in the chain made).
fn wit_event(event: &MucEvent, presence: Option<&Element>) -> wit::Event {
    match event {
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
            presence: p,
        } => wit::Event::OccupantPreJoin(occupant_event(r, occupant, presence.unwrap_or(p))),
        MucEvent::OccupantJoined {
            room: r,
            occupant,
            presence: p,
        } => wit::Event::OccupantJoined(occupant_event(r, occupant, presence.unwrap_or(p))),
        MucEvent::OccupantLeft {
            room: r,
            occupant,
            presence: p,
        } => wit::Event::OccupantLeft(occupant_event(r, occupant, presence.unwrap_or(p))),
    }
}

/// What plugin calls asked the host to do once they returned.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Stanzas to route, checked and addressed.
    pub sent: Vec<Element>,
    /// Timers to set: (plugin index within the vhost, delay, tag).
    pub timers: Vec<(usize, Duration, String)>,
}

impl Outcome {
    fn absorb(&mut self, plugin: usize, effects: Effects) {
        self.sent.extend(effects.sent);
        self.timers.extend(
            effects
                .timers
                .into_iter()
                .map(|(delay, tag)| (plugin, delay, tag)),
        );
    }
}

/// One vhost's hook and component plugins.
pub struct VhostHooks {
    vhost: String,
    plugins: Vec<Arc<HookPlugin>>,
    /// Subscribers by `HookKind as usize`, highest priority first.
    subscribers: Vec<Vec<usize>>,
    /// Whether any plugin subscribes to message, presence or iq (asked per stanza).
    stanza_hooks: bool,
    components: HashMap<String, usize>,
}

impl std::fmt::Debug for VhostHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostHooks")
            .field("vhost", &self.vhost)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl VhostHooks {
    /// The plugins of `vhost`, in configuration order.
    pub fn new(vhost: &str, plugins: Vec<Arc<HookPlugin>>) -> VhostHooks {
        let subscribers: Vec<Vec<usize>> = HookKind::ALL
            .into_iter()
            .map(|kind| {
                let mut subs: Vec<(i32, usize)> = plugins
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| p.subscribed(wit_kind(kind)).map(|prio| (prio, i)))
                    .collect();
                subs.sort_by_key(|(prio, i)| (Reverse(*prio), *i));
                subs.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        let components = plugins
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((p.component.as_ref()?.1.clone(), i)))
            .collect();
        let stanza_hooks = [HookKind::Message, HookKind::Presence, HookKind::Iq]
            .iter()
            .any(|k| !subscribers[*k as usize].is_empty());
        VhostHooks {
            vhost: vhost.to_owned(),
            plugins,
            subscribers,
            stanza_hooks,
            components,
        }
    }

    /// The vhost.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The plugins, in configuration order (indices match `Outcome::timers`).
    pub fn plugins(&self) -> &[Arc<HookPlugin>] {
        &self.plugins
    }

    fn wants(&self, kind: HookKind) -> bool {
        !self.subscribers[kind as usize].is_empty()
    }

    /// Call the subscribers of `kind` in order with the event `make` builds from the current
    /// stanza (the original, or an earlier hook's replacement); stops at the first `Handled`
    /// or `Reject`. Traps and disabled plugins pass. Blocking.
    fn dispatch(
        &self,
        kind: HookKind,
        stanza: Option<&Element>,
        make: impl Fn(Option<&Element>) -> wit::Event,
    ) -> (Verdict, Outcome) {
        let mut outcome = Outcome::default();
        let mut replaced: Option<Element> = None;
        for &i in &self.subscribers[kind as usize] {
            let plugin = &self.plugins[i];
            let event = make(replaced.as_ref().or(stanza));
            let answer =
                plugin.call_hooks(|h, s| h.lilt_plugin_hook_handler().call_handle(s, &event));
            let verdict = match answer {
                Ok((v, effects)) => {
                    outcome.absorb(i, effects);
                    v
                }
                // Fail open: logged and counted by the sandbox.
                Err(_) => continue,
            };
            match verdict {
                wit::Verdict::Pass => {}
                wit::Verdict::Handled => return (Verdict::Handled, outcome),
                wit::Verdict::Reject(r) => {
                    let mut e = StanzaError::from_condition(&r.condition);
                    if let Some(text) = r.text {
                        e = e.with_text(text);
                    }
                    return (Verdict::Reject(e), outcome);
                }
                wit::Verdict::Replace(xml) => match parse_plugin_stanza(&xml) {
                    Ok(el) => replaced = Some(el),
                    Err(error) => tracing::warn!(
                        message = "Plugin's replacement stanza ignored.",
                        plugin = plugin.name(),
                        vhost = %self.vhost,
                        error
                    ),
                },
            }
        }
        (replaced.map_or(Verdict::Pass, Verdict::Replace), outcome)
    }

    /// Run the pre-routing hooks of a stanza a client of this vhost sent. Blocking.
    pub fn run_stanza(&self, kind: Kind, stanza: &Element) -> (Verdict, Outcome) {
        let wrap: fn(String) -> wit::Event = match kind {
            Kind::Message => wit::Event::Message,
            Kind::Presence => wit::Event::Presence,
            Kind::Iq => wit::Event::Iq,
        };
        self.dispatch(HookKind::of_stanza(kind), Some(stanza), |s| {
            wrap(s.map(Element::to_string).unwrap_or_default())
        })
    }

    /// Deliver a MUC event to its subscribers. Blocking.
    pub fn run_muc(&self, event: &MucEvent) -> (Verdict, Outcome) {
        self.dispatch(event.kind(), event.presence(), |p| wit_event(event, p))
    }

    /// Hand a stanza to the plugin owning component `domain`. Blocking.
    pub fn run_component(&self, domain: &str, stanza: &Element) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(&i) = self.components.get(domain) else {
            return outcome;
        };
        let xml = stanza.to_string();
        if let Ok(((), effects)) = self.plugins[i].call_component(|c, s| {
            c.lilt_plugin_component_handler()
                .call_handle_stanza(s, &xml)
        }) {
            outcome.absorb(i, effects);
        }
        outcome
    }

    /// Fire plugin `i`'s timer `tag`. Blocking.
    pub fn run_timer(&self, i: usize, tag: &str) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(plugin) = self.plugins.get(i) else {
            return outcome;
        };
        if let Ok(((), effects)) =
            plugin.call_hooks(|h, s| h.lilt_plugin_hook_handler().call_on_timer(s, tag))
        {
            outcome.absorb(i, effects);
        }
        outcome
    }

    fn identities(&self) -> Vec<ComponentIdentity> {
        self.plugins
            .iter()
            .filter_map(|p| {
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
}

/// Every vhost's hook and component plugins: what the cores query through `Extensions`.
#[derive(Debug, Default, Clone)]
pub struct PluginSet {
    vhosts: HashMap<String, Arc<VhostHooks>>,
    /// Component domain to the vhost whose plugin owns it.
    components: HashMap<String, String>,
    /// Whether any vhost hooks stanzas (kept by `insert_arc` and `remove`; asked per stanza).
    any_stanza_hooks: bool,
}

impl PluginSet {
    /// Add (or replace) a vhost's plugins.
    pub fn insert(&mut self, hooks: VhostHooks) {
        self.insert_arc(Arc::new(hooks));
    }

    /// Add (or replace) a vhost's plugins, shared with its worker.
    pub fn insert_arc(&mut self, hooks: Arc<VhostHooks>) {
        self.components.retain(|_, v| *v != hooks.vhost);
        for domain in hooks.components.keys() {
            self.components.insert(domain.clone(), hooks.vhost.clone());
        }
        self.vhosts.insert(hooks.vhost.clone(), hooks);
        self.any_stanza_hooks = self.vhosts.values().any(|v| v.stanza_hooks);
    }

    /// Drop a vhost's plugins.
    pub fn remove(&mut self, vhost: &str) {
        self.vhosts.remove(vhost);
        self.components.retain(|_, v| v != vhost);
        self.any_stanza_hooks = self.vhosts.values().any(|v| v.stanza_hooks);
    }

    /// A vhost's plugins.
    pub fn get(&self, vhost: &str) -> Option<&Arc<VhostHooks>> {
        self.vhosts.get(vhost)
    }

    /// Every vhost's plugins.
    pub fn vhosts(&self) -> impl Iterator<Item = &Arc<VhostHooks>> {
        self.vhosts.values()
    }

    /// Plugin component domains, each with the vhost whose plugin owns it.
    pub fn components(&self) -> impl Iterator<Item = (&str, &str)> {
        self.components
            .iter()
            .map(|(d, v)| (d.as_str(), v.as_str()))
    }

    /// Whether no plugin is loaded anywhere.
    pub fn is_empty(&self) -> bool {
        self.vhosts.values().all(|v| v.plugins.is_empty())
    }
}

impl Extensions for PluginSet {
    fn any_stanza_hooks(&self) -> bool {
        self.any_stanza_hooks
    }

    fn hooks_stanzas(&self, vhost: &str) -> bool {
        self.vhosts.get(vhost).is_some_and(|v| v.stanza_hooks)
    }

    fn wants(&self, vhost: &str, kind: HookKind) -> bool {
        self.vhosts.get(vhost).is_some_and(|v| v.wants(kind))
    }

    fn owns_component(&self, domain: &str) -> bool {
        self.components.contains_key(domain)
    }

    fn identities(&self, vhost: &str) -> Vec<ComponentIdentity> {
        self.vhosts
            .get(vhost)
            .map(|v| v.identities())
            .unwrap_or_default()
    }
}
