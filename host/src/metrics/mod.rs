//! The server's counters and gauges, and their two renderings: Prometheus text exposition
//! (`/metrics`) and a flat JSON object in the spirit of Jicofo's `/stats` and JVB's
//! `/colibri/stats`.
//!
//! Core (pure data, atomics). Invariants: labels are bounded sets fixed at start-up
//! (transport, vhost domain, SASL mechanism, plugin name, HTTP route); no JID, room, address
//! or other per-user value ever becomes a label; counters only grow.
//! Spec: Prometheus text exposition format 0.0.4. Tests: `mod tests` below; scraped and
//! parsed by an independent parser in tests/all/http.rs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Transports a session can use, in label order.
pub const TRANSPORTS: [&str; 3] = ["tcp", "websocket", "bosh"];
/// SASL mechanisms, in label order.
pub const MECHANISMS: [&str; 4] = ["ANONYMOUS", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];
/// HTTP routes, in label order.
pub const ROUTES: [&str; 7] = [
    "websocket",
    "bosh",
    "health",
    "metrics",
    "stats",
    "static",
    "not_found",
];

/// Plugin call counts read at render time: (plugin, vhost, calls, traps, disabled).
pub type PluginStats = Vec<(String, String, u64, u64, bool)>;

/// Everything counted.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    vhosts: Vec<String>,
    connections: [AtomicI64; 3],
    /// Bound sessions, `[vhost][transport]`.
    sessions: Vec<[AtomicI64; 3]>,
    /// `[mechanism][0 = success, 1 = failure]`.
    auth: [[AtomicU64; 2]; 4],
    stanzas_routed: AtomicU64,
    stanzas_delivered: AtomicU64,
    stanzas_bounced: AtomicU64,
    bytes_written: AtomicU64,
    writes: AtomicU64,
    http_requests: [AtomicU64; 7],
    http_rejected: AtomicU64,
    muc_rooms: AtomicI64,
    muc_occupants: AtomicI64,
}

fn index(set: &[&str], name: &str) -> Option<usize> {
    set.iter().position(|s| *s == name)
}

impl Metrics {
    /// Counters for these vhosts.
    pub fn new(vhosts: impl IntoIterator<Item = String>) -> Metrics {
        let vhosts: Vec<String> = vhosts.into_iter().collect();
        Metrics {
            started: Instant::now(),
            sessions: vhosts.iter().map(|_| Default::default()).collect(),
            vhosts,
            connections: Default::default(),
            auth: Default::default(),
            stanzas_routed: AtomicU64::new(0),
            stanzas_delivered: AtomicU64::new(0),
            stanzas_bounced: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            http_requests: Default::default(),
            http_rejected: AtomicU64::new(0),
            muc_rooms: AtomicI64::new(0),
            muc_occupants: AtomicI64::new(0),
        }
    }

    /// MUC rooms and occupants right now (set by the router's owner task).
    pub fn set_muc(&self, rooms: usize, occupants: usize) {
        self.muc_rooms.store(rooms as i64, Ordering::Relaxed);
        self.muc_occupants
            .store(occupants as i64, Ordering::Relaxed);
    }

