//! The tokio shell: server assembly, the router's owner task, the HTTP listener, one task per
//! connection, the plugin workers and the reload machinery.
//!
//! Shell. Everything protocol-shaped lives in the sans-IO cores (`lilt-proto`); these files
//! only move bytes, messages and time between sockets, mailboxes, plugins and cores.

pub mod admission;
pub mod bridge;
pub mod colibri;
pub mod component_task;
pub mod config_reload;
pub mod entropy;
pub mod http;
pub mod link;
pub mod mailbox;
pub mod plugin_worker;
pub mod reload;
pub mod router_task;
pub mod server;
pub mod session_task;
