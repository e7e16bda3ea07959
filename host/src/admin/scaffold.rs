//! `lilt plugin new NAME [--lang rust|js|python] [--world hooks|component|auth] [--dir PATH]`:
//! write a plugin that builds as is. Rust (the default), in the shape of examples/brand-plugin:
//! Cargo.toml depending on this checkout's `plugins/sdk` by path, src/lib.rs with the trait
//! impl and the export macro, src/policy.rs with the logic and a native test, README.md.
//! JavaScript and Python (hooks world only), in the shape of examples/brand-plugin-js and
//! examples/brand-plugin-py: a world of their own in wit/world.wit (importing only `stanzas`),
//! the policy, the plugin class, the component's entry, a native test, a link to this
//! checkout's SDK (plugins/sdk-js, plugins/sdk-py), and build.sh calling the toolchains that
//! scripts/plugin-langs-deps.sh pins.
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

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A Rust crate over `lilt-plugin-sdk`.
    Rust,
    /// An ES module over plugins/sdk-js, built with componentize-js.
    Js,
    /// A Python app over plugins/sdk-py, built with componentize-py.
    Python,
}

impl std::str::FromStr for Lang {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Lang> {
        match s {
            "rust" => Ok(Lang::Rust),
            "js" => Ok(Lang::Js),
            "python" => Ok(Lang::Python),
            _ => bail!("unknown language {s:?} (known: rust, js, python)"),
        }
    }
}

/// The checkout this `lilt` was built from (holding plugins/sdk, plugins/sdk-js,
/// plugins/sdk-py, wit/ and the pinned JS and Python toolchains).
pub fn checkout_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// The SDK of the checkout this `lilt` was built from.
pub fn sdk_path() -> PathBuf {
    checkout_path().join("plugins/sdk")
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

/// Write the plugin `dir/name` in `lang` for `world`, using the SDKs and toolchains of the Lilt
/// checkout at `checkout`; the plugin's path.
///
/// # Errors
/// A name that is not lowercase kebab-case, an existing target, a world other than hooks for
/// JavaScript or Python, or a failed write.
pub fn new_plugin_in(
    name: &str,
    lang: Lang,
    world: World,
    dir: &Path,
    checkout: &Path,
) -> anyhow::Result<PathBuf> {
    match lang {
        Lang::Rust => new_plugin(name, world, dir, &checkout.join("plugins/sdk")),
        Lang::Js | Lang::Python => {
            if world != World::Hooks {
                bail!(
                    "--lang {} writes hook plugins only (--world hooks); write component and \
                     auth plugins in Rust",
                    if lang == Lang::Js { "js" } else { "python" }
                );
            }
            new_script_plugin(name, lang, dir, checkout)
        }
    }
}

/// Refuse a bad name or an existing target; `dir/name`.
fn target(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
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
    Ok(root)
}

/// `room-greeter` → `RoomGreeter`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Write the crate `dir/name` for `world`, depending on the SDK at `sdk`; the crate's path.
///
/// # Errors
/// A name that is not lowercase kebab-case, an existing target, or a failed write.
pub fn new_plugin(name: &str, world: World, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    let root = target(name, dir)?;
    let ty = type_name(name);
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

/// Write a JavaScript or Python hook plugin `dir/name` over the checkout at `checkout`.
fn new_script_plugin(
    name: &str,
    lang: Lang,
    dir: &Path,
    checkout: &Path,
) -> anyhow::Result<PathBuf> {
    let root = target(name, dir)?;
    let checkout_str = checkout.display().to_string();
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{module}}", &name.replace('-', "_"))
            .replace("{{Type}}", &type_name(name))
            .replace("{{lilt}}", &checkout_str)
    };
    let (files, link, sdk): (&[(&str, &str)], &str, PathBuf) = match lang {
        Lang::Js => (
            &[
                ("wit/world.wit", SCRIPT_WORLD),
                ("src/policy.js", JS_POLICY),
                ("src/hooks.js", JS_HOOKS),
                ("src/plugin.js", JS_ENTRY),
                ("test/policy.test.js", JS_TEST),
                ("build.sh", JS_BUILD),
                ("README.md", JS_README),
                (".gitignore", "/build/\n"),
            ],
            "lilt-sdk",
            checkout.join("plugins/sdk-js"),
        ),
        Lang::Python => (
            &[
                ("wit/world.wit", SCRIPT_WORLD),
                ("policy.py", PY_POLICY),
                ("hooks.py", PY_HOOKS),
                ("app.py", PY_ENTRY),
                ("tests/__init__.py", PY_TESTS_INIT),
                ("tests/test_policy.py", PY_TEST),
                ("build.sh", PY_BUILD),
                ("README.md", PY_README),
                (".gitignore", "/build/\n__pycache__/\n"),
            ],
            "lilt_plugin",
            checkout.join("plugins/sdk-py/lilt_plugin"),
        ),
        Lang::Rust => bail!("not a script language"),
    };
    for (file, template) in files {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, fill(template))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let build = root.join("build.sh");
        std::fs::set_permissions(&build, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", build.display()))?;
        std::os::unix::fs::symlink(&sdk, root.join(link)).with_context(|| {
            format!("linking {} to {}", root.join(link).display(), sdk.display())
        })?;
    }
    #[cfg(not(unix))]
    bail!("JavaScript and Python plugins link to the SDK, which needs a Unix file system");
    Ok(root)
}

