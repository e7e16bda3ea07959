//! Multi-user chat (XEP-0045) with Jitsi's conventions: one `MucService` per MUC domain owns
//! its rooms; a stanza addressed to the domain goes in, the stanzas it causes come out.
//!
//! Core (sans-IO: time comes in as `now_ms`; plugin hooks go out as `Routed::Call` and their
//! verdicts come back through `resume`). Rooms are
//! non-anonymous (every occupant item carries the real `jid`, as lib-jitsi-meet requires),
//! unlocked on creation unless configured, and destroyed when the last occupant leaves unless
//! persistent. Broadcasts are serialized once (`Routed::Fanout`). Owner/admin/disco iqs live in
//! muc/admin.rs. Invariants: an occupant JID maps to exactly one real full JID; the joiner
//! always receives every other occupant's presence before its own 110 self-presence; an error
//! stanza is never answered. A join that waits for a pre-create or pre-join verdict is
//! parked, and what the same sender sends to that room meanwhile waits behind it, so the order
//! of a sender's stanzas holds. What one client can make the service hold is bounded
//! (muc/limits.rs: rooms per session, user and service, presence size, disco#items pages);
//! the membership index there names each session's rooms, so a session's end visits only
//! those. Tests: muc/tests.rs; end to end tests/all/muc.rs.

mod admin;
mod limits;
mod shared;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use crate::entropy::{self, Entropy};
use crate::hooks::{
    Ask, Extensions, HookKind, MucEvent, OccupantInfo, PluginCall, RoomInfo, Verdict,
};
use crate::identity::{IDENTITY_ELEMENT, Identity};
use crate::stanza::{self, Condition, ErrorType, Jid, Shared, Stanza, StanzaError};
use crate::xml::{Element, ns};

use limits::Membership;
pub use limits::MucLimits;
pub use shared::ServiceView;

/// Settings of one MUC service.
#[derive(Debug, Clone)]
pub struct MucConfig {
    /// The service's domain, e.g. `conference.meet.example.com`.
    pub domain: String,
    /// The vhost it belongs to (whose hook plugins see its events).
    pub vhost: String,
    /// New rooms stay locked until their owner submits the configuration (XEP-0045 §10.1.2).
    pub lock_new_rooms: bool,
    /// Rooms are destroyed when their last occupant leaves (unless configured persistent).
    pub destroy_when_empty: bool,
    /// Vhost domains whose users may create rooms; empty means anyone (the secure-domain
    /// setting: `["meet.example.com"]` lets guests join existing rooms but not create them).
    pub room_creators: Vec<String>,
    /// Bare JIDs that are owners of every room (e.g. the focus).
    pub admins: Vec<Jid>,
    /// Default occupant limit of new rooms (0: none).
    pub max_occupants: u32,
    /// The conference focus of this service's vhost, when it has one: it is in every room
    /// before anyone else (Jicofo's room lock), and no one else may take its nick.
    pub focus: Option<FocusOccupant>,
    /// Room counts, presence size and disco paging bounds.
    pub limits: MucLimits,
    /// What every routing shard serving this service shares (counts for the limits, the
    /// public room list); clones of one config share it.
    pub view: Arc<ServiceView>,
}

/// How the focus joins a room.
#[derive(Debug, Clone)]
pub struct FocusOccupant {
    /// Its real full JID (`focus@auth.DOMAIN/focus`); an owner of every room.
    pub jid: Jid,
    /// Its nick: `focus`, which lib-jitsi-meet requires.
    pub nick: String,
    /// The presence payload it joins with (conference properties).
    pub presence: Element,
}

/// What the service asks its caller to do.
#[derive(Debug)]
pub enum Routed {
    /// Route this stanza normally.
    Stanza(Element),
    /// Deliver this shared stanza to each of these real JIDs.
    Fanout(Shared, Vec<Jid>),
    /// Hand this call to the vhost's plugins (a `Muc` call with `ask` parks a join).
    Call(PluginCall),
}

/// Joins one service may hold parked at once; beyond that a join is refused with
/// `resource-constraint` (the vhost's plugins are not keeping up).
const MAX_PARKED: usize = 10_000;
/// Stanzas one parked join may hold back; beyond that they are refused.
const MAX_QUEUED: usize = 64;

/// Pre-events a join already passed.
#[derive(Debug, Clone, Default)]
struct Approvals {
    /// `room-pre-create` passed.
    pre_create: bool,
    /// The meeting id the room to be created was announced with.
    meeting_id: Option<String>,
    /// `occupant-pre-join` passed, with the presence a plugin replaced the join's with.
    pre_join: Option<Option<Element>>,
}

/// A join waiting for a plugin's verdict.
#[derive(Debug)]
struct Parked {
    key: String,
    from: Jid,
    nick: String,
    stanza: Element,
    approved: Approvals,
    waiting: HookKind,
    /// Stanzas from the same sender to the same room that arrived meanwhile.
    queued: Vec<Stanza>,
}

