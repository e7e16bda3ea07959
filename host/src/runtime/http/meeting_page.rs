//! The meeting page (sources in host/web, built by scripts/web.sh into host/web/dist): `/` and
//! `/<room>` answer its `index.html`, its other files are served from the same folder, and
//! `/config.json` tells it which vhost, MUC service and focus to use. docs/meeting-page.md.
//!
//! Shell (tokio fs). Where the built page is: `$LILT_MEETING_PAGE_DIR` (empty or `off`
//! disables the page), else `web/` next to the `lilt` executable, else `host/web/dist` of the
//! workspace this binary was compiled in; a folder counts only when it holds `index.html`, and
//! it is looked up per request, so a page built after the server started is served.
//! Invariants: the page never shadows a file of `http.static_dir` (the caller tries that folder
//! first); only single-segment paths without a dot are taken as rooms; files are served by
//! `static_files`, with its traversal rules. Tests: `mod tests` below; tests/all/web_page.rs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};

use super::{Resp, respond, static_files};
use crate::config::{Config, ListenerKind, Vhost};

/// The environment variable naming the built page's folder.
const DIR_ENV: &str = "LILT_MEETING_PAGE_DIR";
/// The folder `scripts/web.sh` builds into, in the workspace this binary was compiled in.
const BUILT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist");
/// Longest room name taken from a path.
const MAX_ROOM: usize = 256;

/// The built page's folder, if there is one.
fn page_dir() -> Option<PathBuf> {
    let has_page = |d: &Path| d.join("index.html").is_file();
    if let Some(v) = std::env::var_os(DIR_ENV) {
        let v = PathBuf::from(v);
        if v.as_os_str().is_empty() || v.as_os_str() == "off" {
            return None;
        }
        return has_page(&v).then_some(v);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(d) = exe.parent().map(|p| p.join("web"))
        && has_page(&d)
    {
        return Some(d);
    }
    let built = PathBuf::from(BUILT_DIR);
    has_page(&built).then_some(built)
}

/// Whether `path` (without its trailing slash) is the room picker or a room: `""` or one
/// segment without a dot.
fn is_page_path(path: &str) -> bool {
    match path.strip_prefix('/') {
        None => path.is_empty(),
        Some(seg) => {
            !seg.is_empty() && seg.len() <= MAX_ROOM && !seg.contains(['/', '.', '\\', '\0'])
        }
    }
}

/// Answer `path` (trimmed of its trailing slash; `raw_path` as requested) if it is the page's:
/// `/config.json`, `/`, `/<room>` or a file of the built page. `None` leaves it to the caller.
/// `encrypted`: the request came over HTTPS (directly or from a trusted proxy).
pub(super) async fn serve(
    config: &Config,
    headers: &HeaderMap,
    path: &str,
    raw_path: &str,
    head: bool,
    encrypted: bool,
) -> Option<Resp> {
    if path == "/config.json" {
        let body = page_config(config, host_name(headers).as_deref(), encrypted);
        return Some(respond(
            StatusCode::OK,
            "application/json",
            Bytes::from(body.to_string()),
        ));
    }
    let Some(dir) = page_dir() else {
        return is_page_path(path).then(|| {
            respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                Bytes::from_static(
                    b"The meeting page is not built. Run scripts/web.sh (scripts/run.sh does), \
                      or set LILT_MEETING_PAGE_DIR; see docs/meeting-page.md.\n",
                ),
            )
        });
    };
    if is_page_path(path) {
        let mut r = static_files::serve(&dir, "/index.html", head).await;
        // The page names its assets with a build stamp; the page itself is never cached.
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Some(r);
    }
    let r = static_files::serve(&dir, raw_path, head).await;
    (r.status() != StatusCode::NOT_FOUND).then_some(r)
}

/// The `Host` header's name, lowercase, without the port.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::HOST)?.to_str().ok()?.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        h.rsplit_once(':').map_or(h, |(n, _)| n)
    };
    Some(name.to_ascii_lowercase())
}

/// The vhost the page joins: the one named by the `Host` header if it has a MUC service,
/// else the first with a MUC service and a focus, else the first with a MUC service, else
/// the first.
fn pick_vhost<'a>(config: &'a Config, host: Option<&str>) -> Option<&'a Vhost> {
    let vs = &config.vhosts;
    vs.iter()
        .find(|v| v.muc.is_some() && Some(v.domain.as_str()) == host)
        .or_else(|| vs.iter().find(|v| v.muc.is_some() && v.focus.is_some()))
        .or_else(|| vs.iter().find(|v| v.muc.is_some()))
        .or_else(|| vs.first())
}

