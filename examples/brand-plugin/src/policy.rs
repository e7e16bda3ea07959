//! The brand policy: settings, and the answer to a brand query. Pure; tested natively below.

use lilt_plugin_sdk::Element;
use lilt_plugin_sdk::hooks::iq_result;

/// The namespace of the brand query: `<query xmlns='urn:example:brand'/>`.
pub const NS: &str = "urn:example:brand";

/// Settings (`[vhosts.plugins.settings]`): unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Brand {
    /// Shown to people when they join a meeting.
    pub welcome: String,
    /// The tenant's colour, `#rrggbb`.
    pub colour: String,
}

impl Default for Brand {
    fn default() -> Self {
        Brand {
            welcome: "Welcome!".to_owned(),
            colour: "#1d76ba".to_owned(),
        }
    }
}

/// Parse and check the settings.
///
/// # Errors
/// Not JSON, an unknown key, or a colour that is not `#rrggbb`.
pub fn configure(json: &str) -> Result<Brand, String> {
    let brand: Brand = lilt_plugin_sdk::parse_settings(json)?;
    let hex = brand.colour.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("colour {:?} is not #rrggbb", brand.colour));
    }
    Ok(brand)
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

    #[test]
    fn settings_are_checked() {
        assert_eq!(configure("null").expect("defaults"), Brand::default());
        let b = configure(r##"{"welcome":"Hi from Acme","colour":"#ff6600"}"##).expect("acme");
        assert_eq!(b.colour, "#ff6600");
        assert!(
            configure(r#"{"colour":"orange"}"#)
                .expect_err("bad")
                .contains("#rrggbb")
        );
        assert!(
            configure(r##"{"color":"#ff6600"}"##)
                .expect_err("typo")
                .contains("color")
        );
    }

    #[test]
    fn answers_the_brand_query_only() {
        let b = configure(r##"{"welcome":"Hi from Acme","colour":"#ff6600"}"##).expect("acme");
        let reply = b.answer(&query()).expect("answer").to_xml();
        assert!(reply.contains("type='result'"), "{reply}");
        assert!(reply.contains("to='alice@meet.example/web'"), "{reply}");
        assert!(
            reply.contains("Hi from Acme") && reply.contains("#ff6600"),
            "{reply}"
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
}
