//! A load generator for any XMPP server (Lilt, Prosody, …) over plain TCP or WebSocket:
//! login storms (ANONYMOUS, SCRAM-SHA-1), idle sessions, MUC rooms where every occupant sends
//! at a set rate, and a Jitsi-style presence storm (1 KB presences with the extensions the
//! Jitsi client sends, re-sent as mute state changes). Records per-operation latency
//! (p50/p90/p99), throughput, errors and, given the server's pid, its CPU time and memory from
//! /proc. Prints one JSON line. Every scenario is bounded in count and time and stops by itself.
//!
//! `floor-server` and `floor` are the kernel's floor for `muc`: no XMPP, only the loopback TCP
//! work the `muc` scenario cannot avoid. `floor-server` (run it pinned to the server's core,
//! and pass its pid) accepts `--occupants` connections and writes `--bytes` bytes to every one
//! of them for each room message, one `write` per delivery, at `--rate` messages per occupant
//! per second (0: as fast as it can) for `--seconds`; `floor` connects the readers and
//! measures like `muc` (deliveries, latency, the writer's CPU per delivery).
//!
//! Usage: loadgen <scenario> --addr HOST:PORT --domain D [options]
//!   scenarios: login-anon | login-scram | idle | muc | presence | floor | floor-server
//!   --transport tcp|ws      (ws uses --ws-url, default ws://ADDR/xmpp-websocket)
//!   --count N               logins or idle sessions (default 1000)
//!   --concurrency C         logins in flight (default 50)
//!   --users U --password P  SCRAM accounts PREFIX0..PREFIX{U-1} (--user-prefix, default "u")
//!   --muc DOMAIN --rooms R --occupants O --rate MSGS_PER_OCCUPANT_PER_S --seconds S
//!   --pid PID --label NAME  the server's pid (for CPU and memory) and a name for the output
//!   --listen ADDR --bytes B (floor-server) where to listen, bytes per delivery

#[path = "load/mod.rs"]
mod load;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::Mutex;

use load::{Auth, Conn, cpu_seconds, rss_kib};

/// No scenario runs longer than this, whatever it is asked.
const HARD_LIMIT: Duration = Duration::from_secs(300);
/// Longest login or join.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

struct Opts(HashMap<String, String>);

impl Opts {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> anyhow::Result<T> {
        match self.get(k) {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--{k}: {v:?} is not a number")),
            None => Ok(default),
        }
    }
}

/// Latencies in µs.
#[derive(Default)]
struct Samples(Vec<u32>);

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        f64::from(self.0[i]) / 1000.0
    }
}

struct Ctx {
    opts: Opts,
    addr: String,
    domain: String,
    epoch: Instant,
}

impl Ctx {
    async fn connect(&self) -> anyhow::Result<Conn> {
        if self.opts.get("transport") == Some("ws") {
            let url = self.opts.get("ws-url").map_or_else(
                || format!("ws://{}/xmpp-websocket", self.addr),
                str::to_owned,
            );
            Conn::ws(&url).await
        } else {
            Conn::tcp(&self.addr).await
        }
    }

    async fn login(&self, auth: &Auth) -> anyhow::Result<(Conn, String)> {
        let mut c = tokio::time::timeout(STEP_TIMEOUT, self.connect()).await??;
        let jid = tokio::time::timeout(STEP_TIMEOUT, c.login(&self.domain, auth)).await??;
        Ok((c, jid))
    }

    fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

#[derive(serde::Serialize, Default)]
struct Report {
    scenario: String,
    label: String,
    transport: String,
    ops: u64,
    errors: u64,
    seconds: f64,
    ops_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    server_cpu_seconds: f64,
    server_cpu_us_per_op: f64,
    server_rss_kib_per_session: f64,
    note: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    let mut map = HashMap::new();
    while let Some(k) = args.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| anyhow::anyhow!("expected --option, got {k:?}"))?;
        let v = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("--{key} needs a value"))?;
        map.insert(key.to_owned(), v);
    }
    let opts = Opts(map);
    if scenario == "floor-server" {
        return floor_server(&opts).await;
    }
    let ctx = Arc::new(Ctx {
        addr: opts
            .get("addr")
            .ok_or_else(|| anyhow::anyhow!("--addr is required"))?
            .to_owned(),
        domain: opts
            .get("domain")
            .ok_or_else(|| anyhow::anyhow!("--domain is required"))?
            .to_owned(),
        opts,
        epoch: Instant::now(),
    });
    let pid: Option<u32> = ctx.opts.get("pid").map(str::parse).transpose()?;
    let cpu0 = pid.map_or(0.0, cpu_seconds);
    let run = async {
        match scenario.as_str() {
            "login-anon" => logins(&ctx, false).await,
            "login-scram" => logins(&ctx, true).await,
            "idle" => idle(&ctx, pid).await,
            "muc" => room_traffic(&ctx, false).await,
            "presence" => room_traffic(&ctx, true).await,
            "floor" => floor(&ctx, pid).await,
            other => anyhow::bail!(
                "unknown scenario {other:?}: login-anon, login-scram, idle, muc, presence, \
                 floor or floor-server"
            ),
        }
    };
    let mut report = tokio::time::timeout(HARD_LIMIT, run)
        .await
        .map_err(|_| anyhow::anyhow!("scenario exceeded {HARD_LIMIT:?}"))??;
    report.scenario = scenario;
    report.label = ctx.opts.get("label").unwrap_or("server").to_owned();
    report.transport = ctx.opts.get("transport").unwrap_or("tcp").to_owned();
    if let Some(pid) = pid {
        if report.server_cpu_seconds == 0.0 {
            report.server_cpu_seconds = cpu_seconds(pid) - cpu0;
        }
        report.server_cpu_us_per_op = report.server_cpu_seconds * 1e6 / report.ops.max(1) as f64;
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// `count` logins with `concurrency` in flight; each ends its stream once bound.
async fn logins(ctx: &Arc<Ctx>, scram: bool) -> anyhow::Result<Report> {
    let count: u64 = ctx.opts.num("count", 1000)?;
    let concurrency: usize = ctx.opts.num("concurrency", 50)?;
    let users: u64 = ctx.opts.num("users", 1)?;
    let prefix = ctx.opts.get("user-prefix").unwrap_or("u").to_owned();
    let password = ctx.opts.get("password").unwrap_or("").to_owned();
    let started = Instant::now();
    let mut samples = Samples::default();
    let mut errors = 0;
    let mut first_error = String::new();
    let mut results = futures::stream::iter(0..count)
        .map(|i| {
            let ctx = ctx.clone();
            let auth = if scram {
                Auth::ScramSha1 {
                    user: format!("{prefix}{}", i % users.max(1)),
                    password: password.clone(),
                }
            } else {
                Auth::Anonymous
            };
            async move {
                let t = Instant::now();
                let (conn, _) = ctx.login(&auth).await?;
                let took = t.elapsed();
                conn.close().await;
                anyhow::Ok(took)
            }
        })
        .buffer_unordered(concurrency);
    while let Some(r) = results.next().await {
        match r {
            Ok(d) => samples.0.push(d.as_micros() as u32),
            Err(e) => {
                errors += 1;
                if first_error.is_empty() {
                    first_error = format!("{e:#}");
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let ops = samples.0.len() as u64;
    Ok(Report {
        ops,
        errors,
        seconds: secs,
        ops_per_second: ops as f64 / secs,
        p50_ms: samples.pct(0.50),
        p90_ms: samples.pct(0.90),
        p99_ms: samples.pct(0.99),
        note: first_error,
        ..Report::default()
    })
}

/// `count` anonymous sessions held idle; memory per session from the server's RSS.
async fn idle(ctx: &Arc<Ctx>, pid: Option<u32>) -> anyhow::Result<Report> {
    let count: u64 = ctx.opts.num("count", 1000)?;
    let concurrency: usize = ctx.opts.num("concurrency", 50)?;
    let rss0 = pid.map_or(0, rss_kib);
    let started = Instant::now();
    let mut held = Vec::new();
    let mut errors = 0;
    let mut results = futures::stream::iter(0..count)
        .map(|_| {
            let ctx = ctx.clone();
            async move { ctx.login(&Auth::Anonymous).await }
        })
        .buffer_unordered(concurrency);
    while let Some(r) = results.next().await {
        match r {
            Ok((c, _)) => held.push(c),
            Err(_) => errors += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = pid.map_or(0, rss_kib);
    let n = held.len() as u64;
    for c in held {
        c.close().await;
    }
    Ok(Report {
        ops: n,
        errors,
        seconds: secs,
        ops_per_second: n as f64 / secs,
        server_rss_kib_per_session: rss1.saturating_sub(rss0) as f64 / n.max(1) as f64,
        note: format!("server RSS {rss0} KiB -> {rss1} KiB"),
        ..Report::default()
    })
}

/// 1 KB of what a Jitsi client puts in its MUC presence (as lib-jitsi-meet sends it), with the send
/// time in a `jitsi_participant_*` property (relayed verbatim like the rest).
fn jitsi_presence(to: &str, muted: bool, stamp: Option<u64>, join: bool) -> String {
    let x = if join {
        "<x xmlns='http://jabber.org/protocol/muc'/>"
    } else {
        ""
    };
    // Join presences carry no stamp: they are not measured.
    let lg = stamp.map_or(String::new(), |t| format!("lg:{t};"));
    let id = stamp.unwrap_or(0);
    format!(
        "<presence to='{to}'>{x}<stats-id>Bench-Occupant-{id}</stats-id>\
         <region xmlns='http://jitsi.org/jitsi-meet' id='eu-west'/>\
         <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='cvjWXufsg4xT62Ec2mlATkFZ9lk='/>\
         <features><feature var='https://jitsi.org/meet/e2ee'/><feature var='urn:xmpp:jingle:apps:rtp:audio'/><feature var='urn:xmpp:jingle:apps:rtp:video'/></features>\
         <jitsi_participant_codecList>vp9,vp8,h264,av1</jitsi_participant_codecList>\
         <nick xmlns='http://jabber.org/protocol/nick'>Benchmark participant</nick>\
         <audiomuted>{muted}</audiomuted><videomuted>false</videomuted><videoType>camera</videoType>\
         <SourceInfo>{{\"b1c2d3e4-a0\":{{\"muted\":{muted}}},\"b1c2d3e4-v0\":{{\"muted\":false,\"videoType\":\"camera\"}}}}</SourceInfo>\
         <jitsi_participant_e2ee.enabled>false</jitsi_participant_e2ee.enabled>\
         <jitsi_participant_lg>{lg}</jitsi_participant_lg>\
         <flip_device/><jitsi_participant_region>eu-west</jitsi_participant_region></presence>"
    )
}

/// `rooms` rooms of `occupants`; each occupant sends `rate` stanzas a second for `seconds`
/// (groupchat messages, or full Jitsi presences toggling mute). Latency is measured from the
/// send time stamped into each stanza (`lg:µs;`) to its arrival at every occupant.
async fn room_traffic(ctx: &Arc<Ctx>, presence: bool) -> anyhow::Result<Report> {
    let muc = ctx
        .opts
        .get("muc")
        .ok_or_else(|| anyhow::anyhow!("--muc is required"))?
        .to_owned();
    let rooms: usize = ctx.opts.num("rooms", 1)?;
    let occupants: usize = ctx.opts.num("occupants", 10)?;
    let rate: f64 = ctx.opts.num("rate", 1.0)?;
    let seconds: f64 = ctx.opts.num("seconds", 10.0)?;
    let concurrency: usize = ctx.opts.num("concurrency", 50)?;
    anyhow::ensure!(
        rate > 0.0 && seconds > 0.0 && seconds <= 120.0,
        "--rate > 0, 0 < --seconds <= 120"
    );
    let tag = std::process::id();

    // Join everyone, room by room, occupant by occupant (each join waits for its subject).
    let mut members = Vec::new();
    for r in 0..rooms {
        let room = format!("load{tag}-{r}@{muc}");
        let joined = futures::stream::iter(0..occupants)
            .map(|o| {
                let (ctx, room) = (ctx.clone(), room.clone());
                async move {
                    let (mut c, _) = ctx.login(&Auth::Anonymous).await?;
                    let to = format!("{room}/o{o}");
                    let join = if presence {
                        jitsi_presence(&to, false, None, true)
                    } else {
                        format!("<presence to='{to}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
                    };
                    c.send(&join).await?;
                    tokio::time::timeout(STEP_TIMEOUT, c.read_until("<subject")).await.or_else(|_| {
                        anyhow::bail!("no subject after joining {room}")
                    })??;
                    anyhow::Ok((room.clone(), to, c))
                }
            })
            .buffer_unordered(concurrency.min(occupants).max(1))
            .collect::<Vec<_>>()
            .await;
        for j in joined {
            members.push(j?);
        }
    }
    // Let the join presences settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid: Option<u32> = ctx.opts.get("pid").map(str::parse).transpose()?;
    let cpu0 = pid.map_or(0.0, cpu_seconds);

    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let bytes_in = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let started = Instant::now();
    let stop_sending = started + Duration::from_secs_f64(seconds);
    // Receivers keep reading a little after the last send, for stanzas in flight.
    let stop_reading = stop_sending + Duration::from_secs(5);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    let n = members.len();
    for (i, (room, to, conn)) in members.into_iter().enumerate() {
        let (ctx, sent, received, samples) =
            (ctx.clone(), sent.clone(), received.clone(), samples.clone());
        let bytes_in = bytes_in.clone();
        tasks.push(tokio::spawn(async move {
            let Conn { mut rd, mut wr } = conn;
            let reader = {
                let (ctx, received, samples) = (ctx.clone(), received.clone(), samples.clone());
                let bytes_in = bytes_in.clone();
                tokio::spawn(async move {
                    let mut local = Vec::new();
                    let mut carry: Vec<u8> = Vec::new();
                    while let Ok(Ok(read)) = tokio::time::timeout_at(stop_reading.into(), rd.recv(&mut carry)).await {
                        if read == 0 {
                            break;
                        }
                        let now = ctx.micros();
                        bytes_in.fetch_add(read as u64, Ordering::Relaxed);
                        let consumed = scan_stamps(&carry, |t| local.push(now.saturating_sub(t) as u32));
                        carry.drain(..consumed);
                    }
                    received.fetch_add(local.len() as u64, Ordering::Relaxed);
                    samples.lock().await.0.extend(local);
                })
            };
            // Spread the senders over the interval so the load is even.
            let offset = interval.mul_f64(i as f64 / n as f64);
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut muted = false;
            while Instant::now() < stop_sending {
                tick.tick().await;
                let stamp = ctx.micros();
                let stanza = if presence {
                    muted = !muted;
                    jitsi_presence(&to, muted, Some(stamp), false)
                } else {
                    format!("<message to='{room}' type='groupchat'><body>lg:{stamp}; a chat line of ordinary length</body></message>")
                };
                if wr.send(&stanza).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            let _ = reader.await;
            wr.close().await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let cpu = pid.map_or(0.0, cpu_seconds) - cpu0;
    let secs = started.elapsed().as_secs_f64().min(seconds + 5.0);
    let sent = sent.load(Ordering::Relaxed);
    let got = received.load(Ordering::Relaxed);
    let expected = sent * occupants as u64;
    let mut s = Arc::try_unwrap(samples)
        .map_err(|_| anyhow::anyhow!("samples still shared"))?
        .into_inner();
    Ok(Report {
        ops: got,
        errors: expected.saturating_sub(got),
        seconds,
        ops_per_second: got as f64 / seconds,
        p50_ms: s.pct(0.50),
        p90_ms: s.pct(0.90),
        p99_ms: s.pct(0.99),
        server_cpu_seconds: cpu,
        note: format!(
            "{rooms} room(s) x {occupants} occupants, {rate}/s each for {seconds} s: {sent} sent, {got} of {expected} deliveries in {secs:.1} s, {:.0} bytes per delivery",
            bytes_in.load(Ordering::Relaxed) as f64 / got.max(1) as f64
        ),
        ..Report::default()
    })
}

/// Call `f` with every complete `lg:µs;` stamp in `buf`; returns how many bytes are done with.
fn scan_stamps(buf: &[u8], mut f: impl FnMut(u64)) -> usize {
    let mut i = 0;
    let mut done = 0;
    while let Some(pos) = buf[i..].windows(3).position(|w| w == b"lg:") {
        let start = i + pos + 3;
        let Some(len) = buf[start..].iter().position(|&b| b == b';') else {
            return i + pos;
        };
        if let Ok(t) = std::str::from_utf8(&buf[start..start + len])
            .unwrap_or("")
            .parse::<u64>()
        {
            f(t);
        }
        i = start + len + 1;
        done = i;
    }
    // Keep a possible partial "lg" at the end.
    done.max(buf.len().saturating_sub(2))
}

/// Microseconds since the Unix epoch: the clock `floor-server` and `floor` share.
fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The kernel's floor for `muc`, writer side: accept `occupants` loopback connections, then
/// for each room message write `bytes` bytes (stamped `lg:µs;`) to every connection, one
/// blocking `write` per delivery from this one thread, at `rate` messages per occupant per
/// second (0: back to back) for `seconds`; then close them all. Nothing else: no parsing, no
/// routing, no event loop on the write path.
async fn floor_server(opts: &Opts) -> anyhow::Result<()> {
    use std::io::Write as _;
    let listen = opts.get("listen").unwrap_or("127.0.0.1:15290").to_owned();
    let occupants: usize = opts.num("occupants", 100)?;
    let rate: f64 = opts.num("rate", 1.0)?;
    let seconds: f64 = opts.num("seconds", 10.0)?;
    let bytes: usize = opts.num("bytes", 256)?;
    anyhow::ensure!(
        (1..=20_000).contains(&occupants) && rate >= 0.0 && seconds > 0.0 && seconds <= 120.0,
        "1 <= --occupants <= 20000, --rate >= 0, 0 < --seconds <= 120"
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut socks = Vec::with_capacity(occupants);
    while socks.len() < occupants {
        let (s, _) = tokio::time::timeout(STEP_TIMEOUT, listener.accept())
            .await
            .map_err(|_| anyhow::anyhow!("{} of {occupants} readers connected", socks.len()))??;
        s.set_nodelay(true)?;
        let s = s.into_std()?;
        s.set_nonblocking(false)?;
        // Bounded even if the readers stop reading: a stuck write fails the run.
        s.set_write_timeout(Some(STEP_TIMEOUT))?;
        socks.push(s);
    }
    let messages_per_s = rate * occupants as f64;
    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / messages_per_s));
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    let mut next = started;
    let mut buf = vec![b'x'; bytes.max(32)];
    while Instant::now() < end {
        if let Some(iv) = interval {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += iv;
        }
        let stamp = format!("lg:{};", unix_micros());
        buf[..stamp.len()].copy_from_slice(stamp.as_bytes());
        for s in &socks {
            // One `write` per delivery (a blocking socket takes it whole unless its buffer is
            // full, when the readers are behind).
            (&*s).write_all(&buf)?;
        }
    }
    drop(socks);
    // Stay a moment so the generator can read this process's CPU time from /proc.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

/// The kernel's floor for `muc`, reader side: connect `--occupants` readers to `floor-server`
/// and count and time what arrives until it closes them; the writer's CPU per delivery comes
/// from `--pid`.
async fn floor(ctx: &Arc<Ctx>, pid: Option<u32>) -> anyhow::Result<Report> {
    use tokio::io::AsyncReadExt as _;
    let occupants: usize = ctx.opts.num("occupants", 100)?;
    let seconds: f64 = ctx.opts.num("seconds", 10.0)?;
    let rate: f64 = ctx.opts.num("rate", 1.0)?;
    let bytes: usize = ctx.opts.num("bytes", 256)?;
    let mut conns = Vec::with_capacity(occupants);
    for _ in 0..occupants {
        let s = tokio::net::TcpStream::connect(&ctx.addr).await?;
        s.set_nodelay(true)?;
        conns.push(s);
    }
    let cpu0 = pid.map_or(0.0, cpu_seconds);
    let started = Instant::now();
    let stop_reading = started + Duration::from_secs_f64(seconds) + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for mut s in conns {
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let mut carry: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(Ok(n)) =
                tokio::time::timeout_at(stop_reading.into(), s.read(&mut chunk)).await
            {
                if n == 0 {
                    break;
                }
                carry.extend_from_slice(&chunk[..n]);
                let now = unix_micros();
                let consumed = scan_stamps(&carry, |t| local.push(now.saturating_sub(t) as u32));
                carry.drain(..consumed);
            }
            local
        }));
    }
    let mut samples = Samples::default();
    for t in tasks {
        samples.0.extend(t.await.unwrap_or_default());
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = pid.map_or(0.0, cpu_seconds) - cpu0;
    let got = samples.0.len() as u64;
    Ok(Report {
        ops: got,
        errors: 0,
        seconds,
        ops_per_second: got as f64 / seconds,
        p50_ms: samples.pct(0.50),
        p90_ms: samples.pct(0.90),
        p99_ms: samples.pct(0.99),
        server_cpu_seconds: cpu,
        note: format!(
            "kernel floor: {occupants} readers, {rate}/s per occupant (0 = back to back) for {seconds} s, {bytes} bytes and one write per delivery: {got} deliveries in {secs:.1} s"
        ),
        ..Report::default()
    })
}
