//! brand-plugin: answers a tenant's welcome message and brand colour over XMPP. A client sends
//! `<iq type='get' to='VHOST'><query xmlns='urn:example:brand'/></iq>` and gets
//! `<query><welcome>…</welcome><colour>#rrggbb</colour></query>` back; every other stanza
//! passes. The logic is in policy.rs; this file only routes.
//!
//! World: `lilt:plugin/hooks` (subscribes to `iq`). Imports: `stanzas` (to answer). Settings:
//! `welcome`, `colour`.

pub mod policy;

use lilt_plugin_sdk::{Configure, Event, EventKind, HookPlugin, Host, Plugin, Verdict};

/// The plugin, configured for one vhost.
#[derive(Debug)]
pub struct BrandPlugin {
    brand: policy::Brand,
}

impl Plugin for BrandPlugin {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok(BrandPlugin {
            brand: policy::configure(&ctx.settings_json)?,
        })
    }
}

impl HookPlugin for BrandPlugin {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        vec![(EventKind::Iq, 0)]
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        let Event::Iq(iq) = event else {
            return Verdict::Pass;
        };
        match self.brand.answer(&iq) {
            Some(reply) => match host.send(&reply) {
                Ok(()) => Verdict::Handled,
                Err(_) => Verdict::Pass,
            },
            None => Verdict::Pass,
        }
    }
}

lilt_plugin_sdk::export_hooks!(BrandPlugin);

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::{Element, MemoryHost};

    use super::*;

    #[test]
    fn the_plugin_answers_through_the_host() {
        let host = MemoryHost::default();
        let ctx = Configure::settings_only(r##"{"welcome":"Hi","colour":"#00ff00"}"##);
        let mut p = BrandPlugin::configure(&ctx).expect("configure");
        assert_eq!(p.subscriptions(), vec![(EventKind::Iq, 0)]);
        let iq = Element::parse(
            "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='b'>\
             <query xmlns='urn:example:brand'/></iq>",
        )
        .expect("iq");
        assert_eq!(p.handle(&host, Event::Iq(iq)), Verdict::Handled);
        let sent = host.take_sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("#00ff00"), "{sent:?}");
    }
}
