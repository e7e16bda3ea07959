//! One c2s session task: owns the link (TCP/TLS, WebSocket or BOSH) and the `C2sStream` core,
//! runs the read/mailbox/timer/shutdown loop, performs the core's requested effects (writes,
//! TLS upgrade, auth plugin calls, router requests) and feeds the answers back.
//!
//! Shell (tokio), in the mini-redis shape. Invariants: one task per session for its whole life,
//! including while detached for XEP-0198 resumption (then it holds no transport); the core's
//! outputs are drained after every input; writes produced by one input, with the deliveries
//! already queued in the mailbox (up to 64), are flushed in one `write_all` (never delayed to
//! wait for more); cold states (TLS handshake, plugin calls, resumption, the end) are boxed so
//! an idle session's task stays small; the session is unbound from the router exactly once,
//! when the core closes. Tests: tests/all/ (logins, routing, SM resume, bad input).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::admission::SessionTicket;
use super::http::ConnectParams;
use super::link::{Link, LinkEvent, sleep_until};
use super::mailbox::{MailboxRx, MailboxTx, mailbox};
use super::router_task::{EndpointMsg, Handoff, RouterCmd};
use super::server::Ctx;
use crate::bosh;
use crate::router::EndpointId;
use crate::sasl::SaslFailure;
use crate::stanza::{self, Condition, ErrorType, Jid, Stanza, StanzaError};
use crate::stream::c2s::{C2sConfig, C2sStream, Input, Output};
use crate::stream::framing::Framing;
use crate::transport::Transport;

/// Longest a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Session {
    ctx: Arc<Ctx>,
    /// Its connection permit, and its address's unauthenticated slot until it authenticates.
    ticket: SessionTicket,
    peer: SocketAddr,
    core: C2sStream,
    link: Option<Link>,
    mailbox_tx: MailboxTx,
    bound: Option<(Jid, EndpointId)>,
    /// Set when this connection's transport went to another session (resumption).
    handed_off: bool,
    pending_write: Vec<u8>,
    pending_frames: Vec<Vec<u8>>,
    /// Metrics label of the transport this session started on.
    kind: &'static str,
    /// The session logged in with SASL ANONYMOUS (it may resume any anonymous session of its
    /// vhost whose resumption id it knows).
    anonymous: bool,
    /// What the client put in its connection URL (WebSocket, BOSH); JWT auth reads `token`.
    params: ConnectParams,
}

/// Serve one c2s connection until it closes.
///
/// Plain TCP goes straight to `serve`'s future, which is what the spawned task holds; a
/// direct-TLS connection's handshake and session run boxed. (An `async fn` keeps its
/// arguments for its whole life, even once moved out: this one would add its socket, peer
/// and ticket to every session's task.)
pub fn run(
    ctx: Arc<Ctx>,
    socket: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    ticket: SessionTicket,
) -> impl Future<Output = ()> + Send + 'static {
    let span = tracing::debug_span!("conn", %peer, tls = direct_tls);
    let session = if direct_tls {
        Either::Left(Box::pin(async move {
            // Boxed apart: the handshake's state is large and over before the first byte.
            let handshake = Box::pin(tokio::time::timeout(
                TLS_HANDSHAKE_TIMEOUT,
                ctx.tls.accept(socket),
            ));
            let transport = match handshake.await {
                Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
                Ok(Err(e)) => {
                    tracing::debug!(message = "TLS handshake failed.", error = %e);
                    return;
                }
                Err(_) => {
                    tracing::debug!(message = "TLS handshake timed out.");
                    return;
                }
            };
            let config = ctx.c2s(false);
            let link = Link::Stream(transport);
            let params = ConnectParams::default();
            serve(ctx, config, link, Framing::Stream, peer, params, ticket).await;
        }))
    } else {
        let config = ctx.c2s(true);
        let link = Link::Stream(Transport::Plain(socket));
        let params = ConnectParams::default();
        Either::Right(serve(
            ctx,
            config,
            link,
            Framing::Stream,
            peer,
            params,
            ticket,
        ))
    };
    session.instrument(span)
}

