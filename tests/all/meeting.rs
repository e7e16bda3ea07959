//! Meetings in real browsers: headless Chromium running the real lib-jitsi-meet bundle joins
//! rooms on the real `lilt` over XMPP WebSocket, as Jitsi Meet's web app does, and reports
//! what each participant sees (tests/browser/meet.mjs prints it as one JSON object).
//!
//! Shell (processes: `lilt serve`, `node meet.mjs`, Chromium). Spec: lib-jitsi-meet's use of
//! the Jitsi backend: anonymous login over WebSocket, the conference request to
//! `focus.<domain>` (Jicofo's protocol), the MUC at `conference.<domain>`, Jingle from the
//! focus and media through the SFU.
//! Invariants: every run is bounded (meet.mjs by `--timeout`, and killed here a little after);
//! the browser binds and dials 127.0.0.1 only; a missing Chromium, npm install or bundle fails
//! with a message naming scripts/browser-deps.sh (scripts/test.sh runs it).
//! Tests: logging in; two participants seeing each other; four exchanging audio and video;
//! mute and leave seen by the others; a late joiner receiving the media already flowing.

use std::io::Read as _;
use std::time::Duration;

use serde_json::Value;

use crate::browser::run_node;
use crate::harness::{Server, Setup, TempDir, TestConfig, Vhost};

/// The Jitsi layout on one anonymous vhost: `localhost` with its MUC at
/// `conference.localhost` and its focus at `focus.localhost`.
fn meeting_config() -> TestConfig {
    TestConfig::new(vec![Vhost::anonymous("localhost").with(
        "[vhosts.muc]\ndomain = \"conference.localhost\"\n[vhosts.focus]",
    )])
    // Media on an ephemeral loopback port, so that tests run side by side.
    .table("[sfu]\nbind = \"127.0.0.1:0\"")
}

/// One finished run of meet.mjs.
struct Meeting {
    /// Its exit code (`None` when killed).
    code: Option<i32>,
    /// The report it printed (`Null` when it printed none).
    report: Value,
    /// Its stderr: the pages' consoles, prefixed `[pN]`.
    log: String,
    /// Kept on a failed test for its full log.
    _dir: TempDir,
}

impl Meeting {
    /// Participant `index` (1-based) of the report.
    fn participant(&self, index: u64) -> &Value {
        self.report["participants"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["index"].as_u64() == Some(index)))
            .unwrap_or_else(|| panic!("no participant {index} in the report:\n{}", self.report))
    }

    /// Participant `index`'s MUC id.
    fn id(&self, index: u64) -> String {
        self.participant(index)["id"]
            .as_str()
            .unwrap_or_else(|| panic!("participant {index} has no id: {}", self.summary()))
            .to_owned()
    }

    /// What went wrong, per participant, and the last lines of the pages' logs.
    fn summary(&self) -> String {
        let mut s = format!(
            "meet.mjs exited with {:?}; failure: {}\nsteps: {}\n",
            self.code, self.report["failure"], self.report["steps"]
        );
        for p in self.report["participants"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "{}: id {} connection {} ({}) conference {} ({}) sees {} tracks {} inbound {} errors {}\n  focus frames: {}\n",
                p["name"],
                p["id"],
                p["connection"],
                p["connectionError"],
                p["conference"],
                p["conferenceError"],
                p["sees"],
                p["tracks"],
                p["inbound"],
                p["errors"],
                // The first request and its answer; the rest are retries.
                Value::Array(
                    p["focusFrames"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .take(2)
                        .cloned()
                        .collect()
                ),
            ));
        }
        let tail: Vec<&str> = self.log.lines().rev().take(60).collect();
        s.push_str("---- last lines of the pages' consoles ----\n");
        for l in tail.into_iter().rev() {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// The scenario held: exit 0 and `ok`.
    fn assert_ok(&self) {
        assert!(
            self.code == Some(0) && self.report["ok"] == Value::Bool(true),
            "the browser meeting failed\n{}",
            self.summary()
        );
    }
}

