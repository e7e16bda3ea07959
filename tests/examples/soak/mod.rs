//! The hostile-client soak (tracker issue 14), shared by the `soak` example (release server,
//! longer) and the end-to-end test `tests/all/soak.rs` (debug server, short).
//!
//! Normal clients chat in rooms at a fixed rate while hostile clients do the worst they can:
//! maximum-size groupchat messages into a busy room (then one stanza over the limit), stanzas
//! too deep, with too many attributes or too many elements, one session joining a thousand
//! rooms, paused BOSH sessions in the busy room and in a normal room, presences over the room's
//! size limit, and a flood of unauthenticated connections from one address. The server's RSS is
//! sampled every second. The outcome says, for every hostile behaviour, what it got and whether
//! that is the documented error; and whether every normal message reached every occupant.
//!
//! Shell (sockets, /proc, HTTP). Invariant: every loop is bounded in count and every wait in
//! time; the whole run ends by itself within `seconds` plus fixed set-up and drain allowances.

#![allow(dead_code)]

#[path = "../load/mod.rs"]
mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use load::{Auth, Conn, contains, rss_kib};

/// Longest login, join or expected answer.
const STEP: Duration = Duration::from_secs(30);
/// How long receivers keep reading after the last normal message was sent.
const DRAIN: Duration = Duration::from_secs(20);

/// What the server is and how it is configured (the hostile clients aim just past its limits).
#[derive(Clone, Debug)]
pub(crate) struct Params {
    /// c2s address, `127.0.0.1:PORT`.
    pub(crate) c2s: String,
    /// HTTP address (BOSH at `/http-bind`, `/metrics`), `127.0.0.1:PORT`.
    pub(crate) http: String,
    /// Anonymous vhost.
    pub(crate) domain: String,
    /// Its MUC service.
    pub(crate) muc: String,
    /// The server's pid (RSS).
    pub(crate) pid: u32,
    /// How long normal clients chat.
    pub(crate) seconds: f64,
    /// Normal clients.
    pub(crate) normal: usize,
    /// Normal rooms (normal clients are spread over them).
    pub(crate) rooms: usize,
    /// Messages per normal client per second.
    pub(crate) rate: f64,
    /// Rooms the room-hoarding client tries to join.
    pub(crate) room_joins: usize,
    /// Unauthenticated connections per flood round.
    pub(crate) flood: usize,
    /// Flood rounds (spread over the run).
    pub(crate) flood_rounds: usize,
    /// The address the flood comes from (a loopback address other than the normal clients').
    pub(crate) flood_from: String,
    /// Paused BOSH sessions.
    pub(crate) bosh_paused: usize,
    /// Maximum-size messages into the busy room.
    pub(crate) max_size_messages: usize,
    /// Repetitions of each malformed stanza and of the huge presence.
    pub(crate) reps: usize,
    /// The server's limits.
    pub(crate) max_stanza_bytes: usize,
    /// `limits.max_depth`.
    pub(crate) max_depth: usize,
    /// `limits.max_attributes`.
    pub(crate) max_attributes: usize,
    /// `limits.max_elements`.
    pub(crate) max_elements: usize,
    /// `max_rooms_per_session`.
    pub(crate) max_rooms_per_session: usize,
    /// `max_presence_bytes`.
    pub(crate) max_presence_bytes: usize,
    /// `limits.max_unauthenticated_per_address`.
    pub(crate) max_unauthenticated_per_address: usize,
    /// `http.bosh_max_buffered_bytes`.
    pub(crate) bosh_max_buffered_bytes: usize,
    /// `limits.session_queue_bytes`.
    pub(crate) session_queue_bytes: usize,
}

/// What one hostile behaviour got.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Hostile {
    /// The behaviour.
    pub(crate) name: String,
    /// The documented outcome.
    pub(crate) expected: String,
    /// What happened.
    pub(crate) got: String,
    /// Whether it matches.
    pub(crate) ok: bool,
}

