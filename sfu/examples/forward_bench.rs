//! Forwarding benchmark over real UDP sockets on 127.0.0.1: the SFU shell on its own thread
//! (one core), one sender and N receivers built from `lilt_sfu::client::Client` that complete
//! real ICE, DTLS and SRTP with it. Prints packets forwarded per second of SFU CPU time and the
//! added latency (p50/p99) of the SFU path over a direct loopback hop.
//!
//! `cargo run --release -p lilt-sfu --example forward_bench -- [receivers] [seconds] [rate_pps]`

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lilt_sfu::client::Client;
use lilt_sfu::shell::{SfuHandle, Shell};
use lilt_sfu::{MediaKind, Source};

const VIDEO_SSRC: u32 = 0x1234_5678;

struct Peer {
    socket: UdpSocket,
    client: Client,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let receivers = args.first().copied().unwrap_or(10) as usize;
    let seconds = args.get(1).copied().unwrap_or(5);
    let rate = args.get(2).copied().unwrap_or(20_000);

    // The SFU on its own thread and single-threaded runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<(SocketAddr, SfuHandle)>();
    let sfu_thread =
        std::thread::Builder::new()
            .name("sfu".into())
            .spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let (shell, handle, mut events) =
                        Shell::bind("127.0.0.1:0".parse().expect("addr"))
                            .await
                            .map_err(std::io::Error::other)?;
                    let _ = addr_tx.send((shell.local_addr(), handle));
                    tokio::spawn(async move { while events.recv().await.is_some() {} });
                    shell.run().await
                })
            })?;
    let (sfu_addr, handle) = addr_rx.recv()?;
    handle.call_blocking(|s| s.create_conference("bench"))??;

    // Sender (index 0) and receivers join with real ICE/DTLS.
    let mut peers = Vec::new();
    for i in 0..=receivers {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let id = format!("ep{i}");
        let id2 = id.clone();
        let transport = handle.call_blocking(move |s| s.allocate_endpoint("bench", &id2))??;
        let mut client = Client::new(Instant::now(), local, i as u64 + 1)?;
        client.set_remote(Instant::now(), &transport)?;
        let remote = client.remote_transport();
        handle.call_blocking(move |s| s.set_remote_transport("bench", &id, &remote))??;
        peers.push(Peer { socket, client });
    }
    handle.call_blocking(|s| s.set_sources("bench", "ep0", video_source(), vec![]))??;
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while !peers.iter().all(|p| p.client.is_connected()) {
        if start.elapsed() > Duration::from_secs(20) {
            return Err("clients did not connect within 20 s".into());
        }
        for p in peers.iter_mut() {
            while let Ok((n, from)) = p.socket.recv_from(&mut buf) {
                p.client.handle_input(Instant::now(), from, &buf[..n]);
            }
            if p.client.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                p.client.handle_timeout(Instant::now());
            }
            while let Some(t) = p.client.poll_transmit() {
                let _ = p.socket.send_to(&t.data, t.to);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    println!(
        "setup: {} endpoints connected (ICE+DTLS) to {sfu_addr} in {:?}",
        receivers + 1,
        start.elapsed()
    );
    // Settle: let the SFU's connected events and keyframe requests flush.
    std::thread::sleep(Duration::from_millis(200));
    for p in peers.iter_mut() {
        while p.socket.recv_from(&mut buf).is_ok() {}
    }

    // Baseline: a direct loopback hop between the sender's and a receiver's sockets, at the
    // latency phase's pace.
    let baseline = {
        let (s, r) = (&peers[0].socket, &peers[1].socket);
        let to = r.local_addr()?;
        let mut lat = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            s.send_to(&[0x80u8; 1100], to)?;
            loop {
                if r.recv_from(&mut buf).is_ok() {
                    lat.push(t.elapsed());
                    break;
                }
            }
            while t.elapsed() < Duration::from_millis(1) {}
        }
        lat.sort();
        (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
    };

    // Latency at a moderate rate (the SFU far from saturation), then throughput at `rate`.
    let lat_rate = 1000;
    let l = run_phase(&handle, &mut peers, lat_rate, 3, true)?;
    let t = run_phase(&handle, &mut peers, rate, seconds, false)?;
    println!(
        "receivers: {receivers}; 1000-byte payload; SFU on one thread (one core); client side on another"
    );
    println!(
        "latency phase: {lat_rate} pkt/s for 3 s: via SFU p50 {:?} p99 {:?}; direct loopback p50 {:?} p99 {:?}; added by SFU p50 {:?} p99 {:?}",
        l.p50,
        l.p99,
        baseline.0,
        baseline.1,
        l.p50.saturating_sub(baseline.0),
        l.p99.saturating_sub(baseline.1)
    );
    println!(
        "throughput phase: offered {rate} pkt/s for {seconds} s: sent {}, forwarded {} ({:.0}/s wall), received {}; SFU thread CPU {:.2} s -> {:.0} packets forwarded per CPU-second; latency p50 {:?} p99 {:?}",
        t.sent,
        t.forwarded,
        t.forwarded as f64 / t.wall.as_secs_f64(),
        t.received,
        t.cpu.as_secs_f64(),
        t.forwarded as f64 / t.cpu.as_secs_f64().max(1e-9),
        t.p50,
        t.p99
    );
    drop(handle);
    let _ = sfu_thread.join();

    let (per_packet, forwarded) = core_only(receivers, 20_000)?;
    println!(
        "core only (no sockets, same thread): {forwarded} packets forwarded, {:.2} µs each -> {:.0} packets forwarded per CPU-second",
        per_packet.as_secs_f64() * 1e6,
        1.0 / per_packet.as_secs_f64()
    );
    Ok(())
}

/// The sans-IO core alone: clients connect over an in-memory network, then `packets`
/// pre-protected RTP packets from the sender are fed to `handle_input` and the receivers'
/// copies drained from `poll_transmit`. Returns the time per forwarded packet.
fn core_only(
    receivers: usize,
    packets: u16,
) -> Result<(Duration, u64), Box<dyn std::error::Error>> {
    use lilt_sfu::{DtlsCertificate, Sfu, SfuConfig};
    use rand::SeedableRng;
    let sfu_addr: SocketAddr = "10.0.0.1:10000".parse()?;
    let mut now = Instant::now();
    let mut sfu = Sfu::new(
        SfuConfig::new(vec![sfu_addr], DtlsCertificate::generate()?),
        Box::new(rand::rngs::StdRng::seed_from_u64(1)),
        now,
    )?;
    sfu.create_conference("bench")?;
    let mut clients: Vec<(SocketAddr, Client)> = Vec::new();
    for i in 0..=receivers {
        let addr = SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 5000));
        let id = format!("ep{i}");
        let local = sfu.allocate_endpoint("bench", &id)?;
        let mut c = Client::new(now, addr, i as u64 + 100)?;
        c.set_remote(now, &local)?;
        sfu.set_remote_transport("bench", &id, &c.remote_transport())?;
        clients.push((addr, c));
    }
    sfu.set_sources("bench", "ep0", video_source(), vec![])?;
    for _ in 0..500 {
        if clients.iter().all(|(_, c)| c.is_connected()) {
            break;
        }
        now += Duration::from_millis(10);
        sfu.handle_timeout(now);
        for (_, c) in clients.iter_mut() {
            c.handle_timeout(now);
        }
        loop {
            let mut moved = false;
            while let Some(t) = sfu.poll_transmit() {
                moved = true;
                if let Some((_, c)) = clients.iter_mut().find(|(a, _)| *a == t.to) {
                    c.handle_input(now, sfu_addr, &t.data);
                }
            }
            for (addr, c) in clients.iter_mut() {
                while let Some(t) = c.poll_transmit() {
                    moved = true;
                    sfu.handle_input(now, *addr, sfu_addr, &t.data);
                }
            }
            if !moved {
                break;
            }
        }
    }
    if !clients.iter().all(|(_, c)| c.is_connected()) {
        return Err("in-memory clients did not connect".into());
    }
    while sfu.poll_transmit().is_some() {}
    let sender = clients[0].0;
    let payload = vec![0xabu8; 1000];
    let mut wire = Vec::with_capacity(usize::from(packets));
    for seq in 1..=packets {
        clients[0].1.send_rtp(&rtp_packet(seq, &payload))?;
        while let Some(t) = clients[0].1.poll_transmit() {
            wire.push(t.data);
        }
    }
    let mut forwarded = 0u64;
    let started = Instant::now();
    for data in &wire {
        sfu.handle_input(now, sender, sfu_addr, data);
        while let Some(t) = sfu.poll_transmit() {
            forwarded += 1;
            std::hint::black_box(&t);
        }
    }
    let elapsed = started.elapsed();
    Ok((elapsed / u32::try_from(forwarded.max(1))?, forwarded))
}

