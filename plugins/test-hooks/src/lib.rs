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
//! second build that answers visibly differently, and swap the two under traffic. They patch
//! `CONFIGURE_MARK` to make a build that panics in `configure`.
//!
//! World: `lilt:plugin/hooks`; subscribes to `message`, `occupant-pre-join` and
//! `occupant-joined`. Settings: `mode` (`trap`, `pass`, `timer`, `stamp`, `panic`, `print`,
//! `loop`, `alloc`, `recurse` or `kv`).

use lilt_plugin_sdk::{Configure, Element, Event, EventKind, HookPlugin, Host, Plugin, Verdict};

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

/// A marker `configure` checks: a build whose copy is patched to start with anything but `c`
/// panics in `configure`, which is how the reload tests make a generation that fails its
/// canary. Keep its length.
pub const CONFIGURE_MARK: &str = "configure-ok-mark";

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

/// The plugin, configured with its mode.
#[derive(Debug)]
pub struct TestHooks {
    mode: Mode,
}

/// A trap without a panic message: `unreachable` in wasm (a guest bug the host must survive).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::process::abort()
    }
}

fn body(msg: &Element) -> String {
    msg.child("body", "jabber:client")
        .map(Element::text)
        .unwrap_or_default()
}

/// `timer N` to the vhost: set a timer, try a forged send, and swallow the message.
fn timer_request(host: &impl Host, event: Event) -> Verdict {
    let Event::Message(msg) = event else {
        return Verdict::Pass;
    };
    let body = body(&msg);
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
    if host.send(&forged).is_ok() {
        trap();
    }
    match host.set_timer(ms, from) {
        Ok(()) => Verdict::Handled,
        Err(_) => Verdict::Pass,
    }
}

/// `stamp` to the vhost: answer with the build's marker and swallow the message.
fn stamp(host: &impl Host, event: Event) -> Verdict {
    let Event::Message(msg) = event else {
        return Verdict::Pass;
    };
    let (true, Some(from)) = (body(&msg) == "stamp", msg.attr("from")) else {
        return Verdict::Pass;
    };
    // A marker the optimizer cannot fold away, so the bytes stay patchable.
    let marker = std::hint::black_box(STAMP);
    let reply = Element::new("message", "jabber:client")
        .with_attr("to", from)
        .with_attr("type", "chat")
        .with_child(Element::new("body", "jabber:client").with_text(marker));
    let _ = host.send(&reply);
    Verdict::Handled
}

impl Plugin for TestHooks {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        // Read through black_box so that the bytes stay in the data segment, patchable.
        if std::hint::black_box(CONFIGURE_MARK).as_bytes().first() != Some(&b'c') {
            panic!("test-hooks: this build was patched to fail in configure");
        }
        let s: Settings = ctx.settings()?;
        Ok(TestHooks { mode: s.mode })
    }
}

impl HookPlugin for TestHooks {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        [
            EventKind::Message,
            EventKind::OccupantPreJoin,
            EventKind::OccupantJoined,
        ]
        .into_iter()
        .map(|kind| (kind, 1000))
        .collect()
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        match self.mode {
            // A guest bug: the host must survive it.
            Mode::Trap => trap(),
            Mode::Pass => Verdict::Pass,
            Mode::Timer => timer_request(host, event),
            Mode::Stamp => stamp(host, event),
            Mode::Panic => panic!("test-hooks: deliberate panic in handle"),
            Mode::Print => {
                for i in 0..PRINT_LINES {
                    println!("test-hooks stdout line {i}");
                    eprintln!("test-hooks stderr line {i}");
                }
                Verdict::Pass
            }
            Mode::Loop => loop {
                std::hint::black_box(&event);
            },
            Mode::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Recurse => {
                let mut buf = [0u8; 256];
                let n = recurse(0, &mut buf);
                std::hint::black_box(n);
                Verdict::Pass
            }
            Mode::Kv => {
                let value = vec![7u8; 64 * 1024];
                for i in 0..100_000u32 {
                    if host.set(&format!("spam/{i}"), &value).is_err() {
                        break;
                    }
                }
                Verdict::Pass
            }
        }
    }

    fn on_timer(&mut self, host: &impl Host, tag: &str) {
        // The tag is the asker's JID.
        let reply = Element::new("message", "jabber:client")
            .with_attr("to", tag)
            .with_child(Element::new("body", "jabber:client").with_text("timer fired"));
        let _ = host.send(&reply);
    }
}

lilt_plugin_sdk::export_hooks!(TestHooks);
