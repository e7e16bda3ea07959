//! The raw client's session steps: SASL (PLAIN, ANONYMOUS, and SCRAM computed by
//! `scram.rs`), resource binding, iq round trips and one-call logins.
//!
//! Shell (sockets, through `RawClient`). Spec: RFC 6120 §6.4 (SASL exchange: `<auth/>`,
//! `<challenge/>`/`<response/>`, `<success/>` carrying the SCRAM server-final message,
//! `<failure/>` conditions), §7 (binding), XEP-0199 (ping as a barrier).
//! Invariants: every step waits with `REPLY_TIMEOUT`; a SCRAM login succeeds only when the
//! server's signature verifies.
//! Tests: used by tests/all/*.rs.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio_xmpp::minidom::Element;

use crate::raw::{NS_BIND, NS_SASL, NS_STREAM, NS_STREAM_ERRORS, REPLY_TIMEOUT, RawClient, Xml};
use crate::scram::{ScramClient, ScramHash};

impl RawClient {
    /// Mechanism names offered in `features`.
    pub(crate) fn mechanisms(features: &Xml) -> Vec<String> {
        features
            .child("mechanisms", NS_SASL)
            .map(|m| {
                m.children()
                    .filter(|c| c.name() == "mechanism")
                    .map(Element::text)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Send `<auth/>` and read the outcome: `Ok(success payload)` or `Err(condition)`.
    async fn sasl_outcome(&mut self) -> Result<Xml, String> {
        let x = self
            .wait_for("a SASL reply", REPLY_TIMEOUT, |x| {
                x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
            })
            .await;
        if x.is("success", NS_SASL) {
            Ok(x)
        } else if x.is("failure", NS_SASL) {
            Err(x
                .condition(NS_SASL)
                .unwrap_or_else(|| "(no condition)".into()))
        } else if x.is("error", NS_STREAM) {
            Err(format!(
                "stream error {}",
                x.condition(NS_STREAM_ERRORS).unwrap_or_default()
            ))
        } else {
            panic!("unexpected SASL reply {}", x.raw)
        }
    }

    /// SASL PLAIN; `Err` carries the failure condition.
    pub(crate) async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), String> {
        let payload = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ))
        .await;
        self.sasl_outcome().await.map(|_| ())
    }

    /// SASL ANONYMOUS.
    pub(crate) async fn auth_anonymous(&mut self) -> Result<(), String> {
        self.send(&format!("<auth xmlns='{NS_SASL}' mechanism='ANONYMOUS'/>"))
            .await;
        self.sasl_outcome().await.map(|_| ())
    }

    /// SASL SCRAM-SHA-1 or SCRAM-SHA-256, computed here; the server signature is verified.
    pub(crate) async fn auth_scram(
        &mut self,
        hash: ScramHash,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        let mut scram = ScramClient::new(hash, user, password);
        let first = B64.encode(scram.client_first());
        self.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{}'>{first}</auth>",
            hash.mechanism()
        ))
        .await;
        let challenge = self
            .wait_for("a SASL challenge", REPLY_TIMEOUT, |x| {
                x.el.ns() == NS_SASL || x.is("error", NS_STREAM)
            })
            .await;
        if !challenge.is("challenge", NS_SASL) {
            return Err(challenge
                .condition(NS_SASL)
                .unwrap_or_else(|| challenge.raw.clone()));
        }
        let server_first = B64
            .decode(challenge.el.text().trim())
            .map_err(|e| e.to_string())?;
        let server_first = String::from_utf8(server_first).map_err(|e| e.to_string())?;
        let client_final = scram.client_final(&server_first)?;
        self.send(&format!(
            "<response xmlns='{NS_SASL}'>{}</response>",
            B64.encode(client_final)
        ))
        .await;
        let success = self.sasl_outcome().await?;
        // RFC 6120 §6.3.10: the final server message rides in <success/>.
        let server_final = B64
            .decode(success.el.text().trim())
            .map_err(|e| e.to_string())?;
        let server_final = String::from_utf8(server_final).map_err(|e| e.to_string())?;
        scram.verify_server_final(&server_final)
    }

    /// Bind a resource (`None` asks the server to choose); returns the full JID.
    pub(crate) async fn bind(&mut self, resource: Option<&str>) -> String {
        let inner = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        self.send(&format!(
            "<iq type='set' id='bind_1'><bind xmlns='{NS_BIND}'>{inner}</bind></iq>"
        ))
        .await;
        let reply = self
            .wait_for("the bind result", REPLY_TIMEOUT, |x| {
                x.attr("id") == Some("bind_1")
            })
            .await;
        assert_eq!(
            reply.attr("type"),
            Some("result"),
            "bind failed: {}",
            reply.raw
        );
        reply
            .child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(Element::text)
            .unwrap_or_else(|| panic!("bind result without <jid/>: {}", reply.raw))
    }

    /// Send an iq and wait for the reply with the same id.
    pub(crate) async fn iq(&mut self, id: &str, iq: &str) -> Xml {
        self.send(iq).await;
        self.wait_for(&format!("the reply to iq {id}"), REPLY_TIMEOUT, |x| {
            x.el.name() == "iq" && x.attr("id") == Some(id)
        })
        .await
    }

    /// Ping the server domain and wait for the result: everything sent before was processed.
    pub(crate) async fn sync(&mut self, domain: &str) {
        let id = format!("sync_{}", rand::random::<u32>());
        let reply = self
            .iq(
                &id,
                &format!(
                    "<iq type='get' id='{id}' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>"
                ),
            )
            .await;
        assert_eq!(
            reply.attr("type"),
            Some("result"),
            "ping failed: {}",
            reply.raw
        );
    }

    /// Plain TCP, PLAIN auth, server-chosen or given resource; returns the full JID.
    pub(crate) async fn login_plain(
        addr: SocketAddr,
        domain: &str,
        user: &str,
        password: &str,
        resource: Option<&str>,
    ) -> (RawClient, String) {
        let mut c = RawClient::connect(addr).await;
        c.open(domain).await;
        if let Err(cond) = c.auth_plain(user, password).await {
            panic!("PLAIN login of {user}@{domain} failed: {cond}");
        }
        c.open(domain).await;
        let jid = c.bind(resource).await;
        (c, jid)
    }

    /// Plain TCP, ANONYMOUS auth; returns the full JID.
    pub(crate) async fn login_anonymous(addr: SocketAddr, domain: &str) -> (RawClient, String) {
        let mut c = RawClient::connect(addr).await;
        c.open(domain).await;
        if let Err(cond) = c.auth_anonymous().await {
            panic!("ANONYMOUS login on {domain} failed: {cond}");
        }
        c.open(domain).await;
        let jid = c.bind(None).await;
        (c, jid)
    }
}
