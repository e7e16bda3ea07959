//! The session registry and stanza routing (RFC 6120 §10, RFC 6121 §8.5), plus the stanzas the
//! server answers itself (XEP-0030 disco, XEP-0199 ping, XEP-0092 version).
//!
//! What the server answers on an account's behalf (RFC 6121 §8.5): ping, disco#info and
//! disco#items (no node) to the bare JID of an account that exists; anything else to a bare
//! JID, and every iq to an account that does not exist or to a full JID with no session, is
//! `service-unavailable`. An account exists while one of its sessions is bound (anonymous and
//! token logins exist only then); otherwise the router asks the shell (`AccountLookup`, the
//! vhost's auth plugin `user-exists`) and answers once `account_checked` brings the reply.
//!
//! Core (sans-IO): `Router` maps JIDs to endpoint ids and turns one stanza into the list of
//! deliveries it causes; the router task (runtime/router_task.rs) owns the only instance and
//! maps endpoint ids to mailboxes. A peer's stanza arrives with its addresses parsed
//! (`stanza::Stanza`, from the stream cores) and goes on so to another shard, a MUC service or
//! the focus; an `Element` the router is handed (a server reply, a room's or the focus's
//! stanza, a plugin's) is parsed once where it comes in (`route`). Invariants: a full JID is
//! bound to at most one session; a bare-JID message reaches only available resources with the
//! highest non-negative priority; errors are never answered with errors; no stanza leaves for
//! a domain we do not serve (no s2s yet: `remote-server-not-found`). Tests: `mod tests` in
//! router/tests.rs; end to end in tests/all/.

use std::collections::{BTreeSet, HashMap, VecDeque};

use std::sync::Arc;

use crate::entropy::{self, Entropy};
use crate::focus::{BridgeRequest, Focus, FocusConfig, LocalTransport};
use crate::hooks::{Ask, Extensions, NoExtensions, PluginCall, Verdict};
use crate::identity::Identity;
use crate::muc::{MucConfig, MucService, Routed};
use crate::stanza::{
    self, BadAddress, Condition, ErrorType, Jid, Kind, Outbound, Stanza, StanzaError,
};
use crate::xml::{Element, ns};

mod drive;
pub mod extdisco;

pub use drive::{Input, Output};

/// Identifies a session or component connection inside the router.
pub type EndpointId = u64;

/// One stanza to hand to one endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Receiving endpoint.
    pub to: EndpointId,
    /// The stanza, in `jabber:client` form.
    pub stanza: Outbound,
}

/// Where one router sits among the shards that share the routing work. Each shard owns the
/// sessions whose bare JID hashes to it and the MUC rooms (with their conferences) whose room
/// JID hashes to it (`shard_of`); a stanza for something another shard owns leaves as a
/// `Forward` to that shard. One shard (`Shard::ALONE`) owns everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's index, below `count`.
    pub index: usize,
    /// How many shards share the routing.
    pub count: usize,
}

impl Shard {
    /// The only shard.
    pub const ALONE: Shard = Shard { index: 0, count: 1 };
}

/// The shard that owns the bare JID `bare` (`node@domain` or `domain`, as written by
/// `Jid`'s `Display`) among `count`: FNV-1a over its bytes, the same in every shard and
/// every process.
pub fn shard_of(bare: &str, count: usize) -> usize {
    shard_of_parts(&[bare.as_bytes()], count)
}

fn shard_of_parts(parts: &[&[u8]], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h % count as u64) as usize
}

/// The shard owning `jid`'s bare JID, without building its string.
pub fn shard_of_jid(jid: &Jid, count: usize) -> usize {
    match jid.node() {
        Some(node) => shard_of_parts(&[node.as_bytes(), b"@", jid.domain().as_bytes()], count),
        None => shard_of_parts(&[jid.domain().as_bytes()], count),
    }
}

/// What one shard hands to another (`Router::take_forwards`).
#[derive(Debug)]
pub enum Forward {
    /// A stanza for the shard that owns its destination, to be routed there
    /// (`Router::route_forwarded`); the sender's shard already ran its hooks and its own
    /// bookkeeping (directed presence).
    Route {
        /// The stanza, its addresses parsed.
        stanza: Stanza,
        /// Plugin hops behind it.
        depth: u8,
    },
    /// Stanzas (a MUC broadcast, serialized once) for sessions the receiving shard owns, by
    /// full JID (`Router::deliver_forwarded`).
    Deliver(Vec<(Jid, Outbound)>),
}

#[derive(Debug)]
struct Session {
    id: EndpointId,
    available: bool,
    priority: i8,
    /// Full or bare JIDs this resource sent directed available presence to.
    directed: BTreeSet<Jid>,
}

/// What the server says about itself on disco#info.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Software name for XEP-0092.
    pub name: String,
    /// Software version for XEP-0092.
    pub version: String,
    /// Configured component domains, listed by disco#items on their parent vhost whether or
    /// not they are connected right now (as Prosody lists its components).
    pub components: Vec<String>,
}

/// Who may resume a session (XEP-0198 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResumeOwner {
    /// The same account.
    Account(Jid),
    /// Any anonymous login on this vhost.
    Anonymous(String),
}

impl ResumeOwner {
    fn of(bare: &Jid, anonymous: bool) -> ResumeOwner {
        if anonymous {
            ResumeOwner::Anonymous(bare.domain().to_owned())
        } else {
            ResumeOwner::Account(bare.clone())
        }
    }
}

/// A resumption id claimed by `Router::claim_resumption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumption {
    /// The session to take over.
    pub endpoint: EndpointId,
    /// Whether the session may be resumed again with the same id after this (false for a
    /// single-use anonymous id: the resumed session must end when its transport does).
    pub keep_resumable: bool,
}

/// At most this many hops of plugin-sent stanzas reaching further plugin components.
const MAX_PLUGIN_DEPTH: u8 = 8;

