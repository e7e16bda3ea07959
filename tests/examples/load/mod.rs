//! Shared by the load examples: reading the server's own accounting from /proc, and a plain
//! TCP anonymous login (SASL ANONYMOUS, restart, bind) written out byte for byte.
//!
//! Shell (sockets, /proc). Invariant: every read waits for a known marker, so a stalled server
//! shows up as the caller's timeout, not a hang here.

// Each example uses part of this module.
#![allow(dead_code)]

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Resident memory of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) `pid` has used, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Read until `needle` has arrived.
pub(crate) async fn read_until(tcp: &mut TcpStream, needle: &str) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains(needle) {
        let n = tcp.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Log in anonymously over plain TCP and bind a resource.
pub(crate) async fn tcp_login(addr: &str, domain: &str) -> anyhow::Result<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    let open = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    );
    tcp.write_all(open.as_bytes()).await?;
    read_until(&mut tcp, "</stream:features>").await?;
    tcp.write_all(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        .await?;
    read_until(&mut tcp, "success").await?;
    tcp.write_all(open.as_bytes()).await?;
    read_until(&mut tcp, "</stream:features>").await?;
    tcp.write_all(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await?;
    read_until(&mut tcp, "</iq>").await?;
    Ok(tcp)
}

