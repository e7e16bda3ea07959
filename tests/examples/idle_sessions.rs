//! Idle-session benchmark: opens N sessions (XMPP over WebSocket, or plain TCP), logs each in
//! anonymously and binds it, then holds them idle and reports the server's resident memory
//! per session (read from /proc/<pid>/status before and after) and the login rate.
//!
//! Usage: idle_sessions <tcp|ws> <host:port> <domain> <count> <server-pid> [concurrency]
//! Bounded: it stops after `count` sessions or 120 s, whichever comes first, and closes all.

use std::time::{Duration, Instant};

#[path = "load/mod.rs"]
mod load;

use load::{rss_kib, tcp_login};

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const DEADLINE: Duration = Duration::from_secs(120);

enum Session {
    Tcp(TcpStream),
    Ws(Box<tokio_tungstenite::WebSocketStream<TcpStream>>),
}

async fn expect_ws(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    needle: &str,
) -> anyhow::Result<()> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(needle) => return Ok(()),
            Some(Ok(_)) => {}
            _ => anyhow::bail!("closed"),
        }
    }
}

async fn ws_login(addr: &str, domain: &str) -> anyhow::Result<Session> {
    let tcp = TcpStream::connect(addr).await?;
    let mut req = format!("ws://{addr}/xmpp-websocket").into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "xmpp".parse()?);
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
    let open =
        format!("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>");
    ws.send(Message::text(open.clone())).await?;
    expect_ws(&mut ws, "features").await?;
    ws.send(Message::text(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
    ))
    .await?;
    expect_ws(&mut ws, "success").await?;
    ws.send(Message::text(open)).await?;
    expect_ws(&mut ws, "features").await?;
    ws.send(Message::text(
        "<iq type='set' id='b' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    ))
    .await?;
    expect_ws(&mut ws, "</iq>").await?;
    Ok(Session::Ws(Box::new(ws)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 6,
        "usage: idle_sessions <tcp|ws> <host:port> <domain> <count> <server-pid> [concurrency]"
    );
    let (kind, addr, domain) = (args[1].clone(), args[2].clone(), args[3].clone());
    let count: usize = args[4].parse()?;
    let pid: u32 = args[5].parse()?;
    let concurrency: usize = args.get(6).map_or(Ok(50), |c| c.parse())?;
    let started = Instant::now();
    let before = rss_kib(pid);
    let mut sessions = Vec::with_capacity(count);
    let mut failures = 0usize;
    let mut pending = futures::stream::iter(0..count)
        .map(|_| {
            let (kind, addr, domain) = (kind.clone(), addr.clone(), domain.clone());
            async move {
                if kind == "ws" {
                    ws_login(&addr, &domain).await
                } else {
                    tcp_login(&addr, &domain).await.map(Session::Tcp)
                }
            }
        })
        .buffer_unordered(concurrency);
    while let Some(r) = tokio::time::timeout_at((started + DEADLINE).into(), pending.next())
        .await
        .ok()
        .flatten()
    {
        match r {
            Ok(s) => sessions.push(s),
            Err(_) => failures += 1,
        }
    }
    let login_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let n = sessions.len().max(1);
    println!(
        "{kind}: {} sessions bound ({failures} failed) in {:.2} s ({:.0}/s); server RSS {} KiB -> {} KiB: {:.1} KiB per idle session",
        sessions.len(),
        login_time.as_secs_f64(),
        sessions.len() as f64 / login_time.as_secs_f64(),
        before,
        after,
        (after.saturating_sub(before)) as f64 / n as f64
    );
    for s in sessions {
        match s {
            Session::Tcp(mut t) => {
                let _ = t.write_all(b"</stream:stream>").await;
            }
            Session::Ws(mut w) => {
                let _ = tokio_tungstenite::WebSocketStream::close(&mut w, None).await;
            }
        }
    }
    Ok(())
}
