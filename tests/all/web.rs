//! Clients for the HTTP side, none written here: reqwest for HTTP, tokio-tungstenite for raw
//! RFC 7395 WebSocket frames, prometheus-parse for `/metrics`, and xmpp.js / Strophe.js run
//! under Node (tests/js/client.mjs) as the browser-side XMPP libraries.
//!
//! Shell (sockets, child processes). Spec: RFC 6455, RFC 7395, Prometheus text format 0.0.4.
//! Invariants: every wait is bounded; a Node client is killed when dropped; only 127.0.0.1
//! is dialled. Tests: used by tests/all/{websocket,bosh,http}.rs.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_xmpp::minidom::Element;

use crate::harness::{Ports, workspace_root};
use crate::raw::{Io, REPLY_TIMEOUT};

/// The RFC 7395 framing namespace.
pub(crate) const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// A plain HTTP client with a bounded timeout.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// GET `path` and return (status, content type, body).
pub(crate) async fn get(ports: Ports, path: &str) -> (u16, String, String) {
    let r = http()
        .get(ports.http_url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, r.text().await.unwrap_or_default())
}

/// Scrape and parse `/metrics`.
pub(crate) async fn scrape(ports: Ports) -> prometheus_parse::Scrape {
    let (status, ct, body) = get(ports, "/metrics").await;
    assert_eq!(status, 200, "/metrics answered {status}: {body}");
    assert!(ct.starts_with("text/plain"), "content type {ct}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{body}"))
}

/// The value of the sample `name` whose labels include `labels`.
pub(crate) fn sample(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)));
    match found.map(|x| &x.value) {
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v,
        other => panic!("no sample {name}{labels:?} (found {other:?})"),
    }
}

