//! What a c2s session task talks through: a byte transport (TCP/TLS), an RFC 7395 WebSocket,
//! or a BOSH session whose HTTP requests arrive over a channel. The session task is the same
//! for all three; this module hides how input arrives, how frames leave and which timers the
//! link itself needs (WebSocket keepalive pings, BOSH wait/inactivity). A byte stream is read
//! on readiness into one buffer per worker thread (a session holds no read buffer); a WebSocket
//! runs with small tungstenite buffers and writes the frames of one turn together.
//!
//! Shell (tokio). Invariants: a link belongs to one session task at a time (resumption moves
//! it); a BOSH session is in the registry exactly while its task runs; every HTTP exchange a
//! BOSH link accepted gets an answer, the terminate body at the latest.
//! Tests: tests/all/websocket.rs, tests/all/bosh.rs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::bosh::{self, Body, BoshSession, RequestId};
use crate::transport::Transport;

/// An upgraded HTTP connection speaking WebSocket.
pub type WsStream = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A connection's link.
#[derive(Debug)]
pub enum Link {
    /// TCP or TLS carrying one XML stream.
    Stream(Transport),
    /// RFC 7395.
    Ws(Box<WsLink>),
    /// XEP-0206.
    Bosh(Box<BoshLink>),
}

/// Something the link produced.
#[derive(Debug)]
pub enum LinkEvent {
    /// `n` bytes were read and handed to the caller's `on_bytes`.
    Bytes(usize),
    /// One WebSocket message.
    Frame(Vec<u8>),
    /// One BOSH request.
    Bosh(Box<BoshRequest>),
    /// The peer is gone.
    Closed,
    /// The link's own deadline passed.
    Timer,
}

impl Link {
    /// True when the bytes are encrypted between the client and us (or a trusted proxy).
    pub fn is_encrypted(&self) -> bool {
        match self {
            Link::Stream(t) => t.is_encrypted(),
            Link::Ws(w) => w.encrypted,
            Link::Bosh(b) => b.encrypted,
        }
    }

    /// The transport's name, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Link::Stream(_) => "tcp",
            Link::Ws(_) => "websocket",
            Link::Bosh(_) => "bosh",
        }
    }

    /// Wait for the next input. Bytes from a byte stream go to `on_bytes` (then the event is
    /// `Bytes(n)`), read on readiness into this worker thread's buffer: a session holds no
    /// read buffer of its own, only what its parser keeps of an unfinished stanza.
    pub async fn next(&mut self, on_bytes: &mut (dyn FnMut(&[u8]) + Send)) -> LinkEvent {
        match self {
            Link::Stream(t) => read_ready(t, on_bytes).await,
            // Boxed: its wait (with the keepalive timer and ping) would make every session's
            // task larger, TCP ones included.
            Link::Ws(w) => Box::pin(w.next()).await,
            Link::Bosh(b) => b.next().await,
        }
    }

    /// Whether the session may take more from its mailbox: a BOSH session whose client holds
    /// no request buffers only up to `http.bosh_max_buffered_bytes` (then its mailbox fills and
    /// further stanzas bounce to their senders); the others write as they go.
    pub fn accepts_more(&self) -> bool {
        match self {
            Link::Bosh(b) => b.core.accepts_more(),
            Link::Stream(_) | Link::Ws(_) => true,
        }
    }

    /// When the session must call `BoshLink::core.timeout` (BOSH's wait and inactivity
    /// deadlines). A WebSocket's keepalive timer lives inside its own `next`, which the
    /// session awaits on every turn, so the session loop needs no second timer for it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Link::Stream(_) | Link::Ws(_) => None,
            Link::Bosh(b) => b.core.poll_timeout().map(Instant::from_std),
        }
    }

    /// Write a batch: stream bytes and/or frames, in order. `Err` means the link is gone, or
    /// the peer read nothing for `WRITE_TIMEOUT`.
    ///
    /// A byte stream is written at once as far as the socket takes it; only a peer slow to
    /// read costs a boxed wait with its timer. The session task awaits this on its hot path
    /// and its allocation is the largest state it can be suspended in, so the wait's state
    /// (and the WebSocket's) is not kept inline.
    pub async fn send(&mut self, bytes: Vec<u8>, frames: Vec<Vec<u8>>) -> Result<(), ()> {
        match self {
            Link::Stream(t) => {
                let written = match write_now(t, &bytes)? {
                    None => return Ok(()),
                    Some(n) => n,
                };
                let rest = async {
                    t.write_all(&bytes[written..]).await?;
                    t.flush().await
                };
                match Box::pin(tokio::time::timeout(WRITE_TIMEOUT, rest)).await {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(()),
                }
            }
            Link::Ws(w) => Box::pin(w.send(frames)).await,
            Link::Bosh(b) => {
                for f in frames {
                    b.core.frame(f);
                }
                Ok(())
            }
        }
    }

    /// End the link politely.
    pub async fn shutdown(&mut self) {
        let wait = Duration::from_secs(1);
        match self {
            Link::Stream(t) => {
                let _ = tokio::time::timeout(wait, t.shutdown()).await;
            }
            Link::Ws(w) => {
                let frame = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = tokio::time::timeout(wait, w.ws.close(Some(frame))).await;
            }
            Link::Bosh(_) => {}
        }
    }
}

