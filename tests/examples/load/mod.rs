//! Shared by the load examples: the server's own accounting from /proc, and XMPP clients written
//! out byte for byte over plain TCP or WebSocket (RFC 7395): stream set-up, SASL ANONYMOUS or
//! SCRAM-SHA-1, bind.
//!
//! Shell (sockets, /proc). Invariant: every read waits for a known marker, so a stalled server
//! shows up as the caller's timeout, not a hang here. Works against any XMPP server that allows
//! these mechanisms without TLS (Lilt with `allow_unencrypted`, Prosody with
//! `c2s_require_encryption = false`).

// Each example uses part of this module.
#![allow(dead_code)]

#[path = "../../all/scram.rs"]
mod scram;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

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
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// How a client logs in.
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    /// SASL ANONYMOUS.
    Anonymous,
    /// SCRAM-SHA-1 as `user` with `password`.
    ScramSha1 {
        /// Localpart.
        user: String,
        /// Password.
        password: String,
    },
}

/// The receiving half of a connection.
pub(crate) enum Reader {
    /// Plain TCP.
    Tcp(OwnedReadHalf),
    /// WebSocket.
    Ws(SplitStream<WebSocketStream<TcpStream>>),
}

/// The sending half of a connection.
pub(crate) enum Writer {
    /// Plain TCP.
    Tcp(OwnedWriteHalf),
    /// WebSocket.
    Ws(SplitSink<WebSocketStream<TcpStream>, Message>),
}

