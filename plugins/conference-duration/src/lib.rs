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
            let domain = component.unwrap_or_else(|| format!("conferenceduration.{vhost}"));
            DOMAIN.with(|d| *d.borrow_mut() = domain);
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            vec![Subscription {
                kind: EventKind::OccupantJoined,
                priority: 0,
            }]
        }
        fn handle(event: Event) -> Verdict {
            if let Event::OccupantJoined(e) = event {
                let domain = DOMAIN.with(|d| d.borrow().clone());
                super::policy::joined(&BoundHost, &domain, &room(e.room), &occupant(e.occupant));
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
                kind: "conference_duration".into(),
            })
        }
        fn handle_stanza(stanza: String) {
            let Some(el) = parse(&stanza) else { return };
            if let Some(reply) =
                lilt_plugin_sdk::hooks::component_reply(&el, "component", "conference_duration")
            {
                let _ = lilt_plugin_sdk::hooks::Host::send(&BoundHost, &reply);
            }
        }
    }

    export!(Plugin);
}