/// `/config.json`: what lib-jitsi-meet's `hosts` and `serviceUrl` need, which of the page's
/// optional plugins the vhost runs, and whether this connection may log in: a vhost without
/// `allow_unencrypted` offers no SASL over plain `ws://`, so the page moves to `https_port`.
fn page_config(config: &Config, host: Option<&str>, encrypted: bool) -> serde_json::Value {
    let Some(v) = pick_vhost(config, host) else {
        return serde_json::json!({ "error": "no virtual host is configured" });
    };
    let https_port = config.listeners.iter().find_map(|l| match l.kind {
        ListenerKind::Http { tls: true } => Some(l.bind.port()),
        _ => None,
    });
    let component = |name: &str| {
        v.plugins
            .iter()
            .find(|p| p.plugin == name)
            .and_then(|p| p.component.clone())
    };
    serde_json::json!({
        "domain": v.domain,
        "muc": v.muc.as_ref().map(|m| m.domain.clone()),
        "focus": v.focus.as_ref().map(|f| f.domain.clone()),
        "websocket": config.http.websocket_path,
        "bosh": config.http.bosh_path,
        "auth": v.auth.plugin,
        "anonymous": v.auth.plugin == "auth-anonymous",
        "encrypted": encrypted,
        "allow_unencrypted": v.allow_unencrypted,
        "https_port": https_port,
        "branding": v.plugins.iter().any(|p| p.plugin == "branding"),
        "speakerstats": component("speakerstats"),
        "conference_duration": component("conference-duration"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths() {
        for p in ["", "/myroom", "/My-Room_2", "/%C3%A9t%C3%A9"] {
            assert!(is_page_path(p), "{p}");
        }
        for p in ["/a/b", "/app.js", "/config.json", "/x\\y", "/..", "/"] {
            assert!(!is_page_path(p), "{p}");
        }
        assert!(!is_page_path(&format!("/{}", "a".repeat(MAX_ROOM + 1))));
    }

    #[test]
    fn host_names() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(v).expect("value"));
            host_name(&m)
        };
        assert_eq!(
            h("Meet.Example.com:5280").as_deref(),
            Some("meet.example.com")
        );
        assert_eq!(h("localhost").as_deref(), Some("localhost"));
        assert_eq!(h("[::1]:5281").as_deref(), Some("::1"));
        assert_eq!(host_name(&HeaderMap::new()), None);
    }

    #[test]
    fn config_follows_the_host_header() {
        let c = Config::parse(
            "[[listeners]]\ntype = \"http\"\nbind = \"127.0.0.1:5280\"\n\
             [[vhosts]]\ndomain = \"a.example\"\nauth = { plugin = \"auth-anonymous\" }\n\
             [[vhosts]]\ndomain = \"b.example\"\nauth = { plugin = \"auth-anonymous\" }\n\
             [vhosts.muc]\ndomain = \"conference.b.example\"\n[vhosts.focus]\n\
             [[vhosts]]\ndomain = \"c.example\"\nauth = { plugin = \"auth-anonymous\" }\n\
             [vhosts.muc]\ndomain = \"conference.c.example\"\n",
            Path::new("/base"),
        )
        .expect("config");
        let j = page_config(&c, Some("c.example"), false);
        assert_eq!(j["domain"], "c.example");
        assert_eq!(j["muc"], "conference.c.example");
        assert_eq!(j["focus"], serde_json::Value::Null);
        // An address or unknown name: the first vhost with a MUC service and a focus.
        let j = page_config(&c, Some("192.0.2.1"), true);
        assert_eq!(j["domain"], "b.example");
        assert_eq!(j["focus"], "focus.b.example");
        assert_eq!(j["websocket"], "/xmpp-websocket");
        assert_eq!(j["anonymous"], true);
        assert_eq!(j["branding"], false);
        assert_eq!(j["encrypted"], true);
        assert_eq!(j["allow_unencrypted"], false);
        assert_eq!(j["https_port"], serde_json::Value::Null);
    }
}
