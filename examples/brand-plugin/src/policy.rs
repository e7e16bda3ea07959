//! The brand policy: settings, the answer to a brand query, the display-name rules applied to
//! a join and the welcome sent to each joiner. Pure; tested natively below. The JavaScript
//! (examples/brand-plugin-js/src/policy.js) and Python (examples/brand-plugin-py/policy.py)
//! builds implement exactly this; tests/all/brand_langs.rs compares the three.
//!
//! Display names (the `<nick xmlns='http://jabber.org/protocol/nick'/>` of a join presence):
//! every control character (U+0000–U+001F, U+007F–U+009F) and every Unicode space (Zs, Zl,
//! Zp) counts as a space; runs of them become one space and the ends are trimmed. Then a name
//! left empty, longer than `max_name_length` characters (code points), or containing one of
//! `forbidden_words` (case-insensitive, anywhere in the name) refuses the join with
//! `not-acceptable` and a text saying what to change; otherwise a name that changed is put
//! back into the presence (the room shows the tidied name) and the join goes on. A join
//! without a display name is not touched.

use lilt_plugin_sdk::Element;
use lilt_plugin_sdk::hooks::{CLIENT, Verdict, display_name, iq_result};
use lilt_plugin_sdk::xml::Node;

/// The namespace of the brand query: `<query xmlns='urn:example:brand'/>`.
pub const NS: &str = "urn:example:brand";
/// The namespace of a Jitsi display name.
pub const NICK: &str = "http://jabber.org/protocol/nick";
/// The largest `max_name_length` accepted.
pub const MAX_NAME_LENGTH: u32 = 1000;

/// Settings (`[vhosts.plugins.settings]`): unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Brand {
    /// Sent to each joiner as a groupchat message from the room, and in the brand query.
    /// Empty: no greeting.
    pub welcome: String,
    /// The tenant's colour, `#rrggbb`.
    pub colour: String,
    /// Longest display name, in characters (1 to 1000).
    pub max_name_length: u32,
    /// Display names containing one of these (any case) are refused; none may be blank.
    pub forbidden_words: Vec<String>,
}

impl Default for Brand {
    fn default() -> Self {
        Brand {
            welcome: "Welcome!".to_owned(),
            colour: "#1d76ba".to_owned(),
            max_name_length: 32,
            forbidden_words: Vec::new(),
        }
    }
}

/// Parse and check the settings.
///
/// # Errors
/// Not JSON, an unknown key, a value of the wrong type, a colour that is not `#rrggbb`, a
/// `max_name_length` outside 1–1000 or a blank forbidden word.
pub fn configure(json: &str) -> Result<Brand, String> {
    let brand: Brand = lilt_plugin_sdk::parse_settings(json)?;
    let hex = brand.colour.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("colour {:?} is not #rrggbb", brand.colour));
    }
    if !(1..=MAX_NAME_LENGTH).contains(&brand.max_name_length) {
        return Err(format!(
            "max_name_length: must be between 1 and {MAX_NAME_LENGTH}"
        ));
    }
    if brand
        .forbidden_words
        .iter()
        .any(|w| normalise(w).is_empty())
    {
        return Err("forbidden_words: a word is blank".to_owned());
    }
    Ok(brand)
}

/// A control character or a Unicode space separator (Zs, Zl, Zp).
pub fn is_space(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | ' ' | '\u{a0}' | '\u{1680}'
        | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}'
        | '\u{3000}')
}

