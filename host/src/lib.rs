//! Lilt: one Rust server for the Jitsi Meet backend (today: the XMPP server with MUC), with
//! every operator policy (authentication, room hooks, components such as speaker statistics)
//! in sandboxed WebAssembly components per vhost.
//!
//! # Architecture
//!
//! Sans-IO protocol cores in the `lilt-proto` crate (re-exported here as `xml`, `sasl`,
//! `stanza`, `stream`, `bosh`, `router`, `muc`, `hooks`) and this crate as the tokio shell
//! around them (docs/architecture.md):
//!
//! ```text
//! socket ─▶ transport (TCP, STARTTLS, direct TLS) or http (WebSocket, BOSH) ─▶ xml / framing
//!        ─▶ stream::c2s / stream::component (SASL, bind, SM)  ─▶ router task ─▶ mailboxes
//!                      │ auth questions            │ plugin calls      (one per session)
//!                      ▼                           ▼
//!               plugin::AuthPlugin        runtime::plugin_worker (one per vhost)
//!               (blocking pool)           plugin::VhostHooks (blocking pool)
//! ```
//!
//! * **Cores** (`lilt-proto`) take bytes, answers, time and randomness as input and return
//!   effects; they never touch a socket, a clock, the OS's randomness or a task.
//! * **Shell** (`transport`, `runtime` with its `http` listener, `plugin`, `storage`,
//!   `metrics`, `config`, `admin`) owns sockets, timers, wasmtime stores, SQLite and the clock. One task per
//!   connection, one owner task for the router, one plugin worker per vhost with plugins.
//!
//! Every file opens with what it owns, the spec it follows and where it is tested.

pub mod admin;
pub mod config;
pub mod metrics;
pub mod plugin;
pub mod runtime;
pub mod storage;
pub mod transport;

/// The protocol cores live in `lilt-proto`; they are re-exported under their old paths.
pub use lilt_proto::{
    bosh, focus, hooks, identity, jingle, muc, router, sasl, stanza, stream, xml,
};
