//! The tokio shell: server assembly, the router's owner task, and one task per connection.
//!
//! Shell. Everything protocol-shaped lives in the sans-IO cores (`stream`, `router`); these
//! files only move bytes, messages and time between sockets, mailboxes and cores.

pub mod component_task;
pub mod config_reload;
pub mod entropy;
pub mod link;
pub mod plugin_worker;
pub mod reload;
pub mod router_task;
pub mod server;
pub mod session_task;
