//! The HTTP listener: XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206) for browsers,
//! `/about/health`, `/metrics` (Prometheus text), `/stats` (JSON), a static folder, and the
//! meeting page (`meeting_page`).
//!
//! Shell (hyper on tokio). Invariants: every request is bounded in head size, body size and
//! time; the client address and "is it encrypted" come from the socket unless the peer is a
//! configured trusted proxy; a WebSocket or BOSH session holds a connection permit for its
//! whole life and runs the same c2s core as TCP; nothing here can block another connection.
//! Spec: RFC 9112 (HTTP/1.1), RFC 6455 §4.2 (the opening handshake), RFC 7395 §3.1, XEP-0124
//! §7–§17. Tests: tests/all/websocket.rs, tests/all/bosh.rs, tests/all/http.rs.

pub mod admin;
mod colibri;
mod meeting_page;
mod static_files;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::bosh;
use crate::runtime::link::{BoshLink, BoshRequest, Link, WsLink};
use crate::runtime::server::Ctx;
use crate::runtime::session_task;
use crate::stream::framing::Framing;
use crate::xml;

/// Longest a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;

type Resp = Response<Full<Bytes>>;

/// Where a request came from, as far as we can trust it.
#[derive(Debug, Clone, Copy)]
struct Origin {
    client: SocketAddr,
    encrypted: bool,
}

/// Serve one HTTP connection (keep-alive, upgrades) until it closes.
pub async fn serve_connection(ctx: Arc<Ctx>, socket: TcpStream, peer: SocketAddr, tls: bool) {
    if tls {
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, ctx.tls.accept(socket)).await {
            Ok(Ok(stream)) => serve_io(ctx, TokioIo::new(stream), peer, true).await,
            Ok(Err(e)) => tracing::debug!(message = "HTTPS handshake failed.", %peer, error = %e),
            Err(_) => tracing::debug!(message = "HTTPS handshake timed out.", %peer),
        }
    } else {
        serve_io(ctx, TokioIo::new(socket), peer, false).await;
    }
}

async fn serve_io<I>(ctx: Arc<Ctx>, io: TokioIo<I>, peer: SocketAddr, tls: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let timeout = ctx.config.http.request_timeout;
    let service = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(route(ctx, req, peer, tls).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .max_headers(64)
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(message = "HTTP connection ended with an error.", %peer, error = %e);
    }
}

async fn route(ctx: Arc<Ctx>, req: Request<Incoming>, peer: SocketAddr, tls: bool) -> Resp {
    let origin = origin(&ctx, req.headers(), peer, tls);
    let http = &ctx.config.http;
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let metrics = &ctx.metrics;
    if path == http.websocket_path {
        metrics.http_request("websocket");
        return websocket(ctx, req, origin);
    }
    if path == http.bosh_path {
        metrics.http_request("bosh");
        return bosh_request(ctx, req, origin).await;
    }
    if let Some(rest) = path.strip_prefix("/colibri-ws/") {
        metrics.http_request("colibri_ws");
        return colibri::upgrade(ctx, req, rest);
    }
    if path == "/admin" || path.starts_with("/admin/") {
        metrics.http_request("admin");
        return admin::route(ctx, req, peer).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        metrics.http_request("not_found");
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are served here.\n",
        );
    }
    match path.as_str() {
        "/about/health" => {
            metrics.http_request("health");
            health(&ctx)
        }
        "/metrics" | "/stats" | "/colibri/stats"
            if !stats_allowed(&ctx, req.headers(), &origin) =>
        {
            metrics.http_rejected();
            tracing::warn!(target: "audit", event = "stats_refused", client = %origin.client, path);
            text(
                StatusCode::FORBIDDEN,
                "The stats endpoints answer loopback, http.stats_allow and the http.stats_token_file bearer token only.\n",
            )
        }
        "/metrics" => {
            metrics.http_request("metrics");
            let mut body = metrics.render_prometheus(&ctx.plugin_stats());
            if let Some(media) = sfu_stats(&ctx).await {
                crate::metrics::media::prometheus(&media, &mut body);
            }
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body.into(),
            )
        }
        "/stats" | "/colibri/stats" => {
            metrics.http_request("stats");
            let mut body = metrics.render_json(&ctx.plugin_stats(), ctx.bosh.len());
            if let (Some(media), Some(o)) = (sfu_stats(&ctx).await, body.as_object_mut()) {
                o.insert("media".to_owned(), crate::metrics::media::json(&media));
            }
            respond(StatusCode::OK, "application/json", body.to_string().into())
        }
        _ => {
            // Files of `http.static_dir` first; what it does not have, the meeting page
            // answers (`/`, `/<room>`, `/config.json`, its assets: meeting_page.rs).
            let head = req.method() == Method::HEAD;
            let mut fallback = None;
            if let Some(dir) = &http.static_dir {
                let r = static_files::serve(dir, req.uri().path(), head).await;
                if r.status() != StatusCode::NOT_FOUND {
                    metrics.http_request("static");
                    return r;
                }
                fallback = Some(r);
            }
            let page = meeting_page::serve(
                &ctx.config,
                req.headers(),
                &path,
                req.uri().path(),
                head,
                origin.encrypted,
            );
            if let Some(r) = page.await {
                metrics.http_request("static");
                return r;
            }
            // End of the meeting page's routing.
            match fallback {
                Some(r) => {
                    metrics.http_request("static");
                    r
                }
                None => {
                    metrics.http_request("not_found");
                    text(StatusCode::NOT_FOUND, "Not found.\n")
                }
            }
        }
    }
}