/// Run `node meet.mjs ARGS --http-port <server's> --domain localhost --timeout <timeout_s>`.
fn meet(server: &Server, args: &[&str], timeout_s: u64) -> Meeting {
    let port = server.ports().http.to_string();
    let timeout = timeout_s.to_string();
    let mut all = vec![
        "--http-port",
        &port,
        "--domain",
        "localhost",
        "--timeout",
        &timeout,
    ];
    all.extend_from_slice(args);
    let run = run_node("meet.mjs", &all, timeout_s);
    Meeting {
        code: run.code,
        report: run.report,
        log: run.log,
        _dir: run.dir,
    }
}

/// Every participant in `indexes` sees every other one (by MUC id) in the room.
fn assert_all_see_each_other(m: &Meeting, indexes: &[u64]) {
    for &i in indexes {
        let sees: Vec<&str> = m.participant(i)["sees"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str())
            .collect();
        for &j in indexes.iter().filter(|&&j| j != i) {
            let id = m.id(j);
            assert!(
                sees.contains(&id.as_str()),
                "p{i} does not see p{j} ({id}); it sees {sees:?}\n{}",
                m.summary()
            );
        }
    }
}

/// Participant `i` holds remote audio and video tracks of every other one in `indexes`, and
/// has received RTP bytes of each kind from each.
fn assert_media_from_all(m: &Meeting, indexes: &[u64]) {
    for &i in indexes {
        let p = m.participant(i);
        for &j in indexes.iter().filter(|&&j| j != i) {
            let id = m.id(j);
            for kind in ["audio", "video"] {
                let track = p["tracks"].as_array().into_iter().flatten().any(|t| {
                    t["participant"].as_str() == Some(&id) && t["type"].as_str() == Some(kind)
                });
                assert!(track, "p{i} has no {kind} track of p{j}\n{}", m.summary());
                let bytes: u64 = p["inbound"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| {
                        s["participant"].as_str() == Some(&id) && s["kind"].as_str() == Some(kind)
                    })
                    .filter_map(|s| s["bytes"].as_u64())
                    .sum();
                assert!(
                    bytes > 0,
                    "p{i} received no {kind} bytes from p{j}\n{}",
                    m.summary()
                );
            }
        }
    }
}

