//! branding's policy: one tenant's look and rules. A welcome message to each joiner, display-
//! name rules (required, a forced suffix, a maximum length), the room names allowed on the
//! vhost, and brand properties (name, logo, colours) served to anyone on the vhost who asks
//! with `<iq type='get' to=VHOST><query xmlns='urn:lilt:branding'/></iq>` (the meeting page
//! reads them this way).
//!
//! Pure (tested natively below). Invariants: a replaced presence differs from the original
//! only in its `<nick/>` text; a rejection always carries text saying what to change.

use std::collections::BTreeMap;

use lilt_plugin_sdk::hooks::{CLIENT, Host, Occupant, Room, Verdict, display_name, iq_result};
use lilt_plugin_sdk::xml::{Element, Node};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

/// The namespace of the brand query.
pub const BRANDING: &str = "urn:lilt:branding";
const NICK: &str = "http://jabber.org/protocol/nick";

/// Display-name rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayName {
    /// Refuse joins without a display name.
    #[serde(default)]
    pub required: bool,
    /// Appended to every display name that does not end with it already.
    pub suffix: Option<String>,
    /// Longest display name, in characters (before the suffix).
    pub max_length: Option<usize>,
}

/// Brand properties.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// Product name shown to users.
    pub name: Option<String>,
    /// Logo address.
    pub logo_url: Option<String>,
    /// Named colours, `#rrggbb`.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

/// Settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Sent to each joiner; `{room}` and `{name}` are replaced.
    pub welcome_message: Option<String>,
    /// A regular expression room names (the room JID's localpart) must match.
    pub room_name_pattern: Option<String>,
    /// Display-name rules.
    #[serde(default)]
    pub display_name: DisplayName,
    /// Brand properties.
    #[serde(default)]
    pub brand: Brand,
}

/// Checked settings.
#[derive(Debug)]
pub struct Policy {
    settings: Settings,
    room_name: Option<Regex>,
}

/// Parse and check the settings.
///
/// # Errors
/// Unknown keys, a bad pattern, or a colour that is not `#rrggbb`.
pub fn configure(json: &str) -> Result<Policy, String> {
    let settings: Settings = lilt_plugin_sdk::parse_settings(json)?;
    let room_name = match &settings.room_name_pattern {
        Some(p) => Some(Regex::new(p).map_err(|e| format!("room_name_pattern: {e}"))?),
        None => None,
    };
    for (k, v) in &settings.brand.colors {
        let ok =
            v.len() == 7 && v.starts_with('#') && v[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(format!("brand.colors.{k}: {v:?} is not #rrggbb"));
        }
    }
    if settings.display_name.max_length == Some(0) {
        return Err("display_name.max_length: must be at least 1".into());
    }
    Ok(Policy {
        settings,
        room_name,
    })
}

fn local(jid: &str) -> &str {
    jid.split_once('@').map_or("", |(l, _)| l)
}

impl Policy {
    /// A room is about to be created.
    pub fn pre_create(&self, room: &Room) -> Verdict {
        match &self.room_name {
            Some(re) if !re.is_match(local(&room.jid)) => Verdict::reject(
                "not-allowed",
                format!(
                    "Room names here must match {}.",
                    self.settings
                        .room_name_pattern
                        .as_deref()
                        .unwrap_or_default()
                ),
            ),
            _ => Verdict::Pass,
        }
    }

    /// Apply the display-name rules to a presence; `joining` refuses a missing name when
    /// names are required (updates without one pass: the room keeps the last one).
    pub fn display_name(&self, presence: &Element, joining: bool) -> Verdict {
        let rules = &self.settings.display_name;
        let name = display_name(presence)
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        if name.is_empty() {
            return if joining && rules.required {
                Verdict::reject("not-acceptable", "A display name is required to join.")
            } else {
                Verdict::Pass
            };
        }
        let suffix = rules.suffix.as_deref().unwrap_or("");
        let base = name.strip_suffix(suffix).unwrap_or(&name).trim_end();
        if let Some(max) = rules.max_length
            && base.chars().count() > max
        {
            return Verdict::reject(
                "not-acceptable",
                format!("Display names are at most {max} characters."),
            );
        }
        let wanted = format!("{base}{suffix}");
        if wanted == display_name(presence).unwrap_or_default() {
            return Verdict::Pass;
        }
        let mut replaced = presence.clone();
        if let Some(nick) = replaced.child_mut("nick", NICK) {
            nick.nodes = vec![Node::Text(wanted)];
        }
        Verdict::Replace(replaced)
    }

    /// Someone joined: the welcome message, from the room.
    pub fn joined(&self, host: &impl Host, room: &Room, occupant: &Occupant, presence: &Element) {
        let Some(template) = &self.settings.welcome_message else {
            return;
        };
        if occupant.nick == "focus" {
            return;
        }
        let name = display_name(presence).unwrap_or_else(|| occupant.nick.clone());
        let text = template
            .replace("{room}", local(&room.jid))
            .replace("{name}", &name);
        let msg = Element::new("message", CLIENT)
            .with_attr("from", room.jid.clone())
            .with_attr("to", occupant.jid.clone())
            .with_attr("type", "groupchat")
            .with_child(Element::new("body", CLIENT).with_text(text));
        let _ = host.send(&msg);
    }

