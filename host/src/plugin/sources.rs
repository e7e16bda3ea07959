//! The identity sources an auth plugin's store can reach: the key fetcher and directory pool
//! its `keys:<name>` and `ldap:<profile>` grants name, shared by every plugin (and every
//! generation) granted the same configured source, so caches and connections outlive reloads.
//!
//! Shell. Invariants: one live fetcher or pool per configured source (by its whole
//! configuration: a changed URL or password after a config reload gets a new one).
//! Tests: plugin/keys.rs, plugin/ldap.rs, tests/all/jwt.rs, tests/all/ldap.rs.

use std::sync::{Arc, Mutex, PoisonError};

use super::keys::KeyFetcher;
use super::ldap::LdapPool;
use crate::config::Sources;

/// What one plugin's calls may reach.
#[derive(Debug, Clone, Default)]
pub(super) struct Connected {
    /// The key server of its `keys:<name>` grant.
    pub(super) keys: Option<Arc<KeyFetcher>>,
    /// The directory profile of its `ldap:<profile>` grant.
    pub(super) ldap: Option<Arc<LdapPool>>,
}

/// The live sources of an engine.
#[derive(Debug, Default)]
pub(super) struct Registry {
    keys: Mutex<Vec<Arc<KeyFetcher>>>,
    ldap: Mutex<Vec<Arc<LdapPool>>>,
}

impl Registry {
    /// The live sources `sources` names, made on first use.
    pub(super) fn connect(&self, sources: &Sources) -> Connected {
        let keys = sources.key_server.as_ref().map(|server| {
            let mut live = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = live.iter().find(|f| f.server() == server) {
                return f.clone();
            }
            let f = Arc::new(KeyFetcher::new(server.clone()));
            live.push(f.clone());
            f
        });
        let ldap = sources.ldap.as_ref().map(|profile| {
            let mut live = self.ldap.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = live.iter().find(|p| p.profile() == profile) {
                return p.clone();
            }
            let p = Arc::new(LdapPool::new(profile.clone()));
            live.push(p.clone());
            p
        });
        Connected { keys, ldap }
    }
}