/// A snapshot of the SFU's conferences and endpoints, when one runs.
async fn sfu_stats(ctx: &Ctx) -> Option<lilt_sfu::SfuStats> {
    ctx.sfu.as_ref()?.call(|sfu| sfu.stats()).await.ok()
}

/// The client's address and whether its leg is encrypted, believing `X-Forwarded-*` only
/// from a trusted proxy.
fn origin(ctx: &Ctx, headers: &HeaderMap, peer: SocketAddr, tls: bool) -> Origin {
    let trusted = &ctx.config.http.trusted_proxies;
    if !trusted.contains(&peer.ip()) {
        return Origin {
            client: peer,
            encrypted: tls,
        };
    }
    // The right-most address that is not one of our proxies is the client.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let client = forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .map_or(peer, |ip| SocketAddr::new(*ip, 0));
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().eq_ignore_ascii_case("https"));
    Origin {
        client,
        encrypted: tls || proto == Some(true),
    }
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    respond(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// Whether the client may read `/metrics` and `/stats`: a loopback client, one in
/// `http.stats_allow`, or one with `Authorization: Bearer <http.stats_token_file's token>`
/// (compared in constant time). The client is the forwarded address behind a trusted proxy.
fn stats_allowed(ctx: &Ctx, headers: &HeaderMap, origin: &Origin) -> bool {
    use subtle::ConstantTimeEq as _;
    let http = &ctx.config.http;
    let ip = origin.client.ip();
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() || http.stats_allow.iter().any(|n| n.contains(ip)) {
        return true;
    }
    let Some(token) = &http.stats_token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn health(ctx: &Ctx) -> Resp {
    let problem = if ctx.is_stopping() {
        Some((StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned()))
    } else if ctx.router.is_closed() {
        Some((
            StatusCode::INTERNAL_SERVER_ERROR,
            "router stopped".to_owned(),
        ))
    } else if ctx.router.any_full() {
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "router queue full".to_owned(),
        ))
    } else if ctx.admission.sessions_full() {
        Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "connection limit reached".to_owned(),
        ))
    } else {
        None
    };
    let disabled: Vec<String> = ctx
        .plugins
        .auth_plugins()
        .iter()
        .filter(|p| p.is_disabled())
        .map(|p| p.vhost().to_owned())
        .collect();
    let body = match &problem {
        Some((_, reason)) => serde_json::json!({ "status": "unhealthy", "reason": reason }),
        None if !disabled.is_empty() => serde_json::json!({
            "status": "degraded",
            "auth_disabled_vhosts": disabled,
        }),
        None => serde_json::json!({ "status": "ok" }),
    };
    let status = problem.map_or(StatusCode::OK, |(s, _)| s);
    respond(status, "application/json", body.to_string().into())
}

/// Longest query parameter kept (a token larger than its plugin accepts must still reach the
/// plugin, to be refused as too large rather than taken for no token).
const MAX_PARAM_BYTES: usize = 64 * 1024;

/// The `room`, `token` and `previd` query parameters a Jitsi client appends to its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectParams {
    /// `?room=`: informational, the room the client is heading for.
    pub room: Option<String>,
    /// `?token=`: a JWT for token authentication.
    pub token: Option<String>,
    /// `?previd=`: the XEP-0198 id the client will try to resume.
    pub previd: Option<String>,
}

impl ConnectParams {
    /// Read them from a query string.
    pub fn parse(query: Option<&str>) -> ConnectParams {
        let mut p = ConnectParams::default();
        for pair in query.unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(v) = percent_decode(v).filter(|v| !v.is_empty() && v.len() <= MAX_PARAM_BYTES)
            else {
                continue;
            };
            match k {
                "room" => p.room = Some(v),
                "token" => p.token = Some(v),
                "previd" => p.previd = Some(v),
                _ => {}
            }
        }
        p
    }
}

