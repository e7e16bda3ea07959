//! Lilt: one Rust server for the Jitsi Meet backend (today: the XMPP server with MUC), with
//! every operator policy (authentication, room hooks, components such as speaker statistics)
//! in sandboxed WebAssembly components per vhost.
//!
//! # Architecture
//!
//! Sans-IO protocol cores and a thin tokio shell (docs/architecture.md):
//!
//! ```text
//! socket ─▶ transport (TCP, STARTTLS, direct TLS) or http (WebSocket, BOSH) ─▶ xml / framing
//!        ─▶ stream::c2s / stream::component (SASL, bind, SM)  ─▶ router task ─▶ mailboxes
//!                      │ auth questions            hooks, muc::MucService,  (one per session)
//!                      ▼                           plugin components
//!               plugin::AuthPlugin, plugin::PluginExtensions (pooled wasmtime instances)
//! ```
//!
//! * **Cores** (`xml`, `sasl`, `stanza`, `stream`, `bosh`, `router`, `muc`, `hooks`,
//!   `metrics`, `config`) take bytes, answers and
//!   time as input and return effects; they never touch a socket, a clock or a task.
//! * **Shell** (`transport`, `http`, `runtime`, `plugin`, `storage`, `admin`) owns sockets, timers,
//!   wasmtime stores and SQLite. One task per connection, one owner task for the router.
//!
//! Every file opens with what it owns, the spec it follows and where it is tested.

pub mod admin;
pub mod bosh;
pub mod config;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod muc;
pub mod plugin;
pub mod router;
pub mod runtime;
pub mod sasl;
pub mod stanza;
pub mod storage;
pub mod stream;
pub mod transport;
pub mod xml;
