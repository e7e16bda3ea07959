//! The SFU's figures in the two renderings: totals (conferences, endpoints by transport state,
//! packets, bytes, loss, NACKs, PLIs, drops) as Prometheus families, and every conference with
//! its endpoints' counters, inbound loss and RTT in `/stats` JSON.
//!
//! Core (pure: an `SfuStats` snapshot in, text or JSON out). Invariant: conference and endpoint
//! ids never become Prometheus labels (they are per-meeting values without bound); per-endpoint
//! detail is in the JSON only. Tests: `mod tests` below; scraped in tests/all/meeting.rs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lilt_sfu::{Counters, SfuStats};
use serde_json::{Value, json};

/// Totals over every endpoint.
fn totals(stats: &SfuStats) -> Counters {
    let mut t = Counters::default();
    for e in &stats.endpoints {
        let c = &e.counters;
        t.rtp_packets_in += c.rtp_packets_in;
        t.rtp_bytes_in += c.rtp_bytes_in;
        t.rtp_packets_out += c.rtp_packets_out;
        t.rtp_bytes_out += c.rtp_bytes_out;
        t.rtcp_packets_in += c.rtcp_packets_in;
        t.rtcp_packets_out += c.rtcp_packets_out;
        t.nacks_in += c.nacks_in;
        t.nacks_out += c.nacks_out;
        t.plis_in += c.plis_in;
        t.plis_out += c.plis_out;
        t.twcc_feedback_out += c.twcc_feedback_out;
        t.dropped += c.dropped;
    }
    t
}

