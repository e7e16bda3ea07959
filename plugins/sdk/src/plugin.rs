//! The traits a plugin implements, one per exported interface of `wit/`, with defaults for
//! everything a plugin may not care about. A plugin type implements [`Plugin`] (its
//! `configure`) and one or two of [`HookPlugin`], [`ComponentPlugin`] and [`AuthPlugin`], then
//! exports itself with one macro: `export_hooks!`, `export_component!`,
//! `export_hooks_and_component!` or `export_auth!`.
//!
//! Pure Rust: the traits and the types they use build natively, so a plugin's own tests call
//! its trait methods with a [`MemoryHost`](crate::hooks::MemoryHost). The macros generate the
//! component exports for `wasm32` only (see `bindings`).
//!
//! Lifecycle: the host calls `configure` before every call on a pooled instance; the SDK calls
//! [`Plugin::configure`] only when its arguments differ from the previous call's on that
//! instance and otherwise keeps the value, so `Self` may hold parsed settings and caches. State
//! that must outlive a call still lives in `kv`: instances are dropped after a trap, replaced
//! every 10 000 calls and on a reload.

use serde::de::DeserializeOwned;

use crate::Hash;
use crate::hooks::{DiscoIdentity, Event, EventKind, Host, Verdict, component_reply};
use crate::identity::AuthHost;
use crate::xml::Element;

/// What `configure` is told: which vhost and component domain the plugin serves, and its
/// settings as JSON (`null` when the config has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configure {
    /// The vhost, on the hook side (`hooks`, `hooks-and-component`); `None` on the component
    /// side and for auth plugins.
    pub vhost: Option<String>,
    /// The plugin's component domain, when it is a component.
    pub component: Option<String>,
    /// The settings, as JSON.
    pub settings_json: String,
}

impl Configure {
    /// A configuration with only settings (auth plugins, tests).
    pub fn settings_only(settings_json: &str) -> Configure {
        Configure {
            vhost: None,
            component: None,
            settings_json: settings_json.to_owned(),
        }
    }

    /// The settings parsed into `T` (use `#[serde(deny_unknown_fields)]`); see
    /// [`parse_settings`](crate::parse_settings).
    ///
    /// # Errors
    /// A message naming the offending key.
    pub fn settings<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        crate::parse_settings(&self.settings_json)
    }

    /// Refuse any settings (for a plugin that takes none).
    ///
    /// # Errors
    /// Not JSON, or any key at all.
    pub fn no_settings(&self) -> Result<(), String> {
        crate::no_settings(&self.settings_json)
    }
}

/// Every plugin: how it is made from its configuration.
pub trait Plugin: Sized + 'static {
    /// Build the plugin from its configuration. An error refuses the configuration at load
    /// (the server does not start, a reload is refused) and is shown to the operator.
    ///
    /// # Errors
    /// Bad settings, in words the operator can act on.
    fn configure(ctx: &Configure) -> Result<Self, String>;
}

/// A plugin of the `hooks` world: it follows routing and MUC events of its vhost.
pub trait HookPlugin: Plugin {
    /// The events to be called for, with priorities (higher first); asked once, at load.
    /// Default: none.
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        Vec::new()
    }

    /// One subscribed event. Only stanza events and the pre- events act on the verdict.
    /// Default: `Pass`.
    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        let _ = (host, event);
        Verdict::Pass
    }

    /// A timer set with [`Host::set_timer`] is due. Default: nothing.
    fn on_timer(&mut self, host: &impl Host, tag: &str) {
        let _ = (host, tag);
    }
}

/// A plugin of the `component` world: it owns a domain such as `speakerstats.DOMAIN`.
pub trait ComponentPlugin: Plugin {
    /// The disco identity advertised on the vhost (asked once, at load). Default: none.
    fn identity(&self) -> Option<DiscoIdentity> {
        None
    }

    /// A message addressed to the domain or a JID on it. Default: ignored.
    fn handle_message(&mut self, host: &impl Host, message: Element) {
        let _ = (host, message);
    }

    /// Any stanza addressed to the domain or a JID on it. Default: messages go to
    /// [`handle_message`](Self::handle_message); everything else gets the standard answers of
    /// [`answer_standard`] (disco#info with the identity, ping, `service-unavailable`).
    fn handle_stanza(&mut self, host: &impl Host, stanza: Element) {
        if stanza.name == "message" {
            self.handle_message(host, stanza);
        } else {
            answer_standard(host, self.identity().as_ref(), &stanza);
        }
    }
}

