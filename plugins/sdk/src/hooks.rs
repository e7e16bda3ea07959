//! What hook and component plugins share, independent of the generated bindings so policies
//! can be tested natively: the `Host` capabilities a policy uses (kv, clock, sending stanzas),
//! an in-memory `MemoryHost` for tests, the event and verdict types, and the standard answers a
//! component gives to disco and ping.
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

/// The host capabilities a policy uses; the plugin's bindings glue implements it with the
/// `kv`, `clock` and `stanzas` imports.
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
}

/// A `Host` in memory, for native tests.
#[derive(Debug, Default)]
pub struct MemoryHost {
    kv: RefCell<BTreeMap<String, Vec<u8>>>,
    /// The clock `now_ms` returns.
    pub now: Cell<u64>,
    /// Every stanza sent, as XML.
    pub sent: RefCell<Vec<String>>,
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

/// Glue every hook plugin needs, expanded inside the plugin's `bindings` module (after
/// `wit_bindgen::generate!` of a world that includes `hooks`): `BoundHost` (the [`Host`]
/// capabilities over the generated imports) and conversions between the generated event and
/// verdict types and this module's.
#[macro_export]
macro_rules! hook_glue {
    () => {
        /// The host, through the generated imports.
        struct BoundHost;

        impl $crate::hooks::Host for BoundHost {
            fn get(&self, key: &str) -> Option<Vec<u8>> {
                lilt::plugin::kv::get(key).ok().flatten()
            }
            fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
                lilt::plugin::kv::set(key, value).map_err(|e| format!("{e:?}"))
            }
            fn delete(&self, key: &str) {
                let _ = lilt::plugin::kv::delete(key);
            }
            fn keys(&self, prefix: &str) -> Vec<String> {
                lilt::plugin::kv::list_keys(prefix).unwrap_or_default()
            }
            fn now_ms(&self) -> u64 {
                lilt::plugin::clock::now_unix_millis()
            }
            fn send(&self, stanza: &$crate::xml::Element) -> Result<(), String> {
                let result = lilt::plugin::stanzas::send(&stanza.to_xml());
                if let Err(e) = &result {
                    lilt::plugin::host::log(
                        lilt::plugin::host::LogLevel::Warn,
                        &format!("send refused: {e}"),
                    );
                }
                result
            }
        }

        fn room(r: lilt::plugin::hook_types::Room) -> $crate::hooks::Room {
            $crate::hooks::Room {
                jid: r.jid,
                meeting_id: r.meeting_id,
                created_millis: r.created_millis,
                occupants: r.occupants,
            }
        }

        fn occupant(o: lilt::plugin::hook_types::Occupant) -> $crate::hooks::Occupant {
            $crate::hooks::Occupant {
                nick: o.nick,
                jid: o.jid,
                role: o.role,
                affiliation: o.affiliation,
            }
        }

        fn parse(xml: &str) -> Option<$crate::xml::Element> {
            $crate::xml::Element::parse(xml).ok()
        }

        fn verdict(v: $crate::hooks::Verdict) -> lilt::plugin::hook_types::Verdict {
            use lilt::plugin::hook_types::{Rejection, Verdict};
            match v {
                $crate::hooks::Verdict::Pass => Verdict::Pass,
                $crate::hooks::Verdict::Handled => Verdict::Handled,
                $crate::hooks::Verdict::Reject { condition, text } => {
                    Verdict::Reject(Rejection { condition, text })
                }
                $crate::hooks::Verdict::Replace(el) => Verdict::Replace(el.to_xml()),
            }
        }
    };
}

/// The component side every component plugin shares, expanded inside its `bindings` module
/// after [`hook_glue!`] (in a world that includes both `hooks` and `component`): it remembers
/// the component's domain (`component_domain()`, also set from the hook side's `configure`
/// with `set_component_domain`), checks settings with `$settings`, advertises the identity
/// `component/$kind`, hands messages to `$on_message` and answers disco and ping itself.
#[macro_export]
macro_rules! component_glue {
    ($plugin:ty, $kind:literal, $settings:path, $on_message:expr) => {
        thread_local! {
            static COMPONENT: std::cell::RefCell<String> =
                const { std::cell::RefCell::new(String::new()) };
        }

        /// The component's domain, as the host configured it.
        fn component_domain() -> String {
            COMPONENT.with(|d| d.borrow().clone())
        }

        fn set_component_domain(domain: Option<String>) {
            if let Some(d) = domain {
                COMPONENT.with(|c| *c.borrow_mut() = d);
            }
        }

        impl exports::lilt::plugin::component_handler::Guest for $plugin {
            fn configure(domain: String, settings_json: String) -> Result<(), String> {
                set_component_domain(Some(domain));
                $settings(&settings_json)
            }
            fn identity() -> Option<exports::lilt::plugin::component_handler::DiscoIdentity> {
                Some(exports::lilt::plugin::component_handler::DiscoIdentity {
                    category: "component".into(),
                    kind: $kind.into(),
                })
            }
            fn handle_stanza(stanza: String) {
                let Some(el) = parse(&stanza) else { return };
                if el.name == "message" {
                    let on_message: fn(&$crate::xml::Element) = $on_message;
                    on_message(&el);
                } else if let Some(reply) = $crate::hooks::component_reply(&el, "component", $kind)
                {
                    let _ = $crate::hooks::Host::send(&BoundHost, &reply);
                }
            }
        }
    };
}
