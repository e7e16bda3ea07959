//! The WebAssembly plugin runtime (docs/plugins.md): a wasmtime engine with epoch deadlines and
//! memory caps, the WIT bindings, the host imports plugins get, and per-role handles
//! (today `AuthPlugin`).
//!
//! Shell (every call runs on a blocking thread: auth calls from the session's task, hook,
//! component and timer calls from the vhost's plugin worker, runtime/plugin_worker.rs).
//! Invariants: calls run on instances pooled per (vhost, plugin), so nothing is shared between
//! tenants; a trap, a timeout, memory exhaustion or a guest panic is a `PluginError::Trap`,
//! never a host panic, with the guest's output in the host log; auth fails closed, hooks
//! fail open.
//! Tests: `mod tests` in auth.rs (real plugin components), tests/all/ end to end.

mod auth;
mod bindings;
mod engine;
mod hooks;
mod host_api;
mod keys;
mod ldap;
mod output;
mod sandbox;
mod sources;

pub use auth::{AuthPlugin, IdentifyRefusal};
pub use engine::PluginEngine;
pub use hooks::{HookPlugin, Outcome, PluginSet, VhostHooks};

/// wasmtime 48 has its own error type; keep its whole chain in the text.
pub(crate) fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// The sandbox limits live with the configuration that sets them.
pub use crate::config::PluginLimits;

/// A plugin's answer to an account question, mirroring the WIT `auth-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The plugin does not do this.
    #[error("not supported by this auth plugin")]
    NotSupported,
    /// The account exists.
    #[error("the account exists")]
    UserExists,
    /// No such account.
    #[error("no such account")]
    UserNotFound,
    /// Refused input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The plugin failed internally.
    #[error("plugin error: {0}")]
    Internal(String),
}

/// Why a plugin could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component could not be loaded or linked.
    #[error("plugin {plugin}: cannot load: {source:#}")]
    Load {
        /// Plugin name.
        plugin: String,
        /// Cause (also `source()`).
        source: anyhow::Error,
    },
    /// The component imports `lilt:plugin` interfaces its configuration does not grant.
    #[error(
        "plugin {plugin}: imports {}, which {} not granted (add {} to grants)",
        .interfaces.join(", "),
        if .interfaces.len() == 1 { "is" } else { "are" },
        .missing.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(", ")
    )]
    NotGranted {
        /// Plugin name.
        plugin: String,
        /// The ungranted imports, without version (`lilt:plugin/stanzas`).
        interfaces: Vec<String>,
        /// The grants they need (`stanzas`).
        missing: Vec<&'static str>,
    },
    /// `configure` refused the settings.
    #[error("plugin {plugin}: settings refused: {message}")]
    Config {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The call trapped, timed out or ran out of memory.
    #[error("plugin {plugin}: trapped: {source:#}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// Cause (also `source()`).
        source: anyhow::Error,
    },
    /// Too many recent traps: calls are refused until the window passes.
    #[error("plugin {plugin}: disabled after repeated traps")]
    Disabled {
        /// Plugin name.
        plugin: String,
    },
    /// The plugin's domain answer.
    #[error("plugin {plugin}: {error}")]
    Auth {
        /// Plugin name.
        plugin: String,
        /// The answer.
        error: AuthError,
    },
}