/// `application/x-www-form-urlencoded` value decoding; `None` for bad escapes or UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 6455 §4.2 opening handshake with the `xmpp` subprotocol (RFC 7395 §3.1); the session
/// starts once hyper hands over the upgraded connection.
fn websocket(ctx: Arc<Ctx>, mut req: Request<Incoming>, origin: Origin) -> Resp {
    let headers = req.headers();
    if req.method() != Method::GET || !has_token(headers, header::UPGRADE, "websocket") {
        // Strophe's keepalive fetches the WebSocket URL with a plain GET.
        return text(
            StatusCode::OK,
            "XMPP over WebSocket (RFC 7395) is served here.\n",
        );
    }
    let accept = match handshake(&ctx, headers, Some("xmpp")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let ticket = match ctx.admission.session(origin.client.ip()) {
        Ok(t) => t,
        Err(refusal) => {
            ctx.metrics.http_rejected();
            tracing::warn!(message = "WebSocket session refused.", reason = refusal.reason(), client = %origin.client);
            let status = match refusal {
                crate::runtime::admission::Refusal::Full => StatusCode::SERVICE_UNAVAILABLE,
                crate::runtime::admission::Refusal::AddressFull => StatusCode::TOO_MANY_REQUESTS,
            };
            return respond(
                status,
                "text/plain; charset=utf-8",
                Bytes::from(format!("{}.\n", refusal.reason())),
            );
        }
    };
    let params = ConnectParams::parse(req.uri().query());
    let upgrade = hyper::upgrade::on(&mut req);
    let max = ctx.config.http.max_body_bytes;
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(message = "WebSocket upgrade failed.", error = %e);
                return;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        tracing::debug!(message = "WebSocket session.", client = %origin.client, room = ?params.room, token = params.token.is_some());
        let link = Link::Ws(Box::new(WsLink::new(
            ws,
            origin.encrypted,
            ctx.config.http.websocket_ping,
        )));
        let config = ctx.c2s(false);
        session_task::serve(
            ctx,
            config,
            link,
            Framing::WebSocket,
            origin.client,
            params,
            ticket,
        )
        .await;
    });
    switching(&accept, Some("xmpp"))
}

