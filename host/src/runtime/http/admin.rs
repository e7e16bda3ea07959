//! The admin endpoint on the HTTP listener: `GET /admin/plugins` (what every vhost runs, per
//! plugin: world, generation, hash, grants, calls, traps, state) and
//! `POST /admin/plugins/reload[?vhost=V][&plugin=P]` (reload what matches, each a new
//! generation or a refusal with its reason) and `POST /admin/reload` (read the config file
//! again, as SIGHUP does). `lilt plugin list|reload` and `lilt reload` call it. Also the admin
//! token the server writes at start for them (`server_token`, through `secret_file`, which
//! also keeps the SASL secret).
//!
//! Shell. Invariants: only a loopback peer (the TCP peer itself: `X-Forwarded-For` is not
//! believed here, whatever the trusted proxies) with `Authorization: Bearer` and the server's
//! admin token (compared in constant time) gets an answer; everyone else gets 403 or 401
//! and an audit log line. Tests: tests/all/reload.rs.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use std::sync::Arc;

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use subtle::ConstantTimeEq as _;

use super::{Resp, respond};
use crate::runtime::server::Ctx;

fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    respond(status, "application/json", Bytes::from(value.to_string()))
}

fn refuse(status: StatusCode, why: &str) -> Resp {
    json(status, &serde_json::json!({ "error": why }))
}

/// Answer a request under `/admin/`.
pub(super) async fn route(ctx: Arc<Ctx>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if !peer.ip().is_loopback() {
        tracing::warn!(target: "audit", event = "admin_refused", reason = "not loopback", %peer, path);
        return refuse(
            StatusCode::FORBIDDEN,
            "the admin endpoint answers only on loopback",
        );
    }
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(ctx.admin_token.as_bytes())) {
        tracing::warn!(target: "audit", event = "admin_refused", reason = "bad token", %peer, path);
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
    }
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (req.method(), path.as_str()) {
        (&Method::GET, "/admin/plugins") => json(StatusCode::OK, &ctx.plugins.status()),
        (&Method::POST, "/admin/plugins/reload") => {
            let (vhost, plugin) = (param("vhost"), param("plugin"));
            let slots = ctx.plugins.select(vhost, plugin);
            tracing::info!(target: "audit", event = "admin_reload", %peer, vhost, plugin, slots = slots.len());
            if slots.is_empty() {
                return refuse(StatusCode::NOT_FOUND, "no loaded plugin matches");
            }
            let mut results = Vec::new();
            for slot in slots {
                let (vhost, name) = ctx.plugins.describe(&slot);
                results.push(match ctx.plugins.reload(&slot).await {
                    Ok(g) => serde_json::json!({
                        "vhost": vhost, "plugin": name, "ok": true,
                        "generation": g.number, "hash": g.hash,
                    }),
                    Err(e) => serde_json::json!({
                        "vhost": vhost, "plugin": name, "ok": false, "error": e,
                    }),
                });
            }
            json(StatusCode::OK, &serde_json::json!({ "results": results }))
        }
        (&Method::POST, "/admin/reload") => {
            tracing::info!(target: "audit", event = "admin_config_reload", %peer);
            match crate::runtime::config_reload::reload_config(&ctx).await {
                Ok(c) => json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "added": c.added,
                        "removed": c.removed,
                        "changed": c.changed,
                        "restart_needed": c.restart_needed,
                    }),
                ),
                Err(e) => refuse(StatusCode::CONFLICT, &e),
            }
        }
        _ => refuse(StatusCode::NOT_FOUND, "no such admin resource"),
    }
}

/// Percent-decode a query value.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The admin token of the server using `data_dir`: the one in `admin.token`, or a new random
/// one written there (mode 0600) when there is none.
///
/// # Errors
/// When the file cannot be read or written.
pub fn server_token(data_dir: &Path) -> anyhow::Result<String> {
    secret_file(data_dir, "admin.token")
}

/// A server secret kept in `data_dir/name`: the file's text when it holds at least 32
/// characters, else 32 new random bytes, hex-encoded, written there (mode 0600, through a
/// temporary file and a rename) and returned. Used for `admin.token` and `sasl.secret`.
///
/// # Errors
/// When the file cannot be read or written.
pub fn secret_file(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(t) = std::fs::read_to_string(&path)
        && t.trim().len() >= 32
    {
        return Ok(t.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("data_dir: cannot create {}", data_dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(token.as_bytes())?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}
