//! The generated bindings of `wit/` and the glue between them and the SDK's traits (wasm32
//! only). Plugins never use this module directly: the `export_*!` macros do.
//!
//! The WIT is read from the repository's `wit/` folder, relative to this crate's own
//! `Cargo.toml` (`wit_bindgen::generate!` resolves `path` against the `CARGO_MANIFEST_DIR` of
//! the crate that expands it, which is this one), so a plugin anywhere on disk that depends on
//! the SDK by path gets the same contract without a copy. Three worlds are generated, each with
//! `pub_export_macro`: the library then carries only the worlds' imports (which
//! `wit-component` drops when unused), and each `export!` expansion in a plugin carries its
//! world with the exports. `hooks-and-component` is `hooks` and `component` exported together;
//! the two sections merge into that world. `component` and `auth` reuse the import bindings of
//! `hooks`, so there is one `WasmHost`.
//!
//! State: one configured plugin value per instance, in a thread-local, rebuilt only when the
//! arguments of `configure` change.

#![allow(unsafe_code)]

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::hooks::{self, Host, LogLevel, Store};
use crate::identity::{self as id, IdentityPlugin};
use crate::plugin::{AuthPlugin, ComponentPlugin, Configure, HookPlugin, Plugin};
use crate::xml::Element;

/// The `hooks` world (also the home of the shared import bindings).
pub mod hooks_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "hooks",
        pub_export_macro: true,
        default_bindings_module: "lilt_plugin_sdk::bindings::hooks_world",
    });
}

/// The `component` world.
pub mod component_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "component",
        pub_export_macro: true,
        default_bindings_module: "lilt_plugin_sdk::bindings::component_world",
        with: {
            "lilt:plugin/host@0.1.0": crate::bindings::hooks_world::lilt::plugin::host,
            "lilt:plugin/kv@0.1.0": crate::bindings::hooks_world::lilt::plugin::kv,
            "lilt:plugin/clock@0.1.0": crate::bindings::hooks_world::lilt::plugin::clock,
            "lilt:plugin/stanzas@0.1.0": crate::bindings::hooks_world::lilt::plugin::stanzas,
        },
    });
}

/// The `auth` world.
pub mod auth_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "auth",
        pub_export_macro: true,
        default_bindings_module: "lilt_plugin_sdk::bindings::auth_world",
        with: {
            "lilt:plugin/host@0.1.0": crate::bindings::hooks_world::lilt::plugin::host,
            "lilt:plugin/kv@0.1.0": crate::bindings::hooks_world::lilt::plugin::kv,
            "lilt:plugin/clock@0.1.0": crate::bindings::hooks_world::lilt::plugin::clock,
        },
    });
}

/// The `identity` world: `identity-provider`, importing `keys` and `ldap`. With `auth` it
/// makes `auth-identity`.
pub mod identity_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "identity",
        pub_export_macro: true,
        default_bindings_module: "lilt_plugin_sdk::bindings::identity_world",
        with: {
            "lilt:plugin/host@0.1.0": crate::bindings::hooks_world::lilt::plugin::host,
            "lilt:plugin/kv@0.1.0": crate::bindings::hooks_world::lilt::plugin::kv,
            "lilt:plugin/clock@0.1.0": crate::bindings::hooks_world::lilt::plugin::clock,
            "lilt:plugin/types@0.1.0": crate::bindings::auth_world::lilt::plugin::types,
        },
    });
}

use hooks_world::exports::lilt::plugin::hook_handler as hh;
use hooks_world::lilt::plugin::{clock, hook_types as ht, host, kv, stanzas, timers};

/// The host, through the generated imports. Each method calls only its own import, and the
/// SDK dispatches statically, so a plugin imports only what it uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

fn kv_error(e: kv::KvError) -> String {
    match e {
        kv::KvError::QuotaExceeded => "storage quota exceeded".to_owned(),
        kv::KvError::Storage(s) => s,
    }
}