/// Poll `/metrics` until `name{labels}` equals `want` (bounded); returns the last value.
pub(crate) async fn wait_metric(ports: Ports, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = sample(&scrape(ports).await, name, labels);
        if v == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed at {v}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket speaking RFC 7395, over TCP or TLS.
pub(crate) struct Ws {
    ws: WebSocketStream<Box<dyn Io>>,
    /// The subprotocol the server chose.
    pub(crate) protocol: Option<String>,
}

/// Why a WebSocket connection was refused.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) u16);

impl Ws {
    /// Connect to `url` over `io`, offering `protocol` (RFC 7395: `xmpp`).
    pub(crate) async fn over(
        io: Box<dyn Io>,
        url: &str,
        protocol: Option<&str>,
    ) -> Result<Ws, Refused> {
        let mut req = url.into_client_request().expect("websocket request");
        if let Some(p) = protocol {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).expect("header"),
            );
        }
        let fut = tokio_tungstenite::client_async(req, io);
        match tokio::time::timeout(REPLY_TIMEOUT, fut).await {
            Ok(Ok((ws, resp))) => Ok(Ws {
                ws,
                protocol: resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                Err(Refused(resp.status().as_u16()))
            }
            Ok(Err(e)) => panic!("WebSocket handshake with {url} failed: {e}"),
            Err(_) => panic!("WebSocket handshake with {url} timed out"),
        }
    }

    /// Connect over plain TCP to the server's `/xmpp-websocket`.
    pub(crate) async fn connect(ports: Ports) -> Ws {
        let tcp = TcpStream::connect(ports.http_addr())
            .await
            .expect("connect to the http listener");
        Ws::over(Box::new(tcp), &ports.ws_url(), Some("xmpp"))
            .await
            .expect("websocket accepted")
    }

    /// Send one text frame.
    pub(crate) async fn send(&mut self, frame: &str) {
        self.ws
            .send(Message::text(frame.to_owned()))
            .await
            .expect("send frame");
    }

    /// Send a raw message (binary, oversized…); errors are returned.
    pub(crate) async fn send_message(
        &mut self,
        m: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(m).await
    }

    /// The next message of any kind (pings are answered by the library).
    pub(crate) async fn next_message(&mut self, timeout: Duration) -> Option<Message> {
        match tokio::time::timeout(timeout, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no WebSocket message within {timeout:?}"),
        }
    }

    /// The next message, or `Err` when `timeout` passes first (`Ok(None)`: closed).
    pub(crate) async fn poll_message(&mut self, timeout: Duration) -> Result<Option<Message>, ()> {
        match tokio::time::timeout(timeout, self.ws.next()).await {
            Ok(Some(Ok(m))) => Ok(Some(m)),
            Ok(Some(Err(_)) | None) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// The next text frame, parsed on its own (so every namespace must be declared in it).
    pub(crate) async fn frame(&mut self) -> (String, Element) {
        loop {
            match self.next_message(REPLY_TIMEOUT).await {
                Some(Message::Text(t)) => {
                    let raw = t.to_string();
                    let el: Element = raw.parse().unwrap_or_else(|e| {
                        panic!("frame is not a standalone element: {raw:?}: {e}")
                    });
                    return (raw, el);
                }
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Open (or restart) the stream to `domain`; returns the features.
    pub(crate) async fn open(&mut self, domain: &str) -> Element {
        self.send(&format!(
            "<open xmlns='{NS_FRAMING}' to='{domain}' version='1.0'/>"
        ))
        .await;
        let (raw, open) = self.frame().await;
        assert!(
            open.name() == "open" && open.ns() == NS_FRAMING,
            "expected <open/>, got {raw}"
        );
        assert_eq!(open.attr("version"), Some("1.0"), "{raw}");
        assert_eq!(open.attr("from"), Some(domain), "{raw}");
        assert!(open.attr("id").is_some_and(|i| !i.is_empty()), "{raw}");
        let (raw, features) = self.frame().await;
        assert_eq!(features.name(), "features", "{raw}");
        features
    }

    /// SASL ANONYMOUS, restart, bind; returns the bound JID.
    pub(crate) async fn login_anonymous(&mut self, domain: &str) -> String {
        self.open(domain).await;
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
            .await;
        let (raw, success) = self.frame().await;
        assert_eq!(success.name(), "success", "{raw}");
        let features = self.open(domain).await;
        assert!(
            features.get_child("bind", crate::raw::NS_BIND).is_some(),
            "no bind feature"
        );
        self.send("<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await;
        let (raw, iq) = self.frame().await;
        assert_eq!(iq.attr("type"), Some("result"), "{raw}");
        iq.get_child("bind", crate::raw::NS_BIND)
            .and_then(|b| b.get_child("jid", crate::raw::NS_BIND))
            .map(Element::text)
            .unwrap_or_else(|| panic!("no jid in {raw}"))
    }

    /// Read frames until one satisfies `pred`.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&Element) -> bool,
    ) -> Element {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no {what} in time");
            let (_, el) = self.frame().await;
            if pred(&el) {
                return el;
            }
        }
    }
}

/// A browser-side XMPP library (tests/js/client.mjs) run under Node.
pub(crate) struct NodeClient {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn js_dir() -> PathBuf {
    workspace_root().join("tests/js")
}

impl NodeClient {
    /// `node client.mjs <lib> <url> <domain> <peer>`.
    pub(crate) fn spawn(lib: &str, url: &str, domain: &str, peer: &str) -> NodeClient {
        let dir = js_dir();
        assert!(
            dir.join("node_modules/strophe.js").is_dir()
                && dir.join("node_modules/@xmpp/client").is_dir(),
            "the Node clients are missing; run `npm ci` in {} (scripts/test.sh does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("client.mjs")
            .args([lib, url, domain, peer])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node (install Node.js; scripts/test.sh does)");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeClient {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next JSON line, which must carry `key`; returns the line.
    pub(crate) async fn expect(&mut self, key: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    self.seen.push(line.clone());
                    // The libraries log to stdout too; only JSON lines are ours.
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    if !v.is_object() {
                        continue;
                    }
                    assert!(v.get("error").is_none(), "node client failed: {line}");
                    assert!(
                        v.get(key).is_some(),
                        "expected {key:?}, node printed {line}"
                    );
                    return v;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("node exited before {key:?}; it printed {:?}", self.seen)
                }
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "node printed no {key:?} in time; it printed {:?}",
                        self.seen
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Wait for the process to exit successfully.
    pub(crate) async fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for node") {
                assert!(
                    status.success(),
                    "node exited with {status}; printed {:?}",
                    self.seen
                );
                return;
            }
            assert!(Instant::now() < deadline, "node did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
