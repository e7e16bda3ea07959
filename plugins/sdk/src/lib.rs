//! The Lilt plugin SDK. A plugin crate depends on `lilt-plugin-sdk` (and nothing else of
//! Lilt's), implements [`Plugin`] plus the trait of its role — [`HookPlugin`],
//! [`ComponentPlugin`] or [`AuthPlugin`], whose methods all have defaults but `configure`
//! (and an auth plugin's `mechanisms`) — and exports it with one macro:
//!
//! ```ignore
//! use lilt_plugin_sdk::{Configure, Event, EventKind, Host, HookPlugin, Plugin, Verdict};
//!
//! struct Greeter;
//! impl Plugin for Greeter {
//!     fn configure(ctx: &Configure) -> Result<Self, String> {
//!         ctx.no_settings().map(|()| Greeter)
//!     }
//! }
//! impl HookPlugin for Greeter {
//!     fn subscriptions(&self) -> Vec<(EventKind, i32)> {
//!         vec![(EventKind::OccupantJoined, 0)]
//!     }
//!     fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
//!         Verdict::Pass
//!     }
//! }
//! lilt_plugin_sdk::export_hooks!(Greeter);
//! ```
//!
//! The SDK owns the WIT bindings (module `bindings`, wasm32 only, generated from the
//! repository's `wit/` relative to the SDK's own manifest): no plugin calls
//! `wit_bindgen::generate!` or depends on `wit-bindgen`. Everything else builds natively, so
//! a plugin's policy and trait methods are tested with `cargo test` and a
//! [`MemoryHost`](hooks::MemoryHost).
//!
//! Also here: SCRAM credential derivation (RFC 5802 §3, RFC 7677), PBKDF2-HMAC, constant-time
//! comparison and strict settings parsing. The SCRAM primitives come from `lilt-scram`, which
//! the host's SCRAM verifier uses too, so both sides derive keys from one implementation.
//! Invariants: derived credentials match the host's SCRAM verifier byte for byte (tested
//! against the RFC examples); settings with unknown keys are refused.

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;
pub mod hooks;
pub mod identity;
pub mod ldap;
pub mod plugin;
pub mod xml;

pub use hooks::{
    DiscoIdentity, Event, EventKind, Host, LogLevel, MemoryHost, Occupant, OccupantEvent, Room,
    Store, Verdict,
};
pub use identity::{
    AuthHost, Directory, Entry, Identity, IdentityPlugin, KeyError, Keys, LdapError, Refusal,
    RoomAccess, Scope, UserCard,
};
pub use plugin::{
    AuthError, AuthPlugin, ComponentPlugin, Configure, HookPlugin, Mechanism, Plugin,
    ScramCredentials, answer_standard,
};
pub use xml::Element;

/// Export `$plugin` (a [`HookPlugin`]) as the component's `hook-handler`: world
/// `lilt:plugin/hooks`. Expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_hooks {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type LiltPluginAdapter = $crate::bindings::Adapter<$plugin>;
            $crate::bindings::hooks_world::export!(
                LiltPluginAdapter with_types_in $crate::bindings::hooks_world
            );
        };
    };
}

/// Export `$plugin` (a [`ComponentPlugin`]) as the component's `component-handler`: world
/// `lilt:plugin/component`. Expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_component {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type LiltPluginAdapter = $crate::bindings::Adapter<$plugin>;
            $crate::bindings::component_world::export!(
                LiltPluginAdapter with_types_in $crate::bindings::component_world
            );
        };
    };
}

/// Export `$plugin` (both a [`HookPlugin`] and a [`ComponentPlugin`]): world
/// `lilt:plugin/hooks-and-component`. Expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_hooks_and_component {
    ($plugin:ty) => {
        $crate::export_hooks!($plugin);
        $crate::export_component!($plugin);
    };
}

/// Export `$plugin` (an [`AuthPlugin`]) as the component's `auth-provider`: world
/// `lilt:plugin/auth`. Expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_auth {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type LiltPluginAdapter = $crate::bindings::Adapter<$plugin>;
            $crate::bindings::auth_world::export!(
                LiltPluginAdapter with_types_in $crate::bindings::auth_world
            );
        };
    };
}

/// Export `$plugin` (an [`IdentityPlugin`]) as the component's `auth-provider` and
/// `identity-provider`: world `lilt:plugin/auth-identity`. Expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_auth_identity {
    ($plugin:ty) => {
        $crate::export_auth!($plugin);
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type LiltPluginAdapter = $crate::bindings::Adapter<$plugin>;
            $crate::bindings::identity_world::export!(
                LiltPluginAdapter with_types_in $crate::bindings::identity_world
            );
        };
    };
}

use serde::de::DeserializeOwned;

pub use lilt_scram::{Hash, ct_eq, digest, hmac, pbkdf2, scram_keys};

/// Parse plugin settings JSON into `T` (which should use `#[serde(deny_unknown_fields)]`);
/// `null` and `{}` both mean "all defaults".
///
/// # Errors
/// A message naming the offending key.
pub fn parse_settings<T: DeserializeOwned + Default>(json: &str) -> Result<T, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("settings are not JSON: {e}"))?;
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|e| format!("settings: {e}"))
}

/// Check the settings of a plugin that takes none: `null` and `{}` pass, any key is refused.
///
/// # Errors
/// Not JSON, or any key at all.
pub fn no_settings(json: &str) -> Result<(), String> {
    #[derive(Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    parse_settings::<Empty>(json).map(|_| ())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;

    /// Check derived keys against an RFC example: the server signature must match, and the
    /// client proof must verify against the stored key.
    fn check(
        hash: Hash,
        salt: &str,
        first_bare: &str,
        server_first: &str,
        final_bare: &str,
        proof: &str,
        sig: &str,
    ) {
        let salt = B64.decode(salt).expect("salt");
        let (stored, server) = scram_keys(hash, "pencil", &salt, 4096);
        let auth_message = format!("{first_bare},{server_first},{final_bare}");
        assert_eq!(
            B64.encode(hmac(hash, &server, auth_message.as_bytes())),
            sig
        );
        let client_sig = hmac(hash, &stored, auth_message.as_bytes());
        let client_key: Vec<u8> = B64
            .decode(proof)
            .expect("proof")
            .iter()
            .zip(&client_sig)
            .map(|(a, b)| a ^ b)
            .collect();
        assert!(ct_eq(&digest(hash, &client_key), &stored));
    }

    #[test]
    fn rfc5802_and_rfc7677_examples() {
        check(
            Hash::Sha1,
            "QSXCR+Q6sek8bf92",
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
            "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
        check(
            Hash::Sha256,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn rfc6070_pbkdf2() {
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(pbkdf2(Hash::Sha1, b"password", b"salt", 2)),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
    }

    #[test]
    fn settings() {
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct S {
            #[serde(default)]
            n: u32,
        }
        assert_eq!(parse_settings::<S>("null").expect("null").n, 0);
        assert_eq!(parse_settings::<S>("{\"n\":3}").expect("n").n, 3);
        assert!(
            parse_settings::<S>("{\"m\":3}")
                .expect_err("unknown")
                .contains('m')
        );
        assert!(ct_eq(b"ab", b"ab") && !ct_eq(b"ab", b"ac") && !ct_eq(b"ab", b"abc"));
    }
}
