//! branding: a Lilt plugin for one tenant's brand and rules. Bindings glue only; the policy is
//! in policy.rs.
//!
//! World: `lilt:plugin/hooks` (subscribes to `room-pre-create`, `occupant-pre-join`,
//! `occupant-joined`, `presence` and `iq`). Settings: see README.md.

pub mod policy;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "hooks" });

    use std::cell::RefCell;

    use exports::lilt::plugin::hook_handler::Guest;
    use lilt::plugin::hook_types::{Event, EventKind, Subscription, Verdict};
    use lilt_plugin_sdk::hooks::Verdict as V;

    lilt_plugin_sdk::hook_glue!();

    thread_local! {
        static STATE: RefCell<Option<(String, super::policy::Policy)>> = const { RefCell::new(None) };
    }

    struct Plugin;

    impl Guest for Plugin {
        fn configure(
            vhost: String,
            _component: Option<String>,
            settings_json: String,
        ) -> Result<(), String> {
            let policy = super::policy::configure(&settings_json)?;
            STATE.with(|s| *s.borrow_mut() = Some((vhost, policy)));
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            [
                EventKind::RoomPreCreate,
                EventKind::OccupantPreJoin,
                EventKind::OccupantJoined,
                EventKind::Presence,
                EventKind::Iq,
            ]
            .into_iter()
            .map(|kind| Subscription {
                kind,
                priority: 100,
            })
            .collect()
        }
        fn handle(event: Event) -> Verdict {
            STATE.with(|s| {
                let s = s.borrow();
                let Some((vhost, p)) = s.as_ref() else {
                    return verdict(V::Pass);
                };
                verdict(match event {
                    Event::RoomPreCreate(c) => p.pre_create(&room(c.room)),
                    Event::OccupantPreJoin(e) => {
                        parse(&e.presence).map_or(V::Pass, |el| p.display_name(&el, true))
                    }
                    Event::Presence(xml) => {
                        parse(&xml).map_or(V::Pass, |el| p.display_name(&el, false))
                    }
                    Event::OccupantJoined(e) => {
                        if let Some(el) = parse(&e.presence) {
                            p.joined(&BoundHost, &room(e.room), &occupant(e.occupant), &el);
                        }
                        V::Pass
                    }
                    Event::Iq(xml) => {
                        parse(&xml).map_or(V::Pass, |el| p.iq(&BoundHost, vhost, &el))
                    }
                    _ => V::Pass,
                })
            })
        }
        fn on_timer(_: String) {}
    }

    export!(Plugin);
}
