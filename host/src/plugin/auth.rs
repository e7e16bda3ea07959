//! `AuthPlugin`: one vhost's auth provider. Each call runs on a configured instance from the
//! vhost's pool (sandbox.rs: memory cap, epoch deadline, dropped after a trap).
//!
//! Shell (runs on tokio's blocking pool). Invariants: a trap, timeout or out-of-memory is a
//! `PluginError::Trap`, logged with plugin and vhost and counted; more than `max_traps` in
//! `trap_window` disables the plugin (`Disabled`) until the window has passed; callers treat any
//! error as "deny" (fail closed). Tests: `mod tests` below, with the real plugin components.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::identity_world::exports::lilt::plugin::identity_provider as ip;
use super::bindings::identity_world::{Identity as IdentityExports, IdentityIndices};
use super::bindings::lilt::plugin::types;
use super::bindings::{Auth, AuthIndices, AuthPre};
use super::host_api::State;
use super::sandbox::{InstancePool, Sandbox};
use super::sources::Connected;
use super::{AuthError, PluginEngine, PluginError};
use crate::identity::{Identity, RoomAccess, UserCard};
use crate::sasl::{Mechanism, ScramCredentials, ScramHash};
use crate::storage::{KvRole, KvStore};

/// Idle instances kept per auth plugin: enough for the logins in flight on a busy node.
const AUTH_POOL: usize = 16;
/// Longest `context-json` kept on a session.
const MAX_CONTEXT_JSON: usize = 16 * 1024;

/// One live instance: its `auth-provider`, and its `identity-provider` when it has one.
struct Instance {
    auth: Auth,
    identity: Option<IdentityExports>,
}

struct Inner {
    sandbox: Sandbox,
    pool: Arc<InstancePool<Instance>>,
    pre: AuthPre<State>,
    indices: AuthIndices,
    /// Set when the component exports `identity-provider`.
    identity: Option<IdentityIndices>,
    settings_json: String,
    mechanisms: Vec<Mechanism>,
}

/// Why `identify` refused a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifyRefusal {
    /// `not-authorized`, with the plugin's text.
    Denied(String),
    /// `temporary-auth-failure`, with the plugin's text.
    Unavailable(String),
}

/// A loaded auth plugin for one vhost; cheap to clone.
#[derive(Clone)]
pub struct AuthPlugin(Arc<Inner>);

impl std::fmt::Debug for AuthPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPlugin")
            .field("name", &self.0.sandbox.name)
            .field("vhost", &self.0.sandbox.vhost)
            .field("mechanisms", &self.0.mechanisms)
            .finish_non_exhaustive()
    }
}

fn mechanism(m: types::Mechanism) -> Mechanism {
    match m {
        types::Mechanism::Anonymous => Mechanism::Anonymous,
        types::Mechanism::Plain => Mechanism::Plain,
        types::Mechanism::ScramSha1 => Mechanism::ScramSha1,
        types::Mechanism::ScramSha256 => Mechanism::ScramSha256,
    }
}

fn auth_error(e: types::AuthError) -> AuthError {
    match e {
        types::AuthError::NotSupported => AuthError::NotSupported,
        types::AuthError::UserExists => AuthError::UserExists,
        types::AuthError::UserNotFound => AuthError::UserNotFound,
        types::AuthError::InvalidInput(s) => AuthError::InvalidInput(s),
        types::AuthError::Internal(s) => AuthError::Internal(s),
    }
}