/// Append the media families to a Prometheus exposition. The packet and byte figures count
/// the endpoints present now (a departed endpoint's counts leave with it), so they are
/// gauges, not counters.
pub fn prometheus(stats: &SfuStats, out: &mut String) {
    let mut gauge = |name: &str, help: &str, lines: &[(Option<&str>, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (label, v) in lines {
            match label {
                Some(l) => {
                    let _ = writeln!(out, "{name}{{{l}}} {v}");
                }
                None => {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
    };
    gauge(
        "lilt_media_conferences",
        "Conferences on the SFU.",
        &[(None, stats.conferences as u64)],
    );
    let count = |f: fn(&lilt_sfu::EndpointStats) -> bool| {
        stats.endpoints.iter().filter(|e| f(e)).count() as u64
    };
    gauge(
        "lilt_media_endpoints",
        "SFU endpoints by transport state.",
        &[
            (Some("state=\"allocated\""), stats.endpoints.len() as u64),
            (
                Some("state=\"connected\""),
                count(|e| e.dtls_connected && !e.failed),
            ),
            (Some("state=\"failed\""), count(|e| e.failed)),
        ],
    );
    let t = totals(stats);
    gauge(
        "lilt_media_rtp_packets",
        "RTP packets of the present endpoints, in from browsers and out to them.",
        &[
            (Some("direction=\"in\""), t.rtp_packets_in),
            (Some("direction=\"out\""), t.rtp_packets_out),
        ],
    );
    gauge(
        "lilt_media_rtp_bytes",
        "RTP bytes (protected size) of the present endpoints.",
        &[
            (Some("direction=\"in\""), t.rtp_bytes_in),
            (Some("direction=\"out\""), t.rtp_bytes_out),
        ],
    );
    gauge(
        "lilt_media_rtcp_packets",
        "RTCP compound packets of the present endpoints.",
        &[
            (Some("direction=\"in\""), t.rtcp_packets_in),
            (Some("direction=\"out\""), t.rtcp_packets_out),
        ],
    );
    gauge(
        "lilt_media_feedback",
        "NACKs, keyframe requests (PLI/FIR) and transport-cc feedback of the present endpoints.",
        &[
            (Some("kind=\"nack\",direction=\"in\""), t.nacks_in),
            (Some("kind=\"nack\",direction=\"out\""), t.nacks_out),
            (Some("kind=\"pli\",direction=\"in\""), t.plis_in),
            (Some("kind=\"pli\",direction=\"out\""), t.plis_out),
            (
                Some("kind=\"transport_cc\",direction=\"out\""),
                t.twcc_feedback_out,
            ),
        ],
    );
    gauge(
        "lilt_media_rtp_packets_lost",
        "RTP packets lost on the way in from the present endpoints (expected minus received).",
        &[(
            None,
            stats.endpoints.iter().map(|e| e.packets_lost_in).sum(),
        )],
    );
    gauge(
        "lilt_media_dropped_datagrams",
        "Datagrams the SFU dropped (failed authentication, unknown SSRC, malformed).",
        &[(None, t.dropped)],
    );
}

fn counters_json(c: &Counters) -> Value {
    json!({
        "rtp_packets_in": c.rtp_packets_in,
        "rtp_bytes_in": c.rtp_bytes_in,
        "rtp_packets_out": c.rtp_packets_out,
        "rtp_bytes_out": c.rtp_bytes_out,
        "rtcp_packets_in": c.rtcp_packets_in,
        "rtcp_packets_out": c.rtcp_packets_out,
        "nacks_in": c.nacks_in,
        "nacks_out": c.nacks_out,
        "plis_in": c.plis_in,
        "plis_out": c.plis_out,
        "twcc_feedback_out": c.twcc_feedback_out,
        "dropped": c.dropped,
    })
}

/// The `media` object of `/stats`: totals, and every conference with its endpoints.
pub fn json(stats: &SfuStats) -> Value {
    let mut conferences: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for e in &stats.endpoints {
        conferences.entry(&e.conference).or_default().push(json!({
            "endpoint": e.endpoint,
            "ice_connected": e.ice_connected,
            "dtls_connected": e.dtls_connected,
            "failed": e.failed,
            "srtp_profile": e.srtp_profile,
            "counters": counters_json(&e.counters),
            "packets_lost_in": e.packets_lost_in,
            "rtt_ms": e.rtt_us.map(|us| us as f64 / 1000.0),
        }));
    }
    let list: Vec<Value> = conferences
        .into_iter()
        .map(|(id, endpoints)| json!({"id": id, "endpoints": endpoints}))
        .collect();
    json!({
        "conferences": stats.conferences,
        "endpoints": stats.endpoints.len(),
        "totals": counters_json(&totals(stats)),
        "by_conference": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lilt_sfu::EndpointStats;

    fn stats() -> SfuStats {
        let ep = |conf: &str, id: &str, pin: u64, connected: bool| EndpointStats {
            conference: conf.into(),
            endpoint: id.into(),
            ice_connected: connected,
            dtls_connected: connected,
            failed: false,
            srtp_profile: None,
            packets_lost_in: 0,
            rtt_us: connected.then_some(1500),
            counters: Counters {
                rtp_packets_in: pin,
                rtp_bytes_in: pin * 100,
                ..Counters::default()
            },
        };
        SfuStats {
            conferences: 2,
            endpoints: vec![
                ep("c1", "aaaa", 10, true),
                ep("c1", "bbbb", 5, false),
                ep("c2", "cccc", 1, true),
            ],
        }
    }

    #[test]
    fn totals_and_states_without_ids_in_labels() {
        let mut out = String::new();
        prometheus(&stats(), &mut out);
        assert!(out.contains("lilt_media_conferences 2\n"), "{out}");
        assert!(
            out.contains("lilt_media_endpoints{state=\"connected\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("lilt_media_rtp_packets{direction=\"in\"} 16\n"),
            "{out}"
        );
        assert!(
            out.contains("lilt_media_rtp_bytes{direction=\"in\"} 1600\n"),
            "{out}"
        );
        for id in ["c1", "aaaa", "cccc"] {
            assert!(!out.contains(id), "{id} leaked into a label");
        }
    }

    #[test]
    fn json_groups_endpoints_by_conference() {
        let j = json(&stats());
        assert_eq!(j["endpoints"], 3);
        assert_eq!(j["totals"]["rtp_packets_in"], 16);
        assert_eq!(j["by_conference"][0]["id"], "c1");
        assert_eq!(j["by_conference"][0]["endpoints"][1]["endpoint"], "bbbb");
        assert_eq!(
            j["by_conference"][1]["endpoints"][0]["counters"]["rtp_packets_in"],
            1
        );
    }
}