/// Account lookups the shell may have in flight; an iq beyond this is refused with
/// `resource-constraint` instead of queueing more auth plugin calls.
pub const MAX_ACCOUNT_LOOKUPS: usize = 256;

/// Most recipients of directed available presence one session is remembered for (each gets
/// its unavailable presence when the session ends); a presence that would add one more is
/// refused with `resource-constraint`. A Jitsi client directs presence to its room or two.
pub const MAX_DIRECTED: usize = 1024;

/// A question for the shell (RFC 6121 §8.5.1): does `username` have an account on `vhost`?
/// The shell asks the vhost's auth plugin and hands `stanza` back to `Router::account_checked`
/// with the answer (a failed call counts as "no").
#[derive(Debug)]
pub struct AccountLookup {
    /// The vhost.
    pub vhost: String,
    /// The account's localpart.
    pub username: String,
    /// The iq waiting for the answer.
    pub stanza: Element,
}

/// The routing table.
pub struct Router {
    info: ServerInfo,
    vhosts: BTreeSet<String>,
    sessions: HashMap<Jid, Session>,
    resources: HashMap<Jid, Vec<String>>,
    components: HashMap<String, EndpointId>,
    resumable: HashMap<String, (EndpointId, ResumeOwner)>,
    mucs: HashMap<String, MucService>,
    /// Conference focuses by vhost.
    focuses: HashMap<String, Focus>,
    /// The vhost of each domain a focus answers on (`focus.DOMAIN`, and its own JID's domain).
    focus_domains: HashMap<String, String>,
    /// Requests for the SFU, drained by `take_bridge`.
    bridge: VecDeque<(String, BridgeRequest)>,
    /// Stanzas for a focus, handled once the input that caused them is fully routed: the
    /// focus reacts to a join it sees only after the joiner got its own presence.
    focus_inbox: std::collections::VecDeque<(String, Stanza)>,
    /// How deep inside routing entry points we are (the inbox drains at 0).
    nesting: u32,
    ext: Arc<dyn Extensions>,
    /// Where generated resources and resumption ids come from.
    entropy: Arc<dyn Entropy>,
    /// Plugin calls for the shell to make, drained by `take_calls`.
    calls: VecDeque<PluginCall>,
    /// Plugin hops behind the stanza being routed (0 for a peer's stanza).
    depth: u8,
    now_ms: u64,
    /// The STUN/TURN server vhosts advertise (XEP-0215), if any.
    extdisco: Option<Arc<extdisco::ExtDiscoConfig>>,
    /// Account lookups for the shell, drained by `take_account_lookups`.
    lookups: VecDeque<AccountLookup>,
    /// Lookups handed out and not yet answered through `account_checked`.
    lookups_in_flight: usize,
    /// Which part of the routing this router owns.
    shard: Shard,
    /// Stanzas for other shards, drained by `take_forwards`.
    forwards: VecDeque<(usize, Forward)>,
    /// Deliveries for `poll_output`.
    out_deliveries: VecDeque<Delivery>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("sessions", &self.sessions.len())
            .field("components", &self.components.len())
            .field("mucs", &self.mucs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router for these vhost domains.
    pub fn new(
        info: ServerInfo,
        vhosts: impl IntoIterator<Item = String>,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Router {
            info,
            vhosts: vhosts.into_iter().collect(),
            sessions: HashMap::new(),
            resources: HashMap::new(),
            components: HashMap::new(),
            resumable: HashMap::new(),
            mucs: HashMap::new(),
            focuses: HashMap::new(),
            focus_domains: HashMap::new(),
            bridge: VecDeque::new(),
            focus_inbox: std::collections::VecDeque::new(),
            nesting: 0,
            ext: Arc::new(NoExtensions),
            entropy,
            calls: VecDeque::new(),
            depth: 0,
            now_ms: 0,
            extdisco: None,
            lookups: VecDeque::new(),
            lookups_in_flight: 0,
            shard: Shard::ALONE,
            forwards: VecDeque::new(),
            out_deliveries: VecDeque::new(),
        }
    }

    /// Own only `shard`'s part of the routing (before any input).
    pub fn set_shard(&mut self, shard: Shard) {
        self.shard = shard;
    }

    /// This router's shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// What the last inputs left for other shards, by shard index (tests; the shell drains
    /// `poll_output`, which yields them in this order).
    #[cfg(test)]
    pub(crate) fn take_forwards(&mut self) -> Vec<(usize, Forward)> {
        std::mem::take(&mut self.forwards).into()
    }

    /// Route a stanza another shard forwarded here because this shard owns its destination.
    pub(crate) fn route_forwarded(&mut self, stanza: Stanza, depth: u8) -> Vec<Delivery> {
        self.depth = depth;
        let out = self.route_parsed(stanza);
        self.depth = 0;
        out
    }

    /// Deliver what another shard's MUC broadcast to sessions this shard owns; a JID with no
    /// session here is routed as an ordinary stanza (it bounces to its room).
    pub(crate) fn deliver_forwarded(&mut self, items: Vec<(Jid, Outbound)>) -> Vec<Delivery> {
        self.outermost(|r| {
            let mut out = Vec::with_capacity(items.len());
            for (jid, stanza) in items {
                match r.sessions.get(&jid) {
                    Some(s) => out.push(Delivery { to: s.id, stanza }),
                    None => out.extend(r.route_one(stanza.into_element())),
                }
            }
            out
        })
    }

    /// Another shard bound `full`: remember what its auth plugin said, for the rooms here.
    pub(crate) fn remember_identity(&mut self, full: &Jid, identity: Option<Arc<Identity>>) {
        for muc in self.mucs.values_mut() {
            muc.set_identity(full, identity.clone());
        }
    }

    /// A session another shard owned ended: it leaves the rooms this shard owns.
    pub(crate) fn session_gone_elsewhere(&mut self, full: &Jid) -> Vec<Delivery> {
        let mut routed = Vec::new();
        for muc in self.mucs.values_mut() {
            muc.session_gone(full, self.ext.as_ref(), &mut routed);
            muc.forget_identity(full);
        }
        self.outermost(|r| r.apply_routed(routed))
    }

    /// The shard that owns what `stanza` (from `from`, to `to`) is addressed to, when that is
    /// not this one: a MUC room, a conference of the focus, or a local account.
    fn owner_elsewhere(&self, from: &Jid, to: &Jid, stanza: &Element) -> Option<usize> {
        if self.shard.count <= 1 {
            return None;
        }
        let owner = if to.node().is_some() && self.mucs.contains_key(to.domain()) {
            shard_of_jid(to, self.shard.count)
        } else if self.focus_domains.contains_key(to.domain()) {
            // The focus's part of a conference lives beside its room: what the room relays
            // comes from the room's JID, a request names its room.
            if from.node().is_some() && self.mucs.contains_key(from.domain()) {
                shard_of_jid(from, self.shard.count)
            } else {
                shard_of_jid(&crate::focus::room_of(stanza)?, self.shard.count)
            }
        } else if to.node().is_some() && self.vhosts.contains(to.domain()) {
            shard_of_jid(to, self.shard.count)
        } else {
            return None;
        };
        (owner != self.shard.index).then_some(owner)
    }

    /// The shard owning the session `jid`, when another shard does.
    fn session_elsewhere(&self, jid: &Jid) -> Option<usize> {
        // The focus is in every shard (each holds its own rooms' conferences).
        if self.shard.count <= 1
            || jid.node().is_none()
            || !self.vhosts.contains(jid.domain())
            || self.focus_domains.contains_key(jid.domain())
        {
            return None;
        }
        let owner = shard_of_jid(jid, self.shard.count);
        (owner != self.shard.index).then_some(owner)
    }

    /// Serve a MUC service on its domain.
    pub fn add_muc(&mut self, config: MucConfig) {
        self.mucs.insert(
            config.domain.clone(),
            MucService::new(config, self.entropy.clone()),
        );
    }

    /// Run a conference focus for a vhost (its MUC service is configured with the focus as
    /// `MucConfig::focus`).
    pub fn add_focus(&mut self, config: FocusConfig) {
        let vhost = config.vhost.clone();
        self.focus_domains
            .insert(config.domain.clone(), vhost.clone());
        self.focus_domains
            .insert(config.jid.domain().to_owned(), vhost.clone());
        self.focuses
            .insert(vhost, Focus::new(config, self.entropy.clone()));
    }

    /// Serve another vhost from now on (a configuration reload), with its MUC service and
    /// focus if any.
    pub fn add_vhost(&mut self, domain: &str, muc: Option<MucConfig>, focus: Option<FocusConfig>) {
        self.vhosts.insert(domain.to_owned());
        if let Some(m) = muc {
            self.add_muc(m);
        }
        if let Some(f) = focus {
            self.add_focus(f);
        }
    }

    /// Answer XEP-0215 external service discovery with this STUN/TURN server (`None`: no
    /// vhost does).
    pub fn set_extdisco(&mut self, config: Option<Arc<extdisco::ExtDiscoConfig>>) {
        self.extdisco = config;
    }

    /// The TURN config when `vhost` answers external service discovery.
    fn extdisco_for(&self, vhost: &str) -> Option<&Arc<extdisco::ExtDiscoConfig>> {
        self.extdisco.as_ref().filter(|c| c.serves(vhost))
    }

    /// What the focuses asked of the SFU, by vhost, since the last call (tests; the shell
    /// drains `poll_output`).
    #[cfg(test)]
    pub(crate) fn take_bridge(&mut self) -> Vec<(String, BridgeRequest)> {
        std::mem::take(&mut self.bridge).into()
    }

    /// The SFU's answer to a `BridgeRequest::Allocate` of `vhost`'s focus.
    pub(crate) fn bridge_allocated(
        &mut self,
        vhost: &str,
        conference: &str,
        endpoint: &str,
        transport: Result<LocalTransport, String>,
    ) -> Vec<Delivery> {
        let Some(focus) = self.focuses.get_mut(vhost) else {
            return Vec::new();
        };
        let out = focus.allocated(conference, endpoint, transport);
        self.outermost(|r| r.apply_focus(vhost, out))
    }

    /// Run `f` as a routing entry point: when it is the outermost one, the focus inbox is
    /// drained after it, and its deliveries follow `f`'s.
    fn outermost(&mut self, f: impl FnOnce(&mut Router) -> Vec<Delivery>) -> Vec<Delivery> {
        self.nesting += 1;
        let mut out = f(self);
        if self.nesting == 1 {
            while let Some((vhost, stanza)) = self.focus_inbox.pop_front() {
                out.extend(self.route_focus(&vhost, stanza));
            }
        }
        self.nesting -= 1;
        out
    }

    fn route_focus(&mut self, vhost: &str, stanza: Stanza) -> Vec<Delivery> {
        let Some(focus) = self.focuses.get_mut(vhost) else {
            return Vec::new();
        };
        if !stanza.to().is_some_and(|to| focus.owns(to)) {
            return match Kind::of(stanza.element()) {
                Some(Kind::Presence) | None => Vec::new(),
                Some(_) => self.bounce(stanza.element(), StanzaError::service_unavailable()),
            };
        }
        let out = focus.handle(&stanza);
        self.apply_focus(vhost, out)
    }

    fn apply_focus(&mut self, vhost: &str, out: crate::focus::FocusOutput) -> Vec<Delivery> {
        self.bridge
            .extend(out.bridge.into_iter().map(|r| (vhost.to_owned(), r)));
        let mut deliveries = Vec::new();
        for el in out.stanzas {
            deliveries.extend(self.route(el));
        }
        deliveries
    }

    /// Stop serving a vhost (a configuration reload): its MUC services and rooms go, and the
    /// endpoints of its sessions are returned so that the shell can close them (`host-gone`).
    /// Their later `unbind`s find nothing and are ignored.
    pub fn remove_vhost(&mut self, domain: &str) -> Vec<EndpointId> {
        self.vhosts.remove(domain);
        self.mucs.retain(|_, m| m.vhost() != domain);
        self.focuses.remove(domain);
        self.focus_domains.retain(|_, v| v != domain);
        let gone: Vec<Jid> = self
            .sessions
            .keys()
            .filter(|j| j.domain() == domain)
            .cloned()
            .collect();
        let mut ids = Vec::new();
        for full in gone {
            if let Some(s) = self.sessions.remove(&full) {
                self.resumable.retain(|_, (sid, _)| *sid != s.id);
                ids.push(s.id);
            }
        }
        self.resources.retain(|bare, _| bare.domain() != domain);
        ids
    }

    /// Let plugins hook into routing, MUC events and component domains (replacing what was
    /// there: calls already handed out are still answered through `resume_*`).
    pub fn set_extensions(&mut self, ext: Arc<dyn Extensions>) {
        self.ext = ext;
    }

    /// The plugin calls the last inputs caused (tests; the shell drains `poll_output`). A `Stanza` call is
    /// answered with `resume_stanza`, a `Muc` call with an `ask` with `resume_muc`; stanzas
    /// plugins send come back through `route_from_plugin`.
    #[cfg(test)]
    pub(crate) fn take_calls(&mut self) -> Vec<PluginCall> {
        std::mem::take(&mut self.calls).into()
    }

    /// The account lookups the last inputs caused (tests; the shell drains `poll_output` and
    /// answers with `Input::AccountChecked`).
    #[cfg(test)]
    pub(crate) fn take_account_lookups(&mut self) -> Vec<AccountLookup> {
        std::mem::take(&mut self.lookups).into()
    }

    /// The shell's answer to an `AccountLookup`: the iq it carried is answered on the
    /// account's behalf if the account exists (or a session of it was bound meanwhile), and
    /// refused with `service-unavailable` otherwise (RFC 6121 §8.5.1).
    pub(crate) fn account_checked(&mut self, stanza: Element, exists: bool) -> Vec<Delivery> {
        self.lookups_in_flight = self.lookups_in_flight.saturating_sub(1);
        let bare = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .map(|t| t.bare());
        let exists = bare.is_some_and(|b| {
            self.vhosts.contains(b.domain()) && (exists || self.resources.contains_key(&b))
        });
        self.outermost(|r| {
            if exists {
                r.answer_iq(stanza, false)
            } else {
                r.bounce(&stanza, StanzaError::service_unavailable())
            }
        })
    }

    /// The wall clock, in milliseconds since the Unix epoch, for what the router stamps
    /// (room creation times). The owner task sets it before each command.
    pub fn set_clock(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// MUC rooms and occupants, over every service.
    pub fn muc_counts(&self) -> (usize, usize) {
        self.mucs.values().fold((0, 0), |(r, o), m| {
            let (mr, mo) = m.counts();
            (r + mr, o + mo)
        })
    }

    /// Route a stanza a client or component sent. When the sender's vhost hooks stanzas, it
    /// leaves as a `PluginCall::Stanza` instead and is routed by `resume_stanza`.
    pub fn route_inbound(&mut self, stanza: Stanza) -> Vec<Delivery> {
        if !self.ext.any_stanza_hooks() {
            return self.route_parsed(stanza);
        }
        let Some(kind) = Kind::of(stanza.element()) else {
            return Vec::new();
        };
        let from = stanza.from();
        let vhost = self.vhost_of(from.domain()).unwrap_or(from.domain());
        if !self.ext.hooks_stanzas(vhost) {
            return self.route_parsed(stanza);
        }
        // The plugin sees (and may replace) the element; the stanza travels with the call, so
        // a `Pass` routes it as parsed here and only a replacement is parsed again
        // (`resume_stanza`).
        let vhost = vhost.to_owned();
        self.calls.push_back(PluginCall::Stanza {
            vhost,
            kind,
            stanza,
        });
        Vec::new()
    }

    /// The pre-routing hooks' verdict on `stanza` (from a `PluginCall::Stanza`).
    pub(crate) fn resume_stanza(&mut self, stanza: Stanza, verdict: Verdict) -> Vec<Delivery> {
        match verdict {
            Verdict::Pass => self.route_parsed(stanza),
            Verdict::Handled => Vec::new(),
            Verdict::Reject(e) => self.bounce(stanza.element(), e),
            Verdict::Replace(mut other) => {
                // A hook may rewrite a stanza, never its sender.
                if let Some(from) = stanza.element().attr("from") {
                    other.set_attr("from", from);
                }
                self.route(other)
            }
        }
    }

    /// The verdict on a parked MUC join (from a `PluginCall::Muc` with `ask`).
    pub(crate) fn resume_muc(&mut self, ask: &Ask, verdict: Verdict) -> Vec<Delivery> {
        let Some(muc) = self.mucs.get_mut(&ask.service) else {
            return Vec::new();
        };
        let routed = muc.resume(ask.token, verdict, self.now_ms, self.ext.as_ref());
        self.outermost(|r| r.apply_routed(routed))
    }

    /// Route a stanza a plugin sent (its `from` checked by the plugin host), `depth` plugin
    /// hops after the peer's stanza that caused it; beyond `MAX_PLUGIN_DEPTH` it is dropped,
    /// so two plugins answering each other cannot loop.
    pub(crate) fn route_from_plugin(&mut self, stanza: Element, depth: u8) -> Vec<Delivery> {
        if depth > MAX_PLUGIN_DEPTH {
            tracing::warn!(
                message = "Plugins kept answering each other; stanza dropped.",
                depth
            );
            return Vec::new();
        }
        self.depth = depth;
        let out = self.route(stanza);
        self.depth = 0;
        out
    }

    /// The vhost a domain belongs to: itself, or the nearest parent that is a vhost.
    fn vhost_of<'a>(&self, domain: &'a str) -> Option<&'a str> {
        let mut rest = domain;
        loop {
            if self.vhosts.contains(rest) {
                return Some(rest);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    fn route_muc(&mut self, domain: &str, stanza: Stanza) -> Vec<Delivery> {
        let Some(muc) = self.mucs.get_mut(domain) else {
            return Vec::new();
        };
        let routed = muc.handle(stanza, self.now_ms, self.ext.as_ref());
        self.apply_routed(routed)
    }

    fn apply_routed(&mut self, routed: Vec<Routed>) -> Vec<Delivery> {
        let mut out = Vec::new();
        for r in routed {
            match r {
                Routed::Stanza(el) => out.extend(self.route(el)),
                Routed::Fanout(shared, to) => {
                    let mut remote: Vec<(usize, Vec<(Jid, Outbound)>)> = Vec::new();
                    for jid in to {
                        let stanza = Outbound::Shared(shared.clone(), jid.to_string().into());
                        if let Some(s) = self.sessions.get(&jid) {
                            out.push(Delivery { to: s.id, stanza });
                        } else if let Some(owner) = self.session_elsewhere(&jid) {
                            match remote.iter_mut().find(|(o, _)| *o == owner) {
                                Some((_, items)) => items.push((jid, stanza)),
                                None => remote.push((owner, vec![(jid, stanza)])),
                            }
                        } else {
                            out.extend(self.route(stanza.into_element()));
                        }
                    }
                    self.forwards.extend(
                        remote
                            .into_iter()
                            .map(|(owner, items)| (owner, Forward::Deliver(items))),
                    );
                }
                Routed::Call(call) => self.calls.push_back(call),
            }
        }
        out
    }

    /// Number of bound sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Bind a resource for `bare` (RFC 6120 §7). A missing resource is generated. When the
    /// resource is taken, the old session is replaced (returned so it can be told `conflict`).
    ///
    /// # Errors
    /// `bad-request` for a resource that is not a valid resourcepart.
    pub fn bind(
        &mut self,
        bare: &Jid,
        resource: Option<&str>,
        id: EndpointId,
        identity: Option<Arc<Identity>>,
    ) -> Result<(Jid, Option<EndpointId>), StanzaError> {
        let full = match resource {
            Some(r) => bare
                .with_resource(r)
                .map_err(|_| StanzaError::new(ErrorType::Modify, Condition::BadRequest))?,
            None => loop {
                let r = entropy::uuid(self.entropy.as_ref()).simple().to_string()[..12].to_owned();
                let candidate = bare
                    .with_resource(&r)
                    .map_err(|_| StanzaError::new(ErrorType::Modify, Condition::BadRequest))?;
                if !self.sessions.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        let replaced = self.sessions.remove(&full).map(|old| {
            self.resumable.retain(|_, (sid, _)| *sid != old.id);
            old.id
        });
        self.sessions.insert(
            full.clone(),
            Session {
                id,
                available: false,
                priority: 0,
                directed: BTreeSet::new(),
            },
        );
        for muc in self.mucs.values_mut() {
            muc.set_identity(&full, identity.clone());
        }
        let list = self.resources.entry(full.bare()).or_default();
        if let Some(r) = full.resource()
            && !list.iter().any(|x| x == r)
        {
            list.push(r.to_owned());
        }
        Ok((full, replaced))
    }

    /// Whether `full` is bound here to endpoint `id`.
    pub fn is_bound(&self, full: &Jid, id: EndpointId) -> bool {
        self.sessions.get(full).is_some_and(|s| s.id == id)
    }

    /// Remove a session for good; returns the unavailable presences this causes (RFC 6121
    /// §4.5.2: to the user's other resources and to every directed-presence recipient).
    pub fn unbind(&mut self, full: &Jid, id: EndpointId) -> Vec<Delivery> {
        if self.sessions.get(full).is_none_or(|s| s.id != id) {
            return Vec::new();
        }
        let Some(session) = self.sessions.remove(full) else {
            return Vec::new();
        };
        self.resumable.retain(|_, (sid, _)| *sid != id);
        let mut routed = Vec::new();
        for muc in self.mucs.values_mut() {
            muc.session_gone(full, self.ext.as_ref(), &mut routed);
            muc.forget_identity(full);
        }
        let mut left = self.outermost(|r| r.apply_routed(routed));
        let bare = full.bare();
        if let Some(list) = self.resources.get_mut(&bare) {
            list.retain(|r| Some(r.as_str()) != full.resource());
            if list.is_empty() {
                self.resources.remove(&bare);
            }
        }
        let mut out = Vec::new();
        if session.available || !session.directed.is_empty() {
            let unavailable = |to: &Jid| {
                Element::builder("presence", ns::CLIENT)
                    .attr("type", "unavailable")
                    .attr("from", full.to_string())
                    .attr("to", to.to_string())
                    .build()
            };
            if session.available {
                for other in self.other_available(full) {
                    out.extend(self.route(unavailable(&other)));
                }
            }
            for target in &session.directed {
                out.extend(self.route(unavailable(target)));
            }
        }
        left.extend(out);
        left
    }

    /// Register a connected component for `domain`; returns the connection it replaces.
    pub fn add_component(&mut self, domain: &str, id: EndpointId) -> Option<EndpointId> {
        self.components.insert(domain.to_owned(), id)
    }

    /// Forget a component connection (only if it is still the registered one).
    pub fn remove_component(&mut self, domain: &str, id: EndpointId) {
        if self.components.get(domain) == Some(&id) {
            self.components.remove(domain);
        }
    }

    /// Remember that session `id` (bound as `full`) may be resumed with a new random id.
    pub fn enable_resumption(&mut self, full: &Jid, id: EndpointId, anonymous: bool) -> String {
        let token = entropy::uuid(self.entropy.as_ref()).simple().to_string();
        self.resumable.insert(
            token.clone(),
            (id, ResumeOwner::of(&full.bare(), anonymous)),
        );
        token
    }

    /// Claim the session a resumption id stands for, if `bare` may take it over: the same
    /// account, or any anonymous login on the same vhost (an anonymous client gets a new random
    /// JID on every login, so the unguessable id is what proves it is the same client).
    ///
    /// An account's id stays valid for later resumptions (without the account's credentials it
    /// is worthless). An anonymous session's id is a bearer token, and XEP-0198 has no way to
    /// hand out a new one (`<resumed/>` carries only `previd` and `h`; SM cannot be enabled
    /// twice on a stream), while clients put it in their reconnection URL (lib-jitsi-meet's
    /// `?previd=`), where proxies log it. So it is single-use: claiming it forgets it, and the
    /// resumed session must stop being resumable (`Resumption::keep_resumable` is false);
    /// an id read from a log is already spent.
    pub fn claim_resumption(
        &mut self,
        token: &str,
        bare: &Jid,
        anonymous: bool,
    ) -> Option<Resumption> {
        let asker = ResumeOwner::of(bare, anonymous);
        let (id, owner) = self
            .resumable
            .get(token)
            .filter(|(_, o)| *o == asker)?
            .clone();
        let keep_resumable = match owner {
            ResumeOwner::Account(_) => true,
            ResumeOwner::Anonymous(_) => {
                self.resumable.remove(token);
                false
            }
        };
        Some(Resumption {
            endpoint: id,
            keep_resumable,
        })
    }

    /// Route one stanza whose `from` the sending endpoint has already stamped and checked,
    /// parsing its addresses (a stanza the server, a MUC service, the focus or a plugin made:
    /// what a peer sent arrives parsed, through `route_inbound`).
    pub fn route(&mut self, stanza: Element) -> Vec<Delivery> {
        self.outermost(|r| r.route_one(stanza))
    }

    /// Route one stanza whose addresses are already parsed.
    fn route_parsed(&mut self, stanza: Stanza) -> Vec<Delivery> {
        self.outermost(|r| match Kind::of(stanza.element()) {
            Some(kind) => r.route_stanza(kind, stanza),
            None => Vec::new(),
        })
    }

    fn route_one(&mut self, stanza: Element) -> Vec<Delivery> {
        let Some(kind) = Kind::of(&stanza) else {
            return Vec::new();
        };
        match Stanza::parse(stanza) {
            Ok(stanza) => self.route_stanza(kind, stanza),
            Err((_, BadAddress::From)) => Vec::new(),
            Err((stanza, BadAddress::To)) => self.bounce(
                &stanza,
                StanzaError::new(ErrorType::Modify, Condition::JidMalformed),
            ),
        }
    }

    fn route_stanza(&mut self, kind: Kind, parsed: Stanza) -> Vec<Delivery> {
        let Some(to) = parsed.to().cloned() else {
            let (stanza, from, _) = parsed.into_parts();
            return match kind {
                Kind::Presence => self.broadcast_presence(&from, stanza),
                // RFC 6121 §8.5.3 / RFC 6120 §10.3.3: no 'to' means the sender's account.
                _ => {
                    let mut stanza = stanza;
                    stanza.set_attr("to", from.bare().to_string());
                    self.deliver_to_bare(kind, &from.bare(), stanza)
                }
            };
        };
        let from = parsed.from();
        if kind == Kind::Presence && !self.track_directed(from, &to, parsed.element()) {
            return self.bounce(
                parsed.element(),
                StanzaError::new(ErrorType::Wait, Condition::ResourceConstraint)
                    .with_text("Too many directed presences; send unavailable to some first."),
            );
        }
        if let Some(owner) = self.owner_elsewhere(from, &to, parsed.element()) {
            self.forwards.push_back((
                owner,
                Forward::Route {
                    stanza: parsed,
                    depth: self.depth,
                },
            ));
            return Vec::new();
        }
        if self.mucs.contains_key(to.domain()) {
            return self.route_muc(to.domain(), parsed);
        }
        if let Some(vhost) = self.focus_domains.get(to.domain()) {
            self.focus_inbox.push_back((vhost.clone(), parsed));
            return Vec::new();
        }
        let stanza = parsed.into_element();
        if self.ext.owns_component(to.domain()) {
            self.calls.push_back(PluginCall::Component {
                domain: to.domain().to_owned(),
                stanza,
                depth: self.depth + 1,
            });
            return Vec::new();
        }
        if let Some(component) = self.component_for(to.domain()) {
            return vec![Delivery {
                to: component,
                stanza: stanza.into(),
            }];
        }
        if !self.vhosts.contains(to.domain()) {
            return match kind {
                Kind::Presence => Vec::new(),
                _ => self.bounce(
                    &stanza,
                    StanzaError::new(ErrorType::Cancel, Condition::RemoteServerNotFound),
                ),
            };
        }
        if to.node().is_none() {
            return self.answer_server(kind, stanza);
        }
        if to.is_bare() {
            return self.deliver_to_bare(kind, &to, stanza);
        }
        match self.sessions.get(&to) {
            Some(s) => vec![Delivery {
                to: s.id,
                stanza: stanza.into(),
            }],
            None => match kind {
                // RFC 6121 §8.5.3.2.1: no such resource, a message goes to the bare JID.
                Kind::Message if !matches!(stanza.attr("type"), Some("groupchat" | "error")) => {
                    self.deliver_to_bare(kind, &to.bare(), stanza)
                }
                Kind::Presence => Vec::new(),
                _ => self.bounce(&stanza, StanzaError::service_unavailable()),
            },
        }
    }

    fn component_for(&self, domain: &str) -> Option<EndpointId> {
        if let Some(id) = self.components.get(domain) {
            return Some(*id);
        }
        // A subdomain of a component's domain belongs to it (XEP-0114 §3).
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(id) = self.components.get(parent) {
                return Some(*id);
            }
            rest = parent;
        }
        None
    }

    fn bounce(&mut self, stanza: &Element, error: StanzaError) -> Vec<Delivery> {
        match stanza::error_reply(stanza, &error) {
            Some(reply) => self.route(reply),
            None => Vec::new(),
        }
    }

    /// Remember (or forget) a directed presence; false when the session already holds
    /// `MAX_DIRECTED` recipients and this would add one (the presence is refused).
    fn track_directed(&mut self, from: &Jid, to: &Jid, stanza: &Element) -> bool {
        let Some(session) = self.sessions.get_mut(from) else {
            return true;
        };
        match stanza.attr("type") {
            None => {
                if session.directed.len() >= MAX_DIRECTED && !session.directed.contains(to) {
                    return false;
                }
                session.directed.insert(to.clone());
            }
            Some("unavailable") => {
                session.directed.remove(to);
            }
            _ => {}
        }
        true
    }

    fn broadcast_presence(&mut self, from: &Jid, stanza: Element) -> Vec<Delivery> {
        let available = match stanza.attr("type") {
            None => true,
            Some("unavailable") => false,
            _ => return Vec::new(),
        };
        let directed = match self.sessions.get_mut(from) {
            Some(s) => {
                s.available = available;
                s.priority = stanza
                    .get_child("priority", ns::CLIENT)
                    .and_then(|p| p.text().trim().parse::<i8>().ok())
                    .unwrap_or(0);
                if available {
                    Vec::new()
                } else {
                    std::mem::take(&mut s.directed).into_iter().collect()
                }
            }
            None => return Vec::new(),
        };
        let mut out = Vec::new();
        for other in self.other_available(from) {
            if let Some(s) = self.sessions.get(&other) {
                let mut copy = stanza.clone();
                copy.set_attr("to", other.to_string());
                out.push(Delivery {
                    to: s.id,
                    stanza: copy.into(),
                });
            }
        }
        for target in directed {
            let mut copy = stanza.clone();
            copy.set_attr("to", target.to_string());
            out.extend(self.route(copy));
        }
        out
    }

    fn other_available(&self, full: &Jid) -> Vec<Jid> {
        let bare = full.bare();
        self.resources
            .get(&bare)
            .into_iter()
            .flatten()
            .filter(|r| Some(r.as_str()) != full.resource())
            .filter_map(|r| bare.with_resource(r).ok())
            .filter(|j| self.sessions.get(j).is_some_and(|s| s.available))
            .collect()
    }

    /// RFC 6121 §8.5.2: a stanza to a local bare JID.
    fn deliver_to_bare(&mut self, kind: Kind, bare: &Jid, stanza: Element) -> Vec<Delivery> {
        match kind {
            Kind::Message => {
                let mtype = stanza.attr("type").unwrap_or("normal");
                let targets = self.best_resources(bare);
                if targets.is_empty() || mtype == "groupchat" {
                    return match mtype {
                        "headline" | "error" => Vec::new(),
                        // No offline storage: tell the sender (RFC 6121 §8.5.2.2.1).
                        _ => self.bounce(&stanza, StanzaError::service_unavailable()),
                    };
                }
                targets
                    .into_iter()
                    .map(|to| Delivery {
                        to,
                        stanza: stanza.clone().into(),
                    })
                    .collect()
            }
            Kind::Presence => {
                // No rosters yet: directed presence to a bare JID reaches its available resources.
                self.available_ids(bare)
                    .into_iter()
                    .map(|to| Delivery {
                        to,
                        stanza: stanza.clone().into(),
                    })
                    .collect()
            }
            // A bound session proves the account exists; otherwise ask, but only when the
            // answer matters: every other iq is `service-unavailable` either way.
            Kind::Iq if self.resources.contains_key(bare) => self.answer_iq(stanza, false),
            Kind::Iq => {
                if !matches!(stanza.attr("type"), Some("get" | "set")) {
                    return Vec::new();
                }
                if !answered_for_account(&stanza) {
                    return self.bounce(&stanza, StanzaError::service_unavailable());
                }
                if self.lookups_in_flight >= MAX_ACCOUNT_LOOKUPS {
                    return self.bounce(
                        &stanza,
                        StanzaError::new(ErrorType::Wait, Condition::ResourceConstraint),
                    );
                }
                let (Some(username), vhost) = (bare.node(), bare.domain()) else {
                    return self.bounce(&stanza, StanzaError::service_unavailable());
                };
                self.lookups_in_flight += 1;
                self.lookups.push_back(AccountLookup {
                    vhost: vhost.to_owned(),
                    username: username.to_owned(),
                    stanza,
                });
                Vec::new()
            }
        }
    }

    fn best_resources(&self, bare: &Jid) -> Vec<EndpointId> {
        let sessions: Vec<&Session> = self
            .resources
            .get(bare)
            .into_iter()
            .flatten()
            .filter_map(|r| bare.with_resource(r).ok())
            .filter_map(|j| self.sessions.get(&j))
            .filter(|s| s.available && s.priority >= 0)
            .collect();
        let Some(top) = sessions.iter().map(|s| s.priority).max() else {
            return Vec::new();
        };
        sessions
            .into_iter()
            .filter(|s| s.priority == top)
            .map(|s| s.id)
            .collect()
    }

    fn available_ids(&self, bare: &Jid) -> Vec<EndpointId> {
        self.resources
            .get(bare)
            .into_iter()
            .flatten()
            .filter_map(|r| bare.with_resource(r).ok())
            .filter_map(|j| self.sessions.get(&j))
            .filter(|s| s.available)
            .map(|s| s.id)
            .collect()
    }

    fn answer_server(&mut self, kind: Kind, stanza: Element) -> Vec<Delivery> {
        match kind {
            Kind::Iq => self.answer_iq(stanza, true),
            // Messages and presence to the server itself have no consumer.
            _ => Vec::new(),
        }
    }

    /// Answer an iq addressed to the server (`server == true`) or to an account's bare JID.
    fn answer_iq(&mut self, iq: Element, server: bool) -> Vec<Delivery> {
        let itype = iq.attr("type").unwrap_or("");
        if itype != "get" && itype != "set" {
            return Vec::new();
        }
        let payload = iq.children().next().cloned();
        let Some(payload) = payload.filter(|_| iq.children().count() == 1) else {
            return self.bounce(
                &iq,
                StanzaError::new(ErrorType::Modify, Condition::BadRequest),
            );
        };
        let reply = match (itype, payload.name(), payload.ns()) {
            ("get", "ping", ns::PING) => Some(stanza::iq_result(&iq)),
            ("get", "query", ns::DISCO_INFO) if payload.attr("node").is_none() => {
                Some(self.disco_info(&iq, server))
            }
            ("get", "query", ns::DISCO_ITEMS) if payload.attr("node").is_none() => {
                Some(self.disco_items(&iq, server))
            }
            ("get", _, _) if server && extdisco::is_query(&payload) => {
                let vhost = iq.attr("to").and_then(|t| Jid::parse(t).ok());
                let vhost = vhost.as_ref().map_or("", Jid::domain);
                let from = iq.attr("from").and_then(|f| Jid::parse(f).ok());
                let Some(config) = self.extdisco_for(vhost).cloned() else {
                    return self.bounce(&iq, StanzaError::service_unavailable());
                };
                // Credentials only for clients bound here (XEP-0215 §4: the server decides
                // who is entitled); components and plugins are refused.
                let Some(from) = from.filter(|f| self.sessions.contains_key(f)) else {
                    return self
                        .bounce(&iq, StanzaError::new(ErrorType::Auth, Condition::Forbidden));
                };
                match extdisco::answer(&config, &iq, &from, self.now_ms) {
                    Ok(reply) => Some(reply),
                    Err(e) => return self.bounce(&iq, e),
                }
            }
            ("get", "query", ns::VERSION) if server => {
                let mut reply = stanza::iq_result(&iq);
                let mut query = Element::new("query", ns::VERSION);
                for (name, value) in [
                    ("name", self.info.name.clone()),
                    ("version", self.info.version.clone()),
                ] {
                    let mut el = Element::new(name, ns::VERSION);
                    el.append_text(&value);
                    query.append_child(el);
                }
                reply.append_child(query);
                Some(reply)
            }
            _ => None,
        };
        match reply {
            Some(reply) => self.route(reply),
            None => self.bounce(&iq, StanzaError::service_unavailable()),
        }
    }

    fn disco_info(&self, iq: &Element, server: bool) -> Element {
        let mut reply = stanza::iq_result(iq);
        let mut query = Element::new("query", ns::DISCO_INFO);
        let (category, itype, name) = if server {
            ("server", "im", self.info.name.as_str())
        } else {
            ("account", "registered", "")
        };
        let mut identity = Element::builder("identity", ns::DISCO_INFO)
            .attr("category", category)
            .attr("type", itype)
            .build();
        if !name.is_empty() {
            identity.set_attr("name", name);
        }
        query.append_child(identity);
        if server {
            // Jitsi clients find plugin components (speakerstats, conference duration) by
            // the identities of their vhost (where Jitsi clients look for them).
            let vhost = iq.attr("to").unwrap_or("");
            for id in self.ext.identities(vhost) {
                query.append_child(
                    Element::builder("identity", ns::DISCO_INFO)
                        .attr("category", id.category)
                        .attr("type", id.kind)
                        .attr("name", id.domain)
                        .build(),
                );
            }
        }
        let mut features = vec![ns::DISCO_INFO, ns::DISCO_ITEMS, ns::PING];
        if server {
            features.push(ns::VERSION);
            if self.extdisco_for(iq.attr("to").unwrap_or("")).is_some() {
                features.push(extdisco::NS);
            }
        }
        for f in features {
            query.append_child(
                Element::builder("feature", ns::DISCO_INFO)
                    .attr("var", f)
                    .build(),
            );
        }
        reply.append_child(query);
        reply
    }

    fn disco_items(&self, iq: &Element, server: bool) -> Element {
        let mut reply = stanza::iq_result(iq);
        let mut query = Element::new("query", ns::DISCO_ITEMS);
        if server {
            let domain = iq.attr("to").unwrap_or("");
            let suffix = format!(".{domain}");
            let mut items: Vec<&String> = self
                .info
                .components
                .iter()
                .chain(self.components.keys())
                .chain(self.mucs.keys())
                .filter(|c| c.ends_with(&suffix))
                .collect();
            items.sort();
            items.dedup();
            for c in items {
                query.append_child(
                    Element::builder("item", ns::DISCO_ITEMS)
                        .attr("jid", c.as_str())
                        .build(),
                );
            }
        }
        reply.append_child(query);
        reply
    }
}

/// Whether the server answers this iq on behalf of an existing account (RFC 6121 §8.5.2.1.3:
/// "where the semantics of the namespace define a reply the server can provide"): a ping, or
/// disco#info / disco#items without a node, as the only child of a `get`.
fn answered_for_account(iq: &Element) -> bool {
    let mut children = iq.children();
    let (Some(payload), None) = (children.next(), children.next()) else {
        return false;
    };
    iq.attr("type") == Some("get")
        && match (payload.name(), payload.ns()) {
            ("ping", ns::PING) => true,
            ("query", ns::DISCO_INFO | ns::DISCO_ITEMS) => payload.attr("node").is_none(),
            _ => false,
        }
}

#[cfg(test)]
mod tests;