impl AuthPlugin {
    pub(super) fn new(
        engine: PluginEngine,
        vhost: &str,
        name: &str,
        (pre, identity, sources): (AuthPre<State>, Option<IdentityIndices>, Connected),
        hash: String,
        settings: &serde_json::Value,
        kv: Arc<dyn KvStore>,
    ) -> Result<AuthPlugin, PluginError> {
        let mut sandbox = Sandbox::new(engine, vhost, name, KvRole::Auth, kv, Vec::new(), hash);
        sandbox.sources = sources;
        let indices = AuthIndices::new(pre.instance_pre()).map_err(|e| PluginError::Load {
            plugin: name.to_owned(),
            source: super::wasm_err(e),
        })?;
        let pool = InstancePool::new(&sandbox.engine, AUTH_POOL);
        let mut inner = Inner {
            sandbox,
            pool,
            pre,
            indices,
            identity,
            settings_json: settings.to_string(),
            mechanisms: Vec::new(),
        };
        // `call` configures the fresh instance first, so a refusal surfaces as `Config` here.
        let mechanisms = call_sync(&inner, |a, store| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_mechanisms(store)
                .map(Ok)
        })?;
        inner.mechanisms = mechanisms.into_iter().map(mechanism).collect();
        // An idle vhost holds no instance: the first login makes one.
        inner.pool.clear();
        Ok(AuthPlugin(Arc::new(inner)))
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.0.sandbox.name
    }

    /// The vhost it serves.
    pub fn vhost(&self) -> &str {
        &self.0.sandbox.vhost
    }

    /// SHA-256 (hex) of the component file this generation was compiled from.
    pub fn content_hash(&self) -> &str {
        &self.0.sandbox.hash
    }

    /// Calls made and calls that trapped since load (for `/metrics`).
    pub fn call_counts(&self) -> (u64, u64) {
        self.0.sandbox.call_counts()
    }

    /// Call times since load (for `/metrics`).
    pub fn call_times(&self) -> crate::metrics::CallTimes {
        self.0.sandbox.call_times()
    }

    /// True while too many recent traps keep the plugin disabled.
    pub fn is_disabled(&self) -> bool {
        self.0.sandbox.is_disabled()
    }

    /// The SASL mechanisms it decides.
    pub fn mechanisms(&self) -> &[Mechanism] {
        &self.0.mechanisms
    }

    /// Whether the account exists.
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal.
    pub async fn user_exists(&self, username: &str) -> Result<bool, PluginError> {
        let u = username.to_owned();
        self.call(move |a, s| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_user_exists(s, &u)
                .map(|r| r.map_err(auth_error))
        })
        .await
    }

    /// Whether the password is right (PLAIN).
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal.
    pub async fn test_password(&self, username: &str, password: &str) -> Result<bool, PluginError> {
        let (u, p) = (username.to_owned(), password.to_owned());
        self.call(move |a, s| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_test_password(s, &u, &p)
                .map(|r| r.map_err(auth_error))
        })
        .await
    }

    /// The account's SCRAM credentials.
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal.
    pub async fn scram_credentials(
        &self,
        username: &str,
        hash: ScramHash,
    ) -> Result<Option<ScramCredentials>, PluginError> {
        let u = username.to_owned();
        let h = match hash {
            ScramHash::Sha1 => types::ScramHash::Sha1,
            ScramHash::Sha256 => types::ScramHash::Sha256,
        };
        let creds = self
            .call(move |a, s| {
                a.auth
                    .lilt_plugin_auth_provider()
                    .call_get_scram_credentials(s, &u, h)
                    .map(|r| r.map_err(auth_error))
            })
            .await?;
        Ok(creds.map(|c| ScramCredentials {
            salt: c.salt,
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        }))
    }

    /// Create an account.
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal (e.g. `UserExists`).
    pub async fn create_user(&self, username: &str, password: &str) -> Result<(), PluginError> {
        let (u, p) = (username.to_owned(), password.to_owned());
        self.call(move |a, s| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_create_user(s, &u, &p)
                .map(|r| r.map_err(auth_error))
        })
        .await
    }

    /// Change a password.
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal (e.g. `UserNotFound`).
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), PluginError> {
        let (u, p) = (username.to_owned(), password.to_owned());
        self.call(move |a, s| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_set_password(s, &u, &p)
                .map(|r| r.map_err(auth_error))
        })
        .await
    }

    /// Delete an account.
    ///
    /// # Errors
    /// A trap, a disabled plugin, or the plugin's refusal (e.g. `UserNotFound`).
    pub async fn delete_user(&self, username: &str) -> Result<(), PluginError> {
        let u = username.to_owned();
        self.call(move |a, s| {
            a.auth
                .lilt_plugin_auth_provider()
                .call_delete_user(s, &u)
                .map(|r| r.map_err(auth_error))
        })
        .await
    }

    /// Whether it says who a session is after login (it exports `identity-provider`).
    pub fn provides_identity(&self) -> bool {
        self.0.identity.is_some()
    }

    /// Who the session that just passed `mechanism` as `username` (empty for ANONYMOUS),
    /// with `token` from its connection URL, is; `Ok(None)` when the plugin does not say.
    ///
    /// # Errors
    /// `Ok(Err(refusal))` when the plugin refuses the login; `Err` on a trap or a disabled
    /// plugin (the caller fails the login closed).
    pub async fn identify(
        &self,
        mechanism: Mechanism,
        username: &str,
        token: Option<&str>,
    ) -> Result<Option<Result<Identity, IdentifyRefusal>>, PluginError> {
        if self.0.identity.is_none() {
            return Ok(None);
        }
        let (u, t) = (username.to_owned(), token.map(str::to_owned));
        let m = match mechanism {
            Mechanism::Anonymous => types::Mechanism::Anonymous,
            Mechanism::Plain => types::Mechanism::Plain,
            Mechanism::ScramSha1 => types::Mechanism::ScramSha1,
            Mechanism::ScramSha256 => types::Mechanism::ScramSha256,
        };
        let answer = self
            .call(move |a, s| {
                let Some(identity) = &a.identity else {
                    return Ok(Err(AuthError::NotSupported));
                };
                identity
                    .lilt_plugin_identity_provider()
                    .call_identify(s, m, &u, t.as_deref())
                    .map(Ok)
            })
            .await?;
        Ok(Some(answer.map(identity).map_err(|r| match r {
            ip::Refusal::Denied(text) => IdentifyRefusal::Denied(text),
            ip::Refusal::Unavailable(text) => IdentifyRefusal::Unavailable(text),
        })))
    }

    async fn call<R, F>(&self, f: F) -> Result<R, PluginError>
    where
        R: Send + 'static,
        F: FnOnce(&Instance, &mut Store<State>) -> wasmtime::Result<Result<R, AuthError>>
            + Send
            + 'static,
    {
        let inner = self.0.clone();
        match tokio::task::spawn_blocking(move || call_sync(&inner, f)).await {
            Ok(r) => r,
            Err(e) => Err(PluginError::Trap {
                plugin: self.0.sandbox.name.to_string(),
                source: anyhow::anyhow!("call aborted: {e}"),
            }),
        }
    }
}

