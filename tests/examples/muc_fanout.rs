//! MUC fan-out benchmark: N anonymous TCP clients join one room; one of them sends M groupchat
//! messages; every occupant must receive all M. Reports the server's CPU time (its own
//! /proc accounting) per delivered stanza and the delivery rate. Run it once against a server
//! without hook plugins and once with one subscribed `message` hook to get the hook's cost.
//!
//! Usage: muc_fanout <host:port> <domain> <muc-domain> <occupants> <messages> <server-pid>
//! Bounded: logins, joins and the run each stop after 120 s; all connections close at the end.

#[path = "load/mod.rs"]
mod load;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use load::{cpu_seconds, read_until, tcp_login};

const DEADLINE: Duration = Duration::from_secs(120);

/// Count `needle` in everything read until `want` are seen or the deadline passes.
async fn count_until(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    needle: &'static [u8],
    want: usize,
    until: Instant,
) -> usize {
    let mut seen = 0;
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while seen < want {
        let n = match tokio::time::timeout_at(until.into(), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        carry.extend_from_slice(&buf[..n]);
        let mut last = 0;
        let mut i = 0;
        while let Some(pos) = carry[i..].windows(needle.len()).position(|w| w == needle) {
            seen += 1;
            i += pos + needle.len();
            last = i;
        }
        let keep_from = last.max(carry.len().saturating_sub(needle.len()));
        carry.drain(..keep_from);
    }
    seen
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 7,
        "usage: muc_fanout <host:port> <domain> <muc-domain> <occupants> <messages> <server-pid>"
    );
    let (addr, domain, muc) = (&args[1], &args[2], &args[3]);
    let occupants: usize = args[4].parse()?;
    let messages: usize = args[5].parse()?;
    let pid: u32 = args[6].parse()?;
    let until = Instant::now() + DEADLINE;
    let room = format!("bench-{}@{muc}", std::process::id());

    let mut streams: Vec<TcpStream> = Vec::with_capacity(occupants);
    for i in 0..occupants {
        let mut tcp = tokio::time::timeout_at(until.into(), tcp_login(addr, domain)).await??;
        tcp.write_all(
            format!(
                "<presence to='{room}/n{i}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
            )
            .as_bytes(),
        )
        .await?;
        // The subject closes the join.
        tokio::time::timeout_at(until.into(), read_until(&mut tcp, "<subject")).await??;
        streams.push(tcp);
    }
    // Let the join presences of later occupants reach earlier ones, then start counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut writers: Vec<OwnedWriteHalf> = Vec::new();
    let mut readers = Vec::new();
    for tcp in streams {
        let (rd, wr) = tcp.into_split();
        // Drain what is queued (other joins) before the measured run.
        writers.push(wr);
        readers.push(rd);
    }
    let mut counters = Vec::new();
    for rd in readers {
        counters.push(tokio::spawn(count_until(
            rd,
            b"<body>message ",
            messages,
            until,
        )));
    }
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let sender = &mut writers[0];
    let mut batch = String::new();
    for m in 0..messages {
        batch.push_str(&format!("<message to='{room}' type='groupchat'><body>message {m} of the benchmark</body></message>"));
        if batch.len() > 16 * 1024 || m + 1 == messages {
            sender.write_all(batch.as_bytes()).await?;
            batch.clear();
        }
    }
    let mut delivered = 0usize;
    for c in counters {
        delivered += c.await?;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    println!(
        "room of {occupants}: {messages} messages, {delivered} of {} deliveries in {:.2} s ({:.0} deliveries/s); server CPU {:.2} s = {:.2} µs per delivery",
        messages * occupants,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        cpu,
        cpu * 1e6 / delivered.max(1) as f64
    );
    for mut w in writers {
        let _ = w.write_all(b"</stream:stream>").await;
    }
    Ok(())
}
