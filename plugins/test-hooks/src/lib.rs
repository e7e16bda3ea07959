//! test-hooks: a test fixture, not a product plugin. With `mode = "trap"` (the default) it
//! traps on every event, so the tests can show that a broken hook plugin fails open (rooms and
//! messages keep working), is logged with its name and ends up disabled. With `mode = "pass"`
//! it answers `pass` to everything, which measures what one subscribed hook costs per stanza.
//!
//! World: `lilt:plugin/hooks`; subscribes to `message`, `occupant-pre-join` and
//! `occupant-joined`. Settings: `mode` (`trap` or `pass`).

/// What the fixture does on each event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Trap.
    #[default]
    Trap,
    /// Answer `pass`.
    Pass,
}

/// Settings.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What to do.
    #[serde(default)]
    pub mode: Mode,
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "hooks" });

    use std::cell::Cell;

    use exports::lilt::plugin::hook_handler::Guest;
    use lilt::plugin::hook_types::{Event, EventKind, Subscription, Verdict};

    thread_local! {
        static MODE: Cell<super::Mode> = const { Cell::new(super::Mode::Trap) };
    }

    struct Plugin;

    impl Guest for Plugin {
        fn configure(_: String, _: Option<String>, settings: String) -> Result<(), String> {
            let s: super::Settings = lilt_plugin_sdk::parse_settings(&settings)?;
            MODE.with(|m| m.set(s.mode));
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            [EventKind::Message, EventKind::OccupantPreJoin, EventKind::OccupantJoined]
                .into_iter()
                .map(|kind| Subscription { kind, priority: 1000 })
                .collect()
        }
        fn handle(_: Event) -> Verdict {
            match MODE.with(Cell::get) {
                // A guest bug: the host must survive it.
                super::Mode::Trap => core::arch::wasm32::unreachable(),
                super::Mode::Pass => Verdict::Pass,
            }
        }
        fn on_timer(_: String) {}
    }

    export!(Plugin);
}