struct Phase {
    sent: u64,
    forwarded: u64,
    received: u64,
    wall: Duration,
    cpu: Duration,
    p50: Duration,
    p99: Duration,
}

/// Sends paced video packets from peer 0 at `rate` for `seconds`; receivers read only the clear
/// RTP header (sequence number) of the SRTP packets: the SFU already authenticated and
/// re-protected them.
fn run_phase(
    handle: &SfuHandle,
    peers: &mut [Peer],
    rate: u64,
    seconds: u64,
    latency_only: bool,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let mut buf = [0u8; 2048];
    let cpu_before = handle.call_blocking(|_| thread_cpu())?;
    let out_before = handle.call_blocking(forwarded_total)?;
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut lat: Vec<Duration> = Vec::new();
    let mut received = 0u64;
    let mut sent = 0u64;
    let mut seq: u16 = 0;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = Instant::now();
    let mut next = t0;
    let end = t0 + Duration::from_secs(seconds);
    let payload = vec![0xabu8; 1000];
    while Instant::now() < end {
        let now = Instant::now();
        let mut burst = 0;
        while next <= now && burst < 64 {
            seq = seq.wrapping_add(1);
            let pkt = rtp_packet(seq, &payload);
            peers[0].client.send_rtp(&pkt)?;
            sent_at.insert(seq, Instant::now());
            while let Some(t) = peers[0].client.poll_transmit() {
                let _ = peers[0].socket.send_to(&t.data, t.to);
            }
            sent += 1;
            next += interval;
            burst += 1;
        }
        // When measuring latency only the first receiver is read, so the time stamps are not
        // skewed by sweeping N sockets; the others' datagrams wait in their socket buffers.
        let readers = if latency_only {
            &peers[1..2]
        } else {
            &peers[1..]
        };
        for p in readers {
            while let Ok((n, _)) = p.socket.recv_from(&mut buf) {
                if n >= 12 && (128..192).contains(&buf[0]) && buf[1] < 192 {
                    received += 1;
                    let s = u16::from_be_bytes([buf[2], buf[3]]);
                    if let Some(t) = sent_at.get(&s) {
                        lat.push(t.elapsed());
                    }
                }
            }
        }
        if sent_at.len() > 30_000 {
            let keep = seq.wrapping_sub(20_000);
            sent_at.retain(|s, _| s.wrapping_sub(keep) < 20_000);
        }
    }
    let wall = t0.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    for p in peers[1..].iter() {
        while let Ok((n, _)) = p.socket.recv_from(&mut buf) {
            received += u64::from(n >= 12);
        }
    }
    let cpu_after = handle.call_blocking(|_| thread_cpu())?;
    let out_after = handle.call_blocking(forwarded_total)?;
    lat.sort();
    let pct = |q: usize| lat.get(lat.len() * q / 100).copied().unwrap_or_default();
    Ok(Phase {
        sent,
        forwarded: out_after - out_before,
        received,
        wall,
        cpu: cpu_after.saturating_sub(cpu_before),
        p50: pct(50),
        p99: pct(99),
    })
}

fn rtp_packet(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x90, 100];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&VIDEO_SSRC.to_be_bytes());
    // One-byte extensions: id 1 (kept) and id 3 (stripped), as a browser sends them.
    p.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x10, 0x80, 0x32, 1, 2, 3, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn forwarded_total(s: &mut lilt_sfu::Sfu) -> u64 {
    s.stats()
        .endpoints
        .iter()
        .map(|e| e.counters.rtp_packets_out)
        .sum()
}

/// CPU time (user + system) of the calling thread, from /proc (Linux).
fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ = 100
}

/// The sender's one video source.
fn video_source() -> Vec<Source> {
    vec![Source {
        ssrc: VIDEO_SSRC,
        kind: MediaKind::Video,
        name: None,
    }]
}