/// XEP-0045 roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Removed.
    None,
    /// May not speak in a moderated room.
    Visitor,
    /// Ordinary occupant.
    Participant,
    /// May kick and give voice.
    Moderator,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "none" => Role::None,
            "visitor" => Role::Visitor,
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            _ => return None,
        })
    }
}

/// XEP-0045 affiliations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Affiliation {
    /// Banned.
    Outcast,
    /// No affiliation.
    None,
    /// Member (may enter members-only rooms).
    Member,
    /// Admin.
    Admin,
    /// Owner.
    Owner,
}

impl Affiliation {
    fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "admin" => Affiliation::Admin,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }
}

/// A room's owner-settable configuration (muc#roomconfig).
#[derive(Debug, Clone, Default)]
struct RoomConfig {
    name: String,
    persistent: bool,
    public: bool,
    members_only: bool,
    moderated: bool,
    password: Option<String>,
    max_occupants: u32,
    change_subject: bool,
}

#[derive(Debug, Clone)]
struct Occupant {
    nick: String,
    real: Jid,
    role: Role,
    /// The latest presence payload: the client's children minus the MUC join `<x/>`.
    presence: Element,
}

#[derive(Debug)]
struct Room {
    jid: Jid,
    meeting_id: String,
    created_ms: u64,
    config: RoomConfig,
    locked: bool,
    occupants: Vec<Occupant>,
    affiliations: HashMap<Jid, Affiliation>,
    subject: Option<(String, String)>,
}

/// One MUC service.
#[derive(Debug)]
pub struct MucService {
    config: MucConfig,
    /// Where meeting ids come from.
    entropy: Arc<dyn Entropy>,
    rooms: HashMap<String, Room>,
    parked: HashMap<u64, Parked>,
    /// Parked joins by sender, then room.
    parked_by: HashMap<Jid, HashMap<String, u64>>,
    /// Which rooms each session is in (kept on every join and removal).
    members: Membership,
    next_token: u64,
    /// What the vhost's auth plugin said about its sessions, by full JID (kept by the router:
    /// `set_identity` at bind, `forget_identity` when the session ends). Sessions without one
    /// follow the service's own rules.
    identities: HashMap<Jid, Arc<Identity>>,
}

fn err(kind: ErrorType, condition: Condition) -> StanzaError {
    StanzaError::new(kind, condition)
}

/// The refusal when the vhost's plugins are not keeping up.
fn busy() -> StanzaError {
    err(ErrorType::Wait, Condition::ResourceConstraint)
        .with_text("The room's plugins are busy; try again shortly.")
}

/// Tell the vhost's subscribers about `event` (built only when someone subscribes).
pub(super) fn notify(
    ext: &dyn Extensions,
    vhost: &str,
    out: &mut Vec<Routed>,
    kind: HookKind,
    event: impl FnOnce() -> MucEvent,
) {
    if ext.wants(vhost, kind) {
        out.push(Routed::Call(PluginCall::Muc {
            vhost: vhost.to_owned(),
            event: Box::new(event()),
            ask: None,
        }));
    }
}

impl MucService {
    /// A service with no rooms.
    pub fn new(config: MucConfig, entropy: Arc<dyn Entropy>) -> Self {
        MucService {
            members: Membership::new(config.view.clone()),
            config,
            entropy,
            rooms: HashMap::new(),
            parked: HashMap::new(),
            parked_by: HashMap::new(),
            next_token: 1,
            identities: HashMap::new(),
        }
    }

    /// Record what the auth plugin said about the session `full` (on this service's vhost;
    /// sessions of other vhosts are not this service's to judge).
    pub fn set_identity(&mut self, full: &Jid, identity: Option<Arc<Identity>>) {
        if full.domain() != self.config.vhost {
            return;
        }
        match identity {
            Some(i) => {
                self.identities.insert(full.clone(), i);
            }
            None => {
                self.identities.remove(full);
            }
        }
    }

    /// The session `full` ended.
    pub fn forget_identity(&mut self, full: &Jid) {
        self.identities.remove(full);
    }

    /// `stanza` with any `<identity/>` the client put in removed and the one its auth plugin
    /// gave it added: nobody can claim another user's card.
    fn with_identity_card(&self, stanza: &Element, from: &Jid) -> Option<Element> {
        let card = self.identities.get(from).and_then(|i| i.presence_element());
        let claims = stanza
            .children()
            .any(|c| c.name() == IDENTITY_ELEMENT && c.ns() == ns::CLIENT);
        if card.is_none() && !claims {
            return None;
        }
        let mut p = stanza.clone();
        p.remove_children(IDENTITY_ELEMENT, ns::CLIENT);
        if let Some(card) = card {
            p.append_child(card);
        }
        Some(p)
    }

    /// The service's domain.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// The vhost the service belongs to.
    pub fn vhost(&self) -> &str {
        &self.config.vhost
    }

