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

    use exports::lilt::plugin::hook_handler::Guest as HookGuest;
    use lilt::plugin::hook_types::{Event, EventKind, Subscription, Verdict};

    lilt_plugin_sdk::hook_glue!();
    lilt_plugin_sdk::component_glue!(
        Plugin,
        "speakerstats",
        lilt_plugin_sdk::no_settings,
        |report| super::policy::report(&BoundHost, report)
    );

    struct Plugin;

    impl HookGuest for Plugin {
        fn configure(
            _vhost: String,
            component: Option<String>,
            settings_json: String,
        ) -> Result<(), String> {
            set_component_domain(component);
            lilt_plugin_sdk::no_settings(&settings_json)
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
            match event {
                Event::OccupantJoined(e) => {
                    if let Some(p) = parse(&e.presence) {
                        super::policy::joined(
                            &BoundHost,
                            &component_domain(),
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

    export!(Plugin);
}
