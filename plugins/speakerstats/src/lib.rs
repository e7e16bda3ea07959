//! speakerstats: a Lilt plugin replacing jitsi-meet's mod_speakerstats_component. Bindings
//! glue only; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks-and-component` (component `speakerstats.DOMAIN`, identity
//! `component/speakerstats`; subscribes to `room-created`, `occupant-joined`,
//! `occupant-left`, `room-destroyed`). Settings: none.

pub mod policy;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "hooks-and-component" });

    use std::cell::RefCell;

    use exports::lilt::plugin::component_handler::{DiscoIdentity, Guest as ComponentGuest};
    use exports::lilt::plugin::hook_handler::Guest as HookGuest;
    use lilt::plugin::hook_types::{Event, EventKind, Subscription, Verdict};

    lilt_plugin_sdk::hook_glue!();

    thread_local! {
        static DOMAIN: RefCell<String> = const { RefCell::new(String::new()) };
    }

    struct Plugin;

    impl HookGuest for Plugin {
        fn configure(
            vhost: String,
            component: Option<String>,
            settings_json: String,
        ) -> Result<(), String> {
            super::policy::configure(&settings_json)?;
            let domain = component.unwrap_or_else(|| format!("speakerstats.{vhost}"));
            DOMAIN.with(|d| *d.borrow_mut() = domain);
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            [
                EventKind::RoomCreated,
                EventKind::OccupantJoined,
                EventKind::OccupantLeft,
                EventKind::RoomDestroyed,
            ]
            .into_iter()
            .map(|kind| Subscription { kind, priority: 0 })
            .collect()
        }
        fn handle(event: Event) -> Verdict {
            let domain = DOMAIN.with(|d| d.borrow().clone());
            match event {
                Event::OccupantJoined(e) => {
                    if let Some(p) = parse(&e.presence) {
                        super::policy::joined(
                            &BoundHost,
                            &domain,
                            &room(e.room),
                            &occupant(e.occupant),
                            &p,
                        );
                    }
                }
                Event::OccupantLeft(e) => {
                    if let Some(p) = parse(&e.presence) {
                        super::policy::left(&BoundHost, &room(e.room), &occupant(e.occupant), &p);
                    }
                }
                // A new room starts clean, even if a crash left a namesake's state behind.
                Event::RoomCreated(r) | Event::RoomDestroyed(r) => {
                    super::policy::destroyed(&BoundHost, &room(r))
                }
                _ => {}
            }
            verdict(lilt_plugin_sdk::hooks::Verdict::Pass)
        }
        fn on_timer(_: String) {}
    }

    impl ComponentGuest for Plugin {
        fn configure(_domain: String, settings_json: String) -> Result<(), String> {
            super::policy::configure(&settings_json).map(|_| ())
        }
        fn identity() -> Option<DiscoIdentity> {
            Some(DiscoIdentity {
                category: "component".into(),
                kind: "speakerstats".into(),
            })
        }
        fn handle_stanza(stanza: String) {
            let Some(el) = parse(&stanza) else { return };
            if el.name == "message" {
                super::policy::report(&BoundHost, &el);
            } else if let Some(reply) =
                lilt_plugin_sdk::hooks::component_reply(&el, "component", "speakerstats")
            {
                let _ = lilt_plugin_sdk::hooks::Host::send(&BoundHost, &reply);
            }
        }
    }

    export!(Plugin);
}