    /// Rooms and occupants right now.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.rooms.len(),
            self.rooms.values().map(|r| r.occupants.len()).sum(),
        )
    }

    /// Handle one stanza addressed to this service's domain (`from` already checked; its
    /// addresses parsed by whoever let it in).
    pub fn handle(&mut self, parsed: Stanza, now_ms: u64, ext: &dyn Extensions) -> Vec<Routed> {
        let mut out = Vec::new();
        let Some(to) = parsed.to() else {
            return out;
        };
        if let Some(key) = to.node()
            && let Some(token) = self.parked_by.get(parsed.from()).and_then(|m| m.get(key))
            && let Some(parked) = self.parked.get_mut(token)
        {
            // Behind a parked join: keep the sender's order.
            if parked.queued.len() < MAX_QUEUED {
                parked.queued.push(parsed);
            } else if let Some(reply) = stanza::error_reply(parsed.element(), &busy()) {
                out.push(Routed::Stanza(reply));
            }
            return out;
        }
        let (stanza, from, to) = parsed.into_parts();
        let Some(to) = to else {
            return out;
        };
        let result = match (stanza.name(), to.node()) {
            (_, None) => self.to_service(&stanza, &mut out),
            ("presence", Some(_)) => self.presence(&stanza, &from, &to, now_ms, ext, &mut out),
            ("message", Some(_)) => self.message(&stanza, &from, &to, &mut out),
            ("iq", Some(_)) => self.iq(&stanza, &from, &to, ext, &mut out),
            _ => Ok(()),
        };
        if let Err(e) = result
            && let Some(reply) = stanza::error_reply(&stanza, &e)
        {
            out.push(Routed::Stanza(reply));
        }
        out
    }

    /// `handle` for an element whose addresses are not parsed yet (tests): one that does not
    /// parse is dropped, as `handle` drops one without `to`.
    #[cfg(test)]
    pub(crate) fn handle_element(
        &mut self,
        stanza: Element,
        now_ms: u64,
        ext: &dyn Extensions,
    ) -> Vec<Routed> {
        match Stanza::parse(stanza) {
            Ok(parsed) => self.handle(parsed, now_ms, ext),
            Err(_) => Vec::new(),
        }
    }

    /// Forget the parked join of `from` to room `key`.
    fn unpark(&mut self, from: &Jid, key: &str) {
        if let Some(m) = self.parked_by.get_mut(from) {
            m.remove(key);
            if m.is_empty() {
                self.parked_by.remove(from);
            }
        }
    }

    /// Remove room `key` and every index entry that names it.
    fn drop_room(&mut self, key: &str) -> Option<Room> {
        self.config.view.set_public(key, None);
        let room = self.rooms.remove(key)?;
        self.config.view.room(false);
        for o in &room.occupants {
            self.members.remove(&o.real, key);
        }
        Some(room)
    }

    /// Whether `real` is an occupant of room `key`.
    fn has_occupant(&self, key: &str, real: &Jid) -> bool {
        self.rooms
            .get(key)
            .is_some_and(|r| r.occupants.iter().any(|o| &o.real == real))
    }

    /// A session ended: it leaves every room it was in.
    /// Only its own rooms and parked joins are looked at (the membership index), not every
    /// room of the service.
    pub fn session_gone(&mut self, real: &Jid, ext: &dyn Extensions, out: &mut Vec<Routed>) {
        for (_, token) in self.parked_by.remove(real).unwrap_or_default() {
            self.parked.remove(&token);
        }
        let mut rooms = self.members.rooms_of(real);
        // In a stable order, so that what the others see does not depend on hashing.
        rooms.sort();
        for key in rooms {
            let unavailable = Element::builder("presence", ns::CLIENT)
                .attr("type", "unavailable")
                .build();
            self.leave(&key, real, unavailable, &[], ext, out);
        }
    }

    fn to_service(&self, stanza: &Element, out: &mut Vec<Routed>) -> Result<(), StanzaError> {
        if stanza.name() != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
            return if stanza.name() == "iq" || stanza.name() == "presence" {
                Ok(())
            } else {
                Err(StanzaError::service_unavailable())
            };
        }
        let reply = admin::service_iq(self, stanza)?;
        out.push(Routed::Stanza(reply));
        Ok(())
    }

    fn presence(
        &mut self,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        now_ms: u64,
        ext: &dyn Extensions,
        out: &mut Vec<Routed>,
    ) -> Result<(), StanzaError> {
        let key = to.node().unwrap_or_default().to_owned();
        let current = self
            .rooms
            .get(&key)
            .and_then(|r| r.occupants.iter().find(|o| &o.real == from))
            .map(|o| o.nick.clone());
        match stanza.attr("type") {
            None => {}
            Some("unavailable" | "error") => {
                if current.is_some() {
                    let payload = payload_of(stanza);
                    self.leave(&key, from, payload, &[], ext, out);
                }
                return Ok(());
            }
            // Subscriptions and probes mean nothing to a room.
            Some(_) => return Ok(()),
        }
        let Some(nick) = to.resource().map(str::to_owned) else {
            return Err(err(ErrorType::Modify, Condition::JidMalformed)
                .with_text("A nickname is required."));
        };
        let carded = self.with_identity_card(stanza, from);
        let stanza = carded.as_ref().unwrap_or(stanza);
        // What the room would keep: refused whole when too large, so nothing is stored.
        let payload = payload_of(stanza);
        limits::check_presence(&self.config.limits, &payload)?;
        match current {
            Some(old) if old == nick => {
                self.update_presence(&key, from, payload, out);
                Ok(())
            }
            Some(old) => self.change_nick(&key, &old, &nick, payload, out),
            None => self.join(
                &key,
                from,
                &nick,
                stanza,
                now_ms,
                ext,
                out,
                Approvals::default(),
            ),
        }
    }

    /// Feed back the verdict on a parked join (`ask.token` of a `Routed::Call`), then replay
    /// what its sender sent to the room meanwhile. An unknown token (the sender left) is
    /// ignored.
    pub fn resume(
        &mut self,
        token: u64,
        verdict: Verdict,
        now_ms: u64,
        ext: &dyn Extensions,
    ) -> Vec<Routed> {
        let mut out = Vec::new();
        let Some(p) = self.parked.remove(&token) else {
            return out;
        };
        self.unpark(&p.from, &p.key);
        let mut approved = p.approved;
        let result = match verdict {
            Verdict::Reject(e) => Err(e),
            Verdict::Handled => Ok(()),
            Verdict::Pass | Verdict::Replace(_) => {
                match p.waiting {
                    HookKind::RoomPreCreate => approved.pre_create = true,
                    _ => {
                        approved.pre_join = Some(match verdict {
                            Verdict::Replace(el) => Some(el),
                            _ => None,
                        });
                    }
                }
                self.join(
                    &p.key, &p.from, &p.nick, &p.stanza, now_ms, ext, &mut out, approved,
                )
            }
        };
        let focus_refused =
            result.is_err() && self.config.focus.as_ref().is_some_and(|f| f.jid == p.from);
        if let Err(e) = &result
            && let Some(reply) = stanza::error_reply(&p.stanza, e)
        {
            out.push(Routed::Stanza(reply));
        }
        for q in p.queued {
            match &result {
                // The joins waiting behind a refused focus are refused the same way (replaying
                // them would send the focus to ask again, and again).
                Err(e) if focus_refused => {
                    out.extend(stanza::error_reply(q.element(), e).map(Routed::Stanza))
                }
                _ => out.extend(self.handle(q, now_ms, ext)),
            }
        }
        out
    }

    /// Park a join until the vhost's plugins decide on `event`.
    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        key: &str,
        from: &Jid,
        nick: &str,
        stanza: &Element,
        approved: Approvals,
        event: MucEvent,
        out: &mut Vec<Routed>,
    ) -> Result<(), StanzaError> {
        if self.parked.len() >= MAX_PARKED {
            return Err(busy());
        }
        let token = self.next_token;
        self.next_token += 1;
        self.parked.insert(
            token,
            Parked {
                key: key.to_owned(),
                from: from.clone(),
                nick: nick.to_owned(),
                stanza: stanza.clone(),
                approved,
                waiting: event.kind(),
                queued: Vec::new(),
            },
        );
        self.parked_by
            .entry(from.clone())
            .or_default()
            .insert(key.to_owned(), token);
        out.push(Routed::Call(PluginCall::Muc {
            vhost: self.config.vhost.clone(),
            event: Box::new(event),
            ask: Some(Ask {
                service: self.config.domain.clone(),
                room: format!("{key}@{}", self.config.domain),
                token,
            }),
        }));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        key: &str,
        from: &Jid,
        nick: &str,
        stanza: &Element,
        now_ms: u64,
        ext: &dyn Extensions,
        out: &mut Vec<Routed>,
        mut approved: Approvals,
    ) -> Result<(), StanzaError> {
        let is_focus = self.config.focus.as_ref().is_some_and(|f| f.jid == *from);
        let is_admin = is_focus || self.config.admins.contains(&from.bare());
        let identity = self.identities.get(from).cloned();
        if !is_admin && identity.as_ref().is_some_and(|i| !i.may_join(key)) {
            // mod_token_verification's answer to a room the token does not name.
            return Err(err(ErrorType::Cancel, Condition::NotAllowed)
                .with_text("Room and token mismatched."));
        }
        if !is_admin {
            let parked = self.parked_by.get(from).map_or(0, HashMap::len);
            limits::check_join(&self.config.limits, &self.members, from, parked)?;
        }
        let created = !self.rooms.contains_key(key);
        if created {
            let may_create = is_admin
                || match &identity {
                    // The auth plugin decides for the sessions it identified.
                    Some(i) => i.may_create_rooms,
                    None => {
                        self.config.room_creators.is_empty()
                            || self.config.room_creators.iter().any(|d| d == from.domain())
                    }
                };
            if !may_create {
                return Err(err(ErrorType::Cancel, Condition::NotAllowed).with_text(
                    "Rooms are created by authenticated users; this room does not exist yet.",
                ));
            }
            limits::check_create(&self.config.limits, self.config.view.rooms())?;
        }
        if let Some(focus) = self.config.focus.clone()
            && !is_focus
        {
            if nick == focus.nick {
                return Err(err(ErrorType::Cancel, Condition::Conflict)
                    .with_text("That nickname is reserved for the conference focus."));
            }
            if !self.has_occupant(key, &focus.jid) {
                // Jicofo's lock: the focus joins first, so that every client sees it already
                // in the room. When its join waits for a plugin's verdict, this one waits
                // behind it.
                let mut p = focus.presence.clone();
                p.set_attr("from", focus.jid.to_string());
                p.set_attr("to", format!("{key}@{}/{}", self.config.domain, focus.nick));
                p.append_child(Element::new("x", ns::MUC));
                // Made here, once per room: parsed here.
                if let Ok(p) = Stanza::parse(p) {
                    out.extend(self.handle(p, now_ms, ext));
                }
                if let Some(token) = self.parked_by.get(&focus.jid).and_then(|m| m.get(key))
                    && let Some(parked) = self.parked.get_mut(token)
                {
                    let mut again = stanza.clone();
                    again.set_attr("from", from.to_string());
                    again.set_attr("to", format!("{key}@{}/{nick}", self.config.domain));
                    // Rebuilt here, once per join waiting for the focus: parsed here.
                    if let Ok(again) = Stanza::parse(again) {
                        parked.queued.push(again);
                    }
                    return Ok(());
                }
                if !self.has_occupant(key, &focus.jid) {
                    return Err(err(ErrorType::Wait, Condition::ServiceUnavailable)
                        .with_text("The conference focus could not join this room."));
                }
            }
        }
        let vhost = self.config.vhost.clone();
        // The focus may have created it just now.
        let created = !self.rooms.contains_key(key);
        if created {
            let room_jid = Jid::bare_from(key, &self.config.domain);
            let meeting_id = approved
                .meeting_id
                .get_or_insert_with(|| entropy::uuid(self.entropy.as_ref()).to_string())
                .clone();
            let room = Room {
                jid: room_jid,
                meeting_id,
                created_ms: now_ms,
                config: RoomConfig {
                    name: key.to_owned(),
                    max_occupants: self.config.max_occupants,
                    change_subject: true,
                    ..RoomConfig::default()
                },
                locked: self.config.lock_new_rooms,
                occupants: Vec::new(),
                affiliations: HashMap::from([(from.bare(), Affiliation::Owner)]),
                subject: None,
            };
            if !approved.pre_create && ext.wants(&vhost, HookKind::RoomPreCreate) {
                let event = MucEvent::RoomPreCreate {
                    room: room.info(),
                    creator: from.clone(),
                };
                return self.park(key, from, nick, stanza, approved, event, out);
            }
            self.rooms.insert(key.to_owned(), room);
            self.config.view.room(true);
        }
        let outcome = self.admit(
            key,
            from,
            nick,
            stanza,
            is_admin,
            created,
            ext,
            out,
            &approved.pre_join,
        );
        // A creation whose join failed, waits or was handled by a hook leaves no room behind.
        if created
            && (!matches!(outcome, Ok(None))
                || self.rooms.get(key).is_some_and(|r| r.occupants.is_empty()))
        {
            self.drop_room(key);
        }
        match outcome {
            Ok(Some(event)) => self.park(key, from, nick, stanza, approved, event, out),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        key: &str,
        from: &Jid,
        nick: &str,
        stanza: &Element,
        is_admin: bool,
        created: bool,
        ext: &dyn Extensions,
        out: &mut Vec<Routed>,
        pre_join: &Option<Option<Element>>,
    ) -> Result<Option<MucEvent>, StanzaError> {
        let vhost = self.config.vhost.clone();
        let moderator = self.identities.get(from).is_some_and(|i| i.moderator);
        let Some(room) = self.rooms.get_mut(key) else {
            return Ok(None);
        };
        if moderator && room.affiliation(from) != Affiliation::Owner {
            // The auth plugin made this session a moderator (a token's
            // `context.user.moderator`, a directory group): it owns every room it joins.
            room.affiliations.insert(from.bare(), Affiliation::Owner);
        }
        let affiliation = if is_admin {
            Affiliation::Owner
        } else {
            room.affiliation(from)
        };
        if room.occupants.iter().any(|o| o.nick == nick) {
            return Err(
                err(ErrorType::Cancel, Condition::Conflict).with_text("That nickname is taken.")
            );
        }
        if room.locked && affiliation != Affiliation::Owner {
            return Err(err(ErrorType::Cancel, Condition::ItemNotFound)
                .with_text("The room is locked until its owner configures it."));
        }
        if affiliation == Affiliation::Outcast {
            return Err(err(ErrorType::Auth, Condition::Forbidden)
                .with_text("You are banned from this room."));
        }
        if let Some(password) = &room.config.password
            && affiliation < Affiliation::Admin
        {
            let given = stanza
                .get_child("x", ns::MUC)
                .and_then(|x| x.get_child("password", ns::MUC))
                .map(Element::text);
            // Compared in constant time: the answer must not tell how much of a guess was
            // right.
            let right = given.is_some_and(|g| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    g.as_bytes(),
                    password.as_bytes(),
                ))
            });
            if !right {
                return Err(err(ErrorType::Auth, Condition::NotAuthorized)
                    .with_text("A password is required."));
            }
        }
        if room.config.members_only && affiliation < Affiliation::Member {
            return Err(err(ErrorType::Auth, Condition::RegistrationRequired)
                .with_text("This room is for members only."));
        }
        if room.config.max_occupants > 0
            && room.occupants.len() >= room.config.max_occupants as usize
            && affiliation < Affiliation::Admin
        {
            return Err(
                err(ErrorType::Wait, Condition::ServiceUnavailable).with_text("The room is full.")
            );
        }
        let role = room.default_role(affiliation);
        let mut occupant = Occupant {
            nick: nick.to_owned(),
            real: from.clone(),
            role,
            presence: payload_of(stanza),
        };
        match pre_join {
            None if ext.wants(&vhost, HookKind::OccupantPreJoin) => {
                return Ok(Some(MucEvent::OccupantPreJoin {
                    room: room.info(),
                    occupant: room.occupant_info(&occupant),
                    presence: stanza.clone(),
                }));
            }
            Some(Some(p)) if p.name() == "presence" => occupant.presence = payload_of(p),
            _ => {}
        }
        // 1. Everyone already here, to the joiner.
        for other in &room.occupants {
            let mut p = room.presence_of(other, &[]);
            p.set_attr("to", from.to_string());
            out.push(Routed::Stanza(p));
        }
        // 2. The joiner, to everyone already here.
        let broadcast = room.presence_of(&occupant, &[]);
        let others: Vec<Jid> = room.occupants.iter().map(|o| o.real.clone()).collect();
        if !others.is_empty() {
            out.push(Routed::Fanout(Shared::new(broadcast.clone()), others));
        }
        // 3. The joiner's own presence.
        let mut codes = vec!["100", "110"];
        if created {
            codes.push("201");
        }
        let mut own = room.presence_of(&occupant, &codes);
        own.set_attr("to", from.to_string());
        out.push(Routed::Stanza(own));
        // 4. The subject (XEP-0045 §7.2.15: always, empty when unset).
        let mut subject = Element::builder("message", ns::CLIENT)
            .attr("type", "groupchat")
            .attr("to", from.to_string())
            .build();
        let mut subject_el = Element::new("subject", ns::CLIENT);
        match &room.subject {
            Some((by, text)) => {
                subject.set_attr("from", room.occupant_jid(by));
                subject_el.append_text(text);
            }
            None => subject.set_attr("from", room.jid.to_string()),
        }
        subject.append_child(subject_el);
        out.push(Routed::Stanza(subject));
        let info = room.occupant_info(&occupant);
        room.occupants.push(occupant);
        self.members.add(from, key);
        if created {
            tracing::info!(target: "audit", event = "room_created", vhost = %vhost, room = %room.jid, meeting_id = %room.meeting_id);
            notify(ext, &vhost, out, HookKind::RoomCreated, || {
                MucEvent::RoomCreated(room.info())
            });
        }
        notify(ext, &vhost, out, HookKind::OccupantJoined, || {
            MucEvent::OccupantJoined {
                room: room.info(),
                occupant: info,
                presence: broadcast,
            }
        });
        Ok(None)
    }

    fn update_presence(&mut self, key: &str, from: &Jid, payload: Element, out: &mut Vec<Routed>) {
        let Some(room) = self.rooms.get_mut(key) else {
            return;
        };
        let Some(i) = room.occupants.iter().position(|o| &o.real == from) else {
            return;
        };
        room.occupants[i].presence = payload;
        room.broadcast_presence(i, &[], out);
    }

    fn change_nick(
        &mut self,
        key: &str,
        old: &str,
        new: &str,
        payload: Element,
        out: &mut Vec<Routed>,
    ) -> Result<(), StanzaError> {
        let Some(room) = self.rooms.get_mut(key) else {
            return Ok(());
        };
        if room.occupants.iter().any(|o| o.nick == new) {
            return Err(
                err(ErrorType::Cancel, Condition::Conflict).with_text("That nickname is taken.")
            );
        }
        let Some(i) = room.occupants.iter().position(|o| o.nick == old) else {
            return Ok(());
        };
        // XEP-0045 §7.6: unavailable with 303 and the new nick, then available as the new nick.
        let occupant = room.occupants[i].clone();
        let unavailable = Element::builder("presence", ns::CLIENT)
            .attr("type", "unavailable")
            .build();
        let mut gone = room.presence_with(&occupant, unavailable, &["303"]);
        if let Some(item) = gone
            .get_child_mut("x", ns::MUC_USER)
            .and_then(|x| x.get_child_mut("item", ns::MUC_USER))
        {
            item.set_attr("nick", new);
        }
        room.fanout_with_self(&gone, i, &["110"], out);
        room.occupants[i].nick = new.to_owned();
        room.occupants[i].presence = payload;
        room.broadcast_presence(i, &[], out);
        Ok(())
    }

    /// Remove `real` from room `key`, telling everyone (with `codes`, e.g. 307 for a kick).
    fn leave(
        &mut self,
        key: &str,
        real: &Jid,
        payload: Element,
        codes: &[&str],
        ext: &dyn Extensions,
        out: &mut Vec<Routed>,
    ) {
        let vhost = self.config.vhost.clone();
        let destroy_when_empty = self.config.destroy_when_empty;
        let Some(room) = self.rooms.get_mut(key) else {
            return;
        };
        let Some(i) = room.occupants.iter().position(|o| &o.real == real) else {
            return;
        };
        let mut occupant = room.occupants[i].clone();
        let last = std::mem::replace(&mut occupant.presence, payload);
        occupant.role = Role::None;
        let mut unavailable = occupant.presence.clone();
        unavailable.set_attr("type", "unavailable");
        let gone = room.presence_with(&occupant, unavailable, codes);
        let mut self_codes = vec!["110"];
        self_codes.extend_from_slice(codes);
        room.fanout_with_self(&gone, i, &self_codes, out);
        let info = room.occupant_info(&room.occupants[i]);
        room.occupants.remove(i);
        self.members.remove(real, key);
        notify(ext, &vhost, out, HookKind::OccupantLeft, || {
            MucEvent::OccupantLeft {
                room: room.info(),
                occupant: info,
                presence: last,
            }
        });
        if room.occupants.is_empty() && destroy_when_empty && !room.config.persistent {
            let info = room.info();
            self.drop_room(key);
            tracing::info!(target: "audit", event = "room_destroyed", vhost = %vhost, room = %info.jid, meeting_id = %info.meeting_id);
            notify(ext, &vhost, out, HookKind::RoomDestroyed, || {
                MucEvent::RoomDestroyed(info)
            });
        }
    }

    fn message(
        &mut self,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        out: &mut Vec<Routed>,
    ) -> Result<(), StanzaError> {
        if stanza::is_error(stanza) {
            return Ok(());
        }
        let key = to.node().unwrap_or_default();
        let Some(room) = self.rooms.get_mut(key) else {
            return Err(err(ErrorType::Cancel, Condition::ItemNotFound).with_text("No such room."));
        };
        let Some(sender) = room.occupants.iter().position(|o| &o.real == from) else {
            return Err(err(ErrorType::Modify, Condition::NotAcceptable)
                .with_text("Only occupants may send messages to the room."));
        };
        let groupchat = stanza.attr("type") == Some("groupchat");
        match (to.resource(), groupchat) {
            (None, true) => {
                let occupant = &room.occupants[sender];
                if occupant.role < Role::Participant {
                    return Err(err(ErrorType::Auth, Condition::Forbidden)
                        .with_text("Visitors may not speak in a moderated room."));
                }
                let subject = stanza.get_child("subject", ns::CLIENT);
                if let Some(subject) = subject.filter(|_| !stanza.has_child("body", ns::CLIENT)) {
                    if occupant.role < Role::Moderator && !room.config.change_subject {
                        return Err(err(ErrorType::Auth, Condition::Forbidden)
                            .with_text("Only moderators may change the subject."));
                    }
                    room.subject = Some((occupant.nick.clone(), subject.text()));
                }
                let mut msg = stanza.clone();
                msg.set_attr("from", room.occupant_jid(&occupant.nick));
                let all = room.occupants.iter().map(|o| o.real.clone()).collect();
                out.push(Routed::Fanout(Shared::new(msg), all));
                Ok(())
            }
            (Some(nick), false) => {
                let Some(target) = room.occupants.iter().find(|o| o.nick == nick) else {
                    return Err(err(ErrorType::Cancel, Condition::ItemNotFound)
                        .with_text("No such occupant."));
                };
                let mut msg = stanza.clone();
                msg.set_attr("from", room.occupant_jid(&room.occupants[sender].nick));
                msg.set_attr("to", target.real.to_string());
                if !msg.has_child("x", ns::MUC_USER) {
                    msg.append_child(Element::new("x", ns::MUC_USER));
                }
                out.push(Routed::Stanza(msg));
                Ok(())
            }
            (Some(_), true) => Err(err(ErrorType::Modify, Condition::BadRequest)
                .with_text("Groupchat messages go to the room, not to an occupant.")),
            (None, false) => Err(err(ErrorType::Cancel, Condition::FeatureNotImplemented)
                .with_text("The room accepts only groupchat messages.")),
        }
    }

    fn iq(
        &mut self,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        ext: &dyn Extensions,
        out: &mut Vec<Routed>,
    ) -> Result<(), StanzaError> {
        let key = to.node().unwrap_or_default().to_owned();
        let request = matches!(stanza.attr("type"), Some("get" | "set"));
        let Some(room) = self.rooms.get(&key) else {
            return if request {
                Err(err(ErrorType::Cancel, Condition::ItemNotFound).with_text("No such room."))
            } else {
                Ok(())
            };
        };
        if let Some(nick) = to.resource() {
            // Occupant-to-occupant iq: forwarded with the sender's occupant JID.
            let sender = room.occupants.iter().find(|o| &o.real == from);
            let target = room.occupants.iter().find(|o| o.nick == nick);
            return match (sender, target) {
                (Some(sender), Some(target)) => {
                    let mut iq = stanza.clone();
                    iq.set_attr("from", room.occupant_jid(&sender.nick));
                    iq.set_attr("to", target.real.to_string());
                    out.push(Routed::Stanza(iq));
                    Ok(())
                }
                _ if !request => Ok(()),
                (None, _) => Err(err(ErrorType::Modify, Condition::NotAcceptable)
                    .with_text("Only occupants may send iqs to occupants.")),
                (_, None) => {
                    Err(err(ErrorType::Cancel, Condition::ItemNotFound)
                        .with_text("No such occupant."))
                }
            };
        }
        if !request {
            return Ok(());
        }
        admin::room_iq(self, &key, stanza, from, ext, out)
    }
}

