//! One c2s connection task: owns the transport and the `C2sStream` core, runs the
//! read/mailbox/timer/shutdown loop, performs the core's requested effects (writes, TLS upgrade,
//! auth plugin calls, router requests) and feeds the answers back.
//!
//! Shell (tokio), in the mini-redis shape. Invariants: one task per session for its whole life,
//! including while detached for XEP-0198 resumption (then it holds no transport); the core's
//! outputs are drained after every input; writes produced by one input are flushed in one
//! `write_all`; the session is unbound from the router exactly once, when the core closes.
//! Tests: tests/all/ (logins, routing, SM resume, bad input).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::router_task::{EndpointMsg, Handoff, RouterCmd};
use super::server::Ctx;
use crate::router::EndpointId;
use crate::stanza::{self, ErrorType, Jid, StanzaError};
use crate::stream::c2s::{C2sStream, Input, Output};
use crate::transport::Transport;

/// Read buffer size per connection.
const READ_BUF: usize = 8 * 1024;
/// Longest a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Session {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    core: C2sStream,
    transport: Option<Transport>,
    mailbox_tx: mpsc::Sender<EndpointMsg>,
    bound: Option<(Jid, EndpointId)>,
    /// Set when this connection's transport went to another session (resumption).
    handed_off: bool,
    pending_write: Vec<u8>,
}

/// Serve one c2s connection until it closes.
pub async fn run(ctx: Arc<Ctx>, socket: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let span = tracing::debug_span!("conn", %peer, tls = direct_tls);
    run_inner(ctx, socket, peer, direct_tls)
        .instrument(span)
        .await;
}

async fn run_inner(ctx: Arc<Ctx>, socket: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let transport = if direct_tls {
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, ctx.tls.accept(socket)).await {
            Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(message = "TLS handshake failed.", error = %e);
                return;
            }
            Err(_) => {
                tracing::debug!(message = "TLS handshake timed out.");
                return;
            }
        }
    } else {
        Transport::Plain(socket)
    };
    let config = if direct_tls {
        ctx.c2s_tls.clone()
    } else {
        ctx.c2s_plain.clone()
    };
    let core = C2sStream::new(config, direct_tls, std::time::Instant::now());
    let (mailbox_tx, mailbox_rx) = mpsc::channel(ctx.config.limits.session_queue_stanzas);
    let mut session = Session {
        ctx,
        peer,
        core,
        transport: Some(transport),
        mailbox_tx,
        bound: None,
        handed_off: false,
        pending_write: Vec::new(),
    };
    session.run(mailbox_rx).await;
}