/// `name` with runs of spaces and control characters made one space, and the ends trimmed.
pub fn normalise(name: &str) -> String {
    name.split(is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Brand {
    /// The answer to `<iq type='get'><query xmlns='urn:example:brand'/></iq>`, or `None` when
    /// `iq` is something else.
    pub fn answer(&self, iq: &Element) -> Option<Element> {
        if iq.name != "iq" || iq.attr("type") != Some("get") {
            return None;
        }
        iq.child("query", NS)?;
        let query = Element::new("query", NS)
            .with_child(Element::new("welcome", NS).with_text(&self.welcome))
            .with_child(Element::new("colour", NS).with_text(&self.colour));
        Some(iq_result(iq, Some(query)))
    }

    /// The display-name rules on a join presence (see the module comment): `Pass`, `Reject`
    /// with `not-acceptable`, or `Replace` with the tidied name.
    pub fn check_join(&self, presence: &Element) -> Verdict {
        let Some(raw) = display_name(presence) else {
            return Verdict::Pass;
        };
        let name = normalise(&raw);
        if name.is_empty() {
            return Verdict::reject(
                "not-acceptable",
                "Display names need at least one visible character.",
            );
        }
        if name.chars().count() > self.max_name_length as usize {
            return Verdict::reject(
                "not-acceptable",
                format!(
                    "Display names are at most {} characters.",
                    self.max_name_length
                ),
            );
        }
        let lower = name.to_lowercase();
        if let Some(word) = self
            .forbidden_words
            .iter()
            .find(|w| lower.contains(&normalise(w).to_lowercase()))
        {
            return Verdict::reject(
                "not-acceptable",
                format!("Display names may not contain \"{}\".", normalise(word)),
            );
        }
        if name == raw {
            return Verdict::Pass;
        }
        let mut tidied = presence.clone();
        if let Some(nick) = tidied.child_mut("nick", NICK) {
            nick.nodes = vec![Node::Text(name)];
        }
        Verdict::Replace(tidied)
    }

    /// The welcome for someone who joined `room` (its bare JID) from `jid` (their real JID)
    /// as `nick`: a groupchat message from the room to them alone, or `None` when `welcome`
    /// is empty or the joiner is the focus (nick `focus`).
    pub fn greeting(&self, room: &str, jid: &str, nick: &str) -> Option<Element> {
        if self.welcome.is_empty() || nick == "focus" {
            return None;
        }
        Some(
            Element::new("message", CLIENT)
                .with_attr("from", room)
                .with_attr("to", jid)
                .with_attr("type", "groupchat")
                .with_child(Element::new("body", CLIENT).with_text(&self.welcome)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Element {
        Element::parse(
            "<iq xmlns='jabber:client' type='get' id='b1' from='alice@meet.example/web' \
             to='meet.example'><query xmlns='urn:example:brand'/></iq>",
        )
        .expect("iq")
    }

    fn acme() -> Brand {
        configure(
            r##"{"welcome":"Hi from Acme","colour":"#ff6600","max_name_length":10,
                 "forbidden_words":["Admin"," root "]}"##,
        )
        .expect("acme")
    }

    /// A join presence with `name` as display name (XML-escaped by the caller).
    fn join(name: Option<&str>) -> Element {
        let nick = name
            .map(|n| format!("<nick xmlns='{NICK}'>{n}</nick>"))
            .unwrap_or_default();
        Element::parse(&format!(
            "<presence xmlns='jabber:client' to='r@conference.meet.example/a'>\
             <x xmlns='http://jabber.org/protocol/muc'/>{nick}<audiomuted>false</audiomuted>\
             </presence>"
        ))
        .expect("presence")
    }

    fn refusal(v: Verdict) -> String {
        match v {
            Verdict::Reject { condition, text } => {
                format!("{condition}: {}", text.unwrap_or_default())
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(configure("null").expect("defaults"), Brand::default());
        assert_eq!(configure("{}").expect("defaults"), Brand::default());
        let b = acme();
        assert_eq!(b.colour, "#ff6600");
        assert_eq!(b.max_name_length, 10);
        for (bad, says) in [
            (r#"{"colour":"orange"}"#, "#rrggbb"),
            (r##"{"color":"#ff6600"}"##, "color"),
            (
                r#"{"max_name_length":0}"#,
                "max_name_length: must be between 1 and 1000",
            ),
            (
                r#"{"max_name_length":1001}"#,
                "max_name_length: must be between 1 and 1000",
            ),
            (r#"{"max_name_length":-1}"#, ""),
            (r#"{"max_name_length":"9"}"#, ""),
            (
                r#"{"forbidden_words":["ok"," \t"]}"#,
                "forbidden_words: a word is blank",
            ),
            (r#"{"forbidden_words":[1]}"#, ""),
            (r#"{"forbidden_words":"admin"}"#, ""),
            (r#"{"welcome":7}"#, ""),
        ] {
            let err = configure(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert_eq!(
            configure(r#"{"max_name_length":1000}"#)
                .expect("max")
                .max_name_length,
            1000
        );
    }

    #[test]
    fn answers_the_brand_query_only() {
        let b = acme();
        let reply = b.answer(&query()).expect("answer").to_xml();
        assert_eq!(
            reply,
            "<iq xmlns='jabber:client' type='result' id='b1' to='alice@meet.example/web' \
             from='meet.example'><query xmlns='urn:example:brand'><welcome>Hi from Acme</welcome>\
             <colour>#ff6600</colour></query></iq>"
        );
        let ping = Element::parse(
            "<iq xmlns='jabber:client' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .expect("ping");
        assert!(b.answer(&ping).is_none());
        let mut result = query();
        result.set_attr("type", "result");
        assert!(b.answer(&result).is_none());
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("  Ann \t\n Lee\u{a0}\u{3000}"), "Ann Lee");
        assert_eq!(normalise("A\u{85}B\u{7f}C\u{0}D\u{2028}E"), "A B C D E");
        assert_eq!(normalise("\u{1}\u{9f} \u{200a}"), "");
        assert_eq!(normalise("Zoë 李"), "Zoë 李");
        // Not spaces: a zero-width space and a soft hyphen are kept.
        assert_eq!(normalise("a\u{200b}b\u{ad}c"), "a\u{200b}b\u{ad}c");
    }

    #[test]
    fn display_name_rules_on_join() {
        let b = acme();
        assert_eq!(
            b.check_join(&join(None)),
            Verdict::Pass,
            "no name: untouched"
        );
        assert_eq!(b.check_join(&join(Some("Ann Lee"))), Verdict::Pass);
        // Exactly ten characters (code points, not bytes or UTF-16 units).
        assert_eq!(b.check_join(&join(Some("Zoë 李𝄞abcd"))), Verdict::Pass);
        let Verdict::Replace(tidied) = b.check_join(&join(Some("  Ann&#9;&#x85; Lee "))) else {
            panic!("expected the tidied name")
        };
        assert_eq!(display_name(&tidied).as_deref(), Some("Ann Lee"));
        assert!(
            tidied.child("audiomuted", CLIENT).is_some() && tidied.attr("to").is_some(),
            "the rest of the presence is kept: {}",
            tidied.to_xml()
        );
        assert_eq!(b.check_join(&tidied), Verdict::Pass, "tidy already");
        assert_eq!(
            refusal(b.check_join(&join(Some(" &#x85; ")))),
            "not-acceptable: Display names need at least one visible character."
        );
        assert_eq!(
            refusal(b.check_join(&join(Some("Bartholomew")))),
            "not-acceptable: Display names are at most 10 characters."
        );
        // Counted after tidying: thirteen characters as sent, seven tidied.
        let Verdict::Replace(tidied) = b.check_join(&join(Some("  Ann    Lee "))) else {
            panic!("expected the tidied name")
        };
        assert_eq!(display_name(&tidied).as_deref(), Some("Ann Lee"));
        assert_eq!(
            refusal(b.check_join(&join(Some("the ADMIN")))),
            "not-acceptable: Display names may not contain \"Admin\"."
        );
        assert_eq!(
            refusal(b.check_join(&join(Some("xrootx")))),
            "not-acceptable: Display names may not contain \"root\"."
        );
    }

    #[test]
    fn welcome_goes_to_the_joiner_from_the_room() {
        let b = acme();
        let msg = b
            .greeting("r@conference.meet.example", "ann@meet.example/web", "a1")
            .expect("welcome")
            .to_xml();
        assert_eq!(
            msg,
            "<message xmlns='jabber:client' from='r@conference.meet.example' \
             to='ann@meet.example/web' type='groupchat'><body>Hi from Acme</body></message>"
        );
        assert!(b.greeting("r@c", "focus@auth/x", "focus").is_none());
        let quiet = configure(r#"{"welcome":""}"#).expect("quiet");
        assert!(quiet.greeting("r@c", "ann@m/w", "a1").is_none());
    }
}
