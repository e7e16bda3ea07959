//! What hook and component plugins share, independent of the generated bindings so policies
//! can be tested natively: the `Host` capabilities a policy uses (kv, clock, sending stanzas,
//! timers, log), the fallible `Store` an auth plugin keeps accounts in, an in-memory
//! `MemoryHost` for tests, the event and verdict types, and the standard answers a component
//! gives to disco and ping.
//!
//! Pure Rust. Invariant: `component_reply` never answers a `result` or `error` iq (no loops).
//! Tests: `mod tests` below and each plugin's policy tests.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::xml::Element;

/// `jabber:client`.
pub const CLIENT: &str = "jabber:client";
/// XEP-0030 disco#info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0199 ping.
pub const PING: &str = "urn:xmpp:ping";
/// RFC 6120 stanza error conditions.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Fine detail.
    Debug,
    /// Normal events.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// The host capabilities a policy uses. Inside the server the SDK's `WasmHost` implements it
/// with the `kv`, `clock`, `stanzas`, `timers` and `host` imports; in native tests
/// [`MemoryHost`] does.
///
/// Take it as `&impl Host` (static dispatch), not `&dyn Host`: a component then imports only
/// the interfaces whose methods it really calls, so it loads with the smallest `grants`. A
/// `dyn Host` vtable names every method, and so every import (`kv`, `stanzas`, `timers`).
pub trait Host {
    /// A stored value.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Store a value.
    ///
    /// # Errors
    /// The store's refusal (quota, storage failure).
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Remove a key.
    fn delete(&self, key: &str);
    /// Keys starting with `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Send a stanza (XML).
    ///
    /// # Errors
    /// The host's refusal (e.g. `from` outside the plugin's domains).
    fn send(&self, stanza: &Element) -> Result<(), String>;
    /// Call the plugin's `on_timer(tag)` after `delay_ms` milliseconds (at most a day).
    ///
    /// # Errors
    /// The host's refusal (too many timers pending, delay too long).
    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<(), String>;
    /// Write a line into the host's log, tagged with the plugin and vhost.
    fn log(&self, level: LogLevel, message: &str);
}

/// A key-value store whose every operation can fail (quota, storage): what an auth plugin keeps
/// accounts in, where a failed read must not look like a missing account.
pub trait Store {
    /// The value under `key`, if any.
    ///
    /// # Errors
    /// The store failed.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store a value.
    ///
    /// # Errors
    /// Quota exceeded or the store failed.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Remove a key (no error when absent).
    ///
    /// # Errors
    /// The store failed.
    fn delete(&self, key: &str) -> Result<(), String>;
    /// Keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// The store failed.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, String>;
}

/// A `Host` in memory, for native tests.
#[derive(Debug, Default)]
pub struct MemoryHost {
    kv: RefCell<BTreeMap<String, Vec<u8>>>,
    /// The clock `now_ms` returns.
    pub now: Cell<u64>,
    /// Every stanza sent, as XML.
    pub sent: RefCell<Vec<String>>,
    /// Every timer set: `(delay_ms, tag)`.
    pub timers: RefCell<Vec<(u64, String)>>,
    /// Every log line, as `LEVEL message`.
    pub logs: RefCell<Vec<String>>,
    /// The public keys `Keys::public_key` finds, by key id.
    pub public_keys: RefCell<BTreeMap<String, String>>,
    /// When set, `Keys::public_key` fails with `Unavailable` and this text.
    pub keys_unavailable: RefCell<Option<String>>,
}

impl MemoryHost {
    /// Stanzas sent so far, taken.
    pub fn take_sent(&self) -> Vec<String> {
        std::mem::take(&mut self.sent.borrow_mut())
    }

    /// Number of stored keys.
    pub fn len(&self) -> usize {
        self.kv.borrow().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.kv.borrow().is_empty()
    }
}

