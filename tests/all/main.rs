//! End-to-end tests of the real `lilt` binary: one test binary (wasmtime's tests/all layout),
//! each test starting its own server on free loopback ports with its own data folder.
//!
//! Shell (processes and sockets). Spec: RFC 6120/6121 (c2s), RFC 7395 (WebSocket), XEP-0124/
//! 0206 (BOSH), XEP-0030, XEP-0114, XEP-0198, XEP-0199, XEP-0368, and the `lilt` CLI.
//! Independent clients drive the server: tokio-xmpp 6 (a real XMPP library), `raw` (exact
//! bytes, for SASL by hand, stream management and bad input), xmpp.js and Strophe.js under
//! Node, reqwest, tokio-tungstenite and prometheus-parse (`web`).
//! Invariants: tests only touch 127.0.0.1; every wait is bounded; a missing `lilt` binary or
//! plugin fails with a message saying how to build it (scripts/test.sh builds both first).
//! Tests: the modules below; the harness is `harness`, the clients `raw` and `client`.

mod admission;
mod client;
mod harness;
mod queues;
mod raw;
mod raw_session;
mod scram;
mod tls_util;
mod web;

mod av_moderation;
mod bosh;
mod brand_langs;
mod browser;
mod cli;
mod component;
mod config;
mod grants;
mod hooks;
mod http;
mod isolation;
mod jwt;
mod ldap;
mod login;
mod meeting;
mod muc;
mod postgres;
mod reload;
mod routing;
mod shards;
mod sm;
mod soak;
mod stream_errors;
mod tls;
mod turn;
mod web_page;
mod websocket;