const SCRIPT_WORLD: &str = r##"// {{name}}'s world: the lilt:plugin interfaces it calls and the hook-handler export. The
// component imports only what is listed here, so it loads with grants = ["stanzas"]. Add
// `import lilt:plugin/kv@0.1.0;` (or timers, clock, host) when the plugin needs it, pass it to
// the host in the entry file, and grant it in the server's config. build.sh puts Lilt's wit/
// beside this file as deps/lilt-plugin.
package local:{{name}};

world {{name}} {
    import lilt:plugin/stanzas@0.1.0;
    export lilt:plugin/hook-handler@0.1.0;
}
"##;

const JS_POLICY: &str = r##"//! The policy: settings and the reply to `hello`. Pure (no host); tested natively by
//! test/policy.test.js.

import { CLIENT, Element, parseSettings } from '../lilt-sdk/lilt.js';

/** Settings defaults: unknown keys are refused. */
export const DEFAULTS = Object.freeze({ greeting: 'Hello from {{name}}!' });

/** Parse the settings (throws on bad JSON, an unknown key or a wrong type). */
export function configure(json) {
  return parseSettings(json, DEFAULTS);
}

/** The answer to a chat message whose body is `hello`, or undefined. */
export function reply(settings, message) {
  const body = message.child('body', CLIENT);
  if (!body || body.text().trim() !== 'hello') return undefined;
  const from = message.attr('from');
  if (from === undefined) return undefined;
  return new Element('message', CLIENT)
    .withAttr('to', from)
    .withAttr('type', 'chat')
    .withChild(new Element('body', CLIENT).withText(settings.greeting));
}
"##;

const JS_HOOKS: &str = r##"//! {{name}}: the plugin class. It answers a chat message `hello` sent to the vhost with the
//! configured greeting (the logic is in policy.js). Imports no WIT interface itself, so the
//! native tests run it under Node with a MemoryHost; src/plugin.js hands it the real host.

import { Verdict } from '../lilt-sdk/lilt.js';
import * as policy from './policy.js';

/** The plugin, configured for one vhost. */
export class {{Type}} {
  static configure({ settingsJson }) {
    return new {{Type}}(policy.configure(settingsJson));
  }

  constructor(settings) {
    this.settings = settings;
  }

  subscriptions() {
    return [['message', 0]];
  }

  handle(host, event) {
    if (event.kind !== 'message') return Verdict.pass();
    const reply = policy.reply(this.settings, event.stanza);
    if (!reply) return Verdict.pass();
    try {
      host.send(reply);
      return Verdict.handled();
    } catch {
      return Verdict.pass();
    }
  }
}
"##;

const JS_ENTRY: &str = r##"//! {{name}}, the component's entry: wires the WIT imports of wit/world.wit to the plugin class
//! (src/hooks.js) and exports `hookHandler`.

import * as stanzas from 'lilt:plugin/stanzas@0.1.0';
import { exportHooks, wasmHost } from '../lilt-sdk/lilt.js';
import { {{Type}} } from './hooks.js';

export const hookHandler = exportHooks({{Type}}, wasmHost({ stanzas }));
"##;