/// The first step: the bundle loads in Chromium and lib-jitsi-meet logs in
/// anonymously over lilt's WebSocket (CONNECTION_ESTABLISHED with a bound JID).
#[test]
fn lib_jitsi_meet_logs_in_anonymously_over_websocket() {
    let server = Setup::new(meeting_config()).start();
    let m = meet(
        &server,
        &[
            "--participants",
            "2",
            "--room",
            "login",
            "--expect",
            "connected",
        ],
        60,
    );
    m.assert_ok();
    for i in [1, 2] {
        let p = m.participant(i);
        assert_eq!(p["connection"], "established", "{}", m.summary());
        let jid = p["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["event"] == "CONNECTION_ESTABLISHED")
            .and_then(|e| e["jid"].as_str())
            .unwrap_or_default();
        assert!(jid.contains("@localhost/"), "p{i}'s JID {jid:?}");
    }
}

/// Two browsers join one room through lilt and each sees the other (USER_JOINED): the focus
/// answered their conference requests at `focus.localhost` with ready=true and its JID, and
/// was in the room first.
#[test]
fn lib_jitsi_meet_joins_and_sees_the_other_participant() {
    let server = Setup::new(meeting_config()).start();
    let m = meet(
        &server,
        &[
            "--participants",
            "2",
            "--room",
            "pair",
            "--expect",
            "joined",
        ],
        60,
    );
    m.assert_ok();
    assert_all_see_each_other(&m, &[1, 2]);
}

/// Four browsers: each sees the three others, gets their remote audio and video tracks, and
/// receives growing RTP bytes of both kinds from every one of them (meet.mjs checks growth
/// between two samples; this checks the totals again).
#[test]
fn four_browsers_exchange_audio_and_video() {
    let server = Setup::new(meeting_config()).start();
    let watch = StatsWatch::start(server.ports().http);
    // A few seconds of meeting after media flows, for the SFU to pick a dominant speaker.
    let m = meet(
        &server,
        &[
            "--participants",
            "4",
            "--room",
            "four",
            "--expect",
            "media",
            "--wait",
            "5",
        ],
        150,
    );
    m.assert_ok();
    assert_all_see_each_other(&m, &[1, 2, 3, 4]);
    assert_media_from_all(&m, &[1, 2, 3, 4]);
    // Every browser opened its bridge channel (colibri WebSocket) and heard the SFU name a
    // dominant speaker that is one of the four.
    let ids: Vec<String> = (1..=4).map(|i| m.id(i)).collect();
    for i in 1..=4 {
        let events = m.participant(i)["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let named = |e: &Value, what: &str| e["event"] == what;
        assert!(
            events.iter().any(|e| named(e, "DATA_CHANNEL_OPENED")),
            "p{i} never opened its bridge channel:\n{}",
            m.summary()
        );
        assert!(
            events.iter().any(|e| named(e, "DOMINANT_SPEAKER_CHANGED")
                && e["id"]
                    .as_str()
                    .is_some_and(|id| ids.iter().any(|x| x == id))),
            "p{i} heard no dominant speaker:\n{}",
            m.summary()
        );
    }
    // The server's own view, from /stats while the meeting ran: one conference, four
    // connected endpoints, RTP in from them and out to them.
    let seen = watch.stop();
    assert_eq!(seen.conferences, 1, "{seen:?}");
    assert_eq!(seen.connected, 4, "{seen:?}");
    assert!(
        seen.bytes_in > 0 && seen.bytes_out > seen.bytes_in,
        "{seen:?}"
    );
    assert_eq!(seen.with_rtt, 4, "{seen:?}");
}

/// The most `/stats` showed of the SFU while a meeting ran.
#[derive(Debug, Default)]
struct MediaSeen {
    conferences: u64,
    connected: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Endpoints with a measured round-trip time.
    with_rtt: u64,
}

/// Polls `/stats` every 300 ms on a thread until stopped.
struct StatsWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<MediaSeen>,
}

impl StatsWatch {
    fn start(http_port: u16) -> StatsWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = MediaSeen::default();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(media) = get_json(http_port, "/stats").map(|s| s["media"].clone()) {
                    let endpoints: Vec<&Value> = media["by_conference"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|c| c["endpoints"].as_array().into_iter().flatten())
                        .collect();
                    let count = |f: &dyn Fn(&Value) -> bool| {
                        endpoints.iter().filter(|e| f(e)).count() as u64
                    };
                    let n = |v: &Value| v.as_u64().unwrap_or(0);
                    seen.conferences = seen.conferences.max(n(&media["conferences"]));
                    seen.connected = seen.connected.max(count(&|e| e["dtls_connected"] == true));
                    seen.with_rtt = seen.with_rtt.max(count(&|e| e["rtt_ms"].is_number()));
                    seen.bytes_in = seen.bytes_in.max(n(&media["totals"]["rtp_bytes_in"]));
                    seen.bytes_out = seen.bytes_out.max(n(&media["totals"]["rtp_bytes_out"]));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            seen
        });
        StatsWatch { stop, thread }
    }

    fn stop(self) -> MediaSeen {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("stats watcher")
    }
}

/// GET a JSON document from the server's plain HTTP listener (HTTP/1.0, no keep-alive).
fn get_json(port: u16, path: &str) -> Option<Value> {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()
}