/// Serve one session over `link` until it closes (TCP after TLS set-up, WebSocket after the
/// upgrade, BOSH after the creation request). The session is built before the future is: the
/// future holds the session and its mailbox, not also the arguments it was built from.
pub fn serve(
    ctx: Arc<Ctx>,
    config: C2sConfig,
    link: Link,
    framing: Framing,
    peer: SocketAddr,
    params: ConnectParams,
    ticket: SessionTicket,
) -> impl Future<Output = ()> + Send + 'static {
    let kind = link.kind();
    let core = C2sStream::new(
        config,
        framing,
        link.is_encrypted(),
        std::time::Instant::now(),
    );
    let (mailbox_tx, mailbox_rx) = mailbox(
        ctx.config.limits.session_queue_stanzas,
        ctx.config.limits.session_queue_bytes,
    );
    let mut session = Session {
        ctx,
        peer,
        core,
        link: Some(link),
        mailbox_tx,
        bound: None,
        handed_off: false,
        pending_write: Vec::new(),
        pending_frames: Vec::new(),
        kind,
        anonymous: false,
        params,
        ticket,
    };
    async move {
        let metrics = session.ctx.metrics.clone();
        metrics.connection_opened(kind);
        session.run(mailbox_rx).await;
        metrics.connection_closed(kind);
    }
}