/// The outcome of one soak.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Outcome {
    /// Seconds since the start and RSS in KiB, once a second.
    pub(crate) rss_kib: Vec<(f64, u64)>,
    /// RSS before any client connected.
    pub(crate) rss_start_kib: u64,
    /// Lowest, highest and last sample.
    pub(crate) rss_min_kib: u64,
    /// Highest sample.
    pub(crate) rss_max_kib: u64,
    /// Last sample (after the hostile clients are gone).
    pub(crate) rss_final_kib: u64,
    /// Normal groupchat messages sent.
    pub(crate) normal_sent: u64,
    /// Deliveries expected (each message to every occupant of its room, the sender included).
    pub(crate) normal_expected: u64,
    /// Deliveries seen.
    pub(crate) normal_delivered: u64,
    /// Up to 10 descriptions of what was lost or wrong.
    pub(crate) normal_problems: Vec<String>,
    /// Delivery latency percentiles, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Worst.
    pub(crate) max_ms: f64,
    /// `lilt_stanzas_bounced_total` at the end.
    pub(crate) stanzas_bounced: u64,
    /// Each hostile behaviour.
    pub(crate) hostile: Vec<Hostile>,
    /// Wall time of the whole run.
    pub(crate) wall_seconds: f64,
}

impl Outcome {
    /// Whether nothing normal was lost and every hostile client got its documented error.
    pub(crate) fn passed(&self) -> bool {
        self.normal_problems.is_empty()
            && self.normal_sent > 0
            && self.normal_delivered == self.normal_expected
            && self.hostile.iter().all(|h| h.ok)
    }

    /// A human-readable table.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let mb = |k: u64| k as f64 / 1024.0;
        s += &format!(
            "RSS MiB: start {:.1}, min {:.1}, max {:.1}, final {:.1}\n",
            mb(self.rss_start_kib),
            mb(self.rss_min_kib),
            mb(self.rss_max_kib),
            mb(self.rss_final_kib)
        );
        s += "RSS over time (s: MiB):";
        for (t, k) in &self.rss_kib {
            s += &format!(" {t:.0}:{:.0}", mb(*k));
        }
        s += "\n";
        s += &format!(
            "normal: {} sent, {} of {} deliveries, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
            self.normal_sent,
            self.normal_delivered,
            self.normal_expected,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        );
        for p in &self.normal_problems {
            s += &format!("  LOST/WRONG: {p}\n");
        }
        s += &format!("server bounced stanzas: {}\n", self.stanzas_bounced);
        s += "| hostile behaviour | documented | got | ok |\n|---|---|---|---|\n";
        for h in &self.hostile {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                h.name,
                h.expected,
                h.got,
                if h.ok { "yes" } else { "NO" }
            );
        }
        s
    }
}