impl Session {
    async fn run(&mut self, mut mailbox: mpsc::Receiver<EndpointMsg>) {
        let mut shutdown = self.ctx.shutdown.subscribe();
        let mut buf = vec![0u8; READ_BUF];
        loop {
            self.drive().await;
            if self.core.is_closed() || self.handed_off {
                break;
            }
            let deadline = self.core.poll_timeout().map(Instant::from_std);
            let input = tokio::select! {
                r = read(self.transport.as_mut(), &mut buf) => match r {
                    Ok(0) | Err(_) => Event::Closed,
                    Ok(n) => Event::Bytes(n),
                },
                msg = mailbox.recv() => match msg {
                    Some(m) => Event::Mail(m),
                    // Unreachable while we hold a sender; treat as shutdown.
                    None => Event::Shutdown,
                },
                () = sleep_until(deadline) => Event::Timeout,
                _ = shutdown.recv() => Event::Shutdown,
            };
            let now = std::time::Instant::now();
            match input {
                Event::Bytes(n) => {
                    tracing::trace!(message = "Read.", data = %String::from_utf8_lossy(&buf[..n]));
                    self.core.handle_input(now, Input::Bytes(&buf[..n]));
                }
                Event::Closed => {
                    self.transport = None;
                    self.core.handle_input(now, Input::TransportClosed);
                }
                Event::Timeout => self.core.handle_input(now, Input::Timeout),
                Event::Shutdown => self.core.handle_input(now, Input::Shutdown),
                Event::Mail(EndpointMsg::Deliver(stanza)) => {
                    self.core.handle_input(now, Input::Deliver(stanza));
                    // Batch whatever else is already queued into the same write.
                    for _ in 0..64 {
                        match mailbox.try_recv() {
                            Ok(EndpointMsg::Deliver(s)) => {
                                self.core.handle_input(now, Input::Deliver(s))
                            }
                            Ok(other) => {
                                self.mail(now, other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Event::Mail(other) => self.mail(now, other),
            }
        }
        self.finish(&mut mailbox).await;
    }

    fn mail(&mut self, now: std::time::Instant, msg: EndpointMsg) {
        match msg {
            EndpointMsg::Deliver(s) => self.core.handle_input(now, Input::Deliver(s)),
            EndpointMsg::Conflict => {
                // The router already dropped us; do not unbind the new holder.
                self.bound = None;
                self.core.handle_input(now, Input::Conflict);
            }
            EndpointMsg::Takeover(handoff) => {
                let Handoff {
                    transport,
                    parser,
                    h,
                } = *handoff;
                tracing::debug!(message = "Session resumed on a new transport.", peer = %self.peer);
                let encrypted = transport.is_encrypted();
                self.transport = Some(transport);
                self.pending_write.clear();
                self.core.resume(now, parser, h, encrypted);
            }
        }
    }

    /// Perform every output the core has queued.
    async fn drive(&mut self) {
        while let Some(out) = self.core.poll_output() {
            let now = std::time::Instant::now();
            match out {
                Output::Write(bytes) => self.pending_write.extend_from_slice(&bytes),
                Output::StartTls => {
                    self.flush().await;
                    self.start_tls(now).await;
                }
                Output::CheckPassword {
                    vhost,
                    username,
                    password,
                } => {
                    let answer = match self.ctx.auth.get(&vhost) {
                        Some(p) => p
                            .test_password(&username, &password)
                            .await
                            .map_err(|e| log_plugin_error(&e)),
                        None => Err(()),
                    };
                    self.core.handle_input(now, Input::PasswordChecked(answer));
                }
                Output::FetchCredentials {
                    vhost,
                    username,
                    hash,
                } => {
                    let answer = match self.ctx.auth.get(&vhost) {
                        Some(p) => p
                            .scram_credentials(&username, hash)
                            .await
                            .map_err(|e| log_plugin_error(&e)),
                        None => Err(()),
                    };
                    self.core.handle_input(now, Input::Credentials(answer));
                }
                Output::Authenticated { jid, mechanism } => {
                    tracing::info!(message = "Authenticated.", %jid, mechanism = mechanism.name(), peer = %self.peer);
                }
                Output::AuthFailed {
                    mechanism,
                    condition,
                } => {
                    tracing::info!(message = "Authentication failed.", mechanism = mechanism.name(), condition, peer = %self.peer);
                }
                Output::Bind { jid, resource } => {
                    let (reply, rx) = oneshot::channel();
                    let cmd = RouterCmd::Bind {
                        jid,
                        resource,
                        mailbox: self.mailbox_tx.clone(),
                        reply,
                    };
                    let answer = match self.ask(cmd, rx).await {
                        Some(Ok((full, id))) => {
                            self.bound = Some((full.clone(), id));
                            Ok(full)
                        }
                        Some(Err(e)) => Err(e),
                        None => Err(StanzaError::new(ErrorType::Wait, "internal-server-error")),
                    };
                    self.core.handle_input(now, Input::Bound(answer));
                }
                Output::Route(stanza) => {
                    if self
                        .ctx
                        .router
                        .send(RouterCmd::Route(stanza))
                        .await
                        .is_err()
                    {
                        self.core.handle_input(now, Input::Shutdown);
                    }
                }
                Output::EnableResumption => {
                    let Some((full, id)) = self.bound.clone() else {
                        continue;
                    };
                    let (reply, rx) = oneshot::channel();
                    if let Some(token) = self
                        .ask(RouterCmd::EnableResumption { full, id, reply }, rx)
                        .await
                    {
                        self.core.handle_input(now, Input::ResumptionEnabled(token));
                    }
                }
                Output::Resume { previd, h, jid } => self.resume(now, previd, h, jid).await,
                Output::Detached => {
                    self.transport = None;
                    self.pending_write.clear();
                    tracing::debug!(message = "Session detached; waiting for resumption.", peer = %self.peer);
                }
                Output::Close => {
                    self.flush().await;
                    if let Some(t) = self.transport.as_mut() {
                        let _ = tokio::time::timeout(Duration::from_secs(1), t.shutdown()).await;
                    }
                    self.transport = None;
                }
            }
        }
        self.flush().await;
    }

    async fn ask<T>(&self, cmd: RouterCmd, rx: oneshot::Receiver<T>) -> Option<T> {
        self.ctx.router.send(cmd).await.ok()?;
        rx.await.ok()
    }

    async fn start_tls(&mut self, now: std::time::Instant) {
        let Some(Transport::Plain(tcp)) = self.transport.take() else {
            return self.core.handle_input(now, Input::TransportClosed);
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.ctx.tls.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.transport = Some(Transport::Tls(Box::new(tls)));
                self.core.handle_input(now, Input::TlsEstablished);
            }
            _ => {
                tracing::debug!(message = "STARTTLS handshake failed.", peer = %self.peer);
                self.core.handle_input(now, Input::TransportClosed);
            }
        }
    }

    async fn resume(&mut self, now: std::time::Instant, previd: String, h: u32, jid: Jid) {
        let (reply, rx) = oneshot::channel();
        let target = self
            .ask(
                RouterCmd::ResumeLookup {
                    token: previd,
                    bare: jid,
                    reply,
                },
                rx,
            )
            .await
            .flatten();
        let Some(target) = target else {
            return self.core.handle_input(now, Input::ResumeFailed);
        };
        self.flush().await;
        let Some(transport) = self.transport.take() else {
            return self.core.handle_input(now, Input::TransportClosed);
        };
        let parser = self.core.take_parser();
        match target
            .send(EndpointMsg::Takeover(Box::new(Handoff {
                transport,
                parser,
                h,
            })))
            .await
        {
            Ok(()) => self.handed_off = true,
            Err(mpsc::error::SendError(msg)) => {
                // The session ended meanwhile: keep the connection and say so.
                if let EndpointMsg::Takeover(handoff) = msg {
                    self.transport = Some(handoff.transport);
                    self.core.restore_parser(handoff.parser);
                }
                self.core.handle_input(now, Input::ResumeFailed);
            }
        }
    }

    async fn flush(&mut self) {
        if self.pending_write.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending_write);
        let Some(t) = self.transport.as_mut() else {
            return;
        };
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(30), async {
                t.write_all(&bytes).await?;
                t.flush().await
            })
            .await,
            Ok(Ok(()))
        );
        if !ok {
            self.transport = None;
            self.core
                .handle_input(std::time::Instant::now(), Input::TransportClosed);
        }
    }

    /// The session is over: leave the router and bounce what the peer never acknowledged.
    async fn finish(&mut self, mailbox: &mut mpsc::Receiver<EndpointMsg>) {
        if self.handed_off {
            return;
        }
        mailbox.close();
        let mut undelivered = self.core.take_undelivered();
        while let Ok(msg) = mailbox.try_recv() {
            if let EndpointMsg::Deliver(s) = msg {
                undelivered.push(s);
            }
        }
        if let Some((full, id)) = self.bound.take() {
            let _ = self.ctx.router.send(RouterCmd::Unbind { full, id }).await;
        }
        for stanza in undelivered {
            if stanza.name() == "presence" {
                continue;
            }
            let err = StanzaError::new(ErrorType::Cancel, "recipient-unavailable");
            if let Some(reply) = stanza::error_reply(&stanza, &err) {
                let _ = self.ctx.router.send(RouterCmd::Route(reply)).await;
            }
        }
    }
}

enum Event {
    Bytes(usize),
    Closed,
    Mail(EndpointMsg),
    Timeout,
    Shutdown,
}

async fn read(transport: Option<&mut Transport>, buf: &mut [u8]) -> std::io::Result<usize> {
    match transport {
        Some(t) => t.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn log_plugin_error(e: &crate::plugin::PluginError) {
    tracing::warn!(message = "Auth plugin call failed.", error = %e);
}
