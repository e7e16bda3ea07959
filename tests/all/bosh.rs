//! BOSH (XEP-0124/0206) against the real server: Strophe.js over BOSH talking to a TCP client,
//! a session driven by hand with reqwest (creation, SASL, restart, bind, a message round trip,
//! terminate), the rid/sid rules, size limits and inactivity.
//!
//! Spec: XEP-0124 §7–§17, XEP-0206, lib-jitsi-meet's BOSH use.

use std::time::Duration;

use tokio_xmpp::minidom::Element;

use crate::harness::{Ports, Setup, TestConfig};
use crate::raw::{NS_BIND, NS_SASL, REPLY_TIMEOUT, RawClient};
use crate::web;

const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";

/// A BOSH session driven by hand.
pub(crate) struct Bosh {
    url: String,
    sid: String,
    pub(crate) rid: u64,
}

async fn post(url: &str, body: &str) -> (u16, String) {
    let r = web::http()
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn parse(body: &str) -> Element {
    body.parse()
        .unwrap_or_else(|e| panic!("response is not one <body/>: {body:?}: {e}"))
}

fn terminate_condition(el: &Element) -> Option<&str> {
    (el.attr("type") == Some("terminate")).then(|| el.attr("condition").unwrap_or(""))
}

fn creation(rid: u64, to: &str) -> String {
    format!(
        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' content='text/xml; charset=utf-8' \
         hold='1' rid='{rid}' to='{to}' ver='1.6' wait='5' xml:lang='en' xmpp:version='1.0'/>"
    )
}

impl Bosh {
    /// A session logged in anonymously and bound; returns it and its JID.
    pub(crate) async fn login_anonymous(ports: Ports) -> (Bosh, String) {
        let (mut bosh, _) = Bosh::create(ports).await;
        let (_, r) = bosh
            .send(
                "",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
            )
            .await;
        assert!(
            r.get_child("success", NS_SASL).is_some(),
            "{}",
            String::from(&r)
        );
        bosh.send("to='localhost' xmpp:restart='true'", "").await;
        let (_, r) = bosh
            .send("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await;
        let jid = r
            .get_child("iq", "jabber:client")
            .and_then(|iq| iq.get_child("bind", NS_BIND))
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text())
            .unwrap_or_else(|| panic!("no bound jid in {}", String::from(&r)));
        (bosh, jid)
    }

    /// Create a session; returns it and the creation response.
    async fn create(ports: Ports) -> (Bosh, Element) {
        let url = ports.http_url("/http-bind");
        let rid = 1000 + u64::from(rand::random::<u16>());
        let (status, body) = post(&url, &creation(rid, "localhost")).await;
        assert_eq!(status, 200, "{body}");
        let el = parse(&body);
        let sid = el
            .attr("sid")
            .unwrap_or_else(|| panic!("no sid in {body}"))
            .to_owned();
        (Bosh { url, sid, rid }, el)
    }

    /// Send `payload` in the next request (extra attributes in `attrs`).
    pub(crate) async fn send(&mut self, attrs: &str, payload: &str) -> (u16, Element) {
        self.rid += 1;
        self.send_rid(self.rid, attrs, payload).await
    }

    async fn send_rid(&self, rid: u64, attrs: &str, payload: &str) -> (u16, Element) {
        let body = format!(
            "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' rid='{rid}' sid='{}' {attrs}>{payload}</body>",
            self.sid
        );
        let (status, text) = post(&self.url, &body).await;
        (status, parse(&text))
    }
}

#[tokio::test]
async fn strophe_over_bosh_exchanges_with_tcp() {
    crate::websocket::library_round_trip("strophe", "bosh", |p| p.http_url("/http-bind")).await;
}

#[tokio::test]
async fn bosh_session_by_hand() {
    let server = Setup::new(TestConfig::localhost_anonymous()).start();
    let ports = server.ports();
    let (mut tcp, tcp_jid) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;
    let (mut bosh, created) = Bosh::create(ports).await;
    assert_eq!(created.attr("wait"), Some("5"));
    assert_eq!(created.attr("hold"), Some("1"));
    assert_eq!(created.attr("requests"), Some("2"));
    assert_eq!(created.attr("from"), Some("localhost"));
    assert!(created.attr("inactivity").is_some() && created.attr("polling").is_some());
    let features = created
        .get_child("features", crate::raw::NS_STREAM)
        .expect("features in the creation response");
    let mechs = features
        .get_child("mechanisms", NS_SASL)
        .expect("mechanisms");
    assert!(mechs.children().any(|m| m.text() == "ANONYMOUS"));

    let (_, r) = bosh
        .send(
            "",
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
        )
        .await;
    assert!(
        r.get_child("success", NS_SASL).is_some(),
        "{}",
        String::from(&r)
    );
    let (_, r) = bosh.send("to='localhost' xmpp:restart='true'", "").await;
    let features = r
        .get_child("features", crate::raw::NS_STREAM)
        .expect("features after restart");
    assert!(features.get_child("bind", NS_BIND).is_some());
    assert!(
        features.get_child("sm", crate::raw::NS_SM).is_none(),
        "no XEP-0198 over BOSH"
    );
    let (_, r) = bosh
        .send("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await;
    let jid = r
        .get_child("iq", "jabber:client")
        .and_then(|iq| iq.get_child("bind", NS_BIND))
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(|j| j.text())
        .expect("bound jid");
    web::wait_metric(
        ports,
        "lilt_sessions",
        &[("transport", "bosh"), ("vhost", "localhost")],
        1.0,
    )
    .await;

    // The message goes out; the TCP client's reply comes back in the held response.
    let rid = bosh.rid + 1;
    bosh.rid = rid;
    let sender = Bosh {
        url: bosh.url.clone(),
        sid: bosh.sid.clone(),
        rid,
    };
    let payload = format!(
        "<message xmlns='jabber:client' to='{tcp_jid}' type='chat'><body>over bosh</body></message>"
    );
    let held = tokio::spawn(async move { sender.send_rid(rid, "", &payload).await });
    let m = tcp
        .wait_for("the BOSH message", REPLY_TIMEOUT, |x| {
            x.el.name() == "message"
        })
        .await;
    assert_eq!(m.attr("from"), Some(jid.as_str()));
    tcp.send(&format!(
        "<message to='{jid}' type='chat'><body>back over tcp</body></message>"
    ))
    .await;
    let (_, r) = held.await.expect("held request");
    let back = r
        .get_child("message", "jabber:client")
        .unwrap_or_else(|| panic!("the reply rides the held request: {}", String::from(&r)));
    assert_eq!(back.attr("from"), Some(tcp_jid.as_str()));

    // Terminate with an unavailable presence (Jitsi's unload beacon).
    let (_, r) = bosh
        .send(
            "type='terminate'",
            "<presence xmlns='jabber:client' type='unavailable'/>",
        )
        .await;
    assert_eq!(terminate_condition(&r), Some(""), "{}", String::from(&r));
    let (_, r) = bosh.send("", "").await;
    assert_eq!(terminate_condition(&r), Some("item-not-found"));
    web::wait_metric(ports, "lilt_connections", &[("transport", "bosh")], 0.0).await;
    let s = web::scrape(ports).await;
    assert!(
        web::sample(
            &s,
            "lilt_auth_total",
            &[("mechanism", "ANONYMOUS"), ("result", "success")]
        ) >= 2.0
    );
    tcp.sync("localhost").await;
}

#[tokio::test]
async fn bosh_bad_requests_get_the_xep_conditions() {
    let server = Setup::new(
        TestConfig::localhost_anonymous()
            .http("max_body_bytes = 4096")
            .http("bosh_inactivity_seconds = 2"),
    )
    .start();
    let ports = server.ports();
    let url = ports.http_url("/http-bind");
    let (mut bystander, _) = RawClient::login_anonymous(ports.c2s_addr(), "localhost").await;

    // Unknown sid.
    let (status, body) = post(
        &url,
        &format!("<body xmlns='{NS_HTTPBIND}' rid='5' sid='nonexistent'/>"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(terminate_condition(&parse(&body)), Some("item-not-found"));
    // Not XML, wrong element, missing rid.
    for bad in [
        "this is not xml".to_owned(),
        "<body rid='1'/>".to_owned(),
        format!("<body xmlns='{NS_HTTPBIND}' to='localhost'/>"),
        format!("<body xmlns='{NS_HTTPBIND}' rid='1'><unclosed></body>"),
    ] {
        let (status, body) = post(&url, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            terminate_condition(&parse(&body)),
            Some("bad-request"),
            "{bad}"
        );
    }
    // Too large.
    let big = format!(
        "<body xmlns='{NS_HTTPBIND}' rid='1' sid='x'><message xmlns='jabber:client'><body>{}</body></message></body>",
        "x".repeat(8192)
    );
    let (status, _) = post(&url, &big).await;
    assert_eq!(status, 413);
    // Unknown host.
    let (_, body) = post(&url, &creation(1, "nowhere.example")).await;
    assert_eq!(terminate_condition(&parse(&body)), Some("host-unknown"));

    // A replayed rid gets the same answer.
    let (mut bosh, _) = Bosh::create(ports).await;
    let (_, first) = bosh
        .send(
            "",
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
        )
        .await;
    assert!(first.get_child("success", NS_SASL).is_some());
    let (_, again) = bosh.send_rid(bosh.rid, "", "").await;
    assert_eq!(String::from(&again), String::from(&first));
    // A rid far outside the window ends the session.
    let (_, r) = bosh.send_rid(bosh.rid + 50, "", "").await;
    assert_eq!(terminate_condition(&r), Some("item-not-found"));
    let (_, r) = bosh.send("", "").await;
    assert_eq!(terminate_condition(&r), Some("item-not-found"));

    // An abandoned session ends after `inactivity`.
    let (mut idle, _) = Bosh::create(ports).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (_, r) = idle.send("", "").await;
    assert_eq!(terminate_condition(&r), Some("item-not-found"));
    web::wait_metric(ports, "lilt_connections", &[("transport", "bosh")], 0.0).await;

    bystander.sync("localhost").await;
}
