//! `lilt plugin new NAME [--world hooks|component|auth] [--dir PATH]`: write a plugin crate
//! that builds as is, in the shape of examples/brand-plugin: Cargo.toml depending on this
//! checkout's `plugins/sdk` by path, src/lib.rs with the trait impl and the export macro,
//! src/policy.rs with the logic and a native test, README.md with the next steps.
//!
//! Shell (edge code: anyhow errors, files). Invariants: NAME is lowercase kebab-case; an
//! existing directory is never written into. Tests: `mod tests` below and tests/all/cli.rs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The plugin's role: which world it is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `lilt:plugin/hooks`.
    Hooks,
    /// `lilt:plugin/component`.
    Component,
    /// `lilt:plugin/auth`.
    Auth,
}

impl std::str::FromStr for World {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<World> {
        match s {
            "hooks" => Ok(World::Hooks),
            "component" => Ok(World::Component),
            "auth" => Ok(World::Auth),
            _ => bail!("unknown world {s:?} (known: hooks, component, auth)"),
        }
    }
}

/// The SDK of the checkout this `lilt` was built from.
pub fn sdk_path() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    sdk.canonicalize().unwrap_or(sdk)
}

/// Whether `name` is lowercase kebab-case: `a-z`/`0-9` words joined by single `-`, starting
/// with a letter.
pub fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Write the crate `dir/name` for `world`, depending on the SDK at `sdk`; the crate's path.
///
/// # Errors
/// A name that is not lowercase kebab-case, an existing target, or a failed write.
pub fn new_plugin(name: &str, world: World, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    if !valid_name(name) {
        bail!(
            "plugin name {name:?} is not lowercase kebab-case (letters, digits and single \
             dashes, starting with a letter, e.g. \"room-greeter\")"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!(
            "{} exists already; pick another name or --dir",
            root.display()
        );
    }
    let ty: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let (world_name, lib, policy) = match world {
        World::Hooks => ("hooks", HOOKS_LIB, HOOKS_POLICY),
        World::Component => ("component", COMPONENT_LIB, COMPONENT_POLICY),
        World::Auth => ("auth", AUTH_LIB, AUTH_POLICY),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{Type}}", &ty)
            .replace("{{world}}", world_name)
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
    };
    std::fs::create_dir_all(root.join("src"))
        .with_context(|| format!("creating {}", root.display()))?;
    for (file, template) in [
        ("Cargo.toml", CARGO_TOML),
        ("README.md", README),
        (".gitignore", "/target\n"),
        ("src/lib.rs", lib),
        ("src/policy.rs", policy),
    ] {
        let path = root.join(file);
        std::fs::write(&path, fill(template))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}

const CARGO_TOML: &str = r##"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false
description = "A Lilt plugin (world lilt:plugin/{{world}})."

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
lilt-plugin-sdk = { path = "{{sdk}}" }
serde = { version = "1", features = ["derive"] }

# The SDK's export macro expands generated ABI glue (unsafe) into this crate.
[lints.rust]
unsafe_code = "deny"

[profile.release]
debug = "line-tables-only"

# Standalone: not part of any enclosing workspace.
[workspace]
"##;

const README: &str = r##"# {{name}}

A Lilt plugin for the `lilt:plugin/{{world}}` world, made by `lilt plugin new`.

| file | what |
|---|---|
| `src/policy.rs` | the logic and its settings, pure and tested natively |
| `src/lib.rs` | the SDK trait impls and `lilt_plugin_sdk::export_*!` |

```sh
cargo test                                      # the policy, natively
cargo build --release --target wasm32-wasip2    # target/wasm32-wasip2/release/{{crate}}.wasm
```

Then add it to a vhost of the server's config and start (or reload) the server; see "From
`lilt plugin new` to live" in Lilt's docs/plugins.md.
"##;

const HOOKS_LIB: &str = r##"//! {{name}}: a Lilt hook plugin. It answers a chat message `hello` sent to the vhost with the
//! configured greeting. The logic is in policy.rs; this file only routes.

pub mod policy;

use lilt_plugin_sdk::{Configure, Event, EventKind, HookPlugin, Host, Plugin, Verdict};

/// The plugin, configured for one vhost.
#[derive(Debug)]
pub struct {{Type}} {
    settings: policy::Settings,
}

impl Plugin for {{Type}} {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok({{Type}} {
            settings: ctx.settings()?,
        })
    }
}

impl HookPlugin for {{Type}} {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        vec![(EventKind::Message, 0)]
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        let Event::Message(message) = event else {
            return Verdict::Pass;
        };
        match policy::reply(&self.settings, &message) {
            Some(reply) if host.send(&reply).is_ok() => Verdict::Handled,
            _ => Verdict::Pass,
        }
    }
}

lilt_plugin_sdk::export_hooks!({{Type}});
"##;

const HOOKS_POLICY: &str = r##"//! The policy: settings and the reply to `hello`. Pure; tested natively below.

use lilt_plugin_sdk::Element;
use lilt_plugin_sdk::hooks::CLIENT;

/// Settings (unknown keys are refused).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// What `hello` is answered with.
    pub greeting: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            greeting: "Hello from {{name}}!".to_owned(),
        }
    }
}