/// Three browsers with media; p1 mutes its audio and p2 its video: the others see those
/// remote tracks muted (TRACK_MUTE_CHANGED); then p3 leaves: p1 and p2 see USER_LEFT, and
/// media keeps flowing between them.
#[test]
fn mute_and_leave_are_seen() {
    let server = Setup::new(meeting_config()).start();
    let m = meet(
        &server,
        &[
            "--participants",
            "3",
            "--room",
            "mute",
            "--expect",
            "media",
            "--mute",
            "1:audio",
            "--mute",
            "2:video",
            "--leave",
            "3",
        ],
        150,
    );
    m.assert_ok();
    let (id1, id2, id3) = (m.id(1), m.id(2), m.id(3));
    let muted_seen = |viewer: u64, id: &str, kind: &str| {
        m.participant(viewer)["mutes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["participant"].as_str() == Some(id)
                    && e["type"].as_str() == Some(kind)
                    && e["muted"] == Value::Bool(true)
                    && e["local"] == Value::Bool(false)
            })
    };
    assert!(
        muted_seen(2, &id1, "audio"),
        "p2 saw p1's audio muted\n{}",
        m.summary()
    );
    assert!(
        muted_seen(3, &id1, "audio"),
        "p3 saw p1's audio muted\n{}",
        m.summary()
    );
    assert!(
        muted_seen(1, &id2, "video"),
        "p1 saw p2's video muted\n{}",
        m.summary()
    );
    assert!(
        muted_seen(3, &id2, "video"),
        "p3 saw p2's video muted\n{}",
        m.summary()
    );
    for viewer in [1, 2] {
        let left: Vec<&str> = m.participant(viewer)["sawLeave"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert!(
            left.contains(&id3.as_str()),
            "p{viewer} saw p3 leave\n{}",
            m.summary()
        );
    }
    assert_all_see_each_other(&m, &[1, 2]);
}

/// Two browsers exchange media, then a third joins: it sees both, gets their audio and video
/// and receives their RTP, and they get its.
#[test]
fn late_joiner_receives_existing_media() {
    let server = Setup::new(meeting_config()).start();
    let m = meet(
        &server,
        &[
            "--participants",
            "2",
            "--room",
            "late",
            "--expect",
            "media",
            "--late",
            "1",
        ],
        150,
    );
    m.assert_ok();
    assert_all_see_each_other(&m, &[1, 2, 3]);
    assert_media_from_all(&m, &[1, 2, 3]);
}

/// Traffic control on the loopback interface shaping the UDP datagrams to one port: an HTB
/// root whose default class is unlimited, and a class of `kbit` with a short queue
/// (20 packets) for the datagrams to that port. Removed when dropped, also on a failed test.
struct Shaper;

impl Shaper {
    fn tc(args: &str) -> std::process::Output {
        std::process::Command::new("tc")
            .args(args.split_whitespace())
            .output()
            .unwrap_or_else(|e| {
                panic!("tc {args}: {e} (scripts/browser-deps.sh installs iproute2)")
            })
    }