impl Reader {
    /// Read some data (one TCP read or one WebSocket text frame); 0 when closed.
    pub(crate) async fn recv(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
        match self {
            Reader::Tcp(r) => {
                let mut chunk = [0u8; 32 * 1024];
                let n = r.read(&mut chunk).await?;
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Reader::Ws(r) => loop {
                match r.next().await {
                    Some(Ok(Message::Text(t))) => {
                        buf.extend_from_slice(t.as_bytes());
                        return Ok(t.len());
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(0),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            },
        }
    }
}

impl Writer {
    /// Send XML.
    pub(crate) async fn send(&mut self, xml: &str) -> anyhow::Result<()> {
        match self {
            Writer::Tcp(w) => w.write_all(xml.as_bytes()).await?,
            Writer::Ws(w) => w.send(Message::text(xml.to_owned())).await?,
        }
        Ok(())
    }

    /// End the stream politely.
    pub(crate) async fn close(mut self) {
        let end = match self {
            Writer::Tcp(_) => "</stream:stream>",
            Writer::Ws(_) => "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        };
        let _ = self.send(end).await;
        if let Writer::Ws(w) = &mut self {
            let _ = w.close().await;
        }
    }
}

/// One client connection, as its two halves.
pub(crate) struct Conn {
    /// Receiving half.
    pub(crate) rd: Reader,
    /// Sending half.
    pub(crate) wr: Writer,
}

impl Conn {
    /// Connect over TCP to `addr`.
    pub(crate) async fn tcp(addr: &str) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (rd, wr) = tcp.into_split();
        Ok(Conn {
            rd: Reader::Tcp(rd),
            wr: Writer::Tcp(wr),
        })
    }

    /// Connect over WebSocket to `url` (`ws://host:port/path`).
    pub(crate) async fn ws(url: &str) -> anyhow::Result<Conn> {
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "xmpp".parse()?);
        let host = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let tcp = TcpStream::connect(host).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
        let (wr, rd) = ws.split();
        Ok(Conn {
            rd: Reader::Ws(rd),
            wr: Writer::Ws(wr),
        })
    }

    /// Send XML.
    pub(crate) async fn send(&mut self, xml: &str) -> anyhow::Result<()> {
        self.wr.send(xml).await
    }

    /// Read until `needle` arrives; returns everything read.
    pub(crate) async fn read_until(&mut self, needle: &str) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        while !contains(&buf, needle.as_bytes()) {
            anyhow::ensure!(
                self.rd.recv(&mut buf).await? > 0,
                "closed while waiting for {needle}"
            );
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn open(&self, domain: &str) -> String {
        match self.wr {
            Writer::Tcp(_) => format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
            ),
            Writer::Ws(_) => format!(
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>"
            ),
        }
    }

    /// Open the stream, authenticate, restart and bind; returns the bound JID.
    pub(crate) async fn login(&mut self, domain: &str, auth: &Auth) -> anyhow::Result<String> {
        let open = self.open(domain);
        self.send(&open).await?;
        self.read_until("</stream:features>").await?;
        match auth {
            Auth::Anonymous => {
                self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
                    .await?;
                let r = self.read_until_any(&["<success", "<failure"]).await?;
                anyhow::ensure!(r.contains("<success"), "ANONYMOUS refused: {r}");
            }
            Auth::ScramSha1 { user, password } => {
                let mut client = scram::ScramClient::new(scram::ScramHash::Sha1, user, password);
                self.send(&format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{}</auth>",
                    B64.encode(client.client_first())
                ))
                .await?;
                let challenge = self.read_until_any(&["</challenge>", "<failure"]).await?;
                let server_first = element_text(&challenge, "challenge")
                    .ok_or_else(|| anyhow::anyhow!("no challenge: {challenge}"))?;
                let server_first = String::from_utf8(B64.decode(server_first)?)?;
                let last = client
                    .client_final_with(&server_first, |salt, i| {
                        salted_password(user, password, salt, i)
                    })
                    .map_err(anyhow::Error::msg)?;
                self.send(&format!(
                    "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                    B64.encode(last)
                ))
                .await?;
                let done = self
                    .read_until_any(&["</success>", "<success/>", "<failure"])
                    .await?;
                anyhow::ensure!(done.contains("<success"), "SCRAM refused: {done}");
                if let Some(v) = element_text(&done, "success").filter(|v| !v.is_empty()) {
                    let server_final = String::from_utf8(B64.decode(v)?)?;
                    client
                        .verify_server_final(&server_final)
                        .map_err(anyhow::Error::msg)?;
                }
            }
        }
        self.send(&open).await?;
        self.read_until("</stream:features>").await?;
        self.send("<iq type='set' id='bind' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await?;
        let bound = self.read_until("</iq>").await?;
        element_text(&bound, "jid")
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no bound JID: {bound}"))
    }

    async fn read_until_any(&mut self, needles: &[&str]) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        while !needles.iter().any(|n| contains(&buf, n.as_bytes())) {
            anyhow::ensure!(
                self.rd.recv(&mut buf).await? > 0,
                "closed while waiting for {needles:?}"
            );
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// End the stream politely.
    pub(crate) async fn close(self) {
        self.wr.close().await;
    }
}

/// SCRAM-SHA-1 salted passwords by (user, salt, iterations): PBKDF2 is meant to be slow, and
/// computing it per login would make the generator, not the server, the bottleneck.
fn salted_password(user: &str, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    type Cache = std::collections::HashMap<(String, Vec<u8>, u32), Vec<u8>>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let key = (user.to_owned(), salt.to_vec(), iterations);
    let mut guard = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .get_or_insert_with(Cache::new)
        .entry(key)
        .or_insert_with(|| scram::ScramHash::Sha1.hi(password.as_bytes(), salt, iterations))
        .clone()
}

/// Whether `hay` contains `needle`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The text of the first `<name …>text</name>` in `xml` (prefix-free names only).
fn element_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}"))?;
    let open_end = start + xml[start..].find('>')?;
    if xml[..=open_end].ends_with("/>") {
        return Some("");
    }
    let close = xml[open_end..].find(&format!("</{name}>"))? + open_end;
    Some(&xml[open_end + 1..close])
}

/// Log in anonymously over plain TCP and bind a resource.
pub(crate) async fn tcp_login(addr: &str, domain: &str) -> anyhow::Result<TcpStream> {
    let mut conn = Conn::tcp(addr).await?;
    conn.login(domain, &Auth::Anonymous).await?;
    match (conn.rd, conn.wr) {
        (Reader::Tcp(rd), Writer::Tcp(wr)) => Ok(rd.reunite(wr)?),
        _ => anyhow::bail!("Conn::tcp made a non-TCP connection"),
    }
}

/// Read from a TCP stream until `needle` has arrived.
pub(crate) async fn read_until(tcp: &mut TcpStream, needle: &str) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !contains(&buf, needle.as_bytes()) {
        let n = tcp.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}