fn micros(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

async fn login(p: &Params) -> anyhow::Result<(Conn, String)> {
    let mut c = tokio::time::timeout(STEP, Conn::tcp(&p.c2s)).await??;
    let jid = tokio::time::timeout(STEP, c.login(&p.domain, &Auth::Anonymous)).await??;
    Ok((c, jid))
}

async fn read_until(c: &mut Conn, needle: &str) -> anyhow::Result<String> {
    tokio::time::timeout(STEP, c.read_until(needle))
        .await
        .map_err(|_| anyhow::anyhow!("no {needle} within {STEP:?}"))?
}

/// Read until the stream ends (or `STEP`); everything read.
async fn read_to_end(c: &mut Conn) -> String {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP;
    while !contains(&buf, b"</stream:stream>") {
        match tokio::time::timeout_at(deadline, c.rd.recv(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn join(to: &str, extra: &str) -> String {
    format!("<presence to='{to}'><x xmlns='http://jabber.org/protocol/muc'/>{extra}</presence>")
}

/// Run the soak. Never panics on server misbehaviour: that is in the outcome.
pub(crate) async fn run(p: Params) -> anyhow::Result<Outcome> {
    let epoch = Instant::now();
    let p = Arc::new(p);
    let tag = format!("{:x}", std::process::id() ^ (micros(epoch) as u32));
    let mut out = Outcome {
        rss_start_kib: rss_kib(p.pid),
        ..Outcome::default()
    };

    // RSS, once a second, until told to stop (bounded by the run's own length).
    let stop_rss = Arc::new(AtomicBool::new(false));
    let rss_task = {
        let (stop, pid) = (stop_rss.clone(), p.pid);
        let limit = p.seconds as usize + 300;
        tokio::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..limit {
                v.push((epoch.elapsed().as_secs_f64(), rss_kib(pid)));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            v
        })
    };

    // Normal clients: log in and join, a few at a time.
    let busy = format!("busy{tag}@{}", p.muc);
    let room_of = |i: usize| format!("chat{tag}-{}@{}", i % p.rooms, p.muc);
    let mut normal = Vec::new();
    for i in 0..p.normal {
        let (mut c, _) = login(&p).await?;
        c.send(&join(&format!("{}/n{i}", room_of(i)), "")).await?;
        read_until(&mut c, "<subject").await?;
        normal.push(c);
    }

    // Paused BOSH sessions: in the busy room and in normal room 0.
    let mut bosh = Vec::new();
    for i in 0..p.bosh_paused {
        let mut b = Bosh::login(&p).await?;
        let first = b
            .send(
                "",
                &format!(
                    "{}{}",
                    join(&format!("{busy}/bosh{i}"), ""),
                    join(&format!("{}/bosh{i}", room_of(0)), "")
                ),
            )
            .await?;
        if first.matches("<subject").count() < 2 {
            let n = first.matches("<subject").count();
            b.collect_until(|s| s.matches("<subject").count() + n >= 2)
                .await?;
        }
        let pause = (p.seconds as u64 + 60).min(120);
        b.send(&format!("pause='{pause}'"), "").await?;
        bosh.push(b);
    }

    // The maximum-size sender joins the busy room before the run.
    let (mut maxsize, _) = login(&p).await?;
    maxsize.send(&join(&format!("{busy}/maxsize"), "")).await?;
    read_until(&mut maxsize, "<subject").await?;

    // Everyone is in; the run starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let stop_sending = start + Duration::from_secs_f64(p.seconds);
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..p.normal).map(|_| AtomicU64::new(0)).collect());
    let senders_done = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_secs_f64(1.0 / p.rate);
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (i, conn) in normal.into_iter().enumerate() {
        let Conn { mut rd, mut wr } = conn;
        let room = room_of(i);
        let (sent_r, done, p2) = (sent.clone(), senders_done.clone(), p.clone());
        receivers.push(tokio::spawn(async move {
            let mut counts = vec![0u64; p2.normal];
            let mut lat = Vec::new();
            let mut carry = Vec::new();
            let hard = tokio::time::Instant::from(stop_sending) + DRAIN;
            loop {
                if done.load(Ordering::Relaxed) {
                    let expected: u64 = (0..p2.normal)
                        .filter(|j| j % p2.rooms == i % p2.rooms)
                        .map(|j| sent_r[j].load(Ordering::Relaxed))
                        .sum();
                    if counts.iter().sum::<u64>() >= expected {
                        break;
                    }
                }
                if tokio::time::Instant::now() >= hard {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), rd.recv(&mut carry)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {
                        let now = micros(epoch);
                        let used = scan(&carry, |from, _seq, t| {
                            if let Some(c) = counts.get_mut(from) {
                                *c += 1;
                            }
                            lat.push(now.saturating_sub(t) as u32);
                        });
                        carry.drain(..used);
                    }
                    Err(_) => {}
                }
            }
            (i, counts, lat, rd)
        }));
        let (sent_s, nnormal) = (sent.clone(), p.normal.max(1));
        senders.push(tokio::spawn(async move {
            let offset = interval.mul_f64(i as f64 / nnormal as f64);
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            while Instant::now() < stop_sending {
                tick.tick().await;
                let stanza = format!(
                    "<message to='{room}' type='groupchat'><body>sk:{i}:{seq}:{}; a chat line of ordinary length</body></message>",
                    micros(epoch)
                );
                if wr.send(&stanza).await.is_err() {
                    break;
                }
                seq += 1;
                sent_s[i].store(seq, Ordering::Relaxed);
            }
            wr
        }));
    }

    // The hostile clients, in parallel with the chat.
    let mut hostile = Vec::new();
    {
        let (p, busy2) = (p.clone(), busy.clone());
        hostile.push(tokio::spawn(async move {
            max_size(&p, &busy2, maxsize, stop_sending).await
        }));
    }
    for kind in [Malformed::Deep, Malformed::Attributes, Malformed::Elements] {
        let p = p.clone();
        hostile.push(tokio::spawn(async move {
            malformed(&p, kind, stop_sending).await
        }));
    }
    {
        let (p, tag) = (p.clone(), tag.clone());
        hostile.push(tokio::spawn(async move { many_rooms(&p, &tag).await }));
    }
    {
        let (p, tag) = (p.clone(), tag.clone());
        hostile.push(tokio::spawn(async move {
            huge_presence(&p, &tag, stop_sending).await
        }));
    }
    {
        let p = p.clone();
        hostile.push(tokio::spawn(async move { flood(&p, stop_sending).await }));
    }

    // Senders stop at `stop_sending`; receivers drain.
    let mut writers = Vec::new();
    for s in senders {
        writers.push(s.await?);
    }
    senders_done.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for r in receivers {
        results.push(r.await?);
    }
    for h in hostile {
        out.hostile.extend(h.await?);
    }

    // The paused BOSH sessions come back: alive, with a bounded amount buffered for them.
    let bounced = bounced_total(&p).await;
    out.stanzas_bounced = bounced;
    // All at once: each ends with one empty wait.
    let budget = p.bosh_max_buffered_bytes + p.session_queue_bytes + 2 * p.max_stanza_bytes;
    let resumed = futures::future::join_all(bosh.iter_mut().map(Bosh::resume)).await;
    for (i, r) in resumed.into_iter().enumerate() {
        let (ok, got) = match r {
            Ok(bytes) => (
                bounced > 0 && bytes <= budget,
                format!(
                    "session alive after the pause, {} KiB delivered on resuming (bound {} KiB); the server bounced {bounced} stanzas",
                    bytes / 1024,
                    budget / 1024
                ),
            ),
            Err(e) => (false, format!("{e:#}")),
        };
        out.hostile.push(Hostile {
            name: format!("paused BOSH session {i} in the busy room and a normal room"),
            expected: "holds at most http.bosh_max_buffered_bytes + limits.session_queue_bytes; the rest bounces to its senders (resource-constraint)".into(),
            got,
            ok,
        });
    }

    // Normal clients: nothing lost, nothing stray.
    let sent: Vec<u64> = sent.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    out.normal_sent = sent.iter().sum();
    let mut lat_all = Vec::new();
    for (i, counts, lat, _rd) in results {
        for (j, &c) in counts.iter().enumerate() {
            let want = if j % p.rooms == i % p.rooms {
                sent[j]
            } else {
                0
            };
            out.normal_expected += want;
            out.normal_delivered += c.min(want);
            if c != want && out.normal_problems.len() < 10 {
                out.normal_problems.push(format!(
                    "client {i} got {c} of client {j}'s {want} messages"
                ));
            }
        }
        lat_all.extend(lat);
    }
    lat_all.sort_unstable();
    let pct = |q: f64| -> f64 {
        if lat_all.is_empty() {
            return 0.0;
        }
        let i = ((lat_all.len() as f64 * q).ceil() as usize).clamp(1, lat_all.len()) - 1;
        f64::from(lat_all[i]) / 1000.0
    };
    out.p50_ms = pct(0.50);
    out.p99_ms = pct(0.99);
    out.max_ms = pct(1.0);
    for w in writers {
        w.close().await;
    }

    // A last RSS sample once the hostile clients are gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_rss.store(true, Ordering::Relaxed);
    out.rss_kib = rss_task.await?;
    let all = out.rss_kib.iter().map(|s| s.1);
    out.rss_min_kib = all.clone().min().unwrap_or(0);
    out.rss_max_kib = all.max().unwrap_or(0);
    out.rss_final_kib = out.rss_kib.last().map_or(0, |s| s.1);
    out.wall_seconds = epoch.elapsed().as_secs_f64();
    Ok(out)
}

/// Call `f(sender, seq, micros)` for every complete `sk:S:Q:T;` in `buf`; how much is done.
fn scan(buf: &[u8], mut f: impl FnMut(usize, u64, u64)) -> usize {
    let mut i = 0;
    let mut done = 0;
    while let Some(pos) = buf[i..].windows(3).position(|w| w == b"sk:") {
        let start = i + pos + 3;
        let Some(len) = buf[start..].iter().position(|&b| b == b';') else {
            return i + pos;
        };
        let text = std::str::from_utf8(&buf[start..start + len]).unwrap_or("");
        let mut parts = text.split(':').map(str::parse::<u64>);
        if let (Some(Ok(s)), Some(Ok(q)), Some(Ok(t))) = (parts.next(), parts.next(), parts.next())
        {
            f(s as usize, q, t);
        }
        i = start + len + 1;
        done = i;
    }
    done.max(buf.len().saturating_sub(2))
}

/// Maximum-size groupchat messages into the busy room, spread over the run, each read back;
/// then one stanza over `max_stanza_bytes`, which ends the stream with `policy-violation`.
async fn max_size(p: &Params, busy: &str, mut c: Conn, until: Instant) -> Vec<Hostile> {
    let expected = format!(
        "stanzas up to max_stanza_bytes ({}) relayed; one over: stream error policy-violation",
        p.max_stanza_bytes
    );
    let r = async {
        let gap = Duration::from_secs_f64(p.seconds * 0.7 / p.max_size_messages.max(1) as f64);
        let mut relayed = 0;
        for i in 0..p.max_size_messages {
            if Instant::now() >= until {
                break;
            }
            let head = format!("<message type='groupchat' to='{busy}' id='ms{i}'><body>");
            let tail = format!("end-ms{i}</body></message>");
            // Just under the limit (the echo carries a longer `from`, which is the server's).
            let fill = p.max_stanza_bytes - head.len() - tail.len() - 64;
            c.send(&format!("{head}{}{tail}", "x".repeat(fill))).await?;
            read_until(&mut c, &format!("end-ms{i}</body>")).await?;
            relayed += 1;
            tokio::time::sleep(gap).await;
        }
        let over = p.max_stanza_bytes + 1024;
        c.send(&format!(
            "<message type='groupchat' to='{busy}'><body>{}</body></message>",
            "x".repeat(over)
        ))
        .await?;
        let end = read_to_end(&mut c).await;
        anyhow::Ok((relayed, end))
    }
    .await;
    let (got, ok) = match r {
        Ok((relayed, end)) => {
            let pv = end.contains("<stream:error><policy-violation");
            (
                format!(
                    "{relayed} of {} relayed; over the limit: {}",
                    p.max_size_messages,
                    if pv {
                        "stream error policy-violation".to_owned()
                    } else {
                        format!("{:.200}", end)
                    }
                ),
                pv && relayed > 0,
            )
        }
        Err(e) => (format!("{e:#}"), false),
    };
    vec![Hostile {
        name: "maximum-size stanzas into the busy room, then one over".into(),
        expected,
        got,
        ok,
    }]
}

#[derive(Clone, Copy, Debug)]
enum Malformed {
    Deep,
    Attributes,
    Elements,
}

/// Stanzas past the parser's limits, each on a fresh session, `reps` times over the run.
async fn malformed(p: &Params, kind: Malformed, until: Instant) -> Vec<Hostile> {
    let (name, expected, stanza) = match kind {
        Malformed::Deep => (
            format!("elements nested {} deep", p.max_depth + 10),
            format!("max_depth {}: stream error policy-violation", p.max_depth),
            format!(
                "<message to='nobody@{}'>{}{}</message>",
                p.domain,
                "<a>".repeat(p.max_depth + 10),
                "</a>".repeat(p.max_depth + 10)
            ),
        ),
        Malformed::Attributes => (
            format!("an element with {} attributes", p.max_attributes + 10),
            format!(
                "max_attributes {}: stream error policy-violation",
                p.max_attributes
            ),
            format!(
                "<message to='nobody@{}'><a {}/></message>",
                p.domain,
                (0..p.max_attributes + 10)
                    .map(|i| format!("a{i}='{i}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        Malformed::Elements => (
            format!("a stanza of {} elements", p.max_elements + 10),
            format!(
                "max_elements {}: stream error policy-violation",
                p.max_elements
            ),
            format!(
                "<message to='nobody@{}'>{}</message>",
                p.domain,
                "<a/>".repeat(p.max_elements + 10)
            ),
        ),
    };
    let gap = Duration::from_secs_f64(p.seconds / p.reps.max(1) as f64);
    let (mut tried, mut refused, mut other) = (0, 0, String::new());
    for _ in 0..p.reps {
        if Instant::now() >= until {
            break;
        }
        tried += 1;
        let r = async {
            let (mut c, _) = login(p).await?;
            c.send(&stanza).await?;
            anyhow::Ok(read_to_end(&mut c).await)
        }
        .await;
        match r {
            Ok(end) if end.contains("<stream:error><policy-violation") => refused += 1,
            Ok(end) => other = format!("{end:.200}"),
            Err(e) => other = format!("{e:#}"),
        }
        tokio::time::sleep(gap).await;
    }
    vec![Hostile {
        name,
        expected,
        got: format!(
            "{refused} of {tried} sessions ended with policy-violation{}",
            if other.is_empty() {
                String::new()
            } else {
                format!("; other: {other}")
            }
        ),
        ok: tried > 0 && refused == tried,
    }]
}

/// One session joins `room_joins` rooms, 50 at a time.
async fn many_rooms(p: &Params, tag: &str) -> Vec<Hostile> {
    let expected = format!(
        "{} joined (max_rooms_per_session), every further join: presence error policy-violation",
        p.max_rooms_per_session
    );
    let r = async {
        let (mut c, _) = login(p).await?;
        let mut buf = String::new();
        let (mut joined, mut refused) = (0, 0);
        let mut next = 0;
        let deadline = tokio::time::Instant::now() + STEP * 4;
        while joined + refused < p.room_joins {
            while next < p.room_joins && next < joined + refused + 50 {
                c.send(&join(&format!("hoard{tag}-{next}@{}/h", p.muc), ""))
                    .await?;
                next += 1;
            }
            let mut raw = Vec::new();
            match tokio::time::timeout_at(deadline, c.rd.recv(&mut raw)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => anyhow::bail!("closed after {joined} joins and {refused} refusals"),
                Err(_) => anyhow::bail!("stalled after {joined} joins and {refused} refusals"),
            }
            buf.push_str(&String::from_utf8_lossy(&raw));
            // Count whole stanzas only: keep an unfinished tail.
            let cut = buf
                .rfind("</presence>")
                .map_or(0, |i| i + "</presence>".len());
            let cut = cut.max(
                buf.rfind("</message>")
                    .map_or(0, |i| i + "</message>".len()),
            );
            let done: String = buf.drain(..cut).collect();
            joined += done.matches("<subject").count();
            refused += done.matches("too many rooms").count();
        }
        anyhow::Ok((joined, refused, c))
    }
    .await;
    let (got, ok) = match r {
        Ok((joined, refused, c)) => {
            c.close().await;
            (
                format!("{joined} joined, {refused} refused with policy-violation"),
                joined == p.max_rooms_per_session && joined + refused == p.room_joins,
            )
        }
        Err(e) => (format!("{e:#}"), false),
    };
    vec![Hostile {
        name: format!("one session joining {} rooms", p.room_joins),
        expected,
        got,
        ok,
    }]
}

/// A presence over `max_presence_bytes`: as a join, and as an update once in the room.
async fn huge_presence(p: &Params, tag: &str, until: Instant) -> Vec<Hostile> {
    let expected = format!(
        "max_presence_bytes {}: presence error policy-violation, nothing stored",
        p.max_presence_bytes
    );
    let big = format!(
        "<status>{}</status>",
        "p".repeat(p.max_presence_bytes + 1024)
    );
    let gap = Duration::from_secs_f64(p.seconds / p.reps.max(1) as f64);
    let (mut tried, mut refused, mut other) = (0, 0, String::new());
    for k in 0..p.reps {
        if Instant::now() >= until {
            break;
        }
        let r = async {
            let (mut c, _) = login(p).await?;
            let room = format!("huge{tag}-{k}@{}/h", p.muc);
            let mut n = 0;
            // The join, too large.
            c.send(&join(&room, &big)).await?;
            let r = read_until(&mut c, "</presence>").await?;
            n += usize::from(r.contains("type='error'") && r.contains("too large"));
            // A normal join, then a too-large update.
            c.send(&join(&room, "")).await?;
            read_until(&mut c, "<subject").await?;
            c.send(&format!("<presence to='{room}'>{big}</presence>"))
                .await?;
            let r = read_until(&mut c, "too large").await?;
            n += usize::from(r.contains("policy-violation"));
            c.close().await;
            anyhow::Ok(n)
        }
        .await;
        tried += 2;
        match r {
            Ok(n) => refused += n,
            Err(e) => other = format!("{e:#}"),
        }
        tokio::time::sleep(gap).await;
    }
    vec![Hostile {
        name: format!(
            "presences of {} bytes (join and update)",
            p.max_presence_bytes + 1024
        ),
        expected,
        got: format!(
            "{refused} of {tried} refused with policy-violation{}",
            if other.is_empty() {
                String::new()
            } else {
                format!("; other: {other}")
            }
        ),
        ok: tried > 0 && refused == tried,
    }]
}

/// `flood` unauthenticated connections at once from `flood_from`, held for a few seconds,
/// `flood_rounds` times over the run.
async fn flood(p: &Params, until: Instant) -> Vec<Hostile> {
    let limit = p.max_unauthenticated_per_address;
    let expected = format!(
        "at most {limit} held unauthenticated (max_unauthenticated_per_address); the rest: stream error policy-violation \"too many unauthenticated sessions from this address\""
    );
    let gap = Duration::from_secs_f64(p.seconds / p.flood_rounds.max(1) as f64);
    let (mut total, mut accepted_max, mut refused, mut other) = (0, 0, 0, 0);
    let mut first_other = String::new();
    let from: std::net::IpAddr = p.flood_from.parse().unwrap_or([127, 0, 0, 2].into());
    let to: SocketAddr = match p.c2s.parse() {
        Ok(a) => a,
        Err(e) => {
            return vec![Hostile {
                name: "flood".into(),
                expected,
                got: format!("bad address: {e}"),
                ok: false,
            }];
        }
    };
    let open = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
        p.domain
    );
    for _ in 0..p.flood_rounds {
        if Instant::now() >= until {
            break;
        }
        let round_start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..p.flood {
            let open = open.clone();
            tasks.push(tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind(SocketAddr::new(from, 0))?;
                let mut s = tokio::time::timeout(STEP, sock.connect(to)).await??;
                let _ = s.write_all(open.as_bytes()).await;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    if contains(&buf, b"</stream:features>") {
                        return anyhow::Ok((true, String::new(), Some(s)));
                    }
                    if contains(&buf, b"</stream:error>") {
                        return Ok((false, String::from_utf8_lossy(&buf).into_owned(), None));
                    }
                    match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return Ok((false, String::from_utf8_lossy(&buf).into_owned(), None)),
                    }
                }
            }));
        }
        let mut held = Vec::new();
        let mut accepted = 0;
        for t in tasks {
            total += 1;
            match t.await {
                Ok(Ok((true, _, s))) => {
                    accepted += 1;
                    held.push(s);
                }
                Ok(Ok((false, text, _)))
                    if text.contains("<policy-violation")
                        && text.contains("too many unauthenticated sessions from this address") =>
                {
                    refused += 1;
                }
                Ok(Ok((false, text, _))) => {
                    other += 1;
                    if first_other.is_empty() {
                        first_other = format!("{text:.200}");
                    }
                }
                Ok(Err(e)) => {
                    other += 1;
                    if first_other.is_empty() {
                        first_other = format!("{e:#}");
                    }
                }
                Err(e) => {
                    other += 1;
                    if first_other.is_empty() {
                        first_other = format!("{e}");
                    }
                }
            }
        }
        accepted_max = accepted_max.max(accepted);
        // Hold the admitted ones a little, then let them go (the next round starts afresh).
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
        let spent = round_start.elapsed();
        tokio::time::sleep(gap.saturating_sub(spent)).await;
    }
    vec![Hostile {
        name: format!(
            "{} unauthenticated connections at once from {}, {} rounds",
            p.flood, p.flood_from, p.flood_rounds
        ),
        expected,
        got: format!(
            "{total} connections: at most {accepted_max} admitted at once, {refused} refused with policy-violation, {other} other{}",
            if first_other.is_empty() {
                String::new()
            } else {
                format!(" ({first_other})")
            }
        ),
        ok: total > 0 && accepted_max <= limit && refused > 0 && other == 0,
    }]
}