    /// A client connection (TCP stream, WebSocket or BOSH session) started.
    pub fn connection_opened(&self, transport: &str) {
        if let Some(i) = index(&TRANSPORTS, transport) {
            self.connections[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client connection ended.
    pub fn connection_closed(&self, transport: &str) {
        if let Some(i) = index(&TRANSPORTS, transport) {
            self.connections[i].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A session bound a resource (`up`) or ended after binding (`!up`).
    pub fn session_bound(&self, transport: &str, vhost: &str, up: bool) {
        let (Some(t), Some(v)) = (
            index(&TRANSPORTS, transport),
            self.vhosts.iter().position(|d| d == vhost),
        ) else {
            return;
        };
        self.sessions[v][t].fetch_add(if up { 1 } else { -1 }, Ordering::Relaxed);
    }

    /// A SASL exchange ended.
    pub fn auth(&self, mechanism: &str, success: bool) {
        if let Some(m) = index(&MECHANISMS, mechanism) {
            self.auth[m][usize::from(!success)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The router took a stanza.
    pub fn stanza_routed(&self) {
        self.stanzas_routed.fetch_add(1, Ordering::Relaxed);
    }

    /// The router put a stanza in an endpoint's mailbox (`n` deliveries).
    pub fn stanzas_delivered(&self, n: u64) {
        self.stanzas_delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// The recipient's queue was full; the stanza was refused.
    pub fn stanza_bounced(&self) {
        self.stanzas_bounced.fetch_add(1, Ordering::Relaxed);
    }

    /// One write (one syscall batch or one WebSocket flush) of `bytes` to a client.
    pub fn wrote(&self, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An HTTP request reached this route.
    pub fn http_request(&self, route: &str) {
        if let Some(i) = index(&ROUTES, route) {
            self.http_requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An HTTP request was refused for its size, timing or shape.
    pub fn http_rejected(&self) {
        self.http_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Open client connections of all transports.
    pub fn open_connections(&self) -> i64 {
        self.connections
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Prometheus text exposition.
    pub fn render_prometheus(&self, plugins: &PluginStats) -> String {
        let mut out = String::with_capacity(4096);
        let mut lines: Vec<String> = Vec::new();
        let n = family(
            &mut out,
            "lilt_connections",
            "gauge",
            "Open client connections by transport.",
        );
        for (i, t) in TRANSPORTS.iter().enumerate() {
            lines.push(format!(
                "{n}{{transport=\"{t}\"}} {}",
                self.connections[i].load(Ordering::Relaxed)
            ));
        }
        flush(&mut out, &mut lines);
        let n = family(
            &mut out,
            "lilt_sessions",
            "gauge",
            "Bound client sessions by transport and vhost.",
        );
        for (v, vhost) in self.vhosts.iter().enumerate() {
            for (i, t) in TRANSPORTS.iter().enumerate() {
                lines.push(format!(
                    "{n}{{transport=\"{t}\",vhost=\"{}\"}} {}",
                    escape_label(vhost),
                    self.sessions[v][i].load(Ordering::Relaxed)
                ));
            }
        }
        flush(&mut out, &mut lines);
        let n = family(
            &mut out,
            "lilt_auth_total",
            "counter",
            "SASL exchanges by mechanism and result.",
        );
        for (m, mech) in MECHANISMS.iter().enumerate() {
            for (r, result) in ["success", "failure"].iter().enumerate() {
                lines.push(format!(
                    "{n}{{mechanism=\"{mech}\",result=\"{result}\"}} {}",
                    self.auth[m][r].load(Ordering::Relaxed)
                ));
            }
        }
        flush(&mut out, &mut lines);
        for (name, help, v) in [
            (
                "lilt_stanzas_routed_total",
                "Stanzas the router took from sessions and components.",
                &self.stanzas_routed,
            ),
            (
                "lilt_stanzas_delivered_total",
                "Stanzas put in a session's or component's queue.",
                &self.stanzas_delivered,
            ),
            (
                "lilt_stanzas_bounced_total",
                "Stanzas refused with resource-constraint because the recipient's queue was full.",
                &self.stanzas_bounced,
            ),
            (
                "lilt_client_writes_total",
                "Writes to client connections (one per batch or WebSocket flush).",
                &self.writes,
            ),
            (
                "lilt_client_bytes_written_total",
                "Bytes written to client connections.",
                &self.bytes_written,
            ),
            (
                "lilt_http_rejected_total",
                "HTTP requests refused for size, time or shape.",
                &self.http_rejected,
            ),
        ] {
            let n = family(&mut out, name, "counter", help);
            lines.push(format!("{n} {}", v.load(Ordering::Relaxed)));
            flush(&mut out, &mut lines);
        }
        for (name, help, v) in [
            ("lilt_muc_rooms", "MUC rooms.", &self.muc_rooms),
            (
                "lilt_muc_occupants",
                "Occupants over all MUC rooms.",
                &self.muc_occupants,
            ),
        ] {
            let n = family(&mut out, name, "gauge", help);
            lines.push(format!("{n} {}", v.load(Ordering::Relaxed)));
            flush(&mut out, &mut lines);
        }
        let n = family(
            &mut out,
            "lilt_http_requests_total",
            "counter",
            "HTTP requests by route.",
        );
        for (i, r) in ROUTES.iter().enumerate() {
            lines.push(format!(
                "{n}{{route=\"{r}\"}} {}",
                self.http_requests[i].load(Ordering::Relaxed)
            ));
        }
        flush(&mut out, &mut lines);
        let calls = family(
            &mut out,
            "lilt_plugin_calls_total",
            "counter",
            "Plugin calls by plugin and vhost.",
        );
        for (plugin, vhost, c, _, _) in plugins {
            lines.push(format!(
                "{calls}{{plugin=\"{}\",vhost=\"{}\"}} {c}",
                escape_label(plugin),
                escape_label(vhost)
            ));
        }
        flush(&mut out, &mut lines);
        let traps = family(
            &mut out,
            "lilt_plugin_traps_total",
            "counter",
            "Plugin calls that trapped, timed out or ran out of memory.",
        );
        for (plugin, vhost, _, t, _) in plugins {
            lines.push(format!(
                "{traps}{{plugin=\"{}\",vhost=\"{}\"}} {t}",
                escape_label(plugin),
                escape_label(vhost)
            ));
        }
        flush(&mut out, &mut lines);
        let disabled = family(
            &mut out,
            "lilt_plugin_disabled",
            "gauge",
            "1 while a plugin is disabled after too many traps.",
        );
        for (plugin, vhost, _, _, d) in plugins {
            lines.push(format!(
                "{disabled}{{plugin=\"{}\",vhost=\"{}\"}} {}",
                escape_label(plugin),
                escape_label(vhost),
                u8::from(*d)
            ));
        }
        flush(&mut out, &mut lines);
        let n = family(
            &mut out,
            "lilt_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        lines.push(format!("{n} {}", self.started.elapsed().as_secs()));
        flush(&mut out, &mut lines);
        if let Some(rss) = resident_bytes() {
            let n = family(
                &mut out,
                "lilt_process_resident_memory_bytes",
                "gauge",
                "Resident set size of the server process.",
            );
            lines.push(format!("{n} {rss}"));
            flush(&mut out, &mut lines);
        }
        out
    }

    /// A flat JSON object of the same figures, Jicofo/JVB style.
    pub fn render_json(&self, plugins: &PluginStats, bosh_sessions: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let load = |a: &AtomicI64| a.load(Ordering::Relaxed);
        let mut total = 0;
        for (i, t) in TRANSPORTS.iter().enumerate() {
            let v = load(&self.connections[i]);
            total += v;
            m.insert(format!("connections_{t}"), v.into());
        }
        m.insert("connections".into(), total.into());
        let sessions: i64 = self.sessions.iter().flatten().map(load).sum();
        m.insert("sessions".into(), sessions.into());
        m.insert("bosh_sessions".into(), bosh_sessions.into());
        m.insert("vhosts".into(), self.vhosts.len().into());
        // Named as Jicofo's and JVB's stats are.
        m.insert("conferences".into(), load(&self.muc_rooms).into());
        m.insert("participants".into(), load(&self.muc_occupants).into());
        let (mut ok, mut failed) = (0, 0);
        for a in &self.auth {
            ok += a[0].load(Ordering::Relaxed);
            failed += a[1].load(Ordering::Relaxed);
        }
        m.insert("total_auth_succeeded".into(), ok.into());
        m.insert("total_auth_failed".into(), failed.into());
        for (k, v) in [
            ("total_stanzas_routed", &self.stanzas_routed),
            ("total_stanzas_delivered", &self.stanzas_delivered),
            ("total_stanzas_bounced", &self.stanzas_bounced),
            ("total_client_writes", &self.writes),
            ("total_client_bytes_written", &self.bytes_written),
        ] {
            m.insert(k.into(), v.load(Ordering::Relaxed).into());
        }
        let calls: u64 = plugins.iter().map(|p| p.2).sum();
        let traps: u64 = plugins.iter().map(|p| p.3).sum();
        m.insert("total_plugin_calls".into(), calls.into());
        m.insert("total_plugin_traps".into(), traps.into());
        m.insert(
            "uptime_seconds".into(),
            self.started.elapsed().as_secs().into(),
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        m.insert("current_timestamp".into(), now_ms.into());
        m.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        serde_json::Value::Object(m)
    }
}

/// Declare a metric family; returns its name for the samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str) -> String {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name.to_owned()
}

fn flush(out: &mut String, lines: &mut Vec<String>) {
    for l in lines.drain(..) {
        out.push_str(&l);
        out.push('\n');
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from `/proc/self/statm` (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_bounded_labels() {
        let m = Metrics::new(["a.example".to_owned(), "b.example".to_owned()]);
        m.connection_opened("websocket");
        m.session_bound("websocket", "b.example", true);
        m.session_bound("websocket", "nobody.example", true);
        m.auth("ANONYMOUS", true);
        m.auth("PLAIN", false);
        m.stanza_routed();
        m.stanzas_delivered(3);
        let plugins = vec![("auth-anonymous".into(), "a.example".into(), 7, 1, false)];
        let text = m.render_prometheus(&plugins);
        assert!(text.contains("lilt_connections{transport=\"websocket\"} 1\n"));
        assert!(text.contains("lilt_sessions{transport=\"websocket\",vhost=\"b.example\"} 1\n"));
        assert!(!text.contains("nobody.example"));
        assert!(text.contains("lilt_auth_total{mechanism=\"PLAIN\",result=\"failure\"} 1\n"));
        assert!(text.contains("lilt_stanzas_delivered_total 3\n"));
        assert!(text.contains(
            "lilt_plugin_traps_total{plugin=\"auth-anonymous\",vhost=\"a.example\"} 1\n"
        ));
        // Every sample line belongs to a family declared before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        let json = m.render_json(&plugins, 0);
        assert_eq!(json["sessions"], 1);
        assert_eq!(json["total_plugin_calls"], 7);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