impl Host for WasmHost {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key).ok().flatten()
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        kv::set(key, value).map_err(kv_error)
    }
    fn delete(&self, key: &str) {
        let _ = kv::delete(key);
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        kv::list_keys(prefix).unwrap_or_default()
    }
    fn now_ms(&self) -> u64 {
        clock::now_unix_millis()
    }
    fn send(&self, stanza: &Element) -> Result<(), String> {
        let result = stanzas::send(&stanza.to_xml());
        if let Err(e) = &result {
            self.log(LogLevel::Warn, &format!("send refused: {e}"));
        }
        result
    }
    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<(), String> {
        timers::set_timer(delay_ms, tag)
    }
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => host::LogLevel::Debug,
            LogLevel::Info => host::LogLevel::Info,
            LogLevel::Warn => host::LogLevel::Warn,
            LogLevel::Error => host::LogLevel::Error,
        };
        host::log(level, message);
    }
}

impl Store for WasmHost {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        kv::get(key).map_err(kv_error)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        kv::set(key, value).map_err(kv_error)
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        kv::delete(key).map_err(kv_error)
    }
    fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        kv::list_keys(prefix).map_err(kv_error)
    }
}

use identity_world::lilt::plugin::{keys as wk, ldap as wl};

impl id::Keys for WasmHost {
    fn public_key(&self, kid: &str) -> Result<String, id::KeyError> {
        wk::public_key(kid).map_err(|e| match e {
            wk::KeyError::NotFound => id::KeyError::NotFound,
            wk::KeyError::Unavailable(s) => id::KeyError::Unavailable(s),
        })
    }
}

fn ldap_error(e: wl::LdapError) -> id::LdapError {
    match e {
        wl::LdapError::Unavailable(s) => id::LdapError::Unavailable(s),
        wl::LdapError::Refused(s) => id::LdapError::Refused(s),
    }
}

impl id::Directory for WasmHost {
    fn bind(&self, dn: &str, password: &str) -> Result<bool, id::LdapError> {
        wl::bind(dn, password).map_err(ldap_error)
    }
    fn search(
        &self,
        base: &str,
        scope: id::Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<id::Entry>, id::LdapError> {
        let scope = match scope {
            id::Scope::Base => wl::Scope::Base,
            id::Scope::One => wl::Scope::One,
            id::Scope::Sub => wl::Scope::Sub,
        };
        let attributes: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let entries = wl::search(base, scope, filter, &attributes).map_err(ldap_error)?;
        Ok(entries
            .into_iter()
            .map(|e| id::Entry {
                dn: e.dn,
                attributes: e.attributes,
            })
            .collect())
    }
}

thread_local! {
    /// The configured plugin of this instance and the arguments it was configured with.
    static STATE: RefCell<Option<(Configure, Box<dyn Any>)>> = const { RefCell::new(None) };
}

/// Configure `T`, unless this instance already holds a `T` configured with `ctx`.
fn configure<T: Plugin>(ctx: Configure) -> Result<(), String> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if let Some((old, plugin)) = state.as_ref()
            && *old == ctx
            && plugin.is::<T>()
        {
            return Ok(());
        }
        *state = None;
        let plugin = T::configure(&ctx)?;
        *state = Some((ctx, Box::new(plugin)));
        Ok(())
    })
}

/// Run `f` on the configured plugin; `None` when there is none (the host always configures
/// first, so only a host bug gets here).
fn with<T: Plugin, R>(f: impl FnOnce(&mut T) -> R) -> Option<R> {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let plugin = state.as_mut()?.1.downcast_mut::<T>()?;
        Some(f(plugin))
    })
}

/// The exports of every world, implemented over a plugin type `T`; what the `export_*!`
/// macros hand to the generated `export!`.
pub struct Adapter<T>(PhantomData<T>);

fn event_kind(k: hooks::EventKind) -> ht::EventKind {
    use hooks::EventKind as K;
    match k {
        K::Message => ht::EventKind::Message,
        K::Presence => ht::EventKind::Presence,
        K::Iq => ht::EventKind::Iq,
        K::RoomPreCreate => ht::EventKind::RoomPreCreate,
        K::RoomCreated => ht::EventKind::RoomCreated,
        K::RoomDestroyed => ht::EventKind::RoomDestroyed,
        K::OccupantPreJoin => ht::EventKind::OccupantPreJoin,
        K::OccupantJoined => ht::EventKind::OccupantJoined,
        K::OccupantLeft => ht::EventKind::OccupantLeft,
    }
}

