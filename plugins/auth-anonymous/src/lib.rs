//! auth-anonymous: a Lilt auth plugin offering only SASL ANONYMOUS; account operations answer
//! `not-supported`. Bindings glue only; the policy is in policy.rs.
//!
//! World: `lilt:plugin/auth`. Settings: none. Replaces Prosody's anonymous authentication.

pub mod policy;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "auth" });

    use exports::lilt::plugin::auth_provider::Guest;
    use lilt::plugin::types::{AuthError, Mechanism, ScramCredentials, ScramHash};

    struct Plugin;

    impl Guest for Plugin {
        fn configure(settings_json: String) -> Result<(), String> {
            super::policy::configure(&settings_json).map(|_| ())
        }
        fn mechanisms() -> Vec<Mechanism> {
            vec![Mechanism::Anonymous]
        }
        fn user_exists(_: String) -> Result<bool, AuthError> {
            Ok(false)
        }
        fn test_password(_: String, _: String) -> Result<bool, AuthError> {
            Err(AuthError::NotSupported)
        }
        fn get_scram_credentials(
            _: String,
            _: ScramHash,
        ) -> Result<Option<ScramCredentials>, AuthError> {
            Err(AuthError::NotSupported)
        }
        fn create_user(_: String, _: String) -> Result<(), AuthError> {
            Err(AuthError::NotSupported)
        }
        fn set_password(_: String, _: String) -> Result<(), AuthError> {
            Err(AuthError::NotSupported)
        }
        fn delete_user(_: String) -> Result<(), AuthError> {
            Err(AuthError::NotSupported)
        }
    }

    export!(Plugin);
}