/// An RFC 7395 connection with keepalive.
#[derive(Debug)]
pub struct WsLink {
    ws: WsStream,
    encrypted: bool,
    ping_every: Duration,
    last_seen: Instant,
    pinged: bool,
}

impl WsLink {
    /// Wrap an accepted WebSocket; a ping goes out after `ping_every` of silence and the link
    /// closes after another `ping_every` without an answer.
    ///
    /// The stream is re-framed with this module's buffer sizes (`ws_config`): nothing has been
    /// read from it yet, so no input is lost.
    pub fn new(ws: WsStream, encrypted: bool, ping_every: Duration) -> WsLink {
        let config = ws_config(*ws.get_config());
        let io = ws.into_inner();
        let ws = ready_now(WebSocketStream::from_raw_socket(
            io,
            Role::Server,
            Some(config),
        ));
        WsLink {
            ws,
            encrypted,
            ping_every,
            last_seen: Instant::now(),
            pinged: false,
        }
    }

    fn timer(&self) -> Instant {
        self.last_seen + self.ping_every * if self.pinged { 2 } else { 1 }
    }

    async fn next(&mut self) -> LinkEvent {
        loop {
            let timer = self.timer();
            let msg = tokio::select! {
                m = self.ws.next() => Ok(m),
                () = tokio::time::sleep_until(timer) => Err(()),
            };
            let Ok(msg) = msg else {
                return self.keepalive().await;
            };
            self.last_seen = Instant::now();
            self.pinged = false;
            match msg {
                Some(Ok(Message::Text(t))) => return LinkEvent::Frame(t.as_bytes().to_vec()),
                Some(Ok(Message::Binary(b))) => return LinkEvent::Frame(b.to_vec()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => return LinkEvent::Closed,
                Some(Err(e)) => {
                    use tokio_tungstenite::tungstenite::Error;
                    let code = match e {
                        Error::Capacity(_) => Some(CloseCode::Size),
                        Error::Protocol(_) => Some(CloseCode::Protocol),
                        Error::Utf8(_) => Some(CloseCode::Invalid),
                        _ => None,
                    };
                    tracing::debug!(message = "WebSocket error.", error = %e);
                    if let Some(code) = code {
                        let frame = CloseFrame {
                            code,
                            reason: e.to_string().chars().take(100).collect::<String>().into(),
                        };
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            self.ws.close(Some(frame)),
                        )
                        .await;
                    }
                    return LinkEvent::Closed;
                }
            }
        }
    }