fn room(r: ht::Room) -> hooks::Room {
    hooks::Room {
        jid: r.jid,
        meeting_id: r.meeting_id,
        created_millis: r.created_millis,
        occupants: r.occupants,
    }
}

fn occupant_event(e: ht::OccupantEvent) -> Option<hooks::OccupantEvent> {
    Some(hooks::OccupantEvent {
        room: room(e.room),
        occupant: hooks::Occupant {
            nick: e.occupant.nick,
            jid: e.occupant.jid,
            role: e.occupant.role,
            affiliation: e.occupant.affiliation,
        },
        presence: Element::parse(&e.presence).ok()?,
    })
}

fn event(e: ht::Event) -> Option<hooks::Event> {
    use hooks::Event as E;
    let parse = |xml: &str| Element::parse(xml).ok();
    Some(match e {
        ht::Event::Message(x) => E::Message(parse(&x)?),
        ht::Event::Presence(x) => E::Presence(parse(&x)?),
        ht::Event::Iq(x) => E::Iq(parse(&x)?),
        ht::Event::RoomPreCreate(c) => E::RoomPreCreate {
            room: room(c.room),
            creator: c.creator,
        },
        ht::Event::RoomCreated(r) => E::RoomCreated(room(r)),
        ht::Event::RoomDestroyed(r) => E::RoomDestroyed(room(r)),
        ht::Event::OccupantPreJoin(o) => E::OccupantPreJoin(occupant_event(o)?),
        ht::Event::OccupantJoined(o) => E::OccupantJoined(occupant_event(o)?),
        ht::Event::OccupantLeft(o) => E::OccupantLeft(occupant_event(o)?),
    })
}

fn verdict(v: hooks::Verdict) -> ht::Verdict {
    match v {
        hooks::Verdict::Pass => ht::Verdict::Pass,
        hooks::Verdict::Handled => ht::Verdict::Handled,
        hooks::Verdict::Reject { condition, text } => {
            ht::Verdict::Reject(ht::Rejection { condition, text })
        }
        hooks::Verdict::Replace(el) => ht::Verdict::Replace(el.to_xml()),
    }
}

impl<T: HookPlugin> hh::Guest for Adapter<T> {
    fn configure(
        vhost: String,
        component: Option<String>,
        settings_json: String,
    ) -> Result<(), String> {
        configure::<T>(Configure {
            vhost: Some(vhost),
            component,
            settings_json,
        })
    }
    fn subscriptions() -> Vec<ht::Subscription> {
        with(|p: &mut T| p.subscriptions())
            .unwrap_or_default()
            .into_iter()
            .map(|(kind, priority)| ht::Subscription {
                kind: event_kind(kind),
                priority,
            })
            .collect()
    }
    fn handle(e: ht::Event) -> ht::Verdict {
        let Some(e) = event(e) else {
            return ht::Verdict::Pass;
        };
        with(|p: &mut T| p.handle(&WasmHost, e)).map_or(ht::Verdict::Pass, verdict)
    }
    fn on_timer(tag: String) {
        with(|p: &mut T| p.on_timer(&WasmHost, &tag));
    }
}

use component_world::exports::lilt::plugin::component_handler as ch;

impl<T: ComponentPlugin> ch::Guest for Adapter<T> {
    fn configure(domain: String, settings_json: String) -> Result<(), String> {
        configure::<T>(Configure {
            vhost: None,
            component: Some(domain),
            settings_json,
        })
    }
    fn identity() -> Option<ch::DiscoIdentity> {
        with(|p: &mut T| p.identity())
            .flatten()
            .map(|i| ch::DiscoIdentity {
                category: i.category,
                kind: i.kind,
            })
    }
    fn handle_stanza(stanza: String) {
        if let Ok(el) = Element::parse(&stanza) {
            with(|p: &mut T| p.handle_stanza(&WasmHost, el));
        }
    }
}

use auth_world::lilt::plugin::types as at;

fn auth_error(e: crate::plugin::AuthError) -> at::AuthError {
    use crate::plugin::AuthError as E;
    match e {
        E::NotSupported => at::AuthError::NotSupported,
        E::UserExists => at::AuthError::UserExists,
        E::UserNotFound => at::AuthError::UserNotFound,
        E::InvalidInput(s) => at::AuthError::InvalidInput(s),
        E::Internal(s) => at::AuthError::Internal(s),
    }
}

