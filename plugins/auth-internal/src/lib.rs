//! auth-internal: a Lilt auth plugin keeping accounts in its private kv store. Bindings glue
//! only; the policy is in policy.rs.
//!
//! World: `lilt:plugin/auth`. Imports: `kv`, `log`. Settings: `iterations`, `mechanisms`
//! (README.md). Replaces Prosody's `authentication = "internal_hashed"`.

pub mod policy;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    use std::sync::OnceLock;

    wit_bindgen::generate!({ path: "../../wit", world: "auth" });

    use exports::lilt::plugin::auth_provider::Guest;
    use lilt::plugin::kv;
    use lilt::plugin::types::{AuthError, Mechanism, ScramCredentials, ScramHash};

    use super::policy::{self, Error, Mech, Settings};

    static SETTINGS: OnceLock<Settings> = OnceLock::new();

    fn settings() -> &'static Settings {
        SETTINGS.get_or_init(Settings::default)
    }

    struct Kv;
    impl policy::Store for Kv {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            kv::get(key).map_err(kv_error)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
            kv::set(key, value).map_err(kv_error)
        }
        fn delete(&self, key: &str) -> Result<(), String> {
            kv::delete(key).map_err(kv_error)
        }
    }

    fn kv_error(e: kv::KvError) -> String {
        match e {
            kv::KvError::QuotaExceeded => "storage quota exceeded".to_owned(),
            kv::KvError::Storage(s) => s,
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

    fn hash(h: ScramHash) -> lilt_plugin_sdk::Hash {
        match h {
            ScramHash::Sha1 => lilt_plugin_sdk::Hash::Sha1,
            ScramHash::Sha256 => lilt_plugin_sdk::Hash::Sha256,
        }
    }

    struct Plugin;

    impl Guest for Plugin {
        fn configure(settings_json: String) -> Result<(), String> {
            let s = policy::configure(&settings_json)?;
            // Each call runs in a fresh instance, so this is set once per instance.
            let _ = SETTINGS.set(s);
            Ok(())
        }
        fn mechanisms() -> Vec<Mechanism> {
            settings()
                .mechanisms
                .iter()
                .map(|m| match m {
                    Mech::Plain => Mechanism::Plain,
                    Mech::ScramSha1 => Mechanism::ScramSha1,
                    Mech::ScramSha256 => Mechanism::ScramSha256,
                })
                .collect()
        }
        fn user_exists(username: String) -> Result<bool, AuthError> {
            policy::user_exists(&Kv, &username).map_err(err)
        }
        fn test_password(username: String, password: String) -> Result<bool, AuthError> {
            policy::test_password(&Kv, &username, &password).map_err(err)
        }
        fn get_scram_credentials(
            username: String,
            h: ScramHash,
        ) -> Result<Option<ScramCredentials>, AuthError> {
            let creds = policy::scram_credentials(&Kv, &username, hash(h)).map_err(err)?;
            Ok(creds.map(|c| ScramCredentials {
                salt: c.salt,
                iterations: c.iterations,
                stored_key: c.stored_key,
                server_key: c.server_key,
            }))
        }
        fn create_user(username: String, password: String) -> Result<(), AuthError> {
            policy::create_user(&Kv, settings(), &username, &password, &mut salt).map_err(err)
        }
        fn set_password(username: String, password: String) -> Result<(), AuthError> {
            policy::set_password(&Kv, settings(), &username, &password, &mut salt).map_err(err)
        }
        fn delete_user(username: String) -> Result<(), AuthError> {
            policy::delete_user(&Kv, &username).map_err(err)
        }
    }

    export!(Plugin);
}