    async fn keepalive(&mut self) -> LinkEvent {
        if self.pinged {
            tracing::debug!(message = "WebSocket peer silent after a ping; closing.");
            return LinkEvent::Closed;
        }
        self.pinged = true;
        let ping = self.ws.send(Message::Ping(Vec::new().into()));
        match tokio::time::timeout(Duration::from_secs(10), ping).await {
            Ok(Ok(())) => LinkEvent::Timer,
            _ => LinkEvent::Closed,
        }
    }

    async fn send(&mut self, frames: Vec<Vec<u8>>) -> Result<(), ()> {
        let write = async {
            for f in frames {
                let text = String::from_utf8(f)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.ws.feed(Message::text(text)).await?;
            }
            self.ws.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }
}

/// Bytes tungstenite reads at once and first allocates for input. Its input buffer lives as
/// long as the connection (and is zero-filled when read into), so it is kept small: a short
/// stanza fits one read; a larger frame grows the buffer to its length (up to
/// `http.max_body_bytes`) and takes one read per KiB. Clients send far less than they
/// receive, so the extra reads cost little (a 1.3 KB Jitsi presence takes two).
const WS_READ_BUF: usize = 1024;
/// Longest a write may wait for the peer to read before the link counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames queued by one turn are written together once they pass this (or at the turn's
/// flush): the frames of one turn leave in one `write`, not one each.
const WS_WRITE_COALESCE: usize = 16 * 1024;

/// The WebSocket configuration a c2s link runs with: the caller's message and frame limits,
/// this module's buffer sizes.
pub fn ws_config(base: WebSocketConfig) -> WebSocketConfig {
    base.read_buffer_size(WS_READ_BUF)
        .write_buffer_size(WS_WRITE_COALESCE)
        .max_write_buffer_size(usize::MAX)
}

/// The value of a future that completes at its first poll without waiting on anything
/// (`WebSocketStream::from_raw_socket` performs no I/O and no handshake).
fn ready_now<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// One BOSH request handed from an HTTP exchange to its session's task.
#[derive(Debug)]
pub struct BoshRequest {
    /// The parsed body.
    pub body: Body,
    /// Where the response body goes.
    pub reply: oneshot::Sender<Vec<u8>>,
}

/// The BOSH sessions alive, by `sid`.
#[derive(Debug, Default)]
pub struct BoshRegistry {
    sessions: Mutex<HashMap<String, mpsc::Sender<BoshRequest>>>,
}

impl BoshRegistry {
    /// The session's request channel.
    pub fn get(&self, sid: &str) -> Option<mpsc::Sender<BoshRequest>> {
        self.lock().get(sid).cloned()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session lives.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, sid: String, tx: mpsc::Sender<BoshRequest>) {
        self.lock().insert(sid, tx);
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<BoshRequest>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A BOSH session as seen by its c2s task.
#[derive(Debug)]
pub struct BoshLink {
    /// The session core.
    pub core: BoshSession,
    requests: mpsc::Receiver<BoshRequest>,
    responders: HashMap<RequestId, oneshot::Sender<Vec<u8>>>,
    next_id: u64,
    registry: Arc<BoshRegistry>,
    encrypted: bool,
}

impl BoshLink {
    /// Register a new session from its creation request.
    pub fn create(
        registry: Arc<BoshRegistry>,
        config: bosh::BoshConfig,
        domain: String,
        first: BoshRequest,
        encrypted: bool,
    ) -> BoshLink {
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let (tx, requests) = mpsc::channel(8);
        registry.insert(sid.clone(), tx);
        let id = RequestId(0);
        let core = BoshSession::create(
            config,
            sid,
            domain,
            id,
            first.body,
            std::time::Instant::now(),
        );
        BoshLink {
            core,
            requests,
            responders: HashMap::from([(id, first.reply)]),
            next_id: 1,
            registry,
            encrypted,
        }
    }

    async fn next(&mut self) -> LinkEvent {
        match self.requests.recv().await {
            Some(r) => LinkEvent::Bosh(Box::new(r)),
            None => LinkEvent::Closed,
        }
    }

    /// Hand a request to the core.
    pub fn request(&mut self, req: BoshRequest) {
        let BoshRequest { body, reply } = req;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.responders.insert(id, reply);
        self.core.request(std::time::Instant::now(), id, body);
    }

    /// Answer one exchange (a client that went away loses nothing: the body stays cached
    /// for its retransmission).
    pub fn respond(&mut self, id: RequestId, body: Vec<u8>) {
        if let Some(tx) = self.responders.remove(&id) {
            let _ = tx.send(body);
        }
    }

    /// Keep answering until the terminate body is delivered or the linger time ends.
    pub async fn linger(&mut self) {
        loop {
            while let Some(out) = self.core.poll_output() {
                if let bosh::Output::Respond(id, body) = out {
                    self.respond(id, body);
                }
            }
            if self.core.is_finished() {
                return;
            }
            let deadline = self.core.poll_timeout().map(Instant::from_std);
            tokio::select! {
                r = self.requests.recv() => match r {
                    Some(r) => self.request(r),
                    None => return,
                },
                () = sleep_until(deadline) => self.core.timeout(std::time::Instant::now()),
            }
        }
    }
}

impl Drop for BoshLink {
    fn drop(&mut self) {
        self.registry.remove(self.core.sid());
    }
}

/// Bytes a worker thread reads at once: one buffer per thread, shared by all its sessions.
const WORKER_READ_BUF: usize = 64 * 1024;

thread_local! {
    /// The worker's read buffer. Borrowed only inside one `poll` (a task may move to another
    /// worker between polls), and handed to the session's parser before the poll returns.
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; WORKER_READ_BUF].into_boxed_slice());
}

/// Wait until `t` is readable, read what is there into the worker's buffer and hand it to
/// `on_bytes` within the same poll. For plain TCP this is readiness then `try_read` (tokio's
/// `poll_read`); for TLS, rustls decrypts from its own buffer into ours.
async fn read_ready(t: &mut Transport, on_bytes: &mut (dyn FnMut(&[u8]) + Send)) -> LinkEvent {
    std::future::poll_fn(|cx| {
        READ_BUF.with_borrow_mut(|buf| {
            let mut rb = tokio::io::ReadBuf::new(buf);
            match std::pin::Pin::new(&mut *t).poll_read(cx, &mut rb) {
                std::task::Poll::Pending => std::task::Poll::Pending,
                std::task::Poll::Ready(Err(_)) => std::task::Poll::Ready(LinkEvent::Closed),
                std::task::Poll::Ready(Ok(())) => {
                    let bytes = rb.filled();
                    if bytes.is_empty() {
                        return std::task::Poll::Ready(LinkEvent::Closed);
                    }
                    on_bytes(bytes);
                    std::task::Poll::Ready(LinkEvent::Bytes(bytes.len()))
                }
            }
        })
    })
    .await
}

/// Write as much of `bytes` to `t` as it takes without waiting, then flush. `Ok(None)`: all
/// written and flushed; `Ok(Some(n))`: the first `n` bytes were written and the rest (or the
/// flush) must wait for the peer; `Err`: the link is gone.
///
/// Polls with a no-op waker: a `Pending` leaves that waker registered, and the caller's wait
/// that follows polls again with its own, which replaces it (tokio keeps the readiness, so
/// nothing is missed in between).
fn write_now(t: &mut Transport, bytes: &[u8]) -> Result<Option<usize>, ()> {
    use std::task::Poll;
    use tokio::io::AsyncWrite as _;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut written = 0;
    while written < bytes.len() {
        match std::pin::Pin::new(&mut *t).poll_write(&mut cx, &bytes[written..]) {
            Poll::Ready(Ok(0) | Err(_)) => return Err(()),
            Poll::Ready(Ok(n)) => written += n,
            Poll::Pending => return Ok(Some(written)),
        }
    }
    match std::pin::Pin::new(&mut *t).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(None),
        Poll::Ready(Err(_)) => Err(()),
        Poll::Pending => Ok(Some(written)),
    }
}

/// Sleep until `deadline`, or forever.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
