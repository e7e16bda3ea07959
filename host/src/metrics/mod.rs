//! The server's counters and gauges, and their two renderings: Prometheus text exposition
//! (`/metrics`) and a flat JSON object in the spirit of Jicofo's `/stats` and JVB's
//! `/colibri/stats`.
//!
//! Core (pure data, atomics). Invariants: labels are bounded sets fixed at start-up
//! (transport, vhost domain, SASL mechanism, plugin name, HTTP route); no JID, room, address
//! or other per-user value ever becomes a label; counters only grow.
//! Spec: Prometheus text exposition format 0.0.4. Tests: `mod tests` below; scraped and
//! parsed by an independent parser in tests/all/http.rs.

pub mod media;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Transports a session can use, in label order.
pub const TRANSPORTS: [&str; 3] = ["tcp", "websocket", "bosh"];
/// SASL mechanisms, in label order.
pub const MECHANISMS: [&str; 4] = ["ANONYMOUS", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];
/// HTTP routes, in label order.
pub const ROUTES: [&str; 9] = [
    "websocket",
    "bosh",
    "colibri_ws",
    "admin",
    "health",
    "metrics",
    "stats",
    "static",
    "not_found",
];

/// Upper bounds of the plugin call-time histogram's buckets, in seconds (`+Inf` follows).
pub const CALL_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// A plugin generation's call times: calls per bucket (not cumulative; the last counts what
/// exceeded every bound), and the sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallTimes {
    /// Calls whose time fell in each bucket of `CALL_BUCKETS`, then above the last.
    pub buckets: [u64; CALL_BUCKETS.len() + 1],
    /// Total time, seconds.
    pub sum_seconds: f64,
}

/// One plugin generation on one vhost, read at render time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginStat {
    /// Plugin name.
    pub plugin: String,
    /// Vhost.
    pub vhost: String,
    /// Generation number (1 at start, +1 per reload).
    pub generation: u64,
    /// Calls since this generation was loaded.
    pub calls: u64,
    /// Of those, calls that trapped, timed out or ran out of memory.
    pub traps: u64,
    /// Disabled after too many traps.
    pub disabled: bool,
    /// Call times.
    pub times: CallTimes,
}

/// Every plugin generation serving now.
pub type PluginStats = Vec<PluginStat>;

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
    http_requests: [AtomicU64; 9],
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

    /// MUC rooms and occupants changed by this much (each routing shard adds the change in
    /// its own counts).
    pub fn add_muc(&self, rooms: i64, occupants: i64) {
        self.muc_rooms.fetch_add(rooms, Ordering::Relaxed);
        self.muc_occupants.fetch_add(occupants, Ordering::Relaxed);
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
        let labels = |p: &PluginStat| {
            format!(
                "plugin=\"{}\",vhost=\"{}\",generation=\"{}\"",
                escape_label(&p.plugin),
                escape_label(&p.vhost),
                p.generation
            )
        };
        let calls = family(
            &mut out,
            "lilt_plugin_calls_total",
            "counter",
            "Plugin calls by plugin, vhost and generation.",
        );
        for p in plugins {
            lines.push(format!("{calls}{{{}}} {}", labels(p), p.calls));
        }
        flush(&mut out, &mut lines);
        let traps = family(
            &mut out,
            "lilt_plugin_traps_total",
            "counter",
            "Plugin calls that trapped, timed out or ran out of memory.",
        );
        for p in plugins {
            lines.push(format!("{traps}{{{}}} {}", labels(p), p.traps));
        }
        flush(&mut out, &mut lines);
        let disabled = family(
            &mut out,
            "lilt_plugin_disabled",
            "gauge",
            "1 while a plugin is disabled after too many traps.",
        );
        for p in plugins {
            lines.push(format!(
                "{disabled}{{{}}} {}",
                labels(p),
                u8::from(p.disabled)
            ));
        }
        flush(&mut out, &mut lines);
        let hist = family(
            &mut out,
            "lilt_plugin_call_duration_seconds",
            "histogram",
            "Plugin call time, from admission to the call's outcome (host imports included).",
        );
        for p in plugins {
            let l = labels(p);
            let mut cumulative = 0;
            for (i, bound) in CALL_BUCKETS.iter().enumerate() {
                cumulative += p.times.buckets[i];
                lines.push(format!("{hist}_bucket{{{l},le=\"{bound}\"}} {cumulative}"));
            }
            cumulative += p.times.buckets[CALL_BUCKETS.len()];
            lines.push(format!("{hist}_bucket{{{l},le=\"+Inf\"}} {cumulative}"));
            lines.push(format!("{hist}_sum{{{l}}} {}", p.times.sum_seconds));
            lines.push(format!("{hist}_count{{{l}}} {cumulative}"));
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
        let calls: u64 = plugins.iter().map(|p| p.calls).sum();
        let traps: u64 = plugins.iter().map(|p| p.traps).sum();
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
        let mut times = CallTimes::default();
        times.buckets[0] = 5;
        times.buckets[CALL_BUCKETS.len()] = 2;
        times.sum_seconds = 2.5;
        let plugins = vec![PluginStat {
            plugin: "auth-anonymous".into(),
            vhost: "a.example".into(),
            generation: 3,
            calls: 7,
            traps: 1,
            disabled: false,
            times,
        }];
        let text = m.render_prometheus(&plugins);
        assert!(text.contains("lilt_connections{transport=\"websocket\"} 1\n"));
        assert!(text.contains("lilt_sessions{transport=\"websocket\",vhost=\"b.example\"} 1\n"));
        assert!(!text.contains("nobody.example"));
        assert!(text.contains("lilt_auth_total{mechanism=\"PLAIN\",result=\"failure\"} 1\n"));
        assert!(text.contains("lilt_stanzas_delivered_total 3\n"));
        let l = "plugin=\"auth-anonymous\",vhost=\"a.example\",generation=\"3\"";
        assert!(text.contains(&format!("lilt_plugin_traps_total{{{l}}} 1\n")));
        assert!(text.contains(&format!(
            "lilt_plugin_call_duration_seconds_bucket{{{l},le=\"0.00001\"}} 5\n"
        )));
        assert!(text.contains(&format!(
            "lilt_plugin_call_duration_seconds_bucket{{{l},le=\"1\"}} 5\n"
        )));
        assert!(text.contains(&format!(
            "lilt_plugin_call_duration_seconds_bucket{{{l},le=\"+Inf\"}} 7\n"
        )));
        assert!(text.contains(&format!(
            "lilt_plugin_call_duration_seconds_count{{{l}}} 7\n"
        )));
        // Every sample line belongs to a family declared before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = declared.last().map(String::as_str).unwrap_or_default();
                let suffix = name.strip_prefix(family);
                assert!(
                    matches!(suffix, Some("" | "_bucket" | "_sum" | "_count")),
                    "{line}"
                );
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