impl Room {
    fn info(&self) -> RoomInfo {
        RoomInfo {
            jid: self.jid.clone(),
            meeting_id: self.meeting_id.clone(),
            created_ms: self.created_ms,
            occupants: self.occupants.len() as u32,
        }
    }

    fn occupant_info(&self, o: &Occupant) -> OccupantInfo {
        OccupantInfo {
            nick: o.nick.clone(),
            jid: o.real.clone(),
            role: o.role.as_str(),
            affiliation: self.affiliation(&o.real).as_str(),
        }
    }

    fn affiliation(&self, real: &Jid) -> Affiliation {
        self.affiliations
            .get(&real.bare())
            .copied()
            .unwrap_or(Affiliation::None)
    }

    fn default_role(&self, affiliation: Affiliation) -> Role {
        match affiliation {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            _ if self.config.moderated => Role::Visitor,
            _ => Role::Participant,
        }
    }

    fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    /// An occupant's available presence as the room broadcasts it (no `to`).
    fn presence_of(&self, o: &Occupant, codes: &[&str]) -> Element {
        self.presence_with(o, o.presence.clone(), codes)
    }

    fn presence_with(&self, o: &Occupant, mut p: Element, codes: &[&str]) -> Element {
        p.remove_attr("to");
        p.set_attr("from", self.occupant_jid(&o.nick));
        p.remove_children("x", ns::MUC_USER);
        let mut x = Element::new("x", ns::MUC_USER);
        x.append_child(
            Element::builder("item", ns::MUC_USER)
                .attr("jid", o.real.to_string())
                .attr("affiliation", self.affiliation(&o.real).as_str())
                .attr("role", o.role.as_str())
                .build(),
        );
        for code in codes {
            x.append_child(
                Element::builder("status", ns::MUC_USER)
                    .attr("code", *code)
                    .build(),
            );
        }
        p.append_child(x);
        p
    }

