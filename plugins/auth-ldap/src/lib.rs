//! auth-ldap: a Lilt auth plugin checking passwords against an LDAP directory (a bind as the
//! user) and saying who a session is from it (moderator and room-creator groups, display
//! name). The directory is reached only through the host's `ldap` import, whose connections,
//! TLS and service account come from the `[[ldap]]` profile the vhost's grant names. The
//! trait impls only convert; the policy is in policy.rs.
//!
//! World: `lilt:plugin/auth-identity`. Imports: `ldap` (grant `ldap:<profile>`). Settings:
//! `user_dn_template` or `user_search`, `moderator_group`, `creator_group` (docs/plugins.md,
//! section auth-ldap). Mechanisms: PLAIN only (the password has to reach the directory), so
//! the vhost must keep `allow_unencrypted = false` (the default): PLAIN is then offered only
//! after STARTTLS or over direct TLS. Replaces Prosody's `authentication = "ldap"` plus
//! Jicofo's/Prosody's moderator mapping.

pub mod policy;

use lilt_plugin_sdk::{
    AuthError, AuthHost, AuthPlugin, Configure, Identity, IdentityPlugin, Mechanism, Plugin,
    Refusal,
};

use policy::{Failure, Refused, Settings};

/// What `lilt user add|passwd|del` says for a vhost of this plugin.
pub const MANAGED_ELSEWHERE: &str =
    "accounts of this vhost are managed in the LDAP directory, not with `lilt user`";

/// The plugin, configured.
#[derive(Debug)]
pub struct Ldap {
    settings: Settings,
}

fn internal(Failure::Directory(why): Failure) -> AuthError {
    AuthError::Internal(format!("directory unavailable: {why}"))
}

impl Plugin for Ldap {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok(Ldap {
            settings: policy::configure(&ctx.settings_json)?,
        })
    }
}

impl AuthPlugin for Ldap {
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Plain]
    }

    fn user_exists(&self, host: &impl AuthHost, username: &str) -> Result<bool, AuthError> {
        policy::user_exists(host, &self.settings, username).map_err(internal)
    }

    fn test_password(
        &self,
        host: &impl AuthHost,
        username: &str,
        password: &str,
    ) -> Result<bool, AuthError> {
        policy::test_password(host, &self.settings, username, password).map_err(internal)
    }

    fn create_user(&self, _: &impl AuthHost, _: &str, _: &str) -> Result<(), AuthError> {
        Err(AuthError::InvalidInput(MANAGED_ELSEWHERE.into()))
    }

    fn set_password(&self, _: &impl AuthHost, _: &str, _: &str) -> Result<(), AuthError> {
        Err(AuthError::InvalidInput(MANAGED_ELSEWHERE.into()))
    }

    fn delete_user(&self, _: &impl AuthHost, _: &str) -> Result<(), AuthError> {
        Err(AuthError::InvalidInput(MANAGED_ELSEWHERE.into()))
    }
}

impl IdentityPlugin for Ldap {
    fn identify(
        &self,
        host: &impl AuthHost,
        _mechanism: Mechanism,
        username: &str,
        _token: Option<&str>,
    ) -> Result<Identity, Refusal> {
        policy::identify(host, &self.settings, username).map_err(|r| match r {
            Refused::Denied(why) => Refusal::Denied(why),
            Refused::Unavailable(why) => {
                Refusal::Unavailable(format!("directory unavailable: {why}"))
            }
        })
    }
}

lilt_plugin_sdk::export_auth_identity!(Ldap);

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::MemoryHost;

    use super::*;

    fn plugin() -> Ldap {
        Ldap::configure(&Configure::settings_only(
            r#"{"user_dn_template": "uid={user},ou=people,dc=example,dc=org"}"#,
        ))
        .expect("configure")
    }

    #[test]
    fn accounts_are_not_managed_here() {
        let (p, h) = (plugin(), MemoryHost::default());
        for r in [
            p.create_user(&h, "alice", "pw"),
            p.set_password(&h, "alice", "pw"),
            p.delete_user(&h, "alice"),
        ] {
            assert_eq!(r, Err(AuthError::InvalidInput(MANAGED_ELSEWHERE.into())));
        }
        assert_eq!(p.mechanisms(), vec![Mechanism::Plain]);
    }

    #[test]
    fn no_directory_is_a_temporary_failure() {
        // MemoryHost has no directory: every lookup is `Unavailable`.
        let (p, h) = (plugin(), MemoryHost::default());
        assert!(matches!(
            p.test_password(&h, "alice", "pw"),
            Err(AuthError::Internal(_))
        ));
        assert!(matches!(
            p.identify(&h, Mechanism::Plain, "alice", None),
            Err(Refusal::Unavailable(_))
        ));
        // An empty password is refused without asking.
        assert_eq!(p.test_password(&h, "alice", ""), Ok(false));
    }
}