/// The host's form of an `identity`, with the room names lowercased and the context capped.
fn identity(i: ip::Identity) -> Identity {
    Identity {
        rooms: match i.rooms {
            ip::RoomAccess::Any => RoomAccess::Any,
            ip::RoomAccess::Only(rooms) => {
                RoomAccess::Only(rooms.iter().map(|r| r.to_lowercase()).collect())
            }
        },
        may_create_rooms: i.may_create_rooms,
        moderator: i.moderator,
        user: i.user.map(|u| UserCard {
            id: u.id,
            name: u.name,
            email: u.email,
            avatar: u.avatar,
        }),
        group: i.group,
        context_json: i.context_json.filter(|c| c.len() <= MAX_CONTEXT_JSON),
    }
}

/// Run one call on a pooled, configured instance. Blocking.
fn call_sync<R>(
    inner: &Inner,
    f: impl FnOnce(&Instance, &mut Store<State>) -> wasmtime::Result<Result<R, AuthError>>,
) -> Result<R, PluginError> {
    let plugin = inner.sandbox.name.to_string();
    let (result, _) = inner.sandbox.with_instance(
        &inner.pool,
        |store| {
            let instance = inner.pre.instance_pre().instantiate(&mut *store)?;
            let auth = inner.indices.load(&mut *store, &instance)?;
            let identity = match &inner.identity {
                Some(i) => Some(i.load(&mut *store, &instance)?),
                None => None,
            };
            Ok(auth
                .lilt_plugin_auth_provider()
                .call_configure(&mut *store, &inner.settings_json)?
                .map(|()| Instance { auth, identity }))
        },
        f,
    )?;
    result.map_err(|error| PluginError::Auth { plugin, error })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Grants;
    use crate::plugin::PluginLimits;
    use crate::plugin::engine::{TICK, build_linker};

    pub(crate) fn wasm(name: &str) -> PathBuf {
        // $LILT_PLUGIN_DIR, else $CARGO_TARGET_DIR, else the workspace's target/.
        let dir = std::env::var_os("LILT_PLUGIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
                    .join("wasm32-wasip2/release")
            });
        let p = dir.join(name);
        assert!(
            p.is_file(),
            "{} missing: run `cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal`",
            p.display()
        );
        p
    }

    fn load(
        name: &str,
        file: &str,
        settings: serde_json::Value,
    ) -> Result<AuthPlugin, PluginError> {
        let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
        engine.load_auth(
            "a.example",
            name,
            &wasm(file),
            &settings,
            crate::storage::memory(),
        )
    }

    #[tokio::test]
    async fn an_idle_vhost_holds_no_instance() {
        let p = load("auth-internal", "auth_internal.wasm", serde_json::json!({})).expect("load");
        // The instance the load configured is gone once the load is done.
        assert_eq!(p.0.pool.idle_len(), 0);
        let before_call = std::time::Instant::now();
        p.create_user("alice", "pencil").await.expect("create");
        assert_eq!(p.0.pool.idle_len(), 1);
        let engine = &p.0.sandbox.engine;
        let idle = crate::plugin::sandbox::IDLE_RELEASE;
        // Not idle long enough (seen from before it was given back): kept.
        assert_eq!(engine.sweep_idle(before_call, idle), 0);
        assert_eq!(p.0.pool.idle_len(), 1);
        // Idle for IDLE_RELEASE: dropped; the next call makes (and configures) a new one.
        assert_eq!(engine.sweep_idle(std::time::Instant::now() + idle, idle), 1);
        assert_eq!(p.0.pool.idle_len(), 0);
        assert!(p.test_password("alice", "pencil").await.expect("check"));
        assert_eq!(p.0.pool.idle_len(), 1);
        // A dropped plugin's pool leaves the sweeper's list.
        let engine = engine.clone();
        drop(p);
        assert_eq!(engine.sweep_idle(std::time::Instant::now() + idle, idle), 0);
    }

    #[tokio::test]
    async fn internal_accounts_through_the_component() {
        let p = load("auth-internal", "auth_internal.wasm", serde_json::json!({})).expect("load");
        assert_eq!(
            p.mechanisms(),
            [
                Mechanism::ScramSha256,
                Mechanism::ScramSha1,
                Mechanism::Plain
            ]
        );
        p.create_user("alice", "pencil").await.expect("create");
        assert!(matches!(
            p.create_user("alice", "x").await,
            Err(PluginError::Auth {
                error: AuthError::UserExists,
                ..
            })
        ));
        assert!(p.user_exists("alice").await.expect("exists"));
        assert!(p.test_password("alice", "pencil").await.expect("check"));
        assert!(!p.test_password("alice", "nope").await.expect("check"));
        let c = p
            .scram_credentials("alice", ScramHash::Sha256)
            .await
            .expect("creds")
            .expect("some");
        let expected = crate::sasl::derive_scram_credentials(
            ScramHash::Sha256,
            "pencil",
            &c.salt,
            c.iterations,
        );
        assert_eq!(c, expected);
        assert!(
            p.scram_credentials("bob", ScramHash::Sha1)
                .await
                .expect("creds")
                .is_none()
        );
        p.delete_user("alice").await.expect("delete");
        assert!(!p.user_exists("alice").await.expect("exists"));
    }

    #[tokio::test]
    async fn anonymous_and_bad_settings() {
        let p = load(
            "auth-anonymous",
            "auth_anonymous.wasm",
            serde_json::Value::Null,
        )
        .expect("load");
        assert_eq!(p.mechanisms(), [Mechanism::Anonymous]);
        assert!(matches!(
            p.create_user("a", "b").await,
            Err(PluginError::Auth {
                error: AuthError::NotSupported,
                ..
            })
        ));
        let e = load(
            "auth-anonymous",
            "auth_anonymous.wasm",
            serde_json::json!({"x": 1}),
        )
        .expect_err("refused");
        assert!(matches!(e, PluginError::Config { .. }), "{e}");
        let e = load(
            "auth-internal",
            "auth_internal.wasm",
            serde_json::json!({"iterations": 1}),
        )
        .expect_err("refused");
        assert!(matches!(e, PluginError::Config { .. }), "{e}");
        let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
        let e = engine
            .load_auth(
                "a",
                "nope",
                std::path::Path::new("/nonexistent.wasm"),
                &serde_json::Value::Null,
                crate::storage::memory(),
            )
            .expect_err("missing");
        assert!(matches!(e, PluginError::Load { .. }));
        let not_wasm =
            std::env::temp_dir().join(format!("lilt-not-wasm-{}.wasm", uuid::Uuid::new_v4()));
        std::fs::write(&not_wasm, b"hello").expect("write");
        let e = engine
            .load_auth(
                "a",
                "junk",
                &not_wasm,
                &serde_json::Value::Null,
                crate::storage::memory(),
            )
            .expect_err("junk");
        assert!(matches!(e, PluginError::Load { .. }));
        let _ = std::fs::remove_file(not_wasm);
    }

    #[tokio::test]
    async fn grants_decide_what_links() {
        let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
        // auth-internal keeps its accounts in kv.
        let e = engine
            .load_auth_plugin(
                "a.example",
                &crate::config::AuthPluginConfig {
                    plugin: "auth-internal".into(),
                    path: wasm("auth_internal.wasm"),
                    grants: Grants::NONE,
                    sources: crate::config::Sources::default(),
                    settings: serde_json::json!({}),
                },
                crate::storage::memory(),
            )
            .expect_err("kv is not granted");
        match &e {
            PluginError::NotGranted {
                plugin,
                interfaces,
                missing,
            } => {
                assert_eq!(plugin, "auth-internal");
                assert_eq!(interfaces, &["lilt:plugin/kv"]);
                assert_eq!(missing, &["kv"]);
            }
            other => panic!("expected NotGranted, got {other}"),
        }
        assert_eq!(
            e.to_string(),
            "plugin auth-internal: imports lilt:plugin/kv, which is not granted (add \"kv\" to grants)"
        );
        // auth-anonymous imports nothing that needs a grant.
        let p = engine
            .load_auth_plugin(
                "a.example",
                &crate::config::AuthPluginConfig {
                    plugin: "auth-anonymous".into(),
                    path: wasm("auth_anonymous.wasm"),
                    grants: Grants::NONE,
                    sources: crate::config::Sources::default(),
                    settings: serde_json::Value::Null,
                },
                crate::storage::memory(),
            )
            .expect("loads without grants");
        assert_eq!(p.mechanisms(), [Mechanism::Anonymous]);
        // The import check is not the only guard: a linker without the grant lacks kv.
        let component =
            wasmtime::component::Component::from_file(engine.engine(), wasm("auth_internal.wasm"))
                .expect("compile");
        let Err(e) = build_linker(engine.engine(), Grants::NONE)
            .expect("linker")
            .instantiate_pre(&component)
        else {
            panic!("kv is linked without the grant");
        };
        assert!(format!("{e:#}").contains("lilt:plugin/kv"), "{e:#}");
        build_linker(engine.engine(), Grants::AUTH_DEFAULT)
            .expect("linker")
            .instantiate_pre(&component)
            .expect("kv is linked");
    }

    #[tokio::test]
    async fn kv_quota_and_sqlite_persistence() {
        // A record is a few hundred bytes: a 64-byte quota refuses the first account.
        let engine = PluginEngine::new(PluginLimits {
            kv_quota_bytes: 64,
            ..PluginLimits::default()
        })
        .expect("engine");
        let p = engine
            .load_auth(
                "a.example",
                "auth-internal",
                &wasm("auth_internal.wasm"),
                &serde_json::json!({}),
                crate::storage::memory(),
            )
            .expect("load");
        match p.create_user("alice", "pencil").await {
            Err(PluginError::Auth {
                error: AuthError::Internal(m),
                ..
            }) => assert!(m.contains("quota"), "{m}"),
            other => panic!("expected a quota refusal, got {other:?}"),
        }
        assert!(!p.user_exists("alice").await.expect("exists"));

        // Accounts outlive the plugin handle when the store is SQLite.
        let db = std::env::temp_dir().join(format!("lilt-kv-{}.sqlite", uuid::Uuid::new_v4()));
        let engine = PluginEngine::new(PluginLimits::default()).expect("engine");
        let open = |kv| {
            engine.load_auth(
                "a.example",
                "auth-internal",
                &wasm("auth_internal.wasm"),
                &serde_json::json!({"mechanisms": ["plain"]}),
                kv,
            )
        };
        let p = open(crate::storage::open_sqlite(&db).expect("db")).expect("load");
        assert_eq!(p.mechanisms(), [Mechanism::Plain]);
        p.create_user("Bob", "secret").await.expect("create");
        drop(p);
        let p = open(crate::storage::open_sqlite(&db).expect("db")).expect("load");
        assert!(p.test_password("bob", "secret").await.expect("check"));
        assert!(matches!(
            p.create_user("bad name", "x").await,
            Err(PluginError::Auth {
                error: AuthError::InvalidInput(_),
                ..
            })
        ));
        drop(p);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }

    #[tokio::test]
    async fn timeout_traps_and_disables() {
        // PBKDF2 with 400 000 iterations for three credentials takes seconds: with a 200 ms
        // budget the call traps (loading, a few ms, fits even on a busy machine), and after
        // `max_traps` the plugin is disabled.
        let limits = PluginLimits {
            call_timeout: 20 * TICK,
            max_traps: 2,
            ..PluginLimits::default()
        };
        let engine = PluginEngine::new(limits).expect("engine");
        let p = engine
            .load_auth(
                "a.example",
                "auth-internal",
                &wasm("auth_internal.wasm"),
                &serde_json::json!({"iterations": 400000}),
                crate::storage::memory(),
            )
            .expect("load");
        for _ in 0..2 {
            let e = p.create_user("slow", "pw").await.expect_err("times out");
            assert!(matches!(e, PluginError::Trap { .. }), "{e}");
        }
        assert!(matches!(
            p.user_exists("slow").await,
            Err(PluginError::Disabled { .. })
        ));
    }
}
