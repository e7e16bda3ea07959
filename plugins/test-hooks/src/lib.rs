//! test-hooks: a test fixture, not a product plugin. With `mode = "trap"` (the default) it
//! traps on every event, so the tests can show that a broken hook plugin fails open (rooms and
//! messages keep working), is logged with its name and ends up disabled. With `mode = "pass"`
//! it answers `pass` to everything, which measures what one subscribed hook costs per stanza.
//! With `mode = "timer"` a chat message whose body is `timer N` to the vhost is answered after
//! N ms (through `timers` and `stanzas`), and the plugin also tries to send a stanza from a
//! domain that is not its own, which the host must refuse.
//!
//! The misbehaving modes are what a tenant's buggy plugin does, each on every event: `panic`
//! (a Rust `panic!`, which prints its message to stderr before it traps), `print` (thousands
//! of lines on stdout and stderr, then `pass`), `loop` (never returns), `alloc` (allocates
//! until the memory cap), `recurse` (until the stack is exhausted) and `kv` (writes to `kv`
//! in a tight loop until the quota refuses, then `pass`).
//!
//! With `mode = "stamp"` a chat message whose body is `stamp` is answered with `STAMP`, the
//! build's marker: the hot-reload tests patch that string in a copy of the component to make a
//! second build that answers visibly differently, and swap the two under traffic.
//!
//! World: `lilt:plugin/hooks`; subscribes to `message`, `occupant-pre-join` and
//! `occupant-joined`. Settings: `mode` (`trap`, `pass`, `timer`, `stamp`, `panic`, `print`,
//! `loop`, `alloc`, `recurse` or `kv`).

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
    /// Answer `stamp` with the build's marker.
    Stamp,
    /// `panic!`.
    Panic,
    /// Print a lot, then pass.
    Print,
    /// Loop forever.
    Loop,
    /// Allocate until the memory cap.
    Alloc,
    /// Recurse until the stack is exhausted.
    Recurse,
    /// Write to kv until the quota refuses, then pass.
    Kv,
}

/// The build marker `stamp` mode answers with (patched in copies by the reload tests; keep
/// its length).
pub const STAMP: &str = "test-hooks-build-A";

/// Lines `print` mode writes to each of stdout and stderr per event.
pub const PRINT_LINES: usize = 5_000;

/// Recursion that the optimizer cannot turn into a loop, and that never ends (on purpose).
#[inline(never)]
#[allow(unconditional_recursion)]
pub fn recurse(depth: u64, buf: &mut [u8; 256]) -> u64 {
    let mut local = [0u8; 256];
    local[(depth % 256) as usize] = buf[(depth % 256) as usize].wrapping_add(1);
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + u64::from(local[0])
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

    /// `stamp` to the vhost: answer with the build's marker and swallow the message.
    fn stamp(event: Event) -> Verdict {
        let Event::Message(xml) = event else {
            return Verdict::Pass;
        };
        let Ok(msg) = Element::parse(&xml) else {
            return Verdict::Pass;
        };
        let asked = msg
            .child("body", "jabber:client")
            .is_some_and(|b| b.text() == "stamp");
        let (true, Some(from)) = (asked, msg.attr("from")) else {
            return Verdict::Pass;
        };
        // A marker the optimizer cannot fold away, so the bytes stay patchable.
        let marker = std::hint::black_box(super::STAMP);
        let reply = Element::new("message", "jabber:client")
            .with_attr("to", from)
            .with_attr("type", "chat")
            .with_child(Element::new("body", "jabber:client").with_text(marker));
        let _ = lilt::plugin::stanzas::send(&reply.to_xml());
        Verdict::Handled
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
                super::Mode::Stamp => stamp(event),
                super::Mode::Panic => panic!("test-hooks: deliberate panic in handle"),
                super::Mode::Print => {
                    for i in 0..super::PRINT_LINES {
                        println!("test-hooks stdout line {i}");
                        eprintln!("test-hooks stderr line {i}");
                    }
                    Verdict::Pass
                }
                super::Mode::Loop => loop {
                    std::hint::black_box(&event);
                },
                super::Mode::Alloc => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                super::Mode::Recurse => {
                    let mut buf = [0u8; 256];
                    let n = super::recurse(0, &mut buf);
                    std::hint::black_box(n);
                    Verdict::Pass
                }
                super::Mode::Kv => {
                    let value = vec![7u8; 64 * 1024];
                    for i in 0..100_000u32 {
                        if lilt::plugin::kv::set(&format!("spam/{i}"), &value).is_err() {
                            break;
                        }
                    }
                    Verdict::Pass
                }
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
