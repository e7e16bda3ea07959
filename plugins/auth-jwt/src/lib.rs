//! auth-jwt: a Lilt auth plugin for Jitsi's token authentication. Logins are SASL ANONYMOUS;
//! the `token` parameter of the client's WebSocket or BOSH URL (lib-jitsi-meet's
//! `JitsiConnection(appId, token, …)`, jitsi-meet's `?jwt=`) is a JWT that decides whether the
//! login succeeds, which room it may join, whether it moderates and the user card shown to the
//! room. The trait impls only convert; the policy is in policy.rs.
//!
//! World: `lilt:plugin/auth-identity`. Imports: `keys` (grant `keys:<key server>`; RS* tokens'
//! public keys, `<url>/<sha256-hex(kid)>.pem`), `clock`. Settings: `algorithm`, `app_secret`,
//! `accepted_issuers`, `accepted_audiences`, `subjects`, `leeway_secs`, `require_room_claim`,
//! `allow_empty_token`, `empty_token_may_create_rooms`, `max_token_bytes` (docs/plugins.md,
//! section auth-jwt). Replaces Prosody's `authentication = "token"` (`mod_auth_token`) and
//! `mod_token_verification`; the host enforces the room and moderator decisions at every join.

pub mod policy;

use lilt_plugin_sdk::{
    AuthHost, AuthPlugin, Configure, Identity, IdentityPlugin, Mechanism, Plugin, Refusal, Store,
};

use policy::{Refused, Settings};

/// The plugin, configured.
#[derive(Debug)]
pub struct Jwt {
    settings: Settings,
}

impl Plugin for Jwt {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok(Jwt {
            settings: policy::configure(&ctx.settings_json)?,
        })
    }
}

impl AuthPlugin for Jwt {
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Anonymous]
    }

    fn user_exists(&self, _: &impl Store, _: &str) -> Result<bool, lilt_plugin_sdk::AuthError> {
        Ok(false)
    }
}

/// Seconds since the Unix epoch, from the host's clock.
#[cfg(target_arch = "wasm32")]
fn now_secs() -> u64 {
    lilt_plugin_sdk::bindings::hooks_world::lilt::plugin::clock::now_unix_millis() / 1000
}

/// Seconds since the Unix epoch (native builds: the system clock).
#[cfg(not(target_arch = "wasm32"))]
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl IdentityPlugin for Jwt {
    fn identify(
        &self,
        host: &impl AuthHost,
        _mechanism: Mechanism,
        _username: &str,
        token: Option<&str>,
    ) -> Result<Identity, Refusal> {
        policy::identify(host, &self.settings, token, now_secs()).map_err(|r| match r {
            Refused::Denied(why) => Refusal::Denied(why),
            Refused::Unavailable(why) => Refusal::Unavailable(why),
        })
    }
}

lilt_plugin_sdk::export_auth_identity!(Jwt);

#[cfg(test)]
mod tests {
    use lilt_plugin_sdk::MemoryHost;

    use super::*;

    #[test]
    fn anonymous_only_and_a_token_is_required() {
        let p = Jwt::configure(&Configure::settings_only(
            r#"{"algorithm": "HS256", "app_secret": "s", "accepted_issuers": ["*"]}"#,
        ))
        .expect("configure");
        let h = MemoryHost::default();
        assert_eq!(p.mechanisms(), vec![Mechanism::Anonymous]);
        assert_eq!(p.user_exists(&h, "alice"), Ok(false));
        assert_eq!(
            p.identify(&h, Mechanism::Anonymous, "", None),
            Err(Refusal::Denied("token required".into()))
        );
    }
}