    /// Occupant `i`'s current presence to everyone, the occupant itself with `codes` + 110.
    fn broadcast_presence(&self, i: usize, codes: &[&str], out: &mut Vec<Routed>) {
        let p = self.presence_of(&self.occupants[i], codes);
        let mut own = codes.to_vec();
        own.push("110");
        self.fanout_with_self(&p, i, &own, out);
    }

    /// `p` to every occupant but `i`, and to `i` with `self_codes` added.
    fn fanout_with_self(&self, p: &Element, i: usize, self_codes: &[&str], out: &mut Vec<Routed>) {
        let others: Vec<Jid> = self
            .occupants
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o.real.clone())
            .collect();
        if !others.is_empty() {
            out.push(Routed::Fanout(Shared::new(p.clone()), others));
        }
        let mut own = p.clone();
        if let Some(x) = own.get_child_mut("x", ns::MUC_USER) {
            for code in self_codes {
                if !x.children().any(|s| s.attr("code") == Some(*code)) {
                    x.append_child(
                        Element::builder("status", ns::MUC_USER)
                            .attr("code", *code)
                            .build(),
                    );
                }
            }
        }
        own.set_attr("to", self.occupants[i].real.to_string());
        out.push(Routed::Stanza(own));
    }
}

/// A client presence reduced to what the room keeps and relays: every child verbatim except
/// the MUC join `<x/>` (it carries the password) and any `muc#user` `<x/>`.
fn payload_of(stanza: &Element) -> Element {
    let mut p = stanza.clone();
    p.remove_attr("to");
    p.remove_attr("from");
    p.remove_attr("id");
    p.remove_children("x", ns::MUC);
    p.remove_children("x", ns::MUC_USER);
    p
}