/// The answer to a chat message whose body is `hello`, or `None`.
pub fn reply(settings: &Settings, message: &Element) -> Option<Element> {
    let body = message.child("body", CLIENT)?;
    if body.text().trim() != "hello" {
        return None;
    }
    let from = message.attr("from")?;
    Some(
        Element::new("message", CLIENT)
            .with_attr("to", from)
            .with_attr("type", "chat")
            .with_child(Element::new("body", CLIENT).with_text(&settings.greeting)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_answered_with_the_greeting() {
        let settings: Settings =
            lilt_plugin_sdk::parse_settings(r#"{"greeting":"Hi!"}"#).expect("settings");
        let hello = Element::parse(
            "<message xmlns='jabber:client' from='a@b/c' to='b'><body>hello</body></message>",
        )
        .expect("message");
        let reply = reply(&settings, &hello).expect("reply").to_xml();
        assert!(reply.contains("Hi!") && reply.contains("to='a@b/c'"), "{reply}");
        let other = Element::parse(
            "<message xmlns='jabber:client' from='a@b/c'><body>bye</body></message>",
        )
        .expect("message");
        assert!(super::reply(&settings, &other).is_none());
        assert!(lilt_plugin_sdk::parse_settings::<Settings>(r#"{"greting":"x"}"#).is_err());
    }
}
"##;

const COMPONENT_LIB: &str = r##"//! {{name}}: a Lilt component plugin. It owns a domain (`component = "..."` in the config),
//! advertises `component/{{name}}` and echoes the body of every message sent to it; disco and
//! ping get the SDK's standard answers. The logic is in policy.rs.

pub mod policy;

use lilt_plugin_sdk::{ComponentPlugin, Configure, DiscoIdentity, Element, Host, Plugin};

/// The plugin.
#[derive(Debug)]
pub struct {{Type}};

impl Plugin for {{Type}} {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        ctx.no_settings().map(|()| {{Type}})
    }
}

impl ComponentPlugin for {{Type}} {
    fn identity(&self) -> Option<DiscoIdentity> {
        Some(DiscoIdentity::component("{{name}}"))
    }

    fn handle_message(&mut self, host: &impl Host, message: Element) {
        if let Some(reply) = policy::echo(&message) {
            let _ = host.send(&reply);
        }
    }
}

lilt_plugin_sdk::export_component!({{Type}});
"##;

const COMPONENT_POLICY: &str = r##"//! The policy: echo a message back to its sender. Pure; tested natively below.

use lilt_plugin_sdk::Element;
use lilt_plugin_sdk::hooks::CLIENT;

/// The echo of a message with a body, from the address it was sent to.
pub fn echo(message: &Element) -> Option<Element> {
    let body = message.child("body", CLIENT)?.text();
    let mut reply = Element::new("message", CLIENT)
        .with_attr("to", message.attr("from")?)
        .with_child(Element::new("body", CLIENT).with_text(&body));
    if let Some(to) = message.attr("to") {
        reply.set_attr("from", to);
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_body() {
        let m = Element::parse(
            "<message xmlns='jabber:client' from='a@b/c' to='echo.b'><body>hi</body></message>",
        )
        .expect("message");
        let reply = echo(&m).expect("echo").to_xml();
        assert!(reply.contains(">hi<") && reply.contains("from='echo.b'"), "{reply}");
    }
}
"##;

const AUTH_LIB: &str = r##"//! {{name}}: a Lilt auth plugin. It accepts PLAIN logins for the accounts listed in its
//! settings; account management answers `not-supported` (the SDK's defaults). The logic is in
//! policy.rs.

pub mod policy;

use lilt_plugin_sdk::{AuthError, AuthPlugin, Configure, Mechanism, Plugin, Store};

/// The plugin, configured.
#[derive(Debug)]
pub struct {{Type}} {
    settings: policy::Settings,
}

impl Plugin for {{Type}} {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok({{Type}} {
            settings: ctx.settings()?,
        })
    }
}

impl AuthPlugin for {{Type}} {
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Plain]
    }

    fn user_exists(&self, _: &impl Store, username: &str) -> Result<bool, AuthError> {
        Ok(self.settings.accounts.contains_key(username))
    }

    fn test_password(&self, _: &impl Store, username: &str, password: &str) -> Result<bool, AuthError> {
        Ok(policy::check(&self.settings, username, password))
    }
}

lilt_plugin_sdk::export_auth!({{Type}});
"##;

const AUTH_POLICY: &str = r##"//! The policy: accounts from the settings. Pure; tested natively below.

use std::collections::BTreeMap;

/// Settings (unknown keys are refused).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Username to password.
    pub accounts: BTreeMap<String, String>,
}

/// Whether `password` is right for `username` (compared in constant time).
pub fn check(settings: &Settings, username: &str, password: &str) -> bool {
    settings
        .accounts
        .get(username)
        .is_some_and(|p| lilt_plugin_sdk::ct_eq(p.as_bytes(), password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_passwords() {
        let s: Settings =
            lilt_plugin_sdk::parse_settings(r#"{"accounts":{"alice":"pw"}}"#).expect("settings");
        assert!(check(&s, "alice", "pw"));
        assert!(!check(&s, "alice", "nope") && !check(&s, "bob", "pw"));
    }
}
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_lowercase_kebab_case() {
        for ok in ["a", "room-greeter", "auth-v2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Room",
            "room_greeter",
            "-a",
            "a-",
            "a--b",
            "2fa",
            "a b",
            "../x",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn writes_a_crate_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("lilt-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root =
            new_plugin("room-greeter", World::Hooks, &dir, Path::new("/sdk")).expect("scaffold");
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        assert!(
            cargo.contains("lilt-plugin-sdk = { path = \"/sdk\" }"),
            "{cargo}"
        );
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("export_hooks!(RoomGreeter)"), "{lib}");
        let err =
            new_plugin("room-greeter", World::Hooks, &dir, Path::new("/sdk")).expect_err("exists");
        assert!(err.to_string().contains("exists already"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