impl Host for MemoryHost {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.kv.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        self.kv
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn send(&self, stanza: &Element) -> Result<(), String> {
        self.sent.borrow_mut().push(stanza.to_xml());
        Ok(())
    }
    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<(), String> {
        self.timers.borrow_mut().push((delay_ms, tag.to_owned()));
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push(format!("{level:?} {message}"));
    }
}

impl Store for MemoryHost {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(Host::get(self, key))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        Host::set(self, key, value)
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        Host::delete(self, key);
        Ok(())
    }
    fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        Ok(Host::keys(self, prefix))
    }
}

/// A room, as the host describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Room {
    /// Bare JID.
    pub jid: String,
    /// Meeting id.
    pub meeting_id: String,
    /// Creation time, ms since the epoch.
    pub created_millis: u64,
    /// Occupants now.
    pub occupants: u32,
}

/// A room occupant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Occupant {
    /// Nickname.
    pub nick: String,
    /// Real full JID.
    pub jid: String,
    /// Role.
    pub role: String,
    /// Affiliation.
    pub affiliation: String,
}

/// The events a hook plugin can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A message a client or component sent, before routing.
    Message,
    /// A presence a client or component sent, before routing.
    Presence,
    /// An iq a client or component sent, before routing.
    Iq,
    /// A room is about to be created.
    RoomPreCreate,
    /// A room was created.
    RoomCreated,
    /// A room was destroyed.
    RoomDestroyed,
    /// Someone is about to join a room.
    OccupantPreJoin,
    /// Someone joined a room.
    OccupantJoined,
    /// Someone left a room (or was removed).
    OccupantLeft,
}

/// An occupant event: the room, the occupant and a presence (pre-join: the join presence;
/// joined: the presence the room broadcast; left: the occupant's last presence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantEvent {
    /// The room.
    pub room: Room,
    /// The occupant.
    pub occupant: Occupant,
    /// The presence, parsed.
    pub presence: Element,
}

/// One event, with its stanzas parsed (an event whose XML does not parse never reaches the
/// plugin: the SDK answers `pass` for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message stanza.
    Message(Element),
    /// A presence stanza.
    Presence(Element),
    /// An iq stanza.
    Iq(Element),
    /// A room is about to be created by `creator` (a real full JID).
    RoomPreCreate {
        /// The room to be.
        room: Room,
        /// Its creator's real full JID.
        creator: String,
    },
    /// A room was created.
    RoomCreated(Room),
    /// A room was destroyed.
    RoomDestroyed(Room),
    /// Someone is about to join.
    OccupantPreJoin(OccupantEvent),
    /// Someone joined.
    OccupantJoined(OccupantEvent),
    /// Someone left.
    OccupantLeft(OccupantEvent),
}

impl Event {
    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Message(_) => EventKind::Message,
            Event::Presence(_) => EventKind::Presence,
            Event::Iq(_) => EventKind::Iq,
            Event::RoomPreCreate { .. } => EventKind::RoomPreCreate,
            Event::RoomCreated(_) => EventKind::RoomCreated,
            Event::RoomDestroyed(_) => EventKind::RoomDestroyed,
            Event::OccupantPreJoin(_) => EventKind::OccupantPreJoin,
            Event::OccupantJoined(_) => EventKind::OccupantJoined,
            Event::OccupantLeft(_) => EventKind::OccupantLeft,
        }
    }
}

/// A disco identity a component advertises on its vhost (`<identity category type/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoIdentity {
    /// Category, e.g. `component`.
    pub category: String,
    /// Type, e.g. `speakerstats`.
    pub kind: String,
}

impl DiscoIdentity {
    /// `component/<kind>`, what Jitsi clients look for.
    pub fn component(kind: &str) -> DiscoIdentity {
        DiscoIdentity {
            category: "component".to_owned(),
            kind: kind.to_owned(),
        }
    }
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Carry on.
    Pass,
    /// Dealt with: drop silently.
    Handled,
    /// Refuse with a stanza error.
    Reject {
        /// RFC 6120 condition.
        condition: String,
        /// Text for the user.
        text: Option<String>,
    },
    /// Carry on with this stanza instead.
    Replace(Element),
}

