//! Configuration reload (SIGHUP, `lilt reload`): read the config file again and apply what
//! can change while sessions go on — vhosts added, removed, or given other plugins, settings
//! or grants — through the plugin registry and the router; report the rest as needing a
//! restart.
//!
//! Shell. Invariants: an invalid file or a plugin that does not load changes nothing (the
//! running configuration keeps serving, and the reason is returned and logged); sessions of
//! unchanged and changed vhosts are kept; a removed vhost stops taking logins before its
//! sessions are closed with `host-gone`; an added vhost takes logins only once its plugins,
//! worker and routing are in place. Tests: tests/all/reload.rs.

use std::collections::HashMap;

use super::reload::ConfigChange;
use super::server::{Ctx, vhost_policy};
use crate::config::Config;

/// Read the server's config file again and apply it.
///
/// # Errors
/// Why nothing was applied: no config file (embedded defaults), an invalid file, or a plugin
/// that does not load.
pub async fn reload_config(ctx: &Ctx) -> Result<ConfigChange, String> {
    let result = reload(ctx).await;
    match &result {
        Ok(c) => tracing::info!(
            message = "Configuration reloaded.",
            added = ?c.added,
            removed = ?c.removed,
            changed = ?c.changed,
            restart_needed = ?c.restart_needed
        ),
        Err(e) => tracing::warn!(
            message = "Configuration reload refused; the running configuration keeps serving.",
            error = %e
        ),
    }
    result
}

async fn reload(ctx: &Ctx) -> Result<ConfigChange, String> {
    let Some(path) = ctx.config.source.clone() else {
        return Err("the server runs on its embedded defaults: there is no file to reload".into());
    };
    let new = tokio::task::spawn_blocking(move || Config::load(&path).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("the reload task failed: {e}"))??;
    // No new logins for a vhost that goes away.
    let mut keep = (*ctx.policies()).clone();
    keep.retain(|d, _| new.vhosts.iter().any(|v| &v.domain == d));
    ctx.set_policies(keep);
    let result = ctx.plugins.apply(new.clone()).await;
    // The policies follow what is actually in force: the new vhosts on success, the old
    // ones (still served) on failure.
    let config = if result.is_ok() {
        new
    } else {
        ctx.plugins.config()
    };
    let policies: HashMap<_, _> = config
        .vhosts
        .iter()
        .map(|v| {
            let auth = ctx.plugins.auth(&v.domain);
            (v.domain.clone(), vhost_policy(v, auth.as_ref()))
        })
        .collect();
    ctx.set_policies(policies);
    result
}
