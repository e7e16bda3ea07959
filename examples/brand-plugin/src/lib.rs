//! brand-plugin: a tenant's welcome message, display-name rules and brand colour. A client sends
//! `<iq type='get' to='VHOST'><query xmlns='urn:example:brand'/></iq>` and gets
//! `<query><welcome>…</welcome><colour>#rrggbb</colour></query>` back; every other stanza
//! passes. A join to a room on the vhost's MUC has its display name checked and tidied
//! (refused with `not-acceptable`, or the tidied name put in its presence), and whoever joined
//! gets the welcome as a groupchat message from the room. The logic is in policy.rs; this file
//! only routes.
//!
//! World: `lilt:plugin/hooks` (subscribes to `iq`, `occupant-pre-join`, `occupant-joined`).
//! Imports: `stanzas` (to answer and greet). Settings: `welcome`, `colour`, `max_name_length`,
//! `forbidden_words`.

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
        vec![
            (EventKind::Iq, 0),
            (EventKind::OccupantPreJoin, 0),
            (EventKind::OccupantJoined, 0),
        ]
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        match event {
            Event::Iq(iq) => match self.brand.answer(&iq) {
                Some(reply) => match host.send(&reply) {
                    Ok(()) => Verdict::Handled,
                    Err(_) => Verdict::Pass,
                },
                None => Verdict::Pass,
            },
            Event::OccupantPreJoin(e) => self.brand.check_join(&e.presence),
            Event::OccupantJoined(e) => {
                if let Some(msg) =
                    self.brand
                        .greeting(&e.room.jid, &e.occupant.jid, &e.occupant.nick)
                {
                    // A refused send (it cannot be: the room is on the vhost's MUC) only
                    // loses the greeting.
                    let _ = host.send(&msg);
                }
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }
}

lilt_plugin_sdk::export_hooks!(BrandPlugin);

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::hooks::{Occupant, OccupantEvent, Room};
    use lilt_plugin_sdk::{Element, MemoryHost};

    use super::*;

    #[test]
    fn the_plugin_answers_through_the_host() {
        let host = MemoryHost::default();
        let ctx = Configure::settings_only(r##"{"welcome":"Hi","colour":"#00ff00"}"##);
        let mut p = BrandPlugin::configure(&ctx).expect("configure");
        assert_eq!(
            p.subscriptions(),
            vec![
                (EventKind::Iq, 0),
                (EventKind::OccupantPreJoin, 0),
                (EventKind::OccupantJoined, 0)
            ]
        );
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

    fn occupant_event(nick: &str, name: &str) -> OccupantEvent {
        OccupantEvent {
            room: Room {
                jid: "r@conference.b".into(),
                ..Room::default()
            },
            occupant: Occupant {
                nick: nick.into(),
                jid: "a@b/c".into(),
                ..Occupant::default()
            },
            presence: Element::parse(&format!(
                "<presence xmlns='jabber:client'><nick xmlns='{}'>{name}</nick></presence>",
                policy::NICK
            ))
            .expect("presence"),
        }
    }

    #[test]
    fn the_plugin_checks_joins_and_greets_joiners() {
        let host = MemoryHost::default();
        let ctx = Configure::settings_only(r#"{"welcome":"Hi","max_name_length":5}"#);
        let mut p = BrandPlugin::configure(&ctx).expect("configure");
        assert!(matches!(
            p.handle(
                &host,
                Event::OccupantPreJoin(occupant_event("a1", "Bartholomew"))
            ),
            Verdict::Reject { .. }
        ));
        let Verdict::Replace(tidied) =
            p.handle(&host, Event::OccupantPreJoin(occupant_event("a1", " Ann ")))
        else {
            panic!("expected the tidied name")
        };
        assert!(tidied.to_xml().contains(">Ann<"), "{}", tidied.to_xml());
        assert!(host.take_sent().is_empty(), "nothing sent before the join");
        assert_eq!(
            p.handle(&host, Event::OccupantJoined(occupant_event("a1", "Ann"))),
            Verdict::Pass
        );
        assert_eq!(
            host.take_sent(),
            vec![
                "<message xmlns='jabber:client' from='r@conference.b' to='a@b/c' \
                 type='groupchat'><body>Hi</body></message>"
            ]
        );
        p.handle(&host, Event::OccupantJoined(occupant_event("focus", "")));
        assert!(host.take_sent().is_empty(), "the focus is not greeted");
    }
}
