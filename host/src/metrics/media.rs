//! The SFU's figures in the two renderings: totals (conferences, endpoints by transport state,
//! packets, bytes, bitrates, loss, NACKs, PLIs, drops, the forwarded simulcast layers by
//! height, the spread of downlink estimates) as Prometheus families, and every conference with
//! its totals and its endpoints' counters, bitrates, downlink estimate, loss, RTT and the layer
//! each gets of each sender in `/stats` JSON (Jitsi Videobridge's colibri stats names where
//! there are some: `bit_rate_download`/`bit_rate_upload` in kbps, seen from the bridge).
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
    totals_of(stats.endpoints.iter())
}

/// Totals over `endpoints`.
fn totals_of<'a>(endpoints: impl Iterator<Item = &'a lilt_sfu::EndpointStats>) -> Counters {
    let mut t = Counters::default();
    for e in endpoints {
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
        "lilt_media_bitrate_bps",
        "RTP bitrate over the last second, in from browsers and out to them.",
        &[
            (
                Some("direction=\"in\""),
                stats.endpoints.iter().map(|e| e.bitrate_in_bps).sum(),
            ),
            (
                Some("direction=\"out\""),
                stats.endpoints.iter().map(|e| e.bitrate_out_bps).sum(),
            ),
        ],
    );
    let mut by_height: BTreeMap<u32, u64> = BTreeMap::new();
    for f in stats.endpoints.iter().flat_map(|e| &e.forwarded_video) {
        if let Some(h) = f.height {
            *by_height.entry(h).or_default() += 1;
        }
    }
    let labels: Vec<String> = by_height
        .keys()
        .map(|h| format!("height=\"{h}\""))
        .collect();
    let lines: Vec<(Option<&str>, u64)> = labels
        .iter()
        .zip(by_height.values())
        .map(|(l, n)| (Some(l.as_str()), *n))
        .collect();
    gauge(
        "lilt_media_forwarded_layers",
        "Simulcast sources being forwarded to a receiver, by the height of the layer it gets.",
        &lines,
    );
    let estimates: Vec<u64> = stats
        .endpoints
        .iter()
        .filter_map(|e| e.estimated_bandwidth_bps)
        .collect();
    if !estimates.is_empty() {
        let avg = estimates.iter().sum::<u64>() / estimates.len() as u64;
        gauge(
            "lilt_media_estimated_bandwidth_bps",
            "Receivers' downlink estimates (from their transport-cc feedback): lowest, mean, highest.",
            &[
                (
                    Some("stat=\"min\""),
                    estimates.iter().copied().min().unwrap_or(0),
                ),
                (Some("stat=\"mean\""), avg),
                (
                    Some("stat=\"max\""),
                    estimates.iter().copied().max().unwrap_or(0),
                ),
            ],
        );
    }
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

/// Jitsi Videobridge's rate fields, seen from the bridge (download: what endpoints send it),
/// in kbps.
fn rates_json<'a>(endpoints: impl Iterator<Item = &'a lilt_sfu::EndpointStats> + Clone) -> Value {
    json!({
        "bit_rate_download": endpoints.clone().map(|e| e.bitrate_in_bps).sum::<u64>() / 1000,
        "bit_rate_upload": endpoints.map(|e| e.bitrate_out_bps).sum::<u64>() / 1000,
    })
}

/// The `media` object of `/stats`: totals, and every conference with its totals and
/// endpoints.
pub fn json(stats: &SfuStats) -> Value {
    let mut conferences: BTreeMap<&str, Vec<&lilt_sfu::EndpointStats>> = BTreeMap::new();
    for e in &stats.endpoints {
        conferences.entry(&e.conference).or_default().push(e);
    }
    let endpoint = |e: &lilt_sfu::EndpointStats| {
        let forwarded: Vec<Value> = e
            .forwarded_video
            .iter()
            .map(|f| {
                json!({
                    "sender": f.sender,
                    "ssrc": f.ssrc,
                    "layer": f.layer,
                    "height": f.height,
                    "affordable_layer": f.cap,
                })
            })
            .collect();
        json!({
            "endpoint": e.endpoint,
            "ice_connected": e.ice_connected,
            "dtls_connected": e.dtls_connected,
            "failed": e.failed,
            "srtp_profile": e.srtp_profile,
            "remote_address": e.remote_address.map(|a| a.to_string()),
            "counters": counters_json(&e.counters),
            "packets_lost_in": e.packets_lost_in,
            "rtt_ms": e.rtt_us.map(|us| us as f64 / 1000.0),
            "bit_rate_download": e.bitrate_in_bps / 1000,
            "bit_rate_upload": e.bitrate_out_bps / 1000,
            "estimated_bandwidth_bps": e.estimated_bandwidth_bps,
            "loss_rate_upload": e.loss_out_permille.map(|p| f64::from(p) / 1000.0),
            "forwarded_video": forwarded,
        })
    };
    let list: Vec<Value> = conferences
        .into_iter()
        .map(|(id, endpoints)| {
            let mut c = json!({
                "id": id,
                "endpoints": endpoints.iter().map(|e| endpoint(e)).collect::<Vec<_>>(),
                "totals": counters_json(&totals_of(endpoints.iter().copied())),
            });
            if let (Value::Object(c), Value::Object(r)) =
                (&mut c, rates_json(endpoints.iter().copied()))
            {
                c.extend(r);
            }
            c
        })
        .collect();
    let mut out = json!({
        "conferences": stats.conferences,
        "endpoints": stats.endpoints.len(),
        "totals": counters_json(&totals(stats)),
        "by_conference": list,
    });
    if let (Value::Object(o), Value::Object(r)) = (&mut out, rates_json(stats.endpoints.iter())) {
        o.extend(r);
    }
    out
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
            remote_address: None,
            bitrate_in_bps: pin * 1000,
            bitrate_out_bps: 0,
            estimated_bandwidth_bps: connected.then_some(2_000_000),
            loss_out_permille: connected.then_some(12),
            forwarded_video: vec![lilt_sfu::ForwardedVideo {
                sender: "x".into(),
                ssrc: 1,
                layer: Some(2),
                height: Some(720),
                cap: Some(2),
            }],
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
        assert!(
            out.contains("lilt_media_bitrate_bps{direction=\"in\"} 16000\n"),
            "{out}"
        );
        // Three endpoints each get one source at 720p.
        assert!(
            out.contains("lilt_media_forwarded_layers{height=\"720\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("lilt_media_estimated_bandwidth_bps{stat=\"mean\"} 2000000\n"),
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
        // Rates in kbps under Jitsi Videobridge's names, per endpoint, conference and total.
        assert_eq!(j["bit_rate_download"], 16);
        assert_eq!(j["by_conference"][0]["bit_rate_download"], 15);
        assert_eq!(j["by_conference"][0]["totals"]["rtp_packets_in"], 15);
        let a = &j["by_conference"][0]["endpoints"][0];
        assert_eq!(a["bit_rate_download"], 10);
        assert_eq!(a["estimated_bandwidth_bps"], 2_000_000);
        assert_eq!(a["loss_rate_upload"], 0.012);
        assert_eq!(a["forwarded_video"][0]["height"], 720);
        assert_eq!(
            j["by_conference"][0]["endpoints"][1]["estimated_bandwidth_bps"],
            Value::Null
        );
    }
}
