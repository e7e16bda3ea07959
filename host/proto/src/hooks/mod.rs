//! The extension points policy plugs into, as the sans-IO cores see them: which hooks a vhost's
//! plugins subscribe to (`Extensions`, a read-only query), and the plugin calls the cores ask
//! their shell to make (`PluginCall`), answered later with a `Verdict`.
//!
//! Core (pure types and one trait). The router and the MUC service never call a plugin: they
//! emit a `PluginCall`, and where a decision is needed (pre-routing stanza hooks, room
//! pre-create, occupant pre-join) they park the stanza until the shell feeds the verdict back
//! (`Router::resume_stanza`, `Router::resume_muc`). The shell runs the calls on a per-vhost
//! worker (runtime/plugin_worker.rs), so a slow or broken plugin delays only its own vhost.
//! Invariants: a verdict only ever affects the stanza or event it was asked about; stanzas
//! plugins send come back as separate input; nothing here blocks. Tests: router/tests.rs,
//! muc/tests.rs, tests/all/hooks.rs, tests/all/isolation.rs.

use crate::stanza::{Jid, Kind, Stanza, StanzaError};
use crate::xml::Element;

/// What a hook decided about a stanza or event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Carry on as if the hook was not there.
    Pass,
    /// The hook dealt with it; the host drops the stanza silently.
    Handled,
    /// Refuse it with this stanza error.
    Reject(StanzaError),
    /// Carry on with this stanza instead.
    Replace(Element),
}

/// The kinds of event a plugin subscribes to, in the WIT `event-kind` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    /// A message stanza (pre-routing).
    Message,
    /// A presence stanza (pre-routing).
    Presence,
    /// An iq stanza (pre-routing).
    Iq,
    /// A room is about to be created (may refuse).
    RoomPreCreate,
    /// A room was created.
    RoomCreated,
    /// A room was destroyed.
    RoomDestroyed,
    /// Someone is about to join (may refuse or replace the presence).
    OccupantPreJoin,
    /// Someone joined.
    OccupantJoined,
    /// Someone left.
    OccupantLeft,
}

impl HookKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [HookKind; 9] = [
        HookKind::Message,
        HookKind::Presence,
        HookKind::Iq,
        HookKind::RoomPreCreate,
        HookKind::RoomCreated,
        HookKind::RoomDestroyed,
        HookKind::OccupantPreJoin,
        HookKind::OccupantJoined,
        HookKind::OccupantLeft,
    ];

    /// The pre-routing kind of a stanza kind.
    pub fn of_stanza(kind: Kind) -> HookKind {
        match kind {
            Kind::Message => HookKind::Message,
            Kind::Presence => HookKind::Presence,
            Kind::Iq => HookKind::Iq,
        }
    }
}

/// A room, as hooks see it.
#[derive(Debug, Clone)]
pub struct RoomInfo {
    /// The room's bare JID.
    pub jid: Jid,
    /// The meeting id (a UUID, as jitsi-meet's mod_muc_meeting_id).
    pub meeting_id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Occupants right now.
    pub occupants: u32,
}

/// An occupant, as hooks see it.
#[derive(Debug, Clone)]
pub struct OccupantInfo {
    /// Nickname (the occupant JID's resource).
    pub nick: String,
    /// Real full JID.
    pub jid: Jid,
    /// `moderator`, `participant` or `visitor`.
    pub role: &'static str,
    /// `owner`, `admin`, `member` or `none`.
    pub affiliation: &'static str,
}

/// A MUC event, owned so that it can travel to the vhost's plugin worker.
#[derive(Debug, Clone)]
pub enum MucEvent {
    /// A room is about to be created by `creator`; `Reject` refuses the join that creates it.
    RoomPreCreate {
        /// The room to be.
        room: RoomInfo,
        /// Who is creating it.
        creator: Jid,
    },
    /// A room was created (its first occupant is admitted; `OccupantJoined` follows).
    RoomCreated(RoomInfo),
    /// A room was destroyed.
    RoomDestroyed(RoomInfo),
    /// Someone is about to join; `Reject` refuses, `Replace` substitutes the join presence.
    OccupantPreJoin {
        /// The room.
        room: RoomInfo,
        /// The occupant to be.
        occupant: OccupantInfo,
        /// The join presence (with `from`, `to` and its extensions).
        presence: Element,
    },
    /// Someone joined.
    OccupantJoined {
        /// The room.
        room: RoomInfo,
        /// The occupant.
        occupant: OccupantInfo,
        /// The presence the room broadcast for them.
        presence: Element,
    },
    /// Someone left (or was removed).
    OccupantLeft {
        /// The room.
        room: RoomInfo,
        /// The occupant.
        occupant: OccupantInfo,
        /// Their last presence.
        presence: Element,
    },
}

