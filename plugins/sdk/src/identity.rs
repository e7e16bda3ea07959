//! What an auth plugin says about a session once its login has succeeded
//! ([`IdentityPlugin::identify`]: rooms, moderator, user card), and the host capabilities auth
//! plugins may be granted for deciding: public keys ([`Keys`], grant `keys:<name>`) and a
//! directory ([`Directory`], grant `ldap:<profile>`).
//!
//! Pure Rust: the wasm glue is in `bindings`; [`MemoryHost`](crate::MemoryHost) implements
//! both capabilities for native tests (keys from a map, no directory).

use crate::hooks::{MemoryHost, Store};
use crate::plugin::{AuthPlugin, Mechanism};

/// The rooms a session may join.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoomAccess {
    /// Any room.
    #[default]
    Any,
    /// Only these room names (local parts of room JIDs), lowercase.
    Only(Vec<String>),
}

/// Who the user is (Jitsi's token `context.user`), relayed to rooms in the occupant's presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserCard {
    /// A stable id.
    pub id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
}

/// A session's identity, kept by the host on the session and enforced at every MUC join.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Which rooms it may join (others refuse it with `not-allowed`).
    pub rooms: RoomAccess,
    /// Whether its joins may create rooms.
    pub may_create_rooms: bool,
    /// Whether its joins get the `owner` affiliation.
    pub moderator: bool,
    /// The user card.
    pub user: Option<UserCard>,
    /// The user's group (Jitsi's `context.group`).
    pub group: Option<String>,
    /// Anything else to keep on the session, as JSON (at most 16 KiB).
    pub context_json: Option<String>,
}

/// Why a login is refused after the mechanism succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not acceptable: SASL `not-authorized` with this text.
    Denied(String),
    /// Cannot decide now (key server or directory down): `temporary-auth-failure`.
    Unavailable(String),
}

/// Why [`Keys::public_key`] has no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No key under this id, or not one PEM public key.
    NotFound,
    /// The key server is unreachable or failed.
    Unavailable(String),
}

/// Public keys by key id, fetched and cached by the host from the granted key server.
pub trait Keys {
    /// The PEM public key with id `kid`.
    ///
    /// # Errors
    /// See [`KeyError`].
    fn public_key(&self, kid: &str) -> Result<String, KeyError>;
}

/// LDAP search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base object only.
    Base,
    /// Its immediate children.
    One,
    /// The whole subtree.
    Sub,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Distinguished name.
    pub dn: String,
    /// Attribute names and their (UTF-8) values.
    pub attributes: Vec<(String, Vec<String>)>,
}

impl Entry {
    /// The values of attribute `name` (compared case-insensitively, as LDAP does).
    pub fn values(&self, name: &str) -> &[String] {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapError {
    /// The directory is unreachable, timed out or failed.
    Unavailable(String),
    /// Refused before reaching the directory (DN outside the base, bad filter).
    Refused(String),
}

/// A directory, through the host's connections to the granted profile.
pub trait Directory {
    /// Whether `password` is right for `dn` (an empty password is always `false`).
    ///
    /// # Errors
    /// See [`LdapError`].
    fn bind(&self, dn: &str, password: &str) -> Result<bool, LdapError>;

    /// Search as the profile's service account, under its base DN; at most 100 entries.
    ///
    /// # Errors
    /// See [`LdapError`].
    fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<Entry>, LdapError>;
}

/// What an auth plugin's methods may use: its `kv` store, public keys and a directory (each
/// import only when called, so a plugin imports only what it uses and needs only those
/// grants).
pub trait AuthHost: Store + Keys + Directory {}

impl<T: Store + Keys + Directory> AuthHost for T {}

/// An auth plugin that also says who a session is: export it with
/// [`export_auth_identity!`](crate::export_auth_identity) (world `lilt:plugin/auth-identity`).
pub trait IdentityPlugin: AuthPlugin {
    /// A login succeeded as far as the mechanism goes: `username` is the account (empty for
    /// ANONYMOUS), `token` the `token` parameter of the client's WebSocket or BOSH URL.
    ///
    /// # Errors
    /// A [`Refusal`] fails the login.
    fn identify(
        &self,
        host: &impl AuthHost,
        mechanism: Mechanism,
        username: &str,
        token: Option<&str>,
    ) -> Result<Identity, Refusal>;
}

impl Keys for MemoryHost {
    fn public_key(&self, kid: &str) -> Result<String, KeyError> {
        if let Some(why) = self.keys_unavailable.borrow().as_ref() {
            return Err(KeyError::Unavailable(why.clone()));
        }
        self.public_keys
            .borrow()
            .get(kid)
            .cloned()
            .ok_or(KeyError::NotFound)
    }
}

impl Directory for MemoryHost {
    fn bind(&self, _dn: &str, _password: &str) -> Result<bool, LdapError> {
        Err(LdapError::Unavailable("MemoryHost has no directory".into()))
    }

    fn search(
        &self,
        _base: &str,
        _scope: Scope,
        _filter: &str,
        _attributes: &[&str],
    ) -> Result<Vec<Entry>, LdapError> {
        Err(LdapError::Unavailable("MemoryHost has no directory".into()))
    }
}