/// `lilt_stanzas_bounced_total` from `/metrics` (0 when unreadable).
async fn bounced_total(p: &Params) -> u64 {
    let Ok(r) = http()
        .get(format!("http://{}/metrics", p.http))
        .send()
        .await
    else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("lilt_stanzas_bounced_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(70))
        .build()
        .unwrap_or_default()
}

const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";

/// A BOSH session driven by hand (XEP-0124/0206).
struct Bosh {
    url: String,
    sid: String,
    rid: u64,
    client: reqwest::Client,
}

impl Bosh {
    async fn post(&self, body: String) -> anyhow::Result<String> {
        let r = self
            .client
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 200, "HTTP {}", r.status());
        Ok(r.text().await?)
    }

    /// Log in anonymously and bind.
    async fn login(p: &Params) -> anyhow::Result<Bosh> {
        let mut b = Bosh {
            url: format!("http://{}/http-bind", p.http),
            sid: String::new(),
            rid: 1000 + u64::from(rand::random::<u16>()),
            client: http(),
        };
        let created = b
            .post(format!(
                "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' content='text/xml; charset=utf-8' \
                 hold='1' rid='{}' to='{}' ver='1.6' wait='5' xml:lang='en' xmpp:version='1.0'/>",
                b.rid, p.domain
            ))
            .await?;
        let sid = created
            .split("sid='")
            .nth(1)
            .or_else(|| created.split("sid=\"").nth(1))
            .and_then(|s| s.split(['\'', '"']).next())
            .ok_or_else(|| anyhow::anyhow!("no sid in {created}"))?;
        b.sid = sid.to_owned();
        let r = b
            .send(
                "",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
            )
            .await?;
        anyhow::ensure!(r.contains("<success"), "BOSH ANONYMOUS refused: {r}");
        b.send(&format!("to='{}' xmpp:restart='true'", p.domain), "")
            .await?;
        let r = b
            .send("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await?;
        let r = if r.contains("</jid>") {
            r
        } else {
            b.collect_until(|s| s.contains("</jid>")).await?
        };
        anyhow::ensure!(r.contains("</jid>"), "BOSH bind: {r}");
        Ok(b)
    }

    /// Send `payload` in the next request; the response body.
    async fn send(&mut self, attrs: &str, payload: &str) -> anyhow::Result<String> {
        self.rid += 1;
        let body = format!(
            "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='{}' sid='{}' {attrs}>{payload}</body>",
            self.rid, self.sid
        );
        let r = self.post(body).await?;
        anyhow::ensure!(
            !r.contains("type='terminate'") && !r.contains("type=\"terminate\""),
            "BOSH session terminated: {r:.300}"
        );
        Ok(r)
    }

    /// Poll (empty requests) until what arrived satisfies `done`; at most 30 requests.
    async fn collect_until(&mut self, done: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let mut all = String::new();
        for _ in 0..30 {
            all += &self.send("", "").await?;
            if done(&all) {
                return Ok(all);
            }
        }
        anyhow::bail!("BOSH: not there after 30 requests: {all:.300}")
    }

    /// Come back after the pause: poll until an empty response; the bytes delivered.
    async fn resume(&mut self) -> anyhow::Result<usize> {
        let mut bytes = 0;
        for _ in 0..400 {
            let r = self.send("", "").await?;
            // An empty response (nothing buffered any more) is a bare <body …/>.
            if r.trim_end().ends_with("/>") && !r.contains("><") {
                return Ok(bytes);
            }
            bytes += r.len();
        }
        anyhow::bail!("BOSH: still data after 400 requests ({bytes} bytes)")
    }
}
