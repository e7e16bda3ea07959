//! The extension points policy plugs into: pre-routing stanza hooks, MUC events, and
//! plugin-owned component domains, as seen by the sans-IO cores.
//!
//! Core (pure types and one trait). The router and the MUC service call `Extensions`; the
//! shell implements it with WebAssembly plugins (plugin/hooks.rs), the cores' tests with
//! `NoExtensions` or small fakes. Invariants: a verdict only ever affects the stanza or event
//! it was given; stanzas plugins send are collected and routed by the caller after the call
//! returns (no re-entrancy). Tests: router/tests.rs, muc/tests.rs, tests/all/hooks.rs.

use std::time::Instant;

use crate::stanza::{Jid, Kind, StanzaError};
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

/// A MUC event.
#[derive(Debug, Clone, Copy)]
pub enum MucEvent<'a> {
    /// A room is about to be created by `creator`; `Reject` refuses the join that creates it.
    RoomPreCreate {
        /// The room to be.
        room: &'a RoomInfo,
        /// Who is creating it.
        creator: &'a Jid,
    },
    /// A room was created (its first occupant is admitted; `OccupantJoined` follows).
    RoomCreated(&'a RoomInfo),
    /// A room was destroyed.
    RoomDestroyed(&'a RoomInfo),
    /// Someone is about to join; `Reject` refuses, `Replace` substitutes the join presence.
    OccupantPreJoin {
        /// The room.
        room: &'a RoomInfo,
        /// The occupant to be.
        occupant: &'a OccupantInfo,
        /// The join presence (with `from`, `to` and its extensions).
        presence: &'a Element,
    },
    /// Someone joined.
    OccupantJoined {
        /// The room.
        room: &'a RoomInfo,
        /// The occupant.
        occupant: &'a OccupantInfo,
        /// The presence the room broadcast for them.
        presence: &'a Element,
    },
    /// Someone left (or was removed).
    OccupantLeft {
        /// The room.
        room: &'a RoomInfo,
        /// The occupant.
        occupant: &'a OccupantInfo,
        /// Their last presence.
        presence: &'a Element,
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

/// What the router and the MUC service can call out to.
pub trait Extensions: Send {
    /// Whether any stanza hook exists: when not, the router skips `stanza` (the hot path).
    fn hooks_stanzas(&self) -> bool {
        true
    }
    /// Pre-routing hook for a stanza a client or component sent; `vhost` is the sender's.
    fn stanza(&mut self, vhost: &str, kind: Kind, stanza: &Element) -> Verdict;
    /// A MUC event on a service belonging to `vhost`.
    fn muc(&mut self, vhost: &str, event: &MucEvent<'_>) -> Verdict;
    /// Whether a plugin owns `domain` as a component.
    fn owns_component(&self, domain: &str) -> bool;
    /// Hand a stanza to the plugin owning `domain`.
    fn component(&mut self, domain: &str, stanza: &Element);
    /// Identities of plugin components under `vhost`, for its disco#info.
    fn identities(&self, vhost: &str) -> Vec<ComponentIdentity>;
    /// Stanzas plugins sent during the calls so far, to be routed by the caller.
    fn take_sent(&mut self) -> Vec<Element>;
    /// When the earliest plugin timer is due.
    fn next_timer(&self) -> Option<Instant>;
    /// Run the plugin timers due at `now`.
    fn fire_timers(&mut self, now: Instant);
}

/// No plugins: every hook passes and no domain is a plugin component.
#[derive(Debug, Default)]
pub struct NoExtensions;

impl Extensions for NoExtensions {
    fn hooks_stanzas(&self) -> bool {
        false
    }
    fn stanza(&mut self, _: &str, _: Kind, _: &Element) -> Verdict {
        Verdict::Pass
    }
    fn muc(&mut self, _: &str, _: &MucEvent<'_>) -> Verdict {
        Verdict::Pass
    }
    fn owns_component(&self, _: &str) -> bool {
        false
    }
    fn component(&mut self, _: &str, _: &Element) {}
    fn identities(&self, _: &str) -> Vec<ComponentIdentity> {
        Vec::new()
    }
    fn take_sent(&mut self) -> Vec<Element> {
        Vec::new()
    }
    fn next_timer(&self) -> Option<Instant> {
        None
    }
    fn fire_timers(&mut self, _: Instant) {}
}