/// The checks of an RFC 6455 §4.2 opening handshake after `Upgrade: websocket`, and the
/// `Sec-WebSocket-Accept` value; `protocol` is the subprotocol the client must offer.
#[allow(clippy::result_large_err)] // The error is the response itself, returned at once.
fn handshake(ctx: &Ctx, headers: &HeaderMap, protocol: Option<&str>) -> Result<String, Resp> {
    if !has_token(headers, header::CONNECTION, "upgrade") {
        ctx.metrics.http_rejected();
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Connection: Upgrade is required.\n",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        ctx.metrics.http_rejected();
        let mut r = text(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 is required.\n",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return Err(r);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        ctx.metrics.http_rejected();
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key is missing.\n",
        ));
    };
    if let Some(p) = protocol
        && !has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, p)
    {
        ctx.metrics.http_rejected();
        return Err(text(
            StatusCode::BAD_REQUEST,
            "The 'xmpp' WebSocket subprotocol is required (RFC 7395).\n",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// The upgrade answer (`protocol` echoed when given).
fn switching(accept: &str, protocol: Option<&'static str>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

fn bosh_response(ctx: &Ctx, status: StatusCode, body: Vec<u8>, origin_hdr: Option<&str>) -> Resp {
    let mut r = respond(status, "text/xml; charset=utf-8", body.into());
    cors(ctx, &mut r, origin_hdr);
    r
}

fn cors(ctx: &Ctx, r: &mut Resp, origin_hdr: Option<&str>) {
    let allowed = &ctx.config.http.cors_origins;
    let value = match origin_hdr {
        _ if allowed.iter().any(|o| o == "*") => "*",
        Some(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => o,
        _ => return,
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("7200"),
    );
}

/// XEP-0124 over one HTTP exchange: create a session, or hand the body to its session's task
/// and wait for the answer (held up to the session's `wait`).
async fn bosh_request(ctx: Arc<Ctx>, req: Request<Incoming>, origin: Origin) -> Resp {
    let origin_hdr = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let o = origin_hdr.as_deref();
    let params = ConnectParams::parse(req.uri().query());
    match *req.method() {
        Method::OPTIONS => return bosh_response(&ctx, StatusCode::OK, Vec::new(), o),
        Method::GET | Method::HEAD => {
            let mut r = text(StatusCode::OK, "BOSH (XEP-0124/0206): POST <body/> here.\n");
            cors(&ctx, &mut r, o);
            return r;
        }
        Method::POST => {}
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "Use POST.\n"),
    }
    let http = &ctx.config.http;
    let max = http.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        ctx.metrics.http_rejected();
        return bosh_response(
            &ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            bosh::terminate_body("policy-violation", &[]),
            o,
        );
    }
    let collected = tokio::time::timeout(
        http.request_timeout,
        Limited::new(req.into_body(), max).collect(),
    )
    .await;
    let bytes = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) => {
            ctx.metrics.http_rejected();
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let status = if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return bosh_response(
                &ctx,
                status,
                bosh::terminate_body("policy-violation", &[]),
                o,
            );
        }
        Err(_) => {
            ctx.metrics.http_rejected();
            return bosh_response(
                &ctx,
                StatusCode::REQUEST_TIMEOUT,
                bosh::terminate_body("policy-violation", &[]),
                o,
            );
        }
    };
    let limits = xml::Limits {
        max_stanza_bytes: max,
        max_depth: ctx.xml_limits.max_depth + 1,
        ..ctx.xml_limits.clone()
    };
    let body = match bosh::parse_body(&bytes, &limits) {
        Ok(b) => b,
        Err(e) => {
            ctx.metrics.http_rejected();
            tracing::debug!(message = "Bad BOSH body.", client = %origin.client, error = %e);
            return bosh_response(
                &ctx,
                StatusCode::BAD_REQUEST,
                bosh::terminate_body("bad-request", &[]),
                o,
            );
        }
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let wait = match &body.sid {
        None => match create_bosh_session(&ctx, body, reply, origin, params) {
            Ok(wait) => wait,
            Err(condition) => {
                return bosh_response(
                    &ctx,
                    StatusCode::OK,
                    bosh::terminate_body(condition, &[]),
                    o,
                );
            }
        },
        Some(sid) => {
            let Some(tx) = ctx.bosh.get(sid) else {
                return bosh_response(
                    &ctx,
                    StatusCode::OK,
                    bosh::terminate_body("item-not-found", &[]),
                    o,
                );
            };
            if tx.try_send(BoshRequest { body, reply }).is_err() {
                ctx.metrics.http_rejected();
                return bosh_response(
                    &ctx,
                    StatusCode::OK,
                    bosh::terminate_body("policy-violation", &[]),
                    o,
                );
            }
            http.bosh.max_wait
        }
    };
    match tokio::time::timeout(wait + Duration::from_secs(10), answer).await {
        Ok(Ok(body)) => bosh_response(&ctx, StatusCode::OK, body, o),
        // The session ended without answering: it is gone.
        Ok(Err(_)) => bosh_response(
            &ctx,
            StatusCode::OK,
            bosh::terminate_body("item-not-found", &[]),
            o,
        ),
        Err(_) => bosh_response(&ctx, StatusCode::OK, bosh::empty_body(), o),
    }
}

/// Start a BOSH session task for a creation request; `Err` is the terminate condition.
fn create_bosh_session(
    ctx: &Arc<Ctx>,
    body: bosh::Body,
    reply: tokio::sync::oneshot::Sender<Vec<u8>>,
    origin: Origin,
    params: ConnectParams,
) -> Result<Duration, &'static str> {
    let Some(domain) = body.to.clone() else {
        return Err("improper-addressing");
    };
    if !ctx.policies().contains_key(&domain) {
        return Err("host-unknown");
    }
    let ticket = match ctx.admission.session(origin.client.ip()) {
        Ok(t) => t,
        Err(refusal) => {
            ctx.metrics.http_rejected();
            tracing::warn!(message = "BOSH session refused.", reason = refusal.reason(), client = %origin.client);
            return Err("policy-violation");
        }
    };
    let link = BoshLink::create(
        ctx.bosh.clone(),
        ctx.config.http.bosh.clone(),
        domain,
        BoshRequest { body, reply },
        origin.encrypted,
    );
    let wait = link.core.wait();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let config = ctx.c2s(false);
        let link = Link::Bosh(Box::new(link));
        session_task::serve(
            ctx,
            config,
            link,
            Framing::Bosh,
            origin.client,
            params,
            ticket,
        )
        .await;
    });
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_params_are_decoded() {
        let p = ConnectParams::parse(Some("room=my%20room&token=a.b.c&x=1&previd=ab+cd"));
        assert_eq!(p.room.as_deref(), Some("my room"));
        assert_eq!(p.token.as_deref(), Some("a.b.c"));
        assert_eq!(p.previd.as_deref(), Some("ab cd"));
        assert_eq!(ConnectParams::parse(None), ConnectParams::default());
        assert_eq!(ConnectParams::parse(Some("room=%zz")).room, None);
        assert_eq!(percent_decode("%C3%A9"), Some("é".to_owned()));
        assert_eq!(percent_decode("%FF"), None);
    }
}