impl MucEvent {
    /// The subscription kind this event is delivered to.
    pub fn kind(&self) -> HookKind {
        match self {
            MucEvent::RoomPreCreate { .. } => HookKind::RoomPreCreate,
            MucEvent::RoomCreated(_) => HookKind::RoomCreated,
            MucEvent::RoomDestroyed(_) => HookKind::RoomDestroyed,
            MucEvent::OccupantPreJoin { .. } => HookKind::OccupantPreJoin,
            MucEvent::OccupantJoined { .. } => HookKind::OccupantJoined,
            MucEvent::OccupantLeft { .. } => HookKind::OccupantLeft,
        }
    }

    /// The presence the event carries, if any.
    pub fn presence(&self) -> Option<&Element> {
        match self {
            MucEvent::OccupantPreJoin { presence, .. }
            | MucEvent::OccupantJoined { presence, .. }
            | MucEvent::OccupantLeft { presence, .. } => Some(presence),
            _ => None,
        }
    }
}

/// Where a MUC verdict goes back to: the service and its parked join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The MUC service's domain.
    pub service: String,
    /// The room's bare JID (the routing shard that parked the join owns it).
    pub room: String,
    /// The parked join's token within that service.
    pub token: u64,
}

/// A call the cores ask the shell to make to a vhost's plugins.
#[derive(Debug)]
pub enum PluginCall {
    /// Run the pre-routing hooks of the sender's vhost over a stanza; the answer goes to
    /// `Router::resume_stanza` with this same stanza.
    Stanza {
        /// The sender's vhost.
        vhost: String,
        /// The stanza's kind.
        kind: Kind,
        /// The stanza as the sender sent it (`from` checked, addresses parsed: a `Pass`
        /// verdict routes it without parsing them again).
        stanza: Stanza,
    },
    /// Deliver a MUC event to the vhost's subscribers. With `ask`, the core waits for the
    /// verdict (`Router::resume_muc`); without, it is a notification.
    Muc {
        /// The vhost the service belongs to.
        vhost: String,
        /// The event.
        event: Box<MucEvent>,
        /// Where the verdict goes, for pre-events.
        ask: Option<Ask>,
    },
    /// A stanza for a plugin-owned component domain.
    Component {
        /// The component's domain.
        domain: String,
        /// The stanza.
        stanza: Element,
        /// How many plugin-to-plugin hops led here (bounded by the router).
        depth: u8,
    },
}

/// A disco identity a plugin component advertises on its vhost (XEP-0030), e.g.
/// `component/speakerstats` named `speakerstats.meet.example.com`, as Jitsi clients expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentIdentity {
    /// Identity category.
    pub category: String,
    /// Identity type.
    pub kind: String,
    /// The component's domain (the identity's name).
    pub domain: String,
}

/// What the cores may ask about the loaded plugins: subscriptions and component domains.
/// Read-only; the shell swaps the whole object when plugins change.
pub trait Extensions: Send + Sync + std::fmt::Debug {
    /// Whether any plugin of any vhost hooks stanzas: when not, the router routes every
    /// stanza directly, without even reading its sender (the hot path).
    fn any_stanza_hooks(&self) -> bool;
    /// Whether any plugin of `vhost` hooks message, presence or iq stanzas.
    fn hooks_stanzas(&self, vhost: &str) -> bool;
    /// Whether any plugin of `vhost` subscribes to `kind`.
    fn wants(&self, vhost: &str, kind: HookKind) -> bool;
    /// Whether a plugin owns `domain` as a component.
    fn owns_component(&self, domain: &str) -> bool;
    /// Identities of plugin components under `vhost`, for its disco#info.
    fn identities(&self, vhost: &str) -> Vec<ComponentIdentity>;
}

/// No plugins: nothing is hooked and no domain is a plugin component.
#[derive(Debug, Default)]
pub struct NoExtensions;

impl Extensions for NoExtensions {
    fn any_stanza_hooks(&self) -> bool {
        false
    }
    fn hooks_stanzas(&self, _: &str) -> bool {
        false
    }
    fn wants(&self, _: &str, _: HookKind) -> bool {
        false
    }
    fn owns_component(&self, _: &str) -> bool {
        false
    }
    fn identities(&self, _: &str) -> Vec<ComponentIdentity> {
        Vec::new()
    }
}
