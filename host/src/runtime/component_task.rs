//! One external component connection (XEP-0114): owns the socket and the `ComponentStream`
//! core, registers the domain with the router after the handshake, relays stanzas both ways.
//!
//! Shell (tokio). Invariants: the domain is registered only after a correct handshake and
//! removed exactly once when the connection ends; a newer connection for the same domain
//! replaces the older one (which is told `conflict`). Tests: tests/all/ component tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::Instrument as _;

use super::router_task::{EndpointMsg, RouterCmd};
use super::server::Ctx;
use crate::stream::component::{ComponentStream, Input, Output};

/// Time allowed for the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve one component connection until it closes.
pub async fn run(ctx: Arc<Ctx>, socket: TcpStream, peer: SocketAddr) {
    let span = tracing::debug_span!("component", %peer);
    serve(ctx, socket).instrument(span).await;
}

async fn serve(ctx: Arc<Ctx>, mut socket: TcpStream) {
    let now = std::time::Instant::now();
    let mut core = ComponentStream::new(
        ctx.component_secrets.clone(),
        ctx.xml_limits.clone(),
        HANDSHAKE_TIMEOUT,
        now,
        &super::entropy::OsEntropy,
    );
    let (tx, mut rx) = super::mailbox::mailbox(
        ctx.config.limits.session_queue_stanzas,
        ctx.config.limits.session_queue_bytes,
    );
    let mut shutdown = ctx.shutdown.subscribe();
    let mut registered: Option<(String, u64)> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut closed = false;
    while !closed {
        let mut pending = Vec::new();
        while let Some(out) = core.poll_output() {
            match out {
                Output::Write(bytes) => pending.extend_from_slice(&bytes),
                Output::Authenticated { domain } => {
                    let (reply, answer) = oneshot::channel();
                    let cmd = RouterCmd::AddComponent {
                        domain: domain.clone(),
                        mailbox: tx.clone(),
                        reply,
                    };
                    if ctx.router.send(cmd).await.is_err() {
                        closed = true;
                        break;
                    }
                    if let Ok(id) = answer.await {
                        tracing::info!(message = "Component connected.", %domain);
                        registered = Some((domain, id));
                    }
                }
                Output::Route(stanza) => {
                    if ctx.router.send(RouterCmd::Route(stanza)).await.is_err() {
                        closed = true;
                    }
                }
                Output::Close => closed = true,
            }
        }
        if !pending.is_empty() {
            let write =
                tokio::time::timeout(Duration::from_secs(30), socket.write_all(&pending)).await;
            if !matches!(write, Ok(Ok(()))) {
                break;
            }
        }
        if closed {
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
            break;
        }
        let deadline = core.poll_timeout().map(tokio::time::Instant::from_std);
        let now = std::time::Instant::now();
        tokio::select! {
            r = socket.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => core.handle_input(now, Input::Bytes(&buf[..n])),
            },
            msg = rx.recv() => match msg {
                Some(EndpointMsg::Deliver(stanza)) => {
                    core.handle_input(now, Input::Deliver(stanza.into_element()))
                }
                Some(EndpointMsg::Conflict) => {
                    registered = None;
                    core.handle_input(now, Input::Conflict);
                }
                Some(EndpointMsg::Takeover(_) | EndpointMsg::HostGone) | None => {}
            },
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                core.handle_input(now, Input::Timeout);
            }
            _ = shutdown.recv() => core.handle_input(now, Input::Shutdown),
        }
    }
    if let Some((domain, id)) = registered {
        tracing::info!(message = "Component disconnected.", %domain);
        let _ = ctx
            .router
            .send(RouterCmd::RemoveComponent { domain, id })
            .await;
    }
}
