//! conference-duration: a Lilt plugin replacing jitsi-meet's
//! mod_conference_duration_component. Bindings glue only; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks-and-component` (component `conferenceduration.DOMAIN`, identity
//! `component/conference_duration`; subscribes to `occupant-joined`). Settings: none.

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
        "conference_duration",
        lilt_plugin_sdk::no_settings,
        |_| {}
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
            vec![Subscription {
                kind: EventKind::OccupantJoined,
                priority: 0,
            }]
        }
        fn handle(event: Event) -> Verdict {
            if let Event::OccupantJoined(e) = event {
                super::policy::joined(
                    &BoundHost,
                    &component_domain(),
                    &room(e.room),
                    &occupant(e.occupant),
                );
            }
            verdict(lilt_plugin_sdk::hooks::Verdict::Pass)
        }
        fn on_timer(_: String) {}
    }

    export!(Plugin);
}