const JS_TEST: &str = r##"//! Native tests of {{name}} under plain Node: `node --test test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, MemoryHost, exportHooks } from '../lilt-sdk/lilt.js';
import { configure, reply } from '../src/policy.js';
import { {{Type}} } from '../src/hooks.js';

test('hello is answered with the greeting', () => {
  const settings = configure('{"greeting":"Hi!"}');
  const hello = Element.parse("<message xmlns='jabber:client' from='a@b/c' to='b'><body>hello</body></message>");
  const out = reply(settings, hello).toXml();
  assert.ok(out.includes('Hi!') && out.includes("to='a@b/c'"), out);
  const other = Element.parse("<message xmlns='jabber:client' from='a@b/c'><body>bye</body></message>");
  assert.equal(reply(settings, other), undefined);
  assert.throws(() => configure('{"greting":"x"}'), /greting/);
});

test('the plugin answers through the host', () => {
  const host = new MemoryHost();
  const handler = exportHooks({{Type}}, host);
  handler.configure('b', undefined, 'null');
  assert.deepEqual(handler.subscriptions(), [{ kind: 'message', priority: 0 }]);
  const hello = "<message xmlns='jabber:client' from='a@b/c' to='b'><body>hello</body></message>";
  assert.deepEqual(handler.handle({ tag: 'message', val: hello }), { tag: 'handled' });
  assert.match(host.takeSent()[0], /Hello from {{name}}!/);
});
"##;

