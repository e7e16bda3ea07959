//! test-hook-trap: a test fixture, not a product plugin. It subscribes to messages and room
//! joins and traps on every event, so the tests can show that a broken hook plugin fails open
//! (rooms and messages keep working), is logged with its name, and ends up disabled.
//!
//! World: `lilt:plugin/hooks`. Settings: none.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "hooks" });

    use exports::lilt::plugin::hook_handler::Guest;
    use lilt::plugin::hook_types::{Event, EventKind, Subscription, Verdict};

    struct Plugin;

    impl Guest for Plugin {
        fn configure(_: String, _: Option<String>, _: String) -> Result<(), String> {
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            [EventKind::Message, EventKind::OccupantPreJoin, EventKind::OccupantJoined]
                .into_iter()
                .map(|kind| Subscription { kind, priority: 1000 })
                .collect()
        }
        fn handle(_: Event) -> Verdict {
            // A guest bug: the host must survive it.
            core::arch::wasm32::unreachable()
        }
        fn on_timer(_: String) {}
    }

    export!(Plugin);
}