/// What a component answers itself (see [`component_reply`]), sent through `host`: disco#info
/// with `identity` (`component/generic` when none), ping, and `service-unavailable` for any
/// other request; nothing for results, errors, messages and presences.
pub fn answer_standard(host: &impl Host, identity: Option<&DiscoIdentity>, stanza: &Element) {
    let (category, kind) = identity.map_or(("component", "generic"), |i| {
        (i.category.as_str(), i.kind.as_str())
    });
    if let Some(reply) = component_reply(stanza, category, kind) {
        let _ = host.send(&reply);
    }
}

/// A SASL mechanism the host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4505.
    Anonymous,
    /// RFC 4616.
    Plain,
    /// RFC 5802.
    ScramSha1,
    /// RFC 7677.
    ScramSha256,
}

/// Stored SCRAM credentials (RFC 5802 §3): never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// Raw salt bytes.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

/// A domain answer from an auth provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The provider does not do this.
    NotSupported,
    /// The account exists already.
    UserExists,
    /// No such account.
    UserNotFound,
    /// The username or password is not acceptable; the text says why.
    InvalidInput(String),
    /// Something failed inside the provider.
    Internal(String),
}

/// A plugin of the `auth` world: one per vhost, deciding logins. Every method but
/// `mechanisms` defaults to `NotSupported`; `kv` is the plugin's private store (imported, and
/// so needing the `kv` grant, only when a method uses it).
pub trait AuthPlugin: Plugin {
    /// The SASL mechanisms this provider decides.
    fn mechanisms(&self) -> Vec<Mechanism>;

    /// Whether the account exists.
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn user_exists(&self, kv: &impl AuthHost, username: &str) -> Result<bool, AuthError> {
        let _ = (kv, username);
        Err(AuthError::NotSupported)
    }

    /// Whether `password` is right (PLAIN).
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn test_password(
        &self,
        kv: &impl AuthHost,
        username: &str,
        password: &str,
    ) -> Result<bool, AuthError> {
        let _ = (kv, username, password);
        Err(AuthError::NotSupported)
    }

    /// The account's SCRAM credentials for `hash`, `None` when there is no such account.
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn scram_credentials(
        &self,
        kv: &impl AuthHost,
        username: &str,
        hash: Hash,
    ) -> Result<Option<ScramCredentials>, AuthError> {
        let _ = (kv, username, hash);
        Err(AuthError::NotSupported)
    }

    /// Create an account.
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn create_user(
        &self,
        kv: &impl AuthHost,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let _ = (kv, username, password);
        Err(AuthError::NotSupported)
    }

    /// Change an account's password.
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn set_password(
        &self,
        kv: &impl AuthHost,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let _ = (kv, username, password);
        Err(AuthError::NotSupported)
    }

    /// Delete an account.
    ///
    /// # Errors
    /// Default: `NotSupported`.
    fn delete_user(&self, kv: &impl AuthHost, username: &str) -> Result<(), AuthError> {
        let _ = (kv, username);
        Err(AuthError::NotSupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::MemoryHost;

    struct Echo;

    impl Plugin for Echo {
        fn configure(ctx: &Configure) -> Result<Self, String> {
            ctx.no_settings().map(|()| Echo)
        }
    }

    impl HookPlugin for Echo {}

    impl ComponentPlugin for Echo {
        fn identity(&self) -> Option<DiscoIdentity> {
            Some(DiscoIdentity::component("echo"))
        }
    }

    impl AuthPlugin for Echo {
        fn mechanisms(&self) -> Vec<Mechanism> {
            vec![Mechanism::Anonymous]
        }
    }

    #[test]
    fn defaults_pass_answer_disco_and_refuse_account_operations() {
        let host = MemoryHost::default();
        let mut p = Echo::configure(&Configure::settings_only("null")).expect("configure");
        assert!(Echo::configure(&Configure::settings_only("{\"x\":1}")).is_err());
        assert!(p.subscriptions().is_empty());
        let msg = Element::parse("<message xmlns='jabber:client'/>").expect("msg");
        assert_eq!(p.handle(&host, Event::Message(msg.clone())), Verdict::Pass);
        p.on_timer(&host, "t");
        p.handle_stanza(&host, msg);
        assert!(host.take_sent().is_empty());
        let disco = Element::parse(
            "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='echo.b'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .expect("iq");
        p.handle_stanza(&host, disco);
        let sent = host.take_sent();
        assert!(sent[0].contains("type='echo'"), "{sent:?}");
        assert_eq!(p.mechanisms(), vec![Mechanism::Anonymous]);
        assert_eq!(p.create_user(&host, "a", "b"), Err(AuthError::NotSupported));
        assert_eq!(p.user_exists(&host, "a"), Err(AuthError::NotSupported));
    }
}
