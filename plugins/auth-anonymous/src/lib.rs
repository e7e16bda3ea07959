//! auth-anonymous: a Lilt auth plugin offering only SASL ANONYMOUS; account operations answer
//! `not-supported` (the `AuthPlugin` defaults). The policy is in policy.rs.
//!
//! World: `lilt:plugin/auth`. Imports nothing grantable (runs with `grants = []`). Settings:
//! none. Replaces Prosody's anonymous authentication.

pub mod policy;

use lilt_plugin_sdk::{AuthError, AuthPlugin, Configure, Mechanism, Plugin, Store};

/// The plugin: nobody has an account, everyone may log in anonymously.
#[derive(Debug)]
pub struct Anonymous;

impl Plugin for Anonymous {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        policy::configure(&ctx.settings_json).map(|_| Anonymous)
    }
}

impl AuthPlugin for Anonymous {
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Anonymous]
    }
    fn user_exists(&self, _: &impl Store, _: &str) -> Result<bool, AuthError> {
        Ok(false)
    }
}

lilt_plugin_sdk::export_auth!(Anonymous);