/// Run an auth method on the configured plugin.
fn auth<T: AuthPlugin, R>(
    f: impl FnOnce(&T) -> Result<R, crate::plugin::AuthError>,
) -> Result<R, at::AuthError> {
    with(|p: &mut T| f(p))
        .unwrap_or_else(|| Err(crate::plugin::AuthError::Internal("not configured".into())))
        .map_err(auth_error)
}

fn mechanism(m: crate::plugin::Mechanism) -> at::Mechanism {
    use crate::plugin::Mechanism as M;
    match m {
        M::Anonymous => at::Mechanism::Anonymous,
        M::Plain => at::Mechanism::Plain,
        M::ScramSha1 => at::Mechanism::ScramSha1,
        M::ScramSha256 => at::Mechanism::ScramSha256,
    }
}

impl<T: AuthPlugin> auth_world::exports::lilt::plugin::auth_provider::Guest for Adapter<T> {
    fn configure(settings_json: String) -> Result<(), String> {
        configure::<T>(Configure::settings_only(&settings_json))
    }
    fn mechanisms() -> Vec<at::Mechanism> {
        with(|p: &mut T| p.mechanisms())
            .unwrap_or_default()
            .into_iter()
            .map(mechanism)
            .collect()
    }
    fn user_exists(username: String) -> Result<bool, at::AuthError> {
        auth(|p: &T| p.user_exists(&WasmHost, &username))
    }
    fn test_password(username: String, password: String) -> Result<bool, at::AuthError> {
        auth(|p: &T| p.test_password(&WasmHost, &username, &password))
    }
    fn get_scram_credentials(
        username: String,
        hash: at::ScramHash,
    ) -> Result<Option<at::ScramCredentials>, at::AuthError> {
        let hash = match hash {
            at::ScramHash::Sha1 => crate::Hash::Sha1,
            at::ScramHash::Sha256 => crate::Hash::Sha256,
        };
        let creds = auth(|p: &T| p.scram_credentials(&WasmHost, &username, hash))?;
        Ok(creds.map(|c| at::ScramCredentials {
            salt: c.salt,
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        }))
    }
    fn create_user(username: String, password: String) -> Result<(), at::AuthError> {
        auth(|p: &T| p.create_user(&WasmHost, &username, &password))
    }
    fn set_password(username: String, password: String) -> Result<(), at::AuthError> {
        auth(|p: &T| p.set_password(&WasmHost, &username, &password))
    }
    fn delete_user(username: String) -> Result<(), at::AuthError> {
        auth(|p: &T| p.delete_user(&WasmHost, &username))
    }
}

use identity_world::exports::lilt::plugin::identity_provider as ip;

impl<T: IdentityPlugin> ip::Guest for Adapter<T> {
    fn identify(
        mech: at::Mechanism,
        username: String,
        token: Option<String>,
    ) -> Result<ip::Identity, ip::Refusal> {
        use crate::plugin::Mechanism as M;
        let mech = match mech {
            at::Mechanism::Anonymous => M::Anonymous,
            at::Mechanism::Plain => M::Plain,
            at::Mechanism::ScramSha1 => M::ScramSha1,
            at::Mechanism::ScramSha256 => M::ScramSha256,
        };
        let answer = with(|p: &mut T| p.identify(&WasmHost, mech, &username, token.as_deref()))
            .unwrap_or_else(|| Err(id::Refusal::Unavailable("not configured".into())));
        match answer {
            Ok(i) => Ok(ip::Identity {
                rooms: match i.rooms {
                    id::RoomAccess::Any => ip::RoomAccess::Any,
                    id::RoomAccess::Only(rooms) => ip::RoomAccess::Only(rooms),
                },
                may_create_rooms: i.may_create_rooms,
                moderator: i.moderator,
                user: i.user.map(|u| ip::UserCard {
                    id: u.id,
                    name: u.name,
                    email: u.email,
                    avatar: u.avatar,
                }),
                group: i.group,
                context_json: i.context_json,
            }),
            Err(id::Refusal::Denied(s)) => Err(ip::Refusal::Denied(s)),
            Err(id::Refusal::Unavailable(s)) => Err(ip::Refusal::Unavailable(s)),
        }
    }
}
