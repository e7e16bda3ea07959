//! auth-internal: a Lilt auth plugin keeping accounts in its private kv store. The
//! `AuthPlugin` impl only converts; the policy is in policy.rs.
//!
//! World: `lilt:plugin/auth`. Imports: `kv`. Settings: `iterations`, `mechanisms`
//! (README.md). Replaces Prosody's `authentication = "internal_hashed"`.

pub mod policy;

use lilt_plugin_sdk::{
    AuthError, AuthPlugin, Configure, Hash, Mechanism, Plugin, ScramCredentials, Store,
};

use policy::{Error, Mech, Settings};

/// The plugin, configured.
#[derive(Debug)]
pub struct Internal {
    settings: Settings,
}

/// The SDK's store seen as the policy's.
struct Accounts<'a, S>(&'a S);

impl<S: Store> policy::Store for Accounts<'_, S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.0.delete(key)
    }
}

fn salt() -> Vec<u8> {
    let mut s = vec![0u8; 16];
    // wasi:random is always granted; a failure here is a host bug, surfaced as a trap.
    getrandom::fill(&mut s).unwrap_or_else(|e| panic!("no randomness: {e}"));
    s
}

fn err(e: Error) -> AuthError {
    match e {
        Error::UserExists => AuthError::UserExists,
        Error::UserNotFound => AuthError::UserNotFound,
        Error::InvalidInput(s) => AuthError::InvalidInput(s),
        Error::Internal(s) => AuthError::Internal(s),
    }
}

impl Plugin for Internal {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok(Internal {
            settings: policy::configure(&ctx.settings_json)?,
        })
    }
}

impl AuthPlugin for Internal {
    fn mechanisms(&self) -> Vec<Mechanism> {
        self.settings
            .mechanisms
            .iter()
            .map(|m| match m {
                Mech::Plain => Mechanism::Plain,
                Mech::ScramSha1 => Mechanism::ScramSha1,
                Mech::ScramSha256 => Mechanism::ScramSha256,
            })
            .collect()
    }
    fn user_exists(&self, kv: &impl Store, username: &str) -> Result<bool, AuthError> {
        policy::user_exists(&Accounts(kv), username).map_err(err)
    }
    fn test_password(
        &self,
        kv: &impl Store,
        username: &str,
        password: &str,
    ) -> Result<bool, AuthError> {
        policy::test_password(&Accounts(kv), username, password).map_err(err)
    }
    fn scram_credentials(
        &self,
        kv: &impl Store,
        username: &str,
        hash: Hash,
    ) -> Result<Option<ScramCredentials>, AuthError> {
        let creds = policy::scram_credentials(&Accounts(kv), username, hash).map_err(err)?;
        Ok(creds.map(|c| ScramCredentials {
            salt: c.salt,
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        }))
    }
    fn create_user(
        &self,
        kv: &impl Store,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        policy::create_user(&Accounts(kv), &self.settings, username, password, &mut salt)
            .map_err(err)
    }
    fn set_password(
        &self,
        kv: &impl Store,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        policy::set_password(&Accounts(kv), &self.settings, username, password, &mut salt)
            .map_err(err)
    }
    fn delete_user(&self, kv: &impl Store, username: &str) -> Result<(), AuthError> {
        policy::delete_user(&Accounts(kv), username).map_err(err)
    }
}

lilt_plugin_sdk::export_auth!(Internal);