    /// An iq a user of the vhost sent: answer the brand query.
    pub fn iq(&self, host: &impl Host, vhost: &str, iq: &Element) -> Verdict {
        let asks = iq.attr("type") == Some("get")
            && iq.attr("to") == Some(vhost)
            && iq.child("query", BRANDING).is_some();
        if !asks {
            return Verdict::Pass;
        }
        let json = serde_json::to_string(&self.settings.brand).unwrap_or_default();
        let reply = iq_result(
            iq,
            Some(
                Element::new("query", BRANDING)
                    .with_child(Element::new("brand", BRANDING).with_text(json)),
            ),
        );
        let _ = host.send(&reply);
        Verdict::Handled
    }
}

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::hooks::MemoryHost;

    use super::*;

    fn policy() -> Policy {
        configure(
            r##"{"welcome_message":"Welcome to {room}, {name}!","room_name_pattern":"^[a-z0-9-]{3,32}$",
               "display_name":{"required":true,"suffix":" (Acme)","max_length":10},
               "brand":{"name":"Acme Meet","logo_url":"https://acme.example/logo.svg","colors":{"primary":"#0055ff"}}}"##,
        )
        .expect("settings")
    }

    fn presence(nick: Option<&str>) -> Element {
        let nick = nick
            .map(|n| format!("<nick xmlns='{NICK}'>{n}</nick>"))
            .unwrap_or_default();
        Element::parse(&format!(
            "<presence xmlns='jabber:client'><audiomuted>false</audiomuted>{nick}</presence>"
        ))
        .expect("presence")
    }

    #[test]
    fn display_name_rules() {
        let p = policy();
        assert!(
            matches!(p.display_name(&presence(None), true), Verdict::Reject { ref condition, .. } if condition == "not-acceptable")
        );
        assert_eq!(p.display_name(&presence(None), false), Verdict::Pass);
        assert!(matches!(
            p.display_name(&presence(Some("   ")), true),
            Verdict::Reject { .. }
        ));
        assert!(matches!(
            p.display_name(&presence(Some("Bartholomew")), true),
            Verdict::Reject { .. }
        ));
        let Verdict::Replace(r) = p.display_name(&presence(Some("Alice")), true) else {
            panic!("expected a replacement")
        };
        assert_eq!(display_name(&r).as_deref(), Some("Alice (Acme)"));
        assert!(
            r.child("audiomuted", CLIENT).is_some(),
            "other children kept"
        );
        assert_eq!(p.display_name(&r, true), Verdict::Pass, "already suffixed");
    }

    #[test]
    fn room_names_welcome_and_brand() {
        let p = policy();
        let room = |jid: &str| Room {
            jid: jid.into(),
            ..Room::default()
        };
        assert_eq!(p.pre_create(&room("team-1@conference.acme")), Verdict::Pass);
        assert!(matches!(
            p.pre_create(&room("No_Way@conference.acme")),
            Verdict::Reject { .. }
        ));
        let host = MemoryHost::default();
        let occ = Occupant {
            nick: "a1".into(),
            jid: "u@acme/r".into(),
            ..Occupant::default()
        };
        p.joined(
            &host,
            &room("team-1@conference.acme"),
            &occ,
            &presence(Some("Alice (Acme)")),
        );
        let sent = host.take_sent();
        assert!(
            sent[0].contains("Welcome to team-1, Alice (Acme)!")
                && sent[0].contains("from='team-1@conference.acme'"),
            "{sent:?}"
        );
        let iq = Element::parse("<iq xmlns='jabber:client' type='get' id='b' from='u@acme/r' to='acme'><query xmlns='urn:lilt:branding'/></iq>").expect("iq");
        assert_eq!(p.iq(&host, "acme", &iq), Verdict::Handled);
        let reply = Element::parse(&host.take_sent()[0]).expect("reply");
        let brand: serde_json::Value = serde_json::from_str(
            &reply
                .child("query", BRANDING)
                .and_then(|q| q.child("brand", BRANDING))
                .expect("brand")
                .text(),
        )
        .expect("json");
        assert_eq!(brand["name"], "Acme Meet");
        assert_eq!(brand["colors"]["primary"], "#0055ff");
        let other = Element::parse("<iq xmlns='jabber:client' type='get' id='c' from='u@acme/r' to='acme'><ping xmlns='urn:xmpp:ping'/></iq>").expect("iq");
        assert_eq!(p.iq(&host, "acme", &other), Verdict::Pass);
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            r#"{"x":1}"#,
            r#"{"room_name_pattern":"("}"#,
            r#"{"brand":{"colors":{"a":"blue"}}}"#,
            r#"{"display_name":{"max_length":0}}"#,
        ] {
            assert!(configure(bad).is_err(), "{bad}");
        }
        assert!(configure("{}").is_ok());
    }
}
