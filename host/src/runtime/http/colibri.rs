//! The bridge-channel WebSocket (`/colibri-ws/<server-id>/<conference>/<endpoint>?pwd=…`):
//! the handshake (no subprotocol, as lib-jitsi-meet opens it), then one task that moves
//! messages between the browser and the endpoint's channel in `runtime::colibri`.
//!
//! Shell (hyper upgrade + tungstenite). Invariants: a bad path is 404 and a wrong password
//! 403, as Jitsi Videobridge answers; each open channel holds a connection permit; messages
//! are bounded in size; the task ends when the browser closes, the endpoint is released, or
//! the server shuts down. Tests: tests/all/meeting.rs, tests/all/http.rs.

use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{Resp, handshake, has_token, percent_decode, switching, text};
use crate::runtime::colibri::{self, MAX_MESSAGE_BYTES, Refusal};
use crate::runtime::server::Ctx;

/// Answer a request under `/colibri-ws/` (`rest` is the path after it).
pub(super) fn upgrade(ctx: Arc<Ctx>, mut req: Request<Incoming>, rest: &str) -> Resp {
    let Some((conference, endpoint)) = colibri::parse_path(rest) else {
        return text(StatusCode::NOT_FOUND, "No such bridge channel.\n");
    };
    let (conference, endpoint) = (conference.to_owned(), endpoint.to_owned());
    let headers = req.headers();
    if req.method() != Method::GET || !has_token(headers, header::UPGRADE, "websocket") {
        return text(
            StatusCode::BAD_REQUEST,
            "The bridge channel is a WebSocket.\n",
        );
    }
    let accept = match handshake(&ctx, headers, None) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let pwd = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("pwd="))
        .and_then(percent_decode)
        .unwrap_or_default();
    let attached = match ctx.channels.attach(&conference, &endpoint, &pwd) {
        Ok(a) => a,
        Err(Refusal::Unknown) => {
            return text(StatusCode::NOT_FOUND, "No such conference or endpoint.\n");
        }
        Err(Refusal::Forbidden) => {
            return text(StatusCode::FORBIDDEN, "Wrong bridge-channel password.\n");
        }
    };
    let Ok(permit) = ctx.admission.http() else {
        ctx.channels.detach(&conference, &endpoint, attached.id);
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Connection limit reached.\n",
        );
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(message = "Bridge-channel upgrade failed.", error = %e);
                ctx.channels.detach(&conference, &endpoint, attached.id);
                return;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        run(&ctx, ws, &conference, &endpoint, attached.rx).await;
        ctx.channels.detach(&conference, &endpoint, attached.id);
        drop(permit);
    });
    switching(&accept, None)
}

async fn run<S>(
    ctx: &Ctx,
    mut ws: WebSocketStream<S>,
    conference: &str,
    endpoint: &str,
    mut rx: tokio::sync::mpsc::Receiver<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut shutdown = ctx.shutdown.subscribe();
    // What this endpoint asks to receive, as its messages have built it up.
    let mut constraints = lilt_sfu::ReceiverConstraints::default();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                // The endpoint was released or replaced by a newer channel.
                None => {
                    let _ = ws.close(None).await;
                    return;
                }
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    match ctx.channels.received(conference, endpoint, t.as_str()) {
                        Ok(Some(msg)) => {
                            tracing::trace!(message = "Receiver constraints.", conference, endpoint, %msg);
                            crate::runtime::colibri::fold_constraints(&msg, &mut constraints);
                            if let Some(sfu) = &ctx.sfu {
                                let (conf, ep, c) =
                                    (conference.to_owned(), endpoint.to_owned(), constraints.clone());
                                // The endpoint may be gone meanwhile: nothing to apply then.
                                let _ = sfu
                                    .call(move |s| s.set_receiver_constraints(&conf, &ep, c))
                                    .await;
                            }
                        }
                        Ok(None) => {}
                        Err(why) => {
                            tracing::debug!(message = "Bridge-channel message ignored.", conference, endpoint, why);
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = shutdown.recv() => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
}