impl Verdict {
    /// A rejection with text.
    pub fn reject(condition: &str, text: impl Into<String>) -> Verdict {
        Verdict::Reject {
            condition: condition.to_owned(),
            text: Some(text.into()),
        }
    }
}

/// The display name a Jitsi client puts in its presence (`<nick xmlns=…nick>`).
pub fn display_name(presence: &Element) -> Option<String> {
    presence
        .child("nick", "http://jabber.org/protocol/nick")
        .map(Element::text)
}

/// A reply to an iq: `result` with `payload`, addresses swapped.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut r = Element::new("iq", CLIENT).with_attr("type", "result");
    copy_swapped(iq, &mut r);
    if let Some(p) = payload {
        r = r.with_child(p);
    }
    r
}

/// An error reply with `condition` (type `cancel`).
pub fn error_reply(stanza: &Element, condition: &str) -> Element {
    let mut r = Element::new(&stanza.name, CLIENT).with_attr("type", "error");
    copy_swapped(stanza, &mut r);
    r.with_child(
        Element::new("error", CLIENT)
            .with_attr("type", "cancel")
            .with_child(Element::new(condition, STANZAS)),
    )
}

fn copy_swapped(from: &Element, to: &mut Element) {
    if let Some(id) = from.attr("id") {
        to.set_attr("id", id);
    }
    if let Some(f) = from.attr("from") {
        to.set_attr("to", f);
    }
    if let Some(t) = from.attr("to") {
        to.set_attr("from", t);
    }
}

/// What a component answers itself: disco#info with its identity, ping, and
/// `service-unavailable` for any other request; `None` for everything else (including iq
/// results and errors, which are never answered).
pub fn component_reply(stanza: &Element, category: &str, kind: &str) -> Option<Element> {
    if stanza.name != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
        return None;
    }
    let payload = stanza.children().next();
    match payload.map(|p| (p.name.as_str(), p.ns.as_str(), stanza.attr("type"))) {
        Some(("query", DISCO_INFO, Some("get"))) => {
            let name = stanza.attr("to").unwrap_or_default();
            let q = Element::new("query", DISCO_INFO)
                .with_child(
                    Element::new("identity", DISCO_INFO)
                        .with_attr("category", category)
                        .with_attr("type", kind)
                        .with_attr("name", name),
                )
                .with_child(Element::new("feature", DISCO_INFO).with_attr("var", DISCO_INFO))
                .with_child(Element::new("feature", DISCO_INFO).with_attr("var", PING));
            Some(iq_result(stanza, Some(q)))
        }
        Some(("ping", PING, Some("get"))) => Some(iq_result(stanza, None)),
        _ => Some(error_reply(stanza, "service-unavailable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_answers_disco_and_ping_only() {
        let iq = |body: &str, t: &str| {
            Element::parse(&format!(
                "<iq xmlns='jabber:client' type='{t}' id='1' from='a@b/c' to='x.b'>{body}</iq>"
            ))
            .expect("iq")
        };
        let disco = component_reply(
            &iq(
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                "get",
            ),
            "component",
            "speakerstats",
        )
        .expect("reply")
        .to_xml();
        assert!(
            disco.contains("type='speakerstats'") && disco.contains("to='a@b/c'"),
            "{disco}"
        );
        let ping =
            component_reply(&iq("<ping xmlns='urn:xmpp:ping'/>", "get"), "c", "t").expect("reply");
        assert_eq!(ping.attr("type"), Some("result"));
        let other = component_reply(&iq("<q xmlns='urn:x'/>", "set"), "c", "t")
            .expect("reply")
            .to_xml();
        assert!(other.contains("service-unavailable"), "{other}");
        assert!(component_reply(&iq("", "result"), "c", "t").is_none());
    }
}