impl Session {
    async fn run(&mut self, mut mailbox: MailboxRx) {
        let mut shutdown = self.ctx.shutdown.subscribe();
        loop {
            self.drive().await;
            if self.core.is_closed() || self.handed_off {
                break;
            }
            let core_deadline = self.core.poll_timeout().map(Instant::from_std);
            let link_deadline = self.link.as_ref().and_then(Link::poll_timeout);
            let deadline = match (core_deadline, link_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // A link that buffers (BOSH with no request held) past its bound takes nothing more:
            // the mailbox fills and further stanzas bounce to their senders.
            let take_mail = self.link.as_ref().is_none_or(Link::accepts_more);
            let core = &mut self.core;
            // Read into the worker's buffer: the parser keeps only an unfinished stanza.
            let mut on_bytes = |bytes: &[u8]| {
                tracing::trace!(message = "Read.", data = %String::from_utf8_lossy(bytes));
                core.handle_input(std::time::Instant::now(), Input::Bytes(bytes));
            };
            let input = tokio::select! {
                ev = next(self.link.as_mut(), &mut on_bytes) => Event::Link(ev),
                msg = mailbox.recv(), if take_mail => match msg {
                    Some(m) => Event::Mail(m),
                    // Unreachable while we hold a sender; treat as shutdown.
                    None => Event::Shutdown,
                },
                () = sleep_until(deadline) => Event::Timeout,
                _ = shutdown.recv() => Event::Shutdown,
            };
            let now = std::time::Instant::now();
            // Deliveries already queued join the writes this input causes: one `write` for
            // the turn (nothing waits for more to come).
            let coalesce = matches!(
                input,
                Event::Link(LinkEvent::Bytes(_) | LinkEvent::Frame(_))
                    | Event::Mail(EndpointMsg::Deliver(_))
            );
            match input {
                // Already handed to the core while the worker's buffer was borrowed.
                Event::Link(LinkEvent::Bytes(_)) => {}
                Event::Link(LinkEvent::Frame(frame)) => {
                    tracing::trace!(message = "Frame.", data = %String::from_utf8_lossy(&frame));
                    self.core.handle_input(now, Input::Frame(&frame));
                }
                Event::Link(LinkEvent::Bosh(req)) => {
                    if let Some(Link::Bosh(b)) = self.link.as_mut() {
                        b.request(*req);
                    }
                }
                Event::Link(LinkEvent::Closed) => {
                    self.link = None;
                    self.core.handle_input(now, Input::TransportClosed);
                }
                Event::Link(LinkEvent::Timer) => {}
                Event::Timeout => {
                    if let Some(Link::Bosh(b)) = self.link.as_mut() {
                        b.core.timeout(now);
                    }
                    self.core.handle_input(now, Input::Timeout);
                }
                Event::Shutdown => self.core.handle_input(now, Input::Shutdown),
                Event::Mail(EndpointMsg::Deliver(stanza)) => {
                    self.core.handle_input(now, Input::Deliver(stanza));
                }
                Event::Mail(other) => self.mail(now, other),
            }
            if coalesce {
                self.take_queued(now, &mut mailbox);
            }
        }
        Box::pin(self.finish(&mut mailbox)).await;
    }

    /// Batch up to 64 deliveries already queued into this turn's write (not into a BOSH
    /// buffer, which is bounded stanza by stanza).
    fn take_queued(&mut self, now: std::time::Instant, mailbox: &mut MailboxRx) {
        if matches!(self.link, Some(Link::Bosh(_))) {
            return;
        }
        for _ in 0..64 {
            // A closed core takes nothing more: `finish` bounces what is left.
            if self.core.is_closed() {
                break;
            }
            match mailbox.try_recv() {
                Ok(EndpointMsg::Deliver(s)) => self.core.handle_input(now, Input::Deliver(s)),
                Ok(other) => {
                    self.mail(now, other);
                    break;
                }
                Err(_) => break,
            }
        }
    }

    fn mail(&mut self, now: std::time::Instant, msg: EndpointMsg) {
        match msg {
            EndpointMsg::Deliver(s) => self.core.handle_input(now, Input::Deliver(s)),
            EndpointMsg::Conflict => {
                // The router already dropped us; do not unbind the new holder.
                self.bound = None;
                self.core.handle_input(now, Input::Conflict);
            }
            EndpointMsg::HostGone => {
                // The router already dropped us with the vhost.
                self.bound = None;
                self.core.handle_input(now, Input::HostGone);
            }
            EndpointMsg::Takeover(handoff) => {
                let Handoff {
                    link,
                    input,
                    h,
                    keep_resumable,
                } = *handoff;
                tracing::debug!(message = "Session resumed on a new transport.", peer = %self.peer);
                let encrypted = link.is_encrypted();
                self.link = Some(link);
                self.pending_write.clear();
                self.pending_frames.clear();
                self.core.resume(now, input, h, encrypted, keep_resumable);
            }
        }
    }

    /// Perform every output the core has queued, then let a BOSH link answer and feed what
    /// its requests carried, until both are quiet.
    async fn drive(&mut self) {
        loop {
            self.pump_bosh();
            self.perform_outputs().await;
            self.flush().await;
            let Some(Link::Bosh(b)) = self.link.as_mut() else {
                return;
            };
            b.core.flush(std::time::Instant::now());
            if !self.pump_bosh() {
                return;
            }
        }
    }

    /// Move a BOSH link's outputs along; true when the stream got input.
    fn pump_bosh(&mut self) -> bool {
        let Some(Link::Bosh(b)) = self.link.as_mut() else {
            return false;
        };
        let now = std::time::Instant::now();
        let mut fed = false;
        while let Some(out) = b.core.poll_output() {
            match out {
                bosh::Output::Respond(id, body) => b.respond(id, body),
                bosh::Output::Stream(event) => {
                    fed = true;
                    self.core.handle_input(now, Input::Event(event));
                }
                bosh::Output::Terminated => {
                    fed = true;
                    self.core.handle_input(now, Input::TransportClosed);
                }
            }
        }
        fed
    }

    /// Perform the core's outputs. Writes and routing are the hot path; everything else (TLS,
    /// auth plugin calls, bind, resumption, close) runs boxed in `perform_cold`, so that its
    /// futures do not make every idle session's task larger.
    async fn perform_outputs(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Write(bytes) => {
                    // Every write of this turn leaves in one `write` (see `flush`).
                    if self.pending_write.is_empty() {
                        self.pending_write = bytes;
                    } else {
                        self.pending_write.extend_from_slice(&bytes);
                    }
                }
                Output::Frame(frame) => self.pending_frames.push(frame),
                Output::Route(stanza) => {
                    if self
                        .ctx
                        .router
                        .send(RouterCmd::Route(stanza))
                        .await
                        .is_err()
                    {
                        self.core
                            .handle_input(std::time::Instant::now(), Input::Shutdown);
                    }
                }
                other => Box::pin(self.perform_cold(other)).await,
            }
        }
    }

    async fn perform_cold(&mut self, out: Output) {
        let now = std::time::Instant::now();
        match out {
            Output::Write(_) | Output::Frame(_) | Output::Route(_) => {}
            Output::StartTls => {
                self.flush().await;
                self.start_tls(now).await;
            }
            Output::CheckPassword {
                vhost,
                username,
                password,
            } => {
                let answer = match self.ctx.plugins.auth(&vhost) {
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
                let answer = match self.ctx.plugins.auth(&vhost) {
                    Some(p) => p
                        .scram_credentials(&username, hash)
                        .await
                        .map_err(|e| log_plugin_error(&e)),
                    None => Err(()),
                };
                self.core.handle_input(now, Input::Credentials(answer));
            }
            Output::Authenticated { jid, mechanism } => {
                self.ticket.authenticated();
                self.ctx.metrics.auth(mechanism.name(), true);
                self.anonymous = mechanism == crate::sasl::Mechanism::Anonymous;
                tracing::info!(message = "Authenticated.", %jid, mechanism = mechanism.name(), peer = %self.peer, transport = self.kind, room = self.params.room.as_deref());
                tracing::info!(target: "audit", event = "login", outcome = "success", vhost = jid.domain(), %jid, mechanism = mechanism.name(), peer = %self.peer, transport = self.kind);
            }
            Output::AuthFailed {
                mechanism,
                condition,
            } => {
                self.ctx.metrics.auth(mechanism.name(), false);
                tracing::info!(message = "Authentication failed.", mechanism = mechanism.name(), condition, peer = %self.peer, transport = self.kind);
                tracing::info!(target: "audit", event = "login", outcome = "failure", vhost = self.core.vhost().unwrap_or(""), mechanism = mechanism.name(), condition, peer = %self.peer, transport = self.kind);
            }
            Output::Identify {
                vhost,
                mechanism,
                username,
            } => {
                let plugin = self.ctx.plugins.auth(&vhost);
                let token = self.params.token.clone();
                let answer = identify(plugin, mechanism, &username, token.as_deref()).await;
                self.core.handle_input(now, Input::Identified(answer));
            }
            Output::Bind {
                jid,
                resource,
                identity,
            } => {
                let (reply, rx) = oneshot::channel();
                let cmd = RouterCmd::Bind {
                    jid,
                    resource,
                    identity,
                    mailbox: self.mailbox_tx.clone(),
                    reply,
                };
                let answer = match ask(&self.ctx.router, cmd, rx).await {
                    Some(Ok((full, id))) => {
                        self.ctx
                            .metrics
                            .session_bound(self.kind, full.domain(), true);
                        self.bound = Some((full.clone(), id));
                        Ok(full)
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(StanzaError::new(
                        ErrorType::Wait,
                        Condition::InternalServerError,
                    )),
                };
                self.core.handle_input(now, Input::Bound(answer));
            }
            Output::EnableResumption => {
                let Some((full, id)) = self.bound.clone() else {
                    return;
                };
                let (reply, rx) = oneshot::channel();
                if let Some(token) = ask(
                    &self.ctx.router,
                    RouterCmd::EnableResumption {
                        full,
                        id,
                        anonymous: self.anonymous,
                        reply,
                    },
                    rx,
                )
                .await
                {
                    self.core.handle_input(now, Input::ResumptionEnabled(token));
                }
            }
            Output::Resume { previd, h, jid } => self.resume(now, previd, h, jid).await,
            Output::Detached => {
                self.link = None;
                self.pending_write.clear();
                self.pending_frames.clear();
                tracing::debug!(message = "Session detached; waiting for resumption.", peer = %self.peer);
            }
            Output::Close => {
                self.flush().await;
                match self.link.take() {
                    Some(Link::Bosh(mut b)) => {
                        b.core.close(now);
                        // Answered by `finish`, which waits for the client's next request.
                        self.link = Some(Link::Bosh(b));
                    }
                    Some(mut link) => link.shutdown().await,
                    None => {}
                }
            }
        }
    }

    async fn start_tls(&mut self, now: std::time::Instant) {
        let Some(Link::Stream(Transport::Plain(tcp))) = self.link.take() else {
            return self.core.handle_input(now, Input::TransportClosed);
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.ctx.tls.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.link = Some(Link::Stream(Transport::Tls(Box::new(tls))));
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
        let target = ask(
            &self.ctx.router,
            RouterCmd::ResumeLookup {
                token: previd,
                bare: jid,
                anonymous: self.anonymous,
                reply,
            },
            rx,
        )
        .await
        .flatten();
        let Some((target, keep_resumable)) = target else {
            return self.core.handle_input(now, Input::ResumeFailed);
        };
        self.flush().await;
        let Some(link) = self.link.take() else {
            return self.core.handle_input(now, Input::TransportClosed);
        };
        let input = self.core.take_input();
        match target
            .send(EndpointMsg::Takeover(Box::new(Handoff {
                link,
                input,
                h,
                keep_resumable,
            })))
            .await
        {
            Ok(()) => self.handed_off = true,
            Err(msg) => {
                // The session ended meanwhile: keep the connection and say so.
                if let EndpointMsg::Takeover(handoff) = msg {
                    self.link = Some(handoff.link);
                    self.core.restore_input(handoff.input);
                }
                self.core.handle_input(now, Input::ResumeFailed);
            }
        }
    }

    async fn flush(&mut self) {
        if self.pending_write.is_empty() && self.pending_frames.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending_write);
        let frames = std::mem::take(&mut self.pending_frames);
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if !matches!(link, Link::Bosh(_)) {
            let n = bytes.len() + frames.iter().map(Vec::len).sum::<usize>();
            self.ctx.metrics.wrote(n);
        }
        if link.send(bytes, frames).await.is_err() {
            self.link = None;
            self.core
                .handle_input(std::time::Instant::now(), Input::TransportClosed);
        }
    }

    /// The session is over: leave the router and bounce what the peer never acknowledged.
    async fn finish(&mut self, mailbox: &mut MailboxRx) {
        if self.handed_off {
            return;
        }
        if let Some((full, _)) = &self.bound {
            self.ctx
                .metrics
                .session_bound(self.kind, full.domain(), false);
        }
        if let Some(Link::Bosh(b)) = self.link.as_mut() {
            b.linger().await;
        }
        mailbox.close();
        let mut undelivered = self.core.take_undelivered();
        while let Ok(msg) = mailbox.try_recv() {
            if let EndpointMsg::Deliver(s) = msg {
                undelivered.push(s.into_element());
            }
        }
        if let Some((full, id)) = self.bound.take() {
            let _ = self.ctx.router.send(RouterCmd::Unbind { full, id }).await;
        }
        for stanza in undelivered {
            // Presence is never bounced, nor groupchat (a room would take it as the occupant
            // failing; the unbind already makes it leave).
            if stanza.name() == "presence" || stanza.attr("type") == Some("groupchat") {
                continue;
            }
            let err = StanzaError::new(ErrorType::Cancel, Condition::RecipientUnavailable);
            // A reply whose addresses do not parse is one the router would drop.
            if let Some(Ok(reply)) = stanza::error_reply(&stanza, &err).map(Stanza::parse) {
                let _ = self.ctx.router.send(RouterCmd::Route(reply)).await;
            }
        }
    }
}

enum Event {
    Link(LinkEvent),
    Mail(EndpointMsg),
    Timeout,
    Shutdown,
}

async fn next(link: Option<&mut Link>, on_bytes: &mut (dyn FnMut(&[u8]) + Send)) -> LinkEvent {
    match link {
        Some(l) => l.next(on_bytes).await,
        None => std::future::pending().await,
    }
}

/// Ask the vhost's auth plugin who the session that just passed SASL is, with the `token`
/// of its connection URL. Fails closed: a plugin that traps or is disabled is a
/// temporary failure.
async fn identify(
    plugin: Option<crate::plugin::AuthPlugin>,
    mechanism: crate::sasl::Mechanism,
    username: &str,
    token: Option<&str>,
) -> Result<Option<crate::identity::Identity>, (SaslFailure, String)> {
    use crate::plugin::IdentifyRefusal;
    let unavailable = || {
        (
            SaslFailure::TemporaryAuthFailure,
            "Authentication is unavailable; try again later.".to_owned(),
        )
    };
    let Some(plugin) = plugin else {
        return Err(unavailable());
    };
    match plugin.identify(mechanism, username, token).await {
        Ok(None) => Ok(None),
        Ok(Some(Ok(identity))) => Ok(Some(identity)),
        Ok(Some(Err(IdentifyRefusal::Denied(text)))) => Err((SaslFailure::NotAuthorized, text)),
        Ok(Some(Err(IdentifyRefusal::Unavailable(text)))) => {
            Err((SaslFailure::TemporaryAuthFailure, text))
        }
        Err(e) => {
            log_plugin_error(&e);
            Err(unavailable())
        }
    }
}

fn log_plugin_error(e: &crate::plugin::PluginError) {
    tracing::warn!(message = "Auth plugin call failed.", error = %e);
}

/// Send a command to the router and wait for its answer (`None`: the router is gone).
async fn ask<T>(
    router: &super::router_task::Routers,
    cmd: RouterCmd,
    rx: oneshot::Receiver<T>,
) -> Option<T> {
    router.send(cmd).await.ok()?;
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn returns, without calling it.
    fn future_size5<A, B, C, D, E, Fut>(_: impl FnOnce(A, B, C, D, E) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    fn future_size4<A, B, C, D, Fut>(_: impl FnOnce(A, B, C, D) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    fn future_size1<A, Fut>(_: impl FnOnce(A) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    fn future_size2<A, B, Fut>(_: impl FnOnce(A, B) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    fn future_size3<A, B, C, Fut>(_: impl FnOnce(A, B, C) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    fn future_size7<A, B, C, D, E, F, G, Fut>(_: impl FnOnce(A, B, C, D, E, F, G) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// What an idle session's task holds inline (the task allocation is this plus tokio's
    /// header); `cargo test -p lilt --lib idle_session -- --nocapture` prints it.
    #[test]
    fn idle_session_sizes() {
        let run = future_size5(run);
        let serve = future_size7(serve);
        // The accept loop spawns each listener kind's own future (server.rs): a c2s session's
        // task holds `run`, whatever an HTTP connection or a component needs.
        let http = future_size4(super::super::http::serve_connection);
        let component = future_size3(super::super::component_task::run);
        eprintln!(
            "run future {run} B (HTTP connection {http} B, component {component} B), serve future \
             {serve} B, Session {} B, C2sStream {} B, Link {} B, WsLink {} B, EndpointMsg {} B",
            std::mem::size_of::<Session>(),
            std::mem::size_of::<C2sStream>(),
            std::mem::size_of::<Link>(),
            std::mem::size_of::<super::super::link::WsLink>(),
            std::mem::size_of::<EndpointMsg>(),
        );
        eprintln!(
            "hot-path futures: Session::run {} B (read/mail/timer/shutdown wait), drive {} B, \
             flush {} B, Link::send {} B, Link::next {} B, Routers::send {} B, mailbox recv {} B",
            future_size2(Session::run),
            future_size1(Session::drive),
            future_size1(Session::flush),
            future_size3(Link::send),
            future_size2(Link::next),
            future_size2(super::super::router_task::Routers::send),
            future_size1(MailboxRx::recv),
        );
        // Routing a stanza waits only when the shard's queue is full, and that wait is boxed.
        assert!(future_size2(super::super::router_task::Routers::send) <= 32);
        // Cold states (TLS handshake, plugin calls, resumption, the end) are boxed: the
        // session future is the session itself plus its read/mail/timer wait.
        assert!(serve < std::mem::size_of::<Session>() + 2048, "{serve}");
    }
}
