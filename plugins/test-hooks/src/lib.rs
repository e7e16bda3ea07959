//! test-hooks: a test fixture, not a product plugin. With `mode = "trap"` (the default) it
//! traps on every event, so the tests can show that a broken hook plugin fails open (rooms and
//! messages keep working), is logged with its name and ends up disabled. With `mode = "pass"`
//! it answers `pass` to everything, which measures what one subscribed hook costs per stanza.
//! With `mode = "timer"` a chat message whose body is `timer N` to the vhost is answered after
//! N ms (through `timers` and `stanzas`), and the plugin also tries to send a stanza from a
//! domain that is not its own, which the host must refuse.
//!
//! World: `lilt:plugin/hooks`; subscribes to `message`, `occupant-pre-join` and
//! `occupant-joined`. Settings: `mode` (`trap`, `pass` or `timer`).

/// What the fixture does on each event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Trap.
    #[default]
    Trap,
    /// Answer `pass`.
    Pass,
    /// Answer `timer N` messages later.
    Timer,
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

    use lilt_plugin_sdk::xml::Element;

    struct Plugin;

    /// `timer N` to the vhost: set a timer, try a forged send, and swallow the message.
    fn timer_request(event: Event) -> Verdict {
        let Event::Message(xml) = event else {
            return Verdict::Pass;
        };
        let Ok(msg) = Element::parse(&xml) else {
            return Verdict::Pass;
        };
        let body = msg
            .child("body", "jabber:client")
            .map(Element::text)
            .unwrap_or_default();
        let (Some(ms), Some(from)) = (
            body.strip_prefix("timer ")
                .and_then(|n| n.trim().parse::<u64>().ok()),
            msg.attr("from"),
        ) else {
            return Verdict::Pass;
        };
        let forged = Element::new("message", "jabber:client")
            .with_attr("from", "admin@elsewhere.example")
            .with_attr("to", from)
            .with_child(Element::new("body", "jabber:client").with_text("forged"));
        if lilt::plugin::stanzas::send(&forged.to_xml()).is_ok() {
            core::arch::wasm32::unreachable();
        }
        match lilt::plugin::timers::set_timer(ms, from) {
            Ok(()) => Verdict::Handled,
            Err(_) => Verdict::Pass,
        }
    }

    impl Guest for Plugin {
        fn configure(_: String, _: Option<String>, settings: String) -> Result<(), String> {
            let s: super::Settings = lilt_plugin_sdk::parse_settings(&settings)?;
            MODE.with(|m| m.set(s.mode));
            Ok(())
        }
        fn subscriptions() -> Vec<Subscription> {
            [
                EventKind::Message,
                EventKind::OccupantPreJoin,
                EventKind::OccupantJoined,
            ]
            .into_iter()
            .map(|kind| Subscription {
                kind,
                priority: 1000,
            })
            .collect()
        }
        fn handle(event: Event) -> Verdict {
            match MODE.with(Cell::get) {
                // A guest bug: the host must survive it.
                super::Mode::Trap => core::arch::wasm32::unreachable(),
                super::Mode::Pass => Verdict::Pass,
                super::Mode::Timer => timer_request(event),
            }
        }
        fn on_timer(tag: String) {
            // The tag is the asker's JID.
            let reply = Element::new("message", "jabber:client")
                .with_attr("to", tag)
                .with_child(Element::new("body", "jabber:client").with_text("timer fired"));
            let _ = lilt::plugin::stanzas::send(&reply.to_xml());
        }
    }

    export!(Plugin);
}