const JS_BUILD: &str = r##"#!/usr/bin/env bash
# Build {{name}} into build/{{module}}.wasm with the componentize-js pinned by the Lilt checkout
# at {{lilt}} (run its scripts/plugin-langs-deps.sh once). Sources and SDK are copied into
# build/stage first (componentize-js reads modules only under the directory it runs in);
# `-d http -d fetch-event` leave out wasi:http, which Lilt refuses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lilt=${LILT_CHECKOUT:-{{lilt}}}
componentize="$lilt/plugins/js/node_modules/.bin/componentize-js"
[ -x "$componentize" ] || { echo "build.sh: $componentize missing; run $lilt/scripts/plugin-langs-deps.sh" >&2; exit 1; }
stage="$here/build/stage"
rm -rf "$stage"
mkdir -p "$stage/wit/deps/lilt-plugin"
cp -rL "$here/src" "$here/lilt-sdk" "$stage/"
cp "$here"/wit/*.wit "$stage/wit/"
cp "$lilt"/wit/*.wit "$stage/wit/deps/lilt-plugin/"
cd "$stage"
"$componentize" src/plugin.js --wit wit --world-name {{name}} -d http -d fetch-event \
    -o "$here/build/{{module}}.wasm"
echo "built $here/build/{{module}}.wasm"
"##;

const JS_README: &str = r##"# {{name}}

A Lilt hook plugin in JavaScript, made by `lilt plugin new --lang js`. It answers a chat
message `hello` sent to the vhost with the `greeting` setting.

| file | what |
|---|---|
| `src/policy.js` | the logic and its settings, pure and tested natively |
| `src/hooks.js` | the plugin class: subscriptions and routing |
| `src/plugin.js` | the component's entry: WIT imports in, `hookHandler` out |
| `wit/world.wit` | the world: which `lilt:plugin` interfaces it imports |
| `lilt-sdk` | a link to the Lilt checkout's plugins/sdk-js |

```sh
node --test test/     # the policy and the plugin class, natively
./build.sh            # build/{{module}}.wasm
```

Then add it to a vhost (`[[vhosts.plugins]]`, `path = ".../build/{{module}}.wasm"`,
`grants = ["stanzas"]`); see "Plugins in JavaScript" in Lilt's docs/plugins.md.
"##;

const PY_POLICY: &str = r##""""The policy: settings and the reply to `hello`. Pure (no host); tested natively by
tests/test_policy.py."""

from typing import Optional

from lilt_plugin import CLIENT, Element, parse_settings

DEFAULTS = {"greeting": "Hello from {{name}}!"}
"""Settings defaults: unknown keys are refused."""


def configure(settings_json: str) -> dict:
    """Parse the settings (ValueError on bad JSON, an unknown key or a wrong type)."""
    return parse_settings(settings_json, DEFAULTS)


def reply(settings: dict, message: Element) -> Optional[Element]:
    """The answer to a chat message whose body is `hello`, or None."""
    body = message.child("body", CLIENT)
    if body is None or body.text().strip() != "hello" or message.attr("from") is None:
        return None
    return (
        Element("message", CLIENT)
        .with_attr("to", message.attr("from"))
        .with_attr("type", "chat")
        .with_child(Element("body", CLIENT).with_text(settings["greeting"]))
    )
"##;

const PY_HOOKS: &str = r##""""{{name}}: the plugin class. It answers a chat message `hello` sent to the vhost with the
configured greeting (the logic is in policy.py). Imports no WIT interface itself, so the native
tests run it under CPython with a MemoryHost; app.py hands it the real host."""

import policy
from lilt_plugin import Verdict


class {{Type}}:
    """The plugin, configured for one vhost."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings

    @classmethod
    def configure(cls, vhost, component, settings_json):
        return cls(policy.configure(settings_json))

    def subscriptions(self):
        return [("message", 0)]

    def handle(self, host, event):
        if event.kind != "message":
            return Verdict.PASS
        reply = policy.reply(self.settings, event.stanza)
        if reply is None:
            return Verdict.PASS
        try:
            host.send(reply)
        except RuntimeError:
            return Verdict.PASS
        return Verdict.HANDLED
"##;

const PY_ENTRY: &str = r##""""{{name}}, the component's entry: wires the WIT imports of wit/world.wit to the plugin class
(hooks.py) and exports `HookHandler`."""

from hooks import {{Type}}
from lilt_plugin import WasmHost, hook_handler
from wit_world import exports
from wit_world.imports import hook_types, stanzas

HookHandler = hook_handler({{Type}}, WasmHost(stanzas=stanzas), hook_types, exports.HookHandler)
"##;

const PY_TESTS_INIT: &str = r##""""Native tests of {{name}}: `python3 -m unittest discover -s tests -t .`."""
"##;

const PY_TEST: &str = r##""""Native tests of {{name}} under plain CPython."""

import unittest

import policy
from hooks import {{Type}}
from lilt_plugin import Element, Hooks, MemoryHost, Verdict


class Policy(unittest.TestCase):
    def test_hello_is_answered_with_the_greeting(self):
        settings = policy.configure('{"greeting":"Hi!"}')
        hello = Element.parse("<message xmlns='jabber:client' from='a@b/c' to='b'><body>hello</body></message>")
        out = policy.reply(settings, hello).to_xml()
        self.assertTrue("Hi!" in out and "to='a@b/c'" in out, out)
        other = Element.parse("<message xmlns='jabber:client' from='a@b/c'><body>bye</body></message>")
        self.assertIsNone(policy.reply(settings, other))
        with self.assertRaisesRegex(ValueError, "greting"):
            policy.configure('{"greting":"x"}')

    def test_the_plugin_answers_through_the_host(self):
        host = MemoryHost()
        hooks = Hooks({{Type}}, host)
        hooks.configure("b", None, "null")
        self.assertEqual(hooks.subscriptions(), [("message", 0)])
        hello = "<message xmlns='jabber:client' from='a@b/c' to='b'><body>hello</body></message>"
        self.assertEqual(hooks.handle("message", hello), Verdict.HANDLED)
        self.assertIn("Hello from {{name}}!", host.take_sent()[0])


if __name__ == "__main__":
    unittest.main()
"##;

const PY_BUILD: &str = r##"#!/usr/bin/env bash
# Build {{name}} into build/{{module}}.wasm with the componentize-py pinned by the Lilt checkout
# at {{lilt}} (run its scripts/plugin-langs-deps.sh once). The world is wit/world.wit with
# Lilt's wit/ as deps/lilt-plugin (assembled in build/wit); the SDK comes from the checkout's
# plugins/sdk-py (componentize-py does not follow the lilt_plugin link the native tests use).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lilt=${LILT_CHECKOUT:-{{lilt}}}
componentize="$lilt/target/plugin-langs-venv/bin/componentize-py"
[ -x "$componentize" ] || { echo "build.sh: $componentize missing; run $lilt/scripts/plugin-langs-deps.sh" >&2; exit 1; }
rm -rf "$here/build/wit"
mkdir -p "$here/build/wit/deps/lilt-plugin"
cp "$here"/wit/*.wit "$here/build/wit/"
cp "$lilt"/wit/*.wit "$here/build/wit/deps/lilt-plugin/"
cd "$here"
"$componentize" -d build/wit -w {{name}} componentize -p "$here" -p "$lilt/plugins/sdk-py" app \
    -o build/{{module}}.wasm
echo "built $here/build/{{module}}.wasm"
"##;

const PY_README: &str = r##"# {{name}}

A Lilt hook plugin in Python, made by `lilt plugin new --lang python`. It answers a chat
message `hello` sent to the vhost with the `greeting` setting.

| file | what |
|---|---|
| `policy.py` | the logic and its settings, pure and tested natively |
| `hooks.py` | the plugin class: subscriptions and routing |
| `app.py` | the component's entry: WIT imports in, `HookHandler` out |
| `wit/world.wit` | the world: which `lilt:plugin` interfaces it imports |
| `lilt_plugin` | a link to the Lilt checkout's plugins/sdk-py/lilt_plugin |

```sh
python3 -m unittest discover -s tests -t .   # the policy and the plugin class, natively
./build.sh                                   # build/{{module}}.wasm
```

Then add it to a vhost (`[[vhosts.plugins]]`, `path = ".../build/{{module}}.wasm"`,
`grants = ["stanzas"]`); see "Plugins in Python" in Lilt's docs/plugins.md.
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

    #[test]
    fn languages_parse_and_rust_stays_the_crate() {
        assert_eq!("rust".parse::<Lang>().expect("rust"), Lang::Rust);
        assert_eq!("js".parse::<Lang>().expect("js"), Lang::Js);
        assert_eq!("python".parse::<Lang>().expect("python"), Lang::Python);
        assert!("py".parse::<Lang>().is_err());
        let dir = std::env::temp_dir().join(format!("lilt-scaffold-rust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = new_plugin_in("a", Lang::Rust, World::Auth, &dir, Path::new("/lilt"))
            .expect("scaffold");
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        assert!(
            cargo.contains("lilt-plugin-sdk = { path = \"/lilt/plugins/sdk\" }"),
            "{cargo}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writes_js_and_python_hook_plugins_linked_to_the_checkout() {
        let dir = std::env::temp_dir().join(format!("lilt-scaffold-langs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let checkout = Path::new("/lilt");
        for (lang, link, sdk, entry, export) in [
            (
                Lang::Js,
                "lilt-sdk",
                "/lilt/plugins/sdk-js",
                "src/plugin.js",
                "exportHooks(RoomGreeter, wasmHost({ stanzas }))",
            ),
            (
                Lang::Python,
                "lilt_plugin",
                "/lilt/plugins/sdk-py/lilt_plugin",
                "app.py",
                "HookHandler = hook_handler(RoomGreeter, WasmHost(stanzas=stanzas)",
            ),
        ] {
            let sub = dir.join(format!("{lang:?}"));
            let root = new_plugin_in("room-greeter", lang, World::Hooks, &sub, checkout)
                .expect("scaffold");
            let read = |f: &str| std::fs::read_to_string(root.join(f)).expect(f);
            assert!(read(entry).contains(export), "{}", read(entry));
            let world = read("wit/world.wit");
            assert!(
                world.contains("world room-greeter {")
                    && world.contains("import lilt:plugin/stanzas@0.1.0;")
                    && !world.contains("    import lilt:plugin/kv"),
                "{world}"
            );
            let build = read("build.sh");
            assert!(
                build.contains("lilt=${LILT_CHECKOUT:-/lilt}")
                    && build.contains("build/room_greeter.wasm")
                    && build.contains("--world-name room-greeter") == (lang == Lang::Js),
                "{build}"
            );
            assert!(!build.contains("{{"), "unfilled template: {build}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(root.join("build.sh")).expect("build.sh");
                assert_eq!(mode.permissions().mode() & 0o111, 0o111);
                let target = std::fs::read_link(root.join(link)).expect("link");
                assert_eq!(target, Path::new(sdk));
            }
            let err = new_plugin_in("other", lang, World::Component, &sub, checkout)
                .expect_err("component");
            assert!(err.to_string().contains("hook plugins only"), "{err}");
            assert!(!sub.join("other").exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
