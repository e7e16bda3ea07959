//! `lilt plugin list`, `lilt plugin reload [--vhost V] [PLUGIN]` and `lilt reload`: the CLI
//! side of the admin endpoint.
//!
//! Shell (edge code). The running server writes a random token to `data_dir/admin.token`
//! (mode 0600) at start (runtime/http/admin.rs); the CLI reads it and calls the server's HTTP listener on loopback
//! (`/admin/plugins`, `/admin/plugins/reload`) with `Authorization: Bearer TOKEN`. The server
//! answers only loopback peers with the right token (http/admin.rs). Invariants: the token is
//! never printed or logged; every wait is bounded. Tests: tests/all/reload.rs.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::{Config, ListenerKind};

/// How long the CLI waits for the server (a reload compiles, which can take seconds).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// The loopback address of the config's first plain HTTP listener.
fn admin_addr(config: &Config) -> anyhow::Result<SocketAddr> {
    let Some(l) = config
        .listeners
        .iter()
        .find(|l| l.kind == ListenerKind::Http { tls: false })
    else {
        bail!(
            "the config has no plain HTTP listener (type = \"http\", tls = false); the plugin \
             commands reach the server through one on loopback"
        );
    };
    let ip = match l.bind.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    if !ip.is_loopback() {
        bail!(
            "the HTTP listener binds {}, and the admin endpoint answers only on loopback",
            l.bind
        );
    }
    Ok(SocketAddr::new(ip, l.bind.port()))
}

/// One request to the running server's admin endpoint; the JSON it answers.
fn call(config: &Config, method: &str, path_and_query: &str) -> anyhow::Result<serde_json::Value> {
    let token =
        std::fs::read_to_string(config.data_dir.join("admin.token")).with_context(|| {
            format!(
                "cannot read {}/admin.token: is the server running with this config?",
                config.data_dir.display()
            )
        })?;
    let addr = admin_addr(config)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the server at {addr}: is it running?"))?;
    s.set_read_timeout(Some(CLI_TIMEOUT))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        token.trim()
    )?;
    let mut raw = Vec::new();
    s.take(16 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the server's answer is not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .context("the server's answer has no status")?;
    let value: serde_json::Value = serde_json::from_str(body.trim())
        .with_context(|| format!("HTTP {status}: {}", body.trim()))?;
    if status != 200 {
        let why = value["error"].as_str().unwrap_or("no reason given");
        bail!("the server refused ({status}): {why}");
    }
    Ok(value)
}

/// `lilt plugin list`: one line per plugin of each vhost.
///
/// # Errors
/// When the server cannot be reached or refuses.
pub fn list(config: &Config) -> anyhow::Result<String> {
    let rows = call(config, "GET", "/admin/plugins")?;
    let mut out = format!(
        "{:<24} {:<22} {:<20} {:>4} {:<12} {:<20} {:>9} {:>6} {}\n",
        "VHOST", "PLUGIN", "WORLD", "GEN", "HASH", "GRANTS", "CALLS", "TRAPS", "STATE"
    );
    for r in rows.as_array().into_iter().flatten() {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        let grants: Vec<&str> = r["grants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str())
            .collect();
        let mut state = s("state");
        if let Some(e) = r["last_reload_error"].as_str() {
            state.push_str(&format!(" (last reload refused: {e})"));
        }
        out.push_str(&format!(
            "{:<24} {:<22} {:<20} {:>4} {:<12} {:<20} {:>9} {:>6} {}\n",
            s("vhost"),
            s("plugin"),
            s("world"),
            r["generation"].as_u64().unwrap_or(0),
            s("hash").get(..12).unwrap_or(""),
            if grants.is_empty() {
                "-".to_owned()
            } else {
                grants.join(",")
            },
            r["calls"].as_u64().unwrap_or(0),
            r["traps"].as_u64().unwrap_or(0),
            state
        ));
    }
    Ok(out)
}

/// `lilt plugin reload [--vhost V] [PLUGIN]`: reload what matches; the report, and whether
/// every reload succeeded.
///
/// # Errors
/// When the server cannot be reached or refuses, or nothing matches.
pub fn reload(
    config: &Config,
    vhost: Option<&str>,
    plugin: Option<&str>,
) -> anyhow::Result<(String, bool)> {
    let mut query = Vec::new();
    if let Some(v) = vhost {
        query.push(format!("vhost={}", encode(v)));
    }
    if let Some(p) = plugin {
        query.push(format!("plugin={}", encode(p)));
    }
    let path = if query.is_empty() {
        "/admin/plugins/reload".to_owned()
    } else {
        format!("/admin/plugins/reload?{}", query.join("&"))
    };
    let answer = call(config, "POST", &path)?;
    let mut out = String::new();
    let mut all_ok = true;
    for r in answer["results"].as_array().into_iter().flatten() {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        if r["ok"].as_bool() == Some(true) {
            out.push_str(&format!(
                "{} {}: generation {} ({}) serving\n",
                s("vhost"),
                s("plugin"),
                r["generation"].as_u64().unwrap_or(0),
                s("hash").get(..12).unwrap_or("")
            ));
        } else {
            all_ok = false;
            out.push_str(&format!(
                "{} {}: refused, the running generation keeps serving: {}\n",
                s("vhost"),
                s("plugin"),
                s("error")
            ));
        }
    }
    Ok((out, all_ok))
}

/// `lilt reload`: the running server reads its config file again; the report.
///
/// # Errors
/// When the server cannot be reached, or refuses the new configuration (it keeps the old).
pub fn reload_config(config: &Config) -> anyhow::Result<String> {
    let answer = call(config, "POST", "/admin/reload")?;
    let list = |k: &str| -> String {
        let items: Vec<&str> = answer[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    Ok(format!(
        "added: {}\nremoved: {}\nchanged: {}\nneeds a restart: {}\n",
        list("added"),
        list("removed"),
        list("changed"),
        list("restart_needed")
    ))
}

/// Percent-encode a query value (domains and plugin names are plain, but be safe).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