    fn start(port: u16, kbit: u32) -> Shaper {
        // A root left by a killed run goes first (it fails harmlessly when there is none).
        Shaper::tc("qdisc del dev lo root");
        for cmd in [
            "qdisc add dev lo root handle 1: htb default 1 r2q 100000".to_owned(),
            "class add dev lo parent 1: classid 1:1 htb rate 40gbit".to_owned(),
            format!("class add dev lo parent 1: classid 1:2 htb rate {kbit}kbit ceil {kbit}kbit"),
            "qdisc add dev lo parent 1:2 handle 20: pfifo limit 20".to_owned(),
            format!(
                "filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff \
                 match ip dport {port} 0xffff flowid 1:2"
            ),
        ] {
            let out = Shaper::tc(&cmd);
            assert!(
                out.status.success(),
                "tc {cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Shaper
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        Shaper::tc("qdisc del dev lo root");
    }
}

/// What `/stats` says one endpoint gets of the others' video: (endpoint, its remote port,
/// the heights it gets, its downlink estimate).
fn forwarded_heights(http_port: u16) -> Vec<(String, u16, Vec<u64>, Option<u64>)> {
    let Some(stats) = get_json(http_port, "/stats") else {
        return Vec::new();
    };
    stats["media"]["by_conference"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["endpoints"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            let port = e["remote_address"]
                .as_str()?
                .parse::<std::net::SocketAddr>()
                .ok()?
                .port();
            let heights = e["forwarded_video"]
                .as_array()?
                .iter()
                .filter_map(|f| f["height"].as_u64())
                .collect();
            Some((
                e["endpoint"].as_str()?.to_owned(),
                port,
                heights,
                e["estimated_bandwidth_bps"].as_u64(),
            ))
        })
        .collect()
}

/// Simulcast under a narrow downlink, in real browsers: two participants send 720p (three
/// layers) and each gets the other's top layer; then traffic control narrows one receiver's
/// link to 250 kbit/s. From its transport-cc feedback the SFU's estimate for it falls and it
/// gets the lowest layer, while the other keeps the top one; when the shaping ends it climbs
/// back. The times from each change of the link to the switch are printed (the note's
/// layer-switch figures).
#[test]
fn a_narrow_downlink_gets_a_lower_layer_and_recovers() {
    let server = Setup::new(meeting_config()).start();
    let http = server.ports().http;
    let dir = TempDir::new();
    let done = dir.path().join("done");
    let actions = serde_json::json!([{"do": "wait", "seconds": 150, "until": done}]).to_string();
    let meeting = {
        let server_ports = server.ports().http.to_string();
        std::thread::spawn(move || {
            let run = run_node(
                "meet.mjs",
                &[
                    "--http-port",
                    &server_ports,
                    "--domain",
                    "localhost",
                    "--timeout",
                    "200",
                    "--participants",
                    "2",
                    "--room",
                    "shaped",
                    "--resolution",
                    "720",
                    "--expect",
                    "media",
                    "--actions",
                    &actions,
                ],
                200,
            );
            (run.code, run.report, run.log, run.dir)
        })
    };
    let poll =
        |what: &str, secs: u64, ok: &dyn Fn(&[(String, u16, Vec<u64>, Option<u64>)]) -> bool| {
            let start = std::time::Instant::now();
            loop {
                let seen = forwarded_heights(http);
                if ok(&seen) {
                    return (start.elapsed(), seen);
                }
                assert!(
                    start.elapsed() < Duration::from_secs(secs) && !meeting.is_finished(),
                    "{what} within {secs} s: /stats shows {seen:?}"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        };
    let at = |seen: &[(String, u16, Vec<u64>, Option<u64>)], ep: &str| -> Vec<u64> {
        seen.iter()
            .find(|e| e.0 == ep)
            .map(|e| e.2.clone())
            .unwrap_or_default()
    };
    // Both get each other's 720p (Chrome turns the top layer on once its estimate allows).
    let (_, seen) = poll("both endpoints getting 720p", 90, &|s| {
        s.len() == 2 && s.iter().all(|e| e.2 == [720])
    });
    let (shaped, port) = (seen[0].0.clone(), seen[0].1);
    let other = seen[1].0.clone();
    // The shaped receiver drops to the lowest layer; the other keeps the top one.
    let shaper = Shaper::start(port, 250);
    let (down, seen) = poll("the shaped receiver on 180p", 30, &|s| {
        at(s, &shaped) == [180]
    });
    let estimate = seen.iter().find(|e| e.0 == shaped).and_then(|e| e.3);
    std::thread::sleep(Duration::from_secs(5));
    let seen = forwarded_heights(http);
    assert_eq!(at(&seen, &shaped), [180], "{seen:?}");
    assert_eq!(
        at(&seen, &other),
        [720],
        "the other receiver lost its layer: {seen:?}"
    );
    // The link widens again: back to 720p.
    drop(shaper);
    let (up, _) = poll("the receiver back on 720p", 60, &|s| {
        at(s, &shaped) == [720]
    });
    eprintln!(
        "layer switch: 720p -> 180p {:.1} s after the link narrowed to 250 kbit/s \
         (estimate then {estimate:?} bps); 180p -> 720p {:.1} s after it widened",
        down.as_secs_f64(),
        up.as_secs_f64()
    );
    std::fs::write(&done, b"").expect("done file");
    let (code, report, log, _dir) = meeting.join().expect("meeting thread");
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    assert!(
        code == Some(0) && report["ok"] == Value::Bool(true),
        "the meeting failed: {code:?} {}\n{}",
        report["failure"],
        tail.join("\n")
    );
}
